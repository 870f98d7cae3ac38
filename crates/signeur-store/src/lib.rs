//! Signeur's storage: one set of SQL on SQLite and PostgreSQL, the migrations for both, and
//! the blob store for documents.
//!
//! Every query is written once with `$1` placeholders and run on either pool through the
//! [`on_db!`] and [`on_tx!`] macros; the few statements whose SQL must differ (row locks,
//! `SKIP LOCKED`) say so where they are. Rows are plain structs decoded by name on both
//! backends. Instants are bound from the application's clock, never `now()` in SQL.

mod blobs;
mod db;
mod deliveries;
mod events;
mod idempotency;
mod jobs;
mod orgs;
mod reminders;
#[macro_use]
mod requests;
mod rfc3339;
mod sessions;
mod signing;
mod webhooks;

pub use blobs::{BlobInfo, Blobs};
pub use db::{
    Backend, DEFAULT_PG_CONNECTIONS, DEFAULT_SQLITE_READERS, Db, DbOptions, SqlitePools, Tx,
    migrations_versions,
};
pub use deliveries::{AttemptRow, DeliveryRow};
pub use events::{EventFilter, append_event};
pub use idempotency::{IdempotencyRecord, Reservation};
pub use jobs::{ClaimedJob, ExhaustedJob, JobListener, NewJob, PendingJob};
pub use orgs::{ApiKeyRow, KeyLookupRow, OrgRow, SealKeyRow};
pub use reminders::ReminderRow;
pub use requests::{EventRow, ListFilter, RequestRow, RequestWithParts, SignerRow};
pub use sessions::{SessionRow, SettingsChange, SettingsRow};
pub use signing::{CodeGate, Signature};
pub use webhooks::{EndpointChange, WebhookEndpointRow};

/// Failures of the database or the blob store: never the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("blob storage: {0}")]
    Blob(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// A unique constraint refused the write (someone else got there first).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
