//! The job queue: one table, a short lease per claimed job fenced by a token, retries
//! rescheduled by the runner.
//!
//! A claim sets `leased_until` and draws a new `lease_token`; the running job renews its
//! lease (heartbeat), and completion, retry and failure only apply while the token is still
//! the row's: a worker that lost its lease to another node changes nothing. A claim counts
//! an attempt, and a job never runs past `max_attempts`: one whose worker died on its last
//! attempt is given up (`exhausted_jobs`, `fail_exhausted_job`) by the service, in the
//! transaction that records what giving up means for its request.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use signeur_core::JobKind;
use uuid::Uuid;

use crate::{Db, Result, Tx, on_db, on_db_write, on_tx};

/// The PostgreSQL channel an enqueue notifies (delivered when its transaction commits).
const CHANNEL: &str = "signeur_jobs";

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
    /// This claim's token: renewing, completing, retrying and failing the job name it.
    pub lease_token: Uuid,
}

/// A job not finished yet (for tests and operators).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingJob {
    pub id: Uuid,
    pub kind: JobKind,
    pub payload: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
}

/// A job whose attempts ran out while leased: its worker died during the last one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExhaustedJob {
    pub id: Uuid,
    pub kind: JobKind,
    pub payload: String,
    pub attempts: i64,
}

