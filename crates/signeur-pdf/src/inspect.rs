//! Upload inspection: [`inspect`].

use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::xref::XrefRecovery;
use lopdf::{Dictionary, Document, LoadOptions, Object};

use crate::{find, rfind};

/// Most pages an accepted document may have.
pub(crate) const MAX_PAGES: u32 = 2000;
/// Most indirect objects an accepted document may have.
pub(crate) const MAX_OBJECTS: usize = 200_000;
/// Largest size, in bytes, that one stream may decompress to while the file is loaded.
const MAX_DECOMPRESSED_STREAM: usize = 32 * 1024 * 1024;
/// How far from the start `%PDF-` and from the end `%%EOF` may be.
pub(crate) const MARKER_WINDOW: usize = 1024;

/// What an accepted upload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfInfo {
    pub page_count: u32,
    /// The effective version: the header's, or the catalog's `/Version` when that is later.
    pub pdf_version: String,
}

/// Why an upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("not a PDF file: no %PDF- header at its start")]
    NotAPdf,
    #[error("the PDF file cannot be read: {0}")]
    Unreadable(String),
    #[error("the PDF file is encrypted or password-protected")]
    Encrypted,
    #[error("the PDF file is certified with no changes allowed, so it cannot be signed")]
    CertifiedLocked,
}

impl InspectError {
    /// Stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            InspectError::NotAPdf => "not_a_pdf",
            InspectError::Unreadable(_) => "pdf_unreadable",
            InspectError::Encrypted => "pdf_encrypted",
            InspectError::CertifiedLocked => "pdf_certified_locked",
        }
    }
}

fn unreadable(message: impl Into<String>) -> InspectError {
    InspectError::Unreadable(message.into())
}

/// Upload inspection: decide, from the bytes alone, whether an uploaded file is a PDF that can
/// later be stamped and sealed, so that a file that cannot is refused when it is uploaded rather
/// than when the last signer has signed. Pure bytes in, verdict out: no I/O, no global state.
///
/// [`inspect`] checks, in this order:
///
/// 1. **Header** – `%PDF-` must start within the first 1024 bytes (the leading junk that the PDF
///    specification tolerates), else [`InspectError::NotAPdf`].
/// 2. **Complete file** – the last `%%EOF` must lie within the last 1024 bytes and be followed by
///    whitespace only. A cut upload either has no `%%EOF` left or, if it was cut inside a later
///    incremental update, ends with part of that update after an earlier `%%EOF`; accepting the
///    latter would show the signers an older revision than the one uploaded.
/// 3. **Parse** – the file is loaded with `lopdf` (lenient, with a bound on how large one stream
///    may decompress to), inside `catch_unwind` as a last line of defence against parser panics.
///    Classic tables, cross-reference streams, object streams, hybrid-reference files
///    (`/XRefStm`) and incremental updates are all read as written.
/// 4. **Encryption** – any `/Encrypt` in the trailer, even an owner-password-only file that opens
///    without a password, is [`InspectError::Encrypted`]: sealing appends an unencrypted
///    incremental update, which cannot be mixed with an encrypted original.
/// 5. **Cross-reference integrity** – lenient loading silently repairs a broken or misplaced
///    cross-reference table by scanning the file; validators of the sealed file do not all do
///    so, and a repaired table may point at stale objects, so any repair is refused.
/// 6. **Structure and limits** – a version like `1.7`, a catalog, a page tree with at least one
///    page, at most 2000 pages and at most 200 000 objects.
/// 7. **Certification** – a document certified with DocMDP permission `P 1` (catalog
///    `/Perms /DocMDP`, signature `/Reference` with `/TransformMethod /DocMDP`) allows no change
///    at all, so adding our signatures would break its certification:
///    [`InspectError::CertifiedLocked`]. `P 2`/`P 3` and approval signatures are accepted.
///
/// Everything that is not one of the specific refusals is [`InspectError::Unreadable`], with a
/// message in plain words.
///
/// Never panics.
pub fn inspect(bytes: &[u8]) -> Result<PdfInfo, InspectError> {
    let header_at =
        find(&bytes[..bytes.len().min(MARKER_WINDOW)], b"%PDF-").ok_or(InspectError::NotAPdf)?;
    check_complete(bytes)?;
    let pdf = &bytes[header_at..];
    catch_unwind(AssertUnwindSafe(|| inspect_document(pdf))).unwrap_or_else(|_| {
        Err(unreadable(
            "the file is malformed in a way the PDF parser could not handle",
        ))
    })
}

/// The file must end with `%%EOF` (and optional whitespace) within its last 1024 bytes.
pub(crate) fn check_complete(bytes: &[u8]) -> Result<(), InspectError> {
    let tail = &bytes[bytes.len().saturating_sub(MARKER_WINDOW)..];
    let eof_at = rfind(tail, b"%%EOF").ok_or_else(|| {
        unreadable("the file is truncated or incomplete: there is no %%EOF marker at its end")
    })?;
    let after = &tail[eof_at + b"%%EOF".len()..];
    if !after.iter().all(|b| b"\0\t\n\x0c\r ".contains(b)) {
        return Err(unreadable(
            "the file is truncated or damaged: there is data after its last %%EOF marker",
        ));
    }
    Ok(())
}

