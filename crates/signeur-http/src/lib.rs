//! Signeur's HTTP edge: the `/api/v1` JSON API with its OpenAPI document, health checks,
//! authentication and idempotency. Handlers parse, call one service function, render.

pub mod error;
mod events;
pub mod guard;
mod json;
pub mod limits;
pub mod pages;
pub mod serve;
mod sessions;
mod signatures;
pub mod views;
mod webhooks;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use signeur_service::Service;

use crate::error::{ApiError, ErrorBody};
use crate::views::Health;

/// The largest body any route accepts: a create's, with its base64 PDF of up to 10 MB
/// (each route's own limit is in [`limits::body_limit`]).
pub const MAX_BODY_BYTES: usize = limits::CREATE_BODY_BYTES;

pub use serve::{ServeLimits, serve};

#[derive(Clone)]
pub struct AppState {
    /// Also the source of `sign_url` and other links (`Service::sign_url`). Behind an `Arc`:
    /// axum clones the state for every extractor of every request.
    pub service: std::sync::Arc<Service>,
    /// Proxies whose `X-Forwarded-For` is believed for signer IP addresses.
    pub trusted_proxies: std::sync::Arc<Vec<ipnet::IpNet>>,
    /// The request deadline and the cap on requests handled at once.
    pub admission: limits::Admission,
}

impl AppState {
    pub fn new(service: Service) -> Self {
        AppState {
            service: std::sync::Arc::new(service),
            trusted_proxies: Default::default(),
            admission: Default::default(),
        }
    }

    /// The request deadline and concurrency cap of `limits` (the others apply in [`serve`]).
    pub fn with_limits(mut self, limits: &ServeLimits) -> Self {
        self.admission =
            limits::Admission::new(limits.max_concurrent_requests, limits.request_timeout);
        self
    }

    pub fn with_trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> Self {
        self.trusted_proxies = std::sync::Arc::new(proxies);
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Signeur API",
        version = "1",
        description = "Create signature requests, follow their status and download sealed PDFs. \
                       Errors are `{\"error\": code, \"message\": text}`; every POST accepts `Idempotency-Key`."
    ),
    modifiers(&BearerAuth),
    tags((name = "Signature requests"), (name = "Signing sessions and settings"), (name = "Webhook endpoints"), (name = "Events"), (name = "Operations"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sgn_live_…")
                    .build(),
            ),
        );
    }
}

/// Routes that need an API key, each registered with its OpenAPI description so neither
/// can drift from the other.
fn authenticated_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            signatures::create_signature,
            signatures::list_signatures
        ))
        .routes(routes!(signatures::get_signature))
        .routes(routes!(signatures::list_signers))
        .routes(routes!(signatures::resend_invitation))
        .routes(routes!(signatures::remind_signer))
        .routes(routes!(signatures::cancel_signature))
        .routes(routes!(signatures::download_document))
        .routes(routes!(signatures::audit_trail_pdf))
        .routes(routes!(signatures::audit_trail_json))
        .routes(routes!(signatures::retry_seal))
        .routes(routes!(sessions::get_settings, sessions::patch_settings))
        .routes(routes!(sessions::rotate_session_secret))
        .routes(routes!(sessions::create_session))
        .routes(routes!(sessions::get_session))
        .routes(routes!(sessions::rotate_link))
        .routes(routes!(webhooks::list_endpoints, webhooks::create_endpoint))
        .routes(routes!(
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(events::list_events))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::test_endpoint))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::retry_delivery))
}

fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = public_routes().merge(authenticated_routes()).into_openapi();
    limits::document(&mut doc);
    let authenticated: std::collections::BTreeSet<String> = authenticated_routes()
        .into_openapi()
        .paths
        .paths
        .into_keys()
        .collect();
    rate_limit_components(&mut doc);
    document_common_headers(&mut doc, &authenticated);
    doc
}

/// The rate limit's part of the document (see `guard::api_guard`): the `RateLimit-Policy`
/// and `RateLimit` headers and the 429 `RateLimited` answer, as components that every
/// authenticated operation refers to.
fn rate_limit_components(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::{Header, HeaderBuilder};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let text = |description: &str| -> Header {
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(description))
            .build()
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.headers.insert(
        "RateLimit-Policy".into(),
        RefOr::T(text(
            "The organization's API quota (IETF draft-ietf-httpapi-ratelimit-headers): \
             `\"org\";q=100;w=1`, q requests a second on average.",
        )),
    );
    components.headers.insert(
        "RateLimit".into(),
        RefOr::T(text(
            "What is left of the quota: `\"org\";r=57;t=2`, r requests allowed right now, t \
             seconds until the whole burst is back.",
        )),
    );
    let response = ResponseBuilder::new()
        .description(
            "`rate_limited`: the organization's API rate limit is exhausted; nothing was done. \
             Retry after `Retry-After` seconds.",
        )
        .header_ref(
            "RateLimit-Policy",
            Ref::new("#/components/headers/RateLimit-Policy"),
        )
        .header_ref("RateLimit", Ref::new("#/components/headers/RateLimit"))
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                ))
                .description(Some("Seconds to wait before retrying."))
                .build(),
        )
        .header(
            "X-Request-Id",
            text("The request's `X-Request-Id` if it sent one, else a new UUID."),
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    components
        .responses
        .insert("RateLimited".into(), RefOr::T(response));
}

