//! Signing links and signer sessions: what a link leads to (its state, computed in one
//! place), the access-code gate, the signer session and CSRF tokens, and "opened".
//!
//! A signer session is a MAC'd value (no table): `{signer_id}.{issued}.{admission}.{mac}`, the
//! MAC keyed from the master key. `admission` says how the signer got in, and is what their
//! signature records as its verification method: `code` (the access code; the MAC is bound to
//! the current code, so a resend ends every earlier code session), `link` (a link that is its
//! own credential), or an embedded session's id (valid only while that session is open, so a
//! cancelled, failed or finished session admits no one). A session lasts two hours, and no
//! longer than the request it belongs to can be signed. CSRF tokens are MACs of the browser's
//! CSRF cookie.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde_json::json;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use signeur_core::{
    Action, Delivery, EventType, RequestStatus, SessionStatus, SignerStatus, VerificationMethod,
    time,
};
use signeur_store::{CodeGate, EventRow, RequestRow, SignerRow};

use crate::model::effective_status;
use crate::model::{SignatureRequest, Signer};
use crate::{Result, Service, events};

/// A new signing-link secret: 32 random bytes, base64url.
pub(crate) fn new_access_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Wrong codes in a row before the link locks.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// How long a locked link stays locked.
pub const LOCKOUT: Duration = Duration::minutes(15);
/// How long a signer session lasts.
pub const SESSION_TTL: Duration = Duration::hours(2);

/// Why a link no longer works (answered 410).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    Expired,
    Cancelled,
    Declined,
    /// The signer was invalidated (another signer declined, or the request was cancelled).
    Invalidated,
    /// The link was replaced by a new one (`rotate-link`).
    Rotated,
}

impl Gone {
    pub fn as_str(self) -> &'static str {
        match self {
            Gone::Expired => "expired",
            Gone::Cancelled => "cancelled",
            Gone::Declined => "declined",
            Gone::Invalidated => "invalidated",
            Gone::Rotated => "rotated",
        }
    }
}

/// What a signing link shows right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Gone(Gone),
    /// The signer has signed; `sealed` once the signed document can be downloaded.
    Signed {
        sealed: bool,
    },
    /// A sequential request where an earlier signer has not signed yet.
    NotYourTurn,
    /// Too many wrong codes.
    Locked {
        until: DateTime<Utc>,
    },
    /// An emailed link without a session: the access-code gate.
    NeedsCode,
    /// The signer may read and sign.
    Ready,
}

/// A signing link, resolved.
#[derive(Debug, Clone)]
pub struct SigningLink {
    pub request: SignatureRequest,
    pub signer: Signer,
    pub org_name: String,
    /// The organization's branding (name, colour, logo) for the page's header.
    pub branding: Option<crate::branding::Branding>,
    pub state: LinkState,
    /// The access code gates this link (email delivery to a signer with an address).
    pub gated: bool,
    /// The browser holds a valid session for this signer.
    pub has_session: bool,
    /// How the browser's session admitted the signer (None without a valid session): what
    /// a signature records as its verification method.
    pub admitted_by: Option<VerificationMethod>,
}

impl SigningLink {
    /// Who may read the document (pages, previews, the original): the signer in a session
    /// while the link can be signed, or after they signed.
    pub fn may_read_document(&self) -> bool {
        self.has_session && matches!(self.state, LinkState::Ready | LinkState::Signed { .. })
    }

    /// Who may download the sealed file once the request is sealed: a signer in a session,
    /// or anyone holding a link that needs no code (the link is the credential; its
    /// session has long ended by the time the seal is done, and it signs nothing any more).
    pub fn may_download_sealed(&self) -> bool {
        (self.has_session || !self.gated) && self.state == (LinkState::Signed { sealed: true })
    }

    /// A code-gated signer who signed, without a session, whose request is sealed: their
    /// access code opens the download (sessions end after two hours; the document stays).
    pub fn code_opens_download(&self) -> bool {
        self.gated && !self.has_session && self.state == (LinkState::Signed { sealed: true })
    }
}

