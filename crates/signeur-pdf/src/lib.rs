#![doc = include_str!("../README.md")]

mod audit;
mod inspect;
mod layout;
mod render;
mod seal;
mod stamp;
mod text;
mod tsa;
mod verify;
mod xref;

pub use audit::{
    AuditChain, AuditDelivery, AuditEvent, AuditPdfError, AuditRequest, AuditSeal, AuditSigner,
    AuditTrail, audit_trail_pdf,
};
pub use inspect::{InspectError, PdfInfo, inspect};
pub use render::{RenderError, RenderLimits, render_page_png};
pub use seal::{
    EssCertIdV2, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, ID_AA_SIGNING_CERTIFICATE_V2, IssuerSerial,
    RingSigner, SealAlgorithm, SealError, SealOptions, SealSigner, SignerError,
    SigningCertificateV2, Timestamper, seal, seal_with_timestamp,
};
pub use stamp::{STAMP_BLOCK_SIZE, StampError, StampInput, StampPosition, StampSigner, stamp};
pub use tsa::{TsaError, timestamp_request, timestamp_token};
pub use verify::{SignatureReport, VerifyError, VerifyReport, verify};

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}
