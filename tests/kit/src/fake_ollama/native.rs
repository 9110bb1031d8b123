//! Ollama's native API (`/api/*`) with the real field names and shapes: NDJSON streams
//! of `message` / `response` deltas ending in a `done` line with the eval counts.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::generation::{self, Think};
use super::state::Shared;
use super::wire::{self, Settings};
use super::{FAKE_OLLAMA_VERSION, FakeModel, Mode, canonical_name};

const NDJSON: &str = "application/x-ndjson";
/// `modified_at` of every model: fixed, so listings compare equal across runs.
const MODIFIED_AT: &str = "2025-06-01T12:00:00.000000000Z";

/// `POST /api/chat`, as Ollama's `ChatHandler` (server/routes.go) answers it.
pub(crate) async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = match wire::parse_body(&body) {
        Ok(req) => req,
        Err(e) => return wire::ollama_error(400, &e),
    };
    // `think` is decoded with the body: a bad value is a 400 before anything else.
    let think = match Think::native(&req["think"]) {
        Ok(t) => t,
        Err(e) => return wire::ollama_error(400, &e),
    };
    let (model, cold) = match loaded_model(&shared, &req) {
        Ok(loaded) => loaded,
        Err((status, message)) => return wire::ollama_error(status, &message),
    };
    let name = req["model"].as_str().unwrap_or_default().to_string();
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    // Capabilities are checked before the model runs: thinking first, then tools.
    let thinks = match think.resolve(model.supports_thinking(), &name) {
        Ok(t) => t,
        Err(e) => return wire::ollama_error(400, &e),
    };
    if req["tools"].as_array().is_some_and(|t| !t.is_empty()) && !model.supports_tools() {
        return wire::ollama_error(
            400,
            &format!(
                "registry.ollama.ai/library/{} does not support tools",
                model.name
            ),
        );
    }
    let created = wire::now_rfc3339();
    if messages.is_empty() {
        return wire::json_response(
            200,
            &json!({ "model": name, "created_at": created, "message": { "role": "assistant", "content": "" },
                     "done_reason": "load", "done": true }),
        );
    }

    let settings = Settings::read(&shared);
    if let Some(message) = settings.error_before_first_byte() {
        return wire::ollama_error(500, message);
    }
    let (reply, call_ids) = shared.with(|s| {
        let reply = s.take_reply(&wire::last_user_message(&messages));
        // Ollama gives every parsed tool call an id: `call_` and 8 characters of
        // [a-z0-9] (server/routes.go `toolCallId`).
        let ids: Vec<String> = reply
            .tool_calls
            .iter()
            .map(|_| format!("call_{:08x}", s.next_id()))
            .collect();
        (reply, ids)
    });
    let limit = generation::limit(&req["options"]["num_predict"]);
    let out = generation::generate(&reply, thinks, limit, settings.chunk_chars);
    let (prompt_tokens, eval_count) = out.usage(&reply, wire::prompt_tokens(&messages));
    let tool_calls: Vec<Value> = out
        .calls
        .iter()
        .zip(&call_ids)
        .enumerate()
        .map(|(i, (c, id))| json!({ "id": id, "function": { "index": i, "name": c.name, "arguments": generation::arguments_object(&c.arguments) } }))
        .collect();
    let stats = stats(prompt_tokens, eval_count, cold);

    if req["stream"].as_bool() == Some(false) {
        let mut message = json!({ "role": "assistant", "content": out.content_text() });
        if !out.thinking.is_empty() {
            message["thinking"] = json!(out.thinking_text());
        }
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(tool_calls);
        }
        let full = with_stats(
            json!({ "model": name, "created_at": created, "message": message, "done_reason": out.done_reason(), "done": true }),
            &stats,
        );
        return whole(&settings.mode, &full);
    }

    let line_of = |message: Value| {
        line(&json!({ "model": name, "created_at": created, "message": message, "done": false }))
    };
    // `thinking` is left out when empty (api.Message: `omitempty`); `content` never is.
    let mut content: Vec<String> = out
        .thinking
        .iter()
        .map(|piece| line_of(json!({ "role": "assistant", "content": "", "thinking": piece })))
        .chain(
            out.content
                .iter()
                .map(|piece| line_of(json!({ "role": "assistant", "content": piece }))),
        )
        .collect();
    if !tool_calls.is_empty() {
        content.push(line_of(
            json!({ "role": "assistant", "content": "", "tool_calls": tool_calls }),
        ));
    }
    let tail = vec![line(&with_stats(
        json!({ "model": name, "created_at": created, "message": { "role": "assistant", "content": "" },
                "done": true, "done_reason": out.done_reason() }),
        &stats,
    ))];
    let malformed = format!(
        "{{\"model\":\"{name}\",\"created_at\":\"{created}\",\"message\":{{\"role\":\"assis\n"
    );
    let lines = settings.shape(content, tail, |m| line(&json!({ "error": m })), malformed);
    wire::stream_response(
        lines,
        NDJSON,
        settings.between_chunks(),
        settings.frame_bytes,
    )
}

