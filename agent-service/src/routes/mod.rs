//! HTTP handlers and their wire types (DTOs). Only this layer knows JSON shapes.

pub mod admin;
pub mod admission;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod body;
pub mod error;
pub mod evals;
pub mod health;
pub mod idempotency;
pub mod info;
pub mod invoke;
pub mod jobs;
pub mod limits;
pub mod notifications;
pub mod request_id;
pub mod schema;
pub mod state;
pub mod traces;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorCode};
pub use state::{AppState, SharedState};

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

/// A path parameter whose rejection (a segment that is not UTF-8 once percent-decoded,
/// or not of the parameter's type) is the error envelope, not axum's plain-text 400.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) if e.status().is_client_error() => {
                Error::invalid(format!("the path is not valid: {}", e.kind()))
            }
            // A route whose parameters do not fit the handler: a bug, not the client's.
            other => Error::internal(format!("the path could not be read: {other}")),
        }
    }
}

/// A handler's panic as a 500; its message is logged (once, as the error's cause).
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    Error::internal("an internal error occurred; it has been logged")
        .with_source(format!("a handler panicked: {what}"))
        .into_response()
}

/// Reads a JSON body: checks the content type and size, parses strictly (objects only, no
/// struct read from a list), and maps every failure to the error envelope (413, 415, 400).
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
    if let Some(at) = first_list(&value, "the body") {
        return Err(Error::invalid(format!(
            "the body does not match the expected shape: {at} is a list; send an object \
             with named fields"
        )));
    }
    let parsed = serde_json::from_value(value)
        .map_err(|e| Error::invalid(format!("the body does not match the expected shape: {e}")))?;
    Ok((parsed, body))
}

/// Where `value` holds a JSON array, if it does. serde's derived `Deserialize` also reads a
/// struct from an array of its fields in order (`["why"]` as `{"reason": "why"}`), which
/// the API does not document and should not accept. So an array is refused anywhere but
/// at the paths of [`LIST_FIELDS`], the request fields that are lists.
fn first_list(value: &serde_json::Value, at: &str) -> Option<String> {
    match value {
        serde_json::Value::Array(_) if LIST_FIELDS.contains(&at) => None,
        serde_json::Value::Array(_) => Some(at.to_string()),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(name, v)| {
            let path = if at == "the body" {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            first_list(v, &path)
        }),
        _ => None,
    }
}

/// The fields of request bodies that are lists, by their path in the body: a receiver's
/// `events` (`POST /v1/admin/receivers`). A request type that gains a list field adds it
/// here.
const LIST_FIELDS: &[&str] = &["events"];

/// Every endpoint, and the layers around them: admission (load shedding, per-key share) on
/// `/v1/*`, bodies read whole (size and time limits) before admission, the body limit,
/// panics as 500s, and the request id outermost.
pub fn router(state: AppState) -> Router {
    use axum::middleware::{from_fn, from_fn_with_state};
    use axum::routing::{get, post};

    let api = Router::new()
        .route("/v1/info", get(info::info))
        .route("/v1/whoami", get(info::whoami))
        .route("/v1/tools", get(info::tools))
        .route("/v1/workflows", get(info::workflows))
        .route("/v1/invoke", post(invoke::invoke))
        .route("/v1/invoke/stream", post(invoke::invoke_stream))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/events", get(approvals::events))
        .route("/v1/approvals/cancel", post(approvals::cancel))
        .route("/v1/approvals/{id}", get(approvals::get_one))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/reject", post(approvals::reject))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/verify", get(audit::verify))
        .route(
            "/v1/admin/freeze",
            get(admin::freeze_state).post(admin::freeze),
        )
        .route("/v1/admin/unfreeze", post(admin::unfreeze))
        .route(
            "/v1/admin/receivers",
            post(notifications::create).get(notifications::list),
        )
        .route(
            "/v1/admin/receivers/{id}",
            get(notifications::get_one).delete(notifications::delete),
        )
        .route("/v1/admin/receivers/{id}/test", post(notifications::test))
        .route("/v1/admin/deliveries", get(notifications::deliveries))
        .route("/v1/admin/deliveries/{id}", get(notifications::delivery))
        .route(
            "/v1/admin/deliveries/{id}/retry",
            post(notifications::retry),
        )
        .route("/v1/traces", get(traces::list))
        .route("/v1/traces/{id}", get(traces::get_one))
        .route("/v1/jobs", post(jobs::create).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get_one))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/evals/suites", get(evals::suites))
        .route(
            "/v1/evals/runs",
            post(evals::create_run).get(evals::list_runs),
        )
        .route("/v1/evals/runs/{id}", get(evals::get_run))
        .route("/v1/evals/runs/{id}/report.md", get(evals::report_markdown))
        .route("/v1/evals/runs/{id}/report.xml", get(evals::report_junit))
        .layer(from_fn_with_state(state.clone(), admission::admit));

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(info::openapi))
        .route("/.well-known/agent.json", get(info::agent_card))
        .merge(api)
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.limits.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), body::read_whole))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(from_fn(request_id::middleware))
        .with_state(state)
}

/// A response body as JSON text, for the handlers that hand a body to the idempotency
/// layer (which stores it for replays); a failure is an internal error with its cause.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(Error::internal_from)
}
