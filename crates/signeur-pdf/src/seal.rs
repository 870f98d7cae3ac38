//! PAdES baseline **B-B** sealing: bytes in, bytes out (ETSI EN 319 142-1).
//!
//! [`seal`] appends one incremental update to the input file, so the input stays a byte-exact
//! prefix of the output and every earlier signature keeps covering what it covered. The update
//! holds:
//!
//! - an invisible signature field merged with its widget annotation (`/Rect [0 0 0 0]`,
//!   `/F 132` = Print + Locked) on page 1, added to that page's `/Annots` and to the
//!   `/AcroForm /Fields` (created when missing, existing fields kept) with `/SigFlags 3`;
//! - the widget's appearance `/AP << /N … >>`, an empty form XObject with `/BBox [0 0 0 0]`: an
//!   invisible signature still has one for PDF/A and for several validators;
//! - the signature dictionary `/Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached`
//!   with `/M`, `/ByteRange` and a fixed-width `/Contents` placeholder;
//! - a cross-reference section of the kind of the file's newest one (a stream after a stream, a
//!   table otherwise) and a trailer whose `/ID` keeps the file's first element (both are made up
//!   when the file has none) and gets a new second one, derived from the content so that the same
//!   input and options give the same update.
//!
//! Sealing never parses the whole document (`crate::xref`): it reads the cross-reference chain
//! and loads only the objects it changes or needs (the catalog, the page tree down to page 1,
//! its `/Annots`, the `/AcroForm` and its `/Fields`). The update is built on its own; the output
//! is the input, copied once, followed by the update, and the hash reads the input in place.
//!
//! Once the update is written, `/ByteRange` is patched in place (same width, padded with spaces)
//! to cover the whole file except the `<…>` hex string of `/Contents`, those ranges are hashed
//! with SHA-256, a detached CMS `SignedData` is built (one `SignerInfo`, the certificate chain,
//! signed attributes content-type, message-digest and ESS signing-certificate-v2, and no
//! signing-time, which PAdES forbids: the claimed time is `/M` only), and its DER is written into
//! the placeholder, the rest of which stays zeros.
//!
//! The private key is behind [`SealSigner`], so an HSM or a remote signing service can plug in;
//! [`RingSigner`] is the in-process implementation (ECDSA P-256 or RSA PKCS#1 v1.5, SHA-256).
//!
//! B-T (a signature time-stamp) will be an unsigned attribute of the `SignerInfo`: the CMS is
//! built in two steps ([`cms_signer_info`] signs, [`cms_content_info`] assembles with optional
//! unsigned attributes) so that a time-stamp token over the signature value can be inserted in
//! between without touching the PDF side.

use chrono::{DateTime, Utc};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier,
    SignerInfo, SignerInfos, UnsignedAttributes,
};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use std::io::Write as _;

use lopdf::xref::{Xref, XrefEntry, XrefSection, XrefStreamBuilder, XrefType};
use lopdf::{Dictionary, Object, ObjectId, Stream, StringFormat, Writer};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

use crate::xref::PdfFile;

/// Default size, in bytes, reserved for the DER signature in `/Contents` (written as twice as
/// many hex digits).
pub const DEFAULT_CONTENTS_SIZE: usize = 16384;
/// Smallest accepted `/Contents` reservation.
pub const MIN_CONTENTS_SIZE: usize = 8192;

/// `id-aa-signingCertificateV2` (RFC 5035).
pub const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// Placeholder numbers for `/ByteRange`: ten digits each, so any real offset fits in place.
const BYTE_RANGE_PLACEHOLDER: i64 = 9_999_999_999;

/// The signature algorithm a [`SealSigner`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealAlgorithm {
    /// ECDSA over P-256 with SHA-256; the signature is the DER `Ecdsa-Sig-Value`.
    EcdsaP256Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
}

impl SealAlgorithm {
    fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            SealAlgorithm::EcdsaP256Sha256 => AlgorithmIdentifierOwned {
                oid: rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            },
            SealAlgorithm::RsaPkcs1Sha256 => AlgorithmIdentifierOwned {
                oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                parameters: Some(Any::null()),
            },
        }
    }
}

