//! Idempotency keys: one row per (organization, key), reserved before the handler runs, so
//! a duplicate is detected by the database across processes and nodes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, on_db_write};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotencyRecord {
    pub method: String,
    pub path: String,
    pub body_hash: String,
    pub locked_until: Option<DateTime<Utc>>,
    pub status_code: Option<i64>,
    pub response_body: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

/// The outcome of trying to reserve a key.
#[derive(Debug)]
pub enum Reservation {
    /// The key is ours; run the request.
    Reserved,
    /// The key exists (completed, in flight, or for another request).
    Existing(IdempotencyRecord),
}

impl Db {
    /// Reserves the key until `locked_until` under `token` (which completing or releasing it
    /// must name). A row older than `expired_before` (24 h) or an in-flight row whose lock
    /// ran out (its process died, or it is still running past its lease) is taken over: the
    /// new token fences the old holder out.
    #[allow(clippy::too_many_arguments)]
    pub async fn reserve_idempotency_key(
        &self,
        org_id: Uuid,
        key: &str,
        method: &str,
        path: &str,
        body_hash: &str,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        expired_before: DateTime<Utc>,
        token: &str,
    ) -> Result<Reservation> {
        let inserted = on_db_write!(self, p => sqlx::query(
            "INSERT INTO idempotency_keys (org_id, key, method, path, body_hash, locked_until, created_at, reservation_token) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (org_id, key) DO NOTHING")
            .bind(org_id)
            .bind(key)
            .bind(method)
            .bind(path)
            .bind(body_hash)
            .bind(locked_until)
            .bind(now)
            .bind(token)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if inserted == 1 {
            return Ok(Reservation::Reserved);
        }
        let taken_over = on_db_write!(self, p => sqlx::query(
            "UPDATE idempotency_keys SET method = $3, path = $4, body_hash = $5, locked_until = $6, \
             status_code = NULL, response_body = NULL, created_at = $7, reservation_token = $9 \
             WHERE org_id = $1 AND key = $2 AND (created_at < $8 OR (status_code IS NULL AND locked_until <= $7))")
            .bind(org_id)
            .bind(key)
            .bind(method)
            .bind(path)
            .bind(body_hash)
            .bind(locked_until)
            .bind(now)
            .bind(expired_before)
            .bind(token)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if taken_over == 1 {
            return Ok(Reservation::Reserved);
        }
        let existing: Option<IdempotencyRecord> = on_db_write!(self, p => sqlx::query_as(
            "SELECT method, path, body_hash, locked_until, status_code, response_body, created_at \
             FROM idempotency_keys WHERE org_id = $1 AND key = $2")
            .bind(org_id)
            .bind(key)
            .fetch_optional(p)
            .await)?;
        match existing {
            Some(r) => Ok(Reservation::Existing(r)),
            // Purged between our statements: the key is free again.
            None => {
                Box::pin(self.reserve_idempotency_key(
                    org_id,
                    key,
                    method,
                    path,
                    body_hash,
                    now,
                    locked_until,
                    expired_before,
                    token,
                ))
                .await
            }
        }
    }

    /// Stores the 2xx response for replay, if the reservation `token` still holds the key.
    /// False when it was taken over meanwhile (the response is not stored).
    pub async fn complete_idempotency_key(
        &self,
        org_id: Uuid,
        key: &str,
        token: &str,
        status: u16,
        body: &[u8],
    ) -> Result<bool> {
        let n = on_db_write!(self, p => sqlx::query(
            "UPDATE idempotency_keys SET status_code = $4, response_body = $5, locked_until = NULL \
             WHERE org_id = $1 AND key = $2 AND reservation_token = $3 AND status_code IS NULL")
            .bind(org_id)
            .bind(key)
            .bind(token)
            .bind(i64::from(status))
            .bind(body)
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Forgets a reservation whose request did not succeed, so the client may retry; only
    /// while `token` still holds it. False when it was taken over meanwhile.
    pub async fn release_idempotency_key(
        &self,
        org_id: Uuid,
        key: &str,
        token: &str,
    ) -> Result<bool> {
        let n = on_db_write!(self, p => sqlx::query(
            "DELETE FROM idempotency_keys WHERE org_id = $1 AND key = $2 AND reservation_token = $3 \
             AND status_code IS NULL")
            .bind(org_id)
            .bind(key)
            .bind(token)
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Forgets a completed key, so it can be reserved again (a signing-session key whose
    /// session can no longer be used).
    pub async fn forget_idempotency_key(&self, org_id: Uuid, key: &str) -> Result<()> {
        on_db_write!(self, p => sqlx::query("DELETE FROM idempotency_keys WHERE org_id = $1 AND key = $2")
            .bind(org_id)
            .bind(key)
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Deletes completed keys created before `before`; returns how many.
    pub async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64> {
        let n = on_db_write!(self, p => sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at < $1 AND (status_code IS NOT NULL OR locked_until < $1)")
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n)
    }
}
