//! The queue's guarantees under crashes, slow jobs, races and panics (issue 14): nothing
//! repeated, nothing stuck, nothing claimed that did not happen.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::sync::{Semaphore, watch};
use uuid::Uuid;

use signeur_core::JobKind;
use signeur_service::jobs::{JobHook, WorkerConfig};
use signeur_service::sealing::SEAL_ATTEMPTS;
use signeur_service::{Clock, Service};
use signeur_store::{Db, NewJob};

use crate::support::*;

/// A request with one signer who has signed: its seal job is queued.
async fn signed_request(app: &TestApp) -> Uuid {
    let mut body = seed_body();
    body["signers"] = json!([{ "email": "a@example.com", "name": "Anna" }]);
    let v = app.create(&body).await;
    let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();
    let token = v["signers"][0]["access_token"].as_str().unwrap();
    let link = app
        .service
        .signing_link(token, None)
        .await
        .unwrap()
        .unwrap();
    app.service
        .sign(
            &link,
            signeur_service::signing::SignInput {
                full_name: "Anna".into(),
                consent: true,
                ip_address: "127.0.0.1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    id
}

async fn status(app: &TestApp, id: Uuid) -> String {
    app.get_json(&format!("/api/v1/signatures/{id}")).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Another node: same database, blobs and master key, its own in-process state.
fn node(app: &TestApp, clock: Clock) -> Service {
    Service::new(
        app.db.clone(),
        app.blobs.clone(),
        clock,
        app.service.keys.clone(),
    )
}

/// A hook that counts the runs of `kind` and holds each until `gate` gives a permit.
fn gated(kind: JobKind, runs: Arc<AtomicUsize>, gate: Arc<Semaphore>) -> JobHook {
    Arc::new(move |k| {
        let (runs, gate) = (runs.clone(), gate.clone());
        Box::pin(async move {
            if k == kind {
                runs.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
            }
        })
    })
}

async fn wait_until<F, Fut>(within: StdDuration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if f().await {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    false
}

fn fast(poll_ms: u64, heartbeat_ms: u64) -> WorkerConfig {
    WorkerConfig {
        poll: StdDuration::from_millis(poll_ms),
        heartbeat: StdDuration::from_millis(heartbeat_ms),
        ..WorkerConfig::default()
    }
}

fn spawn_worker(
    service: Service,
    config: WorkerConfig,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(async move { service.run_worker(config, rx).await });
    (tx, handle)
}

/// Runs raw SQL on the test database (fault injection with triggers).
pub(crate) async fn execute(db: &Db, sql: &str) {
    match db {
        Db::Sqlite(p) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&p.write)
                .await
                .unwrap();
        }
        Db::Postgres(p) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .unwrap();
        }
    }
}

/// A seal job whose process dies on every attempt (OOM, abort) is claimed `SEAL_ATTEMPTS`
/// times, then given up: the request ends `stamp_failed`, where a person sees and retries it.
#[tokio::test]
async fn a_job_that_kills_its_worker_gives_up_after_its_attempts() {
    let app = TestApp::start().await;
    let id = signed_request(&app).await;
    for attempt in 1..=SEAL_ATTEMPTS {
        let now = app.clock.now();
        let claimed = app
            .db
            .claim_due_jobs(JobKind::SealDocument, now, now + Duration::seconds(30), 16)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "attempt {attempt}");
        assert_eq!(claimed[0].attempts, attempt);
        // The worker dies here: no completion, no retry; the lease runs out.
        app.advance(Duration::minutes(6));
    }
    app.service.run_due_jobs().await.unwrap();
    assert_eq!(status(&app, id).await, "stamp_failed");
    assert!(
        app.db
            .pending_jobs(JobKind::SealDocument)
            .await
            .unwrap()
            .is_empty()
    );
    let res = app
        .post(&format!("/api/v1/signatures/{id}/retry-seal"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    app.service.run_due_jobs().await.unwrap();
    assert_eq!(status(&app, id).await, "signed");
}

/// A slow job keeps its lease by heartbeats: another node looking for work for six minutes
/// (past any fixed lease) does not take it, and the job runs once.
#[tokio::test]
async fn a_running_job_keeps_its_lease_while_another_node_looks() {
    let app = TestApp::start().await;
    let (runs_a, gate_a) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
    let a = node(&app, app.clock.clone()).with_job_hook(gated(
        JobKind::SealDocument,
        runs_a.clone(),
        gate_a.clone(),
    ));
    let runs_b = Arc::new(AtomicUsize::new(0));
    let b = node(&app, app.clock.clone()).with_job_hook(gated(
        JobKind::SealDocument,
        runs_b.clone(),
        Arc::new(Semaphore::new(100)),
    ));
    let id = signed_request(&app).await;
    let (_stop, _worker) = spawn_worker(a, fast(50, 20));
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            runs_a.load(Ordering::SeqCst) == 1
        })
        .await
    );
    for _ in 0..24 {
        app.advance(Duration::seconds(15));
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        b.run_due_jobs().await.unwrap();
    }
    assert_eq!(
        runs_b.load(Ordering::SeqCst),
        0,
        "another node took a job that was still running"
    );
    gate_a.add_permits(1);
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            status(&app, id).await == "signed"
        })
        .await
    );
    assert_eq!(runs_a.load(Ordering::SeqCst), 1);
}

