//! Ollama's OpenAI-compatible API (`/v1/chat/completions`, `/v1/models`): SSE chunks with
//! content and tool-call deltas (arguments in fragments), a usage chunk, `data: [DONE]`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::Mode;
use super::state::Shared;
use super::wire::{self, Settings};

const SSE: &str = "text/event-stream";
/// Tool-call arguments are streamed in fragments of this many characters unless the
/// chunking says otherwise, as OpenAI itself does.
const ARGUMENT_FRAGMENT_CHARS: usize = 8;

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
    let Some(messages) = req["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .cloned()
    else {
        return wire::openai_error(400, "[] is too short - 'messages'");
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
    let settings = Settings::read(&shared);
    let texts = wire::pieces(&reply.content, settings.chunk_chars);
    let (prompt_tokens, completion_tokens) = match reply.usage {
        Some(u) => (u.prompt_tokens, u.completion_tokens),
        None => (
            wire::prompt_tokens(&messages),
            u32::try_from((texts.len() + reply.tool_calls.len()).max(1)).unwrap_or(u32::MAX),
        ),
    };
    let usage = json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens });
    let finish_reason = if reply.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let created = wire::unix_now();
    let arguments: Vec<String> = reply
        .tool_calls
        .iter()
        .map(|c| {
            if c.arguments.is_null() {
                "{}".to_string()
            } else {
                c.arguments.to_string()
            }
        })
        .collect();

    if req["stream"].as_bool() != Some(true) {
        let mut message = json!({ "role": "assistant", "content": reply.content });
        if !reply.tool_calls.is_empty() {
            let calls: Vec<Value> = reply
                .tool_calls
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

    let chunk = |delta: Value, finish: Option<&str>| {
        event(&json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": name,
            "system_fingerprint": "fp_ollama",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        }))
    };
    let mut content: Vec<String> = texts
        .iter()
        .map(|piece| chunk(json!({ "role": "assistant", "content": piece }), None))
        .collect();
    let fragment_chars = settings.chunk_chars.unwrap_or(ARGUMENT_FRAGMENT_CHARS);
    for (i, ((call, call_id), args)) in reply
        .tool_calls
        .iter()
        .zip(&call_ids)
        .zip(&arguments)
        .enumerate()
    {
        content.push(chunk(
            json!({ "role": "assistant", "content": "", "tool_calls": [{ "index": i, "id": call_id, "type": "function",
                     "function": { "name": call.name, "arguments": "" } }] }),
            None,
        ));
        for fragment in wire::pieces(args, Some(fragment_chars)) {
            content.push(chunk(
                json!({ "tool_calls": [{ "index": i, "function": { "arguments": fragment } }] }),
                None,
            ));
        }
    }
    let mut tail = vec![chunk(
        json!({ "role": "assistant", "content": "" }),
        Some(finish_reason),
    )];
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
    let lines = settings.shape(
        content,
        tail,
        |m| event(&wire::openai_error_body(500, m)),
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
