//! What every `/api/v1` route passes through: authentication, then the organization's rate
//! limit, then, for a POST, the body read once (bounded) and `Idempotency-Key` handled.
//! Every answer after authentication carries the `RateLimit-Policy` and `RateLimit` headers
//! (IETF draft-ietf-httpapi-ratelimit-headers); a refused request is a 429 `rate_limited`
//! with `Retry-After`.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use signeur_service::ratelimit::ceil_secs;
use signeur_service::{
    Authenticated, IdempotencyOutcome, RateDecision, ReplayCondition, StoredResponse, normalize_key,
};

use crate::error::ApiError;
use crate::{AppState, MAX_BODY_BYTES};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
pub const RATELIMIT_POLICY: &str = "ratelimit-policy";
pub const RATELIMIT: &str = "ratelimit";

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn api_guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let auth = match bearer(&req) {
        Some(token) => match state.service.authenticate(token).await {
            Ok(a) => a,
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Missing Authorization header; send 'Authorization: Bearer sgn_live_…'.",
            )
            .into_response();
        }
    };
    let limit = state.service.check_api_rate(&auth).await;
    let mut res = match &limit {
        Some(decision) if !decision.allowed() => rate_limited(decision),
        _ => {
            req.extensions_mut().insert(auth);
            authorized(state, auth, req, next).await
        }
    };
    if let Some(decision) = &limit {
        rate_limit_headers(&mut res, decision);
    }
    res
}

/// The 429 of a refused request (its `RateLimit` headers are added with every answer's).
fn rate_limited(decision: &RateDecision) -> Response {
    let wait = ceil_secs(decision.retry_after.unwrap_or_default()).max(1);
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "Too many requests for this organization (at most {} a second, bursts of {}); \
             retry after {wait} s.",
            decision.quota.per_sec, decision.quota.burst
        ),
    )
    .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    res
}

/// `RateLimit-Policy: "org";q=100;w=1` and `RateLimit: "org";r=…;t=…` (remaining requests,
/// seconds until the whole burst is back).
fn rate_limit_headers(res: &mut Response, decision: &RateDecision) {
    let policy = format!("\"org\";q={};w=1", decision.quota.per_sec);
    let state = format!(
        "\"org\";r={};t={}",
        decision.remaining,
        ceil_secs(decision.reset)
    );
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, state)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, v);
        }
    }
}

/// An authenticated request within its rate limit: the body and `Idempotency-Key` of a POST.
async fn authorized(state: AppState, auth: Authenticated, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }

    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The request body exceeds {MAX_BODY_BYTES} bytes."),
            )
            .into_response();
        }
    };
    let key = match parts.headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v
            .to_str()
            .map_err(|_| ())
            .and_then(|s| normalize_key(s).map_err(|_| ()))
        {
            Ok(k) => Some(k),
            Err(()) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_idempotency_key",
                    "Header 'Idempotency-Key' must be 1 to 255 printable ASCII characters.",
                )
                .into_response();
            }
        },
    };
    let path = parts.uri.path().to_string();
    let req = Request::from_parts(parts, Body::from(bytes.clone()));
    let Some(key) = key else {
        return next.run(req).await;
    };

    match state
        .service
        .begin_idempotent(auth.org_id, &key, "POST", &path, &bytes)
        .await
    {
        Err(e) => ApiError::from(e).into_response(),
        Ok(IdempotencyOutcome::Replay(stored)) => replay(stored),
        Ok(IdempotencyOutcome::Proceed(reservation)) => {
            // Run to completion even if the client goes away, so the reservation is always
            // either completed or released.
            let service = state.service.clone();
            let task_key = key.clone();
            let task_reservation = reservation.clone();
            let task = tokio::spawn(async move {
                let (key, reservation) = (task_key, task_reservation);
                let res = next.run(req).await;
                let (mut parts, body) = res.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let stored = StoredResponse {
                    status: parts.status.as_u16(),
                    content_type: parts
                        .headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(String::from),
                    body: body.to_vec(),
                    replay_only_while: parts.extensions.remove::<ReplayCondition>(),
                };
                if let Err(e) = service
                    .finish_idempotent(auth.org_id, &key, &reservation, Some(&stored))
                    .await
                {
                    tracing::error!(error = %e, "could not record the idempotent response");
                }
                Response::from_parts(parts, Body::from(body))
            });
            match task.await {
                Ok(res) => res,
                Err(e) => {
                    tracing::error!(error = %e, "request task failed");
                    if let Err(e) = state
                        .service
                        .finish_idempotent(auth.org_id, &key, &reservation, None)
                        .await
                    {
                        tracing::error!(error = %e, "could not release the idempotency key");
                    }
                    ApiError::internal().into_response()
                }
            }
        }
    }
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = (status, Bytes::from(stored.body)).into_response();
    if let Some(ct) = stored
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        res.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    res.headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    res
}

/// The caller, as the guard authenticated them.
pub type Caller = axum::Extension<Authenticated>;
