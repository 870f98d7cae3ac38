//! Background jobs: kinds, the worker loop that `serve` runs, and the periodic jobs.
//!
//! Jobs are claimed with a lease; a job that fails is rescheduled with exponential backoff
//! until its attempts run out. Every handler is idempotent: delivery is at least once.

use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::sync::watch;

use signeur_store::{ClaimedJob, NewJob};

use crate::{Result, Service};

pub use signeur_core::JobKind;

/// Kinds the worker enqueues for itself every few minutes.
const PERIODIC: &[JobKind] = &[
    JobKind::PurgeIdempotencyKeys,
    JobKind::RemoveOrphanBlobs,
    JobKind::ExpireSessions,
];

/// Kinds this build's worker runs. Others stay queued for the build that knows them.
const RUNNABLE: &[JobKind] = &[
    JobKind::PurgeIdempotencyKeys,
    JobKind::RemoveOrphanBlobs,
    JobKind::SendInvitation,
    JobKind::SendNotice,
    JobKind::SealDocument,
    JobKind::ExpireSessions,
];

/// A blob younger than this may belong to a create whose transaction has not committed.
pub const ORPHAN_GRACE: Duration = Duration::hours(1);
const LEASE: Duration = Duration::minutes(5);
const PERIODIC_EVERY: Duration = Duration::minutes(10);

/// Delay before attempt `attempts + 1`: 10 s doubling, at most an hour.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 20) - 1;
    Duration::seconds((10i64 << exp).min(3600))
}

/// A job's JSON payload; a malformed one is an internal error (we wrote it).
struct JobPayload(serde_json::Value);

impl JobPayload {
    fn parse(payload: &str) -> Result<JobPayload> {
        serde_json::from_str(payload)
            .map(JobPayload)
            .map_err(|e| crate::ServiceError::Internal(e.into()))
    }

    fn id(&self, key: &str) -> Result<uuid::Uuid> {
        self.0[key]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                crate::ServiceError::Internal(anyhow::anyhow!("job payload without {key}"))
            })
    }
}

/// A test's fault injection: runs before each job of the kind it is given (it may sleep,
/// wait for a signal, or panic).
pub type JobHook =
    std::sync::Arc<dyn Fn(JobKind) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// How often the worker looks for due jobs.
    pub poll: StdDuration,
    /// How often a running job's lease is renewed.
    pub heartbeat: StdDuration,
    /// Jobs run at once on this node.
    pub concurrency: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll: StdDuration::from_secs(1),
            heartbeat: StdDuration::from_secs(10),
            concurrency: 4,
        }
    }
}

impl Service {
    /// Runs `hook` before each job (tests inject slowness or panics this way).
    #[doc(hidden)]
    pub fn with_job_hook(mut self, hook: JobHook) -> Self {
        self.job_hook = Some(hook);
        self
    }

    /// Enqueues the periodic jobs unless one of each is already waiting (dedup keys).
    pub async fn schedule_periodic_jobs(&self) -> Result<()> {
        let now = self.clock.now();
        for kind in PERIODIC {
            let job = NewJob {
                kind: *kind,
                payload: "{}".into(),
                dedup_key: Some(format!("periodic:{}", kind.as_str())),
                run_at: now,
                max_attempts: 5,
            };
            self.db.enqueue(&job, now).await?;
        }
        Ok(())
    }

    /// Claims and runs every due job once; returns how many ran.
    pub async fn run_due_jobs(&self) -> Result<usize> {
        let mut ran = 0;
        for kind in RUNNABLE {
            let now = self.clock.now();
            let jobs = self.db.claim_due_jobs(*kind, now, now + LEASE, 16).await?;
            for job in jobs {
                self.run_job(job).await?;
                ran += 1;
            }
        }
        Ok(ran)
    }

