//! Visible evidence on the document: [`stamp`].

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use lopdf::{Document, IncrementalDocument};

mod draw;
mod merge;
mod raster;

/// Where one signer's block goes, when the request names it. Coordinates are PDF points
/// (1/72 inch) measured from the top-left corner of the page's crop box; `page` is 1-based.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StampPosition {
    pub page: u32,
    pub x: f32,
    pub y: f32,
}

/// Width and height, in points, of one signature block.
pub const STAMP_BLOCK_SIZE: (f32, f32) = (200.0, 72.0);

/// One signer as the stamp and the certificate page show them.
#[derive(Debug, Clone, Default)]
pub struct StampSigner {
    pub id: String,
    pub name_as_signed: String,
    pub representing: Option<String>,
    pub email: String,
    /// Already formatted for people, e.g. `2026-05-14 10:51:51 UTC`.
    pub signed_at: String,
    pub opened_at: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// In words: "Access code sent by email", "Integrator link", "Embedded session".
    pub verification: String,
    /// The drawn signature (PNG), if the signer drew one.
    pub signature_png: Option<Vec<u8>>,
    /// Where the block goes; `None`: on the last page, where it covers no content.
    pub position: Option<StampPosition>,
}

/// Everything the stamp and the certificate page show.
#[derive(Debug, Clone, Default)]
pub struct StampInput {
    pub request_id: String,
    pub title: String,
    /// Hex SHA-256 of the uploaded original.
    pub document_sha256: String,
    pub created_at: String,
    pub completed_at: String,
    pub signers: Vec<StampSigner>,
}

/// Why a document could not be stamped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    #[error("the PDF file cannot be read: {0}")]
    Unreadable(String),
    #[error("invalid stamp input: {0}")]
    Input(String),
    #[error("the stamp could not be drawn: {0}")]
    Draw(String),
}

/// Most signers one stamp shows.
const MAX_STAMP_SIGNERS: usize = 200;
/// Longest text field drawn, in characters; longer ones are cut with "…".
const MAX_FIELD_CHARS: usize = 2000;
/// Automatically placed blocks keep this far from the page edges (points).
const PAGE_MARGIN: f32 = 36.0;
/// Blank space required around automatically placed blocks (points).
const CLEARANCE: f32 = 6.0;
/// Resolution of the render used to find a blank area, in pixels per point.
const SEARCH_SCALE: f32 = 0.75;
/// A4, for certificate pages when the last page has an unusual size.
const A4: (f32, f32) = (595.276, 841.89);

/// Stamps `pdf` and returns the whole new file: `pdf` followed by one incremental update.
///
/// The update adds the visible evidence: one signature block per signer and appended
/// signature certificate pages (the request, then each signer's details). The input stays a
/// byte-exact prefix; sealing comes after, as a further incremental update that covers this
/// one. At most 200 signers; a text field longer than 2000 characters is cut with "…".
///
/// Every text field arrives formatted by the caller (times as `2026-05-14 10:51:51 UTC`, the
/// verification method in words): this function draws, it does not decide.
///
/// # Placement
///
/// A signer with a [`StampPosition`] gets its block there (a page that does not exist is
/// [`StampError::Input`]; a block that would stick out of the page is moved inside it). The
/// other signers' blocks go together, as one grid
/// ([`STAMP_BLOCK_SIZE`] each, 8 points apart), onto the last page: the page is rendered at
/// low resolution and the grid goes where it covers nothing that is drawn (no pixel darker
/// than near-white within 6 points of it, nor an explicitly placed block, nor a visible
/// annotation such as a form field or an earlier visible signature), at least 36 points
/// from the page edges, as low on the page as possible, then as far left, preferring more
/// columns when two shapes fit equally low. When no such area exists (or the page cannot be
/// rendered), the blocks are drawn at the top of the first certificate page instead, under a
/// note that says so.
///
/// # Drawing
///
/// The blocks and the certificate pages are drawn with krilla into one scratch PDF, whose
/// objects are copied (renumbered) into the update: a block-carrying page keeps its content,
/// wrapped in `q … Q`, and paints a Form XObject holding the blocks through the matrix that
/// undoes its crop-box origin and `/Rotate`; certificate pages (the last page's size when it is
/// a usual one, else A4; as many as needed) are appended to the root of the page tree with
/// their own `/MediaBox`, `/CropBox`, `/Rotate 0` and `/Resources`. All text is DejaVu Sans;
/// a character it lacks is drawn from GNU Unifont's bitmaps (or as its code point in a box),
/// and a line with such characters carries `/ActualText`, so text extraction still finds it.
/// Nothing depends on the clock: the same input gives the same bytes.
///
/// An earlier approval signature stays intact (its bytes are untouched), but validators that
/// analyse later revisions, such as pyHanko, report the stamp's new page and content as
/// modifications after it: adding visible evidence is a change no signature permits.
///
/// Never panics.
pub fn stamp(pdf: &[u8], input: &StampInput) -> Result<Vec<u8>, StampError> {
    catch_unwind(AssertUnwindSafe(|| stamp_document(pdf, input))).unwrap_or_else(|_| {
        Err(StampError::Draw(
            "the document could not be stamped (internal error)".into(),
        ))
    })
}

