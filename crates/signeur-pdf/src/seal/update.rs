//! The PDF side of the seal: the incremental update that carries the signature, written with
//! placeholders, and the `/ByteRange` patched in once its offsets are known.
//!
//! The update holds:
//!
//! - an invisible signature field merged with its widget annotation (`/Rect [0 0 0 0]`,
//!   `/F 132` = Print + Locked) on page 1, added to that page's `/Annots` and to the
//!   `/AcroForm /Fields` (created when missing, existing fields kept) with `/SigFlags 3`;
//! - the widget's appearance `/AP << /N … >>`, an empty form XObject with `/BBox [0 0 0 0]`: an
//!   invisible signature still has one for PDF/A and for several validators;
//! - the signature dictionary `/Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached`
//!   with `/M`, `/ByteRange` and a fixed-width `/Contents` placeholder (zeros);
//! - a cross-reference section of the kind of the file's newest one (a stream after a stream, a
//!   table otherwise) and a trailer whose `/ID` keeps the file's first element (both are made up
//!   when the file has none) and gets a new second one, derived from the content so that the same
//!   input and options give the same update.
//!
//! The whole document is never parsed ([`crate::xref`]): only the cross-reference chain and the
//! objects the update changes or needs (the catalog, the page tree down to page 1, its
//! `/Annots`, the `/AcroForm` and its `/Fields`).
//!
//! [`patch_byte_range`] then writes the real `/ByteRange` in place (same width, padded with
//! spaces): the whole file except the `<…>` hex string of `/Contents`.

use std::io::Write as _;

use lopdf::xref::{Xref, XrefEntry, XrefSection, XrefStreamBuilder, XrefType};
use lopdf::{Dictionary, Object, ObjectId, Stream, StringFormat, Writer};
use sha2::{Digest, Sha256};

use super::{SealError, SealOptions, pdf_err};
use crate::xref::PdfFile;

/// Placeholder numbers for `/ByteRange`: ten digits each, so any real offset fits in place.
const BYTE_RANGE_PLACEHOLDER: i64 = 9_999_999_999;

/// The incremental update with the placeholders: the bytes to append to the input.
///
/// Only the cross-reference data and the objects the update touches are read (see
/// `crate::xref`): the catalog, the page tree down to page 1, that page's `/Annots`, the
/// `/AcroForm` and its `/Fields`.
pub(super) fn signature_update(pdf: &[u8], opts: &SealOptions) -> Result<Vec<u8>, SealError> {
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
pub(super) fn patch_byte_range(
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
