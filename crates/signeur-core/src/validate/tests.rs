use super::*;

pub(super) mod contract;
use serde_json::Value;
use serde_json::json;

fn now() -> DateTime<Utc> {
    time::parse("2026-05-14T10:51:51.813Z").unwrap()
}

fn pdf_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4\n%%EOF\n")
}

fn body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn valid() -> Value {
    json!({
        "title": "Order Agreement #1234",
        "message": "Please review\nand sign.",
        "locale": "en",
        "signers": [
            { "email": "buyer@example.com", "name": "Anna Buyer" },
            { "email": "seller@example.com", "name": "Bob Seller", "locale": "fi" }
        ],
        "document": { "filename": "contract.pdf", "content_base64": pdf_b64() },
        "metadata": { "deal_id": "D-42", "b": [1, 2.50] }
    })
}

fn err(v: Value) -> ValidationError {
    create_request(&body(v), now()).unwrap_err()
}

#[test]
fn accepts_the_seed_example() {
    let r = create_request(&body(valid()), now()).unwrap();
    assert_eq!(r.title, "Order Agreement #1234");
    assert_eq!(r.delivery, Delivery::Email);
    assert_eq!(r.signing_order, SigningOrder::Parallel);
    assert_eq!(r.signers[0].locale, Locale::En);
    assert_eq!(r.signers[1].locale, Locale::Fi);
    assert_eq!(r.expires_at, now() + Duration::days(30));
    assert_eq!(r.document.content, b"%PDF-1.4\n%%EOF\n");
}

#[test]
fn keeps_metadata_verbatim() {
    let raw = br#"{"title":"t","signers":[{"email":"a@example.com"}],"document":{"filename":"a.pdf","content_base64":"JVBERi0="},"metadata":{"z":1,"a":2.50,"n":{"k":"\u00e4"}}}"#;
    let r = create_request(raw, now()).unwrap();
    assert_eq!(
        r.metadata.as_deref(),
        Some(r#"{"z":1,"a":2.50,"n":{"k":"\u00e4"}}"#)
    );
}

#[test]
fn default_locale_falls_back_to_top_level_then_en() {
    let mut v = valid();
    v["locale"] = json!("de");
    let r = create_request(&body(v), now()).unwrap();
    assert_eq!(r.signers[0].locale, Locale::De);
    assert_eq!(r.signers[1].locale, Locale::Fi);
    let mut v = valid();
    v.as_object_mut().unwrap().remove("locale");
    assert_eq!(
        create_request(&body(v), now()).unwrap().signers[0].locale,
        Locale::En
    );
}

#[test]
fn legacy_single_signer_body() {
    let v = json!({
        "title": "t", "signer_email": "a@example.com", "signer_name": "A",
        "document": { "filename": "a.pdf", "content_base64": pdf_b64() }
    });
    let r = create_request(&body(v), now()).unwrap();
    assert_eq!(
        r.signers,
        vec![NewSigner {
            email: Some("a@example.com".into()),
            name: Some("A".into()),
            locale: Locale::En,
            signature_position: None,
        }]
    );

    let v = json!({ "title": "t", "signer_email": "nope", "document": { "filename": "a.pdf", "content_base64": pdf_b64() } });
    let e = err(v);
    assert_eq!(e.code, "invalid_signer_email");
    assert_eq!(
        e.message,
        "Field 'signer_email' is missing or not a valid email."
    );
}

#[test]
fn signer_count_limits() {
    let mut v = valid();
    v["signers"] = json!([]);
    assert_eq!(err(v).code, "no_signers");
    let mut v = valid();
    v.as_object_mut().unwrap().remove("signers");
    assert_eq!(err(v).code, "no_signers");
    let mut v = valid();
    v["signers"] = Value::Array(
        (0..21)
            .map(|i| json!({"email": format!("s{i}@example.com")}))
            .collect(),
    );
    assert_eq!(err(v).code, "too_many_signers");
    let mut v = valid();
    v["signers"] = Value::Array(
        (0..20)
            .map(|i| json!({"email": format!("s{i}@example.com")}))
            .collect(),
    );
    assert_eq!(create_request(&body(v), now()).unwrap().signers.len(), 20);
}

#[test]
fn bad_emails_name_the_signer() {
    for bad in [
        json!("not-an-email"),
        json!("a b@example.com"),
        json!(42),
        json!("a@localhost"),
        json!("Anna <a@example.com>"),
        json!("a@example.com\r\nBcc: x@y.z"),
    ] {
        let mut v = valid();
        v["signers"][1]["email"] = bad.clone();
        let e = err(v);
        assert_eq!(e.code, "invalid_signer_email", "{bad}");
        assert_eq!(
            e.message,
            "Field 'signers[1].email' is missing or not a valid email."
        );
    }
}

#[test]
fn missing_email_implies_api_delivery_unless_email_was_asked_for() {
    let mut v = valid();
    v["signers"][1].as_object_mut().unwrap().remove("email");
    assert_eq!(
        create_request(&body(v.clone()), now()).unwrap().delivery,
        Delivery::Api
    );
    v["delivery"] = json!("email");
    let e = err(v);
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "invalid_signer_email",
            "Field 'signers[1].email' is missing or not a valid email."
        )
    );
}