/// How a signer session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The access code (bound to the code's rotation time).
    Code(Option<DateTime<Utc>>),
    /// A link that is its own credential.
    Link,
    /// The embedded session with this id.
    Embedded(Uuid),
}

impl Admission {
    fn tag(self) -> String {
        match self {
            Admission::Code(_) => "code".into(),
            Admission::Link => "link".into(),
            Admission::Embedded(id) => id.to_string(),
        }
    }

    fn method(self) -> VerificationMethod {
        match self {
            Admission::Code(_) => VerificationMethod::AccessCode,
            Admission::Link => VerificationMethod::Link,
            Admission::Embedded(_) => VerificationMethod::Session,
        }
    }
}

/// A signer session to set as the browser's cookie, and how long the cookie may live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSession {
    pub value: String,
    /// Two hours, or less when the request stops being signable sooner.
    pub max_age: Duration,
}

/// The outcome of an access code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Right code: the new session cookie.
    Verified {
        session: SignerSession,
    },
    Wrong {
        attempts_left: i64,
    },
    Locked {
        until: DateTime<Utc>,
    },
    /// The link does not accept codes in its state (see the link state).
    NotAccepted,
}

/// Where the signer's actions came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub ip_address: String,
    pub user_agent: Option<String>,
}

/// What the browser on a signer page holds: its cookies, and the CSRF token its form sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageCredentials<'a> {
    /// The signer session cookie.
    pub session: Option<&'a str>,
    /// The embedded-session cookie.
    pub embed: Option<&'a str>,
    /// The per-browser CSRF cookie.
    pub csrf_cookie: Option<&'a str>,
    /// The CSRF token the form carried.
    pub csrf_token: &'a str,
}

/// Where an access code submitted on the gate ends; the page maps each to a template or a
/// redirect.
#[derive(Debug)]
pub enum CodeOnPage {
    /// No link has this token.
    NotFound,
    /// The form's CSRF token does not match the browser.
    CsrfFailed(Box<SigningLink>),
    /// The link is gone, signed, locked or not the signer's turn: the page shows its state.
    NotNow(Box<SigningLink>),
    /// Right code: back to the link with the new session cookie.
    Verified {
        link: Box<SigningLink>,
        session: SignerSession,
    },
    /// Wrong code: the gate again.
    Wrong {
        link: Box<SigningLink>,
        attempts_left: i64,
    },
    /// Too many wrong codes.
    Locked {
        link: Box<SigningLink>,
        until: DateTime<Utc>,
    },
    /// The link does not accept codes: back to the link.
    NotAccepted(Box<SigningLink>),
}

pub(crate) fn gated(request: &RequestRow, signer: &SignerRow) -> bool {
    request.delivery == Delivery::Email && signer.email.is_some()
}

impl Service {
    /// A signer session for `signer_id`, issued now, for a request that can be signed until
    /// `request_ends` (None: it is past signing, and the session only lets the signer read).
    pub(crate) fn signer_session_for(
        &self,
        signer_id: Uuid,
        admission: Admission,
        request_ends: Option<DateTime<Utc>>,
    ) -> SignerSession {
        let now = self.clock.now();
        let issued = now.timestamp();
        let mac = self.session_mac(signer_id, issued, admission);
        let max_age = match request_ends {
            Some(end) => SESSION_TTL.min(end - now).max(Duration::zero()),
            None => SESSION_TTL,
        };
        SignerSession {
            value: format!(
                "{signer_id}.{issued}.{}.{}",
                admission.tag(),
                hex::encode(mac)
            ),
            max_age,
        }
    }

    fn session_mac(&self, signer_id: Uuid, issued: i64, admission: Admission) -> [u8; 32] {
        let rotated = match admission {
            Admission::Code(rotated) => rotated.map(time::format).unwrap_or_default(),
            Admission::Link | Admission::Embedded(_) => String::new(),
        };
        self.keys.mac(
            "signer-session",
            &[
                signer_id.as_bytes(),
                &issued.to_be_bytes(),
                admission.tag().as_bytes(),
                rotated.as_bytes(),
            ],
        )
    }