/// `POST /api/generate`, as Ollama's `GenerateHandler` (server/routes.go) answers it.
pub(crate) async fn generate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = match wire::parse_body(&body) {
        Ok(req) => req,
        Err(e) => return wire::ollama_error(400, &e),
    };
    let think = match Think::native(&req["think"]) {
        Ok(t) => t,
        Err(e) => return wire::ollama_error(400, &e),
    };
    let (model, cold) = match loaded_model(&shared, &req) {
        Ok(loaded) => loaded,
        Err((status, message)) => return wire::ollama_error(status, &message),
    };
    let name = req["model"].as_str().unwrap_or_default().to_string();
    let thinks = match think.resolve(model.supports_thinking(), &name) {
        Ok(t) => t,
        Err(e) => return wire::ollama_error(400, &e),
    };
    let prompt = req["prompt"].as_str().unwrap_or_default().to_string();
    let created = wire::now_rfc3339();
    if prompt.is_empty() {
        return wire::json_response(
            200,
            &json!({ "model": name, "created_at": created, "response": "", "done": true }),
        );
    }

    let settings = Settings::read(&shared);
    if let Some(message) = settings.error_before_first_byte() {
        return wire::ollama_error(500, message);
    }
    let reply = shared.with(|s| s.take_reply(&prompt));
    let limit = generation::limit(&req["options"]["num_predict"]);
    let out = generation::generate(&reply, thinks, limit, settings.chunk_chars);
    let (prompt_tokens, eval_count) = out.usage(&reply, wire::estimate_tokens(&prompt));
    let stats = stats(prompt_tokens, eval_count, cold);

    if req["stream"].as_bool() == Some(false) {
        let mut full = json!({ "model": name, "created_at": created, "response": out.content_text(), "done": true,
                               "done_reason": out.done_reason(), "context": [1, 2, 3] });
        if !out.thinking.is_empty() {
            full["thinking"] = json!(out.thinking_text());
        }
        return whole(&settings.mode, &with_stats(full, &stats));
    }

    let content: Vec<String> = out
        .thinking
        .iter()
        .map(|piece| {
            line(&json!({ "model": name, "created_at": created, "response": "", "thinking": piece, "done": false }))
        })
        .chain(out.content.iter().map(|piece| {
            line(&json!({ "model": name, "created_at": created, "response": piece, "done": false }))
        }))
        .collect();
    let tail = vec![line(&with_stats(
        json!({ "model": name, "created_at": created, "response": "", "done": true, "done_reason": out.done_reason(),
                "context": [1, 2, 3] }),
        &stats,
    ))];
    let malformed = format!("{{\"model\":\"{name}\",\"created_at\":\"{created}\",\"respon\n");
    let lines = settings.shape(content, tail, |m| line(&json!({ "error": m })), malformed);
    wire::stream_response(
        lines,
        NDJSON,
        settings.between_chunks(),
        settings.frame_bytes,
    )
}

pub(crate) async fn tags(State(shared): State<Arc<Shared>>) -> Response {
    let models: Vec<Value> = shared.with(|s| s.models.iter().map(model_entry).collect());
    wire::json_response(200, &json!({ "models": models }))
}

