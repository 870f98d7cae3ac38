//! The audit-trail PDF: a standalone record of one signature request — the request's details,
//! each signer with IP address and user agent, the chronological event timeline with its hash
//! chain, and the seal of the sealed document when there is one. It is informational and not
//! signed: the sealed document is the evidence. Generated on demand from an [`AuditTrail`] the
//! caller assembles; every text field arrives formatted for people.
//!
//! Laid out with [`crate::layout`]: A4 pages, key-value tables and the timeline as tagged
//! tables whose rows break across pages, headings kept with what follows them.

use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};

use krilla::configure::{ConfigurationBuilder, Validator};
use krilla::error::KrillaError;
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::tagging::{
    ArtifactType, Identifier, Node, TableHeaderScope, Tag, TagGroup, TagKind, TagTree,
};
use krilla::{Document, SerializeSettings};

use crate::layout::{self, Mark, Pages, Rgb, Style, or_dash, style};
use crate::text::{self, TextError, Weight};

/// The request part of the record.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub id: String,
    pub title: String,
    pub status: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub completed_at: Option<String>,
    pub expires_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub delivery: String,
    pub signing_order: String,
    pub message: Option<String>,
    pub document_name: Option<String>,
    /// Hex SHA-256 of the uploaded original.
    pub document_sha256: String,
    /// Hex SHA-256 of the sealed file, once sealed.
    pub sealed_document_sha256: Option<String>,
    /// Metadata as compact JSON, if any.
    pub metadata: Option<String>,
}

/// One signer.
#[derive(Debug, Clone, Default)]
pub struct AuditSigner {
    pub position: u32,
    pub id: String,
    pub name: Option<String>,
    pub email: String,
    pub name_as_signed: Option<String>,
    pub representing: Option<String>,
    pub status: String,
    /// In words: "Access code sent by email", "Integrator link", "Embedded session".
    pub verification: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub sent_at: Option<String>,
    pub opened_at: Option<String>,
    pub signed_at: Option<String>,
    pub declined_at: Option<String>,
    pub decline_reason: Option<String>,
}

/// One event of the timeline, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub id: String,
    pub event_type: String,
    pub created_at: String,
    /// One line in words, e.g. "Invitation email accepted by the SMTP server for a@example.com".
    pub summary: String,
    /// Who or what caused it, with IP and user agent where known.
    pub actor: Option<String>,
    pub hash: String,
    pub prev_hash: Option<String>,
}

/// One webhook delivery attempt for one of the request's events, oldest first. Listed in the
/// record, not part of the event chain.
#[derive(Debug, Clone, Default)]
pub struct AuditDelivery {
    /// The attempt's id (`wha_…`).
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// The endpoint it was sent to (`ep_…`).
    pub endpoint: String,
    /// 1-based.
    pub attempt: u32,
    pub created_at: String,
    /// In words: "Succeeded: HTTP 204 in 12 ms" or "Failed: connection refused (after 3 ms)".
    pub outcome: String,
}

/// The seal of the sealed document, as read back from it.
#[derive(Debug, Clone, Default)]
pub struct AuditSeal {
    /// "PAdES-B-B" or "PAdES-B-T".
    pub level: String,
    pub certificate_subject: String,
    pub certificate_issuer: String,
    pub certificate_serial: String,
    pub not_before: String,
    pub not_after: String,
    pub signed_at: Option<String>,
    pub timestamp_time: Option<String>,
    pub timestamp_authority: Option<String>,
    /// Whether the seal verified when the record was made, in words.
    pub verdict: String,
}

/// Whether the event hash chain verified.
#[derive(Debug, Clone, Default)]
pub struct AuditChain {
    pub valid: bool,
    /// In words: "All 9 events link to their predecessor" or what broke.
    pub detail: String,
}

/// The whole record.
#[derive(Debug, Clone, Default)]
pub struct AuditTrail {
    pub request: AuditRequest,
    pub signers: Vec<AuditSigner>,
    pub events: Vec<AuditEvent>,
    pub deliveries: Vec<AuditDelivery>,
    pub chain: AuditChain,
    pub seal: Option<AuditSeal>,
    pub generated_at: String,
}

/// Why the record could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditPdfError {
    #[error("the audit-trail PDF could not be drawn: {0}")]
    Draw(String),
}

/// Draws the audit-trail PDF: A4 pages, tagged (headings, paragraphs, tables; page headers and
/// footers as artifacts), PDF/A-2b when krilla's validator accepts the content, else plain
/// tagged PDF. The same trail always gives the same bytes (the creation date is taken from
/// `generated_at`). Never panics.
pub fn audit_trail_pdf(trail: &AuditTrail) -> Result<Vec<u8>, AuditPdfError> {
    catch_unwind(AssertUnwindSafe(|| draw(trail))).unwrap_or_else(|_| {
        Err(AuditPdfError::Draw(
            "the PDF library failed unexpectedly".into(),
        ))
    })
}

/// A4 portrait, in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 50.0;
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;
/// Where the body starts and must end on every page.
const TOP: f32 = MARGIN;
const BOTTOM: f32 = PAGE_H - 62.0;

/// Key-value tables: label column and value column.
const LABEL_X: f32 = MARGIN + 6.0;
const LABEL_W: f32 = 118.0;
const VALUE_X: f32 = MARGIN + 130.0;
const VALUE_W: f32 = CONTENT_W - 136.0;

