//! `cargo bench -p signeur --bench api`: throughput and latency of the `/api/v1` JSON API over
//! real HTTP/1.1 on 127.0.0.1, next to the best a handler could do with the same transport.
//!
//! For each database — SQLite in a temporary directory (`sqlite://{dir}/signeur.db`, as in
//! production) and, when `SIGNEUR_BENCH_DATABASE_URL` is set, PostgreSQL (in a `signeur_bench`
//! schema dropped and recreated on every run) — the bench assembles the application as
//! `signeur serve` does (migrations, bootstrap key, background worker, local blob directory,
//! `signeur_http::router`) and measures four scenarios:
//!
//! - **create**: `POST /api/v1/signatures` with a ~100 KB one-page PDF (the `one-page.pdf`
//!   fixture with its content stream padded by a comment, checked with `signeur_pdf::inspect`
//!   before anything starts), two signers, `"delivery": "api"`;
//! - **get**: `GET /api/v1/signatures/{id}` of one request created beforehand;
//! - **baseline A**: a bare axum handler on its own listener answering the very bytes of that
//!   get response from memory: the cost of TCP, hyper, axum and the load generator alone;
//! - **baseline B**: a bare axum handler answering them with one primary-key `SELECT` from a
//!   `bench_json` table in the same database, through the same pool: HTTP plus exactly one
//!   database round trip.
//!
//! `BENCH_SCENARIOS` (a comma-separated list of `create`, `get`, `baseline-a`, `baseline-b`)
//! runs only those, in that order, e.g. to profile one; `BENCH_BACKENDS` (`sqlite`,
//! `postgres`) likewise picks the databases.
//!
//! Load: `BENCH_CONCURRENCY` client tasks (default 16), each on its own keep-alive HTTP/1.1
//! connection, send requests back to back for `BENCH_WARMUP_SECS` (default 1, not recorded),
//! then for `BENCH_SECS` (default 5) with every latency recorded. The measured time is split
//! into `BENCH_ROUNDS` rounds (default 5) in which the scenarios take turns (each later round
//! warms up for 0.25 s to reconnect), so the machine's slow and fast spells, which on a shared
//! 2-core VM move throughput by tens of percent within a minute, fall on every scenario alike. A transport error or any
//! non-2xx status is an error; req/s counts successful requests only. The load generator runs
//! in the same process as the servers and shares their CPUs, so absolute figures are a floor;
//! the ratios between rows are the meaningful part.
//!
//! `BENCH_RATE_LIMIT` sets the API rate limiter (issue 16): `off` (default: none, as a
//! library `Service` has), `local` (every request checked against a per-organization quota
//! of 10⁹ a second, which never refuses: the limiter's cost alone) or `redis` (the same quota
//! kept in the Redis at `SIGNEUR_BENCH_REDIS_URL`, one script call per request). A 429 would
//! count as an error.
//!
//! Targets checked and printed: get ≥ 60 % of baseline B's throughput (each backend); create
//! ≥ 500 req/s with p99 < 50 ms (SQLite).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use signeur_http::AppState;
use signeur_service::jobs::WorkerConfig;
use signeur_service::{Clock, MasterKey, Service};
use signeur_store::{Blobs, Db};

/// The allocator `signeur serve` runs with (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The fixture the uploaded document is built from.
const FIXTURE: &[u8] = include_bytes!("../../signeur-pdf/tests/fixtures/one-page.pdf");
/// Size of the uploaded PDF.
const PDF_BYTES: usize = 100 * 1024;
/// The PostgreSQL schema the bench owns (dropped and recreated on every run).
const PG_SCHEMA: &str = "signeur_bench";
/// Bound on any single request, so a stuck server cannot hang the bench.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Warm-up of every round after the first: the clients' new connections, nothing more.
const RECONNECT_WARMUP: Duration = Duration::from_millis(250);

