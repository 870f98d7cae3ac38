//! What the API returns, field for field as the Signeur documentation shows it. Built from
//! service results; every documented field is always present (null when not yet known).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use signeur_core::time::{ms, ms_opt};
use signeur_core::{
    Delivery, EventType, Locale, RequestStatus, SignerStatus, SigningOrder, VerificationMethod,
};
use signeur_service::deliveries::{DeliveryAttempt, attempt_wire_id, delivery_wire_id};
use signeur_service::{
    CancelOutcome, Event, Page, RequestDetail, Service, SignatureRequest, Signer,
};

#[derive(Serialize, ToSchema)]
pub struct SignerCreated {
    pub id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The secret in `sign_url`.
    pub access_token: String,
    #[schema(format = "uri")]
    pub sign_url: String,
    pub status: SignerStatus,
    pub position: i64,
    /// True exactly when the SMTP server accepted the invitation.
    pub email_sent: bool,
    pub email_error: Option<String>,

    pub locale: Locale,
}

/// The answer to a create.
#[derive(Serialize, ToSchema)]
pub struct SignatureRequestCreated {
    pub id: Uuid,
    pub status: RequestStatus,
    pub title: String,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms::serialize")]
    pub expires_at: DateTime<Utc>,

    pub delivery: Delivery,
    pub signing_order: SigningOrder,
    /// SHA-256 (hex) of the uploaded PDF.
    pub document_hash: String,
    pub signers: Vec<SignerCreated>,
}

#[derive(Serialize, ToSchema)]
pub struct SignerSummary {
    pub id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub access_token: String,
    #[schema(format = "uri")]
    pub sign_url: String,
    pub status: SignerStatus,
    pub position: i64,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub declined_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<String>,
    pub email_sent: bool,
    pub email_error: Option<String>,

    pub locale: Locale,
    /// Where the visible signature block goes; null: on the last page where it covers no
    /// content.
    pub signature_position: Option<SignaturePositionView>,
}

/// A page (from 1) and the block's top-left corner in points from the page's top-left.
#[derive(Serialize, ToSchema, Clone, Copy)]
pub struct SignaturePositionView {
    pub page: u32,
    pub x: f32,
    pub y: f32,
}

fn signature_position(s: &Signer) -> Option<SignaturePositionView> {
    s.signature_position.map(|p| SignaturePositionView {
        page: p.page,
        x: p.x,
        y: p.y,
    })
}

/// One event of the audit trail, with its place in the hash chain.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    #[schema(example = "evt_a1b2c3d4-e5f6-7890-abcd-ef1234567890")]
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    /// The event's payload, as stored (canonical JSON).
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    pub signer_id: Option<Uuid>,
    /// SHA-256 of the previous event of this request (null for the first).
    pub prev_hash: Option<String>,
    /// SHA-256 of this event's canonical JSON.
    pub hash: String,
}

