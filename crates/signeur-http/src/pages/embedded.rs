//! Embedded signing: the one-time `redirect_url` (`/embed/{token}`) and the Cancel button.
//! (How an embedded session's responses may be framed: `page_headers` in `mod.rs`.)

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use signeur_core::Locale;
use signeur_service::sessions::CancelOnPage;

use crate::AppState;

use super::{
    EMBED_COOKIE, Visitor, cookie, csrf_failed, internal, locale_of, not_found, return_to,
    see_other, session_cookie,
};

/// `redirect_url`: uses the one-time token, then shows the signing page without the code.
pub(super) async fn open_embedded(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
) -> Response {
    use signeur_service::sessions::SessionOpening;
    match state.service.open_embedded(&token).await {
        Ok(SessionOpening::NotFound) => not_found(Locale::En),
        Ok(SessionOpening::Return(url)) => {
            (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response()
        }
        Ok(SessionOpening::Sign {
            access_token,
            embed_cookie,
            signer_session,
        }) => {
            let mut res = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, format!("/sign/{access_token}"))],
            )
                .into_response();
            // Inside the integrator's frame our cookies are third-party (`cross_site`).
            let embed = cookie(
                &state,
                &access_token,
                EMBED_COOKIE,
                embed_cookie,
                visitor.cross_site,
            );
            let session = session_cookie(&state, &access_token, signer_session, visitor.cross_site);
            for c in [session, embed] {
                if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            res
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub(super) struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// The Cancel button of an embedded session: back to the integrator with `cancelled`.
pub(super) async fn cancel_session(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
    Form(form): Form<CancelForm>,
) -> Response {
    match state
        .service
        .cancel_on_page(&token, &visitor.credentials(&form.csrf))
        .await
    {
        Ok(CancelOnPage::NotFound) => not_found(locale_of(None, None)),
        Ok(CancelOnPage::CsrfFailed(link)) => {
            csrf_failed(&link, &token, locale_of(Some(&link), None))
        }
        Ok(CancelOnPage::NotEmbedded(link)) => see_other(&token, "", locale_of(Some(&link), None)),
        Ok(CancelOnPage::Return(url)) => return_to(&state, &token, url),
        Err(e) => internal(e),
    }
}
