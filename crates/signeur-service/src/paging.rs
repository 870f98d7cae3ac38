//! What every paged list reads from its query string the same way: the `created_from` /
//! `created_to` bounds, `limit` and the refusals, so `GET /signatures` and `GET /events`
//! cannot drift apart.

use chrono::{DateTime, Utc};

use signeur_core::time;

use crate::{Result, ServiceError};

pub(crate) const DEFAULT_LIMIT: i64 = 25;
pub(crate) const MAX_LIMIT: i64 = 100;

pub(crate) fn invalid_filter(field: &str, what: &str) -> ServiceError {
    ServiceError::invalid(
        "invalid_filter",
        format!("Query parameter '{field}' {what}."),
    )
}

pub(crate) fn invalid_cursor() -> ServiceError {
    ServiceError::invalid(
        "invalid_cursor",
        "Query parameter 'cursor' is not a cursor issued for this list and these filters.",
    )
}

/// A `created_from` / `created_to` bound (empty means not given).
pub(crate) fn bound(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => time::parse(s)
            // SQLite compares timestamps as text: a year past 9999 ("+10000-…") would
            // sort before every stored one and invert the filter.
            .filter(|t| (0..=9999).contains(&chrono::Datelike::year(t)))
            .map(|t| Some(time::ceil_ms(t)))
            .ok_or_else(|| {
                invalid_filter(
                    name,
                    "must be an ISO-8601 timestamp such as 2026-05-14T10:51:51Z",
                )
            }),
    }
}

/// The page size (empty means the default).
pub(crate) fn limit(v: Option<&str>) -> Result<i64> {
    match v {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ServiceError::invalid(
                    "invalid_limit",
                    "Query parameter 'limit' must be an integer from 1 to 100.",
                )
            }),
    }
}
