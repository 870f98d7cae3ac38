//! Webhook endpoints: `GET`/`POST /api/v1/webhook-endpoints`, `PATCH`/`DELETE
//! /api/v1/webhook-endpoints/{id}`.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use signeur_core::EventType;
use signeur_core::time::{ms, ms_opt};
use signeur_core::validate::schema::{CreateWebhookEndpoint, UpdateWebhookEndpoint};
use signeur_service::ReplayCondition;
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
        (status = 413, description = "Body over 16 MB", body = ErrorBody),
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
