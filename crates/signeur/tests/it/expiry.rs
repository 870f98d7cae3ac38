//! Expiry (issue 16): a request past `expires_at` reads `expired` at once, and the minutely
//! job makes it so for good — its links invalidated, `signature_request.expired` recorded
//! exactly once however many runs race, and delivered to a real receiver by the worker.

use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::body::Bytes;
use chrono::Duration;
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use signeur_service::jobs::WorkerConfig;

use crate::support::*;

/// A webhook receiver on 127.0.0.1 that answers 200 and keeps every body.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let hits: Arc<Mutex<Vec<Value>>> = Default::default();
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let h = h.clone();
            async move {
                h.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{}/hook", addr.port()), hits)
}

fn expired_hits(hits: &Arc<Mutex<Vec<Value>>>) -> Vec<Value> {
    hits.lock()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "signature_request.expired")
        .cloned()
        .collect()
}

async fn wait_until(within: StdDuration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    f()
}

/// An api-delivery request expiring `secs` seconds from the test clock's now.
async fn expiring(app: &TestApp, secs: i64) -> Value {
    let mut body = seed_body();
    body["expires_at"] = json!(signeur_core::time::format(
        app.clock.now() + Duration::seconds(secs)
    ));
    app.create(&body).await
}

/// The request's `signature_request.expired` events, as the events API lists them.
async fn expired_events(app: &TestApp, id: &str) -> Vec<Value> {
    let v = app
        .get_json("/api/v1/events?type=signature_request.expired&limit=100")
        .await;
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["signature_request_id"] == id)
        .cloned()
        .collect()
}

