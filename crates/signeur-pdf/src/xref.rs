//! Partial reading of a PDF file for the seal: the cross-reference data and the few objects an
//! incremental update touches, never the whole document.
//!
//! [`PdfFile::open`] reads `startxref`, then each cross-reference section of the chain — classic
//! tables, cross-reference streams, the `/XRefStm` stream of a hybrid-reference file — following
//! `/Prev` through earlier incremental updates, newest first, so the newest entry for an object
//! wins. [`PdfFile::get`] then loads one object where its entry points: at an offset, or inside
//! an object stream (decoded once and kept).
//!
//! lopdf does the parsing proper: the objects themselves (through [`ObjectStream`], whose parser
//! is lopdf's only public one for direct objects), the decoding of streams and of cross-reference
//! streams ([`decode_xref_stream`]). What is written here is the small part lopdf keeps private:
//! finding where an indirect object's body, a `trailer` dictionary or a classic table ends, with
//! a tokenizer that knows strings, comments, names and nesting ([`next_item`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::{find, rfind};
use lopdf::xref::{Xref, XrefEntry, XrefType, decode_xref_stream_with_limit};
use lopdf::{Dictionary, Object, ObjectId, ObjectStream, Stream};

/// Largest size, in bytes, that an object stream or a cross-reference stream may decode to.
const MAX_DECODED_STREAM: usize = 32 * 1024 * 1024;
/// Most cross-reference sections followed through `/Prev`.
const MAX_SECTIONS: usize = 4096;
/// Deepest nesting of arrays and dictionaries the tokenizer follows.
const MAX_NESTING: usize = 100;
/// Deepest chain of loads that one load may cause (an indirect `/Length`, an object stream).
const MAX_LOAD_DEPTH: usize = 8;
/// Highest object count accepted (ISO 32000-1, C.2: object numbers up to 8 388 607).
const MAX_SIZE: u32 = 8_388_608;
/// How far from the end `startxref` and from the start `%PDF-` are looked for.
const MARKER_WINDOW: usize = 1024;

/// Trailer keys that describe only the cross-reference section they belong to (its stream
/// encoding, or the hybrid file's classic-table pointer): an incremental update's trailer,
/// which starts as a copy of the previous one, must drop them.
pub(crate) const XREF_SECTION_KEYS: [&[u8]; 6] = [
    b"XRefStm",
    b"DecodeParms",
    b"Filter",
    b"Length",
    b"Index",
    b"W",
];

/// Why the file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadError(pub String);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError(msg.into()))
}

/// The cross-reference data of a file, and the objects loaded from it so far.
pub(crate) struct PdfFile<'a> {
    buf: &'a [u8],
    /// Where offset 0 lies: 0, or the `%PDF-` header after leading junk when the file's offsets
    /// count from there.
    shift: usize,
    xref: Xref,
    /// The newest trailer (for a cross-reference stream, its dictionary).
    pub trailer: Dictionary,
    /// The offset of the newest cross-reference section, as written (`startxref`).
    pub startxref: usize,
    /// The kind of the newest cross-reference section.
    pub kind: XrefType,
    object_streams: RefCell<HashMap<u32, Rc<ObjectStream>>>,
}

impl<'a> PdfFile<'a> {
    /// Reads the cross-reference chain of `buf`.
    pub fn open(buf: &'a [u8]) -> Result<Self, ReadError> {
        let startxref = find_startxref(buf)?;
        let header = buf
            .get(..MARKER_WINDOW.min(buf.len()))
            .and_then(|head| find(head, b"%PDF-"))
            .unwrap_or(0);
        let mut file = PdfFile {
            buf,
            shift: 0,
            xref: Xref::new(0, XrefType::CrossReferenceTable),
            trailer: Dictionary::new(),
            startxref,
            kind: XrefType::CrossReferenceTable,
            object_streams: RefCell::new(HashMap::new()),
        };
        // Offsets count from the start of the file; after leading junk some writers count them
        // from the header instead, as lopdf reads them.
        let newest = match file.read_section(startxref) {
            Ok(section) => section,
            Err(e) if header > 0 => {
                file.shift = header;
                file.read_section(startxref).map_err(|_| e)?
            }
            Err(e) => return Err(e),
        };
        let (mut xref, trailer) = newest;
        file.kind = xref.cross_reference_type;
        let mut seen = HashSet::from([startxref]);
        file.hybrid(&mut xref, &trailer)?;
        let mut prev = offset_entry(&trailer, b"Prev")?;
        file.xref = xref;
        file.trailer = trailer;
        while let Some(offset) = prev {
            if !seen.insert(offset) || seen.len() > MAX_SECTIONS {
                return err("the cross-reference sections form a loop");
            }
            let (mut xref, trailer) = file.read_section(offset)?;
            file.hybrid(&mut xref, &trailer)?;
            file.xref.merge(xref);
            prev = offset_entry(&trailer, b"Prev")?;
        }
        file.xref.size = file.xref.size.max(file.xref.max_id().saturating_add(1));
        if let Ok(size) = file.trailer.get(b"Size").and_then(Object::as_i64) {
            let size = u32::try_from(size).map_err(|_| ReadError("bad /Size".into()))?;
            file.xref.size = file.xref.size.max(size);
        }
        if file.xref.size > MAX_SIZE {
            return err(format!("more than {MAX_SIZE} objects"));
        }
        Ok(file)
    }