fn input_err(message: impl Into<String>) -> StampError {
    StampError::Input(message.into())
}

/// One line of text as drawn: control characters are spaces, bidirectional overrides and
/// isolates are dropped (they would reorder what follows them), runs of white space become one
/// space, and the result is cut to [`MAX_FIELD_CHARS`] with "…".
fn cut(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| !matches!(*c as u32, 0x202A..=0x202E | 0x2066..=0x2069))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let joined = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX_FIELD_CHARS) {
        Some((at, _)) => format!("{}…", &joined[..at]),
        None => joined,
    }
}

/// The input with every text field cleaned and cut (see [`cut`]).
fn bounded(input: &StampInput) -> StampInput {
    let opt = |s: &Option<String>| s.as_deref().map(cut);
    StampInput {
        request_id: cut(&input.request_id),
        title: cut(&input.title),
        document_sha256: cut(&input.document_sha256),
        created_at: cut(&input.created_at),
        completed_at: cut(&input.completed_at),
        signers: input
            .signers
            .iter()
            .map(|s| StampSigner {
                id: cut(&s.id),
                name_as_signed: cut(&s.name_as_signed),
                representing: opt(&s.representing),
                email: cut(&s.email),
                signed_at: cut(&s.signed_at),
                opened_at: opt(&s.opened_at),
                ip_address: opt(&s.ip_address),
                user_agent: opt(&s.user_agent),
                verification: cut(&s.verification),
                signature_png: s.signature_png.clone(),
                position: s.position,
            })
            .collect(),
    }
}

