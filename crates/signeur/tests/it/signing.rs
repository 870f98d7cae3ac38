//! The signer's pages over HTTP, as a browser without JavaScript uses them: cookies kept,
//! redirects followed, forms posted. (Real-Chromium tests live in `.ci/`.)

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::smtp::SmtpSink;
use crate::support::*;

/// A cookie-keeping, redirect-following client: one browser profile.
pub(crate) fn browser() -> reqwest::Client {
    http_builder()
        .cookie_store(true)
        .user_agent("Mozilla/5.0 (signeur-test)")
        .build()
        .unwrap()
}

/// The value of the hidden CSRF field on a page.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

pub(crate) async fn page(c: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let res = c.get(url).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

pub(crate) async fn post_form(
    c: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let res = c.post(url).form(form).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

/// Signs through the page: name, consent, optional drawing.
pub(crate) async fn sign_as(
    c: &reqwest::Client,
    sign_url: &str,
    name: &str,
) -> (StatusCode, String) {
    let (status, html) = page(c, sign_url).await;
    assert_eq!(status, 200, "{html}");
    let csrf = csrf_of(&html);
    post_form(
        c,
        &format!("{sign_url}/sign"),
        &[("csrf", &csrf), ("full_name", name), ("consent", "yes")],
    )
    .await
}

fn event_types(v: &Value) -> Vec<String> {
    v["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_string()
}

#[tokio::test]
async fn an_api_link_opens_signs_and_seals() {
    let app = TestApp::start().await;
    let v = app.create(&seed_body()).await;
    let id = v["id"].as_str().unwrap().to_string();
    let url0 = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let url1 = v["signers"][1]["sign_url"].as_str().unwrap().to_string();

    // A link preview (no cookies kept) sees the page but does not count as an open.
    let preview = http_client();
    let res = preview.get(&url0).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["referrer-policy"], "no-referrer");
    let html = res.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<label for=\"full_name\">Full name</label>"));
    assert!(html.contains("value=\"Anna Buyer\""), "name prefilled");
    assert!(
        html.contains("contract.pdf · 1 page</p>"),
        "plural forms: {html}"
    );
    assert!(html.contains(">Sign</button>") && html.contains(">Decline</a>"));
    assert!(html.contains("type=\"checkbox\" value=\"yes\" required"));
    assert!(!html.contains("<script>"), "no inline script");
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "sent", "a preview is not an open");

    // A browser: the first view sets the session, the next request carries it.
    let b = browser();
    let (status, _) = page(&b, &url0).await;
    assert_eq!(status, 200);
    let (status, _) = page(&b, &url0).await;
    assert_eq!(status, 200);
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "opened");
    assert!(is_wire_time(&got["opened_at"]));
    assert_eq!(got["signers"][0]["status"], "opened");
    let types = event_types(&got);
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "signature_request.opened")
            .count(),
        1
    );
    assert!(types.contains(&"signer.opened".to_string()));

    // The original can be downloaded by the signer, not by a stranger.
    let res = b.get(format!("{url0}/document.pdf")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.bytes().await.unwrap().as_ref(), ONE_PAGE);
    let res = http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{url0}/document.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "no session, no document");

    // Page images, rendered on the server, for the signer only.
    let (_, html) = page(&b, &url0).await;
    assert!(html.contains("/page/1\" alt=\"Page 1 of 1\""), "{html}");
    let res = b.get(format!("{url0}/page/1")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(res.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let res = b.get(format!("{url0}/page/2")).send().await.unwrap();
    assert_eq!(res.status(), 404, "the document has one page");
    let res = http_client()
        .get(format!("{url0}/page/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "no session, no page image");

    let (status, html) = sign_as(&b, &url0, "Anna H. Buyer").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("You have signed"), "{html}");
    let signers = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    let s0 = &signers["data"][0];
    assert_eq!(s0["status"], "signed");
    assert_eq!(s0["name_as_signed"], "Anna H. Buyer");
    assert_eq!(s0["ip_address"], "127.0.0.1");
    assert_eq!(s0["user_agent"], "Mozilla/5.0 (signeur-test)");
    assert!(is_wire_time(&s0["signed_at"]));
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let signed_event = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "signer.signed")
        .unwrap()
        .clone();
    let data = &signed_event["data"];
    assert_eq!(data["signature_request_id"], id.as_str());
    assert_eq!(data["signer_email"], "buyer@example.com");
    assert_eq!(data["signer_name"], "Anna Buyer");
    assert_eq!(data["remaining_pending_signers"], 1);
    assert!(is_wire_time(&data["signed_at"]));

    // Signing twice is not possible: the link now shows the signed page.
    let (status, html) = page(&b, &url0).await;
    assert_eq!(status, 200);
    assert!(html.contains("You have signed") && !html.contains("name=\"full_name\""));

    // The second signer (Finnish) signs straight away: the request awaits its seal.
    let b1 = browser();
    let (status, html) = page(&b1, &url1).await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"fi\">") && html.contains(">Allekirjoita</button>"));
    let (status, _) = sign_as(&b1, &url1, "Bob Seller").await;
    assert_eq!(status, 200);
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "awaiting_stamp");
    let res = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "not downloadable before the seal");

    app.service.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "signed");
    assert!(got["sealed_document_hash"].is_string());
    let types = event_types(&got);
    assert!(types.contains(&"signature_request.completed".to_string()));
    assert!(types.contains(&"signature_request.signed".to_string()));
    let res = b1.get(format!("{url1}/signed.pdf")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    // The sealed PDF: the upload is a byte-exact prefix; a PAdES signature is appended.
    let sealed = res.bytes().await.unwrap();
    assert!(sealed.starts_with(ONE_PAGE), "the original is a prefix");
    assert!(sealed.len() > ONE_PAGE.len() + 16_000);
    let tail = String::from_utf8_lossy(&sealed[ONE_PAGE.len()..]);
    assert!(tail.contains("/ETSI.CAdES.detached") && tail.contains("/ByteRange"));
    use sha2::Digest as _;
    assert_eq!(
        got["sealed_document_hash"],
        hex::encode(sha2::Sha256::digest(&sealed))
    );
    assert_ne!(got["sealed_document_hash"], got["document_hash"]);
    validate_with_outside_tools(&app, &sealed).await;
    let api = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    assert_eq!(api.bytes().await.unwrap(), sealed);
    let (_, html) = page(&b1, &url1).await;
    assert!(
        html.contains("/signed.pdf"),
        "the signed page offers the download"
    );
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn the_access_code_gate_counts_locks_and_resend_unlocks() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let mut body = seed_body();
    body["delivery"] = json!("email");
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let messages = smtp.wait_for(2).await;
    let url0 = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let url1 = v["signers"][1]["sign_url"].as_str().unwrap().to_string();
    let text_for = |email: &str| {
        messages
            .iter()
            .find(|m| m.to == vec![email.to_string()])
            .unwrap()
            .text()
    };
    let code0 = code_in(&text_for("buyer@example.com"));

    let b = browser();
    let (status, html) = page(&b, &url0).await;
    assert_eq!(status, 200);
    assert!(html.contains("<label for=\"code\">Access code</label>"));
    assert!(html.contains("inputmode=\"numeric\"") && html.contains(">Verify</button>"));
    assert!(
        !html.contains("full_name"),
        "nothing of the document before the code"
    );
    let csrf = csrf_of(&html);

    // Without the CSRF token the form is refused.
    let (status, _) = post_form(&b, &format!("{url0}/verify"), &[("code", &code0)]).await;
    assert_eq!(status, 403);
    // A wrong code is counted and said so.
    let wrong = format!("{:06}", (code0.parse::<u32>().unwrap() + 1) % 1_000_000);
    let (status, html) = post_form(
        &b,
        &format!("{url0}/verify"),
        &[("csrf", &csrf), ("code", &wrong)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("4 more tries"), "{html}");
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "sent", "a wrong code opens nothing");
    // The right code opens the document.
    let (status, html) = post_form(
        &b,
        &format!("{url0}/verify"),
        &[("csrf", &csrf), ("code", &code0)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"full_name\""), "{html}");
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "opened");
    assert_eq!(got["signers"][0]["status"], "opened");

    // Five wrong codes lock the second signer's link for 15 minutes.
    let code1 = code_in(&text_for("seller@example.com"));
    let b1 = browser();
    let (_, html) = page(&b1, &url1).await;
    let csrf1 = csrf_of(&html);
    let wrong1 = format!("{:06}", (code1.parse::<u32>().unwrap() + 7) % 1_000_000);
    for i in 0..5 {
        let (status, html) = post_form(
            &b1,
            &format!("{url1}/verify"),
            &[("csrf", &csrf1), ("code", &wrong1)],
        )
        .await;
        assert_eq!(status, if i < 4 { 400 } else { 429 }, "attempt {i}");
        if i == 3 {
            assert!(html.contains("Sinulla on vielä yksi yritys."), "{html}");
        }
    }
    let (status, html) = post_form(
        &b1,
        &format!("{url1}/verify"),
        &[("csrf", &csrf1), ("code", &code1)],
    )
    .await;
    assert_eq!(status, 429, "even the right code waits out the lock");
    assert!(
        html.contains("Liian monta väärää koodia"),
        "in the signer's Finnish: {html}"
    );
    let (status, _) = page(&b1, &url1).await;
    assert_eq!(status, 429);
    // The lock ends after 15 minutes …
    app.advance(Duration::minutes(16));
    let (status, _) = page(&b1, &url1).await;
    assert_eq!(status, 200);
    // … and a resend (new code) resets it at once.
    for _ in 0..5 {
        post_form(
            &b1,
            &format!("{url1}/verify"),
            &[("csrf", &csrf1), ("code", &wrong1)],
        )
        .await;
    }
    let (status, _) = page(&b1, &url1).await;
    assert_eq!(status, 429);
    let signer1 = v["signers"][1]["id"].as_str().unwrap();
    let res = app
        .post(&format!("/api/v1/signatures/{id}/signers/{signer1}/resend"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let messages = smtp.wait_for(3).await;
    let new_code = code_in(&messages[2].text());
    let (status, html) = post_form(
        &b1,
        &format!("{url1}/verify"),
        &[("csrf", &csrf1), ("code", &code1)],
    )
    .await;
    assert_eq!(status, 400, "the old code no longer works: {html}");
    let (status, html) = post_form(
        &b1,
        &format!("{url1}/verify"),
        &[("csrf", &csrf1), ("code", &new_code)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"full_name\""));

    // Signing needs the session: another browser with the CSRF field but no code cannot.
    let stranger = browser();
    let (_, html) = page(&stranger, &url0).await;
    let csrf_s = csrf_of(&html);
    let (_, html) = post_form(
        &stranger,
        &format!("{url0}/sign"),
        &[
            ("csrf", &csrf_s),
            ("full_name", "Mallory"),
            ("consent", "yes"),
        ],
    )
    .await;
    assert!(html.contains("Access code"), "back to the gate");
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["signers"][0]["status"], "opened");
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn form_errors_name_the_field_and_keep_the_input() {
    let app = TestApp::start().await;
    let v = app.create(&seed_body()).await;
    let url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let b = browser();
    page(&b, &url).await;
    let (_, html) = page(&b, &url).await;
    let csrf = csrf_of(&html);
    let (status, html) = post_form(
        &b,
        &format!("{url}/sign"),
        &[("csrf", &csrf), ("full_name", "Anna Buyer")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("role=\"alert\""));
    assert!(html.contains("I have read the document"), "{html}");
    let (status, html) = post_form(
        &b,
        &format!("{url}/sign"),
        &[("csrf", &csrf), ("full_name", "  "), ("consent", "yes")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("Please fill in “Full name”"), "{html}");
    let (status, html) = post_form(
        &b,
        &format!("{url}/sign"),
        &[
            ("csrf", &csrf),
            ("full_name", "Anna"),
            ("consent", "yes"),
            ("signature", "data:image/png;base64,bm90IGEgcG5n"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("Draw your signature"), "{html}");
    let (status, _) = post_form(
        &b,
        &format!("{url}/sign"),
        &[
            ("csrf", &csrf),
            ("full_name", "Anna"),
            ("consent", "yes"),
            ("representing_role", "CEO"),
        ],
    )
    .await;
    assert_eq!(status, 400, "a role needs the organization");

    // A drawn signature and representation are kept.
    let png = {
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        p.extend_from_slice(&[0u8; 32]);
        format!("data:image/png;base64,{}", b64(&p))
    };
    let (status, html) = post_form(
        &b,
        &format!("{url}/sign"),
        &[
            ("csrf", &csrf),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
            ("representing_entity", "Acme Oy"),
            ("representing_role", "CEO"),
            ("representing_entity_id", "1234567-8"),
            ("signature", &png),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let id = v["id"].as_str().unwrap();
    let signers = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    assert_eq!(signers["data"][0]["representing_as_signed"], "Acme Oy");
    assert_eq!(signers["data"][0]["representing_role"], "CEO");
    assert_eq!(signers["data"][0]["representing_entity_id"], "1234567-8");
    let signer_id = v["signers"][0]["id"].as_str().unwrap().parse().unwrap();
    let row = app
        .db
        .get_signer(id.parse().unwrap(), signer_id)
        .await
        .unwrap()
        .unwrap();
    let key = row.signature_image_blob.expect("the drawing is stored");
    assert!(
        app.blobs
            .get(&key)
            .await
            .unwrap()
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    assert_eq!(
        row.verification_method,
        Some(signeur_core::VerificationMethod::Link)
    );
    // The drawing is referenced: orphan-blob removal keeps it.
    app.advance(Duration::hours(2));
    app.service.remove_orphan_blobs().await.unwrap();
    assert!(app.blobs.get(&key).await.unwrap().is_some());
}

#[tokio::test]
async fn declining_closes_the_request_for_everyone() {
    let app = TestApp::start().await;
    let v = app.create(&seed_body()).await;
    let id = v["id"].as_str().unwrap().to_string();
    let url0 = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let url1 = v["signers"][1]["sign_url"].as_str().unwrap().to_string();
    let b = browser();
    page(&b, &url0).await;
    let (status, html) = page(&b, &format!("{url0}/decline")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<label for=\"reason\">Reason</label>"));
    let csrf = csrf_of(&html);
    let (status, html) = post_form(
        &b,
        &format!("{url0}/decline"),
        &[("csrf", &csrf), ("reason", "")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("Please fill in “Reason”"));
    let long = "x".repeat(501);
    let (status, _) = post_form(
        &b,
        &format!("{url0}/decline"),
        &[("csrf", &csrf), ("reason", &long)],
    )
    .await;
    assert_eq!(status, 400);
    let (status, html) = post_form(
        &b,
        &format!("{url0}/decline"),
        &[("csrf", &csrf), ("reason", "Wrong price")],
    )
    .await;
    assert_eq!(status, 410);
    assert!(html.contains("was declined"), "{html}");
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "declined");
    assert!(is_wire_time(&got["declined_at"]));
    assert_eq!(got["signers"][0]["status"], "declined");
    assert_eq!(got["signers"][0]["decline_reason"], "Wrong price");
    assert_eq!(got["signers"][1]["status"], "invalidated");
    let declined = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "signature_request.declined")
        .unwrap()
        .clone();
    assert_eq!(declined["data"]["decline_reason"], "Wrong price");
    assert_eq!(
        declined["data"]["signer_id"],
        v["signers"][0]["id"].as_str().unwrap()
    );
    let (status, html) = page(&browser(), &format!("{url1}?lang=en")).await;
    assert_eq!(status, 410);
    assert!(html.contains("was declined"));
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn link_states_are_answered_honestly() {
    let app = TestApp::start().await;
    let (status, html) = page(&browser(), &app.url("/sign/no-such-token")).await;
    assert_eq!(status, 404);
    assert!(html.contains("Link not found"));

    let v = app.create(&seed_body()).await;
    let id = v["id"].as_str().unwrap();
    let url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let res = app
        .post(&format!("/api/v1/signatures/{id}/cancel"))
        .json(&json!({"reason": "Changed terms"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, html) = page(&browser(), &url).await;
    assert_eq!(status, 410);
    assert!(html.contains("The sender cancelled this signing request."));

    let v = app.create(&seed_body()).await;
    let url = v["signers"][1]["sign_url"].as_str().unwrap().to_string();
    app.advance(Duration::days(31));
    let (status, html) = page(&browser(), &url).await;
    assert_eq!(status, 410);
    assert!(html.contains("<html lang=\"fi\">"));
    assert!(html.contains("vanhentunut"), "expired, in Finnish: {html}");
    let (status, html) = page(&browser(), &format!("{url}?lang=de")).await;
    assert_eq!(status, 410);
    assert!(html.contains("abgelaufen"), "{html}");
}

#[tokio::test]
async fn a_sequential_request_waits_for_each_turn() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["signing_order"] = json!("sequential");
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let url0 = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let url1 = v["signers"][1]["sign_url"].as_str().unwrap().to_string();
    assert_eq!(v["signers"][1]["status"], "pending");
    let (status, html) = page(&browser(), &format!("{url1}?lang=en")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Not your turn yet"), "{html}");
    assert!(!html.contains("name=\"full_name\""));

    let b = browser();
    page(&b, &url0).await;
    let (status, _) = sign_as(&b, &url0, "Anna Buyer").await;
    assert_eq!(status, 200);
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(
        got["signers"][1]["status"], "sent",
        "the next turn has come"
    );
    let b1 = browser();
    let (status, html) = page(&b1, &url1).await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"full_name\""));
}

#[tokio::test]
async fn sequential_email_requests_invite_the_next_signer_after_a_signature() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let mut body = seed_body();
    body["delivery"] = json!("email");
    body["signing_order"] = json!("sequential");
    let v = app.create(&body).await;
    let messages = smtp.wait_for(1).await;
    assert_eq!(messages.len(), 1, "only the first signer is invited");
    let url0 = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let b = browser();
    let (_, html) = page(&b, &url0).await;
    let csrf = csrf_of(&html);
    let code = code_in(&messages[0].text());
    let (status, _) = post_form(
        &b,
        &format!("{url0}/verify"),
        &[("csrf", &csrf), ("code", &code)],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = sign_as(&b, &url0, "Anna Buyer").await;
    assert_eq!(status, 200);
    app.service.run_due_jobs().await.unwrap();
    let messages = smtp.wait_for(2).await;
    assert_eq!(messages[1].to, vec!["seller@example.com".to_string()]);
    let id = v["id"].as_str().unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["signers"][1]["status"], "sent");
    assert_eq!(got["signers"][0]["status"], "signed");
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn a_decline_tells_the_other_invited_signers_who_declined() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let mut body = seed_body();
    body["delivery"] = json!("email");
    let v = app.create(&body).await;
    let messages = smtp.wait_for(2).await;
    let url0 = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let code = code_in(
        &messages
            .iter()
            .find(|m| m.to == vec!["buyer@example.com".to_string()])
            .unwrap()
            .text(),
    );
    let b = browser();
    let (_, html) = page(&b, &url0).await;
    post_form(
        &b,
        &format!("{url0}/verify"),
        &[("csrf", &csrf_of(&html)), ("code", &code)],
    )
    .await;
    let (_, html) = page(&b, &format!("{url0}/decline")).await;
    let (status, _) = post_form(
        &b,
        &format!("{url0}/decline"),
        &[("csrf", &csrf_of(&html)), ("reason", "Wrong price")],
    )
    .await;
    assert_eq!(status, 410);
    app.service.run_due_jobs().await.unwrap();
    let messages = smtp.wait_for(3).await;
    assert_eq!(messages.len(), 3, "one notice, to the other signer only");
    let notice = &messages[2];
    assert_eq!(notice.to, vec!["seller@example.com".to_string()]);
    assert!(notice.text().contains("Anna Buyer"), "{}", notice.text());
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn a_seal_that_keeps_failing_is_stamp_failed_until_retried() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["signers"] = json!([{ "email": "buyer@example.com", "name": "Anna Buyer" }]);
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let res = app
        .post(&format!("/api/v1/signatures/{id}/retry-seal"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "nothing to retry while sent");

    // The document the signers saw goes missing: the seal cannot be made.
    let key = app
        .db
        .get_request(app.org_id, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .document_blob;
    let original = app.blobs.get(&key).await.unwrap().unwrap();
    let b = browser();
    page(&b, &url).await;
    sign_as(&b, &url, "Anna Buyer").await;
    app.blobs.delete(&key).await.unwrap();
    for _ in 0..signeur_service::sealing::SEAL_ATTEMPTS {
        app.service.run_due_jobs().await.unwrap();
        app.advance(Duration::hours(2));
    }
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "stamp_failed");
    // Never silent: counted in the metrics (and logged, and an event below).
    let metrics = http_client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("signeur_seal_attempts_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("signeur_seal_attempts_total{outcome=\"retried\"} 7"),
        "{metrics}"
    );
    let failed = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "signature_request.stamp_failed")
        .expect("the failure is in the audit trail")
        .clone();
    assert!(
        failed["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{failed}"
    );
    let res = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);

    // Put it back and retry through the API.
    app.blobs.put(&key, &original).await.unwrap();
    let res = app
        .post(&format!("/api/v1/signatures/{id}/retry-seal"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["status"], "awaiting_stamp");
    app.service.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "signed");
    let res = app
        .post(&format!("/api/v1/signatures/{id}/retry-seal"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "a signed request is not retried");
    app.assert_reads_fresh().await;
}

/// pdfsig and pyHanko on a sealed file from the real flow, trusting the organization's
/// generated certificate (skipped when the tools are missing, required with
/// `SIGNEUR_REQUIRE_VALIDATORS`).
async fn validate_with_outside_tools(app: &TestApp, sealed: &[u8]) {
    check_with_outside_tools(app, sealed, true).await;
    // One byte changed inside the signed range: every validator must refuse it.
    let mut tampered = sealed.to_vec();
    tampered[ONE_PAGE.len() / 2] ^= 0x20;
    assert!(!signeur_pdf::verify(&tampered).unwrap().seal_valid());
    check_with_outside_tools(app, &tampered, false).await;
}

/// pdfsig and pyHanko on `sealed`; `expect_valid` says which way they must answer.
async fn check_with_outside_tools(app: &TestApp, sealed: &[u8], expect_valid: bool) {
    use std::process::Command;
    let required = std::env::var_os("SIGNEUR_REQUIRE_VALIDATORS").is_some();
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("sealed.pdf");
    std::fs::write(&pdf, sealed).unwrap();
    let cert = dir.path().join("seal.der");
    let identity = app.service.seal_identity(app.org_id).await.unwrap();
    std::fs::write(&cert, &identity.certificate_chain[0]).unwrap();

    match Command::new("pdfsig").arg(&pdf).output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                text.contains("Signature Validation: Signature is Valid."),
                expect_valid,
                "pdfsig: {text}"
            );
        }
        Err(_) if !required => eprintln!("note: pdfsig not installed, skipping"),
        Err(e) => panic!("pdfsig is required: {e}"),
    }
    match Command::new("pyhanko")
        .args(["sign", "validate", "--no-revocation-check", "--trust"])
        .arg(&cert)
        .arg("--trust-replace")
        .arg(&pdf)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                text.contains("INTACT:TRUSTED,UNTOUCHED"),
                expect_valid,
                "pyhanko: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) if !required => eprintln!("note: pyhanko not installed, skipping"),
        Err(e) => panic!("pyhanko is required: {e}"),
    }
}

#[tokio::test]
async fn an_api_link_signs_even_with_an_access_code_on_record() {
    let app = TestApp::start().await;
    let v = app.create(&seed_body()).await;
    let id = v["id"].as_str().unwrap();
    let signer: uuid::Uuid = v["signers"][0]["id"].as_str().unwrap().parse().unwrap();
    // A code rotated on a link that needs none (as a resend did before it was refused)
    // does not lock its signer out: the session issued and the session checked agree.
    app.db
        .set_access_code(signer, "$2b$10$notarealhash", app.clock.now())
        .await
        .unwrap();
    let b = browser();
    let url = v["signers"][0]["sign_url"].as_str().unwrap();
    let (status, html) = sign_as(&b, url, "Anna Buyer").await;
    assert_eq!(status, 200);
    assert!(html.contains("You have signed"), "{html}");
    let row = app
        .db
        .get_signer(id.parse().unwrap(), signer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.verification_method,
        Some(signeur_core::VerificationMethod::Link)
    );
}

#[tokio::test]
async fn the_access_code_opens_the_sealed_download_after_the_session_ended() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let mut body = seed_body();
    body["delivery"] = json!("email");
    body["signers"] = json!([{ "email": "buyer@example.com", "name": "Anna Buyer" }]);
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let messages = smtp.wait_for(1).await;
    let code = code_in(&messages[0].text());
    let b = browser();
    let (_, html) = page(&b, &url).await;
    let csrf = csrf_of(&html);
    let (status, _) = post_form(
        &b,
        &format!("{url}/verify"),
        &[("csrf", &csrf), ("code", &code)],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = sign_as(&b, &url, "Anna Buyer").await;
    assert_eq!(status, 200);
    app.service.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "signed");
    let row = app
        .db
        .get_signer(
            id.parse().unwrap(),
            v["signers"][0]["id"].as_str().unwrap().parse().unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.verification_method,
        Some(signeur_core::VerificationMethod::AccessCode)
    );

    // Three hours later the signer session has ended: the signed page asks for the code …
    app.advance(Duration::hours(3));
    let res = b.get(format!("{url}/signed.pdf")).send().await.unwrap();
    assert_ne!(
        res.headers()["content-type"],
        "application/pdf",
        "no session, no download"
    );
    let (status, html) = page(&b, &url).await;
    assert_eq!(status, 200);
    assert!(html.contains("You have signed"), "{html}");
    assert!(!html.contains("/signed.pdf"), "{html}");
    // … and the code opens the download.
    let (status, html) = post_form(
        &b,
        &format!("{url}/verify"),
        &[("csrf", &csrf), ("code", &code)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("/signed.pdf"), "{html}");
    let res = b.get(format!("{url}/signed.pdf")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert!(res.bytes().await.unwrap().starts_with(ONE_PAGE));
    // A wrong code is counted as at the gate, and opens nothing.
    let other = browser();
    let (_, html) = page(&other, &url).await;
    assert!(html.contains("Access code"), "the code form: {html}");
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let (status, html) = post_form(
        &other,
        &format!("{url}/verify"),
        &[("csrf", &csrf_of(&html)), ("code", &wrong)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("4 more tries"), "{html}");
    let res = other.get(format!("{url}/signed.pdf")).send().await.unwrap();
    assert_ne!(res.headers()["content-type"], "application/pdf");
}

/// A link that needs no code (delivery `api`) is its own credential: once the request is
/// sealed it opens the download, also long after its signer session ended, in any browser.
#[tokio::test]
async fn an_api_link_opens_the_sealed_download_after_the_session_ended() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["signers"] = json!([{ "email": "buyer@example.com", "name": "Anna Buyer" }]);
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let b = browser();
    let (status, _) = page(&b, &url).await;
    assert_eq!(status, 200);
    let (status, _) = sign_as(&b, &url, "Anna Buyer").await;
    assert_eq!(status, 200);
    app.service.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "signed");

    app.advance(Duration::hours(3));
    for browser in [b, browser()] {
        let (status, html) = page(&browser, &url).await;
        assert_eq!(status, 200);
        assert!(html.contains("You have signed"), "{html}");
        assert!(
            html.contains("/signed.pdf"),
            "the download is offered: {html}"
        );
        let res = browser
            .get(format!("{url}/signed.pdf"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/pdf");
        assert!(res.bytes().await.unwrap().starts_with(ONE_PAGE));
    }
}
