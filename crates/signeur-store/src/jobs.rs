//! The job queue: one table, leased claims, retries rescheduled by the runner.

use chrono::{DateTime, Utc};
use signeur_core::JobKind;
use uuid::Uuid;

use crate::{Db, Result, Tx, on_db, on_db_write, on_tx};

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub payload: String,
    /// At most one unfinished job per dedup key; a second enqueue is a no-op.
    pub dedup_key: Option<String>,
    pub run_at: DateTime<Utc>,
    pub max_attempts: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: Uuid,
    pub kind: JobKind,
    pub payload: String,
    /// Including the attempt this claim starts.
    pub attempts: i64,
    pub max_attempts: i64,
}

impl Tx {
    /// Enqueues in the caller's transaction; false when a job with the dedup key is pending.
    pub async fn enqueue(&mut self, job: &NewJob, now: DateTime<Utc>) -> Result<bool> {
        enqueue(self, job, now).await
    }
}

async fn enqueue(tx: &mut Tx, job: &NewJob, now: DateTime<Utc>) -> Result<bool> {
    let id = Uuid::now_v7();
    let sql = "INSERT INTO jobs (id, kind, payload, dedup_key, run_at, attempts, max_attempts, created_at) \
               VALUES ($1, $2, $3, $4, $5, 0, $6, $7) ON CONFLICT (dedup_key) DO NOTHING";
    let n = on_tx!(tx, c => sqlx::query(sql)
        .bind(id)
        .bind(job.kind)
        .bind(&job.payload)
        .bind(&job.dedup_key)
        .bind(job.run_at)
        .bind(job.max_attempts)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

impl Db {
    /// Enqueues on its own.
    pub async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let created = tx.enqueue(job, now).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Claims up to `limit` due jobs for `lease_until`; a crashed worker's jobs come back
    /// once their lease runs out.
    pub async fn claim_due_jobs(
        &self,
        kind: JobKind,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedJob>> {
        // PostgreSQL skips rows another worker is claiming; SQLite has one writer, so the
        // single UPDATE … RETURNING is the claim there.
        macro_rules! claim_sql {
            ($lock:literal) => {
                concat!(
                    "UPDATE jobs SET leased_until = $2, attempts = attempts + 1 WHERE id IN ( \
                       SELECT id FROM jobs WHERE kind = $4 AND failed_at IS NULL AND run_at <= $1 \
                       AND (leased_until IS NULL OR leased_until <= $1) ORDER BY run_at LIMIT $3",
                    $lock,
                    ") RETURNING id, kind, payload, attempts, max_attempts"
                )
            };
        }
        let sql = match self {
            Db::Postgres(_) => claim_sql!(" FOR UPDATE SKIP LOCKED"),
            Db::Sqlite(_) => claim_sql!(""),
        };
        let jobs = on_db_write!(self, p => sqlx::query_as(sql)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .bind(kind)
            .fetch_all(p)
            .await)?;
        Ok(jobs)
    }

    /// The job is done: it leaves the table (and frees its dedup key).
    pub async fn complete_job(&self, id: Uuid) -> Result<()> {
        on_db_write!(self, p => sqlx::query("DELETE FROM jobs WHERE id = $1").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes the unfinished job with this dedup key (its work was done another way).
    pub async fn complete_job_by_dedup_key(&self, dedup_key: &str) -> Result<()> {
        on_db_write!(self, p => sqlx::query("DELETE FROM jobs WHERE dedup_key = $1")
            .bind(dedup_key)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The attempt failed; try again at `run_at`.
    pub async fn retry_job(&self, id: Uuid, run_at: DateTime<Utc>, error: &str) -> Result<()> {
        on_db_write!(self, p => sqlx::query("UPDATE jobs SET run_at = $2, leased_until = NULL, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(run_at)
            .bind(error)
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The job gave up; it stays in the table for operators, its dedup key released.
    pub async fn fail_job(&self, id: Uuid, now: DateTime<Utc>, error: &str) -> Result<()> {
        on_db_write!(self, p => sqlx::query(
            "UPDATE jobs SET failed_at = $2, leased_until = NULL, last_error = $3, dedup_key = NULL WHERE id = $1")
            .bind(id)
            .bind(now)
            .bind(error)
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Unfinished jobs of a kind (for tests and operators).
    pub async fn pending_jobs(&self, kind: JobKind) -> Result<Vec<ClaimedJob>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT id, kind, payload, attempts, max_attempts FROM jobs WHERE kind = $1 AND failed_at IS NULL ORDER BY created_at, id")
            .bind(kind)
            .fetch_all(p)
            .await)?)
    }
}
