//! Invitations over real SMTP (an in-process server speaking SMTP over TCP; `.ci/run` adds
//! Python's aiosmtpd).

use chrono::Duration;
use serde_json::{Value, json};

use crate::smtp::SmtpSink;
use crate::support::*;

fn email_body(signers: Value) -> Value {
    let mut b = seed_body();
    b.as_object_mut().unwrap().remove("delivery");
    b["signers"] = signers;
    b
}

/// The six contiguous digits after the localized "access code" label.
fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_string()
}

#[tokio::test]
async fn each_signer_gets_one_invitation_in_their_language() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let v = app
        .create(&email_body(json!([
            {"email": "anna@example.com", "name": "Anna", "locale": "en"},
            {"email": "veikko@example.fi", "name": "Veikko", "locale": "fi"},
            {"email": "claire@example.fr", "name": "Claire", "locale": "fr"},
        ])))
        .await;
    assert_eq!(v["status"], "sent");
    let messages = smtp.wait_for(3).await;
    assert_eq!(messages.len(), 3, "exactly one each");
    for (signer, (expected_lang, phrase)) in v["signers"].as_array().unwrap().iter().zip([
        ("en", "Your access code"),
        ("fi", "Pääsykoodisi"),
        ("fr", "Votre code d’accès"),
    ]) {
        let email = signer["email"].as_str().unwrap();
        let mine: Vec<_> = messages
            .iter()
            .filter(|m| m.to == vec![email.to_string()])
            .collect();
        assert_eq!(mine.len(), 1, "{email}");
        let m = mine[0];
        let text = m.text();
        assert!(text.contains(phrase), "{expected_lang}: {text}");
        assert!(
            text.contains(signer["sign_url"].as_str().unwrap()),
            "the signer's own link"
        );
        assert!(
            m.html()
                .unwrap()
                .contains(&format!("lang=\"{expected_lang}\""))
        );
        assert!(
            m.header("Subject").unwrap().contains("Default"),
            "organization name in the subject"
        );
        assert_eq!(signer["email_sent"], true);
        let signer_id = signer["id"].as_str().unwrap().parse().unwrap();
        let code = code_in(&text);
        assert!(
            app.service
                .verify_access_code(signer_id, &code)
                .await
                .unwrap()
        );
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert!(
            !app.service
                .verify_access_code(signer_id, &wrong)
                .await
                .unwrap()
        );
    }
    // The code is in the email only: never in an API response.
    let got = app
        .get(&format!("/api/v1/signatures/{}", v["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in &messages {
        assert!(!got.contains(&code_in(&m.text())));
    }
    let events: Value = serde_json::from_str(&got).unwrap();
    let sent = events["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "signature_request.sent")
        .unwrap()
        .clone();
    assert_eq!(sent["data"]["signers"].as_array().unwrap().len(), 3);
    assert!(
        sent["data"]["signers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["email_sent"] == true)
    );
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn a_refused_recipient_is_reported_not_retried() {
    let smtp = SmtpSink::start_rejecting(&["nobody@example.com"]).await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let v = app
        .create(&email_body(json!([
            {"email": "anna@example.com", "name": "Anna"},
            {"email": "nobody@example.com", "name": "Nobody"},
        ])))
        .await;
    assert_eq!(v["status"], "sent");
    assert_eq!(v["signers"][0]["email_sent"], true);
    assert_eq!(v["signers"][1]["email_sent"], false);
    assert_eq!(v["signers"][1]["status"], "pending", "not invited");
    let error = v["signers"][1]["email_error"].as_str().unwrap();
    assert!(error.contains("550"), "{error}");
    let id = v["id"].as_str().unwrap();
    let got: Value = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let failed: Vec<_> = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "signer.email_failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["signer_email"], "nobody@example.com");
    // Permanent: no job left to retry it.
    assert!(
        app.db
            .pending_jobs(signeur_core::JobKind::SendInvitation)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(smtp.messages().len(), 1);
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn invitations_queued_while_smtp_is_down_arrive_when_it_is_back() {
    let smtp = SmtpSink::start().await;
    let addr = smtp.addr;
    let url = smtp.url();
    smtp.stop();
    let app = TestApp::start_with_smtp(Some(url)).await;
    let v = app
        .create(&email_body(
            json!([{"email": "anna@example.com", "name": "Anna"}]),
        ))
        .await;
    assert_eq!(v["status"], "sent");
    assert_eq!(v["signers"][0]["email_sent"], false);
    assert_eq!(
        v["signers"][0]["email_error"],
        Value::Null,
        "null error = still queued"
    );
    assert_eq!(v["signers"][0]["status"], "pending");
    assert_eq!(
        app.db
            .pending_jobs(signeur_core::JobKind::SendInvitation)
            .await
            .unwrap()
            .len(),
        1
    );

    // Still down when the worker first tries: rescheduled with backoff, nothing lost.
    app.advance(Duration::seconds(30));
    app.service.run_due_jobs().await.unwrap();
    let jobs = app
        .db
        .pending_jobs(signeur_core::JobKind::SendInvitation)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 1);

    let smtp = SmtpSink::start_on(addr).await;
    app.advance(Duration::minutes(5));
    app.service.run_due_jobs().await.unwrap();
    let messages = smtp.wait_for(1).await;
    assert_eq!(messages.len(), 1);
    let got: Value = app
        .get_json(&format!("/api/v1/signatures/{}", v["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["signers"][0]["status"], "sent");
    assert_eq!(got["signers"][0]["email_sent"], true);
    assert!(
        app.db
            .pending_jobs(signeur_core::JobKind::SendInvitation)
            .await
            .unwrap()
            .is_empty()
    );
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn api_delivery_sends_no_email() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    app.create(&seed_body()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn resend_rotates_the_code_and_keeps_the_new_locale() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let v = app
        .create(&email_body(
            json!([{"email": "anna@example.com", "name": "Anna"}]),
        ))
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    let signer = v["signers"][0]["id"].as_str().unwrap().to_string();
    let signer_id = signer.parse().unwrap();
    let first = code_in(&smtp.wait_for(1).await[0].text());
    assert!(
        app.service
            .verify_access_code(signer_id, &first)
            .await
            .unwrap()
    );

    app.advance(Duration::seconds(5));
    let path = format!("/api/v1/signatures/{id}/signers/{signer}/resend");
    let res = app
        .post(&path)
        .header("Idempotency-Key", "resend-1")
        .json(&json!({"locale": "fi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["signer_id"], signer.as_str());
    assert_eq!(r["email_sent"], true);
    assert_eq!(r["email_error"], Value::Null);
    assert!(is_wire_time(&r["access_code_rotated_at"]));

    let messages = smtp.wait_for(2).await;
    assert_eq!(messages.len(), 2);
    let second_text = messages[1].text();
    assert!(
        second_text.contains("Pääsykoodisi"),
        "resent in Finnish: {second_text}"
    );
    let second = code_in(&second_text);
    assert!(
        !app.service
            .verify_access_code(signer_id, &first)
            .await
            .unwrap(),
        "the old code stops working at once"
    );
    assert!(
        app.service
            .verify_access_code(signer_id, &second)
            .await
            .unwrap()
    );
    let signers: Value = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    assert_eq!(signers["data"][0]["locale"], "fi", "the override is kept");

    // The same key replays instead of sending a third message.
    let res = app
        .post(&path)
        .header("Idempotency-Key", "resend-1")
        .json(&json!({"locale": "fi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("idempotent-replayed").unwrap(), "true");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(smtp.messages().len(), 2);
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn resend_refusals() {
    let app = TestApp::start().await;
    let v = app
        .create(&email_body(
            json!([{"email": "anna@example.com"}, {"email": "bob@example.com"}]),
        ))
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    let signer = v["signers"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/signatures/{id}/signers/{signer}/resend");

    let (status, code, message) = error_of(
        app.post(&path)
            .json(&json!({"locale": "sv"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status.as_u16(), code.as_str()), (400, "invalid_locale"));
    assert!(message.contains("'locale'"));
    let unknown = format!(
        "/api/v1/signatures/{id}/signers/{}/resend",
        uuid::Uuid::new_v4()
    );
    assert_eq!(
        error_of(app.post(&unknown).send().await.unwrap()).await.1,
        "not_found"
    );
    let (_, other_key) = app.other_org().await;
    let res = app
        .client
        .post(app.url(&path))
        .bearer_auth(other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "not_found");

    // A signer handed a link by the integrator has no email to resend to.
    let api = app
        .create(&json!({
            "title": "t", "delivery": "api", "signers": [{"name": "No Email"}],
            "document": {"filename": "c.pdf", "content_base64": b64(ONE_PAGE)}
        }))
        .await;
    let api_path = format!(
        "/api/v1/signatures/{}/signers/{}/resend",
        api["id"].as_str().unwrap(),
        api["signers"][0]["id"].as_str().unwrap()
    );
    assert_eq!(
        error_of(app.post(&api_path).send().await.unwrap()).await.1,
        "invalid_state"
    );

    // Sequential: the second signer's turn has not come.
    let mut seq = email_body(json!([{"email": "anna@example.com"}, {"email": "bob@example.com"}]));
    seq["signing_order"] = json!("sequential");
    let s = app.create(&seq).await;
    let second = format!(
        "/api/v1/signatures/{}/signers/{}/resend",
        s["id"].as_str().unwrap(),
        s["signers"][1]["id"].as_str().unwrap()
    );
    let (status, code, _) = error_of(app.post(&second).send().await.unwrap()).await;
    assert_eq!((status.as_u16(), code.as_str()), (409, "invalid_state"));

    // Cancelled: links are invalidated, nothing to resend.
    app.post(&format!("/api/v1/signatures/{id}/cancel"))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(app.post(&path).send().await.unwrap()).await;
    assert_eq!((status.as_u16(), code.as_str()), (409, "invalid_state"));
    assert!(message.contains("cancelled"), "{message}");
}

#[tokio::test]
async fn cancelling_tells_the_invited_signers() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let v = app
        .create(&email_body(json!([
            {"email": "anna@example.com", "name": "Anna", "locale": "de"},
            {"email": "nobody@example.com", "name": "Nobody"},
        ])))
        .await;
    smtp.wait_for(2).await;
    let id = v["id"].as_str().unwrap();
    let res = app
        .post(&format!("/api/v1/signatures/{id}/cancel"))
        .json(&json!({"reason": "Falscher Betrag"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.service.run_due_jobs().await.unwrap(), 2);
    let messages = smtp.wait_for(4).await;
    assert_eq!(messages.len(), 4);
    let anna = messages
        .iter()
        .filter(|m| m.to == vec!["anna@example.com".to_string()])
        .nth(1)
        .unwrap();
    let text = anna.text();
    assert!(
        text.contains("zurückgezogen") && text.contains("Falscher Betrag"),
        "{text}"
    );
    assert!(!text.contains("/sign/"), "no link to a dead page");
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn resend_refuses_a_link_that_needs_no_code() {
    let app = TestApp::start().await;
    // `delivery: "api"`: the integrator hands out the links; they need no access code, even
    // for signers whose email address is known.
    let v = app.create(&seed_body()).await;
    let id = v["id"].as_str().unwrap().to_string();
    let signer = v["signers"][0]["id"].as_str().unwrap().to_string();
    let (status, code, message) = error_of(
        app.post(&format!("/api/v1/signatures/{id}/signers/{signer}/resend"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status.as_u16(), code.as_str()), (409, "invalid_state"));
    assert!(
        message.contains("delivery 'api'") && message.contains("sign_url"),
        "{message}"
    );
    assert!(app.service.mail.mailer.sent().is_empty(), "no email");
    let row = app
        .db
        .code_gate(signer.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.access_code_rotated_at, None, "nothing rotated");

    // The link still signs.
    let b = crate::signing::browser();
    let url = v["signers"][0]["sign_url"].as_str().unwrap();
    let (_, html) = crate::signing::page(&b, url).await;
    let csrf = crate::signing::csrf_of(&html);
    let (status, html) = crate::signing::post_form(
        &b,
        &format!("{url}/sign"),
        &[
            ("csrf", &csrf),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("You have signed"), "{html}");
}
