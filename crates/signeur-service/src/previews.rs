//! Page images for the signing page: rendered from the original upload with hayro (in the
//! PDF crate), a few at a time, kept in a bounded in-memory cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use uuid::Uuid;

use signeur_pdf::{RenderError, RenderLimits};

use crate::links::SigningLink;
use crate::{Service, ServiceError};

/// Width of the page images, in pixels.
pub const PREVIEW_WIDTH: u32 = 1000;
/// Pages shown as images; longer documents show these and offer the download.
pub const MAX_PREVIEW_PAGES: i64 = 50;
/// Renders running at once in this process (each holds a page's pixels).
const MAX_CONCURRENT_RENDERS: usize = 2;
/// Cache size in bytes of PNG.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Rendered pages by (request, page number), and their total size.
#[derive(Default)]
struct Cached {
    pages: HashMap<(Uuid, usize), Arc<Vec<u8>>>,
    bytes: usize,
}

pub(crate) struct PreviewCache {
    entries: Mutex<Cached>,
    renders: Semaphore,
}

impl Default for PreviewCache {
    fn default() -> Self {
        PreviewCache {
            entries: Mutex::new(Cached::default()),
            renders: Semaphore::new(MAX_CONCURRENT_RENDERS),
        }
    }
}

impl PreviewCache {
    fn get(&self, key: &(Uuid, usize)) -> Option<Arc<Vec<u8>>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.pages.get(key).cloned()
    }

    fn put(&self, key: (Uuid, usize), png: Arc<Vec<u8>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.bytes + png.len() > CACHE_BYTES {
            entries.pages.clear();
            entries.bytes = 0;
        }
        entries.bytes += png.len();
        entries.pages.insert(key, png);
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
        if let Some(png) = self.previews.get(&key) {
            return Ok(png);
        }
        let _permit = self
            .previews
            .renders
            .acquire()
            .await
            .map_err(|e| ServiceError::Internal(e.into()))?;
        if let Some(png) = self.previews.get(&key) {
            return Ok(png);
        }
        let pdf = self.original_document(link).await?;
        let rendered = tokio::task::spawn_blocking(move || {
            signeur_pdf::render_page_png(&pdf, number - 1, PREVIEW_WIDTH, &RenderLimits::default())
        })
        .await
        .map_err(|e| ServiceError::Internal(e.into()))?;
        match rendered {
            Ok(png) => {
                let png = Arc::new(png);
                self.previews.put(key, png.clone());
                Ok(png)
            }
            Err(e) => {
                tracing::warn!(signature_request = %link.request.id, page = number, error = %e, "page preview not rendered");
                Err(PreviewError::Render(e))
            }
        }
    }
}
