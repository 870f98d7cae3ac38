//! Page layout shared by everything this crate draws: the signature blocks of the stamp, the
//! signature certificate pages and the audit-trail PDF.
//!
//! Drawing happens in two steps. Layout first: content is placed as [`Op`]s on [`Pages`], a
//! list of pages with a cursor that moves down the current page and starts a new page when
//! what comes next does not fit. Then each page's ops are painted on a krilla [`Surface`]
//! with [`draw_text`] and [`fill_rect`]. Laying out before painting lets a caller know the
//! page count (for "Page 2 of 3" footers) and tie the drawn text to a structure tree.
//!
//! Coordinates are krilla's: points, origin at the top-left corner of the page, y growing
//! downwards; a text `y` is its baseline. Text is drawn through [`crate::text`].

use krilla::color::rgb;
use krilla::geom::{Path, PathBuilder, Rect};
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::tagging::{Artifact, ArtifactType, ContentTag, Identifier, SpanTag};

use crate::text::{self, TextError, Weight};

/// A colour, 8 bits per channel.
pub(crate) type Rgb = (u8, u8, u8);

/// How a piece of text is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Style {
    pub size: f32,
    pub weight: Weight,
    pub color: Rgb,
}

pub(crate) const fn style(size: f32, weight: Weight, color: Rgb) -> Style {
    Style {
        size,
        weight,
        color,
    }
}

/// How drawn text is marked in the content stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mark {
    /// No structure: a line with characters drawn as pictures (see [`crate::text`]) is
    /// wrapped in an `/ActualText` span so that it is still extracted as text.
    Plain,
    /// A span of the document's structure tree (with `/ActualText` when needed); drawing it
    /// gives the identifier to put in the tree.
    Span,
    /// An artifact (page header, footer): not part of the content.
    Artifact(ArtifactType),
}

/// What is placed on a page. `E` is what a caller draws itself (an image, a signature block).
#[derive(Debug, Clone)]
pub(crate) enum Op<E> {
    /// One line of text with its baseline at (`x`, `y`).
    Text {
        x: f32,
        y: f32,
        style: Style,
        text: String,
        mark: Mark,
    },
    /// A filled rectangle: rules, shading, bars.
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: Rgb,
    },
    Other(E),
}

/// A horizontal rule `width` thick centred on `y`, as an [`Op::Rect`].
pub(crate) fn rule_op<E>(x: f32, y: f32, w: f32, color: Rgb, width: f32) -> Op<E> {
    Op::Rect {
        x,
        y: y - width / 2.0,
        w,
        h: width,
        color,
    }
}

/// Pages of ops and the cursor that places them: content flows down from `top` and a new
/// page starts when something would go past `bottom`.
#[derive(Debug, Clone)]
pub(crate) struct Pages<T> {
    /// Never empty: the last one is the page being filled.
    pub pages: Vec<Vec<T>>,
    /// The cursor: where the next thing goes.
    pub y: f32,
    /// Where the body starts on every page.
    pub top: f32,
    /// Where the body must end on every page.
    pub bottom: f32,
    /// Where the body of the current page starts (below a repeated header, if any).
    pub page_top: f32,
    /// A page whose cursor is at most this far below `page_top` counts as empty: content is
    /// never moved away from an empty page, which would only leave it blank.
    slack: f32,
}

impl<T> Pages<T> {
    pub(crate) fn new(top: f32, bottom: f32, slack: f32) -> Self {
        Pages {
            pages: vec![Vec::new()],
            y: top,
            top,
            bottom,
            page_top: top,
            slack,
        }
    }

    /// The index of the page being filled.
    pub(crate) fn page(&self) -> usize {
        self.pages.len().saturating_sub(1)
    }

    /// The ops of the page being filled.
    pub(crate) fn ops(&mut self) -> &mut Vec<T> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    pub(crate) fn push(&mut self, op: T) {
        self.ops().push(op);
    }

    /// Whether nothing (but a repeated header) is on the current page yet.
    pub(crate) fn at_top(&self) -> bool {
        self.y <= self.page_top + self.slack
    }

    /// Whether `height` more would go past the bottom of a page that already has content.
    pub(crate) fn needs_break(&self, height: f32) -> bool {
        self.y + height > self.bottom && !self.at_top()
    }

    /// Starts a new page, with the cursor at its top.
    pub(crate) fn break_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = self.top;
        self.page_top = self.top;
    }
}