/// Timeline columns: number, time, event.
const NUM_X: f32 = MARGIN + 4.0;
const TIME_X: f32 = MARGIN + 34.0;
const TIME_W: f32 = 108.0;
const EVENT_X: f32 = MARGIN + 152.0;
const EVENT_W: f32 = CONTENT_W - 156.0;
/// Width of the small labels ("Hash", "Previous") in front of the hashes.
const HASH_LABEL_W: f32 = 40.0;

const INK: Rgb = (0x1f, 0x29, 0x37);
const ACCENT: Rgb = (0x1e, 0x3a, 0x5f);
const MUTED: Rgb = (0x4b, 0x55, 0x63);
const FAINT: Rgb = (0x6b, 0x72, 0x80);
const RULE: Rgb = (0xd1, 0xd5, 0xdb);
const SHADE: Rgb = (0xf1, 0xf3, 0xf6);
const GOOD: Rgb = (0x16, 0x6b, 0x34);
const GOOD_BG: Rgb = (0xe6, 0xf4, 0xea);
const BAD: Rgb = (0xb4, 0x23, 0x18);
const BAD_BG: Rgb = (0xfd, 0xec, 0xea);

const NOTE: &str = "This record is informational and is not cryptographically signed: the \
                    sealed document itself is the legal evidence.";

fn draw_error(_: TextError) -> AuditPdfError {
    AuditPdfError::Draw("the embedded font could not be loaded".into())
}

const LABEL: Style = style(8.5, Weight::Bold, MUTED);
const VALUE: Style = style(9.0, Weight::Regular, INK);
const SMALL: Style = style(8.0, Weight::Regular, MUTED);
const HASH: Style = style(7.0, Weight::Regular, INK);
const HASH_LABEL: Style = style(6.5, Weight::Bold, FAINT);
const FOOT: Style = style(7.5, Weight::Regular, FAINT);

/// One piece of text on a line, `dx` from the line's start.
#[derive(Debug, Clone)]
struct Part {
    dx: f32,
    text: String,
    style: Style,
}

/// One line of a block: its parts and the height it takes.
#[derive(Debug, Clone)]
struct Line {
    parts: Vec<Part>,
    height: f32,
}

fn line_height(size: f32) -> f32 {
    size * 1.32
}

impl Line {
    fn one(text: String, style: Style) -> Line {
        Line {
            parts: vec![Part {
                dx: 0.0,
                text,
                style,
            }],
            height: line_height(style.size),
        }
    }

    fn space(height: f32) -> Line {
        Line {
            parts: Vec::new(),
            height,
        }
    }
}

/// Control characters become spaces (line breaks too, unless `keep_breaks`), and the three
/// code points PDF/A forbids in text become U+FFFD.
fn sanitize(text: &str, keep_breaks: bool) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\n' | '\r' if keep_breaks => '\n',
            '\u{feff}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// `text` wrapped to `width`; never empty (an empty text gives one empty line).
fn wrapped(text: &str, style: Style, width: f32) -> Result<Vec<Line>, AuditPdfError> {
    let clean = sanitize(text, true);
    let lines = text::wrap(&clean, style.size, style.weight, width).map_err(draw_error)?;
    let mut out: Vec<Line> = lines.into_iter().map(|l| Line::one(l, style)).collect();
    if out.is_empty() {
        out.push(Line::one(String::new(), style));
    }
    Ok(out)
}

/// `text` on one line, shrunk (down to 6 pt) to fit `width`; wrapped only if it still does not.
fn one_line(text: &str, style: Style, width: f32) -> Result<Vec<Line>, AuditPdfError> {
    shrunk(text, style, width, 6.0)
}

/// `text` on one line, shrunk down to `min` points to fit `width`, else wrapped at that size.
fn shrunk(text: &str, style: Style, width: f32, min: f32) -> Result<Vec<Line>, AuditPdfError> {
    let clean = sanitize(text, false);
    let mut fitted = style;
    while fitted.size > min
        && text::width(&clean, fitted.size, fitted.weight).map_err(draw_error)? > width
    {
        fitted.size -= 0.25;
    }
    if text::width(&clean, fitted.size, fitted.weight).map_err(draw_error)? <= width {
        return Ok(vec![Line::one(clean, fitted)]);
    }
    wrapped(&clean, fitted, width)
}

/// A small label followed by a value on the same line (continuation lines indented).
fn labeled(label: &str, value: &str, label_w: f32, width: f32) -> Result<Vec<Line>, AuditPdfError> {
    let mut lines = one_line(value, HASH, width - label_w)?;
    for line in &mut lines {
        for part in &mut line.parts {
            part.dx += label_w;
        }
    }
    if let Some(first) = lines.first_mut() {
        first.parts.insert(
            0,
            Part {
                dx: 0.0,
                text: label.to_string(),
                style: HASH_LABEL,
            },
        );
        first.height = first.height.max(line_height(HASH_LABEL.size));
    }
    Ok(lines)
}

/// What is drawn on a page: text (content, tagged as a span, or an artifact) and filled
/// rectangles (rules, shading: always layout artifacts).
type Op = layout::Op<Infallible>;

/// The structure tree as laid out: groups and the text drawn for them, by page and op index.
#[derive(Debug, Clone)]
enum SNode {
    Group(SGroup),
    Leaf(usize, usize),
}

