//! `GET /api/v1/events`: the organization's events, newest first, for reconciling after an
//! outage (parse, call one service function, render).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use signeur_core::EventType;
use signeur_core::time::ms;
use signeur_service::{EventListQuery, EventPage, OrgEvent};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::guard::Caller;
use crate::json::Json;
use crate::signatures::{date_time_or_empty, limit_or_empty};

pub const TAG: &str = "Events";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListParams {
    /// Only events of this type, or of these types (comma-separated).
    #[serde(rename = "type")]
    #[param(rename = "type", example = "signer.signed,signature_request.completed")]
    event_type: Option<String>,
    /// Events created at or after this instant (RFC 3339).
    #[param(schema_with = date_time_or_empty)]
    created_from: Option<String>,
    /// Events created before this instant (RFC 3339).
    #[param(schema_with = date_time_or_empty)]
    created_to: Option<String>,
    /// Page size, 1–100 (default 25).
    #[param(schema_with = limit_or_empty)]
    limit: Option<String>,
    /// `next_cursor` of the previous page, for the same filters; opaque: do not construct
    /// your own.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

/// One event: the envelope a webhook delivery carries, plus the request it belongs to.
#[derive(Serialize, ToSchema)]
pub struct EventEntry {
    #[schema(example = "evt_a1b2c3d4-e5f6-7890-abcd-ef1234567890")]
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    /// The event's payload, as stored (the webhook's `data`).
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// Null for an event of no request.
    pub signature_request_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    pub data: Vec<EventEntry>,
    pub has_more: bool,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(pattern = "^[A-Za-z0-9_-]+$")]
    pub next_cursor: Option<String>,
}

impl EventList {
    fn new(p: EventPage) -> Self {
        EventList {
            data: p.rows.into_iter().map(entry).collect(),
            has_more: p.has_more,
            next_cursor: p.next_cursor,
        }
    }
}

fn entry(e: OrgEvent) -> EventEntry {
    EventEntry {
        id: e.id,
        event_type: e.event_type,
        created_at: e.created_at,
        data: RawValue::from_string(e.data).unwrap_or_default(), // `null`
        signature_request_id: e.request_id,
    }
}

#[utoipa::path(
    get, path = "/api/v1/events", tag = TAG,
    summary = "List the organization's events",
    description = "Every event of the organization's signature requests, newest first: the \
                   `id`, `type`, `created_at` and `data` a webhook delivery carries, plus \
                   `signature_request_id`. Use it to catch up after missed deliveries; pages \
                   stay stable while new events arrive.",
    params(EventListParams),
    responses(
        (status = 200, description = "One page, newest first", body = EventList),
        (status = 400, description = "Invalid filter, limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_events(
    State(st): State<AppState>,
    caller: Caller,
    params: Result<Query<EventListParams>, QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            format!("Invalid query string: {e}"),
        )
    })?;
    let q = EventListQuery {
        event_type: p.event_type,
        created_from: p.created_from,
        created_to: p.created_to,
        limit: p.limit,
        cursor: p.cursor,
    };
    let page = st.service.list_events(caller.org_id, &q).await?;
    Ok(Json(EventList::new(page)))
}
