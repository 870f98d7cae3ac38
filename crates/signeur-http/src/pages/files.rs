//! What a signer page fetches: the original and the signed document, page images, the
//! stylesheet and the script.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use signeur_service::links::LinkState;
use signeur_service::signing::{OnPage, SignerDownload};

use crate::AppState;
use crate::signatures::pdf_response;

use super::link::state_page;
use super::{Visitor, internal, locale_of, not_found, see_other};

/// The original upload, for the signer with a session while the link is usable.
pub(super) async fn original(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
) -> Response {
    let outcome = state
        .service
        .signer_download_on_page(&token, visitor.session(), SignerDownload::Original)
        .await;
    match outcome {
        Ok(OnPage::Ready(_, doc)) => pdf_response(&doc.filename, doc.bytes),
        Ok(OnPage::NotFound) => not_found(locale_of(None, None)),
        Ok(OnPage::NotNow(link)) => {
            let locale = locale_of(Some(&link), None);
            match state_page(&state, &link, &token, locale) {
                Some(page) if !matches!(link.state, LinkState::Signed { .. }) => page.render(),
                _ => see_other(&token, "", locale),
            }
        }
        Err(e) => internal(e),
    }
}

/// The signed document, once sealed, for a signer who signed (with a session).
pub(super) async fn signed_document(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
) -> Response {
    let outcome = state
        .service
        .signer_download_on_page(&token, visitor.session(), SignerDownload::Sealed)
        .await;
    match outcome {
        Ok(OnPage::Ready(_, doc)) => pdf_response(&doc.filename, doc.bytes),
        Ok(OnPage::NotFound) => not_found(locale_of(None, None)),
        Ok(OnPage::NotNow(link)) => see_other(&token, "", locale_of(Some(&link), None)),
        Err(e) => internal(e),
    }
}

/// One page of the document as PNG, for the signer with a session.
pub(super) async fn page_image(
    State(state): State<AppState>,
    Path((token, number)): Path<(String, String)>,
    visitor: Visitor,
) -> Response {
    use signeur_service::previews::PreviewError;
    let outcome = state
        .service
        .page_preview_on_page(&token, visitor.session(), &number)
        .await;
    match outcome {
        Ok(Some(Ok(png))) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            png.as_ref().clone(),
        )
            .into_response(),
        Ok(Some(Err(PreviewError::NoSuchPage))) => StatusCode::NOT_FOUND.into_response(),
        Ok(Some(Err(PreviewError::Render(_)))) => StatusCode::UNPROCESSABLE_ENTITY.into_response(),
        Ok(Some(Err(PreviewError::Other(e)))) | Err(e) => internal(e),
        Ok(None) => not_found(locale_of(None, None)),
    }
}

pub(super) async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/signeur.css"),
    )
        .into_response()
}

/// `/assets/brand/{rrggbb}.css`: an organization's colour on its pages' header. The page
/// links it when the organization has a branding colour (the pages' policy allows no inline
/// style); the colour is the file's name, so it needs no lookup and is cached for good.
pub(super) async fn brand_css(Path(file): Path<String>) -> Response {
    let hex = file
        .strip_suffix(".css")
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(hex) = hex else {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    };
    let hex = hex.to_ascii_lowercase();
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        format!(".top{{border-top:4px solid #{hex}}}.top .brand{{color:#{hex}}}\n"),
    )
        .into_response()
}

pub(super) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/sign.js"),
    )
        .into_response()
}