#[derive(Debug, Clone)]
struct SGroup {
    tag: TagKind,
    children: Vec<SNode>,
}

impl SGroup {
    fn new(tag: impl Into<TagKind>) -> SGroup {
        SGroup {
            tag: tag.into(),
            children: Vec::new(),
        }
    }

    fn push(&mut self, child: SGroup) {
        self.children.push(SNode::Group(child));
    }
}

/// How a table row looks.
#[derive(Debug, Clone, Copy)]
struct RowLook {
    pad: f32,
    shade: Option<Rgb>,
    bar: Option<Rgb>,
    rule: bool,
    artifact: Option<ArtifactType>,
}

const PLAIN_ROW: RowLook = RowLook {
    pad: 3.5,
    shade: None,
    bar: None,
    rule: true,
    artifact: None,
};

/// One cell: its structure tag, where its text starts, and its lines.
struct Cell {
    tag: TagKind,
    x: f32,
    lines: Vec<Line>,
}

/// A column header repeated at the top of each page a table continues on.
#[derive(Debug, Clone)]
struct RepeatHeader {
    cells: Vec<(f32, String)>,
}

/// The layout cursor: pages of ops, the current position and the structure so far.
struct Layout {
    pages: Pages<Op>,
    root: Vec<SNode>,
    repeat: Option<RepeatHeader>,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            // A page counts as empty until something is placed below its (repeated) header.
            pages: Pages::new(TOP, BOTTOM, 0.5),
            root: Vec::new(),
            repeat: None,
        }
    }

    fn new_page(&mut self) {
        self.pages.break_page();
        if let Some(header) = self.repeat.clone() {
            let cells = header
                .cells
                .into_iter()
                .map(|(x, text)| Cell {
                    tag: Tag::TD.into(),
                    x,
                    lines: vec![Line::one(text, LABEL)],
                })
                .collect();
            let look = RowLook {
                shade: Some(SHADE),
                artifact: Some(ArtifactType::Header),
                ..PLAIN_ROW
            };
            // Drawn as artifacts, so the groups it returns stay out of the tree.
            let _ = self.row(cells, look);
        }
        self.pages.page_top = self.pages.y;
    }

    /// Starts a new page unless `height` fits below the cursor (or the page is still empty).
    fn ensure(&mut self, height: f32) {
        if self.pages.needs_break(height) {
            self.new_page();
        }
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgb) {
        self.pages.push(Op::Rect { x, y, w, h, color });
    }

    /// Emits `line` with its top at `top`; its text becomes leaves of `group` (unless it is
    /// an artifact).
    fn emit(
        &mut self,
        line: &Line,
        x: f32,
        top: f32,
        group: &mut SGroup,
        artifact: Option<ArtifactType>,
    ) {
        let size = line.parts.iter().map(|p| p.style.size).fold(0.0, f32::max);
        let baseline = top + size * 1.0;
        for part in &line.parts {
            if part.text.trim().is_empty() {
                continue;
            }
            let page = self.pages.page();
            let ops = self.pages.ops();
            ops.push(Op::Text {
                x: x + part.dx,
                y: baseline,
                style: part.style,
                text: part.text.clone(),
                mark: artifact.map_or(Mark::Span, Mark::Artifact),
            });
            if artifact.is_none() {
                group.children.push(SNode::Leaf(page, ops.len() - 1));
            }
        }
    }

    /// Lines one after another, breaking pages between lines.
    fn block(&mut self, tag: impl Into<TagKind>, lines: &[Line], x: f32) -> SGroup {
        let mut group = SGroup::new(tag);
        for line in lines {
            self.ensure(line.height);
            let top = self.pages.y;
            self.emit(line, x, top, &mut group, None);
            self.pages.y += line.height;
        }
        group
    }

    fn heading(&mut self, level: u16, text: &str) -> Result<(), AuditPdfError> {
        let (style, before, after) = match level {
            1 => (style(20.0, Weight::Bold, ACCENT), 0.0, 2.0),
            2 => (style(13.0, Weight::Bold, ACCENT), 16.0, 5.0),
            _ => (style(10.5, Weight::Bold, INK), 10.0, 3.0),
        };
        let title = sanitize(text, false);
        let lines = wrapped(&title, style, CONTENT_W)?;
        let height: f32 = lines.iter().map(|l| l.height).sum();
        if !self.pages.at_top() {
            self.pages.y += before;
        }
        // Keep the heading with the start of what follows it.
        self.ensure(height + after + 48.0);
        let tag = Tag::Hn(
            std::num::NonZeroU16::new(level).unwrap_or(std::num::NonZeroU16::MIN),
            Some(title),
        );
        let group = self.block(tag, &lines, MARGIN);
        self.root.push(SNode::Group(group));
        if level == 2 {
            let y = self.pages.y + 1.0;
            self.rect(MARGIN, y, CONTENT_W, 0.8, ACCENT);
            self.pages.y += 2.0;
        }
        self.pages.y += after;
        Ok(())
    }

    fn paragraph(&mut self, lines: &[Line], x: f32) {
        let group = self.block(Tag::P, lines, x);
        self.root.push(SNode::Group(group));
    }

    /// One table row; a row taller than what is left of the page is moved to the next page,
    /// and one taller than a whole page is split between lines. Returns the cells' groups.
    fn row(&mut self, cells: Vec<Cell>, look: RowLook) -> Vec<SGroup> {
        let mut groups: Vec<SGroup> = cells.iter().map(|c| SGroup::new(c.tag.clone())).collect();
        let mut next = vec![0usize; cells.len()];
        let pad = look.pad;
        loop {
            let rest = |i: usize, next: &[usize]| -> f32 {
                cells[i].lines[next[i]..].iter().map(|l| l.height).sum()
            };
            let need = (0..cells.len()).map(|i| rest(i, &next)).fold(0.0, f32::max) + 2.0 * pad;
            if self.pages.needs_break(need)
                && (need <= BOTTOM - TOP - 30.0 || BOTTOM - self.pages.y < 2.0 * pad + 40.0)
            {
                self.new_page();
            }
            let available = BOTTOM - self.pages.y - 2.0 * pad;
            let mut take = vec![0usize; cells.len()];
            let mut height = vec![0f32; cells.len()];
            for (i, cell) in cells.iter().enumerate() {
                for line in &cell.lines[next[i]..] {
                    if height[i] + line.height > available {
                        break;
                    }
                    height[i] += line.height;
                    take[i] += 1;
                }
            }
            if take.iter().all(|&t| t == 0) {
                // Not even one line fits on a fresh page: draw one anyway, so the flow ends.
                if let Some(i) = (0..cells.len()).find(|&i| next[i] < cells[i].lines.len()) {
                    take[i] = 1;
                    height[i] = cells[i].lines[next[i]].height;
                }
            }
            let part = height.iter().copied().fold(0.0, f32::max) + 2.0 * pad;
            let top = self.pages.y;
            if let Some(shade) = look.shade {
                self.rect(MARGIN, top, CONTENT_W, part, shade);
            }
            if let Some(bar) = look.bar {
                self.rect(MARGIN, top, 3.0, part, bar);
            }
            for (i, cell) in cells.iter().enumerate() {
                let mut y = top + pad;
                for line in &cell.lines[next[i]..next[i] + take[i]] {
                    self.emit(line, cell.x, y, &mut groups[i], look.artifact);
                    y += line.height;
                }
                next[i] += take[i];
            }
            self.pages.y += part;
            if look.rule {
                let y = self.pages.y - 0.5;
                self.rect(MARGIN, y, CONTENT_W, 0.5, RULE);
            }
            if (0..cells.len()).all(|i| next[i] >= cells[i].lines.len()) {
                break;
            }
            self.new_page();
        }
        groups
    }

    /// A two-column table of labels (row headers) and values.
    fn key_values(&mut self, rows: Vec<(&str, Vec<Line>)>) -> Result<(), AuditPdfError> {
        let mut table = SGroup::new(Tag::Table);
        for (label, value) in rows {
            let cells = vec![
                Cell {
                    tag: Tag::TH(TableHeaderScope::Row).into(),
                    x: LABEL_X,
                    lines: wrapped(label, LABEL, LABEL_W)?,
                },
                Cell {
                    tag: Tag::TD.into(),
                    x: VALUE_X,
                    lines: value,
                },
            ];
            let mut tr = SGroup::new(Tag::TR);
            for cell in self.row(cells, PLAIN_ROW) {
                tr.push(cell);
            }
            table.push(tr);
        }
        self.root.push(SNode::Group(table));
        Ok(())
    }
}