/// A node killed in the middle of a job (its heartbeat stops with it): another node takes the
/// job up within a minute.
#[tokio::test]
async fn a_dead_nodes_job_is_taken_up_within_a_minute() {
    let app = TestApp::start().await;
    let runs_a = Arc::new(AtomicUsize::new(0));
    let a = node(&app, app.clock.clone()).with_job_hook(gated(
        JobKind::SealDocument,
        runs_a.clone(),
        Arc::new(Semaphore::new(0)),
    ));
    let id = signed_request(&app).await;
    let (_stop, worker) = spawn_worker(a, fast(50, 20));
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            runs_a.load(Ordering::SeqCst) == 1
        })
        .await
    );
    worker.abort(); // kill -9
    let _ = worker.await;
    app.advance(Duration::seconds(60));
    app.service.run_due_jobs().await.unwrap();
    assert_eq!(status(&app, id).await, "signed");
}

/// A worker that lost its lease (paused past it, no heartbeat) finishes its run late: it
/// cannot complete the job another node now holds.
#[tokio::test]
async fn a_worker_that_lost_its_lease_cannot_complete_the_job() {
    let app = TestApp::start().await;
    let (runs_a, gate_a) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
    let a = node(&app, app.clock.clone()).with_job_hook(gated(
        JobKind::SealDocument,
        runs_a.clone(),
        gate_a.clone(),
    ));
    let (runs_b, gate_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
    let b = node(&app, app.clock.clone()).with_job_hook(gated(
        JobKind::SealDocument,
        runs_b.clone(),
        gate_b.clone(),
    ));
    let id = signed_request(&app).await;
    // Node A never renews (a paused process), and its one slot stays busy.
    let config = WorkerConfig {
        concurrency: 1,
        ..fast(50, 3_600_000)
    };
    let (_stop, _worker) = spawn_worker(a, config);
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            runs_a.load(Ordering::SeqCst) == 1
        })
        .await
    );
    app.advance(Duration::minutes(6));
    let b_run = tokio::spawn(async move { b.run_due_jobs().await.unwrap() });
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            runs_b.load(Ordering::SeqCst) == 1
        })
        .await
    );
    // A wakes up and finishes its run.
    gate_a.add_permits(1);
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            status(&app, id).await == "signed"
        })
        .await
    );
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(
        app.db
            .pending_jobs(JobKind::SealDocument)
            .await
            .unwrap()
            .len(),
        1,
        "the worker that lost its lease completed the job another node holds"
    );
    gate_b.add_permits(1);
    b_run.await.unwrap();
    assert!(
        app.db
            .pending_jobs(JobKind::SealDocument)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The sealed files in the blob store: key → SHA-256 of the bytes.
async fn sealed_files(app: &TestApp) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for b in app.blobs.list().await.unwrap() {
        if b.key.starts_with("sealed/") {
            let bytes = app.blobs.get(&b.key).await.unwrap().unwrap_or_default();
            out.insert((b.key, hex::encode(sha2::Sha256::digest(&bytes))));
        }
    }
    out
}

