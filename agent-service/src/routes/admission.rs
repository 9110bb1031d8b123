//! Admission to `/v1/*`: refused while shutting down, else one slot of the concurrency
//! cap for the request's key (`crate::concurrency`: 503 when the cap is full, 429 when the
//! key holds its share), held until the response body is done.
//!
//! A request is admitted only once its body has been read (`routes::body` runs first), so
//! a slow or stalled upload never holds a slot. A slot lives as long as the response body,
//! so a streamed reply (SSE) counts against the cap until its last event.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::{Error, ErrorCode};

/// The middleware: refuses while shutting down, else takes a slot for the request's key
/// and holds it until the response body is done.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let admission = &state.admission;
    if state.shutdown.is_stopping() {
        admission.record_refused();
        return Error::new(
            ErrorCode::ShuttingDown,
            "the service is shutting down; retry on another replica",
        )
        .retry_after(1)
        .into_response();
    }
    let key = admission.key_of(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes()));
    let slot = match admission.admit(key) {
        Ok(slot) => slot,
        Err(e) => return e.into_response(),
    };
    let resp = next.run(req).await;
    // A body of known length is already in memory: it is passed through untouched
    // (keeping its Content-Length) and the slot ends with the handler.
    if axum::body::HttpBody::size_hint(resp.body())
        .exact()
        .is_some()
    {
        return resp;
    }
    resp.map(|body| {
        use futures::StreamExt;
        axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _held = &slot;
            chunk
        }))
    })
}
