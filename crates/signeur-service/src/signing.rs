//! The signer's page and actions on a resolved link: what `GET /sign/{token}` shows, sign
//! and decline (each one transaction), and the documents a signer may download.

use base64::Engine as _;
use serde_json::json;

use signeur_core::validate::form_text;
use signeur_core::{
    Action, Delivery, EventType, SignerStatus, SigningOrder, VerificationMethod, time,
};
use signeur_store::{Signature, SignerRow};

use crate::jobs::Job;
use crate::mail::NoticeKind;

use crate::links::{
    LinkState, Origin, PageCredentials, SignerSession, SigningLink, gated, opened_events,
};
use crate::model::SigningSession;
use crate::model::effective_status;
use crate::sessions::{EmbeddedContext, SessionOutcome};
use crate::{Result, Service, ServiceError, events};

/// Largest drawn signature accepted (PNG bytes).
pub const MAX_SIGNATURE_PNG: usize = 512 * 1024;

/// Where a signer-page action (sign, decline) ends; the page maps each to a template or a
/// redirect.
#[derive(Debug)]
pub enum PageOutcome {
    /// No link has this token.
    NotFound,
    /// The form's CSRF token does not match the browser.
    CsrfFailed(Box<SigningLink>),
    /// The link cannot act now (gone, signed, locked, not their turn, or no session yet):
    /// the page shows the link's state.
    NotNow(Box<SigningLink>),
    /// The form was refused; show it again with the error.
    Refused {
        link: Box<SigningLink>,
        embedded: Option<Box<EmbeddedContext>>,
        error: signeur_core::ValidationError,
    },
    /// Done: back to the link's page, or (embedded) to the integrator's return URL.
    Done {
        link: Box<SigningLink>,
        return_to: Option<String>,
    },
}

/// What `GET /sign/{token}` shows; the page renders each.
#[derive(Debug)]
pub enum LinkPage {
    /// No link has this token.
    NotFound,
    /// The link is gone, signed, locked or not the signer's turn: its state page.
    State(Box<SigningLink>),
    /// An emailed link without a session: the access-code gate.
    Gate(Box<SigningLink>),
    /// The signing page. `new_session`: a signer session to set, issued for a link that is
    /// its own credential; `embedded`: the embedded session the browser is in, if any.
    Sign {
        link: Box<SigningLink>,
        new_session: Option<SignerSession>,
        embedded: Option<Box<EmbeddedContext>>,
    },
}

/// What a signer page that reads a link (the decline form, a download) finds.
#[derive(Debug)]
pub enum OnPage<T> {
    /// No link has this token.
    NotFound,
    /// Not now: the page shows the link's state (or goes back to the link).
    NotNow(Box<SigningLink>),
    /// What was asked for, with the link it came through.
    Ready(Box<SigningLink>, T),
}

/// The signing form as submitted (the embedded session is found from the cookies).
#[derive(Debug, Clone, Default)]
pub struct SignForm {
    pub full_name: String,
    pub consent: bool,
    pub representing_entity: Option<String>,
    pub representing_role: Option<String>,
    pub representing_entity_id: Option<String>,
    /// A drawn signature as a `data:image/png;base64,…` URL.
    pub signature_data_url: Option<String>,
}

/// The files a signer can fetch through their link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerDownload {
    /// The document as uploaded.
    Original,
    /// The sealed document, once the request is signed.
    Sealed,
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
    /// The embedded signing session the browser is in; it completes with `success` in the
    /// signature's transaction.
    pub session: Option<SigningSession>,
}

impl Service {
    /// What signing and declining check first: the link, the form's CSRF token, the link's
    /// state and the session (so, for an emailed link, the code); then the embedded session
    /// the browser is in, if any.
    async fn page_action_link(
        &self,
        token: &str,
        cred: &PageCredentials<'_>,
    ) -> Result<std::result::Result<(SigningLink, Option<EmbeddedContext>), PageOutcome>> {
        let Some(link) = self.signing_link(token, cred.session).await? else {
            return Ok(Err(PageOutcome::NotFound));
        };
        if !self.csrf_ok(cred.csrf_cookie, cred.csrf_token) {
            return Ok(Err(PageOutcome::CsrfFailed(Box::new(link))));
        }
        if link.state != LinkState::Ready || !link.has_session {
            return Ok(Err(PageOutcome::NotNow(Box::new(link))));
        }
        let embedded = self.embedded_context(cred.embed, &link).await?;
        Ok(Ok((link, embedded)))
    }