const TARGET_GET_VS_B: f64 = 0.60;
const TARGET_CREATE_RPS: f64 = 500.0;
const TARGET_CREATE_P99_MS: f64 = 50.0;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench` (and any filter); this bench has nothing to filter.
    let settings = Settings::from_env()?;
    let pdf = padded_pdf(FIXTURE, PDF_BYTES)?;
    let info = signeur_pdf::inspect(&pdf)
        .map_err(|e| anyhow::anyhow!("the generated PDF fails upload inspection: {e}"))?;
    ensure!(
        info.page_count == 1,
        "the generated PDF should have one page"
    );
    let create_body = Bytes::from(
        json!({
            "title": "Benchmark agreement",
            "message": "Please sign.",
            "delivery": "api",
            "signers": [
                {"email": "alice@example.com", "name": "Alice Example"},
                {"email": "bob@example.com", "name": "Bob Example", "locale": "fr"},
            ],
            "document": {
                "filename": "agreement.pdf",
                "content_base64": base64::engine::general_purpose::STANDARD.encode(&pdf),
            },
            "metadata": {"bench": true},
        })
        .to_string(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let sqlite_url = format!("sqlite://{}/signeur.db", dir.path().display());
        if settings.runs("sqlite") {
            rows.extend(run_backend(&settings, "sqlite", &sqlite_url, &create_body).await?);
        }
        match std::env::var("SIGNEUR_BENCH_DATABASE_URL") {
            _ if !settings.runs("postgres") => {}
            Ok(url) if !url.trim().is_empty() => {
                let url = fresh_pg_schema(url.trim()).await?;
                rows.extend(run_backend(&settings, "postgres", &url, &create_body).await?);
            }
            _ => eprintln!("SIGNEUR_BENCH_DATABASE_URL is not set: PostgreSQL skipped."),
        }
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(5));

    print_report(&settings, pdf.len(), create_body.len(), &rows);
    Ok(())
}

/// Load parameters, from the environment.
struct Settings {
    /// `BENCH_ROUNDS` (default 5): the measured time of each scenario is split into this many
    /// rounds, and the scenarios take turns.
    rounds: u32,
    /// `BENCH_SCENARIOS`: which scenarios run, in that order (default all, in the order of
    /// [`Scenario::ALL`]), e.g. `get,baseline-b` when profiling one of them.
    scenarios: Vec<Scenario>,
    /// `BENCH_BACKENDS`: `sqlite`, `postgres` or both (default), comma-separated.
    backends: Vec<&'static str>,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
    /// `BENCH_RATE_LIMIT`: `off`, `local` or `redis` (with `SIGNEUR_BENCH_REDIS_URL`).
    rate_limit: Option<signeur_service::RateLimitSettings>,
    rate_limit_name: String,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        fn var(name: &str, default: f64) -> anyhow::Result<f64> {
            match std::env::var(name) {
                Ok(v) => {
                    let n: f64 = v.trim().parse().with_context(|| format!("{name}={v}"))?;
                    ensure!(
                        n.is_finite() && n >= 0.0,
                        "{name} must be a positive number"
                    );
                    Ok(n)
                }
                Err(_) => Ok(default),
            }
        }
        let concurrency = var("BENCH_CONCURRENCY", 16.0)? as usize;
        let measure = var("BENCH_SECS", 5.0)?;
        ensure!(
            (1..=1024).contains(&concurrency),
            "BENCH_CONCURRENCY must be 1 to 1024"
        );
        ensure!(measure > 0.0, "BENCH_SECS must be more than 0");
        let scenarios = match std::env::var("BENCH_SCENARIOS") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|name| {
                    Scenario::ALL
                        .into_iter()
                        .find(|s| s.name() == name.trim())
                        .with_context(|| {
                            format!("BENCH_SCENARIOS: unknown '{name}' (create, get, baseline-a, baseline-b)")
                        })
                })
                .collect::<anyhow::Result<_>>()?,
            _ => Scenario::ALL.to_vec(),
        };
        let backends = match std::env::var("BENCH_BACKENDS") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|name| match name.trim() {
                    "sqlite" => Ok("sqlite"),
                    "postgres" => Ok("postgres"),
                    other => bail!("BENCH_BACKENDS: unknown '{other}' (sqlite, postgres)"),
                })
                .collect::<anyhow::Result<_>>()?,
            _ => vec!["sqlite", "postgres"],
        };
        let rate_limit_name = std::env::var("BENCH_RATE_LIMIT").unwrap_or_else(|_| "off".into());
        let never_refusing = |redis| signeur_service::RateLimitSettings {
            api: signeur_service::ApiQuota::new(1_000_000_000, 1_000_000_000)
                .expect("a valid quota"),
            pages_per_min: 1_000_000_000,
            redis,
        };
        let rate_limit = match rate_limit_name.trim() {
            "off" => None,
            "local" => Some(never_refusing(None)),
            "redis" => {
                let url = std::env::var("SIGNEUR_BENCH_REDIS_URL")
                    .context("BENCH_RATE_LIMIT=redis needs SIGNEUR_BENCH_REDIS_URL")?;
                Some(never_refusing(Some(signeur_service::RedisSettings {
                    url,
                    key_prefix: format!("signeur-bench:{}:", Uuid::new_v4().simple()),
                })))
            }
            other => bail!("BENCH_RATE_LIMIT: unknown '{other}' (off, local, redis)"),
        };
        let rounds = var("BENCH_ROUNDS", 5.0)? as u32;
        ensure!((1..=100).contains(&rounds), "BENCH_ROUNDS must be 1 to 100");
        Ok(Settings {
            rounds,
            scenarios,
            backends,
            concurrency,
            warmup: Duration::from_secs_f64(var("BENCH_WARMUP_SECS", 1.0)?),
            measure: Duration::from_secs_f64(measure),
            rate_limit,
            rate_limit_name,
        })
    }

    fn runs(&self, backend: &str) -> bool {
        self.backends.contains(&backend)
    }
}

// --- The uploaded document ---------------------------------------------------------------------

/// The fixture rewritten with its content stream padded by a PDF comment so the whole file is
/// `target` bytes, with a fresh classic cross-reference table (the fixture's objects are kept
/// verbatim otherwise).
fn padded_pdf(fixture: &[u8], target: usize) -> anyhow::Result<Vec<u8>> {
    let first_obj = find(fixture, b"1 0 obj\n").context("fixture: no object 1")?;
    let xref_at = rfind(fixture, b"\nxref\n").context("fixture: no xref table")? + 1;
    let trailer_at = rfind(fixture, b"trailer\n").context("fixture: no trailer")?;
    let startxref_at = rfind(fixture, b"startxref").context("fixture: no startxref")?;
    let trailer = &fixture[trailer_at..startxref_at];

    // The fixture's objects: "N 0 obj\n…\nendobj\n", one after the other.
    let mut objects: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut rest = &fixture[first_obj..xref_at];
    while !rest.is_empty() {
        let head_end = find(rest, b" 0 obj\n").context("fixture: malformed object header")?;
        let num: usize = std::str::from_utf8(&rest[..head_end])?.trim().parse()?;
        let body_start = head_end + b" 0 obj\n".len();
        let body_len = find(&rest[body_start..], b"\nendobj\n").context("fixture: no endobj")?;
        objects.push((num, rest[body_start..body_start + body_len].to_vec()));
        rest = &rest[body_start + body_len + b"\nendobj\n".len()..];
    }
    let content = objects
        .iter_mut()
        .find(|(_, body)| find(body, b"\nstream\n").is_some())
        .context("fixture: no content stream")?;
    let data_start = find(&content.1, b"\nstream\n").context("stream")? + b"\nstream\n".len();
    let data_end = rfind(&content.1, b"\nendstream").context("fixture: no endstream")?;
    let mut data = content.1[data_start..data_end].to_vec();

    let build = |data: &[u8]| -> Vec<u8> {
        let mut out = fixture[..first_obj].to_vec();
        let mut offsets = Vec::new();
        for (num, body) in &objects {
            offsets.push((*num, out.len()));
            out.extend_from_slice(format!("{num} 0 obj\n").as_bytes());
            if find(body, b"\nstream\n").is_some() {
                out.extend_from_slice(format!("<< /Length {} >>\nstream\n", data.len()).as_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\nendstream");
            } else {
                out.extend_from_slice(body);
            }
            out.extend_from_slice(b"\nendobj\n");
        }
        let size = offsets.iter().map(|(n, _)| n + 1).max().unwrap_or(1);
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f \n").as_bytes());
        for n in 1..size {
            match offsets.iter().find(|(num, _)| *num == n) {
                Some((_, at)) => out.extend_from_slice(format!("{at:010} 00000 n \n").as_bytes()),
                None => out.extend_from_slice(b"0000000000 00000 f \n"),
            }
        }
        out.extend_from_slice(trailer);
        out.extend_from_slice(format!("startxref\n{xref}\n%%EOF\n").as_bytes());
        out
    };

    let unpadded = build(&data).len();
    ensure!(
        unpadded < target,
        "the fixture is already over {target} bytes"
    );
    // A comment runs to the end of its line; one long comment line of exactly the missing
    // size (the digits of /Length grow with it, hence the correction below).
    data.extend_from_slice(b"\n%");
    let missing = target - build(&data).len();
    data.resize(data.len() + missing, b'x');
    let pdf = build(&data);
    let over = pdf.len().saturating_sub(target);
    data.truncate(data.len() - over);
    let pdf = build(&data);
    ensure!(pdf.len() == target, "padded PDF is {} bytes", pdf.len());
    Ok(pdf)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

// --- Servers -----------------------------------------------------------------------------------

/// An axum server on 127.0.0.1 that stops when told.
struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn start(listener: TcpListener, router: axum::Router) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        });
        Ok(Server { addr, stop, task })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn shut_down(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let served = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .context("a server did not stop within 10 s")??;
        Ok(served?)
    }
}

async fn local_listener() -> anyhow::Result<TcpListener> {
    Ok(TcpListener::bind("127.0.0.1:0").await?)
}

/// Baseline A: the get response's bytes, from memory.
async fn json_from_memory(State(body): State<Bytes>, Path(_id): Path<Uuid>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Baseline B: the get response's bytes, from one primary-key `SELECT`.
async fn json_from_db(State(db): State<Db>, Path(id): Path<Uuid>) -> Response {
    match select_bench_json(&db, id).await {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn select_bench_json(db: &Db, id: Uuid) -> sqlx::Result<Option<String>> {
    signeur_store::on_db!(db, pool => {
        sqlx::query_scalar("SELECT body FROM bench_json WHERE id = $1").bind(id).fetch_optional(pool).await
    })
}

async fn create_bench_json(db: &Db, id: Uuid, body: &str) -> sqlx::Result<()> {
    let create = match db {
        Db::Sqlite(_) => "CREATE TABLE bench_json (id BLOB PRIMARY KEY, body TEXT NOT NULL)",
        Db::Postgres(_) => "CREATE TABLE bench_json (id uuid PRIMARY KEY, body text NOT NULL)",
    };
    signeur_store::on_db_write!(db, pool => {
        sqlx::query("DROP TABLE IF EXISTS bench_json").execute(pool).await?;
        sqlx::query(create).execute(pool).await?;
        sqlx::query("INSERT INTO bench_json (id, body) VALUES ($1, $2)")
            .bind(id)
            .bind(body)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Drops and recreates the bench's own schema; returns the URL that puts it first on the
/// search path, so migrations and queries land there.
async fn fresh_pg_schema(url: &str) -> anyhow::Result<String> {
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .with_context(|| {
            format!("connecting to SIGNEUR_BENCH_DATABASE_URL (does the database exist?) {url}")
        })?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"
    )))
    .execute(&admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {PG_SCHEMA}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options[search_path]={PG_SCHEMA}"))
}

// --- One backend -------------------------------------------------------------------------------

struct Row {
    backend: &'static str,
    scenario: Scenario,
    stats: Stats,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Create,
    Get,
    BaselineA,
    BaselineB,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Create,
        Scenario::Get,
        Scenario::BaselineA,
        Scenario::BaselineB,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Create => "create",
            Scenario::Get => "get",
            Scenario::BaselineA => "baseline-a",
            Scenario::BaselineB => "baseline-b",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Scenario::Create => "create   POST /api/v1/signatures",
            Scenario::Get => "get      GET /api/v1/signatures/{id}",
            Scenario::BaselineA => "baseline A  JSON from memory",
            Scenario::BaselineB => "baseline B  JSON from 1 SELECT",
        }
    }
}

async fn run_backend(
    settings: &Settings,
    backend: &'static str,
    url: &str,
    create_body: &Bytes,
) -> anyhow::Result<Vec<Row>> {
    let blob_dir = tempfile::tempdir()?;
    let db = Db::connect(url)
        .await
        .with_context(|| format!("connecting to {backend}"))?;
    db.migrate().await.context("applying migrations")?;
    let blobs = Blobs::from_url(&format!("file://{}", blob_dir.path().display()))?;
    let mut service = Service::new(db.clone(), blobs, Clock::System, MasterKey::generate());
    if let Some(limits) = &settings.rate_limit {
        service = service
            .with_rate_limits(limits)
            .context("BENCH_RATE_LIMIT")?;
    }
    let Some((_org, key)) = service.bootstrap().await? else {
        bail!("the {backend} benchmark database is not empty");
    };
    let (stop_worker, worker_stop) = watch::channel(false);
    let worker = tokio::spawn({
        let service = service.clone();
        async move {
            service
                .run_worker(WorkerConfig::default(), worker_stop)
                .await
        }
    });

    let listener = local_listener().await?;
    let app = Server::start(
        listener,
        signeur_http::router(AppState::new(service.clone())),
    )?;
    let auth = format!("Bearer {}", key.key);

    // The request every get reads, and the bytes the baselines answer with.
    let client = client()?;
    let created = client
        .post(app.url("/api/v1/signatures"))
        .header(header::AUTHORIZATION, &auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(create_body.clone())
        .send()
        .await?;
    let status = created.status();
    let created = created.text().await?;
    ensure!(status == StatusCode::CREATED, "create: {status} {created}");
    let created: serde_json::Value = serde_json::from_str(&created)?;
    let id: Uuid = created["id"].as_str().context("create: no id")?.parse()?;
    let get_path = format!("/api/v1/signatures/{id}");
    let got = client
        .get(app.url(&get_path))
        .header(header::AUTHORIZATION, &auth)
        .send()
        .await?;
    ensure!(got.status() == StatusCode::OK, "get: {}", got.status());
    let get_json = got.bytes().await?;
    create_bench_json(&db, id, std::str::from_utf8(&get_json)?).await?;

    let baseline_a = Server::start(
        local_listener().await?,
        axum::Router::new()
            .route("/api/v1/signatures/{id}", get(json_from_memory))
            .with_state(get_json.clone()),
    )?;
    let baseline_b = Server::start(
        local_listener().await?,
        axum::Router::new()
            .route("/api/v1/signatures/{id}", get(json_from_db))
            .with_state(db.clone()),
    )?;
    for server in [&baseline_a, &baseline_b] {
        let res = client.get(server.url(&get_path)).send().await?;
        ensure!(res.status() == StatusCode::OK, "baseline: {}", res.status());
        ensure!(
            res.bytes().await? == get_json,
            "a baseline does not answer the get response's bytes"
        );
    }

    let plan: [(Scenario, MakeRequest); 4] = [
        (Scenario::Create, {
            let (url, auth, body) = (
                app.url("/api/v1/signatures"),
                auth.clone(),
                create_body.clone(),
            );
            Arc::new(move |c: &reqwest::Client| {
                c.post(&url)
                    .header(header::AUTHORIZATION, &auth)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
        }),
        (Scenario::Get, {
            let (url, auth) = (app.url(&get_path), auth.clone());
            Arc::new(move |c: &reqwest::Client| c.get(&url).header(header::AUTHORIZATION, &auth))
        }),
        (Scenario::BaselineA, {
            let url = baseline_a.url(&get_path);
            Arc::new(move |c: &reqwest::Client| c.get(&url))
        }),
        (Scenario::BaselineB, {
            let url = baseline_b.url(&get_path);
            Arc::new(move |c: &reqwest::Client| c.get(&url))
        }),
    ];
    // Scenarios take turns, round after round, so a slow spell of the machine falls on all of
    // them alike instead of on whichever happened to run then.
    let mut rows: Vec<Row> = Vec::new();
    let slice = settings.measure / settings.rounds;
    for round in 0..settings.rounds {
        // The first round warms up fully; later ones only reconnect.
        let warmup = if round == 0 {
            settings.warmup
        } else {
            settings.warmup.min(RECONNECT_WARMUP)
        };
        for &scenario in &settings.scenarios {
            let Some((_, make)) = plan.iter().find(|(s, _)| *s == scenario) else {
                continue;
            };
            eprintln!(
                "{backend}: {} (round {} of {}) …",
                scenario.label(),
                round + 1,
                settings.rounds
            );
            let stats = load(settings.concurrency, warmup, slice, make.clone()).await?;
            match rows.iter_mut().find(|r| r.scenario == scenario) {
                Some(row) => row.stats.merge(stats),
                None => rows.push(Row {
                    backend,
                    scenario,
                    stats,
                }),
            }
        }
    }

    drop(client);
    for server in [app, baseline_a, baseline_b] {
        server.shut_down().await?;
    }
    let _ = stop_worker.send(true);
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .context("the worker did not stop within 10 s")??;
    db.close().await;
    Ok(rows)
}

// --- Load generator ----------------------------------------------------------------------------

/// Builds one request; called afresh for every send.
type MakeRequest = Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>;

/// One client: one keep-alive HTTP/1.1 connection.
fn client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a rustls crypto provider of its own.
    signeur_service::tsa::install_crypto_provider();
    Ok(reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

/// What one scenario measured.
#[derive(Default)]
struct Stats {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    /// From the end of the warm-up to the last recorded answer.
    elapsed: Duration,
    /// Every recorded request's latency, errors included, sorted.
    latencies: Vec<Duration>,
}

impl Stats {
    /// Adds another round of the same scenario.
    fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
    }

    fn rps(&self) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            self.ok as f64 / self.elapsed.as_secs_f64()
        }
    }

    /// Nearest-rank percentile, in milliseconds.
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[i].as_secs_f64() * 1000.0
    }
}

/// Runs `concurrency` clients back to back: warm-up, then the measured window. Every client
/// stops sending at the end of the window, so this always returns.
async fn load(
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
    make: MakeRequest,
) -> anyhow::Result<Stats> {
    let measure_from = Instant::now() + warmup;
    let stop_at = measure_from + measure;
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let make = make.clone();
            tokio::spawn(async move { run_client(make, measure_from, stop_at).await })
        })
        .collect();
    let mut stats = Stats::default();
    let mut last_done = measure_from;
    for c in clients {
        let one = c.await??;
        stats.ok += one.ok;
        stats.errors += one.errors;
        if stats.first_error.is_none() {
            stats.first_error = one.first_error;
        }
        stats.latencies.extend(one.latencies);
        last_done = last_done.max(one.last_done.unwrap_or(measure_from));
    }
    stats.latencies.sort_unstable();
    stats.elapsed = last_done - measure_from;
    Ok(stats)
}

#[derive(Default)]
struct ClientRun {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    latencies: Vec<Duration>,
    last_done: Option<Instant>,
}

async fn run_client(
    make: MakeRequest,
    measure_from: Instant,
    stop_at: Instant,
) -> anyhow::Result<ClientRun> {
    let client = client()?;
    let mut run = ClientRun::default();
    while Instant::now() < stop_at {
        let sent = Instant::now();
        let outcome = send(make(&client)).await;
        let done = Instant::now();
        if sent < measure_from {
            continue;
        }
        run.latencies.push(done - sent);
        run.last_done = Some(done);
        match outcome {
            Ok(()) => run.ok += 1,
            Err(e) => {
                run.errors += 1;
                run.first_error.get_or_insert(e);
            }
        }
    }
    Ok(run)
}

/// Sends and reads the whole answer (so the connection is reused); non-2xx is an error.
async fn send(request: reqwest::RequestBuilder) -> Result<(), String> {
    let res = request.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        Err(format!("{status}: {text}"))
    }
}

// --- Report ------------------------------------------------------------------------------------

fn print_report(settings: &Settings, pdf_len: usize, body_len: usize, rows: &[Row]) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "Signeur API benchmark: {} keep-alive HTTP/1.1 clients on 127.0.0.1, {:.1} s warm-up + {:.1} s measured per scenario in {} interleaved rounds, {cpus} CPUs shared by clients and servers",
        settings.concurrency,
        settings.warmup.as_secs_f64(),
        settings.measure.as_secs_f64(),
        settings.rounds,
    );
    println!(
        "create uploads a {pdf_len}-byte one-page PDF ({body_len}-byte JSON body), 2 signers, delivery api"
    );
    println!(
        "API rate limiter (BENCH_RATE_LIMIT): {}",
        settings.rate_limit_name
    );
    println!();
    let rule = "-".repeat(93);
    println!(
        "{:<9} {:<38} {:>9} {:>10} {:>9} {:>9} {:>6}",
        "backend", "scenario", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    println!("{rule}");
    let mut last_backend = "";
    for row in rows {
        if !last_backend.is_empty() && row.backend != last_backend {
            println!("{rule}");
        }
        last_backend = row.backend;
        let s = &row.stats;
        println!(
            "{:<9} {:<38} {:>9} {:>10.1} {:>9.2} {:>9.2} {:>6}",
            row.backend,
            row.scenario.label(),
            s.ok + s.errors,
            s.rps(),
            s.percentile_ms(50.0),
            s.percentile_ms(99.0),
            s.errors,
        );
    }
    println!("{rule}");

    println!();
    println!("Targets");
    let find = |backend: &str, scenario: Scenario| {
        rows.iter()
            .find(|r| r.backend == backend && r.scenario == scenario)
            .map(|r| &r.stats)
    };
    let verdict = |met: bool| if met { "MET" } else { "NOT MET" };
    let mut backends: Vec<&str> = rows.iter().map(|r| r.backend).collect();
    backends.dedup();
    for backend in backends {
        if let (Some(g), Some(b)) = (
            find(backend, Scenario::Get),
            find(backend, Scenario::BaselineB),
        ) {
            let ratio = g.rps() / b.rps();
            println!(
                "  {backend:<9} get / baseline B throughput = {:>5.1} %   (target ≥ {:.0} %)   {}",
                ratio * 100.0,
                TARGET_GET_VS_B * 100.0,
                verdict(ratio >= TARGET_GET_VS_B && g.errors == 0),
            );
        }
        if let (Some(g), Some(a)) = (
            find(backend, Scenario::Get),
            find(backend, Scenario::BaselineA),
        ) {
            println!(
                "  {backend:<9} get / baseline A throughput = {:>5.1} %   (for information)",
                g.rps() / a.rps() * 100.0
            );
        }
        if let Some(c) = find(backend, Scenario::Create) {
            let (rps, p99) = (c.rps(), c.percentile_ms(99.0));
            if backend == "sqlite" {
                println!(
                    "  {backend:<9} create {rps:.0} req/s, p99 {p99:.1} ms   (target ≥ {TARGET_CREATE_RPS:.0} req/s, p99 < {TARGET_CREATE_P99_MS:.0} ms)   {}",
                    verdict(
                        rps >= TARGET_CREATE_RPS && p99 < TARGET_CREATE_P99_MS && c.errors == 0
                    ),
                );
            } else {
                println!(
                    "  {backend:<9} create {rps:.0} req/s, p99 {p99:.1} ms   (no target on this backend)"
                );
            }
        }
    }
    let errors: Vec<_> = rows
        .iter()
        .filter_map(|r| Some((r, r.stats.first_error.as_ref()?)))
        .collect();
    if !errors.is_empty() {
        println!();
        println!("Errors (first of each scenario)");
        for (row, e) in errors {
            println!(
                "  {} {}: {} errors, e.g. {e}",
                row.backend,
                row.scenario.label(),
                row.stats.errors
            );
        }
    }
}