/// A signing key and its certificate chain. The key never leaves the implementation.
pub trait SealSigner {
    /// The certificate chain, DER, leaf (the sealing certificate) first.
    fn certificate_chain(&self) -> &[Vec<u8>];
    /// The algorithm [`SealSigner::sign`] uses.
    fn algorithm(&self) -> SealAlgorithm;
    /// Signs `data` (the DER of the signed attributes; the implementation hashes it).
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// A failure inside a [`SealSigner`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignerError(pub String);

/// How to seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOptions {
    /// The claimed signing time; written to `/M` only (PAdES forbids the CMS signing-time).
    pub signing_time: DateTime<Utc>,
    /// `/Reason`, if any.
    pub reason: Option<String>,
    /// `/Name`, if any.
    pub name: Option<String>,
    /// Bytes reserved for the DER signature in `/Contents`, at least [`MIN_CONTENTS_SIZE`].
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

/// id-aa-signatureTimeStampToken (RFC 3161 appendix A).
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

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

/// Obtains an RFC 3161 time-stamp token over a signature value (see `crate::tsa`).
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
    let chain = parse_chain(signer.certificate_chain())?;

    // The update is built on its own and the input copied once, at the end, into an output
    // of exactly the right size; the hash reads the input where it is.
    let mut update = signature_update(pdf, opts)?;
    let gap = patch_byte_range(&mut update, pdf.len(), opts.contents_size)?;

    let mut hasher = Sha256::new();
    hasher.update(pdf);
    hasher.update(&update[..gap.0]);
    hasher.update(&update[gap.1..]);
    let digest = hasher.finalize();

    let signer_info = cms_signer_info(&digest, &chain, signer)?;
    let unsigned = match timestamper {
        None => None,
        Some(ts) => {
            let token = ts.timestamp(signer_info.signature.as_bytes())?;
            let value = Any::from_der(&token).map_err(der_err)?;
            let attr = Attribute {
                oid: ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
                values: SetOfVec::try_from(vec![value]).map_err(der_err)?,
            };
            Some(SetOfVec::try_from(vec![attr]).map_err(der_err)?)
        }
    };
    let cms = cms_content_info(signer_info, &chain, unsigned)?;
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

// ------------------------------------------------------------------------------------------
// PDF side
// ------------------------------------------------------------------------------------------

/// The incremental update with the placeholders: the bytes to append to the input.
///
/// Only the cross-reference data and the objects the update touches are read (see
/// `crate::xref`): the catalog, the page tree down to page 1, that page's `/Annots`, the
/// `/AcroForm` and its `/Fields`.
fn signature_update(pdf: &[u8], opts: &SealOptions) -> Result<Vec<u8>, SealError> {
    let file = PdfFile::open(pdf).map_err(pdf_err)?;
    if file.trailer.has(b"Encrypt") {
        return Err(SealError::Pdf("the file is encrypted".into()));
    }
    let catalog_id = file
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| SealError::Pdf("the trailer has no /Root reference".into()))?;
    let mut catalog = load_dictionary(&file, catalog_id, "the catalog")?;
    let page_id = first_page(&file, &catalog)?;
    let mut page = load_dictionary(&file, page_id, "page 1")?;

    // The objects of the update, in the order they are written; new ones are numbered from
    // the file's /Size.
    let mut changed: Vec<(ObjectId, Object)> = Vec::new();
    let mut next_id = file.size();
    let mut new_id = || {
        let id = (next_id, 0);
        next_id += 1;
        id
    };
    let sig_id = new_id();
    let field_id = new_id();
    let appearance_id = new_id();

    // The catalog's /AcroForm, made indirect if it was inline or missing.
    let (acroform_id, mut acroform) = match catalog.get(b"AcroForm").ok() {
        Some(Object::Reference(id)) => (*id, load_dictionary(&file, *id, "/AcroForm")?),
        Some(Object::Dictionary(dict)) => (new_id(), dict.clone()),
        None | Some(Object::Null) => (new_id(), Dictionary::new()),
        Some(_) => return Err(SealError::Pdf("/AcroForm is not a dictionary".into())),
    };
    let catalog_changed = catalog.get(b"AcroForm").ok() != Some(&Object::Reference(acroform_id));

    let mut fields = array_entry(&file, &acroform, b"Fields")?;
    let field_name = unused_field_name(&file, fields.items());

