//! Small closed vocabularies of the domain, with their wire spellings.

macro_rules! wire_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        /// Stored as its wire spelling; an unknown spelling fails the row's decoding.
        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<'r, DB>>::decode(value)?;
                $name::parse(s).ok_or_else(|| {
                    Box::new($crate::model::UnknownValue {
                        kind: stringify!($name),
                        value: s.to_string(),
                    }) as sqlx::error::BoxDynError
                })
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'static str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut DB::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'static str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// A string with one of the wire spellings (`enum`), described by the doc comment.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let doc: &[&str] = &[$($doc),*];
                $crate::model::string_enum(doc, Self::ALL.iter().map(|v| v.as_str()))
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use wire_enum;

/// A stored or received spelling that names no value of a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value '{value}'")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// The schema of a wire enum: a string with the given spellings.
pub(crate) fn string_enum<'a>(
    doc: &[&str],
    values: impl IntoIterator<Item = &'a str>,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let description = doc
        .iter()
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description((!description.is_empty()).then_some(description))
        .enum_values(Some(values))
        .into()
}

wire_enum!(
    /// Languages Signeur speaks to signers.
    Locale { En = "en", Fi = "fi", Fr = "fr", De = "de" }
);

/// English, when neither the signer, the request nor the organization names a locale.
impl Default for Locale {
    fn default() -> Self {
        Locale::En
    }
}

wire_enum!(
    /// Who brings the signing link to the signer.
    Delivery { Email = "email", Api = "api" }
);

wire_enum!(
    /// Whether signers may sign at the same time or one after another.
    SigningOrder { Parallel = "parallel", Sequential = "sequential" }
);

wire_enum!(
    /// Where one signer stands.
    SignerStatus {
        Pending = "pending",
        Sent = "sent",
        Opened = "opened",
        Signed = "signed",
        Declined = "declined",
        Invalidated = "invalidated",
    }
);

wire_enum!(
    /// How a signer was identified: `access_code` (emailed code), `link` (an integrator's link,
    /// `delivery: api`) or `session` (an embedded signing session).
    VerificationMethod {
        /// They entered the access code emailed to them.
        AccessCode = "access_code",
        /// The link itself was the credential (`delivery: "api"`).
        Link = "link",
        /// An embedded signing session the integrator opened for them.
        Session = "session",
    }
);

wire_enum!(
    /// `pending`: the link was not used yet; `opened`: the signer is on the signing page;
    /// `completed`: see `result`.
    SessionStatus {
        /// Created; its one-time token not used yet.
        Pending = "pending",
        /// The token was used; the signer is on the signing page.
        Opened = "opened",
        /// Ended with a result; its `signing_session.completed` event is recorded.
        Completed = "completed",
    }
);

wire_enum!(
    /// How a signing session ended.
    SessionResult { Success = "success", Cancelled = "cancelled", Failed = "failed" }
);

wire_enum!(
    /// Why a signing session failed (the redirect's `failure_code`).
    FailureCode {
        TokenExpired = "token_expired",
        SessionNotFound = "session_not_found",
        ValidationFailed = "validation_failed",
        ProviderUnavailable = "provider_unavailable",
    }
);

wire_enum!(
    /// The kinds of background job.
    JobKind {
        /// Deletes stored idempotent responses older than 24 h.
        PurgeIdempotencyKeys = "purge_idempotency_keys",
        /// Deletes blobs no committed row points to.
        RemoveOrphanBlobs = "remove_orphan_blobs",
        /// Emails one signer their invitation.
        SendInvitation = "send_invitation",
        /// Emails one signer a notice (cancelled, declined, completed).
        SendNotice = "send_notice",
        /// Seals a request whose last signature arrived.
        SealDocument = "seal_document",
        /// Completes embedded signing sessions that lapsed unused.
        ExpireSessions = "expire_sessions",
        /// Makes one attempt of a webhook delivery (and schedules the next on failure).
        DeliverWebhook = "deliver_webhook",
        /// Moves open requests past `expires_at` to `expired` (every minute).
        ExpireRequests = "expire_requests",
        /// Queues the reminders that came due (every minute).
        SendReminders = "send_reminders",
    }
);

impl SignerStatus {
    /// A signer whose link still leads somewhere useful.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            SignerStatus::Pending | SignerStatus::Sent | SignerStatus::Opened
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for l in Locale::ALL {
            assert_eq!(Locale::parse(l.as_str()), Some(*l));
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
        }
        for s in SignerStatus::ALL {
            assert_eq!(SignerStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for e in crate::EventType::ALL {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        assert_eq!(Locale::parse("sv"), None);
        assert_eq!(Delivery::parse("Email"), None);
    }
}
