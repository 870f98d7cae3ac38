//! `cargo bench -p signeur --bench webhooks`: webhook delivery throughput and latency, next
//! to a bare loop posting the same bodies with the same HTTP client.
//!
//! The application is assembled as `signeur serve` assembles it (SQLite in a temporary
//! directory and, when `SIGNEUR_BENCH_DATABASE_URL` is set, PostgreSQL in a
//! `signeur_bench_webhooks` schema recreated for every run; migrations, bootstrap, the
//! background worker with its default configuration:
//! 32 webhook slots, a 5 s poll), with `SIGNEUR_WEBHOOK_ALLOW_PRIVATE` so it may deliver to
//! the receiver: an axum handler on 127.0.0.1 answering 204 and recording each arrival.
//!
//! - **throughput**, with 1, 10 and 100 endpoints subscribed to every event (100: two
//!   organizations of 50, the most one may have, each event going to its own 50): signature
//!   requests (`"delivery": "api"`, one-page PDF) are created with the worker stopped until
//!   about `BENCH_DELIVERIES` (default 4000) deliveries are queued; the worker starts and the
//!   time until the receiver has every one of them is measured (each database afresh);
//! - **latency**, one endpoint, the worker running: `BENCH_LATENCY_SAMPLES` (default 100)
//!   requests created one at a time (the next once both events of the previous one arrived);
//!   for each event, its `created_at` (written in the transaction that records it) to the
//!   receiver's arrival, both read from the system clock;
//! - **bare loop**: the bodies the throughput run delivered, signed the same way and posted
//!   by the client the deliveries use (`signeur_service::deliveries::webhook_client`), 32
//!   at once (the webhook lane's slots): the HTTP part alone, the ceiling.
//!
//! Targets checked and printed for each database: ≥ 1000 deliveries/s with 1 endpoint;
//! latency p50 ≤ 50 ms.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use signeur_service::jobs::WorkerConfig;
use signeur_service::webhooks::{MAX_ENDPOINTS, WebhookSettings};
use signeur_service::{Clock, MasterKey, Service};
use signeur_store::{Blobs, Db};

/// The allocator `signeur serve` runs with (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The PostgreSQL schema the bench owns (dropped and recreated for every run).
const PG_SCHEMA: &str = "signeur_bench_webhooks";
const FIXTURE: &[u8] = include_bytes!("../../signeur-pdf/tests/fixtures/one-page.pdf");
const ENDPOINTS: [usize; 3] = [1, 10, 100];
/// The webhook lane's slots in `WorkerConfig::default()`, and the bare loop's concurrency.
const CONCURRENCY: usize = 32;
const TARGET_PER_SEC: f64 = 1000.0;
const TARGET_P50_MS: f64 = 50.0;
/// Bound on one run, so a stuck worker cannot hang the bench.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// What the receiver saw: each arrival's body and time.
#[derive(Default)]
struct Arrivals {
    list: Mutex<Vec<(Bytes, DateTime<Utc>)>>,
    count: AtomicUsize,
    changed: Notify,
}

impl Arrivals {
    fn reset(&self) -> Vec<(Bytes, DateTime<Utc>)> {
        let taken = std::mem::take(&mut *self.list.lock().unwrap_or_else(|p| p.into_inner()));
        self.count.store(0, Ordering::SeqCst);
        taken
    }

    /// Waits until `n` arrived (since the last reset).
    async fn wait_for(&self, n: usize) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let notified = self.changed.notified();
            if self.count.load(Ordering::SeqCst) >= n {
                return Ok(());
            }
            let left = RUN_TIMEOUT
                .checked_sub(start.elapsed())
                .context("the receiver waited too long")?;
            if tokio::time::timeout(left.min(Duration::from_secs(1)), notified)
                .await
                .is_err()
            {
                ensure!(
                    start.elapsed() < RUN_TIMEOUT,
                    "only {} of {n} arrived within {RUN_TIMEOUT:?}",
                    self.count.load(Ordering::SeqCst)
                );
            }
        }
    }
}

struct Row {
    endpoints: usize,
    events: usize,
    deliveries: usize,
    took: Duration,
}

