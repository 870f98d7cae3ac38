//! Background jobs: the typed [`Job`], the worker that `serve` runs, and the periodic jobs.
//!
//! What the queue guarantees (see docs/ARCHITECTURE.md, "Jobs"):
//! - a job is enqueued in the transaction of the change that causes it, and wakes this
//!   node's worker at once (and, on PostgreSQL, every node's through `NOTIFY` at commit);
//! - each claimed job has its own short lease ([`LEASE`]) renewed while it runs; a node that
//!   died loses its jobs to another within a lease and a poll; a worker that lost its lease
//!   cannot complete, retry or fail the job (the claim's token fences it);
//! - every claim is an attempt: a job that fails (or panics) is retried with backoff, and
//!   after `max_attempts` (even when each attempt killed its process) it is given up in one
//!   transaction with what that means for its request (`stamp_failed` for a seal);
//! - handlers are idempotent: delivery is at least once;
//! - periodic maintenance runs in a lane of its own, so a long scan never delays a seal or
//!   an email; the minutely expiry and reminders in another, so a long scan never delays
//!   `signature_request.expired` past its minute either.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures::FutureExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use signeur_store::{ClaimedJob, NewJob, Tx};

use crate::mail::NoticeKind;
use crate::{Result, Service};

pub use signeur_core::JobKind;

/// A blob younger than this may belong to a create whose transaction has not committed.
pub const ORPHAN_GRACE: Duration = Duration::hours(1);
/// A claimed job's lease; its heartbeat renews it well before it runs out.
pub const LEASE: Duration = Duration::seconds(30);
const PERIODIC_EVERY: Duration = Duration::minutes(10);
/// Expiry and reminders: `signature_request.expired` within a minute of `expires_at`.
const MINUTELY_EVERY: Duration = Duration::minutes(1);
/// Blobs listed (and checked with one query) at a time by the orphan scan.
const ORPHAN_PAGE: usize = 500;
/// Attempts of one seal job before the request becomes `stamp_failed`.
pub const SEAL_ATTEMPTS: i64 = 8;
/// Jobs claimed per kind by one [`Service::run_due_jobs`] pass.
const PASS_LIMIT: usize = 16;

/// Kinds someone waits for (a signer, an integrator): the latency lane.
const URGENT: &[JobKind] = &[
    JobKind::SendInvitation,
    JobKind::SendNotice,
    JobKind::SealDocument,
];
/// Webhook deliveries: a lane of their own with many slots, so a receiver that hangs costs
/// one timeout and delays neither the other endpoints nor seals and emails.
const WEBHOOKS: &[JobKind] = &[JobKind::DeliverWebhook];
/// Periodic maintenance: its own lane, one at a time (an orphan scan of a large store may
/// take minutes).
const MAINTENANCE: &[JobKind] = &[
    JobKind::PurgeIdempotencyKeys,
    JobKind::RemoveOrphanBlobs,
    JobKind::ExpireSessions,
];
/// The minutely jobs (expiry, reminders): a lane of their own, one at a time, so that
/// `signature_request.expired` fires within a minute whatever maintenance is doing.
const MINUTELY: &[JobKind] = &[JobKind::ExpireRequests, JobKind::SendReminders];

/// Delay before attempt `attempts + 1`: 10 s doubling, at most an hour.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 20) - 1;
    Duration::seconds((10i64 << exp).min(3600))
}

/// A background job: what it does, with its kind, payload, dedup key, attempts and backoff
/// in one place. A new kind is one variant (and its `JobKind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    SendInvitation {
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
    },
    SendNotice {
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        notice: NoticeKind,
    },
    /// A reminder email; `signer.reminded` is recorded when the SMTP server accepts it.
    /// `number`: the scheduled reminder's (1, 2, …); None for one asked for through the API.
    /// Stored as a `send_notice` job of kind `reminder` (one dedup key per signer).
    SendReminder {
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        number: Option<i64>,
    },
    SealDocument {
        org_id: Uuid,
        request_id: Uuid,
    },
    PurgeIdempotencyKeys,
    RemoveOrphanBlobs,
    ExpireSessions,
    /// Every minute: open requests past `expires_at` become `expired` (`expiry.rs`).
    ExpireRequests,
    /// Every minute: the reminders that came due are queued (`expiry.rs`).
    SendReminders,
    /// Attempt `attempt` (1-based) of a webhook delivery; 0: a retry asked for through the
    /// API (one attempt, nothing scheduled after it).
    DeliverWebhook {
        delivery_id: Uuid,
        attempt: i64,
    },
}

