//! Organization settings, embedded signing sessions and signing-link rotation.

use crate::json::Json;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use signeur_core::time::{ms, ms_opt};
use signeur_core::{FailureCode, Locale, SessionResult, SessionStatus};
use signeur_service::settings::Settings;
use signeur_service::{ReplayCondition, SigningSession};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::guard::Caller;
use crate::signatures::IdempotencyHeader;

pub const TAG: &str = "Signing sessions and settings";

fn uuid_or_404(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

/// The organization's settings.
#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    /// URL prefixes a signing session's `return_url` must match (scheme, host and port
    /// exactly; path by prefix at a `/` boundary).
    #[schema(format = "uri")]
    pub allowed_return_urls: Vec<String>,
    /// Origins allowed to show embedded signing pages in a frame.
    #[schema(format = "uri")]
    pub allowed_frame_origins: Vec<String>,
    /// Whether a session secret exists (redirects then carry `signature`).
    pub session_secret_set: bool,
    /// The locale of signers created with no `locale` of their own in a request with no
    /// `locale` (`en` until set).
    pub default_locale: Locale,
    /// The name, colour and logo shown in the organization's emails and signing pages.
    pub branding: Option<BrandingView>,
    /// Where events go while the organization has no webhook endpoint (every event type;
    /// an endpoint that exists, even disabled, takes over).
    #[schema(format = "uri")]
    pub legacy_webhook_url: Option<String>,
    /// The legacy URL's signing secret (`X-Signeur-Signature`): only in the response of
    /// the `PATCH` that set `legacy_webhook_url` (each such PATCH draws a new one); null
    /// otherwise.
    #[schema(example = "whsec_…")]
    pub legacy_webhook_secret: Option<String>,
    /// Null until the settings are first changed.
    #[serde(serialize_with = "ms_opt::serialize")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Reminder emails of new requests that name no `reminders` of their own (email
    /// delivery): until set, first after 3 days, then every 3 days, at most 3; null: none.
    pub reminders: Option<signeur_core::validate::ReminderPolicy>,
}

/// The organization's branding.
#[derive(Serialize, ToSchema)]
pub struct BrandingView {
    /// Shown in the emails' greeting and footer and the signing pages' header.
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// `#rrggbb`: the emails' button and the pages' header.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", example = "#1a73e8")]
    pub color: Option<String>,
    /// A PNG or SVG logo, base64 (at most 200 KB decoded); shown on the signing pages.
    #[schema(format = "byte")]
    pub logo_base64: Option<String>,
}

/// `branding` in a settings `PATCH`: every field optional (null or absent: none).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BrandingPatch {
    #[schema(max_length = 100)]
    name: Option<String>,
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", example = "#1a73e8")]
    color: Option<String>,
    /// A PNG or SVG image, base64, at most 200 KB decoded (400 `invalid_base64`,
    /// `invalid_logo`, `logo_too_large`).
    #[schema(format = "byte")]
    logo_base64: Option<String>,
}

/// An absolute URL, at most 2000 characters as sent (the stored form is normalized).
#[derive(ToSchema)]
#[schema(value_type = String, format = "uri", max_length = 2000)]
#[allow(dead_code)]
pub struct AbsoluteUrl(String);

impl From<Settings> for SettingsView {
    fn from(s: Settings) -> Self {
        SettingsView {
            allowed_return_urls: s.allowed_return_urls,
            allowed_frame_origins: s.allowed_frame_origins,
            session_secret_set: s.session_secret_set,
            default_locale: s.default_locale,
            branding: s.branding.map(|b| BrandingView {
                name: b.name,
                color: b.color,
                logo_base64: b.logo_base64,
            }),
            legacy_webhook_url: s.legacy_webhook_url,
            legacy_webhook_secret: s.legacy_webhook_secret,
            updated_at: s.updated_at,
            reminders: s.reminders,
        }
    }
}