/// A key-value row with wrapped text.
fn kv<'a>(label: &'a str, value: &str) -> Result<(&'a str, Vec<Line>), AuditPdfError> {
    Ok((label, wrapped(or_dash(value), VALUE, VALUE_W)?))
}

fn build(trail: &AuditTrail) -> Result<Layout, AuditPdfError> {
    let request = &trail.request;
    let mut l = Layout::new();

    // Title block.
    l.heading(1, "Audit trail")?;
    let title = if request.title.trim().is_empty() {
        "Untitled request"
    } else {
        &request.title
    };
    let lines = wrapped(title, style(14.0, Weight::Regular, INK), CONTENT_W)?;
    l.paragraph(&lines, MARGIN);
    l.pages.y += 4.0;
    let lines = wrapped(
        &format!(
            "Request {} · generated {}",
            or_dash(&request.id),
            or_dash(&trail.generated_at)
        ),
        style(9.0, Weight::Regular, MUTED),
        CONTENT_W,
    )?;
    l.paragraph(&lines, MARGIN);
    l.pages.y += 6.0;
    let lines = wrapped(NOTE, style(8.5, Weight::Regular, INK), CONTENT_W - 16.0)?;
    let cells = vec![Cell {
        tag: Tag::P.into(),
        x: MARGIN + 10.0,
        lines,
    }];
    let look = RowLook {
        pad: 5.0,
        shade: Some(SHADE),
        bar: Some(FAINT),
        rule: false,
        artifact: None,
    };
    for group in l.row(cells, look) {
        l.root.push(SNode::Group(group));
    }

    // Request.
    l.heading(2, "Request")?;
    let mut rows = vec![
        (
            "Request ID",
            one_line(or_dash(&request.id), VALUE, VALUE_W)?,
        ),
        kv("Title", &request.title)?,
        kv("Status", &request.status)?,
        kv("Created", &request.created_at)?,
    ];
    for (label, value) in [
        ("Sent", &request.sent_at),
        ("Completed", &request.completed_at),
        ("Expires", &request.expires_at),
        ("Cancelled", &request.cancelled_at),
    ] {
        if let Some(value) = value {
            rows.push(kv(label, value)?);
        }
    }
    rows.push(kv("Delivery", &request.delivery)?);
    rows.push(kv("Signing order", &request.signing_order)?);
    if let Some(name) = &request.document_name {
        rows.push(kv("Document name", name)?);
    }
    if let Some(message) = &request.message {
        rows.push(kv("Message", message)?);
    }
    if let Some(metadata) = &request.metadata {
        rows.push(kv("Metadata", metadata)?);
    }
    l.key_values(rows)?;

    // Documents.
    l.heading(2, "Documents")?;
    let hash_style = style(8.5, Weight::Regular, INK);
    let sealed = match &request.sealed_document_sha256 {
        Some(hash) => one_line(or_dash(hash), hash_style, VALUE_W)?,
        None => wrapped("Not sealed yet", VALUE, VALUE_W)?,
    };
    l.key_values(vec![
        (
            "Original SHA-256",
            one_line(or_dash(&request.document_sha256), hash_style, VALUE_W)?,
        ),
        ("Sealed SHA-256", sealed),
    ])?;

    // Signers.
    l.heading(2, "Signers")?;
    if trail.signers.is_empty() {
        let lines = wrapped("No signers.", VALUE, CONTENT_W)?;
        l.paragraph(&lines, MARGIN);
    }
    for signer in &trail.signers {
        let who = signer
            .name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&signer.email);
        l.heading(3, &format!("Signer {}: {}", signer.position, or_dash(who)))?;
        let not_recorded = "Not recorded";
        let mut rows = vec![
            kv("Name", signer.name.as_deref().unwrap_or("—"))?,
            kv("Email", &signer.email)?,
        ];
        if let Some(v) = &signer.name_as_signed {
            rows.push(kv("Name as signed", v)?);
        }
        if let Some(v) = &signer.representing {
            rows.push(kv("Representing", v)?);
        }
        rows.push(kv("Status", &signer.status)?);
        rows.push(kv("Verification", &signer.verification)?);
        rows.push(kv(
            "IP address",
            signer.ip_address.as_deref().unwrap_or(not_recorded),
        )?);
        rows.push(kv(
            "User agent",
            signer.user_agent.as_deref().unwrap_or(not_recorded),
        )?);
        for (label, value) in [
            ("Sent", &signer.sent_at),
            ("Opened", &signer.opened_at),
            ("Signed", &signer.signed_at),
            ("Declined", &signer.declined_at),
            ("Decline reason", &signer.decline_reason),
        ] {
            if let Some(value) = value {
                rows.push(kv(label, value)?);
            }
        }
        l.key_values(rows)?;
    }

    // Seal.
    l.heading(2, "Seal")?;
    match &trail.seal {
        None => {
            let lines = wrapped(
                "Not sealed yet: the request has no sealed document.",
                VALUE,
                CONTENT_W,
            )?;
            l.paragraph(&lines, MARGIN);
        }
        Some(seal) => {
            let mut rows = vec![
                kv("Level", &seal.level)?,
                kv("Verdict", &seal.verdict)?,
                kv("Certificate subject", &seal.certificate_subject)?,
                kv("Certificate issuer", &seal.certificate_issuer)?,
                (
                    "Certificate serial",
                    one_line(or_dash(&seal.certificate_serial), VALUE, VALUE_W)?,
                ),
                kv(
                    "Certificate validity",
                    &format!(
                        "{} to {}",
                        or_dash(&seal.not_before),
                        or_dash(&seal.not_after)
                    ),
                )?,
            ];
            if let Some(v) = &seal.signed_at {
                rows.push(kv("Signed at", v)?);
            }
            rows.push(kv(
                "Timestamp",
                seal.timestamp_time
                    .as_deref()
                    .unwrap_or("None (no timestamp)"),
            )?);
            if let Some(v) = &seal.timestamp_authority {
                rows.push(kv("Timestamp authority", v)?);
            }
            l.key_values(rows)?;
        }
    }

    // Event chain.
    l.heading(2, "Event chain")?;
    let (verdict, color, background) = if trail.chain.valid {
        ("✓ Verified: the event hash chain is intact", GOOD, GOOD_BG)
    } else {
        (
            "✗ NOT VERIFIED: the event hash chain is broken",
            BAD,
            BAD_BG,
        )
    };
    let mut lines = wrapped(verdict, style(10.5, Weight::Bold, color), CONTENT_W - 20.0)?;
    if !trail.chain.detail.trim().is_empty() {
        lines.extend(wrapped(&trail.chain.detail, VALUE, CONTENT_W - 20.0)?);
    }
    let look = RowLook {
        pad: 6.0,
        shade: Some(background),
        bar: Some(color),
        rule: false,
        artifact: None,
    };
    let cells = vec![Cell {
        tag: Tag::P.into(),
        x: MARGIN + 12.0,
        lines,
    }];
    for group in l.row(cells, look) {
        l.root.push(SNode::Group(group));
    }

    // Timeline.
    l.heading(2, "Timeline")?;
    let count = trail.events.len();
    let intro = match count {
        0 => "No events recorded.".to_string(),
        1 => "1 event.".to_string(),
        n => format!("{n} events, oldest first."),
    };
    let lines = wrapped(&intro, style(9.0, Weight::Regular, MUTED), CONTENT_W)?;
    l.paragraph(&lines, MARGIN);
    l.pages.y += 4.0;
    if count > 0 {
        timeline(&mut l, &trail.events)?;
    }

    // Webhook deliveries: listed, not chained.
    l.heading(2, "Webhook deliveries")?;
    let count = trail.deliveries.len();
    let intro = match count {
        0 => "No webhook delivery attempts.".to_string(),
        1 => "1 attempt. Delivery attempts are listed here, not in the event chain.".to_string(),
        n => format!(
            "{n} attempts, oldest first. Delivery attempts are listed here, not in the event chain."
        ),
    };
    let lines = wrapped(&intro, style(9.0, Weight::Regular, MUTED), CONTENT_W)?;
    l.paragraph(&lines, MARGIN);
    l.pages.y += 4.0;
    if count > 0 {
        let mut rows = Vec::with_capacity(count);
        for d in &trail.deliveries {
            let mut lines = wrapped(
                &format!("{} (attempt {})", or_dash(&d.event_type), d.attempt),
                style(9.0, Weight::Bold, INK),
                EVENT_W,
            )?;
            lines.extend(wrapped(or_dash(&d.outcome), VALUE, EVENT_W)?);
            lines.push(Line::space(2.0));
            lines.extend(labeled(
                "Endpoint",
                or_dash(&d.endpoint),
                HASH_LABEL_W,
                EVENT_W,
            )?);
            lines.extend(labeled(
                "Event ID",
                or_dash(&d.event_id),
                HASH_LABEL_W,
                EVENT_W,
            )?);
            lines.extend(labeled("Attempt", or_dash(&d.id), HASH_LABEL_W, EVENT_W)?);
            rows.push((d.created_at.as_str(), lines));
        }
        numbered_table(&mut l, "Delivery", rows)?;
    }
    Ok(l)
}

