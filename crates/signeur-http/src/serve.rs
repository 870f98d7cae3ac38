//! Accepting and serving connections, with limits a slow or hostile client cannot lift:
//! the headers of each request must arrive within `header_timeout` (hyper's timer; an idle
//! keep-alive connection waiting for its next request is closed after the same time), and
//! at most `max_connections` connections are open at once. When that many are open the
//! server stops accepting until one closes: new clients wait in the kernel's listen backlog
//! instead of being refused, so a burst is served late rather than failed. There is no cap
//! per client address: many signers share one address behind a NAT, and the header timeout
//! is what frees the connections of a client that dribbles its headers.
//!
//! A client that stops reading its answers (a large document never read, or pipelined
//! requests whose answers pile up) would hold its connection forever: hyper has no write
//! timeout. A connection whose writes make no progress for `header_timeout` is closed.
//! Shutdown waits for the requests in flight at most `request_timeout` + 5 s, then drops
//! the connections still open.
//!
//! The request deadline, the cap on requests handled at once and the body limits are the
//! router's layers ([`crate::limits`]); `main` and the integration tests both serve through
//! [`serve`], so the tests exercise this very loop.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_io_timeout::TimeoutWriter;
use tower::ServiceExt as _;

/// The serving limits (`SIGNEUR_HEADER_TIMEOUT_SECS`, `SIGNEUR_REQUEST_TIMEOUT_SECS`,
/// `SIGNEUR_MAX_CONCURRENT_REQUESTS`, `SIGNEUR_MAX_CONNECTIONS`).
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// A request's headers must have arrived this long after the connection began waiting
    /// for them.
    pub header_timeout: Duration,
    /// A response comes within this long after the headers arrived (see [`crate::limits`]).
    pub request_timeout: Duration,
    /// Requests handled at once; more wait for a slot until their deadline.
    pub max_concurrent_requests: usize,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    /// 30 s for headers; 60 s per request (a 10 MB upload at 2 Mbit/s takes about 56 s);
    /// 512 requests at once; 4,096 connections.
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_concurrent_requests: 512,
            max_connections: 4096,
        }
    }
}

/// How long shutdown waits for the connections still open, beyond the request timeout.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets the
/// requests in flight finish (each is bounded by its deadline), drops the connections still
/// open `request_timeout` + 5 s later, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropped receiver = shutdown began; closed sender = every connection task ended.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    let (done_tx, done_rx) = watch::channel(());
    // Dropped receiver = the drain ran out: every connection still open is dropped.
    let (kill_tx, kill_rx) = watch::channel(());

    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop_tx.closed() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            _ = stop_tx.closed() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                req
            });
        let stop = stop_tx.clone();
        let kill = kill_tx.clone();
        let done = done_rx.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            // A write that makes no progress for the header timeout ends the connection.
            let mut stream = TimeoutWriter::new(stream);
            stream.set_timeout(Some(header_timeout));
            let io = TokioIo::new(Box::pin(stream));
            tokio::select! {
                () = serve_connection(io, service, header_timeout, stop) => {}
                () = kill.closed() => {}
            }
            drop(permit);
            drop(done);
        });
    }
    drop(done_rx);
    drop(listener);
    drop(kill_tx);
    let drain = limits.request_timeout.saturating_add(DRAIN_GRACE);
    if tokio::time::timeout(drain, done_tx.closed()).await.is_err() {
        tracing::warn!(
            "connections still open {} s after shutdown began are dropped",
            drain.as_secs()
        );
        drop(kill_rx);
        done_tx.closed().await;
    }
}

async fn serve_connection<S>(
    io: TokioIo<Pin<Box<TimeoutWriter<TcpStream>>>>,
    service: S,
    header_timeout: Duration,
    stop: watch::Sender<()>,
) where
    S: tower::Service<Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, TowerToHyperService::new(service)));
    let mut stopping = pin!(stop.closed());
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = &mut stopping, if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Errors of one connection that `accept` reports (the next accept may well succeed).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Raises this process's open-file limit to its hard limit: every connection is a file
/// descriptor, and `max_connections` (4,096 by default) is above the usual soft limit of
/// 1,024. Returns the limit in force.
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<u64> {
    None
}
