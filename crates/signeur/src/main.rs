//! The `signeur` binary: the server and the operator commands.

mod config;

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use signeur_http::AppState;

/// mimalloc: a request allocates many small short-lived buffers (rows, views, JSON), which
/// glibc's allocator serves markedly slower under concurrency (see `benches/api.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use signeur_service::jobs::WorkerConfig;
use signeur_service::{Clock, Service};
use signeur_store::{Blobs, Db};

use crate::config::Config;

#[derive(Parser)]
#[command(name = "signeur", version, about = "Self-hostable e-signature server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server and the background workers (bootstraps an empty database).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Send a test message with the configured mail settings.
    SendTestEmail { address: String },
    /// API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Check a sealed PDF's signatures: exit 0 only if the last one covers the whole file and
    /// every signature is intact (1: not valid, 2: not a readable PDF). Trust in the signer's
    /// certificate is not judged here; the report names it.
    Verify {
        /// The sealed PDF.
        file: std::path::PathBuf,
        /// The uploaded original: it must be a byte-exact prefix of the sealed file.
        #[arg(long)]
        original: Option<std::path::PathBuf>,
        /// A request's events as JSON (the `GET /api/v1/signatures/{id}` response, or its
        /// `audit_trail.events` array): their hash chain must be intact.
        #[arg(long)]
        audit: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization and print its id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Give an organization its own API rate limit (`--per-sec N --burst M`), or the
    /// server's again (`--default`). Every node applies it within a second or two, no restart.
    SetRateLimit {
        org_id: Uuid,
        /// Requests a second on average.
        #[arg(long, required_unless_present = "default", requires = "burst")]
        per_sec: Option<u32>,
        /// Requests allowed at once.
        #[arg(long, required_unless_present = "default", requires = "per_sec")]
        burst: Option<u32>,
        /// Back to SIGNEUR_RATE_LIMIT_PER_SEC and SIGNEUR_RATE_LIMIT_BURST.
        #[arg(long, conflicts_with_all = ["per_sec", "burst"])]
        default: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// List an organization's keys.
    List {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; it stops working at once.
    Revoke { key_id: Uuid },
}

fn init_logs(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format.as_deref() == Some("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Everything the server creates (the data directory, the database and its WAL and
    // shared-memory files, blobs and their temporary files, the outbox, keys) is readable
    // by this user only: directories 0700, files 0600.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let config = Config::load()?;
    init_logs(&config);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            connect(&config).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Org {
            command: OrgCommand::Create { name, json },
        } => {
            let service = service(&config, signeur_service::MasterKey::generate()).await?;
            let org = service.create_org(&name).await?;
            if json {
                println!("{}", json!({"id": org.id, "name": org.name}));
            } else {
                println!("{}", org.id);
            }
            Ok(())
        }
        Command::Org {
            command:
                OrgCommand::SetRateLimit {
                    org_id,
                    per_sec,
                    burst,
                    default: _,
                    json,
                },
        } => {
            let quota = match per_sec.zip(burst) {
                Some((per_sec, burst)) => Some(
                    signeur_service::ApiQuota::new(per_sec, burst)
                        .map_err(|e| anyhow::anyhow!("--per-sec / --burst: {e}"))?,
                ),
                None => None,
            };
            let service = service(&config, signeur_service::MasterKey::generate()).await?;
            service.set_org_rate_limit(org_id, quota).await?;
            let limit = quota.map(|q| json!({"per_sec": q.per_sec, "burst": q.burst}));
            if json {
                println!("{}", json!({"id": org_id, "rate_limit": limit}));
            } else if let Some(q) = quota {
                println!(
                    "organization {org_id}: {} requests a second, bursts of {}",
                    q.per_sec, q.burst
                );
            } else {
                println!("organization {org_id}: the server's default rate limit");
            }
            Ok(())
        }
        Command::ApiKey { command } => api_key(&config, command).await,
        Command::Verify {
            file,
            original,
            audit,
            json,
        } => verify(&file, original.as_deref(), audit.as_deref(), json),
        Command::SendTestEmail { address } => {
            let service = service(&config, signeur_service::MasterKey::generate()).await?;
            service
                .send_test_email(&address)
                .await
                .map_err(|e| anyhow::anyhow!("sending to {address}: {e}"))?;
            println!("sent a test message to {address}");
            Ok(())
        }
    }
}

/// `--audit`: the hash chain of a request's events (`Ok(n)` events, or where it breaks).
fn audit_chain(path: &std::path::Path) -> anyhow::Result<Result<usize, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let events = v["audit_trail"]["events"]
        .as_array()
        .or_else(|| v["events"].as_array())
        .or_else(|| v.as_array())
        .context("no events: expected a signature request, {\"events\": […]} or an array")?;
    let mut links = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let field = |name: &str| {
            e[name]
                .as_str()
                .with_context(|| format!("event {i}: no '{name}'"))
        };
        links.push(signeur_core::event::ChainLink {
            id: field("id")?,
            event_type: field("type")?,
            created_at: field("created_at")?,
            data: &e["data"],
            prev_hash: e["prev_hash"].as_str(),
            hash: field("hash")?,
        });
    }
    Ok(match signeur_core::event::verify_chain(&links) {
        Ok(()) => Ok(links.len()),
        Err(b) => Err(format!("{b:?}")),
    })
}

