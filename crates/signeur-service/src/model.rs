//! What the service hands to its callers: the domain's read models. The store's rows stay
//! inside this crate; a row becomes a read model by moving its fields (no copies), and the
//! fields only the service needs (blob keys, the hash chain's head) are not public.

use chrono::{DateTime, Utc};
use signeur_core::validate::SignaturePosition;
use signeur_core::{
    Delivery, EventType, FailureCode, Locale, RequestStatus, SessionResult, SessionStatus,
    SignerStatus, SigningOrder, VerificationMethod,
};
use signeur_store::{ApiKeyRow, EventRow, OrgRow, RequestRow, SessionRow, SignerRow};
use uuid::Uuid;

/// A signature request as stored (its status before expiry is applied: see
/// [`SignatureRequest::status_at`]).
#[derive(Debug, Clone)]
pub struct SignatureRequest {
    pub id: Uuid,
    pub org_id: Uuid,
    pub title: String,
    pub message: Option<String>,
    pub locale: Locale,
    pub delivery: Delivery,
    pub signing_order: SigningOrder,
    /// The metadata object exactly as it was sent (JSON text).
    pub metadata: Option<String>,
    pub status: RequestStatus,
    pub document_filename: String,
    /// SHA-256 (hex) of the uploaded original.
    pub document_hash: String,
    pub document_size: i64,
    pub document_page_count: i64,
    pub signer_count: i64,
    pub sealed_document_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub declined_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub(crate) document_blob: String,
    pub(crate) sealed_blob: Option<String>,
}

impl SignatureRequest {
    /// The status a reader sees at `now` (an open request past `expires_at` reads `expired`).
    pub fn status_at(&self, now: DateTime<Utc>) -> RequestStatus {
        self.status.effective(self.expires_at, now)
    }
}

impl From<RequestRow> for SignatureRequest {
    fn from(r: RequestRow) -> Self {
        SignatureRequest {
            id: r.id,
            org_id: r.org_id,
            title: r.title,
            message: r.message,
            locale: r.locale,
            delivery: r.delivery,
            signing_order: r.signing_order,
            metadata: r.metadata,
            status: r.status,
            document_filename: r.document_filename,
            document_hash: r.document_hash,
            document_size: r.document_size,
            document_page_count: r.document_page_count,
            signer_count: r.signer_count,
            sealed_document_hash: r.sealed_document_hash,
            created_at: r.created_at,
            updated_at: r.updated_at,
            sent_at: r.sent_at,
            opened_at: r.opened_at,
            signed_at: r.signed_at,
            cancelled_at: r.cancelled_at,
            cancel_reason: r.cancel_reason,
            declined_at: r.declined_at,
            expired_at: r.expired_at,
            expires_at: r.expires_at,
            document_blob: r.document_blob,
            sealed_blob: r.sealed_blob,
        }
    }
}

/// One signer of a request.
#[derive(Debug, Clone)]
pub struct Signer {
    pub id: Uuid,
    pub request_id: Uuid,
    pub org_id: Uuid,
    /// From 0, in the order the request listed them.
    pub position: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub name_as_signed: Option<String>,
    pub locale: Locale,
    /// The secret in the signer's `sign_url`.
    pub access_token: String,
    pub status: SignerStatus,
    pub sent_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub declined_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<String>,
    pub invalidated_at: Option<DateTime<Utc>>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub representing_as_invited: Option<String>,
    pub representing_as_signed: Option<String>,
    pub representing_role: Option<String>,
    pub representing_entity_id: Option<String>,
    /// True exactly when the SMTP server accepted the invitation.
    pub email_sent: bool,
    pub email_error: Option<String>,
    pub verification_method: Option<VerificationMethod>,
    /// Where the visible signature block goes, if the request named it.
    pub signature_position: Option<SignaturePosition>,
}

impl Signer {
    /// The read model of a row whose link token the service has opened (`link_tokens`).
    pub(crate) fn from_row(s: SignerRow, access_token: String) -> Self {
        Signer {
            id: s.id,
            request_id: s.request_id,
            org_id: s.org_id,
            position: s.position,
            email: s.email,
            name: s.name,
            name_as_signed: s.name_as_signed,
            locale: s.locale,
            access_token,
            status: s.status,
            sent_at: s.sent_at,
            opened_at: s.opened_at,
            signed_at: s.signed_at,
            declined_at: s.declined_at,
            decline_reason: s.decline_reason,
            invalidated_at: s.invalidated_at,
            ip_address: s.ip_address,
            user_agent: s.user_agent,
            representing_as_invited: s.representing_as_invited,
            representing_as_signed: s.representing_as_signed,
            representing_role: s.representing_role,
            representing_entity_id: s.representing_entity_id,
            email_sent: s.email_sent,
            email_error: s.email_error,
            verification_method: s.verification_method,
            signature_position: s
                .signature_position
                .as_deref()
                .and_then(SignaturePosition::from_json),
        }
    }
}

/// One event of a request's audit trail, with its place in the hash chain.
#[derive(Debug, Clone)]
pub struct Event {
    /// `evt_…`
    pub id: String,
    pub signer_id: Option<Uuid>,
    /// From 1, in the order of the chain.
    pub seq: i64,
    pub event_type: EventType,
    pub created_at: DateTime<Utc>,
    /// The payload as stored (canonical JSON text).
    pub data: String,
    pub prev_hash: Option<String>,
    pub hash: String,
}

impl From<EventRow> for Event {
    fn from(e: EventRow) -> Self {
        Event {
            id: e.id,
            signer_id: e.signer_id,
            seq: e.seq,
            event_type: e.event_type,
            created_at: e.created_at,
            data: e.data,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// An embedded signing session.
#[derive(Debug, Clone)]
pub struct SigningSession {
    pub id: Uuid,
    pub org_id: Uuid,
    pub request_id: Uuid,
    pub signer_id: Uuid,
    pub return_url: String,
    pub state: Option<String>,
    pub status: SessionStatus,
    pub result: Option<SessionResult>,
    pub failure_code: Option<FailureCode>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub opened_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<SessionRow> for SigningSession {
    fn from(s: SessionRow) -> Self {
        SigningSession {
            id: s.id,
            org_id: s.org_id,
            request_id: s.request_id,
            signer_id: s.signer_id,
            return_url: s.return_url,
            state: s.state,
            status: s.status,
            result: s.result,
            failure_code: s.failure_code,
            created_at: s.created_at,
            expires_at: s.expires_at,
            opened_at: s.opened_at,
            completed_at: s.completed_at,
        }
    }
}

/// An organization.
#[derive(Debug, Clone)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<OrgRow> for Organization {
    fn from(o: OrgRow) -> Self {
        Organization {
            id: o.id,
            name: o.name,
            created_at: o.created_at,
        }
    }
}

/// An API key as operators list it (never its hash).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: Uuid,
    pub org_id: Uuid,
    /// The key's first characters, to recognize it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(k: ApiKeyRow) -> Self {
        ApiKey {
            id: k.id,
            org_id: k.org_id,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// The status a reader sees at `now`, from the row (see [`SignatureRequest::status_at`]).
pub(crate) fn effective_status(r: &RequestRow, now: DateTime<Utc>) -> RequestStatus {
    r.status.effective(r.expires_at, now)
}

/// Moves every row of a list into its read model.
pub(crate) fn all<R, M: From<R>>(rows: Vec<R>) -> Vec<M> {
    rows.into_iter().map(M::from).collect()
}