    changed.push((
        field_id,
        Object::Dictionary(Dictionary::from_iter(vec![
            ("FT", Object::Name(b"Sig".to_vec())),
            ("T", text_string(&field_name)),
            ("V", Object::Reference(sig_id)),
            ("Type", Object::Name(b"Annot".to_vec())),
            ("Subtype", Object::Name(b"Widget".to_vec())),
            (
                "Rect",
                Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]),
            ),
            ("F", Object::Integer(132)),
            ("P", Object::Reference(page_id)),
            (
                "AP",
                Object::Dictionary(Dictionary::from_iter(vec![(
                    "N",
                    Object::Reference(appearance_id),
                )])),
            ),
        ])),
    ));
    // An invisible signature still has an appearance: an empty form XObject.
    changed.push((
        appearance_id,
        Object::Stream(Stream::new(
            Dictionary::from_iter(vec![
                ("Type", Object::Name(b"XObject".to_vec())),
                ("Subtype", Object::Name(b"Form".to_vec())),
                (
                    "BBox",
                    Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]),
                ),
            ]),
            Vec::new(),
        )),
    ));

    // The page: the widget goes at the end of /Annots.
    let mut annots = array_entry(&file, &page, b"Annots")?;
    if let Some(id) = annots.push(&mut page, b"Annots", Object::Reference(field_id)) {
        changed.push((file_id(&file, id)?, Object::Array(annots.into_items())));
    } else {
        changed.push((file_id(&file, page_id)?, Object::Dictionary(page)));
    }

    // The form: the field goes at the end of /Fields, and /SigFlags gets 3.
    if let Some(id) = fields.push(&mut acroform, b"Fields", Object::Reference(field_id)) {
        changed.push((file_id(&file, id)?, Object::Array(fields.into_items())));
    }
    let flags = acroform
        .get(b"SigFlags")
        .and_then(Object::as_i64)
        .unwrap_or(0);
    acroform.set("SigFlags", Object::Integer(flags | 3));
    let acroform_id = if file.generation(acroform_id.0).is_some() {
        file_id(&file, acroform_id)?
    } else {
        acroform_id
    };
    changed.push((acroform_id, Object::Dictionary(acroform)));
    if catalog_changed {
        catalog.set("AcroForm", Object::Reference(acroform_id));
        changed.push((file_id(&file, catalog_id)?, Object::Dictionary(catalog)));
    }

    let signature = (sig_id, signature_dictionary(opts));
    write_update(pdf, &file, signature, &changed, next_id, opts)
}

/// `id` with the generation the file gives it.
fn file_id(file: &PdfFile, id: ObjectId) -> Result<ObjectId, SealError> {
    file.generation(id.0)
        .map(|generation| (id.0, generation))
        .ok_or_else(|| SealError::Pdf(format!("object {} is not in the file", id.0)))
}

fn load_dictionary(file: &PdfFile, id: ObjectId, what: &str) -> Result<Dictionary, SealError> {
    match file.get(id).map_err(pdf_err)? {
        Object::Dictionary(dict) => Ok(dict),
        _ => Err(SealError::Pdf(format!("{what} is not a dictionary"))),
    }
}

/// Page 1: the first page of the page tree, depth first.
fn first_page(file: &PdfFile, catalog: &Dictionary) -> Result<ObjectId, SealError> {
    const MAX_NODES: usize = 100_000;
    const MAX_DEPTH: usize = 64;
    let root = catalog
        .get(b"Pages")
        .and_then(Object::as_reference)
        .map_err(|_| SealError::Pdf("the catalog has no page tree".into()))?;
    let mut stack = vec![(root, 0)];
    let mut seen = std::collections::HashSet::new();
    while let Some((id, depth)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if seen.len() > MAX_NODES {
            return Err(SealError::Pdf("the page tree is too large".into()));
        }
        let node = load_dictionary(file, id, "a page tree node")?;
        let kind = node.get(b"Type").and_then(Object::as_name).ok();
        let kids = match node.get(b"Kids") {
            Ok(kids) => Some(file.resolve(kids).map_err(pdf_err)?),
            Err(_) => None,
        };
        match (kind, kids) {
            (Some(b"Page"), _) | (None, None) => return Ok(id),
            (_, Some(Object::Array(kids))) if depth < MAX_DEPTH => {
                stack.extend(
                    kids.iter()
                        .rev()
                        .filter_map(|kid| kid.as_reference().ok())
                        .map(|kid| (kid, depth + 1)),
                );
            }
            _ => {}
        }
    }
    Err(SealError::Pdf("the document has no page".into()))
}