/// One webhook delivery attempt for one of the request's events. Listed in the audit trail,
/// not part of the hash chain (attempts are never themselves delivered).
#[derive(Serialize, ToSchema)]
pub struct AuditDeliveryView {
    /// The attempt.
    #[schema(example = "wha_0193b0c4-7e4a-7cc2-9a51-3f0e4b1d2c3a")]
    pub id: String,
    /// The delivery (one per event and endpoint) this attempt belongs to.
    #[schema(example = "whd_0193b0c4-7e40-7cc2-9a51-3f0e4b1d2c3a")]
    pub delivery_id: String,
    /// The endpoint it was sent to.
    #[schema(example = "ep_a1b2c3d4-e5f6-7890-abcd-ef1234567890")]
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// 1-based.
    pub attempt: i64,
    #[schema(pattern = "^(succeeded|failed)$")]
    pub status: String,
    /// The receiver's status code; null when no response arrived.
    pub http_status: Option<i64>,
    pub duration_ms: i64,
    /// Why the attempt failed (status, timeout, connection error, refused address).
    pub error: Option<String>,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<&DeliveryAttempt> for AuditDeliveryView {
    fn from(a: &DeliveryAttempt) -> Self {
        AuditDeliveryView {
            id: attempt_wire_id(a.id),
            delivery_id: delivery_wire_id(a.delivery_id),
            endpoint_id: signeur_service::webhooks::endpoint_id(a.endpoint_id),
            event_id: a.event_id.clone(),
            event_type: a.event_type.clone(),
            attempt: a.attempt,
            status: if a.succeeded { "succeeded" } else { "failed" }.to_string(),
            http_status: a.http_status,
            duration_ms: a.duration_ms,
            error: a.error.clone(),
            created_at: a.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditTrail {
    /// Oldest first, each with its place in the hash chain.
    pub events: Vec<EventView>,
    /// Every webhook delivery attempt for these events, oldest first.
    pub deliveries: Vec<AuditDeliveryView>,
}

#[derive(Serialize, ToSchema)]
pub struct DocumentInfo {
    pub filename: String,
    pub size: i64,
    pub page_count: i64,
}

/// A signature request with its signers and audit trail.
#[derive(Serialize, ToSchema)]
pub struct SignatureRequestView {
    pub id: Uuid,
    pub status: RequestStatus,
    pub title: String,
    pub message: Option<String>,

    pub locale: Locale,
    pub delivery: Delivery,
    pub signing_order: SigningOrder,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub declined_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms::serialize")]
    pub expires_at: DateTime<Utc>,
    pub is_expired: bool,
    pub signers: Vec<SignerSummary>,
    pub document: DocumentInfo,
    pub document_hash: String,
    pub sealed_document_hash: Option<String>,
    pub audit_trail: AuditTrail,
    /// The metadata object exactly as it was sent.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

/// One row of the list.
#[derive(Serialize, ToSchema)]
pub struct SignatureRequestSummary {
    pub id: Uuid,
    pub status: RequestStatus,
    pub title: String,
    pub signer_count: i64,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms::serialize")]
    pub expires_at: DateTime<Utc>,
    pub is_expired: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SignatureRequestList {
    pub data: Vec<SignatureRequestSummary>,
    pub has_more: bool,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[schema(pattern = "^[A-Za-z0-9_-]+$")]
    pub next_cursor: Option<String>,
}

/// A signer with everything known about them.
#[derive(Serialize, ToSchema)]
pub struct SignerDetail {
    #[serde(flatten)]
    pub summary: SignerSummary,
    pub name_as_invited: Option<String>,
    pub name_as_signed: Option<String>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub invalidated_at: Option<DateTime<Utc>>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub representing_as_invited: Option<String>,
    pub representing_as_signed: Option<String>,
    pub representing_role: Option<String>,
    pub representing_entity_id: Option<String>,
    pub audit_trail: AuditTrail,
}

#[derive(Serialize, ToSchema)]
pub struct SignerList {
    pub data: Vec<SignerDetail>,
}

#[derive(Serialize, ToSchema)]
pub struct CancelResponse {
    pub id: Uuid,
    pub status: RequestStatus,
    #[serde(serialize_with = "ms::serialize")]
    pub cancelled_at: DateTime<Utc>,
}

/// The answer to a resend.
#[derive(Serialize, ToSchema)]
pub struct ResendResponse {
    pub ok: bool,
    pub signer_id: Uuid,
    /// True exactly when the SMTP server accepted the new invitation.
    pub email_sent: bool,
    pub email_error: Option<String>,
    #[serde(serialize_with = "ms::serialize")]
    pub access_code_rotated_at: DateTime<Utc>,
}

impl From<&signeur_service::ResendOutcome> for ResendResponse {
    fn from(r: &signeur_service::ResendOutcome) -> Self {
        ResendResponse {
            ok: true,
            signer_id: r.signer_id,
            email_sent: r.email_sent,
            email_error: r.email_error.clone(),
            access_code_rotated_at: r.access_code_rotated_at,
        }
    }
}

/// The answer to a remind.
#[derive(Serialize, ToSchema)]
pub struct RemindResponse {
    pub ok: bool,
    pub signer_id: Uuid,
    /// True exactly when the SMTP server accepted the reminder.
    pub email_sent: bool,
    /// Why it was not accepted; null when sent, or when the reminder is still queued.
    pub email_error: Option<String>,
    #[serde(serialize_with = "ms::serialize")]
    pub reminded_at: DateTime<Utc>,
}

impl From<&signeur_service::expiry::RemindOutcome> for RemindResponse {
    fn from(r: &signeur_service::expiry::RemindOutcome) -> Self {
        RemindResponse {
            ok: true,
            signer_id: r.signer_id,
            email_sent: r.email_sent,
            email_error: r.email_error.clone(),
            reminded_at: r.reminded_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

fn signer_summary(s: &Signer, links: &Service) -> SignerSummary {
    owned_signer_summary(s.clone(), links)
}

/// Moves the row's strings into the view (the get path builds one per signer per request).
fn owned_signer_summary(s: Signer, links: &Service) -> SignerSummary {
    SignerSummary {
        signature_position: signature_position(&s),
        id: s.id,
        sign_url: links.sign_url(&s.access_token),
        status: s.status,
        email: s.email,
        name: s.name,
        access_token: s.access_token,
        position: s.position,
        sent_at: s.sent_at,
        opened_at: s.opened_at,
        signed_at: s.signed_at,
        declined_at: s.declined_at,
        decline_reason: s.decline_reason,
        email_sent: s.email_sent,
        email_error: s.email_error,
        locale: s.locale,
    }
}

fn event_view(e: &Event) -> EventView {
    owned_event_view(e.clone())
}

fn owned_event_view(e: Event) -> EventView {
    EventView {
        id: e.id,
        event_type: e.event_type,
        created_at: e.created_at,
        data: RawValue::from_string(e.data).unwrap_or_default(), // `null`
        signer_id: e.signer_id,
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

impl SignatureRequestCreated {
    pub fn new(d: &RequestDetail, links: &Service) -> Self {
        let r = &d.request;
        SignatureRequestCreated {
            id: r.id,
            status: d.status(),
            title: r.title.clone(),
            created_at: r.created_at,
            sent_at: r.sent_at,
            expires_at: r.expires_at,
            delivery: r.delivery,
            signing_order: r.signing_order,
            document_hash: r.document_hash.clone(),
            signers: d
                .signers
                .iter()
                .map(|s| SignerCreated {
                    id: s.id,
                    email: s.email.clone(),
                    name: s.name.clone(),
                    access_token: s.access_token.clone(),
                    sign_url: links.sign_url(&s.access_token),
                    status: s.status,
                    position: s.position,
                    email_sent: s.email_sent,
                    email_error: s.email_error.clone(),
                    locale: s.locale,
                })
                .collect(),
        }
    }
}

impl SignatureRequestView {
    pub fn new(d: RequestDetail, links: &Service) -> Self {
        let status = d.status();
        let RequestDetail {
            request: r,
            signers,
            events,
            deliveries,
            ..
        } = d;
        SignatureRequestView {
            id: r.id,
            status,
            title: r.title,
            message: r.message,
            locale: r.locale,
            delivery: r.delivery,
            signing_order: r.signing_order,
            created_at: r.created_at,
            sent_at: r.sent_at,
            opened_at: r.opened_at,
            signed_at: r.signed_at,
            cancelled_at: r.cancelled_at,
            cancel_reason: r.cancel_reason,
            declined_at: r.declined_at,
            expires_at: r.expires_at,
            is_expired: status == RequestStatus::Expired,
            signers: signers
                .into_iter()
                .map(|s| owned_signer_summary(s, links))
                .collect(),
            document: DocumentInfo {
                filename: r.document_filename,
                size: r.document_size,
                page_count: r.document_page_count,
            },
            document_hash: r.document_hash,
            sealed_document_hash: r.sealed_document_hash,
            audit_trail: AuditTrail {
                events: events.into_iter().map(owned_event_view).collect(),
                deliveries: deliveries.iter().map(AuditDeliveryView::from).collect(),
            },
            metadata: r.metadata.and_then(|m| RawValue::from_string(m).ok()),
        }
    }
}

impl SignatureRequestList {
    pub fn new(p: &Page) -> Self {
        SignatureRequestList {
            data: p.rows.iter().map(|r| summary(r, p.now)).collect(),
            has_more: p.has_more,
            next_cursor: p.next_cursor.clone(),
        }
    }
}

fn summary(r: &SignatureRequest, now: DateTime<Utc>) -> SignatureRequestSummary {
    let status = r.status_at(now);
    SignatureRequestSummary {
        id: r.id,
        status,
        title: r.title.clone(),
        signer_count: r.signer_count,
        created_at: r.created_at,
        sent_at: r.sent_at,
        signed_at: r.signed_at,
        cancelled_at: r.cancelled_at,
        expires_at: r.expires_at,
        is_expired: status == RequestStatus::Expired,
    }
}

impl SignerList {
    pub fn new(d: &RequestDetail, links: &Service) -> Self {
        SignerList {
            data: d
                .signers
                .iter()
                .map(|s| SignerDetail {
                    summary: signer_summary(s, links),
                    name_as_invited: s.name.clone(),
                    name_as_signed: s.name_as_signed.clone(),
                    invalidated_at: s.invalidated_at,
                    ip_address: s.ip_address.clone(),
                    user_agent: s.user_agent.clone(),
                    representing_as_invited: s.representing_as_invited.clone(),
                    representing_as_signed: s.representing_as_signed.clone(),
                    representing_role: s.representing_role.clone(),
                    representing_entity_id: s.representing_entity_id.clone(),
                    audit_trail: AuditTrail {
                        events: d
                            .events
                            .iter()
                            .filter(|e| e.signer_id == Some(s.id))
                            .map(event_view)
                            .collect(),
                        deliveries: d
                            .deliveries
                            .iter()
                            .filter(|a| {
                                d.events
                                    .iter()
                                    .any(|e| e.id == a.event_id && e.signer_id == Some(s.id))
                            })
                            .map(AuditDeliveryView::from)
                            .collect(),
                    },
                })
                .collect(),
        }
    }
}

impl From<&CancelOutcome> for CancelResponse {
    fn from(c: &CancelOutcome) -> Self {
        CancelResponse {
            id: c.id,
            status: c.status,
            cancelled_at: c.cancelled_at,
        }
    }
}

/// The request part of the audit record (no access tokens: the record is meant to be shared).
#[derive(Serialize, ToSchema)]
pub struct AuditRequestView {
    pub id: Uuid,
    pub status: RequestStatus,
    pub title: String,
    pub message: Option<String>,

    pub delivery: Delivery,
    pub signing_order: SigningOrder,
    #[serde(serialize_with = "ms::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub declined_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms::serialize")]
    pub expires_at: DateTime<Utc>,
    pub document: DocumentInfo,
    /// SHA-256 of the uploaded original.
    pub document_hash: String,
    /// SHA-256 of the sealed file, once sealed.
    pub sealed_document_hash: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

/// A signer as the audit record shows them.
#[derive(Serialize, ToSchema)]
pub struct AuditSignerView {
    pub id: Uuid,
    pub position: i64,
    pub email: Option<String>,
    pub name_as_invited: Option<String>,
    pub name_as_signed: Option<String>,
    pub representing_as_signed: Option<String>,
    pub status: SignerStatus,
    /// How the signer was identified; null until signed.
    pub verification_method: Option<VerificationMethod>,
    /// The same in words.
    pub verification: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub declined_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<String>,
    #[serde(serialize_with = "ms_opt::serialize")]
    pub invalidated_at: Option<DateTime<Utc>>,
}

/// Whether the events form an intact hash chain (each `prev_hash` is its predecessor's
/// `hash`; each `hash` is the SHA-256 of the event's canonical JSON).
#[derive(Serialize, ToSchema)]
pub struct ChainView {
    pub valid: bool,
    pub events: usize,
    /// Where it breaks; null when valid.
    pub problem: Option<String>,
}

/// The seal of the sealed file, as read back from it.
#[derive(Serialize, ToSchema)]
pub struct SealView {
    #[schema(example = "PAdES-B-T")]
    pub level: String,
    pub valid: bool,
    pub certificate_subject: String,
    pub certificate_issuer: String,
    /// Upper-case hex.
    pub certificate_serial: String,
    pub not_before: String,
    pub not_after: String,
    pub self_signed: bool,
    /// The signature dictionary's `/M` as written (a claim; the time-stamp is the proof).
    pub signing_time: Option<String>,
    pub timestamp_time: Option<String>,
    pub timestamp_authority: Option<String>,
    pub problems: Vec<String>,
}

/// `GET /api/v1/signatures/{id}/audit-trail.json`: the record behind the audit-trail PDF.
#[derive(Serialize, ToSchema)]
pub struct AuditRecordView {
    pub signature_request: AuditRequestView,
    pub signers: Vec<AuditSignerView>,
    /// Oldest first, each with its hash and its predecessor's: `signeur verify --audit`
    /// checks this file as it is.
    pub events: Vec<EventView>,
    /// Every webhook delivery attempt for these events, oldest first: listed, not chained.
    pub deliveries: Vec<AuditDeliveryView>,
    pub chain: ChainView,
    pub seal: Option<SealView>,
    #[serde(serialize_with = "ms::serialize")]
    pub generated_at: DateTime<Utc>,
}

impl AuditRecordView {
    pub fn new(record: signeur_service::evidence::AuditRecord) -> Self {
        let status = record.detail.status();
        let signeur_service::evidence::AuditRecord {
            detail,
            chain,
            seal,
            generated_at,
        } = record;
        let RequestDetail {
            request: r,
            signers,
            events,
            deliveries,
            ..
        } = detail;
        AuditRecordView {
            signature_request: AuditRequestView {
                id: r.id,
                status,
                title: r.title,
                message: r.message,
                delivery: r.delivery,
                signing_order: r.signing_order,
                created_at: r.created_at,
                sent_at: r.sent_at,
                signed_at: r.signed_at,
                cancelled_at: r.cancelled_at,
                cancel_reason: r.cancel_reason,
                declined_at: r.declined_at,
                expires_at: r.expires_at,
                document: DocumentInfo {
                    filename: r.document_filename,
                    size: r.document_size,
                    page_count: r.document_page_count,
                },
                document_hash: r.document_hash,
                sealed_document_hash: r.sealed_document_hash,
                metadata: r.metadata.and_then(|m| RawValue::from_string(m).ok()),
            },
            signers: signers
                .into_iter()
                .map(|s| AuditSignerView {
                    status: s.status,
                    verification: signeur_service::evidence::verification_words(
                        s.verification_method,
                    )
                    .into(),
                    id: s.id,
                    position: s.position,
                    email: s.email,
                    name_as_invited: s.name,
                    name_as_signed: s.name_as_signed,
                    representing_as_signed: s.representing_as_signed,
                    verification_method: s.verification_method,
                    ip_address: s.ip_address,
                    user_agent: s.user_agent,
                    sent_at: s.sent_at,
                    opened_at: s.opened_at,
                    signed_at: s.signed_at,
                    declined_at: s.declined_at,
                    decline_reason: s.decline_reason,
                    invalidated_at: s.invalidated_at,
                })
                .collect(),
            events: events.into_iter().map(owned_event_view).collect(),
            deliveries: deliveries.iter().map(AuditDeliveryView::from).collect(),
            chain: ChainView {
                valid: chain.valid,
                events: chain.events,
                problem: chain.problem,
            },
            seal: seal.map(|s| SealView {
                level: s.level,
                valid: s.valid,
                certificate_subject: s.certificate_subject,
                certificate_issuer: s.certificate_issuer,
                certificate_serial: s.certificate_serial,
                not_before: s.not_before,
                not_after: s.not_after,
                self_signed: s.self_signed,
                signing_time: s.signing_time,
                timestamp_time: s.timestamp_time,
                timestamp_authority: s.timestamp_authority,
                problems: s.problems,
            }),
            generated_at,
        }
    }
}
