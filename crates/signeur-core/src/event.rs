//! Events: the audit trail and the webhook source, hash-chained per signature request.
//!
//! The hashed bytes of an event are its canonical JSON: the object
//! `{id, type, created_at, data, prev_hash}` with keys sorted at every level and no
//! whitespace. `prev_hash` is the predecessor's hash in the same request (null for the first).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::wire_enum;

wire_enum!(
    /// What happened: the `type` of an event in the audit trail and of a webhook.
    EventType {
        SignatureRequestCreated = "signature_request.created",
        SignatureRequestSent = "signature_request.sent",
        SignatureRequestOpened = "signature_request.opened",
        SignatureRequestCompleted = "signature_request.completed",
        SignatureRequestSigned = "signature_request.signed",
        SignatureRequestDeclined = "signature_request.declined",
        SignatureRequestCancelled = "signature_request.cancelled",
        SignatureRequestExpired = "signature_request.expired",
        SignatureRequestStampFailed = "signature_request.stamp_failed",
        SignatureRequestSealRetried = "signature_request.seal_retried",
        SignerOpened = "signer.opened",
        SignerSigned = "signer.signed",
        SignerDeclined = "signer.declined",
        SignerEmailFailed = "signer.email_failed",
        /// A reminder email went to a signer (scheduled or asked for through the API).
        SignerReminded = "signer.reminded",
        SigningSessionCompleted = "signing_session.completed",
        WebhookEndpointTest = "webhook_endpoint.test",
    }
);

/// The canonical bytes of an event (see the module docs).
pub fn canonical_json(
    id: &str,
    event_type: &str,
    created_at: &str,
    data: &Value,
    prev_hash: Option<&str>,
) -> String {
    // serde_json's map is a BTreeMap (the `preserve_order` feature is never enabled in this
    // workspace), so serialisation sorts keys at every level and adds no whitespace.
    json!({
        "id": id,
        "type": event_type,
        "created_at": created_at,
        "data": sorted(data),
        "prev_hash": prev_hash,
    })
    .to_string()
}

/// Rebuilds a value so its maps are sorted even if it came from an order-preserving source.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Hex SHA-256 of the canonical JSON.
pub fn chain_hash(
    id: &str,
    event_type: &str,
    created_at: &str,
    data: &Value,
    prev_hash: Option<&str>,
) -> String {
    let bytes = canonical_json(id, event_type, created_at, data, prev_hash);
    hex::encode(Sha256::digest(bytes.as_bytes()))
}

/// One link of a chain as stored.
pub struct ChainLink<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub created_at: &'a str,
    pub data: &'a Value,
    pub prev_hash: Option<&'a str>,
    pub hash: &'a str,
}

/// Where a chain breaks, if it does.
#[derive(Debug, PartialEq, Eq)]
pub enum ChainBreak {
    /// The event's stored hash is not the hash of its content.
    HashMismatch { index: usize },
    /// The event does not point to its predecessor.
    BrokenLink { index: usize },
}

/// Checks a request's events in order.
pub fn verify_chain(links: &[ChainLink<'_>]) -> Result<(), ChainBreak> {
    let mut prev: Option<&str> = None;
    for (index, l) in links.iter().enumerate() {
        if l.prev_hash != prev {
            return Err(ChainBreak::BrokenLink { index });
        }
        if chain_hash(l.id, l.event_type, l.created_at, l.data, l.prev_hash) != l.hash {
            return Err(ChainBreak::HashMismatch { index });
        }
        prev = Some(l.hash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_sorted_and_compact() {
        let data: Value =
            serde_json::from_str(r#"{"z": 1, "a": {"y": [ {"b": 2, "a": 1} ], "x": null}}"#)
                .unwrap();
        let c = canonical_json(
            "evt_1",
            "signer.signed",
            "2026-05-14T10:52:24.374Z",
            &data,
            None,
        );
        assert_eq!(
            c,
            r#"{"created_at":"2026-05-14T10:52:24.374Z","data":{"a":{"x":null,"y":[{"a":1,"b":2}]},"z":1},"id":"evt_1","prev_hash":null,"type":"signer.signed"}"#
        );
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let d1 = json!({"signature_request_id": "r"});
        let d2 = json!({"signature_request_id": "r", "reason": "x"});
        let h1 = chain_hash("evt_1", "a", "t1", &d1, None);
        let h2 = chain_hash("evt_2", "b", "t2", &d2, Some(&h1));
        let links = vec![
            ChainLink {
                id: "evt_1",
                event_type: "a",
                created_at: "t1",
                data: &d1,
                prev_hash: None,
                hash: &h1,
            },
            ChainLink {
                id: "evt_2",
                event_type: "b",
                created_at: "t2",
                data: &d2,
                prev_hash: Some(&h1),
                hash: &h2,
            },
        ];
        assert_eq!(verify_chain(&links), Ok(()));

        let forged = json!({"signature_request_id": "r", "reason": "y"});
        let mut bad = links;
        bad[1].data = &forged;
        assert_eq!(
            verify_chain(&bad),
            Err(ChainBreak::HashMismatch { index: 1 })
        );
        bad[1].data = &d2;
        bad[1].prev_hash = None;
        assert_eq!(verify_chain(&bad), Err(ChainBreak::BrokenLink { index: 1 }));
    }
}