fn stamp_document(pdf: &[u8], input: &StampInput) -> Result<Vec<u8>, StampError> {
    crate::inspect(pdf).map_err(|err| StampError::Unreadable(err.to_string()))?;
    if input.signers.is_empty() {
        return Err(input_err("there is no signer to stamp"));
    }
    if input.signers.len() > MAX_STAMP_SIGNERS {
        return Err(input_err(format!("more than {MAX_STAMP_SIGNERS} signers")));
    }
    let input = bounded(input);

    let mut inc: IncrementalDocument = pdf
        .try_into()
        .map_err(|err| StampError::Unreadable(format!("{err}")))?;
    let prev = inc.get_prev_documents();
    let pages = prev.get_pages();
    let page_count = u32::try_from(pages.len()).map_err(|_| input_err("too many pages"))?;
    let page_id = |number: u32| {
        pages
            .get(&number)
            .copied()
            .ok_or_else(|| StampError::Unreadable(format!("page {number} cannot be found")))
    };
    let last_geometry = merge::geometry(prev, page_id(page_count)?)?;

    // Blocks per page number: (signer index, x, y) in shown points from the top-left.
    let mut on_page: BTreeMap<u32, Vec<(usize, f32, f32)>> = BTreeMap::new();
    let (bw, bh) = STAMP_BLOCK_SIZE;
    for (index, signer) in input.signers.iter().enumerate() {
        let Some(at) = signer.position else { continue };
        if at.page == 0 || at.page > page_count {
            return Err(input_err(format!(
                "signer {}: page {} does not exist (the document has {page_count})",
                index + 1,
                at.page
            )));
        }
        let geometry = merge::geometry(prev, page_id(at.page)?)?;
        // A block that would stick out is moved inside the page (the request was accepted
        // before the page sizes were known; a seal must not fail over a few points).
        let inside = |v: f32, room: f32| {
            let max = (room - 0.0).max(0.0);
            if v.is_finite() {
                v.clamp(0.0, max)
            } else {
                0.0
            }
        };
        let at = StampPosition {
            page: at.page,
            x: inside(at.x, geometry.width - bw),
            y: inside(at.y, geometry.height - bh),
        };
        on_page
            .entry(at.page)
            .or_default()
            .push((index, at.x, at.y));
    }

    let auto: Vec<usize> = (0..input.signers.len())
        .filter(|&i| input.signers[i].position.is_none())
        .collect();
    let mut on_certificate = Vec::new();
    if !auto.is_empty() {
        let mut taken: Vec<(f32, f32, f32, f32)> = on_page
            .get(&page_count)
            .into_iter()
            .flatten()
            .map(|&(_, x, y)| (x, y, bw, bh))
            .collect();
        taken.extend(merge::annotation_rects(
            prev,
            page_id(page_count)?,
            &last_geometry,
        ));
        match find_blank_area(pdf, page_count, &last_geometry, &taken, auto.len()) {
            Some(spots) => on_page
                .entry(page_count)
                .or_default()
                .extend(auto.iter().zip(spots).map(|(&i, (x, y))| (i, x, y))),
            None => on_certificate = auto,
        }
    }

    let signers: Vec<draw::Signer<'_>> = input
        .signers
        .iter()
        .map(|signer| draw::Signer {
            signer,
            image: signer
                .signature_png
                .as_deref()
                .and_then(raster::signature_image)
                .map(|img| krilla::image::Image::from_rgba8(img.pixels, img.width, img.height)),
        })
        .collect();

    let mut targets = Vec::new();
    let mut overlays = Vec::new();
    for (number, blocks) in &on_page {
        let id = page_id(*number)?;
        let geometry = merge::geometry(prev, id)?;
        overlays.push(draw::Overlay {
            width: geometry.width,
            height: geometry.height,
            blocks: blocks.clone(),
        });
        targets.push((id, geometry));
    }
    let (w, h) = (last_geometry.width, last_geometry.height);
    let cert_size = if (400.0..=1500.0).contains(&w) && (500.0..=2200.0).contains(&h) {
        (w, h)
    } else {
        A4
    };
    let drawn = draw::draw(&input, &signers, &overlays, &on_certificate, cert_size)?;
    let drawn_doc = Document::load_mem(&drawn.pdf)
        .map_err(|err| StampError::Draw(format!("the drawn pages cannot be read back ({err})")))?;

    let overlay_count = u32::try_from(overlays.len()).map_err(|_| input_err("too many pages"))?;
    let plan = merge::Plan {
        drawn: &drawn_doc,
        overlays: targets
            .into_iter()
            .zip(1..)
            .map(|((id, geometry), index)| (id, geometry, index))
            .collect(),
        appended: (1..=drawn.certificate_pages as u32)
            .map(|i| (overlay_count + i, cert_size.0, cert_size.1))
            .collect(),
    };

    // The trailer of the update is the previous one with /Prev set by lopdf; drop what only
    // described the previous cross-reference section.
    for key in crate::xref::XREF_SECTION_KEYS {
        inc.new_document.trailer.remove(key);
    }
    merge::merge(&mut inc, &plan)?;

    let mut out = Vec::with_capacity(pdf.len() + drawn.pdf.len() + 4096);
    inc.save_to(&mut out)
        .map_err(|err| StampError::Draw(format!("the update could not be written ({err})")))?;
    if !out.starts_with(pdf) {
        return Err(StampError::Draw(
            "the update does not start with the input".into(),
        ));
    }
    Ok(out)
}