fn timeline(l: &mut Layout, events: &[AuditEvent]) -> Result<(), AuditPdfError> {
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let mut lines = wrapped(
            or_dash(&event.event_type),
            style(9.0, Weight::Bold, INK),
            EVENT_W,
        )?;
        if !event.summary.trim().is_empty() {
            lines.extend(wrapped(&event.summary, VALUE, EVENT_W)?);
        }
        if let Some(actor) = event.actor.as_deref().filter(|a| !a.trim().is_empty()) {
            lines.extend(wrapped(&format!("By {actor}"), SMALL, EVENT_W)?);
        }
        lines.push(Line::space(2.0));
        lines.extend(labeled(
            "Event ID",
            or_dash(&event.id),
            HASH_LABEL_W,
            EVENT_W,
        )?);
        lines.extend(labeled(
            "Hash",
            or_dash(&event.hash),
            HASH_LABEL_W,
            EVENT_W,
        )?);
        let previous = match event.prev_hash.as_deref() {
            Some(hash) if !hash.trim().is_empty() => hash,
            _ => "none (first event)",
        };
        lines.extend(labeled("Previous", previous, HASH_LABEL_W, EVENT_W)?);
        rows.push((event.created_at.as_str(), lines));
    }
    numbered_table(l, "Event", rows)
}

