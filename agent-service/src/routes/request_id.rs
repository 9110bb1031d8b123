//! The request-id middleware: takes a valid `X-Request-Id` or generates one, echoes it in
//! the response header, puts it in the task-local (`crate::request_id`) for error bodies,
//! and opens the request span every log line of the request is in.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::request_id::accept;

pub const HEADER: &str = "x-request-id";

/// The id as a request extension, for handlers that put it in their body.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub async fn middleware(mut req: Request, next: Next) -> Response {
    let id = accept(req.headers().get(HEADER).and_then(|v| v.to_str().ok()));
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        tenant = tracing::field::Empty,
        workflow = tracing::field::Empty,
        policy_version = tracing::field::Empty,
    );
    let mut resp = {
        use tracing::Instrument;
        crate::request_id::scope(id.clone(), next.run(req))
            .instrument(span)
            .await
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
