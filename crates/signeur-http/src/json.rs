//! JSON responses, serialized in one pass into a buffer sized for a typical answer.
//!
//! `axum::Json` starts from 128 bytes and writes through `bytes::BufMut` one token at a time;
//! a get response (a few KB) then pays for repeated growth and per-token bookkeeping. This
//! responder writes into a `Vec` that already fits most answers.

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

/// What most JSON answers fit in without growing.
const INITIAL_CAPACITY: usize = 4096;

/// A JSON response body (`application/json`).
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(INITIAL_CAPACITY);
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                Bytes::from(buf),
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a response");
                ApiError::internal().into_response()
            }
        }
    }
}
