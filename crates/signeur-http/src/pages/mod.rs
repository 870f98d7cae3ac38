//! The signer's pages under `/sign/{access_token}`: server-rendered HTML (minijinja), every
//! form a plain POST (no JavaScript needed except to draw a signature), texts from the
//! translation files. Tokens never reach the logs: the trace span names the matched route.
//!
//! Cookies are scoped to `/sign/{token}`: `signeur_csrf` (a random value; forms carry its MAC,
//! double-submit), `signeur_session` (the signer session the service issues after the
//! access code, or on first view of a link that is its own credential) and `signeur_embed`
//! (the embedded session the browser came through).
//!
//! Framing: no page may be framed (`frame-ancestors 'none'`, `X-Frame-Options: DENY`) except
//! in an embedded session whose organization lists `allowed_frame_origins`: then every
//! response of the session (the one-time URL's redirect, every page, image, document, form
//! answer and redirect under its link) names exactly those origins in `frame-ancestors`, its
//! forms may end on the return URL's origin (`form-action`), and its cookies are
//! `SameSite=None; Secure; Partitioned` so that a cross-site frame stores and sends them.
//! The CSRF token is then what stops a forged cross-site form; every POST checks it.
//!
//! Every handler makes one service call and maps its outcome to a page or a redirect. By
//! topic: `link` (what a link shows, the access-code gate), `actions` (sign, decline),
//! `embedded` (embedded sessions), `files` (documents, page images, assets); this module
//! holds the router, the security headers, the visitor and the page rendering they share.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cookie::{Cookie, SameSite};
use minijinja::{Environment, Value, context};
use rand::RngCore;
use serde::Deserialize;

use signeur_core::Locale;
use signeur_service::links::{Origin, PageCredentials, SignerSession, SigningLink};
use signeur_service::sessions::{EmbeddedContext, FramedPage};
use signeur_service::{PageRetry, ServiceError, i18n};

use crate::AppState;

mod actions;
mod embedded;
mod files;
mod link;

use actions::{decline, decline_form, sign};
use embedded::{cancel_session, open_embedded};
use files::{brand_css, css, original, page_image, script, signed_document};
use link::{show, verify};

const CSRF_COOKIE: &str = "signeur_csrf";
const SESSION_COOKIE: &str = "signeur_session";
const EMBED_COOKIE: &str = "signeur_embed";

/// Bare `.route` calls: these are HTML pages, not part of the JSON API and its OpenAPI.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/sign/{token}", get(show))
        .route("/sign/{token}/verify", axum::routing::post(verify))
        .route("/sign/{token}/sign", axum::routing::post(sign))
        .route("/sign/{token}/decline", get(decline_form).post(decline))
        .route("/sign/{token}/document.pdf", get(original))
        .route("/sign/{token}/signed.pdf", get(signed_document))
        .route("/sign/{token}/cancel", axum::routing::post(cancel_session))
        .route("/sign/{token}/page/{number}", get(page_image))
        .route("/embed/{token}", get(open_embedded))
        .route("/assets/signeur.css", get(css))
        .route("/assets/brand/{file}", get(brand_css))
        .route("/assets/sign.js", get(script))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            page_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(state, page_rate_limit))
}

/// Every page, image, document and asset request counts against its client address and its
/// link (`SIGNEUR_PAGE_RATE_LIMIT_PER_MIN` each). Checked before anything else (no database
/// read for a refused request); refused: a 429 page with `Retry-After`, in the `?lang=`
/// locale (the link's own is not read).
async fn page_rate_limit(
    State(state): State<AppState>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    let socket = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = client_ip(socket, req.headers(), &state.trusted_proxies);
    let token = params.ok().and_then(|params| {
        params
            .iter()
            .find_map(|(name, value)| (name == "token").then(|| value.to_string()))
    });
    match state.service.check_page_rate(client, token.as_deref()) {
        Ok(()) => next.run(req).await,
        Err(PageRetry(wait)) => {
            let locale = req
                .uri()
                .query()
                .and_then(|q| url_query_value(q, "lang"))
                .and_then(|l| Locale::parse(&l))
                .unwrap_or(Locale::En);
            too_many_requests(locale, wait)
        }
    }
}

/// The value of `name` in a query string (first occurrence).
fn url_query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

