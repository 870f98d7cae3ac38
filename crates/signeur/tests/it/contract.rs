//! The settings and session bodies are parsed by the service; their OpenAPI schemas (as
//! served) must accept the same fields. Driven by the schema: every property, whether it is
//! required and nullable, `additionalProperties: false`, `maxLength` and `maxItems`, each
//! tried at and just past its boundary through the real router.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s["$ref"].as_str() {
        Some(r) => schema(doc, r.rsplit('/').next().unwrap()),
        None => s,
    }
}

fn nullable(s: &Value) -> bool {
    s["type"]
        .as_array()
        .is_some_and(|t| t.contains(&json!("null")))
        || s["oneOf"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x["type"] == "null"))
}

/// A property's schema without its `null` alternative, resolved.
fn non_null<'a>(doc: &'a Value, p: &'a Value) -> &'a Value {
    match p["oneOf"].as_array() {
        Some(o) => resolve(doc, o.iter().find(|x| x["type"] != "null").unwrap()),
        None => resolve(doc, p),
    }
}

fn names(s: &Value, key: &str) -> BTreeSet<String> {
    match &s[key] {
        Value::Object(m) => m.keys().cloned().collect(),
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        _ => BTreeSet::new(),
    }
}

/// `body` with `key` set (`None`: removed).
fn with(body: &Value, key: &str, value: Option<Value>) -> Value {
    let mut b = body.clone();
    match value {
        Some(v) => b[key] = v,
        None => {
            b.as_object_mut().unwrap().remove(key);
        }
    }
    b
}

/// A URL of exactly `len` characters under `prefix`.
fn url_of_len(prefix: &str, len: usize) -> String {
    format!("{prefix}/{}", "a".repeat(len - prefix.len() - 1))
}

