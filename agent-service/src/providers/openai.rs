//! Any OpenAI-compatible `/chat/completions` API, streamed as server-sent events: text
//! deltas, tool calls assembled from argument fragments, usage from the final chunk
//! (asked for with `stream_options.include_usage`).
//!
//! Thinking arrives as `delta.reasoning` (Ollama's `/v1`) or `delta.reasoning_content`
//! (llama.cpp, vLLM, DeepSeek): kept out of the answer, counted, recorded in the trace.
//! `finish_reason: "length"` marks a reply cut at `max_tokens`. A stream that ends with
//! neither a finish chunk nor `[DONE]` failed mid-reply: that is how Ollama's `/v1` ends a
//! stream whose model failed after the first byte (it sends no error event).

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ChatMessage, ChatModel, ChatRequest, ChatResponse, Finish, LineSplitter, MessageRole, Meter,
    ProviderError, TokenSink, ToolCall, ToolDef, Usage, endpoint, estimate_prompt_tokens,
    estimate_tokens, excerpt, send_error, status_error,
};
use crate::config::Secret;

/// A model behind an OpenAI-compatible API (OpenAI itself, Ollama's `/v1`, vLLM, …).
pub struct OpenAi {
    http: reqwest::Client,
    base_url: url::Url,
    model: String,
    api_key: Option<Secret>,
}

impl OpenAi {
    /// `base_url` includes the version path, e.g. `https://api.openai.com/v1`, with or
    /// without a trailing `/`.
    pub fn new(
        http: reqwest::Client,
        base_url: url::Url,
        model: String,
        api_key: Option<Secret>,
    ) -> Self {
        Self {
            http,
            base_url,
            model,
            api_key,
        }
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            // `bearer_auth` marks the header sensitive, so it never shows in debug output.
            Some(key) => builder.bearer_auth(key.expose()),
            None => builder,
        }
    }
}

#[async_trait::async_trait]
impl ChatModel for OpenAi {
    fn kind(&self) -> &'static str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        sink: Option<&TokenSink>,
    ) -> Result<ChatResponse, ProviderError> {
        let body = WireRequest {
            model: &self.model,
            messages: req.messages.iter().map(WireMessage::from).collect(),
            tools: req
                .tools
                .iter()
                .map(|function| WireTool {
                    kind: "function",
                    function,
                })
                .collect(),
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            max_tokens: req.max_tokens,
        };
        let resp = self
            .authorized(self.http.post(endpoint(&self.base_url, "chat/completions")))
            .json(&body)
            .send()
            .await
            .map_err(|e| send_error(&e))?;
        if !resp.status().is_success() {
            return Err(http_error(resp).await);
        }
        req.meter.start(estimate_prompt_tokens(&req.messages));

        let mut reply = StreamedReply::new(first_call_number(&req.messages), &req.meter);
        let mut lines = LineSplitter::default();
        let mut events = EventParser::default();
        let mut bytes = resp.bytes_stream();
        while let Some(chunk) = bytes.next().await {
            let chunk =
                chunk.map_err(|e| ProviderError::Stream(format!("reading the response: {e}")))?;
            lines.push(&chunk);
            while let Some(line) = lines.next_line()? {
                if let Some(event) = events.line(&line)
                    && reply.absorb(&event, sink)?
                {
                    return reply.finish(req, &self.model);
                }
            }
        }
        let last_line = lines.finish()?;
        let pending = last_line
            .and_then(|line| events.line(&line))
            .into_iter()
            .chain(events.finish());
        for event in pending {
            if reply.absorb(&event, sink)? {
                return reply.finish(req, &self.model);
            }
        }
        if reply.finish_reason.is_some() {
            // Some compatible servers end after the last chunk without `data: [DONE]`.
            return reply.finish(req, &self.model);
        }
        Err(ProviderError::Stream(
            "the stream ended without a finish reason or `data: [DONE]`: the server stopped \
             mid-reply (Ollama's /v1 ends a stream this way when the model fails)"
                .into(),
        ))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        let resp = self
            .authorized(self.http.get(endpoint(&self.base_url, "models")))
            .send()
            .await
            .map_err(|e| send_error(&e))?;
        if !resp.status().is_success() {
            return Err(http_error(resp).await);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| ProviderError::Stream(format!("reading /models: {e}")))?;
        let list: Value = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Protocol(format!("unexpected answer from /models: {e}")))?;
        if list.get("data").is_some_and(Value::is_array) {
            Ok(())
        } else {
            Err(ProviderError::Protocol(
                "the answer from /models has no `data` list".into(),
            ))
        }
    }
}

