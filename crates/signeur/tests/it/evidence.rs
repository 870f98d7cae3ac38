//! Evidence a person can read: the stamped and sealed document, the audit record as JSON and
//! as PDF, checked with outside tools (poppler's `pdftotext`, `qpdf`) when they are installed
//! (required with `SIGNEUR_REQUIRE_VALIDATORS=1`).

use std::process::Command;

use serde_json::{Value, json};

use crate::signing::{browser, csrf_of, page, post_form};
use crate::support::*;

/// A small drawn signature, as the signing page's canvas sends it.
fn drawn_signature() -> String {
    let (w, h) = (120u32, 40u32);
    let mut pixels = vec![0u8; (w * h * 4) as usize];
    for x in 5..115u32 {
        let y = (20.0 + 12.0 * ((x as f32) / 9.0).sin()) as u32;
        for dy in 0..3 {
            let i = (((y + dy) * w + x) * 4) as usize;
            pixels[i..i + 4].copy_from_slice(&[20, 40, 120, 255]);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
    }
    format!("data:image/png;base64,{}", b64(&out))
}

async fn sign(url: &str, name: &str, representing: Option<&str>, drawing: Option<&str>) {
    let b = browser();
    let (status, html) = page(&b, url).await;
    assert_eq!(status, 200, "{html}");
    let csrf = csrf_of(&html);
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("full_name", name),
        ("consent", "yes"),
    ];
    if let Some(r) = representing {
        form.push(("representing_entity", r));
    }
    if let Some(d) = drawing {
        form.push(("signature", d));
    }
    let (status, html) = post_form(&b, &format!("{url}/sign"), &form).await;
    assert_eq!(status, 200, "{html}");
    assert!(!html.contains("name=\"full_name\""), "signed: {html}");
}

fn required() -> bool {
    std::env::var_os("SIGNEUR_REQUIRE_VALIDATORS").is_some()
}

/// `tool args… file` on `bytes`; `None` when the tool is not installed (and not required).
fn run_tool(tool: &str, args: &[&str], bytes: &[u8], out_arg: bool) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.pdf");
    std::fs::write(&file, bytes).unwrap();
    let mut cmd = Command::new(tool);
    cmd.args(args).arg(&file);
    if out_arg {
        cmd.arg("-");
    }
    match cmd.output() {
        Ok(out) => Some(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(_) if !required() => {
            eprintln!("note: {tool} not installed, skipping");
            None
        }
        Err(e) => panic!("{tool} is required: {e}"),
    }
}

