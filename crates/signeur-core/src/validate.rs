//! Validation of a create request. Every refusal names the field, with the error code the
//! wire contract gives it. The body is walked by hand (not derived) so a wrong type, an
//! unknown locale or an over-long string each get their own code and a message naming the
//! exact field, e.g. `signers[2].email`.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};

use serde_json::value::RawValue;

use crate::model::{Delivery, Locale, SigningOrder};
use crate::time;

pub const MAX_SIGNERS: usize = 20;
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 2000;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_FILENAME_CHARS: usize = 255;
pub const DEFAULT_EXPIRY_DAYS: i64 = 30;
pub const MAX_EXPIRY_DAYS: i64 = 365;
/// Bounds of a reminder policy: days before the first reminder and between reminders, and
/// how many reminders at most.
pub const MAX_REMINDER_DAYS: u32 = 365;
pub const MAX_REMINDERS: u32 = 10;

/// A refusal: the wire error code and a message that names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub code: &'static str,
    pub message: String,
    /// The field refused, as data (forms show it by its label), when one field is at fault.
    pub field: Option<String>,
}

impl ValidationError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }
    /// A refusal of one field: `message` names it as the wire does.
    pub fn of_field(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(code, message)
        }
    }
    fn missing(field: &str) -> Self {
        Self::of_field(
            "missing_field",
            field,
            format!("Field '{field}' is required."),
        )
    }
    fn invalid(field: &str, what: &str) -> Self {
        Self::of_field("invalid_field", field, format!("Field '{field}' {what}."))
    }
}

type Result<T> = std::result::Result<T, ValidationError>;

/// A valid create request, ready for the PDF check and the database.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub title: String,
    pub message: Option<String>,
    pub locale: Locale,
    pub delivery: Delivery,
    pub signing_order: SigningOrder,
    pub expires_at: DateTime<Utc>,
    /// The client's metadata object exactly as sent.
    pub metadata: Option<String>,
    pub signers: Vec<NewSigner>,
    pub document: NewDocument,
    /// `reminders`: absent (`None`: the organization's policy), `null` (`Some(None)`: no
    /// reminders) or a policy.
    pub reminders: Option<Option<ReminderPolicy>>,
}

/// When reminder emails go to a signer who has not acted: the first `first_after_days`
/// after their invitation, then every `every_days`, at most `max` of them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct ReminderPolicy {
    /// Days from the invitation to the first reminder.
    #[schema(minimum = 1, maximum = 365)]
    pub first_after_days: u32,
    /// Days between reminders after the first.
    #[schema(minimum = 1, maximum = 365)]
    pub every_days: u32,
    /// Reminders at most (0: none).
    #[schema(minimum = 0, maximum = 10)]
    pub max: u32,
}

impl ReminderPolicy {
    /// The policy of an organization that never set one.
    pub const DEFAULT: ReminderPolicy = ReminderPolicy {
        first_after_days: 3,
        every_days: 3,
        max: 3,
    };
}

