//! Signeur's use cases. Each public function is one use case and (when it writes) one
//! database transaction: check state → change rows → append events → enqueue jobs.
//! Handlers call these and nothing else; tests call them without HTTP.

mod auth;
mod blocking;
pub mod branding;
pub mod clock;
mod cursor;
pub mod deliveries;
mod error;
mod events;
mod events_api;
pub mod evidence;
pub mod expiry;
pub mod i18n;
mod idempotency;
mod invitations;
pub mod jobs;
pub mod keys;
mod link_tokens;
pub mod links;
pub mod mail;
pub mod metrics;
pub mod model;
mod paging;
pub mod previews;
pub mod ratelimit;
mod requests;
pub mod seal_keys;
pub mod sealing;
pub mod sessions;
pub mod settings;
pub mod signing;
mod single_flight;
pub mod tsa;
pub mod webhooks;

use signeur_store::{Blobs, Db};

pub use auth::{ApiKeyCreated, Authenticated, KEY_CACHE_TTL};
pub use clock::Clock;
pub use error::ServiceError;
pub use events_api::{EventListQuery, EventPage, OrgEvent};
pub use idempotency::normalize_key;
pub use idempotency::{IdempotencyOutcome, ReplayCondition, ReservationToken, StoredResponse};
pub use invitations::{InviteOutcome, ResendOutcome};
pub use keys::MasterKey;
pub use model::{ApiKey, Event, Organization, SignatureRequest, Signer, SigningSession};
pub use ratelimit::{ApiQuota, PageRetry, RateDecision, RateLimitSettings, RedisSettings};
pub use requests::{CancelOutcome, ListQuery, Page, RequestDetail, SignedDocument};

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Everything a use case needs; cheap to clone.
#[derive(Clone)]
pub struct Service {
    db: Db,
    blobs: Blobs,
    pub clock: Clock,
    pub keys: MasterKey,
    pub mail: mail::MailSettings,
    key_cache: std::sync::Arc<auth::KeyCache>,
    previews: std::sync::Arc<previews::PreviewCache>,
    /// Slots for CPU-heavy work on the blocking pool (bcrypt, PDF).
    blocking: std::sync::Arc<blocking::BlockingLimits>,
    seal_override: Option<std::sync::Arc<seal_keys::SealIdentity>>,
    tsa: tsa::TsaSettings,
    pub metrics: std::sync::Arc<metrics::Metrics>,
    job_hook: Option<jobs::JobHook>,
    /// Wakes this node's worker when a job was enqueued here.
    wake: std::sync::Arc<tokio::sync::Notify>,
    worker_health: std::sync::Arc<jobs::WorkerHealth>,
    webhooks: webhooks::WebhookSettings,
    /// Wakes this node's webhook lane when a delivery was enqueued here.
    wake_webhooks: std::sync::Arc<tokio::sync::Notify>,
    /// The one HTTP client of webhook deliveries, built at first use.
    webhook_client: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    /// The API and signer-page rate limits; none unless [`Service::with_rate_limits`].
    rate_limits: Option<std::sync::Arc<ratelimit::RateLimits>>,
    /// `/readyz`'s check in progress, shared by the callers that arrive while it runs.
    readiness: std::sync::Arc<single_flight::SingleFlight<Readiness>>,
    /// Where delivery attempts hand their outcome to be committed in groups, started at
    /// first use.
    webhook_recorder:
        std::sync::Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<deliveries::PendingOutcome>>>,
}

/// The outcome of one readiness check, shared by its callers.
pub type Readiness = std::result::Result<(), std::sync::Arc<NotReady>>;

impl Service {
    pub fn new(db: Db, blobs: Blobs, clock: Clock, keys: MasterKey) -> Self {
        tsa::install_crypto_provider();
        Service {
            db,
            blobs,
            clock,
            keys,
            mail: mail::MailSettings::memory("http://127.0.0.1:8080"),
            key_cache: Default::default(),
            previews: Default::default(),
            blocking: Default::default(),
            seal_override: None,
            tsa: Default::default(),
            metrics: Default::default(),
            job_hook: None,
            wake: Default::default(),
            worker_health: Default::default(),
            webhooks: Default::default(),
            wake_webhooks: Default::default(),
            webhook_client: Default::default(),
            rate_limits: None,
            readiness: Default::default(),
            webhook_recorder: Default::default(),
        }
    }

    /// Replaces the mail settings (by default, messages are kept in memory).
    pub fn with_mail(mut self, mail: mail::MailSettings) -> Self {
        self.mail = mail;
        self
    }

    /// Time-stamp authorities for the seal (PAdES B-T); none: B-B.
    pub fn with_tsa(mut self, tsa: tsa::TsaSettings) -> Self {
        self.tsa = tsa;
        self
    }

    /// Base of the links Signeur hands out, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.mail.public_url
    }

    /// The signing link of a signer.
    pub fn sign_url(&self, access_token: &str) -> String {
        format!("{}/sign/{access_token}", self.public_url())
    }

    /// Closes the database's connections (at shutdown).
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// `/readyz`: the database and the blob store both answer, and the job worker started
    /// in this process (if any) still runs. One check runs at a time: callers arriving
    /// while it runs get its result, so a flood of probes costs one database connection.
    pub async fn ready(&self) -> Readiness {
        let service = self.clone();
        self.readiness
            .run(move || async move { service.check_ready().await.map_err(std::sync::Arc::new) })
            .await
    }

    async fn check_ready(&self) -> std::result::Result<(), NotReady> {
        self.db
            .ping()
            .await
            .map_err(|e| NotReady::Storage(e.into()))?;
        self.blobs
            .ping()
            .await
            .map_err(|e| NotReady::Storage(e.into()))?;
        if let Some(reason) = self.worker_health.stopped() {
            return Err(NotReady::WorkerStopped(reason));
        }
        Ok(())
    }
}

/// Why `/readyz` answers 503.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("The database or the blob store does not answer.")]
    Storage(ServiceError),
    #[error("The job worker is not running ({0}).")]
    WorkerStopped(String),
}