    /// How a browser's session cookie admits `signer` right now, if it does: a code session
    /// only on a gated link and for the current code, a link session only on a link that is
    /// its own credential, an embedded one only while its session is open.
    async fn admission(
        &self,
        session: &str,
        signer: &SignerRow,
        gated: bool,
        code_rotated_at: Option<DateTime<Utc>>,
    ) -> Result<Option<VerificationMethod>> {
        let mut parts = session.splitn(4, '.');
        let (Some(id), Some(issued), Some(tag), Some(mac)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let (Ok(id), Ok(issued), Ok(mac)) =
            (id.parse::<Uuid>(), issued.parse::<i64>(), hex::decode(mac))
        else {
            return Ok(None);
        };
        let admission = match tag {
            "code" if gated => Admission::Code(code_rotated_at),
            "link" if !gated => Admission::Link,
            _ => match tag.parse::<Uuid>() {
                Ok(session_id) => Admission::Embedded(session_id),
                Err(_) => return Ok(None),
            },
        };
        let Some(issued_at) = DateTime::from_timestamp(issued, 0) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let expected = self.session_mac(signer.id, issued, admission);
        let valid = id == signer.id
            && issued_at <= now + Duration::minutes(1)
            && now < issued_at + SESSION_TTL
            && bool::from(expected.as_slice().ct_eq(&mac));
        if !valid {
            return Ok(None);
        }
        if let Admission::Embedded(session_id) = admission {
            let open = self
                .db
                .get_session_any(session_id)
                .await?
                .is_some_and(|s| s.signer_id == signer.id && s.status == SessionStatus::Opened);
            if !open {
                return Ok(None);
            }
        }
        Ok(Some(admission.method()))
    }

    /// The CSRF token forms carry for a browser whose CSRF cookie is `cookie`.
    pub fn csrf_token(&self, cookie: &str) -> String {
        hex::encode(self.keys.mac("signer-csrf", &[cookie.as_bytes()]))
    }

    /// A form's CSRF token matches the browser's cookie.
    pub(crate) fn csrf_ok(&self, cookie: Option<&str>, token: &str) -> bool {
        match cookie {
            Some(c) if !c.is_empty() => {
                bool::from(self.csrf_token(c).as_bytes().ct_eq(token.as_bytes()))
            }
            _ => false,
        }
    }

    /// Resolves a signing link. None: no such token (404).
    pub async fn signing_link(
        &self,
        token: &str,
        session: Option<&str>,
    ) -> Result<Option<SigningLink>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let (signer, rotated) = match self.signer_by_link_token(token).await? {
            Some(s) => (s, false),
            None => match self.rotated_token_signer(token).await? {
                Some(s) => (s, true),
                None => return Ok(None),
            },
        };
        let (Some(request), Some(gate), Some(org)) = (
            self.db
                .get_request(signer.org_id, signer.request_id)
                .await?,
            self.db.code_gate(signer.id).await?,
            self.db.get_org(signer.org_id).await?,
        ) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let status = effective_status(&request, now);
        let gated = gated(&request, &signer);
        let admitted_by = match session {
            Some(s) => {
                self.admission(s, &signer, gated, gate.access_code_rotated_at)
                    .await?
            }
            None => None,
        };
        let has_session = admitted_by.is_some();
        let state = match (signer.status, status) {
            _ if rotated => LinkState::Gone(Gone::Rotated),
            // A request that ended without being signed (cancelled, declined, expired) takes
            // every link with it, a signer's who already signed too: the link answers 410
            // and serves no page and no document (DESIGN: links that no longer work; the API
            // refuses the downloads of such a request with 409 invalid_state).
            (_, RequestStatus::Cancelled) => LinkState::Gone(Gone::Cancelled),
            (_, RequestStatus::Declined) => LinkState::Gone(Gone::Declined),
            (_, RequestStatus::Expired) => LinkState::Gone(Gone::Expired),
            (SignerStatus::Signed, _) => LinkState::Signed {
                sealed: status == RequestStatus::Signed,
            },
            (SignerStatus::Declined, _) => LinkState::Gone(Gone::Declined),
            (SignerStatus::Invalidated, _) => LinkState::Gone(Gone::Invalidated),
            (SignerStatus::Pending, _) => LinkState::NotYourTurn,
            _ if !status.is_open() => LinkState::Gone(Gone::Invalidated),
            _ if gated && !has_session => match gate.locked_until {
                Some(until) if until > now => LinkState::Locked { until },
                _ => LinkState::NeedsCode,
            },
            _ => LinkState::Ready,
        };
        let branding = self.settings(signer.org_id).await?.branding;
        Ok(Some(SigningLink {
            request: request.into(),
            signer: self.signer_model(signer)?,
            org_name: org.name,
            branding,
            state,
            gated,
            has_session,
            admitted_by,
        }))
    }