/// The stored payloads (the JSON the hand-built jobs of earlier builds wrote, unchanged).
#[derive(Serialize, Deserialize)]
struct SignerPayload {
    org_id: Uuid,
    signature_request_id: Uuid,
    signer_id: Uuid,
}

#[derive(Serialize, Deserialize)]
struct NoticePayload {
    org_id: Uuid,
    signature_request_id: Uuid,
    signer_id: Uuid,
    kind: String,
    /// A scheduled reminder's number (absent for the other notices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reminder: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct DeliveryPayload {
    delivery_id: Uuid,
    attempt: i64,
}

#[derive(Serialize, Deserialize)]
struct RequestPayload {
    org_id: Uuid,
    signature_request_id: Uuid,
}

/// At most one reminder email of a signer waits at a time (scheduled or asked for).
pub fn reminder_dedup_key(signer_id: Uuid) -> String {
    format!("notice:reminder:{signer_id}")
}

fn notice_spelling(n: NoticeKind) -> &'static str {
    match n {
        NoticeKind::Cancelled => "cancelled",
        NoticeKind::Declined => "declined",
        NoticeKind::Completed => "completed",
        NoticeKind::Reminder => "reminder",
    }
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::SendInvitation { .. } => JobKind::SendInvitation,
            Job::SendNotice { .. } | Job::SendReminder { .. } => JobKind::SendNotice,
            Job::SealDocument { .. } => JobKind::SealDocument,
            Job::PurgeIdempotencyKeys => JobKind::PurgeIdempotencyKeys,
            Job::RemoveOrphanBlobs => JobKind::RemoveOrphanBlobs,
            Job::ExpireSessions => JobKind::ExpireSessions,
            Job::ExpireRequests => JobKind::ExpireRequests,
            Job::SendReminders => JobKind::SendReminders,
            Job::DeliverWebhook { .. } => JobKind::DeliverWebhook,
        }
    }

    /// At most one unfinished job per key.
    pub fn dedup_key(&self) -> Option<String> {
        Some(match self {
            // A retry through the API is never merged with the schedule's attempts.
            Job::DeliverWebhook { attempt: 0, .. } => return None,
            Job::DeliverWebhook {
                delivery_id,
                attempt,
            } => format!("webhook:{delivery_id}:{attempt}"),
            Job::SendInvitation { signer_id, .. } => {
                crate::invitations::invitation_dedup_key(*signer_id)
            }
            Job::SendNotice {
                signer_id, notice, ..
            } => format!("notice:{}:{signer_id}", notice_spelling(*notice)),
            Job::SendReminder { signer_id, .. } => reminder_dedup_key(*signer_id),
            Job::SealDocument { request_id, .. } => format!("seal:{request_id}"),
            Job::PurgeIdempotencyKeys
            | Job::RemoveOrphanBlobs
            | Job::ExpireSessions
            | Job::ExpireRequests
            | Job::SendReminders => format!("periodic:{}", self.kind().as_str()),
        })
    }

    /// Attempts (claims) before the job is given up.
    pub fn max_attempts(&self) -> i64 {
        match self {
            Job::SealDocument { .. } => SEAL_ATTEMPTS,
            Job::SendInvitation { .. } | Job::SendNotice { .. } | Job::SendReminder { .. } => 10,
            Job::PurgeIdempotencyKeys
            | Job::RemoveOrphanBlobs
            | Job::ExpireSessions
            | Job::ExpireRequests
            | Job::SendReminders => 5,
            // Only when the attempt could not be recorded (the receiver's failures are
            // attempts, scheduled by the delivery itself).
            Job::DeliverWebhook { .. } => 5,
        }
    }

    /// Delay before the next attempt after `attempts` failed ones.
    pub fn backoff(&self, attempts: i64) -> Duration {
        backoff(attempts)
    }

    /// Periodic maintenance, which runs apart from the kinds someone waits for.
    pub fn is_maintenance(&self) -> bool {
        MAINTENANCE.contains(&self.kind())
    }

    fn payload(&self) -> String {
        let json = match self {
            Job::SendInvitation {
                org_id,
                request_id,
                signer_id,
            } => serde_json::to_string(&SignerPayload {
                org_id: *org_id,
                signature_request_id: *request_id,
                signer_id: *signer_id,
            }),
            Job::SendNotice {
                org_id,
                request_id,
                signer_id,
                notice,
            } => serde_json::to_string(&NoticePayload {
                org_id: *org_id,
                signature_request_id: *request_id,
                signer_id: *signer_id,
                kind: notice_spelling(*notice).into(),
                reminder: None,
            }),
            Job::SendReminder {
                org_id,
                request_id,
                signer_id,
                number,
            } => serde_json::to_string(&NoticePayload {
                org_id: *org_id,
                signature_request_id: *request_id,
                signer_id: *signer_id,
                kind: notice_spelling(NoticeKind::Reminder).into(),
                reminder: *number,
            }),
            Job::SealDocument { org_id, request_id } => serde_json::to_string(&RequestPayload {
                org_id: *org_id,
                signature_request_id: *request_id,
            }),
            Job::PurgeIdempotencyKeys
            | Job::RemoveOrphanBlobs
            | Job::ExpireSessions
            | Job::ExpireRequests
            | Job::SendReminders => Ok("{}".into()),
            Job::DeliverWebhook {
                delivery_id,
                attempt,
            } => serde_json::to_string(&DeliveryPayload {
                delivery_id: *delivery_id,
                attempt: *attempt,
            }),
        };
        // Plain structs of UUIDs and strings always serialize.
        json.unwrap_or_else(|_| "{}".into())
    }

    /// Reads a stored job (this build's or an earlier one's: the payloads are the same). An
    /// error is permanent: the job can never run.
    pub fn decode(kind: JobKind, payload: &str) -> std::result::Result<Job, String> {
        let bad = |e: serde_json::Error| format!("undecodable {} payload: {e}", kind.as_str());
        Ok(match kind {
            JobKind::SendInvitation => {
                let p: SignerPayload = serde_json::from_str(payload).map_err(bad)?;
                Job::SendInvitation {
                    org_id: p.org_id,
                    request_id: p.signature_request_id,
                    signer_id: p.signer_id,
                }
            }
            JobKind::SendNotice => {
                let p: NoticePayload = serde_json::from_str(payload).map_err(bad)?;
                let notice = NoticeKind::ALL
                    .iter()
                    .copied()
                    .find(|n| notice_spelling(*n) == p.kind)
                    .ok_or_else(|| format!("unknown notice kind '{}'", p.kind))?;
                if notice == NoticeKind::Reminder {
                    return Ok(Job::SendReminder {
                        org_id: p.org_id,
                        request_id: p.signature_request_id,
                        signer_id: p.signer_id,
                        number: p.reminder,
                    });
                }
                Job::SendNotice {
                    org_id: p.org_id,
                    request_id: p.signature_request_id,
                    signer_id: p.signer_id,
                    notice,
                }
            }
            JobKind::SealDocument => {
                let p: RequestPayload = serde_json::from_str(payload).map_err(bad)?;
                Job::SealDocument {
                    org_id: p.org_id,
                    request_id: p.signature_request_id,
                }
            }
            JobKind::PurgeIdempotencyKeys => Job::PurgeIdempotencyKeys,
            JobKind::RemoveOrphanBlobs => Job::RemoveOrphanBlobs,
            JobKind::ExpireSessions => Job::ExpireSessions,
            JobKind::ExpireRequests => Job::ExpireRequests,
            JobKind::SendReminders => Job::SendReminders,
            JobKind::DeliverWebhook => {
                let p: DeliveryPayload = serde_json::from_str(payload).map_err(bad)?;
                Job::DeliverWebhook {
                    delivery_id: p.delivery_id,
                    attempt: p.attempt,
                }
            }
        })
    }

    /// The row to insert, due at `run_at`.
    pub(crate) fn new_job(&self, run_at: DateTime<Utc>) -> NewJob {
        NewJob {
            kind: self.kind(),
            payload: self.payload(),
            dedup_key: self.dedup_key(),
            run_at,
            max_attempts: self.max_attempts(),
        }
    }
}

