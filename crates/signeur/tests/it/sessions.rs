//! Embedded signing sessions, organization settings and link rotation.

use chrono::Duration;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::*;

fn no_redirects() -> reqwest::Client {
    http_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').unwrap().1;
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn patch_settings(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&app.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn new_session(app: &TestApp, id: &str, signer: &str, body: Value) -> (StatusCode, Value) {
    let res = app
        .post(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/sessions"
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

#[tokio::test]
async fn settings_validate_urls() {
    let app = TestApp::start().await;
    let v = app.get_json("/api/v1/settings").await;
    assert_eq!(v["allowed_return_urls"], json!([]));
    assert_eq!(v["session_secret_set"], false);
    for (body, code) in [
        (
            json!({"allowed_return_urls": ["http://app.example.com/r"]}),
            "invalid_url",
        ),
        (
            json!({"allowed_return_urls": ["https://app.example.com/r?x=1"]}),
            "invalid_url",
        ),
        (json!({"allowed_return_urls": ["not a url"]}), "invalid_url"),
        (
            json!({"allowed_return_urls": "https://a.example"}),
            "invalid_field",
        ),
        (
            json!({"allowed_frame_origins": ["https://a.example/path"]}),
            "invalid_url",
        ),
        (json!({"colour": "red"}), "invalid_field"),
    ] {
        let (status, err) = patch_settings(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(err["error"], code, "{body}: {err}");
    }
    let (status, v) = patch_settings(
        &app,
        json!({"allowed_return_urls": ["https://app.example.com/return", "http://localhost:3000/cb"],
               "allowed_frame_origins": ["https://app.example.com"]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["allowed_return_urls"][1], "http://localhost:3000/cb");
    assert_eq!(
        v["allowed_frame_origins"],
        json!(["https://app.example.com"])
    );
    let (other_org, other_key) = app.other_org().await;
    let _ = other_org;
    let res = app
        .client
        .get(app.url("/api/v1/settings"))
        .bearer_auth(other_key)
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["allowed_return_urls"],
        json!([]),
        "settings are per organization"
    );
}

#[tokio::test]
async fn an_embedded_session_signs_and_returns_with_a_signed_result() {
    let app = TestApp::start().await;
    // The integrator's return page lives on 127.0.0.1 (http allowed for loopback).
    let return_url = "http://127.0.0.1:9/return";
    patch_settings(
        &app,
        json!({"allowed_return_urls": ["http://127.0.0.1:9/return"]}),
    )
    .await;
    let res = app
        .post("/api/v1/settings/session-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let secret = res.json::<Value>().await.unwrap()["session_secret"]
        .as_str()
        .unwrap()
        .to_string();

    let mut body = seed_body();
    body["delivery"] = json!("email");
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let signer = v["signers"][0]["id"].as_str().unwrap().to_string();

    for (bad, code) in [
        (
            json!({"return_url": "https://evil.example/return"}),
            "return_url_not_allowed",
        ),
        (
            json!({"return_url": "http://127.0.0.1:9/returnx"}),
            "return_url_not_allowed",
        ),
        (
            json!({"return_url": "http://127.0.0.1:10/return"}),
            "return_url_not_allowed",
        ),
        (json!({}), "missing_field"),
        (json!({"return_url": 5}), "invalid_field"),
    ] {
        let (status, err) = new_session(&app, &id, &signer, bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(err["error"], code, "{bad}");
    }

    let (status, s) = new_session(
        &app,
        &id,
        &signer,
        json!({"return_url": format!("{return_url}/done"), "state": "order 42 & more"}),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let session_id = s["signing_session_id"].as_str().unwrap().to_string();
    assert!(is_wire_time(&s["expires_at"]));
    let redirect = s["redirect_url"].as_str().unwrap().to_string();
    assert!(redirect.starts_with(&format!("{}/embed/", app.base)));

    // The token opens the signing page without the access code.
    let b = no_redirects();
    let res = b.get(&redirect).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let page_url = format!("{}{}", app.base, location(&res));
    let res = b.get(&page_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"full_name\""), "no code asked: {html}");
    assert!(html.contains("Cancel and go back"));
    // One-time: a second use goes back with token_expired.
    let res = no_redirects().get(&redirect).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let q = query_of(&location(&res));
    assert!(q.contains(&("result".into(), "failed".into())));
    assert!(q.contains(&("failure_code".into(), "token_expired".into())));

    let csrf = csrf_of(&html);
    let res = b
        .post(format!("{page_url}/sign"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert!(back.starts_with(&format!("{return_url}/done?")), "{back}");
    let q = query_of(&back);
    let names: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "state",
            "signing_session_id",
            "result",
            "issued_at",
            "signature"
        ]
    );
    assert_eq!(q[0].1, "order 42 & more");
    assert_eq!(q[1].1, session_id);
    assert_eq!(q[2].1, "success");
    assert_eq!(q[3].1, app.clock.now().timestamp().to_string());
    // The signature: HMAC-SHA256 over the query before `&signature=`.
    let query = back.split_once('?').unwrap().1;
    let signed_part = query.split("&signature=").next().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed_part.as_bytes());
    assert_eq!(q[4].1, hex::encode(mac.finalize().into_bytes()));

    let polled = app
        .get_json(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/sessions/{session_id}"
        ))
        .await;
    assert_eq!(polled["status"], "completed");
    assert_eq!(polled["result"], "success");
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let completed: Vec<&Value> = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "signing_session.completed")
        .collect();
    assert_eq!(completed.len(), 1, "exactly one completion");
    assert_eq!(completed[0]["data"]["result"], "success");
    let signers = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    assert_eq!(signers["data"][0]["status"], "signed");
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn sessions_cancel_expire_and_replay() {
    let app = TestApp::start().await;
    patch_settings(
        &app,
        json!({"allowed_return_urls": ["https://app.example.com/r"]}),
    )
    .await;
    let v = app.create(&seed_body()).await;
    let id = v["id"].as_str().unwrap().to_string();
    let signer = v["signers"][0]["id"].as_str().unwrap().to_string();
    let body = json!({"return_url": "https://app.example.com/r", "state": "s1"});

    // The same Idempotency-Key gives the same session while it is usable …
    let send = |key: &'static str| {
        app.post(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/sessions"
        ))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
    };
    let first: Value = send("k1").await.unwrap().json().await.unwrap();
    let res = send("k1").await.unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let again: Value = res.json().await.unwrap();
    assert_eq!(first, again);

    // … Cancel sends the browser back with `cancelled`.
    let b = no_redirects();
    let res = b
        .get(first["redirect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let page_url = format!("{}{}", app.base, location(&res));
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    let res = b
        .post(format!("{page_url}/cancel"))
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let q = query_of(&location(&res));
    assert!(q.contains(&("result".into(), "cancelled".into())));
    assert!(
        !q.iter().any(|(k, _)| k == "signature"),
        "no secret set, no signature"
    );

    // … and once used, the same key creates a new session.
    let res = send("k1").await.unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let third: Value = res.json().await.unwrap();
    assert_ne!(third["signing_session_id"], first["signing_session_id"]);

    // An unused session expires with exactly one failed/token_expired completion.
    app.advance(Duration::minutes(16));
    assert_eq!(app.service.expire_sessions().await.unwrap(), 1);
    assert_eq!(app.service.expire_sessions().await.unwrap(), 0);
    let sid = third["signing_session_id"].as_str().unwrap();
    let polled = app
        .get_json(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/sessions/{sid}"
        ))
        .await;
    assert_eq!(polled["result"], "failed");
    assert_eq!(polled["failure_code"], "token_expired");
    let res = no_redirects()
        .get(third["redirect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).contains("failure_code=token_expired"));
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let completions = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "signing_session.completed")
        .count();
    assert_eq!(completions, 2, "one per session");

    // A session of a cancelled request returns session_not_found; unknown tokens are 404.
    let (_, s) = new_session(&app, &id, &signer, body.clone()).await;
    app.post(&format!("/api/v1/signatures/{id}/cancel"))
        .send()
        .await
        .unwrap();
    let res = no_redirects()
        .get(s["redirect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(location(&res).contains("failure_code=session_not_found"));
    let res = no_redirects()
        .get(app.url("/embed/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let (status, err) = new_session(&app, &id, &signer, body).await;
    assert_eq!(status, 409, "{err}");
}

#[tokio::test]
async fn rotating_a_link_kills_the_old_one() {
    let app = TestApp::start().await;
    let v = app.create(&seed_body()).await;
    let id = v["id"].as_str().unwrap();
    let signer = v["signers"][0]["id"].as_str().unwrap();
    let old = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let res = app
        .post(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/rotate-link"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    let new = r["sign_url"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let res = http_client()
        .get(format!("{old}?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("replaced by a newer one")
    );
    assert_eq!(http_client().get(&new).send().await.unwrap().status(), 200);
    let signers = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    assert_eq!(signers["data"][0]["sign_url"], new.as_str());
    let (other_org, other_key) = app.other_org().await;
    let _ = other_org;
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/rotate-link"
        )))
        .bearer_auth(other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.assert_reads_fresh().await;
}

/// The `signeur_session` Set-Cookie headers of a response.
fn session_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .filter(|c| c.starts_with("signeur_session="))
        .collect()
}

/// An email-delivery request (its links are gated by the access code) whose organization
/// allows `http://127.0.0.1:9/return`: (request id, signer id).
async fn gated_request(app: &TestApp) -> (String, String) {
    patch_settings(
        app,
        json!({"allowed_return_urls": ["http://127.0.0.1:9/return"]}),
    )
    .await;
    let mut body = seed_body();
    body["delivery"] = json!("email");
    let v = app.create(&body).await;
    (
        v["id"].as_str().unwrap().to_string(),
        v["signers"][0]["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_cancelled_embedded_session_leaves_no_way_to_sign() {
    let app = TestApp::start().await;
    let (id, signer) = gated_request(&app).await;
    let (_, s) = new_session(
        &app,
        &id,
        &signer,
        json!({"return_url": "http://127.0.0.1:9/return", "state": "s"}),
    )
    .await;
    let b = no_redirects();
    let res = b
        .get(s["redirect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let page_url = format!("{}{}", app.base, location(&res));
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("name=\"full_name\""),
        "in the session: {html}"
    );
    let csrf = csrf_of(&html);
    let res = b
        .post(format!("{page_url}/cancel"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).contains("result=cancelled"));
    let cleared = session_cookies(&res);

    // The integrator was told `cancelled`: a signature the browser posts with the cookie it
    // kept is refused, and the link is back at the access-code gate.
    let res = b
        .post(format!("{page_url}/sign"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let row = app
        .db
        .get_signer(id.parse().unwrap(), signer.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status, row.verification_method),
        (signeur_core::SignerStatus::Opened, None),
        "no signature after the session ended"
    );
    let res = b.get(&page_url).send().await.unwrap();
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Access code") && !html.contains("name=\"full_name\""),
        "the ended session admits no one: {html}"
    );
    // The way back also clears the browser's signer cookie.
    assert!(
        cleared.iter().any(|c| c.contains("Max-Age=0")),
        "the way back clears the signer cookie: {cleared:?}"
    );
    let polled = app
        .get_json(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/sessions/{}",
            s["signing_session_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(polled["result"], "cancelled");
    app.assert_reads_fresh().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_loser_of_the_open_race_leaves_the_winners_session_alone() {
    let app = TestApp::start().await;
    let (id, signer) = gated_request(&app).await;
    let (_, s) = new_session(
        &app,
        &id,
        &signer,
        json!({"return_url": "http://127.0.0.1:9/return", "state": "s"}),
    )
    .await;
    let redirect = s["redirect_url"].as_str().unwrap().to_string();
    let session_id = s["signing_session_id"].as_str().unwrap().to_string();

    // Several browsers open the one-time URL at once: one wins, the others go back. Their
    // connections are opened first, so that the opens arrive together.
    let browsers: Vec<reqwest::Client> = (0..16).map(|_| no_redirects()).collect();
    for b in &browsers {
        b.get(app.url("/healthz")).send().await.unwrap();
    }
    let answers = futures::future::join_all(browsers.iter().map(|b| b.get(&redirect).send())).await;
    let mut winner = None;
    for (b, res) in browsers.iter().zip(answers) {
        let res = res.unwrap();
        assert_eq!(res.status(), 303);
        let to = location(&res);
        if to.starts_with("/sign/") {
            assert!(winner.is_none(), "one browser wins");
            winner = Some((b, format!("{}{to}", app.base)));
        } else {
            assert!(to.contains("failure_code=token_expired"), "{to}");
            assert!(session_cookies(&res).is_empty(), "a loser gets no cookie");
        }
    }
    let (b, page_url) = winner.expect("one browser wins");
    let polled = app
        .get_json(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/sessions/{session_id}"
        ))
        .await;
    assert_eq!(
        polled["status"], "opened",
        "the losers did not complete the winner's session: {polled}"
    );

    // The winner signs in the session: `success`, recorded as a session signature.
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    let res = b
        .post(format!("{page_url}/sign"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).contains("result=success"),
        "{}",
        location(&res)
    );
    let row = app
        .db
        .get_signer(id.parse().unwrap(), signer.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.verification_method,
        Some(signeur_core::VerificationMethod::Session)
    );
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let completed: Vec<&Value> = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "signing_session.completed")
        .collect();
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["data"]["result"], "success");
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn a_signer_cookie_lasts_no_longer_than_the_request() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    let expires = app.clock.now() + Duration::minutes(30);
    body["expires_at"] = json!(expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let v = app.create(&body).await;
    let url = v["signers"][0]["sign_url"].as_str().unwrap();
    let res = no_redirects().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cookies = session_cookies(&res);
    let max_age: i64 = cookies
        .iter()
        .find_map(|c| c.split("Max-Age=").nth(1))
        .and_then(|rest| rest.split(';').next())
        .expect("a session cookie with Max-Age")
        .parse()
        .unwrap();
    assert!(
        (1..=30 * 60).contains(&max_age),
        "the cookie ends with the request: {cookies:?}"
    );
}

/// Verifies a return URL's `signature` as the README tells integrators to: HMAC-SHA256 of
/// everything after `?` and before the last `&signature=`.
fn signature_verifies(url: &str, secret: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap();
    let Some((signed, sig)) = query.rsplit_once("&signature=") else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    hex::decode(sig).is_ok_and(|s| mac.verify_slice(&s).is_ok())
}

#[tokio::test]
async fn the_redirect_signature_covers_the_whole_query_and_its_time() {
    let app = TestApp::start().await;
    let (id, signer) = gated_request(&app).await;
    let res = app
        .post("/api/v1/settings/session-secret")
        .send()
        .await
        .unwrap();
    let secret = res.json::<Value>().await.unwrap()["session_secret"]
        .as_str()
        .unwrap()
        .to_string();
    // The integrator's own return URL carries a query of its own.
    let (status, s) = new_session(
        &app,
        &id,
        &signer,
        json!({"return_url": "http://127.0.0.1:9/return/done?tenant=acme&next=%2Fhome", "state": "st 1"}),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let b = no_redirects();
    let res = b
        .get(s["redirect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let page_url = format!("{}{}", app.base, location(&res));
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    let res = b
        .post(format!("{page_url}/cancel"))
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    let back = location(&res);
    assert!(
        back.starts_with("http://127.0.0.1:9/return/done?tenant=acme&next=%2Fhome&state=st+1&"),
        "{back}"
    );
    let q = query_of(&back);
    let names: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "tenant",
            "next",
            "state",
            "signing_session_id",
            "result",
            "issued_at",
            "signature"
        ]
    );
    assert_eq!(q[5].1, app.clock.now().timestamp().to_string());
    assert!(
        signature_verifies(&back, &secret),
        "the signature covers the whole query: {back}"
    );

    // Changing any parameter, the integrator's own included, breaks it.
    for (name, value) in &q[..6] {
        let tampered: String = {
            let mut t = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &q {
                if k == name {
                    t.append_pair(k, &format!("{value}x"));
                } else {
                    t.append_pair(k, v);
                }
            }
            t.finish()
        };
        let url = format!("http://127.0.0.1:9/return/done?{tampered}");
        assert!(!signature_verifies(&url, &secret), "{name} changed: {url}");
    }
    // Dropping the integrator's own parameter breaks it too.
    let dropped = back.replacen("tenant=acme&", "", 1);
    assert!(!signature_verifies(&dropped, &secret), "{dropped}");
}
