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

/// [`format`] into a stack buffer: the same text without an allocation or the formatting
/// machinery, for responses that carry a dozen timestamps. None outside years 0–9999, which
/// [`format`] writes with a sign and more digits.
fn format_fixed(t: DateTime<Utc>) -> Option<[u8; 24]> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    // A leap second is carried in the nanoseconds (60.xxx s): chrono's own format writes 60.
    let nanos = t.nanosecond();
    put(17, 2, t.second() + nanos / 1_000_000_000);
    put(20, 3, (nanos % 1_000_000_000) / 1_000_000);
    Some(out)
}

/// Serializes like [`format`].
fn serialize_time<S: serde::Serializer>(t: DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    match format_fixed(t) {
        // The buffer holds ASCII digits and separators only.
        Some(buf) => s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default()),
        None => s.serialize_str(&format(t)),
    }
}

/// serde helpers: `#[serde(with = "signeur_core::time::ms")]`.
pub mod ms {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_time(*t, s)
    }
}

/// serde helpers for optional timestamps (null when not yet known).
pub mod ms_opt {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize_time(*t, s),
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
    fn the_fixed_format_matches_chrono() {
        for text in [
            "2026-05-14T10:51:51.813Z",
            "0001-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "2016-12-31T23:59:60.500Z",
            "2026-02-03T04:05:06.007Z",
        ] {
            let t = parse(text).unwrap();
            let fixed = format_fixed(t).unwrap();
            assert_eq!(std::str::from_utf8(&fixed).unwrap(), format(t), "{text}");
            assert_eq!(format(t), text);
        }
        let far = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert!(format_fixed(far).is_none());
        let mut json = Vec::new();
        serialize_time(far, &mut serde_json::Serializer::new(&mut json)).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            format!("\"{}\"", format(far))
        );
        let bc = Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap();
        assert!(format_fixed(bc).is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("yesterday").is_none());
        assert!(parse("2026-13-01T00:00:00Z").is_none());
    }
}
