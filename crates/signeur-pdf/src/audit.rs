//! The audit-trail PDF (seed 004: "a standalone PDF containing the full audit record: request
//! metadata, signer details with IPs and user agents, chronological event timeline, and PAdES
//! signature info when the request is sealed"). Informational, not signed: the sealed document
//! is the evidence. Generated on demand from an [`AuditTrail`] the service assembles; every text
//! field arrives formatted for people.

/// The request part of the record.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub id: String,
    pub title: String,
    pub status: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub completed_at: Option<String>,
    pub expires_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub delivery: String,
    pub signing_order: String,
    pub message: Option<String>,
    pub document_name: Option<String>,
    /// Hex SHA-256 of the uploaded original.
    pub document_sha256: String,
    /// Hex SHA-256 of the sealed file, once sealed.
    pub sealed_document_sha256: Option<String>,
    /// Metadata as compact JSON, if any.
    pub metadata: Option<String>,
}

/// One signer.
#[derive(Debug, Clone, Default)]
pub struct AuditSigner {
    pub position: u32,
    pub id: String,
    pub name: Option<String>,
    pub email: String,
    pub name_as_signed: Option<String>,
    pub representing: Option<String>,
    pub status: String,
    /// In words: "Access code sent by email", "Integrator link", "Embedded session".
    pub verification: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub sent_at: Option<String>,
    pub opened_at: Option<String>,
    pub signed_at: Option<String>,
    pub declined_at: Option<String>,
    pub decline_reason: Option<String>,
}

/// One event of the timeline, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub id: String,
    pub event_type: String,
    pub created_at: String,
    /// One line in words, e.g. "Invitation email accepted by the SMTP server for a@example.com".
    pub summary: String,
    /// Who or what caused it, with IP and user agent where known.
    pub actor: Option<String>,
    pub hash: String,
    pub prev_hash: Option<String>,
}

/// The seal of the sealed document, as read back from it.
#[derive(Debug, Clone, Default)]
pub struct AuditSeal {
    /// "PAdES-B-B" or "PAdES-B-T".
    pub level: String,
    pub certificate_subject: String,
    pub certificate_issuer: String,
    pub certificate_serial: String,
    pub not_before: String,
    pub not_after: String,
    pub signed_at: Option<String>,
    pub timestamp_time: Option<String>,
    pub timestamp_authority: Option<String>,
    /// Whether the seal verified when the record was made, in words.
    pub verdict: String,
}

/// Whether the event hash chain verified.
#[derive(Debug, Clone, Default)]
pub struct AuditChain {
    pub valid: bool,
    /// In words: "All 9 events link to their predecessor" or what broke.
    pub detail: String,
}

/// The whole record.
#[derive(Debug, Clone, Default)]
pub struct AuditTrail {
    pub request: AuditRequest,
    pub signers: Vec<AuditSigner>,
    pub events: Vec<AuditEvent>,
    pub chain: AuditChain,
    pub seal: Option<AuditSeal>,
    pub generated_at: String,
}

/// Why the record could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditPdfError {
    #[error("the audit-trail PDF could not be drawn: {0}")]
    Draw(String),
}

/// Draws the audit-trail PDF.
pub fn audit_trail_pdf(trail: &AuditTrail) -> Result<Vec<u8>, AuditPdfError> {
    let _ = trail;
    Err(AuditPdfError::Draw("not implemented yet".into()))
}
