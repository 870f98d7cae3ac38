//! What one request may cost before it is refused: a body limit per route, one deadline for
//! the whole request (waiting for a slot, reading the body, answering), and a cap on the
//! requests handled at once.
//!
//! - **Body limits** (`body_limit`): a create carries the documented 10 MB PDF in base64,
//!   the signer's forms 1 MB (a drawn signature included), a settings `PATCH` 512 KB (the
//!   branding logo), everything else 64 KB. A `Content-Length` over the limit is refused
//!   before a byte of the body is read; a body without one is counted as it streams and
//!   refused once it passes the limit. 413 `payload_too_large` (the API's JSON error, a small
//!   HTML page under `/sign` and `/embed`), and the connection is closed.
//! - **Read-ahead**: the first 64 KB of a body (all of a smaller one) are read before the
//!   request takes a slot, within the same deadline as the wait for a slot (408 when they do
//!   not arrive in time). A client dribbling its body from the start therefore holds no slot;
//!   memory stays bounded by the connection cap × 64 KB. A body over 64 KB still holds its
//!   slot while the rest arrives, up to the deadline.
//! - **Concurrency cap** (`SIGNEUR_MAX_CONCURRENT_REQUESTS`): requests over it wait their
//!   turn, first come first served. The queue is bounded by the connection cap (HTTP/1:
//!   one request per connection at a time). Only a request that waited longer than the
//!   request timeout is 503 `overloaded` with `Retry-After`. `/healthz`, `/readyz` and
//!   `/metrics` never wait: an overloaded node still answers its probes.
//! - **Deadline** (`SIGNEUR_REQUEST_TIMEOUT_SECS`): once it has its slot, a request is
//!   answered within the timeout (so a response comes at most two timeouts after the
//!   headers: one waiting, one handling). A request whose body had not fully arrived by
//!   then is 408 `request_timeout` (the client is slow, RFC 9110 §15.5.9; the connection is
//!   closed); one we were still working on is 503 `server_timeout` with `Retry-After`. The
//!   dropped work rolls back: a use case commits one transaction or nothing (an idempotent
//!   POST runs to completion in a task of its own).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use signeur_core::validate::{
    MAX_DOCUMENT_BYTES, MAX_EMAIL_CHARS, MAX_FILENAME_CHARS, MAX_MESSAGE_CHARS, MAX_METADATA_BYTES,
    MAX_NAME_CHARS, MAX_SIGNERS, MAX_TITLE_CHARS,
};

use crate::error::ApiError;

const KB: usize = 1024;
const MB: usize = 1024 * KB;

/// `POST /api/v1/signatures`: the largest valid create. The PDF in base64, then every text
/// field at its limit with each character escaped as JSON's longest form (`\uXXXX\uXXXX`,
/// 12 bytes, for a character outside the BMP), the metadata escaped (6 bytes a byte), and
/// 256 KB for keys, the signers' other fields and whitespace.
pub const CREATE_BODY_BYTES: usize = 4 * MAX_DOCUMENT_BYTES.div_ceil(3)
    + 12 * (MAX_TITLE_CHARS
        + MAX_MESSAGE_CHARS
        + MAX_FILENAME_CHARS
        + MAX_SIGNERS * (MAX_NAME_CHARS + MAX_EMAIL_CHARS))
    + 6 * MAX_METADATA_BYTES
    + 256 * KB;
// The documented 10 MB PDF fits, with room for the rest of the body; 16 MB does not.
const _: () = assert!(CREATE_BODY_BYTES > 4 * (10 * MB).div_ceil(3) + 200 * KB);
const _: () = assert!(CREATE_BODY_BYTES < 15 * MB);
/// A signer's form (`POST /sign/…`): the drawn signature is the largest part.
pub const FORM_BODY_BYTES: usize = MB;
/// `PATCH /api/v1/settings`: the branding logo.
pub const SETTINGS_BODY_BYTES: usize = 512 * KB;
/// Every other route.
pub const OTHER_BODY_BYTES: usize = 64 * KB;

/// The body limit of a request, from its method and path (before routing: the limit must
/// be known before the body is read).
pub fn body_limit(method: &Method, path: &str) -> usize {
    match (method, path) {
        (&Method::POST, "/api/v1/signatures") => CREATE_BODY_BYTES,
        (&Method::PATCH, "/api/v1/settings") => SETTINGS_BODY_BYTES,
        (&Method::POST, p) if is_page(p) => FORM_BODY_BYTES,
        _ => OTHER_BODY_BYTES,
    }
}

