//! What users see, pinned: every `/api/v1` answer (status, the headers that matter, the body
//! byte for byte) and the signer pages' HTML, on a frozen clock. A refactor of the store,
//! service or HTTP layers must leave these snapshots unchanged.
//!
//! Bodies are the raw response text with run-to-run values replaced by numbered placeholders
//! of their kind (`[uuid-3]`, `[hex-2]`, `[access-token-1]`, …, numbered by first appearance
//! within a test, so "this id is that id" stays pinned). JSON bodies are then laid out one
//! value per line by [`layout`], which only adds whitespace between tokens and refuses a
//! body that is not compact: the snapshot is the wire text, reformatted reversibly.
//! Timestamps are not redacted: the clock is frozen at [`FROZEN`] (and moved explicitly).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use mail_parser::{MessageParser, PartType};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::*;

/// The instant every snapshot test starts at.
const FROZEN: &str = "2026-03-02T09:30:00Z";

/// The headers a snapshot shows when present, in this order (others — date, content-length,
/// x-request-id — vary or are transport details).
const HEADERS: &[&str] = &[
    "content-type",
    "content-disposition",
    "location",
    "www-authenticate",
    "idempotent-replayed",
    "retry-after",
    "cache-control",
    "content-security-policy",
    "x-frame-options",
    "referrer-policy",
    "x-content-type-options",
    "set-cookie",
];

/// Stops the test app's manual clock at [`FROZEN`].
fn freeze(app: &TestApp) {
    let at: DateTime<Utc> = FROZEN.parse().unwrap();
    match &app.clock {
        signeur_service::Clock::Manual(t) => *t.lock().unwrap() = at,
        signeur_service::Clock::System => panic!("the test app has a manual clock"),
    }
}

/// Replaces run-to-run values with numbered placeholders, consistently across one test.
struct Redact {
    base: String,
    /// Values known to vary (tokens, cursors, secrets…), with their kind.
    secrets: Vec<(String, &'static str)>,
    /// Hex strings that are constant (hashes of the fixtures): kept as they are.
    keep: Vec<String>,
    seen: HashMap<String, String>,
    counters: HashMap<&'static str, usize>,
}

impl Redact {
    fn new(app: &TestApp) -> Redact {
        Redact {
            base: app.base.clone(),
            secrets: Vec::new(),
            keep: [ONE_PAGE, THREE_PAGES]
                .iter()
                .map(|b| hex::encode(sha2::Sha256::digest(b)))
                .collect(),
            seen: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// `value` is replaced by `[kind-N]` wherever it appears.
    fn secret(&mut self, kind: &'static str, value: &str) {
        if !value.is_empty() && !self.secrets.iter().any(|(v, _)| v == value) {
            self.secrets.push((value.to_string(), kind));
            // Longest first, so that no secret is replaced by a prefix of it.
            self.secrets
                .sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        }
    }

    /// Registers the varying values of a JSON answer by the name of their field.
    fn learn(&mut self, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if let Some(s) = x.as_str() {
                        match k.as_str() {
                            "access_token" => self.secret("access-token", s),
                            "next_cursor" => self.secret("cursor", s),
                            "session_secret" => self.secret("session-secret", s),
                            "legacy_webhook_secret" => self.secret("webhook-secret", s),
                            "certificate_serial" => self.secret("serial", s),
                            "redirect_url" => {
                                if let Some((_, t)) = s.rsplit_once("/embed/") {
                                    self.secret("embed-token", t);
                                }
                            }
                            _ => {}
                        }
                    }
                    self.learn(x);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| self.learn(x)),
            _ => {}
        }
    }

    fn placeholder(&mut self, kind: &'static str, value: &str) -> String {
        if let Some(p) = self.seen.get(value) {
            return p.clone();
        }
        let n = self.counters.entry(kind).or_insert(0);
        *n += 1;
        let p = format!("[{kind}-{n}]");
        self.seen.insert(value.to_string(), p.clone());
        p
    }