/// The response headers that layers rather than handlers set, on every response that can
/// carry them: `X-Request-Id` (every response), `WWW-Authenticate` (every 401, from
/// `ApiError`), `Retry-After` (every 429), `Idempotent-Replayed` (every success of a
/// POST, which the guard may replay for a repeated `Idempotency-Key`), and on the
/// `authenticated` paths a 429 and the `RateLimit-Policy` / `RateLimit` headers of every
/// answer after authentication.
fn document_common_headers(
    doc: &mut utoipa::openapi::OpenApi,
    authenticated: &std::collections::BTreeSet<String>,
) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Ref, RefOr};

    let constant = |value: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([value]))
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let rate_limited = authenticated.contains(path);
        let operations = [
            (&mut item.get, false),
            (&mut item.put, false),
            (&mut item.post, true),
            (&mut item.delete, false),
            (&mut item.patch, false),
        ];
        for (operation, is_post) in operations {
            let Some(operation) = operation else { continue };
            if rate_limited {
                operation
                    .responses
                    .responses
                    .entry("429".to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::new("#/components/responses/RateLimited")));
            }
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                let headers = &mut response.headers;
                headers.insert(
                    "X-Request-Id".into(),
                    RefOr::T(
                        HeaderBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .description(Some(
                                "The request's `X-Request-Id` if it sent one, else a new UUID.",
                            ))
                            .build(),
                    ),
                );
                if status == "401" {
                    headers.insert(
                        "WWW-Authenticate".into(),
                        RefOr::T(
                            HeaderBuilder::new()
                                .schema(Some(constant("Bearer")))
                                .description(Some(
                                    "Authenticate with `Authorization: Bearer sgn_live_…`.",
                                ))
                                .build(),
                        ),
                    );
                }
                if rate_limited && status != "401" {
                    for name in ["RateLimit-Policy", "RateLimit"] {
                        headers.insert(
                            name.into(),
                            RefOr::Ref(Ref::new(format!("#/components/headers/{name}"))),
                        );
                    }
                }
                if status == "429" {
                    headers.insert(
                        "Retry-After".into(),
                        RefOr::T(
                            HeaderBuilder::new()
                                .schema(Some(
                                    ObjectBuilder::new()
                                        .schema_type(Type::Integer)
                                        .minimum(Some(1)),
                                ))
                                .description(Some("Seconds to wait before retrying."))
                                .build(),
                        ),
                    );
                }
                if is_post && status.starts_with('2') {
                    headers.insert(
                        "Idempotent-Replayed".into(),
                        RefOr::T(
                            HeaderBuilder::new()
                                .schema(Some(constant("true")))
                                .description(Some(
                                    "Present when this is the stored response to an earlier \
                                     request with the same `Idempotency-Key`.",
                                ))
                                .build(),
                        ),
                    );
                }
            }
        }
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> axum::Router {
    let (authenticated, _) = authenticated_routes().split_for_parts();
    let (public, _) = public_routes().split_for_parts();
    let spec = openapi();
    let authenticated = authenticated.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        guard::api_guard,
    ));
    public
        .merge(authenticated)
        .merge(pages::router(state.clone()))
        .route("/api/v1/openapi.json", axum::routing::get(move || async move { Json(spec) }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // `limits::admit` counts every body against its route's limit.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.admission.clone(),
            limits::admit,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // The matched route, never the raw path: paths may carry signing tokens.
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("unmatched", |p| p.as_str());
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("http", method = %req.method(), route = %route, request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such route.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This method is not allowed on this route.",
    )
}

#[utoipa::path(
    get, path = "/healthz", tag = "Operations",
    summary = "The process is up",
    responses((status = 200, description = "Up", body = Health))
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get, path = "/metrics", tag = "Operations",
    summary = "Prometheus metrics",
    description = "Text exposition format: jobs by kind and outcome, and seal attempts by outcome (a seal that fails is counted here, logged and recorded as an event).",
    responses((status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String))
)]
async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.service.metrics.render(),
    )
        .into_response()
}

#[utoipa::path(
    get, path = "/readyz", tag = "Operations",
    summary = "The database and the blob store answer, and the job worker runs",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready: the database or the blob store does not answer, or the job worker stopped (the message says which)", body = ErrorBody),
    )
)]
async fn readyz(State(st): State<AppState>) -> Response {
    match st.service.ready().await {
        Ok(()) => Json(Health { status: "ok" }).into_response(),
        Err(e) => {
            tracing::warn!(error = ?e, "not ready");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string())
                .into_response()
        }
    }
}
