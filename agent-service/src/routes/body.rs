//! Reading request bodies before anything else runs: a `Content-Length` over
//! `MAX_BODY_BYTES` is refused (413) without reading a byte, and a body must arrive whole
//! within `BODY_READ_TIMEOUT_SECS` (else 408). Both close the connection, since the rest
//! of the body is never read. The handler then gets the body from memory, and admission
//! (`routes::admission`) counts the request only from here on, so a stalled upload holds
//! no concurrency slot.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::AppState;
use crate::error::{Error, ErrorCode};

/// Whether requests with this method carry a body the API reads (only `POST` here; the
/// others are answered without reading one).
fn reads_body(method: &Method) -> bool {
    method == Method::POST || method == Method::PUT || method == Method::PATCH
}

fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than MAX_BODY_BYTES ({limit} bytes) allows"),
    )
}

/// An error that ends the connection: the client's body is left unread.
fn closing(e: Error) -> Response {
    let mut resp = e.into_response();
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The middleware: refuses oversized and slow bodies, else hands the handler the body
/// read into memory.
pub async fn read_whole(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !reads_body(req.method()) {
        return next.run(req).await;
    }
    let limits = &state.settings.limits;
    let limit = limits.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return closing(too_large(limit));
    }
    if declared == Some(0) {
        return next.run(req).await;
    }
    let timeout = Duration::from_secs(limits.body_read_timeout_secs);
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return closing(too_large(limit));
        }
        Ok(Err(e)) => {
            return closing(Error::invalid(format!(
                "the request body could not be read: {e}"
            )));
        }
        Err(_) => {
            return closing(Error::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within BODY_READ_TIMEOUT_SECS ({} s)",
                    timeout.as_secs()
                ),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
