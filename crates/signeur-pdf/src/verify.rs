//! Verification of the digital signatures of a PDF: [`verify`].

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, OctetString};
use der::{Decode, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::serial_number::SerialNumber;

/// Most signatures examined in one file.
pub(crate) const MAX_SIGNATURES: usize = 64;
/// Most form-field nodes visited while looking for signatures.
const MAX_FIELD_NODES: usize = 10_000;
/// Deepest `/Kids` nesting followed.
const MAX_FIELD_DEPTH: usize = 32;
/// Largest size, in bytes, that one stream may decompress to while the file is loaded.
const MAX_DECOMPRESSED_STREAM: usize = 32 * 1024 * 1024;
/// How far from the start `%PDF-` may be.
const HEADER_WINDOW: usize = 1024;

const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const OID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const OID_SIGNATURE_TIME_STAMP: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

const ETSI_CADES_DETACHED: &str = "/ETSI.CAdES.detached";

/// What the bytes say about one signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignatureReport {
    /// The fully qualified field name (`/T` of the field and its ancestors, joined by `.`).
    pub field_name: Option<String>,
    /// `/SubFilter` with its slash, e.g. `/ETSI.CAdES.detached`; empty when missing.
    pub sub_filter: String,
    /// The `/M` string as written.
    pub signing_time: Option<String>,
    /// `/ByteRange` (all zeros when it is not four non-negative numbers).
    pub byte_range: [usize; 4],
    /// The ranges are the whole file minus the `/Contents` gap.
    pub covers_whole_file: bool,
    /// The message-digest attribute equals the digest of the ranges.
    pub digest_ok: bool,
    /// The signature over the signed attributes verifies with the signer certificate's key.
    pub signature_ok: bool,
    /// The ESS signing-certificate-v2 attribute is present and names the signer certificate.
    pub signing_certificate_v2_ok: bool,
    /// A CMS signing-time attribute is present (forbidden for PAdES baseline).
    pub has_signing_time_attr: bool,
    /// An unsigned signature-time-stamp-token attribute is present (its authority's own
    /// signature is not validated here; pyHanko does that with a trust root).
    pub has_timestamp: bool,
    /// The time-stamp's time (`genTime`), RFC 3339 UTC.
    pub timestamp_time: Option<String>,
    /// The time-stamp authority: its certificate's subject, else the token's `tsa` name.
    pub timestamp_authority: Option<String>,
    /// The time-stamp's message imprint is the digest of this signature's value.
    pub timestamp_imprint_ok: bool,
    /// The signer certificate's subject, RFC 4514 style; empty when not found.
    pub signer_subject: String,
    /// The signer certificate's serial number, upper-case hex.
    pub signer_serial_hex: String,
    /// The signer certificate's issuer, RFC 4514 style; empty when not found.
    pub signer_issuer: String,
    /// The signer certificate's validity, RFC 3339 UTC.
    pub not_before: String,
    pub not_after: String,
    /// Subject equals issuer and the certificate's own key verifies its signature.
    pub self_signed: bool,
    /// Plain-words reasons for anything that did not check out (empty when all is well).
    pub problems: Vec<String>,
}

impl SignatureReport {
    /// Digest, signature and signing-certificate-v2 check out, and, for
    /// `/ETSI.CAdES.detached`, there is no CMS signing-time attribute.
    pub fn valid(&self) -> bool {
        self.digest_ok
            && self.signature_ok
            && self.signing_certificate_v2_ok
            && !(self.sub_filter == ETSI_CADES_DETACHED && self.has_signing_time_attr)
    }

    /// The PAdES baseline level the signature's structure claims: `PAdES-B-T` with a
    /// signature time-stamp, `PAdES-B-B` without; `None` when it is not `/ETSI.CAdES.detached`.
    pub fn pades_level(&self) -> Option<&'static str> {
        (self.sub_filter == "/ETSI.CAdES.detached").then_some(if self.has_timestamp {
            "PAdES-B-T"
        } else {
            "PAdES-B-B"
        })
    }

    fn end(&self) -> usize {
        self.byte_range[2].saturating_add(self.byte_range[3])
    }

    fn new(field_name: Option<String>) -> Self {
        SignatureReport {
            field_name,
            sub_filter: String::new(),
            signing_time: None,
            byte_range: [0; 4],
            covers_whole_file: false,
            digest_ok: false,
            signature_ok: false,
            signing_certificate_v2_ok: false,
            has_signing_time_attr: false,
            has_timestamp: false,
            timestamp_time: None,
            timestamp_authority: None,
            timestamp_imprint_ok: false,
            signer_subject: String::new(),
            signer_serial_hex: String::new(),
            signer_issuer: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            self_signed: false,
            problems: Vec::new(),
        }
    }
}