    /// Adds the entries of a hybrid-reference section's `/XRefStm` stream to `xref`.
    fn hybrid(&self, xref: &mut Xref, trailer: &Dictionary) -> Result<(), ReadError> {
        if let Some(offset) = offset_entry(trailer, b"XRefStm")? {
            let (stream_xref, _) = self.read_section(offset)?;
            xref.merge_hybrid(stream_xref);
        }
        Ok(())
    }

    /// Where file offset 0 lies in the input: 0, or the header after leading junk.
    pub fn offset_origin(&self) -> usize {
        self.shift
    }

    /// The next free object number: one past the highest in use or reserved by `/Size`.
    pub fn size(&self) -> u32 {
        self.xref.size
    }

    /// The generation an object has in the file (0 inside an object stream), if it is in use.
    pub fn generation(&self, id: u32) -> Option<u16> {
        match self.xref.get(id)? {
            XrefEntry::Normal { generation, .. } => Some(*generation),
            XrefEntry::Compressed { .. } => Some(0),
            XrefEntry::Free | XrefEntry::UnusableFree => None,
        }
    }

    /// Loads object `id` (the generation of the reference is not checked).
    pub fn get(&self, id: ObjectId) -> Result<Object, ReadError> {
        self.get_at(id.0, 0)
    }

    /// `object` itself, or what it refers to.
    pub fn resolve(&self, object: &Object) -> Result<Object, ReadError> {
        match object {
            Object::Reference(id) => self.get(*id),
            other => Ok(other.clone()),
        }
    }

    fn get_at(&self, id: u32, depth: usize) -> Result<Object, ReadError> {
        if depth > MAX_LOAD_DEPTH {
            return err(format!("object {id}: references nest too deep"));
        }
        match self.xref.get(id) {
            Some(XrefEntry::Normal { offset, generation }) => {
                self.read_object(*offset as usize, Some((id, *generation)), depth)
            }
            Some(XrefEntry::Compressed { container, .. }) => {
                let container = *container;
                let cached = self.object_streams.borrow().get(&container).cloned();
                let stream = match cached {
                    Some(stream) => stream,
                    None => {
                        let object = self.get_at(container, depth + 1)?;
                        let Object::Stream(stream) = object else {
                            return err(format!("object stream {container} is not a stream"));
                        };
                        let decoded =
                            ObjectStream::new_with_limit(&stream, Some(MAX_DECODED_STREAM))
                                .map_err(|e| {
                                    ReadError(format!("object stream {container}: {e}"))
                                })?;
                        let decoded = Rc::new(decoded);
                        self.object_streams
                            .borrow_mut()
                            .insert(container, decoded.clone());
                        decoded
                    }
                };
                stream.objects.get(&(id, 0)).cloned().ok_or_else(|| {
                    ReadError(format!("object {id} is not in object stream {container}"))
                })
            }
            _ => err(format!("object {id} is not in the file")),
        }
    }

    /// The absolute position of file offset `offset`.
    fn at(&self, offset: usize) -> Result<usize, ReadError> {
        let pos = offset
            .checked_add(self.shift)
            .filter(|&p| p < self.buf.len())
            .ok_or_else(|| ReadError(format!("offset {offset} lies outside the file")))?;
        Ok(pos)
    }