async fn listed_ids(app: &TestApp, status: &str) -> Vec<String> {
    let v = app
        .get_json(&format!("/api/v1/signatures?status={status}&limit=100"))
        .await;
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_overdue_request_expires_for_good_and_its_webhook_arrives_once() {
    let app = TestApp::start().await;
    let (url, hits) = receiver().await;
    let res = app
        .post("/api/v1/webhook-endpoints")
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v = expiring(&app, 5).await;
    let id = v["id"].as_str().unwrap().to_string();
    let sign_url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    assert_eq!(v["status"], "sent");
    assert_eq!(
        app.client.get(&sign_url).send().await.unwrap().status(),
        200
    );

    app.advance(Duration::seconds(6));
    // Before the job: it reads expired, its link is gone, the list agrees, no event yet.
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "expired");
    assert_eq!(got["is_expired"], true);
    assert_eq!(
        app.client.get(&sign_url).send().await.unwrap().status(),
        410
    );
    assert!(listed_ids(&app, "expired").await.contains(&id));
    assert!(!listed_ids(&app, "sent").await.contains(&id));
    assert!(expired_events(&app, &id).await.is_empty());

    // The worker of `serve` runs the job at once on start (then every minute).
    let (stop, rx) = watch::channel(false);
    let service = app.service.clone();
    let config = WorkerConfig {
        poll: StdDuration::from_millis(100),
        ..WorkerConfig::default()
    };
    let worker = tokio::spawn(async move { service.run_worker(config, rx).await });
    assert!(
        wait_until(StdDuration::from_secs(30), || !expired_hits(&hits)
            .is_empty())
        .await,
        "signature_request.expired reached the receiver"
    );
    let hit = &expired_hits(&hits)[0];
    assert_eq!(hit["data"]["signature_request_id"], id.as_str());
    assert_eq!(hit["data"]["expires_at"], v["expires_at"]);

    // A minute later the job runs again (and twice more by hand): nothing fires twice.
    app.advance(Duration::seconds(61));
    assert_eq!(app.service.expire_overdue_requests().await.unwrap(), 0);
    assert_eq!(app.service.expire_overdue_requests().await.unwrap(), 0);
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(expired_hits(&hits).len(), 1, "delivered once");
    assert_eq!(expired_events(&app, &id).await.len(), 1, "recorded once");

    // After the job: stored expired, the signer's link invalidated, reads unchanged.
    let row = app
        .db
        .get_request(app.org_id, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, signeur_core::RequestStatus::Expired);
    assert!(row.expired_at.is_some());
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "expired");
    assert_eq!(got["is_expired"], true);
    assert_eq!(got["signers"][0]["status"], "invalidated");
    assert_eq!(
        app.client.get(&sign_url).send().await.unwrap().status(),
        410
    );
    assert!(listed_ids(&app, "expired").await.contains(&id));
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn racing_runs_expire_each_request_exactly_once() {
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(expiring(&app, 10).await["id"].as_str().unwrap().to_string());
    }
    let not_yet = expiring(&app, 3600).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.advance(Duration::seconds(11));
    let runs = (0..4).map(|_| {
        let s = app.service.clone();
        async move { s.expire_overdue_requests().await.unwrap() }
    });
    let moved: u64 = futures::future::join_all(runs).await.into_iter().sum();
    assert_eq!(moved, 5);
    for id in &ids {
        assert_eq!(expired_events(&app, id).await.len(), 1, "{id}");
    }
    assert!(expired_events(&app, &not_yet).await.is_empty());
    let got = app.get_json(&format!("/api/v1/signatures/{not_yet}")).await;
    assert_eq!(got["status"], "sent");
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn closed_requests_never_expire() {
    let app = TestApp::start().await;
    let cancelled = expiring(&app, 10).await["id"].as_str().unwrap().to_string();
    let res = app
        .post(&format!("/api/v1/signatures/{cancelled}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let signed = expiring(&app, 10).await;
    let mut signed_id: Option<Uuid> = None;
    for s in signed["signers"].as_array().unwrap() {
        let link = app
            .service
            .signing_link(s["access_token"].as_str().unwrap(), None)
            .await
            .unwrap()
            .unwrap();
        app.service
            .sign(
                &link,
                signeur_service::signing::SignInput {
                    full_name: "Someone".into(),
                    consent: true,
                    ip_address: "127.0.0.1".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        signed_id = Some(signed["id"].as_str().unwrap().parse().unwrap());
    }
    app.advance(Duration::seconds(11));
    assert_eq!(app.service.expire_overdue_requests().await.unwrap(), 0);
    let got = app
        .get_json(&format!("/api/v1/signatures/{}", signed_id.unwrap()))
        .await;
    assert_eq!(got["status"], "awaiting_stamp");
    let got = app
        .get_json(&format!("/api/v1/signatures/{cancelled}"))
        .await;
    assert_eq!(got["status"], "cancelled");
    assert!(expired_events(&app, &cancelled).await.is_empty());
}

/// The `signeur_job_row_failures_total` counter of `kind`, as `/metrics` shows it.
pub(crate) async fn row_failures(app: &TestApp, kind: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("signeur_job_row_failures_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// A request that cannot be expired (here a trigger refuses its update) is logged and
/// counted, and the requests behind it still expire (it sorts first every minute).
#[tokio::test]
async fn a_request_that_fails_does_not_stop_the_others() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["title"] = json!("poison");
    body["expires_at"] = json!(signeur_core::time::format(
        app.clock.now() + Duration::seconds(5)
    ));
    let poison = app.create(&body).await;
    let good = expiring(&app, 10).await;
    let refuse = match app.db {
        signeur_store::Db::Sqlite(_) => {
            "CREATE TRIGGER poison BEFORE UPDATE ON signature_requests \
             WHEN NEW.title = 'poison' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
        signeur_store::Db::Postgres(_) => {
            "CREATE FUNCTION poison() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER poison BEFORE UPDATE ON signature_requests \
             FOR EACH ROW WHEN (NEW.title = 'poison') EXECUTE FUNCTION poison();"
        }
    };
    crate::queue::execute(&app.db, refuse).await;
    app.advance(Duration::seconds(11));

    assert_eq!(app.service.expire_overdue_requests().await.unwrap(), 1);
    assert_eq!(row_failures(&app, "expire_requests").await, 1);
    let stored = |v: &Value| {
        let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();
        let db = app.db.clone();
        let org = app.org_id;
        async move { db.get_request(org, id).await.unwrap().unwrap().status }
    };
    assert_eq!(stored(&good).await, signeur_core::RequestStatus::Expired);
    assert_eq!(stored(&poison).await, signeur_core::RequestStatus::Sent);
    let good_id = good["id"].as_str().unwrap();
    assert_eq!(expired_events(&app, good_id).await.len(), 1);
}

/// A signer who signed a request that then expired (another signer never did) finds their
/// link gone like everyone's: 410, and neither the document nor its pages through it (the
/// API refuses the downloads of an expired request with 409 invalid_state).
#[tokio::test]
async fn a_signer_who_signed_loses_the_document_when_the_request_expires() {
    use crate::signing::{browser, page, sign_as};
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["signers"] = json!([{"name": "Signs"}, {"name": "Never"}]);
    body["expires_at"] = json!(signeur_core::time::format(
        app.clock.now() + Duration::days(1)
    ));
    let v = app.create(&body).await;
    let url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let b = browser();
    assert_eq!(page(&b, &url).await.0, 200);
    assert_eq!(sign_as(&b, &url, "Signs").await.0, 200);
    let get = |path: String| {
        let b = b.clone();
        async move { b.get(path).send().await.unwrap().status() }
    };
    assert_eq!(
        get(format!("{url}/document.pdf")).await,
        200,
        "signed, open"
    );
    assert_eq!(get(format!("{url}/page/1")).await, 200);

    app.advance(Duration::days(1) + Duration::seconds(1));
    for path in [url.clone(), format!("{url}/document.pdf")] {
        assert_eq!(get(path.clone()).await, 410, "{path}");
    }
    // A page image of a link that no longer works is not found (as for any gone link).
    assert_eq!(get(format!("{url}/page/1")).await, 404);
    app.service.expire_overdue_requests().await.unwrap();
    assert_eq!(get(format!("{url}/document.pdf")).await, 410);
    let id = v["id"].as_str().unwrap();
    let res = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status.as_u16(), code.as_str()), (409, "invalid_state"));
}
