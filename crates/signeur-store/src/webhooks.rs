//! Webhook endpoints: where an organization's events are delivered.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, on_db, on_db_write};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookEndpointRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub url: String,
    /// JSON array of event types; empty: every type.
    pub event_types: String,
    pub description: Option<String>,
    /// Encrypted with the master key (the service seals and opens it).
    pub secret: Vec<u8>,
    /// The secret before the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// Since when deliveries have failed without a success.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! endpoint_columns {
    () => {
        "id, org_id, url, event_types, description, secret, previous_secret, previous_secret_until, \
         disabled_at, disabled_reason, failing_since, created_at, updated_at"
    };
}

/// What a `PATCH` names; `None`: unchanged.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub event_types: Option<String>,
    /// `Some(None)`: cleared.
    pub description: Option<Option<String>>,
    /// `Some(true)`: disabled now (unless it already was); `Some(false)`: enabled, its
    /// failure clock and reason cleared.
    pub disabled: Option<bool>,
}

impl Db {
    pub async fn insert_webhook_endpoint(&self, e: &WebhookEndpointRow) -> Result<()> {
        on_db_write!(self, p => sqlx::query(concat!(
            "INSERT INTO webhook_endpoints (", endpoint_columns!(), ") \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"))
            .bind(e.id)
            .bind(e.org_id)
            .bind(&e.url)
            .bind(&e.event_types)
            .bind(&e.description)
            .bind(&e.secret)
            .bind(&e.previous_secret)
            .bind(e.previous_secret_until)
            .bind(e.disabled_at)
            .bind(&e.disabled_reason)
            .bind(e.failing_since)
            .bind(e.created_at)
            .bind(e.updated_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The organization's endpoints, oldest first.
    pub async fn webhook_endpoints(&self, org_id: Uuid) -> Result<Vec<WebhookEndpointRow>> {
        Ok(on_db!(self, p => sqlx::query_as(concat!(
            "SELECT ", endpoint_columns!(), " FROM webhook_endpoints WHERE org_id = $1 \
             ORDER BY created_at, id"))
            .bind(org_id)
            .fetch_all(p)
            .await)?)
    }

    pub async fn webhook_endpoint(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<Option<WebhookEndpointRow>> {
        Ok(on_db!(self, p => sqlx::query_as(concat!(
            "SELECT ", endpoint_columns!(), " FROM webhook_endpoints WHERE id = $1 AND org_id = $2"))
            .bind(id)
            .bind(org_id)
            .fetch_optional(p)
            .await)?)
    }

    /// Changes only the columns `change` names, in one statement (a concurrent change of
    /// other fields is never undone). None: no such endpoint in this organization.
    pub async fn update_webhook_endpoint(
        &self,
        org_id: Uuid,
        id: Uuid,
        change: &EndpointChange,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpointRow>> {
        let sql = concat!(
            "UPDATE webhook_endpoints SET \
               url = COALESCE($3, url), \
               event_types = COALESCE($4, event_types), \
               description = CASE WHEN $5 THEN $6 ELSE description END, \
               disabled_at = CASE WHEN $7 THEN COALESCE(disabled_at, $9) \
                                  WHEN $8 THEN NULL ELSE disabled_at END, \
               disabled_reason = CASE WHEN $8 THEN NULL ELSE disabled_reason END, \
               failing_since = CASE WHEN $8 THEN NULL ELSE failing_since END, \
               updated_at = $9 \
             WHERE id = $1 AND org_id = $2 RETURNING ",
            endpoint_columns!()
        );
        Ok(on_db_write!(self, p => sqlx::query_as(sql)
            .bind(id)
            .bind(org_id)
            .bind(&change.url)
            .bind(&change.event_types)
            .bind(change.description.is_some())
            .bind(change.description.clone().flatten())
            .bind(change.disabled == Some(true))
            .bind(change.disabled == Some(false))
            .bind(now)
            .fetch_optional(p)
            .await)?)
    }

    /// False: no such endpoint in this organization.
    pub async fn delete_webhook_endpoint(&self, org_id: Uuid, id: Uuid) -> Result<bool> {
        let n = on_db_write!(self, p => sqlx::query(
            "DELETE FROM webhook_endpoints WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

impl Db {
    /// A new secret; the current one keeps signing until `previous_until`. None: no such
    /// endpoint in this organization.
    pub async fn rotate_webhook_secret(
        &self,
        org_id: Uuid,
        id: Uuid,
        secret: &[u8],
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpointRow>> {
        Ok(on_db_write!(self, p => sqlx::query_as(concat!(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $4, \
             secret = $3, updated_at = $5 WHERE id = $1 AND org_id = $2 RETURNING ",
            endpoint_columns!()))
            .bind(id)
            .bind(org_id)
            .bind(secret)
            .bind(previous_until)
            .bind(now)
            .fetch_optional(p)
            .await)?)
    }
}