#[test]
fn locales_are_checked_everywhere() {
    let mut v = valid();
    v["locale"] = json!("sv");
    let e = err(v);
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "invalid_locale",
            "Field 'locale' must be one of 'en', 'fi', 'fr', 'de'."
        )
    );
    let mut v = valid();
    v["signers"][0]["locale"] = json!("EN");
    assert_eq!(
        err(v).message,
        "Field 'signers[0].locale' must be one of 'en', 'fi', 'fr', 'de'."
    );
}

#[test]
fn wrong_types_and_lengths_name_the_field() {
    let cases = [
        (
            json!({"title": 5}),
            "invalid_field",
            "Field 'title' must be a string.",
        ),
        (
            json!({"title": "x".repeat(201)}),
            "invalid_field",
            "Field 'title' must be at most 200 characters.",
        ),
        (
            json!({"title": "  "}),
            "missing_field",
            "Field 'title' is required.",
        ),
        (
            json!({"message": "x".repeat(2001)}),
            "invalid_field",
            "Field 'message' must be at most 2000 characters.",
        ),
        (
            json!({"metadata": [1]}),
            "invalid_field",
            "Field 'metadata' must be a JSON object.",
        ),
        (
            json!({"metadata": {"k": "x".repeat(17000)}}),
            "invalid_field",
            "Field 'metadata' must be at most 16384 bytes of JSON.",
        ),
        (
            json!({"delivery": "sms"}),
            "invalid_field",
            "Field 'delivery' must be 'email' or 'api'.",
        ),
        (
            json!({"signing_order": true}),
            "invalid_field",
            "Field 'signing_order' must be a string.",
        ),
        (
            json!({"expires_at": "tomorrow"}),
            "invalid_field",
            "Field 'expires_at' must be an RFC 3339 timestamp.",
        ),
        (
            json!({"expires_at": "2026-05-14T10:51:51.000Z"}),
            "invalid_field",
            "Field 'expires_at' must be in the future.",
        ),
        (
            json!({"expires_at": "2027-05-15T10:51:51.000Z"}),
            "invalid_field",
            "Field 'expires_at' must be at most 365 days ahead.",
        ),
        (
            json!({"signers": {"email": "a@example.com"}}),
            "invalid_field",
            "Field 'signers' must be an array of signer objects.",
        ),
        (
            json!({"signers": ["a@example.com"]}),
            "invalid_field",
            "Field 'signers[0]' must be an object.",
        ),
        (
            json!({"signers": [{"email": "a@example.com", "name": "x".repeat(201)}]}),
            "invalid_field",
            "Field 'signers[0].name' must be at most 200 characters.",
        ),
        (
            json!({"document": "x"}),
            "invalid_field",
            "Field 'document' must be an object.",
        ),
        (
            json!({"document": {"content_base64": "JVBERi0="}}),
            "missing_field",
            "Field 'document.filename' is required.",
        ),
        (
            json!({"document": {"filename": "../etc/passwd", "content_base64": "JVBERi0="}}),
            "invalid_field",
            "Field 'document.filename' must be a file name, not a path.",
        ),
        (
            json!({"document": {"filename": "a.pdf"}}),
            "missing_field",
            "Field 'document.content_base64' is required.",
        ),
        (
            json!({"document": {"filename": "a.pdf", "content_base64": "%%%"}}),
            "invalid_base64",
            "Field 'document.content_base64' is not valid base64.",
        ),
    ];
    for (patch, code, message) in cases {
        let mut v = valid();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        let e = err(v);
        assert_eq!((e.code, e.message.as_str()), (code, message), "{patch}");
    }
}

