//! Signature requests: create, read, list, cancel, download.

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use signeur_core::validate::{self, NewRequest};
use signeur_core::{Action, Delivery, EventType, RequestStatus, SignerStatus, SigningOrder, time};
use signeur_store::{ListFilter, RequestRow, SignerRow};

use crate::deliveries::DeliveryAttempt;
use crate::jobs::Job;
use crate::mail::NoticeKind;

use crate::links::new_access_token;
use crate::model::{self, Event, SignatureRequest, Signer, effective_status};
use crate::{Result, Service, ServiceError, cursor, events, paging};

/// A request with everything a reader sees, as of `now`.
#[derive(Debug, Clone)]
pub struct RequestDetail {
    pub request: SignatureRequest,
    pub signers: Vec<Signer>,
    pub events: Vec<Event>,
    /// Every webhook attempt for its events, oldest first: listed in its audit trail, not
    /// part of the hash chain.
    pub deliveries: Vec<DeliveryAttempt>,
    pub now: DateTime<Utc>,
}

impl RequestDetail {
    /// The status a reader sees (an open request past `expires_at` reads `expired`).
    pub fn status(&self) -> RequestStatus {
        self.request.status_at(self.now)
    }
}

/// List parameters as they arrived in the query string.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<String>,
    pub created_from: Option<String>,
    pub created_to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<SignatureRequest>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct CancelOutcome {
    pub id: Uuid,
    pub status: RequestStatus,
    pub cancelled_at: DateTime<Utc>,
}

