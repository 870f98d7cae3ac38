//! The signer's side: what a signing link leads to, the access-code gate, the signer
//! session, and the signer's actions (open, sign, decline). The HTTP pages call these.
//!
//! A signer session is a MAC'd value (no table): `{signer_id}.{issued}.{mac}`, the MAC keyed
//! from the master key and bound to the signer's current access code, so a resend (new code)
//! ends every earlier session. CSRF tokens are MACs of the browser's CSRF cookie.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::Digest as _;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use signeur_core::validate::form_text;
use signeur_core::{
    Action, Delivery, EventType, JobKind, RequestStatus, SignerStatus, SigningOrder,
    VerificationMethod, time,
};
use signeur_store::{EventRow, NewJob, RequestRow, Signature, SignerRow};

use crate::requests::effective_status;
use crate::model::{SignatureRequest, Signer, SigningSession};
use crate::{Result, Service, ServiceError, events};

/// Wrong codes in a row before the link locks.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// How long a locked link stays locked.
pub const LOCKOUT: Duration = Duration::minutes(15);
/// How long a signer session lasts.
pub const SESSION_TTL: Duration = Duration::hours(2);
/// Largest drawn signature accepted (PNG bytes).
pub const MAX_SIGNATURE_PNG: usize = 512 * 1024;

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
    pub state: LinkState,
    /// The access code gates this link (email delivery to a signer with an address).
    pub gated: bool,
    /// The browser holds a valid session for this signer.
    pub has_session: bool,
}

/// The outcome of an access code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Right code: the new session cookie value.
    Verified {
        session: String,
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

/// What the signer submitted on the signing page.
#[derive(Debug, Clone, Default)]
pub struct SignInput {
    pub full_name: String,
    pub consent: bool,
    pub representing_entity: Option<String>,
    pub representing_role: Option<String>,
    pub representing_entity_id: Option<String>,
    /// A drawn signature as a `data:image/png;base64,…` URL.
    pub signature_data_url: Option<String>,
    pub ip_address: String,
    pub user_agent: Option<String>,
    /// The embedded signing session the signer came through (no access code asked); it
    /// completes with `success` in the signature's transaction.
    pub session: Option<SigningSession>,
}

/// Where the signer's actions came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub ip_address: String,
    pub user_agent: Option<String>,
}

fn gated(request: &RequestRow, signer: &SignerRow) -> bool {
    request.delivery == Delivery::Email && signer.email.is_some()
}

impl Service {
    /// The signer session cookie value for `signer`, issued now.
    pub(crate) fn signer_session_for(
        &self,
        signer_id: Uuid,
        code_rotated_at: Option<DateTime<Utc>>,
    ) -> String {
        let issued = self.clock.now().timestamp();
        let mac = self.session_mac(signer_id, issued, code_rotated_at);
        format!("{signer_id}.{issued}.{}", hex::encode(mac))
    }

    fn session_mac(
        &self,
        signer_id: Uuid,
        issued: i64,
        code_rotated_at: Option<DateTime<Utc>>,
    ) -> [u8; 32] {
        let rotated = code_rotated_at.map(time::format).unwrap_or_default();
        self.keys.mac(
            "signer-session",
            &[
                signer_id.as_bytes(),
                &issued.to_be_bytes(),
                rotated.as_bytes(),
            ],
        )
    }

