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
    let got: Value = app
        .get(&format!("/api/v1/signatures/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
        app.service
            .db
            .pending_jobs("send_invitation")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(smtp.messages().len(), 1);
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
        app.service
            .db
            .pending_jobs("send_invitation")
            .await
            .unwrap()
            .len(),
        1
    );

    // Still down when the worker first tries: rescheduled with backoff, nothing lost.
    app.advance(Duration::seconds(30));
    app.service.run_due_jobs().await.unwrap();
    let jobs = app
        .service
        .db
        .pending_jobs("send_invitation")
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
        .get(&format!("/api/v1/signatures/{}", v["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["signers"][0]["status"], "sent");
    assert_eq!(got["signers"][0]["email_sent"], true);
    assert!(
        app.service
            .db
            .pending_jobs("send_invitation")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn api_delivery_sends_no_email() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    app.create(&seed_body()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty());
}