    /// The indirect object at `offset`; its number and generation must be `expect` when given.
    fn read_object(
        &self,
        offset: usize,
        expect: Option<ObjectId>,
        depth: usize,
    ) -> Result<Object, ReadError> {
        let buf = self.buf;
        let pos = self.at(offset)?;
        let (number, pos) = uint(buf, pos)?;
        let (generation, pos) = uint(buf, pos)?;
        let (start, pos) = next_item(buf, pos)?;
        if &buf[start..pos] != b"obj" {
            return err(format!("no object at offset {offset}"));
        }
        if let Some((id, gen_)) = expect
            && (number != u64::from(id) || generation != u64::from(gen_))
        {
            return err(format!(
                "offset {offset} holds object {number} {generation}, not {id} {gen_}"
            ));
        }
        let body_start = pos;
        let mut pos = pos;
        let keyword = loop {
            let (start, end) = next_item(buf, pos)?;
            match &buf[start..end] {
                b"endobj" | b"stream" => break (start, end),
                b"obj" => return err(format!("object at offset {offset} has no endobj")),
                _ => pos = end,
            }
        };
        let object = parse_direct(&buf[body_start..keyword.0])?;
        if &buf[keyword.0..keyword.1] == b"endobj" {
            return Ok(object);
        }
        let Object::Dictionary(dict) = object else {
            return err(format!("the stream at offset {offset} has no dictionary"));
        };
        let length = match dict.get(b"Length") {
            Ok(Object::Integer(n)) => *n,
            Ok(Object::Reference(id)) => match self.get_at(id.0, depth + 1)? {
                Object::Integer(n) => n,
                _ => return err(format!("the stream at offset {offset} has a bad /Length")),
            },
            _ => return err(format!("the stream at offset {offset} has no /Length")),
        };
        // `stream` is followed by CR LF or LF (a lone CR is tolerated).
        let mut data = keyword.1;
        if buf.get(data) == Some(&b'\r') {
            data += 1;
        }
        if buf.get(data) == Some(&b'\n') {
            data += 1;
        }
        let end = usize::try_from(length)
            .ok()
            .and_then(|n| data.checked_add(n))
            .filter(|&end| end <= buf.len())
            .ok_or_else(|| ReadError(format!("the stream at offset {offset} overruns the file")))?;
        let (kw_start, kw_end) = next_item(buf, end)?;
        if &buf[kw_start..kw_end] != b"endstream" {
            return err(format!("the stream at offset {offset} has a wrong /Length"));
        }
        Ok(Object::Stream(Stream::new(dict, buf[data..end].to_vec())))
    }

    /// The cross-reference section at `offset`: a classic table and its trailer, or a
    /// cross-reference stream and its dictionary.
    fn read_section(&self, offset: usize) -> Result<(Xref, Dictionary), ReadError> {
        let buf = self.buf;
        let pos = skip_space(buf, self.at(offset)?);
        if buf[pos..].starts_with(b"xref") {
            return read_table(buf, pos + 4);
        }
        let Object::Stream(stream) = self.read_object(offset, None, 0)? else {
            return err(format!("no cross-reference section at offset {offset}"));
        };
        if stream.dict.get(b"Type").and_then(Object::as_name).ok() != Some(b"XRef".as_slice()) {
            return err(format!("no cross-reference section at offset {offset}"));
        }
        decode_xref_stream_with_limit(stream, Some(MAX_DECODED_STREAM))
            .map_err(|e| ReadError(format!("cross-reference stream at offset {offset}: {e}")))
    }
}

/// An offset-valued trailer entry (`/Prev`, `/XRefStm`), if present.
fn offset_entry(trailer: &Dictionary, key: &[u8]) -> Result<Option<usize>, ReadError> {
    match trailer.get(key) {
        Err(_) | Ok(Object::Null) => Ok(None),
        Ok(Object::Integer(n)) => usize::try_from(*n)
            .map(Some)
            .map_err(|_| ReadError(format!("bad /{}", String::from_utf8_lossy(key)))),
        Ok(_) => err(format!("bad /{}", String::from_utf8_lossy(key))),
    }
}