/// Two runs of one seal on two nodes, both past the state check before either commits: the
/// one that loses writes its file after the winner committed, and the served PDF must still
/// be the one whose hash was committed. The loser's file is an orphan: kept through the
/// grace period, removed after it.
#[tokio::test]
async fn two_runs_of_one_seal_never_change_the_committed_file() {
    let app = TestApp::start().await;
    let id = signed_request(&app).await;
    // Generated now, so the runs below only read it.
    app.service.seal_identity(app.org_id).await.unwrap();

    // Hold the request: neither run can commit until the lock goes.
    let mut lock = app.db.begin().await.unwrap();
    lock.lock_request(app.org_id, id).await.unwrap().unwrap();

    let now = app.clock.now();
    let a = node(&app, Clock::manual(now + Duration::seconds(1)));
    let b = node(&app, Clock::manual(now + Duration::seconds(2)));
    let org = app.org_id;
    let run_a = tokio::spawn(async move { a.seal_request(org, id).await.unwrap() });
    assert!(
        wait_until(StdDuration::from_secs(20), || async {
            !sealed_files(&app).await.is_empty()
        })
        .await
    );
    let after_a = sealed_files(&app).await;
    let run_b = tokio::spawn(async move { b.seal_request(org, id).await.unwrap() });
    assert!(
        wait_until(StdDuration::from_secs(20), || async {
            sealed_files(&app).await != after_a
        })
        .await
    );
    lock.commit().await.unwrap();
    let outcomes = [run_a.await.unwrap(), run_b.await.unwrap()];
    assert!(outcomes.contains(&"sealed".to_string()), "{outcomes:?}");

    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "signed");
    let served = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&served)),
        got["sealed_document_hash"].as_str().unwrap(),
        "the served PDF is not the one whose hash was committed"
    );

    // The loser's file: kept through the grace period, removed after it.
    assert_eq!(sealed_files(&app).await.len(), 2);
    app.service.remove_orphan_blobs().await.unwrap();
    assert_eq!(
        sealed_files(&app).await.len(),
        2,
        "removed within the grace period"
    );
    app.advance(Duration::hours(2));
    app.service.remove_orphan_blobs().await.unwrap();
    assert_eq!(sealed_files(&app).await.len(), 1, "the loser's file stays");
    let served_again = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(served, served_again);
}