/// Reads a reminder policy: `null` is `None` (no reminders); every field is required and an
/// integer within its bounds. `field` names the value in messages (`reminders`).
pub fn reminder_policy(raw: &RawValue, field: &str) -> Result<Option<ReminderPolicy>> {
    if raw.get().trim() == "null" {
        return Ok(None);
    }
    let f = Fields::parse(raw, field)?.ok_or_else(|| {
        ValidationError::invalid(
            field,
            "must be an object with 'first_after_days', 'every_days' and 'max', or null",
        )
    })?;
    let int = |k: &str, min: u32, max: u32| -> Result<u32> {
        let name = f.name(k);
        let raw = f.raw(k).ok_or_else(|| ValidationError::missing(&name))?;
        serde_json::from_str::<f64>(raw.get())
            .ok()
            .filter(|v| v.fract() == 0.0 && (f64::from(min)..=f64::from(max)).contains(v))
            .map(|v| v as u32)
            .ok_or_else(|| {
                ValidationError::invalid(&name, &format!("must be an integer from {min} to {max}"))
            })
    };
    Ok(Some(ReminderPolicy {
        first_after_days: int("first_after_days", 1, MAX_REMINDER_DAYS)?,
        every_days: int("every_days", 1, MAX_REMINDER_DAYS)?,
        max: int("max", 0, MAX_REMINDERS)?,
    }))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSigner {
    pub email: Option<String>,
    pub name: Option<String>,
    pub locale: Locale,
    /// Where the signer's visible signature block goes (checked against the document's pages
    /// once the PDF has been read).
    pub signature_position: Option<SignaturePosition>,
}

/// `signers[].signature_position`: a 1-based page and the block's top-left corner, in PDF
/// points (1/72 inch) from the page's top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SignaturePosition {
    /// Page number, from 1 (at most the document's page count).
    #[schema(value_type = i64, minimum = 1, maximum = 4294967295u64)]
    pub page: u32,
    /// Points from the page's left edge.
    #[schema(minimum = 0, maximum = 14400)]
    pub x: f32,
    /// Points from the page's top edge.
    #[schema(minimum = 0, maximum = 14400)]
    pub y: f32,
}

impl Eq for SignaturePosition {}

impl SignaturePosition {
    /// The stored form.
    pub fn to_json(self) -> String {
        serde_json::json!({"page": self.page, "x": self.x, "y": self.y}).to_string()
    }

    /// From the stored form; `None` if it is not one.
    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

/// Largest page coordinate accepted (PDF's own page-size limit is 14 400 points).
const MAX_COORDINATE: f64 = 14_400.0;

fn signature_position(f: &Fields<'_>) -> Result<Option<SignaturePosition>> {
    let key = "signature_position";
    let Some(raw) = f.raw(key) else {
        return Ok(None);
    };
    let name = f.name(key);
    let p = Fields::parse(raw, &name)?.ok_or_else(|| {
        ValidationError::invalid(&name, "must be an object with 'page', 'x' and 'y'")
    })?;
    let number = |k: &str| -> Result<f64> {
        let field = p.name(k);
        let raw = p.raw(k).ok_or_else(|| ValidationError::missing(&field))?;
        serde_json::from_str::<f64>(raw.get())
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| ValidationError::invalid(&field, "must be a number"))
    };
    let page = number("page")?;
    if page.fract() != 0.0 || !(1.0..=f64::from(u32::MAX)).contains(&page) {
        return Err(ValidationError::invalid(
            &p.name("page"),
            "must be a page number starting at 1",
        ));
    }
    let mut coords = [0.0f32; 2];
    for (slot, k) in coords.iter_mut().zip(["x", "y"]) {
        let v = number(k)?;
        if !(0.0..=MAX_COORDINATE).contains(&v) {
            return Err(ValidationError::invalid(
                &p.name(k),
                "must be between 0 and 14400 points from the page's top-left corner",
            ));
        }
        *slot = v as f32;
    }
    Ok(Some(SignaturePosition {
        page: page as u32,
        x: coords[0],
        y: coords[1],
    }))
}

#[derive(Clone)]
pub struct NewDocument {
    pub filename: String,
    pub content: Vec<u8>,
}

impl std::fmt::Debug for NewDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDocument")
            .field("filename", &self.filename)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// The top-level JSON object, its values left unparsed until asked for.
struct Fields<'a> {
    map: HashMap<String, &'a RawValue>,
    prefix: String,
}