    fn session_is_valid(
        &self,
        session: &str,
        signer_id: Uuid,
        code_rotated_at: Option<DateTime<Utc>>,
    ) -> bool {
        let mut parts = session.splitn(3, '.');
        let (Some(id), Some(issued), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let (Ok(id), Ok(issued), Ok(mac)) =
            (id.parse::<Uuid>(), issued.parse::<i64>(), hex::decode(mac))
        else {
            return false;
        };
        let Some(issued_at) = DateTime::from_timestamp(issued, 0) else {
            return false;
        };
        let now = self.clock.now();
        let expected = self.session_mac(signer_id, issued, code_rotated_at);
        id == signer_id
            && issued_at <= now + Duration::minutes(1)
            && now < issued_at + SESSION_TTL
            && bool::from(expected.as_slice().ct_eq(&mac))
    }

    /// The CSRF token forms carry for a browser whose CSRF cookie is `cookie`.
    pub fn csrf_token(&self, cookie: &str) -> String {
        hex::encode(self.keys.mac("signer-csrf", &[cookie.as_bytes()]))
    }

    /// A form's CSRF token matches the browser's cookie.
    pub fn csrf_ok(&self, cookie: Option<&str>, token: &str) -> bool {
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
        let (signer, rotated) = match self.db.signer_by_token(token).await? {
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
        let has_session = session
            .is_some_and(|s| self.session_is_valid(s, signer.id, gate.access_code_rotated_at));
        let gated = gated(&request, &signer);
        let state = match (signer.status, status) {
            _ if rotated => LinkState::Gone(Gone::Rotated),
            (SignerStatus::Signed, _) => LinkState::Signed {
                sealed: status == RequestStatus::Signed,
            },
            (_, RequestStatus::Cancelled) => LinkState::Gone(Gone::Cancelled),
            (_, RequestStatus::Declined) => LinkState::Gone(Gone::Declined),
            (_, RequestStatus::Expired) => LinkState::Gone(Gone::Expired),
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
        Ok(Some(SigningLink {
            request: request.into(),
            signer: signer.into(),
            org_name: org.name,
            state,
            gated,
            has_session,
        }))
    }

    /// A session for a link that needs no code (the link is the credential).
    pub fn open_session(&self, link: &SigningLink) -> Option<String> {
        (!link.gated && link.state == LinkState::Ready)
            .then(|| self.signer_session_for(link.signer.id, None))
    }

    /// Checks an access code. Five wrong codes in a row lock the link for 15 minutes; a
    /// right one starts a session and marks the signer (and the request, the first time)
    /// opened.
    pub async fn submit_access_code(
        &self,
        link: &SigningLink,
        code: &str,
        origin: &Origin,
    ) -> Result<CodeOutcome> {
        match link.state {
            LinkState::NeedsCode | LinkState::Ready if link.gated => {}
            LinkState::Locked { until } => return Ok(CodeOutcome::Locked { until }),
            _ => return Ok(CodeOutcome::NotAccepted),
        }
        let now = self.clock.now();
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        if well_formed && self.verify_access_code(link.signer.id, &code).await? {
            let gate = self
                .db
                .code_gate(link.signer.id)
                .await?
                .ok_or(ServiceError::NotFound("Signer"))?;
            if gate.locked_until.is_some_and(|u| u > now) {
                return Ok(CodeOutcome::Locked {
                    until: gate.locked_until.unwrap_or(now),
                });
            }
            self.db.reset_code_attempts(link.signer.id).await?;
            self.record_open(link, origin).await?;
            return Ok(CodeOutcome::Verified {
                session: self.signer_session_for(link.signer.id, gate.access_code_rotated_at),
            });
        }
        let attempts = self
            .db
            .record_wrong_code(link.signer.id, MAX_CODE_ATTEMPTS, now + LOCKOUT)
            .await?;
        tracing::info!(signer = %link.signer.id, attempts, "wrong access code");
        if attempts >= MAX_CODE_ATTEMPTS {
            Ok(CodeOutcome::Locked {
                until: now + LOCKOUT,
            })
        } else {
            Ok(CodeOutcome::Wrong {
                attempts_left: MAX_CODE_ATTEMPTS - attempts,
            })
        }
    }

    /// "Opened" as the wire decisions define it: the signer becomes `opened` (with
    /// `signer.opened`), and the request too the first time (`signature_request.opened`).
    /// Does nothing once the signer is past `sent`.
    pub async fn record_open(&self, link: &SigningLink, origin: &Origin) -> Result<()> {
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
        tx.insert_events(&evs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Signs for the link's signer. The last signature moves the request to
    /// `awaiting_stamp` and queues the seal job; in a sequential request the next signer's
    /// turn comes (their invitation is queued, or their link starts working).
    pub async fn sign(&self, link: &SigningLink, input: SignInput) -> Result<()> {
        if link.state != LinkState::Ready {
            return Err(ServiceError::InvalidState(
                "This link cannot be signed in its current state.".into(),
            ));
        }
        let full_name = form_text("full_name", &input.full_name, 200, false)?;
        if !input.consent {
            return Err(ServiceError::invalid(
                "missing_field",
                "Field 'consent' must be checked to sign.",
            ));
        }
        let optional = |field: &str, v: &Option<String>| -> Result<Option<String>> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) => Ok(Some(form_text(field, s, 200, false)?)),
            }
        };
        let entity = optional("representing_entity", &input.representing_entity)?;
        let role = optional("representing_role", &input.representing_role)?;
        let entity_id = optional("representing_entity_id", &input.representing_entity_id)?;
        if entity.is_none() && (role.is_some() || entity_id.is_some()) {
            return Err(ServiceError::invalid(
                "missing_field",
                "Field 'representing_entity' is required with a role or an entity id.",
            ));
        }
        let png = match input.signature_data_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => Some(decode_png_data_url(url)?),
        };
        let image_key = match &png {
            Some(bytes) => {
                let key = format!("signatures/{}/{}.png", link.request.id, link.signer.id);
                self.blobs.put(&key, bytes).await?;
                Some(key)
            }
            None => None,
        };

        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut r = tx
            .lock_request(link.request.org_id, link.request.id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let status = effective_status(&r, now);
        if !status.is_open() {
            return Err(ServiceError::InvalidState(format!(
                "The request is '{status}'."
            )));
        }
        let method = match (input.session.is_some(), link.gated) {
            (true, _) => VerificationMethod::Session,
            (false, true) => VerificationMethod::AccessCode,
            (false, false) => VerificationMethod::Link,
        };
        let signed = tx
            .mark_signer_signed(
                link.signer.id,
                &Signature {
                    name_as_signed: &full_name,
                    representing_as_signed: entity.as_deref(),
                    representing_role: role.as_deref(),
                    representing_entity_id: entity_id.as_deref(),
                    ip_address: &input.ip_address,
                    user_agent: input.user_agent.as_deref(),
                    verification_method: method,
                    signature_image_blob: image_key.as_deref(),
                    signed_at: now,
                },
            )
            .await?;
        if !signed {
            return Err(ServiceError::InvalidState(
                "This signer can no longer sign.".into(),
            ));
        }
        let signers = tx.signers_of_locked(r.id).await?;
        let remaining: Vec<&SignerRow> = signers
            .iter()
            .filter(|s| s.status != SignerStatus::Signed)
            .collect();
        let s = &link.signer;
        let mut evs = Vec::new();
        if s.status == SignerStatus::Sent {
            // Signed without an open recorded first (an api link used straight away).
            let origin = Origin {
                ip_address: input.ip_address.clone(),
                user_agent: input.user_agent.clone(),
            };
            evs.extend(opened_events(&mut r, s, &origin, now));
        }
        evs.push(events::append(
            &mut r,
            Some(s.id),
            EventType::SignerSigned,
            json!({
                "signature_request_id": link.request.id, "signer_id": s.id, "signer_email": s.email,
                "signer_name": s.name, "signed_at": time::format(now),
                "remaining_pending_signers": remaining.len(),
            }),
            now,
        ));
        r.updated_at = now;
        if remaining.is_empty() {
            let next = r.status.apply(Action::LastSignature)?;
            r.status = next;
            tx.enqueue(
                &NewJob {
                    kind: JobKind::SealDocument,
                    payload: json!({"org_id": r.org_id, "signature_request_id": r.id}).to_string(),
                    dedup_key: Some(format!("seal:{}", r.id)),
                    run_at: now,
                    max_attempts: SEAL_ATTEMPTS,
                },
                now,
            )
            .await?;
        } else if r.signing_order == SigningOrder::Sequential
            && let Some(next) = remaining
                .iter()
                .filter(|n| n.status == SignerStatus::Pending)
                .min_by_key(|n| n.position)
        {
            if gated(&r, next) {
                tx.enqueue(
                    &NewJob {
                        kind: JobKind::SendInvitation,
                        payload: json!({"org_id": r.org_id, "signature_request_id": r.id, "signer_id": next.id})
                            .to_string(),
                        dedup_key: Some(crate::invitations::invitation_dedup_key(next.id)),
                        run_at: now,
                        max_attempts: 10,
                    },
                    now,
                )
                .await?;
            } else {
                tx.mark_signer_link_sent(next.id, now).await?;
            }
        }
        if let Some(session) = &input.session
            && let Some(e) = crate::sessions::complete_in(
                &mut tx,
                &mut r,
                session,
                crate::sessions::SessionOutcome::Success,
                now,
            )
            .await?
        {
            evs.push(e);
        }
        tx.update_request_status(&r).await?;
        tx.insert_events(&evs).await?;
        tx.commit().await?;
        tracing::info!(signature_request = %r.id, signer = %s.id, remaining = remaining.len(), "signed");
        Ok(())
    }

    /// Declines for the link's signer: the request becomes `declined`, every other open
    /// signer is invalidated.
    pub async fn decline(&self, link: &SigningLink, reason: &str, origin: &Origin) -> Result<()> {
        if link.state != LinkState::Ready {
            return Err(ServiceError::InvalidState(
                "This link cannot be declined in its current state.".into(),
            ));
        }
        let reason = form_text("reason", reason, 500, true)?;
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut r = tx
            .lock_request(link.request.org_id, link.request.id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let next = effective_status(&r, now).apply(Action::Decline)?;
        if !tx
            .mark_signer_declined(
                link.signer.id,
                &reason,
                &origin.ip_address,
                origin.user_agent.as_deref(),
                now,
            )
            .await?
        {
            return Err(ServiceError::InvalidState(
                "This signer can no longer decline.".into(),
            ));
        }
        r.status = next;
        r.declined_at = Some(now);
        r.updated_at = now;
        let s = &link.signer;
        let base = json!({
            "signature_request_id": link.request.id, "signer_id": s.id, "signer_email": s.email,
            "signer_name": s.name, "decline_reason": reason, "declined_at": time::format(now),
        });
        let evs = vec![
            events::append(
                &mut r,
                Some(s.id),
                EventType::SignerDeclined,
                base.clone(),
                now,
            ),
            events::append(
                &mut r,
                Some(s.id),
                EventType::SignatureRequestDeclined,
                base,
                now,
            ),
        ];
        // The other signers who were emailed an invitation hear that it no longer stands.
        if r.delivery == Delivery::Email {
            for other in tx.signers_of_locked(r.id).await? {
                let invited = other.id != s.id
                    && other.email_sent
                    && matches!(other.status, SignerStatus::Sent | SignerStatus::Opened);
                if invited {
                    tx.enqueue(
                        &NewJob {
                            kind: JobKind::SendNotice,
                            payload: json!({"org_id": r.org_id, "signature_request_id": r.id, "signer_id": other.id, "kind": "declined"})
                                .to_string(),
                            dedup_key: Some(format!("notice:declined:{}", other.id)),
                            run_at: now,
                            max_attempts: 10,
                        },
                        now,
                    )
                    .await?;
                }
            }
        }
        tx.invalidate_open_signers(r.id, now).await?;
        tx.update_request_status(&r).await?;
        tx.insert_events(&evs).await?;
        tx.commit().await?;
        tracing::info!(signature_request = %r.id, signer = %s.id, "declined");
        Ok(())
    }

    /// The original upload, for a signer with a session (or a link that is its own
    /// credential and has been opened).
    pub async fn original_for_signer(&self, link: &SigningLink) -> Result<Vec<u8>> {
        self.blobs
            .get(&link.request.document_blob)
            .await?
            .ok_or_else(|| {
                ServiceError::Internal(anyhow::anyhow!(
                    "blob {} of request {} is missing",
                    link.request.document_blob,
                    link.request.id
                ))
            })
    }

    /// The seal job: the original (checked against `document_hash`) sealed with the
    /// organization's identity (PAdES B-B), stored, and the request `signed` with
    /// `signature_request.completed` and `.signed` in one transaction. The slow part runs
    /// before the transaction, which re-checks the state, so a second run changes nothing.
    pub async fn seal_request(&self, org_id: Uuid, request_id: Uuid) -> Result<String> {
        let Some(parts) = self.db.get_request_with_parts(org_id, request_id).await? else {
            return Ok("request gone".into());
        };
        let request = &parts.request;
        if request.status != RequestStatus::AwaitingStamp {
            return Ok(format!("nothing to seal ({})", request.status));
        }
        let (blob, hash) = (request.document_blob.clone(), request.document_hash.clone());
        // The document to seal must be the one the signers saw.
        let original = self.blobs.get(&blob).await?.ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("the document blob {blob} is missing"))
        })?;
        if hex::encode(sha2::Sha256::digest(&original)) != hash {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "the document blob {blob} does not match document_hash"
            )));
        }
        let stamp = self.stamp_input(request, &parts.signers).await?;
        let identity = self.seal_identity(org_id).await?;
        let now = self.clock.now();
        let signer = identity.signer()?;
        let timestamper = if self.tsa.urls.is_empty() {
            None
        } else {
            Some(crate::tsa::HttpTimestamper {
                settings: self.tsa.clone(),
                client: crate::tsa::http_client(&self.tsa)
                    .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?,
                handle: tokio::runtime::Handle::current(),
            })
        };
        // Stamp (the blocks and the certificate page, one incremental update), then seal the
        // stamped file (a further update): the upload stays a byte-exact prefix throughout.
        let sealed = tokio::task::spawn_blocking(move || {
            let stamped = signeur_pdf::stamp(&original, &stamp)
                .map_err(|e| anyhow::anyhow!("stamping failed: {e}"))?;
            drop(original);
            signeur_pdf::seal_with_timestamp(
                &stamped,
                &signer,
                &signeur_pdf::SealOptions::new(now),
                timestamper
                    .as_ref()
                    .map(|t| t as &dyn signeur_pdf::Timestamper),
            )
            .map_err(|e| anyhow::anyhow!("sealing failed: {e}"))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.into()))?
        .map_err(ServiceError::Internal)?;
        let sealed_hash = hex::encode(sha2::Sha256::digest(&sealed));
        let sealed_key = format!("sealed/{request_id}.pdf");
        self.blobs.put(&sealed_key, &sealed).await?;

        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let Some(mut r) = tx.lock_request(org_id, request_id).await? else {
            return Ok("request gone".into());
        };
        if r.status != RequestStatus::AwaitingStamp {
            return Ok(format!("sealed elsewhere meanwhile ({})", r.status));
        }
        let next = RequestStatus::AwaitingStamp.apply(Action::SealSucceeded)?;
        tx.set_sealed_document(r.id, &sealed_key, &sealed_hash)
            .await?;
        r.sealed_blob = Some(sealed_key);
        r.sealed_document_hash = Some(sealed_hash.clone());
        r.status = next;
        r.signed_at = Some(now);
        r.updated_at = now;
        let data = json!({
            "signature_request_id": r.id, "status": "signed", "signed_at": time::format(now),
            "document_hash": r.document_hash, "sealed_document_hash": sealed_hash,
            "download_url": format!("{}/api/v1/signatures/{}/document", self.public_url(), r.id),
        });
        let evs = vec![
            events::append(
                &mut r,
                None,
                EventType::SignatureRequestCompleted,
                data.clone(),
                now,
            ),
            events::append(&mut r, None, EventType::SignatureRequestSigned, data, now),
        ];
        tx.update_request_status(&r).await?;
        tx.insert_events(&evs).await?;
        tx.commit().await?;
        tracing::info!(signature_request = %request_id, "sealed (PAdES B-B)");
        Ok("sealed".into())
    }
}