fn verify(
    file: &std::path::Path,
    original: Option<&std::path::Path>,
    audit: Option<&std::path::Path>,
    as_json: bool,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let prefix_ok = match original {
        Some(o) => {
            let orig = std::fs::read(o).with_context(|| format!("reading {}", o.display()))?;
            Some(bytes.len() > orig.len() && bytes.starts_with(&orig))
        }
        None => None,
    };
    let chain = match audit {
        Some(a) => Some(audit_chain(a)?),
        None => None,
    };
    let report = match signeur_pdf::verify(&bytes) {
        Ok(r) => r,
        Err(e) => {
            if as_json {
                println!(
                    "{}",
                    json!({"valid": false, "error": e.code(), "message": e.to_string()})
                );
            } else {
                eprintln!("{}: {e}", file.display());
            }
            std::process::exit(2);
        }
    };
    let valid = report.seal_valid() && prefix_ok != Some(false) && !matches!(chain, Some(Err(_)));
    if as_json {
        let mut v = serde_json::to_value(&report)?;
        v["valid"] = json!(valid);
        if let Some(p) = prefix_ok {
            v["original_is_prefix"] = json!(p);
        }
        match &chain {
            Some(Ok(n)) => v["audit"] = json!({"events": n, "chain_intact": true}),
            Some(Err(e)) => v["audit"] = json!({"chain_intact": false, "break": e}),
            None => {}
        }
        println!("{v}");
    } else {
        for (i, s) in report.signatures.iter().enumerate() {
            println!(
                "signature {} ({}): {}",
                i + 1,
                s.field_name.as_deref().unwrap_or("unnamed"),
                if s.valid() { "intact" } else { "NOT VALID" }
            );
            println!(
                "  signer:   {} (serial {})",
                s.signer_subject, s.signer_serial_hex
            );
            println!(
                "  validity: {} to {}{}",
                s.not_before,
                s.not_after,
                if s.self_signed { ", self-signed" } else { "" }
            );
            let level = match (s.pades_level(), s.has_timestamp) {
                (Some(level), true) => format!(" ({level}: with a signature time-stamp)"),
                (Some(level), false) => format!(" ({level})"),
                (None, true) => " (with a signature time-stamp)".into(),
                (None, false) => String::new(),
            };
            println!("  type:     {}{level}", s.sub_filter);
            if let Some(t) = &s.timestamp_time {
                println!(
                    "  time-stamp: {t} by {}",
                    s.timestamp_authority
                        .as_deref()
                        .unwrap_or("an unnamed authority")
                );
            }
            if let Some(m) = &s.signing_time {
                println!("  claimed:  {m}");
            }
            println!(
                "  covers the whole file: {}",
                if s.covers_whole_file { "yes" } else { "no" }
            );
            for p in &s.problems {
                println!("  problem:  {p}");
            }
        }
        if report.signatures.is_empty() {
            println!("no signatures");
        }
        match prefix_ok {
            Some(true) => println!("original: a byte-exact prefix of the sealed file"),
            Some(false) => println!("original: NOT a prefix of the sealed file"),
            None => {}
        }
        match &chain {
            Some(Ok(n)) => println!("audit trail: {n} events, hash chain intact"),
            Some(Err(e)) => println!("audit trail: hash chain BROKEN ({e})"),
            None => {}
        }
        println!("{}", if valid { "VALID" } else { "NOT VALID" });
    }
    if !valid {
        std::process::exit(1);
    }
    Ok(())
}

