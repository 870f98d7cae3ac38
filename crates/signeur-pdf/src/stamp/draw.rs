//! Drawing with krilla: the signature blocks and the certificate pages, laid out with
//! [`crate::layout`]. Coordinates are krilla's (points, origin top-left, y down; text `y` is
//! the baseline).

use krilla::geom::{Size, Transform};
use krilla::image::Image;
use krilla::page::PageSettings;
use krilla::surface::Surface;
use krilla::{Document, SerializeSettings};

use super::{STAMP_BLOCK_SIZE, StampError, StampInput, StampSigner};
use crate::layout::{self, Mark, Op, Pages, Rgb, one_line, style};
use crate::text::{self, TextError, Weight};

/// Space between blocks laid out in a grid.
pub(super) const BLOCK_GAP: f32 = 8.0;

const INK: Rgb = (25, 25, 30);
const MUTED: Rgb = (95, 100, 110);
const BRAND: Rgb = (38, 76, 138);
const RULE: Rgb = (190, 195, 205);

impl From<TextError> for StampError {
    fn from(err: TextError) -> Self {
        StampError::Draw(err.to_string())
    }
}

/// A signer as drawn: the input signer and its decoded signature image.
pub(super) struct Signer<'a> {
    pub signer: &'a StampSigner,
    pub image: Option<Image>,
}

/// One page to draw over an existing page: its shown size and the blocks on it (signer
/// index, x, y of the top-left corner).
pub(super) struct Overlay {
    pub width: f32,
    pub height: f32,
    pub blocks: Vec<(usize, f32, f32)>,
}

/// One line of text, unstructured (see [`Mark::Plain`]).
fn line(
    surface: &mut Surface,
    s: &str,
    at: (f32, f32),
    size: f32,
    weight: Weight,
    color: Rgb,
) -> Result<(), StampError> {
    layout::draw_text(surface, s, at, style(size, weight, color), Mark::Plain)?;
    Ok(())
}

/// The image scaled to fit `w` × `h`, bottom-centred in that box.
fn draw_image_in(surface: &mut Surface, image: &Image, (x, y, w, h): (f32, f32, f32, f32)) {
    let (iw, ih) = image.size();
    if iw == 0 || ih == 0 {
        return;
    }
    let scale = (w / iw as f32).min(h / ih as f32);
    let (dw, dh) = (iw as f32 * scale, ih as f32 * scale);
    let Some(size) = Size::from_wh(dw, dh) else {
        return;
    };
    surface.push_transform(&Transform::from_translate(x + (w - dw) / 2.0, y + (h - dh)));
    surface.draw_image(image.clone(), size);
    surface.pop();
}