/// The signer's pages answer in HTML, the rest in the API's JSON.
fn is_page(path: &str) -> bool {
    path.starts_with("/sign/") || path.starts_with("/embed/")
}

/// Routes that never wait for a slot.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The request deadline and the cap on requests handled at once.
#[derive(Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    timeout: Duration,
}

impl Admission {
    pub fn new(max_concurrent_requests: usize, request_timeout: Duration) -> Self {
        Admission {
            slots: Arc::new(Semaphore::new(max_concurrent_requests.max(1))),
            timeout: request_timeout,
        }
    }
}

impl Default for Admission {
    fn default() -> Self {
        let limits = crate::serve::ServeLimits::default();
        Admission::new(limits.max_concurrent_requests, limits.request_timeout)
    }
}

/// The middleware: body limit, then a slot, then the handler within the deadline.
pub async fn admit(State(admission): State<Admission>, req: Request, next: Next) -> Response {
    let waited_too_long = Instant::now() + admission.timeout;
    let path = req.uri().path().to_string();
    let page = is_page(&path);
    let limit = body_limit(req.method(), &path);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(page, limit);
    }

    // The body, counted as it streams; its first 64 KB are read before a slot is taken, so
    // a client that dribbles its body waits outside the slots (and only its own deadline
    // runs out), while memory stays bounded by the connections × 64 KB.
    let (parts, body) = req.into_parts();
    let progress = Arc::new(Progress {
        ended: AtomicBool::new(body.is_end_stream()),
        too_large: AtomicBool::new(false),
    });
    let mut body = Metered {
        inner: body,
        seen: 0,
        limit,
        progress: progress.clone(),
        read_ahead: VecDeque::new(),
    };
    if tokio::time::timeout_at(waited_too_long, body.read_ahead(READ_AHEAD_BYTES))
        .await
        .is_err()
    {
        return body_too_slow(page, admission.timeout);
    }
    if progress.too_large.load(Ordering::Acquire) {
        return too_large(page, limit);
    }

    let _slot = if is_probe(&path) {
        None
    } else {
        match tokio::time::timeout_at(waited_too_long, admission.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(slot)) => Some(slot),
            Ok(Err(_closed)) => return ApiError::internal().into_response(),
            Err(_) => {
                tracing::warn!("refused a request that waited past its deadline for a slot");
                return refusal(
                    page,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "The server is handling too many requests; retry after the time in Retry-After.",
                );
            }
        }
    };

    let req = Request::from_parts(parts, Body::new(body));
    match tokio::time::timeout(admission.timeout, next.run(req)).await {
        Ok(_) if progress.too_large.load(Ordering::Acquire) => too_large(page, limit),
        Ok(res) => res,
        Err(_) if !progress.ended.load(Ordering::Acquire) => body_too_slow(page, admission.timeout),
        Err(_) => {
            tracing::warn!("a request did not finish before its deadline");
            refusal(
                page,
                StatusCode::SERVICE_UNAVAILABLE,
                "server_timeout",
                format!(
                    "The server did not finish this request within {} seconds; retry after the time in Retry-After.",
                    admission.timeout.as_secs()
                ),
            )
        }
    }
}

/// 408 `request_timeout`: the rest of the body is never read, so the connection is closed.
fn body_too_slow(page: bool, timeout: Duration) -> Response {
    let mut res = refusal(
        page,
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "The request body did not arrive within {} seconds.",
            timeout.as_secs()
        ),
    );
    close(&mut res);
    res
}

/// Seconds a refused client is told to wait.
const RETRY_AFTER_SECS: &str = "5";

