//! One run of a check at a time, its result shared by every caller that arrived while it
//! ran: a flood of callers costs one run, not one each (`/readyz`, unauthenticated and
//! exempt from the request slots, pings the database and the blob store).

use std::future::Future;
use std::sync::Mutex;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

pub(crate) struct SingleFlight<T: Clone> {
    running: Mutex<Option<Shared<BoxFuture<'static, T>>>>,
}

impl<T: Clone> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight {
            running: Mutex::new(None),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// The result of the run in progress, or of a new one `start` begins. A run whose callers
    /// all gave up is continued by the next caller (the shared future is kept until it ends).
    pub(crate) async fn run<F>(&self, start: impl FnOnce() -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
    {
        let shared = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            match running.as_ref() {
                Some(run) if run.peek().is_none() => run.clone(),
                _ => {
                    let run = start().boxed().shared();
                    *running = Some(run.clone());
                    run
                }
            }
        };
        shared.await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn callers_during_a_run_share_it_and_later_ones_start_another() {
        let flight = Arc::new(SingleFlight::<usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let call = |flight: Arc<SingleFlight<usize>>| {
            let runs = runs.clone();
            let release = release.clone();
            async move {
                flight
                    .run(move || async move {
                        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                        release.notified().await;
                        n
                    })
                    .await
            }
        };
        let callers: Vec<_> = (0..50)
            .map(|_| tokio::spawn(call(flight.clone())))
            .collect();
        // Every caller is waiting on the one run.
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        release.notify_waiters();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 1);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one run for fifty callers");

        // The run ended: the next caller starts a fresh one (no stale result).
        let next = tokio::spawn(call(flight.clone()));
        while runs.load(Ordering::SeqCst) == 1 {
            tokio::task::yield_now().await;
        }
        release.notify_waiters();
        assert_eq!(next.await.unwrap(), 2);
    }
}
