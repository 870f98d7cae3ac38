//! Organizations and their API keys.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, Tx, on_db, on_db_write, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub prefix: String,
    pub key_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An API key as authentication reads it: the key and its organization's rate-limit
/// override (both NULL: none).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyLookupRow {
    #[sqlx(flatten)]
    pub key: ApiKeyRow,
    pub rate_limit_per_sec: Option<i64>,
    pub rate_limit_burst: Option<i64>,
}

impl Tx {
    pub async fn insert_org(&mut self, org: &OrgRow) -> Result<()> {
        on_tx!(self, c => sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Serializes first-start bootstraps of several nodes: PostgreSQL takes a transaction
    /// advisory lock; SQLite's write transaction already excludes other writers.
    pub async fn lock_for_bootstrap(&mut self) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_advisory_xact_lock(7349021)")
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    pub async fn count_orgs(&mut self) -> Result<i64> {
        let n: i64 = on_tx!(self, c => sqlx::query_scalar("SELECT COUNT(*) FROM organizations").fetch_one(c).await)?;
        Ok(n)
    }

    pub async fn insert_api_key(&mut self, k: &ApiKeyRow) -> Result<()> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO api_keys (id, org_id, prefix, key_hash, created_at, last_used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(k.id)
            .bind(k.org_id)
            .bind(&k.prefix)
            .bind(&k.key_hash)
            .bind(k.created_at)
            .bind(k.last_used_at)
            .bind(k.revoked_at)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Db {
    pub async fn get_org(&self, id: Uuid) -> Result<Option<OrgRow>> {
        Ok(
            on_db!(self, p => sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)?,
        )
    }

    /// The key with this SHA-256, revoked or not, with its organization's rate-limit
    /// override (read here because this lookup runs for every authenticated request anyway).
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<KeyLookupRow>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT k.id, k.org_id, k.prefix, k.key_hash, k.created_at, k.last_used_at, k.revoked_at, \
                    o.rate_limit_per_sec, o.rate_limit_burst \
             FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.key_hash = $1")
            .bind(key_hash)
            .fetch_optional(p)
            .await)?)
    }

    /// Sets (`Some((per_sec, burst))`) or clears (`None`: the server's default) an
    /// organization's API rate limit; false when there is no such organization.
    pub async fn set_org_rate_limit(
        &self,
        org_id: Uuid,
        limit: Option<(i64, i64)>,
    ) -> Result<bool> {
        let (per_sec, burst) = limit.unzip();
        let n = on_db_write!(self, p => sqlx::query(
            "UPDATE organizations SET rate_limit_per_sec = $2, rate_limit_burst = $3 WHERE id = $1")
            .bind(org_id)
            .bind(per_sec)
            .bind(burst)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// An organization's rate-limit override, if it has one (`None` inside: the default).
    pub async fn org_rate_limit(&self, org_id: Uuid) -> Result<Option<Option<(i64, i64)>>> {
        let row: Option<(Option<i64>, Option<i64>)> = on_db!(self, p => sqlx::query_as(
            "SELECT rate_limit_per_sec, rate_limit_burst FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(per_sec, burst)| per_sec.zip(burst)))
    }

    pub async fn list_api_keys(&self, org_id: Uuid) -> Result<Vec<ApiKeyRow>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT id, org_id, prefix, key_hash, created_at, last_used_at, revoked_at FROM api_keys \
             WHERE org_id = $1 ORDER BY created_at, id")
            .bind(org_id)
            .fetch_all(p)
            .await)?)
    }

    /// Marks a key used; cheap when called often, since it only writes when the stored
    /// value is older than `stale_before`.
    pub async fn touch_api_key(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<()> {
        on_db_write!(self, p => sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)")
            .bind(id)
            .bind(now)
            .bind(stale_before)
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Revokes a key; false when there is no such key or it was already revoked.
    pub async fn revoke_api_key(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let done = on_db_write!(self, p => sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }
}

/// An organization's generated sealing identity; the private key is encrypted with the
/// master key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealKeyRow {
    pub org_id: Uuid,
    pub certificate_der: Vec<u8>,
    pub private_key_enc: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

impl Db {
    pub async fn get_seal_key(&self, org_id: Uuid) -> Result<Option<SealKeyRow>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT org_id, certificate_der, private_key_enc, created_at FROM seal_keys WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(p)
            .await)?)
    }

    /// Stores the identity unless another node stored one first (then that one stays:
    /// every node seals with the same key). Returns whether this one was stored.
    pub async fn insert_seal_key(&self, k: &SealKeyRow) -> Result<bool> {
        let n = on_db_write!(self, p => sqlx::query(
            "INSERT INTO seal_keys (org_id, certificate_der, private_key_enc, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (org_id) DO NOTHING")
            .bind(k.org_id)
            .bind(&k.certificate_der)
            .bind(&k.private_key_enc)
            .bind(k.created_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
