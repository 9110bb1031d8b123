//! Ollama's OpenAI-compatible API (`/v1/chat/completions`, `/v1/models`): SSE chunks with
//! content and tool-call deltas (arguments in fragments), a usage chunk, `data: [DONE]`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::Mode;
use super::generation::{self, Think};
use super::state::Shared;
use super::wire::{self, Settings};

const SSE: &str = "text/event-stream";
/// Tool-call arguments are streamed in fragments of this many characters unless the
/// chunking says otherwise, as OpenAI itself does.
const ARGUMENT_FRAGMENT_CHARS: usize = 8;

/// `POST /v1/chat/completions`: Ollama's `ChatMiddleware` and `ChatWriter`
/// (middleware/openai.go) around its `ChatHandler` (server/routes.go).
pub(crate) async fn chat_completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = match wire::parse_body(&body) {
        Ok(req) => req,
        Err(e) => return wire::openai_error(400, &e),
    };
    let Some(name) = req["model"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
    else {
        return wire::openai_error(400, "model is required");
    };
    let Some(messages) = req["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .cloned()
    else {
        return wire::openai_error(400, "[] is too short - 'messages'");
    };
    // `reasoning_effort` becomes `think` in the middleware (openai/openai.go
    // `FromChatRequest`); a bad value is a 400 there.
    let think = match Think::openai(&req) {
        Ok(t) => t,
        Err(e) => return wire::openai_error(400, &e),
    };
    let Some(model) = shared.with(|s| {
        let model = s.model(&name).cloned();
        if let Some(m) = &model {
            s.loaded.insert(m.name.clone());
        }
        model
    }) else {
        return wire::openai_error(
            404,
            &format!("model \"{name}\" not found, try pulling it first"),
        );
    };
    let thinks = match think.resolve(model.supports_thinking(), &name) {
        Ok(t) => t,
        Err(e) => return wire::openai_error(400, &e),
    };
    if req["tools"].as_array().is_some_and(|t| !t.is_empty()) && !model.supports_tools() {
        return wire::openai_error(
            400,
            &format!(
                "registry.ollama.ai/library/{} does not support tools",
                model.name
            ),
        );
    }

    let settings = Settings::read(&shared);
    if let Some(message) = settings.error_before_first_byte() {
        return wire::openai_error(500, message);
    }
    let (reply, id, call_ids) = shared.with(|s| {
        let reply = s.take_reply(&wire::last_user_message(&messages));
        let id = format!("chatcmpl-{}", s.next_id());
        let call_ids: Vec<String> = reply
            .tool_calls
            .iter()
            .map(|_| format!("call_{:08x}", s.next_id()))
            .collect();
        (reply, id, call_ids)
    });
    // `max_tokens` becomes `options.num_predict` (openai/openai.go `FromChatRequest`).
    let limit = generation::limit(&req["max_tokens"]);
    let out = generation::generate(&reply, thinks, limit, settings.chunk_chars);
    let (prompt_tokens, completion_tokens) = out.usage(&reply, wire::prompt_tokens(&messages));
    let usage = json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens });
    // `FinishChunk`: the done reason, with `stop` relabelled `tool_calls` after a call.
    let finish_reason = match out.done_reason() {
        "stop" if !out.calls.is_empty() => "tool_calls",
        reason => reason,
    };
    let created = wire::unix_now();
    let arguments: Vec<String> = out
        .calls
        .iter()
        .map(|c| generation::arguments_object(&c.arguments).to_string())
        .collect();

    if req["stream"].as_bool() != Some(true) {
        let mut message = json!({ "role": "assistant", "content": out.content_text() });
        if !out.thinking.is_empty() {
            message["reasoning"] = json!(out.thinking_text());
        }
        if !out.calls.is_empty() {
            let calls: Vec<Value> = out
                .calls
                .iter()
                .zip(&call_ids)
                .zip(&arguments)
                .enumerate()
                .map(|(i, ((c, id), args))| {
                    json!({ "id": id, "index": i, "type": "function",
                            "function": { "name": c.name, "arguments": args } })
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        let full = json!({
            "id": id, "object": "chat.completion", "created": created, "model": name,
            "system_fingerprint": "fp_ollama",
            "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason }],
            "usage": usage,
        });
        return match &settings.mode {
            Mode::ErrorAfter { message, .. } => wire::openai_error(500, message),
            Mode::Malformed { .. } => wire::truncated_json(&full),
            _ => wire::json_response(200, &full),
        };
    }

    let chunk = |model: &str, delta: Value, finish: Option<&str>| {
        event(&json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        }))
    };
    // `role` only on the stream's first chunk; `content` always present (`""` while
    // thinking); `reasoning` only when there is some (openai/openai.go `toChunk`).
    let mut first = true;
    let mut delta = |mut d: Value| {
        if std::mem::take(&mut first) {
            d["role"] = json!("assistant");
        }
        d
    };
    let mut content: Vec<String> = Vec::new();
    for piece in &out.thinking {
        content.push(chunk(
            &name,
            delta(json!({ "content": "", "reasoning": piece })),
            None,
        ));
    }
    for piece in &out.content {
        content.push(chunk(&name, delta(json!({ "content": piece })), None));
    }
    let fragment_chars = settings.chunk_chars.unwrap_or(ARGUMENT_FRAGMENT_CHARS);
    for (i, ((call, call_id), args)) in out.calls.iter().zip(&call_ids).zip(&arguments).enumerate()
    {
        content.push(chunk(
            &name,
            delta(json!({ "content": "", "tool_calls": [{ "index": i, "id": call_id, "type": "function",
                     "function": { "name": call.name, "arguments": "" } }] })),
            None,
        ));
        for fragment in wire::pieces(args, Some(fragment_chars)) {
            content.push(chunk(
                &name,
                json!({ "tool_calls": [{ "index": i, "function": { "arguments": fragment } }] }),
                None,
            ));
        }
    }
    if content.is_empty() {
        // A wholly empty completion still opens with a role chunk.
        content.push(chunk(&name, delta(json!({ "content": "" })), None));
    }
    // The finish chunk's delta is empty (`Delta` fields are all `omitempty`).
    let mut tail = vec![chunk(&name, json!({}), Some(finish_reason))];
    if req["stream_options"]["include_usage"].as_bool() == Some(true) {
        tail.push(event(&json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": name,
            "system_fingerprint": "fp_ollama", "choices": [], "usage": usage,
        })));
    }
    tail.push("data: [DONE]\n\n".into());
    let malformed = format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"delta\n\n"
    );
    // A mid-stream error: the native `{"error": …}` line reaches `ChatWriter`, which
    // decodes it as an empty `api.ChatResponse` (no model, no content, not done) and writes
    // it as one more chunk; the stream then ends with no finish chunk and no `[DONE]`.
    let lines = settings.shape(
        content,
        tail,
        |_| chunk("", json!({ "content": "" }), None),
        malformed,
    );
    wire::stream_response(lines, SSE, settings.between_chunks(), settings.frame_bytes)
}

pub(crate) async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let data: Vec<Value> = shared.with(|s| {
        s.models
            .iter()
            .map(|m| json!({ "id": m.name, "object": "model", "created": 1_748_779_200, "owned_by": "library" }))
            .collect()
    });
    wire::json_response(200, &json!({ "object": "list", "data": data }))
}

fn event(data: &Value) -> String {
    format!("data: {data}\n\n")
}