/// An array entry of a dictionary: inline, in an object of its own, or missing.
enum ArrayEntry {
    Inline(Vec<Object>),
    Indirect(ObjectId, Vec<Object>),
}

impl ArrayEntry {
    fn items(&self) -> &[Object] {
        match self {
            ArrayEntry::Inline(items) | ArrayEntry::Indirect(_, items) => items,
        }
    }

    fn into_items(self) -> Vec<Object> {
        match self {
            ArrayEntry::Inline(items) | ArrayEntry::Indirect(_, items) => items,
        }
    }

    /// Appends `item`. An inline (or missing) array is set back into `holder`, and `None`
    /// returned; for an indirect one, the id of the array object to write.
    fn push(&mut self, holder: &mut Dictionary, key: &[u8], item: Object) -> Option<ObjectId> {
        match self {
            ArrayEntry::Inline(items) => {
                items.push(item);
                holder.set(key, Object::Array(items.clone()));
                None
            }
            ArrayEntry::Indirect(id, items) => {
                items.push(item);
                Some(*id)
            }
        }
    }
}

fn array_entry(file: &PdfFile, holder: &Dictionary, key: &[u8]) -> Result<ArrayEntry, SealError> {
    let what = String::from_utf8_lossy(key).into_owned();
    match holder.get(key).ok() {
        None | Some(Object::Null) => Ok(ArrayEntry::Inline(Vec::new())),
        Some(Object::Array(items)) => Ok(ArrayEntry::Inline(items.clone())),
        Some(Object::Reference(id)) => match file.get(*id).map_err(pdf_err)? {
            Object::Array(items) => Ok(ArrayEntry::Indirect(*id, items)),
            _ => Err(SealError::Pdf(format!("/{what} is not an array"))),
        },
        Some(_) => Err(SealError::Pdf(format!("/{what} is not an array"))),
    }
}