    fn text(&mut self, s: &str) -> String {
        let b = s.as_bytes();
        let alnum = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_alphanumeric());
        let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        'scan: while i < b.len() {
            if s[i..].starts_with(&self.base) {
                out.push_str("http://[host]");
                i += self.base.len();
                continue;
            }
            let boundary = i == 0 || !alnum(i - 1);
            if boundary {
                for k in 0..self.secrets.len() {
                    let (value, kind) = &self.secrets[k];
                    if s[i..].starts_with(value.as_str()) && !alnum(i + value.len()) {
                        let (value, kind) = (value.clone(), *kind);
                        out.push_str(&self.placeholder(kind, &value));
                        i += value.len();
                        continue 'scan;
                    }
                }
                if is_uuid(&b[i..]) && !alnum(i + 36) {
                    let u = &s[i..i + 36];
                    out.push_str(&self.placeholder("uuid", u));
                    i += 36;
                    continue;
                }
                let run = b[i..].iter().take_while(|c| hex(**c)).count();
                if run >= 32 && !alnum(i + run) && !b[i..i + run].iter().all(u8::is_ascii_digit) {
                    let h = &s[i..i + run];
                    if self.keep.iter().any(|k| k == h) {
                        out.push_str(h);
                    } else {
                        out.push_str(&self.placeholder("hex", h));
                    }
                    i += run;
                    continue;
                }
            }
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

/// Compact JSON laid out one value per line. Only whitespace between tokens is added, and a
/// body with whitespace between tokens is refused: removing the layout gives the wire text.
fn layout(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let (mut in_str, mut esc) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                if chars.get(i) == Some(&close) {
                    out.push(close);
                    i += 1;
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth -= 1;
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => panic!("not compact JSON (whitespace at {i}): {raw}"),
            c => out.push(c),
        }
    }
    assert!(!in_str && depth == 0, "truncated JSON: {raw}");
    out
}

/// Status line and the headers of [`HEADERS`] that are present.
fn head(r: &mut Redact, request: &str, res: &Response) -> String {
    let mut s = format!("{}\n{}\n", r.text(request), res.status());
    for name in HEADERS {
        for v in res.headers().get_all(*name) {
            let v = v.to_str().unwrap();
            s.push_str(&format!("{name}: {}\n", r.text(v)));
        }
    }
    s
}

/// Snapshots a JSON answer; returns its body (unredacted) for the test to go on with.
async fn snap_json(r: &mut Redact, name: &str, request: &str, res: Response) -> Value {
    let head = head(r, request, &res);
    let raw = res.text().await.unwrap();
    let v: Value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{name}: {e}: {raw}"));
    r.learn(&v);
    let body = layout(&r.text(&raw));
    insta::assert_snapshot!(name, format!("{head}\n{body}\n"));
    v
}

/// Snapshots an HTML page (or any text answer); returns its body (unredacted).
async fn snap_page(r: &mut Redact, name: &str, request: &str, res: Response) -> String {
    let head = head(r, request, &res);
    let raw = res.text().await.unwrap();
    insta::assert_snapshot!(name, format!("{head}\n{}", r.text(&raw)));
    raw
}

/// Snapshots the status and headers of a binary answer, and how its body starts.
async fn snap_head(r: &mut Redact, name: &str, request: &str, res: Response) -> Vec<u8> {
    let head = head(r, request, &res);
    let bytes = res.bytes().await.unwrap().to_vec();
    let start = String::from_utf8_lossy(&bytes[..bytes.len().min(5)]).into_owned();
    insta::assert_snapshot!(name, format!("{head}\nbody starts with: {start:?}\n"));
    bytes
}

/// A browser without JavaScript that keeps cookies and shows each redirect.
fn browser() -> reqwest::Client {
    http_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (signeur-test)")
        .build()
        .unwrap()
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn path_of(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.base).unwrap().to_string()
}

/// The api-delivery body of the seed, signed in order, the second signer's block placed.
fn sequential_body() -> Value {
    let mut body = seed_body();
    body["signing_order"] = json!("sequential");
    body["signers"][1]["signature_position"] = json!({"page": 1, "x": 300, "y": 80});
    body["metadata"] = json!({"deal_id": "D-42", "amount": 1200.5, "tags": ["a", "b"], "nested": {"z": 1, "a": null}});
    body
}

/// [`sequential_body`] as raw text, its metadata in an order and spelling of the client's
/// own (the API keeps metadata as it was sent).
fn sequential_body_raw() -> String {
    let mut body = sequential_body();
    body.as_object_mut().unwrap().remove("metadata");
    let text = serde_json::to_string(&body).unwrap();
    let metadata =
        r#"{"deal_id":"D-42","nested":{"z":1,"a":null},"amount":1200.50,"tags":["b","a"]}"#;
    format!("{},\"metadata\":{metadata}}}", &text[..text.len() - 1])
}

#[tokio::test]
async fn snapshots_api_request_lifecycle() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);

    let body = sequential_body_raw();
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "snap-1")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let created = snap_json(
        &mut r,
        "create_api_sequential",
        "POST /api/v1/signatures",
        res,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let signer0 = created["signers"][0]["id"].as_str().unwrap().to_string();

    // The same key and body: the first answer, replayed.
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "snap-1")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "create_idempotent_replay",
        "POST /api/v1/signatures (same Idempotency-Key, same body)",
        res,
    )
    .await;
    let other = body.replace("Order Agreement #1234", "Another title");
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "snap-1")
        .header("content-type", "application/json")
        .body(other)
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "error_409_idempotency_key_conflict",
        "POST /api/v1/signatures (same Idempotency-Key, other body)",
        res,
    )
    .await;

    app.advance(Duration::minutes(5));
    let get = format!("/api/v1/signatures/{id}");
    let res = app.get(&get).send().await.unwrap();
    snap_json(&mut r, "get_sent", &format!("GET {get}"), res).await;
    let signers = format!("/api/v1/signatures/{id}/signers");
    let res = app.get(&signers).send().await.unwrap();
    snap_json(&mut r, "signers_sent", &format!("GET {signers}"), res).await;
    let audit = format!("/api/v1/signatures/{id}/audit-trail.json");
    let res = app.get(&audit).send().await.unwrap();
    snap_json(
        &mut r,
        "audit_trail_json_sent",
        &format!("GET {audit}"),
        res,
    )
    .await;
    let pdf = format!("/api/v1/signatures/{id}/audit-trail.pdf");
    let res = app.get(&pdf).send().await.unwrap();
    snap_head(&mut r, "audit_trail_pdf_sent", &format!("GET {pdf}"), res).await;
    let doc = format!("/api/v1/signatures/{id}/document");
    let res = app.get(&doc).send().await.unwrap();
    snap_json(
        &mut r,
        "error_409_document_not_signed",
        &format!("GET {doc}"),
        res,
    )
    .await;
    let retry = format!("/api/v1/signatures/{id}/retry-seal");
    let res = app.post(&retry).send().await.unwrap();
    snap_json(
        &mut r,
        "error_409_retry_seal_invalid_state",
        &format!("POST {retry}"),
        res,
    )
    .await;

    let rotate = format!("/api/v1/signatures/{id}/signers/{signer0}/rotate-link");
    let res = app.post(&rotate).send().await.unwrap();
    snap_json(&mut r, "rotate_link", &format!("POST {rotate}"), res).await;

    app.advance(Duration::minutes(5));
    let cancel = format!("/api/v1/signatures/{id}/cancel");
    let res = app
        .post(&cancel)
        .json(&json!({"reason": "Superseded by #1235"}))
        .send()
        .await
        .unwrap();
    snap_json(&mut r, "cancel", &format!("POST {cancel}"), res).await;
    let res = app.post(&cancel).send().await.unwrap();
    snap_json(
        &mut r,
        "error_409_cancel_invalid_state",
        &format!("POST {cancel} (again)"),
        res,
    )
    .await;
    let resend = format!("/api/v1/signatures/{id}/signers/{signer0}/resend");
    let res = app.post(&resend).send().await.unwrap();
    snap_json(
        &mut r,
        "error_409_resend_cancelled",
        &format!("POST {resend}"),
        res,
    )
    .await;
    let res = app.get(&get).send().await.unwrap();
    snap_json(&mut r, "get_cancelled", &format!("GET {get}"), res).await;
    let res = app.get(&audit).send().await.unwrap();
    snap_json(
        &mut r,
        "audit_trail_json_cancelled",
        &format!("GET {audit}"),
        res,
    )
    .await;
}

