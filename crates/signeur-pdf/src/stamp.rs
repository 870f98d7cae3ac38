//! Visible evidence on the document itself (DESIGN.md §5): one signature block per signer and
//! an appended signature certificate page, written as an incremental update on top of the
//! uploaded file, which therefore stays a byte-exact prefix. The seal is applied after, as a
//! further incremental update that covers this one.
//!
//! Every text field arrives formatted by the caller (times as `2026-05-14 10:51:51 UTC`, the
//! verification method in words): this module draws, it does not decide.

/// Where one signer's block goes, when the request names it. Coordinates are PDF points
/// (1/72 inch) measured from the top-left corner of the page's crop box; `page` is 1-based.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StampPosition {
    pub page: u32,
    pub x: f32,
    pub y: f32,
}

/// Width and height, in points, of one signature block.
pub const STAMP_BLOCK_SIZE: (f32, f32) = (200.0, 72.0);

/// One signer as the stamp and the certificate page show them.
#[derive(Debug, Clone, Default)]
pub struct StampSigner {
    pub id: String,
    pub name_as_signed: String,
    pub representing: Option<String>,
    pub email: String,
    /// Already formatted for people, e.g. `2026-05-14 10:51:51 UTC`.
    pub signed_at: String,
    pub opened_at: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// In words: "Access code sent by email", "Integrator link", "Embedded session".
    pub verification: String,
    /// The drawn signature (PNG), if the signer drew one.
    pub signature_png: Option<Vec<u8>>,
    /// Where the block goes; `None`: on the last page, where it covers no content.
    pub position: Option<StampPosition>,
}

/// Everything the stamp and the certificate page show.
#[derive(Debug, Clone, Default)]
pub struct StampInput {
    pub request_id: String,
    pub title: String,
    /// Hex SHA-256 of the uploaded original.
    pub document_sha256: String,
    pub created_at: String,
    pub completed_at: String,
    pub signers: Vec<StampSigner>,
}

/// Why a document could not be stamped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    #[error("the PDF file cannot be read: {0}")]
    Unreadable(String),
    #[error("invalid stamp input: {0}")]
    Input(String),
    #[error("the stamp could not be drawn: {0}")]
    Draw(String),
}

/// Stamps `pdf` (see the module docs) and returns the whole new file: `pdf` followed by one
/// incremental update.
pub fn stamp(pdf: &[u8], input: &StampInput) -> Result<Vec<u8>, StampError> {
    let _ = (pdf, input);
    Err(StampError::Draw("not implemented yet".into()))
}
