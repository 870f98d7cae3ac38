//! Organization settings, embedded signing sessions and rotated-away signing links.

use chrono::{DateTime, Utc};
use signeur_core::{FailureCode, SessionResult, SessionStatus};
use uuid::Uuid;

use crate::{Db, Result, Tx, on_db, on_db_write, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SettingsRow {
    pub org_id: Uuid,
    /// JSON array of URL prefixes.
    pub allowed_return_urls: String,
    /// JSON array of origins allowed to frame embedded signing pages.
    pub allowed_frame_origins: String,
    /// The session secret, encrypted with the master key.
    pub session_secret: Option<Vec<u8>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub request_id: Uuid,
    pub signer_id: Uuid,
    pub token_hash: String,
    pub return_url: String,
    pub state: Option<String>,
    pub status: SessionStatus,
    pub result: Option<SessionResult>,
    pub failure_code: Option<FailureCode>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub opened_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

macro_rules! session_columns {
    () => {
        "id, org_id, request_id, signer_id, token_hash, return_url, state, status, \
         result, failure_code, created_at, expires_at, opened_at, completed_at"
    };
}

impl Db {
    pub async fn get_settings(&self, org_id: Uuid) -> Result<Option<SettingsRow>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT org_id, allowed_return_urls, allowed_frame_origins, session_secret, updated_at \
             FROM org_settings WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(p)
            .await)?)
    }
}

impl Tx {
    /// Writes the allowed-URL lists given (JSON arrays; `None`: left as stored) and nothing
    /// else, in one statement of the caller's transaction (a PATCH's other fields go in the
    /// same one), so a concurrent write of another setting (the session secret, the other
    /// list) stands. Returns the settings as they are after it.
    pub async fn update_settings_lists(
        &mut self,
        org_id: Uuid,
        allowed_return_urls: Option<&str>,
        allowed_frame_origins: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SettingsRow> {
        Ok(on_tx!(self, c => sqlx::query_as(
            "INSERT INTO org_settings (org_id, allowed_return_urls, allowed_frame_origins, updated_at) \
             VALUES ($1, COALESCE($2, '[]'), COALESCE($3, '[]'), $4) ON CONFLICT (org_id) DO UPDATE SET \
             allowed_return_urls = COALESCE($2, org_settings.allowed_return_urls), \
             allowed_frame_origins = COALESCE($3, org_settings.allowed_frame_origins), \
             updated_at = $4 \
             RETURNING org_id, allowed_return_urls, allowed_frame_origins, session_secret, updated_at")
            .bind(org_id)
            .bind(allowed_return_urls)
            .bind(allowed_frame_origins)
            .bind(now)
            .fetch_one(c)
            .await)?)
    }
}

impl Db {
    /// Writes the session secret (encrypted) and nothing else.
    pub async fn set_session_secret(
        &self,
        org_id: Uuid,
        secret: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_db_write!(self, p => sqlx::query(
            "INSERT INTO org_settings (org_id, allowed_return_urls, allowed_frame_origins, session_secret, updated_at) \
             VALUES ($1, '[]', '[]', $2, $3) ON CONFLICT (org_id) DO UPDATE SET \
             session_secret = $2, updated_at = $3")
            .bind(org_id)
            .bind(secret)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn session_by_token_hash(&self, hash: &str) -> Result<Option<SessionRow>> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM signing_sessions WHERE token_hash = $1"
        );
        Ok(on_db!(self, p => sqlx::query_as(sql).bind(hash).fetch_optional(p).await)?)
    }

    pub async fn get_session(&self, org_id: Uuid, id: Uuid) -> Result<Option<SessionRow>> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM signing_sessions WHERE id = $1 AND org_id = $2"
        );
        Ok(on_db!(self, p => sqlx::query_as(sql).bind(id).bind(org_id).fetch_optional(p).await)?)
    }

    /// Sessions never completed whose token expired unused (`pending`) or whose signer
    /// session ended (`opened` before `opened_before`).
    pub async fn lapsed_sessions(
        &self,
        now: DateTime<Utc>,
        opened_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SessionRow>> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM signing_sessions WHERE \
             (status = 'pending' AND expires_at <= $1) OR (status = 'opened' AND opened_at <= $2) \
             ORDER BY expires_at LIMIT $3"
        );
        Ok(on_db!(self, p => sqlx::query_as(sql)
            .bind(now)
            .bind(opened_before)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// The signer whose rotated-away signing link has SHA-256 `hash`.
    pub async fn retired_token_signer(&self, hash: &str) -> Result<Option<Uuid>> {
        Ok(on_db!(self, p => sqlx::query_scalar(
            "SELECT signer_id FROM retired_tokens WHERE token_hash = $1")
            .bind(hash)
            .fetch_optional(p)
            .await)?)
    }

    /// A session by id alone (the signing page knows it from its MAC'd cookie).
    pub async fn get_session_any(&self, id: Uuid) -> Result<Option<SessionRow>> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM signing_sessions WHERE id = $1"
        );
        Ok(on_db!(self, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }
}

impl Tx {
    pub async fn insert_session(&mut self, s: &SessionRow) -> Result<()> {
        let sql = concat!(
            "INSERT INTO signing_sessions (",
            session_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        on_tx!(self, c => sqlx::query(sql)
            .bind(s.id)
            .bind(s.org_id)
            .bind(s.request_id)
            .bind(s.signer_id)
            .bind(&s.token_hash)
            .bind(&s.return_url)
            .bind(&s.state)
            .bind(s.status)
            .bind(s.result)
            .bind(s.failure_code)
            .bind(s.created_at)
            .bind(s.expires_at)
            .bind(s.opened_at)
            .bind(s.completed_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Uses the one-time token: `pending` → `opened`, only before it expires. False when
    /// it was used or had expired.
    pub async fn open_session(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE signing_sessions SET status = 'opened', opened_at = $2 \
             WHERE id = $1 AND status = 'pending' AND expires_at > $2")
            .bind(id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Completes a session once. False when it was completed already.
    pub async fn complete_session(
        &mut self,
        id: Uuid,
        result: SessionResult,
        failure_code: Option<FailureCode>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE signing_sessions SET status = 'completed', result = $2, failure_code = $3, completed_at = $4 \
             WHERE id = $1 AND status IN ('pending', 'opened')")
            .bind(id)
            .bind(result)
            .bind(failure_code)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Seals a plain link token written before migration 0010 (unless another node did).
    pub async fn seal_plain_token(
        &mut self,
        signer_id: Uuid,
        plain: &str,
        sealed: &str,
        hash: &str,
    ) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE signers SET access_token = $3, access_token_hash = $4 \
             WHERE id = $1 AND access_token = $2 AND access_token_hash IS NULL")
            .bind(signer_id)
            .bind(plain)
            .bind(sealed)
            .bind(hash)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// A new signing link for the signer (its token sealed, and its hash); the old one is
    /// remembered as rotated away.
    pub async fn rotate_access_token(
        &mut self,
        signer_id: Uuid,
        old_hash: &str,
        new_sealed: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO retired_tokens (token_hash, signer_id, retired_at) VALUES ($1, $2, $3)")
            .bind(old_hash)
            .bind(signer_id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        on_tx!(self, c => sqlx::query(
            "UPDATE signers SET access_token = $2, access_token_hash = $3 WHERE id = $1")
            .bind(signer_id)
            .bind(new_sealed)
            .bind(new_hash)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
