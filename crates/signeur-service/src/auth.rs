//! Organizations and API keys. A key is `sgn_live_` + 256 random bits (base62-free
//! base64url); only its SHA-256 is stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use signeur_store::{ApiKeyRow, OrgRow};

use crate::model::{ApiKey, Organization};

use crate::{Result, Service, ServiceError};

pub const KEY_PREFIX: &str = "sgn_live_";

/// A freshly created key: the only time its plaintext exists.
#[derive(Debug, Clone)]
pub struct ApiKeyCreated {
    pub id: Uuid,
    pub org_id: Uuid,
    pub key: String,
}

/// Who is calling.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    pub org_id: Uuid,
    pub api_key_id: Uuid,
    /// The organization's own API quota, if the operator gave it one.
    pub rate_limit: Option<crate::ApiQuota>,
}

/// How long a successful key lookup is trusted without asking the database again. A key
/// revoked through this process is forgotten at once; one revoked elsewhere (the CLI, another
/// node) stops working within this time.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Entries kept at most; the cache is emptied when it fills (a flood of distinct valid keys
/// only costs the database lookups the cache would have saved).
const KEY_CACHE_CAPACITY: usize = 10_000;

/// Recently verified keys by hash, so a busy integrator's requests do not each pay a
/// database round trip for authentication.
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<KeyDigest, CachedKey>>,
}

#[derive(Clone, Copy)]
struct CachedKey {
    who: Authenticated,
    checked: Instant,
    last_used_at: Option<DateTime<Utc>>,
}

impl KeyCache {
    fn get(&self, digest: &KeyDigest) -> Option<CachedKey> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(digest)
            .filter(|c| c.checked.elapsed() < KEY_CACHE_TTL)
            .copied()
    }

    fn put(&self, digest: KeyDigest, key: CachedKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= KEY_CACHE_CAPACITY && !entries.contains_key(&digest) {
            entries.clear();
        }
        entries.insert(digest, key);
    }

    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// SHA-256 of a key: the cache's index; its hex form is what the database stores.
type KeyDigest = [u8; 32];

fn key_digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

fn hash_key(key: &str) -> String {
    hex::encode(key_digest(key))
}

fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Service {
    pub async fn create_org(&self, name: &str) -> Result<Organization> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ServiceError::invalid(
                "invalid_field",
                "Field 'name' must be 1 to 200 characters.",
            ));
        }
        let org = OrgRow {
            id: Uuid::new_v4(),
            name: name.to_string(),
            created_at: self.clock.now(),
        };
        let mut tx = self.db.begin().await?;
        tx.insert_org(&org).await?;
        tx.commit().await?;
        Ok(org.into())
    }

    /// On an empty database: the "Default" organization and its first key. None when any
    /// organization exists already.
    pub async fn bootstrap(&self) -> Result<Option<(Organization, ApiKeyCreated)>> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        tx.lock_for_bootstrap().await?;
        if tx.count_orgs().await? > 0 {
            return Ok(None);
        }
        let org = OrgRow {
            id: Uuid::new_v4(),
            name: "Default".into(),
            created_at: now,
        };
        tx.insert_org(&org).await?;
        let key = insert_key(&mut tx, org.id, now).await?;
        tx.commit().await?;
        Ok(Some((org.into(), key)))
    }

    pub async fn create_api_key(&self, org_id: Uuid) -> Result<ApiKeyCreated> {
        if self.db.get_org(org_id).await?.is_none() {
            return Err(ServiceError::NotFound("Organization"));
        }
        let mut tx = self.db.begin().await?;
        let key = insert_key(&mut tx, org_id, self.clock.now()).await?;
        tx.commit().await?;
        Ok(key)
    }

    pub async fn list_api_keys(&self, org_id: Uuid) -> Result<Vec<ApiKey>> {
        if self.db.get_org(org_id).await?.is_none() {
            return Err(ServiceError::NotFound("Organization"));
        }
        Ok(crate::model::all(self.db.list_api_keys(org_id).await?))
    }

    /// The key stops working at once in this process, and within [`KEY_CACHE_TTL`] on every
    /// other node.
    pub async fn revoke_api_key(&self, key_id: Uuid) -> Result<()> {
        if self.db.revoke_api_key(key_id, self.clock.now()).await? {
            self.key_cache.clear();
            Ok(())
        } else {
            Err(ServiceError::NotFound("Active API key"))
        }
    }

    /// Resolves `Authorization: Bearer …` to an organization.
    pub async fn authenticate(&self, bearer: &str) -> Result<Authenticated> {
        if !bearer.starts_with(KEY_PREFIX) || bearer.len() > 200 {
            return Err(ServiceError::Unauthorized);
        }
        let digest = key_digest(bearer);
        let now = self.clock.now();
        if let Some(cached) = self.key_cache.get(&digest)
            && cached
                .last_used_at
                .is_some_and(|t| t >= now - Duration::seconds(60))
        {
            return Ok(cached.who);
        }
        let hash = hex::encode(digest);
        let found = self
            .db
            .api_key_by_hash(&hash)
            .await?
            .ok_or(ServiceError::Unauthorized)?;
        let rate_limit =
            crate::ApiQuota::from_row(found.rate_limit_per_sec, found.rate_limit_burst);
        let row = found.key;
        // The lookup is by hash already; compare again in constant time so no code path
        // depends on how much of a guess matched.
        if !bool::from(row.key_hash.as_bytes().ct_eq(hash.as_bytes())) || row.revoked_at.is_some() {
            return Err(ServiceError::Unauthorized);
        }
        // Write last_used_at at most once a minute per key, not on every request.
        let mut last_used_at = row.last_used_at;
        if last_used_at.is_none_or(|t| t < now - Duration::seconds(60)) {
            self.db
                .touch_api_key(row.id, now, now - Duration::seconds(60))
                .await?;
            last_used_at = Some(now);
        }
        let who = Authenticated {
            org_id: row.org_id,
            api_key_id: row.id,
            rate_limit,
        };
        self.key_cache.put(
            digest,
            CachedKey {
                who,
                checked: Instant::now(),
                last_used_at,
            },
        );
        Ok(who)
    }
}

async fn insert_key(
    tx: &mut signeur_store::Tx,
    org_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ApiKeyCreated> {
    let key = new_key();
    let row = ApiKeyRow {
        id: Uuid::new_v4(),
        org_id,
        prefix: key[..KEY_PREFIX.len() + 6].to_string(),
        key_hash: hash_key(&key),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    tx.insert_api_key(&row).await?;
    Ok(ApiKeyCreated {
        id: row.id,
        org_id,
        key,
    })
}