/// Sets the fill colour.
fn fill(surface: &mut Surface, color: Rgb) {
    surface.set_fill(Some(Fill {
        paint: rgb::Color::new(color.0, color.1, color.2).into(),
        ..Fill::default()
    }));
}

fn rect_path(x: f32, y: f32, w: f32, h: f32) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.push_rect(Rect::from_xywh(x, y, w, h)?);
    pb.finish()
}

/// A rectangle, filled and/or outlined; nothing when it is empty.
pub(crate) fn draw_rect(
    surface: &mut Surface,
    (x, y, w, h): (f32, f32, f32, f32),
    fill_color: Option<Rgb>,
    stroke: Option<(Rgb, f32)>,
) {
    let Some(path) = rect_path(x, y, w, h) else {
        return;
    };
    match fill_color {
        Some(c) => fill(surface, c),
        None => surface.set_fill(None),
    }
    surface.set_stroke(stroke.map(|(c, width)| Stroke {
        paint: rgb::Color::new(c.0, c.1, c.2).into(),
        width,
        ..Stroke::default()
    }));
    surface.draw_path(&path);
    surface.set_stroke(None);
}

/// A filled rectangle; in a tagged document (`tagged`), marked as a layout artifact.
pub(crate) fn fill_rect(
    surface: &mut Surface,
    (x, y, w, h): (f32, f32, f32, f32),
    color: Rgb,
    tagged: bool,
) {
    let Some(path) = rect_path(x, y, w, h) else {
        return;
    };
    if tagged {
        surface.start_tagged(ContentTag::Artifact(Artifact::with_kind(
            ArtifactType::Layout,
        )));
    }
    fill(surface, color);
    surface.draw_path(&path);
    if tagged {
        surface.end_tagged();
    }
}

/// Draws one line of text with its baseline at (`x`, `y`), marked as `mark` says; returns the
/// span's identifier for [`Mark::Span`].
pub(crate) fn draw_text(
    surface: &mut Surface,
    text: &str,
    (x, y): (f32, f32),
    style: Style,
    mark: Mark,
) -> Result<Option<Identifier>, TextError> {
    fill(surface, style.color);
    let Style { size, weight, .. } = style;
    match mark {
        Mark::Plain if text::needs_actual_text(text) => {
            // Like `text::draw_line_tagged`, plus one space glyph inside the span: poppler (and
            // so pdftotext) emits a span's `/ActualText` only when the span shows some glyph,
            // and a line drawn entirely from bitmaps shows none.
            surface.start_tagged(ContentTag::Span(SpanTag {
                actual_text: Some(text),
                ..SpanTag::empty()
            }));
            let space = text::draw_line(surface, " ", x, y, size, weight);
            let drawn = text::draw_line(surface, text, x, y, size, weight);
            surface.end_tagged();
            space?;
            drawn?;
            Ok(None)
        }
        Mark::Plain => {
            text::draw_line(surface, text, x, y, size, weight)?;
            Ok(None)
        }
        Mark::Span => {
            let (id, _) = text::draw_line_tagged(surface, text, x, y, size, weight)?;
            Ok(Some(id))
        }
        Mark::Artifact(kind) => {
            surface.start_tagged(ContentTag::Artifact(Artifact::with_kind(kind)));
            let drawn = text::draw_line(surface, text, x, y, size, weight);
            surface.end_tagged();
            drawn?;
            Ok(None)
        }
    }
}

/// Draws `ops[i]` for each `i`, text and rectangles here and [`Op::Other`] through `other`;
/// returns, by op index, the identifiers of the [`Mark::Span`] texts.
pub(crate) fn draw_ops<E, Err: From<TextError>>(
    surface: &mut Surface,
    ops: &[Op<E>],
    tagged: bool,
    mut other: impl FnMut(&mut Surface, &E) -> Result<(), Err>,
) -> Result<Vec<Option<Identifier>>, Err> {
    let mut ids = vec![None; ops.len()];
    for (index, op) in ops.iter().enumerate() {
        match op {
            Op::Text {
                x,
                y,
                style,
                text,
                mark,
            } => ids[index] = draw_text(surface, text, (*x, *y), *style, *mark)?,
            Op::Rect { x, y, w, h, color } => fill_rect(surface, (*x, *y, *w, *h), *color, tagged),
            Op::Other(e) => other(surface, e)?,
        }
    }
    Ok(ids)
}

/// `s` on one line: runs of white space (line breaks included) become one space.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `value`, or "—" when it is blank.
pub(crate) fn or_dash(value: &str) -> &str {
    if value.trim().is_empty() {
        "—"
    } else {
        value
    }
}