/// One server-sent event: its `event:` name, if any, and its joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    name: Option<String>,
    data: String,
}

/// Assembles events from lines: `data:` lines accumulate until a blank line ends the
/// event; `:` lines are comments; other fields are ignored.
#[derive(Debug, Default)]
struct EventParser {
    name: Option<String>,
    data: Vec<String>,
}

impl EventParser {
    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            return self.finish();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => self.data.push(value.to_string()),
            "event" => self.name = Some(value.to_string()),
            _ => {}
        }
        None
    }

    /// The event in progress, if it has data (at a blank line or the end of the stream).
    fn finish(&mut self) -> Option<Event> {
        let name = self.name.take();
        if self.data.is_empty() {
            return None;
        }
        Some(Event {
            name,
            data: std::mem::take(&mut self.data).join("\n"),
        })
    }
}

/// A tool call as its fragments arrive.
#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// The reply as it builds up from the stream's chunks.
struct StreamedReply<'m> {
    content: String,
    thinking: String,
    thinking_tokens: u32,
    calls: BTreeMap<u64, PartialCall>,
    model: Option<String>,
    usage: Option<WireUsage>,
    finish_reason: Option<String>,
    next_call: usize,
    meter: &'m Meter,
}

impl<'m> StreamedReply<'m> {
    fn new(next_call: usize, meter: &'m Meter) -> Self {
        Self {
            content: String::new(),
            thinking: String::new(),
            thinking_tokens: 0,
            calls: BTreeMap::new(),
            model: None,
            usage: None,
            finish_reason: None,
            next_call,
            meter,
        }
    }

    /// Takes in one event; `true` at `data: [DONE]`.
    fn absorb(&mut self, event: &Event, sink: Option<&TokenSink>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        let value: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::Protocol(format!("not a JSON chunk ({e}): {}", excerpt(data, 200)))
        })?;
        if event.name.as_deref() == Some("error") || value.get("error").is_some() {
            return Err(ProviderError::Stream(error_message(&value)));
        }
        let chunk: WireChunk = serde_json::from_value(value)
            .map_err(|e| ProviderError::Protocol(format!("not a chat completion chunk: {e}")))?;
        if self.model.is_none() {
            self.model = chunk.model;
        }
        if let Some(u) = &chunk.usage {
            self.meter.reported(Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            });
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk
            .choices
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0)
        else {
            return Ok(false);
        };
        if let Some(delta) = choice.delta {
            let thought = delta
                .reasoning
                .filter(|t| !t.is_empty())
                .or(delta.reasoning_content.filter(|t| !t.is_empty()));
            if let Some(thought) = thought {
                self.thinking.push_str(&thought);
                self.thinking_tokens += 1;
                self.meter.generated(1);
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                if let Some(sink) = sink {
                    // A receiver that went away only means nobody watches the stream.
                    let _ = sink.send(text.clone());
                }
                self.content.push_str(&text);
                self.meter.generated(1);
            }
            let fragments = delta.tool_calls.unwrap_or_default();
            if !fragments.is_empty() {
                self.meter.generated(1);
            }
            for (position, fragment) in fragments.into_iter().enumerate() {
                let index = fragment.index.unwrap_or(position as u64);
                let call = self.calls.entry(index).or_default();
                if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
                    call.id = Some(id);
                }
                if let Some(function) = fragment.function {
                    if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                        call.name = name;
                    }
                    if let Some(arguments) = function.arguments {
                        call.arguments.push_str(&arguments);
                    }
                }
            }
        }
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
        Ok(false)
    }

    fn finish(
        self,
        req: &ChatRequest,
        configured_model: &str,
    ) -> Result<ChatResponse, ProviderError> {
        let truncated = self.finish_reason.as_deref() == Some("length");
        let mut tool_calls = Vec::with_capacity(self.calls.len());
        for (number, (index, call)) in (self.next_call..).zip(self.calls) {
            if truncated {
                // The cut may have stopped a call mid-argument: what arrived is not a
                // call, and the reply is reported as cut off rather than as a protocol
                // error.
                let complete =
                    !call.name.is_empty() && serde_json::from_str::<Value>(&call.arguments).is_ok();
                if !complete {
                    continue;
                }
            }
            if call.name.is_empty() {
                return Err(ProviderError::Protocol(format!(
                    "tool call {index} has no function name"
                )));
            }
            let arguments = if call.arguments.trim().is_empty() {
                Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_str(&call.arguments).map_err(|e| {
                    ProviderError::Protocol(format!(
                        "arguments of tool call {:?} are not valid JSON: {e}",
                        call.name
                    ))
                })?
            };
            let id = call.id.unwrap_or_else(|| format!("call_{number}"));
            tool_calls.push(ToolCall {
                id,
                name: call.name,
                arguments,
            });
        }
        let usage = match self.usage {
            Some(u) => Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            },
            None => {
                // No usage chunk: the pieces counted as they streamed (about a token
                // each), or an estimate from the text when nothing was counted.
                let calls: String = tool_calls.iter().map(|c| c.arguments.to_string()).collect();
                let counted = self.meter.current_completion();
                Usage {
                    prompt_tokens: estimate_prompt_tokens(&req.messages),
                    completion_tokens: if counted > 0 {
                        counted
                    } else {
                        estimate_tokens(&format!("{}{}{calls}", self.thinking, self.content))
                    },
                }
            }
        };
        let finish = if truncated {
            Finish::Length
        } else if tool_calls.is_empty() {
            Finish::Stop
        } else {
            Finish::ToolCalls
        };
        Ok(ChatResponse {
            content: self.content,
            tool_calls,
            usage,
            model: self.model.unwrap_or_else(|| configured_model.to_string()),
            finish,
            thinking: self.thinking,
            thinking_tokens: self.thinking_tokens,
        })
    }
}

