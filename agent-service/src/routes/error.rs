//! Errors as responses: the one JSON envelope every endpoint answers with
//! (`{"error": {code, message, request_id}}`, with the code's status and Retry-After), and
//! the log line of every 5xx, written here, once, with its chain of causes.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, ErrorCode};

/// Logs `e` with its causes if it is a 5xx: the one log line of a request's failure,
/// written where the error becomes a response (or a stream's `error` event). The log
/// writer redacts it like every line.
pub fn log_failure(e: &Error) {
    if !e.code.status().is_server_error() {
        return;
    }
    if e.code == ErrorCode::Internal {
        tracing::error!(code = e.code.as_str(), error = %e.report(), "request failed");
    } else {
        tracing::warn!(code = e.code.as_str(), error = %e.report(), "request failed");
    }
}

/// The body every error response carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.code.status();
        log_failure(&self);
        // The request id lives in a task-local set by the request-id middleware, so no
        // handler has to thread it through to its errors.
        let body = ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: self.message,
                request_id: crate::request_id::current().unwrap_or_default(),
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