impl Service {
    /// The seal job gave up: `stamp_failed`, with the reason in the audit trail. A failed
    /// seal is never silent: an event, an error log line (and the job row keeps the error).
    pub async fn seal_failed(&self, org_id: Uuid, request_id: Uuid, reason: &str) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let Some(mut r) = tx.lock_request(org_id, request_id).await? else {
            return Ok(());
        };
        let Ok(next) = r.status.apply(Action::SealFailed)
        else {
            return Ok(());
        };
        r.status = next;
        r.updated_at = now;
        let event = events::append(
            &mut r,
            None,
            EventType::SignatureRequestStampFailed,
            json!({"signature_request_id": request_id, "reason": reason, "failed_at": time::format(now)}),
            now,
        );
        tx.update_request_status(&r).await?;
        tx.insert_events(&[event]).await?;
        tx.commit().await?;
        tracing::error!(signature_request = %request_id, reason, "sealing failed; the request is stamp_failed until retried");
        Ok(())
    }

    /// `POST /api/v1/signatures/{id}/retry-seal`: `stamp_failed` → `awaiting_stamp`, the seal
    /// job queued again.
    pub async fn retry_seal(&self, org_id: Uuid, request_id: Uuid) -> Result<RequestStatus> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut r = tx
            .lock_request(org_id, request_id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let next = effective_status(&r, now).apply(Action::RetrySeal)?;
        r.status = next;
        r.updated_at = now;
        let event = events::append(
            &mut r,
            None,
            EventType::SignatureRequestSealRetried,
            json!({"signature_request_id": request_id, "retried_at": time::format(now)}),
            now,
        );
        tx.enqueue(
            &NewJob {
                kind: JobKind::SealDocument,
                payload: json!({"org_id": org_id, "signature_request_id": request_id}).to_string(),
                dedup_key: Some(format!("seal:{request_id}")),
                run_at: now,
                max_attempts: SEAL_ATTEMPTS,
            },
            now,
        )
        .await?;
        tx.update_request_status(&r).await?;
        tx.insert_events(&[event]).await?;
        tx.commit().await?;
        Ok(next)
    }
}

/// `signer.opened`, and `signature_request.opened` when this is the request's first open
/// (the request moves to `opened`); the caller has marked the signer opened.
fn opened_events(
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

/// Attempts of one seal job before the request becomes `stamp_failed`.
pub const SEAL_ATTEMPTS: i64 = 8;

/// A drawn signature from the page's canvas: a PNG data URL, bounded.
fn decode_png_data_url(url: &str) -> Result<Vec<u8>> {
    let invalid =
        |msg: &str| ServiceError::invalid("invalid_field", format!("Field 'signature' {msg}"));
    let b64 = url
        .strip_prefix("data:image/png;base64,")
        .ok_or_else(|| invalid("must be a PNG data URL."))?;
    if b64.len() > MAX_SIGNATURE_PNG * 4 / 3 + 4 {
        return Err(invalid("is too large."));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| invalid("is not valid base64."))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(invalid("is not a PNG image."));
    }
    Ok(bytes)
}
