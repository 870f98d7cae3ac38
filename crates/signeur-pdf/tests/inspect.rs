//! Upload inspection against real fixture files (made by `tests/fixtures/make.sh`).

use signeur_pdf::{InspectError, PdfInfo, inspect};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/", $name)).as_slice()
    };
}

const ONE_PAGE: &[u8] = fixture!("one-page.pdf");
const THREE_PAGES: &[u8] = fixture!("three-pages.pdf");
const OBJSTM: &[u8] = fixture!("objstm.pdf");
const HYBRID: &[u8] = fixture!("hybrid-xref.pdf");
const INCREMENTAL: &[u8] = fixture!("incremental.pdf");
const LEADING_JUNK: &[u8] = fixture!("leading-junk.pdf");
const APPROVAL: &[u8] = fixture!("approval-signed.pdf");
const CERTIFIED_FORMS: &[u8] = fixture!("certified-form-filling.pdf");
const CERTIFIED_LOCKED: &[u8] = fixture!("certified-no-changes.pdf");

fn accepted(bytes: &[u8]) -> PdfInfo {
    match inspect(bytes) {
        Ok(info) => info,
        Err(err) => panic!("expected the file to be accepted, got {err:?}"),
    }
}

fn refused(bytes: &[u8]) -> InspectError {
    match inspect(bytes) {
        Ok(info) => panic!("expected the file to be refused, got {info:?}"),
        Err(err) => err,
    }
}

fn unreadable_message(bytes: &[u8]) -> String {
    match refused(bytes) {
        InspectError::Unreadable(message) => message,
        other => panic!("expected Unreadable, got {other:?}"),
    }
}

#[test]
fn good_files_are_accepted_with_their_page_count() {
    let cases: [(&str, &[u8], u32, &str); 9] = [
        ("one-page", ONE_PAGE, 1, "1.7"),
        ("three-pages", THREE_PAGES, 3, "1.7"),
        ("objstm", OBJSTM, 3, "1.7"),
        ("hybrid-xref", HYBRID, 2, "1.5"),
        ("incremental", INCREMENTAL, 2, "1.7"),
        ("leading-junk", LEADING_JUNK, 1, "1.7"),
        ("approval-signed", APPROVAL, 1, "1.7"),
        ("certified-form-filling", CERTIFIED_FORMS, 1, "1.7"),
        (
            "trailing whitespace",
            &[ONE_PAGE, b"\r\n\0\0  \n"].concat(),
            1,
            "1.7",
        ),
    ];
    for (name, bytes, pages, version) in cases {
        let info = accepted(bytes);
        assert_eq!(info.page_count, pages, "{name}");
        assert_eq!(info.pdf_version, version, "{name}");
    }
}

#[test]
fn object_stream_fixture_really_uses_an_xref_stream() {
    assert!(OBJSTM.windows(7).any(|w| w == b"/ObjStm"));
    assert!(OBJSTM.windows(5).any(|w| w == b"/XRef"));
    assert!(!OBJSTM.windows(8).any(|w| w == b"trailer\n"));
}

#[test]
fn hybrid_reference_file_is_read_through_its_xref_stream() {
    // Page 2 is only reachable through /XRefStm: two pages means the stream was merged.
    assert!(HYBRID.windows(8).any(|w| w == b"/XRefStm"));
    assert_eq!(accepted(HYBRID).page_count, 2);
}

#[test]
fn not_a_pdf() {
    for bytes in [
        b"".as_slice(),
        b"hello world",
        b"PK\x03\x04 a zip file %%EOF",
        b"%PDF",
        &[b' '; 2000],
    ] {
        let err = refused(bytes);
        assert_eq!(err, InspectError::NotAPdf);
        assert_eq!(err.code(), "not_a_pdf");
    }
    // The header is tolerated only within the first 1024 bytes.
    let late = [vec![b'X'; 1100].as_slice(), ONE_PAGE].concat();
    assert_eq!(refused(&late), InspectError::NotAPdf);
}

#[test]
fn encrypted_files_are_refused() {
    for bytes in [
        fixture!("encrypted-user-password.pdf"),
        fixture!("encrypted-owner-only.pdf"),
        fixture!("encrypted-rc4-owner-only.pdf"),
    ] {
        let err = refused(bytes);
        assert_eq!(err, InspectError::Encrypted);
        assert_eq!(err.code(), "pdf_encrypted");
    }
}

#[test]
fn certified_with_no_changes_allowed_is_refused() {
    let err = refused(CERTIFIED_LOCKED);
    assert_eq!(err, InspectError::CertifiedLocked);
    assert_eq!(err.code(), "pdf_certified_locked");
}

