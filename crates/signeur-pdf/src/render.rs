//! Page previews: [`render_page_png`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_interpret::util::TransformExt;
use hayro::hayro_syntax::Pdf;
use hayro::kurbo::Affine;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::vello_cpu::{Pixmap, RasterizerSettings, RenderContext, Resources, TargetInit};
use hayro::{RenderCache, RenderSettings, render_into};

/// Narrowest image [`render_page_png`] produces, in pixels.
const MIN_RENDER_WIDTH: u32 = 200;
/// Widest image [`render_page_png`] produces, in pixels.
const MAX_RENDER_WIDTH: u32 = 1600;
/// Stack of the render thread: more than the 2 MiB default, as deeply nested (hostile) files
/// make the parser and interpreter recurse, and a stack overflow aborts the whole process
/// rather than unwinding.
const RENDER_STACK_SIZE: usize = 16 * 1024 * 1024;

/// Bounds on one call of [`render_page_png`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Most pages the document may have.
    pub max_pages: usize,
    /// Most pixels (width × height) the image may have.
    pub max_pixels: u64,
    /// Longest the caller waits for the render (see [`render_page_png`]: the render
    /// itself is not stopped).
    pub timeout: Duration,
}

impl Default for RenderLimits {
    /// 200 pages, 4 000 000 pixels (an A4 page 1600 px wide is about 1600 × 2263 = 3.6 M),
    /// 10 seconds.
    fn default() -> Self {
        Self {
            max_pages: 200,
            max_pixels: 4_000_000,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a page could not be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the PDF file cannot be read or rendered")]
    Unreadable,
    #[error("the document has no such page: it has {page_count} page(s)")]
    PageOutOfRange { page_count: usize },
    #[error("the document has too many pages ({page_count}) to be previewed")]
    TooManyPages { page_count: usize },
    #[error("the page image would be too large")]
    TooLarge,
    /// Also returned when the render thread could not be started.
    #[error("the page could not be rendered in time")]
    TimedOut,
}

impl RenderError {
    /// Stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            RenderError::Unreadable => "pdf_unreadable",
            RenderError::PageOutOfRange { .. } => "page_out_of_range",
            RenderError::TooManyPages { .. } => "too_many_pages",
            RenderError::TooLarge => "render_too_large",
            RenderError::TimedOut => "render_timed_out",
        }
    }
}

/// Renders page `index` (0-based) scaled so the image is `width_px` wide (clamped to
/// 200..=1600 pixels), on a white background, as PNG bytes.
/// The height follows the page's aspect ratio (crop box, rotation applied).
///
/// Never panics. Blocks the calling thread for up to `limits.timeout` (call it from a
/// blocking-task pool in async code).
///
/// Rendered with `hayro`, a pure-Rust rasterizer. The caller is expected to render only
/// documents that [`inspect`](fn@crate::inspect) accepted at upload; the input is still
/// treated as hostile:
///
/// - the same cheap byte checks as `inspect` come first (`%PDF-` within the first 1024 bytes,
///   a final `%%EOF` at the end), so a cut or garbage file is [`RenderError::Unreadable`] rather
///   than whatever a repairing reader would make of it;
/// - the image size is computed from the page box and refused ([`RenderError::TooLarge`])
///   before any pixel buffer is allocated;
/// - parsing and rendering run on a dedicated thread, inside `catch_unwind`: a panic in the
///   renderer becomes [`RenderError::Unreadable`], and a render that outlives
///   [`RenderLimits::timeout`] becomes [`RenderError::TimedOut`].
///
/// **A timed-out render is not stopped**: `hayro` has no cancellation, so its thread is left
/// to run to completion (its result is then dropped). The timeout bounds how long the caller
/// waits, not the CPU the render uses; a caller exposed to many hostile documents should also
/// bound how many renders it starts at once.
pub fn render_page_png(
    pdf: &[u8],
    index: usize,
    width_px: u32,
    limits: &RenderLimits,
) -> Result<Vec<u8>, RenderError> {
    let header_at = crate::find(
        &pdf[..pdf.len().min(crate::inspect::MARKER_WINDOW)],
        b"%PDF-",
    )
    .ok_or(RenderError::Unreadable)?;
    crate::inspect::check_complete(pdf).map_err(|_| RenderError::Unreadable)?;

    let job = Job {
        data: pdf[header_at..].to_vec(),
        index,
        width: width_px.clamp(MIN_RENDER_WIDTH, MAX_RENDER_WIDTH),
        max_pages: limits.max_pages,
        max_pixels: limits.max_pixels,
    };
    run_guarded(move || job.run(), limits.timeout)
}

