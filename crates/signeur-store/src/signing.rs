//! What the signing pages read and write: a signer by link token, the access-code gate's
//! counters, and the signer's transitions (opened, signed, declined, their turn).

use chrono::{DateTime, Utc};
use signeur_core::VerificationMethod;
use uuid::Uuid;

use crate::requests::SignerRow;
use crate::{Db, Result, Tx, on_db, on_db_write, on_tx};

/// The access-code gate of one signer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeGate {
    pub access_code_hash: Option<String>,
    pub access_code_rotated_at: Option<DateTime<Utc>>,
    pub access_code_attempts: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

/// What the signer entered on the signing page.
#[derive(Debug, Clone)]
pub struct Signature<'a> {
    pub name_as_signed: &'a str,
    pub representing_as_signed: Option<&'a str>,
    pub representing_role: Option<&'a str>,
    pub representing_entity_id: Option<&'a str>,
    pub ip_address: &'a str,
    pub user_agent: Option<&'a str>,
    pub verification_method: VerificationMethod,
    pub signature_image_blob: Option<&'a str>,
    pub signed_at: DateTime<Utc>,
}

impl Db {
    /// The signer whose link token hashes to `token_hash`; a row not yet sealed (written
    /// before migration 0010) is found by the plain `token`.
    pub async fn signer_by_token(
        &self,
        token_hash: &str,
        token: &str,
    ) -> Result<Option<SignerRow>> {
        let sql = concat!(
            "SELECT ",
            signer_columns!(),
            " FROM signers WHERE access_token_hash = $1 \
             OR (access_token_hash IS NULL AND access_token = $2)"
        );
        Ok(
            on_db!(self, p => sqlx::query_as(sql).bind(token_hash).bind(token).fetch_optional(p).await)?,
        )
    }

    /// Up to `limit` signers whose link token is still stored in plain text (written before
    /// migration 0010): (request, signer, token).
    pub async fn signers_with_plain_tokens(
        &self,
        limit: i64,
    ) -> Result<Vec<(Uuid, Uuid, Uuid, String)>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT org_id, request_id, id, access_token FROM signers \
             WHERE access_token_hash IS NULL ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    pub async fn signer_by_id(&self, id: Uuid) -> Result<Option<SignerRow>> {
        let sql = concat!("SELECT ", signer_columns!(), " FROM signers WHERE id = $1");
        Ok(on_db!(self, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }

    pub async fn code_gate(&self, signer_id: Uuid) -> Result<Option<CodeGate>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT access_code_hash, access_code_rotated_at, access_code_attempts, locked_until \
             FROM signers WHERE id = $1")
            .bind(signer_id)
            .fetch_optional(p)
            .await)?)
    }

    /// Takes one try at the gate before the code is checked, in one statement (so no more
    /// than `max` tries in a row are ever checked, however many arrive at once): refused
    /// (`None`) while the gate is locked at `now`; otherwise the try is counted as wrong in
    /// advance and the `max`-th locks the gate until `lock_until` (a right code undoes both
    /// with [`Db::reset_code_attempts`]). Returns the gate after the count, with the hash
    /// to check the code against.
    pub async fn reserve_code_attempt(
        &self,
        signer_id: Uuid,
        max: i64,
        now: DateTime<Utc>,
        lock_until: DateTime<Utc>,
    ) -> Result<Option<CodeGate>> {
        Ok(on_db_write!(self, p => sqlx::query_as(
            "UPDATE signers SET access_code_attempts = access_code_attempts + 1, \
             locked_until = CASE WHEN access_code_attempts + 1 >= $2 THEN $4 ELSE locked_until END \
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $3) \
             RETURNING access_code_hash, access_code_rotated_at, access_code_attempts, locked_until")
            .bind(signer_id)
            .bind(max)
            .bind(now)
            .bind(lock_until)
            .fetch_optional(p)
            .await)?)
    }

    /// A right code: the counter starts again.
    pub async fn reset_code_attempts(&self, signer_id: Uuid) -> Result<()> {
        on_db_write!(self, p => sqlx::query(
            "UPDATE signers SET access_code_attempts = 0, locked_until = NULL WHERE id = $1")
            .bind(signer_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Tx {
    /// The signers of a request, read inside the transaction (after `lock_request`).
    pub async fn signers_of_locked(&mut self, request_id: Uuid) -> Result<Vec<SignerRow>> {
        let sql = concat!(
            "SELECT ",
            signer_columns!(),
            " FROM signers WHERE request_id = $1 ORDER BY position"
        );
        Ok(on_tx!(self, c => sqlx::query_as(sql).bind(request_id).fetch_all(c).await)?)
    }

    /// First open: `sent` (or `pending` with a link in hand) becomes `opened`.
    pub async fn mark_signer_opened(
        &mut self,
        signer_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE signers SET status = 'opened', opened_at = COALESCE(opened_at, $2) \
             WHERE id = $1 AND status = 'sent'")
            .bind(signer_id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records the signature of an open signer. False when the signer was no longer open.
    pub async fn mark_signer_signed(&mut self, signer_id: Uuid, s: &Signature<'_>) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE signers SET status = 'signed', signed_at = $2, name_as_signed = $3, \
             representing_as_signed = $4, representing_role = $5, representing_entity_id = $6, \
             ip_address = $7, user_agent = $8, verification_method = $9, signature_image_blob = $10, \
             opened_at = COALESCE(opened_at, $2) \
             WHERE id = $1 AND status IN ('sent', 'opened')")
            .bind(signer_id)
            .bind(s.signed_at)
            .bind(s.name_as_signed)
            .bind(s.representing_as_signed)
            .bind(s.representing_role)
            .bind(s.representing_entity_id)
            .bind(s.ip_address)
            .bind(s.user_agent)
            .bind(s.verification_method)
            .bind(s.signature_image_blob)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records a decline of an open signer, with where it came from.
    pub async fn mark_signer_declined(
        &mut self,
        signer_id: Uuid,
        reason: &str,
        ip_address: &str,
        user_agent: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE signers SET status = 'declined', declined_at = $2, decline_reason = $3, \
             ip_address = $4, user_agent = $5, opened_at = COALESCE(opened_at, $2) \
             WHERE id = $1 AND status IN ('sent', 'opened')")
            .bind(signer_id)
            .bind(now)
            .bind(reason)
            .bind(ip_address)
            .bind(user_agent)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// A sequential request's next signer whose link was handed out (`delivery: "api"`):
    /// their turn has come, so the link now works.
    pub async fn mark_signer_link_sent(
        &mut self,
        signer_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_tx!(self, c => sqlx::query(
            "UPDATE signers SET status = 'sent', sent_at = COALESCE(sent_at, $2) \
             WHERE id = $1 AND status = 'pending'")
            .bind(signer_id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The sealed document of a request (or, until sealing exists, the original standing
    /// in for it) and its hash.
    pub async fn set_sealed_document(
        &mut self,
        request_id: Uuid,
        blob: &str,
        hash: &str,
    ) -> Result<()> {
        on_tx!(self, c => sqlx::query(
            "UPDATE signature_requests SET sealed_blob = $2, sealed_document_hash = $3 WHERE id = $1")
            .bind(request_id)
            .bind(blob)
            .bind(hash)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
