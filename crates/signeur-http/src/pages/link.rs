//! What a link shows (`GET /sign/{token}`): its state page, the access-code gate (and
//! `POST /sign/{token}/verify`), or the signing page.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use minijinja::{Value, context};
use serde::Deserialize;

use signeur_core::Locale;
use signeur_service::links::{CodeOnPage, Gone, LinkState, MAX_CODE_ATTEMPTS, SigningLink};
use signeur_service::signing::LinkPage;

use crate::AppState;

use super::actions::sign_page;
use super::{
    LangQuery, Page, Visitor, csrf_failed, csrf_for, internal, locale_of, not_found, see_other,
    session_cookie,
};

pub(super) async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    visitor: Visitor,
) -> Response {
    // A GET carries no form, so no CSRF token.
    let outcome = state
        .service
        .show_on_page(&token, &visitor.credentials(""), &visitor.origin)
        .await;
    let lang = q.lang.as_deref();
    match outcome {
        Ok(LinkPage::NotFound) => not_found(locale_of(None, lang)),
        Ok(LinkPage::State(link)) => {
            let locale = locale_of(Some(&link), lang);
            match state_page(&state, &link, &token, locale) {
                Some(mut page) => {
                    if link.code_opens_download() {
                        // The signed page asks for the code that opens the download.
                        let (csrf, new_cookie) = csrf_for(&state, &token, &visitor);
                        page.csrf = Some(csrf);
                        page.cookies.extend(new_cookie);
                        page.ctx = context! { unlock => true, ..page.ctx };
                    }
                    page.render()
                }
                None => see_other(&token, "", locale),
            }
        }
        Ok(LinkPage::Gate(link)) => {
            let locale = locale_of(Some(&link), lang);
            gate_page(&state, &link, &token, &visitor, locale, None).render()
        }
        Ok(LinkPage::Sign {
            link,
            new_session,
            embedded,
        }) => {
            let locale = locale_of(Some(&link), lang);
            let mut page = sign_page(&state, &link, &token, &visitor, locale, None, None);
            page.cookies
                .extend(new_session.map(|s| session_cookie(&state, &token, s, visitor.cross_site)));
            page.render_embedded(embedded.is_some())
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

pub(super) async fn verify(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
    Form(form): Form<CodeForm>,
) -> Response {
    let outcome = state
        .service
        .submit_code_on_page(
            &token,
            &visitor.credentials(&form.csrf),
            &form.code,
            &visitor.origin,
        )
        .await;
    let lang = form.lang.as_deref();
    match outcome {
        Ok(CodeOnPage::NotFound) => not_found(locale_of(None, lang)),
        Ok(CodeOnPage::CsrfFailed(link)) => {
            csrf_failed(&link, &token, locale_of(Some(&link), lang))
        }
        Ok(CodeOnPage::NotNow(link)) => {
            let locale = locale_of(Some(&link), lang);
            match state_page(&state, &link, &token, locale) {
                Some(page) => page.render(),
                None => see_other(&token, "", locale),
            }
        }
        Ok(CodeOnPage::Verified { link, session }) => {
            let mut res = see_other(&token, "", locale_of(Some(&link), lang));
            let c = session_cookie(&state, &token, session, visitor.cross_site);
            if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Ok(CodeOnPage::Wrong {
            link,
            attempts_left,
        }) => gate_page(
            &state,
            &link,
            &token,
            &visitor,
            locale_of(Some(&link), lang),
            Some(context! { key => "gate-wrong", left => attempts_left, max => MAX_CODE_ATTEMPTS }),
        )
        .render(),
        Ok(CodeOnPage::Locked { link, until }) => {
            locked_page(&link, &token, locale_of(Some(&link), lang), until).render()
        }
        Ok(CodeOnPage::NotAccepted(link)) => see_other(&token, "", locale_of(Some(&link), lang)),
        Err(e) => internal(e),
    }
}

/// The page a link shows in a state where it cannot be signed (None: it can).
pub(super) fn state_page<'a>(
    state: &AppState,
    link: &'a SigningLink,
    token: &'a str,
    locale: Locale,
) -> Option<Page<'a>> {
    let message = |status, heading: &str, body: &str, extra: Value| Page {
        status,
        template: "message.html",
        locale,
        link: Some(link),
        token,
        csrf: None,
        ctx: context! { heading => heading, body => body, ..extra },
        cookies: vec![],
    };
    let _ = state;
    match &link.state {
        LinkState::Gone(g) => Some(message(
            StatusCode::GONE,
            "gone-heading",
            match g {
                Gone::Expired => "gone-expired",
                Gone::Cancelled => "gone-cancelled",
                Gone::Declined => "gone-declined",
                Gone::Invalidated => "gone-invalidated",
                Gone::Rotated => "gone-rotated",
            },
            context! { reason => g.as_str() },
        )),
        LinkState::Signed { sealed } => Some(message(
            StatusCode::OK,
            "signed-heading",
            "signed-body",
            context! {
                signed_at => link.signer.signed_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
                sealed => *sealed,
                download => link.may_download_sealed(),
            },
        )),
        LinkState::NotYourTurn => Some(message(
            StatusCode::OK,
            "turn-heading",
            "turn-body",
            context! {},
        )),
        LinkState::Locked { until } => Some(locked_page(link, token, locale, *until)),
        LinkState::NeedsCode | LinkState::Ready => None,
    }
}

fn locked_page<'a>(
    link: &'a SigningLink,
    token: &'a str,
    locale: Locale,
    until: DateTime<Utc>,
) -> Page<'a> {
    Page {
        status: StatusCode::TOO_MANY_REQUESTS,
        template: "message.html",
        locale,
        link: Some(link),
        token,
        csrf: None,
        ctx: context! {
            heading => "locked-heading",
            body => "locked-body",
            until => until.format("%Y-%m-%d %H:%M").to_string(),
        },
        cookies: vec![],
    }
}

fn gate_page<'a>(
    state: &AppState,
    link: &'a SigningLink,
    token: &'a str,
    visitor: &Visitor,
    locale: Locale,
    error: Option<Value>,
) -> Page<'a> {
    let (csrf, new_cookie) = csrf_for(state, token, visitor);
    Page {
        status: if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        template: "gate.html",
        locale,
        link: Some(link),
        token,
        csrf: Some(csrf),
        ctx: context! { error => error },
        cookies: new_cookie.into_iter().collect(),
    }
}
