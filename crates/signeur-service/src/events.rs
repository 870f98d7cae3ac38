//! Appending to a request's hash chain, inside the caller's transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use signeur_core::{EventType, event, time};
use signeur_store::{EventRow, Tx};

use crate::Result;

/// Appends one event. The caller has locked the request row ([`Tx::lock_request`]), so
/// the head read here is still the head when the event is written.
pub async fn append(
    tx: &mut Tx,
    org_id: Uuid,
    request_id: Uuid,
    signer_id: Option<Uuid>,
    event_type: EventType,
    data: Value,
    now: DateTime<Utc>,
) -> Result<EventRow> {
    let (seq, prev_hash) = tx.chain_head(request_id).await?;
    let id = format!("evt_{}", Uuid::new_v4());
    let created_at = time::format(now);
    let hash = event::chain_hash(
        &id,
        event_type.as_str(),
        &created_at,
        &data,
        prev_hash.as_deref(),
    );
    let row = EventRow {
        id,
        org_id,
        request_id: Some(request_id),
        signer_id,
        seq: seq + 1,
        event_type: event_type.as_str().to_string(),
        created_at: now,
        data: data.to_string(),
        prev_hash,
        hash,
    };
    tx.append_event(&row).await?;
    Ok(row)
}