/// What the bytes say about all signatures of a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The signatures, ordered by where their byte range ends (the last one signs the most).
    pub signatures: Vec<SignatureReport>,
    /// There is a last signature and every earlier signature's signed revision
    /// (`0 .. ByteRange[2] + ByteRange[3]`) lies inside the first range of the last one, so
    /// the last signature also covers the earlier revisions unchanged.
    pub prefix_of_last_is_intact: bool,
}

impl VerifyReport {
    /// At least one signature; the last one covers the whole file and is [valid]; every
    /// signature's digest and signature verify; earlier revisions are intact prefixes.
    ///
    /// [valid]: SignatureReport::valid
    pub fn seal_valid(&self) -> bool {
        let Some(last) = self.signatures.last() else {
            return false;
        };
        last.covers_whole_file
            && last.valid()
            && self.prefix_of_last_is_intact
            && self
                .signatures
                .iter()
                .all(|s| s.digest_ok && s.signature_ok)
    }
}

/// Why a file could not be verified at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a PDF file: no %PDF- header at its start")]
    NotAPdf,
    #[error("the PDF file cannot be read: {0}")]
    Unreadable(String),
}

impl VerifyError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::NotAPdf => "not_a_pdf",
            VerifyError::Unreadable(_) => "pdf_unreadable",
        }
    }
}

/// Verifies the digital signatures of a PDF: bytes in, report out.
///
/// [`verify`] finds every signature field of the AcroForm (following `/Kids`, with the field
/// type inherited), and for each signature dictionary checks, from the bytes alone:
///
/// - that `/ByteRange` is four non-negative numbers describing two ranges around a gap which
///   holds exactly the `<…>` hex string of `/Contents` (the gap bytes are decoded and must equal
///   the parsed `/Contents`), and whether the ranges cover the whole file;
/// - that the CMS `SignedData` in `/Contents` (its DER length is read from the content, so the
///   zero padding after it is ignored whatever the signature ends with) has a `message-digest`
///   signed attribute equal to the digest of the ranges;
/// - that the signature over the DER `SET OF` signed attributes (the bytes as written, not a
///   re-encoding) verifies with the signer certificate's public key (ECDSA P-256/SHA-256,
///   P-384/SHA-384, RSA PKCS#1 v1.5 with SHA-256/384/512, through `ring`);
/// - that the ESS signing-certificate-v2 attribute names the signer certificate, whether a CMS
///   signing-time attribute is present (PAdES forbids it) and whether a signature time-stamp
///   token is attached.
///
/// Nothing is trusted: certificate chains, revocation and time-stamp tokens are **not**
/// validated; the report says what the bytes prove, not who signed. Never panics; the work is
/// bounded by the number of signatures (64) and fields visited.
///
/// A file without signatures gives an empty report. Never panics.
pub fn verify(pdf: &[u8]) -> Result<VerifyReport, VerifyError> {
    let window = pdf.get(..pdf.len().min(HEADER_WINDOW)).unwrap_or_default();
    let header_at = window
        .windows(5)
        .position(|w| w == b"%PDF-")
        .ok_or(VerifyError::NotAPdf)?;
    catch_unwind(AssertUnwindSafe(|| verify_document(pdf, header_at))).unwrap_or_else(|_| {
        Err(VerifyError::Unreadable(
            "the file is malformed in a way the verifier could not handle".into(),
        ))
    })
}

fn verify_document(pdf: &[u8], header_at: usize) -> Result<VerifyReport, VerifyError> {
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_DECOMPRESSED_STREAM),
        ..LoadOptions::default()
    };
    let body = pdf.get(header_at..).unwrap_or_default();
    let doc = Document::load_mem_with_options(body, options)
        .map_err(|e| VerifyError::Unreadable(format!("the file could not be parsed ({e})")))?;
    let encrypted = doc.encryption_state.is_some() || doc.trailer.has(b"Encrypt");

    let mut signatures: Vec<SignatureReport> = find_signatures(&doc)
        .into_iter()
        .map(|(name, sig)| check_signature(pdf, name, sig, encrypted))
        .collect();
    signatures.sort_by_key(SignatureReport::end);

    let prefix_of_last_is_intact = match signatures.split_last() {
        Some((last, earlier)) => {
            last.byte_range[0] == 0 && earlier.iter().all(|s| s.end() <= last.byte_range[1])
        }
        None => false,
    };
    Ok(VerifyReport {
        signatures,
        prefix_of_last_is_intact,
    })
}

