//! `Idempotency-Key` on every POST. The key is reserved by a database row before the
//! request runs, so duplicates are caught across processes and nodes; "the same request"
//! is the same method, path and SHA-256 of the raw body; only 2xx responses are kept
//! (24 h, encrypted with the master key since they may carry signing links).

use chrono::Duration;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use signeur_store::Reservation;

use crate::{Result, Service, ServiceError};

pub const MAX_KEY_LEN: usize = 255;
/// How long replays are served.
pub const RETENTION_HOURS: i64 = 24;
/// How long an in-flight reservation blocks duplicates if its process dies mid-request.
const IN_FLIGHT_LEASE_SECS: i64 = 120;
const PURPOSE: &str = "idempotent-response";

/// A stored response, replayed byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// What must still hold for a replay; when it no longer does, the key starts over and
    /// the request runs again. Set by the use case that made the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_only_while: Option<ReplayCondition>,
}

/// A condition a use case puts on the replay of its response (the handler attaches it to
/// the response as an extension; the idempotency layer stores it with the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplayCondition {
    /// The signing session created is still usable (pending and not expired): the wire
    /// decisions say a session key whose session is no longer valid creates a new session.
    SigningSessionUsable { id: Uuid },
    /// The webhook endpoint created still exists: once it was deleted, the key creates a new
    /// one (with a new secret) rather than replaying an id that answers 404.
    WebhookEndpointExists { id: Uuid },
}

/// The reservation a request holds on its key: finishing or releasing the key takes it, so
/// a request whose reservation lapsed and was taken over cannot touch its successor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationToken(String);

impl ReservationToken {
    fn new() -> Self {
        ReservationToken(Uuid::new_v4().simple().to_string())
    }
}

#[derive(Debug)]
pub enum IdempotencyOutcome {
    /// Run the request, then call `finish_idempotent` with this reservation.
    Proceed(ReservationToken),
    /// Answer with this instead of running the request.
    Replay(StoredResponse),
}

/// `Idempotency-Key` values: 1–255 visible ASCII characters; surrounding double quotes
/// (as some HTTP clients send) are removed.
pub fn normalize_key(raw: &str) -> Result<String> {
    let k = raw.trim();
    let k = k
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(k);
    if k.is_empty()
        || k.len() > MAX_KEY_LEN
        || !k.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(ServiceError::invalid(
            "invalid_idempotency_key",
            "Header 'Idempotency-Key' must be 1 to 255 printable ASCII characters.",
        ));
    }
    Ok(k.to_string())
}

impl Service {
    pub async fn begin_idempotent(
        &self,
        org_id: Uuid,
        key: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<IdempotencyOutcome> {
        let now = self.clock.now();
        let body_hash = hex::encode(Sha256::digest(body));
        let token = ReservationToken::new();
        let reservation = self
            .db
            .reserve_idempotency_key(
                org_id,
                key,
                method,
                path,
                &body_hash,
                now,
                now + Duration::seconds(IN_FLIGHT_LEASE_SECS),
                now - Duration::hours(RETENTION_HOURS),
                &token.0,
            )
            .await?;
        let existing = match reservation {
            Reservation::Reserved => return Ok(IdempotencyOutcome::Proceed(token)),
            Reservation::Existing(r) => r,
        };
        if existing.method != method || existing.path != path || existing.body_hash != body_hash {
            return Err(ServiceError::IdempotencyKeyConflict);
        }
        let Some(stored) = existing.response_body else {
            return Err(ServiceError::IdempotencyKeyInUse);
        };
        let plain = self.keys.decrypt(PURPOSE, &stored).ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!(
                "stored idempotent response does not decrypt with the master key"
            ))
        })?;
        let response: StoredResponse =
            serde_json::from_slice(&plain).map_err(|e| ServiceError::Internal(e.into()))?;
        if let Some(condition) = response.replay_only_while
            && !self.replay_condition_holds(org_id, condition).await?
        {
            self.db.forget_idempotency_key(org_id, key).await?;
            let again = self
                .db
                .reserve_idempotency_key(
                    org_id,
                    key,
                    method,
                    path,
                    &body_hash,
                    now,
                    now + Duration::seconds(IN_FLIGHT_LEASE_SECS),
                    now - Duration::hours(RETENTION_HOURS),
                    &token.0,
                )
                .await?;
            return match again {
                Reservation::Reserved => Ok(IdempotencyOutcome::Proceed(token)),
                Reservation::Existing(_) => Err(ServiceError::IdempotencyKeyInUse),
            };
        }
        Ok(IdempotencyOutcome::Replay(response))
    }

    async fn replay_condition_holds(&self, org_id: Uuid, c: ReplayCondition) -> Result<bool> {
        match c {
            ReplayCondition::SigningSessionUsable { id } => {
                self.session_still_valid(org_id, id).await
            }
            ReplayCondition::WebhookEndpointExists { id } => {
                self.webhook_endpoint_exists(org_id, id).await
            }
        }
    }

    /// Keeps a 2xx response for replay; anything else frees the key for a retry. Either only
    /// while `reservation` still holds the key: once taken over (its lease ran out while the
    /// request was still running), the key is its successor's and stays as it is.
    pub async fn finish_idempotent(
        &self,
        org_id: Uuid,
        key: &str,
        reservation: &ReservationToken,
        response: Option<&StoredResponse>,
    ) -> Result<()> {
        let held = match response {
            Some(r) if (200..300).contains(&r.status) => {
                let plain = serde_json::to_vec(r).map_err(|e| ServiceError::Internal(e.into()))?;
                let sealed = self.keys.encrypt(PURPOSE, &plain);
                self.db
                    .complete_idempotency_key(org_id, key, &reservation.0, r.status, &sealed)
                    .await?
            }
            _ => {
                self.db
                    .release_idempotency_key(org_id, key, &reservation.0)
                    .await?
            }
        };
        if !held {
            tracing::warn!(
                key,
                "the idempotency reservation lapsed and was taken over; this response is not kept"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_unquoted_and_bounded() {
        assert_eq!(normalize_key("abc").unwrap(), "abc");
        assert_eq!(normalize_key("\"0d8a2c41-7e3f\"").unwrap(), "0d8a2c41-7e3f");
        assert_eq!(normalize_key(&"k".repeat(255)).unwrap().len(), 255);
        assert!(normalize_key(&"k".repeat(256)).is_err());
        assert!(normalize_key("").is_err());
        assert!(normalize_key("\"\"").is_err());
        assert!(normalize_key("bad\u{7f}").is_err());
    }
}
