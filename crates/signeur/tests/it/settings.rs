//! Settings (issue 16): `default_locale` and `branding`; a PATCH changes only the fields it
//! names; refusals name the field.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn patch(app: &TestApp, body: Value) -> (StatusCode, Value) {
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

/// A 2×1 grayscale PNG.
pub fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 2, 1);
    enc.set_color(png::ColorType::Grayscale);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&[0, 255]).unwrap();
    drop(w);
    out
}

pub const SVG_LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#0a7"/></svg>"##;

#[tokio::test]
async fn a_patch_changes_only_the_fields_it_names() {
    let app = TestApp::start().await;
    let v = app.get_json("/api/v1/settings").await;
    assert_eq!(v["default_locale"], "en");
    assert_eq!(v["branding"], Value::Null);
    assert_eq!(v["legacy_webhook_url"], Value::Null);

    let (s, v) = patch(&app, json!({"default_locale": "fr"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let branding = json!({"name": "Acme Oy", "color": "#0A7F3C", "logo_base64": b64(&tiny_png())});
    let (s, v) = patch(&app, json!({"branding": branding})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["default_locale"], "fr", "the locale stood: {v}");
    let (s, _) = patch(
        &app,
        json!({"allowed_return_urls": ["https://app.example.com/r"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let v = app.get_json("/api/v1/settings").await;
    assert_eq!(v["default_locale"], "fr");
    assert_eq!(v["branding"]["name"], "Acme Oy");
    assert_eq!(v["branding"]["color"], "#0a7f3c", "stored lower case");
    assert_eq!(v["branding"]["logo_base64"], b64(&tiny_png()));
    assert_eq!(
        v["allowed_return_urls"],
        json!(["https://app.example.com/r"])
    );
    assert_eq!(v["legacy_webhook_secret"], Value::Null);

    // null removes what it names, and only that.
    let (_, v) = patch(&app, json!({"branding": null})).await;
    assert_eq!(v["branding"], Value::Null);
    assert_eq!(v["default_locale"], "fr");
    let (_, v) = patch(&app, json!({"default_locale": null})).await;
    assert_eq!(v["default_locale"], "en");
    assert_eq!(
        v["allowed_return_urls"],
        json!(["https://app.example.com/r"])
    );
}

#[tokio::test]
async fn refusals_name_the_field() {
    let app = TestApp::start().await;
    let big_svg = format!("<svg>{}</svg>", " ".repeat(200 * 1024));
    for (body, code, field) in [
        (
            json!({"default_locale": "sv"}),
            "invalid_locale",
            "default_locale",
        ),
        (
            json!({"default_locale": 3}),
            "invalid_locale",
            "default_locale",
        ),
        (json!({"branding": "Acme"}), "invalid_field", "branding"),
        (
            json!({"branding": {"color": "green"}}),
            "invalid_field",
            "branding.color",
        ),
        (
            json!({"branding": {"name": "n".repeat(101)}}),
            "invalid_field",
            "branding.name",
        ),
        (
            json!({"branding": {"logo": "x"}}),
            "invalid_field",
            "branding.logo",
        ),
        (
            json!({"branding": {"logo_base64": "%%%"}}),
            "invalid_base64",
            "branding.logo_base64",
        ),
        (
            json!({"branding": {"logo_base64": b64(b"GIF89a")}}),
            "invalid_logo",
            "branding.logo_base64",
        ),
        (
            json!({"branding": {"logo_base64": b64(big_svg.as_bytes())}}),
            "logo_too_large",
            "branding.logo_base64",
        ),
        (
            json!({"legacy_webhook_url": "ftp://hooks.example.com"}),
            "invalid_url",
            "legacy_webhook_url",
        ),
        (
            json!({"legacy_webhook_url": 7}),
            "invalid_field",
            "legacy_webhook_url",
        ),
        (json!({"colour": "red"}), "invalid_field", "colour"),
    ] {
        let (s, v) = patch(&app, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"], code, "{body}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains(&format!("'{field}'")),
            "{body}: {v}"
        );
    }
    // Nothing was written by a refused PATCH.
    let v = app.get_json("/api/v1/settings").await;
    assert_eq!(v["updated_at"], Value::Null, "{v}");

    // An SVG logo is accepted as it is.
    let (s, v) = patch(
        &app,
        json!({"branding": {"logo_base64": b64(SVG_LOGO.as_bytes())}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["branding"]["name"], Value::Null);
}

#[tokio::test]
async fn the_default_locale_applies_to_requests_created_after_it() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body.as_object_mut().unwrap().remove("locale");
    let before = app.create(&body).await;
    assert_eq!(before["signers"][0]["locale"], "en");

    patch(&app, json!({"default_locale": "de"})).await;
    let after = app.create(&body).await;
    assert_eq!(
        after["signers"][0]["locale"], "de",
        "no locale anywhere: the org's"
    );
    assert_eq!(
        after["signers"][1]["locale"], "fi",
        "the signer's own locale wins"
    );
    let again = app
        .get_json(&format!(
            "/api/v1/signatures/{}",
            before["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        again["signers"][0]["locale"], "en",
        "earlier requests keep theirs"
    );

    let explicit = app.create(&seed_body()).await;
    assert_eq!(
        explicit["signers"][0]["locale"], "en",
        "the request's locale wins"
    );
}

#[tokio::test]
async fn emails_speak_in_the_brand_name_and_colour() {
    let smtp = crate::smtp::SmtpSink::start().await;
    let app = TestApp::start_with_smtp(Some(smtp.url())).await;
    patch(
        &app,
        json!({"branding": {"name": "Acme Signing Desk", "color": "#0a7f3c"}}),
    )
    .await;
    let mut body = seed_body();
    body.as_object_mut().unwrap().remove("delivery");
    body["signers"] = json!([{"email": "anna@example.com", "name": "Anna"}]);
    app.create(&body).await;
    let messages = smtp.wait_for(1).await;
    let m = &messages[0];
    assert!(
        m.header("Subject").unwrap().contains("Acme Signing Desk"),
        "{:?}",
        m.header("Subject")
    );
    assert!(m.text().contains("Acme Signing Desk"));
    let html = m.html().unwrap();
    assert!(html.contains("background: #0a7f3c;"), "{html}");
    assert!(!html.contains("#1f4fd8"), "the default colour gave way");
}
