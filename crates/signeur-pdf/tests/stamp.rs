//! The visible stamp: signature blocks and the certificate page as an incremental update,
//! checked by our own parsing and rendering and, when installed, by `qpdf --check`,
//! `pdftotext`, `pdfsig` and pyHanko (after sealing).

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{TimeZone, Utc};
use signeur_pdf::{
    RenderLimits, STAMP_BLOCK_SIZE, SealOptions, StampError, StampInput, StampPosition,
    StampSigner, render_page_png, seal, stamp, verify,
};

#[macro_use]
mod common;
use common::{
    earlier_signer_certs, has_program, missing, pades_check, pdfsig_check, pyhanko_validate,
    qpdf_check, test_key,
};

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A drawn signature: a dark wave on a transparent 300 × 100 canvas.
fn signature_png() -> Vec<u8> {
    let (w, h) = (300u32, 100u32);
    let mut data = vec![0u8; (w * h * 4) as usize];
    for x in 20..280 {
        let t = x as f32 / 260.0 * std::f32::consts::TAU * 1.5;
        let y = (50.0 + 28.0 * t.sin()) as u32;
        for dy in 0..3 {
            let at = (((y + dy) * w + x) * 4) as usize;
            data[at..at + 4].copy_from_slice(&[20, 30, 90, 255]);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    out
}

fn signer(id: &str, name: &str, email: &str) -> StampSigner {
    StampSigner {
        id: id.into(),
        name_as_signed: name.into(),
        representing: None,
        email: email.into(),
        signed_at: "2026-05-14 10:51:51 UTC".into(),
        opened_at: Some("2026-05-14 10:49:02 UTC".into()),
        ip_address: Some("203.0.113.7".into()),
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/124.0.0.0 Safari/537.36"
                .into(),
        ),
        verification: "Access code sent by email".into(),
        signature_png: None,
        position: None,
    }
}

/// Three signers in three scripts, one drawn signature, one representing a company.
fn sample() -> StampInput {
    let mut anna = signer(
        "0196c1d2-7a1b-7c3e-9f00-0000000000a1",
        "Anna Äänekoski",
        "anna@example.fi",
    );
    anna.signature_png = Some(signature_png());
    anna.representing = Some("Łódź Logistics Sp. z o.o.".into());
    let mut eleni = signer(
        "0196c1d2-7a1b-7c3e-9f00-0000000000b2",
        "Ελένη Παπαδοπούλου",
        "eleni@example.gr",
    );
    eleni.verification = "Integrator link".into();
    eleni.signed_at = "2026-05-14 11:02:17 UTC".into();
    let mut yulia = signer(
        "0196c1d2-7a1b-7c3e-9f00-0000000000c3",
        "Юлия Ærø",
        "yulia@example.dk",
    );
    yulia.verification = "Embedded session".into();
    yulia.signed_at = "2026-05-14 11:15:40 UTC".into();
    yulia.ip_address = Some("2001:db8::42".into());
    StampInput {
        request_id: "0196c1d0-1111-7222-8333-444455556666".into(),
        title: "Service agreement between Äänekoski Oy and Łódź Logistics".into(),
        document_sha256: HASH.into(),
        created_at: "2026-05-14 09:30:00 UTC".into(),
        completed_at: "2026-05-14 11:15:40 UTC".into(),
        signers: vec![anna, eleni, yulia],
    }
}

fn page_count(pdf: &[u8]) -> u32 {
    signeur_pdf::inspect(pdf).unwrap().page_count
}

fn limits() -> RenderLimits {
    RenderLimits {
        max_pages: 2000,
        ..RenderLimits::default()
    }
}

/// Decoded RGB(A) pixels of a PNG: (width, height, channels, bytes).
fn pixels(png_bytes: &[u8]) -> (usize, usize, usize, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    (info.width as usize, info.height as usize, channels, buf)
}

/// Keeps a result in `$SIGNEUR_STAMP_KEEP`, when set, to look at.
fn keep(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("SIGNEUR_STAMP_KEEP") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn is_ink(px: &[u8]) -> bool {
    px[..3].iter().any(|&c| c < 200)
}

// ------------------------------------------------------------------------------------------
// Validators (skipped when missing, required with SIGNEUR_REQUIRE_VALIDATORS)
// ------------------------------------------------------------------------------------------

/// The text poppler extracts, or `None` when pdftotext is missing.
fn pdftotext(path: &Path, pages: Option<(u32, u32)>) -> Option<String> {
    if !has_program("pdftotext", "-v") {
        missing("pdftotext (poppler-utils)");
        return None;
    }
    let mut cmd = Command::new("pdftotext");
    if let Some((first, last)) = pages {
        cmd.args(["-f", &first.to_string(), "-l", &last.to_string()]);
    }
    let out = cmd.arg(path).arg("-").output().unwrap();
    assert!(out.status.success(), "pdftotext failed");
    Some(String::from_utf8(out.stdout).unwrap())
}

// ------------------------------------------------------------------------------------------
// Sealing
// ------------------------------------------------------------------------------------------

fn seal_options() -> SealOptions {
    let mut opts = SealOptions::new(Utc.with_ymd_and_hms(2026, 5, 14, 11, 16, 0).unwrap());
    opts.reason = Some("Sealed by Signeur".into());
    opts.name = Some("Signeur Test Seal".into());
    opts
}

// ------------------------------------------------------------------------------------------
// The checks every stamped file passes
// ------------------------------------------------------------------------------------------

/// Stamps `input` with [`sample`], checks the result and its sealed form; returns
/// (stamped, sealed).
fn stamp_and_check(name: &str, input: &[u8], hybrid: bool) -> (Vec<u8>, Vec<u8>) {
    let sample = sample();
    let stamped = stamp(input, &sample).unwrap();
    assert!(
        stamped.starts_with(input),
        "{name}: the input is not a prefix"
    );
    assert!(stamped.len() > input.len());

    // lopdf and the crate read it; one certificate page was added.
    let before = page_count(input);
    let after = page_count(&stamped);
    assert!(after > before, "{name}: certificate pages added");
    lopdf::Document::load_mem(&stamped).unwrap();

    // The stamped last page and the certificate page render.
    for index in [before - 1, after - 1] {
        let png = render_page_png(&stamped, index as usize, 400, &limits()).unwrap();
        let (_, _, channels, data) = pixels(&png);
        assert!(
            data.chunks(channels).any(is_ink),
            "{name}: page {} renders something",
            index + 1
        );
    }

    // The blocks cover nothing that was drawn on the last page: every dark pixel of the
    // original is unchanged.
    let original = pixels(&render_page_png(input, before as usize - 1, 400, &limits()).unwrap());
    let now = pixels(&render_page_png(&stamped, before as usize - 1, 400, &limits()).unwrap());
    assert_eq!((original.0, original.1), (now.0, now.1));
    let (mut kept, mut ink) = (0, 0);
    for (a, b) in original.3.chunks(original.2).zip(now.3.chunks(now.2)) {
        if is_ink(a) {
            ink += 1;
            kept += usize::from(a[..3] == b[..3]);
        }
    }
    assert!(
        ink > 0 && kept == ink,
        "{name}: {kept} of {ink} content pixels kept"
    );
    assert_ne!(original.3, now.3, "{name}: the blocks are on the last page");

    // Sealed after, the seal covers the stamp's revision and the whole file.
    let key = test_key();
    let sealed = seal(&stamped, &key.signer, &seal_options()).unwrap();
    assert!(sealed.starts_with(&stamped));
    let report = verify(&sealed).unwrap();
    assert!(report.seal_valid(), "{name}: {report:?}");
    let last = report.signatures.last().unwrap();
    assert!(last.covers_whole_file);
    assert!(last.byte_range[1] > stamped.len(), "the stamp is covered");
    assert_eq!(page_count(&sealed), after);

    let dir = key.dir.path();
    let path = dir.join(name);
    std::fs::write(&path, &sealed).unwrap();
    let stamped_path = dir.join(format!("stamped-{name}"));
    std::fs::write(&stamped_path, &stamped).unwrap();
    qpdf_check(&stamped_path);
    qpdf_check(&path);
    if let Some(text) = pdftotext(&path, None) {
        for needle in [
            "Anna Äänekoski",
            "Ελένη Παπαδοπούλου",
            "Юлия Ærø",
            "on behalf of Łódź Logistics",
            "Łódź Logistics Sp. z o.o.",
            HASH,
            "0196c1d2-7a1b-7c3e-9f00-0000000000a1",
            "0196c1d2-7a1b-7c3e-9f00-0000000000b2",
            "0196c1d2-7a1b-7c3e-9f00-0000000000c3",
            "Signed 2026-05-14 10:51:51 UTC",
            "Signature certificate",
            "Service agreement between Äänekoski Oy and Łódź Logistics",
            "anna@example.fi",
            "203.0.113.7",
            "2001:db8::42",
            "Access code sent by email",
            "Integrator link",
            "Embedded session",
            "Chrome/124.0.0.0",
        ] {
            assert!(
                text.contains(needle),
                "{name}: pdftotext lacks {needle:?}:\n{text}"
            );
        }
        // The names are on the stamped last page itself too.
        let last_page = pdftotext(&path, Some((before, before))).unwrap();
        for needle in ["Anna Äänekoski", "Ελένη Παπαδοπούλου", "Юлия Ærø"]
        {
            assert!(
                last_page.contains(needle),
                "{name}: {needle:?} on the last page"
            );
        }
    }
    pdfsig_check(&path);
    let mut trust = vec![key.cert_pem()];
    trust.extend(earlier_signer_certs(input, dir));
    let ours = last.field_name.clone().unwrap();
    pyhanko_validate(&path, &trust, hybrid, &ours, true);
    if hybrid {
        eprintln!("note: pades_check.py reads strictly and refuses hybrid files: skipped");
    } else {
        pades_check(&path, &trust, &ours, true);
    }
    keep(name, &sealed);
    (stamped, sealed)
}

#[test]
fn stamps_one_page() {
    stamp_and_check("one-page.pdf", fixture!("one-page.pdf"), false);
}

#[test]
fn stamps_three_pages() {
    stamp_and_check("three-pages.pdf", fixture!("three-pages.pdf"), false);
}

#[test]
fn stamps_object_streams() {
    stamp_and_check("objstm.pdf", fixture!("objstm.pdf"), false);
}

#[test]
fn stamps_incremental() {
    stamp_and_check("incremental.pdf", fixture!("incremental.pdf"), false);
}

#[test]
fn stamps_hybrid_xref() {
    stamp_and_check("hybrid-xref.pdf", fixture!("hybrid-xref.pdf"), true);
}

#[test]
fn stamps_approval_signed() {
    let input = fixture!("approval-signed.pdf");
    // pyHanko says of the earlier signature `INTACT:TRUSTED,EXTENDED_WITH_OTHER,
    // ILLEGAL_MODIFICATIONS` (a new page and new content came after it: no signature permits
    // that) and so exits non-zero; `pyhanko_validate` requires it intact and trusted, and ours
    // intact, trusted and untouched.
    let (_, sealed) = stamp_and_check("approval-signed.pdf", input, false);
    // Both signatures still verify; the earlier one covers the original only.
    let report = verify(&sealed).unwrap();
    assert_eq!(report.signatures.len(), 2);
    assert!(
        report
            .signatures
            .iter()
            .all(|s| s.digest_ok && s.signature_ok)
    );
    assert!(report.prefix_of_last_is_intact);
}

#[test]
fn stamps_a_rotated_page() {
    let input = fixture!("rotated.pdf");
    let (stamped, _) = stamp_and_check("rotated.pdf", input, false);
    // Shown landscape: the blocks are drawn upright, so the rendered block text reads left to
    // right; the certificate page is the shown size, unrotated.
    let doc = lopdf::Document::load_mem(&stamped).unwrap();
    let pages = doc.get_pages();
    let cert = doc.get_dictionary(pages[&2]).unwrap();
    assert_eq!(cert.get(b"Rotate").unwrap().as_i64().unwrap(), 0);
}

/// A page with a crop box away from the origin, `/Rotate 270` inherited from the page tree,
/// resources inherited too, and contents as an array.
fn awkward_pdf() -> Vec<u8> {
    use lopdf::{Dictionary, Object, Stream, dictionary};
    let mut doc = lopdf::Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let c1 = doc.add_object(Stream::new(
        Dictionary::new(),
        b"BT /F1 18 Tf 150 800 Td (Awkward page: crop box at 100 100) Tj ET".to_vec(),
    ));
    let c2 = doc.add_object(Stream::new(
        Dictionary::new(),
        b"0 0 1 rg 120 120 60 60 re f".to_vec(),
    ));
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id,
        "Contents" => vec![Object::Reference(c1), Object::Reference(c2)],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![Object::Reference(page)], "Count" => 1,
            "MediaBox" => vec![0.into(), 0.into(), 800.into(), 1000.into()],
            "CropBox" => vec![100.into(), 100.into(), 712.into(), 892.into()],
            "Rotate" => 270,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn stamps_a_cropped_page_with_inherited_rotation_and_resources() {
    let input = awkward_pdf();
    assert_eq!(page_count(&input), 1);
    let (stamped, _) = stamp_and_check("awkward.pdf", &input, false);
    let doc = lopdf::Document::load_mem(&stamped).unwrap();
    let pages = doc.get_pages();
    let page = doc.get_dictionary(pages[&1]).unwrap();
    let resources = page.get(b"Resources").unwrap().as_dict().unwrap();
    assert!(resources.get(b"Font").is_ok(), "inherited fonts kept");
    assert!(resources.get(b"XObject").is_ok());
    // The certificate page is the shown size of the last page (792 × 612, landscape).
    let cert = doc.get_dictionary(pages[&2]).unwrap();
    let media: Vec<f32> = cert
        .get(b"MediaBox")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_float().unwrap())
        .collect();
    assert_eq!(media, vec![0.0, 0.0, 792.0, 612.0]);
}

#[test]
fn same_input_same_bytes() {
    let input = fixture!("one-page.pdf");
    assert_eq!(
        stamp(input, &sample()).unwrap(),
        stamp(input, &sample()).unwrap()
    );
}

#[test]
fn explicit_positions() {
    let input = fixture!("three-pages.pdf");
    let mut request = sample();
    request.signers[0].position = Some(StampPosition {
        page: 2,
        x: 300.0,
        y: 400.0,
    });
    let stamped = stamp(input, &request).unwrap();
    assert_eq!(page_count(&stamped), 4);
    // Page 2 shows a block where asked: dark pixels inside (300, 400)–(500, 472), in a
    // render at 1 pixel per point.
    let (w, _, channels, data) = pixels(&render_page_png(&stamped, 1, 612, &limits()).unwrap());
    let ink_in = |x0: usize, y0: usize, x1: usize, y1: usize| {
        (y0..y1).any(|y| (x0..x1).any(|x| is_ink(&data[(y * w + x) * channels..])))
    };
    assert!(ink_in(302, 402, 498, 470));
    assert!(!ink_in(0, 300, 290, 390), "nothing else drawn on page 2");
    if let Some(text) = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("explicit.pdf");
        std::fs::write(&path, &stamped).unwrap();
        pdftotext(&path, Some((2, 2)))
    } {
        assert!(text.contains("Anna Äänekoski"), "{text}");
        assert!(!text.contains("Юлия"), "{text}");
    }

    for page in [0, 4] {
        request.signers[0].position = Some(StampPosition {
            page,
            x: 10.0,
            y: 10.0,
        });
        assert!(
            matches!(stamp(input, &request), Err(StampError::Input(_))),
            "page {page}"
        );
    }
    // A block that would stick out is moved inside the page, never refused (the request was
    // accepted before the page size was known): here to the bottom-right corner of page 1.
    for (x, y) in [(500.0, 750.0), (10_000.0, 10_000.0)] {
        request.signers[0].position = Some(StampPosition { page: 1, x, y });
        let stamped = stamp(input, &request).unwrap();
        // Page 1 is index 0; the block's 200 × 72 points end at the page's corner.
        let (w, h, channels, data) = pixels(&render_page_png(&stamped, 0, 612, &limits()).unwrap());
        let ink_in = |x0: usize, y0: usize, x1: usize, y1: usize| {
            (y0..y1).any(|y| (x0..x1).any(|x| is_ink(&data[(y * w + x) * channels..])))
        };
        assert!(
            ink_in(w - 60, h - 30, w - 1, h - 1),
            "block at the corner for ({x}, {y})"
        );
    }
    for (x, y) in [(-1.0, 10.0), (f32::NAN, 10.0)] {
        request.signers[0].position = Some(StampPosition { page: 1, x, y });
        assert!(stamp(input, &request).is_ok(), "({x}, {y}) moved inside");
    }
}

/// A page covered edge to edge: no room for the blocks there.
fn full_page_pdf() -> Vec<u8> {
    use lopdf::{Dictionary, Object, Stream, dictionary};
    let mut doc = lopdf::Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let content = doc.add_object(Stream::new(
        Dictionary::new(),
        b"0.85 0.9 1 rg 0 0 612 792 re f".to_vec(),
    ));
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content,
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![Object::Reference(page)], "Count" => 1,
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn without_room_the_blocks_go_to_the_certificate_page() {
    let input = full_page_pdf();
    let stamped = stamp(&input, &sample()).unwrap();
    assert!(page_count(&stamped) >= 2);
    // The last page is untouched.
    assert_eq!(
        render_page_png(&input, 0, 300, &limits()).unwrap(),
        render_page_png(&stamped, 0, 300, &limits()).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.pdf");
    std::fs::write(&path, &stamped).unwrap();
    keep("full.pdf", &stamped);
    qpdf_check(&path);
    if let Some(text) = pdftotext(&path, Some((2, 2))) {
        assert!(text.contains("no free space"), "{text}");
        assert!(text.contains("Signer ID 0196c1d2-7a1b-7c3e-9f00-0000000000c3"));
    }
}

#[test]
fn a_right_to_left_name_is_extracted_in_reading_order() {
    let input = fixture!("one-page.pdf");
    let mut request = sample();
    request.signers.truncate(1);
    request.signers[0].name_as_signed = "דנה כהן".into();
    request.signers[0].representing = Some("شركة النور".into());
    let stamped = stamp(input, &request).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rtl.pdf");
    std::fs::write(&path, &stamped).unwrap();
    qpdf_check(&path);
    if let Some(text) = pdftotext(&path, None) {
        assert!(text.contains("דנה כהן"), "Hebrew in reading order:\n{text}");
        assert!(
            text.contains("شركة النور"),
            "Arabic in reading order:\n{text}"
        );
    }
}

#[test]
fn a_name_in_a_script_the_font_lacks_is_drawn_and_extracted() {
    let input = fixture!("one-page.pdf");
    let mut request = sample();
    request.signers.truncate(1);
    request.signers[0].name_as_signed = "山田太郎".into();
    request.signers[0].signature_png = None;
    request.signers[0].representing = None;
    let cjk = stamp(input, &request).unwrap();
    request.signers[0].name_as_signed = String::new();
    let empty = stamp(input, &request).unwrap();
    // The block's name line shows pixels with the CJK name and not without.
    let a = render_page_png(&cjk, 0, 612, &limits()).unwrap();
    let b = render_page_png(&empty, 0, 612, &limits()).unwrap();
    let (w, h, channels, a) = pixels(&a);
    let (_, _, _, b) = pixels(&b);
    let differ = (0..w * h)
        .filter(|i| a[i * channels..i * channels + 3] != b[i * channels..i * channels + 3])
        .count();
    assert!(differ > 50, "the CJK name shows ({differ} pixels differ)");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cjk.pdf");
    std::fs::write(&path, &cjk).unwrap();
    keep("cjk.pdf", &cjk);
    qpdf_check(&path);
    if let Some(text) = pdftotext(&path, None) {
        assert!(
            text.contains("山田太郎"),
            "extracted through /ActualText:\n{text}"
        );
    }
}

#[test]
fn hostile_inputs_do_not_panic() {
    let input = fixture!("one-page.pdf");
    let mut request = sample();
    let long = "Wolfeschlegelsteinhausenbergerdorff ".repeat(14) + &"x".repeat(500);
    request.title = "T".repeat(5000) + " end";
    request.document_sha256 = "not a hash at all ".repeat(30);
    request.signers[0].name_as_signed = long.clone();
    request.signers[0].representing = Some("\n\t\u{0}\u{202e}".into());
    request.signers[0].signature_png = Some(b"\x89PNG\r\n\x1a\ncorrupt".to_vec());
    request.signers[1] = StampSigner::default();
    request.signers[1].signature_png = Some(Vec::new());
    // A 10 001-pixel-wide image is refused (drawn without it), not decoded.
    let mut huge = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut huge, 10_001, 1);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&vec![0; 10_001]).unwrap();
    }
    request.signers[2].signature_png = Some(huge);
    request.signers[2].user_agent = Some("UA ".repeat(3000));
    request.signers[2].name_as_signed = "😀 \u{20000} مرحبا".into();
    let stamped = stamp(input, &request).unwrap();
    assert!(stamped.starts_with(input));
    let pages = page_count(&stamped);
    assert!(pages >= 3, "a long certificate takes several pages");
    for index in 0..pages as usize {
        render_page_png(&stamped, index, 300, &limits()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.pdf");
    std::fs::write(&path, &stamped).unwrap();
    keep("hostile.pdf", &stamped);
    qpdf_check(&path);
    if let Some(text) = pdftotext(&path, None) {
        let flat: String = text.split_whitespace().collect();
        let name: String = long.split_whitespace().collect();
        assert!(
            flat.contains(&name),
            "the whole long name is on the certificate"
        );
    }

    // Many signers: several certificate pages, blocks in a grid.
    let mut many = sample();
    many.signers = (0..20)
        .map(|i| {
            signer(
                &format!("id-{i:02}"),
                &format!("Signer Number {i:02}"),
                "s@example.com",
            )
        })
        .collect();
    let stamped = stamp(input, &many).unwrap();
    let path = dir.path().join("many.pdf");
    std::fs::write(&path, &stamped).unwrap();
    keep("many.pdf", &stamped);
    qpdf_check(&path);
    if let Some(text) = pdftotext(&path, None) {
        for i in 0..20 {
            assert!(text.contains(&format!("Signer Number {i:02}")));
        }
    }
}

#[test]
fn refuses_what_it_cannot_stamp() {
    assert!(matches!(
        stamp(b"not a pdf", &sample()),
        Err(StampError::Unreadable(_))
    ));
    assert!(matches!(
        stamp(fixture!("encrypted-owner-only.pdf"), &sample()),
        Err(StampError::Unreadable(_))
    ));
    assert!(matches!(
        stamp(fixture!("truncated.pdf"), &sample()),
        Err(StampError::Unreadable(_))
    ));
    let mut nobody = sample();
    nobody.signers.clear();
    assert!(matches!(
        stamp(fixture!("one-page.pdf"), &nobody),
        Err(StampError::Input(_))
    ));
    let _ = STAMP_BLOCK_SIZE;
}

/// Writes the sample, stamped and sealed, for `docs/evidence/make.sh` when
/// `SIGNEUR_EVIDENCE_DIR` is set.
#[test]
fn evidence_sample() {
    let Some(dir) = std::env::var_os("SIGNEUR_EVIDENCE_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let input = fixture!("one-page.pdf");
    let stamped = stamp(input, &sample()).unwrap();
    let key = test_key();
    let sealed = seal(&stamped, &key.signer, &seal_options()).unwrap();
    assert!(verify(&sealed).unwrap().seal_valid());
    std::fs::write(dir.join("stamped-sealed.pdf"), sealed).unwrap();
    std::fs::copy(key.cert_pem(), dir.join("seal-cert.pem")).unwrap();
}