/// One signature block with its top-left corner at (`x`, `y`).
fn draw_block(surface: &mut Surface, s: &Signer<'_>, x: f32, y: f32) -> Result<(), StampError> {
    let (bw, bh) = STAMP_BLOCK_SIZE;
    let pad = 6.0;
    layout::draw_rect(
        surface,
        (x, y, bw, bh),
        Some((255, 255, 255)),
        Some((BRAND, 0.8)),
    );
    let full = bw - 2.0 * pad;
    let text_w = if s.image.is_some() { 112.0 } else { full };
    if let Some(image) = &s.image {
        draw_image_in(surface, image, (x + bw - pad - 70.0, y + 5.0, 70.0, 33.0));
    }
    line(
        surface,
        "Electronically signed by",
        (x + pad, y + 11.0),
        5.5,
        Weight::Regular,
        MUTED,
    )?;
    let name = one_line(&s.signer.name_as_signed);
    let name = text::ellipsize(&name, 9.0, Weight::Bold, text_w)?;
    line(surface, &name, (x + pad, y + 23.0), 9.0, Weight::Bold, INK)?;
    if let Some(rep) = non_empty(s.signer.representing.as_deref()) {
        let rep = text::ellipsize(
            &format!("on behalf of {}", one_line(rep)),
            6.5,
            Weight::Regular,
            text_w,
        )?;
        line(
            surface,
            &rep,
            (x + pad, y + 33.0),
            6.5,
            Weight::Regular,
            INK,
        )?;
    }
    layout::fill_rect(
        surface,
        (x + pad, y + 41.0 - 0.5 / 2.0, full, 0.5),
        RULE,
        false,
    );
    let signed = text::ellipsize(
        &format!("Signed {}", one_line(&s.signer.signed_at)),
        6.5,
        Weight::Regular,
        full,
    )?;
    line(
        surface,
        &signed,
        (x + pad, y + 52.0),
        6.5,
        Weight::Regular,
        INK,
    )?;
    let caption = "Signeur";
    let caption_w = text::width(caption, 6.0, Weight::Bold)?;
    let id = text::ellipsize(
        &format!("Signer ID {}", one_line(&s.signer.id)),
        5.5,
        Weight::Regular,
        full - caption_w - 6.0,
    )?;
    line(
        surface,
        &id,
        (x + pad, y + 63.0),
        5.5,
        Weight::Regular,
        MUTED,
    )?;
    line(
        surface,
        caption,
        (x + bw - pad - caption_w, y + 63.0),
        6.0,
        Weight::Bold,
        BRAND,
    )?;
    Ok(())
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

/// What the certificate places on a page besides text and rules.
#[derive(Debug, Clone)]
enum Extra {
    /// A signer's drawn signature, fitted into `rect`.
    Image {
        signer: usize,
        rect: (f32, f32, f32, f32),
    },
    /// A signer's signature block with its top-left corner at (`x`, `y`).
    Block { signer: usize, x: f32, y: f32 },
}

/// Lays the certificate out over as many pages as it needs.
struct Flow {
    width: f32,
    height: f32,
    margin: f32,
    pages: Pages<Op<Extra>>,
}

const FOOTER_SPACE: f32 = 24.0;
const LABEL_WIDTH: f32 = 118.0;
const VALUE_SIZE: f32 = 9.0;
const VALUE_LEADING: f32 = 12.0;
const LABEL_SIZE: f32 = 8.0;

impl Flow {
    fn new(width: f32, height: f32) -> Self {
        let margin = if width < 500.0 { 36.0 } else { 50.0 };
        // A page with less than 30 points on it counts as empty: its content stays.
        let pages = Pages::new(margin, height - margin - FOOTER_SPACE, 30.0);
        Self {
            width,
            height,
            margin,
            pages,
        }
    }

    fn content_width(&self) -> f32 {
        self.width - 2.0 * self.margin
    }

    fn push(&mut self, op: Op<Extra>) {
        self.pages.push(op);
    }

    fn text(&mut self, x: f32, y: f32, size: f32, weight: Weight, color: Rgb, s: &str) {
        self.push(Op::Text {
            x,
            y,
            style: style(size, weight, color),
            text: s.to_owned(),
            mark: Mark::Plain,
        });
    }

    /// Starts a new page unless `needed` points still fit on this one.
    fn ensure(&mut self, needed: f32) {
        if !self.pages.needs_break(needed) {
            return;
        }
        self.pages.break_page();
        let m = self.margin;
        self.text(
            m,
            self.pages.y + 11.0,
            11.0,
            Weight::Bold,
            BRAND,
            "Signature certificate (continued)",
        );
        self.pages.y += 24.0;
    }

    fn rule(&mut self) {
        let (x, w) = (self.margin, self.content_width());
        let y = self.pages.y;
        self.push(layout::rule_op(x, y, w, RULE, 0.6));
    }

    /// A paragraph wrapped to the content width.
    fn paragraph(
        &mut self,
        s: &str,
        size: f32,
        weight: Weight,
        color: Rgb,
    ) -> Result<(), StampError> {
        let leading = size * 1.35;
        for l in text::wrap(s, size, weight, self.content_width())? {
            self.ensure(leading);
            let (x, y) = (self.margin, self.pages.y + size);
            self.text(x, y, size, weight, color, &l);
            self.pages.y += leading;
        }
        Ok(())
    }

    /// A label and its value, wrapped in the value column.
    fn row(&mut self, label: &str, value: &str, size: f32) -> Result<(), StampError> {
        let value_x = self.margin + LABEL_WIDTH;
        let value_w = self.content_width() - LABEL_WIDTH;
        let value = layout::or_dash(value);
        let lines = text::wrap(value, size, Weight::Regular, value_w)?;
        let leading = VALUE_LEADING * size / VALUE_SIZE;
        for (i, l) in lines.iter().enumerate() {
            self.ensure(leading);
            let y = self.pages.y + size;
            if i == 0 {
                let label = text::ellipsize(label, LABEL_SIZE, Weight::Regular, LABEL_WIDTH - 8.0)?;
                let m = self.margin;
                self.text(m, y, LABEL_SIZE, Weight::Regular, MUTED, &label);
            }
            self.text(value_x, y, size, Weight::Regular, INK, l);
            self.pages.y += leading;
        }
        self.pages.y += 2.0;
        Ok(())
    }

    /// A value that must stay on one line (the document hash): drawn smaller when needed.
    fn row_one_line(&mut self, label: &str, value: &str) -> Result<(), StampError> {
        let value_w = self.content_width() - LABEL_WIDTH;
        let at_nine = text::width(value, VALUE_SIZE, Weight::Regular)?;
        let size = if at_nine <= value_w {
            VALUE_SIZE
        } else {
            VALUE_SIZE * value_w / at_nine
        };
        if size < 5.0 {
            return self.row(label, value, VALUE_SIZE);
        }
        self.row(label, value, size)
    }

    fn grid_of_blocks(&mut self, signers: &[usize]) {
        let (bw, bh) = STAMP_BLOCK_SIZE;
        let cols =
            (((self.content_width() + BLOCK_GAP) / (bw + BLOCK_GAP)).floor() as usize).max(1);
        for row in signers.chunks(cols) {
            self.ensure(bh + BLOCK_GAP);
            for (i, signer) in row.iter().enumerate() {
                let x = self.margin + i as f32 * (bw + BLOCK_GAP);
                let y = self.pages.y;
                self.push(Op::Other(Extra::Block {
                    signer: *signer,
                    x,
                    y,
                }));
            }
            self.pages.y += bh + BLOCK_GAP;
        }
    }
}

/// The certificate pages' items, and how many pages they take.
fn certificate(
    input: &StampInput,
    signers: &[Signer<'_>],
    blocks_here: &[usize],
    width: f32,
    height: f32,
) -> Result<Flow, StampError> {
    let mut f = Flow::new(width, height);
    let m = f.margin;
    f.text(
        m,
        f.pages.y + 18.0,
        18.0,
        Weight::Bold,
        BRAND,
        "Signature certificate",
    );
    f.pages.y += 28.0;
    f.paragraph(
        "This page was added to the signed document by Signeur. The document as uploaded is \
         unchanged: its bytes come first in this file, and the electronic seal applied after \
         this page covers the whole file.",
        8.0,
        Weight::Regular,
        MUTED,
    )?;
    f.pages.y += 6.0;
    f.rule();
    f.pages.y += 10.0;

    f.row("Document", &input.title, VALUE_SIZE)?;
    f.row("Request ID", &input.request_id, VALUE_SIZE)?;
    f.row_one_line("Document SHA-256", &input.document_sha256)?;
    f.row("Created", &input.created_at, VALUE_SIZE)?;
    f.row("Completed", &input.completed_at, VALUE_SIZE)?;

    if !blocks_here.is_empty() {
        f.pages.y += 10.0;
        f.ensure(40.0 + STAMP_BLOCK_SIZE.1);
        let (m, y) = (f.margin, f.pages.y + 12.0);
        f.text(m, y, 12.0, Weight::Bold, BRAND, "Signatures");
        f.pages.y += 20.0;
        f.paragraph(
            "The last page of the document had no free space for the signature blocks, so \
             they are shown here.",
            8.0,
            Weight::Regular,
            MUTED,
        )?;
        f.pages.y += 6.0;
        f.grid_of_blocks(blocks_here);
    }

    f.pages.y += 10.0;
    // The heading stays with the first signer's name and rows.
    f.ensure(120.0);
    let (m, y) = (f.margin, f.pages.y + 12.0);
    let heading = format!("Signers ({})", signers.len());
    f.text(m, y, 12.0, Weight::Bold, BRAND, &heading);
    f.pages.y += 22.0;

    for (index, s) in signers.iter().enumerate() {
        let signer = s.signer;
        let name = if signer.name_as_signed.trim().is_empty() {
            "—".to_owned()
        } else {
            one_line(&signer.name_as_signed)
        };
        let lines = text::wrap(&name, 11.0, Weight::Bold, f.content_width())?;
        // Keep the name with the first rows of its signer.
        f.ensure(lines.len() as f32 * 14.0 + 3.0 * VALUE_LEADING);
        for l in lines {
            f.ensure(14.0);
            let (m, y) = (f.margin, f.pages.y + 11.0);
            f.text(m, y, 11.0, Weight::Bold, INK, &l);
            f.pages.y += 14.5;
        }
        f.pages.y += 3.0;
        if let Some(rep) = non_empty(signer.representing.as_deref()) {
            f.row("On behalf of", rep, VALUE_SIZE)?;
        }
        f.row("Email", &signer.email, VALUE_SIZE)?;
        f.row("Signed", &signer.signed_at, VALUE_SIZE)?;
        f.row(
            "Opened",
            signer.opened_at.as_deref().unwrap_or(""),
            VALUE_SIZE,
        )?;
        f.row("Verification", &signer.verification, VALUE_SIZE)?;
        f.row(
            "IP address",
            signer.ip_address.as_deref().unwrap_or(""),
            VALUE_SIZE,
        )?;
        f.row(
            "User agent",
            signer.user_agent.as_deref().unwrap_or(""),
            7.5,
        )?;
        f.row("Signer ID", &signer.id, VALUE_SIZE)?;
        if s.image.is_some() {
            f.ensure(52.0);
            let (m, y) = (f.margin, f.pages.y + LABEL_SIZE);
            f.text(m, y, LABEL_SIZE, Weight::Regular, MUTED, "Drawn signature");
            let rect = (f.margin + LABEL_WIDTH, f.pages.y, 160.0, 48.0);
            f.push(Op::Other(Extra::Image {
                signer: index,
                rect,
            }));
            f.pages.y += 52.0;
        }
        f.pages.y += 6.0;
        if index + 1 < signers.len() {
            f.rule();
            f.pages.y += 10.0;
        }
    }
    Ok(f)
}

/// Draws what only the certificate has: signature images and blocks.
fn draw_extra(
    surface: &mut Surface,
    extra: &Extra,
    signers: &[Signer<'_>],
) -> Result<(), StampError> {
    match extra {
        Extra::Image { signer, rect } => {
            if let Some(image) = signers.get(*signer).and_then(|s| s.image.as_ref()) {
                draw_image_in(surface, image, *rect);
            }
        }
        Extra::Block { signer, x, y } => {
            if let Some(s) = signers.get(*signer) {
                draw_block(surface, s, *x, *y)?;
            }
        }
    }
    Ok(())
}

/// What was drawn: the PDF bytes, with the overlays first (one page each, in order) and then
/// `certificate_pages` certificate pages.
pub(super) struct Drawn {
    pub pdf: Vec<u8>,
    pub certificate_pages: usize,
}

/// Draws the overlays and the certificate (`cert_size` points, with the blocks of the signers
/// in `blocks_on_certificate` at its top) into one krilla document.
pub(super) fn draw(
    input: &StampInput,
    signers: &[Signer<'_>],
    overlays: &[Overlay],
    blocks_on_certificate: &[usize],
    cert_size: (f32, f32),
) -> Result<Drawn, StampError> {
    let settings = SerializeSettings {
        // `/ActualText` spans need tagging on; no structure tree is copied out of this file.
        enable_tagging: true,
        xmp_metadata: false,
        ..SerializeSettings::default()
    };
    let mut document = Document::new_with(settings);
    for overlay in overlays {
        let settings = PageSettings::from_wh(overlay.width, overlay.height)
            .ok_or_else(|| StampError::Draw("invalid page size".into()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for (signer, x, y) in &overlay.blocks {
            if let Some(s) = signers.get(*signer) {
                draw_block(&mut surface, s, *x, *y)?;
            }
        }
        surface.finish();
        page.finish();
    }
    let mut flow = certificate(
        input,
        signers,
        blocks_on_certificate,
        cert_size.0,
        cert_size.1,
    )?;
    let total = flow.pages.pages.len();
    let footer_left = text::ellipsize(
        &format!(
            "Signeur · Signature certificate · Request {}",
            one_line(&input.request_id)
        ),
        7.0,
        Weight::Regular,
        flow.content_width() - 80.0,
    )?;
    let foot = style(7.0, Weight::Regular, MUTED);
    let footer_y = flow.height - flow.margin + 10.0;
    for (i, ops) in flow.pages.pages.iter_mut().enumerate() {
        ops.push(layout::rule_op(
            flow.margin,
            footer_y - 10.0,
            flow.width - 2.0 * flow.margin,
            RULE,
            0.6,
        ));
        let number = format!("Page {} of {}", i + 1, total);
        let number_w = text::width(&number, 7.0, Weight::Regular)?;
        for (x, text) in [
            (flow.margin, footer_left.clone()),
            (flow.width - flow.margin - number_w, number),
        ] {
            ops.push(Op::Text {
                x,
                y: footer_y,
                style: foot,
                text,
                mark: Mark::Plain,
            });
        }
    }
    for ops in &flow.pages.pages {
        let settings = PageSettings::from_wh(flow.width, flow.height)
            .ok_or_else(|| StampError::Draw("invalid page size".into()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        layout::draw_ops(&mut surface, ops, false, |surface, extra| {
            draw_extra(surface, extra, signers)
        })?;
        surface.finish();
        page.finish();
    }
    let pdf = document
        .finish()
        .map_err(|err| StampError::Draw(format!("{err:?}")))?;
    Ok(Drawn {
        pdf,
        certificate_pages: total,
    })
}