/// The offset after the last `startxref` near the end of the file.
fn find_startxref(buf: &[u8]) -> Result<usize, ReadError> {
    let from = buf.len().saturating_sub(MARKER_WINDOW);
    let at = rfind(&buf[from..], b"startxref")
        .map(|i| from + i + b"startxref".len())
        .ok_or_else(|| ReadError("no startxref".into()))?;
    let (offset, _) = uint(buf, at)?;
    usize::try_from(offset).map_err(|_| ReadError("bad startxref".into()))
}

/// A classic table from just after `xref` through its trailer dictionary.
fn read_table(buf: &[u8], mut pos: usize) -> Result<(Xref, Dictionary), ReadError> {
    let mut xref = Xref::new(0, XrefType::CrossReferenceTable);
    loop {
        pos = skip_space(buf, pos);
        if buf[pos..].starts_with(b"trailer") {
            pos += b"trailer".len();
            break;
        }
        let (first, next) = uint(buf, pos)?;
        let (count, next) = uint(buf, next)?;
        pos = next;
        for i in 0..count {
            let id = first
                .checked_add(i)
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| ReadError("bad cross-reference subsection".into()))?;
            let (offset, next) = uint(buf, pos)?;
            let (generation, next) = uint(buf, next)?;
            let (start, next) = next_item(buf, next)?;
            pos = next;
            let entry = match &buf[start..next] {
                b"n" if offset > 0 => XrefEntry::Normal {
                    offset: u32::try_from(offset)
                        .map_err(|_| ReadError("bad cross-reference offset".into()))?,
                    generation: u16::try_from(generation)
                        .map_err(|_| ReadError("bad cross-reference generation".into()))?,
                },
                b"n" | b"f" => XrefEntry::Free,
                _ => return err("bad cross-reference entry"),
            };
            if id > 0 {
                xref.insert(id, entry);
            }
        }
    }
    let (start, end) = next_item(buf, pos)?;
    match parse_direct(&buf[start..end])? {
        Object::Dictionary(trailer) => {
            if let Ok(size) = trailer.get(b"Size").and_then(Object::as_i64) {
                xref.size = xref.size.max(u32::try_from(size).unwrap_or(0));
            }
            Ok((xref, trailer))
        }
        _ => err("the trailer is not a dictionary"),
    }
}

/// Parses one direct object (a dictionary, an array, a string, …) with lopdf's parser, by
/// making it the only member of an object stream.
pub(crate) fn parse_direct(bytes: &[u8]) -> Result<Object, ReadError> {
    const HEADER: &[u8] = b"1 0\n";
    let mut content = Vec::with_capacity(HEADER.len() + bytes.len());
    content.extend_from_slice(HEADER);
    content.extend_from_slice(bytes);
    let mut dict = Dictionary::new();
    dict.set("N", Object::Integer(1));
    dict.set("First", Object::Integer(HEADER.len() as i64));
    let mut parsed = ObjectStream::new_with_limit(&Stream::new(dict, content), None)
        .map_err(|e| ReadError(format!("unreadable object: {e}")))?;
    parsed
        .objects
        .remove(&(1, 0))
        .ok_or_else(|| ReadError("unreadable object".into()))
}

// ------------------------------------------------------------------------------------------
// Tokenizer: where things end
// ------------------------------------------------------------------------------------------