fn inspect_document(pdf: &[u8]) -> Result<PdfInfo, InspectError> {
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_DECOMPRESSED_STREAM),
        ..LoadOptions::default()
    };
    let doc = match Document::load_mem_with_options(pdf, options) {
        Ok(doc) => doc,
        // An encryption lopdf cannot set up (e.g. a public-key handler) fails the load.
        Err(_) if has_encrypt_key(pdf) => return Err(InspectError::Encrypted),
        Err(err) => return Err(unreadable(format!("the file could not be parsed ({err})"))),
    };
    // lopdf removes /Encrypt from the trailer when it could decrypt with the empty password.
    if doc.trailer.has(b"Encrypt") || doc.encryption_state.is_some() {
        return Err(InspectError::Encrypted);
    }
    match doc.xref_recovery {
        None => {}
        Some(XrefRecovery::OffsetCorrected) => {
            return Err(unreadable(
                "the cross-reference table is not where the file says it is (damaged file)",
            ));
        }
        Some(_) => {
            return Err(unreadable(
                "the cross-reference table is broken or missing (damaged or truncated file)",
            ));
        }
    }
    if doc.objects.len() > MAX_OBJECTS {
        return Err(unreadable(format!(
            "the file has more than {MAX_OBJECTS} objects"
        )));
    }
    let catalog = doc
        .catalog()
        .map_err(|_| unreadable("the document catalog is missing or broken"))?;
    let pdf_version = effective_version(&doc.version, catalog)?;
    let page_count = count_pages(&doc)?;
    if certified_no_changes(&doc, catalog) {
        return Err(InspectError::CertifiedLocked);
    }
    Ok(PdfInfo {
        page_count,
        pdf_version,
    })
}

fn count_pages(doc: &Document) -> Result<u32, InspectError> {
    // The cap keeps a hostile page tree from being walked further than needed.
    let limit = MAX_PAGES as usize + 1;
    let count = doc.page_iter().take(limit).count();
    match count {
        0 => Err(unreadable(
            "the document has no pages (missing or broken page tree)",
        )),
        n if n >= limit => Err(unreadable(format!(
            "the document has more than {MAX_PAGES} pages"
        ))),
        n => u32::try_from(n).map_err(|_| unreadable("the page count is out of range")),
    }
}

/// The header version, or the catalog's `/Version` when it names a later one.
fn effective_version(header: &str, catalog: &Dictionary) -> Result<String, InspectError> {
    let header_version = parse_version(header)
        .ok_or_else(|| unreadable("the %PDF- header has no valid version number"))?;
    let catalog_version = catalog
        .get(b"Version")
        .and_then(Object::as_name)
        .ok()
        .and_then(|name| std::str::from_utf8(name).ok())
        .and_then(|name| parse_version(name).map(|parsed| (parsed, name)));
    Ok(match catalog_version {
        Some((parsed, name)) if parsed > header_version => name.to_owned(),
        _ => header.to_owned(),
    })
}

/// `"1.7"` -> `(1, 7)`; anything else is `None`.
fn parse_version(version: &str) -> Option<(u8, u8)> {
    let (major, minor) = version.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Whether the catalog's `/Perms /DocMDP` signature carries a DocMDP reference with `/P 1`.
fn certified_no_changes(doc: &Document, catalog: &Dictionary) -> bool {
    let references = catalog
        .get_deref(b"Perms", doc)
        .and_then(Object::as_dict)
        .and_then(|perms| perms.get_deref(b"DocMDP", doc))
        .and_then(Object::as_dict)
        .and_then(|signature| signature.get_deref(b"Reference", doc))
        .and_then(Object::as_array);
    let Ok(references) = references else {
        return false;
    };
    references
        .iter()
        .filter_map(|reference| doc.dereference(reference).ok()?.1.as_dict().ok())
        .filter(|reference| {
            reference
                .get(b"TransformMethod")
                .and_then(Object::as_name)
                .ok()
                == Some(b"DocMDP".as_slice())
        })
        .any(|reference| docmdp_permission(doc, reference) == 1)
}

/// The `/P` of a DocMDP signature reference; 2 when absent, as the specification says.
fn docmdp_permission(doc: &Document, reference: &Dictionary) -> i64 {
    let params = match reference.get_deref(b"TransformParams", doc) {
        Ok(Object::Dictionary(params)) => params,
        _ => return 2,
    };
    params
        .get_deref(b"P", doc)
        .and_then(Object::as_i64)
        .unwrap_or(2)
}

/// Whether the raw bytes contain the `/Encrypt` key (not `/EncryptMetadata` and the like).
fn has_encrypt_key(bytes: &[u8]) -> bool {
    let key = b"/Encrypt";
    bytes
        .windows(key.len() + 1)
        .any(|window| window.starts_with(key) && !window[key.len()].is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.7"), Some((1, 7)));
        assert_eq!(parse_version("2.0"), Some((2, 0)));
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("1."), None);
        assert_eq!(parse_version("1.7x"), None);
        assert_eq!(parse_version("999.1"), None);
    }

    #[test]
    fn encrypt_key_is_a_whole_name() {
        assert!(has_encrypt_key(b"<< /Encrypt 5 0 R >>"));
        assert!(has_encrypt_key(b"<</Encrypt<</V 5>>>>"));
        assert!(!has_encrypt_key(b"<< /EncryptMetadata false >>"));
        assert!(!has_encrypt_key(b"/Encrypt"));
    }

    #[test]
    fn header_and_eof_windows() {
        assert_eq!(inspect(b""), Err(InspectError::NotAPdf));
        let mut late = vec![b' '; MARKER_WINDOW];
        late.extend_from_slice(b"%PDF-1.7\n%%EOF\n");
        assert_eq!(inspect(&late), Err(InspectError::NotAPdf));
        assert!(matches!(
            inspect(b"%PDF-1.7\n"),
            Err(InspectError::Unreadable(_))
        ));
    }
}
