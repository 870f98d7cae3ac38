//! Opaque list cursors. A cursor names the last row of a page and is bound by a MAC to the
//! organization and the filters it was issued with, so a tampered, foreign or mismatched
//! cursor is refused instead of silently paging something else.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use signeur_core::time;

use crate::keys::MasterKey;

#[derive(Serialize, Deserialize)]
struct Payload {
    c: String,
    i: Uuid,
    m: String,
}

fn mac(keys: &MasterKey, org_id: Uuid, filters: &str, c: &str, i: Uuid) -> String {
    let full = keys.mac(
        "list-cursor",
        &[
            org_id.as_bytes(),
            filters.as_bytes(),
            c.as_bytes(),
            i.as_bytes(),
        ],
    );
    hex::encode(&full[..16])
}

pub(crate) fn encode(
    keys: &MasterKey,
    org_id: Uuid,
    filters: &str,
    at: DateTime<Utc>,
    id: Uuid,
) -> String {
    let c = time::format(at);
    let m = mac(keys, org_id, filters, &c, id);
    let json = serde_json::to_vec(&Payload { c, i: id, m }).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

pub(crate) fn decode(
    keys: &MasterKey,
    org_id: Uuid,
    filters: &str,
    cursor: &str,
) -> Option<(DateTime<Utc>, Uuid)> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let p: Payload = serde_json::from_slice(&json).ok()?;
    let expected = mac(keys, org_id, filters, &p.c, p.i);
    let ok: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), p.m.as_bytes()).into();
    if !ok {
        return None;
    }
    Some((time::parse(&p.c)?, p.i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = MasterKey::generate();
        let org = Uuid::new_v4();
        let t = time::parse("2026-05-14T10:51:51.813Z").unwrap();
        let id = Uuid::new_v4();
        let c = encode(&k, org, "status=sent", t, id);
        assert_eq!(decode(&k, org, "status=sent", &c), Some((t, id)));
        assert_eq!(decode(&k, org, "status=signed", &c), None, "other filters");
        assert_eq!(
            decode(&k, Uuid::new_v4(), "status=sent", &c),
            None,
            "other org"
        );
        assert_eq!(
            decode(&MasterKey::generate(), org, "status=sent", &c),
            None,
            "other server"
        );
        let mut tampered = c.clone().into_bytes();
        tampered[5] ^= 1;
        assert_eq!(
            decode(&k, org, "status=sent", &String::from_utf8_lossy(&tampered)),
            None
        );
        assert_eq!(decode(&k, org, "", "not a cursor"), None);
    }
}