    /// `GET /sign/{token}`: resolves the link and decides what it shows. A browser that
    /// already holds a session records "opened" (a link preview without cookies never
    /// does); a link that is its own credential gets a session instead. The form's CSRF
    /// token in `cred` is not read.
    pub async fn show_on_page(
        &self,
        token: &str,
        cred: &PageCredentials<'_>,
        origin: &Origin,
    ) -> Result<LinkPage> {
        let Some(link) = self.signing_link(token, cred.session).await? else {
            return Ok(LinkPage::NotFound);
        };
        match link.state {
            LinkState::Ready => {}
            LinkState::NeedsCode => return Ok(LinkPage::Gate(Box::new(link))),
            _ => return Ok(LinkPage::State(Box::new(link))),
        }
        let mut new_session = None;
        if link.has_session {
            self.record_open(&link, origin).await?;
        } else {
            new_session = self.open_session(&link);
        }
        let embedded = self.embedded_context(cred.embed, &link).await?;
        Ok(LinkPage::Sign {
            link: Box::new(link),
            new_session,
            embedded: embedded.map(Box::new),
        })
    }

    /// `POST /sign/{token}/sign`: the whole action, from the token, the browser's
    /// credentials and the form to where the browser goes next.
    pub async fn sign_on_page(
        &self,
        token: &str,
        cred: &PageCredentials<'_>,
        form: SignForm,
        origin: &Origin,
    ) -> Result<PageOutcome> {
        let (link, embedded) = match self.page_action_link(token, cred).await? {
            Ok(checked) => checked,
            Err(outcome) => return Ok(outcome),
        };
        let input = SignInput {
            session: embedded.as_ref().map(|e| e.session.clone()),
            full_name: form.full_name,
            consent: form.consent,
            representing_entity: form.representing_entity,
            representing_role: form.representing_role,
            representing_entity_id: form.representing_entity_id,
            signature_data_url: form.signature_data_url,
            ip_address: origin.ip_address.clone(),
            user_agent: origin.user_agent.clone(),
        };
        let signed = self.sign(&link, input).await;
        self.page_action_end(link, embedded, signed, SessionOutcome::Success)
            .await
    }

    /// `POST /sign/{token}/decline`: like [`Service::sign_on_page`]; an embedded session
    /// ends `cancelled`.
    pub async fn decline_on_page(
        &self,
        token: &str,
        cred: &PageCredentials<'_>,
        reason: &str,
        origin: &Origin,
    ) -> Result<PageOutcome> {
        let (link, embedded) = match self.page_action_link(token, cred).await? {
            Ok(checked) => checked,
            Err(outcome) => return Ok(outcome),
        };
        let declined = self.decline(&link, reason, origin).await;
        self.page_action_end(link, embedded, declined, SessionOutcome::Cancelled)
            .await
    }

    /// Where a sign or decline leaves the browser: done (back to the link, or an embedded
    /// session's return URL with `end`), the form again with its error, or the link's state.
    async fn page_action_end(
        &self,
        link: SigningLink,
        embedded: Option<EmbeddedContext>,
        result: Result<()>,
        end: SessionOutcome,
    ) -> Result<PageOutcome> {
        match result {
            Ok(()) => {
                let return_to = match &embedded {
                    // A signature completed its session in its own transaction: only the way
                    // back is left.
                    Some(e) if end == SessionOutcome::Success => {
                        Some(self.session_return_url(&e.session, end).await?)
                    }
                    Some(e) => Some(self.finish_session(&e.session, end).await?),
                    None => None,
                };
                Ok(PageOutcome::Done {
                    link: Box::new(link),
                    return_to,
                })
            }
            Err(ServiceError::Validation(error)) => Ok(PageOutcome::Refused {
                link: Box::new(link),
                embedded: embedded.map(Box::new),
                error,
            }),
            Err(ServiceError::InvalidState(_)) => Ok(PageOutcome::NotNow(Box::new(link))),
            Err(e) => Err(e),
        }
    }