pub struct SignedDocument {
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl Service {
    /// Creates a request: checks the body and the PDF, stores the document, then commits
    /// the request, its signers, its events and its invitation jobs in one transaction.
    pub async fn create_request(&self, org_id: Uuid, body: &[u8]) -> Result<RequestDetail> {
        let now = self.clock.now();
        let default_locale = self.settings(org_id).await?.default_locale;
        let mut new = validate::create_request_with_locale(body, now, default_locale)?;
        // On the blocking pool, a bounded number at once; the bytes go there and back.
        let content = std::mem::take(&mut new.document.content);
        let (content, inspected) = self
            .blocking
            .pdf(move || {
                let inspected = signeur_pdf::inspect(&content);
                (content, inspected)
            })
            .await?;
        new.document.content = content;
        let info = inspected.map_err(|e| {
            let message = match &e {
                signeur_pdf::InspectError::NotAPdf => "Field 'document.content_base64' is not a PDF document.".to_string(),
                signeur_pdf::InspectError::Encrypted => {
                    "Field 'document.content_base64' is an encrypted PDF; upload it without a password or restrictions.".to_string()
                }
                signeur_pdf::InspectError::CertifiedLocked => {
                    "Field 'document.content_base64' is a certified PDF that allows no changes (DocMDP P=1), so it cannot be signed.".to_string()
                }
                signeur_pdf::InspectError::Unreadable(why) => {
                    format!("Field 'document.content_base64' is not a readable PDF: {why}")
                }
            };
            ServiceError::invalid(e.code(), message)
        })?;
        for (i, s) in new.signers.iter().enumerate() {
            if let Some(p) = s.signature_position
                && p.page > info.page_count
            {
                return Err(ServiceError::invalid(
                    "invalid_field",
                    format!(
                        "Field 'signers[{i}].signature_position.page' is {}, but the document has {} page(s).",
                        p.page, info.page_count
                    ),
                ));
            }
        }

        let request_id = Uuid::new_v4();
        let blob_key = format!("documents/{org_id}/{request_id}.pdf");
        // Written before the transaction: if the commit fails, the orphan-blob job removes it.
        self.blobs.put(&blob_key, &new.document.content).await?;

        let (mut request, mut signers) = build_rows(
            org_id,
            request_id,
            &new,
            blob_key,
            i64::from(info.page_count),
            now,
        );
        for s in &mut signers {
            let (sealed, hash) = self.seal_link_token(&s.access_token);
            s.access_token = sealed;
            s.access_token_hash = Some(hash);
        }
        let signer_list: Vec<_> = signers
            .iter()
            .map(|s| json!({"id": s.id, "email": s.email, "name": s.name, "locale": s.locale, "position": s.position}))
            .collect();
        let mut evts = vec![events::append(
            &mut request,
            None,
            EventType::SignatureRequestCreated,
            json!({"signature_request_id": request_id, "title": new.title, "signers": signer_list}),
            now,
        )];
        let mut jobs = Vec::new();
        let mut invited = Vec::new();
        match new.delivery {
            Delivery::Api => {
                let sent: Vec<_> = signers
                    .iter()
                    .map(|s| json!({"signer_id": s.id, "email": s.email, "status": s.status, "email_sent": false, "email_error": null}))
                    .collect();
                evts.push(events::append(
                    &mut request,
                    None,
                    EventType::SignatureRequestSent,
                    json!({"signature_request_id": request_id, "delivery": "api", "signers": sent}),
                    now,
                ));
            }
            Delivery::Email => {
                // The invitations are sent by the email worker; sequential requests invite
                // only the first signer now.
                for s in signers
                    .iter()
                    .filter(|s| s.position == 0 || new.signing_order == SigningOrder::Parallel)
                {
                    invited.push(s.id);
                    jobs.push(Job::SendInvitation {
                        org_id,
                        request_id,
                        signer_id: s.id,
                    });
                }
            }
        }
        // Omitted: the organization's policy now, kept with the request (a later settings
        // change does not rewrite it).
        let policy = match new.reminders {
            Some(chosen) => chosen,
            None => self.org_reminder_policy(org_id).await?,
        };
        let schedules = Self::reminder_schedules(&request, &signers, policy);
        let mut tx = self.db.begin().await?;
        tx.insert_request(&request).await?;
        tx.insert_signers(&signers).await?;
        tx.insert_reminder_schedules(&schedules).await?;
        self.record_events(&mut tx, &evts).await?;
        // The create attempts the invitations first; the worker only after that window.
        let run_at = now + invitation_window(&self.mail);
        for job in &jobs {
            self.enqueue_job(&mut tx, job, run_at, now).await?;
        }
        tx.commit().await?;
        if invited.is_empty() {
            return Ok(RequestDetail {
                request: request.into(),
                signers: self.signer_models(signers)?,
                events: model::all(evts),
                deliveries: Vec::new(),
                now,
            });
        }
        self.attempt_invitations(org_id, request_id, invited).await;
        self.get_request(org_id, request_id).await
    }

    pub async fn get_request(&self, org_id: Uuid, id: Uuid) -> Result<RequestDetail> {
        let signeur_store::RequestWithParts {
            request,
            signers,
            events,
            attempts,
        } = self
            .db
            .get_request_with_parts(org_id, id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        Ok(RequestDetail {
            request: request.into(),
            signers: self.signer_models(signers)?,
            events: model::all(events),
            deliveries: attempts.into_iter().map(DeliveryAttempt::from).collect(),
            now: self.clock.now(),
        })
    }

    pub async fn list_requests(&self, org_id: Uuid, q: &ListQuery) -> Result<Page> {
        let now = self.clock.now();
        let status = match q.status.as_deref() {
            None | Some("") => None,
            Some(s) => Some(
                RequestStatus::parse(s)
                    .ok_or_else(|| paging::invalid_filter("status", "must be one of pending, sent, opened, signed, cancelled, declined, expired, awaiting_stamp, stamp_failed"))?,
            ),
        };
        let created_from = paging::bound("created_from", q.created_from.as_deref())?;
        let created_to = paging::bound("created_to", q.created_to.as_deref())?;
        let limit = paging::limit(q.limit.as_deref())?;
        // What a cursor is bound to: the filters exactly as interpreted.
        let fingerprint = format!(
            "status={}&from={}&to={}",
            status.map(RequestStatus::as_str).unwrap_or(""),
            created_from.map(time::format).unwrap_or_default(),
            created_to.map(time::format).unwrap_or_default()
        );
        let after = match q.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(
                cursor::decode(&self.keys, org_id, &fingerprint, c)
                    .ok_or_else(paging::invalid_cursor)?,
            ),
        };
        let filter = ListFilter {
            status,
            created_from,
            created_to,
            after,
            limit: limit + 1,
        };
        let mut rows = self.db.list_requests(org_id, &filter, now).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if has_more => Some(cursor::encode(
                &self.keys,
                org_id,
                &fingerprint,
                last.created_at,
                last.id,
            )),
            _ => None,
        };
        Ok(Page {
            rows: model::all(rows),
            has_more,
            next_cursor,
            now,
        })
    }

