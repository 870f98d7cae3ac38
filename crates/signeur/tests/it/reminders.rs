//! Reminders (issue 16) against the test SMTP server, with a moved clock: the default policy
//! (first after 3 days, every 3 days, at most 3), a request's own policy or none, only the
//! signer whose turn it is, none after signing, cancel or expiry, the settings field, and
//! `POST …/signers/{signer_id}/remind`.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::signing::{browser, csrf_of, page, post_form, sign_as};
use crate::smtp::{Received, SmtpSink};
use crate::support::*;

fn email_body(signers: Value) -> Value {
    let mut b = seed_body();
    b["delivery"] = json!("email");
    b["signers"] = signers;
    b
}

fn one_signer() -> Value {
    email_body(json!([{"email": "anna@example.com", "name": "Anna"}]))
}

/// The minutely jobs as the worker runs them, then every job they queued.
async fn tick(app: &TestApp) {
    app.service.schedule_minutely_jobs().await.unwrap();
    for _ in 0..10 {
        if app.service.run_due_jobs().await.unwrap() == 0 {
            return;
        }
    }
}

fn reminders_to(smtp: &SmtpSink, email: &str) -> Vec<Received> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.to == vec![email.to_string()])
        .filter(|m| {
            let s = m.header("Subject").unwrap_or_default();
            s.starts_with("Reminder") || s.starts_with("Muistutus")
        })
        .collect()
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_string()
}

async fn reminded_events(app: &TestApp, id: &str) -> Vec<Value> {
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let v = app
        .get_json("/api/v1/events?type=signer.reminded&limit=100")
        .await;
    assert!(got["id"].is_string());
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["signature_request_id"] == id)
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_default_policy_reminds_three_times_three_days_apart_and_rotates_nothing() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let v = app.create(&one_signer()).await;
    let id = v["id"].as_str().unwrap().to_string();
    let signer_id = v["signers"][0]["id"].as_str().unwrap().parse().unwrap();
    let invitation = smtp.wait_for(1).await[0].clone();
    let code = code_in(&invitation.text());

    app.advance(Duration::days(3) - Duration::minutes(1));
    tick(&app).await;
    assert_eq!(reminders_to(&smtp, "anna@example.com").len(), 0, "not yet");
    app.advance(Duration::minutes(2));
    tick(&app).await;
    tick(&app).await;
    let sent = reminders_to(&smtp, "anna@example.com");
    assert_eq!(sent.len(), 1, "the first after 3 days, once");
    let text = sent[0].text();
    assert!(
        text.contains(v["signers"][0]["sign_url"].as_str().unwrap()),
        "{text}"
    );
    assert!(
        app.service
            .verify_access_code(signer_id, &code)
            .await
            .unwrap(),
        "a reminder rotates nothing: the invitation's code still works"
    );
    let events = reminded_events(&app, &id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["reminder"], 1);
    assert_eq!(events[0]["data"]["signer_email"], "anna@example.com");

    for n in 2..=3 {
        app.advance(Duration::days(3));
        tick(&app).await;
        assert_eq!(reminders_to(&smtp, "anna@example.com").len(), n);
    }
    app.advance(Duration::days(3));
    tick(&app).await;
    app.advance(Duration::days(3));
    tick(&app).await;
    assert_eq!(
        reminders_to(&smtp, "anna@example.com").len(),
        3,
        "at most 3"
    );
    assert_eq!(reminded_events(&app, &id).await.len(), 3);
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn a_request_names_its_own_policy_or_none() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let mut own = email_body(json!([{"email": "own@example.com", "locale": "fi"}]));
    own["reminders"] = json!({"first_after_days": 1, "every_days": 2, "max": 2});
    app.create(&own).await;
    let mut none = email_body(json!([{"email": "none@example.com"}]));
    none["reminders"] = Value::Null;
    app.create(&none).await;
    smtp.wait_for(2).await;

    app.advance(Duration::days(1) + Duration::minutes(1));
    tick(&app).await;
    let fi = reminders_to(&smtp, "own@example.com");
    assert_eq!(fi.len(), 1);
    assert!(
        fi[0].header("Subject").unwrap().starts_with("Muistutus"),
        "in the signer's language"
    );
    app.advance(Duration::days(1));
    tick(&app).await;
    assert_eq!(reminders_to(&smtp, "own@example.com").len(), 1);
    app.advance(Duration::days(1));
    tick(&app).await;
    assert_eq!(reminders_to(&smtp, "own@example.com").len(), 2);
    app.advance(Duration::days(10));
    tick(&app).await;
    assert_eq!(reminders_to(&smtp, "own@example.com").len(), 2, "max 2");
    assert_eq!(
        reminders_to(&smtp, "none@example.com").len(),
        0,
        "null: none"
    );

    // Refusals name the field.
    for (reminders, field) in [
        (
            json!({"first_after_days": 0, "every_days": 3, "max": 3}),
            "reminders.first_after_days",
        ),
        (
            json!({"first_after_days": 3, "every_days": 1.5, "max": 3}),
            "reminders.every_days",
        ),
        (
            json!({"first_after_days": 3, "every_days": 3, "max": 11}),
            "reminders.max",
        ),
        (
            json!({"first_after_days": 3, "every_days": 3}),
            "reminders.max",
        ),
        (json!("weekly"), "reminders"),
    ] {
        let mut body = one_signer();
        body["reminders"] = reminders;
        let res = app
            .post("/api/v1/signatures")
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(res).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
        assert!(code == "invalid_field" || code == "missing_field", "{code}");
        assert!(message.contains(&format!("'{field}'")), "{message}");
    }
}