fn too_many_requests(locale: Locale, wait: std::time::Duration) -> Response {
    let secs = signeur_service::ratelimit::ceil_secs(wait).max(1);
    let mut res = Page {
        status: StatusCode::TOO_MANY_REQUESTS,
        template: "message.html",
        locale,
        link: None,
        token: "",
        csrf: None,
        ctx: context! { heading => "ratelimit-heading", body => "ratelimit-body" },
        cookies: vec![],
    }
    .render();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    security_headers(&mut res, None);
    res
}

/// How the responses of an embedded session may be framed, where their forms may go, and
/// which cookies a frame needs. Handlers see it through [`Visitor`].
#[derive(Debug, Clone)]
struct Framing {
    /// The whole `Content-Security-Policy`.
    csp: String,
    /// Some origin may frame the response (then no `X-Frame-Options`).
    framable: bool,
    /// Cookies set for this browser must reach us from a cross-site frame.
    cross_site_cookies: bool,
}

impl Framing {
    fn of(state: &AppState, e: &EmbeddedContext) -> Framing {
        let framable = !e.frame_origins.is_empty();
        let ancestors = if framable {
            e.frame_origins.join(" ")
        } else {
            "'none'".to_string()
        };
        Framing {
            csp: csp(&ancestors, &e.return_origin().unwrap_or_default()),
            framable,
            cross_site_cookies: framable && secure_cookies_work(state.service.public_url()),
        }
    }
}

/// Browsers keep `Secure` cookies (which `SameSite=None` requires) from HTTPS, and from
/// plain HTTP on loopback (a secure context, for development and the tests).
fn secure_cookies_work(public_url: &str) -> bool {
    let Ok(uri) = public_url.parse::<Uri>() else {
        return false;
    };
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), _) => true,
        (Some("http"), Some(host)) => {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// The security headers of every page response, framing included: the framing of the
/// embedded session the request belongs to (the one-time URL's token, or the embed cookie
/// on a link's page), else none.
async fn page_headers(
    State(state): State<AppState>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    let page = params
        .ok()
        .and_then(|params| FramedRequest::of(&req, &params));
    let framing = match page {
        Some(page) => framing_of(&state, &page).await,
        None => None,
    };
    if let Some(f) = &framing {
        req.extensions_mut().insert(f.clone());
    }
    let mut res = next.run(req).await;
    security_headers(&mut res, framing.as_ref());
    res
}

/// What decides a page request's framing, read from the request.
enum FramedRequest {
    OneTime(String),
    Link {
        token: String,
        embed: Option<String>,
    },
}

impl FramedRequest {
    fn of(req: &Request, params: &RawPathParams) -> Option<FramedRequest> {
        let route = req.extensions().get::<MatchedPath>()?.as_str();
        let token = params
            .iter()
            .find_map(|(name, value)| (name == "token").then(|| value.to_string()))?;
        if route.starts_with("/embed/") {
            Some(FramedRequest::OneTime(token))
        } else if route.starts_with("/sign/") {
            let embed = read_cookies(req.headers()).embed;
            Some(FramedRequest::Link { token, embed })
        } else {
            None
        }
    }
}

async fn framing_of(state: &AppState, page: &FramedRequest) -> Option<Framing> {
    let page = match page {
        FramedRequest::OneTime(token) => FramedPage::OneTime(token),
        FramedRequest::Link { token, embed } => FramedPage::Link {
            token,
            embed: embed.as_deref(),
        },
    };
    match state.service.page_frame(page).await {
        Ok(e) => e.map(|e| Framing::of(state, &e)),
        Err(e) => {
            // Not framable: the page itself will most likely answer the error too.
            tracing::warn!(error = %e, "the embedded session of a page could not be read");
            None
        }
    }
}

/// CSP without inline script, framing as decided, no referrer (tokens are in the URL), no
/// caching.
fn security_headers(res: &mut Response, framing: Option<&Framing>) {
    let h = res.headers_mut();
    let policy = framing.map_or_else(|| csp("'none'", ""), |f| f.csp.clone());
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        )),
    );
    if framing.is_some_and(|f| f.framable) {
        h.remove(header::X_FRAME_OPTIONS);
    } else {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The pages' policy. `frame_ancestors`: `'none'`, or an embedding organization's origins;
/// `form_to`: the return URL's origin in an embedded session (a form's redirect there is
/// checked against `form-action` too).
fn csp(frame_ancestors: &str, form_to: &str) -> String {
    format!(
        "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         form-action 'self' {form_to}; frame-ancestors {frame_ancestors}; base-uri 'none'"
    )
}

// --- Who is asking -----------------------------------------------------------------------------

/// The browser behind a page request: its cookies, address and user agent, and whether it
/// is in a cross-site frame of an embedded session.
pub struct Visitor {
    csrf_cookie: Option<String>,
    session: Option<String>,
    embed: Option<String>,
    origin: Origin,
    cross_site: bool,
}

/// Our cookies in a request.
#[derive(Default)]
struct PageCookies {
    csrf: Option<String>,
    session: Option<String>,
    embed: Option<String>,
}

fn read_cookies(headers: &HeaderMap) -> PageCookies {
    let mut found = PageCookies::default();
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for c in Cookie::split_parse(value).flatten() {
            match c.name() {
                CSRF_COOKIE => found.csrf = Some(c.value().to_string()),
                SESSION_COOKIE => found.session = Some(c.value().to_string()),
                EMBED_COOKIE => found.embed = Some(c.value().to_string()),
                _ => {}
            }
        }
    }
    found
}