/// `PATCH /api/v1/settings`: fields present are replaced (`null` empties the list).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SettingsPatch {
    /// HTTPS URL prefixes (plain HTTP only on localhost, 127.0.0.1 or [::1]), without
    /// credentials, query or fragment.
    #[schema(max_items = 20, value_type = Option<Vec<AbsoluteUrl>>)]
    allowed_return_urls: Option<Vec<String>>,
    /// HTTPS origins (scheme, host and port; plain HTTP only on localhost, 127.0.0.1 or
    /// [::1]).
    #[schema(max_items = 20, value_type = Option<Vec<AbsoluteUrl>>)]
    allowed_frame_origins: Option<Vec<String>>,
    /// The reminder policy of requests created from now on (existing requests keep theirs);
    /// null: no reminders.
    reminders: Option<signeur_core::validate::ReminderPolicy>,
    /// `en`, `fi`, `fr` or `de` (400 `invalid_locale`); null: back to `en`. Requests
    /// created afterwards use it for signers without a locale.
    default_locale: Option<Locale>,
    /// The name, colour and logo of emails and signing pages; null removes them.
    branding: Option<BrandingPatch>,
    /// A single URL receiving every event while the organization has no webhook endpoint
    /// (the same URL and host rules as an endpoint's); the response carries its new
    /// `legacy_webhook_secret` once. Null removes it.
    #[schema(value_type = Option<AbsoluteUrl>)]
    legacy_webhook_url: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/settings", tag = TAG,
    summary = "The organization's settings",
    responses(
        (status = 200, description = "Settings", body = SettingsView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_settings(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(st.service.settings(caller.org_id).await?.into()))
}

#[utoipa::path(
    patch, path = "/api/v1/settings", tag = TAG,
    summary = "Change the organization's settings",
    request_body(content = SettingsPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Settings after the change", body = SettingsView),
        (status = 400, description = "Invalid body, URL, locale or logo (invalid_json, invalid_field, invalid_url, invalid_locale, invalid_base64, invalid_logo, logo_too_large)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn patch_settings(
    State(st): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(
        st.service
            .update_settings(caller.org_id, &body)
            .await?
            .into(),
    ))
}

/// The new session secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct SessionSecret {
    /// Key of the HMAC-SHA256 in the `signature` parameter of session redirects.
    #[schema(example = "sss_…")]
    pub session_secret: String,
}

#[utoipa::path(
    post, path = "/api/v1/settings/session-secret", tag = TAG,
    summary = "Create or rotate the session secret (returned once)",
    params(IdempotencyHeader),
    responses(
        (status = 200, description = "The new secret; the previous one stops signing at once", body = SessionSecret),
        (status = 400, description = "Invalid Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused for another request, or still in flight", body = ErrorBody),
        (status = 413, description = "Body over the route's limit (see `limits::body_limit`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_session_secret(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<SessionSecret>, ApiError> {
    Ok(Json(SessionSecret {
        session_secret: st.service.rotate_session_secret(caller.org_id).await?,
    }))
}

/// `POST …/sessions` body.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CreateSession {
    /// Where the browser returns; must match one of the organization's
    /// `allowed_return_urls`.
    #[schema(format = "uri", max_length = 2000)]
    return_url: String,
    /// Handed back verbatim in the redirect.
    #[schema(max_length = 1000)]
    state: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    pub signing_session_id: Uuid,
    /// One-time link to send the signer to; valid 15 minutes.
    #[schema(format = "uri")]
    pub redirect_url: String,
    #[serde(serialize_with = "ms::serialize")]
    pub expires_at: DateTime<Utc>,
}