/// Writes the signature dictionary with its `/Contents` placeholder, `objects`, a
/// cross-reference section of the kind the file's newest one is, and a
/// trailer whose `/ID` keeps the file's first element and gets a new second one; `next_id` is
/// the first object number still free.
fn write_update(
    pdf: &[u8],
    file: &PdfFile,
    signature: (ObjectId, Dictionary),
    objects: &[(ObjectId, Object)],
    next_id: u32,
    opts: &SealOptions,
) -> Result<Vec<u8>, SealError> {
    let io = |e: std::io::Error| SealError::Internal(e.to_string());
    let mut out = Vec::with_capacity(2 * opts.contents_size + 8192);
    if !matches!(pdf.last(), Some(b'\n' | b'\r')) {
        out.push(b'\n');
    }
    // The file offset of out[0].
    let base = pdf.len() - file.offset_origin();
    let offset = |out: &Vec<u8>| {
        u32::try_from(base + out.len())
            .map_err(|_| SealError::Pdf("the file is too large (4 GB)".into()))
    };
    let mut xref = Xref::new(0, file.kind);
    xref.insert(
        signature.0.0,
        XrefEntry::Normal {
            offset: offset(&out)?,
            generation: signature.0.1,
        },
    );
    write_signature(&mut out, signature, opts.contents_size)?;
    for (id, object) in objects {
        xref.insert(
            id.0,
            XrefEntry::Normal {
                offset: offset(&out)?,
                generation: id.1,
            },
        );
        write_indirect(&mut out, *id, object).map_err(io)?;
    }

    let mut trailer = file.trailer.clone();
    let rewritten: [&[u8]; 4] = [b"Prev", b"Type", b"Size", b"ID"];
    for key in crate::xref::XREF_SECTION_KEYS.into_iter().chain(rewritten) {
        trailer.remove(key);
    }
    trailer.set(
        "Prev",
        Object::Integer(i64::try_from(file.startxref).map_err(|e| SealError::Pdf(e.to_string()))?),
    );
    trailer.set("ID", new_file_id(pdf, file, &out));

    let xref_start = offset(&out)?;
    match file.kind {
        XrefType::CrossReferenceStream => {
            let stream_id = next_id;
            xref.insert(
                stream_id,
                XrefEntry::Normal {
                    offset: xref_start,
                    generation: 0,
                },
            );
            const WIDTHS: [usize; 3] = [1, 4, 2];
            let mut data = Vec::with_capacity(xref.entries.len() * 7);
            for entry in xref.entries.values() {
                data.extend_from_slice(&entry.encode_for_xref_stream(&WIDTHS));
            }
            trailer.set("Type", Object::Name(b"XRef".to_vec()));
            trailer.set("Size", Object::Integer(i64::from(stream_id) + 1));
            trailer.set(
                "W",
                Object::Array(WIDTHS.iter().map(|&w| Object::Integer(w as i64)).collect()),
            );
            trailer.set(
                "Index",
                Object::Array(XrefStreamBuilder::new(&xref).build_index_array()),
            );
            write_indirect(
                &mut out,
                (stream_id, 0),
                &Object::Stream(Stream::new(trailer, data)),
            )
            .map_err(io)?;
        }
        XrefType::CrossReferenceTable => {
            out.extend_from_slice(b"xref\n");
            // Object 0 heads the free list: its own subsection, or the first one's head.
            let mut sections = vec![XrefSection::new(0)];
            sections[0].add_unusable_free_entry();
            for (&id, entry) in &xref.entries {
                let last = sections.last_mut().filter(|s| {
                    u32::try_from(s.entries.len()).is_ok_and(|n| s.starting_id + n == id)
                });
                match last {
                    Some(section) => section.add_entry(entry.clone()),
                    None => {
                        let mut section = XrefSection::new(id);
                        section.add_entry(entry.clone());
                        sections.push(section);
                    }
                }
            }
            for section in &sections {
                section.write_xref_section(&mut out).map_err(io)?;
            }
            trailer.set("Size", Object::Integer(i64::from(next_id)));
            out.extend_from_slice(b"trailer\n");
            Writer::write_object(&mut out, &Object::Dictionary(trailer)).map_err(io)?;
            out.push(b'\n');
        }
    }
    writeln!(out, "startxref\n{xref_start}\n%%EOF").map_err(io)?;
    Ok(out)
}

/// The signature dictionary `sig` with `/Contents` last: a placeholder of `contents_size`
/// zero bytes as hexadecimal digits, written directly rather than formatted digit by digit.
fn write_signature(
    out: &mut Vec<u8>,
    (id, sig): (ObjectId, Dictionary),
    contents_size: usize,
) -> Result<(), SealError> {
    let mut body = Vec::with_capacity(512);
    Writer::write_object(&mut body, &Object::Dictionary(sig))
        .map_err(|e| SealError::Internal(e.to_string()))?;
    let open = body
        .strip_suffix(b">>")
        .ok_or_else(|| SealError::Internal("a dictionary does not end with >>".into()))?;
    out.extend_from_slice(format!("{} {} obj\n", id.0, id.1).as_bytes());
    out.extend_from_slice(open);
    out.extend_from_slice(b"/Contents<");
    out.resize(out.len() + 2 * contents_size, b'0');
    out.extend_from_slice(b">>>\nendobj\n");
    Ok(())
}

/// `N G obj … endobj`, framed as lopdf frames it.
fn write_indirect(out: &mut Vec<u8>, id: ObjectId, object: &Object) -> std::io::Result<()> {
    let space = |yes: bool| if yes { " " } else { "" };
    write!(
        out,
        "{} {} obj\n{}",
        id.0,
        id.1,
        space(Writer::need_separator(object))
    )?;
    Writer::write_object(out, object)?;
    writeln!(out, "{}\nendobj", space(Writer::need_end_separator(object)))
}