#[tokio::test]
async fn snapshots_list_pages_and_list_errors() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    for n in 1..=3 {
        let mut body = seed_body();
        body["title"] = json!(format!("Order Agreement #{n}"));
        app.create(&body).await;
        app.advance(Duration::minutes(1));
    }
    let res = app.get("/api/v1/signatures?limit=2").send().await.unwrap();
    let page1 = snap_json(&mut r, "list_page_1", "GET /api/v1/signatures?limit=2", res).await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let path = format!("/api/v1/signatures?limit=2&cursor={cursor}");
    let res = app.get(&path).send().await.unwrap();
    snap_json(&mut r, "list_page_2", &format!("GET {path}"), res).await;
    let res = app
        .get("/api/v1/signatures?status=sent&created_from=2026-03-02T09:31:00Z")
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "list_filtered",
        "GET /api/v1/signatures?status=sent&created_from=2026-03-02T09:31:00Z",
        res,
    )
    .await;
    for (name, query) in [
        ("error_400_invalid_cursor", "cursor=garbage"),
        ("error_400_invalid_limit", "limit=0"),
        ("error_400_invalid_limit_not_a_number", "limit=ten"),
        ("error_400_invalid_filter_status", "status=done"),
        ("error_400_invalid_filter_date", "created_from=yesterday"),
        ("error_400_invalid_filter_query_string", "limit=1&limit=2"),
    ] {
        let path = format!("/api/v1/signatures?{query}");
        let res = app.get(&path).send().await.unwrap();
        snap_json(&mut r, name, &format!("GET {path}"), res).await;
    }
}

#[tokio::test]
async fn snapshots_events_list() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let first = app.create(&seed_body()).await;
    app.advance(Duration::minutes(1));
    let id = first["id"].as_str().unwrap();
    app.post(&format!("/api/v1/signatures/{id}/cancel"))
        .json(&json!({"reason": "Superseded"}))
        .send()
        .await
        .unwrap();
    // The events of one millisecond are ordered by their random ids: the filter keeps one
    // per instant, so the pinned order is the same on every run.
    let filter = "type=signature_request.created,signature_request.cancelled";
    let path = format!("/api/v1/events?limit=1&{filter}");
    let res = app.get(&path).send().await.unwrap();
    let page1 = snap_json(&mut r, "events_page_1", &format!("GET {path}"), res).await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let path = format!("/api/v1/events?limit=1&{filter}&cursor={cursor}");
    let res = app.get(&path).send().await.unwrap();
    snap_json(&mut r, "events_page_2", &format!("GET {path}"), res).await;
    for (name, query) in [
        ("error_400_events_invalid_filter_type", "type=signer.nope"),
        ("error_400_events_invalid_cursor", "cursor=garbage"),
    ] {
        let path = format!("/api/v1/events?{query}");
        let res = app.get(&path).send().await.unwrap();
        snap_json(&mut r, name, &format!("GET {path}"), res).await;
    }
}

#[tokio::test]
async fn snapshots_api_errors() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let created = app.create(&seed_body()).await;
    r.learn(&created);
    let id = created["id"].as_str().unwrap().to_string();

    let res = app
        .client
        .get(app.url("/api/v1/signatures"))
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "error_401_missing",
        "GET /api/v1/signatures (no Authorization)",
        res,
    )
    .await;
    let res = app
        .client
        .get(app.url("/api/v1/signatures"))
        .bearer_auth("sgn_live_not_a_key")
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "error_401_invalid_key",
        "GET /api/v1/signatures (unknown key)",
        res,
    )
    .await;

    let unknown = "/api/v1/signatures/00000000-0000-4000-8000-000000000000";
    let res = app.get(unknown).send().await.unwrap();
    snap_json(
        &mut r,
        "error_404_unknown_id",
        &format!("GET {unknown}"),
        res,
    )
    .await;
    let res = app.get("/api/v1/signatures/nope").send().await.unwrap();
    snap_json(
        &mut r,
        "error_404_not_a_uuid",
        "GET /api/v1/signatures/nope",
        res,
    )
    .await;
    let (_, other_key) = app.other_org().await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/signatures/{id}")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "error_404_other_org",
        &format!("GET /api/v1/signatures/{id} (another organization's key)"),
        res,
    )
    .await;
    let signer = "/signers/00000000-0000-4000-8000-000000000001/resend";
    let path = format!("/api/v1/signatures/{id}{signer}");
    let res = app.post(&path).send().await.unwrap();
    snap_json(
        &mut r,
        "error_404_unknown_signer",
        &format!("POST {path}"),
        res,
    )
    .await;

    let with = |patch: Value| {
        let mut b = seed_body();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "error_400_missing_field",
            with(json!({"document": {"filename": "c.pdf"}})),
        ),
        ("error_400_invalid_field", with(json!({"title": 42}))),
        (
            "error_400_invalid_signer_email",
            with(json!({"signers": [{"email": "x"}]})),
        ),
        (
            "error_400_too_many_signers",
            with(
                json!({"signers": (0..21).map(|i| json!({"email": format!("s{i}@example.com")})).collect::<Vec<_>>()}),
            ),
        ),
        (
            "error_400_not_a_pdf",
            with(
                json!({"document": {"filename": "c.pdf", "content_base64": b64(b"hello, not a pdf")}}),
            ),
        ),
        ("error_400_no_signers", with(json!({"signers": []}))),
        ("error_400_invalid_locale", with(json!({"locale": "sv"}))),
    ];
    for (name, body) in cases {
        let res = app
            .post("/api/v1/signatures")
            .json(&body)
            .send()
            .await
            .unwrap();
        snap_json(&mut r, name, "POST /api/v1/signatures", res).await;
    }
    for (name, raw) in [
        ("error_400_invalid_json", "{"),
        ("error_400_invalid_json_not_an_object", "[]"),
    ] {
        let res = app
            .post("/api/v1/signatures")
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        snap_json(
            &mut r,
            name,
            &format!("POST /api/v1/signatures body {raw}"),
            res,
        )
        .await;
    }
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "")
        .json(&seed_body())
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "error_400_invalid_idempotency_key",
        "POST /api/v1/signatures (empty Idempotency-Key)",
        res,
    )
    .await;

    let res = app
        .post("/api/v1/signatures")
        .header("content-type", "application/json")
        .body(vec![b' '; signeur_http::MAX_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "error_413_payload_too_large",
        "POST /api/v1/signatures (1 byte over the create's limit)",
        res,
    )
    .await;

    let res = app
        .client
        .delete(app.url("/api/v1/signatures"))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    snap_json(&mut r, "error_405", "DELETE /api/v1/signatures", res).await;
    let res = app.get("/api/v1/nope").send().await.unwrap();
    snap_json(&mut r, "error_404_unknown_route", "GET /api/v1/nope", res).await;
}

