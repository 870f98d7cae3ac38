//! Text for the pages this crate draws (stamps, the certificate page, the audit-trail PDF).
//!
//! One embedded open-licence font with wide coverage, DejaVu Sans (Latin, Greek, Cyrillic and
//! more; subset by krilla to the glyphs used), shaped with rustybuzz; a line is put in visual
//! order by the Unicode bidirectional algorithm (unicode-bidi), so Hebrew and Arabic read
//! right to left. A character DejaVu lacks
//! (CJK, for instance) is never dropped: it is drawn from GNU Unifont's bitmap glyphs (all of
//! the Basic Multilingual Plane) as small filled squares, and a character outside that too is
//! drawn as its code point (`U+20000`) in a thin box. Such lines carry `/ActualText` when they
//! are drawn with [`draw_line_tagged`], so text extraction still yields the real characters.
//!
//! Coordinates are krilla's: points, origin at the top-left of the page, y growing downwards;
//! `y` is the baseline.

use std::ops::Range;
use std::sync::OnceLock;

use krilla::geom::{PathBuilder, Point, Rect};
use krilla::surface::Surface;
use krilla::tagging::{ContentTag, Identifier, SpanTag};
use krilla::text::{Font, GlyphId, KrillaGlyph};

/// Regular or bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Regular,
    Bold,
}

struct Face {
    font: Font,
    shaper: rustybuzz::Face<'static>,
    units_per_em: f32,
}

struct Faces {
    regular: Face,
    bold: Face,
}

fn face(bytes: &'static [u8]) -> Option<Face> {
    let font = Font::new(bytes.into(), 0)?;
    let shaper = rustybuzz::Face::from_slice(bytes, 0)?;
    let units_per_em = shaper.units_per_em() as f32;
    Some(Face {
        font,
        shaper,
        units_per_em,
    })
}

fn faces() -> Option<&'static Faces> {
    static FACES: OnceLock<Option<Faces>> = OnceLock::new();
    FACES
        .get_or_init(|| {
            Some(Faces {
                regular: face(dejavu::sans::regular())?,
                bold: face(dejavu::sans::bold())?,
            })
        })
        .as_ref()
}

fn face_for(weight: Weight) -> Result<&'static Face, TextError> {
    let faces = faces().ok_or(TextError)?;
    Ok(match weight {
        Weight::Regular => &faces.regular,
        Weight::Bold => &faces.bold,
    })
}

/// The embedded font could not be loaded (a build defect, reported rather than panicking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the embedded font could not be loaded")]
pub(crate) struct TextError;

/// A stretch of a line drawn one way.
#[derive(Debug, Clone, PartialEq)]
enum Run {
    /// Shaped glyphs of the embedded font; `true`: right to left.
    Font(Range<usize>, bool),
    /// One character from Unifont's bitmaps.
    Bitmap(char, &'static unifont::Glyph),
    /// One character no font here has: drawn as its code point in a box.
    CodePoint(char),
}

/// Unifont glyphs are 16 pixels tall; this many pixels make one em.
const BITMAP_PIXELS_PER_EM: f32 = 16.0;
/// Of those, this many lie above the baseline.
const BITMAP_ASCENT_PIXELS: f32 = 14.0;

fn covered(face: &Face, c: char) -> bool {
    face.shaper.glyph_index(c).is_some()
}

/// Control characters are shown as spaces: the callers pass single lines.
fn clean(c: char) -> char {
    if c.is_control() { ' ' } else { c }
}

/// The line's runs in visual order, left to right: the Unicode bidirectional algorithm
/// orders the directional runs (so Hebrew or Arabic read right to left, numbers inside them
/// left to right), and each is split where the font lacks characters.
fn runs(face: &Face, text: &str) -> Vec<Run> {
    let bidi = unicode_bidi::BidiInfo::new(text, None);
    if !bidi.has_rtl() {
        return font_runs(face, text, 0..text.len(), false);
    }
    let mut out = Vec::new();
    for paragraph in &bidi.paragraphs {
        let (levels, visual) = bidi.visual_runs(paragraph, paragraph.range.clone());
        for range in visual {
            let rtl = levels[range.start].is_rtl();
            let mut pieces = font_runs(face, text, range, rtl);
            if rtl {
                pieces.reverse();
            }
            out.extend(pieces);
        }
    }
    out
}

/// `text[range]` split, in logical order, into stretches the font covers and characters it
/// does not.
fn font_runs(face: &Face, text: &str, range: Range<usize>, rtl: bool) -> Vec<Run> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text[range.clone()].char_indices() {
        let i = range.start + i;
        let c = clean(c);
        // Zero-width and combining characters stay with the run before them.
        if covered(face, c) || c == ' ' || (start.is_some() && is_mark(c)) {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(Run::Font(s..i, rtl));
        }
        match unifont::get_glyph(c) {
            Some(glyph) => out.push(Run::Bitmap(c, glyph)),
            None => out.push(Run::CodePoint(c)),
        }
    }
    if let Some(s) = start {
        out.push(Run::Font(s..range.end, rtl));
    }
    out
}

fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F)
}

/// Shapes `text` in one direction; the glyphs come in visual order (left to right), each
/// with the byte range of `text` it shows.
fn shape(face: &Face, text: &str, rtl: bool) -> Vec<KrillaGlyph> {
    let cleaned: String = text.chars().map(clean).collect();
    let mut buffer = rustybuzz::UnicodeBuffer::new();
    buffer.push_str(&cleaned);
    buffer.set_direction(if rtl {
        rustybuzz::Direction::RightToLeft
    } else {
        rustybuzz::Direction::LeftToRight
    });
    buffer.guess_segment_properties();
    let output = rustybuzz::shape(&face.shaper, &[], buffer);
    let infos = output.glyph_infos();
    let positions = output.glyph_positions();
    let upem = face.units_per_em;
    let mut glyphs = Vec::with_capacity(infos.len());
    for (i, (info, pos)) in infos.iter().zip(positions).enumerate() {
        let start = info.cluster as usize;
        // A cluster ends where the next cluster in logical order starts: after this glyph
        // left to right, before it right to left.
        let next = |c: &rustybuzz::GlyphInfo| c.cluster as usize;
        let end = if rtl {
            infos[..i].iter().rev().map(next).find(|&c| c != start)
        } else {
            infos[i + 1..].iter().map(next).find(|&c| c != start)
        }
        .unwrap_or(cleaned.len());
        glyphs.push(KrillaGlyph::new(
            GlyphId::new(info.glyph_id),
            pos.x_advance as f32 / upem,
            pos.x_offset as f32 / upem,
            pos.y_offset as f32 / upem,
            pos.y_advance as f32 / upem,
            start..end.max(start),
            None,
        ));
    }
    glyphs
}