// ------------------------------------------------------------------------------------------
// Finding the signatures
// ------------------------------------------------------------------------------------------

struct Walk<'d> {
    doc: &'d Document,
    visited: HashSet<ObjectId>,
    seen_sigs: HashSet<ObjectId>,
    nodes: usize,
    found: Vec<(Option<String>, &'d Dictionary)>,
}

/// The signature dictionaries of the AcroForm's signature fields, with their field names.
fn find_signatures(doc: &Document) -> Vec<(Option<String>, &Dictionary)> {
    let fields = doc
        .catalog()
        .and_then(|c| c.get_deref(b"AcroForm", doc))
        .and_then(Object::as_dict)
        .and_then(|a| a.get_deref(b"Fields", doc))
        .and_then(Object::as_array);
    let Ok(fields) = fields else {
        return Vec::new();
    };
    let mut walk = Walk {
        doc,
        visited: HashSet::new(),
        seen_sigs: HashSet::new(),
        nodes: 0,
        found: Vec::new(),
    };
    for field in fields {
        walk.field(field, None, false, 0);
    }
    walk.found
}

impl<'d> Walk<'d> {
    fn field(&mut self, obj: &'d Object, parent: Option<&str>, sig_type: bool, depth: usize) {
        if depth > MAX_FIELD_DEPTH
            || self.nodes >= MAX_FIELD_NODES
            || self.found.len() >= MAX_SIGNATURES
        {
            return;
        }
        self.nodes += 1;
        if let Object::Reference(id) = obj
            && !self.visited.insert(*id)
        {
            return;
        }
        let Ok(dict) = self.doc.dereference(obj).and_then(|(_, o)| o.as_dict()) else {
            return;
        };
        let name = match dict.get(b"T").and_then(Object::as_str) {
            Ok(t) => {
                let t = text_string(t);
                Some(match parent {
                    Some(p) => format!("{p}.{t}"),
                    None => t,
                })
            }
            Err(_) => parent.map(str::to_owned),
        };
        let sig_type = match dict.get(b"FT").and_then(Object::as_name) {
            Ok(ft) => ft == b"Sig",
            Err(_) => sig_type,
        };
        if sig_type && let Ok(value) = dict.get(b"V") {
            let fresh = match value {
                Object::Reference(id) => self.seen_sigs.insert(*id),
                _ => true,
            };
            if fresh && let Ok(sig) = self.doc.dereference(value).and_then(|(_, o)| o.as_dict()) {
                self.found.push((name.clone(), sig));
            }
        }
        if let Ok(kids) = dict.get_deref(b"Kids", self.doc).and_then(Object::as_array) {
            for kid in kids {
                self.field(kid, name.as_deref(), sig_type, depth + 1);
            }
        }
    }
}

