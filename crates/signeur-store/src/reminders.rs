//! Expiry and reminders: the expiry job's scan, each signer's reminder schedule (the
//! request's policy as it was at create, the count sent, the next due time) and the
//! organization's reminder policy setting.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, Tx, on_db, on_tx};

/// A signer's reminder schedule.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReminderRow {
    pub signer_id: Uuid,
    pub request_id: Uuid,
    pub org_id: Uuid,
    pub first_after_days: i64,
    pub every_days: i64,
    pub max_reminders: i64,
    pub sent_count: i64,
    pub last_sent_at: Option<DateTime<Utc>>,
    /// None: nothing scheduled (not invited yet, or no more reminders).
    pub next_at: Option<DateTime<Utc>>,
}

macro_rules! reminder_columns {
    () => {
        "signer_id, request_id, org_id, first_after_days, every_days, max_reminders, \
         sent_count, last_sent_at, next_at"
    };
}

impl Db {
    /// Open requests (`pending`, `sent`, `opened` as stored) whose `expires_at` has passed,
    /// oldest first: (organization, request). One seek of the partial index
    /// `signature_requests_expiry` (migration 0014).
    pub async fn overdue_requests(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(Uuid, Uuid)>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT org_id, id FROM signature_requests \
             WHERE status IN ('pending', 'sent', 'opened') AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2")
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// Schedules due at `now` or before, earliest first (the partial index
    /// `signer_reminders_due`).
    pub async fn due_reminders(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ReminderRow>> {
        let sql = concat!(
            "SELECT ",
            reminder_columns!(),
            " FROM signer_reminders WHERE next_at IS NOT NULL AND next_at <= $1 ORDER BY next_at LIMIT $2"
        );
        Ok(on_db!(self, p => sqlx::query_as(sql).bind(now).bind(limit).fetch_all(p).await)?)
    }

    /// The organization's reminder policy as stored: None when never set (the default
    /// applies), `Some("null")` for none, else its JSON object.
    pub async fn reminders_setting(&self, org_id: Uuid) -> Result<Option<String>> {
        let v: Option<Option<String>> = on_db!(self, p => sqlx::query_scalar(
            "SELECT reminders FROM org_settings WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(p)
            .await)?;
        Ok(v.flatten())
    }
}

impl Tx {
    /// Writes the reminder policy (JSON, `null` for none) and nothing else, in the caller's
    /// transaction.
    pub async fn set_reminders_setting(
        &mut self,
        org_id: Uuid,
        reminders: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_tx!(self, c => sqlx::query(
            "INSERT INTO org_settings (org_id, allowed_return_urls, allowed_frame_origins, reminders, updated_at) \
             VALUES ($1, '[]', '[]', $2, $3) ON CONFLICT (org_id) DO UPDATE SET \
             reminders = $2, updated_at = $3")
            .bind(org_id)
            .bind(reminders)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A schedule (nothing due yet) for each signer, with the request's policy.
    pub async fn insert_reminder_schedules(&mut self, rows: &[ReminderRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        on_tx!(self, c => {
            let mut q = sqlx::QueryBuilder::new(concat!(
                "INSERT INTO signer_reminders (", reminder_columns!(), ") "));
            q.push_values(rows, |mut b, r| {
                b.push_bind(r.signer_id)
                    .push_bind(r.request_id)
                    .push_bind(r.org_id)
                    .push_bind(r.first_after_days)
                    .push_bind(r.every_days)
                    .push_bind(r.max_reminders)
                    .push_bind(r.sent_count)
                    .push_bind(r.last_sent_at)
                    .push_bind(r.next_at);
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The signer's schedule, read through the transaction.
    pub async fn reminder_of(&mut self, signer_id: Uuid) -> Result<Option<ReminderRow>> {
        let sql = concat!(
            "SELECT ",
            reminder_columns!(),
            " FROM signer_reminders WHERE signer_id = $1"
        );
        Ok(on_tx!(self, c => sqlx::query_as(sql).bind(signer_id).fetch_optional(c).await)?)
    }

    /// Sets when the next reminder is due (None: none) and nothing else.
    pub async fn set_next_reminder(
        &mut self,
        signer_id: Uuid,
        next_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        on_tx!(self, c => sqlx::query("UPDATE signer_reminders SET next_at = $2 WHERE signer_id = $1")
            .bind(signer_id)
            .bind(next_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records a reminder sent at `now`: `counted` adds one to the count. Applies only
    /// while the count is still `seen_count` (a second node that read the same schedule
    /// changes nothing); returns whether it applied.
    pub async fn record_reminder(
        &mut self,
        signer_id: Uuid,
        seen_count: i64,
        counted: bool,
        now: DateTime<Utc>,
        next_at: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE signer_reminders SET sent_count = sent_count + $3, last_sent_at = $4, next_at = $5 \
             WHERE signer_id = $1 AND sent_count = $2")
            .bind(signer_id)
            .bind(seen_count)
            .bind(i64::from(counted))
            .bind(now)
            .bind(next_at)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
