//! The request bodies of the API as OpenAPI schemas, next to the code that parses them.
//!
//! The parsers in [`super`] walk the raw JSON by hand, so that a wrong type, an unknown
//! locale or an over-long string each get their own error code and a message naming the
//! exact field. These types are their description for the OpenAPI document: the closed sets
//! are the domain's own enums, the limits are the parser's constants (utoipa takes literals
//! only), and `validate/tests.rs` proves that schema and parser accept the same fields with
//! the same limits, patterns and enums.

use utoipa::PartialSchema as _;
use utoipa::ToSchema;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

use super::SignaturePosition;
use crate::model::{Delivery, Locale, SigningOrder};

/// An RFC 3339 timestamp or null (absent). Spelled as `oneOf` rather than
/// `type: [string, null]` so that no tool reads the `format` as applying to null only.
pub fn nullable_date_time() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "RFC 3339 timestamp, in the future and at most 365 days ahead (default: 30 days \
             after creation).",
        ))
        .build()
        .into()
}

/// Body of `POST /api/v1/signatures`: `signers` (1–20) or the legacy single-signer
/// `signer_email`/`signer_name` pair, and the PDF. Other fields are ignored.
#[derive(ToSchema)]
pub struct CreateSignatureRequest {
    /// Title of the request (shown in the invitation email).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*[^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub title: String,
    /// Optional message shown to each signer.
    #[schema(
        max_length = 2000,
        pattern = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$"
    )]
    pub message: Option<String>,
    /// Default locale of the signers that name none (default `en`).
    pub locale: Option<Locale>,
    /// `email`: Signeur sends the invitations (every signer needs an `email`); `api`: you
    /// hand out each `sign_url`. Default: `api` if a signer has no email, else `email`.
    pub delivery: Option<Delivery>,
    /// Default `parallel`; `sequential` invites each signer after the previous one signed.
    pub signing_order: Option<SigningOrder>,
    #[schema(schema_with = nullable_date_time)]
    pub expires_at: Option<String>,
    /// Free-form object stored verbatim (at most 16 KB of JSON).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// 1–20 signers. Required unless the legacy `signer_email` is given.
    #[schema(min_items = 1, max_items = 20)]
    pub signers: Option<Vec<CreateSigner>>,
    /// Legacy single-signer body (used only when `signers` is absent).
    #[schema(format = Email, max_length = 254)]
    pub signer_email: Option<String>,
    /// Legacy single-signer body (used only when `signers` is absent).
    #[schema(max_length = 200, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub signer_name: Option<String>,
    pub document: CreateDocument,
    /// Reminder emails for this request (`delivery: email` only): a policy, `null` for none,
    /// or absent for the organization's policy at create time (settings `reminders`). The
    /// policy is kept with the request: later settings changes do not alter it.
    pub reminders: Option<super::ReminderPolicy>,
}

/// One signer of a create.
#[derive(ToSchema)]
pub struct CreateSigner {
    /// Required unless `delivery` is `api`.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// Shown on the audit page.
    #[schema(max_length = 200, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub name: Option<String>,
    /// Email locale; falls back to the top-level `locale`, then `en`.
    pub locale: Option<Locale>,
    /// Where the visible signature block goes; absent: on the last page where it covers no
    /// content.
    pub signature_position: Option<SignaturePosition>,
}

/// The PDF to sign.
#[derive(ToSchema)]
pub struct CreateDocument {
    /// Original file name of the PDF (a name, not a path).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F/\\\\]*[^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000/\\\\][^\\x00-\\x1F\\x7F-\\x9F/\\\\]*$"
    )]
    pub filename: String,
    /// The PDF, base64 (at most 10 MB decoded; padding optional, line breaks allowed). It
    /// must be a readable PDF that is neither encrypted nor certified against changes.
    #[schema(format = Byte)]
    pub content_base64: String,
}

/// Optional body of a cancel.
#[derive(ToSchema)]
pub struct CancelBody {
    /// Stored in the audit trail.
    #[schema(
        max_length = 500,
        pattern = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$"
    )]
    pub reason: Option<String>,
}

/// Optional body of a resend.
#[derive(ToSchema)]
pub struct ResendBody {
    /// Override the signer's email locale for this send and keep it on the signer.
    pub locale: Option<Locale>,
}

/// The body of a create as a whole: its fields ([`CreateSignatureRequest`]) and the two
/// rules between them that the parser enforces: `signers` or the legacy `signer_email` must
/// be given, and with `delivery: email` every signer needs an `email`.
pub struct CreateSignatureRequestBody;

