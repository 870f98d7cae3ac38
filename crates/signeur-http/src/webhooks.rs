//! Webhook endpoints: `GET`/`POST /api/v1/webhook-endpoints`, `PATCH`/`DELETE
//! /api/v1/webhook-endpoints/{id}`; delivery history and control: `GET …/{id}/deliveries`,
//! `POST …/{id}/test`, `POST …/{id}/rotate-secret`, `POST
//! /api/v1/webhook-deliveries/{id}/retry`.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use signeur_core::EventType;
use signeur_core::time::{ms, ms_opt};
use signeur_core::validate::schema::{CreateWebhookEndpoint, UpdateWebhookEndpoint};
use signeur_service::ReplayCondition;
use signeur_service::deliveries::{
    AttemptPage, AttemptQuery, QueuedDelivery, RotatedSecret, attempt_wire_id, delivery_wire_id,
};
use signeur_service::webhooks::{CreatedEndpoint, WebhookEndpoint, endpoint_id};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::guard::Caller;
use crate::json::Json;
use crate::signatures::IdempotencyHeader;

pub const TAG: &str = "Webhook endpoints";

/// A webhook endpoint (its secret is shown only when it is created).
#[derive(Serialize, ToSchema)]
pub struct WebhookEndpointView {
    #[schema(example = "ep_a1b2c3d4-e5f6-7890-abcd-ef1234567890")]
    pub id: String,
    #[schema(format = "uri")]
    pub url: String,
    /// Empty: every event type.
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    /// Set while delivery is paused (through the API, or by Signeur after five days of
    /// failures).
    #[serde(serialize_with = "ms_opt::serialize")]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why Signeur disabled the endpoint; null when enabled or paused through the API.
    pub disabled_reason: Option<String>,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ms::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookEndpoint> for WebhookEndpointView {
    fn from(e: WebhookEndpoint) -> Self {
        WebhookEndpointView {
            id: endpoint_id(e.id),
            url: e.url,
            event_types: e.event_types,
            description: e.description,
            disabled_at: e.disabled_at,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A new endpoint with its signing secret, shown only in this response.
#[derive(Serialize, ToSchema)]
pub struct WebhookEndpointCreated {
    #[schema(example = "ep_a1b2c3d4-e5f6-7890-abcd-ef1234567890")]
    pub id: String,
    #[schema(format = "uri")]
    pub url: String,
    /// Keys the HMAC-SHA256 of `X-Signeur-Signature`; Signeur keeps no plain copy.
    #[schema(example = "whsec_7f3a9c…")]
    pub secret: String,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ms::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl From<CreatedEndpoint> for WebhookEndpointCreated {
    fn from(c: CreatedEndpoint) -> Self {
        let e = c.endpoint;
        WebhookEndpointCreated {
            id: endpoint_id(e.id),
            url: e.url,
            secret: c.secret,
            event_types: e.event_types,
            description: e.description,
            disabled_at: e.disabled_at,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub data: Vec<WebhookEndpointView>,
}

#[utoipa::path(
    get, path = "/api/v1/webhook-endpoints", tag = TAG,
    summary = "List webhook endpoints (without secrets)",
    responses(
        (status = 200, description = "The organization's endpoints, oldest first", body = WebhookEndpointList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_endpoints(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<WebhookEndpointList>, ApiError> {
    let data = st.service.list_webhook_endpoints(caller.org_id).await?;
    Ok(Json(WebhookEndpointList {
        data: data.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/webhook-endpoints", tag = TAG,
    summary = "Create a webhook endpoint (its secret is returned once)",
    request_body(content = CreateWebhookEndpoint, content_type = "application/json"),
    params(IdempotencyHeader),
    responses(
        (status = 201, description = "Created", body = WebhookEndpointCreated),
        (status = 400, description = "Invalid body, URL or event type (invalid_json, missing_field, invalid_field, invalid_url, invalid_event_type)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 409, description = "Too many endpoints, or Idempotency-Key conflict or in use", body = ErrorBody),
        (status = 413, description = "Body over the route's limit (see `limits::body_limit`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let created = st
        .service
        .create_webhook_endpoint(caller.org_id, &body)
        .await?;
    // A replay of this create stands only while the endpoint exists.
    let replay = ReplayCondition::WebhookEndpointExists {
        id: created.endpoint.id,
    };
    Ok((
        StatusCode::CREATED,
        Extension(replay),
        Json(WebhookEndpointCreated::from(created)),
    )
        .into_response())
}

#[utoipa::path(
    patch, path = "/api/v1/webhook-endpoints/{id}", tag = TAG,
    summary = "Change a webhook endpoint (only the fields given)",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    request_body(content = UpdateWebhookEndpoint, content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint after the change", body = WebhookEndpointView),
        (status = 400, description = "Invalid body, URL or event type (invalid_json, invalid_field, invalid_url, invalid_event_type)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    Ok(Json(
        st.service
            .update_webhook_endpoint(caller.org_id, &id, &body)
            .await?
            .into(),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/webhook-endpoints/{id}", tag = TAG,
    summary = "Delete a webhook endpoint (delivery to it stops at once)",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.service
        .delete_webhook_endpoint(caller.org_id, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct DeliveryAttemptView {
    /// The attempt.
    #[schema(example = "wha_0193b0c4-7e4a-7cc2-9a51-3f0e4b1d2c3a")]
    pub id: String,
    /// The delivery (one per event and endpoint) this attempt belongs to.
    #[schema(example = "whd_0193b0c4-7e40-7cc2-9a51-3f0e4b1d2c3a")]
    pub delivery_id: String,
    /// The event's id, the same in every attempt and in the audit trail.
    pub event_id: String,
    pub event_type: String,
    /// 1-based.
    pub attempt: i64,
    #[schema(pattern = "^(succeeded|failed)$")]
    pub status: String,
    /// The receiver's status code; null when no response arrived.
    pub http_status: Option<i64>,
    pub duration_ms: i64,
    /// Why the attempt failed (status, timeout, connection error, refused address).
    pub error: Option<String>,
    /// The start of the response body (at most 1 KB).
    pub response_excerpt: Option<String>,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryAttemptList {
    pub data: Vec<DeliveryAttemptView>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

impl From<AttemptPage> for DeliveryAttemptList {
    fn from(p: AttemptPage) -> Self {
        DeliveryAttemptList {
            data: p
                .data
                .into_iter()
                .map(|a| DeliveryAttemptView {
                    id: attempt_wire_id(a.id),
                    delivery_id: delivery_wire_id(a.delivery_id),
                    event_id: a.event_id,
                    event_type: a.event_type,
                    attempt: a.attempt,
                    status: if a.succeeded { "succeeded" } else { "failed" }.into(),
                    http_status: a.http_status,
                    duration_ms: a.duration_ms,
                    error: a.error,
                    response_excerpt: a.response_excerpt,
                    created_at: a.created_at,
                })
                .collect(),
            has_more: p.has_more,
            next_cursor: p.next_cursor,
        }
    }
}

fn attempt_status_or_empty() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    crate::signatures::or_empty(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["succeeded", "failed"])),
    )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// Only attempts with this outcome.
    #[param(schema_with = attempt_status_or_empty)]
    status: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(schema_with = crate::signatures::limit_or_empty)]
    limit: Option<String>,
    /// `next_cursor` of the previous page, for the same filter; opaque.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/webhook-endpoints/{id}/deliveries", tag = TAG,
    summary = "List an endpoint's delivery attempts, newest first",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)"), DeliveryListParams),
    responses(
        (status = 200, description = "One page of attempts, newest first", body = DeliveryAttemptList),
        (status = 400, description = "Invalid filter, limit or cursor (invalid_filter, invalid_limit, invalid_cursor)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<DeliveryListParams>, QueryRejection>,
) -> Result<Json<DeliveryAttemptList>, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            format!("Invalid query string: {e}"),
        )
    })?;
    let q = AttemptQuery {
        status: p.status,
        limit: p.limit,
        cursor: p.cursor,
    };
    let page = st
        .service
        .list_webhook_attempts(caller.org_id, &id, &q)
        .await?;
    Ok(Json(page.into()))
}

/// A delivery queued to be attempted now.
#[derive(Serialize, ToSchema)]
pub struct DeliveryQueued {
    #[schema(example = "whd_0193b0c4-7e40-7cc2-9a51-3f0e4b1d2c3a")]
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
}

impl From<QueuedDelivery> for DeliveryQueued {
    fn from(q: QueuedDelivery) -> Self {
        DeliveryQueued {
            delivery_id: delivery_wire_id(q.delivery_id),
            event_id: q.event_id,
            event_type: q.event_type,
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/webhook-endpoints/{id}/test", tag = TAG,
    summary = "Send a signed webhook_endpoint.test event to this endpoint",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 202, description = "Queued; its attempts appear in the endpoint's deliveries", body = DeliveryQueued),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn test_endpoint(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let queued = st.service.send_test_webhook(caller.org_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryQueued::from(queued))).into_response())
}

#[utoipa::path(
    post, path = "/api/v1/webhook-deliveries/{id}/retry", tag = TAG,
    summary = "Attempt a delivery again now (a new attempt with the same event)",
    params(("id" = String, Path, description = "The delivery's id (`whd_…`)")),
    responses(
        (status = 202, description = "Queued; the attempt appears in the endpoint's deliveries", body = DeliveryQueued),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such delivery (or its endpoint was deleted)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retry_delivery(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let queued = st
        .service
        .retry_webhook_delivery(caller.org_id, &id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryQueued::from(queued))).into_response())
}

/// A new signing secret, shown only in this response.
#[derive(Serialize, ToSchema)]
pub struct SecretRotated {
    #[schema(example = "ep_a1b2c3d4-e5f6-7890-abcd-ef1234567890")]
    pub id: String,
    #[schema(example = "whsec_7f3a9c…")]
    pub secret: String,
    /// Until then deliveries carry two `v1=` signatures, the new secret's and the old one's.
    #[serde(serialize_with = "ms::serialize")]
    pub previous_secret_expires_at: DateTime<Utc>,
}

impl From<RotatedSecret> for SecretRotated {
    fn from(r: RotatedSecret) -> Self {
        SecretRotated {
            id: endpoint_id(r.endpoint_id),
            secret: r.secret,
            previous_secret_expires_at: r.previous_secret_expires_at,
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/webhook-endpoints/{id}/rotate-secret", tag = TAG,
    summary = "Rotate an endpoint's secret (the old one also signs for 24 h)",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 200, description = "The new secret, shown once", body = SecretRotated),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SecretRotated>, ApiError> {
    Ok(Json(
        st.service
            .rotate_webhook_secret(caller.org_id, &id)
            .await?
            .into(),
    ))
}
