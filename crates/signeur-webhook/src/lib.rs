//! Signeur's webhook signatures: `X-Signeur-Signature: t=<unix seconds>,v1=<hex>`, where each
//! `v1` is the HMAC-SHA256 of `"{t}.{raw body}"` keyed with the endpoint's whole secret string
//! (`whsec_…`, used as it is). This is Stripe's scheme, so Stripe's verifiers accept it too.
//! While a secret is being rotated, the header carries one `v1` per secret.
//!
//! ```
//! let secret = "whsec_test";
//! let body = br#"{"id":"evt_1","type":"signer.signed","data":{}}"#;
//! let header = signeur_webhook::sign(&[secret], 1_747_212_744, body);
//! assert!(signeur_webhook::verify(secret, &header, body, 1_747_212_800).is_ok());
//! ```
//!
//! [`verify`] is strict where Stripe's libraries are lenient: a timestamp more than
//! [`TOLERANCE_SECS`] away from `now` is refused in *both* directions, so a captured request
//! replayed later, or one signed with a clock far in the future, does not pass.

#![forbid(unsafe_code)]

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header that carries the signature.
pub const HEADER: &str = "X-Signeur-Signature";

/// How far (in seconds, either way) a signature's `t` may be from the receiver's clock.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The header is not `t=…,v1=…` (or `t` is missing, repeated or not a number).
    Malformed,
    /// The header has no `v1` signature.
    NoSignature,
    /// `t` is more than [`TOLERANCE_SECS`] from `now` (in the past or the future).
    Stale { t: i64, now: i64 },
    /// No `v1` matches the body signed with this secret.
    Mismatch,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Malformed => f.write_str("the signature header is not t=…,v1=…"),
            VerifyError::NoSignature => f.write_str("the signature header has no v1 signature"),
            VerifyError::Stale { t, now } => write!(
                f,
                "the signature's timestamp {t} is more than {TOLERANCE_SECS} s from now ({now})"
            ),
            VerifyError::Mismatch => f.write_str("no signature matches the body and the secret"),
        }
    }
}

impl std::error::Error for VerifyError {}

fn mac(secret: &str, t: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The header value for `body` sent at `t` (Unix seconds): one `v1` per secret, in order.
pub fn sign(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac(secret, t, body)));
    }
    header
}

/// Checks a received webhook: `header` is the `X-Signeur-Signature` value, `body` the raw
/// request body exactly as received (before any JSON parsing), `now` the receiver's clock in
/// Unix seconds. Any one `v1` made with `secret` suffices; comparisons take constant time.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(VerifyError::Malformed)?;
        match key {
            "t" => {
                let parsed = value.parse::<i64>().map_err(|_| VerifyError::Malformed)?;
                if t.replace(parsed).is_some() {
                    return Err(VerifyError::Malformed);
                }
            }
            "v1" => signatures.push(value),
            // Other schemes (a future v2) are not ours to judge.
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if signatures.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(VerifyError::Stale { t, now });
    }
    let expected = mac(secret, t, body);
    let mut matched = subtle::Choice::from(0);
    for candidate in signatures {
        // A candidate that is not 64 hex digits cannot match; checking every candidate
        // keeps the time independent of which one matched.
        if let Ok(bytes) = hex::decode(candidate)
            && bytes.len() == expected.len()
        {
            matched |= bytes.as_slice().ct_eq(&expected);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"signer.signed","created_at":"2026-05-14T10:52:24.374Z","data":{}}"#;
    const T: i64 = 1_747_212_744;

    #[test]
    fn a_signed_body_verifies_within_the_tolerance_either_way() {
        let header = sign(&["whsec_a"], T, BODY);
        assert!(header.starts_with(&format!("t={T},v1=")));
        assert_eq!(header.len(), format!("t={T},v1=").len() + 64);
        for now in [T, T + 300, T - 300] {
            assert_eq!(verify("whsec_a", &header, BODY, now), Ok(()), "now = {now}");
        }
    }

    #[test]
    fn the_signed_data_is_t_dot_body_keyed_with_the_whole_secret() {
        // Independent of `mac`: the HMAC as the seed's Node.js example computes it.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"whsec_a").unwrap();
        m.update(format!("{T}.").as_bytes());
        m.update(BODY);
        let expected = hex::encode(m.finalize().into_bytes());
        assert_eq!(sign(&["whsec_a"], T, BODY), format!("t={T},v1={expected}"));
    }

    #[test]
    fn timestamps_too_old_or_from_the_future_are_refused() {
        let header = sign(&["whsec_a"], T, BODY);
        assert_eq!(
            verify("whsec_a", &header, BODY, T + 301),
            Err(VerifyError::Stale { t: T, now: T + 301 })
        );
        assert_eq!(
            verify("whsec_a", &header, BODY, T - 301),
            Err(VerifyError::Stale { t: T, now: T - 301 })
        );
    }

    #[test]
    fn another_body_secret_or_timestamp_does_not_verify() {
        let header = sign(&["whsec_a"], T, BODY);
        assert_eq!(
            verify("whsec_b", &header, BODY, T),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_a", &header, b"{}", T),
            Err(VerifyError::Mismatch)
        );
        let moved = header.replace(&format!("t={T}"), &format!("t={}", T + 1));
        assert_eq!(
            verify("whsec_a", &moved, BODY, T),
            Err(VerifyError::Mismatch)
        );
        // The secret is the whole string, prefix included.
        assert_eq!(verify("a", &header, BODY, T), Err(VerifyError::Mismatch));
    }

    #[test]
    fn any_of_several_v1_entries_verifies_during_a_rotation() {
        let header = sign(&["whsec_old", "whsec_new"], T, BODY);
        assert_eq!(header.matches(",v1=").count(), 2);
        assert_eq!(verify("whsec_old", &header, BODY, T), Ok(()));
        assert_eq!(verify("whsec_new", &header, BODY, T), Ok(()));
        assert_eq!(
            verify("whsec_other", &header, BODY, T),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = sign(&["whsec_a"], T, BODY);
        let v1 = good.split_once(",v1=").unwrap().1;
        for (header, err) in [
            ("", VerifyError::Malformed),
            ("garbage", VerifyError::Malformed),
            (&format!("v1={v1}") as &str, VerifyError::Malformed),
            (&format!("t=abc,v1={v1}"), VerifyError::Malformed),
            (&format!("t={T},t={T},v1={v1}"), VerifyError::Malformed),
            (&format!("t={T}"), VerifyError::NoSignature),
            (&format!("t={T},v0={v1}"), VerifyError::NoSignature),
            (&format!("t={T},v1=zz{}", &v1[2..]), VerifyError::Mismatch),
            (&format!("t={T},v1={}", &v1[..62]), VerifyError::Mismatch),
        ] {
            assert_eq!(verify("whsec_a", header, BODY, T), Err(err), "{header:?}");
        }
        // Unknown schemes beside a good v1 are ignored; spaces after commas are tolerated.
        assert_eq!(
            verify("whsec_a", &format!("t={T}, v0=00, v1={v1}"), BODY, T),
            Ok(())
        );
    }
}
