//! `POST /v1/invoke` (one JSON reply) and `POST /v1/invoke/stream` (Server-Sent Events).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::AppState;
use super::error::ErrorBody;
use super::request_id::RequestId;
use crate::domain::Principal;
use crate::domain::{Role, TraceId};
pub use crate::engine::InvokeResponse;
use crate::engine::{RunEvent, RunRequest};
use crate::error::{Error, ErrorCode, Result};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeInput {
    pub text: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// A workflow name from `/v1/workflows`.
    pub workflow: String,
    pub input: InvokeInput,
    /// The end user on whose behalf the agent acts (recorded on approvals).
    pub user_id: Option<String>,
}

pub(crate) fn build_run(
    state: &AppState,
    principal: Principal,
    request_id: String,
    body: InvokeRequest,
) -> Result<RunRequest> {
    principal.require(Role::Invoke)?;
    let workflow = state
        .workflows
        .get(&body.workflow)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = state.workflows.keys().map(String::as_str).collect();
            Error::new(
                ErrorCode::UnknownWorkflow,
                format!(
                    "unknown workflow {:?}; known workflows: {}",
                    body.workflow,
                    known.join(", ")
                ),
            )
        })?;
    if body.input.text.trim().is_empty() {
        return Err(Error::invalid("input.text must not be empty"));
    }
    if let Some(u) = &body.user_id
        && (u.is_empty() || u.len() > 128 || u.chars().any(char::is_control))
    {
        return Err(Error::invalid("user_id must be 1-128 printable characters"));
    }
    Ok(RunRequest {
        workflow,
        text: body.input.text,
        user_id: body.user_id,
        principal,
        request_id,
        trace_id: TraceId::generate(),
    })
}

/// Runs a workflow and answers with its outcome.
#[utoipa::path(post, path = "/v1/invoke", security(("bearer" = [])), request_body = InvokeRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response for the same key and body")),
    responses(
        (status = 200, body = InvokeResponse, description = "the run ended: success, approval_required, blocked, budget_exceeded or degraded"),
        (status = 400, body = crate::routes::error::ErrorEnvelope), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope),
        (status = 409, body = crate::routes::error::ErrorEnvelope), (status = 413, body = crate::routes::error::ErrorEnvelope),
        (status = 422, body = crate::routes::error::ErrorEnvelope), (status = 429, body = crate::routes::error::ErrorEnvelope),
        (status = 503, body = crate::routes::error::ErrorEnvelope)))]
pub async fn invoke(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let (parsed, raw): (InvokeRequest, Bytes) = super::parse_json(&headers, body)?;
    let key = super::idempotency::idempotency_key(&headers)?;
    let tenant = principal.tenant.clone();
    let run = build_run(&state, principal, request_id, parsed)?;

    super::idempotency::idempotent(&state, &tenant, key, "POST /v1/invoke", &raw, || async {
        let outcome = state.engine.run(&run, None).await?;
        let body = serde_json::to_string(&state.engine.reply(&run, outcome))
            .map_err(Error::internal_from)?;
        Ok((StatusCode::OK, body))
    })
    .await
}

fn sse_json<T: Serialize>(event: &str, data: &T) -> Event {
    Event::default()
        .event(event)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event("error").data("{}"))
}

/// Runs a workflow and streams its progress as Server-Sent Events: `token`, `tool_call`,
/// `tool_result`, `approval_required`, then `done` (the full reply) or `error`.
#[utoipa::path(post, path = "/v1/invoke/stream", security(("bearer" = [])), request_body = InvokeRequest,
    responses((status = 200, content_type = "text/event-stream", description = "events: token, tool_call, tool_result, approval_required, done, error"),
        (status = 400, body = crate::routes::error::ErrorEnvelope), (status = 401, body = crate::routes::error::ErrorEnvelope)))]
pub async fn invoke_stream(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let (parsed, _raw): (InvokeRequest, Bytes) = super::parse_json(&headers, body)?;
    if headers.contains_key("idempotency-key") {
        return Err(Error::invalid(
            "Idempotency-Key is not supported on /v1/invoke/stream; use POST /v1/invoke to make a request idempotent",
        ));
    }
    let run = Arc::new(build_run(&state, principal, request_id.clone(), parsed)?);
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let span = tracing::Span::current();
    tokio::spawn({
        let state = state.clone();
        let run = run.clone();
        let request_id = request_id.clone();
        use tracing::Instrument;
        async move {
            let (etx, mut erx) = mpsc::unbounded_channel::<RunEvent>();
            let forward_tx = tx.clone();
            let forward = tokio::spawn(async move {
                while let Some(ev) = erx.recv().await {
                    let event = match ev {
                        RunEvent::Token(text) => sse_json("token", &serde_json::json!({ "text": text })),
                        RunEvent::ToolCall { name, arguments } => sse_json("tool_call", &serde_json::json!({ "tool": name, "arguments": arguments })),
                        RunEvent::ToolResult { name, outcome } => sse_json("tool_result", &serde_json::json!({ "tool": name, "outcome": outcome })),
                        RunEvent::ApprovalRequired { approval_request_id, proposed_change } => sse_json(
                            "approval_required",
                            &serde_json::json!({ "approval_request_id": approval_request_id, "proposed_change": proposed_change }),
                        ),
                    };
                    if forward_tx.send(event).is_err() {
                        break;
                    }
                }
            });
            let result = crate::request_id::scope(request_id.clone(), state.engine.run(&run, Some(&etx))).await;
            drop(etx);
            let _ = forward.await;
            let last = match result {
                Ok(outcome) => sse_json("done", &state.engine.reply(&run, outcome)),
                Err(e) => {
                    super::error::log_failure(&e);
                    sse_json("error", &serde_json::json!({ "error": ErrorBody { code: e.code, message: e.message, request_id } }))
                }
            };
            let _ = tx.send(last);
        }
        .instrument(span)
    });
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

use tokio_stream::StreamExt as _;
