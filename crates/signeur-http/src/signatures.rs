//! `/api/v1/signatures…`: parse, call one service function, render.

use crate::json::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use signeur_core::validate::schema::{CancelBody, CreateSignatureRequestBody, ResendBody};
use signeur_service::ListQuery;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::guard::Caller;
use crate::views::{
    AuditRecordView, CancelResponse, RemindResponse, ResendResponse, SignatureRequestCreated,
    SignatureRequestList, SignatureRequestView, SignerList,
};

pub const TAG: &str = "Signature requests";

/// A path id that is not a UUID names nothing: 404, like an id of another organization.
fn request_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("Signature request"))
}

/// An empty query value means "not given", as the service reads it.
pub(crate) fn or_empty(
    schema: impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(schema)
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([""])),
        )
        .build()
        .into()
}

fn status_or_empty() -> utoipa::openapi::schema::Schema {
    or_empty(utoipa::openapi::Ref::from_schema_name(
        <signeur_core::RequestStatus as utoipa::ToSchema>::name(),
    ))
}

pub(crate) fn date_time_or_empty() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
    )
}

pub(crate) fn limit_or_empty() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(100)),
    )
}

/// The `Idempotency-Key` header every POST accepts (see `normalize_key` for the rules).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyHeader {
    /// Replays the first response for 24 h
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        pattern = "^([!#-~]([ -~]{0,253}[!-~])?|\"([ -~]{0,253}[!#-~])?|\"[ -~]{1,255}\")$"
    )]
    idempotency_key: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only requests in this status.
    #[param(schema_with = status_or_empty)]
    status: Option<String>,
    /// Requests created at or after this instant (RFC 3339).
    #[param(schema_with = date_time_or_empty)]
    created_from: Option<String>,
    /// Requests created before this instant (RFC 3339).
    #[param(schema_with = date_time_or_empty)]
    created_to: Option<String>,
    /// Page size, 1–100 (default 25).
    #[param(schema_with = limit_or_empty)]
    limit: Option<String>,
    /// `next_cursor` of the previous page, for the same filters; opaque: do not construct
    /// your own.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/signatures", tag = TAG,
    summary = "Create a signature request",
    request_body(content = CreateSignatureRequestBody, content_type = "application/json",
        example = signeur_core::validate::schema::create_example),
    params(IdempotencyHeader),
    responses(
        (status = 201, description = "Created", body = SignatureRequestCreated),
        (status = 400, description = "Invalid body or document", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 409, description = "Idempotency-Key conflict or in use", body = ErrorBody),
        (status = 413, description = "Body over the route's limit (see `limits::body_limit`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_signature(
    State(st): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let detail = st.service.create_request(caller.org_id, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(SignatureRequestCreated::new(&detail, &st.service)),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/api/v1/signatures", tag = TAG,
    summary = "List signature requests",
    params(ListParams),
    responses(
        (status = 200, description = "One page, newest first", body = SignatureRequestList),
        (status = 400, description = "Invalid filter, limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_signatures(
    State(st): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<SignatureRequestList>, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            format!("Invalid query string: {e}"),
        )
    })?;
    let q = ListQuery {
        status: p.status,
        created_from: p.created_from,
        created_to: p.created_to,
        limit: p.limit,
        cursor: p.cursor,
    };
    let page = st.service.list_requests(caller.org_id, &q).await?;
    Ok(Json(SignatureRequestList::new(&page)))
}

#[utoipa::path(
    get, path = "/api/v1/signatures/{id}", tag = TAG,
    summary = "Get a signature request",
    params(("id" = Uuid, Path, description = "Signature request id")),
    responses(
        (status = 200, description = "The request, its signers and audit trail", body = SignatureRequestView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_signature(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SignatureRequestView>, ApiError> {
    let detail = st
        .service
        .get_request(caller.org_id, request_id(&id)?)
        .await?;
    Ok(Json(SignatureRequestView::new(detail, &st.service)))
}

#[utoipa::path(
    get, path = "/api/v1/signatures/{id}/signers", tag = TAG,
    summary = "List the signers of a request",
    params(("id" = Uuid, Path, description = "Signature request id")),
    responses(
        (status = 200, description = "Signers in position order", body = SignerList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_signers(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SignerList>, ApiError> {
    let detail = st
        .service
        .get_request(caller.org_id, request_id(&id)?)
        .await?;
    Ok(Json(SignerList::new(&detail, &st.service)))
}

#[utoipa::path(
    post, path = "/api/v1/signatures/{id}/cancel", tag = TAG,
    summary = "Cancel a signature request",
    params(
        ("id" = Uuid, Path, description = "Signature request id"),
        IdempotencyHeader,
    ),
    request_body(content = Option<CancelBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Cancelled; every unused link is invalidated", body = CancelResponse),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request in this organization", body = ErrorBody),
        (status = 409, description = "Not cancellable in its status, or Idempotency-Key conflict", body = ErrorBody),
        (status = 413, description = "Body over the route's limit (see `limits::body_limit`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_signature(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<CancelResponse>, ApiError> {
    let outcome = st
        .service
        .cancel_request(caller.org_id, request_id(&id)?, &body)
        .await?;
    Ok(Json(CancelResponse::from(&outcome)))
}

#[utoipa::path(
    post, path = "/api/v1/signatures/{id}/signers/{signer_id}/resend", tag = TAG,
    summary = "Resend the invitation with a new access code",
    params(
        ("id" = Uuid, Path, description = "Signature request id"),
        ("signer_id" = Uuid, Path, description = "Signer id"),
        IdempotencyHeader,
    ),
    request_body(content = Option<ResendBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "A new code was generated and the invitation sent (see email_sent)", body = ResendResponse),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request or signer in this organization", body = ErrorBody),
        (status = 409, description = "The signer signed or declined, the request is no longer open, it is not their turn, or their link needs no access code (delivery api)", body = ErrorBody),
        (status = 413, description = "Body over the route's limit (see `limits::body_limit`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resend_invitation(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, signer_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ResendResponse>, ApiError> {
    let signer_id = Uuid::parse_str(&signer_id).map_err(|_| ApiError::not_found("Signer"))?;
    let outcome = st
        .service
        .resend_invitation(caller.org_id, request_id(&id)?, signer_id, &body)
        .await?;
    Ok(Json(ResendResponse::from(&outcome)))
}

#[utoipa::path(
    post, path = "/api/v1/signatures/{id}/signers/{signer_id}/remind", tag = TAG,
    summary = "Send the signer a reminder now",
    description = "Emails the signer a reminder in their language, linking to their signing page; \
        nothing is rotated (their access code stays the invitation's). Recorded as a \
        `signer.reminded` event when the SMTP server accepts it (a refused or unsent reminder \
        records nothing). It does not count towards the reminder policy's `max`; the \
        next scheduled reminder comes `every_days` after it. A transient SMTP failure leaves \
        the reminder queued (`email_sent: false`, `email_error` set); a scheduled reminder still \
        waiting goes out as this one, not as a second email.",
    params(
        ("id" = Uuid, Path, description = "Signature request id"),
        ("signer_id" = Uuid, Path, description = "Signer id"),
        IdempotencyHeader,
    ),
    responses(
        (status = 200, description = "The reminder was attempted (see email_sent)", body = RemindResponse),
        (status = 400, description = "Invalid Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request or signer in this organization", body = ErrorBody),
        (status = 409, description = "The request is no longer open, the signer signed, declined or has not been invited yet (not their turn), the request has delivery api, or a reminder to the signer is being sent by the worker at this moment (invalid_state)", body = ErrorBody),
        (status = 413, description = "Body over 16 MB", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn remind_signer(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, signer_id)): Path<(String, String)>,
) -> Result<Json<RemindResponse>, ApiError> {
    let signer_id = Uuid::parse_str(&signer_id).map_err(|_| ApiError::not_found("Signer"))?;
    let outcome = st
        .service
        .remind_signer(caller.org_id, request_id(&id)?, signer_id)
        .await?;
    Ok(Json(RemindResponse::from(&outcome)))
}

/// The answer to a seal retry.
#[derive(serde::Serialize, ToSchema)]
pub struct RetrySealResponse {
    pub id: Uuid,
    /// `awaiting_stamp`: the seal job is queued again.
    #[schema(value_type = signeur_core::RequestStatus)]
    pub status: String,
}

#[utoipa::path(
    post, path = "/api/v1/signatures/{id}/retry-seal", tag = TAG,
    summary = "Try sealing again after stamp_failed",
    params(("id" = Uuid, Path, description = "Signature request id"), IdempotencyHeader),
    responses(
        (status = 200, description = "The seal job is queued again", body = RetrySealResponse),
        (status = 400, description = "Invalid Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request in this organization", body = ErrorBody),
        (status = 409, description = "The request is not stamp_failed (invalid_state), or an Idempotency-Key conflict", body = ErrorBody),
        (status = 413, description = "Body over the route's limit (see `limits::body_limit`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retry_seal(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RetrySealResponse>, ApiError> {
    let id = request_id(&id)?;
    let status = st.service.retry_seal(caller.org_id, id).await?;
    Ok(Json(RetrySealResponse {
        id,
        status: status.as_str().to_string(),
    }))
}

/// A PDF file, as raw bytes.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(value_type = String, format = Binary)]
pub struct PdfFile(Vec<u8>);

/// A PDF download (`attachment`, the upload's file name).
pub(crate) fn pdf_response(filename: &str, bytes: Vec<u8>) -> Response {
    let mut res = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pdf"),
        )],
        bytes,
    )
        .into_response();
    // The upload's name, reduced to characters safe in a quoted header parameter.
    let safe: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[utoipa::path(
    get, path = "/api/v1/signatures/{id}/document", tag = TAG,
    summary = "Download the signed PDF",
    params(("id" = Uuid, Path, description = "Signature request id")),
    responses(
        (status = 200, description = "The sealed PDF", content_type = "application/pdf", body = PdfFile,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"…\"` with the uploaded file name"))),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request in this organization", body = ErrorBody),
        (status = 409, description = "Not signed yet (document_not_signed), or cancelled/declined/expired (invalid_state)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn download_document(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let doc = st
        .service
        .signed_document(caller.org_id, request_id(&id)?)
        .await?;
    Ok(pdf_response(&doc.filename, doc.bytes))
}

#[utoipa::path(
    get, path = "/api/v1/signatures/{id}/audit-trail.pdf", tag = TAG,
    summary = "Download the audit-trail PDF",
    params(("id" = Uuid, Path, description = "Signature request id")),
    responses(
        (status = 200, description = "The audit trail as PDF", content_type = "application/pdf", body = PdfFile,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"audit-trail.pdf\"`"))),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn audit_trail_pdf(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = st
        .service
        .audit_trail_pdf(caller.org_id, request_id(&id)?)
        .await?;
    Ok(pdf_response("audit-trail.pdf", bytes))
}

#[utoipa::path(
    get, path = "/api/v1/signatures/{id}/audit-trail.json", tag = TAG,
    summary = "Download the audit record as JSON",
    description = "The record behind the audit-trail PDF, for any status: the request, its signers (without access tokens), every event with its hash and its predecessor's, whether the chain verifies, and the seal read back from the sealed file. `signeur verify --audit FILE` checks the chain of this file as it is.",
    params(("id" = Uuid, Path, description = "Signature request id")),
    responses(
        (status = 200, description = "The audit record", body = AuditRecordView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such request in this organization", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn audit_trail_json(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AuditRecordView>, ApiError> {
    let record = st
        .service
        .audit_record(caller.org_id, request_id(&id)?)
        .await?;
    Ok(Json(AuditRecordView::new(record)))
}
