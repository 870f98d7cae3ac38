//! Timestamps on the wire: RFC 3339, UTC, milliseconds, `Z`.
//!
//! Every instant Signeur stores is truncated to whole milliseconds first. That makes what a
//! client reads back exactly what was stored (a cursor built from a response finds its row),
//! and on SQLite, where timestamps are text, it keeps lexical order equal to time order.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Truncates an instant to whole milliseconds.
pub fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t.timestamp_millis())
        .single()
        .unwrap_or(t)
}

/// Rounds an instant up to the next whole millisecond (for `>=`/`<` bounds given by clients).
pub fn ceil_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    let down = truncate_ms(t);
    if down == t {
        t
    } else {
        down + chrono::Duration::milliseconds(1)
    }
}

/// `2026-05-14T10:51:51.813Z`
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp with any offset into UTC.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// serde helpers: `#[serde(with = "signeur_core::time::ms")]`.
pub mod ms {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }
}

/// serde helpers for optional timestamps (null when not yet known).
pub mod ms_opt {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        let t = parse("2026-05-14T12:51:51.813456+02:00").unwrap();
        assert_eq!(format(truncate_ms(t)), "2026-05-14T10:51:51.813Z");
        assert_eq!(format(ceil_ms(t)), "2026-05-14T10:51:51.814Z");
        let whole = parse("2026-05-14T10:51:51Z").unwrap();
        assert_eq!(ceil_ms(whole), whole);
        assert_eq!(format(whole), "2026-05-14T10:51:51.000Z");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("yesterday").is_none());
        assert!(parse("2026-13-01T00:00:00Z").is_none());
    }
}