/// A table of numbered rows: `#`, a time, and the lines of what happened (`what` heads that
/// column, "(continued)" on later pages).
fn numbered_table(
    l: &mut Layout,
    what: &str,
    rows: Vec<(&str, Vec<Line>)>,
) -> Result<(), AuditPdfError> {
    let columns = [(NUM_X, "#"), (TIME_X, "Time"), (EVENT_X, what)];
    let mut table = SGroup::new(Tag::Table);
    let mut head = SGroup::new(Tag::THead);
    let mut tr = SGroup::new(Tag::TR);
    l.ensure(80.0);
    let cells = columns
        .iter()
        .map(|&(x, text)| Cell {
            tag: Tag::TH(TableHeaderScope::Column).into(),
            x,
            lines: vec![Line::one(text.to_string(), LABEL)],
        })
        .collect();
    let look = RowLook {
        shade: Some(SHADE),
        ..PLAIN_ROW
    };
    for cell in l.row(cells, look) {
        tr.push(cell);
    }
    head.push(tr);
    table.push(head);
    l.repeat = Some(RepeatHeader {
        cells: columns
            .iter()
            .map(|&(x, text)| {
                (
                    x,
                    format!("{text}{}", if x == EVENT_X { " (continued)" } else { "" }),
                )
            })
            .collect(),
    });

    let mut body = SGroup::new(Tag::TBody);
    for (i, (time, lines)) in rows.into_iter().enumerate() {
        let cells = vec![
            Cell {
                tag: Tag::TD.into(),
                x: NUM_X,
                lines: vec![Line::one((i + 1).to_string(), SMALL)],
            },
            Cell {
                tag: Tag::TD.into(),
                x: TIME_X,
                lines: shrunk(or_dash(time), style(8.5, Weight::Regular, INK), TIME_W, 7.5)?,
            },
            Cell {
                tag: Tag::TD.into(),
                x: EVENT_X,
                lines,
            },
        ];
        let look = RowLook {
            pad: 4.5,
            ..PLAIN_ROW
        };
        let mut tr = SGroup::new(Tag::TR);
        for cell in l.row(cells, look) {
            tr.push(cell);
        }
        body.push(tr);
    }
    table.push(body);
    l.repeat = None;
    l.root.push(SNode::Group(table));
    Ok(())
}

