//! Small closed vocabularies of the domain, with their wire spellings.

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

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
    };
}
pub(crate) use wire_enum;

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
        }
        assert_eq!(Locale::parse("sv"), None);
        assert_eq!(Delivery::parse("Email"), None);
    }
}