    /// When the request of `link` stops being signable (None: it already has).
    pub(crate) fn signable_until(&self, link: &SigningLink) -> Option<DateTime<Utc>> {
        link.request
            .status
            .is_open()
            .then_some(link.request.expires_at)
    }

    /// A session for a link that needs no code (the link is the credential).
    pub(crate) fn open_session(&self, link: &SigningLink) -> Option<SignerSession> {
        (!link.gated && link.state == LinkState::Ready).then(|| {
            self.signer_session_for(link.signer.id, Admission::Link, self.signable_until(link))
        })
    }

    /// Checks an access code. Five wrong codes in a row lock the link for 15 minutes; a
    /// right one starts a session and marks the signer (and the request, the first time)
    /// opened. After signing, the code opens the sealed document's download.
    pub(crate) async fn submit_access_code(
        &self,
        link: &SigningLink,
        code: &str,
        origin: &Origin,
    ) -> Result<CodeOutcome> {
        let now = self.clock.now();
        match link.state {
            LinkState::NeedsCode | LinkState::Ready if link.gated => {}
            LinkState::Locked { until } => return Ok(CodeOutcome::Locked { until }),
            // A signed link's state does not show a lock: look it up.
            LinkState::Signed { .. } if link.code_opens_download() => {
                let gate = self.db.code_gate(link.signer.id).await?;
                if let Some(until) = gate.and_then(|g| g.locked_until).filter(|u| *u > now) {
                    return Ok(CodeOutcome::Locked { until });
                }
            }
            _ => return Ok(CodeOutcome::NotAccepted),
        }
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        // The try is taken (and counted as wrong) before the code is checked, in one
        // statement: a burst of guesses gets at most MAX_CODE_ATTEMPTS checks, the rest
        // find the gate locked.
        let mut tries = 0;
        let gate = loop {
            tries += 1;
            if let Some(gate) = self
                .db
                .reserve_code_attempt(link.signer.id, MAX_CODE_ATTEMPTS, now, now + LOCKOUT)
                .await?
            {
                break gate;
            }
            match self.db.code_gate(link.signer.id).await? {
                None => return Ok(CodeOutcome::NotAccepted),
                Some(CodeGate {
                    locked_until: Some(until),
                    ..
                }) if until > now => return Ok(CodeOutcome::Locked { until }),
                // Unlocked between the two statements (a right code, a resend): try again.
                Some(_) if tries < 3 => {}
                Some(_) => {
                    return Ok(CodeOutcome::Locked {
                        until: now + LOCKOUT,
                    });
                }
            }
        };
        let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        let right = match (well_formed, gate.access_code_hash) {
            (true, Some(hash)) => self.code_matches(&code, hash).await?,
            _ => false,
        };
        if right {
            self.db.reset_code_attempts(link.signer.id).await?;
            self.record_open(link, origin).await?;
            return Ok(CodeOutcome::Verified {
                session: self.signer_session_for(
                    link.signer.id,
                    Admission::Code(gate.access_code_rotated_at),
                    self.signable_until(link),
                ),
            });
        }
        let attempts = gate.access_code_attempts;
        tracing::info!(signer = %link.signer.id, attempts, "wrong access code");
        match gate.locked_until {
            Some(until) if until > now => Ok(CodeOutcome::Locked { until }),
            _ => Ok(CodeOutcome::Wrong {
                attempts_left: (MAX_CODE_ATTEMPTS - attempts).max(1),
            }),
        }
    }

