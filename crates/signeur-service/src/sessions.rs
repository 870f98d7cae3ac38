//! Embedded signing sessions (the integrator authenticates the signer and sends them to a
//! one-time `redirect_url`; the signer comes back to `return_url` with the result, checked
//! against the organization's settings), and signing-link rotation.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use signeur_core::{EventType, FailureCode, SessionResult, SessionStatus, SignerStatus};
use signeur_store::{SessionRow, SignerRow};

use crate::link_tokens::token_hash;
use crate::links::new_access_token;
use crate::links::{Admission, PageCredentials, SESSION_TTL, SignerSession, SigningLink};
use crate::model::effective_status;
use crate::model::{SignatureRequest, Signer, SigningSession};
use crate::settings::{json_object, return_url_allowed};
use crate::{Result, Service, ServiceError, events};

/// How long a `redirect_url` token stays usable.
pub const SESSION_TOKEN_TTL: Duration = Duration::minutes(15);
const MAX_STATE_CHARS: usize = 1000;

/// A created (or replayed) session.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    pub id: Uuid,
    pub redirect_url: String,
    pub expires_at: DateTime<Utc>,
}

impl CreatedSession {
    /// A replay of this create (same `Idempotency-Key`) stands only while the session is
    /// still usable; after that the key creates a new session.
    pub fn replay_condition(&self) -> crate::ReplayCondition {
        crate::ReplayCondition::SigningSessionUsable { id: self.id }
    }
}

/// A signer page shown inside an embedded session.
#[derive(Debug, Clone)]
pub struct EmbeddedContext {
    pub session: SigningSession,
    /// The organization's `allowed_frame_origins`.
    pub frame_origins: Vec<String>,
}

impl EmbeddedContext {
    /// The origin (`scheme://host[:port]`) of the session's return URL: where the pages'
    /// forms may end after their redirect.
    pub fn return_origin(&self) -> Option<String> {
        url::Url::parse(&self.session.return_url)
            .ok()
            .map(|u| u.origin())
            .filter(|o| o.is_tuple())
            .map(|o| o.ascii_serialization())
    }
}

/// A page request that may belong to an embedded session (see [`Service::page_frame`]).
#[derive(Debug, Clone, Copy)]
pub enum FramedPage<'a> {
    /// The one-time `redirect_url` with this token, used or not.
    OneTime(&'a str),
    /// A page under signing link `token`, from a browser holding this embed cookie.
    Link {
        token: &'a str,
        embed: Option<&'a str>,
    },
}

/// How an embedded session ends: its result and, for a failure, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    Success,
    Cancelled,
    Failed(FailureCode),
}

impl SessionOutcome {
    fn parts(self) -> (SessionResult, Option<FailureCode>) {
        match self {
            SessionOutcome::Success => (SessionResult::Success, None),
            SessionOutcome::Cancelled => (SessionResult::Cancelled, None),
            SessionOutcome::Failed(code) => (SessionResult::Failed, Some(code)),
        }
    }
}

/// What opening a `redirect_url` leads to.
#[derive(Debug, Clone)]
pub enum SessionOpening {
    /// Unknown token: a 404 page (no return URL is known).
    NotFound,
    /// Back to the integrator with this result.
    Return(String),
    /// The signing page, with the signer session and this embedded session.
    Sign {
        access_token: String,
        /// The embed cookie's value (see [`Service::embed_cookie`]).
        embed_cookie: String,
        /// Valid while this embedded session is open.
        signer_session: SignerSession,
    },
}

/// Where an embedded session's Cancel button ends; the page maps each to a template or a
/// redirect.
#[derive(Debug)]
pub enum CancelOnPage {
    /// No link has this token.
    NotFound,
    /// The form's CSRF token does not match the browser.
    CsrfFailed(Box<SigningLink>),
    /// The browser is in no embedded session: back to the link.
    NotEmbedded(Box<SigningLink>),
    /// The session ended `cancelled`: back to the integrator at this URL.
    Return(String),
}