fn code_point_label(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// Width of a code-point box at `size`, for its label.
fn code_point_width(face: &Face, c: char, size: f32) -> f32 {
    let label = code_point_label(c);
    let inner: f32 = shape(face, &label, false).iter().map(|g| g.x_advance).sum();
    inner * size * 0.6 + size * 0.3
}

fn run_width(face: &Face, text: &str, run: &Run, size: f32) -> f32 {
    match run {
        Run::Font(range, rtl) => {
            let glyphs = shape(face, &text[range.clone()], *rtl);
            glyphs.iter().map(|g| g.x_advance).sum::<f32>() * size
        }
        Run::Bitmap(_, glyph) => glyph.get_width() as f32 * size / BITMAP_PIXELS_PER_EM,
        Run::CodePoint(c) => code_point_width(face, *c, size),
    }
}

/// Width of `text` drawn at `size` points.
pub(crate) fn width(text: &str, size: f32, weight: Weight) -> Result<f32, TextError> {
    let face = face_for(weight)?;
    Ok(runs(face, text)
        .iter()
        .map(|r| run_width(face, text, r, size))
        .sum())
}

/// Whether some character of `text` is not drawn from the font (so it needs `/ActualText` to
/// be extracted).
pub(crate) fn needs_actual_text(text: &str) -> bool {
    match faces() {
        Some(f) => runs(&f.regular, text)
            .iter()
            .any(|r| !matches!(r, Run::Font(..))),
        None => false,
    }
}

/// Draws one line with its baseline at (`x`, `y`); returns its width. Draws only: no tags.
pub(crate) fn draw_line(
    surface: &mut Surface,
    text: &str,
    x: f32,
    y: f32,
    size: f32,
    weight: Weight,
) -> Result<f32, TextError> {
    let face = face_for(weight)?;
    let mut cursor = x;
    for run in runs(face, text) {
        let w = run_width(face, text, &run, size);
        match &run {
            Run::Font(range, rtl) => {
                let part = &text[range.clone()];
                let glyphs = shape(face, part, *rtl);
                surface.draw_glyphs(
                    Point::from_xy(cursor, y),
                    &glyphs,
                    face.font.clone(),
                    part,
                    size,
                    false,
                );
            }
            Run::Bitmap(_, glyph) => draw_bitmap(surface, glyph, cursor, y, size),
            Run::CodePoint(c) => {
                let label = code_point_label(*c);
                let small = size * 0.6;
                if let Some(rect) = Rect::from_xywh(
                    cursor + size * 0.05,
                    y - size * 0.75,
                    w - size * 0.1,
                    size * 0.95,
                ) {
                    let mut pb = PathBuilder::new();
                    pb.push_rect(rect);
                    if let Some(path) = pb.finish() {
                        let fill = surface.get_fill().cloned();
                        surface.set_fill(None);
                        surface.set_stroke(Some(krilla::paint::Stroke {
                            width: size * 0.04,
                            ..Default::default()
                        }));
                        surface.draw_path(&path);
                        surface.set_stroke(None);
                        surface.set_fill(fill);
                    }
                }
                let glyphs = shape(face, &label, false);
                surface.draw_glyphs(
                    Point::from_xy(cursor + size * 0.15, y - size * 0.15),
                    &glyphs,
                    face.font.clone(),
                    &label,
                    small,
                    false,
                );
            }
        }
        cursor += w;
    }
    Ok(cursor - x)
}

/// Draws a Unifont bitmap glyph as filled squares, one rectangle per horizontal run of pixels.
fn draw_bitmap(surface: &mut Surface, glyph: &unifont::Glyph, x: f32, y: f32, size: f32) {
    let px = size / BITMAP_PIXELS_PER_EM;
    let top = y - BITMAP_ASCENT_PIXELS * px;
    let mut pb = PathBuilder::new();
    let mut any = false;
    for row in 0..16 {
        let mut col = 0;
        while col < glyph.get_width() {
            if glyph.get_pixel(col, row) {
                let start = col;
                while col < glyph.get_width() && glyph.get_pixel(col, row) {
                    col += 1;
                }
                if let Some(rect) = Rect::from_xywh(
                    x + start as f32 * px,
                    top + row as f32 * px,
                    (col - start) as f32 * px,
                    px,
                ) {
                    pb.push_rect(rect);
                    any = true;
                }
            } else {
                col += 1;
            }
        }
    }
    if any && let Some(path) = pb.finish() {
        surface.draw_path(&path);
    }
}

/// Draws one line as a tagged span (with `/ActualText` when some character is drawn as a
/// picture) and returns the span's identifier for the caller's tag tree, and the width.
pub(crate) fn draw_line_tagged(
    surface: &mut Surface,
    text: &str,
    x: f32,
    y: f32,
    size: f32,
    weight: Weight,
) -> Result<(Identifier, f32), TextError> {
    let actual = needs_actual_text(text).then_some(text);
    let id = surface.start_tagged(ContentTag::Span(SpanTag {
        actual_text: actual,
        ..SpanTag::empty()
    }));
    let drawn = draw_line(surface, text, x, y, size, weight);
    surface.end_tagged();
    Ok((id, drawn?))
}

/// Breaks `text` into lines no wider than `max_width` at `size`: at spaces where possible,
/// inside a word that is wider than a whole line. Existing line breaks are kept.
pub(crate) fn wrap(
    text: &str,
    size: f32,
    weight: Weight,
    max_width: f32,
) -> Result<Vec<String>, TextError> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if width(&candidate, size, weight)? <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word alone: split it where it overflows.
            for c in word.chars() {
                let mut next = line.clone();
                next.push(c);
                if !line.is_empty() && width(&next, size, weight)? > max_width {
                    lines.push(std::mem::take(&mut line));
                    line.push(c);
                } else {
                    line = next;
                }
            }
        }
        lines.push(line);
    }
    Ok(lines)
}