impl Visitor {
    /// The signer session cookie, if the browser sent one.
    fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// What the service checks a signer-page action against.
    fn credentials<'a>(&'a self, csrf_token: &'a str) -> PageCredentials<'a> {
        PageCredentials {
            session: self.session.as_deref(),
            embed: self.embed.as_deref(),
            csrf_cookie: self.csrf_cookie.as_deref(),
            csrf_token,
        }
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let cookies = read_cookies(&parts.headers);
        let socket = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = client_ip(socket, &parts.headers, &state.trusted_proxies);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(500).collect());
        let cross_site = parts
            .extensions
            .get::<Framing>()
            .is_some_and(|f| f.cross_site_cookies);
        Ok(Visitor {
            csrf_cookie: cookies.csrf,
            session: cookies.session,
            embed: cookies.embed,
            cross_site,
            origin: Origin {
                ip_address: ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                user_agent,
            },
        })
    }
}

/// The socket address, or — only when that address is a trusted proxy — the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(
    socket: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let socket = socket?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&socket) {
        return Some(socket);
    }
    let mut forwarded: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(v) = v.to_str() else {
            return Some(socket);
        };
        for part in v.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => forwarded.push(ip),
                Err(_) => return Some(socket),
            }
        }
    }
    let first = forwarded.first().copied();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .or(first)
            .unwrap_or(socket),
    )
}

// --- Rendering ---------------------------------------------------------------------------------

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("gate.html", include_str!("../../templates/gate.html")),
        ("sign.html", include_str!("../../templates/sign.html")),
        ("decline.html", include_str!("../../templates/decline.html")),
        ("message.html", include_str!("../../templates/message.html")),
    ] {
        env.add_template(name, source)
            .expect("page templates are valid (tests render each)");
    }
    env.add_function("t", i18n::t);
    env
}

static ENV: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(environment);

#[derive(Deserialize, Default)]
pub struct LangQuery {
    lang: Option<String>,
}

fn locale_of(link: Option<&SigningLink>, requested: Option<&str>) -> Locale {
    requested
        .and_then(Locale::parse)
        .or_else(|| link.map(|l| l.signer.locale))
        .unwrap_or(Locale::En)
}

/// What every page shows.
struct Page<'a> {
    status: StatusCode,
    template: &'static str,
    locale: Locale,
    link: Option<&'a SigningLink>,
    token: &'a str,
    csrf: Option<String>,
    ctx: Value,
    cookies: Vec<Cookie<'static>>,
}