impl<'a> Fields<'a> {
    fn parse(raw: &'a RawValue, prefix: &str) -> Result<Option<Self>> {
        let trimmed = raw.get().trim_start();
        if !trimmed.starts_with('{') {
            return Ok(None);
        }
        let map = serde_json::from_str(raw.get())
            .map_err(|e| ValidationError::new("invalid_json", format!("Malformed JSON: {e}")))?;
        Ok(Some(Fields {
            map,
            prefix: prefix.to_string(),
        }))
    }

    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// The raw value, JSON null included (for fields where null means something).
    fn raw_or_null(&self, key: &str) -> Option<&'a RawValue> {
        #[cfg(test)]
        tests::contract::record_read(&self.name(key));
        self.map.get(key).copied()
    }

    /// The raw value, with JSON null treated as absent.
    fn raw(&self, key: &str) -> Option<&'a RawValue> {
        #[cfg(test)]
        tests::contract::record_read(&self.name(key));
        self.map
            .get(key)
            .copied()
            .filter(|r| r.get().trim() != "null")
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.raw(key) {
            None => Ok(None),
            Some(r) => serde_json::from_str::<String>(r.get())
                .map(Some)
                .map_err(|_| ValidationError::invalid(&self.name(key), "must be a string")),
        }
    }

    fn text(&self, key: &str, max_chars: usize, allow_newlines: bool) -> Result<Option<String>> {
        let Some(s) = self.string(key)? else {
            return Ok(None);
        };
        check_text(&self.name(key), &s, max_chars, allow_newlines)?;
        Ok(Some(s))
    }

    fn locale(&self, key: &str) -> Result<Option<Locale>> {
        match self.raw(key) {
            None => Ok(None),
            Some(r) => serde_json::from_str::<String>(r.get())
                .ok()
                .and_then(|s| Locale::parse(&s))
                .map(Some)
                .ok_or_else(|| {
                    ValidationError::new(
                        "invalid_locale",
                        format!(
                            "Field '{}' must be one of 'en', 'fi', 'fr', 'de'.",
                            self.name(key)
                        ),
                    )
                }),
        }
    }
}