/// `text` cut to fit `max_width` at `size`, ending with "…" when cut.
pub(crate) fn ellipsize(
    text: &str,
    size: f32,
    weight: Weight,
    max_width: f32,
) -> Result<String, TextError> {
    if width(text, size, weight)? <= max_width {
        return Ok(text.to_string());
    }
    let mut out = String::new();
    for c in text.chars() {
        let mut next = out.clone();
        next.push(c);
        next.push('…');
        if width(&next, size, weight)? > max_width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_font_covers_finnish_polish_danish_greek_and_cyrillic_names() {
        for name in ["Äänekoski", "Łódź", "Ærø", "Ελένη", "Юлия"] {
            assert!(!needs_actual_text(name), "{name} should be in DejaVu Sans");
        }
    }

    #[test]
    fn other_scripts_fall_back_to_bitmaps_or_code_points_never_nothing() {
        let f = faces().expect("font");
        assert_eq!(runs(&f.regular, "山田"), {
            let a = unifont::get_glyph('山').expect("unifont has CJK");
            let b = unifont::get_glyph('田').expect("unifont has CJK");
            vec![Run::Bitmap('山', a), Run::Bitmap('田', b)]
        });
        assert_eq!(
            runs(&f.regular, "\u{20000}"),
            vec![Run::CodePoint('\u{20000}')]
        );
        assert!(needs_actual_text("Ana 山田"));
        assert!(width("山", 10.0, Weight::Regular).expect("width") > 5.0);
    }

    #[test]
    fn right_to_left_text_is_ordered_for_display() {
        let f = faces().expect("font");
        // (Numbers after Hebrew join it, as the bidi algorithm says: "Dana שלום 42" shows as
        // "Dana 42 שלום"; plain words keep their places.)
        let text = "Dana שלום Ana";
        let pieces: Vec<(&str, bool)> = runs(&f.regular, text)
            .iter()
            .map(|r| match r {
                Run::Font(range, rtl) => (&text[range.clone()], *rtl),
                other => panic!("all in the font: {other:?}"),
            })
            .collect();
        assert_eq!(
            pieces,
            vec![("Dana ", false), ("שלום", true), (" Ana", false)]
        );
        // The Hebrew word's glyphs come right to left: its last letter is drawn first.
        let glyphs = shape(&f.regular, "שלום", true);
        assert_eq!(glyphs.len(), 4);
        let last_letter = "שלום".char_indices().last().map(|(i, _)| i).unwrap_or(0);
        assert_eq!(glyphs[0].text_range.start, last_letter);
        // A right-to-left paragraph puts its first word on the right.
        let text = "שלום Dana";
        let visual = runs(&f.regular, text);
        assert!(
            matches!(&visual[0], Run::Font(r, false) if &text[r.clone()] == "Dana"),
            "{visual:?}"
        );
    }

    #[test]
    fn wrapping_keeps_every_character_and_respects_the_width() {
        let text = "Signature certificate for the agreement between Äänekoski and Łódź, \
                    with an unbreakablewordthatislongerthanthewholelineitself";
        let lines = wrap(text, 10.0, Weight::Regular, 120.0).expect("wrap");
        assert!(lines.len() > 3);
        for l in &lines {
            assert!(
                width(l, 10.0, Weight::Regular).expect("width") <= 120.0,
                "{l}"
            );
        }
        let joined: String = lines.concat();
        assert_eq!(
            joined.replace(' ', ""),
            text.replace(' ', ""),
            "nothing dropped"
        );
    }

    #[test]
    fn ellipsize_cuts_only_what_does_not_fit() {
        assert_eq!(
            ellipsize("short", 10.0, Weight::Bold, 200.0).expect("fit"),
            "short"
        );
        let cut = ellipsize(&"x".repeat(200), 10.0, Weight::Bold, 100.0).expect("cut");
        assert!(cut.ends_with('…'));
        assert!(width(&cut, 10.0, Weight::Bold).expect("width") <= 100.0);
    }
}
