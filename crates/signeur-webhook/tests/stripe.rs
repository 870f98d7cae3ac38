//! Stripe's own verifier (PyPI `stripe`, `WebhookSignature.verify_header`) accepts what
//! [`signeur_webhook::sign`] produces, and refuses it once anything is changed. Skipped when
//! the library is missing, unless `SIGNEUR_REQUIRE_VALIDATORS=1` (as `.ci/run` sets it).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

const CHECK: &str = r#"
import os, sys, stripe
payload = sys.stdin.buffer.read().decode("utf-8")
try:
    stripe.WebhookSignature.verify_header(payload, os.environ["HEADER"], os.environ["SECRET"], tolerance=300)
except stripe.SignatureVerificationError as e:
    print("refused:", e)
    sys.exit(1)
print("verified")
"#;

fn stripe_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import stripe"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var("SIGNEUR_REQUIRE_VALIDATORS").as_deref() == Ok("1") {
        panic!(
            "SIGNEUR_REQUIRE_VALIDATORS=1 but Python's stripe library is missing (pip install stripe)"
        );
    }
    ok
}

/// Whether Stripe's verifier accepts `header` for `body` with `secret`.
fn stripe_accepts(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut child = Command::new("python3")
        .args(["-c", CHECK])
        .env("HEADER", header)
        .env("SECRET", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("verified") || said.starts_with("refused"),
        "{said}"
    );
    out.status.success()
}

#[test]
fn stripes_verifier_accepts_signeur_signatures() {
    if !stripe_available() {
        eprintln!("skipped: Python's stripe library is missing");
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secret = "whsec_7f3a9c0b1d2e4f5a6b7c8d9e0f1a2b3c";
    let body = r#"{"id":"evt_0192","type":"signer.signed","created_at":"2026-05-14T10:52:24.374Z","data":{"signer_name":"Ärtä Ñúñez 署名","signature_request_id":"6dc18911-f66b-43d6-9810-8de0b07bab04"}}"#.as_bytes();

    let header = signeur_webhook::sign(&[secret], now, body);
    assert!(stripe_accepts(secret, &header, body));
    // During a rotation: two v1 entries, either secret verifies.
    let both = signeur_webhook::sign(&["whsec_old", secret], now, body);
    assert!(stripe_accepts(secret, &both, body));
    assert!(stripe_accepts("whsec_old", &both, body));

    // And it is really checking: another body, secret or time is refused.
    assert!(!stripe_accepts(secret, &header, b"{}"));
    assert!(!stripe_accepts("whsec_other", &header, body));
    let old = signeur_webhook::sign(&[secret], now - 3600, body);
    assert!(!stripe_accepts(secret, &old, body));
}
