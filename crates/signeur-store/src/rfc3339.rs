//! Timestamps inside the JSON aggregates (`get_request_with_parts`), read with chrono's
//! dedicated RFC 3339 parser: what both databases write (`2026-05-14T10:51:51.813+00:00`).
//! chrono's own `Deserialize` goes through its general format-item parser, several times
//! slower, and a get response reads a dozen of them. Anything else falls back to it.

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserializer;
use serde::de::{self, Visitor};

fn parse<E: de::Error>(s: &str) -> Result<DateTime<Utc>, E> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| s.parse::<DateTime<FixedOffset>>())
        .map(|t| t.with_timezone(&Utc))
        .map_err(E::custom)
}

struct Instant;

impl<'de> Visitor<'de> for Instant {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        parse(s)
    }
}

struct MaybeInstant;

impl<'de> Visitor<'de> for MaybeInstant {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(Instant).map(Some)
    }
}

/// `#[serde(deserialize_with = "crate::rfc3339::instant")]`
pub fn instant<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_str(Instant)
}

/// `#[serde(deserialize_with = "crate::rfc3339::maybe")]`: null is None.
pub fn maybe<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    d.deserialize_option(MaybeInstant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Row(
        #[serde(deserialize_with = "instant")] DateTime<Utc>,
        #[serde(deserialize_with = "maybe")] Option<DateTime<Utc>>,
        #[serde(deserialize_with = "maybe")] Option<DateTime<Utc>>,
    );

    #[test]
    fn reads_what_both_databases_write() {
        let row: Row = serde_json::from_str(
            r#"["2026-05-14T10:51:51.813+00:00", null, "2026-05-14T12:51:51.813+02:00"]"#,
        )
        .unwrap();
        let want: DateTime<Utc> = "2026-05-14T10:51:51.813Z".parse().unwrap();
        assert_eq!(row.0, want);
        assert_eq!(row.1, None);
        assert_eq!(row.2, Some(want));
        // chrono's relaxed form (a space for the T) still reads.
        let spaced: Row =
            serde_json::from_str(r#"["2026-05-14 10:51:51.813+00:00", null, null]"#).unwrap();
        assert_eq!(spaced.0, want);
        assert!(serde_json::from_str::<Row>(r#"["yesterday", null, null]"#).is_err());
        assert!(serde_json::from_str::<Row>(r#"["2026-05-14T10:51:51Z", 5, null]"#).is_err());
    }
}
