//! Webhook delivery against real HTTP receivers on loopback: every event arrives signed,
//! retries keep the event id, the history lists every attempt, a hanging receiver costs one
//! timeout, filters / disable / delete hold, and the SSRF rule refuses loopback when private
//! hosts are not allowed. Also: the real binary killed with `kill -9` mid-delivery loses no
//! event, Stripe's own Python verifier accepts what was delivered, and each embedded session
//! reaches the receiver as exactly one `signing_session.completed`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use signeur_service::Service;
use signeur_service::deliveries::RetrySchedule;
use signeur_service::jobs::WorkerConfig;

use crate::support::*;

#[derive(Clone, Copy)]
pub(crate) enum Reply {
    Status(u16),
    Hang,
}

#[derive(Clone)]
pub(crate) struct Hit {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    at: Instant,
    /// Arrived while the receiver was holding every request open (never answered).
    held: bool,
}

#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    /// While true, every request is kept open without an answer (before the plan).
    holding: Arc<AtomicBool>,
}

impl Receiver {
    /// A receiver on 127.0.0.1 answering with `plan` in order, then 200.
    pub(crate) async fn start(plan: Vec<Reply>) -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Default::default();
        let holding = Arc::new(AtomicBool::new(false));
        let plan = Arc::new(Mutex::new(VecDeque::from(plan)));
        let (h, p, hold) = (hits.clone(), plan.clone(), holding.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (h, p, hold) = (h.clone(), p.clone(), hold.clone());
                async move {
                    let held = hold.load(Ordering::SeqCst);
                    h.lock().unwrap().push(Hit {
                        headers,
                        body,
                        at: Instant::now(),
                        held,
                    });
                    let reply = if held {
                        Some(Reply::Hang)
                    } else {
                        p.lock().unwrap().pop_front()
                    };
                    match reply {
                        Some(Reply::Hang) => {
                            tokio::time::sleep(StdDuration::from_secs(3600)).await;
                            (AxumStatus::OK, "late".to_string())
                        }
                        Some(Reply::Status(s)) => (
                            AxumStatus::from_u16(s).unwrap(),
                            format!("status {s} from the receiver"),
                        ),
                        None => (AxumStatus::OK, "ok".to_string()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://127.0.0.1:{}/hook", addr.port()),
            hits,
            holding,
        }
    }

    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub(crate) fn types(&self) -> Vec<String> {
        self.hits()
            .iter()
            .map(|h| body_json(h)["type"].as_str().unwrap().to_string())
            .collect()
    }
}

pub(crate) fn body_json(h: &Hit) -> Value {
    serde_json::from_slice(&h.body).unwrap()
}

pub(crate) fn header<'a>(h: &'a Hit, name: &str) -> &'a str {
    h.headers.get(name).unwrap().to_str().unwrap()
}

