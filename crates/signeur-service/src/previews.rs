//! Page images for the signing page: rendered from the original upload with hayro (in the
//! PDF crate) on the blocking pool, in slots of their own (one per two CPUs, at least one,
//! held until the render really ends, even when the page request gave up waiting; a create's
//! inspection and the audit PDF never wait for a render), kept in a bounded in-memory cache.
//! One render per page runs at a time: a request for a page being rendered waits for that
//! render (tracked apart from the caches, so no eviction forgets it). A page that could not
//! be rendered (refused, failed or too slow) is remembered for a minute, so a browser
//! reloading it costs nothing.

use std::collections::HashMap;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use signeur_pdf::{RenderError, RenderLimits};

use crate::links::SigningLink;
use crate::{Service, ServiceError};

/// Width of the page images, in pixels.
pub const PREVIEW_WIDTH: u32 = 1000;
/// Pages shown as images; longer documents show these and offer the download.
pub const MAX_PREVIEW_PAGES: i64 = 50;
/// Cache size in bytes of PNG.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Longest a page request waits for its render (the render goes on, holding its slot, and
/// its image is cached when it ends).
const RENDER_WAIT: Duration = Duration::from_secs(10);
/// How long a failed render is answered from memory.
pub const FAILED_RENDER_TTL_SECS: i64 = 60;
/// Failed renders remembered at most.
const MAX_FAILURES: usize = 4096;

type PageKey = (Uuid, usize);

type Rendered = Result<Arc<Vec<u8>>, RenderError>;

/// Rendered pages by (request, page number), and their total size; failed renders by the
/// same key, with when they failed; the renders running (at most one a page; each removes
/// itself when it ends, never evicted).
#[derive(Default)]
struct Cached {
    pages: HashMap<PageKey, Arc<Vec<u8>>>,
    bytes: usize,
    failed: HashMap<PageKey, (DateTime<Utc>, RenderError)>,
    rendering: HashMap<PageKey, Shared<BoxFuture<'static, Rendered>>>,
}

#[derive(Default)]
pub(crate) struct PreviewCache {
    entries: Mutex<Cached>,
}

impl PreviewCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The page's image, or why it recently failed.
    fn get(&self, key: &PageKey, now: DateTime<Utc>) -> Option<Result<Arc<Vec<u8>>, RenderError>> {
        known(&self.lock(), key, now)
    }

    /// A render's outcome, recorded as it stops running (one lock: a caller sees either the
    /// render running or its outcome).
    fn finish(&self, key: PageKey, rendered: &Rendered, now: DateTime<Utc>) {
        let mut entries = self.lock();
        entries.rendering.remove(&key);
        match rendered {
            Ok(png) => put(&mut entries, key, png.clone()),
            Err(e) => put_failure(&mut entries, key, *e, now),
        }
    }

    fn put_failure(&self, key: PageKey, error: RenderError, now: DateTime<Utc>) {
        put_failure(&mut self.lock(), key, error, now);
    }
}

/// The page's image, or why it recently failed, as the cache holds them.
fn known(entries: &Cached, key: &PageKey, now: DateTime<Utc>) -> Option<Rendered> {
    if let Some(png) = entries.pages.get(key) {
        return Some(Ok(png.clone()));
    }
    match entries.failed.get(key) {
        Some((at, e)) if now - *at < chrono::Duration::seconds(FAILED_RENDER_TTL_SECS) => {
            Some(Err(*e))
        }
        _ => None,
    }
}

fn put(entries: &mut Cached, key: PageKey, png: Arc<Vec<u8>>) {
    if entries.bytes + png.len() > CACHE_BYTES {
        entries.pages.clear();
        entries.bytes = 0;
    }
    entries.bytes += png.len();
    entries.failed.remove(&key);
    entries.pages.insert(key, png);
}

fn put_failure(entries: &mut Cached, key: PageKey, error: RenderError, now: DateTime<Utc>) {
    if entries.failed.len() >= MAX_FAILURES {
        let ttl = chrono::Duration::seconds(FAILED_RENDER_TTL_SECS);
        entries.failed.retain(|_, (at, _)| now - *at < ttl);
        if entries.failed.len() >= MAX_FAILURES {
            entries.failed.clear();
        }
    }
    entries.failed.insert(key, (now, error));
}

