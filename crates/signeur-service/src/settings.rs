//! Organization settings: the allowed return URLs and frame origins of embedded signing, and
//! the secret that signs the session redirects.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::Value;
use uuid::Uuid;

use signeur_core::validate::ReminderPolicy;
use signeur_store::SettingsRow;

use crate::{Result, Service, ServiceError};

const MAX_URLS: usize = 20;

/// An organization's settings as the API shows them.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub allowed_return_urls: Vec<String>,
    pub allowed_frame_origins: Vec<String>,
    pub session_secret_set: bool,
    pub updated_at: Option<DateTime<Utc>>,
    /// The reminder policy of new requests (the default until set); None: no reminders.
    pub reminders: Option<ReminderPolicy>,
}

fn invalid_url(field: &str, what: &str) -> ServiceError {
    ServiceError::invalid("invalid_url", format!("Field '{field}' {what}."))
}

/// An allowed return-URL prefix: HTTPS (or plain HTTP on localhost / 127.0.0.1 / [::1]),
/// no credentials, query or fragment.
fn checked_prefix(field: &str, raw: &str, origin_only: bool) -> Result<String> {
    if raw.len() > 2000 {
        return Err(invalid_url(field, "is longer than 2000 characters"));
    }
    let u = url::Url::parse(raw).map_err(|_| invalid_url(field, "is not an absolute URL"))?;
    let local = matches!(
        u.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    );
    match u.scheme() {
        "https" => {}
        "http" if local => {}
        _ => {
            return Err(invalid_url(
                field,
                "must use https (http only for localhost or 127.0.0.1)",
            ));
        }
    }
    if u.host_str().is_none() || !u.username().is_empty() || u.password().is_some() {
        return Err(invalid_url(field, "must name a host and no credentials"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(invalid_url(field, "must not have a query or fragment"));
    }
    if origin_only {
        if u.path() != "/" {
            return Err(invalid_url(
                field,
                "must be an origin (scheme, host and port only)",
            ));
        }
        return Ok(u.origin().ascii_serialization());
    }
    Ok(u.to_string())
}

/// The wire decisions' rule: scheme, host and port exactly; path by prefix at a `/`
/// boundary.
pub fn return_url_allowed(allowed: &[String], candidate: &str) -> bool {
    let Ok(c) = url::Url::parse(candidate) else {
        return false;
    };
    if c.fragment().is_some() || !c.username().is_empty() || c.password().is_some() {
        return false;
    }
    allowed.iter().any(|a| {
        let Ok(a) = url::Url::parse(a) else {
            return false;
        };
        if a.scheme() != c.scheme()
            || a.host_str() != c.host_str()
            || a.port_or_known_default() != c.port_or_known_default()
        {
            return false;
        }
        let (ap, cp) = (a.path(), c.path());
        ap == cp || (cp.starts_with(ap) && (ap.ends_with('/') || cp[ap.len()..].starts_with('/')))
    })
}

fn string_list(v: &Value, field: &str, origin_only: bool) -> Result<Vec<String>> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    let items = v.as_array().ok_or_else(|| {
        ServiceError::invalid(
            "invalid_field",
            format!("Field '{field}' must be an array of URLs."),
        )
    })?;
    if items.len() > MAX_URLS {
        return Err(ServiceError::invalid(
            "invalid_field",
            format!("Field '{field}' holds at most {MAX_URLS} entries."),
        ));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = format!("{field}[{i}]");
        let s = item.as_str().ok_or_else(|| {
            ServiceError::invalid("invalid_field", format!("Field '{name}' must be a string."))
        })?;
        let url = checked_prefix(&name, s.trim(), origin_only)?;
        if !out.contains(&url) {
            out.push(url);
        }
    }
    Ok(out)
}

pub(crate) fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ServiceError::invalid("invalid_json", format!("Malformed JSON: {e}")))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ServiceError::invalid(
            "invalid_json",
            "The request body must be a JSON object.",
        )),
    }
}

impl Service {
    fn view(row: Option<&SettingsRow>) -> Settings {
        let Some(row) = row else {
            return Settings::default();
        };
        Settings {
            allowed_return_urls: serde_json::from_str(&row.allowed_return_urls).unwrap_or_default(),
            allowed_frame_origins: serde_json::from_str(&row.allowed_frame_origins)
                .unwrap_or_default(),
            session_secret_set: row.session_secret.is_some(),
            updated_at: Some(row.updated_at),
            reminders: None,
        }
    }

    /// `GET /api/v1/settings`.
    pub async fn settings(&self, org_id: Uuid) -> Result<Settings> {
        let stored = self.db.get_settings(org_id).await?;
        let mut settings = Self::view(stored.as_ref());
        settings.reminders = self.org_reminder_policy(org_id).await?;
        Ok(settings)
    }

    /// `PATCH /api/v1/settings`: the fields present are replaced, each column on its own
    /// (a concurrent PATCH of another field or a secret rotation stands).
    pub async fn update_settings(&self, org_id: Uuid, body: &[u8]) -> Result<Settings> {
        let m = json_object(body)?;
        for key in m.keys() {
            if !matches!(
                key.as_str(),
                "allowed_return_urls" | "allowed_frame_origins" | "reminders"
            ) {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    format!("Field '{key}' is not a setting."),
                ));
            }
        }
        let list = |field: &str, origin_only: bool| -> Result<Option<String>> {
            match m.get(field) {
                None => Ok(None),
                Some(v) => Ok(Some(
                    serde_json::to_string(&string_list(v, field, origin_only)?)
                        .unwrap_or_else(|_| "[]".into()),
                )),
            }
        };
        let return_urls = list("allowed_return_urls", false)?;
        let frame_origins = list("allowed_frame_origins", true)?;
        let reminders = match m.get("reminders") {
            None => None,
            Some(v) => {
                let raw = serde_json::value::to_raw_value(v).map_err(|e| {
                    ServiceError::invalid("invalid_json", format!("Malformed JSON: {e}"))
                })?;
                let policy = signeur_core::validate::reminder_policy(&raw, "reminders")?;
                Some(serde_json::to_string(&policy).unwrap_or_else(|_| "null".into()))
            }
        };
        // One transaction: a PATCH applies whole or not at all.
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        if let Some(reminders) = &reminders {
            tx.set_reminders_setting(org_id, reminders, now).await?;
        }
        let row = tx
            .update_settings_lists(
                org_id,
                return_urls.as_deref(),
                frame_origins.as_deref(),
                now,
            )
            .await?;
        tx.commit().await?;
        let mut settings = Self::view(Some(&row));
        settings.reminders = self.org_reminder_policy(org_id).await?;
        Ok(settings)
    }

    /// `POST /api/v1/settings/session-secret`: a new secret (the old one stops signing
    /// redirects at once), returned this once. Only the secret's column is written.
    pub async fn rotate_session_secret(&self, org_id: Uuid) -> Result<String> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!(
            "sss_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let sealed = self.keys.encrypt("session-secret", secret.as_bytes());
        self.db
            .set_session_secret(org_id, &sealed, self.clock.now())
            .await?;
        Ok(secret)
    }

    /// The origins allowed to frame this organization's embedded signing pages.
    pub(crate) async fn frame_origins(&self, org_id: Uuid) -> Result<Vec<String>> {
        Ok(self.settings(org_id).await?.allowed_frame_origins)
    }
}