/// Runs `work` on a new thread, inside `catch_unwind`, and waits at most `timeout` for it:
/// a panic is `Unreadable`, no answer in time is `TimedOut` (the thread is left to finish).
fn run_guarded<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
    timeout: Duration,
) -> Result<T, RenderError> {
    // Capacity 1: the worker's send never blocks, even after the receiver has given up.
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = thread::Builder::new()
        .name("signeur-pdf-render".to_owned())
        .stack_size(RENDER_STACK_SIZE)
        .spawn(move || {
            let result =
                catch_unwind(AssertUnwindSafe(work)).unwrap_or(Err(RenderError::Unreadable));
            // The receiver is gone when the caller timed out; the result is then dropped.
            let _ = sender.send(result);
        });
    if spawned.is_err() {
        return Err(RenderError::TimedOut);
    }
    match receiver.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(RenderError::TimedOut),
        // The worker ended without sending: only if unwinding itself failed.
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(RenderError::Unreadable),
    }
}

/// One render, moved onto the worker thread.
struct Job {
    data: Vec<u8>,
    index: usize,
    width: u32,
    max_pages: usize,
    max_pixels: u64,
}

impl Job {
    fn run(self) -> Result<Vec<u8>, RenderError> {
        let pdf = Pdf::new(self.data).map_err(|_| RenderError::Unreadable)?;
        let pages = pdf.pages();
        let page_count = pages.len();
        if page_count == 0 {
            // Neither a page tree nor any page object the reader could find.
            return Err(RenderError::Unreadable);
        }
        if page_count > self.max_pages {
            return Err(RenderError::TooManyPages { page_count });
        }
        let page = pages
            .get(self.index)
            .ok_or(RenderError::PageOutOfRange { page_count })?;

        let (page_width, page_height) = page.render_dimensions();
        let (width, height) = image_size(self.width, page_width, page_height, self.max_pixels)?;

        let transform = Affine::scale_non_uniform(
            f64::from(width) / f64::from(page_width),
            f64::from(height) / f64::from(page_height),
        ) * page.initial_transform(true).to_kurbo();
        let cache = RenderCache::new();
        let mut context = RenderContext::new(width, height);
        render_into(
            page,
            &cache,
            &InterpreterSettings::default(),
            &RenderSettings::default(),
            &mut context,
            transform,
        );
        context.flush();
        let mut pixmap = Pixmap::new(width, height);
        context.render_with(
            &mut pixmap,
            &mut Resources::default(),
            RasterizerSettings {
                target_init: TargetInit::Clear(WHITE),
                ..RasterizerSettings::default()
            },
        );
        pixmap.into_png().map_err(|_| RenderError::Unreadable)
    }
}

/// The image size for a page of `page_width` × `page_height` points scaled to `width` pixels
/// wide, or `TooLarge` when it exceeds `max_pixels` (or the renderer's 65535-pixel sides).
fn image_size(
    width: u32,
    page_width: f32,
    page_height: f32,
    max_pixels: u64,
) -> Result<(u16, u16), RenderError> {
    let exact_height = f64::from(page_height) * f64::from(width) / f64::from(page_width);
    if !exact_height.is_finite() || page_width <= 0.0 || page_height <= 0.0 {
        return Err(RenderError::Unreadable);
    }
    if exact_height.round() > f64::from(u16::MAX) {
        return Err(RenderError::TooLarge);
    }
    // In 1..=65535 after the check above, so the conversion is exact.
    let height = exact_height.round().max(1.0) as u16;
    let width = u16::try_from(width).map_err(|_| RenderError::TooLarge)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(RenderError::TooLarge);
    }
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_unreadable_and_a_slow_render_times_out() {
        let second = Duration::from_secs(1);
        assert_eq!(run_guarded(|| Ok(7), second), Ok(7));
        assert_eq!(
            run_guarded(|| Err::<(), _>(RenderError::TooLarge), second),
            Err(RenderError::TooLarge)
        );
        assert_eq!(
            run_guarded(|| -> Result<(), _> { panic!("hostile file") }, second),
            Err(RenderError::Unreadable)
        );
        let started = std::time::Instant::now();
        let slow = run_guarded(
            || {
                thread::sleep(Duration::from_secs(3));
                Ok(())
            },
            Duration::from_millis(50),
        );
        assert_eq!(slow, Err(RenderError::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn image_size_follows_the_aspect_ratio_and_the_limits() {
        assert_eq!(image_size(1240, 595.0, 842.0, 4_000_000), Ok((1240, 1755)));
        assert_eq!(image_size(200, 612.0, 792.0, 4_000_000), Ok((200, 259)));
        // A 1-point-high strip is still one pixel high.
        assert_eq!(image_size(200, 10_000.0, 1.0, 4_000_000), Ok((200, 1)));
        assert_eq!(
            image_size(1600, 595.0, 842.0, 1_000_000),
            Err(RenderError::TooLarge)
        );
        // Taller than the renderer can draw, whatever the pixel budget.
        assert_eq!(
            image_size(1600, 1.0, 100.0, u64::MAX),
            Err(RenderError::TooLarge)
        );
        assert_eq!(
            image_size(1600, 0.0, 100.0, u64::MAX),
            Err(RenderError::Unreadable)
        );
        assert_eq!(
            image_size(1600, f32::NAN, 100.0, u64::MAX),
            Err(RenderError::Unreadable)
        );
    }
}
