//! Page images for the signing page: rendered from the original upload with hayro (in the
//! PDF crate) on the blocking pool (a slot per CPU, held until the render really ends, even
//! when the page request gave up waiting), kept in a bounded in-memory cache. A page that
//! could not be rendered (refused, failed or too slow) is remembered for a minute, so a
//! browser reloading it costs nothing.

use std::collections::HashMap;
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

/// Rendered pages by (request, page number), and their total size; failed renders by the
/// same key, with when they failed.
#[derive(Default)]
struct Cached {
    pages: HashMap<PageKey, Arc<Vec<u8>>>,
    bytes: usize,
    failed: HashMap<PageKey, (DateTime<Utc>, RenderError)>,
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
        let entries = self.lock();
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

    fn put(&self, key: PageKey, png: Arc<Vec<u8>>) {
        let mut entries = self.lock();
        if entries.bytes + png.len() > CACHE_BYTES {
            entries.pages.clear();
            entries.bytes = 0;
        }
        entries.bytes += png.len();
        entries.failed.remove(&key);
        entries.pages.insert(key, png);
    }

    fn put_failure(&self, key: PageKey, error: RenderError, now: DateTime<Utc>) {
        let mut entries = self.lock();
        if entries.failed.len() >= MAX_FAILURES {
            let ttl = chrono::Duration::seconds(FAILED_RENDER_TTL_SECS);
            entries.failed.retain(|_, (at, _)| now - *at < ttl);
            if entries.failed.len() >= MAX_FAILURES {
                entries.failed.clear();
            }
        }
        entries.failed.insert(key, (now, error));
    }
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
        let pdf = self.original_document(link).await?;
        let (previews, clock, metrics) = (
            self.previews.clone(),
            self.clock.clone(),
            self.metrics.clone(),
        );
        let request_id = link.request.id;
        // The render and its bookkeeping run to their end on the blocking pool, holding the
        // slot, whether or not this request still waits for them.
        let render = self
            .blocking
            .spawn_pdf(move || {
                if let Some(cached) = previews.get(&key, clock.now()) {
                    // Rendered (or failed) while this one waited for a slot.
                    return cached;
                }
                let limits = RenderLimits {
                    // The waiting happens in the caller (`RENDER_WAIT`); this thread waits
                    // for the render's own to finish, so the slot is held until it does.
                    timeout: Duration::from_secs(24 * 3600),
                    ..RenderLimits::default()
                };
                let rendered = signeur_pdf::render_page_png(&pdf, number - 1, PREVIEW_WIDTH, &limits);
                metrics.preview_render(rendered.is_ok());
                match rendered {
                    Ok(png) => {
                        let png = Arc::new(png);
                        previews.put(key, png.clone());
                        Ok(png)
                    }
                    Err(e) => {
                        tracing::warn!(signature_request = %request_id, page = number, error = %e, "page preview not rendered");
                        previews.put_failure(key, e, clock.now());
                        Err(e)
                    }
                }
            });
        let mut started = false;
        let waited = tokio::time::timeout(RENDER_WAIT, async {
            let handle = render.await.map_err(PreviewError::Other)?;
            started = true;
            handle
                .await
                .map_err(|e| PreviewError::Other(ServiceError::Internal(e.into())))
        })
        .await;
        let rendered = match waited {
            Ok(rendered) => rendered?,
            Err(_) => {
                tracing::warn!(signature_request = %request_id, page = number, "page preview not rendered in time");
                if started {
                    // Still rendering: reloads are answered from memory meanwhile, and the
                    // render records its own outcome when it ends.
                    self.previews
                        .put_failure(key, RenderError::TimedOut, self.clock.now());
                }
                Err(RenderError::TimedOut)
            }
        };
        rendered.map_err(PreviewError::Render)
    }
}
