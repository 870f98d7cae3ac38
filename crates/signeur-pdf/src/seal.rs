//! PAdES baseline **B-B** sealing: bytes in, bytes out (ETSI EN 319 142-1).
//!
//! [`seal`] appends one incremental update to the input file, so the input stays a byte-exact
//! prefix of the output and every earlier signature keeps covering what it covered. The update
//! holds:
//!
//! - an invisible signature field merged with its widget annotation (`/Rect [0 0 0 0]`,
//!   `/F 132` = Print + Locked) on page 1, added to that page's `/Annots` and to the
//!   `/AcroForm /Fields` (created when missing, existing fields kept) with `/SigFlags 3`;
//! - the signature dictionary `/Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached`
//!   with `/M`, `/ByteRange` and a fixed-width `/Contents` placeholder.
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
use lopdf::{Dictionary, IncrementalDocument, Object, ObjectId, StringFormat};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

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

    let mut out = append_signature_update(pdf, opts)?;
    let gap = patch_byte_range(&mut out, pdf.len(), opts.contents_size)?;

    let mut hasher = Sha256::new();
    hasher.update(&out[..gap.0]);
    hasher.update(&out[gap.1..]);
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
    out[gap.0 + 1..gap.0 + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// PDF side
// ------------------------------------------------------------------------------------------

/// Writes the incremental update with the placeholders; returns the whole new file.
fn append_signature_update(pdf: &[u8], opts: &SealOptions) -> Result<Vec<u8>, SealError> {
    let mut inc: IncrementalDocument = pdf.try_into().map_err(pdf_err)?;
    let prev = inc.get_prev_documents();
    if prev.is_encrypted() || prev.trailer.has(b"Encrypt") {
        return Err(SealError::Pdf("the file is encrypted".into()));
    }
    let catalog_id = prev
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| SealError::Pdf("the trailer has no /Root reference".into()))?;
    let page_id = *prev
        .get_pages()
        .get(&1)
        .ok_or_else(|| SealError::Pdf("the document has no page".into()))?;
    let field_name = unused_field_name(prev, catalog_id);

    // The trailer of the update is the previous one with /Prev set by lopdf; drop what only
    // described the previous cross-reference section (lopdf rewrites /Size, and for a stream
    // /Type, /W, /Index, /Length and /Filter).
    for key in [
        &b"XRefStm"[..],
        b"DecodeParms",
        b"Filter",
        b"Length",
        b"Index",
        b"W",
    ] {
        inc.new_document.trailer.remove(key);
    }

    let sig_id = inc.new_document.add_object(signature_dictionary(opts));
    let field_id = inc.new_document.add_object(Dictionary::from_iter(vec![
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
    ]));

    // The page: append the widget to /Annots.
    inc.opt_clone_object_to_new_document(page_id)
        .map_err(pdf_err)?;
    push_to_array(&mut inc, page_id, b"Annots", Object::Reference(field_id))?;

    // The catalog's /AcroForm, made indirect if it was inline or missing.
    inc.opt_clone_object_to_new_document(catalog_id)
        .map_err(pdf_err)?;
    let acroform = inc
        .new_document
        .get_dictionary(catalog_id)
        .map_err(pdf_err)?
        .get(b"AcroForm")
        .ok()
        .cloned();
    let acroform_id = match acroform {
        Some(Object::Reference(id)) => {
            inc.opt_clone_object_to_new_document(id).map_err(pdf_err)?;
            if inc.new_document.get_dictionary(id).is_err() {
                return Err(SealError::Pdf("/AcroForm is not a dictionary".into()));
            }
            id
        }
        Some(Object::Dictionary(dict)) => inc.new_document.add_object(dict),
        None | Some(Object::Null) => inc.new_document.add_object(Dictionary::new()),
        Some(_) => return Err(SealError::Pdf("/AcroForm is not a dictionary".into())),
    };
    inc.new_document
        .get_dictionary_mut(catalog_id)
        .map_err(pdf_err)?
        .set("AcroForm", Object::Reference(acroform_id));
    push_to_array(
        &mut inc,
        acroform_id,
        b"Fields",
        Object::Reference(field_id),
    )?;
    let acro = inc
        .new_document
        .get_dictionary_mut(acroform_id)
        .map_err(pdf_err)?;
    let flags = acro.get(b"SigFlags").and_then(Object::as_i64).unwrap_or(0);
    acro.set("SigFlags", Object::Integer(flags | 3));

    let mut out = Vec::with_capacity(pdf.len() + 2 * opts.contents_size + 4096);
    inc.save_to(&mut out).map_err(pdf_err)?;
    if !out.starts_with(pdf) {
        return Err(SealError::Internal(
            "the update does not start with the input".into(),
        ));
    }
    Ok(out)
}

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
            "Contents",
            Object::String(vec![0; opts.contents_size], StringFormat::Hexadecimal),
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
fn unused_field_name(doc: &lopdf::Document, catalog_id: ObjectId) -> String {
    let mut taken = Vec::new();
    let fields = doc
        .get_dictionary(catalog_id)
        .and_then(|c| c.get(b"AcroForm"))
        .and_then(|a| doc.dereference(a))
        .and_then(|(_, a)| a.as_dict())
        .and_then(|a| a.get(b"Fields"))
        .and_then(|f| doc.dereference(f))
        .and_then(|(_, f)| f.as_array());
    if let Ok(fields) = fields {
        for field in fields {
            if let Ok(name) = doc
                .dereference(field)
                .and_then(|(_, f)| f.as_dict())
                .and_then(|f| f.get(b"T"))
                .and_then(Object::as_str)
            {
                taken.push(name.to_vec());
            }
        }
    }
    (1..)
        .map(|n| format!("Signature{n}"))
        .find(|name| !taken.iter().any(|t| t == name.as_bytes()))
        .expect("an unused name exists")
}