/// A PDF text string: UTF-16BE with a byte-order mark, else (close enough) Latin-1.
fn text_string(bytes: &[u8]) -> String {
    match bytes.strip_prefix(&[0xfe, 0xff]) {
        Some(utf16) => {
            let units: Vec<u16> = utf16
                .chunks_exact(2)
                .map(|c| c.iter().fold(0u16, |unit, &b| unit << 8 | u16::from(b)))
                .collect();
            String::from_utf16_lossy(&units)
        }
        None => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

// ------------------------------------------------------------------------------------------
// Checking one signature
// ------------------------------------------------------------------------------------------

fn check_signature(
    pdf: &[u8],
    field_name: Option<String>,
    sig: &Dictionary,
    encrypted: bool,
) -> SignatureReport {
    let mut report = SignatureReport::new(field_name);
    if let Ok(sub_filter) = sig.get(b"SubFilter").and_then(Object::as_name) {
        report.sub_filter = format!("/{}", String::from_utf8_lossy(sub_filter));
    }
    if let Ok(m) = sig.get(b"M").and_then(Object::as_str) {
        report.signing_time = Some(String::from_utf8_lossy(m).into_owned());
    }
    if let Err(problem) = check_cms(pdf, sig, encrypted, &mut report) {
        report.problems.push(problem);
    }
    report
}

/// Fills `report`; an `Err` is the problem that stopped the checks.
fn check_cms(
    pdf: &[u8],
    sig: &Dictionary,
    encrypted: bool,
    report: &mut SignatureReport,
) -> Result<(), String> {
    let range = byte_range(sig).ok_or("/ByteRange is not four non-negative numbers")?;
    report.byte_range = range;
    let [start, len1, gap_end, len2] = range;
    let gap_start = start
        .checked_add(len1)
        .ok_or("/ByteRange is out of range")?;
    let end = gap_end
        .checked_add(len2)
        .ok_or("/ByteRange is out of range")?;
    if gap_start > gap_end || end > pdf.len() {
        return Err("/ByteRange does not fit the file".into());
    }
    let first = pdf.get(start..gap_start).ok_or("/ByteRange is invalid")?;
    let second = pdf.get(gap_end..end).ok_or("/ByteRange is invalid")?;
    let gap = pdf.get(gap_start..gap_end).ok_or("/ByteRange is invalid")?;

    let contents = decode_gap(gap).ok_or("the /ByteRange gap is not one hex string")?;
    report.covers_whole_file = start == 0 && end == pdf.len();
    if !encrypted {
        let parsed = sig
            .get(b"Contents")
            .and_then(Object::as_str)
            .map_err(|_| "/Contents is missing or not a string")?;
        if parsed != contents.as_slice() {
            return Err("the /ByteRange gap is not the /Contents of the signature".into());
        }
    }

    // The DER length is read from the content: the zero padding after it is not part of it.
    let mut reader = SliceReader::new(&contents).map_err(|e| format!("CMS: {e}"))?;
    let content_info =
        ContentInfo::decode(&mut reader).map_err(|e| format!("the CMS is malformed: {e}"))?;
    let cms_len = usize::try_from(reader.position()).map_err(|_| "CMS length")?;
    let cms_der = contents.get(..cms_len).ok_or("CMS length")?;
    if contents
        .get(cms_len..)
        .is_some_and(|rest| rest.iter().any(|&b| b != 0))
    {
        report
            .problems
            .push("/Contents has non-zero bytes after the CMS".into());
    }
    if content_info.content_type != OID_SIGNED_DATA {
        return Err("the CMS is not SignedData".into());
    }
    let signed_data: SignedData = content_info
        .content
        .decode_as()
        .map_err(|e| format!("the CMS SignedData is malformed: {e}"))?;
    if signed_data.encap_content_info.econtent.is_some() {
        report
            .problems
            .push("the CMS is not detached (it carries content)".into());
    }
    if signed_data.signer_infos.0.len() != 1 {
        return Err(format!(
            "the CMS has {} signers instead of one",
            signed_data.signer_infos.0.len()
        ));
    }
    // The SignerInfo as written: decoding a SET OF re-sorts it, and the signature covers the
    // signed attributes exactly as they were encoded.
    let signer_info_der = raw_signer_info(cms_der).ok_or("the CMS SignerInfo cannot be located")?;
    let signer_info = SignerInfo::from_der(&signer_info_der)
        .map_err(|e| format!("the CMS SignerInfo is malformed: {e}"))?;
    let signed_attrs = signer_info
        .signed_attrs
        .as_ref()
        .ok_or("the CMS has no signed attributes")?;
    let attr = |oid: ObjectIdentifier| signed_attrs.iter().find(|a| a.oid == oid);
    let signed_attrs_der =
        raw_signed_attrs(&signer_info_der).ok_or("the signed attributes cannot be located")?;

    report.has_signing_time_attr = attr(OID_SIGNING_TIME).is_some();
    let timestamp = signer_info
        .unsigned_attrs
        .as_ref()
        .and_then(|u| u.iter().find(|a| a.oid == OID_SIGNATURE_TIME_STAMP));
    report.has_timestamp = timestamp.is_some();
    if let Some(attr) = timestamp {
        read_timestamp(attr, signer_info.signature.as_bytes(), report);
    }
    match attr(OID_CONTENT_TYPE).and_then(|a| single_value(&a.values)) {
        Some(v) if v.decode_as::<ObjectIdentifier>().ok() == Some(OID_DATA) => {}
        _ => report
            .problems
            .push("the content-type attribute is missing or not id-data".into()),
    }

    // Digest.
    let digest_oid = signer_info.digest_alg.oid;
    let digest = digest_ranges(digest_oid, first, second)
        .ok_or_else(|| format!("unsupported digest algorithm {digest_oid}"))?;
    let claimed = attr(OID_MESSAGE_DIGEST)
        .and_then(|a| single_value(&a.values))
        .and_then(|v| v.decode_as::<OctetString>().ok());
    match claimed {
        Some(claimed) if claimed.as_bytes() == digest.as_slice() => report.digest_ok = true,
        Some(_) => report
            .problems
            .push("the document digest does not match the signed message-digest".into()),
        None => report
            .problems
            .push("the message-digest attribute is missing or malformed".into()),
    }

    // Signer certificate.
    let cert = find_signer_cert(&signed_data, &signer_info.sid)
        .ok_or("the signer certificate is not in the CMS")?;
    let tbs = &cert.tbs_certificate;
    report.signer_subject = tbs.subject.to_string();
    report.signer_serial_hex = hex::encode_upper(tbs.serial_number.as_bytes());
    report.signer_issuer = tbs.issuer.to_string();
    report.not_before = rfc3339(tbs.validity.not_before);
    report.not_after = rfc3339(tbs.validity.not_after);
    report.self_signed = tbs.subject == tbs.issuer
        && tbs.to_der().is_ok_and(|tbs_der| {
            verify_signature(
                &tbs.subject_public_key_info,
                &cert.signature_algorithm,
                None,
                &tbs_der,
                cert.signature.raw_bytes(),
            )
            .is_ok()
        });

    // Signature over the signed attributes.
    match verify_signature(
        &tbs.subject_public_key_info,
        &signer_info.signature_algorithm,
        Some(digest_oid),
        &signed_attrs_der,
        signer_info.signature.as_bytes(),
    ) {
        Ok(()) => report.signature_ok = true,
        Err(problem) => report.problems.push(problem),
    }

    // ESS signing-certificate-v2.
    match attr(OID_SIGNING_CERTIFICATE_V2).and_then(|a| single_value(&a.values)) {
        Some(value) => match ess_names_cert(value, cert) {
            Ok(()) => report.signing_certificate_v2_ok = true,
            Err(problem) => report.problems.push(problem),
        },
        None => report
            .problems
            .push("there is no signing-certificate-v2 attribute".into()),
    }
    Ok(())
}

fn byte_range(sig: &Dictionary) -> Option<[usize; 4]> {
    let array = sig.get(b"ByteRange").ok()?.as_array().ok()?;
    let mut out = [0usize; 4];
    if array.len() != out.len() {
        return None;
    }
    for (slot, value) in out.iter_mut().zip(array) {
        *slot = usize::try_from(value.as_i64().ok()?).ok()?;
    }
    Some(out)
}

/// The bytes of a `<…>` hex string that is the whole gap (white space allowed inside; an odd
/// last digit counts as followed by `0`).
fn decode_gap(gap: &[u8]) -> Option<Vec<u8>> {
    let inner = gap.strip_prefix(b"<")?.strip_suffix(b">")?;
    let mut out = Vec::with_capacity(inner.len() / 2 + 1);
    let mut high: Option<u8> = None;
    for &b in inner {
        if b"\0\t\n\x0c\r ".contains(&b) {
            continue;
        }
        let nibble = char::from(b).to_digit(16)?;
        let nibble = u8::try_from(nibble).ok()?;
        match high.take() {
            Some(h) => out.push(h << 4 | nibble),
            None => high = Some(nibble),
        }
    }
    if let Some(h) = high {
        out.push(h << 4);
    }
    Some(out)
}

fn single_value(values: &der::asn1::SetOfVec<der::Any>) -> Option<&der::Any> {
    match values.as_slice() {
        [value] => Some(value),
        _ => None,
    }
}

fn digest_ranges(oid: ObjectIdentifier, first: &[u8], second: &[u8]) -> Option<Vec<u8>> {
    fn run<D: Digest>(first: &[u8], second: &[u8]) -> Vec<u8> {
        let mut hasher = D::new();
        hasher.update(first);
        hasher.update(second);
        hasher.finalize().to_vec()
    }
    match oid {
        OID_SHA256 => Some(run::<Sha256>(first, second)),
        OID_SHA384 => Some(run::<Sha384>(first, second)),
        OID_SHA512 => Some(run::<Sha512>(first, second)),
        _ => None,
    }
}

/// The first `SignerInfo` of a `ContentInfo { SignedData }`, as encoded.
fn raw_signer_info(cms: &[u8]) -> Option<Vec<u8>> {
    let content_info = AnyRef::from_der(cms).ok()?;
    let mut fields = elements(content_info.value())?;
    fields.next()?; // contentType
    let explicit = fields.next()?;
    let signed_data = AnyRef::from_der(explicit.value()).ok()?;
    // signerInfos is the last field of SignedData.
    let signer_infos = elements(signed_data.value())?.last()?;
    if signer_infos.tag() != Tag::Set {
        return None;
    }
    elements(signer_infos.value())?.next()?.to_der().ok()
}

/// The signed attributes of an encoded `SignerInfo`, re-tagged as the `SET OF` they are
/// signed as (RFC 5652, 5.4), with their content bytes as written.
fn raw_signed_attrs(signer_info: &[u8]) -> Option<Vec<u8>> {
    let signer_info = AnyRef::from_der(signer_info).ok()?;
    let attrs = elements(signer_info.value())?.find(|field| {
        field.tag()
            == Tag::ContextSpecific {
                constructed: true,
                number: TagNumber::N0,
            }
    })?;
    AnyRef::new(Tag::Set, attrs.value()).ok()?.to_der().ok()
}

/// The elements encoded one after the other in `bytes`; stops at the first malformed one.
fn elements(bytes: &[u8]) -> Option<impl Iterator<Item = AnyRef<'_>>> {
    let mut reader = SliceReader::new(bytes).ok()?;
    Some(std::iter::from_fn(move || {
        if reader.is_finished() {
            None
        } else {
            AnyRef::decode(&mut reader).ok()
        }
    }))
}

fn find_signer_cert<'c>(
    signed_data: &'c SignedData,
    sid: &SignerIdentifier,
) -> Option<&'c Certificate> {
    let certs = signed_data.certificates.as_ref()?;
    certs.0.iter().find_map(|choice| {
        let cms::cert::CertificateChoices::Certificate(cert) = choice else {
            return None;
        };
        let tbs = &cert.tbs_certificate;
        let matches = match sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                ias.issuer == tbs.issuer && ias.serial_number == tbs.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
                .get::<SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, own)| own == *ski),
        };
        matches.then_some(cert)
    })
}

