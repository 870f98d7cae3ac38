//! `GET /api/v1/events`: the organization's events, newest first, for reconciliation after an
//! outage — pagination while events arrive, each filter, precise 400s, cursors bound to the
//! organization and the filters, and the organization's scope.

use std::collections::{HashMap, HashSet};

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

/// Every event of the organization as the requests' audit trails show them, by id:
/// (type, created_at, data, request id).
async fn trail_events(app: &TestApp, request_ids: &[String]) -> HashMap<String, Value> {
    let mut all = HashMap::new();
    for id in request_ids {
        let v = app.get_json(&format!("/api/v1/signatures/{id}")).await;
        for e in v["audit_trail"]["events"].as_array().unwrap() {
            all.insert(
                e["id"].as_str().unwrap().to_string(),
                serde_json::json!({
                    "id": e["id"],
                    "type": e["type"],
                    "created_at": e["created_at"],
                    "data": e["data"],
                    "signature_request_id": id,
                }),
            );
        }
    }
    all
}

/// Every page of `GET /api/v1/events?limit={limit}{query}`, in order.
async fn list_all_events(app: &TestApp, query: &str, limit: usize) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut url = format!("/api/v1/events?limit={limit}{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let res = app.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        let v: Value = res.json().await.unwrap();
        let page = v["data"].as_array().unwrap();
        assert!(page.len() <= limit);
        entries.extend(page.iter().cloned());
        if v["has_more"] == true {
            assert_eq!(page.len(), limit);
            cursor = Some(v["next_cursor"].as_str().unwrap().to_string());
        } else {
            assert_eq!(v["next_cursor"], Value::Null);
            return entries;
        }
    }
    panic!("pagination did not end");
}

fn ids(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn create_id(app: &TestApp) -> String {
    app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn events_page_newest_first_without_gaps_or_duplicates_while_events_arrive() {
    let app = TestApp::start().await;
    let mut requests = Vec::new();
    for i in 0..12 {
        // Some events share a millisecond: the id breaks the tie.
        if i % 3 == 0 {
            app.advance(Duration::milliseconds(1));
        }
        let id = create_id(&app).await;
        if i % 4 == 0 {
            app.post(&format!("/api/v1/signatures/{id}/cancel"))
                .send()
                .await
                .unwrap();
        }
        requests.push(id);
    }
    let before = trail_events(&app, &requests).await;
    assert!(before.len() > 12, "{}", before.len());

    let inserter = {
        let client = app.client.clone();
        let url = app.url("/api/v1/signatures");
        let key = app.key.clone();
        let clock = app.clock.clone();
        tokio::spawn(async move {
            for _ in 0..15 {
                clock.advance(Duration::milliseconds(1));
                let res = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&seed_body())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            }
        })
    };
    let seen = list_all_events(&app, "", 4).await;
    inserter.await.unwrap();

    let seen_ids = ids(&seen);
    assert_eq!(
        seen_ids.len(),
        seen_ids.iter().collect::<HashSet<_>>().len(),
        "no duplicates"
    );
    for id in before.keys() {
        assert!(seen_ids.contains(id), "no gaps: {id} missing");
    }
    // Newest first: (created_at, id) never increases.
    let keys: Vec<(String, String)> = seen
        .iter()
        .map(|e| {
            (
                e["created_at"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]), "{keys:?}");
    // Each entry is the webhook envelope plus its request, as the audit trail has it.
    for e in &seen {
        let id = e["id"].as_str().unwrap();
        if let Some(expected) = before.get(id) {
            assert_eq!(e, expected);
        }
        let keys: HashSet<&str> = e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            HashSet::from(["id", "type", "created_at", "data", "signature_request_id"])
        );
        assert!(is_wire_time(&e["created_at"]));
        assert!(id.starts_with("evt_"));
    }
    // A quiet second pass sees everything, in the same order, with the default limit too.
    let every_request: Vec<String> = app.get_json("/api/v1/signatures?limit=100").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(every_request.len(), 27);
    let all = trail_events(&app, &every_request).await;
    let quiet = list_all_events(&app, "", 7).await;
    assert_eq!(quiet.len(), all.len());
    for e in &quiet {
        assert_eq!(Some(e), all.get(e["id"].as_str().unwrap()));
    }
    let v = app.get_json("/api/v1/events").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 25, "default limit 25");
    assert_eq!(v["has_more"], true);
}