impl Tx {
    /// [`Db::complete_job`] in the caller's transaction, so a job whose work is itself one
    /// transaction ends in that commit.
    pub async fn complete_job(&mut self, id: Uuid, lease_token: Uuid) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_token = $2")
            .bind(id)
            .bind(lease_token)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Enqueues in the caller's transaction; false when a job with the dedup key is pending.
    /// On PostgreSQL a due job also notifies the workers of every node, at commit.
    pub async fn enqueue(&mut self, job: &NewJob, now: DateTime<Utc>) -> Result<bool> {
        let id = Uuid::now_v7();
        let sql = "INSERT INTO jobs (id, kind, payload, dedup_key, run_at, attempts, max_attempts, created_at) \
                   VALUES ($1, $2, $3, $4, $5, 0, $6, $7) ON CONFLICT (dedup_key) DO NOTHING";
        let n = on_tx!(self, c => sqlx::query(sql)
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
        if n == 1
            && job.run_at <= now
            && let Tx::Postgres(t) = self
        {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(job.kind.as_str())
                .execute(&mut **t)
                .await?;
        }
        Ok(n == 1)
    }

    /// Moves the unfinished, unleased job with this dedup key to `run_at` (the caller does
    /// its work first; the job is the fallback). False when there is none or a worker holds
    /// its lease at `now`. On PostgreSQL the row stays locked until the caller's commit, so
    /// no worker claims it meanwhile.
    pub async fn defer_job_by_dedup_key(
        &mut self,
        dedup_key: &str,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE jobs SET run_at = $2 WHERE dedup_key = $1 AND failed_at IS NULL \
             AND (leased_until IS NULL OR leased_until <= $3)")
            .bind(dedup_key)
            .bind(run_at)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Jobs whose attempts ran out and whose last lease expired (their worker died), locked
    /// for the caller's transaction (PostgreSQL skips those another node is giving up).
    pub async fn exhausted_jobs(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ExhaustedJob>> {
        macro_rules! exhausted_sql {
            ($lock:literal) => {
                concat!(
                    "SELECT id, kind, payload, attempts FROM jobs WHERE failed_at IS NULL \
                     AND attempts >= max_attempts AND (leased_until IS NULL OR leased_until <= $1) \
                     ORDER BY run_at LIMIT $2",
                    $lock
                )
            };
        }
        let sql = match self {
            Tx::Postgres(_) => exhausted_sql!(" FOR UPDATE SKIP LOCKED"),
            Tx::Sqlite(_) => exhausted_sql!(""),
        };
        Ok(on_tx!(self, c => sqlx::query_as(sql)
            .bind(now)
            .bind(limit)
            .fetch_all(c)
            .await)?)
    }

    /// Gives up a job found by [`Tx::exhausted_jobs`] (still unleased since).
    pub async fn fail_exhausted_job(
        &mut self,
        id: Uuid,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE jobs SET failed_at = $2, leased_until = NULL, lease_token = NULL, last_error = $3, \
             dedup_key = NULL WHERE id = $1 AND failed_at IS NULL AND (leased_until IS NULL OR leased_until <= $2)")
            .bind(id)
            .bind(now)
            .bind(error)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The job gave up; it stays in the table for operators, its dedup key released. False
    /// (and nothing changed) when the claim's lease was lost.
    pub async fn fail_job(
        &mut self,
        id: Uuid,
        lease_token: Uuid,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE jobs SET failed_at = $3, leased_until = NULL, lease_token = NULL, last_error = $4, \
             dedup_key = NULL WHERE id = $1 AND lease_token = $2")
            .bind(id)
            .bind(lease_token)
            .bind(now)
            .bind(error)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

impl Db {
    /// Enqueues on its own.
    pub async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let created = tx.enqueue(job, now).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Claims up to `limit` due jobs of `kind` until `lease_until`, under one new lease
    /// token; each attempt counts. A dead worker's job comes back once its lease runs out,
    /// unless its attempts ran out (then [`Tx::exhausted_jobs`] finds it).
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
                    "UPDATE jobs SET leased_until = $2, attempts = attempts + 1, lease_token = $5 WHERE id IN ( \
                       SELECT id FROM jobs WHERE kind = $4 AND failed_at IS NULL AND run_at <= $1 \
                       AND attempts < max_attempts \
                       AND (leased_until IS NULL OR leased_until <= $1) ORDER BY run_at LIMIT $3",
                    $lock,
                    ") RETURNING id, kind, payload, attempts, max_attempts, lease_token"
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
            .bind(Uuid::new_v4())
            .fetch_all(p)
            .await)?;
        Ok(jobs)
    }

    /// The running job's heartbeat: false when its lease was lost (another worker holds it).
    pub async fn renew_lease(
        &self,
        id: Uuid,
        lease_token: Uuid,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_db_write!(self, p => sqlx::query(
            "UPDATE jobs SET leased_until = $3 WHERE id = $1 AND lease_token = $2 AND failed_at IS NULL")
            .bind(id)
            .bind(lease_token)
            .bind(lease_until)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The job is done: it leaves the table (and frees its dedup key). False (and nothing
    /// changed) when the claim's lease was lost.
    pub async fn complete_job(&self, id: Uuid, lease_token: Uuid) -> Result<bool> {
        let n = on_db_write!(self, p => sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_token = $2")
            .bind(id)
            .bind(lease_token)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Removes the unfinished job with this dedup key (its work was done another way),
    /// unless a worker holds its lease at `now` (it is doing that work itself; the claim's
    /// token completes it). Returns whether it was removed.
    pub async fn complete_job_by_dedup_key(
        &self,
        dedup_key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_db_write!(self, p => sqlx::query(
            "DELETE FROM jobs WHERE dedup_key = $1 AND (leased_until IS NULL OR leased_until <= $2)")
            .bind(dedup_key)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The attempt failed; try again at `run_at`. False (and nothing changed) when the
    /// claim's lease was lost.
    pub async fn retry_job(
        &self,
        id: Uuid,
        lease_token: Uuid,
        run_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool> {
        let n = on_db_write!(self, p => sqlx::query(
            "UPDATE jobs SET run_at = $3, leased_until = NULL, lease_token = NULL, last_error = $4 \
             WHERE id = $1 AND lease_token = $2")
            .bind(id)
            .bind(lease_token)
            .bind(run_at)
            .bind(error)
            .execute(p)
            .await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Unfinished jobs of a kind (for tests and operators).
    pub async fn pending_jobs(&self, kind: JobKind) -> Result<Vec<PendingJob>> {
        Ok(on_db!(self, p => sqlx::query_as(
            "SELECT id, kind, payload, attempts, max_attempts, last_error FROM jobs \
             WHERE kind = $1 AND failed_at IS NULL ORDER BY created_at, id")
            .bind(kind)
            .fetch_all(p)
            .await)?)
    }

    /// Which of `keys` a request or a signer still points to: one query for the lot.
    pub async fn referenced_blobs(&self, keys: &[String]) -> Result<HashSet<String>> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        // Placeholders only ($1, $2, …): the keys themselves are bound.
        let list = (1..=keys.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT document_blob AS k FROM signature_requests WHERE document_blob IN ({list}) \
             UNION SELECT sealed_blob AS k FROM signature_requests WHERE sealed_blob IN ({list}) \
             UNION SELECT signature_image_blob AS k FROM signers WHERE signature_image_blob IN ({list})"
        );
        let rows: Vec<String> = on_db!(self, p => {
            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()));
            for k in keys {
                q = q.bind(k);
            }
            q.fetch_all(p).await
        })?;
        Ok(rows.into_iter().collect())
    }

    /// Wake-ups for this node's worker when any node enqueues a due job: PostgreSQL's
    /// `LISTEN`; `None` on SQLite (one node; the in-process wake-up suffices).
    pub async fn listen_for_jobs(&self) -> Result<Option<JobListener>> {
        match self {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(p) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(p).await?;
                listener.listen(CHANNEL).await?;
                Ok(Some(JobListener(listener)))
            }
        }
    }
}

/// A `LISTEN` connection for job notifications.
pub struct JobListener(sqlx::postgres::PgListener);

impl JobListener {
    /// Waits for the next notification (reconnecting if the connection dropped).
    pub async fn next(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}
