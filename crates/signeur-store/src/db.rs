use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, SqlSafeStr, Sqlite, Transaction};

use crate::{Result, StoreError};

/// Runs `$body` with `$c` bound to the (reading) pool of whichever backend `$db` is.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite(pools) => {
                let $c = &pools.read;
                $body
            }
            $crate::Db::Postgres($c) => $body,
        }
    };
}

/// Like [`on_db!`] for a statement that writes: on SQLite it runs on the one writer
/// connection. Never call it while holding a [`Tx`]: on SQLite that waits for itself.
#[macro_export]
macro_rules! on_db_write {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite(pools) => {
                let $c = &pools.write;
                $body
            }
            $crate::Db::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the open transaction's connection.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePools),
    Postgres(PgPool),
}

/// SQLite allows one writer at a time. Writes go through a pool of one connection, so
/// writers queue fairly in-process instead of sleeping in SQLite's busy handler; reads use
/// their own pool and never wait for writers (WAL).
#[derive(Clone, Debug)]
pub struct SqlitePools {
    pub read: SqlitePool,
    pub write: SqlitePool,
}

/// A write transaction. On SQLite it starts with `BEGIN IMMEDIATE`: the one writer lock is
/// taken up front, so a transaction that reads and then writes never fails half-way.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("../migrations/sqlite/0001_core.sql"),
    ),
    (
        2,
        "signing",
        include_str!("../migrations/sqlite/0002_signing.sql"),
    ),
    (
        3,
        "sessions",
        include_str!("../migrations/sqlite/0003_sessions.sql"),
    ),
    (
        4,
        "seal_keys",
        include_str!("../migrations/sqlite/0004_seal_keys.sql"),
    ),
    (
        5,
        "signature_position",
        include_str!("../migrations/sqlite/0005_signature_position.sql"),
    ),
    (
        6,
        "materialized_parts",
        include_str!("../migrations/sqlite/0006_materialized_parts.sql"),
    ),
    (
        7,
        "named_parts",
        include_str!("../migrations/sqlite/0007_named_parts.sql"),
    ),
    (
        8,
        "job_leases",
        include_str!("../migrations/sqlite/0008_job_leases.sql"),
    ),
    (
        9,
        "idempotency_token",
        include_str!("../migrations/sqlite/0009_idempotency_token.sql"),
    ),
    (
        10,
        "link_tokens_at_rest",
        include_str!("../migrations/sqlite/0010_link_tokens_at_rest.sql"),
    ),
    (
        11,
        "webhook_endpoints",
        include_str!("../migrations/sqlite/0011_webhook_endpoints.sql"),
    ),
    (
        12,
        "webhook_deliveries",
        include_str!("../migrations/sqlite/0012_webhook_deliveries.sql"),
    ),
    (
        13,
        "settings_branding_legacy_webhook",
        include_str!("../migrations/sqlite/0013_settings_branding_legacy_webhook.sql"),
    ),
    (
        14,
        "expiry_reminders",
        include_str!("../migrations/sqlite/0014_expiry_reminders.sql"),
    ),
    (
        15,
        "org_rate_limits",
        include_str!("../migrations/sqlite/0015_org_rate_limits.sql"),
    ),
    (
        16,
        "webhook_attempts_by_event",
        include_str!("../migrations/sqlite/0016_webhook_attempts_by_event.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("../migrations/postgres/0001_core.sql"),
    ),
    (
        2,
        "signing",
        include_str!("../migrations/postgres/0002_signing.sql"),
    ),
    (
        3,
        "sessions",
        include_str!("../migrations/postgres/0003_sessions.sql"),
    ),
    (
        4,
        "seal_keys",
        include_str!("../migrations/postgres/0004_seal_keys.sql"),
    ),
    (
        5,
        "signature_position",
        include_str!("../migrations/postgres/0005_signature_position.sql"),
    ),
    (
        6,
        "materialized_parts",
        include_str!("../migrations/postgres/0006_materialized_parts.sql"),
    ),
    (
        7,
        "named_parts",
        include_str!("../migrations/postgres/0007_named_parts.sql"),
    ),
    (
        8,
        "job_leases",
        include_str!("../migrations/postgres/0008_job_leases.sql"),
    ),
    (
        9,
        "idempotency_token",
        include_str!("../migrations/postgres/0009_idempotency_token.sql"),
    ),
    (
        10,
        "link_tokens_at_rest",
        include_str!("../migrations/postgres/0010_link_tokens_at_rest.sql"),
    ),
    (
        11,
        "webhook_endpoints",
        include_str!("../migrations/postgres/0011_webhook_endpoints.sql"),
    ),
    (
        12,
        "webhook_deliveries",
        include_str!("../migrations/postgres/0012_webhook_deliveries.sql"),
    ),
    (
        13,
        "settings_branding_legacy_webhook",
        include_str!("../migrations/postgres/0013_settings_branding_legacy_webhook.sql"),
    ),
    (
        14,
        "expiry_reminders",
        include_str!("../migrations/postgres/0014_expiry_reminders.sql"),
    ),
    (
        15,
        "org_rate_limits",
        include_str!("../migrations/postgres/0015_org_rate_limits.sql"),
    ),
    (
        16,
        "webhook_attempts_by_event",
        include_str!("../migrations/postgres/0016_webhook_attempts_by_event.sql"),
    ),
];