impl Page<'_> {
    /// Renders for a browser in an embedded session (if `embedded`): with a Cancel button
    /// back to the integrator. (Its framing is the middleware's: [`page_headers`].)
    fn render_embedded(mut self, embedded: bool) -> Response {
        if embedded {
            self.ctx = context! { embedded => true, ..self.ctx };
        }
        self.render()
    }

    fn render(self) -> Response {
        let (org, title, expires) = match self.link {
            Some(l) => (
                Some(
                    l.branding
                        .as_ref()
                        .and_then(|b| b.name.clone())
                        .unwrap_or_else(|| l.org_name.clone()),
                ),
                Some(l.request.title.clone()),
                Some(l.request.expires_at.format("%Y-%m-%d").to_string()),
            ),
            None => (None, None, None),
        };
        // The logo as an `<img>` source (a `data:` URI: an SVG there runs no script); the
        // colour through `/assets/brand/{rrggbb}.css` (no inline style).
        let branding = self.link.and_then(|l| l.branding.as_ref());
        let logo = branding.and_then(|b| b.logo_data_uri());
        let brand_css = branding
            .and_then(|b| b.color.as_deref())
            .map(|c| c.trim_start_matches('#').to_string());
        let languages: Vec<Value> = Locale::ALL
            .iter()
            .map(|l| {
                context! {
                    code => l.as_str(),
                    name => native_name(*l),
                    current => *l == self.locale,
                }
            })
            .collect();
        let ctx = context! {
            lang => self.locale.as_str(),
            org => org,
            logo => logo,
            brand_css => brand_css,
            title => title,
            expires => expires,
            token => self.token,
            csrf => self.csrf,
            languages => languages,
            ..self.ctx
        };
        let html = match ENV.get_template(self.template).and_then(|t| t.render(&ctx)) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(template = self.template, error = %e, "page did not render");
                return (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                    .into_response();
            }
        };
        let mut res = (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response();
        for c in self.cookies {
            if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        res
    }
}

fn native_name(l: Locale) -> &'static str {
    match l {
        Locale::En => "English",
        Locale::Fi => "Suomi",
        Locale::Fr => "Français",
        Locale::De => "Deutsch",
    }
}

/// One of our cookies for link `token`. `cross_site`: for a browser in an embedded session
/// that may be framed cross-site, which neither stores nor sends `SameSite=Lax` cookies
/// there: `SameSite=None; Secure`, and `Partitioned` (CHIPS: kept apart per embedding site,
/// and still allowed where third-party cookies are blocked).
fn cookie(
    state: &AppState,
    token: &str,
    name: &'static str,
    value: String,
    cross_site: bool,
) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_path(format!("/sign/{token}"));
    c.set_http_only(true);
    if cross_site {
        c.set_same_site(SameSite::None);
        c.set_secure(true);
        c.set_partitioned(true);
    } else {
        c.set_same_site(SameSite::Lax);
        c.set_secure(state.service.public_url().starts_with("https://"));
    }
    c
}

/// The browser's CSRF cookie, or a new one to set with this response.
fn csrf_for(state: &AppState, token: &str, visitor: &Visitor) -> (String, Option<Cookie<'static>>) {
    match visitor.csrf_cookie.as_deref().filter(|c| c.len() == 64) {
        Some(c) => (state.service.csrf_token(c), None),
        None => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let value = hex::encode(bytes);
            let token_value = state.service.csrf_token(&value);
            let c = cookie(state, token, CSRF_COOKIE, value, visitor.cross_site);
            (token_value, Some(c))
        }
    }
}

fn not_found(locale: Locale) -> Response {
    Page {
        status: StatusCode::NOT_FOUND,
        template: "message.html",
        locale,
        link: None,
        token: "",
        csrf: None,
        ctx: context! { heading => "notfound-heading", body => "notfound-body" },
        cookies: vec![],
    }
    .render()
}

fn internal(e: ServiceError) -> Response {
    tracing::error!(error = %e, "signing page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Something went wrong on our side. Please try again in a moment.",
    )
        .into_response()
}

fn see_other(token: &str, suffix: &str, locale: Locale) -> Response {
    let to = format!("/sign/{token}{suffix}?lang={}", locale.as_str());
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// The signer session cookie: it lives as long as the service says the session may.
fn session_cookie(
    state: &AppState,
    token: &str,
    session: SignerSession,
    cross_site: bool,
) -> Cookie<'static> {
    let mut c = cookie(state, token, SESSION_COOKIE, session.value, cross_site);
    c.set_max_age(cookie::time::Duration::seconds(
        session.max_age.num_seconds(),
    ));
    c
}