/// The last attempt fails and the process dies between giving the job up and marking the
/// request `stamp_failed` (simulated by a trigger refusing the status change). Nothing may
/// be left half-done: after the restart the request ends `stamp_failed`, and retry-seal works.
#[tokio::test]
async fn a_crash_while_giving_up_a_seal_leaves_nothing_stuck() {
    let app = TestApp::start().await;
    let id = signed_request(&app).await;
    for _ in 1..SEAL_ATTEMPTS {
        let now = app.clock.now();
        let claimed = app
            .db
            .claim_due_jobs(JobKind::SealDocument, now, now + Duration::seconds(30), 16)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        app.advance(Duration::minutes(6));
    }
    // The last attempt fails: the document is gone.
    let doc = app.blobs.list().await.unwrap();
    for b in &doc {
        app.blobs.delete(&b.key).await.unwrap();
    }
    let crash = match app.db {
        Db::Sqlite(_) => {
            "CREATE TRIGGER crash_at_stamp_failed BEFORE UPDATE ON signature_requests \
             WHEN NEW.status = 'stamp_failed' BEGIN SELECT RAISE(ABORT, 'simulated crash'); END;"
        }
        Db::Postgres(_) => {
            "CREATE FUNCTION crash_at_stamp_failed() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'simulated crash'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER crash_at_stamp_failed BEFORE UPDATE ON signature_requests \
             FOR EACH ROW WHEN (NEW.status = 'stamp_failed') EXECUTE FUNCTION crash_at_stamp_failed();"
        }
    };
    execute(&app.db, crash).await;
    let _ = app.service.run_due_jobs().await;
    // The process restarts.
    let restart = match app.db {
        Db::Sqlite(_) => "DROP TRIGGER crash_at_stamp_failed;",
        Db::Postgres(_) => "DROP TRIGGER crash_at_stamp_failed ON signature_requests;",
    };
    execute(&app.db, restart).await;
    app.advance(Duration::minutes(6));
    app.service.run_due_jobs().await.unwrap();
    assert_eq!(status(&app, id).await, "stamp_failed");
    let res = app
        .post(&format!("/api/v1/signatures/{id}/retry-seal"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
}

/// Jobs queued by the previous build (hand-built JSON) still run; a payload that can never
/// decode fails for good at once, without holding up the other jobs.
#[tokio::test]
async fn jobs_queued_by_the_previous_build_run_and_a_bad_payload_fails_alone() {
    let app = TestApp::start().await;
    let id = signed_request(&app).await;
    app.db
        .complete_job_by_dedup_key(&format!("seal:{id}"), app.clock.now())
        .await
        .unwrap();
    let now = app.clock.now();
    let old = |kind: JobKind, payload: String| NewJob {
        kind,
        payload,
        dedup_key: None,
        run_at: now,
        max_attempts: 8,
    };
    let org = app.org_id;
    app.db
        .enqueue(&old(JobKind::SealDocument, "{}".into()), now)
        .await
        .unwrap();
    app.db
        .enqueue(
            &old(
                JobKind::SealDocument,
                json!({"org_id": org, "signature_request_id": id}).to_string(),
            ),
            now,
        )
        .await
        .unwrap();
    app.db
        .enqueue(&old(JobKind::PurgeIdempotencyKeys, "{}".into()), now)
        .await
        .unwrap();
    let signer: Value =
        app.get_json(&format!("/api/v1/signatures/{id}")).await["signers"][0]["id"].clone();
    app.db
        .enqueue(
            &old(
                JobKind::SendNotice,
                json!({"org_id": org, "signature_request_id": id, "signer_id": signer, "kind": "completed"})
                    .to_string(),
            ),
            now,
        )
        .await
        .unwrap();
    app.service.run_due_jobs().await.unwrap();
    assert_eq!(status(&app, id).await, "signed");
    for kind in [
        JobKind::SealDocument,
        JobKind::SendNotice,
        JobKind::PurgeIdempotencyKeys,
    ] {
        assert!(
            app.db.pending_jobs(kind).await.unwrap().is_empty(),
            "{kind:?}"
        );
    }
}

/// A job that panics is a failed attempt (retried with backoff); the worker goes on with
/// the others. `/readyz` is green while the worker runs and 503 once it stopped.
#[tokio::test]
async fn a_job_that_panics_is_a_failed_attempt_and_readyz_sees_a_stopped_worker() {
    let app = TestApp::start().await;
    let panics = Arc::new(AtomicUsize::new(0));
    let hook: JobHook = {
        let panics = panics.clone();
        Arc::new(move |k| {
            let panics = panics.clone();
            Box::pin(async move {
                if k == JobKind::SealDocument && panics.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("injected panic");
                }
            })
        })
    };
    let first = signed_request(&app).await;
    let second = signed_request(&app).await;
    let (_stop, worker) = spawn_worker(app.service.clone().with_job_hook(hook), fast(50, 20));
    let both = || async { [status(&app, first).await, status(&app, second).await] };
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            both().await.iter().filter(|s| *s == "signed").count() == 1
        })
        .await,
        "the worker stopped at the panic: {:?}",
        both().await
    );
    // The sealed one's job leaves the table just after its commit.
    let pending = || async { app.db.pending_jobs(JobKind::SealDocument).await.unwrap() };
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            pending().await.len() == 1
        })
        .await
    );
    let pending = pending().await;
    assert_eq!(pending[0].attempts, 1, "the panic was an attempt");
    assert_eq!(app.get("/readyz").send().await.unwrap().status(), 200);
    app.advance(Duration::seconds(11));
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            both().await.iter().all(|s| s == "signed")
        })
        .await,
        "the retry: {:?}",
        both().await
    );
    assert_eq!(app.get("/readyz").send().await.unwrap().status(), 200);

    worker.abort();
    let _ = worker.await;
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), 503);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "not_ready");
    assert!(v["message"].as_str().unwrap().contains("worker"), "{v}");
}

