//! The legacy single-URL webhook (issue 15): `legacy_webhook_url` in settings receives every
//! event while the organization has no webhook endpoint (disabled ones count), signed with a
//! secret shown once by the PATCH that set it; setting it again rotates the secret.

use reqwest::StatusCode;
use serde_json::{Value, json};

use signeur_service::webhooks::WebhookSettings;

use crate::support::*;
use crate::webhook_delivery::{Receiver, body_json, drain, endpoint, header, signed_request};

async fn patch(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&app.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

/// Sets the legacy URL; returns the secret the response shows.
async fn set_legacy(app: &TestApp, url: &str) -> String {
    let (s, v) = patch(app, json!({"legacy_webhook_url": url})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["legacy_webhook_url"], url);
    let secret = v["legacy_webhook_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    secret
}

fn verifies(secret: &str, hit: &crate::webhook_delivery::Hit) -> bool {
    let now = chrono::Utc::now().timestamp();
    signeur_webhook::verify(secret, header(hit, "x-signeur-signature"), &hit.body, now).is_ok()
}

/// Creates a request and runs the jobs; returns the created event's id.
async fn created_event(app: &TestApp) -> String {
    let v = app.create(&seed_body()).await;
    drain(app).await;
    let id = v["id"].as_str().unwrap();
    let detail = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    detail["audit_trail"]["events"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn ids(rx: &Receiver) -> Vec<String> {
    rx.hits()
        .iter()
        .map(|h| body_json(h)["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_legacy_url_gets_every_event_while_no_endpoint_exists() {
    let app = TestApp::start().await;
    let legacy = Receiver::start(vec![]).await;
    let first = set_legacy(&app, &legacy.url).await;
    let v = app.get_json("/api/v1/settings").await;
    assert_eq!(v["legacy_webhook_url"], legacy.url.as_str());
    assert_eq!(v["legacy_webhook_secret"], Value::Null, "shown once: {v}");

    // Every event of a signed request, signed with the secret.
    let id = signed_request(&app).await;
    drain(&app).await;
    let detail = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let mut want: Vec<String> = detail["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let mut got = ids(&legacy);
    want.sort();
    got.sort();
    assert_eq!(got, want, "every event, once");
    assert!(
        legacy
            .types()
            .contains(&"signature_request.completed".to_string())
    );
    assert!(legacy.hits().iter().all(|h| verifies(&first, h)));

    // Setting it again (the same URL) rotates the secret: the new one signs, the old not.
    let second = set_legacy(&app, &legacy.url).await;
    assert_ne!(first, second);
    let evt = created_event(&app).await;
    let hit = legacy
        .hits()
        .into_iter()
        .find(|h| body_json(h)["id"] == evt.as_str())
        .expect("delivered");
    assert!(verifies(&second, &hit));
    assert!(!verifies(&first, &hit), "the old secret no longer signs");

    // An endpoint takes over, even disabled; deleting it hands back to the legacy URL.
    let other = Receiver::start(vec![]).await;
    let (ep, _) = endpoint(&app, &other.url, json!([])).await;
    let evt = created_event(&app).await;
    assert!(!ids(&legacy).contains(&evt), "an endpoint exists");
    assert!(ids(&other).contains(&evt));
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/webhook-endpoints/{ep}")))
        .bearer_auth(&app.key)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let evt = created_event(&app).await;
    assert!(
        !ids(&legacy).contains(&evt) && !ids(&other).contains(&evt),
        "a disabled endpoint still exists: nobody gets it"
    );
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/webhook-endpoints/{ep}")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let evt = created_event(&app).await;
    assert!(
        ids(&legacy).contains(&evt),
        "no endpoint left: the legacy URL"
    );

    // null removes it: nothing more arrives.
    let (s, v) = patch(&app, json!({"legacy_webhook_url": null})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["legacy_webhook_url"], Value::Null);
    assert_eq!(v["legacy_webhook_secret"], Value::Null);
    let before = legacy.hits().len();
    created_event(&app).await;
    assert_eq!(legacy.hits().len(), before);
}

#[tokio::test]
async fn a_delivery_queued_before_the_url_was_removed_stops() {
    let app = TestApp::start().await;
    let legacy = Receiver::start(vec![]).await;
    set_legacy(&app, &legacy.url).await;
    app.create(&seed_body()).await;
    patch(&app, json!({"legacy_webhook_url": null})).await;
    drain(&app).await;
    assert!(legacy.hits().is_empty(), "removed before its attempt");
}

#[tokio::test]
async fn the_legacy_url_follows_the_endpoints_host_rules() {
    let app = TestApp::start_with_webhooks(WebhookSettings::default()).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://10.0.0.1/hook",
        "https://localhost/hook",
        "http://hooks.example.com/x",
    ] {
        let (s, v) = patch(&app, json!({"legacy_webhook_url": url})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {v}");
        assert_eq!(v["error"], "invalid_url", "{url}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains("'legacy_webhook_url'"), "{msg}");
    }
    // A public https host is accepted (no event is created here: nothing is sent).
    let (s, v) = patch(
        &app,
        json!({"legacy_webhook_url": "https://hooks.example.com/x"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
