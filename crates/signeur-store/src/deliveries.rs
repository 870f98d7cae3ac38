//! Webhook deliveries (one per event and endpoint, written with the event) and their
//! attempts (the history the API lists).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, Tx, WebhookEndpointRow, on_db, on_db_write, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub event_at: DateTime<Utc>,
    /// The envelope, fixed when the event was recorded: every attempt sends these bytes.
    pub body: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! delivery_columns {
    () => {
        "id, org_id, endpoint_id, event_id, event_type, event_at, body, status, attempts, \
         created_at, updated_at"
    };
}

/// Also read from the JSON array `get_request_with_parts` aggregates (a request's attempts,
/// listed in its audit trail): there without `response_excerpt`.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct AttemptRow {
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    /// 1-based.
    pub attempt: i64,
    /// `succeeded` or `failed`.
    pub status: String,
    pub http_status: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    #[serde(default)]
    pub response_excerpt: Option<String>,
    #[serde(deserialize_with = "crate::rfc3339::instant")]
    pub created_at: DateTime<Utc>,
}

macro_rules! attempt_columns {
    () => {
        "id, delivery_id, endpoint_id, event_id, event_type, attempt, status, http_status, \
         duration_ms, error, response_excerpt, created_at"
    };
}

impl Tx {
    /// The organization's enabled endpoints, read in the transaction that records events.
    pub async fn enabled_webhook_endpoints(
        &mut self,
        org_id: Uuid,
    ) -> Result<Vec<WebhookEndpointRow>> {
        Ok(on_tx!(self, c => sqlx::query_as(
            "SELECT id, org_id, url, event_types, description, secret, previous_secret, \
             previous_secret_until, disabled_at, disabled_reason, failing_since, created_at, \
             updated_at FROM webhook_endpoints WHERE org_id = $1 AND disabled_at IS NULL")
            .bind(org_id)
            .fetch_all(c)
            .await)?)
    }

    /// The legacy webhook URL of the organization when it has one and no webhook endpoint
    /// at all (a disabled endpoint is still an endpoint: the seed honours the legacy URL
    /// "when no endpoints exist"), read in the transaction that records events.
    pub async fn legacy_webhook_target(&mut self, org_id: Uuid) -> Result<Option<String>> {
        Ok(on_tx!(self, c => sqlx::query_scalar(
            "SELECT legacy_webhook_url FROM org_settings WHERE org_id = $1 \
             AND legacy_webhook_url IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE org_id = $1)")
            .bind(org_id)
            .fetch_optional(c)
            .await)?)
    }

    /// Inserts the deliveries in one statement.
    pub async fn insert_deliveries(&mut self, rows: &[DeliveryRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        on_tx!(self, c => {
            let mut q = sqlx::QueryBuilder::new(concat!(
                "INSERT INTO webhook_deliveries (", delivery_columns!(), ") "));
            q.push_values(rows, |mut b, d| {
                b.push_bind(d.id)
                    .push_bind(d.org_id)
                    .push_bind(d.endpoint_id)
                    .push_bind(d.event_id.clone())
                    .push_bind(d.event_type.clone())
                    .push_bind(d.event_at)
                    .push_bind(d.body.clone())
                    .push_bind(d.status.clone())
                    .push_bind(d.attempts)
                    .push_bind(d.created_at)
                    .push_bind(d.updated_at);
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Records an attempt and moves its delivery to `status` (`pending` while retries
    /// remain) with the attempt count, in this transaction.
    pub async fn record_attempt(&mut self, a: &AttemptRow, delivery_status: &str) -> Result<()> {
        on_tx!(self, c => sqlx::query(concat!(
            "INSERT INTO webhook_attempts (", attempt_columns!(), ") \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
            .bind(a.id)
            .bind(a.delivery_id)
            .bind(a.endpoint_id)
            .bind(&a.event_id)
            .bind(&a.event_type)
            .bind(a.attempt)
            .bind(&a.status)
            .bind(a.http_status)
            .bind(a.duration_ms)
            .bind(&a.error)
            .bind(&a.response_excerpt)
            .bind(a.created_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        on_tx!(self, c => sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = $3, updated_at = $4 WHERE id = $1")
            .bind(a.delivery_id)
            .bind(delivery_status)
            .bind(a.attempt)
            .bind(a.created_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Tx {
    /// Keeps an endpoint's failure clock: a success stops it; a failure starts it (unless it
    /// runs already) and, once it has run since `disable_if_failing_since` or earlier,
    /// disables the endpoint with `reason`. True when this call disabled it.
    pub async fn note_endpoint_outcome(
        &mut self,
        endpoint_id: Uuid,
        succeeded: bool,
        now: DateTime<Utc>,
        disable_if_failing_since: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool> {
        if succeeded {
            on_tx!(self, c => sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL \
                 WHERE id = $1 AND failing_since IS NOT NULL")
                .bind(endpoint_id)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            return Ok(false);
        }
        on_tx!(self, c => sqlx::query(
            "UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL")
            .bind(endpoint_id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3, updated_at = $2 \
             WHERE id = $1 AND disabled_at IS NULL AND failing_since <= $4")
            .bind(endpoint_id)
            .bind(now)
            .bind(reason)
            .bind(disable_if_failing_since)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

impl Db {
    pub async fn webhook_delivery(&self, id: Uuid) -> Result<Option<DeliveryRow>> {
        Ok(on_db!(self, p => sqlx::query_as(concat!(
            "SELECT ", delivery_columns!(), " FROM webhook_deliveries WHERE id = $1"))
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// The delivery's endpoint, wherever it is (None: deleted).
    pub async fn webhook_endpoint_by_id(&self, id: Uuid) -> Result<Option<WebhookEndpointRow>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT id, org_id, url, event_types, description, secret, previous_secret, \
             previous_secret_until, disabled_at, disabled_reason, failing_since, created_at, \
             updated_at FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// A delivery stopped without an attempt (its endpoint was deleted or disabled).
    pub async fn stop_delivery(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        on_db_write!(self, p => sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', updated_at = $2 \
             WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// An endpoint's attempts, newest first, after the `(created_at, id)` cursor, with an
    /// optional status filter; `limit` rows at most.
    pub async fn webhook_attempts(
        &self,
        endpoint_id: Uuid,
        status: Option<&str>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<AttemptRow>> {
        let (at, id) = after.unzip();
        Ok(on_db!(self, p => sqlx::query_as(concat!(
            "SELECT ", attempt_columns!(), " FROM webhook_attempts WHERE endpoint_id = $1 \
             AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"))
            .bind(endpoint_id)
            .bind(status)
            .bind(at)
            .bind(id)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// Every attempt of a delivery, oldest first (tests, operators).
    pub async fn delivery_attempts(&self, delivery_id: Uuid) -> Result<Vec<AttemptRow>> {
        Ok(on_db!(self, p => sqlx::query_as(concat!(
            "SELECT ", attempt_columns!(), " FROM webhook_attempts WHERE delivery_id = $1 \
             ORDER BY attempt, id"))
            .bind(delivery_id)
            .fetch_all(p)
            .await)?)
    }

    /// An organization's deliveries, oldest first (tests, operators).
    pub async fn webhook_deliveries(&self, org_id: Uuid) -> Result<Vec<DeliveryRow>> {
        Ok(on_db!(self, p => sqlx::query_as(concat!(
            "SELECT ", delivery_columns!(), " FROM webhook_deliveries WHERE org_id = $1 \
             ORDER BY created_at, event_id, id"))
            .bind(org_id)
            .fetch_all(p)
            .await)?)
    }
}