    /// Signs for the link's signer, recording how their session admitted them (the access
    /// code, the link, or an embedded session). The last signature moves the request to
    /// `awaiting_stamp` and queues the seal job; in a sequential request the next signer's
    /// turn comes (their invitation is queued, or their link starts working).
    pub async fn sign(&self, link: &SigningLink, input: SignInput) -> Result<()> {
        // A link that is its own credential admits whoever holds it; a gated one only a
        // session (the code, or an open embedded session).
        let admitted_by = match link.admitted_by {
            None if !link.gated => Some(VerificationMethod::Link),
            m => m,
        };
        let Some(method) = admitted_by.filter(|_| link.state == LinkState::Ready) else {
            return Err(ServiceError::InvalidState(
                "This link cannot be signed in its current state.".into(),
            ));
        };
        let full_name = form_text("full_name", &input.full_name, 200, false)?;
        if !input.consent {
            return Err(ServiceError::invalid_field(
                "missing_field",
                "consent",
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
            return Err(ServiceError::invalid_field(
                "missing_field",
                "representing_entity",
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
            let seal = Job::SealDocument {
                org_id: r.org_id,
                request_id: r.id,
            };
            self.enqueue_job(&mut tx, &seal, now, now).await?;
        } else if r.signing_order == SigningOrder::Sequential
            && let Some(next) = remaining
                .iter()
                .filter(|n| n.status == SignerStatus::Pending)
                .min_by_key(|n| n.position)
        {
            if gated(&r, next) {
                let invite = Job::SendInvitation {
                    org_id: r.org_id,
                    request_id: r.id,
                    signer_id: next.id,
                };
                self.enqueue_job(&mut tx, &invite, now, now).await?;
            } else {
                tx.mark_signer_link_sent(next.id, now).await?;
            }
        }
        if let Some(session) = &input.session
            && let Some(e) =
                crate::sessions::complete_in(&mut tx, &mut r, session, SessionOutcome::Success, now)
                    .await?
        {
            evs.push(e);
        }
        tx.update_request_status(&r).await?;
        self.record_events(&mut tx, &evs).await?;
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
                    let notice = Job::SendNotice {
                        org_id: r.org_id,
                        request_id: r.id,
                        signer_id: other.id,
                        notice: NoticeKind::Declined,
                    };
                    self.enqueue_job(&mut tx, &notice, now, now).await?;
                }
            }
        }
        tx.invalidate_open_signers(r.id, now).await?;
        tx.update_request_status(&r).await?;
        self.record_events(&mut tx, &evs).await?;
        tx.commit().await?;
        tracing::info!(signature_request = %r.id, signer = %s.id, "declined");
        Ok(())
    }

    /// `GET /sign/{token}/decline`: the decline form, for a signer in a session whose link
    /// can still act.
    pub async fn decline_form_on_page(
        &self,
        token: &str,
        session: Option<&str>,
    ) -> Result<OnPage<()>> {
        let Some(link) = self.signing_link(token, session).await? else {
            return Ok(OnPage::NotFound);
        };
        if link.state != LinkState::Ready || !link.has_session {
            return Ok(OnPage::NotNow(Box::new(link)));
        }
        Ok(OnPage::Ready(Box::new(link), ()))
    }

    /// A signer's download (`/sign/{token}/document.pdf`, `/signed.pdf`) in one call: the
    /// link from its token and the browser's session, then [`Service::signer_download`].
    pub async fn signer_download_on_page(
        &self,
        token: &str,
        session: Option<&str>,
        which: SignerDownload,
    ) -> Result<OnPage<crate::SignedDocument>> {
        let Some(link) = self.signing_link(token, session).await? else {
            return Ok(OnPage::NotFound);
        };
        Ok(match self.signer_download(&link, which).await? {
            Some(doc) => OnPage::Ready(Box::new(link), doc),
            None => OnPage::NotNow(Box::new(link)),
        })
    }

    /// What a signer may download through their link: the original while they may read
    /// the document, the sealed file once it exists (see [`SigningLink::may_read_document`]
    /// and [`SigningLink::may_download_sealed`]). None: not now (the page says why).
    pub(crate) async fn signer_download(
        &self,
        link: &SigningLink,
        which: SignerDownload,
    ) -> Result<Option<crate::SignedDocument>> {
        match which {
            SignerDownload::Original if link.may_read_document() => {
                Ok(Some(crate::SignedDocument {
                    filename: link.request.document_filename.clone(),
                    bytes: self.original_document(link).await?,
                }))
            }
            SignerDownload::Sealed if link.may_download_sealed() => self
                .signed_document(link.request.org_id, link.request.id)
                .await
                .map(Some),
            _ => Ok(None),
        }
    }

    /// The original upload's bytes (callers check who may read it).
    pub(crate) async fn original_document(&self, link: &SigningLink) -> Result<Vec<u8>> {
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
}

/// A drawn signature from the page's canvas: a PNG data URL, bounded.
fn decode_png_data_url(url: &str) -> Result<Vec<u8>> {
    let invalid = |msg: &str| {
        ServiceError::invalid_field(
            "invalid_field",
            "signature",
            format!("Field 'signature' {msg}"),
        )
    };
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