/// `reminders` of `PATCH /api/v1/settings`: null or an object whose every property is a
/// required integer, accepted at its `minimum`/`maximum` and refused just past them.
async fn reminders_match_their_schema<F, Fut>(doc: &Value, p: &Value, patch: &F)
where
    F: Fn(Value) -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    let alternatives = p["oneOf"].as_array().expect("reminders: a policy or null");
    assert!(alternatives.iter().any(|a| a["type"] == "null"), "nullable");
    let policy = alternatives
        .iter()
        .find(|a| a["type"] != "null")
        .map(|a| resolve(doc, a))
        .unwrap();
    assert_eq!(
        patch(json!({"reminders": null})).await,
        StatusCode::OK,
        "null"
    );
    assert_eq!(
        patch(json!({"reminders": "x"})).await,
        StatusCode::BAD_REQUEST
    );
    let props = policy["properties"].as_object().unwrap();
    assert_eq!(names(policy, "required"), names(policy, "properties"));
    let base: Value = props
        .iter()
        .map(|(k, v)| (k.clone(), json!(v["minimum"].as_u64().unwrap())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_eq!(patch(json!({"reminders": base})).await, StatusCode::OK);
    for (key, v) in props {
        assert_eq!(v["type"], "integer", "{key}");
        let (min, max) = (
            v["minimum"].as_i64().unwrap(),
            v["maximum"].as_i64().unwrap(),
        );
        for (value, ok) in [
            (json!(min), true),
            (json!(max), true),
            (json!(min - 1), false),
            (json!(max + 1), false),
            (json!(min as f64 + 0.5), false),
            (Value::Null, false),
        ] {
            let body = json!({"reminders": with(&base, key, Some(value.clone()))});
            let expected = if ok {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            assert_eq!(patch(body).await, expected, "reminders.{key} = {value}");
        }
        let body = json!({"reminders": with(&base, key, None)});
        assert_eq!(
            patch(body).await,
            StatusCode::BAD_REQUEST,
            "reminders.{key} absent"
        );
    }
}

#[tokio::test]
async fn settings_and_session_bodies_match_their_schemas() {
    let app = TestApp::start().await;
    let doc = app.get_json("/api/v1/openapi.json").await;
    let prefix = "https://app.example.com/r";

    // PATCH /api/v1/settings
    let patch = |body: Value| {
        let req = app
            .client
            .patch(app.url("/api/v1/settings"))
            .bearer_auth(&app.key)
            .json(&body);
        async move { req.send().await.unwrap().status() }
    };
    let s = schema(&doc, "SettingsPatch");
    assert_eq!(s["additionalProperties"], false);
    assert_eq!(
        patch(json!({"session_secret": "x"})).await,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused, as additionalProperties: false says"
    );
    assert_eq!(
        names(s, "properties"),
        [
            "allowed_frame_origins",
            "allowed_return_urls",
            "branding",
            "default_locale",
            "legacy_webhook_url",
            "reminders"
        ]
        .map(String::from)
        .into()
    );
    assert!(names(s, "required").is_empty());
    reminders_match_their_schema(&doc, &s["properties"]["reminders"], &patch).await;
    // The single values: null accepted, a wrong type refused, the documented form accepted.
    for (key, good, bad) in [
        ("default_locale", json!("fi"), json!("sv")),
        (
            "branding",
            json!({"name": "Acme", "color": "#112233"}),
            json!({"color": "red"}),
        ),
        (
            "legacy_webhook_url",
            json!("http://127.0.0.1:9/hook"),
            json!("ftp://x.example.com"),
        ),
    ] {
        assert!(nullable(&s["properties"][key]), "{key}");
        assert_eq!(
            patch(json!({key: null})).await,
            StatusCode::OK,
            "{key}: null"
        );
        assert_eq!(patch(json!({key: good})).await, StatusCode::OK, "{key}");
        assert_eq!(
            patch(json!({key: bad})).await,
            StatusCode::BAD_REQUEST,
            "{key}"
        );
        assert_eq!(
            patch(json!({key: 7})).await,
            StatusCode::BAD_REQUEST,
            "{key}: 7"
        );
    }
    let locales = non_null(&doc, &s["properties"]["default_locale"]);
    assert_eq!(locales["enum"], json!(["en", "fi", "fr", "de"]));
    let branding = non_null(&doc, &s["properties"]["branding"]);
    assert_eq!(branding["additionalProperties"], false);
    assert_eq!(
        names(branding, "properties"),
        ["color", "logo_base64", "name"].map(String::from).into()
    );
    let name_max = branding["properties"]["name"]["maxLength"]
        .as_u64()
        .unwrap() as usize;
    let named = |n: usize| json!({"branding": {"name": "n".repeat(n)}});
    assert_eq!(
        patch(named(name_max)).await,
        StatusCode::OK,
        "branding.name: maxLength"
    );
    assert_eq!(
        patch(named(name_max + 1)).await,
        StatusCode::BAD_REQUEST,
        "branding.name: past maxLength"
    );
    assert_eq!(
        patch(json!({"branding": {"other": 1}})).await,
        StatusCode::BAD_REQUEST,
        "branding: additionalProperties false"
    );
    let url_max = non_null(&doc, &s["properties"]["legacy_webhook_url"])["maxLength"]
        .as_u64()
        .unwrap() as usize;
    let hook = "http://127.0.0.1:9/hook";
    assert_eq!(
        patch(json!({"legacy_webhook_url": url_of_len(hook, url_max)})).await,
        StatusCode::OK,
        "legacy_webhook_url: maxLength"
    );
    assert_eq!(
        patch(json!({"legacy_webhook_url": url_of_len(hook, url_max + 1)})).await,
        StatusCode::BAD_REQUEST,
        "legacy_webhook_url: past maxLength"
    );
    for (key, p) in s["properties"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("allowed_"))
    {
        let item = resolve(&doc, &p["items"]);
        assert_eq!(item["format"], "uri", "{key}");
        let valid = |i: usize| match key.as_str() {
            "allowed_frame_origins" => format!("https://app{i}.example.com"),
            _ => format!("{prefix}/{i}"),
        };
        assert!(nullable(p), "{key}");
        assert_eq!(
            patch(json!({key: null})).await,
            StatusCode::OK,
            "{key}: null"
        );
        assert_eq!(patch(json!({})).await, StatusCode::OK, "{key}: absent");
        assert_eq!(
            patch(json!({key: "x"})).await,
            StatusCode::BAD_REQUEST,
            "{key}"
        );
        let max = p["maxItems"].as_u64().unwrap() as usize;
        let list = |n: usize| json!({key: (0..n).map(valid).collect::<Vec<_>>()});
        assert_eq!(patch(list(max)).await, StatusCode::OK, "{key}: maxItems");
        assert_eq!(
            patch(list(max + 1)).await,
            StatusCode::BAD_REQUEST,
            "{key}: past maxItems"
        );
        let max_len = item["maxLength"].as_u64().unwrap() as usize;
        let long = match key.as_str() {
            "allowed_frame_origins" => format!("https://{}.com", "a".repeat(max_len - 11)),
            _ => url_of_len(prefix, max_len + 1),
        };
        assert_eq!(long.len(), max_len + 1);
        assert_eq!(
            patch(json!({key: [long]})).await,
            StatusCode::BAD_REQUEST,
            "{key}: past maxLength"
        );
        if key == "allowed_return_urls" {
            let at_max = url_of_len(prefix, max_len);
            assert_eq!(
                patch(json!({key: [at_max]})).await,
                StatusCode::OK,
                "{key}: maxLength"
            );
        }
    }
    assert_eq!(
        patch(json!({"allowed_return_urls": [prefix]})).await,
        StatusCode::OK
    );

    // POST …/signers/{signer_id}/sessions
    let v = app.create(&seed_body()).await;
    let path = format!(
        "/api/v1/signatures/{}/signers/{}/sessions",
        v["id"].as_str().unwrap(),
        v["signers"][0]["id"].as_str().unwrap()
    );
    let create = |body: Value| {
        let req = app.post(&path).json(&body);
        async move { req.send().await.unwrap().status() }
    };
    let s = schema(&doc, "CreateSession");
    assert_eq!(s["additionalProperties"], false);
    let base = json!({"return_url": prefix, "state": "s"});
    assert_eq!(create(base.clone()).await, StatusCode::CREATED);
    assert_eq!(
        create(with(&base, "other", Some(json!(1)))).await,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused, as additionalProperties: false says"
    );
    assert_eq!(
        names(s, "properties"),
        ["return_url", "state"].map(String::from).into()
    );
    let required = names(s, "required");
    for (key, p) in s["properties"].as_object().unwrap() {
        let absent = create(with(&base, key, None)).await;
        let null = create(with(&base, key, Some(Value::Null))).await;
        let expected = |ok: bool| {
            if ok {
                StatusCode::CREATED
            } else {
                StatusCode::BAD_REQUEST
            }
        };
        assert_eq!(absent, expected(!required.contains(key)), "{key}: absent");
        assert_eq!(null, expected(nullable(p)), "{key}: null");
        assert_eq!(
            create(with(&base, key, Some(json!(7)))).await,
            StatusCode::BAD_REQUEST
        );
        let max = p["maxLength"].as_u64().unwrap() as usize;
        let value = |len: usize| match key.as_str() {
            "return_url" => url_of_len(prefix, len),
            _ => "s".repeat(len),
        };
        assert_eq!(
            create(with(&base, key, Some(json!(value(max))))).await,
            StatusCode::CREATED,
            "{key}: maxLength"
        );
        assert_eq!(
            create(with(&base, key, Some(json!(value(max + 1))))).await,
            StatusCode::BAD_REQUEST,
            "{key}: past maxLength"
        );
    }
    assert_eq!(
        resolve(&doc, &s["properties"]["return_url"])["format"],
        "uri"
    );
}

#[tokio::test]
async fn the_documented_create_example_creates_a_request() {
    let app = TestApp::start().await;
    let doc = app.get_json("/api/v1/openapi.json").await;
    let example = &doc["paths"]["/api/v1/signatures"]["post"]["requestBody"]["content"]["application/json"]
        ["example"];
    let v = app.create(example).await;
    assert_eq!(v["signers"].as_array().unwrap().len(), 2);
}
