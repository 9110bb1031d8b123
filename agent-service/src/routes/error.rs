//! Errors as responses: the one JSON envelope every endpoint answers with
//! (`{"error": {code, message, request_id}}`), the HTTP status of each [`ErrorCode`], and
//! the log line of every 5xx, written here, once, with its chain of causes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, ErrorCode};

/// The HTTP status of an error code.
pub fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput | ErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound | ErrorCode::UnknownWorkflow => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Conflict | ErrorCode::IdempotencyInProgress | ErrorCode::WritesFrozen => {
            StatusCode::CONFLICT
        }
        ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited | ErrorCode::TenantBudgetExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Overloaded
        | ErrorCode::ShuttingDown
        | ErrorCode::ProviderUnavailable
        | ErrorCode::ProviderTimeout
        | ErrorCode::ProviderError
        | ErrorCode::DependencyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs `e` with its causes if it is a 5xx: the one log line of a request's failure,
/// written where the error becomes a response (or a stream's `error` event). The log
/// writer redacts it like every line.
pub fn log_failure(e: &Error) {
    if !status(e.code).is_server_error() {
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
        let status = status(self.code);
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
