//! Embedded signing: the one-time `redirect_url` (`/embed/{token}`), the page policy an
//! embedded session allows, and its Cancel button.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::SameSite;
use serde::Deserialize;

use signeur_core::Locale;
use signeur_service::sessions::{CancelOnPage, EmbeddedContext};

use crate::AppState;

use super::{
    EMBED_COOKIE, Visitor, cookie, csp, csrf_failed, internal, locale_of, not_found, return_to,
    see_other, session_cookie,
};

/// A browser in an embedded signing session: the page policy its session allows.
pub(super) struct Embedded {
    pub(super) csp: String,
}

impl From<EmbeddedContext> for Embedded {
    fn from(e: EmbeddedContext) -> Self {
        let frame = if e.frame_origins.is_empty() {
            "'none'".to_string()
        } else {
            e.frame_origins.join(" ")
        };
        Embedded {
            csp: csp(&frame, &url_origin(&e.session.return_url)),
        }
    }
}

fn url_origin(u: &str) -> String {
    // scheme://host[:port] of an already validated URL.
    let after = u.find("://").map_or(0, |i| i + 3);
    let end = u[after..]
        .find(['/', '?', '#'])
        .map_or(u.len(), |i| after + i);
    u[..end].to_string()
}

/// `redirect_url`: uses the one-time token, then shows the signing page without the code.
pub(super) async fn open_embedded(
    State(state): State<AppState>,
    Path(token): Path<String>,
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
            let mut embed = cookie(&state, &access_token, EMBED_COOKIE, embed_cookie);
            let mut session = session_cookie(&state, &access_token, signer_session);
            if state.service.public_url().starts_with("https://") {
                // Inside the integrator's frame our cookies are third-party.
                embed.set_same_site(SameSite::None);
                session.set_same_site(SameSite::None);
            }
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