/// The trailer `/ID` of the update: the file's first element (both made up from the file when
/// it has none), and a second one that is new for this revision. Both are derived from the
/// content, so the same input and options give the same update.
fn new_file_id(pdf: &[u8], file: &PdfFile, update: &[u8]) -> Object {
    let tail = &pdf[pdf.len().saturating_sub(4096)..];
    let digest = |label: &[u8], parts: &[&[u8]]| {
        let mut h = Sha256::new();
        h.update(label);
        h.update((pdf.len() as u64).to_be_bytes());
        for part in parts {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        Object::String(h.finalize()[..16].to_vec(), StringFormat::Hexadecimal)
    };
    let first = match file.trailer.get(b"ID") {
        Ok(Object::Array(id)) => match id.first() {
            Some(first @ Object::String(..)) => first.clone(),
            _ => digest(b"signeur /ID permanent", &[tail]),
        },
        _ => digest(b"signeur /ID permanent", &[tail]),
    };
    let first_bytes = first.as_str().unwrap_or_default().to_vec();
    let second = digest(b"signeur /ID revision", &[&first_bytes, tail, update]);
    Object::Array(vec![first, second])
}

/// The signature dictionary without `/Contents` (see [`write_signature`]).
fn signature_dictionary(opts: &SealOptions) -> Dictionary {
    let placeholder = Object::Integer(BYTE_RANGE_PLACEHOLDER);
    let mut sig = Dictionary::from_iter(vec![
        ("Type", Object::Name(b"Sig".to_vec())),
        ("Filter", Object::Name(b"Adobe.PPKLite".to_vec())),
        ("SubFilter", Object::Name(b"ETSI.CAdES.detached".to_vec())),
        (
            "ByteRange",
            Object::Array(vec![
                Object::Integer(0),
                placeholder.clone(),
                placeholder.clone(),
                placeholder,
            ]),
        ),
        (
            "M",
            Object::String(
                opts.signing_time
                    .format("D:%Y%m%d%H%M%SZ")
                    .to_string()
                    .into_bytes(),
                StringFormat::Literal,
            ),
        ),
    ]);
    if let Some(reason) = &opts.reason {
        sig.set("Reason", text_string(reason));
    }
    if let Some(name) = &opts.name {
        sig.set("Name", text_string(name));
    }
    sig
}

/// A PDF text string: PDFDocEncoding-compatible printable ASCII as a literal, else UTF-16BE
/// with a byte-order mark.
fn text_string(s: &str) -> Object {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Object::String(s.as_bytes().to_vec(), StringFormat::Literal)
    } else {
        let mut bytes = vec![0xfe, 0xff];
        for unit in s.encode_utf16() {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        Object::String(bytes, StringFormat::Hexadecimal)
    }
}

/// "Signature1", "Signature2", … whichever top-level field name is not taken.
fn unused_field_name(file: &PdfFile, fields: &[Object]) -> String {
    let taken: Vec<Vec<u8>> = fields
        .iter()
        .filter_map(|field| match file.resolve(field) {
            Ok(Object::Dictionary(field)) => field
                .get(b"T")
                .and_then(Object::as_str)
                .ok()
                .map(<[u8]>::to_vec),
            _ => None,
        })
        .collect();
    let mut n = 1usize;
    loop {
        let name = format!("Signature{n}");
        if !taken.iter().any(|t| t == name.as_bytes()) {
            return name;
        }
        n += 1;
    }
}

/// Finds the placeholders in `update` (the bytes appended to an input of `input_len` bytes),
/// patches `/ByteRange` in place and returns the `/Contents` gap `(start of '<', one past '>')`
/// within `update`.
fn patch_byte_range(
    update: &mut [u8],
    input_len: usize,
    contents_size: usize,
) -> Result<(usize, usize), SealError> {
    // The /Contents placeholder: `/Contents`, optional whitespace, `<`, zeros, `>`.
    let gaps: Vec<(usize, usize)> = find_all(update, b"/Contents")
        .filter_map(|at| {
            let mut i = at + b"/Contents".len();
            while update.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
            let end = i + 2 * contents_size + 2;
            let candidate = update.get(i..end)?;
            (candidate[0] == b'<'
                && candidate[end - i - 1] == b'>'
                && candidate[1..end - i - 1].iter().all(|&b| b == b'0'))
            .then_some((i, end))
        })
        .collect();
    let gap = match gaps[..] {
        [gap] => gap,
        [] => {
            return Err(SealError::Internal(
                "no /Contents placeholder in the update".into(),
            ));
        }
        _ => {
            return Err(SealError::Internal(
                "more than one /Contents placeholder".into(),
            ));
        }
    };

    let ranges: Vec<usize> = find_all(update, b"/ByteRange").collect();
    let at = match ranges[..] {
        [at] => at,
        [] => {
            return Err(SealError::Internal(
                "no /ByteRange placeholder in the update".into(),
            ));
        }
        _ => {
            return Err(SealError::Internal(
                "more than one /ByteRange in the update".into(),
            ));
        }
    };
    let open = at
        + update[at..]
            .iter()
            .position(|&b| b == b'[')
            .ok_or_else(|| SealError::Internal("/ByteRange has no array".into()))?;
    let close = open
        + update[open..]
            .iter()
            .position(|&b| b == b']')
            .ok_or_else(|| SealError::Internal("/ByteRange array is not closed".into()))?;
    let expected = format!("[0 {0} {0} {0}]", BYTE_RANGE_PLACEHOLDER);
    if &update[open..=close] != expected.as_bytes() {
        return Err(SealError::Internal(
            "unexpected /ByteRange placeholder".into(),
        ));
    }
    let value = format!(
        "[0 {} {} {}",
        input_len + gap.0,
        input_len + gap.1,
        update.len() - gap.1
    );
    let width = close - open; // without the closing bracket
    let padded = format!("{value:<width$}");
    if padded.len() != width {
        return Err(SealError::Internal("/ByteRange does not fit".into()));
    }
    update[open..close].copy_from_slice(padded.as_bytes());
    Ok(gap)
}

fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    // Jump from one occurrence of the first byte to the next: the long runs of zeros in the
    // /Contents placeholder hold none.
    let mut from = 0;
    std::iter::from_fn(move || {
        let (&first, _) = needle.split_first()?;
        while let Some(i) = haystack.get(from..)?.iter().position(|&b| b == first) {
            let at = from + i;
            from = at + 1;
            if haystack[at..].starts_with(needle) {
                return Some(at);
            }
        }
        from = haystack.len();
        None
    })
}

