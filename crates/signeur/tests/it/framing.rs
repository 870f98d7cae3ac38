//! Embedded signing inside an integrator's iframe: every response of an embedded session
//! (the one-time URL's redirect, the pages, their images and documents, every form's answer
//! and redirect) may be framed by exactly the organization's `allowed_frame_origins`, its
//! cookies are sent in a cross-site frame, and its forms may end on the return URL. Pages
//! outside an embedded session stay unframable, and every POST still needs the CSRF token.
//! (The browser side of the same story is `e2e/signing.test.mjs`.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// The integrator's site: it frames the session and is where the signer comes back.
const HOST: &str = "http://localhost:7000";
const OTHER_ALLOWED: &str = "https://app.example.com";
const RETURN_URL: &str = "http://localhost:7000/return";

fn browser() -> reqwest::Client {
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

fn result_of(url: &str) -> String {
    let q = url.split_once('?').unwrap().1;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "result")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The sources of one CSP directive (None: the directive is absent).
fn directive(res: &reqwest::Response, name: &str) -> Option<Vec<String>> {
    let csp = res
        .headers()
        .get("content-security-policy")?
        .to_str()
        .ok()?;
    csp.split(';').map(str::trim).find_map(|d| {
        let mut words = d.split_whitespace();
        (words.next() == Some(name)).then(|| words.map(str::to_string).collect())
    })
}

/// Framable by exactly `origins`: `frame-ancestors` lists them and nothing else, and no
/// `X-Frame-Options` (which cannot name an allowlist and would override it).
#[track_caller]
fn assert_framable_by(res: &reqwest::Response, origins: &[&str], what: &str) {
    let mut got = directive(res, "frame-ancestors")
        .unwrap_or_else(|| panic!("{what}: no frame-ancestors in {:?}", res.headers()));
    got.sort();
    let mut want: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{what}: frame-ancestors");
    assert!(
        res.headers().get("x-frame-options").is_none(),
        "{what}: X-Frame-Options on a framable response: {:?}",
        res.headers().get("x-frame-options")
    );
}

#[track_caller]
fn assert_unframable(res: &reqwest::Response, what: &str) {
    assert_eq!(
        directive(res, "frame-ancestors"),
        Some(vec!["'none'".to_string()]),
        "{what}: frame-ancestors"
    );
    assert_eq!(
        res.headers()
            .get("x-frame-options")
            .map(|v| v.to_str().unwrap()),
        Some("DENY"),
        "{what}: X-Frame-Options"
    );
}

/// The `Set-Cookie` header that sets `name`.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// Sent in a cross-site frame: `SameSite=None` (which browsers accept only with `Secure`),
/// partitioned by the top-level site (CHIPS: still sent where third-party cookies are
/// blocked), and never readable by scripts.
#[track_caller]
fn assert_cross_site(cookie: &str) {
    let attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for want in ["samesite=none", "secure", "partitioned", "httponly"] {
        assert!(
            attrs.iter().any(|a| a == want),
            "{want} missing in: {cookie}"
        );
    }
}

#[track_caller]
fn assert_lax(cookie: &str) {
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Partitioned"), "{cookie}");
}

async fn patch_settings(app: &TestApp, body: Value) {
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&app.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn allow_framing(app: &TestApp) {
    patch_settings(
        app,
        json!({"allowed_return_urls": [RETURN_URL],
               "allowed_frame_origins": [HOST, OTHER_ALLOWED]}),
    )
    .await;
}

/// A request for an emailed signer (whose link alone asks for the access code) and a
/// session for them: (request id, signer id, the session's `redirect_url`).
async fn session(app: &TestApp) -> (String, String, String) {
    let mut body = seed_body();
    body["delivery"] = json!("email");
    let v = app.create(&body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let signer = v["signers"][0]["id"].as_str().unwrap().to_string();
    let res = app
        .post(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/sessions"
        ))
        .json(&json!({"return_url": format!("{RETURN_URL}/done"), "state": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let s: Value = res.json().await.unwrap();
    (id, signer, s["redirect_url"].as_str().unwrap().to_string())
}

/// Opens `redirect_url` in `b`: the signing page's URL and HTML.
async fn open(app: &TestApp, b: &reqwest::Client, redirect: &str) -> (String, String) {
    let res = b.get(redirect).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let page = app.url(&location(&res));
    let res = b.get(&page).send().await.unwrap();
    assert_eq!(res.status(), 200);
    (page, res.text().await.unwrap())
}

#[tokio::test]
async fn the_one_time_url_redirect_is_framable_by_the_allowed_origins() {
    let app = TestApp::start().await;
    allow_framing(&app).await;
    let (_, _, redirect) = session(&app).await;
    let b = browser();
    let res = b.get(&redirect).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_framable_by(&res, &[HOST, OTHER_ALLOWED], "the one-time URL's 303");
    // Spent: back to the integrator (failed, token_expired), inside the same frame.
    let res = browser().get(&redirect).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(result_of(&location(&res)), "failed");
    assert_framable_by(&res, &[HOST, OTHER_ALLOWED], "a spent token's 303");
}

#[tokio::test]
async fn embedded_cookies_are_sent_in_a_cross_site_frame() {
    let app = TestApp::start().await;
    allow_framing(&app).await;
    let (_, _, redirect) = session(&app).await;
    let b = browser();
    let res = b.get(&redirect).send().await.unwrap();
    for name in ["signeur_embed", "signeur_session"] {
        let c = set_cookie(&res, name).unwrap_or_else(|| panic!("{name} is set"));
        assert_cross_site(&c);
    }
    let res = b.get(app.url(&location(&res))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csrf = set_cookie(&res, "signeur_csrf").expect("the CSRF cookie is set");
    assert_cross_site(&csrf);
}

#[tokio::test]
async fn the_decline_page_is_framable_and_its_form_may_end_on_the_return_url() {
    let app = TestApp::start().await;
    allow_framing(&app).await;
    let (_, _, redirect) = session(&app).await;
    let b = browser();
    let (page, _) = open(&app, &b, &redirect).await;
    let res = b
        .get(format!("{page}/decline?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_framable_by(&res, &[HOST, OTHER_ALLOWED], "the decline form");
    let form_action = directive(&res, "form-action").expect("form-action");
    assert!(
        form_action.contains(&"'self'".to_string()) && form_action.contains(&HOST.to_string()),
        "the decline form posts to self and its redirect goes to the return URL's origin: {form_action:?}"
    );
    let html = res.text().await.unwrap();
    let res = b
        .post(format!("{page}/decline"))
        .form(&[("csrf", csrf_of(&html).as_str()), ("reason", "No")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with(&format!("{RETURN_URL}/done?")));
    assert_eq!(result_of(&location(&res)), "cancelled");
    assert_framable_by(&res, &[HOST, OTHER_ALLOWED], "the decline's redirect");
}

#[tokio::test]
async fn every_response_of_an_embedded_session_is_framable() {
    let app = TestApp::start().await;
    allow_framing(&app).await;
    let framable = [HOST, OTHER_ALLOWED];

    // Sign: the page, its images and document, a refused form, a CSRF failure, the redirect.
    let (_, _, redirect) = session(&app).await;
    let b = browser();
    let (page, html) = open(&app, &b, &redirect).await;
    let csrf = csrf_of(&html);
    let res = b.get(format!("{page}?lang=fi")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_framable_by(&res, &framable, "the signing page");
    assert!(
        directive(&res, "form-action")
            .unwrap()
            .contains(&HOST.to_string()),
        "the signing form may end on the return URL"
    );
    let res = b.get(format!("{page}/page/1")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_framable_by(&res, &framable, "a page image");
    let res = b.get(format!("{page}/document.pdf")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_framable_by(&res, &framable, "the document");
    let res = b
        .post(format!("{page}/sign"))
        .form(&[("csrf", csrf.as_str()), ("full_name", "Anna Buyer")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no consent");
    assert_framable_by(&res, &framable, "a refused signing form");
    let res = b
        .post(format!("{page}/sign"))
        .form(&[
            ("csrf", "forged"),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_framable_by(&res, &framable, "a CSRF failure");
    let res = b
        .post(format!("{page}/sign"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("full_name", "Anna Buyer"),
            ("consent", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(result_of(&location(&res)), "success");
    assert_framable_by(&res, &framable, "the signature's redirect");
    // Back in the frame afterwards (the browser's Back button): the signed page.
    let res = b.get(&page).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_framable_by(&res, &framable, "the signed page");

    // Cancel.
    let (_, _, redirect) = session(&app).await;
    let b = browser();
    let (page, html) = open(&app, &b, &redirect).await;
    let res = b
        .post(format!("{page}/cancel"))
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(result_of(&location(&res)), "cancelled");
    assert_framable_by(&res, &framable, "the Cancel button's redirect");
}

#[tokio::test]
async fn pages_outside_an_embedded_session_stay_unframable() {
    let app = TestApp::start().await;
    allow_framing(&app).await;
    let (id, _, redirect) = session(&app).await;

    // The same signer's emailed link, in a browser that is in no session.
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    let sign_url = got["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let res = browser().get(&sign_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_unframable(&res, "the access-code gate of an emailed link");
    assert_lax(&set_cookie(&res, "signeur_csrf").unwrap());

    // An embed cookie that we did not issue frames nothing.
    let forged = http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = forged
        .get(&sign_url)
        .header(
            "cookie",
            "signeur_embed=00000000-0000-4000-8000-000000000001.00",
        )
        .send()
        .await
        .unwrap();
    assert_unframable(&res, "a forged embed cookie");

    // An api-delivery link (its own credential): not framable, Lax cookies.
    let v = app.create(&seed_body()).await;
    let api_url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let res = browser().get(&api_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_unframable(&res, "an api-delivery link");
    assert_lax(&set_cookie(&res, "signeur_session").unwrap());

    // Unknown one-time token.
    let res = browser()
        .get(app.url("/embed/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_unframable(&res, "an unknown one-time URL");

    // The session's browser still frames only for its own link.
    let b = browser();
    let (_, _) = open(&app, &b, &redirect).await;
    let res = b.get(&api_url).send().await.unwrap();
    assert_unframable(&res, "another signer's link in the session's browser");

    // An organization without allowed_frame_origins: its embedded flow is not framable and
    // keeps Lax cookies (a top-level redirect needs nothing more).
    patch_settings(&app, json!({"allowed_frame_origins": []})).await;
    let (_, _, redirect) = session(&app).await;
    let b = browser();
    let res = b.get(&redirect).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_unframable(&res, "the one-time URL without frame origins");
    assert_lax(&set_cookie(&res, "signeur_embed").unwrap());
    let res = b.get(app.url(&location(&res))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_unframable(&res, "the signing page without frame origins");
}

/// `SameSite=None` cookies ride along on a cross-site POST: the CSRF token is what stops a
/// forged form. Every POST of an embedded session refuses a missing, forged or another
/// browser's token, and nothing changes.
#[tokio::test]
async fn every_embedded_post_needs_the_csrf_token() {
    let app = TestApp::start().await;
    allow_framing(&app).await;
    let (id, _, redirect) = session(&app).await;
    let b = browser();
    let (page, _) = open(&app, &b, &redirect).await;
    // A valid token, but for another browser's CSRF cookie.
    let (_, other_html) = {
        let (_, _, r2) = session(&app).await;
        open(&app, &browser(), &r2).await
    };
    let foreign = csrf_of(&other_html);
    for (action, fields) in [
        (
            "sign",
            vec![("full_name", "Anna Buyer"), ("consent", "yes")],
        ),
        ("decline", vec![("reason", "No")]),
        ("cancel", vec![]),
        ("verify", vec![("code", "123456")]),
    ] {
        for csrf in [None, Some(""), Some("00"), Some(foreign.as_str())] {
            let mut form = fields.clone();
            if let Some(c) = csrf {
                form.push(("csrf", c));
            }
            let res = b
                .post(format!("{page}/{action}"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::FORBIDDEN,
                "{action} with {csrf:?}"
            );
        }
    }
    let signers = app
        .get_json(&format!("/api/v1/signatures/{id}/signers"))
        .await;
    assert_eq!(signers["data"][0]["status"], "opened");
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "opened");
    let completed = got["audit_trail"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "signing_session.completed")
        .count();
    assert_eq!(completed, 0, "no session ended");
}