/// Reads the time, authority and imprint of a signature time-stamp token into `report`.
fn read_timestamp(
    attr: &x509_cert::attr::Attribute,
    signature: &[u8],
    report: &mut SignatureReport,
) {
    let token = single_value(&attr.values).and_then(|v| v.decode_as::<ContentInfo>().ok());
    let Some(token) = token else {
        report
            .problems
            .push("the time-stamp token is malformed".into());
        return;
    };
    let info = match crate::tsa::token_info(&token) {
        Ok(info) => info,
        Err(e) => {
            report.problems.push(format!("the time-stamp token: {e}"));
            return;
        }
    };
    report.timestamp_time = Some(generalized_time(info.gen_time));
    report.timestamp_imprint_ok = crate::tsa::imprint_matches(&info, signature);
    if !report.timestamp_imprint_ok {
        report
            .problems
            .push("the time-stamp is not over this signature's value".into());
    }
    let tsa_cert = token.content.decode_as::<SignedData>().ok().and_then(|sd| {
        let sid = sd.signer_infos.0.iter().next()?.sid.clone();
        find_signer_cert(&sd, &sid).map(|c| c.tbs_certificate.subject.to_string())
    });
    report.timestamp_authority = tsa_cert.or_else(|| {
        info.tsa.as_ref().map(|name| match name {
            x509_cert::ext::pkix::name::GeneralName::DirectoryName(n) => n.to_string(),
            other => format!("{other:?}"),
        })
    });
}