/// A migration's version and description.
pub type MigrationId = (i64, &'static str);

/// The migration versions of each backend (a test keeps them in step).
pub fn migrations_versions() -> (Vec<MigrationId>, Vec<MigrationId>) {
    let v = |m: &[(i64, &'static str, &str)]| m.iter().map(|(v, d, _)| (*v, *d)).collect();
    (v(SQLITE_MIGRATIONS), v(POSTGRES_MIGRATIONS))
}

fn migrator(list: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// How to connect: the pool size (`SIGNEUR_DATABASE_MAX_CONNECTIONS`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DbOptions {
    /// PostgreSQL: the pool's connections (default 16). SQLite: the readers' pool (default
    /// 8); writes always go through one connection. A use case never needs two connections
    /// at once (a transaction reads through itself), so any size of at least 1 works.
    pub max_connections: Option<u32>,
}

/// PostgreSQL's pool when `SIGNEUR_DATABASE_MAX_CONNECTIONS` is unset.
pub const DEFAULT_PG_CONNECTIONS: u32 = 16;
/// SQLite's readers when `SIGNEUR_DATABASE_MAX_CONNECTIONS` is unset.
pub const DEFAULT_SQLITE_READERS: u32 = 8;

impl Db {
    /// Connects to `sqlite://path` (created on first start, WAL) or `postgres://…` with the
    /// default pool sizes.
    pub async fn connect(url: &str) -> Result<Db> {
        Db::connect_with(url, DbOptions::default()).await
    }

    /// Connects to `sqlite://path` (created on first start, WAL) or `postgres://…`.
    pub async fn connect_with(url: &str, options: DbOptions) -> Result<Db> {
        if options.max_connections == Some(0) {
            return Err(StoreError::Config(
                "SIGNEUR_DATABASE_MAX_CONNECTIONS must be at least 1".into(),
            ));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)?;
            }
            // WAL with synchronous=FULL: every commit syncs the log, so a committed signature
            // survives a power cut (NORMAL syncs only at checkpoints).
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            // A local file does not drop connections: no ping before each use.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(options.max_connections.unwrap_or(DEFAULT_SQLITE_READERS))
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts.read_only(true))
                .await?;
            Ok(Db::Sqlite(SqlitePools { read, write }))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.unwrap_or(DEFAULT_PG_CONNECTIONS))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(StoreError::Config(format!(
                "SIGNEUR_DATABASE_URL must start with sqlite:// or postgres://, not '{}'",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(p) => migrator(SQLITE_MIGRATIONS).run(&p.write).await?,
            Db::Postgres(p) => migrator(POSTGRES_MIGRATIONS).run(p).await?,
        }
        Ok(())
    }

    /// Applies the migrations up to and including `version` (an upgrade test starts a
    /// database at an older schema this way, writes to it, then runs [`Db::migrate`]).
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        match self {
            Db::Sqlite(p) => {
                migrator(SQLITE_MIGRATIONS)
                    .run_to(version, &p.write)
                    .await?
            }
            Db::Postgres(p) => migrator(POSTGRES_MIGRATIONS).run_to(version, p).await?,
        }
        Ok(())
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.write.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_db!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => {
                p.read.close().await;
                p.write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}
