//! Events on a request's hash chain. Building an event moves the chain head kept on the
//! request row; the caller writes the events and the row in one transaction, after locking
//! the row (or creating it), so concurrent writers can never fork the chain.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use signeur_core::{EventType, event, time};

use crate::{EventRow, RequestRow};

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