fn refusal(
    page: bool,
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Response {
    let message = message.into();
    let mut res = if page {
        small_page(status, &message)
    } else {
        ApiError::new(status, code, message).into_response()
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    res
}

fn too_large(page: bool, limit: usize) -> Response {
    let mut res = refusal(
        page,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "The request body exceeds this route's limit of {}.",
            human(limit)
        ),
    );
    close(&mut res);
    res
}

/// The rest of the body is never read: the connection cannot carry another request.
fn close(res: &mut Response) {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

fn human(bytes: usize) -> String {
    if bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes.is_multiple_of(KB) && bytes < MB {
        format!("{} KB", bytes / KB)
    } else {
        format!("{:.1} MB ({bytes} bytes)", bytes as f64 / MB as f64)
    }
}

/// The limits in the OpenAPI document, from the same rules that enforce them: every
/// operation with a body answers 413 over its route's limit and 408 when the body is too
/// slow; every operation may answer 503 `overloaded` or `server_timeout` with `Retry-After`.
pub(crate) fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let error = |description: String, retry_after: bool| {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        if retry_after {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    ))
                    .description(Some("Seconds to wait before retrying."))
                    .build(),
            );
        }
        RefOr::T(response.build())
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            (Method::GET, &mut item.get),
            (Method::PUT, &mut item.put),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let responses = &mut operation.responses.responses;
            if operation.request_body.is_some() || responses.contains_key("413") {
                let limit = human(body_limit(&method, path));
                responses.insert(
                    "413".into(),
                    error(
                        format!(
                            "Body over this route's limit of {limit} (`payload_too_large`); a `Content-Length` over it is refused before the body is read"
                        ),
                        false,
                    ),
                );
                responses.insert(
                    "408".into(),
                    error(
                        "The body did not arrive within the request timeout (`request_timeout`); the connection is closed".into(),
                        false,
                    ),
                );
            }
            if is_probe(path) {
                // Probes never wait for a slot.
                continue;
            }
            responses.entry("503".into()).or_insert_with(|| {
                error(
                    "The server is overloaded (`overloaded`: no slot came free within the request timeout) or did not finish in time (`server_timeout`)".into(),
                    true,
                )
            });
        }
    }
}

/// What a signer's browser shows (no template: this answer must cost nothing to make).
fn small_page(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{reason}</title></head>\
         <body><h1>{reason}</h1><p>{message}</p></body></html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// How far the body got.
struct Progress {
    /// The body was read to its end (or had none).
    ended: AtomicBool,
    /// The body passed its limit while streaming.
    too_large: AtomicBool,
}

/// How much of a body is read before the request takes a slot.
pub const READ_AHEAD_BYTES: usize = OTHER_BODY_BYTES;

/// The request body, counted as it streams: an error once it passes `limit`.
struct Metered {
    inner: Body,
    seen: usize,
    limit: usize,
    progress: Arc<Progress>,
    /// Frames read ahead (see [`Metered::read_ahead`]), handed out first.
    read_ahead: VecDeque<Result<Frame<Bytes>, axum::Error>>,
}

impl Metered {
    /// Reads frames until `bytes` have arrived, the body ended, or it failed (the failure
    /// is kept for the handler).
    async fn read_ahead(&mut self, bytes: usize) {
        let mut read = 0;
        while read < bytes && !self.progress.ended.load(Ordering::Acquire) {
            match std::future::poll_fn(|cx| self.poll_inner(cx)).await {
                None => break,
                Some(Ok(frame)) => {
                    read += frame.data_ref().map_or(0, |d| d.len());
                    self.read_ahead.push_back(Ok(frame));
                }
                Some(Err(e)) => {
                    self.read_ahead.push_back(Err(e));
                    break;
                }
            }
        }
    }

    fn poll_inner(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            None => {
                self.progress.ended.store(true, Ordering::Release);
                Poll::Ready(None)
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.seen = self.seen.saturating_add(data.len());
                    if self.seen > self.limit {
                        self.progress.too_large.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(axum::Error::new(TooLarge))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body exceeds its limit")]
struct TooLarge;

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Some(frame) = this.read_ahead.pop_front() {
            return Poll::Ready(Some(frame));
        }
        this.poll_inner(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read_ahead.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let ahead: u64 = self
            .read_ahead
            .iter()
            .filter_map(|f| f.as_ref().ok()?.data_ref().map(|d| d.len() as u64))
            .sum();
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(ahead));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(ahead));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_by_route() {
        assert_eq!(
            body_limit(&Method::POST, "/api/v1/signatures"),
            CREATE_BODY_BYTES
        );
        assert_eq!(
            body_limit(&Method::GET, "/api/v1/signatures"),
            OTHER_BODY_BYTES
        );
        assert_eq!(
            body_limit(&Method::PATCH, "/api/v1/settings"),
            SETTINGS_BODY_BYTES
        );
        assert_eq!(body_limit(&Method::POST, "/sign/abc/sign"), FORM_BODY_BYTES);
        assert_eq!(
            body_limit(&Method::POST, "/api/v1/webhook-endpoints"),
            OTHER_BODY_BYTES
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(MB), "1 MB");
        assert_eq!(human(64 * KB), "64 KB");
        assert_eq!(human(512 * KB), "512 KB");
        assert_eq!(human(14_479_884), "13.8 MB (14479884 bytes)");
    }
}