    async fn run_job(&self, job: ClaimedJob) -> Result<()> {
        let kind = job.kind;
        if let Some(hook) = &self.job_hook {
            hook(kind).await;
        }
        let outcome = match kind {
            JobKind::PurgeIdempotencyKeys => self
                .purge_idempotency_keys()
                .await
                .map(|n| format!("{n} keys purged")),
            JobKind::RemoveOrphanBlobs => self
                .remove_orphan_blobs()
                .await
                .map(|n| format!("{n} blobs removed")),
            JobKind::SendInvitation => self.run_invitation_job(&job.payload).await,
            JobKind::SendNotice => self.run_notice_job(&job.payload).await,
            JobKind::ExpireSessions => self
                .expire_sessions()
                .await
                .map(|n| format!("{n} sessions expired")),
            JobKind::SealDocument => {
                let p = JobPayload::parse(&job.payload)?;
                self.seal_request(p.id("org_id")?, p.id("signature_request_id")?)
                    .await
            }
        };
        let now = self.clock.now();
        match outcome {
            Ok(summary) => {
                tracing::debug!(job = %job.id, kind = kind.as_str(), "{summary}");
                self.metrics.job(kind, "succeeded");
                self.db.complete_job(job.id).await?;
            }
            Err(e) if job.attempts >= job.max_attempts => {
                tracing::error!(job = %job.id, kind = kind.as_str(), attempts = job.attempts, error = %e, "job failed for good");
                self.metrics.job(kind, "failed");
                self.db.fail_job(job.id, now, &e.to_string()).await?;
                if kind == JobKind::SealDocument {
                    let p = JobPayload::parse(&job.payload)?;
                    self.seal_failed(
                        p.id("org_id")?,
                        p.id("signature_request_id")?,
                        &e.to_string(),
                    )
                    .await?;
                }
            }
            Err(e) => {
                let delay = backoff(job.attempts);
                tracing::warn!(job = %job.id, kind = kind.as_str(), attempts = job.attempts, retry_in_secs = delay.num_seconds(), error = %e, "job failed; will retry");
                self.metrics.job(kind, "retried");
                self.db
                    .retry_job(job.id, now + delay, &e.to_string())
                    .await?;
            }
        }
        Ok(())
    }

    async fn run_invitation_job(&self, payload: &str) -> Result<String> {
        let p = JobPayload::parse(payload)?;
        let (org, request, signer) = (
            p.id("org_id")?,
            p.id("signature_request_id")?,
            p.id("signer_id")?,
        );
        let outcome = self.send_invitation(org, request, signer).await?;
        self.mark_sent_if_pending(org, request).await?;
        Ok(format!("{outcome:?}"))
    }

    async fn run_notice_job(&self, payload: &str) -> Result<String> {
        let p = JobPayload::parse(payload)?;
        let kind = match p.0["kind"].as_str() {
            Some("cancelled") => crate::mail::NoticeKind::Cancelled,
            Some("declined") => crate::mail::NoticeKind::Declined,
            Some("completed") => crate::mail::NoticeKind::Completed,
            Some("reminder") => crate::mail::NoticeKind::Reminder,
            other => {
                return Err(crate::ServiceError::Internal(anyhow::anyhow!(
                    "unknown notice kind {other:?}"
                )));
            }
        };
        self.send_notice(
            p.id("org_id")?,
            p.id("signature_request_id")?,
            p.id("signer_id")?,
            kind,
        )
        .await?;
        Ok(format!("{kind:?} notice sent"))
    }

    pub async fn purge_idempotency_keys(&self) -> Result<u64> {
        let before = self.clock.now() - Duration::hours(crate::idempotency::RETENTION_HOURS);
        Ok(self.db.purge_idempotency_keys(before).await?)
    }

    /// Deletes blobs older than [`ORPHAN_GRACE`] that no request points to.
    pub async fn remove_orphan_blobs(&self) -> Result<u64> {
        let cutoff = self.clock.now() - ORPHAN_GRACE;
        let mut removed = 0;
        for blob in self.blobs.list().await? {
            if blob.modified < cutoff && !self.db.blob_is_referenced(&blob.key).await? {
                self.blobs.delete(&blob.key).await?;
                tracing::info!(blob = %blob.key, "removed orphan blob");
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The worker loop of `serve`: schedules periodic jobs and runs due ones until `stop`.
    pub async fn run_worker(&self, config: WorkerConfig, mut stop: watch::Receiver<bool>) {
        let mut last_schedule: Option<chrono::DateTime<chrono::Utc>> = None;
        loop {
            let now = self.clock.now();
            if last_schedule.is_none_or(|t| now - t >= PERIODIC_EVERY) {
                match self.schedule_periodic_jobs().await {
                    Ok(()) => last_schedule = Some(now),
                    Err(e) => tracing::warn!(error = %e, "could not schedule periodic jobs"),
                }
            }
            if let Err(e) = self.run_due_jobs().await {
                tracing::warn!(error = %e, "worker could not run jobs");
            }
            tokio::select! {
                _ = tokio::time::sleep(config.poll) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1).num_seconds(), 10);
        assert_eq!(backoff(2).num_seconds(), 20);
        assert_eq!(backoff(4).num_seconds(), 80);
        assert_eq!(backoff(12).num_seconds(), 3600);
        assert_eq!(backoff(1000).num_seconds(), 3600);
    }
}