    /// Cancels an open request and invalidates every link not yet used.
    pub async fn cancel_request(
        &self,
        org_id: Uuid,
        id: Uuid,
        body: &[u8],
    ) -> Result<CancelOutcome> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut r = tx
            .lock_request(org_id, id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let reason = validate::cancel_reason(body)?;
        let next = effective_status(&r, now).apply(Action::Cancel)?;
        r.status = next;
        r.cancelled_at = Some(now);
        r.cancel_reason = reason.clone();
        r.updated_at = now;
        let event = events::append(
            &mut r,
            None,
            EventType::SignatureRequestCancelled,
            json!({"signature_request_id": id, "reason": reason, "cancelled_at": time::format(now)}),
            now,
        );
        // Signers who were emailed an invitation hear that it no longer stands.
        if r.delivery == Delivery::Email {
            // Read through the transaction: a second connection may never come (a pool
            // as small as its number of open transactions).
            for s in tx.signers_of_locked(id).await? {
                let invited =
                    s.email_sent && matches!(s.status, SignerStatus::Sent | SignerStatus::Opened);
                if invited {
                    let job = Job::SendNotice {
                        org_id,
                        request_id: id,
                        signer_id: s.id,
                        notice: NoticeKind::Cancelled,
                    };
                    self.enqueue_job(&mut tx, &job, now, now).await?;
                }
            }
        }
        tx.update_request_status(&r).await?;
        tx.invalidate_open_signers(id, now).await?;
        self.record_events(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(CancelOutcome {
            id,
            status: next,
            cancelled_at: now,
        })
    }

    /// The sealed document of a signed request.
    pub async fn signed_document(&self, org_id: Uuid, id: Uuid) -> Result<SignedDocument> {
        let r = self
            .db
            .get_request(org_id, id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let status = effective_status(&r, self.clock.now());
        match status {
            RequestStatus::Signed => {}
            RequestStatus::Cancelled | RequestStatus::Declined | RequestStatus::Expired => {
                return Err(ServiceError::InvalidState(format!(
                    "The request is '{status}'; its document is no longer available."
                )));
            }
            other => return Err(ServiceError::DocumentNotSigned(other.to_string())),
        }
        let key = r.sealed_blob.as_deref().unwrap_or(&r.document_blob);
        let bytes = self.blobs.get(key).await?.ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("blob {key} of request {id} is missing"))
        })?;
        Ok(SignedDocument {
            filename: r.document_filename,
            bytes,
        })
    }
}

/// How long the worker leaves a new request's invitations to the create that made them.
fn invitation_window(mail: &crate::mail::MailSettings) -> chrono::Duration {
    chrono::Duration::from_std(mail.timeout).unwrap_or_default() + chrono::Duration::seconds(5)
}

fn build_rows(
    org_id: Uuid,
    request_id: Uuid,
    new: &NewRequest,
    blob_key: String,
    page_count: i64,
    now: DateTime<Utc>,
) -> (RequestRow, Vec<SignerRow>) {
    let api = new.delivery == Delivery::Api;
    let request = RequestRow {
        id: request_id,
        org_id,
        title: new.title.clone(),
        message: new.message.clone(),
        locale: new.locale,
        delivery: new.delivery,
        signing_order: new.signing_order,
        metadata: new.metadata.clone(),
        status: if api {
            RequestStatus::Sent
        } else {
            RequestStatus::Pending
        },
        document_filename: new.document.filename.clone(),
        document_hash: hex::encode(Sha256::digest(&new.document.content)),
        document_size: new.document.content.len() as i64,
        document_page_count: page_count,
        document_blob: blob_key,
        signer_count: new.signers.len() as i64,
        sealed_blob: None,
        sealed_document_hash: None,
        created_at: now,
        updated_at: now,
        sent_at: api.then_some(now),
        opened_at: None,
        signed_at: None,
        cancelled_at: None,
        cancel_reason: None,
        declined_at: None,
        expired_at: None,
        expires_at: new.expires_at,
        event_seq: 0,
        last_event_hash: None,
    };
    let signers = new
        .signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // With api delivery the link is handed out now, but in a sequential request
            // only the first signer's turn has come.
            let invited = api && (i == 0 || new.signing_order == SigningOrder::Parallel);
            SignerRow {
                id: Uuid::new_v4(),
                request_id,
                org_id,
                position: i as i64,
                email: s.email.clone(),
                name: s.name.clone(),
                name_as_signed: None,
                locale: s.locale,
                // In plain text only until the create seals it.
                access_token: new_access_token(),
                access_token_hash: None,
                status: if invited {
                    SignerStatus::Sent
                } else {
                    SignerStatus::Pending
                },
                sent_at: invited.then_some(now),
                opened_at: None,
                signed_at: None,
                declined_at: None,
                decline_reason: None,
                invalidated_at: None,
                ip_address: None,
                user_agent: None,
                representing_as_invited: None,
                representing_as_signed: None,
                representing_role: None,
                representing_entity_id: None,
                email_sent: false,
                email_error: None,
                verification_method: None,
                signature_image_blob: None,
                signature_position: s.signature_position.map(|p| p.to_json()),
            }
        })
        .collect();
    (request, signers)
}