#[tokio::test]
async fn snapshots_email_delivery_resend_and_gate() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let mut body = seed_body();
    body["delivery"] = json!("email");
    let res = app
        .post("/api/v1/signatures")
        .json(&body)
        .send()
        .await
        .unwrap();
    let created = snap_json(&mut r, "create_email", "POST /api/v1/signatures", res).await;
    let id = created["id"].as_str().unwrap().to_string();
    let signer0 = created["signers"][0]["id"].as_str().unwrap().to_string();
    let url0 = created["signers"][0]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();
    let url1 = created["signers"][1]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();

    // The `nth` message to `to`: its decoded subject, sender and recipient, and its
    // text/plain part.
    let message_to = |to: &str, nth: usize| {
        let sent = app.service.mail.mailer.sent();
        let m = sent
            .iter()
            .filter(|m| m.envelope().to().iter().any(|a| a.to_string() == to))
            .nth(nth)
            .unwrap_or_else(|| panic!("message {nth} to {to}"));
        let raw = m.formatted();
        let parsed = MessageParser::default().parse(&raw).unwrap();
        let header = |name: &str| m.headers().get_raw(name).unwrap_or_default().to_string();
        let head = format!(
            "Subject: {}\nFrom: {}\nTo: {}\n",
            parsed.subject().unwrap_or_default(),
            header("From"),
            header("To"),
        );
        let text = parsed
            .text_bodies()
            .find_map(|p| match &p.body {
                PartType::Text(t) => Some(t.to_string()),
                _ => None,
            })
            .unwrap();
        (head, text.replace("\r\n", "\n"))
    };
    let text_to = |to: &str, nth: usize| message_to(to, nth).1;
    let code_in = |text: &str| {
        text.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .expect("a 6-digit code")
            .to_string()
    };
    let (head, text) = message_to("buyer@example.com", 0);
    r.secret("access-code", &code_in(&text));
    insta::assert_snapshot!(
        "invitation_email_text_en",
        format!("{head}\n{}", r.text(&text))
    );

    app.advance(Duration::minutes(10));
    let resend = format!("/api/v1/signatures/{id}/signers/{signer0}/resend");
    let res = app.post(&resend).send().await.unwrap();
    snap_json(&mut r, "resend", &format!("POST {resend}"), res).await;
    let code = code_in(&text_to("buyer@example.com", 1));
    r.secret("access-code", &code);

    // The gate, in the signer's English and in Finnish.
    let b0 = browser();
    let res = b0.get(&url0).send().await.unwrap();
    let html = snap_page(
        &mut r,
        "page_gate_en",
        &format!("GET {}", path_of(&app, &url0)),
        res,
    )
    .await;
    let csrf = csrf_of(&html);
    let b1 = browser();
    let res = b1.get(&url1).send().await.unwrap();
    snap_page(
        &mut r,
        "page_gate_fi",
        &format!("GET {}", path_of(&app, &url1)),
        res,
    )
    .await;

    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    r.secret("wrong-code", &wrong);
    let res = b0
        .post(format!("{url0}/verify"))
        .form(&[("csrf", csrf.as_str()), ("code", wrong.as_str())])
        .send()
        .await
        .unwrap();
    snap_page(
        &mut r,
        "page_gate_wrong_code_en",
        &format!("POST {}/verify (wrong code)", path_of(&app, &url0)),
        res,
    )
    .await;
    let res = b0
        .post(format!("{url0}/verify"))
        .form(&[("csrf", "nope"), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    snap_page(
        &mut r,
        "page_csrf_failed_en",
        &format!("POST {}/verify (bad CSRF token)", path_of(&app, &url0)),
        res,
    )
    .await;
    let res = b0
        .post(format!("{url0}/verify"))
        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    snap_page(
        &mut r,
        "verify_redirect",
        &format!("POST {}/verify (right code)", path_of(&app, &url0)),
        res,
    )
    .await;
    let res = b0.get(&url0).send().await.unwrap();
    snap_page(
        &mut r,
        "page_sign_email_en",
        &format!("GET {} (after the code)", path_of(&app, &url0)),
        res,
    )
    .await;
    let signers = format!("/api/v1/signatures/{id}/signers");
    let res = app.get(&signers).send().await.unwrap();
    snap_json(
        &mut r,
        "signers_email_opened",
        &format!("GET {signers}"),
        res,
    )
    .await;

    // Five wrong codes lock the second signer's link.
    let html1 = b1.get(&url1).send().await.unwrap().text().await.unwrap();
    let csrf1 = csrf_of(&html1);
    let code1 = code_in(&text_to("seller@example.com", 0));
    let wrong1 = format!("{:06}", (code1.parse::<u32>().unwrap() + 7) % 1_000_000);
    r.secret("wrong-code", &wrong1);
    for attempt in 1..=5 {
        let res = b1
            .post(format!("{url1}/verify"))
            .form(&[("csrf", csrf1.as_str()), ("code", wrong1.as_str())])
            .send()
            .await
            .unwrap();
        let request = format!(
            "POST {}/verify (wrong code {attempt})",
            path_of(&app, &url1)
        );
        match attempt {
            4 => {
                snap_page(&mut r, "page_gate_last_try_fi", &request, res).await;
            }
            5 => {
                snap_page(&mut r, "page_locked_fi", &request, res).await;
            }
            _ => assert_eq!(res.status(), StatusCode::BAD_REQUEST),
        }
    }
}

/// Settings with a default locale, branding and a legacy webhook URL (its secret shown by
/// the PATCH, never by the GET), and a signer page and email wearing the branding.
#[tokio::test]
async fn snapshots_branded_settings_page_and_email() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="#0a7f3c"/></svg>"##;
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&app.key)
        .json(&json!({
            "default_locale": "fi",
            "branding": {"name": "Acme Signing Desk", "color": "#0A7F3C", "logo_base64": b64(svg.as_bytes())},
            "legacy_webhook_url": "http://127.0.0.1:9/hook"
        }))
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "settings_patch_branding_legacy",
        "PATCH /api/v1/settings {default_locale, branding, legacy_webhook_url}",
        res,
    )
    .await;
    let res = app.get("/api/v1/settings").send().await.unwrap();
    snap_json(
        &mut r,
        "settings_get_branding_legacy",
        "GET /api/v1/settings",
        res,
    )
    .await;
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&app.key)
        .json(&json!({"legacy_webhook_url": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let mut body = seed_body();
    body.as_object_mut().unwrap().remove("locale");
    body["signers"] = json!([{ "email": "buyer@example.com", "name": "Anna Buyer" }]);
    let created = app.create(&body).await;
    r.learn(&created);
    let url = created["signers"][0]["sign_url"].as_str().unwrap();
    let res = browser().get(url).send().await.unwrap();
    let html = snap_page(
        &mut r,
        "page_sign_branded_fi",
        &format!("GET {}", path_of(&app, url)),
        res,
    )
    .await;
    assert!(
        html.contains("<img class=\"logo\" src=\"data:image&#x2f;svg+xml;base64,")
            || html.contains("<img class=\"logo\" src=\"data:image/svg+xml;base64,"),
        "{html}"
    );
    assert!(!html.contains("<svg"), "the SVG is never inlined");
    let res = app
        .client
        .get(app.url("/assets/brand/0a7f3c.css"))
        .send()
        .await
        .unwrap();
    snap_page(
        &mut r,
        "page_brand_css",
        "GET /assets/brand/0a7f3c.css",
        res,
    )
    .await;
    let res = app
        .client
        .get(app.url("/assets/brand/zz;x.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn snapshots_remind_and_the_reminder_email() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let mut body = seed_body();
    body["delivery"] = json!("email");
    let created = app.create(&body).await;
    let id = created["id"].as_str().unwrap().to_string();
    let signer0 = created["signers"][0]["id"].as_str().unwrap().to_string();
    for signer in created["signers"].as_array().unwrap() {
        r.secret("access-token", signer["access_token"].as_str().unwrap());
    }
    app.advance(Duration::days(1));
    let remind = format!("/api/v1/signatures/{id}/signers/{signer0}/remind");
    let res = app.post(&remind).send().await.unwrap();
    snap_json(&mut r, "remind", &format!("POST {remind}"), res).await;
    let sent = app.service.mail.mailer.sent();
    let m = sent
        .iter()
        .filter(|m| {
            m.envelope()
                .to()
                .iter()
                .any(|a| a.to_string() == "buyer@example.com")
        })
        .nth(1)
        .expect("the reminder after the invitation");
    let raw = m.formatted();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    let text = parsed
        .text_bodies()
        .find_map(|p| match &p.body {
            PartType::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .unwrap();
    insta::assert_snapshot!(
        "reminder_email_text_en",
        format!(
            "Subject: {}\n\n{}",
            parsed.subject().unwrap_or_default(),
            r.text(&text.replace("\r\n", "\n"))
        )
    );
    let res = app
        .post(&format!(
            "/api/v1/signatures/{id}/signers/{}/remind",
            created["signers"][1]["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cancel = format!("/api/v1/signatures/{id}/cancel");
    assert_eq!(app.post(&cancel).send().await.unwrap().status(), 200);
    let res = app.post(&remind).send().await.unwrap();
    snap_json(
        &mut r,
        "error_409_remind_cancelled",
        &format!("POST {remind}"),
        res,
    )
    .await;
}

#[tokio::test]
async fn snapshots_signer_pages_sign_and_decline() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let created = app.create(&seed_body()).await;
    r.learn(&created);
    let id = created["id"].as_str().unwrap().to_string();
    let url0 = created["signers"][0]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();
    let url1 = created["signers"][1]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();
    let (p0, p1) = (path_of(&app, &url0), path_of(&app, &url1));

    // First views: the link is its own credential (api delivery): cookies are set.
    let b0 = browser();
    let res = b0.get(&url0).send().await.unwrap();
    let html0 = snap_page(&mut r, "page_sign_en", &format!("GET {p0}"), res).await;
    let csrf0 = csrf_of(&html0);
    let res = b0.get(format!("{url0}/decline")).send().await.unwrap();
    snap_page(
        &mut r,
        "page_decline_form_en",
        &format!("GET {p0}/decline"),
        res,
    )
    .await;
    let b1 = browser();
    let res = b1.get(&url1).send().await.unwrap();
    let html1 = snap_page(&mut r, "page_sign_fi", &format!("GET {p1}"), res).await;
    let csrf1 = csrf_of(&html1);
    let res = b1.get(format!("{url1}/decline")).send().await.unwrap();
    snap_page(
        &mut r,
        "page_decline_form_fi",
        &format!("GET {p1}/decline"),
        res,
    )
    .await;

    // A form error keeps the input and names the field.
    let res = b0
        .post(format!("{url0}/sign"))
        .form(&[("csrf", csrf0.as_str()), ("full_name", "Anna H. Buyer")])
        .send()
        .await
        .unwrap();
    snap_page(
        &mut r,
        "page_sign_error_en",
        &format!("POST {p0}/sign (no consent)"),
        res,
    )
    .await;

    app.advance(Duration::minutes(3));
    let res = b0
        .post(format!("{url0}/sign"))
        .form(&[
            ("csrf", csrf0.as_str()),
            ("full_name", "Anna H. Buyer"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    snap_page(&mut r, "sign_redirect", &format!("POST {p0}/sign"), res).await;
    let res = b0.get(&url0).send().await.unwrap();
    snap_page(&mut r, "page_signed_en", &format!("GET {p0}"), res).await;
    let res = b0.get(format!("{url0}?lang=fi")).send().await.unwrap();
    snap_page(&mut r, "page_signed_fi", &format!("GET {p0}?lang=fi"), res).await;

    app.advance(Duration::minutes(3));
    let res = b1
        .post(format!("{url1}/decline"))
        .form(&[("csrf", csrf1.as_str()), ("reason", "Hinta on väärä")])
        .send()
        .await
        .unwrap();
    snap_page(
        &mut r,
        "decline_redirect",
        &format!("POST {p1}/decline"),
        res,
    )
    .await;
    let res = b1.get(&url1).send().await.unwrap();
    snap_page(&mut r, "page_declined_fi", &format!("GET {p1}"), res).await;
    let res = b1.get(format!("{url1}?lang=en")).send().await.unwrap();
    snap_page(
        &mut r,
        "page_declined_en",
        &format!("GET {p1}?lang=en"),
        res,
    )
    .await;

    let get = format!("/api/v1/signatures/{id}");
    let res = app.get(&get).send().await.unwrap();
    snap_json(&mut r, "get_declined", &format!("GET {get}"), res).await;
    let signers = format!("/api/v1/signatures/{id}/signers");
    let res = app.get(&signers).send().await.unwrap();
    snap_json(&mut r, "signers_declined", &format!("GET {signers}"), res).await;

    let res = http_client()
        .get(app.url("/sign/no-such-token"))
        .send()
        .await
        .unwrap();
    snap_page(&mut r, "page_not_found_en", "GET /sign/no-such-token", res).await;
}

#[tokio::test]
async fn snapshots_gone_pages() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let created = app.create(&seed_body()).await;
    r.learn(&created);
    let id = created["id"].as_str().unwrap().to_string();
    let signer0 = created["signers"][0]["id"].as_str().unwrap().to_string();
    let url0 = created["signers"][0]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();
    let url1 = created["signers"][1]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();

    let rotated = app
        .post(&format!(
            "/api/v1/signatures/{id}/signers/{signer0}/rotate-link"
        ))
        .send()
        .await
        .unwrap();
    r.learn(&rotated.json().await.unwrap());
    let res = browser().get(&url0).send().await.unwrap();
    snap_page(
        &mut r,
        "page_gone_rotated_en",
        &format!("GET {} (rotated)", path_of(&app, &url0)),
        res,
    )
    .await;

    // Another request, left to expire (a minute later: the list's order is by creation).
    app.advance(Duration::minutes(1));
    let expiring = app.create(&seed_body()).await;
    r.learn(&expiring);
    let url_e = expiring["signers"][1]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();

    app.post(&format!("/api/v1/signatures/{id}/cancel"))
        .send()
        .await
        .unwrap();
    let res = browser().get(&url1).send().await.unwrap();
    snap_page(
        &mut r,
        "page_gone_cancelled_fi",
        &format!("GET {} (cancelled)", path_of(&app, &url1)),
        res,
    )
    .await;
    let res = browser()
        .get(format!("{url1}?lang=en"))
        .send()
        .await
        .unwrap();
    snap_page(
        &mut r,
        "page_gone_cancelled_en",
        &format!("GET {}?lang=en (cancelled)", path_of(&app, &url1)),
        res,
    )
    .await;

    app.advance(Duration::days(31));
    let res = browser().get(&url_e).send().await.unwrap();
    snap_page(
        &mut r,
        "page_gone_expired_fi",
        &format!("GET {} (expired)", path_of(&app, &url_e)),
        res,
    )
    .await;
    let list = "/api/v1/signatures";
    let res = app.get(list).send().await.unwrap();
    snap_json(
        &mut r,
        "list_expired_and_cancelled",
        &format!("GET {list}"),
        res,
    )
    .await;
}

#[tokio::test]
async fn snapshots_signed_and_sealed() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let created = app.create(&sequential_body()).await;
    r.learn(&created);
    let id = created["id"].as_str().unwrap().to_string();
    let url1 = created["signers"][1]["sign_url"].as_str().unwrap();
    let res = browser().get(url1).send().await.unwrap();
    snap_page(
        &mut r,
        "page_not_your_turn_fi",
        &format!("GET {} (before the first signer)", path_of(&app, url1)),
        res,
    )
    .await;
    for (n, signer) in created["signers"].as_array().unwrap().iter().enumerate() {
        let url = signer["sign_url"].as_str().unwrap();
        let b = browser();
        let html = b.get(url).send().await.unwrap().text().await.unwrap();
        app.advance(Duration::minutes(2));
        let res = b
            .post(format!("{url}/sign"))
            .form(&[
                ("csrf", csrf_of(&html).as_str()),
                ("full_name", signer["name"].as_str().unwrap()),
                ("consent", "yes"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "signer {n}");
        if n == 1 {
            let get = format!("/api/v1/signatures/{id}");
            let res = app.get(&get).send().await.unwrap();
            snap_json(&mut r, "get_awaiting_stamp", &format!("GET {get}"), res).await;
            app.advance(Duration::minutes(1));
            app.service.run_due_jobs().await.unwrap();
            let res = b.get(url).send().await.unwrap();
            snap_page(
                &mut r,
                "page_signed_sealed_fi",
                &format!("GET {} (sealed)", path_of(&app, url)),
                res,
            )
            .await;
            let res = b.get(format!("{url}/signed.pdf")).send().await.unwrap();
            snap_head(
                &mut r,
                "page_signed_pdf",
                &format!("GET {}/signed.pdf", path_of(&app, url)),
                res,
            )
            .await;
        }
    }

    let get = format!("/api/v1/signatures/{id}");
    let res = app.get(&get).send().await.unwrap();
    snap_json(&mut r, "get_signed", &format!("GET {get}"), res).await;
    let signers = format!("/api/v1/signatures/{id}/signers");
    let res = app.get(&signers).send().await.unwrap();
    snap_json(&mut r, "signers_signed", &format!("GET {signers}"), res).await;
    let res = app.get("/api/v1/signatures").send().await.unwrap();
    snap_json(&mut r, "list_signed", "GET /api/v1/signatures", res).await;
    let doc = format!("/api/v1/signatures/{id}/document");
    let res = app.get(&doc).send().await.unwrap();
    snap_head(&mut r, "download_document", &format!("GET {doc}"), res).await;
    let pdf = format!("/api/v1/signatures/{id}/audit-trail.pdf");
    let res = app.get(&pdf).send().await.unwrap();
    snap_head(&mut r, "audit_trail_pdf_signed", &format!("GET {pdf}"), res).await;
    let audit = format!("/api/v1/signatures/{id}/audit-trail.json");
    let res = app.get(&audit).send().await.unwrap();
    snap_json(
        &mut r,
        "audit_trail_json_signed",
        &format!("GET {audit}"),
        res,
    )
    .await;
    let retry = format!("/api/v1/signatures/{id}/retry-seal");
    let res = app.post(&retry).send().await.unwrap();
    snap_json(
        &mut r,
        "error_409_retry_seal_signed",
        &format!("POST {retry}"),
        res,
    )
    .await;
    let cancel = format!("/api/v1/signatures/{id}/cancel");
    let res = app.post(&cancel).send().await.unwrap();
    snap_json(
        &mut r,
        "error_409_cancel_signed",
        &format!("POST {cancel}"),
        res,
    )
    .await;
}

#[tokio::test]
async fn snapshots_settings_sessions_and_health() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);

    for (name, path) in [("healthz", "/healthz"), ("readyz", "/readyz")] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        snap_json(&mut r, name, &format!("GET {path}"), res).await;
    }

    let res = app.get("/api/v1/settings").send().await.unwrap();
    snap_json(&mut r, "settings_get_initial", "GET /api/v1/settings", res).await;
    let patch = |body: Value| {
        app.client
            .patch(app.url("/api/v1/settings"))
            .bearer_auth(&app.key)
            .json(&body)
            .send()
    };
    let res = patch(json!({"allowed_return_urls": ["http://app.example.com/r"]}))
        .await
        .unwrap();
    snap_json(
        &mut r,
        "error_400_settings_invalid_url",
        "PATCH /api/v1/settings {\"allowed_return_urls\":[\"http://app.example.com/r\"]}",
        res,
    )
    .await;
    let res = patch(json!({"colour": "red"})).await.unwrap();
    snap_json(
        &mut r,
        "error_400_settings_invalid_field",
        "PATCH /api/v1/settings {\"colour\":\"red\"}",
        res,
    )
    .await;
    app.advance(Duration::minutes(1));
    let res = patch(json!({
        "allowed_return_urls": ["http://127.0.0.1:9/return", "https://app.example.com/return"],
        "allowed_frame_origins": ["https://app.example.com"]
    }))
    .await
    .unwrap();
    snap_json(&mut r, "settings_patch", "PATCH /api/v1/settings", res).await;
    app.advance(Duration::minutes(1));
    let res = app
        .post("/api/v1/settings/session-secret")
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "session_secret",
        "POST /api/v1/settings/session-secret",
        res,
    )
    .await;
    let res = app.get("/api/v1/settings").send().await.unwrap();
    snap_json(&mut r, "settings_get", "GET /api/v1/settings", res).await;

    let created = app.create(&seed_body()).await;
    r.learn(&created);
    let id = created["id"].as_str().unwrap().to_string();
    let signer0 = created["signers"][0]["id"].as_str().unwrap().to_string();
    let sessions = format!("/api/v1/signatures/{id}/signers/{signer0}/sessions");
    let res = app
        .post(&sessions)
        .json(&json!({"return_url": "https://evil.example.com/return"}))
        .send()
        .await
        .unwrap();
    snap_json(
        &mut r,
        "error_400_return_url_not_allowed",
        &format!("POST {sessions}"),
        res,
    )
    .await;
    let res = app
        .post(&sessions)
        .json(&json!({"return_url": "http://127.0.0.1:9/return", "state": "st-42"}))
        .send()
        .await
        .unwrap();
    let session = snap_json(&mut r, "session_create", &format!("POST {sessions}"), res).await;
    let sid = session["signing_session_id"].as_str().unwrap();
    let one = format!("{sessions}/{sid}");
    let res = app.get(&one).send().await.unwrap();
    snap_json(&mut r, "session_get_pending", &format!("GET {one}"), res).await;

    // The redirect URL opens the signing page in the session.
    let b = browser();
    let redirect = session["redirect_url"].as_str().unwrap();
    let res = b.get(redirect).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_string();
    snap_page(
        &mut r,
        "session_open_redirect",
        &format!("GET {}", path_of(&app, redirect)),
        res,
    )
    .await;
    let res = b.get(app.url(&to)).send().await.unwrap();
    let html = snap_page(
        &mut r,
        "page_sign_embedded_en",
        &format!("GET {to} (in the session)"),
        res,
    )
    .await;
    let res = app.get(&one).send().await.unwrap();
    snap_json(&mut r, "session_get_opened", &format!("GET {one}"), res).await;

    // The Cancel button: back to the integrator, the session completed as cancelled.
    let res = b
        .post(app.url(&format!("{to}/cancel")))
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    snap_page(
        &mut r,
        "session_cancel_redirect",
        &format!("POST {to}/cancel"),
        res,
    )
    .await;
    let res = app.get(&one).send().await.unwrap();
    snap_json(&mut r, "session_get_completed", &format!("GET {one}"), res).await;
    let missing = format!("{sessions}/00000000-0000-4000-8000-000000000002");
    let res = app.get(&missing).send().await.unwrap();
    snap_json(
        &mut r,
        "error_404_unknown_session",
        &format!("GET {missing}"),
        res,
    )
    .await;
}

#[tokio::test]
async fn snapshots_stamp_failed_retry_seal_and_metrics() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    r.secret("tempdir", &app.dir.path().display().to_string());
    let mut body = seed_body();
    body["signers"] = json!([{ "email": "buyer@example.com", "name": "Anna Buyer" }]);
    let created = app.create(&body).await;
    r.learn(&created);
    let id = created["id"].as_str().unwrap().to_string();
    let url = created["signers"][0]["sign_url"].as_str().unwrap();

    // The document the signer saw goes missing: every seal attempt fails.
    let key = app
        .db
        .get_request(app.org_id, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .document_blob;
    let original = app.blobs.get(&key).await.unwrap().unwrap();
    let b = browser();
    let html = b.get(url).send().await.unwrap().text().await.unwrap();
    let res = b
        .post(format!("{url}/sign"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.blobs.delete(&key).await.unwrap();
    for _ in 0..signeur_service::sealing::SEAL_ATTEMPTS {
        app.service.run_due_jobs().await.unwrap();
        app.advance(Duration::hours(2));
    }
    let get = format!("/api/v1/signatures/{id}");
    let res = app.get(&get).send().await.unwrap();
    snap_json(&mut r, "get_stamp_failed", &format!("GET {get}"), res).await;
    let doc = format!("/api/v1/signatures/{id}/document");
    let res = app.get(&doc).send().await.unwrap();
    snap_json(
        &mut r,
        "error_409_document_stamp_failed",
        &format!("GET {doc}"),
        res,
    )
    .await;

    // Prometheus families are hash maps: the line order varies, so the lines are sorted.
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    let head = head(&mut r, "GET /metrics", &res);
    let text = res.text().await.unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    insta::assert_snapshot!(
        "metrics_sorted_lines",
        format!("{head}\n{}\n", lines.join("\n"))
    );

    app.blobs.put(&key, &original).await.unwrap();
    let retry = format!("/api/v1/signatures/{id}/retry-seal");
    let res = app.post(&retry).send().await.unwrap();
    snap_json(&mut r, "retry_seal", &format!("POST {retry}"), res).await;
    app.service.run_due_jobs().await.unwrap();
    let audit = format!("/api/v1/signatures/{id}/audit-trail.json");
    let res = app.get(&audit).send().await.unwrap();
    snap_json(
        &mut r,
        "audit_trail_json_after_retry",
        &format!("GET {audit}"),
        res,
    )
    .await;
}

#[tokio::test]
async fn snapshots_signed_page_asks_for_the_code_after_the_session() {
    let app = TestApp::start().await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let mut body = seed_body();
    body["delivery"] = json!("email");
    body["signers"] = json!([{ "email": "buyer@example.com", "name": "Anna Buyer" }]);
    let created = app.create(&body).await;
    r.learn(&created);
    let url = created["signers"][0]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();
    let sent = app.service.mail.mailer.sent();
    let parsed = MessageParser::default()
        .parse(&sent[0].formatted())
        .unwrap()
        .text_bodies()
        .find_map(|p| match &p.body {
            PartType::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .unwrap();
    let code = parsed
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_string();
    r.secret("access-code", &code);
    let b = browser();
    let html = b.get(&url).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&html);
    b.post(format!("{url}/verify"))
        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    let html = b.get(&url).send().await.unwrap().text().await.unwrap();
    let res = b
        .post(format!("{url}/sign"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.service.run_due_jobs().await.unwrap();

    // The session has ended: the signed page asks for the code that opens the download.
    app.advance(Duration::hours(3));
    let res = b.get(&url).send().await.unwrap();
    snap_page(
        &mut r,
        "page_signed_code_en",
        &format!(
            "GET {} (signed, sealed, session ended)",
            path_of(&app, &url)
        ),
        res,
    )
    .await;
}

#[tokio::test]
async fn snapshots_rate_limited() {
    let app = TestApp::start_with_rate_limits(signeur_service::RateLimitSettings {
        api: signeur_service::ApiQuota::new(1, 1).unwrap(),
        pages_per_min: 1,
        redis: None,
    })
    .await;
    freeze(&app);
    let mut r = Redact::new(&app);
    let list = || app.get("/api/v1/signatures").send();
    assert_eq!(list().await.unwrap().status(), StatusCode::OK);
    snap_json(
        &mut r,
        "error_429_rate_limited",
        "GET /api/v1/signatures (the burst of 1 spent)",
        list().await.unwrap(),
    )
    .await;

    let page = || {
        app.client
            .get(app.url("/assets/signeur.css?lang=de"))
            .send()
    };
    assert_eq!(page().await.unwrap().status(), StatusCode::OK);
    snap_page(
        &mut r,
        "page_429_rate_limited_de",
        "GET /assets/signeur.css?lang=de (the minute's 1 spent)",
        page().await.unwrap(),
    )
    .await;
}