pub(crate) async fn show(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = match wire::parse_body(&body) {
        Ok(req) => req,
        Err(e) => return wire::ollama_error(400, &e),
    };
    // Older clients send `name`, newer ones `model`.
    let Some(name) = req["model"]
        .as_str()
        .or_else(|| req["name"].as_str())
        .filter(|n| !n.is_empty())
    else {
        return wire::ollama_error(400, "model is required");
    };
    let Some(model) = shared.with(|s| s.model(name).cloned()) else {
        return wire::ollama_error(404, &format!("model '{name}' not found"));
    };
    let family = model.family.as_str();
    let mut model_info = Map::new();
    model_info.insert("general.architecture".into(), json!(family));
    model_info.insert("general.file_type".into(), json!(15));
    model_info.insert("general.quantization_version".into(), json!(2));
    model_info.insert(format!("{family}.context_length"), json!(131_072));
    model_info.insert(format!("{family}.embedding_length"), json!(3072));
    wire::json_response(
        200,
        &json!({
            "license": "",
            "modelfile": format!("# Modelfile generated by \"ollama show\"\nFROM {}\n", model.name),
            "parameters": "stop                           \"<|eot_id|>\"",
            "template": "{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}",
            "details": details(&model),
            "model_info": model_info,
            "capabilities": model.capabilities,
            "modified_at": MODIFIED_AT,
        }),
    )
}

pub(crate) async fn version() -> Response {
    wire::json_response(200, &json!({ "version": FAKE_OLLAMA_VERSION }))
}