async fn connect(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect_with(&config.database_url(), config.database_options()?)
        .await
        .context("connecting to the database")?;
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

async fn service(config: &Config, keys: signeur_service::MasterKey) -> anyhow::Result<Service> {
    let db = connect(config).await?;
    let blobs = Blobs::from_url(&config.storage_url())?;
    let mut service = Service::new(db, blobs, Clock::System, keys)
        .with_mail(config.mail()?)
        .with_tsa(config.tsa()?)
        .with_webhooks(config.webhooks()?);
    if let Some(identity) = config.seal_identity()? {
        service = service.with_seal_identity(identity);
    }
    Ok(service)
}

async fn api_key(config: &Config, command: ApiKeyCommand) -> anyhow::Result<()> {
    // Key management never touches encrypted data: no master key needed.
    let service = service(config, signeur_service::MasterKey::generate()).await?;
    match command {
        ApiKeyCommand::Create { org, json } => {
            let k = service.create_api_key(org).await?;
            if json {
                println!("{}", json!({"id": k.id, "key": k.key}));
            } else {
                println!("{}", k.key);
            }
        }
        ApiKeyCommand::List { org, json } => {
            let keys = service.list_api_keys(org).await?;
            let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(signeur_core::time::format);
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "id": k.id,
                            "prefix": k.prefix,
                            "created_at": signeur_core::time::format(k.created_at),
                            "last_used_at": fmt(k.last_used_at),
                            "revoked_at": fmt(k.revoked_at),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!(
                    "{:<36}  {:<16}  {:<24}  {:<24}  revoked",
                    "id", "prefix", "created", "last used"
                );
                for k in keys {
                    println!(
                        "{:<36}  {:<16}  {:<24}  {:<24}  {}",
                        k.id,
                        k.prefix,
                        signeur_core::time::format(k.created_at),
                        fmt(k.last_used_at).unwrap_or_else(|| "-".into()),
                        fmt(k.revoked_at).unwrap_or_else(|| "-".into()),
                    );
                }
            }
        }
        ApiKeyCommand::Revoke { key_id } => {
            service.revoke_api_key(key_id).await?;
            println!("revoked {key_id}");
        }
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let limits = config.serve_limits()?;
    std::fs::create_dir_all(config.data_dir()).context("creating SIGNEUR_DATA_DIR")?;
    let keys = config.master_key()?;
    let service = service(&config, keys).await?;
    let rate_limits = config.rate_limits()?;
    let service = service
        .with_rate_limits(&rate_limits)
        .context("SIGNEUR_REDIS_URL")?;
    if rate_limits.redis.is_some() {
        tracing::info!("API rate limits shared through Redis (SIGNEUR_REDIS_URL)");
    }
    let sealed = service.seal_plain_link_tokens().await?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "encrypted the signing-link tokens stored before this version"
        );
    }
    if let Some((org, key)) = service.bootstrap().await? {
        println!(
            "Signeur created the organization \"{}\" on this empty database.",
            org.name
        );
        println!("organization_id: {}", org.id);
        println!("api_key: {}", key.key);
        println!(
            "This key is shown only once. Try: curl -H 'Authorization: Bearer {}' {}/api/v1/signatures",
            key.key,
            config.public_url()
        );
    }
    if let Some(files) = signeur_http::serve::raise_open_files_limit()
        && files < limits.max_connections as u64 + 256
    {
        tracing::warn!(
            open_files = files,
            max_connections = limits.max_connections,
            "the open-file limit is below SIGNEUR_MAX_CONNECTIONS (plus room for the database and blobs): \
             accepting will pause when it runs out"
        );
    }
    let addr: SocketAddr = config
        .listen
        .parse()
        .with_context(|| format!("SIGNEUR_LISTEN '{}'", config.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(listen = %listener.local_addr()?, public_url = %config.public_url(), "signeur is listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = {
        let service = service.clone();
        tokio::spawn(async move { service.run_worker(WorkerConfig::default(), stop_rx).await })
    };
    let app = signeur_http::router(
        AppState::new(service.clone())
            .with_trusted_proxies(config.trusted_proxies()?)
            .with_limits(&limits),
    );
    signeur_http::serve(listener, app, limits, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    if let Err(e) = worker.await {
        tracing::warn!(error = %e, "worker ended abnormally");
    }
    service.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
