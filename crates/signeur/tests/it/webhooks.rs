//! Webhook endpoints: the seed's API (create with a secret shown once, list without secrets,
//! patch only what is named, delete), validation, organization scope, the host rule.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn create(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let res = app
        .post("/api/v1/webhook-endpoints")
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn patch(app: &TestApp, id: &str, body: Value) -> (StatusCode, Value) {
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/webhook-endpoints/{id}")))
        .bearer_auth(&app.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

#[tokio::test]
async fn endpoints_are_created_listed_patched_and_deleted_as_the_seed_says() {
    let app = TestApp::start().await;
    let (status, created) = create(
        &app,
        json!({"url": "https://example.com/hooks/signeur",
               "event_types": ["signature_request.completed", "signer.signed"],
               "description": "Production sync"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("ep_"), "{id}");
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(created["url"], "https://example.com/hooks/signeur");
    assert_eq!(
        created["event_types"],
        json!(["signature_request.completed", "signer.signed"])
    );
    assert_eq!(created["description"], "Production sync");
    assert_eq!(created["disabled_at"], Value::Null);
    assert!(is_wire_time(&created["created_at"]));
    assert_eq!(created["created_at"], created["updated_at"]);

    // The list never shows a secret.
    let list = app.get_json("/api/v1/webhook-endpoints").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(list["data"][0].get("secret").is_none(), "{list}");
    assert!(!list.to_string().contains(secret));

    // A patch changes only what it names.
    app.advance(chrono::Duration::seconds(5));
    let (status, v) = patch(&app, &id, json!({"disabled": true})).await;
    assert_eq!(status, 200, "{v}");
    assert!(is_wire_time(&v["disabled_at"]));
    assert_eq!(v["description"], "Production sync");
    assert_eq!(v["url"], "https://example.com/hooks/signeur");
    assert_ne!(v["updated_at"], created["updated_at"]);
    let (_, v) = patch(
        &app,
        &id,
        json!({"disabled": false, "event_types": [], "description": null,
               "url": "https://example.com/v2"}),
    )
    .await;
    assert_eq!(v["disabled_at"], Value::Null);
    assert_eq!(v["event_types"], json!([]));
    assert_eq!(v["description"], Value::Null);
    assert_eq!(v["url"], "https://example.com/v2");

    // Another organization sees none of it.
    let (_, other_key) = app.other_org().await;
    let res = app
        .client
        .get(app.url("/api/v1/webhook-endpoints"))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["data"], json!([]));
    for req in [
        app.client
            .patch(app.url(&format!("/api/v1/webhook-endpoints/{id}")))
            .json(&json!({"disabled": true})),
        app.client
            .delete(app.url(&format!("/api/v1/webhook-endpoints/{id}"))),
    ] {
        let res = req.bearer_auth(&other_key).send().await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "not_found");
    }

    // Delete: 204, then gone.
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/webhook-endpoints/{id}")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = patch(&app, &id, json!({})).await;
    assert_eq!(status, 404);
    let list = app.get_json("/api/v1/webhook-endpoints").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn bad_endpoint_bodies_get_a_precise_400() {
    let app = TestApp::start().await;
    for (body, code, field) in [
        (json!({}), "missing_field", "'url'"),
        (json!({"url": 7}), "invalid_field", "'url'"),
        (json!({"url": "not a url"}), "invalid_url", "'url'"),
        (json!({"url": "ftp://example.com/"}), "invalid_url", "'url'"),
        (
            json!({"url": "https://example.com/", "event_types": ["signer.sighed"]}),
            "invalid_event_type",
            "'event_types[0]'",
        ),
        (
            json!({"url": "https://example.com/", "event_types": "signer.signed"}),
            "invalid_field",
            "'event_types'",
        ),
        (
            json!({"url": "https://example.com/", "description": "x".repeat(201)}),
            "invalid_field",
            "'description'",
        ),
        (
            json!({"url": "https://example.com/", "secret": "mine"}),
            "invalid_field",
            "'secret'",
        ),
    ] {
        let (status, v) = create(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"], code, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{body}: {v}"
        );
    }
    let res = app
        .post("/api/v1/webhook-endpoints")
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_json");
    // Unknown ids are 404s, whatever their shape.
    for id in [
        "ep_nope",
        "6dc18911-f66b-43d6-9810-8de0b07bab04",
        "ep_6dc18911-f66b-43d6-9810-8de0b07bab04",
    ] {
        let (status, v) = patch(&app, id, json!({})).await;
        assert_eq!(status, 404, "{id}: {v}");
    }
}

/// Without SIGNEUR_WEBHOOK_ALLOW_PRIVATE (the default), an endpoint on loopback, a private
/// address or plain http is refused, and the message names the setting.
#[tokio::test]
async fn the_binary_refuses_private_and_plain_http_endpoints_by_default() {
    let dir = crate::cli::Backend::new().await;
    let (server, key) = crate::cli::serve_with(&dir, &[]);
    let key = key.expect("first start prints api_key");
    let client = http_client();
    for url in [
        "http://localhost:9000/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest",
        "http://hooks.example.com/x",
    ] {
        let res = client
            .post(format!("{}/api/v1/webhook-endpoints", server.base))
            .bearer_auth(&key)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{url}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "invalid_url", "{url}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("SIGNEUR_WEBHOOK_ALLOW_PRIVATE"),
            "{url}: {v}"
        );
    }
    let res = client
        .post(format!("{}/api/v1/webhook-endpoints", server.base))
        .bearer_auth(&key)
        .json(&json!({ "url": "https://hooks.example.com/x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A repeated create with the same `Idempotency-Key` replays the endpoint while it exists;
/// once it was deleted, the key creates a new one (a replay would name an id that is a 404).
#[tokio::test]
async fn an_idempotent_create_replays_only_while_its_endpoint_exists() {
    let app = TestApp::start().await;
    let send = || {
        app.post("/api/v1/webhook-endpoints")
            .header("Idempotency-Key", "ep-key-1")
            .json(&json!({"url": "https://example.com/hooks"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    let id = first["id"].as_str().unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/webhook-endpoints/{id}")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let fresh = send().await.unwrap();
    assert_eq!(fresh.status(), 201);
    assert!(fresh.headers().get("idempotent-replayed").is_none());
    let fresh: Value = fresh.json().await.unwrap();
    assert_ne!(fresh["id"], first["id"]);
    let list = app.get_json("/api/v1/webhook-endpoints").await;
    assert_eq!(list["data"][0]["id"], fresh["id"]);
}
