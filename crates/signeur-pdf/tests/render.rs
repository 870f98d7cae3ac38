//! Page previews against the fixture files (made by `tests/fixtures/make.sh`).

use std::time::{Duration, Instant};

use signeur_pdf::{RenderError, RenderLimits, inspect, render_page_png};

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("fixtures/", $name)).as_slice(),
        )
    };
}

const ONE_PAGE: &[u8] = include_bytes!("fixtures/one-page.pdf");
const THREE_PAGES: &[u8] = include_bytes!("fixtures/three-pages.pdf");
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

const FIXTURES: [(&str, &[u8]); 15] = [
    fixture!("one-page.pdf"),
    fixture!("three-pages.pdf"),
    fixture!("objstm.pdf"),
    fixture!("hybrid-xref.pdf"),
    fixture!("incremental.pdf"),
    fixture!("leading-junk.pdf"),
    fixture!("approval-signed.pdf"),
    fixture!("certified-form-filling.pdf"),
    fixture!("certified-no-changes.pdf"),
    fixture!("broken-xref.pdf"),
    fixture!("no-eof.pdf"),
    fixture!("truncated.pdf"),
    fixture!("encrypted-owner-only.pdf"),
    fixture!("encrypted-rc4-owner-only.pdf"),
    fixture!("encrypted-user-password.pdf"),
];

/// A decoded image: width, height and 8-bit RGB(A) or grey samples.
struct Decoded {
    width: u32,
    height: u32,
    channels: usize,
    samples: Vec<u8>,
}

fn decode(png_bytes: &[u8]) -> Decoded {
    assert!(png_bytes.starts_with(PNG_SIGNATURE), "no PNG signature");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut samples = vec![0; reader.output_buffer_size().expect("PNG buffer size")];
    let frame = reader.next_frame(&mut samples).expect("PNG frame");
    samples.truncate(frame.buffer_size());
    Decoded {
        width: frame.width,
        height: frame.height,
        channels: frame.color_type.samples(),
        samples,
    }
}

fn rendered(bytes: &[u8], index: usize, width: u32) -> Vec<u8> {
    match render_page_png(bytes, index, width, &RenderLimits::default()) {
        Ok(png) => png,
        Err(err) => panic!("expected page {index} to render, got {err:?}"),
    }
}

/// `bytes` with the one occurrence of `from` replaced by `to` (of the same length).
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|window| window == from)
        .expect("pattern present");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

/// Pixels whose colour channels are all below 100 (text is black on white).
fn dark_pixels(image: &Decoded) -> usize {
    image
        .samples
        .chunks_exact(image.channels)
        .filter(|pixel| pixel.iter().take(3).all(|&sample| sample < 100))
        .count()
}

#[test]
fn one_page_renders_to_a_png_of_the_requested_width_with_text() {
    let png = rendered(ONE_PAGE, 0, 800);
    assert!(png.starts_with(PNG_SIGNATURE));
    let image = decode(&png);
    assert_eq!(image.width, 800);
    // US Letter, 612 x 792 points.
    assert_eq!(image.height, (800.0_f64 * 792.0 / 612.0).round() as u32);
    let dark = dark_pixels(&image);
    let total = (image.width * image.height) as usize;
    assert!(dark > 100, "expected text, found {dark} dark pixels");
    assert!(
        dark < total / 10,
        "expected mostly white, found {dark} dark pixels"
    );
    // The background is white: the top-left corner is outside the text.
    assert!(image.samples[..3].iter().all(|&sample| sample == 255));
}

#[test]
fn width_is_clamped() {
    assert_eq!(decode(&rendered(ONE_PAGE, 0, 1)).width, 200);
    assert_eq!(decode(&rendered(ONE_PAGE, 0, 0)).width, 200);
    assert_eq!(decode(&rendered(ONE_PAGE, 0, u32::MAX)).width, 1600);
}

#[test]
fn every_page_of_every_accepted_fixture_renders() {
    let limits = RenderLimits::default();
    let mut accepted = 0;
    for (name, bytes) in FIXTURES {
        let Ok(info) = inspect(bytes) else {
            continue;
        };
        accepted += 1;
        // The renderer sees the same pages as `inspect` (e.g. the hybrid file's second page,
        // reachable only through its /XRefStm, and the page added by an incremental update).
        let page_count = info.page_count as usize;
        for index in 0..page_count {
            let png = match render_page_png(bytes, index, 400, &limits) {
                Ok(png) => png,
                Err(err) => panic!("{name}: expected page {index} to render, got {err:?}"),
            };
            let image = decode(&png);
            assert_eq!(image.width, 400, "{name} page {index}");
            assert!(dark_pixels(&image) > 0, "{name} page {index} is blank");
        }
        assert_eq!(
            render_page_png(bytes, page_count, 400, &limits),
            Err(RenderError::PageOutOfRange { page_count }),
            "{name}"
        );
    }
    assert_eq!(accepted, 8);
}

