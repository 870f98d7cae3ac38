//! Events on a request's hash chain. Building an event moves the chain head kept on the
//! request row; the caller writes the events and the row in one transaction, after locking
//! the row (or creating it), so concurrent writers can never fork the chain.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use signeur_core::{EventType, event, time};

use crate::{Db, EventRow, RequestRow, Result, on_db};

/// Filters and position of one page of [`Db::list_events`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types (empty: every type).
    pub types: Vec<EventType>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Keyset position: the last event of the previous page.
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

impl Db {
    /// One page of the organization's events (of all its requests), newest first, keyset on
    /// (created_at, id) so events committed while a reader pages never shift a page: they are
    /// newer than its cursor. Served by the index `events_org_created (org_id, created_at, id)`.
    pub async fn list_events(&self, org_id: Uuid, f: &EventFilter) -> Result<Vec<EventRow>> {
        // The type list is one placeholder per type (at most one per `EventType`): the same
        // SQL text on both databases, where a bound array would not be.
        let rows = on_db!(self, p => {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT id, org_id, request_id, signer_id, seq, type, created_at, data, prev_hash, hash \
                 FROM events WHERE org_id = ",
            );
            q.push_bind(org_id);
            if !f.types.is_empty() {
                q.push(" AND type IN (");
                let mut list = q.separated(", ");
                for t in &f.types {
                    list.push_bind(*t);
                }
                q.push(")");
            }
            if let Some(t) = f.created_from {
                q.push(" AND created_at >= ").push_bind(t);
            }
            if let Some(t) = f.created_to {
                q.push(" AND created_at < ").push_bind(t);
            }
            // A row value, not `created_at < $t OR (created_at = $t AND id < $id)`: with it
            // both databases seek the index to the cursor (SQLite's plan reads
            // `(created_at,id)<(?,?)`), where the OR form scans every newer event first.
            if let Some((t, id)) = &f.after {
                q.push(" AND (created_at, id) < (")
                    .push_bind(*t)
                    .push(", ")
                    .push_bind(id.clone())
                    .push(")");
            }
            q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
                .push_bind(f.limit);
            q.build_query_as().fetch_all(p).await
        })?;
        Ok(rows)
    }
}

/// The next event of `request`'s chain; `request.event_seq`/`last_event_hash` move to it.
pub fn append_event(
    request: &mut RequestRow,
    signer_id: Option<Uuid>,
    event_type: EventType,
    data: Value,
    now: DateTime<Utc>,
) -> EventRow {
    let id = format!("evt_{}", Uuid::new_v4());
    let prev_hash = request.last_event_hash.take();
    let hash = event::chain_hash(
        &id,
        event_type.as_str(),
        &time::format(now),
        &data,
        prev_hash.as_deref(),
    );
    request.event_seq += 1;
    request.last_event_hash = Some(hash.clone());
    EventRow {
        id,
        org_id: request.org_id,
        request_id: Some(request.id),
        signer_id,
        seq: request.event_seq,
        event_type,
        created_at: now,
        data: data.to_string(),
        prev_hash,
        hash,
    }
}
