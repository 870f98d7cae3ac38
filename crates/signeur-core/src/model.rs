//! Small closed vocabularies of the domain, with their wire spellings.

macro_rules! wire_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
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