/// Page headers (from the second page) and footers on every page, as artifacts.
fn furnish(l: &mut Layout, trail: &AuditTrail) -> Result<(), AuditPdfError> {
    let total = l.pages.pages.len();
    let id = sanitize(or_dash(&trail.request.id), false);
    let title = sanitize(&trail.request.title, false);
    let note = text::ellipsize(
        "Informational record, not cryptographically signed. The sealed document is the \
         legal evidence.",
        6.8,
        Weight::Regular,
        CONTENT_W,
    )
    .map_err(draw_error)?;
    for (index, ops) in l.pages.pages.iter_mut().enumerate() {
        let page_label = format!("Page {} of {}", index + 1, total);
        let label_w = text::width(&page_label, FOOT.size, FOOT.weight).map_err(draw_error)?;
        let left = text::ellipsize(
            &format!("Audit trail · Request {id}"),
            FOOT.size,
            FOOT.weight,
            CONTENT_W - label_w - 20.0,
        )
        .map_err(draw_error)?;
        let rule_y = PAGE_H - 50.0;
        ops.push(Op::Rect {
            x: MARGIN,
            y: rule_y,
            w: CONTENT_W,
            h: 0.5,
            color: RULE,
        });
        let footer = Mark::Artifact(ArtifactType::Footer);
        ops.push(Op::Text {
            x: MARGIN,
            y: rule_y + 12.0,
            style: FOOT,
            text: left,
            mark: footer,
        });
        ops.push(Op::Text {
            x: MARGIN + CONTENT_W - label_w,
            y: rule_y + 12.0,
            style: FOOT,
            text: page_label,
            mark: footer,
        });
        ops.push(Op::Text {
            x: MARGIN,
            y: rule_y + 22.0,
            style: style(6.8, Weight::Regular, FAINT),
            text: note.clone(),
            mark: footer,
        });
        if index > 0 {
            let head = text::ellipsize(
                &format!("Audit trail · {title}"),
                FOOT.size,
                FOOT.weight,
                CONTENT_W,
            )
            .map_err(draw_error)?;
            ops.push(Op::Text {
                x: MARGIN,
                y: 32.0,
                style: FOOT,
                text: head,
                mark: Mark::Artifact(ArtifactType::Header),
            });
            ops.push(Op::Rect {
                x: MARGIN,
                y: 38.0,
                w: CONTENT_W,
                h: 0.5,
                color: RULE,
            });
        }
    }
    Ok(())
}

/// The first `YYYY-MM-DD[ T]HH:MM[:SS]` in `text`, with `Z`, `UTC` or `±HH[:]MM` after it.
fn parse_date(text: &str) -> Option<DateTime> {
    let b = text.as_bytes();
    (0..b.len()).find_map(|i| date_at(&b[i..]))
}

fn number(b: &[u8], range: std::ops::Range<usize>) -> Option<u16> {
    let digits = b.get(range)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u16, |n, d| {
        n.checked_mul(10)?.checked_add(u16::from(d - b'0'))
    })
}

fn date_at(b: &[u8]) -> Option<DateTime> {
    let year = number(b, 0..4)?;
    let month = u8::try_from(number(b, 5..7)?).ok()?;
    let day = u8::try_from(number(b, 8..10)?).ok()?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut date = DateTime::new(year).month(month).day(day);
    if !matches!(b.get(10), Some(b'T' | b' ')) || b.get(13) != Some(&b':') {
        return Some(date);
    }
    let (Some(hour), Some(minute)) = (number(b, 11..13), number(b, 14..16)) else {
        return Some(date);
    };
    if hour > 23 || minute > 59 {
        return Some(date);
    }
    date = date.hour(hour as u8).minute(minute as u8);
    let mut rest = &b[16..];
    if rest.first() == Some(&b':')
        && let Some(second) = number(rest, 1..3).filter(|s| *s < 60)
    {
        date = date.second(second as u8);
        rest = &rest[3..];
    }
    // Fractions of a second, then the zone.
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + digits..];
    }
    while rest.first() == Some(&b' ') {
        rest = &rest[1..];
    }
    if rest.starts_with(b"Z") || rest.starts_with(b"UTC") || rest.starts_with(b"GMT") {
        return Some(date.utc_offset_hour(0).utc_offset_minute(0));
    }
    if let Some(&sign @ (b'+' | b'-')) = rest.first() {
        let hours = number(rest, 1..3).filter(|h| *h < 24);
        let colon = usize::from(rest.get(3) == Some(&b':'));
        let minutes = number(rest, 3 + colon..5 + colon).filter(|m| *m < 60);
        if let (Some(h), Some(m)) = (hours, minutes) {
            let h = h as i8;
            return Some(
                date.utc_offset_hour(if sign == b'-' { -h } else { h })
                    .utc_offset_minute(m as u8),
            );
        }
    }
    Some(date)
}

fn metadata(trail: &AuditTrail) -> Metadata {
    let title: String = sanitize(&trail.request.title, false)
        .chars()
        .take(500)
        .collect();
    let title = if title.trim().is_empty() {
        "Audit trail".to_string()
    } else {
        format!("Audit trail: {title}")
    };
    let mut metadata = Metadata::new()
        .title(title)
        .language("en".into())
        .creator("Signeur".into())
        .producer("Signeur".into());
    if let Some(date) = parse_date(&trail.generated_at) {
        metadata = metadata.creation_date(date);
    }
    metadata
}

/// Why one rendering attempt failed.
enum Failure {
    /// The PDF/A validator refused the content.
    Validation(String),
    Other(String),
}