/// `pdftotext` output with whitespace runs collapsed (layout may break lines anywhere).
fn text_of(pdf: &[u8]) -> Option<String> {
    run_tool("pdftotext", &["-enc", "UTF-8"], pdf, true)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[tokio::test]
async fn a_sealed_request_carries_stamps_a_certificate_page_and_a_full_audit_record() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["signers"] = json!([
        { "email": "ulla@example.com", "name": "Ulla Äänekoski" },
        { "email": "elena@example.com", "name": "Ελένη Παπαδοπούλου", "locale": "fi",
          "signature_position": { "page": 1, "x": 300, "y": 80 } },
        { "email": "julia@example.com", "name": "Юлия Łódź-Ærø" },
    ]);
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let signers = app.get_json(&format!("/api/v1/signatures/{id}")).await["signers"].clone();
    assert_eq!(
        signers[1]["signature_position"],
        json!({"page": 1, "x": 300.0, "y": 80.0})
    );
    assert_eq!(signers[0]["signature_position"], Value::Null);

    // Any status: the record of an unsigned request is available too.
    let pending = app
        .get(&format!("/api/v1/signatures/{id}/audit-trail.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(pending.status(), 200);
    assert!(pending.bytes().await.unwrap().starts_with(b"%PDF-"));

    let url = |i: usize| v["signers"][i]["sign_url"].as_str().unwrap().to_string();
    let drawing = drawn_signature();
    sign(
        &url(0),
        "Ulla Äänekoski",
        Some("Äänekoski Oy"),
        Some(&drawing),
    )
    .await;
    sign(&url(1), "Ελένη Παπαδοπούλου", None, None).await;
    sign(&url(2), "Юлия Łódź-Ærø", None, Some(&drawing)).await;
    app.service.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "signed", "{got}");

    // The sealed document: upload a prefix, stamped revision covered by a valid seal.
    let sealed = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert!(sealed.starts_with(ONE_PAGE));
    let report = signeur_pdf::verify(&sealed).unwrap();
    assert!(report.seal_valid(), "{report:?}");
    let info = signeur_pdf::inspect(&sealed).unwrap();
    assert!(info.page_count >= 2, "a certificate page was appended");
    let document_hash = got["document_hash"].as_str().unwrap();
    if let Some(text) = text_of(&sealed) {
        for needle in [
            "Ulla Äänekoski",
            "Äänekoski Oy",
            "Ελένη Παπαδοπούλου",
            "Юлия Łódź-Ærø",
            document_hash,
            "ulla@example.com",
            "127.0.0.1",
        ] {
            assert!(text.contains(needle), "pdftotext lacks {needle:?}: {text}");
        }
        for s in got["signers"].as_array().unwrap() {
            let sid = s["id"].as_str().unwrap();
            assert!(text.contains(sid), "signer id {sid} on the document");
        }
    }

    // The audit record as JSON: no secrets, every event with its hash, chain and seal.
    let res = app
        .get(&format!("/api/v1/signatures/{id}/audit-trail.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let raw = res.text().await.unwrap();
    for s in got["signers"].as_array().unwrap() {
        let token = s["access_token"].as_str().unwrap();
        assert!(
            !raw.contains(token),
            "no access token in the shareable record"
        );
    }
    let record: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(record["signature_request"]["id"], id.as_str());
    assert_eq!(record["signature_request"]["status"], "signed");
    assert_eq!(record["signature_request"]["document_hash"], document_hash);
    assert_eq!(
        record["signature_request"]["sealed_document_hash"],
        got["sealed_document_hash"]
    );
    assert_eq!(record["events"], got["audit_trail"]["events"]);
    assert_eq!(record["chain"]["valid"], true);
    assert_eq!(
        record["chain"]["events"],
        got["audit_trail"]["events"].as_array().unwrap().len()
    );
    let seal = &record["seal"];
    assert_eq!(seal["level"], "PAdES-B-B");
    assert_eq!(seal["valid"], true);
    assert!(seal["certificate_serial"].as_str().unwrap().len() >= 2);
    assert!(
        seal["certificate_subject"]
            .as_str()
            .unwrap()
            .contains("CN=")
    );
    let s0 = &record["signers"][0];
    assert_eq!(s0["verification_method"], "link");
    assert_eq!(s0["ip_address"], "127.0.0.1");
    assert_eq!(s0["user_agent"], "Mozilla/5.0 (signeur-test)");
    assert_eq!(s0["name_as_signed"], "Ulla Äänekoski");
    assert_eq!(s0["representing_as_signed"], "Äänekoski Oy");
    assert!(is_wire_time(&record["generated_at"]));

    // The same file checks with `signeur verify --audit`, and tampering is caught.
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.json");
    std::fs::write(&audit, &raw).unwrap();
    let pdf = dir.path().join("sealed.pdf");
    std::fs::write(&pdf, &sealed).unwrap();
    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_signeur"))
            .arg("verify")
            .arg(&pdf)
            .arg("--audit")
            .arg(&audit)
            .output()
            .unwrap()
    };
    let out = verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("hash chain intact"), "{stdout}");
    let mut tampered = record.clone();
    tampered["events"][0]["data"]["title"] = json!("Another agreement");
    std::fs::write(&audit, tampered.to_string()).unwrap();
    let out = verify();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a changed event breaks the chain"
    );

    // The audit-trail PDF: readable, and its text lists every event.
    let res = app
        .get(&format!("/api/v1/signatures/{id}/audit-trail.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let audit_pdf = res.bytes().await.unwrap().to_vec();
    signeur_pdf::inspect(&audit_pdf).unwrap();
    if let Some(out) = run_tool("qpdf", &["--check"], &audit_pdf, false) {
        assert!(
            out.contains("No syntax or stream encoding errors found"),
            "{out}"
        );
    }
    if let Some(text) = text_of(&audit_pdf) {
        for e in record["events"].as_array().unwrap() {
            let hash = e["hash"].as_str().unwrap();
            assert!(text.contains(hash), "event hash {hash} listed");
            assert!(text.contains(e["type"].as_str().unwrap()));
        }
        for needle in [
            document_hash,
            got["sealed_document_hash"].as_str().unwrap(),
            "PAdES-B-B",
            seal["certificate_serial"].as_str().unwrap(),
            "Mozilla/5.0 (signeur-test)",
            "Ελένη Παπαδοπούλου",
        ] {
            assert!(text.contains(needle), "audit PDF lacks {needle:?}: {text}");
        }
    }

    // Another organization's id is 404 on both forms.
    let (_, other_key) = app.other_org().await;
    for path in ["audit-trail.json", "audit-trail.pdf"] {
        let res = http_client()
            .get(app.url(&format!("/api/v1/signatures/{id}/{path}")))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn a_signature_position_beyond_the_document_is_refused_naming_the_field() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["signers"][1]["signature_position"] = json!({"page": 2, "x": 10, "y": 10});
    let res = app
        .post("/api/v1/signatures")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(res).await;
    assert_eq!(status, 400);
    assert_eq!(code, "invalid_field");
    assert!(
        message.contains("'signers[1].signature_position.page'") && message.contains("1 page"),
        "{message}"
    );
}

/// Every webhook attempt for a request's events is listed in its audit trail: under
/// `audit_trail.deliveries` of the request (and of the signer whose event it was), in the
/// audit record's `deliveries`, and in the audit-trail PDF; never among the events nor in
/// the hash chain.
#[tokio::test]
async fn webhook_attempts_are_listed_in_the_audit_trail_outside_the_chain() {
    use crate::webhook_delivery::{Receiver, Reply, drain, endpoint};

    let app = TestApp::start_with_webhooks(loopback_webhooks()).await;
    let rx = Receiver::start(vec![Reply::Status(503)]).await;
    let (ep, _) = endpoint(&app, &rx.url, json!(["signature_request.created"])).await;
    let other = Receiver::start(vec![]).await;
    let (ep2, _) = endpoint(&app, &other.url, json!(["signature_request.created"])).await;
    let v = app.create(&seed_body()).await;
    let id = v["id"].as_str().unwrap().to_string();
    drain(&app).await;
    app.advance(chrono::Duration::hours(1));
    drain(&app).await;
    assert_eq!(rx.hits().len(), 2, "a failure, then the retry");

    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let events = got["audit_trail"]["events"].as_array().unwrap();
    let created = events
        .iter()
        .find(|e| e["type"] == "signature_request.created")
        .unwrap();
    let deliveries = got["audit_trail"]["deliveries"].as_array().unwrap();
    let summary: Vec<_> = deliveries
        .iter()
        .map(|d| {
            (
                d["endpoint_id"].as_str().unwrap().to_string(),
                d["attempt"].as_i64().unwrap(),
                d["status"].as_str().unwrap().to_string(),
                d["http_status"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut first_two = summary[..2].to_vec();
    first_two.sort();
    let mut want = vec![
        (ep.clone(), 1, "failed".to_string(), 503),
        (ep2.clone(), 1, "succeeded".to_string(), 200),
    ];
    want.sort();
    assert_eq!(first_two, want, "{got}");
    assert_eq!(summary[2], (ep.clone(), 2, "succeeded".to_string(), 200));
    assert_eq!(deliveries.len(), 3, "oldest first, one entry per attempt");
    for d in deliveries {
        assert_eq!(d["event_id"], created["id"]);
        assert_eq!(d["event_type"], "signature_request.created");
        assert!(d["id"].as_str().unwrap().starts_with("wha_"));
        assert!(d["delivery_id"].as_str().unwrap().starts_with("whd_"));
        assert!(is_wire_time(&d["created_at"]));
        assert!(d["duration_ms"].is_i64());
        assert!(d.get("error").is_some());
    }
    // The attempts agree with the endpoint's history.
    let history = app
        .get_json(&format!("/api/v1/webhook-endpoints/{ep}/deliveries"))
        .await;
    let ids: Vec<_> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|a| a["id"].clone())
        .collect();
    let listed: Vec<_> = deliveries
        .iter()
        .filter(|d| d["endpoint_id"] == ep.as_str())
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(ids, listed);
    // Not events, not chained: the events are what they were, and the chain still verifies.
    assert!(
        events
            .iter()
            .all(|e| !e["type"].as_str().unwrap().starts_with("webhook"))
    );

    let record = app
        .get_json(&format!("/api/v1/signatures/{id}/audit-trail.json"))
        .await;
    assert_eq!(record["deliveries"], got["audit_trail"]["deliveries"]);
    assert_eq!(record["events"], got["audit_trail"]["events"]);
    assert_eq!(record["chain"]["valid"], true);
    assert_eq!(record["chain"]["events"], events.len());

    // A signer's own audit trail lists only the attempts of that signer's events.
    let signers = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    for s in signers["data"].as_array().unwrap() {
        assert_eq!(s["audit_trail"]["deliveries"], json!([]), "{s}");
    }

    let pdf = app
        .get(&format!("/api/v1/signatures/{id}/audit-trail.pdf"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    if let Some(text) = text_of(&pdf) {
        assert!(text.contains("Webhook deliveries"), "{text}");
        assert!(text.contains("3 attempts"), "{text}");
        for d in deliveries {
            let attempt = d["id"].as_str().unwrap();
            assert!(text.contains(attempt), "attempt {attempt} in the PDF");
        }
        assert!(text.contains(&ep), "{text}");
        assert!(text.contains("Failed: HTTP 503"), "{text}");
        assert!(text.contains("Succeeded: HTTP 200"), "{text}");
    }
}
