//! HTTP handlers and their wire types (DTOs). Only this layer knows JSON shapes.

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod evals;
pub mod health;
pub mod idempotency;
pub mod info;
pub mod invoke;
pub mod jobs;
pub mod traces;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorCode};

pub async fn fallback(uri: axum::http::Uri) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("no endpoint at {}; see /openapi.json", uri.path()),
    )
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Error {
    Error::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

pub fn panic_response(_err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    Error::internal("an internal error occurred; it has been logged").into_response()
}

/// Reads a JSON body: checks the content type and size, parses strictly, and maps every
/// failure to the error envelope (413, 415, 400).
pub fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(T, Bytes), Error> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than MAX_BODY_BYTES allows",
            )
        } else {
            Error::invalid(format!("the request body could not be read: {e}"))
        }
    })?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !(mime.eq_ignore_ascii_case("application/json")
        || mime.to_ascii_lowercase().ends_with("+json"))
    {
        return Err(Error::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with 'Content-Type: application/json'",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        Error::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let parsed = serde_json::from_value(value)
        .map_err(|e| Error::invalid(format!("the body does not match the expected shape: {e}")))?;
    Ok((parsed, body))
}