#[test]
fn truncated_file_is_unreadable() {
    let err = refused(fixture!("truncated.pdf"));
    assert_eq!(err.code(), "pdf_unreadable");
    assert!(err.to_string().contains("truncated"), "{err}");

    // A cut file with an %%EOF tacked on gets past the marker check; the parser must still
    // notice that its cross-reference table is gone rather than silently rebuild it.
    let cut = &THREE_PAGES[..THREE_PAGES.len() * 60 / 100];
    let message = unreadable_message(&[cut, b"\n%%EOF\n"].concat());
    assert!(message.contains("cross-reference"), "{message}");
}

#[test]
fn broken_xref_is_unreadable() {
    let message = unreadable_message(fixture!("broken-xref.pdf"));
    assert!(message.contains("cross-reference"), "{message}");
}

#[test]
fn missing_eof_is_unreadable() {
    let message = unreadable_message(fixture!("no-eof.pdf"));
    assert!(message.contains("%%EOF"), "{message}");
}

#[test]
fn file_cut_inside_a_later_update_is_unreadable() {
    // Cut after the first revision's %%EOF plus part of the second: it would otherwise load as
    // the first revision, which is not what was uploaded.
    let first_eof = INCREMENTAL
        .windows(5)
        .position(|w| w == b"%%EOF")
        .expect("fixture has two revisions")
        + 6;
    let message = unreadable_message(&INCREMENTAL[..first_eof + 40]);
    assert!(message.contains("after its last %%EOF"), "{message}");
}

#[test]
fn header_only_or_junk_after_header_is_unreadable() {
    assert_eq!(refused(b"%PDF-1.7\n%%EOF\n").code(), "pdf_unreadable");
    assert_eq!(
        refused(b"%PDF-1.7\nnot much here\n%%EOF").code(),
        "pdf_unreadable"
    );
}

#[test]
fn page_limit_is_enforced() {
    let pages = 2001;
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |pdf: &mut Vec<u8>, body: String| {
        offsets.push(pdf.len());
        let number = offsets.len();
        pdf.extend_from_slice(format!("{number} 0 obj\n{body}\nendobj\n").as_bytes());
    };
    object(&mut pdf, "<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", i + 3)).collect();
    object(
        &mut pdf,
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            kids.join(" ")
        ),
    );
    for _ in 0..pages {
        object(
            &mut pdf,
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".into(),
        );
    }
    let xref = pdf.len();
    let size = offsets.len() + 1;
    pdf.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f \n").as_bytes());
    for offset in &offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    let message = unreadable_message(&pdf);
    assert!(message.contains("more than 2000 pages"), "{message}");
}

#[test]
fn codes_are_stable() {
    assert_eq!(InspectError::NotAPdf.code(), "not_a_pdf");
    assert_eq!(
        InspectError::Unreadable(String::new()).code(),
        "pdf_unreadable"
    );
    assert_eq!(InspectError::Encrypted.code(), "pdf_encrypted");
    assert_eq!(InspectError::CertifiedLocked.code(), "pdf_certified_locked");
}

/// Where each revision of `bytes` ends: just past every `%%EOF` and the whitespace after it.
fn revision_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    for (at, _) in bytes.windows(5).enumerate().filter(|(_, w)| *w == b"%%EOF") {
        let mut end = at + 5;
        ends.push(end);
        while end < bytes.len() && b"\r\n ".contains(&bytes[end]) {
            end += 1;
            ends.push(end);
        }
    }
    ends
}

#[test]
fn every_truncation_is_refused_without_panicking() {
    for (name, good) in [
        ("one-page", ONE_PAGE),
        ("objstm", OBJSTM),
        ("hybrid-xref", HYBRID),
        ("incremental", INCREMENTAL),
        ("certified-form-filling", CERTIFIED_FORMS),
    ] {
        let complete = revision_ends(good);
        for len in 0..good.len() {
            let result = inspect(&good[..len]);
            // Only a cut exactly at the end of an earlier revision is a complete PDF.
            if !complete.contains(&len) {
                assert!(
                    result.is_err(),
                    "{name} cut at {len} was accepted: {result:?}"
                );
            }
        }
    }
}

#[test]
fn byte_flips_never_panic() {
    let mut seed: u64 = 0x5eed_5167_2e0f_0001;
    let mut next = move || {
        // xorshift64: deterministic, no dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for good in [ONE_PAGE, OBJSTM, HYBRID, INCREMENTAL, CERTIFIED_LOCKED] {
        // Every position, with a fixed set of replacement bytes.
        for at in 0..good.len() {
            for replacement in [b'0', b'9', b' ', b'<', b'/', 0x00, 0xff] {
                let mut bytes = good.to_vec();
                bytes[at] = replacement;
                let _ = inspect(&bytes);
            }
        }
        // Random multi-byte corruptions.
        for _ in 0..2000 {
            let mut bytes = good.to_vec();
            for _ in 0..1 + next() % 8 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            let _ = inspect(&bytes);
        }
    }
}
