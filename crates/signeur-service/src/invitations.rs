//! Invitations: a fresh access code per invitation (bcrypt-hashed, never logged), the
//! localized message, the SMTP attempt, and what it changes.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use signeur_core::validate;
use signeur_core::{Delivery, EventType, Locale, RequestStatus, SignerStatus, SigningOrder};
use signeur_store::{RequestRow, SignerRow};

use crate::mail::{self, MailError};
use crate::model::effective_status;
use crate::{Result, Service, ServiceError, events};

/// bcrypt cost for access codes: a 6-digit code is guarded by the attempt limit; the hash
/// only has to keep a stolen database from revealing live codes instantly.
const ACCESS_CODE_COST: u32 = 10;

/// The answer to a resend.
#[derive(Debug, Clone)]
pub struct ResendOutcome {
    pub signer_id: Uuid,
    pub email_sent: bool,
    pub email_error: Option<String>,
    pub access_code_rotated_at: DateTime<Utc>,
}

/// What became of one invitation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteOutcome {
    /// The SMTP server accepted it.
    Sent,
    /// Refused for good; recorded on the signer with a `signer.email_failed` event.
    Failed(String),
    /// Nothing to do: the signer is no longer waiting or the request is no longer open.
    Skipped,
}

pub fn invitation_dedup_key(signer_id: Uuid) -> String {
    format!("invite:{signer_id}")
}

fn new_access_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

impl Service {
    /// Sends one signer their invitation. A transient failure is an error (the job retries
    /// it); a permanent one is an outcome (recorded, not retried).
    pub async fn send_invitation(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
    ) -> Result<InviteOutcome> {
        let Some(request) = self.db.get_request(org_id, request_id).await? else {
            return Ok(InviteOutcome::Skipped);
        };
        let Some(signer) = self.db.get_signer(request_id, signer_id).await? else {
            return Ok(InviteOutcome::Skipped);
        };
        let open = effective_status(&request, self.clock.now()).is_open();
        if !open || signer.status != SignerStatus::Pending || signer.email.is_none() {
            return Ok(InviteOutcome::Skipped);
        }
        let (sent, _) = self.deliver_invitation(&request, &signer, false).await?;
        match sent {
            Ok(()) => Ok(InviteOutcome::Sent),
            Err(e) if e.permanent => {
                self.record_refusal(org_id, request_id, &signer, &e.message)
                    .await?;
                Ok(InviteOutcome::Failed(e.message))
            }
            Err(e) => Err(ServiceError::Internal(anyhow::anyhow!(
                "invitation not delivered yet: {}",
                e.message
            ))),
        }
    }

    /// Rotates the access code, builds the message in the signer's language and hands it to
    /// the mailer (within the SMTP timeout). On success the signer is recorded `sent`.
    /// Returns the delivery result and when the code was rotated.
    async fn deliver_invitation(
        &self,
        request: &RequestRow,
        signer: &SignerRow,
        resent: bool,
    ) -> Result<(Result<(), MailError>, DateTime<Utc>)> {
        let email = signer.email.clone().ok_or(ServiceError::InvalidState(
            "The signer has no email address.".into(),
        ))?;
        let org = self
            .db
            .get_org(request.org_id)
            .await?
            .ok_or(ServiceError::NotFound("Organization"))?;
        let code = new_access_code();
        let hash = self.hash_code(code.clone()).await?;
        let rotated_at = self.clock.now();
        self.db
            .set_access_code(signer.id, &hash, rotated_at)
            .await?;

        let link = self.sign_url_of(signer)?;
        let expires = request.expires_at.format("%Y-%m-%d").to_string();
        let brand = self.settings(request.org_id).await?.branding;
        let (subject, text, html) = mail::render_invitation(&mail::Invitation {
            locale: signer.locale,
            name: signer.name.as_deref(),
            org: brand_name(brand.as_ref(), &org.name),
            title: &request.title,
            message: request.message.as_deref(),
            link: &link,
            code: &code,
            expires: &expires,
            resent,
            color: brand.as_ref().and_then(|b| b.color.as_deref()),
        })
        .map_err(anyhow::Error::msg)?;
        let sent = match mail::build(&self.mail.from, &email, &subject, text, html) {
            Ok(message) => {
                match tokio::time::timeout(self.mail.timeout, self.mail.mailer.send(message)).await
                {
                    Ok(r) => r,
                    Err(_) => Err(MailError {
                        permanent: false,
                        message: "the SMTP server did not answer in time".into(),
                    }),
                }
            }
            Err(e) => Err(e),
        };
        if sent.is_ok() {
            let mut tx = self.db.begin().await?;
            // The request row first, as every writer of a signer locks it (its trigger
            // rewrites the row's signers_json).
            tx.lock_request(request.org_id, request.id).await?;
            let now = self.clock.now();
            tx.record_invitation_sent(signer.id, now).await?;
            self.schedule_reminder_after_invitation(&mut tx, signer.id, now)
                .await?;
            tx.commit().await?;
            tracing::info!(signature_request = %request.id, signer = %signer.id, "invitation sent");
        }
        Ok((sent, rotated_at))
    }

