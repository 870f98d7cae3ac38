use signeur_core::{IllegalTransition, ValidationError};
use signeur_store::StoreError;

/// Why a use case refused or failed. Each variant has a stable wire code; the HTTP edge
/// picks the status. `Internal` is never shown to clients beyond its code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("Missing or invalid API key.")]
    Unauthorized,
    #[error("{0} not found.")]
    NotFound(&'static str),
    #[error("{0}")]
    InvalidState(String),
    #[error("The document is not signed yet (status '{0}').")]
    DocumentNotSigned(String),
    #[error("This Idempotency-Key was already used for a different request.")]
    IdempotencyKeyConflict,
    #[error("A request with this Idempotency-Key is still being processed; retry later.")]
    IdempotencyKeyInUse,
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Validation(v) => v.code,
            ServiceError::Unauthorized => "unauthorized",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::InvalidState(_) => "invalid_state",
            ServiceError::DocumentNotSigned(_) => "document_not_signed",
            ServiceError::IdempotencyKeyConflict => "idempotency_key_conflict",
            ServiceError::IdempotencyKeyInUse => "idempotency_key_in_use",
            ServiceError::Internal(_) => "internal_error",
        }
    }

    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Validation(ValidationError::new(code, message))
    }

    /// A refusal of one named field (see [`ValidationError::field`]).
    pub(crate) fn invalid_field(
        code: &'static str,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        ServiceError::Validation(ValidationError::of_field(code, field, message))
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Internal(e.into())
    }
}

impl From<IllegalTransition> for ServiceError {
    fn from(e: IllegalTransition) -> Self {
        ServiceError::InvalidState(format!(
            "The request is '{}' and cannot be {}.",
            e.from,
            e.action.past_tense()
        ))
    }
}