/// A redirect back to an embedded session's return URL: the session is over, and so is the
/// browser's signer cookie (the service no longer honours it either).
fn return_to(state: &AppState, token: &str, url: String) -> Response {
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
    // The embed cookie stays: it admits no one (the session is over), it only keeps the
    // link's pages framable by the allowed origins (the Back button inside the frame).
    // Both kinds of session cookie: a framed browser holds it partitioned, another not.
    for cross_site in [false, true] {
        let mut c = cookie(state, token, SESSION_COOKIE, String::new(), cross_site);
        c.set_max_age(cookie::time::Duration::ZERO);
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

fn csrf_failed(link: &SigningLink, token: &str, locale: Locale) -> Response {
    Page {
        status: StatusCode::FORBIDDEN,
        template: "message.html",
        locale,
        link: Some(link),
        token,
        csrf: None,
        ctx: context! { heading => "error-heading", body => "csrf-failed", back => true },
        cookies: vec![],
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["203.0.113.9, 10.1.2.3"]);
        // Not configured: the socket address, whatever the header says.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &[]),
            Some(ip("10.0.0.1"))
        );
        // A direct client cannot claim another address.
        assert_eq!(
            client_ip(Some(ip("198.51.100.7")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        // Through trusted proxies: the right-most address that is not a proxy.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("203.0.113.9"))
        );
        let spoofed = headers(&["1.1.1.1", "203.0.113.9"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &spoofed, &trusted),
            Some(ip("203.0.113.9")),
            "a client-supplied left-most entry is not believed"
        );
        // Garbage in the header: the proxy's own address.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &headers(&["not-an-ip"]), &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(client_ip(None, &h, &trusted), None);
    }

    #[test]
    fn cross_site_cookies_need_a_secure_public_url() {
        for (url, works) in [
            ("https://sign.example.com", true),
            ("https://sign.example.com:8443/base", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.1.2.3", true),
            ("http://localhost:3000", true),
            ("http://[::1]:3000", true),
            ("http://sign.example.com", false),
            ("http://10.0.0.5:8080", false),
            ("http://localhost.example.com", false),
            ("not a url", false),
        ] {
            assert_eq!(secure_cookies_work(url), works, "{url}");
        }
    }

    /// Every page renders in every language: no missing translation, no template error.
    #[test]
    fn every_page_renders_in_every_locale() {
        for locale in Locale::ALL {
            for (template, extra) in [
                (
                    "gate.html",
                    context! { error => context! { key => "gate-wrong", left => 3 } },
                ),
                (
                    "sign.html",
                    context! { full_name => "Ærø Łódź", page_count => 60, preview_pages => 50, preview_width => 1000, filename => "a.pdf", message => "Hi", error => "x", embedded => true },
                ),
                ("decline.html", context! { reason => "", error => "x" }),
                (
                    "message.html",
                    context! { heading => "signed-heading", body => "signed-body", signed_at => "2026-01-01 10:00", sealed => false },
                ),
                (
                    "message.html",
                    context! { heading => "signed-heading", body => "signed-body", signed_at => "2026-01-01 10:00", sealed => true, unlock => true },
                ),
                (
                    "message.html",
                    context! { heading => "locked-heading", body => "locked-body", until => "2026-01-01 10:00" },
                ),
                (
                    "message.html",
                    context! { heading => "turn-heading", body => "turn-body" },
                ),
                (
                    "message.html",
                    context! { heading => "gone-heading", body => "gone-expired" },
                ),
                (
                    "message.html",
                    context! { heading => "notfound-heading", body => "notfound-body" },
                ),
                (
                    "message.html",
                    context! { heading => "error-heading", body => "csrf-failed", back => true },
                ),
                (
                    "message.html",
                    context! { heading => "ratelimit-heading", body => "ratelimit-body" },
                ),
            ] {
                let ctx = context! {
                    lang => locale.as_str(), org => "Acme", title => "Deal <b>", expires => "2026-12-31",
                    token => "tok", csrf => "c", languages => Vec::<Value>::new(), ..extra
                };
                let html = ENV
                    .get_template(template)
                    .and_then(|t| t.render(&ctx))
                    .unwrap_or_else(|e| panic!("{template} in {locale}: {e:#}"));
                assert!(html.contains(&format!("<html lang=\"{locale}\">")));
                assert!(!html.contains("<b>"), "{template}: HTML is escaped");
            }
        }
    }
}