#[tokio::test]
async fn events_filters_by_type_and_creation_time() {
    let app = TestApp::start().await;
    let t0 = app.clock.now();
    let a = create_id(&app).await;
    app.advance(Duration::seconds(10));
    let t1 = app.clock.now();
    let b = create_id(&app).await;
    app.advance(Duration::seconds(10));
    let t2 = app.clock.now();
    app.post(&format!("/api/v1/signatures/{b}/cancel"))
        .send()
        .await
        .unwrap();
    let all = trail_events(&app, &[a.clone(), b.clone()]).await;
    let of = |pred: &dyn Fn(&Value) -> bool| -> HashSet<String> {
        all.iter()
            .filter(|(_, e)| pred(e))
            .map(|(id, _)| id.clone())
            .collect()
    };
    let set = |v: Vec<Value>| -> HashSet<String> { ids(&v).into_iter().collect() };
    let fmt = signeur_core::time::format;

    let created = set(list_all_events(&app, "&type=signature_request.created", 10).await);
    assert_eq!(created.len(), 2);
    assert_eq!(created, of(&|e| e["type"] == "signature_request.created"));
    let cancelled = list_all_events(&app, "&type=signature_request.cancelled", 10).await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["signature_request_id"], b.as_str());
    // A list, in any order and with spaces, is the union.
    let both = set(list_all_events(
        &app,
        "&type=signature_request.cancelled,%20signature_request.created",
        10,
    )
    .await);
    assert_eq!(
        both,
        of(&|e| e["type"] == "signature_request.created"
            || e["type"] == "signature_request.cancelled")
    );
    assert!(
        list_all_events(&app, "&type=signer.signed", 10)
            .await
            .is_empty()
    );

    // created_from is inclusive, created_to exclusive.
    let from_t1 = set(list_all_events(&app, &format!("&created_from={}", fmt(t1)), 10).await);
    assert_eq!(from_t1, of(&|e| e["signature_request_id"] == b.as_str()));
    let to_t1 = set(list_all_events(&app, &format!("&created_to={}", fmt(t1)), 10).await);
    assert_eq!(to_t1, of(&|e| e["signature_request_id"] == a.as_str()));
    let window = list_all_events(
        &app,
        &format!(
            "&created_from={}&created_to={}&type=signature_request.created",
            fmt(t0),
            fmt(t2)
        ),
        1,
    )
    .await;
    assert_eq!(set(window), created);
    // An instant with an offset means the same instant.
    let from_offset = (t2 + Duration::hours(2))
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
        .replace('+', "%2B");
    let after_t2 = list_all_events(&app, &format!("&created_from={from_offset}"), 10).await;
    assert!(after_t2.is_empty(), "{after_t2:?}");
}

#[tokio::test]
async fn events_refuse_bad_filters_limit_and_cursor_precisely() {
    let app = TestApp::start().await;
    create_id(&app).await;
    for (q, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("type=signer.nope", "invalid_filter"),
        ("type=signer.signed,bogus", "invalid_filter"),
        ("type=signer.signed,", "invalid_filter"),
        ("created_from=yesterday", "invalid_filter"),
        ("created_to=2026-13-01", "invalid_filter"),
        ("created_to=9999-12-31T23:59:59-23:59", "invalid_filter"),
        ("cursor=garbage", "invalid_cursor"),
    ] {
        let (status, error, message) = error_of(
            app.get(&format!("/api/v1/events?{q}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{q}"
        );
        let field = q.split('=').next().unwrap();
        assert!(message.contains(&format!("'{field}'")), "{q}: {message}");
    }
    let (status, error, _) = error_of(
        app.get("/api/v1/events?limit=1&limit=2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_filter")
    );
    for q in ["limit=100", "limit=1", "type=", "created_from=", "cursor="] {
        let res = app
            .get(&format!("/api/v1/events?{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{q}");
    }
    let res = app
        .client
        .get(app.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn events_cursor_is_bound_to_the_organization_and_the_filters() {
    let app = TestApp::start().await;
    for _ in 0..3 {
        app.advance(Duration::milliseconds(1));
        create_id(&app).await;
    }
    let q = "type=signature_request.created";
    let v = app.get_json(&format!("/api/v1/events?limit=1&{q}")).await;
    let cursor = v["next_cursor"].as_str().unwrap().to_string();
    let res = app
        .get(&format!("/api/v1/events?limit=1&{q}&cursor={cursor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The same filter written another way is the same filter.
    let res = app
        .get(&format!(
            "/api/v1/events?limit=1&type=signature_request.created,signature_request.created&cursor={cursor}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Other filters, tampered bytes, another organization, the signature list's cursor.
    for other in [
        String::new(),
        "&type=signer.signed".to_string(),
        format!("&{q}&created_from=2000-01-01T00:00:00Z"),
        format!("&{q}&created_to=2100-01-01T00:00:00Z"),
    ] {
        let (status, code, _) = error_of(
            app.get(&format!("/api/v1/events?limit=1{other}&cursor={cursor}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_cursor"),
            "{other}"
        );
    }
    let mut tampered = cursor.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (_, code, _) = error_of(
        app.get(&format!("/api/v1/events?{q}&cursor={tampered}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, "invalid_cursor");
    let (_, other_key) = app.other_org().await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/events?{q}&cursor={cursor}")))
        .bearer_auth(other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "invalid_cursor");
    let v = app.get_json("/api/v1/signatures?limit=1").await;
    let signatures_cursor = v["next_cursor"].as_str().unwrap();
    let (_, code, _) = error_of(
        app.get(&format!("/api/v1/events?cursor={signatures_cursor}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, "invalid_cursor");
}

#[tokio::test]
async fn events_of_another_organization_never_appear() {
    let app = TestApp::start().await;
    let mine = create_id(&app).await;
    let (_, other_key) = app.other_org().await;
    let mut theirs = Vec::new();
    for _ in 0..3 {
        app.advance(Duration::milliseconds(1));
        let res = app
            .client
            .post(app.url("/api/v1/signatures"))
            .bearer_auth(&other_key)
            .json(&seed_body())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        theirs.push(v["id"].as_str().unwrap().to_string());
    }
    let seen = list_all_events(&app, "", 2).await;
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|e| e["signature_request_id"] == mine.as_str()),
        "{seen:?}"
    );
    let res = app
        .client
        .get(app.url("/api/v1/events?limit=100"))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    let requests: HashSet<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["signature_request_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        requests,
        theirs.iter().map(|s| s.as_str()).collect::<HashSet<_>>()
    );
}