#[test]
fn title_is_required_and_body_must_be_an_object() {
    let mut v = valid();
    v.as_object_mut().unwrap().remove("title");
    assert_eq!(err(v).code, "missing_field");
    assert_eq!(
        create_request(b"[1,2]", now()).unwrap_err().code,
        "invalid_json"
    );
    assert_eq!(
        create_request(b"{\"title\":", now()).unwrap_err().code,
        "invalid_json"
    );
    assert_eq!(create_request(b"", now()).unwrap_err().code, "invalid_json");
}

#[test]
fn document_size_limit_is_on_decoded_bytes() {
    let exactly = base64::engine::general_purpose::STANDARD.encode(vec![b'%'; MAX_DOCUMENT_BYTES]);
    let mut v = valid();
    v["document"]["content_base64"] = json!(exactly);
    assert_eq!(
        create_request(&body(v), now())
            .unwrap()
            .document
            .content
            .len(),
        MAX_DOCUMENT_BYTES
    );
    let over = base64::engine::general_purpose::STANDARD.encode(vec![b'%'; MAX_DOCUMENT_BYTES + 1]);
    let mut v = valid();
    v["document"]["content_base64"] = json!(over);
    assert_eq!(err(v).code, "document_too_large");
}

#[test]
fn base64_may_be_wrapped_or_unpadded() {
    let mut v = valid();
    v["document"]["content_base64"] = json!("JVBE\r\nRi0");
    assert_eq!(
        create_request(&body(v), now()).unwrap().document.content,
        b"%PDF-"
    );
}

#[test]
fn cancel_reason_rules() {
    assert_eq!(cancel_reason(b"").unwrap(), None);
    assert_eq!(cancel_reason(b"{}").unwrap(), None);
    assert_eq!(cancel_reason(b" null ").unwrap(), None);
    assert_eq!(
        cancel_reason(br#"{"reason":"Sent to wrong recipient"}"#)
            .unwrap()
            .as_deref(),
        Some("Sent to wrong recipient")
    );
    let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(501));
    assert_eq!(
        cancel_reason(long.as_bytes()).unwrap_err().message,
        "Field 'reason' must be at most 500 characters."
    );
    assert_eq!(
        cancel_reason(br#"{"reason":1}"#).unwrap_err().code,
        "invalid_field"
    );
    assert_eq!(cancel_reason(b"nope").unwrap_err().code, "invalid_json");
}

#[test]
fn signature_positions_are_a_page_and_a_point_or_a_precise_refusal() {
    let mut v = valid();
    v["signers"][1]["signature_position"] = json!({"page": 2, "x": 72, "y": 600.5});
    let r = create_request(&body(v), now()).unwrap();
    assert_eq!(r.signers[0].signature_position, None);
    let p = r.signers[1].signature_position.unwrap();
    assert_eq!((p.page, p.x, p.y), (2, 72.0, 600.5));
    assert_eq!(SignaturePosition::from_json(&p.to_json()), Some(p));

    for (position, code, field) in [
        (
            json!("bottom"),
            "invalid_field",
            "signers[1].signature_position",
        ),
        (
            json!({"x": 1, "y": 2}),
            "missing_field",
            "signers[1].signature_position.page",
        ),
        (
            json!({"page": 0, "x": 1, "y": 2}),
            "invalid_field",
            "signers[1].signature_position.page",
        ),
        (
            json!({"page": 1.5, "x": 1, "y": 2}),
            "invalid_field",
            "signers[1].signature_position.page",
        ),
        (
            json!({"page": 1, "x": "1", "y": 2}),
            "invalid_field",
            "signers[1].signature_position.x",
        ),
        (
            json!({"page": 1, "x": -1, "y": 2}),
            "invalid_field",
            "signers[1].signature_position.x",
        ),
        (
            json!({"page": 1, "x": 1, "y": 1e9}),
            "invalid_field",
            "signers[1].signature_position.y",
        ),
    ] {
        let mut v = valid();
        v["signers"][1]["signature_position"] = position.clone();
        let e = err(v);
        assert_eq!(e.code, code, "{position}");
        assert!(
            e.message.contains(&format!("'{field}'")),
            "{position}: {}",
            e.message
        );
    }
}