pub(crate) async fn ps(State(shared): State<Arc<Shared>>) -> Response {
    let expires_at = (chrono::Utc::now() + chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let models: Vec<Value> = shared.with(|s| {
        s.models
            .iter()
            .filter(|m| s.loaded.contains(&m.name))
            .map(|m| {
                let mut entry = model_entry(m);
                entry["expires_at"] = json!(expires_at);
                entry["size_vram"] = json!(m.size_vram.unwrap_or(m.size));
                entry["context_length"] = json!(4096);
                entry
            })
            .collect()
    });
    wire::json_response(200, &json!({ "models": models }))
}

/// `POST /api/pull`, as Ollama's `PullHandler` (server/routes.go) and `PullModel`
/// (server/images.go) answer it: `pulling manifest`; then, per layer in manifest order
/// with the config last, a `pulling <first 12 hex digits of the digest>` series of
/// `{status, digest, total, completed}` (`completed` left out while 0: `api.ProgressResponse`
/// fields are `omitempty`), as `blobDownload.Wait` (server/download.go) reports it; then
/// `verifying sha256 digest`, `writing manifest`, `success`. A name the registry does not
/// have fails after `pulling manifest` with an error line (the stream has started), or with
/// HTTP 500 when not streaming.
pub(crate) async fn pull(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = match wire::parse_body(&body) {
        Ok(req) => req,
        Err(e) => return wire::ollama_error(400, &e),
    };
    let Some(name) = req["model"]
        .as_str()
        .or_else(|| req["name"].as_str())
        .filter(|n| !n.is_empty())
    else {
        return wire::ollama_error(400, "model is required");
    };
    let found = shared.with(|s| s.in_registry(name).or_else(|| s.model(name)).cloned());
    let settings = Settings::read(&shared);
    let streaming = req["stream"].as_bool() != Some(false);
    let Some(model) = found else {
        // The registry answers 404 for the manifest, which `makeRequestWithRetry` turns
        // into `os.ErrNotExist` and `PullModel` wraps.
        let message = "pull model manifest: file does not exist";
        if !streaming {
            return wire::ollama_error(500, message);
        }
        let lines = vec![
            line(&json!({ "status": "pulling manifest" })),
            line(&json!({ "error": message })),
        ];
        return wire::stream_response(
            lines,
            NDJSON,
            settings.between_chunks(),
            settings.frame_bytes,
        );
    };
    if !matches!(settings.mode, Mode::ErrorAfter { .. }) {
        shared.with(|s| s.add_model(model.clone()));
    }
    if !streaming {
        return whole(&settings.mode, &json!({ "status": "success" }));
    }

    let mut content = vec![line(&json!({ "status": "pulling manifest" }))];
    for (digest, total) in layers(&model) {
        let status = format!("pulling {}", &digest[7..19]);
        let steps: &[u64] = if total > 1_000_000 {
            &[0, total / 2, total]
        } else {
            &[0, total]
        };
        for &completed in steps {
            let mut progress = json!({ "status": status, "digest": digest, "total": total });
            if completed > 0 {
                progress["completed"] = json!(completed);
            }
            content.push(line(&progress));
        }
    }
    let tail = ["verifying sha256 digest", "writing manifest", "success"]
        .into_iter()
        .map(|status| line(&json!({ "status": status })))
        .collect();
    let lines = settings.shape(
        content,
        tail,
        |m| line(&json!({ "error": m })),
        "{\"status\":\"pulli\n".into(),
    );
    wire::stream_response(
        lines,
        NDJSON,
        settings.between_chunks(),
        settings.frame_bytes,
    )
}

/// Sizes of the small layers of a model's manifest (a real template, params and config).
const TEMPLATE_BYTES: u64 = 1_429;
const PARAMS_BYTES: u64 = 96;
const CONFIG_BYTES: u64 = 561;

/// `(sha256:<64 hex>, size)` of each layer a pull downloads: the weights, the template,
/// the parameters, and the config last. Together they are the model's `size`.
fn layers(model: &FakeModel) -> Vec<(String, u64)> {
    let small = TEMPLATE_BYTES + PARAMS_BYTES + CONFIG_BYTES;
    [
        ("model", model.size.saturating_sub(small)),
        ("template", TEMPLATE_BYTES),
        ("params", PARAMS_BYTES),
        ("config", CONFIG_BYTES),
    ]
    .into_iter()
    .map(|(kind, size)| {
        (
            format!("sha256:{}", wire::digest(&format!("{}#{kind}", model.name))),
            size,
        )
    })
    .collect()
}

/// Real Ollama answers unknown paths with a plain-text 404.
pub(crate) async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

/// The requested model, marked as loaded, and whether this call loaded it (a cold start);
/// 400 without a model, 404 for an unknown one.
fn loaded_model(shared: &Shared, req: &Value) -> Result<(FakeModel, bool), (u16, String)> {
    let Some(name) = req["model"].as_str().filter(|n| !n.is_empty()) else {
        return Err((400, "model is required".into()));
    };
    shared
        .with(|s| {
            let model = s.model(name).cloned()?;
            let cold = s.loaded.insert(canonical_name(name));
            Some((model, cold))
        })
        .ok_or_else(|| {
            (
                404,
                format!("model \"{name}\" not found, try pulling it first"),
            )
        })
}

/// A whole (non-streamed) answer as the mode says: 500 for `error_after`, a cut body for
/// `malformed`.
fn whole(mode: &Mode, body: &Value) -> Response {
    match mode {
        Mode::ErrorAfter { message, .. } => wire::ollama_error(500, message),
        Mode::Malformed { .. } => wire::truncated_json(body),
        _ => wire::json_response(200, body),
    }
}

/// `load_duration` of a model's first call (loading it) and of later ones.
const COLD_LOAD_NS: u64 = 1_200_000_000;
const WARM_LOAD_NS: u64 = 50_000_000;

fn stats(prompt_eval_count: u32, eval_count: u32, cold: bool) -> Value {
    let eval_duration = u64::from(eval_count) * 20_000_000;
    let load_duration = if cold { COLD_LOAD_NS } else { WARM_LOAD_NS };
    json!({
        "total_duration": 100_000_000 + load_duration + eval_duration,
        "load_duration": load_duration,
        "prompt_eval_count": prompt_eval_count,
        "prompt_eval_duration": 100_000_000,
        "eval_count": eval_count,
        "eval_duration": eval_duration,
    })
}

fn with_stats(mut body: Value, stats: &Value) -> Value {
    if let (Some(obj), Some(stats)) = (body.as_object_mut(), stats.as_object()) {
        obj.extend(stats.clone());
    }
    body
}

fn details(model: &FakeModel) -> Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": model.family,
        "families": [model.family],
        "parameter_size": model.parameter_size,
        "quantization_level": model.quantization_level,
    })
}

fn model_entry(model: &FakeModel) -> Value {
    json!({
        "name": model.name,
        "model": model.name,
        "modified_at": MODIFIED_AT,
        "size": model.size,
        "digest": wire::digest(&model.name),
        "details": details(model),
    })
}

fn line(value: &Value) -> String {
    format!("{value}\n")
}