/// Why a page image is not given.
#[derive(Debug)]
pub enum PreviewError {
    /// No such page, or not shown as an image.
    NoSuchPage,
    /// The renderer refused or failed (the page shows the download link instead).
    Render(RenderError),
    Other(ServiceError),
}

impl From<ServiceError> for PreviewError {
    fn from(e: ServiceError) -> Self {
        PreviewError::Other(e)
    }
}

impl Service {
    /// PNG of page `number` (1-based) of the link's document, for a signer with a session.
    /// `/sign/{token}/pages/{number}.png` in one call: None when no link has this token.
    pub async fn page_preview_on_page(
        &self,
        token: &str,
        session: Option<&str>,
        number: &str,
    ) -> crate::Result<Option<Result<Arc<Vec<u8>>, PreviewError>>> {
        let Some(link) = self.signing_link(token, session).await? else {
            return Ok(None);
        };
        let Ok(number) = number.parse::<usize>() else {
            return Ok(Some(Err(PreviewError::NoSuchPage)));
        };
        Ok(Some(self.page_preview(&link, number).await))
    }

    pub(crate) async fn page_preview(
        &self,
        link: &SigningLink,
        number: usize,
    ) -> std::result::Result<Arc<Vec<u8>>, PreviewError> {
        let pages = link.request.document_page_count.min(MAX_PREVIEW_PAGES);
        if !link.may_read_document() || number == 0 || number as i64 > pages {
            return Err(PreviewError::NoSuchPage);
        }
        let key = (link.request.id, number);
        if let Some(cached) = self.previews.get(&key, self.clock.now()) {
            return cached.map_err(PreviewError::Render);
        }
        let render = match self.rendering(key) {
            Some(running) => running,
            None => {
                let pdf = self.original_document(link).await?;
                self.start_render(key, pdf)
            }
        };
        let rendered = match tokio::time::timeout(RENDER_WAIT, render).await {
            Ok(rendered) => rendered,
            Err(_) => {
                tracing::warn!(signature_request = %key.0, page = number, "page preview not rendered in time");
                // Still rendering: reloads are answered from memory meanwhile, and the
                // render records its own outcome when it ends.
                self.previews
                    .put_failure(key, RenderError::TimedOut, self.clock.now());
                Err(RenderError::TimedOut)
            }
        };
        rendered.map_err(PreviewError::Render)
    }

    /// The render of this page running now, if any.
    fn rendering(&self, key: PageKey) -> Option<Shared<BoxFuture<'static, Rendered>>> {
        self.previews.lock().rendering.get(&key).cloned()
    }

    /// Starts rendering the page (unless a render of it started meanwhile: then that one).
    /// The render runs to its end in a task of its own, holding a preview slot, whether or
    /// not anyone still waits for it, then records its outcome.
    fn start_render(&self, key: PageKey, pdf: Vec<u8>) -> Shared<BoxFuture<'static, Rendered>> {
        let mut entries = self.previews.lock();
        if let Some(running) = entries.rendering.get(&key) {
            return running.clone();
        }
        if let Some(known) = known(&entries, &key, self.clock.now()) {
            // Rendered, or failed, while this request read the document.
            return futures::future::ready(known).boxed().shared();
        }
        let (previews, clock, metrics, blocking) = (
            self.previews.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            self.blocking.clone(),
        );
        let (request_id, number) = key;
        let task = tokio::spawn(async move {
            let rendered = blocking
                .preview(move || {
                    let limits = RenderLimits {
                        // The waiting happens in the caller (`RENDER_WAIT`); this thread
                        // waits for the render's own to finish, so the slot is held until
                        // it does.
                        timeout: Duration::from_secs(24 * 3600),
                        ..RenderLimits::default()
                    };
                    let rendered =
                        signeur_pdf::render_page_png(&pdf, number - 1, PREVIEW_WIDTH, &limits);
                    metrics.preview_render(rendered.is_ok());
                    rendered.map(Arc::new)
                })
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "page preview render did not run");
                    Err(RenderError::TimedOut)
                });
            if let Err(e) = &rendered {
                tracing::warn!(signature_request = %request_id, page = number, error = %e, "page preview not rendered");
            }
            previews.finish(key, &rendered, clock.now());
            rendered
        });
        let shared = task
            .map(|joined| joined.unwrap_or(Err(RenderError::TimedOut)))
            .boxed()
            .shared();
        entries.rendering.insert(key, shared.clone());
        shared
    }
}
