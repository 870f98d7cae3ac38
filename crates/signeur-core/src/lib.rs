//! Signeur's domain: the types every other crate speaks, the request state machine, input
//! validation and the event hash chain. No I/O lives here.

pub mod event;
pub mod model;
pub mod status;
pub mod time;
pub mod validate;

pub use event::EventType;
pub use model::{
    Delivery, FailureCode, JobKind, Locale, SessionResult, SessionStatus, SignerStatus,
    SigningOrder, UnknownValue, VerificationMethod,
};
pub use status::{Action, IllegalTransition, RequestStatus};
pub use validate::ValidationError;
