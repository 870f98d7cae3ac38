//! What a signer page fetches: the original and the signed document, page images, the
//! stylesheet and the script.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use signeur_service::links::LinkState;
use signeur_service::signing::SignerDownload;

use crate::AppState;
use crate::signatures::pdf_response;

use super::link::state_page;
use super::{Visitor, internal, locale_of, resolve, see_other};

/// The original upload, for the signer with a session while the link is usable.
pub(super) async fn original(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
) -> Response {
    let link = match resolve(&state, &token, &visitor, None).await {
        Ok(l) => l,
        Err(res) => return res,
    };
    let locale = locale_of(Some(&link), None);
    match state
        .service
        .signer_download(&link, SignerDownload::Original)
        .await
    {
        Ok(Some(doc)) => pdf_response(&doc.filename, doc.bytes),
        Ok(None) => match state_page(&state, &link, &token, locale) {
            Some(page) if !matches!(link.state, LinkState::Signed { .. }) => page.render(),
            _ => see_other(&token, "", locale),
        },
        Err(e) => internal(e),
    }
}

/// The signed document, once sealed, for a signer who signed (with a session).
pub(super) async fn signed_document(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
) -> Response {
    let link = match resolve(&state, &token, &visitor, None).await {
        Ok(l) => l,
        Err(res) => return res,
    };
    let locale = locale_of(Some(&link), None);
    match state
        .service
        .signer_download(&link, SignerDownload::Sealed)
        .await
    {
        Ok(Some(doc)) => pdf_response(&doc.filename, doc.bytes),
        Ok(None) => see_other(&token, "", locale),
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
    let link = match resolve(&state, &token, &visitor, None).await {
        Ok(l) => l,
        Err(res) => return res,
    };
    let Ok(number) = number.parse::<usize>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match state.service.page_preview(&link, number).await {
        Ok(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            png.as_ref().clone(),
        )
            .into_response(),
        Err(PreviewError::NoSuchPage) => StatusCode::NOT_FOUND.into_response(),
        Err(PreviewError::Render(_)) => StatusCode::UNPROCESSABLE_ENTITY.into_response(),
        Err(PreviewError::Other(e)) => internal(e),
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