#[utoipa::path(
    post, path = "/api/v1/signatures/{id}/signers/{signer_id}/sessions", tag = TAG,
    summary = "Start an embedded signing session",
    params(
        ("id" = Uuid, Path, description = "Signature request id"),
        ("signer_id" = Uuid, Path, description = "Signer id"),
        IdempotencyHeader,
    ),
    request_body(content = CreateSession, content_type = "application/json"),
    responses(
        (status = 201, description = "Session created (the same one is replayed for the same Idempotency-Key while it is usable)", body = SessionCreated),
        (status = 400, description = "Invalid body, or return_url_not_allowed", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request or signer in this organization", body = ErrorBody),
        (status = 409, description = "The request or signer can no longer sign, it is not their turn, or an Idempotency-Key conflict", body = ErrorBody),
        (status = 413, description = "Body over the route's limit (see `limits::body_limit`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_session(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, signer_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Extension<ReplayCondition>, Json<SessionCreated>), ApiError> {
    let id = uuid_or_404(&id, "Signature request")?;
    let signer_id = uuid_or_404(&signer_id, "Signer")?;
    let s = st
        .service
        .create_session(caller.org_id, id, signer_id, &body)
        .await?;
    Ok((
        StatusCode::CREATED,
        Extension(s.replay_condition()),
        Json(SessionCreated {
            signing_session_id: s.id,
            redirect_url: s.redirect_url,
            expires_at: s.expires_at,
        }),
    ))
}

/// A signing session, for polling.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub signing_session_id: Uuid,
    pub signature_request_id: Uuid,
    pub signer_id: Uuid,
    pub status: SessionStatus,
    /// Null until completed.
    pub result: Option<SessionResult>,
    /// Set when `result` is `failed`.
    pub failure_code: Option<FailureCode>,
    #[schema(format = "uri")]
    pub return_url: String,
    pub state: Option<String>,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ms::serialize")]
    pub expires_at: DateTime<Utc>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<SigningSession> for SessionView {
    fn from(s: SigningSession) -> Self {
        SessionView {
            signing_session_id: s.id,
            signature_request_id: s.request_id,
            signer_id: s.signer_id,
            status: s.status,
            result: s.result,
            failure_code: s.failure_code,
            return_url: s.return_url,
            state: s.state,
            created_at: s.created_at,
            expires_at: s.expires_at,
            opened_at: s.opened_at,
            completed_at: s.completed_at,
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/signatures/{id}/signers/{signer_id}/sessions/{session_id}", tag = TAG,
    summary = "A signing session's status and result",
    params(
        ("id" = Uuid, Path, description = "Signature request id"),
        ("signer_id" = Uuid, Path, description = "Signer id"),
        ("session_id" = Uuid, Path, description = "Signing session id"),
    ),
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such session for this signer in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_session(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, signer_id, session_id)): Path<(String, String, String)>,
) -> Result<Json<SessionView>, ApiError> {
    let id = uuid_or_404(&id, "Signature request")?;
    let signer_id = uuid_or_404(&signer_id, "Signer")?;
    let session_id = uuid_or_404(&session_id, "Signing session")?;
    Ok(Json(
        st.service
            .get_session(caller.org_id, id, signer_id, session_id)
            .await?
            .into(),
    ))
}

/// The signer's new link.
#[derive(Serialize, ToSchema)]
pub struct RotatedLink {
    pub signer_id: Uuid,
    pub access_token: String,
    #[schema(format = "uri")]
    pub sign_url: String,
}

#[utoipa::path(
    post, path = "/api/v1/signatures/{id}/signers/{signer_id}/rotate-link", tag = TAG,
    summary = "Issue a new signing link (the old one answers 410)",
    params(
        ("id" = Uuid, Path, description = "Signature request id"),
        ("signer_id" = Uuid, Path, description = "Signer id"),
        IdempotencyHeader,
    ),
    responses(
        (status = 200, description = "The new link", body = RotatedLink),
        (status = 400, description = "Invalid Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request or signer in this organization", body = ErrorBody),
        (status = 409, description = "The request or signer is no longer open, or an Idempotency-Key conflict", body = ErrorBody),
        (status = 413, description = "Body over the route's limit (see `limits::body_limit`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_link(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, signer_id)): Path<(String, String)>,
) -> Result<Json<RotatedLink>, ApiError> {
    let id = uuid_or_404(&id, "Signature request")?;
    let signer_id = uuid_or_404(&signer_id, "Signer")?;
    let (_, signer) = st.service.rotate_link(caller.org_id, id, signer_id).await?;
    Ok(Json(RotatedLink {
        signer_id: signer.id,
        sign_url: st.service.sign_url(&signer.access_token),
        access_token: signer.access_token,
    }))
}