/// Appends `item` to the array at `key` of the dictionary `holder` (already in the update),
/// following an indirect array into the update, or creating the array.
fn push_to_array(
    inc: &mut IncrementalDocument,
    holder: ObjectId,
    key: &[u8],
    item: Object,
) -> Result<(), SealError> {
    let entry = inc
        .new_document
        .get_dictionary(holder)
        .map_err(pdf_err)?
        .get(key)
        .ok()
        .cloned();
    let what = String::from_utf8_lossy(key).into_owned();
    match entry {
        Some(Object::Reference(array_id)) => {
            inc.opt_clone_object_to_new_document(array_id)
                .map_err(pdf_err)?;
            match inc.new_document.get_object_mut(array_id).map_err(pdf_err)? {
                Object::Array(array) => array.push(item),
                _ => return Err(SealError::Pdf(format!("/{what} is not an array"))),
            }
        }
        Some(Object::Array(mut array)) => {
            array.push(item);
            inc.new_document
                .get_dictionary_mut(holder)
                .map_err(pdf_err)?
                .set(key, Object::Array(array));
        }
        None | Some(Object::Null) => {
            inc.new_document
                .get_dictionary_mut(holder)
                .map_err(pdf_err)?
                .set(key, Object::Array(vec![item]));
        }
        Some(_) => return Err(SealError::Pdf(format!("/{what} is not an array"))),
    }
    Ok(())
}

/// Finds the placeholders in the appended bytes, patches `/ByteRange` in place and returns the
/// `/Contents` gap `(start of '<', one past '>')`.
fn patch_byte_range(
    out: &mut [u8],
    appended_from: usize,
    contents_size: usize,
) -> Result<(usize, usize), SealError> {
    let tail = &out[appended_from..];

    // The /Contents placeholder: `/Contents`, optional whitespace, `<`, zeros, `>`.
    let gaps: Vec<(usize, usize)> = find_all(tail, b"/Contents")
        .filter_map(|at| {
            let mut i = at + b"/Contents".len();
            while tail.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
            let end = i + 2 * contents_size + 2;
            let candidate = tail.get(i..end)?;
            (candidate[0] == b'<'
                && candidate[end - i - 1] == b'>'
                && candidate[1..end - i - 1].iter().all(|&b| b == b'0'))
            .then_some((appended_from + i, appended_from + end))
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

    let ranges: Vec<usize> = find_all(tail, b"/ByteRange").collect();
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
    let open = appended_from
        + at
        + tail[at..]
            .iter()
            .position(|&b| b == b'[')
            .ok_or_else(|| SealError::Internal("/ByteRange has no array".into()))?;
    let close = open
        + out[open..]
            .iter()
            .position(|&b| b == b']')
            .ok_or_else(|| SealError::Internal("/ByteRange array is not closed".into()))?;
    let expected = format!("[0 {0} {0} {0}]", BYTE_RANGE_PLACEHOLDER);
    if &out[open..=close] != expected.as_bytes() {
        return Err(SealError::Internal(
            "unexpected /ByteRange placeholder".into(),
        ));
    }
    let value = format!("[0 {} {} {}", gap.0, gap.1, out.len() - gap.1);
    let width = close - open; // without the closing bracket
    let padded = format!("{value:<width$}");
    if padded.len() != width {
        return Err(SealError::Internal("/ByteRange does not fit".into()));
    }
    out[open..close].copy_from_slice(padded.as_bytes());
    Ok(gap)
}

fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(i, _)| i)
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