impl utoipa::PartialSchema for CreateSignatureRequestBody {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, SchemaType};
        let present = |key: &str, ty: Type| {
            ObjectBuilder::new()
                .property(key, ObjectBuilder::new().schema_type(ty))
                .required(key)
        };
        let signer_has_email = ObjectBuilder::new()
            .property("email", ObjectBuilder::new().schema_type(Type::String))
            .required("email");
        AllOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name(
                CreateSignatureRequest::name(),
            ))
            .item(
                AnyOfBuilder::new()
                    .item(present("signers", Type::Array))
                    .item(present("signer_email", Type::String))
                    .description(Some("`signers` or the legacy `signer_email`.")),
            )
            .item(
                AnyOfBuilder::new()
                    .item(
                        ObjectBuilder::new().property(
                            "delivery",
                            ObjectBuilder::new()
                                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                                .enum_values(Some([
                                    serde_json::json!("api"),
                                    serde_json::Value::Null,
                                ])),
                        ),
                    )
                    .item(
                        ObjectBuilder::new().property(
                            "signers",
                            utoipa::openapi::schema::ArrayBuilder::new()
                                .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
                                .items(signer_has_email),
                        ),
                    )
                    .description(Some("With `delivery: email`, every signer has an `email`.")),
            )
            .into()
    }
}

impl ToSchema for CreateSignatureRequestBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            CreateSignatureRequest::name().into(),
            CreateSignatureRequest::schema(),
        ));
        CreateSignatureRequest::schemas(schemas);
    }
}

/// A one-page PDF 1.4 (US Letter, blank), base64: the document of the documented example.
pub const EXAMPLE_PDF_BASE64: &str = "JVBERi0xLjQKJeLjz9MKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyAvUGFnZXMgMiAwIFIgPj4KZW5kb2JqCjIgMCBvYmoKPDwgL1R5cGUgL1BhZ2VzIC9LaWRzIFszIDAgUl0gL0NvdW50IDEgPj4KZW5kb2JqCjMgMCBvYmoKPDwgL1R5cGUgL1BhZ2UgL1BhcmVudCAyIDAgUiAvTWVkaWFCb3ggWzAgMCA2MTIgNzkyXSA+PgplbmRvYmoKeHJlZgowIDQKMDAwMDAwMDAwMCA2NTUzNSBmIAowMDAwMDAwMDE1IDAwMDAwIG4gCjAwMDAwMDAwNjQgMDAwMDAgbiAKMDAwMDAwMDEyMSAwMDAwMCBuIAp0cmFpbGVyCjw8IC9TaXplIDQgL1Jvb3QgMSAwIFIgPj4Kc3RhcnR4cmVmCjE5MgolJUVPRgo=";

/// The documented example of a create body (the seed's, with a real PDF, so that it can be
/// sent as it is).
pub fn create_example() -> serde_json::Value {
    serde_json::json!({
        "title": "Order Agreement #1234",
        "message": "Please review and sign.",
        "locale": "en",
        "signers": [
            { "email": "buyer@example.com", "name": "Anna Buyer" },
            { "email": "seller@example.com", "name": "Bob Seller", "locale": "fi" }
        ],
        "document": { "filename": "contract.pdf", "content_base64": EXAMPLE_PDF_BASE64 },
        "metadata": { "deal_id": "D-42" }
    })
}

/// Body of `POST /api/v1/webhook-endpoints`.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CreateWebhookEndpoint {
    /// Where events are POSTed: `https://` (plain `http://` and private or loopback hosts only
    /// with `SIGNEUR_WEBHOOK_ALLOW_PRIVATE=true`, for development); no credentials or fragment.
    #[schema(format = "uri", max_length = 2000)]
    url: String,
    /// Event types to receive; empty or omitted: all of them.
    event_types: Option<Vec<crate::event::EventType>>,
    /// A short label.
    #[schema(max_length = 200, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    description: Option<String>,
}

/// Body of `PATCH /api/v1/webhook-endpoints/{id}`: only the fields given change.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UpdateWebhookEndpoint {
    /// As on create.
    #[schema(format = "uri", max_length = 2000)]
    url: Option<String>,
    /// Event types to receive; empty or null: all of them.
    event_types: Option<Vec<crate::event::EventType>>,
    /// A short label; null clears it.
    #[schema(max_length = 200, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    description: Option<String>,
    /// true pauses delivery without deleting the endpoint; false resumes it (and clears an
    /// automatic disable).
    disabled: Option<bool>,
}