fn generalized_time(time: der::asn1::GeneralizedTime) -> String {
    let secs = i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn rfc3339(time: x509_cert::time::Time) -> String {
    let secs = i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Verifies `signature` over `message` with the key of `spki`. `digest` is the CMS digest
/// algorithm, needed when the signature algorithm is plain `rsaEncryption`.
fn verify_signature(
    spki: &spki::SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    digest: Option<ObjectIdentifier>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use ring::signature as rs;
    let key_oid = spki.algorithm.oid;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let verifier: &dyn rs::VerificationAlgorithm = match (key_oid, algorithm.oid, curve, digest) {
        (OID_EC_PUBLIC_KEY, OID_ECDSA_SHA256, Some(OID_P256), _) => &rs::ECDSA_P256_SHA256_ASN1,
        (OID_EC_PUBLIC_KEY, OID_ECDSA_SHA384, Some(OID_P384), _) => &rs::ECDSA_P384_SHA384_ASN1,
        (OID_RSA_ENCRYPTION, OID_SHA256_WITH_RSA, _, _)
        | (OID_RSA_ENCRYPTION, OID_RSA_ENCRYPTION, _, Some(OID_SHA256)) => {
            &rs::RSA_PKCS1_2048_8192_SHA256
        }
        (OID_RSA_ENCRYPTION, OID_SHA384_WITH_RSA, _, _)
        | (OID_RSA_ENCRYPTION, OID_RSA_ENCRYPTION, _, Some(OID_SHA384)) => {
            &rs::RSA_PKCS1_2048_8192_SHA384
        }
        (OID_RSA_ENCRYPTION, OID_SHA512_WITH_RSA, _, _)
        | (OID_RSA_ENCRYPTION, OID_RSA_ENCRYPTION, _, Some(OID_SHA512)) => {
            &rs::RSA_PKCS1_2048_8192_SHA512
        }
        _ => {
            return Err(format!(
                "unsupported signature algorithm {} for a {} key",
                algorithm.oid, key_oid
            ));
        }
    };
    rs::UnparsedPublicKey::new(verifier, spki.subject_public_key.raw_bytes())
        .verify(message, signature)
        .map_err(|_| "the signature does not verify with the signer certificate's key".into())
}

/// ESS `SigningCertificateV2` (RFC 5035) as read: policies are skipped.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<der::Any>,
}

/// ESS `ESSCertIDv2`; a missing `hashAlgorithm` is SHA-256.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// ESS `IssuerSerial`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<x509_cert::ext::pkix::name::GeneralName>,
    serial_number: SerialNumber,
}