/// A test's fault injection: runs before each job of the kind it is given (it may sleep,
/// wait for a signal, or panic).
pub type JobHook = Arc<dyn Fn(JobKind) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// How often the worker looks for due jobs without being woken: the safety net for
    /// retries coming due and for jobs whose node died.
    pub poll: StdDuration,
    /// How often a running job's lease is renewed (well within [`LEASE`]).
    pub heartbeat: StdDuration,
    /// Jobs someone waits for that run at once on this node, each with its own lease.
    pub concurrency: usize,
    /// Webhook delivery attempts that run at once on this node (most of their time is
    /// spent waiting for receivers).
    pub webhook_concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Seals and emails; also gives up exhausted jobs.
    Urgent,
    Webhooks,
    /// Periodic jobs; also schedules them.
    Maintenance,
    /// Expiry and reminders; also schedules them every minute.
    Minutely,
}

/// Which lane runs `kind` (each kind is in exactly one; a unit test checks it).
#[cfg(test)]
fn lane_of(kind: JobKind) -> Lane {
    if URGENT.contains(&kind) {
        Lane::Urgent
    } else if WEBHOOKS.contains(&kind) {
        Lane::Webhooks
    } else if MINUTELY.contains(&kind) {
        Lane::Minutely
    } else {
        Lane::Maintenance
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll: StdDuration::from_secs(5),
            heartbeat: StdDuration::from_secs(10),
            concurrency: 4,
            webhook_concurrency: 32,
        }
    }
}

