//! PAdES baseline sealing, B-B and B-T (ETSI EN 319 142-1): bytes in, bytes out.
//!
//! [`seal`] appends one incremental update to the input file, so the input stays a byte-exact
//! prefix of the output and every earlier signature keeps covering what it covered. It is done
//! in three parts, one module each:
//!
//! 1. [`update`]: the incremental update — an invisible signature field on page 1 and its
//!    signature dictionary with a `/ByteRange` and a fixed-width `/Contents` placeholder —
//!    built from the few objects it touches, then `/ByteRange` patched in place to cover the
//!    whole file except the `/Contents` hex string;
//! 2. the SHA-256 of those byte ranges (the input is hashed where it lies, never copied for it);
//! 3. [`cms`]: a detached CMS `SignedData` over that digest, signed by a [`SealSigner`]
//!    ([`keys`]), with — for B-T, given a [`Timestamper`] — an RFC 3161 time-stamp token over
//!    the signature value as an unsigned attribute. Its DER is written into the placeholder,
//!    the rest of which stays zeros.
//!
//! The output is the input, copied once, followed by the update.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

mod cms;
mod keys;
mod update;

pub use cms::{
    EssCertIdV2, ID_AA_SIGNATURE_TIME_STAMP_TOKEN, ID_AA_SIGNING_CERTIFICATE_V2, IssuerSerial,
    SigningCertificateV2,
};
pub use keys::{RingSigner, SealAlgorithm, SealSigner, SignerError};

/// Default size, in bytes, reserved for the DER signature in `/Contents` (written as twice as
/// many hex digits): room for a chain of a few certificates and a time-stamp token.
const DEFAULT_CONTENTS_SIZE: usize = 16384;
/// Smallest accepted `/Contents` reservation.
const MIN_CONTENTS_SIZE: usize = 8192;

/// How to seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOptions {
    /// The claimed signing time; written to `/M` only (PAdES forbids the CMS signing-time).
    pub signing_time: DateTime<Utc>,
    /// `/Reason`, if any.
    pub reason: Option<String>,
    /// `/Name`, if any.
    pub name: Option<String>,
    /// Bytes reserved for the DER signature in `/Contents`: 16384 by default, at least 8192.
    /// A signature that does not fit fails the seal ([`SealError::ContentsTooSmall`]).
    pub contents_size: usize,
}

impl SealOptions {
    /// Options with the given signing time and defaults otherwise.
    pub fn new(signing_time: DateTime<Utc>) -> Self {
        SealOptions {
            signing_time,
            reason: None,
            name: None,
            contents_size: DEFAULT_CONTENTS_SIZE,
        }
    }
}

/// Why sealing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the PDF file cannot be sealed: {0}")]
    Pdf(String),
    #[error("the sealing certificate chain is unusable: {0}")]
    Certificate(String),
    #[error("the signer failed: {0}")]
    Signer(#[from] SignerError),
    #[error("the signature needs {needed} bytes but only {reserved} are reserved in /Contents")]
    ContentsTooSmall { needed: usize, reserved: usize },
    #[error("invalid seal options: {0}")]
    Options(String),
    #[error("internal error while building the signature: {0}")]
    Internal(String),
}

fn pdf_err(e: impl std::fmt::Display) -> SealError {
    SealError::Pdf(e.to_string())
}

fn der_err(e: der::Error) -> SealError {
    SealError::Internal(e.to_string())
}

/// Seals `pdf` with a PAdES B-B signature; returns the input followed by one incremental update.
pub fn seal(pdf: &[u8], signer: &dyn SealSigner, opts: &SealOptions) -> Result<Vec<u8>, SealError> {
    seal_with_timestamp(pdf, signer, opts, None)
}

/// Obtains an RFC 3161 time-stamp token over a signature value, for PAdES B-T. (The request
/// and the check of the answer are [`crate::timestamp_request`] and
/// [`crate::timestamp_token`]; sending it is the implementation's job.)
pub trait Timestamper {
    /// The `TimeStampToken` (a DER `ContentInfo`) whose message imprint is SHA-256 of
    /// `signature_value`.
    fn timestamp(&self, signature_value: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// Like [`seal`]; with a `timestamper`, the signature value is time-stamped and the token
/// added as the unsigned attribute id-aa-signatureTimeStampToken (PAdES B-T). A timestamper
/// error fails the seal: a time is never made up.
pub fn seal_with_timestamp(
    pdf: &[u8],
    signer: &dyn SealSigner,
    opts: &SealOptions,
    timestamper: Option<&dyn Timestamper>,
) -> Result<Vec<u8>, SealError> {
    if opts.contents_size < MIN_CONTENTS_SIZE {
        return Err(SealError::Options(format!(
            "contents_size must be at least {MIN_CONTENTS_SIZE} bytes"
        )));
    }
    // Parse the chain before touching the PDF: a bad certificate is the caller's bug.
    let chain = cms::parse_chain(signer.certificate_chain())?;

    // The update is built on its own and the input copied once, at the end, into an output
    // of exactly the right size; the hash reads the input where it is.
    let mut update = update::signature_update(pdf, opts)?;
    let gap = update::patch_byte_range(&mut update, pdf.len(), opts.contents_size)?;

    let mut hasher = Sha256::new();
    hasher.update(pdf);
    hasher.update(&update[..gap.0]);
    hasher.update(&update[gap.1..]);
    let digest = hasher.finalize();

    let signer_info = cms::signer_info(&digest, &chain, signer)?;
    let unsigned = match timestamper {
        None => None,
        Some(ts) => Some(cms::timestamp_attributes(
            &ts.timestamp(signer_info.signature.as_bytes())?,
        )?),
    };
    let cms = cms::content_info(signer_info, &chain, unsigned)?;
    if cms.len() > opts.contents_size {
        return Err(SealError::ContentsTooSmall {
            needed: cms.len(),
            reserved: opts.contents_size,
        });
    }
    let hex = hex::encode_upper(&cms);
    update[gap.0 + 1..gap.0 + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    let mut out = Vec::with_capacity(pdf.len() + update.len());
    out.extend_from_slice(pdf);
    out.extend_from_slice(&update);
    Ok(out)
}