    /// `POST /sign/{token}/verify`: the link, the form's CSRF token, the link's state, then
    /// the code ([`Service::submit_access_code`]).
    pub async fn submit_code_on_page(
        &self,
        token: &str,
        cred: &PageCredentials<'_>,
        code: &str,
        origin: &Origin,
    ) -> Result<CodeOnPage> {
        let Some(link) = self.signing_link(token, cred.session).await? else {
            return Ok(CodeOnPage::NotFound);
        };
        if !self.csrf_ok(cred.csrf_cookie, cred.csrf_token) {
            return Ok(CodeOnPage::CsrfFailed(Box::new(link)));
        }
        let accepts_code = matches!(link.state, LinkState::NeedsCode | LinkState::Ready)
            || link.code_opens_download();
        if !accepts_code {
            return Ok(CodeOnPage::NotNow(Box::new(link)));
        }
        let outcome = self.submit_access_code(&link, code, origin).await?;
        let link = Box::new(link);
        Ok(match outcome {
            CodeOutcome::Verified { session } => CodeOnPage::Verified { link, session },
            CodeOutcome::Wrong { attempts_left } => CodeOnPage::Wrong {
                link,
                attempts_left,
            },
            CodeOutcome::Locked { until } => CodeOnPage::Locked { link, until },
            CodeOutcome::NotAccepted => CodeOnPage::NotAccepted(link),
        })
    }

    /// "Opened" as the wire decisions define it: the signer becomes `opened` (with
    /// `signer.opened`), and the request too the first time (`signature_request.opened`).
    /// Does nothing once the signer is past `sent`.
    pub(crate) async fn record_open(&self, link: &SigningLink, origin: &Origin) -> Result<()> {
        if link.signer.status != SignerStatus::Sent {
            return Ok(());
        }
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let Some(mut r) = tx
            .lock_request(link.request.org_id, link.request.id)
            .await?
        else {
            return Ok(());
        };
        if !effective_status(&r, now).is_open()
            || !tx.mark_signer_opened(link.signer.id, now).await?
        {
            return Ok(());
        }
        r.updated_at = now;
        let evs = opened_events(&mut r, &link.signer, origin, now);
        tx.update_request_status(&r).await?;
        self.record_events(&mut tx, &evs).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// `signer.opened`, and `signature_request.opened` when this is the request's first open
/// (the request moves to `opened`); the caller has marked the signer opened.
pub(crate) fn opened_events(
    r: &mut RequestRow,
    s: &Signer,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Vec<EventRow> {
    let mut evs = vec![events::append(
        r,
        Some(s.id),
        EventType::SignerOpened,
        json!({
            "signature_request_id": r.id, "signer_id": s.id, "signer_email": s.email,
            "signer_name": s.name, "opened_at": time::format(now),
            "ip_address": origin.ip_address, "user_agent": origin.user_agent,
        }),
        now,
    )];
    if let Ok(next) = r.status.apply(Action::Open) {
        r.status = next;
        r.opened_at = Some(now);
        evs.push(events::append(
            r,
            Some(s.id),
            EventType::SignatureRequestOpened,
            json!({
                "signature_request_id": r.id, "signer_id": s.id, "signer_email": s.email,
                "signer_name": s.name, "opened_at": time::format(now),
            }),
            now,
        ));
    }
    evs
}
