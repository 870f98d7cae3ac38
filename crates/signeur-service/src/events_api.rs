//! `GET /api/v1/events`: every event of the organization, newest first, for reconciling after
//! an outage. An entry is what a webhook delivery carries (`id`, `type`, `created_at`, `data`
//! as stored) plus the request it belongs to. Filters, limit and cursor read exactly as the
//! signature list's (`paging`, `cursor`); the keyset is (created_at, id), so events committed
//! while a client pages are newer than its cursor and never shift a page.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use signeur_core::{EventType, time};
use signeur_store::{EventFilter, EventRow};

use crate::{Result, Service, ServiceError, cursor, paging};

/// List parameters as they arrived in the query string.
#[derive(Debug, Clone, Default)]
pub struct EventListQuery {
    /// One event type or a comma-separated list.
    pub event_type: Option<String>,
    pub created_from: Option<String>,
    pub created_to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// One event of the organization, as a webhook delivery carries it.
#[derive(Debug, Clone)]
pub struct OrgEvent {
    /// `evt_…`
    pub id: String,
    pub event_type: EventType,
    pub created_at: DateTime<Utc>,
    /// The payload as stored (canonical JSON text).
    pub data: String,
    pub request_id: Option<Uuid>,
}

impl From<EventRow> for OrgEvent {
    fn from(e: EventRow) -> Self {
        OrgEvent {
            id: e.id,
            event_type: e.event_type,
            created_at: e.created_at,
            data: e.data,
            request_id: e.request_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EventPage {
    pub rows: Vec<OrgEvent>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// The `type` filter: one type or a comma-separated list, in a canonical order (so `a,b` and
/// `b,a` are the same filter and accept each other's cursors).
fn event_types(v: Option<&str>) -> Result<Vec<EventType>> {
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut types = s
        .split(',')
        .map(|t| EventType::parse(t.trim()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            paging::invalid_filter(
                "type",
                &format!(
                    "must be an event type or a comma-separated list of them: {}",
                    known.join(", ")
                ),
            )
        })?;
    types.sort_by_key(|t| t.as_str());
    types.dedup();
    Ok(types)
}

/// An event id as a cursor carries it: the UUID after `evt_` (every stored id has this form).
fn cursor_id(event_id: &str) -> Result<Uuid> {
    event_id
        .strip_prefix("evt_")
        .and_then(|u| Uuid::parse_str(u).ok())
        .ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("event id {event_id:?} is not evt_<uuid>"))
        })
}

impl Service {
    /// One page of the organization's events, newest first.
    pub async fn list_events(&self, org_id: Uuid, q: &EventListQuery) -> Result<EventPage> {
        let types = event_types(q.event_type.as_deref())?;
        let created_from = paging::bound("created_from", q.created_from.as_deref())?;
        let created_to = paging::bound("created_to", q.created_to.as_deref())?;
        let limit = paging::limit(q.limit.as_deref())?;
        // What a cursor is bound to: this list and its filters exactly as interpreted.
        let fingerprint = format!(
            "events?type={}&from={}&to={}",
            types
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(","),
            created_from.map(time::format).unwrap_or_default(),
            created_to.map(time::format).unwrap_or_default()
        );
        let after = match q.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => {
                let (at, id) = cursor::decode(&self.keys, org_id, &fingerprint, c)
                    .ok_or_else(paging::invalid_cursor)?;
                Some((at, format!("evt_{id}")))
            }
        };
        let filter = EventFilter {
            types,
            created_from,
            created_to,
            after,
            limit: limit + 1,
        };
        let mut rows = self.db.list_events(org_id, &filter).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if has_more => Some(cursor::encode(
                &self.keys,
                org_id,
                &fingerprint,
                last.created_at,
                cursor_id(&last.id)?,
            )),
            _ => None,
        };
        Ok(EventPage {
            rows: rows.into_iter().map(OrgEvent::from).collect(),
            has_more,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filter_is_canonical_and_strict() {
        let a = event_types(Some(
            "signer.signed,signature_request.created,signer.signed",
        ))
        .ok();
        let b = event_types(Some("signature_request.created, signer.signed")).ok();
        assert_eq!(a, b);
        assert_eq!(a.map(|v| v.len()), Some(2));
        assert!(event_types(Some("signer.signed,")).is_err());
        assert!(event_types(Some("signer.nope")).is_err());
        assert_eq!(event_types(Some("")).ok(), Some(Vec::new()));
    }
}