/// A job enqueued on this node starts at once, not at the next poll (here a minute away).
#[tokio::test]
async fn a_job_enqueued_on_this_node_starts_without_waiting_for_the_poll() {
    let app = TestApp::start().await;
    let (_stop, _worker) = spawn_worker(
        app.service.clone(),
        WorkerConfig {
            poll: StdDuration::from_secs(60),
            ..WorkerConfig::default()
        },
    );
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let id = signed_request(&app).await;
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            status(&app, id).await == "signed"
        })
        .await,
        "the seal waited for the poll"
    );
}

/// PostgreSQL: a job enqueued on one node wakes the worker of another through NOTIFY.
#[tokio::test]
async fn another_nodes_worker_is_woken_by_notify() {
    if backend_url().is_none() {
        return; // one SQLite file has one node
    }
    let app = TestApp::start().await;
    let b = node(&app, app.clock.clone());
    let (_stop, _worker) = spawn_worker(
        b,
        WorkerConfig {
            poll: StdDuration::from_secs(60),
            ..WorkerConfig::default()
        },
    );
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let id = signed_request(&app).await;
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            status(&app, id).await == "signed"
        })
        .await,
        "the other node waited for its poll"
    );
}

/// Periodic maintenance (here a blob scan that takes forever) does not hold up a seal.
#[tokio::test]
async fn periodic_maintenance_does_not_delay_a_seal() {
    let app = TestApp::start().await;
    let scans = Arc::new(AtomicUsize::new(0));
    let service = app.service.clone().with_job_hook(gated(
        JobKind::RemoveOrphanBlobs,
        scans.clone(),
        Arc::new(Semaphore::new(0)),
    ));
    let (_stop, _worker) = spawn_worker(service, fast(50, 20));
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            scans.load(Ordering::SeqCst) == 1
        })
        .await
    );
    let id = signed_request(&app).await;
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            status(&app, id).await == "signed"
        })
        .await,
        "the seal waited for the blob scan"
    );
}

/// The orphan scan walks the store page by page: over several pages, every orphan past the
/// grace period goes and every referenced blob stays.
#[tokio::test]
async fn orphan_blobs_are_removed_across_pages() {
    let app = TestApp::start().await;
    let kept = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let root = app.dir.path().join("blobs/documents/orphans");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..1200 {
        std::fs::write(root.join(format!("{i:04}.pdf")), b"x").unwrap();
    }
    app.advance(Duration::hours(2));
    let removed = app.service.remove_orphan_blobs().await.unwrap();
    assert_eq!(removed, 1200);
    let left = app.blobs.list().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].key.contains(&kept));
}

/// A blob scan that takes forever does not hold up expiry either: the minutely jobs run in
/// a lane of their own, so `signature_request.expired` still comes within its minute.
#[tokio::test]
async fn periodic_maintenance_does_not_delay_expiry() {
    let app = TestApp::start().await;
    let scans = Arc::new(AtomicUsize::new(0));
    let service = app.service.clone().with_job_hook(gated(
        JobKind::RemoveOrphanBlobs,
        scans.clone(),
        Arc::new(Semaphore::new(0)),
    ));
    let (_stop, _worker) = spawn_worker(service, fast(50, 20));
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            scans.load(Ordering::SeqCst) == 1
        })
        .await
    );
    let mut body = seed_body();
    body["expires_at"] = json!(signeur_core::time::format(
        app.clock.now() + Duration::seconds(5)
    ));
    let id: uuid::Uuid = app.create(&body).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.advance(Duration::seconds(61));
    assert!(
        wait_until(StdDuration::from_secs(10), || async {
            let row = app.db.get_request(app.org_id, id).await.unwrap().unwrap();
            row.status == signeur_core::RequestStatus::Expired
        })
        .await,
        "the expiry job waited for the blob scan"
    );
    assert_eq!(scans.load(Ordering::SeqCst), 1, "the scan is still running");
}