fn check_text(field: &str, s: &str, max_chars: usize, allow_newlines: bool) -> Result<()> {
    if s.chars().count() > max_chars {
        return Err(ValidationError::invalid(
            field,
            &format!("must be at most {max_chars} characters"),
        ));
    }
    let bad = s
        .chars()
        .any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')));
    if bad {
        return Err(ValidationError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Whether `s` is an address we will put in a `To:` header.
pub fn is_valid_email(s: &str) -> bool {
    s.len() <= MAX_EMAIL_CHARS
        && !s.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
        && email_address::EmailAddress::is_valid(s)
        && s.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

fn email_error(field: &str) -> ValidationError {
    ValidationError::new(
        "invalid_signer_email",
        format!("Field '{field}' is missing or not a valid email."),
    )
}

/// Validates the body of `POST /api/v1/signatures` (signers without a locale, in a request
/// without one, speak English).
pub fn create_request(body: &[u8], now: DateTime<Utc>) -> Result<NewRequest> {
    create_request_with_locale(body, now, Locale::En)
}

/// As [`create_request`], with the organization's `default_locale` for signers that name no
/// locale in a request that names none.
pub fn create_request_with_locale(
    body: &[u8],
    now: DateTime<Utc>,
    default_locale: Locale,
) -> Result<NewRequest> {
    let raw: &RawValue = serde_json::from_slice(body)
        .map_err(|e| ValidationError::new("invalid_json", format!("Malformed JSON: {e}")))?;
    let top = Fields::parse(raw, "")?.ok_or_else(|| {
        ValidationError::new("invalid_json", "The request body must be a JSON object.")
    })?;

    let title = top
        .text("title", MAX_TITLE_CHARS, false)?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ValidationError::missing("title"))?;
    let message = top.text("message", MAX_MESSAGE_CHARS, true)?;
    let locale = top.locale("locale")?.unwrap_or(default_locale);

    let delivery = match top.string("delivery")? {
        None => None,
        Some(s) => Some(
            Delivery::parse(&s)
                .ok_or_else(|| ValidationError::invalid("delivery", "must be 'email' or 'api'"))?,
        ),
    };
    let signing_order = match top.string("signing_order")? {
        None => SigningOrder::Parallel,
        Some(s) => SigningOrder::parse(&s).ok_or_else(|| {
            ValidationError::invalid("signing_order", "must be 'parallel' or 'sequential'")
        })?,
    };

    let expires_at = match top.string("expires_at")? {
        None => now + Duration::days(DEFAULT_EXPIRY_DAYS),
        Some(s) => {
            let t = time::parse(&s).ok_or_else(|| {
                ValidationError::invalid("expires_at", "must be an RFC 3339 timestamp")
            })?;
            let t = time::truncate_ms(t);
            if t <= now {
                return Err(ValidationError::invalid(
                    "expires_at",
                    "must be in the future",
                ));
            }
            if t > now + Duration::days(MAX_EXPIRY_DAYS) {
                return Err(ValidationError::invalid(
                    "expires_at",
                    "must be at most 365 days ahead",
                ));
            }
            t
        }
    };

    let metadata = match top.raw("metadata") {
        None => None,
        Some(r) => {
            let text = r.get().trim();
            if !text.starts_with('{') {
                return Err(ValidationError::invalid(
                    "metadata",
                    "must be a JSON object",
                ));
            }
            if text.len() > MAX_METADATA_BYTES {
                return Err(ValidationError::invalid(
                    "metadata",
                    &format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
                ));
            }
            Some(text.to_string())
        }
    };

    let signers = signers(&top, locale)?;
    let delivery = match delivery {
        Some(Delivery::Email) => {
            for (i, s) in signers.iter().enumerate() {
                if s.email.is_none() {
                    return Err(email_error(&signer_field(&top, i, "email")));
                }
            }
            Delivery::Email
        }
        Some(Delivery::Api) => Delivery::Api,
        // Signers without an email imply that the integrator hands out the links.
        None if signers.iter().any(|s| s.email.is_none()) => Delivery::Api,
        None => Delivery::Email,
    };

    let document = document(&top)?;
    let reminders = match top.raw_or_null("reminders") {
        None => None,
        Some(raw) => Some(reminder_policy(raw, "reminders")?),
    };

    Ok(NewRequest {
        title,
        message,
        locale,
        delivery,
        signing_order,
        expires_at,
        metadata,
        signers,
        document,
        reminders,
    })
}

fn signer_field(top: &Fields<'_>, i: usize, key: &str) -> String {
    if top.raw("signers").is_none() && i == 0 {
        format!("signer_{key}")
    } else {
        format!("signers[{i}].{key}")
    }
}

fn signers(top: &Fields<'_>, default_locale: Locale) -> Result<Vec<NewSigner>> {
    let Some(raw) = top.raw("signers") else {
        // The legacy single-signer body.
        if top.raw("signer_email").is_some() || top.raw("signer_name").is_some() {
            let email = top
                .string("signer_email")
                .map_err(|_| email_error("signer_email"))?;
            let email = match email {
                Some(e) if is_valid_email(&e) => e,
                _ => return Err(email_error("signer_email")),
            };
            let name = top.text("signer_name", MAX_NAME_CHARS, false)?;
            return Ok(vec![NewSigner {
                email: Some(email),
                name,
                locale: default_locale,
                signature_position: None,
            }]);
        }
        return Err(ValidationError::new(
            "no_signers",
            "Field 'signers' must contain at least one signer.",
        ));
    };
    let items: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| ValidationError::invalid("signers", "must be an array of signer objects"))?;
    if items.is_empty() {
        return Err(ValidationError::new(
            "no_signers",
            "Field 'signers' must contain at least one signer.",
        ));
    }
    if items.len() > MAX_SIGNERS {
        return Err(ValidationError::new(
            "too_many_signers",
            format!(
                "Field 'signers' has {} signers; at most {MAX_SIGNERS} are allowed.",
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let prefix = format!("signers[{i}]");
            let f = Fields::parse(item, &prefix)?
                .ok_or_else(|| ValidationError::invalid(&prefix, "must be an object"))?;
            let email = match f.raw("email") {
                None => None,
                Some(_) => match f.string("email") {
                    Ok(Some(e)) if is_valid_email(&e) => Some(e),
                    _ => return Err(email_error(&f.name("email"))),
                },
            };
            let name = f.text("name", MAX_NAME_CHARS, false)?;
            let locale = f.locale("locale")?.unwrap_or(default_locale);
            let signature_position = signature_position(&f)?;
            Ok(NewSigner {
                email,
                name,
                locale,
                signature_position,
            })
        })
        .collect()
}

fn document(top: &Fields<'_>) -> Result<NewDocument> {
    let raw = top
        .raw("document")
        .ok_or_else(|| ValidationError::missing("document"))?;
    let f = Fields::parse(raw, "document")?
        .ok_or_else(|| ValidationError::invalid("document", "must be an object"))?;
    let filename = f
        .text("filename", MAX_FILENAME_CHARS, false)?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ValidationError::missing("document.filename"))?;
    if filename.contains(['/', '\\']) {
        return Err(ValidationError::invalid(
            "document.filename",
            "must be a file name, not a path",
        ));
    }
    let content = f
        .string("content_base64")?
        .ok_or_else(|| ValidationError::missing("document.content_base64"))?;
    Ok(NewDocument {
        filename,
        content: decode_base64(&content)?,
    })
}

/// Standard base64, padded or not, line breaks tolerated (MIME-style wrapping).
fn decode_base64(s: &str) -> Result<Vec<u8>> {
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    // Cheap size check before any decoding work: 4 characters carry 3 bytes, whitespace none
    // (counted out only when the raw length is over).
    let over = |chars: usize| chars / 4 * 3 > MAX_DOCUMENT_BYTES + 3;
    if over(s.len()) && over(s.bytes().filter(|b| !b.is_ascii_whitespace()).count()) {
        return Err(too_large());
    }
    // Most uploads are one unbroken line: decode directly, and strip line breaks only when
    // that fails.
    let decoded = match ENGINE.decode(s) {
        Err(_) if s.bytes().any(|b| b.is_ascii_whitespace()) => {
            let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            ENGINE.decode(&compact)
        }
        decoded => decoded,
    };
    let bytes = decoded.map_err(|_| {
        ValidationError::new(
            "invalid_base64",
            "Field 'document.content_base64' is not valid base64.",
        )
    })?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large());
    }
    if bytes.is_empty() {
        return Err(ValidationError::new(
            "not_a_pdf",
            "Field 'document.content_base64' is empty.",
        ));
    }
    Ok(bytes)
}

fn too_large() -> ValidationError {
    ValidationError::new(
        "document_too_large",
        format!(
            "Field 'document.content_base64' decodes to more than {} MB.",
            MAX_DOCUMENT_BYTES / 1024 / 1024
        ),
    )
}

/// An optional JSON object body: none, empty or `null` (the documented bodies are optional
/// and nullable) is `None`.
fn optional_object(body: &[u8]) -> Result<Option<Fields<'_>>> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        return Ok(None);
    }
    let raw: &RawValue = serde_json::from_slice(body)
        .map_err(|e| ValidationError::new("invalid_json", format!("Malformed JSON: {e}")))?;
    Fields::parse(raw, "")?.map(Some).ok_or_else(|| {
        ValidationError::new("invalid_json", "The request body must be a JSON object.")
    })
}

/// Validates the optional body of a cancel: `{ "reason": "…" }`.
pub fn cancel_reason(body: &[u8]) -> Result<Option<String>> {
    match optional_object(body)? {
        Some(top) => top.text("reason", MAX_REASON_CHARS, true),
        None => Ok(None),
    }
}

/// Validates the optional body of a resend: `{ "locale": "fi" }`.
pub fn resend_locale(body: &[u8]) -> Result<Option<Locale>> {
    match optional_object(body)? {
        Some(top) => top.locale("locale"),
        None => Ok(None),
    }
}

pub mod schema;
#[cfg(test)]
mod tests;
pub mod webhook;

/// A required text field of a signing-page form: trimmed, 1 to `max` characters, no
/// control characters (line breaks allowed when `multiline`).
pub fn form_text(field: &str, value: &str, max: usize, multiline: bool) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ValidationError::missing(field));
    }
    if v.chars().count() > max {
        return Err(ValidationError::invalid(
            field,
            &format!("must be at most {max} characters"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(ValidationError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_string())
}
