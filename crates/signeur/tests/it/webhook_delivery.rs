//! Webhook delivery against real HTTP receivers on loopback: every event arrives signed,
//! retries keep the event id, the history lists every attempt, a hanging receiver costs one
//! timeout, filters / disable / delete hold, and the SSRF rule refuses loopback when private
//! hosts are not allowed.

use std::collections::VecDeque;
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
}

#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    /// A receiver on 127.0.0.1 answering with `plan` in order, then 200.
    pub(crate) async fn start(plan: Vec<Reply>) -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Default::default();
        let plan = Arc::new(Mutex::new(VecDeque::from(plan)));
        let (h, p) = (hits.clone(), plan.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (h, p) = (h.clone(), p.clone());
                async move {
                    h.lock().unwrap().push(Hit {
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    let reply = p.lock().unwrap().pop_front();
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
