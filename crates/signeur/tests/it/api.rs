//! The v1 API through the real router over TCP.

use std::collections::HashSet;

use crate::support::*;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../signeur-pdf/tests/fixtures/"
);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap()
}

#[tokio::test]
async fn create_returns_the_seed_fields() {
    let app = TestApp::start().await;
    let v = app.create(&seed_body()).await;
    assert_eq!(v["status"], "sent", "delivery api is sent at once");
    assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());
    assert!(is_wire_time(&v["expires_at"]));
    assert!(is_wire_time(&v["created_at"]));
    let signers = v["signers"].as_array().unwrap();
    assert_eq!(signers.len(), 2);
    for (s, (email, name, locale)) in signers.iter().zip([
        ("buyer@example.com", "Anna Buyer", "en"),
        ("seller@example.com", "Bob Seller", "fi"),
    ]) {
        for field in [
            "id",
            "email",
            "name",
            "access_token",
            "sign_url",
            "email_sent",
            "email_error",
            "locale",
        ] {
            assert!(s.get(field).is_some(), "signer field {field} missing: {s}");
        }
        assert_eq!(s["email"], email);
        assert_eq!(s["name"], name);
        assert_eq!(s["locale"], locale);
        assert_eq!(s["email_sent"], false);
        assert_eq!(s["email_error"], Value::Null);
        let token = s["access_token"].as_str().unwrap();
        assert!(token.len() >= 43, "≥ 256 bits");
        assert_eq!(s["sign_url"], format!("{}/sign/{token}", app.base));
    }
    // Expiry defaults to 30 days after creation.
    let created = chrono::DateTime::parse_from_rfc3339(v["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, Duration::days(30));
}

#[tokio::test]
async fn get_shows_status_signers_hash_trail_and_verbatim_metadata() {
    let app = TestApp::start().await;
    let raw = format!(
        r#"{{"title":"T","delivery":"api","signers":[{{"email":"a@example.com","name":"A"}}],"document":{{"filename":"c.pdf","content_base64":"{}"}},"metadata":{{"z":1,"a":2.50,"nested":{{"k":[true,null]}}}}}}"#,
        b64(ONE_PAGE)
    );
    let res = app
        .post("/api/v1/signatures")
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let res = app
        .get(&format!("/api/v1/signatures/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.contains(r#""metadata":{"z":1,"a":2.50,"nested":{"k":[true,null]}}"#),
        "metadata verbatim: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    for field in [
        "id",
        "status",
        "title",
        "created_at",
        "sent_at",
        "signed_at",
        "cancelled_at",
        "expires_at",
        "is_expired",
        "signers",
        "document_hash",
        "audit_trail",
        "metadata",
    ] {
        assert!(v.get(field).is_some(), "field {field} missing");
    }
    assert_eq!(v["status"], "sent");
    assert_eq!(v["is_expired"], false);
    assert_eq!(v["signed_at"], Value::Null);
    assert_eq!(v["cancelled_at"], Value::Null);
    assert_eq!(
        v["document_hash"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(ONE_PAGE))
    );
    let s = &v["signers"][0];
    for field in [
        "id",
        "email",
        "name",
        "access_token",
        "sign_url",
        "status",
        "sent_at",
        "opened_at",
        "signed_at",
        "declined_at",
        "decline_reason",
        "locale",
    ] {
        assert!(s.get(field).is_some(), "signer field {field} missing");
    }
    assert_eq!(s["status"], "sent");
    assert!(is_wire_time(&s["sent_at"]));
    let events = v["audit_trail"]["events"].as_array().unwrap();
    let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["signature_request.created", "signature_request.sent"]
    );
    assert_eq!(events[0]["data"]["signature_request_id"], id.as_str());
    assert_eq!(events[0]["data"]["title"], "T");
    assert_eq!(events[0]["prev_hash"], Value::Null);
    assert_eq!(events[1]["prev_hash"], events[0]["hash"]);
}

#[tokio::test]
async fn list_signers_has_every_seed_field() {
    let app = TestApp::start().await;
    let id = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v: Value = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let fields = [
        "id",
        "email",
        "name",
        "name_as_invited",
        "name_as_signed",
        "access_token",
        "sign_url",
        "status",
        "position",
        "sent_at",
        "opened_at",
        "signed_at",
        "declined_at",
        "decline_reason",
        "invalidated_at",
        "ip_address",
        "user_agent",
        "locale",
        "representing_as_invited",
        "representing_as_signed",
        "representing_role",
        "representing_entity_id",
        "audit_trail",
    ];
    for (i, s) in data.iter().enumerate() {
        for f in fields {
            assert!(s.get(f).is_some(), "signer field {f} missing");
        }
        assert_eq!(s["position"], i);
        assert_eq!(s["name_as_signed"], Value::Null);
        assert_eq!(s["ip_address"], Value::Null);
        assert!(s["audit_trail"]["events"].is_array());
    }
    assert_eq!(data[0]["name_as_invited"], "Anna Buyer");
    assert_eq!(data[1]["locale"], "fi");
}

#[tokio::test]
async fn email_delivery_invites_at_create() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body.as_object_mut().unwrap().remove("delivery");
    let v = app.create(&body).await;
    assert_eq!(
        v["status"], "sent",
        "the batch was attempted before the response"
    );
    for s in v["signers"].as_array().unwrap() {
        assert_eq!(
            (s["status"].as_str(), s["email_sent"].as_bool()),
            (Some("sent"), Some(true))
        );
        assert_eq!(s["email_error"], Value::Null);
    }
    assert_eq!(app.service.mail.mailer.sent().len(), 2);
    assert!(
        app.db
            .pending_jobs(signeur_core::JobKind::SendInvitation)
            .await
            .unwrap()
            .is_empty(),
        "done, not re-sent by the worker"
    );

    // Sequential: only the first signer is invited now.
    body["signing_order"] = json!("sequential");
    let v = app.create(&body).await;
    assert_eq!(v["signers"][0]["status"], "sent");
    assert_eq!(v["signers"][1]["status"], "pending");
    assert_eq!(v["signers"][1]["email_sent"], false);
    assert_eq!(app.service.mail.mailer.sent().len(), 3);
}

