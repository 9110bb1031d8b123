//! The control API under `/__fake/…` (documented in the module above): the same
//! operations as the in-process handle, for tests that drive the `fake-ollama` binary.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::Shared;
use super::{Counters, FakeModel, Mode, RecordedRequest, Reply};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/state", get(state))
        .route("/mode", put(set_mode))
        .route("/chunking", put(set_chunking))
        .route("/fail-next", post(fail_next))
        .route("/models", put(set_models).post(add_model))
        .route("/registry", post(add_to_registry))
        .route("/replies", post(push_replies).delete(clear_replies))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/counters", get(counters))
        .route("/reset", post(reset))
}

/// Everything the control API can tell, in one object.
#[derive(Debug, Serialize)]
struct StateView {
    mode: Mode,
    chunk_chars: Option<usize>,
    frame_bytes: Option<usize>,
    fail_next: u32,
    models: Vec<FakeModel>,
    queued_replies: usize,
    counters: Counters,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Chunking {
    #[serde(default)]
    chunk_chars: Option<usize>,
    #[serde(default)]
    frame_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNext {
    count: u32,
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<StateView> {
    Json(shared.with(|s| StateView {
        mode: s.mode.clone(),
        chunk_chars: s.chunk_chars,
        frame_bytes: s.frame_bytes,
        fail_next: s.fail_next,
        models: s.models.clone(),
        queued_replies: s.replies.len(),
        counters: s.counters.clone(),
    }))
}

async fn set_mode(State(shared): State<Arc<Shared>>, Json(mode): Json<Mode>) -> StatusCode {
    shared.with(|s| s.mode = mode);
    StatusCode::NO_CONTENT
}

async fn set_chunking(State(shared): State<Arc<Shared>>, Json(c): Json<Chunking>) -> StatusCode {
    shared.with(|s| {
        s.chunk_chars = c.chunk_chars.filter(|n| *n > 0);
        s.frame_bytes = c.frame_bytes.filter(|n| *n > 0);
    });
    StatusCode::NO_CONTENT
}

async fn fail_next(State(shared): State<Arc<Shared>>, Json(f): Json<FailNext>) -> StatusCode {
    shared.with(|s| s.fail_next = f.count);
    StatusCode::NO_CONTENT
}

async fn set_models(
    State(shared): State<Arc<Shared>>,
    Json(models): Json<Vec<FakeModel>>,
) -> StatusCode {
    shared.with(|s| s.set_models(models));
    StatusCode::NO_CONTENT
}

async fn add_model(State(shared): State<Arc<Shared>>, Json(model): Json<FakeModel>) -> StatusCode {
    shared.with(|s| s.add_model(model));
    StatusCode::NO_CONTENT
}

async fn add_to_registry(
    State(shared): State<Arc<Shared>>,
    Json(model): Json<FakeModel>,
) -> StatusCode {
    shared.with(|s| s.add_to_registry(model));
    StatusCode::NO_CONTENT
}

/// Takes one reply or an array of them; a malformed one is refused with serde's reason.
async fn push_replies(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<Value>,
) -> Result<StatusCode, (StatusCode, String)> {
    let replies = if body.is_array() {
        serde_json::from_value::<Vec<Reply>>(body)
    } else {
        serde_json::from_value::<Reply>(body).map(|one| vec![one])
    }
    .map_err(|e| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("not a reply: {e}"),
        )
    })?;
    shared.with(|s| s.replies.extend(replies));
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_replies(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.with(|s| s.replies.clear());
    StatusCode::NO_CONTENT
}

async fn requests(State(shared): State<Arc<Shared>>) -> Json<Vec<RecordedRequest>> {
    Json(shared.with(|s| s.log.clone()))
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.with(|s| {
        s.log.clear();
        s.counters = Counters::default();
    });
    StatusCode::NO_CONTENT
}

async fn counters(State(shared): State<Arc<Shared>>) -> Json<Counters> {
    Json(shared.with(|s| s.counters.clone()))
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.with(|s| s.reset());
    StatusCode::NO_CONTENT
}
