//! CPU-heavy work a request can start (bcrypt checks, PDF inspection, audit-trail PDFs and
//! page previews) runs on tokio's blocking pool, a bounded number at once per kind. The
//! permit moves into the blocking closure and is released only when the work really ends:
//! a request that times out and drops its future does not free a slot while its thread
//! still runs, so a flood of expensive requests queues instead of piling up threads.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::{Result, ServiceError};

pub(crate) struct BlockingLimits {
    bcrypt: Arc<Semaphore>,
    pdf: Arc<Semaphore>,
    /// Page previews have slots of their own: a slow render never holds up a create's
    /// inspection or an audit-trail PDF.
    previews: Arc<Semaphore>,
}

impl Default for BlockingLimits {
    /// bcrypt: two per CPU (each check is short); PDF work: one per CPU (each may hold a
    /// document and a page's pixels); page previews: one per two CPUs, at least one.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        BlockingLimits {
            bcrypt: Arc::new(Semaphore::new(cpus * 2)),
            pdf: Arc::new(Semaphore::new(cpus)),
            previews: Arc::new(Semaphore::new((cpus / 2).max(1))),
        }
    }
}

impl BlockingLimits {
    /// Runs a bcrypt hash or check.
    pub(crate) async fn bcrypt<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        run(&self.bcrypt, work).await
    }

    /// Runs PDF work.
    pub(crate) async fn pdf<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        run(&self.pdf, work).await
    }

    /// Runs a page preview's render in one of the previews' own slots.
    pub(crate) async fn preview<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        run(&self.previews, work).await
    }
}

async fn spawn<T: Send + 'static>(
    slots: &Arc<Semaphore>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<tokio::task::JoinHandle<T>> {
    let permit = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ServiceError::Internal(e.into()))?;
    Ok(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    }))
}

async fn run<T: Send + 'static>(
    slots: &Arc<Semaphore>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    spawn(slots, work)
        .await?
        .await
        .map_err(|e| ServiceError::Internal(e.into()))
}
