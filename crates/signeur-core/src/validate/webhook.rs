//! The body of `POST /api/v1/webhook-endpoints` and `PATCH /api/v1/webhook-endpoints/{id}`.
//! Here: the shape (types, lengths, known event types, a URL's syntax). Which hosts a URL may
//! name (loopback, private addresses) is the service's rule, as it depends on configuration.

use serde_json::value::RawValue;

use super::{Fields, Result, ValidationError, check_text};
use crate::event::EventType;

pub const MAX_URL_CHARS: usize = 2000;
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// What a create or a patch names; `None`: not given (on a create: the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointInput {
    /// Absolute `http(s)` URL, without credentials or fragment (normalized).
    pub url: Option<url::Url>,
    /// Empty: every event type.
    pub event_types: Option<Vec<EventType>>,
    /// `Some(None)`: cleared.
    pub description: Option<Option<String>>,
    /// Only on a patch.
    pub disabled: Option<bool>,
}

fn invalid_url(field: &str, what: &str) -> ValidationError {
    ValidationError::of_field("invalid_url", field, format!("Field '{field}' {what}."))
}

/// A webhook URL's syntax: absolute, `http` or `https`, a host, no credentials, no fragment.
pub fn webhook_url(field: &str, raw: &str) -> Result<url::Url> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(invalid_url(
            field,
            &format!("is longer than {MAX_URL_CHARS} characters"),
        ));
    }
    let u = url::Url::parse(raw).map_err(|_| invalid_url(field, "is not an absolute URL"))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(invalid_url(field, "must use https"));
    }
    if u.host().is_none() {
        return Err(invalid_url(field, "must name a host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid_url(field, "must not carry credentials"));
    }
    if u.fragment().is_some() {
        return Err(invalid_url(field, "must not have a fragment"));
    }
    Ok(u)
}

/// Parses a create (`creating`: `url` required, `disabled` not accepted) or a patch.
pub fn endpoint(body: &[u8], creating: bool) -> Result<EndpointInput> {
    let raw: &RawValue = serde_json::from_slice(body)
        .map_err(|e| ValidationError::new("invalid_json", format!("Malformed JSON: {e}")))?;
    let top = Fields::parse(raw, "")?.ok_or_else(|| {
        ValidationError::new("invalid_json", "The request body must be a JSON object.")
    })?;
    let known: &[&str] = if creating {
        &["url", "event_types", "description"]
    } else {
        &["url", "event_types", "description", "disabled"]
    };
    let mut keys: Vec<&String> = top.map.keys().collect();
    keys.sort();
    if let Some(k) = keys.into_iter().find(|k| !known.contains(&k.as_str())) {
        return Err(ValidationError::of_field(
            "invalid_field",
            k,
            format!("Field '{k}' is not a field of a webhook endpoint."),
        ));
    }
    let mut out = EndpointInput::default();
    match top.string("url")? {
        Some(s) => out.url = Some(webhook_url("url", &s)?),
        None if creating => return Err(ValidationError::missing("url")),
        None => {}
    }
    if let Some(r) = top.raw("event_types") {
        let items: Vec<&RawValue> = serde_json::from_str(r.get())
            .map_err(|_| ValidationError::invalid("event_types", "must be an array of strings"))?;
        let mut types = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let name = format!("event_types[{i}]");
            let s: String = serde_json::from_str(item.get())
                .map_err(|_| ValidationError::invalid(&name, "must be a string"))?;
            let t = EventType::parse(&s).ok_or_else(|| {
                ValidationError::of_field(
                    "invalid_event_type",
                    &name,
                    format!(
                        "Field '{name}' is not a known event type ('{}').",
                        s.escape_debug()
                    ),
                )
            })?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        out.event_types = Some(types);
    } else if top.map.contains_key("event_types") {
        out.event_types = Some(Vec::new());
    }
    if top.map.contains_key("description") {
        let d = top.string("description")?;
        if let Some(d) = &d {
            check_text("description", d, MAX_DESCRIPTION_CHARS, false)?;
        }
        out.description = Some(d.filter(|d| !d.is_empty()));
    }
    if !creating && let Some(r) = top.raw("disabled") {
        out.disabled = Some(
            serde_json::from_str::<bool>(r.get())
                .map_err(|_| ValidationError::invalid("disabled", "must be true or false"))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str, creating: bool) -> (String, String) {
        let e = endpoint(body.as_bytes(), creating).unwrap_err();
        (e.code.to_string(), e.message)
    }

    #[test]
    fn a_create_needs_a_url_and_takes_known_event_types() {
        let e = endpoint(
            br#"{"url":"https://example.com/hooks","event_types":["signer.signed","signer.signed","signature_request.completed"],"description":"Prod"}"#,
            true,
        )
        .unwrap();
        assert_eq!(e.url.unwrap().as_str(), "https://example.com/hooks");
        assert_eq!(
            e.event_types.unwrap(),
            [
                EventType::SignerSigned,
                EventType::SignatureRequestCompleted
            ]
        );
        assert_eq!(e.description, Some(Some("Prod".into())));
        assert_eq!(err("{}", true).0, "missing_field");
        assert_eq!(
            err(
                r#"{"url":"https://a.example","event_types":["signer.sighed"]}"#,
                true
            ),
            (
                "invalid_event_type".into(),
                "Field 'event_types[0]' is not a known event type ('signer.sighed').".into()
            )
        );
        assert_eq!(
            err(r#"{"url":"https://a.example","disabled":true}"#, true).1,
            "Field 'disabled' is not a field of a webhook endpoint."
        );
    }

    #[test]
    fn urls_are_absolute_http_without_credentials_or_fragment() {
        for (url, what) in [
            ("example.com/hook", "is not an absolute URL"),
            ("ftp://example.com/", "must use https"),
            ("https://u:p@example.com/", "must not carry credentials"),
            ("https://example.com/#x", "must not have a fragment"),
        ] {
            let (code, message) = err(&format!(r#"{{"url":"{url}"}}"#), true);
            assert_eq!(code, "invalid_url");
            assert_eq!(message, format!("Field 'url' {what}."));
        }
        let long = format!("https://example.com/{}", "a".repeat(2000));
        assert_eq!(
            err(&format!(r#"{{"url":"{long}"}}"#), true).0,
            "invalid_url"
        );
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        assert_eq!(endpoint(b"{}", false).unwrap(), EndpointInput::default());
        let e = endpoint(
            br#"{"disabled":true,"description":null,"event_types":null}"#,
            false,
        )
        .unwrap();
        assert_eq!(e.disabled, Some(true));
        assert_eq!(e.description, Some(None));
        assert_eq!(e.event_types, Some(vec![]));
        assert_eq!(e.url, None);
        assert_eq!(err(r#"{"disabled":"yes"}"#, false).0, "invalid_field");
        assert_eq!(
            err(
                &format!(r#"{{"description":"{}"}}"#, "d".repeat(201)),
                false
            )
            .1,
            "Field 'description' must be at most 200 characters."
        );
        assert_eq!(err("[]", false).0, "invalid_json");
    }
}