#[tokio::test]
async fn sequential_api_delivery_hands_out_only_the_first_turn() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["signing_order"] = json!("sequential");
    let v = app.create(&body).await;
    assert_eq!(v["signers"][0]["status"], "sent");
    assert_eq!(v["signers"][1]["status"], "pending");
    let got: Value = app
        .get_json(&format!("/api/v1/signatures/{}", v["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["signers"][1]["sent_at"], Value::Null);
}

#[tokio::test]
async fn legacy_single_signer_body_is_accepted() {
    let app = TestApp::start().await;
    let v = app
        .create(&json!({
            "title": "Legacy", "signer_email": "old@example.com", "signer_name": "Old Client",
            "document": { "filename": "c.pdf", "content_base64": b64(ONE_PAGE) }
        }))
        .await;
    let s = v["signers"].as_array().unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["email"], "old@example.com");
    assert_eq!(s[0]["name"], "Old Client");
    let res = app
        .post("/api/v1/signatures")
        .json(&json!({"title": "x", "signer_email": "nope", "document": {"filename": "c.pdf", "content_base64": b64(ONE_PAGE)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(res).await,
        (
            StatusCode::BAD_REQUEST,
            "invalid_signer_email".into(),
            "Field 'signer_email' is missing or not a valid email.".into()
        )
    );
}

#[tokio::test]
async fn bad_input_is_a_precise_400_and_writes_nothing() {
    let app = TestApp::start().await;
    let doc = |bytes: &[u8]| json!({"filename": "c.pdf", "content_base64": b64(bytes)});
    let with = |patch: Value| {
        let mut b = seed_body();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (with(json!({"signers": []})), "no_signers", "signers"),
        (
            with(
                json!({"signers": (0..21).map(|i| json!({"email": format!("s{i}@example.com")})).collect::<Vec<_>>()}),
            ),
            "too_many_signers",
            "signers",
        ),
        (
            with(json!({"signers": [{"email": "x"}]})),
            "invalid_signer_email",
            "signers[0].email",
        ),
        (with(json!({"locale": "sv"})), "invalid_locale", "locale"),
        (
            with(json!({"signers": [{"email": "a@example.com", "locale": "xx"}]})),
            "invalid_locale",
            "signers[0].locale",
        ),
        (with(json!({"title": 42})), "invalid_field", "title"),
        (
            with(json!({"title": "t".repeat(201)})),
            "invalid_field",
            "title",
        ),
        (
            with(json!({"message": "m".repeat(2001)})),
            "invalid_field",
            "message",
        ),
        (
            with(json!({"metadata": "nope"})),
            "invalid_field",
            "metadata",
        ),
        (
            with(json!({"delivery": "pigeon"})),
            "invalid_field",
            "delivery",
        ),
        (
            with(json!({"expires_at": "2000-01-01T00:00:00Z"})),
            "invalid_field",
            "expires_at",
        ),
        (
            with(json!({"document": {"filename": "c.pdf", "content_base64": "***"}})),
            "invalid_base64",
            "document.content_base64",
        ),
        (
            with(json!({"document": doc(b"hello, not a pdf")})),
            "not_a_pdf",
            "document.content_base64",
        ),
        (
            with(json!({"document": doc(&fixture("truncated.pdf"))})),
            "pdf_unreadable",
            "document.content_base64",
        ),
        (
            with(json!({"document": doc(&fixture("broken-xref.pdf"))})),
            "pdf_unreadable",
            "document.content_base64",
        ),
        (
            with(json!({"document": doc(&fixture("encrypted-user-password.pdf"))})),
            "pdf_encrypted",
            "document.content_base64",
        ),
        (
            with(json!({"document": doc(&fixture("encrypted-owner-only.pdf"))})),
            "pdf_encrypted",
            "document.content_base64",
        ),
        (
            with(json!({"document": doc(&fixture("certified-no-changes.pdf"))})),
            "pdf_certified_locked",
            "document.content_base64",
        ),
        (
            with(json!({"document": {"filename": "c.pdf"}})),
            "missing_field",
            "document.content_base64",
        ),
    ];
    for (body, code, field) in cases {
        let res = app
            .post("/api/v1/signatures")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, error, message) = error_of(res).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{message}"
        );
        assert!(
            message.contains(&format!("'{field}'")),
            "message names {field}: {message}"
        );
    }
    for raw in ["{", "[]", "null", "\"x\"", ""] {
        let res = app
            .post("/api/v1/signatures")
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let (status, error, _) = error_of(res).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_json"),
            "{raw}"
        );
    }
    // Nothing was written by any of them.
    let list: Value = app.get_json("/api/v1/signatures").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn accepted_pdf_shapes() {
    let app = TestApp::start().await;
    for (name, pages) in [
        ("objstm.pdf", 3),
        ("hybrid-xref.pdf", 2),
        ("incremental.pdf", 2),
        ("certified-form-filling.pdf", 1),
        ("approval-signed.pdf", 1),
    ] {
        let mut b = seed_body();
        b["document"]["content_base64"] = json!(b64(&fixture(name)));
        let id = app.create(&b).await["id"].as_str().unwrap().to_string();
        let v: Value = app.get_json(&format!("/api/v1/signatures/{id}")).await;
        assert_eq!(v["document"]["page_count"], pages, "{name}");
    }
}

#[tokio::test]
async fn document_size_limits() {
    let app = TestApp::start().await;
    // Just over 10 MB decoded: refused by size before the PDF is looked at.
    let mut big = ONE_PAGE.to_vec();
    big.resize(10 * 1024 * 1024 + 1, b' ');
    let mut b = seed_body();
    b["document"]["content_base64"] = json!(b64(&big));
    let (status, code, _) = error_of(
        app.post("/api/v1/signatures")
            .json(&b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "document_too_large")
    );

    // A body beyond what any valid create needs.
    let huge = vec![b'x'; 17 * 1024 * 1024];
    let res = app
        .post("/api/v1/signatures")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
}

#[tokio::test]
async fn a_ten_megabyte_pdf_is_accepted() {
    let app = TestApp::start().await;
    // A valid PDF padded to exactly 10 MB: comment lines, then the original startxref again.
    let text = String::from_utf8_lossy(ONE_PAGE);
    let startxref = text
        .rsplit("startxref")
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let tail = format!("startxref\n{startxref}\n%%EOF\n");
    let mut pdf = ONE_PAGE.to_vec();
    let target = 10 * 1024 * 1024 - tail.len();
    while pdf.len() < target {
        let line = (target - pdf.len()).min(100);
        pdf.push(b'%');
        pdf.extend(std::iter::repeat_n(b'x', line.saturating_sub(2)));
        if line >= 2 {
            pdf.push(b'\n');
        }
    }
    pdf.extend(tail.as_bytes());
    assert_eq!(pdf.len(), 10 * 1024 * 1024);
    let mut b = seed_body();
    b["document"]["content_base64"] = json!(b64(&pdf));
    let res = app
        .post("/api/v1/signatures")
        .json(&b)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
}

#[tokio::test]
async fn authentication() {
    let app = TestApp::start().await;
    let res = app
        .client
        .get(app.url("/api/v1/signatures"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(error_of(res).await.1, "unauthorized");
    for bad in ["sgn_live_nope", "Bearer", "", "sgn_test_abc"] {
        let res = app
            .client
            .get(app.url("/api/v1/signatures"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{bad}");
    }
    let res = app
        .client
        .get(app.url("/api/v1/signatures"))
        .header("authorization", format!("Basic {}", app.key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Unknown ids still need a key first (401 before 404).
    let res = app
        .client
        .get(app.url(&format!("/api/v1/signatures/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    assert_eq!(
        app.get("/api/v1/signatures").send().await.unwrap().status(),
        200
    );
    let keys = app.service.list_api_keys(app.org_id).await.unwrap();
    assert!(keys[0].last_used_at.is_some(), "last_used_at kept");
    assert!(app.key.starts_with("sgn_live_"));
    let stored = app.db.list_api_keys(app.org_id).await.unwrap();
    assert!(
        !stored[0].key_hash.contains(&app.key),
        "only the hash is stored"
    );

    app.service.revoke_api_key(keys[0].id).await.unwrap();
    assert_eq!(
        app.get("/api/v1/signatures").send().await.unwrap().status(),
        401,
        "revoked at once"
    );
}

#[tokio::test]
async fn another_organizations_request_is_a_404_everywhere() {
    let app = TestApp::start().await;
    let id = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, other_key) = app.other_org().await;
    let c = &app.client;
    let url = |p: &str| app.url(&format!("/api/v1/signatures/{id}{p}"));
    for res in [
        c.get(url("")).bearer_auth(&other_key).send().await.unwrap(),
        c.get(url("/signers"))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap(),
        c.get(url("/document"))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap(),
        c.get(url("/audit-trail.pdf"))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap(),
        c.post(url("/cancel"))
            .bearer_auth(&other_key)
            .json(&json!({"reason": 5}))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(error_of(res).await.1, "not_found");
    }
    let list: Value = c
        .get(app.url("/api/v1/signatures"))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]));
    // Still there, untouched, for its owner.
    let v: Value = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(v["status"], "sent");
    // Malformed ids name nothing.
    assert_eq!(
        error_of(
            app.get("/api/v1/signatures/not-a-uuid")
                .send()
                .await
                .unwrap()
        )
        .await
        .1,
        "not_found"
    );
    // The owner gets the audit-trail PDF of a request in any status.
    let res = app
        .get(&format!("/api/v1/signatures/{id}/audit-trail.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
}

#[tokio::test]
async fn cancel_invalidates_links_and_records_the_reason() {
    let app = TestApp::start().await;
    let id = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let long = json!({"reason": "r".repeat(501)});
    let (status, code, message) = error_of(
        app.post(&format!("/api/v1/signatures/{id}/cancel"))
            .json(&long)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    assert!(message.contains("'reason'"));

    app.advance(Duration::seconds(3));
    let res = app
        .post(&format!("/api/v1/signatures/{id}/cancel"))
        .json(&json!({"reason": "Sent to wrong recipient"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["status"], "cancelled");
    assert!(is_wire_time(&v["cancelled_at"]));

    let got: Value = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "cancelled");
    assert_eq!(got["cancelled_at"], v["cancelled_at"]);
    let signers: Value = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    for s in signers["data"].as_array().unwrap() {
        assert_eq!(s["status"], "invalidated");
        assert_eq!(s["invalidated_at"], v["cancelled_at"]);
    }
    let last = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "signature_request.cancelled");
    assert_eq!(last["data"]["reason"], "Sent to wrong recipient");
    assert_eq!(last["data"]["cancelled_at"], v["cancelled_at"]);

    // A second cancel is an illegal transition that names the status.
    let (status, code, message) = error_of(
        app.post(&format!("/api/v1/signatures/{id}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "invalid_state")
    );
    assert!(message.contains("cancelled"), "{message}");
    // Cancelled documents are no longer downloadable.
    let (status, code, _) = error_of(
        app.get(&format!("/api/v1/signatures/{id}/document"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "invalid_state")
    );
}

#[tokio::test]
async fn download_before_signing_is_document_not_signed() {
    let app = TestApp::start().await;
    let id = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, code, _) = error_of(
        app.get(&format!("/api/v1/signatures/{id}/document"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "document_not_signed")
    );
}

#[tokio::test]
async fn expiry_is_computed_on_read() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    let expires = app.clock.now() + Duration::hours(1);
    body["expires_at"] = json!(signeur_core::time::format(expires));
    let id = app.create(&body).await["id"].as_str().unwrap().to_string();
    let other = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    app.advance(Duration::hours(1));
    let v: Value = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(v["status"], "expired");
    assert_eq!(v["is_expired"], true);
    assert_eq!(v["expires_at"], signeur_core::time::format(expires));

    let list: Value = app.get_json("/api/v1/signatures?status=expired").await;
    let ids: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![id.clone()]);
    let list: Value = app.get_json("/api/v1/signatures?status=sent").await;
    let ids: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![other]);

    let (status, code, message) = error_of(
        app.post(&format!("/api/v1/signatures/{id}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "invalid_state")
    );
    assert!(message.contains("expired"));
    let (_, code, _) = error_of(
        app.get(&format!("/api/v1/signatures/{id}/document"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, "invalid_state");
}

#[tokio::test]
async fn expires_at_limits() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["expires_at"] = json!(signeur_core::time::format(
        app.clock.now() + Duration::days(366)
    ));
    let (status, code, _) = error_of(
        app.post("/api/v1/signatures")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    body["expires_at"] = json!(signeur_core::time::format(
        app.clock.now() + Duration::days(365)
    ));
    app.create(&body).await;
}

async fn list_all(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut url = format!("/api/v1/signatures?limit={limit}{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let v: Value = app.get_json(&url).await;
        let page = v["data"].as_array().unwrap();
        assert!(page.len() <= limit);
        ids.extend(page.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        if v["has_more"] == true {
            assert_eq!(page.len(), limit);
            cursor = Some(v["next_cursor"].as_str().unwrap().to_string());
        } else {
            assert_eq!(v["next_cursor"], Value::Null);
            return ids;
        }
    }
    panic!("pagination did not end");
}

#[tokio::test]
async fn pagination_is_newest_first_without_gaps_or_duplicates() {
    let app = TestApp::start().await;
    let mut created = Vec::new();
    for i in 0..23 {
        // Some requests share a millisecond: the id breaks the tie.
        if i % 3 == 0 {
            app.advance(Duration::milliseconds(1));
        }
        created.push(
            app.create(&seed_body()).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let all = list_all(&app, "", 5).await;
    assert_eq!(all.len(), 23);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 23);
    assert_eq!(
        all.iter().collect::<HashSet<_>>(),
        created.iter().collect::<HashSet<_>>()
    );
    let v: Value = app.get_json("/api/v1/signatures").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 23, "default limit 25");
    let times: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["created_at"].as_str().unwrap().to_string())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(v["data"][0]["signer_count"], 2);
}

#[tokio::test]
async fn pagination_under_concurrent_inserts() {
    let app = TestApp::start().await;
    let mut before = HashSet::new();
    for _ in 0..30 {
        app.advance(Duration::milliseconds(1));
        before.insert(
            app.create(&seed_body()).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let inserter = {
        let client = app.client.clone();
        let url = app.url("/api/v1/signatures");
        let key = app.key.clone();
        let clock = app.clock.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
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
    let seen = list_all(&app, "", 3).await;
    inserter.await.unwrap();
    assert_eq!(
        seen.len(),
        seen.iter().collect::<HashSet<_>>().len(),
        "no duplicates"
    );
    for id in &before {
        assert!(seen.contains(id), "no gaps: {id} missing");
    }
}

#[tokio::test]
async fn filters_and_their_errors() {
    let app = TestApp::start().await;
    let t0 = app.clock.now();
    let a = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.advance(Duration::seconds(10));
    let t1 = app.clock.now();
    let b = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(&format!("/api/v1/signatures/{b}/cancel"))
        .send()
        .await
        .unwrap();
    let fmt = signeur_core::time::format;

    assert_eq!(
        list_all(&app, &format!("&created_from={}", fmt(t1)), 10).await,
        vec![b.clone()]
    );
    assert_eq!(
        list_all(&app, &format!("&created_to={}", fmt(t1)), 10).await,
        vec![a.clone()]
    );
    assert_eq!(
        list_all(
            &app,
            &format!(
                "&created_from={}&created_to={}",
                fmt(t0),
                fmt(t1 + Duration::seconds(1))
            ),
            10
        )
        .await
        .len(),
        2
    );
    assert_eq!(
        list_all(&app, "&status=cancelled", 10).await,
        vec![b.clone()]
    );
    assert_eq!(list_all(&app, "&status=sent", 10).await, vec![a.clone()]);
    assert_eq!(
        list_all(&app, "&status=signed", 10).await,
        Vec::<String>::new()
    );

    for (q, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("status=done", "invalid_filter"),
        ("created_from=yesterday", "invalid_filter"),
        ("created_to=2026-13-01", "invalid_filter"),
        // Past year 9999 in UTC: refused rather than compared as text.
        ("created_to=9999-12-31T23:59:59-23:59", "invalid_filter"),
        ("cursor=garbage", "invalid_cursor"),
    ] {
        let (status, error, message) = error_of(
            app.get(&format!("/api/v1/signatures?{q}"))
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
        assert!(message.contains(&format!("'{field}'")), "{message}");
    }
    assert_eq!(
        app.get("/api/v1/signatures?limit=100")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn cursors_are_bound_to_their_filters_and_organization() {
    let app = TestApp::start().await;
    for _ in 0..3 {
        app.advance(Duration::milliseconds(1));
        app.create(&seed_body()).await;
    }
    let v: Value = app.get_json("/api/v1/signatures?limit=1&status=sent").await;
    let cursor = v["next_cursor"].as_str().unwrap().to_string();
    assert_eq!(
        app.get(&format!(
            "/api/v1/signatures?limit=1&status=sent&cursor={cursor}"
        ))
        .send()
        .await
        .unwrap()
        .status(),
        200
    );
    // Other filters, tampered bytes, another organization: all refused.
    let (_, code, _) = error_of(
        app.get(&format!("/api/v1/signatures?limit=1&cursor={cursor}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, "invalid_cursor");
    let mut tampered = cursor.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (_, code, _) = error_of(
        app.get(&format!("/api/v1/signatures?status=sent&cursor={tampered}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, "invalid_cursor");
    let (_, other_key) = app.other_org().await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/signatures?status=sent&cursor={cursor}")))
        .bearer_auth(other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "invalid_cursor");
}

#[tokio::test]
async fn idempotent_create_replays_and_detects_conflicts() {
    let app = TestApp::start().await;
    let body = seed_body();
    let first = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();

    // Quoted or not, the same key.
    let again = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "\"k-1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(
        again.headers().get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(
        again.text().await.unwrap(),
        first_body,
        "byte-identical replay"
    );

    let mut other = body.clone();
    other["title"] = json!("Another title");
    let (status, code, _) = error_of(
        app.post("/api/v1/signatures")
            .header("Idempotency-Key", "k-1")
            .json(&other)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "idempotency_key_conflict")
    );

    let id = serde_json::from_str::<Value>(&first_body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, code, _) = error_of(
        app.post(&format!("/api/v1/signatures/{id}/cancel"))
            .header("Idempotency-Key", "k-1")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "idempotency_key_conflict"),
        "different path"
    );

    // Scoped per organization: the same key elsewhere is a new request.
    let (_, other_key) = app.other_org().await;
    let res = app
        .client
        .post(app.url("/api/v1/signatures"))
        .bearer_auth(&other_key)
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());

    let list: Value = app.get_json("/api/v1/signatures").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "one request despite the replays"
    );

    // After 24 hours the key is forgotten.
    app.advance(Duration::hours(25));
    assert!(app.service.purge_idempotency_keys().await.unwrap() >= 1);
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn failed_requests_are_not_stored_for_replay() {
    let app = TestApp::start().await;
    let mut bad = seed_body();
    bad["locale"] = json!("xx");
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "retry-me")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // The key was released: a corrected body with the same key goes through.
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "retry-me")
        .json(&seed_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn idempotency_key_format() {
    let app = TestApp::start().await;
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "k".repeat(256))
        .json(&seed_body())
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_idempotency_key")
    );
    assert!(message.contains("Idempotency-Key"));
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "k".repeat(255))
        .json(&seed_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn idempotent_cancel_replays_instead_of_conflicting() {
    let app = TestApp::start().await;
    let id = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let send = || {
        app.post(&format!("/api/v1/signatures/{id}/cancel"))
            .header("Idempotency-Key", "cancel-1")
            .json(&json!({"reason": "x"}))
            .send()
    };
    let a = send().await.unwrap();
    assert_eq!(a.status(), 200);
    let a = a.text().await.unwrap();
    let b = send().await.unwrap();
    assert_eq!(b.status(), 200);
    assert_eq!(b.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(b.text().await.unwrap(), a);
}

#[tokio::test]
async fn parallel_duplicates_create_exactly_one_request() {
    let app = TestApp::start().await;
    let body = seed_body();
    let sends = (0..12).map(|_| {
        app.post("/api/v1/signatures")
            .header("Idempotency-Key", "parallel")
            .json(&body)
            .send()
    });
    let results = futures::future::join_all(sends).await;
    let mut created = 0;
    let mut replayed = 0;
    let mut in_use = 0;
    for r in results {
        let r = r.unwrap();
        match r.status().as_u16() {
            201 if r.headers().get("idempotent-replayed").is_some() => replayed += 1,
            201 => created += 1,
            409 => {
                assert_eq!(error_of(r).await.1, "idempotency_key_in_use");
                in_use += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1, "replayed {replayed}, in use {in_use}");
    let list: Value = app.get_json("/api/v1/signatures").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn health_and_openapi_need_no_key() {
    let app = TestApp::start().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let spec: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/v1/signatures"]["post"].is_object());
    let res = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(error_of(res).await.1, "not_found");
    let res = app
        .client
        .delete(app.url("/api/v1/signatures"))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

/// The get reads request, signers and events in one statement (JSON-aggregated per backend);
/// it must give exactly the rows the plain per-table reads give, NULLs and booleans included.
#[tokio::test]
async fn one_statement_read_matches_the_per_table_reads() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["delivery"] = json!("email");
    body["signers"] = json!([
        { "email": "äänekoski@example.com", "name": "Ääne \"Koski\" \\ ✓" },
        { "email": "lodz@example.com", "name": "Łódź", "locale": "de" },
        { "email": "aero@example.com", "name": "Ærø", "locale": "fr" }
    ]);
    let v = app.create(&body).await;
    let id = uuid::Uuid::parse_str(v["id"].as_str().unwrap()).unwrap();
    let res = app
        .post(&format!("/api/v1/signatures/{id}/cancel"))
        .json(&json!({ "reason": "Wrong\nparty" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let db = &app.db;
    let parts = db
        .get_request_with_parts(app.org_id, id)
        .await
        .unwrap()
        .expect("the request");
    let request = db.get_request(app.org_id, id).await.unwrap().unwrap();
    let signers = db.signers_of(id).await.unwrap();
    let events = db.events_of(id).await.unwrap();
    assert_eq!(signers.len(), 3);
    assert!(events.len() >= 2, "created and cancelled at least");
    assert!(signers.iter().any(|s| s.email_sent), "covers true booleans");
    assert!(
        events
            .iter()
            .any(|e| e.request_id.is_some() && e.signer_id.is_none()),
        "covers non-null and null ids"
    );
    assert_eq!(format!("{:?}", parts.request), format!("{request:?}"));
    assert_eq!(format!("{:?}", parts.signers), format!("{signers:?}"));
    assert_eq!(format!("{:?}", parts.events), format!("{events:?}"));

    let (other_org, _) = app.other_org().await;
    assert!(
        db.get_request_with_parts(other_org, id)
            .await
            .unwrap()
            .is_none(),
        "scoped by organization"
    );
}