/// Completes `session` inside the caller's transaction (the request row locked as `r`):
/// the `signing_session.completed` event to write with the row, or None when the session
/// was completed already.
pub(crate) async fn complete_in(
    tx: &mut signeur_store::Tx,
    r: &mut signeur_store::RequestRow,
    session: &SigningSession,
    result: SessionOutcome,
    now: DateTime<Utc>,
) -> Result<Option<signeur_store::EventRow>> {
    let (result_str, failure_code) = result.parts();
    if !tx
        .complete_session(session.id, result_str, failure_code, now)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(events::append(
        r,
        Some(session.signer_id),
        EventType::SigningSessionCompleted,
        json!({
            "signature_request_id": session.request_id,
            "signing_session_id": session.id,
            "signer_id": session.signer_id,
            "result": result_str,
            "failure_code": failure_code,
        }),
        now,
    )))
}

impl Service {
    /// `POST …/signers/{signer_id}/sessions`.
    pub async fn create_session(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        body: &[u8],
    ) -> Result<CreatedSession> {
        let request = self
            .db
            .get_request(org_id, request_id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let signer = self
            .db
            .get_signer(request_id, signer_id)
            .await?
            .ok_or(ServiceError::NotFound("Signer"))?;
        let m = json_object(body)?;
        let return_url = match m.get("return_url") {
            None | Some(Value::Null) => {
                return Err(ServiceError::invalid(
                    "missing_field",
                    "Field 'return_url' is required.",
                ));
            }
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    "Field 'return_url' must be a string.",
                ));
            }
        };
        let state = match m.get("state") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= MAX_STATE_CHARS => Some(s.clone()),
            Some(Value::String(_)) => {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    format!("Field 'state' must be at most {MAX_STATE_CHARS} characters."),
                ));
            }
            Some(_) => {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    "Field 'state' must be a string.",
                ));
            }
        };
        for key in m.keys() {
            if !matches!(key.as_str(), "return_url" | "state") {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    format!("Field '{key}' is not accepted here."),
                ));
            }
        }
        if return_url.len() > 2000 || url::Url::parse(&return_url).is_err() {
            return Err(ServiceError::invalid(
                "invalid_url",
                "Field 'return_url' must be an absolute URL.",
            ));
        }
        let settings = self.settings(org_id).await?;
        if !return_url_allowed(&settings.allowed_return_urls, &return_url) {
            return Err(ServiceError::invalid(
                "return_url_not_allowed",
                "Field 'return_url' does not match any of the organization's allowed_return_urls (PATCH /api/v1/settings).",
            ));
        }
        let now = self.clock.now();
        let status = effective_status(&request, now);
        if !status.is_open() {
            return Err(ServiceError::InvalidState(format!(
                "The request is '{status}'; no signing session can start."
            )));
        }
        match signer.status {
            SignerStatus::Sent | SignerStatus::Opened => {}
            SignerStatus::Pending => {
                return Err(ServiceError::InvalidState(
                    "It is not this signer's turn yet (status 'pending').".into(),
                ));
            }
            _ => {
                return Err(ServiceError::InvalidState(format!(
                    "The signer is '{}'; no signing session can start.",
                    signer.status
                )));
            }
        }
        let token = new_access_token();
        let row = SessionRow {
            id: Uuid::new_v4(),
            org_id,
            request_id,
            signer_id,
            token_hash: token_hash(&token),
            return_url,
            state,
            status: SessionStatus::Pending,
            result: None,
            failure_code: None,
            created_at: now,
            expires_at: now + SESSION_TOKEN_TTL,
            opened_at: None,
            completed_at: None,
        };
        let mut tx = self.db.begin().await?;
        tx.insert_session(&row).await?;
        tx.commit().await?;
        Ok(CreatedSession {
            id: row.id,
            redirect_url: format!("{}/embed/{token}", self.public_url()),
            expires_at: row.expires_at,
        })
    }

    /// `GET …/sessions/{session_id}`.
    pub async fn get_session(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        session_id: Uuid,
    ) -> Result<SigningSession> {
        self.db
            .get_session(org_id, session_id)
            .await?
            .filter(|s| s.request_id == request_id && s.signer_id == signer_id)
            .map(SigningSession::from)
            .ok_or(ServiceError::NotFound("Signing session"))
    }

    /// Whether a replayed create still points at a usable session (the wire decisions:
    /// a session key whose session is no longer valid creates a new session).
    pub(crate) async fn session_still_valid(&self, org_id: Uuid, session_id: Uuid) -> Result<bool> {
        let now = self.clock.now();
        Ok(self
            .db
            .get_session(org_id, session_id)
            .await?
            .is_some_and(|s| s.status == SessionStatus::Pending && s.expires_at > now))
    }

    /// Opening `redirect_url`: uses the one-time token.
    pub async fn open_embedded(&self, token: &str) -> Result<SessionOpening> {
        if token.is_empty() || token.len() > 128 {
            return Ok(SessionOpening::NotFound);
        }
        let Some(session) = self
            .db
            .session_by_token_hash(&token_hash(token))
            .await?
            .map(SigningSession::from)
        else {
            return Ok(SessionOpening::NotFound);
        };
        let now = self.clock.now();
        if session.status != SessionStatus::Pending {
            // Used already: back with token_expired; the session itself (maybe still in
            // progress in the browser that used the token) is not touched.
            let url = self
                .return_url(&session, SessionOutcome::Failed(FailureCode::TokenExpired))
                .await?;
            return Ok(SessionOpening::Return(url));
        }
        if session.expires_at <= now {
            let url = self
                .finish_session(&session, SessionOutcome::Failed(FailureCode::TokenExpired))
                .await?;
            return Ok(SessionOpening::Return(url));
        }
        let (request, signer) = (
            self.db
                .get_request(session.org_id, session.request_id)
                .await?,
            self.db
                .get_signer(session.request_id, session.signer_id)
                .await?,
        );
        let usable = match (&request, &signer) {
            (Some(r), Some(s)) => {
                effective_status(r, now).is_open()
                    && matches!(s.status, SignerStatus::Sent | SignerStatus::Opened)
            }
            _ => false,
        };
        let (Some(request), Some(signer), true) = (request, signer, usable) else {
            let url = self
                .finish_session(
                    &session,
                    SessionOutcome::Failed(FailureCode::SessionNotFound),
                )
                .await?;
            return Ok(SessionOpening::Return(url));
        };
        let mut tx = self.db.begin().await?;
        let opened = tx.open_session(session.id, now).await?;
        tx.commit().await?;
        if !opened {
            // Another browser used the token first (or it expired meanwhile): this one goes
            // back with token_expired; the winner's session is not touched (an expired,
            // unused token is completed by `expire_sessions`).
            let url = self
                .return_url(&session, SessionOutcome::Failed(FailureCode::TokenExpired))
                .await?;
            return Ok(SessionOpening::Return(url));
        }
        Ok(SessionOpening::Sign {
            signer_session: self.signer_session_for(
                signer.id,
                Admission::Embedded(session.id),
                Some(request.expires_at),
            ),
            access_token: self.open_link_token(&signer.access_token)?,
            embed_cookie: self.embed_cookie(session.id),
        })
    }

    /// The cookie value that marks a browser as being in embedded session `id`.
    pub(crate) fn embed_cookie(&self, id: Uuid) -> String {
        format!(
            "{id}.{}",
            hex::encode(self.keys.mac("embed-session", &[id.as_bytes()]))
        )
    }

    /// The session an embed cookie names, if we issued that cookie.
    fn embed_cookie_session(&self, cookie: Option<&str>) -> Option<Uuid> {
        let cookie = cookie?;
        let id = cookie.split_once('.')?.0.parse::<Uuid>().ok()?;
        let expected = self.embed_cookie(id);
        bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            cookie.as_bytes(),
        ))
        .then_some(id)
    }

    /// The embedded session a page request belongs to, with the origins that may frame
    /// it; None outside an embedded session. Every response of the session is framed
    /// alike: the one-time URL whatever its outcome, and every page, image, form answer and
    /// redirect under the session's signing link, also once the session has ended (the
    /// frame then shows where the link stands).
    pub async fn page_frame(&self, page: FramedPage<'_>) -> Result<Option<EmbeddedContext>> {
        let session = match page {
            FramedPage::OneTime(token) if !token.is_empty() && token.len() <= 128 => self
                .db
                .session_by_token_hash(&token_hash(token))
                .await?
                .map(SigningSession::from),
            FramedPage::OneTime(_) => None,
            FramedPage::Link { token, embed } => {
                let Some(id) = self.embed_cookie_session(embed) else {
                    return Ok(None);
                };
                if token.is_empty() || token.len() > 128 {
                    return Ok(None);
                }
                let signer = match self.signer_by_link_token(token).await? {
                    Some(s) => Some(s),
                    None => self.rotated_token_signer(token).await?,
                };
                self.db
                    .get_session_any(id)
                    .await?
                    .filter(|s| signer.is_some_and(|signer| signer.id == s.signer_id))
                    .map(SigningSession::from)
            }
        };
        let Some(session) = session else {
            return Ok(None);
        };
        Ok(Some(EmbeddedContext {
            frame_origins: self.frame_origins(session.org_id).await?,
            session,
        }))
    }

    /// The embedded session a signer-page browser is in, with what its pages need: the
    /// origins that may frame them. None outside an embedded session.
    pub(crate) async fn embedded_context(
        &self,
        cookie: Option<&str>,
        link: &SigningLink,
    ) -> Result<Option<EmbeddedContext>> {
        let Some(session) = self.embedded_session(cookie, link.signer.id).await? else {
            return Ok(None);
        };
        Ok(Some(EmbeddedContext {
            frame_origins: self.frame_origins(link.request.org_id).await?,
            session,
        }))
    }

    /// The open embedded session a signing-page browser is in (from its cookie), if any.
    pub(crate) async fn embedded_session(
        &self,
        cookie: Option<&str>,
        signer_id: Uuid,
    ) -> Result<Option<SigningSession>> {
        let Some(id) = self.embed_cookie_session(cookie) else {
            return Ok(None);
        };
        let Some(s) = self.db.get_session_any(id).await? else {
            return Ok(None);
        };
        Ok((s.signer_id == signer_id && s.status == SessionStatus::Opened).then(|| s.into()))
    }

    /// `POST /sign/{token}/cancel`: the link, the form's CSRF token, then the embedded
    /// session the browser is in, which ends `cancelled`.
    pub async fn cancel_on_page(
        &self,
        token: &str,
        cred: &PageCredentials<'_>,
    ) -> Result<CancelOnPage> {
        let Some(link) = self.signing_link(token, cred.session).await? else {
            return Ok(CancelOnPage::NotFound);
        };
        if !self.csrf_ok(cred.csrf_cookie, cred.csrf_token) {
            return Ok(CancelOnPage::CsrfFailed(Box::new(link)));
        }
        match self.embedded_context(cred.embed, &link).await? {
            Some(e) => Ok(CancelOnPage::Return(
                self.finish_session(&e.session, SessionOutcome::Cancelled)
                    .await?,
            )),
            None => Ok(CancelOnPage::NotEmbedded(Box::new(link))),
        }
    }

    /// Completes a session once (`signing_session.completed`) and returns the URL the
    /// browser goes back to. Completing an already completed session only builds the URL.
    pub(crate) async fn finish_session(
        &self,
        session: &SigningSession,
        result: SessionOutcome,
    ) -> Result<String> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        if let Some(mut r) = tx.lock_request(session.org_id, session.request_id).await?
            && let Some(event) = complete_in(&mut tx, &mut r, session, result, now).await?
        {
            tx.update_request_status(&r).await?;
            self.record_events(&mut tx, &[event]).await?;
        }
        tx.commit().await?;
        self.return_url(session, result).await
    }

    /// The return URL of a session completed by the caller's transaction (see
    /// [`complete_in`]).
    pub(crate) async fn session_return_url(
        &self,
        session: &SigningSession,
        result: SessionOutcome,
    ) -> Result<String> {
        self.return_url(session, result).await
    }

    /// The return URL, normalized, with `state`, `signing_session_id`, `result`,
    /// `[failure_code]` and `issued_at` (Unix seconds) appended to its own query, then
    /// `signature`: hex HMAC-SHA256, keyed with the organization's session secret (left out
    /// while none is set), over the whole query before `&signature=` — the integrator's own
    /// parameters included. README, "Embedded signing", tells integrators how to check it.
    async fn return_url(&self, session: &SigningSession, result: SessionOutcome) -> Result<String> {
        let (result_str, failure_code) = result.parts();
        let mut url = url::Url::parse(&session.return_url).map_err(|e| {
            ServiceError::Internal(anyhow::anyhow!("session {}: return URL: {e}", session.id))
        })?;
        url.query_pairs_mut()
            .append_pair("state", session.state.as_deref().unwrap_or(""))
            .append_pair("signing_session_id", &session.id.to_string())
            .append_pair("result", result_str.as_str())
            .extend_pairs(failure_code.map(|code| ("failure_code", code.as_str())))
            .append_pair("issued_at", &self.clock.now().timestamp().to_string());
        let secret = self
            .db
            .get_settings(session.org_id)
            .await?
            .and_then(|s| s.session_secret)
            .and_then(|enc| self.keys.decrypt("session-secret", &enc));
        if let Some(secret) = secret {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
                .map_err(|e| ServiceError::Internal(anyhow::anyhow!("HMAC key: {e}")))?;
            mac.update(url.query().unwrap_or_default().as_bytes());
            let signature = hex::encode(mac.finalize().into_bytes());
            url.query_pairs_mut().append_pair("signature", &signature);
        }
        Ok(url.into())
    }

    /// Gives every lapsed session its one `signing_session.completed` (`failed`,
    /// `token_expired`): tokens never used in time, and sessions whose signer left.
    pub async fn expire_sessions(&self) -> Result<u64> {
        let now = self.clock.now();
        let lapsed = self.db.lapsed_sessions(now, now - SESSION_TTL, 100).await?;
        let mut n = 0;
        for s in lapsed {
            self.finish_session(&s.into(), SessionOutcome::Failed(FailureCode::TokenExpired))
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// `POST …/signers/{signer_id}/rotate-link`: a new signing link; the old one answers
    /// 410 from now on.
    pub async fn rotate_link(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
    ) -> Result<(SignatureRequest, Signer)> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let request = tx
            .lock_request(org_id, request_id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let mut signer = self
            .db_signer_in(&mut tx, request_id, signer_id)
            .await?
            .ok_or(ServiceError::NotFound("Signer"))?;
        let status = effective_status(&request, now);
        if !status.is_open() {
            return Err(ServiceError::InvalidState(format!(
                "The request is '{status}'; its links can no longer change."
            )));
        }
        if !signer.status.is_open() {
            return Err(ServiceError::InvalidState(format!(
                "The signer is '{}'; the link can no longer change.",
                signer.status
            )));
        }
        let token = new_access_token();
        let old_hash = match signer.access_token_hash.take() {
            Some(hash) => hash,
            None => token_hash(&self.open_link_token(&signer.access_token)?),
        };
        let (sealed, hash) = self.seal_link_token(&token);
        tx.rotate_access_token(signer.id, &old_hash, &sealed, &hash, now)
            .await?;
        tx.commit().await?;
        signer.access_token = sealed;
        signer.access_token_hash = Some(hash);
        Ok((request.into(), self.signer_model(signer)?))
    }

    async fn db_signer_in(
        &self,
        tx: &mut signeur_store::Tx,
        request_id: Uuid,
        signer_id: Uuid,
    ) -> Result<Option<SignerRow>> {
        Ok(tx
            .signers_of_locked(request_id)
            .await?
            .into_iter()
            .find(|s| s.id == signer_id))
    }

    /// The signer whose signing link `token` was before it was rotated away.
    pub(crate) async fn rotated_token_signer(&self, token: &str) -> Result<Option<SignerRow>> {
        match self.db.retired_token_signer(&token_hash(token)).await? {
            Some(id) => Ok(self.db.signer_by_id(id).await?),
            None => Ok(None),
        }
    }
}