    /// A refused invitation: the reason on the signer and a `signer.email_failed` event.
    async fn record_refusal(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer: &SignerRow,
        error: &str,
    ) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let Some(mut row) = tx.lock_request(org_id, request_id).await? else {
            return Ok(());
        };
        tx.record_invitation_failed(signer.id, error).await?;
        let event = events::append(
            &mut row,
            Some(signer.id),
            EventType::SignerEmailFailed,
            json!({
                "signature_request_id": request_id, "signer_id": signer.id,
                "signer_email": signer.email, "signer_name": signer.name, "email_error": error,
            }),
            now,
        );
        tx.update_request_status(&row).await?;
        self.record_events(&mut tx, &[event]).await?;
        tx.commit().await?;
        tracing::warn!(signature_request = %request_id, signer = %signer.id, error = %error, "invitation refused");
        Ok(())
    }

    /// `POST …/signers/{signer_id}/resend`: a new code (the old one stops working at once),
    /// attempts and lockout reset, the invitation sent again now; an optional locale
    /// override is kept on the signer. Only for emailed links (`delivery: "email"`): an api
    /// link needs no code and gets no email, so its resend is refused (409).
    pub async fn resend_invitation(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        body: &[u8],
    ) -> Result<ResendOutcome> {
        let request = self
            .db
            .get_request(org_id, request_id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let mut signer = self
            .db
            .get_signer(request_id, signer_id)
            .await?
            .ok_or(ServiceError::NotFound("Signer"))?;
        let locale = validate::resend_locale(body)?;
        let status = effective_status(&request, self.clock.now());
        if !status.is_open() {
            return Err(ServiceError::InvalidState(format!(
                "The request is '{status}'; invitations can no longer be sent."
            )));
        }
        let signer_status = signer.status;
        if !signer_status.is_open() {
            return Err(ServiceError::InvalidState(format!(
                "The signer is '{signer_status}'; there is nothing to resend."
            )));
        }
        if signer.email.is_none() {
            return Err(ServiceError::InvalidState(
                "The signer has no email address: hand out their sign_url instead.".into(),
            ));
        }
        if request.delivery != Delivery::Email {
            // Their link is the credential and asks for no code: a code emailed now would be
            // one the link never asks for, and an email the integrator chose not to send.
            return Err(ServiceError::InvalidState(
                "The request has delivery 'api': its signing links need no access code and \
                 Signeur emails no one, so there is nothing to resend; hand out the signer's \
                 sign_url yourself (rotate-link replaces a leaked one)."
                    .into(),
            ));
        }
        if signer_status == SignerStatus::Pending
            && request.signing_order == SigningOrder::Sequential
        {
            let signers = self.db.signers_of(request_id).await?;
            let turn = signers
                .iter()
                .filter(|s| s.status != SignerStatus::Signed)
                .map(|s| s.position)
                .min();
            if turn != Some(signer.position) {
                return Err(ServiceError::InvalidState(
                    "It is not this signer's turn yet (sequential signing).".into(),
                ));
            }
        }
        if let Some(locale) = locale {
            let mut tx = self.db.begin().await?;
            tx.lock_request(org_id, request_id).await?;
            tx.set_signer_locale(signer_id, locale).await?;
            tx.commit().await?;
            signer.locale = locale;
        }
        let (sent, rotated_at) = self.deliver_invitation(&request, &signer, true).await?;
        let email_error = match sent {
            Ok(()) => None,
            Err(e) => {
                if e.permanent {
                    self.record_refusal(org_id, request_id, &signer, &e.message)
                        .await?;
                } else {
                    let mut tx = self.db.begin().await?;
                    tx.lock_request(org_id, request_id).await?;
                    tx.record_invitation_failed(signer_id, &e.message).await?;
                    tx.commit().await?;
                }
                Some(e.message)
            }
        };
        self.mark_sent_if_pending(org_id, request_id).await?;
        Ok(ResendOutcome {
            signer_id,
            email_sent: email_error.is_none(),
            email_error,
            access_code_rotated_at: rotated_at,
        })
    }

    /// Moves a `pending` request to `sent` once its invitations were attempted, with the
    /// `signature_request.sent` event carrying each signer's `email_sent`/`email_error`.
    pub async fn mark_sent_if_pending(&self, org_id: Uuid, request_id: Uuid) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let Some(mut row) = tx.lock_request(org_id, request_id).await? else {
            return Ok(());
        };
        if effective_status(&row, now) != RequestStatus::Pending {
            return Ok(());
        }
        let signers = tx.signers_of_locked(request_id).await?;
        row.status = RequestStatus::Pending.apply(signeur_core::Action::Send)?;
        row.sent_at = Some(now);
        row.updated_at = now;
        let per_signer: Vec<_> = signers
            .iter()
            .map(|s| json!({"signer_id": s.id, "email": s.email, "status": s.status, "email_sent": s.email_sent, "email_error": s.email_error}))
            .collect();
        let event = events::append(
            &mut row,
            None,
            EventType::SignatureRequestSent,
            json!({"signature_request_id": request_id, "delivery": "email", "signers": per_signer}),
            now,
        );
        tx.update_request_status(&row).await?;
        self.record_events(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The create flow's first attempt: each invitation runs in a task of its own (so a
    /// slow server cannot cut one off half-way); the caller waits at most the SMTP timeout.
    /// Whatever is not done by then stays queued for the worker.
    pub(crate) async fn attempt_invitations(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_ids: Vec<Uuid>,
    ) {
        let tasks: Vec<_> = signer_ids
            .into_iter()
            .map(|signer_id| {
                let service = self.clone();
                tokio::spawn(async move {
                    match service.send_invitation(org_id, request_id, signer_id).await {
                        Ok(InviteOutcome::Sent) | Ok(InviteOutcome::Failed(_)) => {
                            if let Err(e) = service.db.complete_job_by_dedup_key(&invitation_dedup_key(signer_id), service.clock.now()).await {
                                tracing::warn!(error = %e, "could not remove a finished invitation job");
                            }
                        }
                        Ok(InviteOutcome::Skipped) => {}
                        Err(e) => tracing::info!(signer = %signer_id, error = %e, "invitation left for the worker"),
                    }
                })
            })
            .collect();
        let _ = tokio::time::timeout(self.mail.timeout, futures::future::join_all(tasks)).await;
        if let Err(e) = self.mark_sent_if_pending(org_id, request_id).await {
            tracing::warn!(error = %e, "could not mark the request sent");
        }
    }

    /// Whether `code` is the signer's current access code.
    pub async fn verify_access_code(&self, signer_id: Uuid, code: &str) -> Result<bool> {
        let Some(hash) = self.db.access_code_hash(signer_id).await? else {
            return Ok(false);
        };
        self.code_matches(code, hash).await
    }

    /// Checks `code` against a bcrypt `hash` (counted in the metrics).
    pub(crate) async fn code_matches(&self, code: &str, hash: String) -> Result<bool> {
        let code = code.to_string();
        let right = self
            .blocking
            .bcrypt(move || bcrypt::verify(code, &hash).unwrap_or(false))
            .await?;
        self.metrics.code_check(right);
        Ok(right)
    }

    /// Sends one signer a notice. A transient failure is an error (the job retries it); a
    /// refusal is logged and not retried.
    pub async fn send_notice(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        kind: mail::NoticeKind,
    ) -> Result<()> {
        match self
            .deliver_notice(org_id, request_id, signer_id, kind)
            .await?
        {
            None | Some(Ok(())) => Ok(()),
            Some(Err(e)) if e.permanent => {
                tracing::warn!(signer = %signer_id, error = %e, "notice refused");
                Ok(())
            }
            Some(Err(e)) => Err(ServiceError::Internal(anyhow::anyhow!(
                "notice not delivered yet: {e}"
            ))),
        }
    }

    /// Builds a notice in the signer's language and hands it to the mailer (within the SMTP
    /// timeout). None: nothing to send (no such signer or address; a reminder to a signer who
    /// acted meanwhile or of a request no longer open).
    pub(crate) async fn deliver_notice(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        kind: mail::NoticeKind,
    ) -> Result<Option<std::result::Result<(), MailError>>> {
        let (Some(request), Some(signer), Some(org)) = (
            self.db.get_request(org_id, request_id).await?,
            self.db.get_signer(request_id, signer_id).await?,
            self.db.get_org(org_id).await?,
        ) else {
            return Ok(None);
        };
        let Some(email) = signer.email.as_deref() else {
            return Ok(None);
        };
        if kind == mail::NoticeKind::Reminder
            && (!effective_status(&request, self.clock.now()).is_open()
                || !matches!(signer.status, SignerStatus::Sent | SignerStatus::Opened))
        {
            return Ok(None);
        }
        let expires = request.expires_at.format("%Y-%m-%d").to_string();
        let link = self.sign_url_of(&signer)?;
        // A decline notice names who declined.
        let decliner = match kind {
            mail::NoticeKind::Declined => self
                .db
                .signers_of(request_id)
                .await?
                .into_iter()
                .find(|s| s.status == SignerStatus::Declined)
                .and_then(|s| s.name.or(s.email)),
            _ => None,
        };
        let brand = self.settings(org_id).await?.branding;
        let (subject, text, html) = mail::render_notice(&mail::Notice {
            kind,
            locale: signer.locale,
            name: signer.name.as_deref(),
            org: brand_name(brand.as_ref(), &org.name),
            title: &request.title,
            link: (kind == mail::NoticeKind::Reminder).then_some(link.as_str()),
            reason: match kind {
                mail::NoticeKind::Cancelled => request.cancel_reason.as_deref(),
                _ => None,
            },
            signer: decliner.as_deref(),
            expires: &expires,
            color: brand.as_ref().and_then(|b| b.color.as_deref()),
        })
        .map_err(anyhow::Error::msg)?;
        let message = match mail::build(&self.mail.from, email, &subject, text, html) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(signer = %signer_id, error = %e, "notice not sent");
                return Ok(Some(Err(e)));
            }
        };
        Ok(Some(
            match tokio::time::timeout(self.mail.timeout, self.mail.mailer.send(message)).await {
                Ok(r) => r,
                Err(_) => Err(MailError {
                    permanent: false,
                    message: "the SMTP server did not answer in time".into(),
                }),
            },
        ))
    }

    /// Sends a test message (`signeur send-test-email`).
    pub async fn send_test_email(&self, to: &str) -> std::result::Result<(), MailError> {
        let subject = crate::i18n::translate(Locale::En, "test-subject", &[]).unwrap_or_default();
        let body = crate::i18n::translate(Locale::En, "test-body", &[]).unwrap_or_default();
        let message = mail::build(
            &self.mail.from,
            to,
            &subject,
            body.clone(),
            format!("<p>{body}</p>"),
        )?;
        self.mail.mailer.send(message).await
    }
}

impl Service {
    async fn hash_code(&self, code: String) -> Result<String> {
        self.blocking
            .bcrypt(move || bcrypt::hash(code, ACCESS_CODE_COST))
            .await?
            .map_err(|e| ServiceError::Internal(e.into()))
    }
}

/// The name emails speak in: the branding's name, else the organization's.
fn brand_name<'a>(brand: Option<&'a crate::branding::Branding>, org_name: &'a str) -> &'a str {
    brand.and_then(|b| b.name.as_deref()).unwrap_or(org_name)
}