impl From<TextError> for Failure {
    fn from(e: TextError) -> Self {
        Failure::Other(e.to_string())
    }
}

fn draw(trail: &AuditTrail) -> Result<Vec<u8>, AuditPdfError> {
    let mut layout = build(trail)?;
    furnish(&mut layout, trail)?;
    match render(&layout, trail, true) {
        Ok(bytes) => Ok(bytes),
        Err(Failure::Validation(_)) => match render(&layout, trail, false) {
            Ok(bytes) => Ok(bytes),
            Err(Failure::Validation(e) | Failure::Other(e)) => Err(AuditPdfError::Draw(e)),
        },
        Err(Failure::Other(e)) => Err(AuditPdfError::Draw(e)),
    }
}

fn render(layout: &Layout, trail: &AuditTrail, archival: bool) -> Result<Vec<u8>, Failure> {
    let mut builder = ConfigurationBuilder::new();
    if archival {
        builder = builder.set_validator(Validator::A(krilla::configure::Archival::A2_B));
    }
    let configuration = builder
        .finish()
        .map_err(|e| Failure::Other(format!("{e:?}")))?;
    let settings = SerializeSettings {
        enable_tagging: true,
        configuration,
        ..SerializeSettings::default()
    };
    let mut document = Document::new_with(settings);
    let mut ids: Vec<Vec<Option<Identifier>>> = Vec::with_capacity(layout.pages.pages.len());
    let page_settings = PageSettings::from_wh(PAGE_W, PAGE_H)
        .ok_or_else(|| Failure::Other("invalid page size".into()))?;
    for ops in &layout.pages.pages {
        let mut page = document.start_page_with(page_settings.clone());
        let mut surface = page.surface();
        let page_ids =
            layout::draw_ops(&mut surface, ops, true, |_, never| -> Result<(), Failure> {
                match *never {}
            })?;
        surface.finish();
        page.finish();
        ids.push(page_ids);
    }
    let mut tree = TagTree::new().with_lang(Some("en".into()));
    for node in &layout.root {
        if let Some(node) = tag_node(node, &mut ids) {
            tree.push(node);
        }
    }
    document.set_tag_tree(tree);
    document.set_metadata(metadata(trail));
    document.finish().map_err(|e| match e {
        KrillaError::Validation(errors) => Failure::Validation(format!("{errors:?}")),
        e => Failure::Other(format!("{e:?}")),
    })
}

/// The krilla node for a laid-out one; empty groups are left out.
fn tag_node(node: &SNode, ids: &mut [Vec<Option<Identifier>>]) -> Option<Node> {
    match node {
        SNode::Leaf(page, op) => ids.get_mut(*page)?.get_mut(*op)?.take().map(Node::from),
        SNode::Group(group) => {
            let children: Vec<Node> = group
                .children
                .iter()
                .filter_map(|child| tag_node(child, ids))
                .collect();
            (!children.is_empty())
                .then(|| Node::from(TagGroup::with_children(group.tag.clone(), children)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_from_common_formats() {
        let utc = DateTime::new(2026)
            .month(11)
            .day(25)
            .hour(14)
            .minute(3)
            .second(12)
            .utc_offset_hour(0)
            .utc_offset_minute(0);
        assert_eq!(parse_date("2026-11-25 14:03:12 UTC"), Some(utc));
        assert_eq!(parse_date("2026-11-25T14:03:12.123456Z"), Some(utc));
        assert_eq!(parse_date("Generated 2026-11-25 14:03:12 UTC"), Some(utc));
        let cet = DateTime::new(2026)
            .month(11)
            .day(25)
            .hour(14)
            .minute(3)
            .utc_offset_hour(-5)
            .utc_offset_minute(30);
        assert_eq!(parse_date("2026-11-25T14:03-05:30"), Some(cet));
        let day = DateTime::new(2026).month(11).day(25);
        assert_eq!(parse_date("2026-11-25"), Some(day));
        assert_eq!(parse_date("2026-11-25 99:00"), Some(day));
        assert_eq!(parse_date("2026-13-25"), None);
        assert_eq!(parse_date("not a date"), None);
        assert_eq!(parse_date(""), None);
        assert_eq!(parse_date("2026-11-2"), None);
    }

    #[test]
    fn sanitize_keeps_text_and_drops_controls() {
        assert_eq!(
            sanitize("a\r\nb\tc\u{0}d\u{feff}", true),
            "a\nb c d\u{fffd}"
        );
        assert_eq!(sanitize("a\nb", false), "a b");
        assert_eq!(sanitize("Ελένη 山田", false), "Ελένη 山田");
    }

    #[test]
    fn rows_taller_than_a_page_are_split_and_every_line_is_placed() {
        let mut layout = Layout::new();
        let lines: Vec<Line> = (0..300)
            .map(|i| Line::one(format!("line {i}"), VALUE))
            .collect();
        let cells = vec![Cell {
            tag: Tag::TD.into(),
            x: VALUE_X,
            lines,
        }];
        let groups = layout.row(cells, PLAIN_ROW);
        assert!(layout.pages.pages.len() > 2);
        assert_eq!(groups[0].children.len(), 300);
        for ops in &layout.pages.pages {
            for op in ops {
                if let Op::Text { y, .. } = op {
                    assert!(*y <= BOTTOM && *y >= TOP, "{y}");
                }
            }
        }
    }
}