#[tokio::test]
async fn only_the_signer_whose_turn_it_is_and_none_after_signing() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let mut body = email_body(json!([
        {"email": "first@example.com", "name": "First"},
        {"email": "second@example.com", "name": "Second"},
    ]));
    body["signing_order"] = json!("sequential");
    let v = app.create(&body).await;
    let invitation = smtp.wait_for(1).await[0].clone();

    app.advance(Duration::days(3) + Duration::minutes(1));
    tick(&app).await;
    assert_eq!(reminders_to(&smtp, "first@example.com").len(), 1);
    assert_eq!(
        reminders_to(&smtp, "second@example.com").len(),
        0,
        "not their turn"
    );

    // The first signs: no more reminders for them; the second is invited now.
    let url0 = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let b = browser();
    let (_, html) = page(&b, &url0).await;
    let (status, _) = post_form(
        &b,
        &format!("{url0}/verify"),
        &[
            ("csrf", &csrf_of(&html)),
            ("code", &code_in(&invitation.text())),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = sign_as(&b, &url0, "First").await;
    assert_eq!(status, 200);
    tick(&app).await;
    app.advance(Duration::days(3) + Duration::minutes(1));
    tick(&app).await;
    assert_eq!(
        reminders_to(&smtp, "first@example.com").len(),
        1,
        "signed: none"
    );
    assert_eq!(
        reminders_to(&smtp, "second@example.com").len(),
        1,
        "their turn"
    );
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn none_after_cancel_or_expiry() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let cancelled = app.create(&one_signer()).await;
    let mut short = email_body(json!([{"email": "short@example.com"}]));
    short["expires_at"] = json!(signeur_core::time::format(
        app.clock.now() + Duration::days(2)
    ));
    app.create(&short).await;
    smtp.wait_for(2).await;
    let id = cancelled["id"].as_str().unwrap();
    let res = app
        .post(&format!("/api/v1/signatures/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.advance(Duration::days(4));
    tick(&app).await;
    assert_eq!(reminders_to(&smtp, "anna@example.com").len(), 0);
    assert_eq!(reminders_to(&smtp, "short@example.com").len(), 0);
}

#[tokio::test]
async fn settings_name_the_policy_of_new_requests_only() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let s = app.get_json("/api/v1/settings").await;
    assert_eq!(
        s["reminders"],
        json!({"first_after_days": 3, "every_days": 3, "max": 3}),
        "the default"
    );
    let before = app.create(&one_signer()).await;
    smtp.wait_for(1).await;

    let patch = |body: Value| {
        app.client
            .patch(app.url("/api/v1/settings"))
            .bearer_auth(&app.key)
            .json(&body)
            .send()
    };
    let res = patch(json!({"allowed_return_urls": ["https://app.example.com/return"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = patch(json!({"reminders": null})).await.unwrap();
    assert_eq!(res.status(), 200);
    let s: Value = res.json().await.unwrap();
    assert_eq!(s["reminders"], Value::Null);
    assert_eq!(
        s["allowed_return_urls"],
        json!(["https://app.example.com/return"]),
        "a PATCH changes only the fields it names"
    );
    let res = patch(json!({"reminders": {"first_after_days": 3, "every_days": 0, "max": 1}}))
        .await
        .unwrap();
    let (status, code, message) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_field")
    );
    assert!(message.contains("'reminders.every_days'"), "{message}");
    assert_eq!(
        app.get_json("/api/v1/settings").await["reminders"],
        Value::Null
    );

    let mut after = one_signer();
    after["signers"] = json!([{"email": "after@example.com"}]);
    app.create(&after).await;
    smtp.wait_for(2).await;
    app.advance(Duration::days(3) + Duration::minutes(1));
    tick(&app).await;
    assert_eq!(
        reminders_to(&smtp, "anna@example.com").len(),
        1,
        "the earlier request keeps the policy it was created with"
    );
    assert_eq!(reminders_to(&smtp, "after@example.com").len(), 0);
    assert!(before["id"].is_string());

    let res = patch(json!({"reminders": {"first_after_days": 1, "every_days": 1, "max": 1}}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let s = app.get_json("/api/v1/settings").await;
    assert_eq!(
        s["reminders"],
        json!({"first_after_days": 1, "every_days": 1, "max": 1})
    );
}

#[tokio::test]
async fn remind_sends_one_now_and_refuses_who_cannot_be_reminded() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let mut body = email_body(json!([
        {"email": "veikko@example.fi", "name": "Veikko", "locale": "fi"},
        {"email": "later@example.com", "name": "Later"},
    ]));
    body["signing_order"] = json!("sequential");
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let s0 = v["signers"][0]["id"].as_str().unwrap().to_string();
    let s1 = v["signers"][1]["id"].as_str().unwrap().to_string();
    let invitation = smtp.wait_for(1).await[0].clone();
    let remind = |signer: &str| {
        app.post(&format!("/api/v1/signatures/{id}/signers/{signer}/remind"))
            .send()
    };

    let res = remind(&s0).await.unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["signer_id"], s0.as_str());
    assert_eq!(r["email_sent"], true);
    assert_eq!(r["email_error"], Value::Null);
    assert!(is_wire_time(&r["reminded_at"]));
    let sent = reminders_to(&smtp, "veikko@example.fi");
    assert_eq!(sent.len(), 1, "one now, in Finnish");
    assert!(
        sent[0]
            .text()
            .contains(v["signers"][0]["sign_url"].as_str().unwrap())
    );
    let signer_id = s0.parse().unwrap();
    assert!(
        app.service
            .verify_access_code(signer_id, &code_in(&invitation.text()))
            .await
            .unwrap(),
        "nothing rotated"
    );
    let events = reminded_events(&app, &id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["reminder"], Value::Null);
    // The worker's copy of the email was withdrawn: nothing more goes out.
    app.advance(Duration::minutes(1));
    app.service.run_due_jobs().await.unwrap();
    assert_eq!(reminders_to(&smtp, "veikko@example.fi").len(), 1);

    // With an Idempotency-Key, a retried call replays the answer and sends nothing more.
    let keyed = || {
        app.post(&format!("/api/v1/signatures/{id}/signers/{s0}/remind"))
            .header("Idempotency-Key", "remind-once")
            .send()
    };
    let first = keyed().await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = keyed().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(reminders_to(&smtp, "veikko@example.fi").len(), 2);
    assert_eq!(reminded_events(&app, &id).await.len(), 2);

    let (status, code, message) = error_of(remind(&s1).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "invalid_state"),
        "{message}"
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, code, _) = error_of(remind(&unknown).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (other_org, other_key) = app.other_org().await;
    assert!(!other_org.is_nil());
    let res = app
        .client
        .post(app.url(&format!("/api/v1/signatures/{id}/signers/{s0}/remind")))
        .bearer_auth(other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // An api-delivery request: Signeur emails no one.
    let api = app.create(&seed_body()).await;
    let (aid, as0) = (
        api["id"].as_str().unwrap(),
        api["signers"][0]["id"].as_str().unwrap(),
    );
    let res = app
        .post(&format!("/api/v1/signatures/{aid}/signers/{as0}/remind"))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "invalid_state")
    );

    // Cancelled: no reminder.
    let res = app
        .post(&format!("/api/v1/signatures/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, code, message) = error_of(remind(&s0).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "invalid_state")
    );
    assert!(message.contains("cancelled"), "{message}");
    app.assert_reads_fresh().await;
}

/// `signer.reminded` is recorded when the SMTP server accepted the reminder, never for one
/// that did not go out: the signer signed after it was queued, or the server refused it.
#[tokio::test]
async fn a_reminder_is_recorded_only_when_it_went_out() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let signs = app.create(&one_signer()).await;
    let mut body = email_body(json!([{"email": "refused@example.com"}]));
    body["reminders"] = json!({"first_after_days": 4, "every_days": 1, "max": 1});
    let refused = app.create(&body).await;
    let invitation = smtp
        .wait_for(2)
        .await
        .into_iter()
        .find(|m| m.to == vec!["anna@example.com".to_string()])
        .unwrap();

    // Anna's reminder is queued, then she signs before the email job runs.
    app.advance(Duration::days(3) + Duration::minutes(1));
    assert_eq!(app.service.send_due_reminders().await.unwrap(), 1);
    let url = signs["signers"][0]["sign_url"]
        .as_str()
        .unwrap()
        .to_string();
    let b = browser();
    let (_, html) = page(&b, &url).await;
    let (status, _) = post_form(
        &b,
        &format!("{url}/verify"),
        &[
            ("csrf", &csrf_of(&html)),
            ("code", &code_in(&invitation.text())),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sign_as(&b, &url, "Anna").await.0, 200);
    tick(&app).await;
    assert_eq!(reminders_to(&smtp, "anna@example.com").len(), 0);
    let id = signs["id"].as_str().unwrap();
    assert_eq!(reminded_events(&app, id).await.len(), 0, "nothing went out");

    // The server now refuses the other signer for good: nothing recorded either.
    let addr = smtp.addr;
    smtp.stop();
    let smtp = SmtpSink::start_rejecting_on(addr, &["refused@example.com"]).await;
    app.advance(Duration::days(1));
    tick(&app).await;
    assert!(smtp.messages().is_empty());
    let id = refused["id"].as_str().unwrap();
    assert_eq!(reminded_events(&app, id).await.len(), 0, "refused");
    app.assert_reads_fresh().await;
}

/// A remind while the scheduled reminder's job waits sends one email, not two; while a
/// worker holds that job (it is sending it), the remind is refused and the job kept.
#[tokio::test]
async fn remind_and_a_waiting_reminder_job_send_one_email() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let v = app.create(&one_signer()).await;
    let id = v["id"].as_str().unwrap().to_string();
    let s0 = v["signers"][0]["id"].as_str().unwrap().to_string();
    smtp.wait_for(1).await;
    let remind = || {
        app.post(&format!("/api/v1/signatures/{id}/signers/{s0}/remind"))
            .send()
    };

    app.advance(Duration::days(3) + Duration::minutes(1));
    assert_eq!(app.service.send_due_reminders().await.unwrap(), 1);
    // A worker claims the reminder job and is sending it: the remind is refused, the job
    // stays (the worker completes it).
    let now = app.clock.now();
    let claimed = app
        .db
        .claim_due_jobs(
            signeur_core::JobKind::SendNotice,
            now,
            now + Duration::seconds(30),
            1,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let (status, code, message) = error_of(remind().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "invalid_state"),
        "{message}"
    );
    assert_eq!(
        app.db
            .pending_jobs(signeur_core::JobKind::SendNotice)
            .await
            .unwrap()
            .len(),
        1,
        "a leased job is not withdrawn"
    );
    assert!(reminders_to(&smtp, "anna@example.com").is_empty());

    // The lease runs out (its worker died): the job waits again; a remind now sends the one
    // email and withdraws the job.
    app.advance(Duration::seconds(31));
    let res = remind().await.unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["email_sent"], true);
    app.advance(Duration::minutes(1));
    tick(&app).await;
    assert_eq!(
        reminders_to(&smtp, "anna@example.com").len(),
        1,
        "one email"
    );
    let events = reminded_events(&app, &id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["reminder"], Value::Null);
    app.assert_reads_fresh().await;
}

/// A reminder schedule that cannot be handled (here a trigger refuses its update) is
/// logged and counted, and the reminders behind it still go out.
#[tokio::test]
async fn a_reminder_that_fails_does_not_stop_the_others() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let mut first = email_body(json!([{"email": "poison@example.com"}]));
    first["title"] = json!("poison");
    first["reminders"] = json!({"first_after_days": 1, "every_days": 1, "max": 1});
    app.create(&first).await;
    app.create(&one_signer()).await;
    smtp.wait_for(2).await;
    let refuse = match app.db {
        signeur_store::Db::Sqlite(_) => {
            "CREATE TRIGGER poison BEFORE UPDATE ON signer_reminders \
             WHEN (SELECT title FROM signature_requests WHERE id = NEW.request_id) = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
        signeur_store::Db::Postgres(_) => {
            "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
             IF (SELECT title FROM signature_requests WHERE id = NEW.request_id) = 'poison' THEN \
             RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER poison BEFORE UPDATE ON signer_reminders \
             FOR EACH ROW EXECUTE FUNCTION poison();"
        }
    };
    crate::queue::execute(&app.db, refuse).await;
    app.advance(Duration::days(3) + Duration::minutes(1));

    assert_eq!(app.service.send_due_reminders().await.unwrap(), 1);
    assert_eq!(crate::expiry::row_failures(&app, "send_reminders").await, 1);
    app.service.run_due_jobs().await.unwrap();
    assert_eq!(reminders_to(&smtp, "anna@example.com").len(), 1);
    assert_eq!(reminders_to(&smtp, "poison@example.com").len(), 0);
}

/// A settings PATCH applies whole or not at all: when its second write fails (here a
/// trigger refuses the lists), the reminders it named are not left changed behind a 500.
#[tokio::test]
async fn a_settings_patch_that_fails_changes_nothing() {
    let app = TestApp::start().await;
    let patch = |body: Value| {
        app.client
            .patch(app.url("/api/v1/settings"))
            .bearer_auth(&app.key)
            .json(&body)
            .send()
    };
    let res = patch(json!({"allowed_return_urls": ["https://app.example.com/return"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let refuse = match app.db {
        signeur_store::Db::Sqlite(_) => {
            "CREATE TRIGGER poison BEFORE UPDATE ON org_settings \
             WHEN NEW.allowed_return_urls LIKE '%poison%' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
        signeur_store::Db::Postgres(_) => {
            "CREATE FUNCTION poison() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER poison BEFORE UPDATE ON org_settings FOR EACH ROW \
             WHEN (NEW.allowed_return_urls LIKE '%poison%') EXECUTE FUNCTION poison();"
        }
    };
    crate::queue::execute(&app.db, refuse).await;
    let res = patch(json!({
        "reminders": null,
        "allowed_return_urls": ["https://poison.example.com/return"],
    }))
    .await
    .unwrap();
    assert_eq!(res.status(), 500);
    let s = app.get_json("/api/v1/settings").await;
    assert_eq!(
        s["reminders"],
        json!({"first_after_days": 3, "every_days": 3, "max": 3}),
        "the reminders of the failed PATCH were not kept"
    );
    assert_eq!(
        s["allowed_return_urls"],
        json!(["https://app.example.com/return"])
    );
}
