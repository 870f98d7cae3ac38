//! Issue 14: the same rows written by many requests at once, on SQLite and PostgreSQL
//! (`SIGNEUR_TEST_DATABASE_URL`): a small pool, settings written concurrently, the
//! access-code attempt limit under a burst of guesses, idempotency reservations taken over.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use signeur_service::{IdempotencyOutcome, ServiceError, StoredResponse};
use signeur_store::{Db, Tx};

use crate::signing::{browser, csrf_of, page, post_form};
use crate::smtp::SmtpSink;
use crate::support::*;

/// One signer invited by email (kept in memory unless the app has an SMTP server).
fn email_body(email: &str) -> Value {
    let mut body = seed_body();
    body["delivery"] = json!("email");
    body["signers"] = json!([{ "email": email, "name": "Anna Buyer" }]);
    body
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_string()
}

/// Runs one statement outside the service (the test's own reach under it).
async fn execute(db: &Db, sql: &str, id: Uuid) {
    match db {
        Db::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(id)
            .execute(&p.write)
            .await
            .map(|_| ()),
        Db::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap();
}

#[tokio::test]
async fn many_cancels_and_resends_on_a_pool_of_two_never_fail() {
    // Two connections for 64 concurrent requests that each hold a transaction: a use case
    // that read through the pool with its transaction open waited for a second connection
    // that never came (PostgreSQL: the acquire timeout, then 500).
    let app = TestApp::start_with_pool(2).await;
    let mut to_cancel = Vec::new();
    let mut to_resend = Vec::new();
    for i in 0..64 {
        let v = app.create(&email_body(&format!("s{i}@example.com"))).await;
        assert_eq!(v["status"], "sent");
        let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();
        let signer = v["signers"][0]["id"].as_str().unwrap().to_string();
        if i % 2 == 0 {
            to_cancel.push(id);
        } else {
            // As if the process had stopped between the create's commit and its "sent":
            // the resend then moves the request to `sent` itself.
            execute(
                &app.db,
                "UPDATE signature_requests SET status = 'pending', sent_at = NULL WHERE id = $1",
                id,
            )
            .await;
            to_resend.push((id, signer));
        }
    }
    let cancels = to_cancel.iter().map(|id| {
        app.post(&format!("/api/v1/signatures/{id}/cancel"))
            .json(&json!({"reason": "concurrency"}))
            .send()
    });
    let resends = to_resend.iter().map(|(id, signer)| {
        app.post(&format!("/api/v1/signatures/{id}/signers/{signer}/resend"))
            .send()
    });
    let (cancels, resends) = tokio::join!(
        futures::future::join_all(cancels),
        futures::future::join_all(resends)
    );
    for res in cancels.into_iter().chain(resends) {
        let res = res.unwrap();
        let status = res.status();
        assert_eq!(status, StatusCode::OK, "{}", res.text().await.unwrap());
    }
    for id in &to_cancel {
        let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
        assert_eq!(got["status"], "cancelled");
    }
    for (id, _) in &to_resend {
        let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
        assert_eq!(got["status"], "sent");
        let sent = got["audit_trail"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "signature_request.sent")
            .count();
        assert_eq!(sent, 2, "the create's and the resend's: {got}");
    }
    app.assert_reads_fresh().await;
}

/// Holds the organization's settings row (PostgreSQL: `FOR UPDATE`; SQLite: the one write
/// lock) until the returned transaction ends, so that concurrent writers queue behind it.
async fn hold_settings(app: &TestApp) -> Tx {
    let mut tx = app.db.begin().await.unwrap();
    if let Tx::Postgres(t) = &mut tx {
        sqlx::query("SELECT org_id FROM org_settings WHERE org_id = $1 FOR UPDATE")
            .bind(app.org_id)
            .fetch_one(&mut **t)
            .await
            .unwrap();
    }
    tx
}

/// Waits until `n` statements wait behind `holder` (PostgreSQL: its lock, directly or
/// behind another waiter; SQLite: the writer connection, which cannot be observed, so a
/// pause long enough for both requests to have read what they read first). False if they
/// never do.
async fn until_blocked(app: &TestApp, holder: &mut Tx, n: i64) -> bool {
    let Tx::Postgres(t) = holder else {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        return true;
    };
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut **t)
        .await
        .unwrap();
    let Db::Postgres(pool) = &app.db else {
        unreachable!()
    };
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "WITH RECURSIVE w(pid) AS ( \
               SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) \
               UNION SELECT a.pid FROM pg_stat_activity a JOIN w ON w.pid = ANY(pg_blocking_pids(a.pid))) \
             SELECT count(*) FROM w",
        )
        .bind(pid)
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting >= n {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

async fn stored_secret(app: &TestApp) -> Option<String> {
    let row = app.db.get_settings(app.org_id).await.unwrap()?;
    let plain = app
        .service
        .keys
        .decrypt("session-secret", &row.session_secret?)?;
    Some(String::from_utf8(plain).unwrap())
}

#[tokio::test]
async fn a_settings_patch_never_undoes_a_secret_rotation() {
    let app = TestApp::start().await;
    let first = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&app.key)
        .json(&json!({"allowed_return_urls": ["https://app.example.com/return"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);

    let mut holder = hold_settings(&app).await;
    let patch = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&app.key)
        .json(&json!({"allowed_frame_origins": ["https://portal.example.com"]}))
        .send();
    let rotate = app.post("/api/v1/settings/session-secret").send();
    let (patch, rotate) = (tokio::spawn(patch), tokio::spawn(rotate));
    let blocked = until_blocked(&app, &mut holder, 2).await;
    holder.commit().await.unwrap();
    assert!(blocked, "both requests reach their write");
    let (patch, rotate) = (
        patch.await.unwrap().unwrap(),
        rotate.await.unwrap().unwrap(),
    );
    assert_eq!(patch.status(), 200);
    assert_eq!(rotate.status(), 200);
    let secret = rotate.json::<Value>().await.unwrap()["session_secret"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(
        stored_secret(&app).await.as_deref(),
        Some(secret.as_str()),
        "the rotation stands"
    );
    let got = app.get_json("/api/v1/settings").await;
    assert_eq!(got["session_secret_set"], true);
    assert_eq!(
        got["allowed_frame_origins"],
        json!(["https://portal.example.com"])
    );
    assert_eq!(
        got["allowed_return_urls"],
        json!(["https://app.example.com/return"]),
        "a field the PATCH did not name stays"
    );
}

#[tokio::test]
async fn two_patches_of_different_settings_both_stick() {
    let app = TestApp::start().await;
    let secret = app
        .post("/api/v1/settings/session-secret")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["session_secret"]
        .as_str()
        .unwrap()
        .to_string();

    let mut holder = hold_settings(&app).await;
    let patch = |body: Value| {
        tokio::spawn(
            app.client
                .patch(app.url("/api/v1/settings"))
                .bearer_auth(&app.key)
                .json(&body)
                .send(),
        )
    };
    let a = patch(json!({"allowed_return_urls": ["https://app.example.com/return"]}));
    let b = patch(json!({"allowed_frame_origins": ["https://portal.example.com"]}));
    let blocked = until_blocked(&app, &mut holder, 2).await;
    holder.commit().await.unwrap();
    assert!(blocked, "both requests reach their write");
    assert_eq!(a.await.unwrap().unwrap().status(), 200);
    assert_eq!(b.await.unwrap().unwrap().status(), 200);

    let got = app.get_json("/api/v1/settings").await;
    assert_eq!(
        got["allowed_return_urls"],
        json!(["https://app.example.com/return"])
    );
    assert_eq!(
        got["allowed_frame_origins"],
        json!(["https://portal.example.com"])
    );
    assert_eq!(stored_secret(&app).await.as_deref(), Some(secret.as_str()));
}

/// An emailed link, its gate page's CSRF token in `browser`, and its access code.
async fn gated_link(
    app: &TestApp,
    smtp: &SmtpSink,
    b: &reqwest::Client,
) -> (String, String, String) {
    let v = app.create(&email_body("anna@example.com")).await;
    let url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let code = code_in(&smtp.wait_for(1).await[0].text());
    let (status, html) = page(b, &url).await;
    assert_eq!(status, 200);
    (url, csrf_of(&html), code)
}

fn wrong_code(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[tokio::test]
async fn fifty_simultaneous_wrong_codes_get_at_most_five_checks() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let b = browser();
    let (url, csrf, code) = gated_link(&app, &smtp, &b).await;
    let wrong = wrong_code(&code);
    let verify = format!("{url}/verify");
    let form = [("csrf", csrf.as_str()), ("code", wrong.as_str())];
    let guesses = (0..50).map(|_| post_form(&b, &verify, &form));
    let answers = futures::future::join_all(guesses).await;
    let wrong_answers = answers.iter().filter(|(s, _)| *s == 400).count();
    let locked_answers = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(wrong_answers + locked_answers, 50, "{answers:?}");
    assert_eq!(wrong_answers, 4, "the fifth wrong code locks");
    assert!(
        app.service.metrics.code_checks_total() <= 5,
        "{} guesses were checked against the code",
        app.service.metrics.code_checks_total()
    );
    let (status, _) = post_form(&b, &verify, &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(status, 429, "the right code waits out the lock too");
}

#[tokio::test]
async fn the_right_code_among_four_wrong_ones_still_opens_and_starts_the_count_again() {
    let smtp = SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    let b = browser();
    let (url, csrf, code) = gated_link(&app, &smtp, &b).await;
    let wrong = wrong_code(&code);
    let verify = format!("{url}/verify");
    let wrong_form = [("csrf", csrf.as_str()), ("code", wrong.as_str())];
    let right_form = [("csrf", csrf.as_str()), ("code", code.as_str())];
    let guesses = (0..4).map(|_| post_form(&b, &verify, &wrong_form));
    let right = post_form(&b, &verify, &right_form);
    let (answers, (status, html)) = tokio::join!(futures::future::join_all(guesses), right);
    assert_eq!(status, 200, "five tries include the right one: {html}");
    assert!(html.contains("name=\"full_name\""), "{html}");
    // Each wrong one is refused (the fifth try reserved may answer "locked" while the right
    // code is still being checked; the right code then starts the count again).
    assert!(
        answers.iter().all(|(s, _)| *s == 400 || *s == 429),
        "{answers:?}"
    );

    // A right code starts the count again: four wrong codes after it do not lock, and the
    // right code still works after them.
    let other = browser();
    let (_, html) = page(&other, &url).await;
    let csrf = csrf_of(&html);
    let (status, _) = post_form(&other, &verify, &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(status, 200);
    let other = browser();
    let (_, html) = page(&other, &url).await;
    let csrf = csrf_of(&html);
    for left in (1..=4).rev() {
        let (status, html) = post_form(&other, &verify, &[("csrf", &csrf), ("code", &wrong)]).await;
        assert_eq!(status, 400, "{html}");
        let expected = match left {
            1 => "You have one more try.".to_string(),
            n => format!("You have {n} more tries."),
        };
        assert!(html.contains(&expected), "{expected}: {html}");
    }
    let (status, _) = post_form(&other, &verify, &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(status, 200, "four wrong codes in a row do not lock");
}

#[tokio::test]
async fn a_taken_over_idempotency_reservation_is_not_overwritten_by_its_first_holder() {
    let app = TestApp::start().await;
    let s = &app.service;
    let (org, key, path) = (app.org_id, "slow-create", "/api/v1/signatures");
    let body = br#"{"title":"x"}"#;
    let response = |text: &str| StoredResponse {
        status: 201,
        content_type: Some("application/json".into()),
        body: text.as_bytes().to_vec(),
        replay_only_while: None,
    };
    let IdempotencyOutcome::Proceed(a) = s
        .begin_idempotent(org, key, "POST", path, body)
        .await
        .unwrap()
    else {
        panic!("A reserves the key")
    };
    // A is still running (a long SMTP budget) when its lease runs out: B takes over.
    app.advance(Duration::seconds(121));
    let IdempotencyOutcome::Proceed(b) = s
        .begin_idempotent(org, key, "POST", path, body)
        .await
        .unwrap()
    else {
        panic!("B takes the lapsed reservation over")
    };
    assert_ne!(a, b);
    // A finishes: its response must not become B's.
    s.finish_idempotent(org, key, &a, Some(&response("A")))
        .await
        .unwrap();
    assert!(
        matches!(
            s.begin_idempotent(org, key, "POST", path, body).await,
            Err(ServiceError::IdempotencyKeyInUse)
        ),
        "B is still in flight"
    );
    // A's release (a failed first request) must not free B's reservation either.
    s.finish_idempotent(org, key, &a, None).await.unwrap();
    assert!(
        matches!(
            s.begin_idempotent(org, key, "POST", path, body).await,
            Err(ServiceError::IdempotencyKeyInUse)
        ),
        "B is still in flight"
    );
    // B's finish is the one kept.
    s.finish_idempotent(org, key, &b, Some(&response("B")))
        .await
        .unwrap();
    match s
        .begin_idempotent(org, key, "POST", path, body)
        .await
        .unwrap()
    {
        IdempotencyOutcome::Replay(r) => assert_eq!(r.body, b"B"),
        other => panic!("expected B's replay, got {other:?}"),
    }
}