/// Creates an endpoint through the API; returns its id and secret.
pub(crate) async fn endpoint(app: &TestApp, url: &str, types: Value) -> (String, String) {
    let res = app
        .post("/api/v1/webhook-endpoints")
        .json(&json!({"url": url, "event_types": types}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

pub(crate) async fn signed_request(app: &TestApp) -> Uuid {
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

/// Runs due jobs until none is left.
pub(crate) async fn drain(app: &TestApp) {
    for _ in 0..20 {
        if app.service.run_due_jobs().await.unwrap() == 0 {
            return;
        }
    }
}

fn spawn_worker(service: Service) -> watch::Sender<bool> {
    let (tx, rx) = watch::channel(false);
    let config = WorkerConfig {
        poll: StdDuration::from_millis(200),
        heartbeat: StdDuration::from_millis(500),
        ..WorkerConfig::default()
    };
    tokio::spawn(async move { service.run_worker(config, rx).await });
    tx
}

async fn wait_until(within: StdDuration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    false
}

async fn history(app: &TestApp, ep: &str, query: &str) -> Value {
    app.get_json(&format!("/api/v1/webhook-endpoints/{ep}/deliveries{query}"))
        .await
}

#[tokio::test]
async fn every_event_of_a_signed_request_arrives_and_verifies() {
    let app = TestApp::start().await;
    let rx = Receiver::start(vec![]).await;
    let (ep, secret) = endpoint(&app, &rx.url, json!([])).await;
    let id = signed_request(&app).await;
    drain(&app).await;

    let detail = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(detail["status"], "signed", "{detail}");
    let trail: Vec<(String, String)> = detail["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let hits = rx.hits();
    let mut got: Vec<(String, String)> = hits
        .iter()
        .map(|h| {
            let v = body_json(h);
            (
                v["id"].as_str().unwrap().to_string(),
                v["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want = trail.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every event of the audit trail, once");
    let types: Vec<&str> = trail.iter().map(|(_, t)| t.as_str()).collect();
    for t in [
        "signature_request.created",
        "signer.signed",
        "signature_request.completed",
        "signature_request.signed",
    ] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let now = chrono::Utc::now().timestamp();
    for h in &hits {
        let v = body_json(h);
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>().len(),
            4,
            "{v}"
        );
        assert!(
            v["data"].is_object() && is_wire_time(&v["created_at"]),
            "{v}"
        );
        signeur_webhook::verify(&secret, header(h, "x-signeur-signature"), &h.body, now).unwrap();
        assert_eq!(header(h, "x-signeur-event-id"), v["id"].as_str().unwrap());
        assert_eq!(
            header(h, "x-signeur-event-type"),
            v["type"].as_str().unwrap()
        );
        assert_eq!(header(h, "content-type"), "application/json");
        assert!(header(h, "user-agent").starts_with("Signeur/"));
    }
    let page = history(&app, &ep, "").await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), hits.len());
    assert!(data.iter().all(|a| a["status"] == "succeeded"
        && a["http_status"] == 200
        && a["attempt"] == 1
        && a["response_excerpt"] == "ok"));
}

#[tokio::test]
async fn a_receiver_answering_500_twice_gets_the_third_attempt_with_the_same_event_id() {
    let app = TestApp::start().await;
    let rx = Receiver::start(vec![Reply::Status(500), Reply::Status(500)]).await;
    let (ep, secret) = endpoint(&app, &rx.url, json!(["signature_request.created"])).await;
    app.create(&seed_body()).await;
    drain(&app).await;
    assert_eq!(rx.hits().len(), 1);
    // Backoff: nothing before the next attempt is due.
    drain(&app).await;
    assert_eq!(rx.hits().len(), 1);
    for n in 2..=3 {
        app.advance(chrono::Duration::hours(1));
        drain(&app).await;
        assert_eq!(rx.hits().len(), n);
    }
    app.advance(chrono::Duration::hours(2));
    drain(&app).await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 3, "no attempt after the success");
    let ids: Vec<_> = hits.iter().map(|h| body_json(h)["id"].clone()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert!(hits.iter().all(|h| h.body == hits[0].body), "same bytes");
    let now = chrono::Utc::now().timestamp();
    for h in &hits {
        signeur_webhook::verify(&secret, header(h, "x-signeur-signature"), &h.body, now).unwrap();
    }

    let page = history(&app, &ep, "").await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(page["has_more"], false);
    let summary: Vec<_> = data
        .iter()
        .map(|a| {
            (
                a["attempt"].clone(),
                a["status"].clone(),
                a["http_status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!(3), json!("succeeded"), json!(200)),
            (json!(2), json!("failed"), json!(500)),
            (json!(1), json!("failed"), json!(500)),
        ],
        "newest first"
    );
    assert!(data.iter().all(|a| a["event_id"] == ids[0]
        && a["delivery_id"] == data[0]["delivery_id"]
        && a["event_type"] == "signature_request.created"));
    assert_eq!(data[1]["response_excerpt"], "status 500 from the receiver");
    assert!(data[1]["error"].as_str().unwrap().contains("500"));
    for a in data {
        for f in [
            "id",
            "delivery_id",
            "event_id",
            "event_type",
            "attempt",
            "status",
            "http_status",
            "duration_ms",
            "error",
            "response_excerpt",
            "created_at",
        ] {
            assert!(a.get(f).is_some(), "{f} in {a}");
        }
        assert!(a["id"].as_str().unwrap().starts_with("wha_"));
    }
    let failed = history(&app, &ep, "?status=failed").await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 2);
    let first = history(&app, &ep, "?limit=2").await;
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = history(&app, &ep, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["data"][0]["attempt"], 1);
    assert_eq!(rest["has_more"], false);
    let bad = app
        .get(&format!(
            "/api/v1/webhook-endpoints/{ep}/deliveries?status=maybe"
        ))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(bad).await;
    assert_eq!((status.as_u16(), code.as_str()), (400, "invalid_filter"));

    // A retry through the API: one more attempt, same event, now.
    let delivery = data[0]["delivery_id"].as_str().unwrap();
    let res = app
        .post(&format!("/api/v1/webhook-deliveries/{delivery}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    drain(&app).await;
    assert_eq!(rx.hits().len(), 4);
    assert_eq!(body_json(&rx.hits()[3])["id"], ids[0]);
    let page = history(&app, &ep, "").await;
    assert_eq!(page["data"][0]["attempt"], 4);
    let (other_org, other_key) = app.other_org().await;
    let _ = other_org;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/webhook-deliveries/{delivery}/retry")))
        .bearer_auth(other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "another organization's delivery");
}

#[tokio::test]
async fn a_receiver_down_for_the_whole_window_ends_failed() {
    let app = TestApp::start_with_webhooks(WebhookSettings {
        retry: RetrySchedule::parse("1,2,3,10").unwrap(),
        ..loopback_webhooks()
    })
    .await;
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (ep, _) = endpoint(
        &app,
        &format!("http://127.0.0.1:{port}/hook"),
        json!(["signature_request.created"]),
    )
    .await;
    app.create(&seed_body()).await;
    for _ in 0..8 {
        drain(&app).await;
        app.advance(chrono::Duration::seconds(3));
    }
    let deliveries = app.db.webhook_deliveries(app.org_id).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, "failed");
    assert_eq!(deliveries[0].attempts, 3);
    let page = history(&app, &ep, "").await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{page}");
    assert!(data.iter().all(|a| a["status"] == "failed"
        && a["http_status"].is_null()
        && a["error"].as_str().unwrap().contains("connection")));
}

#[tokio::test]
async fn a_hanging_receiver_costs_one_timeout_and_the_others_get_theirs_at_once() {
    let app = TestApp::start_with_webhooks(WebhookSettings {
        timeout: StdDuration::from_secs(1),
        ..loopback_webhooks()
    })
    .await;
    let hanging = Receiver::start(vec![Reply::Hang; 4]).await;
    let fine = Receiver::start(vec![]).await;
    let types = json!(["signature_request.created"]);
    let (hang_ep, _) = endpoint(&app, &hanging.url, types.clone()).await;
    endpoint(&app, &fine.url, types).await;
    let _stop = spawn_worker(app.service.clone());
    tokio::time::sleep(StdDuration::from_millis(300)).await;

    // The hanging one first, several times: the others never wait behind it.
    for _ in 0..3 {
        let committed = Instant::now();
        let before = fine.hits().len();
        app.create(&seed_body()).await;
        assert!(
            wait_until(StdDuration::from_secs(1), || fine.hits().len() > before).await,
            "the first attempt started within a second of the commit"
        );
        let latency = fine.hits()[before].at - committed;
        assert!(latency < StdDuration::from_secs(1), "{latency:?}");
    }
    // Each hanging attempt ends with its timeout (no stuck worker).
    let start = Instant::now();
    loop {
        let deliveries = app.db.webhook_deliveries(app.org_id).await.unwrap();
        if deliveries.iter().filter(|d| d.attempts >= 1).count() == 6 {
            break;
        }
        assert!(
            start.elapsed() < StdDuration::from_secs(5),
            "{deliveries:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let page = history(&app, &hang_ep, "").await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for a in data {
        assert_eq!(a["status"], "failed");
        assert!(a["error"].as_str().unwrap().contains("timed out"), "{a}");
        let ms = a["duration_ms"].as_i64().unwrap();
        assert!((900..3000).contains(&ms), "one timeout: {ms} ms");
    }
}

#[tokio::test]
async fn event_type_filters_and_disabled_and_deleted_endpoints_hold() {
    let app = TestApp::start().await;
    let filtered = Receiver::start(vec![]).await;
    let disabled = Receiver::start(vec![]).await;
    let deleted = Receiver::start(vec![]).await;
    endpoint(&app, &filtered.url, json!(["signer.signed"])).await;
    let (dis, _) = endpoint(&app, &disabled.url, json!([])).await;
    let (del, _) = endpoint(&app, &deleted.url, json!([])).await;
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/webhook-endpoints/{dis}")))
        .bearer_auth(&app.key)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Deliveries to `del` are queued with the request, then it is deleted before they run.
    app.create(&seed_body()).await;
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/webhook-endpoints/{del}")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    signed_request(&app).await;
    drain(&app).await;
    assert_eq!(filtered.types(), ["signer.signed"]);
    assert!(disabled.hits().is_empty());
    assert!(deleted.hits().is_empty());
    // The deleted endpoint's deliveries stopped without an attempt.
    let stopped: Vec<_> = app
        .db
        .webhook_deliveries(app.org_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| format!("ep_{}", d.endpoint_id) == del)
        .collect();
    assert!(!stopped.is_empty());
    assert!(
        stopped
            .iter()
            .all(|d| d.status == "failed" && d.attempts == 0)
    );
}

#[tokio::test]
async fn a_test_event_is_signed_and_a_rotated_secret_signs_alongside_the_old_one() {
    let app = TestApp::start().await;
    let rx = Receiver::start(vec![]).await;
    let (ep, old) = endpoint(&app, &rx.url, json!(["signer.signed"])).await;
    let res = app
        .post(&format!("/api/v1/webhook-endpoints/{ep}/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let queued: Value = res.json().await.unwrap();
    assert!(queued["delivery_id"].as_str().unwrap().starts_with("whd_"));
    drain(&app).await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    let v = body_json(&hits[0]);
    assert_eq!(v["type"], "webhook_endpoint.test");
    assert_eq!(v["id"], queued["event_id"]);
    let now = chrono::Utc::now().timestamp();
    signeur_webhook::verify(
        &old,
        header(&hits[0], "x-signeur-signature"),
        &hits[0].body,
        now,
    )
    .unwrap();

    let res = app
        .post(&format!("/api/v1/webhook-endpoints/{ep}/rotate-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap();
    assert!(new.starts_with("whsec_") && new != old);
    app.post(&format!("/api/v1/webhook-endpoints/{ep}/test"))
        .send()
        .await
        .unwrap();
    drain(&app).await;
    let h = &rx.hits()[1];
    let sig = header(h, "x-signeur-signature");
    assert_eq!(sig.matches("v1=").count(), 2, "{sig}");
    signeur_webhook::verify(new, sig, &h.body, now).unwrap();
    signeur_webhook::verify(&old, sig, &h.body, now).unwrap();

    // After 24 h only the new secret signs.
    app.advance(chrono::Duration::hours(25));
    app.post(&format!("/api/v1/webhook-endpoints/{ep}/test"))
        .send()
        .await
        .unwrap();
    drain(&app).await;
    let h = &rx.hits()[2];
    let sig = header(h, "x-signeur-signature");
    assert_eq!(sig.matches("v1=").count(), 1, "{sig}");
    assert!(signeur_webhook::verify(&old, sig, &h.body, now).is_err());
    let res = app
        .post("/api/v1/webhook-endpoints/ep_nope/test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn without_private_hosts_a_name_resolving_to_loopback_is_refused_with_the_reason() {
    let app = TestApp::start_with_webhooks(WebhookSettings::default()).await;
    let rx = Receiver::start(vec![]).await;
    let port = url::Url::parse(&rx.url).unwrap().port().unwrap();
    // The API refuses such endpoints; rows written directly stand for a host whose DNS
    // answer changed after the endpoint was created.
    let mut ids = Vec::new();
    for url in [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
    ] {
        let now = app.clock.now();
        let id = Uuid::new_v4();
        app.db
            .insert_webhook_endpoint(&signeur_store::WebhookEndpointRow {
                id,
                org_id: app.org_id,
                url,
                event_types: r#"["signature_request.created"]"#.into(),
                description: None,
                secret: app.service.keys.encrypt("webhook secret", b"whsec_test"),
                previous_secret: None,
                previous_secret_until: None,
                disabled_at: None,
                disabled_reason: None,
                failing_since: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    app.create(&seed_body()).await;
    drain(&app).await;
    assert!(rx.hits().is_empty(), "no request reached loopback");
    for id in ids {
        let page = history(&app, &format!("ep_{id}"), "").await;
        let data = page["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{page}");
        let error = data[0]["error"].as_str().unwrap();
        assert!(
            error.contains("loopback") && error.contains("SIGNEUR_WEBHOOK_ALLOW_PRIVATE"),
            "{error}"
        );
        assert!(data[0]["http_status"].is_null());
    }
}

async fn endpoint_state(app: &TestApp, ep: &str) -> Value {
    let list = app.get_json("/api/v1/webhook-endpoints").await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == ep)
        .cloned()
        .unwrap()
}

/// Days later, one more request (its `signature_request.created` delivered at once).
async fn one_more(app: &TestApp, days: i64) {
    app.advance(chrono::Duration::days(days));
    app.create(&seed_body()).await;
    drain(app).await;
}

/// An endpoint whose every delivery failed for five days is disabled with a reason; any
/// success restarts that clock, and re-enabling clears the reason.
#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_a_success_resets_the_clock() {
    let app = TestApp::start_with_webhooks(WebhookSettings {
        retry: RetrySchedule::parse("1,2,1,10").unwrap(),
        ..loopback_webhooks()
    })
    .await;
    let receiver = Receiver::start(vec![
        Reply::Status(500),
        Reply::Status(200),
        Reply::Status(500),
        Reply::Status(500),
    ])
    .await;
    let (ep, _) = endpoint(&app, &receiver.url, json!(["signature_request.created"])).await;
    one_more(&app, 0).await; // fails
    one_more(&app, 4).await; // succeeds: the clock stops
    one_more(&app, 2).await; // fails: the clock starts again
    assert_eq!(endpoint_state(&app, &ep).await["disabled_at"], Value::Null);
    app.advance(chrono::Duration::seconds(1));
    one_more(&app, 5).await; // fails, five days after the clock started
    let e = endpoint_state(&app, &ep).await;
    assert!(is_wire_time(&e["disabled_at"]), "{e}");
    assert!(
        e["disabled_reason"].as_str().unwrap().contains("5 days"),
        "{e}"
    );
    assert_eq!(receiver.hits().len(), 4);
    one_more(&app, 0).await; // nothing is delivered to a disabled endpoint
    assert_eq!(receiver.hits().len(), 4);

    let res = app
        .client
        .patch(app.url(&format!("/api/v1/webhook-endpoints/{ep}")))
        .bearer_auth(&app.key)
        .json(&json!({"disabled": false}))
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["disabled_at"], Value::Null);
    assert_eq!(v["disabled_reason"], Value::Null);
}

/// Every event id the API lists (`GET /api/v1/events`, all pages).
async fn recorded_event_ids(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    query: &str,
) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/events?limit=100{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let res = client.get(url).bearer_auth(key).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        events.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) if page["has_more"] == true => cursor = Some(c.to_string()),
            _ => return events,
        }
    }
}

fn event_id(h: &Hit) -> String {
    body_json(h)["id"].as_str().unwrap().to_string()
}

/// `kill -9` of the real binary while every delivery is in flight (the receiver holds each
/// request open without answering): after a restart every recorded event arrives, signed, at
/// least once — the killed node's claimed deliveries once their lease runs out (30 s: leases
/// belong to no node, so a restarted one cannot tell its dead claims from another live
/// node's), the new ones at once. SQLite and PostgreSQL (`Backend`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_flight_at_a_kill_9_all_arrive_after_a_restart() {
    use std::collections::BTreeSet;
    let rx = Receiver::start(vec![]).await;
    rx.holding.store(true, Ordering::SeqCst);
    let backend = crate::cli::Backend::new().await;
    let env = [
        ("SIGNEUR_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("SIGNEUR_WEBHOOK_RETRY", "1,2,5,60"),
        // Longer than the test: the held attempts are still waiting when the kill comes.
        ("SIGNEUR_WEBHOOK_TIMEOUT_SECS", "300"),
    ];
    let (server, key) = crate::cli::serve_with(&backend, &env);
    let key = key.expect("first start prints api_key");
    let client = http_client();
    let res = client
        .post(format!("{}/api/v1/webhook-endpoints", server.base))
        .bearer_auth(&key)
        .json(&json!({"url": rx.url, "event_types": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let secret = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let create = |base: String| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            let res = client
                .post(format!("{base}/api/v1/signatures"))
                .bearer_auth(&key)
                .json(&seed_body())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }
    };
    for _ in 0..3 {
        create(server.base.clone()).await;
    }
    let before: BTreeSet<String> = recorded_event_ids(&client, &server.base, &key, "")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(before.len() >= 6, "{before:?}");
    assert!(
        wait_until(StdDuration::from_secs(30), || rx.hits().len()
            >= before.len())
        .await,
        "every delivery in flight: {} of {}",
        rx.hits().len(),
        before.len()
    );
    drop(server); // SIGKILL, with every delivery waiting on the receiver
    let held: BTreeSet<String> = rx.hits().iter().map(event_id).collect();
    assert_eq!(held, before, "each event's attempt was in flight");
    rx.holding.store(false, Ordering::SeqCst);

    let (server, again) = crate::cli::serve_with(&backend, &env);
    assert_eq!(again, None);
    create(server.base.clone()).await;
    let recorded: BTreeSet<String> = recorded_event_ids(&client, &server.base, &key, "")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(recorded.len() > before.len());
    let answered =
        || -> BTreeSet<String> { rx.hits().iter().filter(|h| !h.held).map(event_id).collect() };
    let start = Instant::now();
    while !answered().is_superset(&recorded) {
        assert!(
            start.elapsed() < StdDuration::from_secs(90),
            "not delivered 90 s after the restart: {:?}",
            recorded.difference(&answered()).collect::<Vec<_>>()
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let now = chrono::Utc::now().timestamp();
    for h in rx.hits() {
        let v = body_json(&h);
        assert!(recorded.contains(v["id"].as_str().unwrap()), "{v}");
        assert_eq!(header(&h, "x-signeur-event-id"), v["id"].as_str().unwrap());
        signeur_webhook::verify(&secret, header(&h, "x-signeur-signature"), &h.body, now).unwrap();
    }
    // The history of the restarted node shows every event's delivery succeeded (the
    // receiver answers before the attempt is recorded: polled).
    let eps: Value = client
        .get(format!("{}/api/v1/webhook-endpoints", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ep = eps["data"][0]["id"].as_str().unwrap();
    let start = Instant::now();
    loop {
        let page: Value = client
            .get(format!(
                "{}/api/v1/webhook-endpoints/{ep}/deliveries?limit=100&status=succeeded",
                server.base
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let succeeded: BTreeSet<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["event_id"].as_str().unwrap().to_string())
            .collect();
        if succeeded == recorded {
            break;
        }
        assert!(start.elapsed() < StdDuration::from_secs(10), "{page}");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

/// Python's `stripe` library: `WebhookSignature.verify_header(payload, header, secret,
/// tolerance=300)` for each case, one JSON line per (case, secret).
const STRIPE_VERIFY: &str = r#"
import json, sys, stripe
for case in json.load(open(sys.argv[1])):
    payload = open(case["payload"], "rb").read().decode("utf-8")
    for secret in case["secrets"]:
        try:
            stripe.WebhookSignature.verify_header(payload, case["header"], secret, tolerance=300)
            ok = True
        except stripe.SignatureVerificationError:
            ok = False
        print(json.dumps({"name": case["name"], "secret": secret, "verified": ok}))
"#;

/// Whether Python's stripe library is importable; missing is a failure under
/// `SIGNEUR_REQUIRE_VALIDATORS=1` (as `.ci/run` sets it).
fn stripe_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import stripe"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var("SIGNEUR_REQUIRE_VALIDATORS").as_deref() == Ok("1") {
        panic!("SIGNEUR_REQUIRE_VALIDATORS=1 but Python's stripe library is missing");
    }
    ok
}

/// What Stripe's verifier says of each (case name, secret): `cases` are (name, raw body,
/// header, secrets).
fn stripe_verdicts(
    cases: &[(String, Vec<u8>, String, Vec<String>)],
) -> Vec<(String, String, bool)> {
    let dir = tempfile::tempdir().unwrap();
    let mut list = Vec::new();
    for (i, (name, body, header, secrets)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("payload-{i}.json"));
        std::fs::write(&path, body).unwrap();
        list.push(json!({"name": name, "payload": path, "header": header, "secrets": secrets}));
    }
    let cases_path = dir.path().join("cases.json");
    std::fs::write(&cases_path, Value::Array(list).to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", STRIPE_VERIFY])
        .arg(&cases_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_string(),
                v["secret"].as_str().unwrap().to_string(),
                v["verified"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Stripe's own Python verifier accepts every request Signeur actually delivered — each
/// event type of create → open → sign → seal, a decline, a cancel, a test event — and,
/// after a rotation, both secrets of the two `v1=` entries; it refuses a changed body and
/// a secret that never signed. `signeur_webhook::verify` agrees on each.
#[tokio::test]
async fn stripes_verifier_accepts_every_delivered_webhook() {
    if !stripe_available() {
        eprintln!("skipped: Python's stripe library is missing");
        return;
    }
    let app = TestApp::start().await;
    let rx = Receiver::start(vec![]).await;
    let (ep, old) = endpoint(&app, &rx.url, json!([])).await;
    // create → open → sign → seal, through the signer's page.
    let mut body = seed_body();
    body["signers"] = json!([{ "email": "a@example.com", "name": "Ärtä Ñúñez 署名" }]);
    let v = app.create(&body).await;
    let sign_url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let (status, _) =
        crate::signing::sign_as(&crate::signing::browser(), &sign_url, "Ärtä Ñúñez 署名").await;
    assert_eq!(status, 200);
    drain(&app).await;
    // A decline and a cancel.
    let v = app.create(&seed_body()).await;
    let url0 = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let b = crate::signing::browser();
    crate::signing::page(&b, &url0).await;
    let (_, html) = crate::signing::page(&b, &format!("{url0}/decline")).await;
    let csrf = crate::signing::csrf_of(&html);
    crate::signing::post_form(
        &b,
        &format!("{url0}/decline"),
        &[("csrf", &csrf), ("reason", "Wrong price")],
    )
    .await;
    let v = app.create(&seed_body()).await;
    let res = app
        .post(&format!(
            "/api/v1/signatures/{}/cancel",
            v["id"].as_str().unwrap()
        ))
        .json(&json!({"reason": "Sent to the wrong person"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .post(&format!("/api/v1/webhook-endpoints/{ep}/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    drain(&app).await;
    let before_rotation = rx.hits().len();

    // Rotated: a test event and a new request, each signed with both secrets.
    let res = app
        .post(&format!("/api/v1/webhook-endpoints/{ep}/rotate-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let new = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(&format!("/api/v1/webhook-endpoints/{ep}/test"))
        .send()
        .await
        .unwrap();
    app.create(&seed_body()).await;
    drain(&app).await;
    let hits = rx.hits();
    assert!(hits.len() > before_rotation + 1);

    let types: std::collections::BTreeSet<String> = rx.types().into_iter().collect();
    for t in [
        "signature_request.created",
        "signature_request.sent",
        "signature_request.opened",
        "signer.opened",
        "signer.signed",
        "signature_request.completed",
        "signature_request.signed",
        "signer.declined",
        "signature_request.declined",
        "signature_request.cancelled",
        "webhook_endpoint.test",
    ] {
        assert!(types.contains(t), "{t} delivered: {types:?}");
    }

    let mut cases = Vec::new();
    let mut expected = Vec::new();
    let now = chrono::Utc::now().timestamp();
    for (i, h) in hits.iter().enumerate() {
        let sig = header(h, "x-signeur-signature").to_string();
        let name = format!("{i} {}", body_json(h)["type"].as_str().unwrap());
        let rotated = i >= before_rotation;
        assert_eq!(
            sig.matches("v1=").count(),
            if rotated { 2 } else { 1 },
            "{sig}"
        );
        let signing: Vec<String> = if rotated {
            vec![new.clone(), old.clone()]
        } else {
            vec![old.clone()]
        };
        for s in &signing {
            signeur_webhook::verify(s, &sig, &h.body, now).unwrap();
            expected.push((name.clone(), s.clone(), true));
        }
        let mut secrets = signing;
        if !rotated {
            // The new secret did not exist yet: it must not verify.
            assert!(signeur_webhook::verify(&new, &sig, &h.body, now).is_err());
            secrets.push(new.clone());
            expected.push((name.clone(), new.clone(), false));
        }
        cases.push((name, h.body.to_vec(), sig, secrets));
    }
    // A delivered request with one byte of its body changed is refused.
    let h = &hits[0];
    let mut changed = h.body.to_vec();
    let at = changed.iter().position(|b| *b == b':').unwrap() + 2;
    changed[at] ^= 1;
    assert!(
        signeur_webhook::verify(&old, header(h, "x-signeur-signature"), &changed, now).is_err()
    );
    cases.push((
        "changed body".into(),
        changed,
        header(h, "x-signeur-signature").into(),
        vec![old.clone()],
    ));
    expected.push(("changed body".into(), old.clone(), false));

    assert_eq!(stripe_verdicts(&cases), expected);
}

fn no_redirects() -> reqwest::Client {
    http_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

/// A request and an embedded session for its first signer: (session id, redirect URL).
async fn new_session(app: &TestApp) -> (String, String) {
    let v = app.create(&seed_body()).await;
    let (id, signer) = (
        v["id"].as_str().unwrap().to_string(),
        v["signers"][0]["id"].as_str().unwrap().to_string(),
    );
    let res = app
        .post(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/sessions"
        ))
        .json(&json!({"return_url": "http://127.0.0.1:9/return", "state": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let s: Value = res.json().await.unwrap();
    (
        s["signing_session_id"].as_str().unwrap().to_string(),
        s["redirect_url"].as_str().unwrap().to_string(),
    )
}

/// Opens a session's one-time URL in a fresh browser: (browser, signing page URL, its HTML).
async fn open_session(app: &TestApp, redirect: &str) -> (reqwest::Client, String, String) {
    let b = no_redirects();
    let res = b.get(redirect).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let page_url = format!("{}{}", app.base, location(&res));
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    (b, page_url, html)
}

/// A used or expired one-time URL goes back with `failed` / `token_expired`.
async fn replay_token(redirect: &str) {
    let res = no_redirects().get(redirect).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.contains("failure_code=token_expired"), "{to}");
}

/// Embedded sessions — one completed by signing, one declined, one left to expire (two
/// expiry runs at once, then the `ExpireSessions` job twice) — with their redirect tokens and
/// forms replayed (and Cancel pressed after the signature), a
/// delivery answered 500 then retried, and a redelivery asked for through the API: each
/// session has exactly one `signing_session.completed` recorded, and the receiver gets
/// exactly one event id per session (a delivery's repeats carry the same id).
#[tokio::test]
async fn each_embedded_session_reaches_the_receiver_as_exactly_one_completion() {
    use std::collections::{BTreeMap, BTreeSet};
    let app = TestApp::start().await;
    let rx = Receiver::start(vec![Reply::Status(500)]).await;
    let (ep, _) = endpoint(&app, &rx.url, json!(["signing_session.completed"])).await;
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&app.key)
        .json(&json!({"allowed_return_urls": ["http://127.0.0.1:9/return"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Signed.
    let (signed, redirect) = new_session(&app).await;
    let (b, page_url, html) = open_session(&app, &redirect).await;
    let form = [
        ("csrf", crate::signing::csrf_of(&html)),
        ("full_name", "Anna Buyer".to_string()),
        ("consent", "yes".to_string()),
    ];
    let res = b
        .post(format!("{page_url}/sign"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        location(&res).contains("result=success"),
        "{}",
        location(&res)
    );
    let again = b
        .post(format!("{page_url}/sign"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(!again.status().is_server_error(), "{}", again.status());
    // The Cancel button of the same page, after the signature: back to the integrator, but
    // the session stays completed once.
    let res = b
        .post(format!("{page_url}/cancel"))
        .form(&[("csrf", form[0].1.as_str())])
        .send()
        .await
        .unwrap();
    assert!(!res.status().is_server_error(), "{}", res.status());
    replay_token(&redirect).await;

    // Declined.
    let (declined, redirect) = new_session(&app).await;
    let (b, page_url, _) = open_session(&app, &redirect).await;
    let html = b
        .get(format!("{page_url}/decline"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("csrf", crate::signing::csrf_of(&html)),
        ("reason", "Wrong price".to_string()),
    ];
    let res = b
        .post(format!("{page_url}/decline"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        location(&res).contains("result=cancelled"),
        "{}",
        location(&res)
    );
    let again = b
        .post(format!("{page_url}/decline"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(!again.status().is_server_error(), "{}", again.status());
    replay_token(&redirect).await;

    // Never opened: expires through the ExpireSessions job, which then runs again.
    let (expired, redirect) = new_session(&app).await;
    drain(&app).await;
    app.advance(chrono::Duration::minutes(16));
    // Two expiry runs at once (a worker whose lease lapsed and the one that took over):
    // both may find the session lapsed; one completes it.
    let (a, b) = tokio::join!(app.service.expire_sessions(), app.service.expire_sessions());
    assert!(a.unwrap() + b.unwrap() >= 1);
    // Then the job itself, and once more.
    for _ in 0..2 {
        app.service.schedule_periodic_jobs().await.unwrap();
        drain(&app).await;
    }
    assert_eq!(app.service.expire_sessions().await.unwrap(), 0);
    replay_token(&redirect).await;
    // The delivery answered 500 got its retry (the clock moved past it); one more
    // redelivery of the signed session's completion through the API.
    let deliveries = history(&app, &ep, "?limit=100").await;
    let first = deliveries["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attempt"] == 1 && a["http_status"] == 500)
        .cloned()
        .expect("the first delivery was answered 500");
    let res = app
        .post(&format!(
            "/api/v1/webhook-deliveries/{}/retry",
            first["delivery_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    drain(&app).await;

    // Recorded: one completion per session.
    let recorded = recorded_event_ids(
        &app.client,
        &app.base,
        &app.key,
        "&type=signing_session.completed",
    )
    .await;
    let mut by_session: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in &recorded {
        by_session
            .entry(
                e["data"]["signing_session_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
            .or_default()
            .push(e.clone());
    }
    let results: BTreeMap<&str, (&str, Value)> = [
        (signed.as_str(), ("success", Value::Null)),
        (declined.as_str(), ("cancelled", Value::Null)),
        (expired.as_str(), ("failed", json!("token_expired"))),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_session.len(), 3, "{recorded:?}");
    for (sid, (result, failure)) in &results {
        let events = &by_session[*sid];
        assert_eq!(events.len(), 1, "{sid}: {events:?}");
        assert_eq!(events[0]["data"]["result"], *result);
        assert_eq!(events[0]["data"]["failure_code"], *failure);
    }

    // Received: one event id per session, the recorded one, however many times delivered.
    let hits = rx.hits();
    assert!(
        hits.len() >= 5,
        "3 completions, the retry after 500, the redelivery"
    );
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for h in &hits {
        let v = body_json(h);
        assert_eq!(v["type"], "signing_session.completed");
        ids.entry(
            v["data"]["signing_session_id"]
                .as_str()
                .unwrap()
                .to_string(),
        )
        .or_default()
        .insert(v["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 3);
    for (sid, got) in &ids {
        let want: BTreeSet<String> = [by_session[sid][0]["id"].as_str().unwrap().to_string()]
            .into_iter()
            .collect();
        assert_eq!(got, &want, "{sid}");
    }
    let repeated: Vec<_> = hits
        .iter()
        .filter(|h| event_id(h) == event_id(&hits[0]))
        .collect();
    assert_eq!(
        repeated.len(),
        3,
        "answered 500, retried, redelivered: one event id"
    );
}

/// Group commit: attempts whose answers arrive together are recorded in shared transactions
/// (the receiver holds every request until all have arrived, then answers them at once),
/// and every one of them is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_answered_together_share_commits() {
    const N: usize = 30;
    let app = TestApp::start().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    for _ in 0..N {
        endpoint(&app, &url, json!(["signature_request.created"])).await;
    }
    app.create(&seed_body()).await;
    let _stop = spawn_worker(app.service.clone());

    let start = Instant::now();
    loop {
        let deliveries = app.db.webhook_deliveries(app.org_id).await.unwrap();
        if deliveries.len() == N && deliveries.iter().all(|d| d.status == "succeeded") {
            break;
        }
        assert!(
            start.elapsed() < StdDuration::from_secs(20),
            "{deliveries:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let metrics = &app.service.metrics;
    let (commits, outcomes) = (
        metrics.webhook_outcome_commits.get(),
        metrics.webhook_outcomes.get(),
    );
    assert_eq!(outcomes, N as u64);
    assert!(
        commits < outcomes,
        "{outcomes} attempts in {commits} commits: none shared a transaction"
    );
    let text = metrics.render();
    assert!(
        text.contains(&format!("signeur_webhook_outcomes_total {N}")),
        "{text}"
    );
}