/// Whether this process's worker runs, for `/readyz`.
#[derive(Default)]
pub(crate) struct WorkerHealth(Mutex<WorkerState>);

#[derive(Default, Clone)]
enum WorkerState {
    /// No worker in this process (an HTTP-only node, a test).
    #[default]
    NotStarted,
    Running,
    Stopped(String),
}

impl WorkerHealth {
    fn set(&self, state: WorkerState) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// `Some(reason)` when a worker was started here and is no longer running.
    pub(crate) fn stopped(&self) -> Option<String> {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            WorkerState::Stopped(reason) => Some(reason.clone()),
            _ => None,
        }
    }
}

/// Marks the worker stopped however its future ends (returned, panicked, aborted).
struct RunningGuard(Arc<WorkerHealth>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            "it panicked"
        } else {
            "it ended"
        };
        self.0.set(WorkerState::Stopped(reason.into()));
    }
}

/// How one run of a job ended.
enum Outcome {
    Done(String),
    /// Done, and the job already completed in the work's own transaction.
    Completed(String),
    /// Worth another attempt.
    Failed(String),
    /// Never worth another attempt (the payload cannot be read).
    Permanent(String),
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

impl Service {
    /// Runs `hook` before each job (tests inject slowness or panics this way).
    #[doc(hidden)]
    pub fn with_job_hook(mut self, hook: JobHook) -> Self {
        self.job_hook = Some(hook);
        self
    }

    /// Enqueues `job` in the caller's transaction, due at `run_at`, and wakes this node's
    /// worker. The wake-up may come before the commit: on SQLite the worker's claim waits
    /// for the one writer connection, which this transaction holds until it ends; on
    /// PostgreSQL the claim may find nothing yet, and the `NOTIFY` sent at commit wakes the
    /// worker again.
    pub(crate) async fn enqueue_job(
        &self,
        tx: &mut Tx,
        job: &Job,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let created = tx.enqueue(&job.new_job(run_at), now).await?;
        if created && run_at <= now {
            if WEBHOOKS.contains(&job.kind()) {
                self.wake_webhooks.notify_one();
            } else {
                self.wake.notify_one();
            }
        }
        Ok(created)
    }