fn is_space(b: u8) -> bool {
    matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// Skips white space and comments from `pos`.
pub(crate) fn skip_space(buf: &[u8], mut pos: usize) -> usize {
    while let Some(&b) = buf.get(pos) {
        if is_space(b) {
            pos += 1;
        } else if b == b'%' {
            while buf.get(pos).is_some_and(|&b| b != b'\r' && b != b'\n') {
                pos += 1;
            }
        } else {
            break;
        }
    }
    pos
}

/// The next item after white space from `pos`: a whole dictionary, array or string, a name, or
/// one other token (a number, a keyword). Returns where it starts and ends.
pub(crate) fn next_item(buf: &[u8], pos: usize) -> Result<(usize, usize), ReadError> {
    let start = skip_space(buf, pos);
    let end = item_end(buf, start, 0)?;
    Ok((start, end))
}

/// One past the end of the item that starts at `pos`.
fn item_end(buf: &[u8], pos: usize, depth: usize) -> Result<usize, ReadError> {
    if depth > MAX_NESTING {
        return err("objects nest too deep");
    }
    let Some(&first) = buf.get(pos) else {
        return err("unexpected end of file");
    };
    match first {
        b'<' if buf.get(pos + 1) == Some(&b'<') => {
            let mut pos = pos + 2;
            loop {
                pos = skip_space(buf, pos);
                if buf[pos..].starts_with(b">>") {
                    return Ok(pos + 2);
                }
                pos = item_end(buf, pos, depth + 1)?;
            }
        }
        b'[' => {
            let mut pos = pos + 1;
            loop {
                pos = skip_space(buf, pos);
                if buf.get(pos) == Some(&b']') {
                    return Ok(pos + 1);
                }
                pos = item_end(buf, pos, depth + 1)?;
            }
        }
        b'<' => match buf[pos..].iter().position(|&b| b == b'>') {
            Some(n) => Ok(pos + n + 1),
            None => err("unterminated hexadecimal string"),
        },
        b'(' => {
            let mut open = 0usize;
            let mut i = pos;
            while let Some(&b) = buf.get(i) {
                match b {
                    b'\\' => i += 1,
                    b'(' => open += 1,
                    b')' => {
                        open -= 1;
                        if open == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            err("unterminated string")
        }
        b'/' => Ok(token_end(buf, pos + 1)),
        b'{' | b'}' => Ok(pos + 1),
        b')' | b'>' | b']' => err(format!("unexpected '{}'", first as char)),
        _ => Ok(token_end(buf, pos)),
    }
}

/// One past the last regular character from `pos`.
fn token_end(buf: &[u8], pos: usize) -> usize {
    pos + buf[pos.min(buf.len())..]
        .iter()
        .position(|&b| is_space(b) || is_delimiter(b))
        .unwrap_or(buf.len() - pos.min(buf.len()))
}

/// A non-negative integer token after white space from `pos`, and where it ends.
fn uint(buf: &[u8], pos: usize) -> Result<(u64, usize), ReadError> {
    let (start, end) = next_item(buf, pos)?;
    let token = &buf[start..end];
    if token.is_empty() || token.len() > 19 || !token.iter().all(u8::is_ascii_digit) {
        return err(format!("expected a number at offset {start}"));
    }
    let value = token
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Ok((value, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_end_where_they_should() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"<< /A (x\\)y) /B [1 2 (]) <</C>>] >> rest",
                b"<< /A (x\\)y) /B [1 2 (]) <</C>>] >>",
            ),
            (b"(a (b) \\) c) rest", b"(a (b) \\) c)"),
            (b"<414243> rest", b"<414243>"),
            (b"/Name/Other", b"/Name"),
            (b"  % comment >>\n 123 0 R", b"123"),
            (b"[1 % ]\n 2] x", b"[1 % ]\n 2]"),
            (b"endobj", b"endobj"),
        ];
        for (input, item) in cases {
            let (start, end) = next_item(input, 0).unwrap();
            assert_eq!(
                &input[start..end],
                *item,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        for bad in [&b"<< /A 1"[..], b"(open", b"<abc", b"", b")"] {
            assert!(
                next_item(bad, 0).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = vec![b'['; 1000];
        assert!(next_item(&deep, 0).is_err());
    }

    #[test]
    fn parses_direct_objects_with_lopdf() {
        let dict = parse_direct(b"<< /Type /Catalog /Pages 2 0 R /A [1 (s) <41>] >>").unwrap();
        let dict = dict.as_dict().unwrap();
        assert_eq!(dict.get(b"Pages").unwrap(), &Object::Reference((2, 0)));
        assert!(parse_direct(b")").is_err());
    }

    #[test]
    fn reads_a_classic_table_with_sloppy_line_ends() {
        let table = b"xref\n0 3\n0000000000 65535 f\r\n0000000015 00000 n\n0000000099 00001 n \n\
                      5 1\n0000000200 00000 n \ntrailer\n<< /Size 6 /Root 1 0 R >>\nstartxref";
        let (xref, trailer) = read_table(table, 4).unwrap();
        assert!(matches!(
            xref.get(1),
            Some(XrefEntry::Normal {
                offset: 15,
                generation: 0
            })
        ));
        assert!(matches!(
            xref.get(2),
            Some(XrefEntry::Normal {
                offset: 99,
                generation: 1
            })
        ));
        assert!(matches!(
            xref.get(5),
            Some(XrefEntry::Normal { offset: 200, .. })
        ));
        assert!(xref.get(0).is_none());
        assert_eq!(trailer.get(b"Size").unwrap(), &Object::Integer(6));
        assert!(read_table(b"xref\n0 2\n0000000000 65535 f \ntrailer<<>>", 4).is_err());
    }

    #[test]
    fn refuses_garbage() {
        assert!(PdfFile::open(b"%PDF-1.7\nnothing here\n%%EOF\n").is_err());
        assert!(PdfFile::open(b"%PDF-1.7\nstartxref\n5\n%%EOF\n").is_err());
        // A /Size no object number can reach.
        let huge = b"%PDF-1.7\nxref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 4294967295 >>\n\
                     startxref\n9\n%%EOF\n";
        assert!(PdfFile::open(huge).is_err_and(|e| e.0.contains("objects")));
        // A /Prev loop.
        let mut pdf = b"%PDF-1.7\n".to_vec();
        let at = pdf.len();
        pdf.extend_from_slice(
            format!("xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 /Prev {at} >>\n")
                .as_bytes(),
        );
        pdf.extend_from_slice(format!("startxref\n{at}\n%%EOF\n").as_bytes());
        assert!(PdfFile::open(&pdf).is_err());
    }

    /// Every object lopdf's full load finds, the partial loader finds the same.
    fn same_as_lopdf(name: &str, pdf: &[u8]) {
        let doc = lopdf::Document::load_mem(pdf).unwrap();
        let file = PdfFile::open(pdf).unwrap();
        assert_eq!(
            file.trailer.get(b"Root").ok(),
            doc.trailer.get(b"Root").ok(),
            "{name}"
        );
        let mut checked = 0;
        for (&id, object) in &doc.objects {
            if let Object::Stream(stream) = object
                && stream.dict.has_type(b"XRef")
            {
                continue;
            }
            let ours = file
                .get(id)
                .unwrap_or_else(|e| panic!("{name}: {id:?}: {e}"));
            match (object, &ours) {
                (Object::Stream(theirs), Object::Stream(ours)) => {
                    assert_eq!(theirs.content, ours.content, "{name}: {id:?}");
                    let mut dict = ours.dict.clone();
                    dict.set("Length", theirs.dict.get(b"Length").unwrap().clone());
                    assert_eq!(theirs.dict, dict, "{name}: {id:?}");
                }
                _ => assert_eq!(object, &ours, "{name}: {id:?}"),
            }
            checked += 1;
        }
        assert!(checked > 3, "{name}: {checked} objects");
        assert!(file.size() as usize > doc.max_id as usize, "{name}");
    }

    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                &include_bytes!(concat!("../tests/fixtures/", $name))[..],
            )
        };
    }

    #[test]
    fn loads_what_lopdf_loads_from_every_fixture_kind() {
        for (name, pdf) in [
            fixture!("one-page.pdf"),
            fixture!("three-pages.pdf"),
            fixture!("objstm.pdf"),
            fixture!("hybrid-xref.pdf"),
            fixture!("incremental.pdf"),
            fixture!("approval-signed.pdf"),
            fixture!("certified-form-filling.pdf"),
            fixture!("leading-junk.pdf"),
        ] {
            same_as_lopdf(name, pdf);
        }
    }

    #[test]
    fn reads_each_kind_of_section() {
        let (_, classic) = fixture!("one-page.pdf");
        assert!(matches!(
            PdfFile::open(classic).unwrap().kind,
            XrefType::CrossReferenceTable
        ));
        let (_, stream) = fixture!("objstm.pdf");
        let file = PdfFile::open(stream).unwrap();
        assert!(matches!(file.kind, XrefType::CrossReferenceStream));
        assert!(
            file.xref.entries.values().any(XrefEntry::is_compressed),
            "objects in an object stream"
        );
        // Hybrid: object 7 is listed only by the /XRefStm stream.
        let (_, hybrid) = fixture!("hybrid-xref.pdf");
        let file = PdfFile::open(hybrid).unwrap();
        assert!(matches!(file.kind, XrefType::CrossReferenceTable));
        assert!(
            file.get((7, 0))
                .unwrap()
                .as_dict()
                .unwrap()
                .has_type(b"Page")
        );
        // Leading junk: offsets count from the header.
        let (_, junk) = fixture!("leading-junk.pdf");
        assert!(PdfFile::open(junk).unwrap().offset_origin() > 0);
    }
}