/// Tool call ids are numbered across the conversation, so generated ones stay unique.
fn first_call_number(messages: &[ChatMessage]) -> usize {
    1 + messages.iter().map(|m| m.tool_calls.len()).sum::<usize>()
}

/// The message of an OpenAI error body (`{"error":{"message","type","code"}}`), also
/// accepting the looser shapes some compatible servers send.
fn error_message(body: &Value) -> String {
    let error = body.get("error").unwrap_or(body);
    match error {
        Value::String(message) => message.clone(),
        Value::Object(fields) => {
            let message = fields
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            let kind = fields
                .get("code")
                .and_then(Value::as_str)
                .or_else(|| fields.get("type").and_then(Value::as_str));
            match kind {
                Some(kind) => format!("{message} ({kind})"),
                None => message.to_string(),
            }
        }
        other => other.to_string(),
    }
}

async fn http_error(resp: reqwest::Response) -> ProviderError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .map(|v| error_message(&v))
        .unwrap_or_else(|_| excerpt(body.trim(), 200));
    status_error(status, &message)
}

// ---- wire format -------------------------------------------------------------------

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    max_tokens: u32,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: &'a ToolDef,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// `null` for an assistant message that only calls tools.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    /// OpenAI carries arguments as a JSON string.
    arguments: String,
}

impl<'a> From<&'a ChatMessage> for WireMessage<'a> {
    fn from(m: &'a ChatMessage) -> Self {
        let role = match m.role {
            MessageRole::System => "system",
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::Tool => "tool",
        };
        let only_calls =
            m.role == MessageRole::Assistant && m.content.is_empty() && !m.tool_calls.is_empty();
        Self {
            role,
            content: if only_calls { None } else { Some(&m.content) },
            tool_calls: m
                .tool_calls
                .iter()
                .map(|c| WireToolCall {
                    id: &c.id,
                    kind: "function",
                    function: WireFunction {
                        name: &c.name,
                        arguments: c.arguments.to_string(),
                    },
                })
                .collect(),
            tool_call_id: if m.role == MessageRole::Tool {
                m.tool_call_id.as_deref()
            } else {
                None
            },
        }
    }
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    /// Thinking, as Ollama's `/v1` sends it.
    #[serde(default)]
    reasoning: Option<String>,
    /// Thinking, as llama.cpp, vLLM and DeepSeek send it.
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireCallFragment>>,
}

#[derive(Deserialize)]
struct WireCallFragment {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunctionFragment>,
}