    /// Enqueues the minutely jobs (expiry, reminders) unless one of each is already waiting
    /// (dedup keys). Every node does so each minute; a run that finds nothing due costs one
    /// index seek, and each request or reminder is moved under its row lock, so several runs
    /// in a minute change nothing twice.
    pub async fn schedule_minutely_jobs(&self) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        for job in [Job::ExpireRequests, Job::SendReminders] {
            tx.enqueue(&job.new_job(now), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Enqueues the periodic jobs unless one of each is already waiting (dedup keys).
    pub async fn schedule_periodic_jobs(&self) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        for job in [
            Job::PurgeIdempotencyKeys,
            Job::RemoveOrphanBlobs,
            Job::ExpireSessions,
        ] {
            tx.enqueue(&job.new_job(now), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One pass (tests, operators): gives up the jobs whose attempts ran out, then claims
    /// and runs the due jobs one by one (up to 16 of each kind), each under its own lease
    /// and heartbeat. Returns how many ran.
    pub async fn run_due_jobs(&self) -> Result<usize> {
        self.give_up_exhausted_jobs().await?;
        let config = WorkerConfig::default();
        let mut ran = 0;
        for kind in MINUTELY
            .iter()
            .chain(MAINTENANCE)
            .chain(URGENT)
            .chain(WEBHOOKS)
        {
            for _ in 0..PASS_LIMIT {
                let Some(job) = self.claim_one(&[*kind]).await? else {
                    break;
                };
                self.run_claimed(job, config).await;
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Claims one due job of the first of `kinds` that has one.
    async fn claim_one(&self, kinds: &[JobKind]) -> Result<Option<ClaimedJob>> {
        Ok(self.claim_due(kinds, 1).await?.pop())
    }

    /// Claims up to `limit` due jobs of the first of `kinds` that has any.
    async fn claim_due(&self, kinds: &[JobKind], limit: usize) -> Result<Vec<ClaimedJob>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        for kind in kinds {
            let now = self.clock.now();
            let jobs = self
                .db
                .claim_due_jobs(*kind, now, now + LEASE, limit)
                .await?;
            if !jobs.is_empty() {
                return Ok(jobs);
            }
        }
        Ok(Vec::new())
    }

    /// Jobs whose every attempt ended with their worker (crash, OOM, kill): failed for good
    /// in one transaction with what that means for their request.
    async fn give_up_exhausted_jobs(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let jobs = tx.exhausted_jobs(now, 16).await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        for job in &jobs {
            let reason = format!(
                "gave up after {} attempts: the worker stopped during each",
                job.attempts
            );
            if tx.fail_exhausted_job(job.id, now, &reason).await?
                && let Ok(decoded) = Job::decode(job.kind, &job.payload)
            {
                self.on_given_up(&mut tx, &decoded, &reason, now).await?;
            }
            tracing::error!(job = %job.id, kind = job.kind.as_str(), attempts = job.attempts, "{reason}");
            self.metrics.job(job.kind, "failed");
        }
        tx.commit().await?;
        Ok(jobs.len())
    }

    /// What giving a job up means beyond the job row, in the same transaction.
    async fn on_given_up(
        &self,
        tx: &mut Tx,
        job: &Job,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if let Job::SealDocument { org_id, request_id } = job {
            self.seal_failed_in(tx, *org_id, *request_id, reason, now)
                .await?;
        }
        Ok(())
    }

    /// Runs a claimed job with its heartbeat, catching a panic as a failed attempt, then
    /// records the outcome under the claim's token. Never fails: what goes wrong is logged
    /// and the lease runs out.
    async fn run_claimed(&self, job: ClaimedJob, config: WorkerConfig) {
        let work = AssertUnwindSafe(self.execute(&job)).catch_unwind();
        let outcome = tokio::select! {
            outcome = work => match outcome {
                Ok(outcome) => outcome,
                Err(panic) => Outcome::Failed(format!("panicked: {}", panic_message(panic.as_ref()))),
            },
            () = self.heartbeat(&job, config.heartbeat) => {
                tracing::warn!(job = %job.id, kind = job.kind.as_str(), "lost its lease; abandoned (another worker runs it)");
                return;
            }
        };
        if let Err(e) = self.record(&job, outcome).await {
            tracing::warn!(job = %job.id, kind = job.kind.as_str(), error = %e, "could not record a job's outcome; its lease will run out");
        }
    }

    /// Renews the job's lease every `every`; returns only when the lease was lost.
    async fn heartbeat(&self, job: &ClaimedJob, every: StdDuration) {
        loop {
            tokio::time::sleep(every).await;
            match self
                .db
                .renew_lease(job.id, job.lease_token, self.clock.now() + LEASE)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(job = %job.id, error = %e, "could not renew a lease"),
            }
        }
    }

    async fn execute(&self, job: &ClaimedJob) -> Outcome {
        let decoded = match Job::decode(job.kind, &job.payload) {
            Ok(j) => j,
            Err(e) => return Outcome::Permanent(e),
        };
        if let Some(hook) = &self.job_hook {
            hook(job.kind).await;
        }
        let result = match decoded {
            Job::PurgeIdempotencyKeys => self
                .purge_idempotency_keys()
                .await
                .map(|n| format!("{n} keys purged")),
            Job::RemoveOrphanBlobs => self
                .remove_orphan_blobs()
                .await
                .map(|n| format!("{n} blobs removed")),
            Job::ExpireSessions => self
                .expire_sessions()
                .await
                .map(|n| format!("{n} sessions expired")),
            Job::ExpireRequests => self
                .expire_overdue_requests()
                .await
                .map(|n| format!("{n} requests expired")),
            Job::SendReminders => self
                .send_due_reminders()
                .await
                .map(|n| format!("{n} reminders queued")),
            Job::SendInvitation {
                org_id,
                request_id,
                signer_id,
            } => self.run_invitation_job(org_id, request_id, signer_id).await,
            Job::SendNotice {
                org_id,
                request_id,
                signer_id,
                notice,
            } => self
                .send_notice(org_id, request_id, signer_id, notice)
                .await
                .map(|_| format!("{notice:?} notice sent")),
            Job::SendReminder {
                org_id,
                request_id,
                signer_id,
                number,
            } => self
                .send_reminder(org_id, request_id, signer_id, number)
                .await
                .map(|sent| format!("reminder {}", if sent { "sent" } else { "not sent" })),
            Job::SealDocument { org_id, request_id } => self.seal_request(org_id, request_id).await,
            Job::DeliverWebhook {
                delivery_id,
                attempt,
            } => {
                let claim = (job.id, job.lease_token);
                return match self.deliver_webhook(delivery_id, attempt, claim).await {
                    Ok(summary) => Outcome::Completed(summary),
                    Err(e) => Outcome::Failed(e.to_string()),
                };
            }
        };
        match result {
            Ok(summary) => Outcome::Done(summary),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// Completes, retries or gives up the job, each only while the claim holds its lease.
    async fn record(&self, job: &ClaimedJob, outcome: Outcome) -> Result<()> {
        let kind = job.kind;
        let now = self.clock.now();
        let lost = || tracing::warn!(job = %job.id, kind = kind.as_str(), "lost its lease before it finished; outcome not recorded");
        match outcome {
            Outcome::Done(summary) => {
                tracing::debug!(job = %job.id, kind = kind.as_str(), "{summary}");
                self.metrics.job(kind, "succeeded");
                if !self.db.complete_job(job.id, job.lease_token).await? {
                    lost();
                }
            }
            Outcome::Completed(summary) => {
                tracing::debug!(job = %job.id, kind = kind.as_str(), "{summary}");
                self.metrics.job(kind, "succeeded");
            }
            Outcome::Failed(error) if job.attempts < job.max_attempts => {
                let delay = backoff(job.attempts);
                tracing::warn!(job = %job.id, kind = kind.as_str(), attempts = job.attempts, retry_in_secs = delay.num_seconds(), error = %error, "job failed; will retry");
                self.metrics.job(kind, "retried");
                if !self
                    .db
                    .retry_job(job.id, job.lease_token, now + delay, &error)
                    .await?
                {
                    lost();
                }
            }
            Outcome::Failed(error) | Outcome::Permanent(error) => {
                tracing::error!(job = %job.id, kind = kind.as_str(), attempts = job.attempts, error = %error, "job failed for good");
                self.metrics.job(kind, "failed");
                let mut tx = self.db.begin().await?;
                if !tx.fail_job(job.id, job.lease_token, now, &error).await? {
                    lost();
                    return Ok(());
                }
                if let Ok(decoded) = Job::decode(kind, &job.payload) {
                    self.on_given_up(&mut tx, &decoded, &error, now).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    async fn run_invitation_job(&self, org: Uuid, request: Uuid, signer: Uuid) -> Result<String> {
        let outcome = self.send_invitation(org, request, signer).await?;
        self.mark_sent_if_pending(org, request).await?;
        Ok(format!("{outcome:?}"))
    }

    pub async fn purge_idempotency_keys(&self) -> Result<u64> {
        let before = self.clock.now() - Duration::hours(crate::idempotency::RETENTION_HOURS);
        Ok(self.db.purge_idempotency_keys(before).await?)
    }

    /// Deletes blobs older than [`ORPHAN_GRACE`] that no request points to, a page of the
    /// listing at a time (one query per page).
    pub async fn remove_orphan_blobs(&self) -> Result<u64> {
        let cutoff = self.clock.now() - ORPHAN_GRACE;
        let mut removed = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self.blobs.list_page(after.as_deref(), ORPHAN_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            let old: Vec<String> = page
                .iter()
                .filter(|b| b.modified < cutoff)
                .map(|b| b.key.clone())
                .collect();
            let referenced = self.db.referenced_blobs(&old).await?;
            for key in old.iter().filter(|k| !referenced.contains(*k)) {
                self.blobs.delete(key).await?;
                tracing::info!(blob = %key, "removed orphan blob");
                removed += 1;
            }
            if page.len() < ORPHAN_PAGE {
                break;
            }
        }
        Ok(removed)
    }

    /// The worker of `serve` until `stop`: the latency lane (seals and emails, up to
    /// `config.concurrency` at once, woken in-process and by `NOTIFY`), the webhook lane, the
    /// maintenance lane (periodic jobs, one at a time), the minutely lane (expiry and
    /// reminders, one at a time), and a supervisor that restarts them after a panic.
    /// `/readyz` answers 503 once this future ends, however it ends.
    pub async fn run_worker(&self, config: WorkerConfig, stop: watch::Receiver<bool>) {
        self.worker_health.set(WorkerState::Running);
        let _guard = RunningGuard(self.worker_health.clone());
        loop {
            let lanes = AssertUnwindSafe(self.run_lanes(config, stop.clone())).catch_unwind();
            match lanes.await {
                Ok(()) => break,
                Err(panic) => {
                    tracing::error!(panic = %panic_message(panic.as_ref()), "the job worker panicked; restarting it");
                    tokio::time::sleep(StdDuration::from_secs(1)).await;
                }
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    async fn run_lanes(&self, config: WorkerConfig, stop: watch::Receiver<bool>) {
        let listen = async {
            let mut listener = match self.db.listen_for_jobs().await {
                Ok(Some(l)) => l,
                Ok(None) => return std::future::pending().await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN for jobs; polling only");
                    return std::future::pending().await;
                }
            };
            loop {
                match listener.next().await {
                    Ok(()) => {
                        self.wake.notify_one();
                        self.wake_webhooks.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "job notifications interrupted");
                        tokio::time::sleep(StdDuration::from_secs(1)).await;
                    }
                }
            }
        };
        let urgent = self.run_lane(
            URGENT,
            config.concurrency.max(1),
            Lane::Urgent,
            config,
            stop.clone(),
        );
        let webhooks = self.run_lane(
            WEBHOOKS,
            config.webhook_concurrency.max(1),
            Lane::Webhooks,
            config,
            stop.clone(),
        );
        let maintenance = self.run_lane(MAINTENANCE, 1, Lane::Maintenance, config, stop.clone());
        let minutely = self.run_lane(MINUTELY, 1, Lane::Minutely, config, stop.clone());
        tokio::select! {
            () = async { tokio::join!(urgent, webhooks, maintenance, minutely); } => {}
            () = listen => {}
        }
    }

    /// Claims jobs of `kinds` while a slot is free, runs each in a task of its own, and
    /// waits for a wake-up, a finished job, the poll or `stop`. Dropping it aborts its jobs
    /// (their leases run out and another worker takes them).
    async fn run_lane(
        &self,
        kinds: &'static [JobKind],
        slots: usize,
        lane: Lane,
        config: WorkerConfig,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut running: JoinSet<()> = JoinSet::new();
        let mut last_schedule: Option<DateTime<Utc>> = None;
        let mut last_minutely: Option<DateTime<Utc>> = None;
        let mut last_give_up: Option<DateTime<Utc>> = None;
        let urgent = lane == Lane::Urgent;
        let wake = match lane {
            Lane::Urgent => Some(self.wake.clone()),
            Lane::Webhooks => Some(self.wake_webhooks.clone()),
            Lane::Maintenance | Lane::Minutely => None,
        };
        loop {
            let now = self.clock.now();
            if lane == Lane::Maintenance && last_schedule.is_none_or(|t| now - t >= PERIODIC_EVERY)
            {
                match self.schedule_periodic_jobs().await {
                    Ok(()) => last_schedule = Some(now),
                    Err(e) => tracing::warn!(error = %e, "could not schedule periodic jobs"),
                }
            }
            if lane == Lane::Minutely && last_minutely.is_none_or(|t| now - t >= MINUTELY_EVERY) {
                match self.schedule_minutely_jobs().await {
                    Ok(()) => last_minutely = Some(now),
                    Err(e) => tracing::warn!(error = %e, "could not schedule expiry and reminders"),
                }
            }
            if urgent && last_give_up.is_none_or(|t| now - t >= Duration::seconds(5)) {
                match self.give_up_exhausted_jobs().await {
                    Ok(_) => last_give_up = Some(now),
                    Err(e) => tracing::warn!(error = %e, "could not give up exhausted jobs"),
                }
            }
            // Every free slot in one claim (one commit: on SQLite each is a sync of the log).
            while running.len() < slots {
                match self.claim_due(kinds, slots - running.len()).await {
                    Ok(jobs) if jobs.is_empty() => break,
                    Ok(jobs) => {
                        for job in jobs {
                            let service = self.clone();
                            running.spawn(async move { service.run_claimed(job, config).await });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "worker could not claim jobs");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(config.poll) => {}
                _ = async { if let Some(w) = &wake { w.notified().await } }, if wake.is_some() => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    // Every job already finished too (a group commit ends several at
                    // once): their slots are claimed together, in one commit.
                    for done in std::iter::once(done).chain(std::iter::from_fn(|| running.try_join_next())) {
                        if let Err(e) = done
                            && e.is_panic()
                        {
                            tracing::error!("a job task panicked outside its job");
                        }
                    }
                }
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        // Let running jobs finish for a while; what is left is aborted (their leases run out).
        let _ = tokio::time::timeout(StdDuration::from_secs(10), async {
            while running.join_next().await.is_some() {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind runs in exactly one lane, and expiry and reminders never share one with
    /// the orphan scan (which may take minutes on a large store).
    #[test]
    fn each_kind_has_one_lane_and_the_minutely_jobs_their_own() {
        for kind in JobKind::ALL {
            let lanes = [URGENT, WEBHOOKS, MAINTENANCE, MINUTELY]
                .iter()
                .filter(|l| l.contains(kind))
                .count();
            assert_eq!(lanes, 1, "{kind:?}");
        }
        for kind in [JobKind::ExpireRequests, JobKind::SendReminders] {
            assert_eq!(lane_of(kind), Lane::Minutely);
            assert_ne!(lane_of(kind), lane_of(JobKind::RemoveOrphanBlobs));
        }
        assert_eq!(lane_of(JobKind::RemoveOrphanBlobs), Lane::Maintenance);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1).num_seconds(), 10);
        assert_eq!(backoff(2).num_seconds(), 20);
        assert_eq!(backoff(4).num_seconds(), 80);
        assert_eq!(backoff(12).num_seconds(), 3600);
        assert_eq!(backoff(1000).num_seconds(), 3600);
    }

    /// The payloads earlier builds wrote by hand decode into the same jobs, and every job
    /// writes what it reads.
    #[test]
    fn payloads_of_earlier_builds_decode_and_round_trip() {
        let (o, r, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let old = [
            (
                JobKind::SendInvitation,
                serde_json::json!({"org_id": o, "signature_request_id": r, "signer_id": s}),
                Job::SendInvitation {
                    org_id: o,
                    request_id: r,
                    signer_id: s,
                },
            ),
            (
                JobKind::SendNotice,
                serde_json::json!({"org_id": o, "signature_request_id": r, "signer_id": s, "kind": "declined"}),
                Job::SendNotice {
                    org_id: o,
                    request_id: r,
                    signer_id: s,
                    notice: NoticeKind::Declined,
                },
            ),
            (
                JobKind::SealDocument,
                serde_json::json!({"org_id": o, "signature_request_id": r}),
                Job::SealDocument {
                    org_id: o,
                    request_id: r,
                },
            ),
            (
                JobKind::SendNotice,
                serde_json::json!({"org_id": o, "signature_request_id": r, "signer_id": s, "kind": "reminder"}),
                Job::SendReminder {
                    org_id: o,
                    request_id: r,
                    signer_id: s,
                    number: None,
                },
            ),
            (
                JobKind::RemoveOrphanBlobs,
                serde_json::json!({}),
                Job::RemoveOrphanBlobs,
            ),
        ];
        for (kind, payload, job) in old {
            assert_eq!(Job::decode(kind, &payload.to_string()).unwrap(), job);
            let new = job.new_job(Utc::now());
            assert_eq!(new.kind, kind);
            assert_eq!(Job::decode(kind, &new.payload).unwrap(), job);
        }
        assert_eq!(
            Job::SealDocument {
                org_id: o,
                request_id: r
            }
            .dedup_key()
            .unwrap(),
            format!("seal:{r}")
        );
        let scheduled = Job::SendReminder {
            org_id: o,
            request_id: r,
            signer_id: s,
            number: Some(2),
        };
        let row = scheduled.new_job(Utc::now());
        assert_eq!(Job::decode(row.kind, &row.payload).unwrap(), scheduled);
        assert_eq!(row.dedup_key.unwrap(), format!("notice:reminder:{s}"));
        assert!(Job::decode(JobKind::SealDocument, "{}").is_err());
        assert!(
            Job::decode(
                JobKind::SendNotice,
                &serde_json::json!({"org_id": o, "signature_request_id": r, "signer_id": s, "kind": "x"}).to_string()
            )
            .is_err()
        );
    }
}