fn main() -> anyhow::Result<()> {
    let var = |name: &str, default: usize| -> anyhow::Result<usize> {
        match std::env::var(name) {
            Ok(v) => v.trim().parse().with_context(|| format!("{name}={v}")),
            Err(_) => Ok(default),
        }
    };
    let target_deliveries = var("BENCH_DELIVERIES", 4000)?.max(1);
    let samples = var("BENCH_LATENCY_SAMPLES", 100)?.max(1);
    let mut backends = vec![Backend::Sqlite];
    match std::env::var("SIGNEUR_BENCH_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => backends.push(Backend::Postgres(url.trim().into())),
        _ => eprintln!("SIGNEUR_BENCH_DATABASE_URL is not set: PostgreSQL skipped."),
    }
    let body = json!({
        "title": "Benchmark agreement",
        "delivery": "api",
        "signers": [{"email": "alice@example.com", "name": "Alice Example"}],
        "document": {
            "filename": "agreement.pdf",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(FIXTURE),
        },
    })
    .to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (reports, bare) = runtime.block_on(async {
        let arrivals = Arc::new(Arrivals::default());
        let url = receiver(arrivals.clone()).await?;
        let mut reports = Vec::new();
        let mut delivered = Vec::new();
        for backend in &backends {
            let mut rows = Vec::new();
            for endpoints in ENDPOINTS {
                let (row, bodies) = throughput(
                    backend,
                    &url,
                    &arrivals,
                    &body,
                    endpoints,
                    target_deliveries,
                )
                .await?;
                if endpoints == 1 && delivered.is_empty() {
                    delivered = bodies;
                }
                rows.push(row);
            }
            let latencies = latency(backend, &url, &arrivals, &body, samples).await?;
            reports.push((backend.name(), rows, latencies));
        }
        let bare = bare_loop(&url, &arrivals, &delivered).await?;
        anyhow::Ok((reports, bare))
    })?;
    runtime.shutdown_timeout(Duration::from_secs(5));

    println!(
        "webhook delivery (worker defaults: {CONCURRENCY} webhook slots; receiver answers 204)"
    );
    println!("  database   endpoints   events   deliveries      time   deliveries/s");
    for (name, rows, _) in &reports {
        for r in rows {
            println!(
                "  {name:<8}   {:>9}   {:>6}   {:>10}   {:>5.2} s   {:>12.0}",
                r.endpoints,
                r.events,
                r.deliveries,
                r.took.as_secs_f64(),
                r.deliveries as f64 / r.took.as_secs_f64()
            );
        }
    }
    println!(
        "  bare loop: the same {} bodies, the same client, {CONCURRENCY} at once: {:.0} posts/s",
        bare.0,
        bare.0 as f64 / bare.1.as_secs_f64()
    );
    println!(
        "  event created_at → first attempt at the receiver (1 endpoint, one request at a time):"
    );
    let mut verdicts = Vec::new();
    for (name, rows, latencies) in &reports {
        let mut ms = latencies.clone();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        let (p50, p99, max) = (at(0.5), at(0.99), ms[ms.len() - 1]);
        println!(
            "  {name:<8}   {} events   p50 {p50:6.1} ms   p99 {p99:6.1} ms   max {max:6.1} ms",
            ms.len()
        );
        let one = &rows[0];
        let rate = one.deliveries as f64 / one.took.as_secs_f64();
        verdicts.push((*name, rate >= TARGET_PER_SEC, p50 <= TARGET_P50_MS));
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for (name, rate, p50) in verdicts {
        println!(
            "  targets ({name}): ≥ {TARGET_PER_SEC} deliveries/s with 1 endpoint: {}; p50 ≤ {TARGET_P50_MS} ms: {}",
            verdict(rate),
            verdict(p50)
        );
    }
    Ok(())
}

/// Where a run's database lives: SQLite in a temporary directory, or a PostgreSQL schema
/// of the bench's own (dropped and recreated for every run).
enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// A fresh, migrated database for one run (`dir` holds SQLite's file).
    async fn fresh(&self, dir: &std::path::Path) -> anyhow::Result<Db> {
        let url = match self {
            Backend::Sqlite => format!("sqlite://{}/signeur.db", dir.display()),
            Backend::Postgres(url) => {
                let admin = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .with_context(|| format!("connecting to SIGNEUR_BENCH_DATABASE_URL {url}"))?;
                for sql in [
                    format!("DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"),
                    format!("CREATE SCHEMA {PG_SCHEMA}"),
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&admin)
                        .await?;
                }
                admin.close().await;
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}options[search_path]={PG_SCHEMA}")
            }
        };
        let db = Db::connect(&url).await?;
        db.migrate().await?;
        Ok(db)
    }
}

/// The receiver: `POST /hook` answers 204 and records the arrival.
async fn receiver(arrivals: Arc<Arrivals>) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_headers: HeaderMap, body: Bytes| {
            let arrivals = arrivals.clone();
            async move {
                let now = Utc::now();
                arrivals
                    .list
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((body, now));
                arrivals.count.fetch_add(1, Ordering::SeqCst);
                arrivals.changed.notify_waiters();
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/hook"))
}

/// A fresh application (blobs in `dir`) with `endpoints` endpoints on `url`, spread over
/// as few organizations as [`MAX_ENDPOINTS`] allows (each event goes to its organization's).
async fn app(
    backend: &Backend,
    dir: &std::path::Path,
    url: &str,
    endpoints: usize,
) -> anyhow::Result<(Service, Vec<Uuid>)> {
    let db = backend.fresh(dir).await?;
    let blobs = Blobs::from_url(&format!("file://{}/blobs", dir.display()))?;
    let service = Service::new(db, blobs, Clock::System, MasterKey::generate()).with_webhooks(
        WebhookSettings {
            allow_private: true,
            ..Default::default()
        },
    );
    let Some((org, _key)) = service.bootstrap().await? else {
        bail!("the benchmark database is not empty");
    };
    let mut orgs = vec![org.id];
    for i in 0..endpoints {
        if i > 0 && i % MAX_ENDPOINTS == 0 {
            orgs.push(service.create_org(&format!("Bench {i}")).await?.id);
        }
        let body = json!({"url": format!("{url}?endpoint={i}"), "event_types": []}).to_string();
        service
            .create_webhook_endpoint(*orgs.last().context("an organization")?, body.as_bytes())
            .await?;
    }
    Ok((service, orgs))
}

fn start_worker(service: &Service) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    let service = service.clone();
    let worker =
        tokio::spawn(async move { service.run_worker(WorkerConfig::default(), stopped).await });
    (stop, worker)
}