/// The first `ESSCertIDv2` must be the signer certificate (RFC 5035, 3).
fn ess_names_cert(value: &der::Any, cert: &Certificate) -> Result<(), String> {
    let ess: SigningCertificateV2 = value
        .decode_as()
        .map_err(|e| format!("the signing-certificate-v2 attribute is malformed: {e}"))?;
    let first = ess
        .certs
        .first()
        .ok_or("the signing-certificate-v2 attribute names no certificate")?;
    let cert_der = cert.to_der().map_err(|e| format!("certificate: {e}"))?;
    let oid = first.hash_algorithm.as_ref().map_or(OID_SHA256, |a| a.oid);
    let hash = digest_ranges(oid, &cert_der, &[])
        .ok_or_else(|| format!("unsupported signing-certificate-v2 hash {oid}"))?;
    if first.cert_hash.as_bytes() != hash.as_slice() {
        return Err("the signing-certificate-v2 hash does not match the signer certificate".into());
    }
    if let Some(issuer_serial) = &first.issuer_serial
        && issuer_serial.serial_number != cert.tbs_certificate.serial_number
    {
        return Err(
            "the signing-certificate-v2 serial number does not match the signer certificate".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_decoding() {
        assert_eq!(decode_gap(b"<0A1b>"), Some(vec![0x0a, 0x1b]));
        assert_eq!(decode_gap(b"<0A 1\nb>"), Some(vec![0x0a, 0x1b]));
        assert_eq!(decode_gap(b"<A>"), Some(vec![0xa0]));
        assert_eq!(decode_gap(b"<>"), Some(vec![]));
        assert_eq!(decode_gap(b"<0G>"), None);
        assert_eq!(decode_gap(b"0A>"), None);
        assert_eq!(decode_gap(b"<"), None);
        assert_eq!(decode_gap(b""), None);
    }

    #[test]
    fn not_a_pdf() {
        assert_eq!(verify(b""), Err(VerifyError::NotAPdf));
        assert_eq!(verify(b"hello"), Err(VerifyError::NotAPdf));
        assert!(matches!(
            verify(b"%PDF-1.7\n"),
            Err(VerifyError::Unreadable(_))
        ));
    }
}