// ------------------------------------------------------------------------------------------
// CMS side
// ------------------------------------------------------------------------------------------

/// ESS `SigningCertificateV2` (RFC 5035), without the optional policies.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
}

/// ESS `ESSCertIDv2`; `hashAlgorithm` is omitted, i.e. the SHA-256 default.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// ESS `IssuerSerial`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: Vec<GeneralName>,
    pub serial_number: SerialNumber,
}

fn parse_chain(chain: &[Vec<u8>]) -> Result<Vec<Certificate>, SealError> {
    if chain.is_empty() {
        return Err(SealError::Certificate("the chain is empty".into()));
    }
    chain
        .iter()
        .map(|der| Certificate::from_der(der).map_err(|e| SealError::Certificate(e.to_string())))
        .collect()
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, SealError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(der_err)?,
    })
}

fn sha256_id() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: rfc5912::ID_SHA_256,
        parameters: None,
    }
}

/// Builds and signs the `SignerInfo` for a detached signature over content with SHA-256
/// `digest`; it has no unsigned attributes yet (a B-T time-stamp goes there).
pub fn cms_signer_info(
    digest: &[u8],
    chain: &[Certificate],
    signer: &dyn SealSigner,
) -> Result<SignerInfo, SealError> {
    let leaf = chain
        .first()
        .ok_or_else(|| SealError::Certificate("the chain is empty".into()))?;
    let leaf_der = leaf.to_der().map_err(der_err)?;

    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(Sha256::digest(&leaf_der).to_vec()).map_err(der_err)?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(
                    leaf.tbs_certificate.issuer.clone(),
                )],
                serial_number: leaf.tbs_certificate.serial_number.clone(),
            }),
        }],
    };
    let signed_attrs: SignedAttributes = SetOfVec::try_from(vec![
        attribute(
            rfc5911::ID_CONTENT_TYPE,
            Any::encode_from(&rfc5911::ID_DATA).map_err(der_err)?,
        )?,
        attribute(
            rfc5911::ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest.to_vec()).map_err(der_err)?)
                .map_err(der_err)?,
        )?,
        attribute(
            ID_AA_SIGNING_CERTIFICATE_V2,
            Any::encode_from(&ess).map_err(der_err)?,
        )?,
    ])
    .map_err(der_err)?;

    // The signature covers the DER of the attributes as an explicit SET OF (RFC 5652, 5.4).
    let to_sign = signed_attrs.to_der().map_err(der_err)?;
    let signature = signer.sign(&to_sign)?;

    Ok(SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.tbs_certificate.issuer.clone(),
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256_id(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signer.algorithm().signature_algorithm(),
        signature: OctetString::new(signature).map_err(der_err)?,
        unsigned_attrs: None,
    })
}