/// Queues about `target` deliveries to `endpoints` endpoints with the worker stopped, then
/// times the worker delivering them all. Returns the row and the bodies delivered.
async fn throughput(
    backend: &Backend,
    url: &str,
    arrivals: &Arrivals,
    body: &str,
    endpoints: usize,
    target: usize,
) -> anyhow::Result<(Row, Vec<Bytes>)> {
    let dir = tempfile::tempdir()?;
    let (service, orgs) = app(backend, dir.path(), url, endpoints).await?;
    let per_org = endpoints / orgs.len();
    let mut queued = 0;
    let mut events = 0;
    for org in orgs.iter().cycle() {
        if queued >= target {
            break;
        }
        let created = service.create_request(*org, body.as_bytes()).await?;
        let n = created.events.len();
        events += n;
        queued += n * per_org;
    }
    ensure!(
        per_org * orgs.len() == endpoints,
        "{endpoints} endpoints do not split evenly over {} organizations",
        orgs.len()
    );
    arrivals.reset();
    let (stop, worker) = start_worker(&service);
    let start = Instant::now();
    arrivals.wait_for(queued).await?;
    let took = start.elapsed();
    let _ = stop.send(true);
    let _ = worker.await;
    let bodies = arrivals.reset().into_iter().map(|(b, _)| b).collect();
    Ok((
        Row {
            endpoints,
            events,
            deliveries: queued,
            took,
        },
        bodies,
    ))
}

/// Posts `bodies` (signed as the deliveries sign) with the deliveries' client,
/// [`CONCURRENCY`] at once: (posts, time).
async fn bare_loop(
    url: &str,
    arrivals: &Arrivals,
    bodies: &[Bytes],
) -> anyhow::Result<(usize, Duration)> {
    let client = signeur_service::deliveries::webhook_client(true, Duration::from_secs(5))
        .map_err(|e| anyhow::anyhow!(e))?;
    let next = Arc::new(AtomicUsize::new(0));
    let bodies: Arc<Vec<Bytes>> = Arc::new(bodies.to_vec());
    arrivals.reset();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, next, bodies, url) = (
            client.clone(),
            next.clone(),
            bodies.clone(),
            url.to_string(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(body) = bodies.get(i) else {
                    return anyhow::Ok(());
                };
                let t = Utc::now().timestamp();
                let signature = signeur_webhook::sign(&["whsec_bench"], t, body);
                let res = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("X-Signeur-Signature", signature)
                    .header("X-Signeur-Event-Id", "evt_bench")
                    .header("X-Signeur-Event-Type", "signature_request.created")
                    .body(body.clone())
                    .send()
                    .await?;
                ensure!(
                    res.status().is_success(),
                    "the receiver answered {}",
                    res.status()
                );
                let _ = res.bytes().await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((bodies.len(), start.elapsed()))
}

/// Event `created_at` → arrival, in ms, for each event of `samples` requests created one at
/// a time with the worker running.
async fn latency(
    backend: &Backend,
    url: &str,
    arrivals: &Arrivals,
    body: &str,
    samples: usize,
) -> anyhow::Result<Vec<f64>> {
    let dir = tempfile::tempdir()?;
    let (service, orgs) = app(backend, dir.path(), url, 1).await?;
    let org = orgs[0];
    let (stop, worker) = start_worker(&service);
    // Let the worker's first passes (periodic jobs) go by.
    tokio::time::sleep(Duration::from_millis(500)).await;
    arrivals.reset();
    let mut expected = 0;
    for _ in 0..samples {
        let created = service.create_request(org, body.as_bytes()).await?;
        expected += created.events.len();
        arrivals.wait_for(expected).await?;
    }
    let _ = stop.send(true);
    let _ = worker.await;
    let mut ms = Vec::new();
    for (body, arrived) in arrivals.reset() {
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let created = v["created_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .context("created_at")?;
        ms.push(
            (arrived - created.with_timezone(&Utc))
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0,
        );
    }
    Ok(ms)
}