#[derive(Deserialize)]
struct WireFunctionFragment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use testkit::{FakeOllama, Mode, Reply};
    use tokio::sync::mpsc;

    use super::*;
    use crate::metrics::Metrics;
    use crate::providers::{CircuitState, Provider, ResilienceConfig};

    fn openai(base: &str, model: &str, key: Option<&str>) -> OpenAi {
        let base = url::Url::parse(base).expect("base url");
        OpenAi::new(
            reqwest::Client::new(),
            base,
            model.to_string(),
            key.map(Secret::new),
        )
    }

    fn fake_openai(fake: &FakeOllama) -> OpenAi {
        openai(&fake.openai_url(), "llama3.2", Some("sk-test-123"))
    }

    fn request(input: &str) -> ChatRequest {
        let mut req = ChatRequest::new(
            "faq",
            vec![ChatMessage::system("be brief"), ChatMessage::user(input)],
            128,
        );
        req.tools = vec![ToolDef {
            name: "kb_search".into(),
            description: "Search the knowledge base".into(),
            parameters: json!({ "type": "object", "properties": { "query": { "type": "string" } } }),
        }];
        req
    }

    fn events(text: &str) -> Vec<Event> {
        let mut parser = EventParser::default();
        let mut out: Vec<Event> = text
            .split('\n')
            .filter_map(|line| parser.line(line))
            .collect();
        out.extend(parser.finish());
        out
    }

    fn absorb_all(text: &str) -> Result<ChatResponse, ProviderError> {
        let meter = Meter::default();
        let mut reply = StreamedReply::new(1, &meter);
        for event in events(text) {
            if reply.absorb(&event, None)? {
                break;
            }
        }
        reply.finish(&request("x"), "configured")
    }

    #[tokio::test]
    async fn text_streams_through_the_sink_with_usage_from_the_last_chunk() {
        let fake = FakeOllama::start().await;
        fake.push_reply(Reply::text("Reset it from the login page.").with_usage(30, 6));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let got = fake_openai(&fake)
            .chat(&request("password?"), Some(&tx))
            .await
            .expect("chat");
        assert_eq!(got.content, "Reset it from the login page.");
        let deltas: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            deltas,
            ["Reset", " it", " from", " the", " login", " page."]
        );
        assert_eq!(
            got.usage,
            Usage {
                prompt_tokens: 30,
                completion_tokens: 6
            }
        );
        assert_eq!(got.model, "llama3.2");
    }

    #[tokio::test]
    async fn tool_call_fragments_are_assembled_and_parsed() {
        let fake = FakeOllama::start().await;
        fake.push_reply(
            Reply::tool_call(
                "kb_search",
                json!({ "query": "reset password", "limit": 3 }),
            )
            .and_tool_call("ticket_read", json!({ "ticket_id": "T-1001" })),
        );
        let got = fake_openai(&fake)
            .chat(&request("x"), None)
            .await
            .expect("chat");
        assert_eq!(got.tool_calls.len(), 2);
        assert_eq!(got.tool_calls[0].name, "kb_search");
        assert_eq!(
            got.tool_calls[0].arguments,
            json!({ "query": "reset password", "limit": 3 })
        );
        assert!(
            got.tool_calls[0].id.starts_with("call_"),
            "the server's id is kept"
        );
        assert_eq!(
            got.tool_calls[1].arguments,
            json!({ "ticket_id": "T-1001" })
        );
        assert_ne!(got.tool_calls[0].id, got.tool_calls[1].id);
    }

    #[tokio::test]
    async fn the_request_uses_openais_wire_format_and_bearer_auth() {
        let fake = FakeOllama::start().await;
        let call = ToolCall {
            id: "call_9".into(),
            name: "kb_search".into(),
            arguments: json!({ "query": "vpn" }),
        };
        let mut req = request("vpn?");
        req.messages
            .push(ChatMessage::assistant("", vec![call.clone()]));
        req.messages
            .push(ChatMessage::tool(&call, r#"{"articles":[]}"#));
        fake_openai(&fake).chat(&req, None).await.expect("chat");

        let sent = &fake.requests()[0];
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(
            sent.headers.get("authorization").map(String::as_str),
            Some("Bearer sk-test-123")
        );
        let body = &sent.body;
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({ "include_usage": true }));
        assert_eq!(body["max_tokens"], 128);
        assert_eq!(
            body["tools"][0],
            json!({ "type": "function", "function": {
            "name": "kb_search", "description": "Search the knowledge base",
            "parameters": { "type": "object", "properties": { "query": { "type": "string" } } } } })
        );
        assert_eq!(
            body["messages"][2],
            json!({ "role": "assistant", "content": null, "tool_calls": [
                { "id": "call_9", "type": "function", "function": { "name": "kb_search", "arguments": "{\"query\":\"vpn\"}" } }] })
        );
        assert_eq!(
            body["messages"][3],
            json!({ "role": "tool", "content": r#"{"articles":[]}"#, "tool_call_id": "call_9" })
        );
    }

    #[tokio::test]
    async fn a_base_url_with_a_trailing_slash_joins_the_same_way() {
        let fake = FakeOllama::start().await;
        let client = openai(&format!("{}/", fake.openai_url()), "llama3.2", None);
        client.chat(&request("x"), None).await.expect("chat");
        client.health().await.expect("healthy");
        assert_eq!(fake.request_count("/v1/chat/completions"), 1);
        assert_eq!(fake.request_count("/v1/models"), 1);
        assert!(!fake.requests()[0].headers.contains_key("authorization"));
    }

    #[tokio::test]
    async fn a_stream_that_ends_without_a_finish_chunk_is_a_stream_error() {
        // Ollama's /v1 sends no error event: one empty chunk, then the stream ends.
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::ErrorAfter {
            chunks: 1,
            message: "model crashed".into(),
        });
        let req = request("a b c");
        let err = fake_openai(&fake)
            .chat(&req, None)
            .await
            .expect_err("fails");
        assert!(
            matches!(&err, ProviderError::Stream(m) if m.contains("without a finish reason")),
            "{err:?}"
        );
        assert_eq!(
            req.meter.total().completion_tokens,
            1,
            "the piece that arrived is counted"
        );
    }

    #[test]
    fn an_error_event_mid_stream_is_a_stream_error() {
        // Servers that do send an error event (OpenAI itself, vLLM).
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"model crashed\",\"type\":\"api_error\"}}\n\n",
        );
        assert_eq!(
            absorb_all(stream),
            Err(ProviderError::Stream("model crashed (api_error)".into()))
        );
    }

    #[tokio::test]
    async fn a_reply_cut_at_max_tokens_is_length_and_a_cut_call_is_dropped() {
        let fake = FakeOllama::start().await;
        fake.push_reply(Reply::text("one two three four five"));
        let mut req = request("x");
        req.max_tokens = 3;
        let got = fake_openai(&fake).chat(&req, None).await.expect("chat");
        assert_eq!(got.finish, Finish::Length);
        assert_eq!(got.content, "one two three");
        assert_eq!(got.usage.completion_tokens, 3);

        // Cut inside a tool call: not a protocol error, not a call.
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"t\",\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let got = absorb_all(stream).expect("a cut reply");
        assert_eq!(got.finish, Finish::Length);
        assert!(got.tool_calls.is_empty());
    }

    #[tokio::test]
    async fn reasoning_deltas_are_thinking_kept_out_of_the_answer() {
        let fake = FakeOllama::start().await;
        fake.add_model(testkit::FakeModel::new("qwen3").thinking());
        fake.push_reply(Reply::text("Paris.").with_thinking("the capital of France"));
        let client = openai(&fake.openai_url(), "qwen3", None);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let got = client
            .chat(&request("capital?"), Some(&tx))
            .await
            .expect("chat");
        assert_eq!(got.content, "Paris.");
        assert_eq!(got.thinking, "the capital of France");
        assert_eq!(got.thinking_tokens, 4);
        let streamed: String = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            streamed, "Paris.",
            "thinking never reaches the answer stream"
        );
        assert_eq!(got.usage.completion_tokens, 5, "thinking counts as output");

        // llama.cpp and vLLM name it `reasoning_content`.
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Yes\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        );
        let got = absorb_all(stream).expect("parsed");
        assert_eq!(
            (got.thinking.as_str(), got.content.as_str()),
            ("hmm", "Yes")
        );
    }

    #[tokio::test]
    async fn a_5xx_before_the_first_byte_is_retried_and_counts_for_the_breaker() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::ErrorAfter {
            chunks: 0,
            message: "model runner has unexpectedly stopped".into(),
        });
        let p = Provider::new(
            Arc::new(fake_openai(&fake)),
            ResilienceConfig {
                timeout: Duration::from_secs(2),
                max_retries: 1,
                failure_threshold: 1,
                open_for: Duration::from_secs(30),
            },
            Arc::new(Metrics::new()),
        );
        let err = p.chat(&request("x"), None).await.expect_err("fails");
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m.contains("HTTP 500") && m.contains("unexpectedly stopped")),
            "{err:?}"
        );
        assert_eq!(fake.request_count("/v1/chat/completions"), 2);
        assert_eq!(p.circuit_state(), CircuitState::Open);
    }

    #[test]
    fn a_prompt_over_the_context_window_names_the_limit() {
        let body = serde_json::json!({ "error": { "code": 400, "message": "request (1531 tokens) exceeds the available context size (1024 tokens), try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 1531, "n_ctx": 1024 } });
        let err = status_error(reqwest::StatusCode::BAD_REQUEST, &error_message(&body));
        assert!(
            matches!(&err, ProviderError::ContextExceeded(m) if m.contains("(1024 tokens)")),
            "{err:?}"
        );
        assert!(!err.retryable());
    }

    #[tokio::test]
    async fn a_malformed_chunk_is_a_protocol_error() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::Malformed { after_chunks: 1 });
        let err = fake_openai(&fake)
            .chat(&request("a b c"), None)
            .await
            .expect_err("fails");
        assert!(matches!(err, ProviderError::Protocol(_)), "{err:?}");
    }

    #[tokio::test]
    async fn an_unknown_model_is_rejected_and_not_retried() {
        let fake = FakeOllama::start().await;
        let model = openai(&fake.openai_url(), "gpt-nope", None);
        let p = Provider::new(
            Arc::new(model),
            ResilienceConfig {
                timeout: Duration::from_secs(2),
                max_retries: 2,
                failure_threshold: 1,
                open_for: Duration::from_secs(30),
            },
            Arc::new(Metrics::new()),
        );
        let err = p.chat(&request("x"), None).await.expect_err("fails");
        assert!(
            matches!(&err, ProviderError::Rejected(m) if m.contains("not found")),
            "{err:?}"
        );
        assert_eq!(fake.request_count("/v1/chat/completions"), 1);
        assert_eq!(
            p.circuit_state(),
            CircuitState::Closed,
            "a rejection does not trip the breaker"
        );
    }

    #[tokio::test]
    async fn a_down_server_is_unavailable_and_health_says_so() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::Down {
            status: 503,
            message: "overloaded".into(),
        });
        let client = fake_openai(&fake);
        let err = client.chat(&request("x"), None).await.expect_err("fails");
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m.contains("overloaded")),
            "{err:?}"
        );
        assert!(matches!(
            client.health().await,
            Err(ProviderError::Unavailable(_))
        ));
    }

    #[test]
    fn events_join_data_lines_and_skip_comments() {
        let got = events(
            ": keep-alive\ndata: {\"a\":\ndata: 1}\n\nevent: error\ndata: x\n\ndata: [DONE]",
        );
        assert_eq!(
            got,
            [
                Event {
                    name: None,
                    data: "{\"a\":\n1}".into()
                },
                Event {
                    name: Some("error".into()),
                    data: "x".into()
                },
                Event {
                    name: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn invalid_tool_arguments_are_a_protocol_error() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"t\",\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let err = absorb_all(stream).expect_err("invalid");
        assert!(
            matches!(&err, ProviderError::Protocol(m) if m.contains("not valid JSON")),
            "{err:?}"
        );
    }

    #[test]
    fn missing_ids_and_usage_are_filled_in() {
        let stream = concat!(
            "data: {\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\",\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"t\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        );
        let got = absorb_all(stream).expect("parsed");
        assert_eq!(
            got.tool_calls,
            [ToolCall {
                id: "call_1".into(),
                name: "t".into(),
                arguments: json!({})
            }]
        );
        assert_eq!(got.model, "m1");
        assert_eq!(got.usage.completion_tokens, estimate_tokens("Hi{}"));
        assert!(got.usage.prompt_tokens > 0);
    }

    #[test]
    fn error_bodies_of_several_shapes_give_their_message() {
        let openai = json!({ "error": { "message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key" } });
        assert_eq!(
            error_message(&openai),
            "Incorrect API key provided (invalid_api_key)"
        );
        assert_eq!(error_message(&json!({ "error": "boom" })), "boom");
    }
}