#[test]
fn every_page_of_a_multi_page_file_renders_then_out_of_range() {
    for index in 0..3 {
        let image = decode(&rendered(THREE_PAGES, index, 300));
        assert!(dark_pixels(&image) > 0, "page {index} is blank");
    }
    // Each page says which it is, so the pages differ.
    assert_ne!(rendered(THREE_PAGES, 0, 300), rendered(THREE_PAGES, 1, 300));
    let limits = RenderLimits::default();
    assert_eq!(
        render_page_png(THREE_PAGES, 3, 300, &limits),
        Err(RenderError::PageOutOfRange { page_count: 3 })
    );
    assert_eq!(
        render_page_png(ONE_PAGE, usize::MAX, 300, &limits),
        Err(RenderError::PageOutOfRange { page_count: 1 })
    );
}

#[test]
fn limits_are_enforced() {
    let few_pages = RenderLimits {
        max_pages: 2,
        ..RenderLimits::default()
    };
    assert_eq!(
        render_page_png(THREE_PAGES, 0, 300, &few_pages),
        Err(RenderError::TooManyPages { page_count: 3 })
    );
    let few_pixels = RenderLimits {
        max_pixels: 300 * 300,
        ..RenderLimits::default()
    };
    assert_eq!(
        render_page_png(ONE_PAGE, 0, 300, &few_pixels),
        Err(RenderError::TooLarge)
    );
}

#[test]
fn truncated_and_garbage_files_are_unreadable() {
    let limits = RenderLimits::default();
    let cases: [(&str, &[u8]); 8] = [
        ("empty", b""),
        ("header only", b"%PDF-1.7\n"),
        ("header and eof", b"%PDF-1.7\n%%EOF\n"),
        ("not a pdf", b"\x89PNG\r\n\x1a\n this is not a PDF at all"),
        (
            "truncated fixture",
            include_bytes!("fixtures/truncated.pdf"),
        ),
        ("no-eof fixture", include_bytes!("fixtures/no-eof.pdf")),
        ("first half", &ONE_PAGE[..ONE_PAGE.len() / 2]),
        ("last half", &ONE_PAGE[ONE_PAGE.len() / 2..]),
    ];
    for (name, bytes) in cases {
        assert_eq!(
            render_page_png(bytes, 0, 400, &limits),
            Err(RenderError::Unreadable),
            "{name}"
        );
    }
    // A page tree with no pages (same length, so the cross-reference offsets still hold).
    let no_pages = replace(
        ONE_PAGE,
        b"/Kids [4 0 R] /Count 1",
        b"/Kids [     ] /Count 0",
    );
    assert_eq!(
        render_page_png(&no_pages, 0, 400, &limits),
        Err(RenderError::Unreadable)
    );
    let zeros = vec![0_u8; 64 * 1024];
    assert_eq!(
        render_page_png(&zeros, 0, 400, &limits),
        Err(RenderError::Unreadable)
    );
}

#[test]
fn refused_fixtures_never_panic() {
    // What the renderer makes of files that `inspect` refuses does not matter (they are never
    // stored); it must answer, not panic.
    for (name, bytes) in FIXTURES {
        let started = Instant::now();
        let result = render_page_png(bytes, 0, 400, &RenderLimits::default());
        assert!(started.elapsed() < Duration::from_secs(11), "{name}");
        if let Ok(png) = result {
            assert!(png.starts_with(PNG_SIGNATURE), "{name}");
        }
    }
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[test]
fn byte_flip_fuzz_never_panics_and_always_answers_in_time() {
    let limits = RenderLimits {
        timeout: Duration::from_secs(5),
        ..RenderLimits::default()
    };
    let mut rng = Rng(0x5167_6e65_7572_0001);
    let mut rendered_count = 0;
    for round in 0..300 {
        let mut bytes = ONE_PAGE.to_vec();
        let flips = 1 + rng.below(8);
        for _ in 0..flips {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next() as u8,
                _ => bytes[at] = b"0123456789 /<>[]()R"[rng.below(19)],
            }
        }
        let started = Instant::now();
        let result = render_page_png(&bytes, 0, 200, &limits);
        let elapsed = started.elapsed();
        assert!(
            elapsed < limits.timeout + Duration::from_secs(1),
            "round {round}: took {elapsed:?}"
        );
        match result {
            Ok(png) => {
                assert!(png.starts_with(PNG_SIGNATURE), "round {round}");
                rendered_count += 1;
            }
            Err(RenderError::Unreadable | RenderError::TooLarge | RenderError::TimedOut) => {}
            Err(err) => panic!("round {round}: unexpected {err:?}"),
        }
    }
    // Most single-byte damage lands in text or is repaired; the loop exercised the renderer.
    assert!(rendered_count > 0);
}