/// Top-left corners for `count` blocks on the last page (`number`) where they cover nothing
/// (see [`stamp`]), or `None`.
fn find_blank_area(
    pdf: &[u8],
    number: u32,
    geometry: &merge::PageGeometry,
    taken: &[(f32, f32, f32, f32)],
    count: usize,
) -> Option<Vec<(f32, f32)>> {
    let limits = crate::RenderLimits {
        max_pages: crate::inspect::MAX_PAGES as usize,
        max_pixels: 4_000_000,
        timeout: Duration::from_secs(20),
    };
    let width_px = (geometry.width * SEARCH_SCALE).round() as u32;
    let png = crate::render_page_png(pdf, number as usize - 1, width_px, &limits).ok()?;
    let mut map = raster::InkMap::from_png(&png, geometry.width)?;
    let (bw, bh) = STAMP_BLOCK_SIZE;
    for &(x, y, w, h) in taken {
        map.occupy(
            x - CLEARANCE,
            y - CLEARANCE,
            w + 2.0 * CLEARANCE,
            h + 2.0 * CLEARANCE,
        );
    }

    let gap = draw::BLOCK_GAP;
    let (left, top) = (PAGE_MARGIN, PAGE_MARGIN);
    let right = geometry.width - PAGE_MARGIN;
    let bottom = geometry.height - PAGE_MARGIN;
    let max_cols = ((right - left + gap) / (bw + gap)).floor().max(0.0) as usize;
    let step = 2.0;
    // (bottom edge, columns, x, y)
    let mut best: Option<(f32, usize, f32, f32)> = None;
    for cols in (1..=max_cols.min(count)).rev() {
        let rows = count.div_ceil(cols);
        let gw = cols as f32 * (bw + gap) - gap;
        let gh = rows as f32 * (bh + gap) - gap;
        let mut y = bottom - gh;
        let mut found = None;
        'search: while y >= top {
            let mut x = left;
            while x + gw <= right {
                let c = CLEARANCE;
                if map.blank(x - c, y - c, gw + 2.0 * c, gh + 2.0 * c) {
                    found = Some((y + gh, cols, x, y));
                    break 'search;
                }
                x += step;
            }
            y -= step;
        }
        if let Some(f) = found
            && best.is_none_or(|b| f.0 > b.0)
        {
            best = Some(f);
        }
    }
    let (_, cols, x, y) = best?;
    Some(
        (0..count)
            .map(|k| {
                let (col, row) = ((k % cols) as f32, (k / cols) as f32);
                (x + col * (bw + gap), y + row * (bh + gap))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_PAGE: &[u8] = include_bytes!("../tests/fixtures/one-page.pdf");

    fn overlaps(a: (f32, f32), b: (f32, f32)) -> bool {
        let (w, h) = STAMP_BLOCK_SIZE;
        a.0 < b.0 + w && b.0 < a.0 + w && a.1 < b.1 + h && b.1 < a.1 + h
    }

    #[test]
    fn automatic_blocks_avoid_content_and_placed_blocks() {
        let doc = Document::load_mem(ONE_PAGE).expect("fixture");
        let page = doc.get_pages()[&1];
        let geometry = merge::geometry(&doc, page).expect("geometry");
        assert_eq!((geometry.width, geometry.height), (612.0, 792.0));

        let free = find_blank_area(ONE_PAGE, 1, &geometry, &[], 3).expect("room");
        // Two columns from the bottom-left margin: the lowest row ends 36 points up.
        let (_, bh) = STAMP_BLOCK_SIZE;
        let lowest = free.iter().map(|p| p.1 + bh).fold(0.0, f32::max);
        assert!((lowest - (792.0 - PAGE_MARGIN)).abs() < 2.5, "{free:?}");
        for (i, a) in free.iter().enumerate() {
            // Below the fixture's text line (baseline 72 points from the top).
            assert!(a.1 > 80.0, "{free:?}");
            for b in &free[i + 1..] {
                assert!(!overlaps(*a, *b), "{free:?}");
            }
        }

        let taken = (36.0, 792.0 - 36.0 - 72.0);
        let around = find_blank_area(
            ONE_PAGE,
            1,
            &geometry,
            &[(taken.0, taken.1, 200.0, 72.0)],
            3,
        )
        .expect("still room");
        for spot in &around {
            assert!(!overlaps(*spot, taken), "{around:?}");
        }

        // Nothing fits a page narrower than one block plus margins.
        let narrow = merge::PageGeometry {
            crop: [0.0, 0.0, 250.0, 792.0],
            rotate: 0,
            width: 250.0,
            height: 792.0,
        };
        assert_eq!(find_blank_area(ONE_PAGE, 1, &narrow, &[], 1), None);
    }

    #[test]
    fn fields_are_cleaned_and_cut() {
        assert_eq!(cut("  Anna\n\t Äänekoski\u{0} "), "Anna Äänekoski");
        assert_eq!(cut("a\u{202e}b\u{2066}c"), "abc");
        let long = cut(&"x".repeat(MAX_FIELD_CHARS + 10));
        assert_eq!(long.chars().count(), MAX_FIELD_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
