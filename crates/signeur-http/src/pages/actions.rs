//! The signer's actions: the signing and decline forms, `POST /sign/{token}/sign` and
//! `/decline`, and their field errors.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use signeur_core::{Locale, ValidationError};
use signeur_service::links::SigningLink;
use signeur_service::sessions::EmbeddedContext;
use signeur_service::signing::{OnPage, PageOutcome, SignForm as SignerForm};
use signeur_service::{ServiceError, i18n};

use crate::AppState;

use super::link::state_page;
use super::{
    LangQuery, Page, Visitor, csrf_failed, csrf_for, internal, locale_of, not_found, return_to,
    see_other,
};

#[derive(Deserialize, Default)]
pub(super) struct SignForm {
    #[serde(default)]
    full_name: String,
    consent: Option<String>,
    representing_entity: Option<String>,
    representing_role: Option<String>,
    representing_entity_id: Option<String>,
    signature: Option<String>,
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

pub(super) async fn sign(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
    Form(form): Form<SignForm>,
) -> Response {
    let signed = SignerForm {
        full_name: form.full_name.clone(),
        consent: form.consent.is_some(),
        representing_entity: form.representing_entity.clone(),
        representing_role: form.representing_role.clone(),
        representing_entity_id: form.representing_entity_id.clone(),
        signature_data_url: form.signature.clone(),
    };
    let outcome = state
        .service
        .sign_on_page(
            &token,
            &visitor.credentials(&form.csrf),
            signed,
            &visitor.origin,
        )
        .await;
    let lang = form.lang.as_deref();
    action_response(&state, &token, lang, outcome, |link, embedded, error| {
        let locale = locale_of(Some(link), lang);
        sign_page(
            &state,
            link,
            &token,
            &visitor,
            locale,
            Some(&form),
            Some(field_error(locale, error)),
        )
        .render_embedded(embedded.is_some())
    })
}

/// A link that cannot act now: its state page, or back to the link.
fn not_now(state: &AppState, link: &SigningLink, token: &str, lang: Option<&str>) -> Response {
    let locale = locale_of(Some(link), lang);
    match state_page(state, link, token, locale) {
        Some(page) => page.render(),
        None => see_other(token, "", locale),
    }
}

/// The page or redirect for where a sign or decline ended; `refused` renders the form again.
fn action_response(
    state: &AppState,
    token: &str,
    lang: Option<&str>,
    outcome: Result<PageOutcome, ServiceError>,
    refused: impl FnOnce(&SigningLink, Option<Box<EmbeddedContext>>, &ValidationError) -> Response,
) -> Response {
    match outcome {
        Ok(PageOutcome::NotFound) => not_found(locale_of(None, lang)),
        Ok(PageOutcome::CsrfFailed(link)) => {
            csrf_failed(&link, token, locale_of(Some(&link), lang))
        }
        Ok(PageOutcome::NotNow(link)) => not_now(state, &link, token, lang),
        Ok(PageOutcome::Refused {
            link,
            embedded,
            error,
        }) => refused(&link, embedded, &error),
        Ok(PageOutcome::Done {
            return_to: Some(url),
            ..
        }) => return_to(state, token, url),
        Ok(PageOutcome::Done {
            link,
            return_to: None,
        }) => see_other(token, "", locale_of(Some(&link), lang)),
        Err(e) => internal(e),
    }
}

/// A validation message in the page's language: the field named by its label.
fn field_error(locale: Locale, v: &ValidationError) -> String {
    let field = v.field.as_deref().unwrap_or("");
    let label_key = match field {
        "full_name" => "sign-name",
        "consent" => "sign-consent",
        "representing_entity" => "sign-entity",
        "representing_role" => "sign-role",
        "representing_entity_id" => "sign-entity-id",
        "signature" => "sign-draw",
        "reason" => "decline-reason",
        _ => "",
    };
    let label = i18n::translate(locale, label_key, &[]).unwrap_or_else(|_| field.to_string());
    let key = match v.code {
        "missing_field" => "error-missing",
        _ => "error-invalid",
    };
    i18n::translate(locale, key, &[("field", label)]).unwrap_or_else(|_| v.message.clone())
}

pub(super) fn sign_page<'a>(
    state: &AppState,
    link: &'a SigningLink,
    token: &'a str,
    visitor: &Visitor,
    locale: Locale,
    form: Option<&SignForm>,
    error: Option<String>,
) -> Page<'a> {
    let (csrf, new_cookie) = csrf_for(state, token, visitor);
    let name = form
        .map(|f| f.full_name.clone())
        .or_else(|| link.signer.name.clone())
        .unwrap_or_default();
    Page {
        status: if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        template: "sign.html",
        locale,
        link: Some(link),
        token,
        csrf: Some(csrf),
        ctx: context! {
            full_name => name,
            representing_entity => form.and_then(|f| f.representing_entity.clone())
                .or_else(|| link.signer.representing_as_invited.clone()),
            representing_role => form.and_then(|f| f.representing_role.clone()),
            representing_entity_id => form.and_then(|f| f.representing_entity_id.clone()),
            page_count => link.request.document_page_count,
            preview_pages => link.request.document_page_count.min(signeur_service::previews::MAX_PREVIEW_PAGES),
            preview_width => signeur_service::previews::PREVIEW_WIDTH,
            filename => link.request.document_filename.clone(),
            message => link.request.message.clone(),
            signer_name => link.signer.name.clone(),
            error => error,
        },
        cookies: new_cookie.into_iter().collect(),
    }
}

pub(super) async fn decline_form(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    visitor: Visitor,
) -> Response {
    let lang = q.lang.as_deref();
    match state
        .service
        .decline_form_on_page(&token, visitor.session())
        .await
    {
        Ok(OnPage::Ready(link, ())) => {
            let locale = locale_of(Some(&link), lang);
            decline_page(&state, &link, &token, &visitor, locale, "", None).render()
        }
        Ok(OnPage::NotNow(link)) => not_now(&state, &link, &token, lang),
        Ok(OnPage::NotFound) => not_found(locale_of(None, lang)),
        Err(e) => internal(e),
    }
}

fn decline_page<'a>(
    state: &AppState,
    link: &'a SigningLink,
    token: &'a str,
    visitor: &Visitor,
    locale: Locale,
    reason: &str,
    error: Option<String>,
) -> Page<'a> {
    let (csrf, new_cookie) = csrf_for(state, token, visitor);
    Page {
        status: if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        template: "decline.html",
        locale,
        link: Some(link),
        token,
        csrf: Some(csrf),
        ctx: context! { reason => reason, error => error },
        cookies: new_cookie.into_iter().collect(),
    }
}

#[derive(Deserialize)]
pub(super) struct DeclineForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

pub(super) async fn decline(
    State(state): State<AppState>,
    Path(token): Path<String>,
    visitor: Visitor,
    Form(form): Form<DeclineForm>,
) -> Response {
    let outcome = state
        .service
        .decline_on_page(
            &token,
            &visitor.credentials(&form.csrf),
            &form.reason,
            &visitor.origin,
        )
        .await;
    let lang = form.lang.as_deref();
    action_response(&state, &token, lang, outcome, |link, _, error| {
        let locale = locale_of(Some(link), lang);
        decline_page(
            &state,
            link,
            &token,
            &visitor,
            locale,
            &form.reason,
            Some(field_error(locale, error)),
        )
        .render()
    })
}