/// Wraps `signer_info` (with `unsigned_attrs` added, if any) in a detached `SignedData`
/// `ContentInfo` carrying `chain`; returns its DER.
pub fn cms_content_info(
    mut signer_info: SignerInfo,
    chain: &[Certificate],
    unsigned_attrs: Option<UnsignedAttributes>,
) -> Result<Vec<u8>, SealError> {
    if unsigned_attrs.is_some() {
        signer_info.unsigned_attrs = unsigned_attrs;
    }
    let certificates = SetOfVec::try_from(
        chain
            .iter()
            .cloned()
            .map(CertificateChoices::Certificate)
            .collect::<Vec<_>>(),
    )
    .map_err(der_err)?;
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256_id()]).map_err(der_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(certificates)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(der_err)?),
    };
    ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data).map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}

// ------------------------------------------------------------------------------------------
// In-process signer
// ------------------------------------------------------------------------------------------

enum RingKey {
    Ecdsa(ring::signature::EcdsaKeyPair),
    Rsa(ring::signature::RsaKeyPair),
}

/// A [`SealSigner`] holding a PKCS#8 private key in memory, signing with `ring`.
pub struct RingSigner {
    key: RingKey,
    chain: Vec<Vec<u8>>,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for RingSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSigner")
            .field("algorithm", &self.algorithm())
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl RingSigner {
    /// An ECDSA P-256 key (PKCS#8 DER) and its chain (DER, leaf first).
    pub fn ecdsa_p256_from_pkcs8(pkcs8: &[u8], chain: Vec<Vec<u8>>) -> Result<Self, SealError> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8,
            &rng,
        )
        .map_err(|e| SealError::Certificate(format!("not a P-256 PKCS#8 key: {e}")))?;
        Self::checked(RingKey::Ecdsa(key), chain, rng)
    }

    /// An RSA key (PKCS#8 DER) and its chain (DER, leaf first).
    pub fn rsa_from_pkcs8(pkcs8: &[u8], chain: Vec<Vec<u8>>) -> Result<Self, SealError> {
        let key = ring::signature::RsaKeyPair::from_pkcs8(pkcs8)
            .map_err(|e| SealError::Certificate(format!("not an RSA PKCS#8 key: {e}")))?;
        Self::checked(RingKey::Rsa(key), chain, ring::rand::SystemRandom::new())
    }

    /// Refuses a chain whose leaf does not certify this key.
    fn checked(
        key: RingKey,
        chain: Vec<Vec<u8>>,
        rng: ring::rand::SystemRandom,
    ) -> Result<Self, SealError> {
        use ring::signature::KeyPair;
        let certs = parse_chain(&chain)?;
        let leaf_key = certs[0]
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        // ring's public keys are exactly the SPKI bit-string contents (an uncompressed EC
        // point, or the DER RSAPublicKey).
        let public = match &key {
            RingKey::Ecdsa(k) => k.public_key().as_ref(),
            RingKey::Rsa(k) => k.public_key().as_ref(),
        };
        if public != leaf_key {
            return Err(SealError::Certificate(
                "the leaf certificate does not certify the private key".into(),
            ));
        }
        Ok(RingSigner { key, chain, rng })
    }
}

impl SealSigner for RingSigner {
    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    fn algorithm(&self) -> SealAlgorithm {
        match self.key {
            RingKey::Ecdsa(_) => SealAlgorithm::EcdsaP256Sha256,
            RingKey::Rsa(_) => SealAlgorithm::RsaPkcs1Sha256,
        }
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.key {
            RingKey::Ecdsa(k) => k
                .sign(&self.rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| SignerError(format!("ECDSA signing failed: {e}"))),
            RingKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    data,
                    &mut sig,
                )
                .map_err(|e| SignerError(format!("RSA signing failed: {e}")))?;
                Ok(sig)
            }
        }
    }
}
