//! Ollama's native API: `/api/chat` streamed as NDJSON (thinking, text deltas and tool
//! calls, a final line with `done_reason` and the counts), `/api/version` for health,
//! `/api/tags` and `/api/show` for model discovery.
//!
//! `think` is always decided here, never left to the server: since Ollama 0.12.4 a model
//! that can think does so unless told not to, and its thinking tokens count against the
//! same `num_predict` as the answer. [`OllamaThink`] (`OLLAMA_THINK`) says what to send.

use futures::StreamExt;

pub use crate::config::OllamaThink;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ChatMessage, ChatModel, ChatRequest, ChatResponse, Finish, LineSplitter, MessageRole, Meter,
    ProviderError, TokenSink, ToolCall, ToolDef, Usage, endpoint, estimate_prompt_tokens,
    estimate_tokens, excerpt, send_error, status_error,
};

/// A model served by an Ollama server.
pub struct Ollama {
    http: reqwest::Client,
    base_url: url::Url,
    model: String,
    think: OllamaThink,
}

/// The `think` field a request carries for `OLLAMA_THINK`; `None`: left out, so the
/// server decides (thinking models think).
fn think_wire(think: OllamaThink) -> Option<Value> {
    match think {
        OllamaThink::Off => Some(Value::Bool(false)),
        OllamaThink::On => Some(Value::Bool(true)),
        OllamaThink::Low => Some(Value::from("low")),
        OllamaThink::Medium => Some(Value::from("medium")),
        OllamaThink::High => Some(Value::from("high")),
        OllamaThink::Server => None,
    }
}

/// A model installed on the server, as `/api/tags` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModel {
    pub name: String,
    pub size_bytes: u64,
    pub digest: String,
    pub family: Option<String>,
    pub parameter_size: Option<String>,
    pub quantization_level: Option<String>,
}

/// What `/api/show` says about one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDetails {
    /// e.g. `["completion", "tools"]`; older servers report none.
    pub capabilities: Vec<String>,
    pub family: Option<String>,
    pub parameter_size: Option<String>,
    pub quantization_level: Option<String>,
    /// The `<architecture>.context_length` of the model, when reported.
    pub context_length: Option<u64>,
}

impl ModelDetails {
    pub fn supports_tools(&self) -> bool {
        self.capabilities.iter().any(|c| c == "tools")
    }
}

impl Ollama {
    /// `base_url` is the server root, e.g. `http://127.0.0.1:11434`.
    pub fn new(http: reqwest::Client, base_url: url::Url, model: String) -> Self {
        Self {
            http,
            base_url,
            model,
            think: OllamaThink::default(),
        }
    }

    /// The same client sending `think` as `think` says.
    pub fn with_think(mut self, think: OllamaThink) -> Self {
        self.think = think;
        self
    }

    /// The models installed on the server (`GET /api/tags`).
    pub async fn list_models(&self) -> Result<Vec<LocalModel>, ProviderError> {
        let resp = self
            .http
            .get(endpoint(&self.base_url, "api/tags"))
            .send()
            .await
            .map_err(|e| send_error(&e))?;
        let tags: TagsResponse = json_body(resp).await?;
        Ok(tags
            .models
            .into_iter()
            .map(|m| LocalModel {
                name: m.name,
                size_bytes: m.size,
                digest: m.digest,
                family: m.details.family,
                parameter_size: m.details.parameter_size,
                quantization_level: m.details.quantization_level,
            })
            .collect())
    }

    /// Details and capabilities of `model` (`POST /api/show`); an unknown model is
    /// [`ProviderError::Rejected`].
    pub async fn show(&self, model: &str) -> Result<ModelDetails, ProviderError> {
        let resp = self
            .http
            .post(endpoint(&self.base_url, "api/show"))
            .json(&serde_json::json!({ "model": model }))
            .send()
            .await
            .map_err(|e| send_error(&e))?;
        let show: ShowResponse = json_body(resp).await?;
        let context_length = show
            .model_info
            .iter()
            .find(|(key, _)| key.ends_with(".context_length"))
            .and_then(|(_, value)| value.as_u64());
        Ok(ModelDetails {
            capabilities: show.capabilities.unwrap_or_default(),
            family: show.details.family,
            parameter_size: show.details.parameter_size,
            quantization_level: show.details.quantization_level,
            context_length,
        })
    }
}

#[async_trait::async_trait]
impl ChatModel for Ollama {
    fn kind(&self) -> &'static str {
        "ollama"
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
            think: think_wire(self.think),
            options: WireOptions {
                num_predict: req.max_tokens,
            },
        };
        let resp = self
            .http
            .post(endpoint(&self.base_url, "api/chat"))
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
        let mut bytes = resp.bytes_stream();
        while let Some(chunk) = bytes.next().await {
            let chunk =
                chunk.map_err(|e| ProviderError::Stream(format!("reading the response: {e}")))?;
            lines.push(&chunk);
            while let Some(line) = lines.next_line()? {
                if reply.absorb(&line, sink)? {
                    return Ok(reply.finish(req, &self.model));
                }
            }
        }
        if let Some(line) = lines.finish()?
            && reply.absorb(&line, sink)?
        {
            return Ok(reply.finish(req, &self.model));
        }
        Err(ProviderError::Stream(
            "the stream ended before its final `done` line".into(),
        ))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        let resp = self
            .http
            .get(endpoint(&self.base_url, "api/version"))
            .send()
            .await
            .map_err(|e| send_error(&e))?;
        let version: VersionResponse = json_body(resp).await?;
        tracing::trace!(version = %version.version, "ollama is up");
        Ok(())
    }
}

/// The reply as it builds up from the stream's lines.
struct StreamedReply<'m> {
    content: String,
    thinking: String,
    thinking_tokens: u32,
    tool_calls: Vec<ToolCall>,
    model: Option<String>,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    done_reason: Option<String>,
    /// The number for the next generated tool call id (`call_<n>`), for servers older
    /// than 0.12.10 that send none.
    next_call: usize,
    meter: &'m Meter,
}

impl<'m> StreamedReply<'m> {
    fn new(next_call: usize, meter: &'m Meter) -> Self {
        Self {
            content: String::new(),
            thinking: String::new(),
            thinking_tokens: 0,
            tool_calls: Vec::new(),
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            done_reason: None,
            next_call,
            meter,
        }
    }

    /// Takes in one NDJSON line; `true` once the final `done` line has arrived.
    fn absorb(&mut self, line: &str, sink: Option<&TokenSink>) -> Result<bool, ProviderError> {
        if line.trim().is_empty() {
            return Ok(false);
        }
        let line: StreamLine = serde_json::from_str(line).map_err(|e| {
            ProviderError::Protocol(format!(
                "not an Ollama chat line ({e}): {}",
                excerpt(line, 200)
            ))
        })?;
        if let Some(error) = line.error {
            let message = error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_string);
            return Err(ProviderError::Stream(message));
        }
        if self.model.is_none() {
            self.model = line.model;
        }
        if let Some(message) = line.message {
            // Thinking is counted and kept for the trace, never sent as answer text.
            if let Some(thought) = message.thinking.filter(|t| !t.is_empty()) {
                self.thinking.push_str(&thought);
                self.thinking_tokens += 1;
                self.meter.generated(1);
            }
            if let Some(delta) = message.content.filter(|d| !d.is_empty()) {
                if let Some(sink) = sink {
                    // A receiver that went away only means nobody watches the stream.
                    let _ = sink.send(delta.clone());
                }
                self.content.push_str(&delta);
                self.meter.generated(1);
            }
            for call in message.tool_calls.unwrap_or_default() {
                let call = self.tool_call(call)?;
                // Ollama sends a call once parsed; its tokens were generated meanwhile.
                self.meter
                    .generated(estimate_tokens(&call.arguments.to_string()).max(1));
                self.tool_calls.push(call);
            }
        }
        if line.done {
            self.prompt_tokens = line.prompt_eval_count;
            self.completion_tokens = line.eval_count;
            self.done_reason = line.done_reason;
            if let (Some(prompt_tokens), Some(completion_tokens)) =
                (line.prompt_eval_count, line.eval_count)
            {
                self.meter.reported(Usage {
                    prompt_tokens,
                    completion_tokens,
                });
            }
        }
        Ok(line.done)
    }

    fn tool_call(&mut self, call: LineToolCall) -> Result<ToolCall, ProviderError> {
        let arguments = match call.function.arguments {
            Value::Null => Value::Object(serde_json::Map::new()),
            // Some models put the arguments object in a string.
            Value::String(text) => serde_json::from_str(&text).map_err(|e| {
                ProviderError::Protocol(format!(
                    "arguments of tool call {:?} are not JSON: {e}",
                    call.function.name
                ))
            })?,
            other => other,
        };
        let id = call
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("call_{}", self.next_call));
        self.next_call += 1;
        Ok(ToolCall {
            id,
            name: call.function.name,
            arguments,
        })
    }

    fn finish(self, req: &ChatRequest, configured_model: &str) -> ChatResponse {
        let prompt_tokens = self
            .prompt_tokens
            .unwrap_or_else(|| estimate_prompt_tokens(&req.messages));
        let completion_tokens = self.completion_tokens.unwrap_or_else(|| {
            let calls = self
                .tool_calls
                .iter()
                .map(|c| c.arguments.to_string())
                .collect::<String>();
            estimate_tokens(&format!("{}{calls}", self.content))
        });
        // `length`: cut at `num_predict` (or the context window). A tool call the cut
        // interrupted never arrives as a call (Ollama hands its text back as content), so
        // what did arrive is kept only for the record: the caller must not act on it.
        let finish = match self.done_reason.as_deref() {
            Some("length") => Finish::Length,
            _ if !self.tool_calls.is_empty() => Finish::ToolCalls,
            _ => Finish::Stop,
        };
        ChatResponse {
            content: self.content,
            tool_calls: self.tool_calls,
            usage: Usage {
                prompt_tokens,
                completion_tokens,
            },
            model: self.model.unwrap_or_else(|| configured_model.to_string()),
            finish,
            thinking: self.thinking,
            thinking_tokens: self.thinking_tokens,
        }
    }
}

/// Tool call ids are numbered across the conversation, so generated ones stay unique.
fn first_call_number(messages: &[ChatMessage]) -> usize {
    1 + messages.iter().map(|m| m.tool_calls.len()).sum::<usize>()
}

/// The error for a non-success answer, with the message of its `{"error": "…"}` body.
async fn http_error(resp: reqwest::Response) -> ProviderError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&body)
        .map(|b| b.error)
        .unwrap_or_else(|_| excerpt(body.trim(), 200));
    status_error(status, &message)
}

async fn json_body<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
) -> Result<T, ProviderError> {
    if !resp.status().is_success() {
        return Err(http_error(resp).await);
    }
    let url = resp.url().path().to_string();
    let body = resp
        .bytes()
        .await
        .map_err(|e| ProviderError::Stream(format!("reading {url}: {e}")))?;
    serde_json::from_slice(&body)
        .map_err(|e| ProviderError::Protocol(format!("unexpected answer from {url}: {e}")))
}

// ---- wire format -------------------------------------------------------------------

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    stream: bool,
    /// Always sent except for [`OllamaThink::Server`].
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<Value>,
    options: WireOptions,
}

#[derive(Serialize)]
struct WireOptions {
    num_predict: u32,
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
    content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a Value,
}

impl<'a> From<&'a ChatMessage> for WireMessage<'a> {
    fn from(m: &'a ChatMessage) -> Self {
        let role = match m.role {
            MessageRole::System => "system",
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::Tool => "tool",
        };
        Self {
            role,
            content: &m.content,
            tool_calls: m
                .tool_calls
                .iter()
                .map(|c| WireToolCall {
                    function: WireFunction {
                        name: &c.name,
                        arguments: &c.arguments,
                    },
                })
                .collect(),
            tool_name: if m.role == MessageRole::Tool {
                m.tool_name.as_deref()
            } else {
                None
            },
        }
    }
}

#[derive(Deserialize)]
struct StreamLine {
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    /// `stop`, `length` (cut at `num_predict`), `load`, `unload`.
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    eval_count: Option<u32>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<LineToolCall>>,
}

#[derive(Deserialize)]
struct LineToolCall {
    #[serde(default)]
    id: Option<String>,
    function: LineFunction,
}

#[derive(Deserialize)]
struct LineFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

#[derive(Deserialize)]
struct VersionResponse {
    version: String,
}

#[derive(Deserialize)]
struct TagsResponse {
    #[serde(default)]
    models: Vec<TagsModel>,
}

#[derive(Deserialize)]
struct TagsModel {
    name: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    details: WireDetails,
}

#[derive(Deserialize, Default)]
struct WireDetails {
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    parameter_size: Option<String>,
    #[serde(default)]
    quantization_level: Option<String>,
}

#[derive(Deserialize)]
struct ShowResponse {
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    details: WireDetails,
    #[serde(default)]
    model_info: serde_json::Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use testkit::{FakeModel, FakeOllama, Mode, Reply};
    use tokio::sync::mpsc;

    use super::*;
    use crate::metrics::Metrics;
    use crate::providers::{CircuitState, Provider, ResilienceConfig};

    fn ollama(fake: &FakeOllama, model: &str) -> Ollama {
        let base = url::Url::parse(&fake.url()).expect("fake url");
        Ollama::new(reqwest::Client::new(), base, model.to_string())
    }

    fn request(input: &str) -> ChatRequest {
        let mut req = ChatRequest::new(
            "faq",
            vec![ChatMessage::system("be brief"), ChatMessage::user(input)],
            256,
        );
        req.tools = vec![ToolDef {
            name: "kb_search".into(),
            description: "Search the knowledge base".into(),
            parameters: json!({ "type": "object", "properties": { "query": { "type": "string" } } }),
        }];
        req
    }

    fn provider(model: Ollama, cfg: ResilienceConfig) -> Provider {
        Provider::new(Arc::new(model), cfg, Arc::new(Metrics::new()))
    }

    fn quick(max_retries: u32, failure_threshold: u32) -> ResilienceConfig {
        ResilienceConfig {
            timeout: Duration::from_millis(500),
            max_retries,
            failure_threshold,
            open_for: Duration::from_millis(300),
        }
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[tokio::test]
    async fn text_streams_through_the_sink_and_usage_comes_from_the_done_line() {
        let fake = FakeOllama::start().await;
        fake.push_reply(Reply::text("The sky is blue.").with_usage(42, 7));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let got = ollama(&fake, "llama3.2")
            .chat(&request("why?"), Some(&tx))
            .await
            .expect("chat");
        assert_eq!(got.content, "The sky is blue.");
        assert_eq!(drain(&mut rx), ["The", " sky", " is", " blue."]);
        assert_eq!(
            got.usage,
            Usage {
                prompt_tokens: 42,
                completion_tokens: 7
            }
        );
        assert_eq!(got.model, "llama3.2");
        assert!(got.tool_calls.is_empty());
    }

    #[tokio::test]
    async fn the_request_uses_ollamas_wire_format() {
        let fake = FakeOllama::start().await;
        let call = ToolCall {
            id: "call_1".into(),
            name: "kb_search".into(),
            arguments: json!({ "query": "vpn" }),
        };
        let mut req = request("vpn?");
        req.messages
            .push(ChatMessage::assistant("", vec![call.clone()]));
        req.messages
            .push(ChatMessage::tool(&call, r#"{"articles":[]}"#));
        ollama(&fake, "llama3.2")
            .chat(&req, None)
            .await
            .expect("chat");
        let body = &fake.bodies("/api/chat")[0];
        assert_eq!(body["model"], "llama3.2");
        assert_eq!(body["stream"], true);
        assert_eq!(body["options"], json!({ "num_predict": 256 }));
        assert_eq!(
            body["think"], false,
            "think is always decided, off by default"
        );
        assert_eq!(body["tools"][0]["type"], "function");
        assert_eq!(body["tools"][0]["function"]["name"], "kb_search");
        assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
        assert_eq!(
            body["messages"][1],
            json!({ "role": "user", "content": "vpn?" })
        );
        assert_eq!(
            body["messages"][2],
            json!({ "role": "assistant", "content": "",
                    "tool_calls": [{ "function": { "name": "kb_search", "arguments": { "query": "vpn" } } }] })
        );
        assert_eq!(
            body["messages"][3],
            json!({ "role": "tool", "content": r#"{"articles":[]}"#, "tool_name": "kb_search" })
        );
    }

    #[tokio::test]
    async fn tool_calls_keep_the_ids_ollama_gives_them() {
        let fake = FakeOllama::start().await;
        fake.push_reply(
            Reply::tool_call("ticket_read", json!({ "ticket_id": "T-1001" }))
                .and_tool_call("kb_search", json!({ "query": "login" })),
        );
        let got = ollama(&fake, "llama3.2")
            .chat(&request("T-1001"), None)
            .await
            .expect("chat");
        let names: Vec<(&str, &Value)> = got
            .tool_calls
            .iter()
            .map(|c| (c.name.as_str(), &c.arguments))
            .collect();
        assert_eq!(
            names,
            [
                ("ticket_read", &json!({ "ticket_id": "T-1001" })),
                ("kb_search", &json!({ "query": "login" }))
            ]
        );
        for call in &got.tool_calls {
            assert!(
                call.id.starts_with("call_") && call.id.len() == 13,
                "Ollama's own id: {}",
                call.id
            );
        }
        assert_ne!(got.tool_calls[0].id, got.tool_calls[1].id);
        assert_eq!(got.finish, Finish::ToolCalls);
        assert_eq!(got.content, "");
    }

    #[tokio::test]
    async fn a_reply_cut_at_num_predict_is_length_with_the_servers_count() {
        let fake = FakeOllama::start().await;
        fake.push_reply(Reply::text("one two three four five"));
        let mut req = request("x");
        req.max_tokens = 2;
        let got = ollama(&fake, "llama3.2")
            .chat(&req, None)
            .await
            .expect("chat");
        assert_eq!(got.finish, Finish::Length);
        assert_eq!(got.content, "one two");
        assert_eq!(got.usage.completion_tokens, 2);
        assert_eq!(fake.bodies("/api/chat")[0]["options"]["num_predict"], 2);
    }

    #[tokio::test]
    async fn thinking_is_kept_out_of_the_answer_but_counted() {
        let fake = FakeOllama::start().await;
        fake.add_model(FakeModel::new("qwen3").thinking());
        fake.push_reply(Reply::text("It is blue.").with_thinking("light scatters off air"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let got = ollama(&fake, "qwen3")
            .with_think(OllamaThink::On)
            .chat(&request("sky?"), Some(&tx))
            .await
            .expect("chat");
        assert_eq!(got.content, "It is blue.");
        assert_eq!(drain(&mut rx).concat(), "It is blue.");
        assert_eq!(got.thinking, "light scatters off air");
        assert_eq!(got.thinking_tokens, 4);
        assert_eq!(got.usage.completion_tokens, 7, "thinking tokens are output");
        assert_eq!(fake.bodies("/api/chat")[0]["think"], true);

        // The default sends `think: false`: a thinking model answers without thinking,
        // and the cap is all answer.
        fake.push_reply(Reply::text("It is blue.").with_thinking("light scatters off air"));
        let got = ollama(&fake, "qwen3")
            .chat(&request("sky?"), None)
            .await
            .expect("chat");
        assert_eq!(got.thinking, "");
        assert_eq!(got.usage.completion_tokens, 3);
        assert_eq!(fake.bodies("/api/chat")[1]["think"], false);

        // `server` leaves `think` out: the server's default (a thinking model thinks).
        fake.push_reply(Reply::text("It is blue.").with_thinking("light scatters off air"));
        let got = ollama(&fake, "qwen3")
            .with_think(OllamaThink::Server)
            .chat(&request("sky?"), None)
            .await
            .expect("chat");
        assert!(fake.bodies("/api/chat")[2].get("think").is_none());
        assert_eq!(got.thinking_tokens, 4);
    }

    #[tokio::test]
    async fn thinking_asked_of_a_model_that_cannot_is_rejected_not_retried() {
        let fake = FakeOllama::start().await;
        let p = provider(
            ollama(&fake, "llama3.2").with_think(OllamaThink::On),
            quick(2, 1),
        );
        let err = p.chat(&request("x"), None).await.expect_err("400");
        assert!(
            matches!(&err, ProviderError::Rejected(m) if m.contains("does not support thinking")),
            "{err:?}"
        );
        assert_eq!(fake.request_count("/api/chat"), 1);
        assert_eq!(p.circuit_state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn a_5xx_json_error_before_the_first_byte_is_retried_and_opens_the_breaker() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::ErrorAfter {
            chunks: 0,
            message: "model runner has unexpectedly stopped".into(),
        });
        let p = provider(ollama(&fake, "llama3.2"), quick(1, 1));
        let err = p.chat(&request("x"), None).await.expect_err("fails");
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m == "HTTP 500: model runner has unexpectedly stopped"),
            "{err:?}"
        );
        assert_eq!(fake.request_count("/api/chat"), 2, "retried once");
        assert_eq!(p.circuit_state(), CircuitState::Open);
    }

    #[tokio::test]
    async fn tokens_streamed_before_a_failure_stay_counted() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::ErrorAfter {
            chunks: 3,
            message: "out of memory".into(),
        });
        let p = provider(ollama(&fake, "llama3.2"), quick(2, 5));
        let req = request("one two three four five");
        let err = p.chat(&req, None).await.expect_err("fails");
        assert_eq!(err, ProviderError::Stream("out of memory".into()));
        let spent = req.meter.take_unaccounted();
        assert_eq!(spent.completion_tokens, 3);
        assert_eq!(spent.prompt_tokens, estimate_prompt_tokens(&req.messages));
    }

    #[tokio::test]
    async fn lines_split_across_reads_are_reassembled() {
        let fake = FakeOllama::start().await;
        fake.set_chunking(Some(2), Some(5));
        fake.push_reply(Reply::text("héllo wörld"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let got = ollama(&fake, "llama3.2")
            .chat(&request("x"), Some(&tx))
            .await
            .expect("chat");
        assert_eq!(got.content, "héllo wörld");
        assert_eq!(drain(&mut rx).len(), 6);
    }

    #[tokio::test]
    async fn an_error_line_mid_stream_is_a_stream_error() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::ErrorAfter {
            chunks: 2,
            message: "out of memory".into(),
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let err = ollama(&fake, "llama3.2")
            .chat(&request("one two three four"), Some(&tx))
            .await
            .expect_err("fails");
        assert_eq!(err, ProviderError::Stream("out of memory".into()));
        assert_eq!(drain(&mut rx), ["one", " two"]);
    }

    #[tokio::test]
    async fn a_malformed_line_is_a_protocol_error() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::Malformed { after_chunks: 1 });
        let err = ollama(&fake, "llama3.2")
            .chat(&request("a b"), None)
            .await
            .expect_err("fails");
        assert!(matches!(err, ProviderError::Protocol(_)), "{err:?}");
    }

    #[tokio::test]
    async fn an_unknown_model_is_rejected_and_not_retried() {
        let fake = FakeOllama::start().await;
        let p = provider(ollama(&fake, "no-such-model"), quick(3, 5));
        let err = p.chat(&request("x"), None).await.expect_err("fails");
        assert!(
            matches!(&err, ProviderError::Rejected(m) if m.contains("not found")),
            "{err:?}"
        );
        assert_eq!(fake.request_count("/api/chat"), 1);
        assert_eq!(p.circuit_state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn a_down_server_is_retried_then_unavailable() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::Down {
            status: 503,
            message: "busy".into(),
        });
        let p = provider(ollama(&fake, "llama3.2"), quick(2, 5));
        let err = p.chat(&request("x"), None).await.expect_err("fails");
        assert!(
            matches!(&err, ProviderError::Unavailable(m) if m.contains("busy")),
            "{err:?}"
        );
        assert_eq!(fake.request_count("/api/chat"), 3);
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_to_success() {
        let fake = FakeOllama::start().await;
        fake.fail_next(1);
        let p = provider(ollama(&fake, "llama3.2"), quick(2, 5));
        let got = p
            .chat(&request("hello again"), None)
            .await
            .expect("second attempt works");
        assert_eq!(got.content, "hello again");
        assert_eq!(fake.request_count("/api/chat"), 2);
    }

    #[tokio::test]
    async fn the_breaker_opens_fails_fast_and_recovers_through_a_probe() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::Down {
            status: 503,
            message: "busy".into(),
        });
        let p = provider(ollama(&fake, "llama3.2"), quick(0, 2));
        for _ in 0..2 {
            assert!(matches!(
                p.chat(&request("x"), None).await,
                Err(ProviderError::Unavailable(_))
            ));
        }
        assert_eq!(p.circuit_state(), CircuitState::Open);
        let err = p.chat(&request("x"), None).await.expect_err("fails fast");
        assert!(
            matches!(
                err,
                ProviderError::CircuitOpen {
                    retry_after_secs: 1
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            fake.request_count("/api/chat"),
            2,
            "an open circuit sends nothing"
        );

        fake.set_mode(Mode::Normal);
        tokio::time::sleep(Duration::from_millis(350)).await;
        let got = p
            .chat(&request("back"), None)
            .await
            .expect("the probe goes through");
        assert_eq!(got.content, "back");
        assert_eq!(p.circuit_state(), CircuitState::Closed);
        assert_eq!(fake.request_count("/api/chat"), 3);
    }

    #[tokio::test]
    async fn a_hanging_server_times_out() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::Hang);
        let cfg = ResilienceConfig {
            timeout: Duration::from_millis(200),
            ..quick(1, 5)
        };
        let p = provider(ollama(&fake, "llama3.2"), cfg);
        let started = tokio::time::Instant::now();
        let err = p.chat(&request("x"), None).await.expect_err("times out");
        assert_eq!(err, ProviderError::Timeout(1));
        assert_eq!(fake.request_count("/api/chat"), 2, "a timeout is retried");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_slow_stream_that_already_sent_tokens_is_not_retried() {
        let fake = FakeOllama::start().await;
        fake.set_mode(Mode::Slow {
            first_chunk_ms: 0,
            between_chunks_ms: 150,
        });
        let cfg = ResilienceConfig {
            timeout: Duration::from_millis(250),
            ..quick(2, 5)
        };
        let p = provider(ollama(&fake, "llama3.2"), cfg);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let err = p
            .chat(&request("a b c d e f"), Some(&tx))
            .await
            .expect_err("times out");
        assert!(matches!(err, ProviderError::Timeout(_)), "{err:?}");
        assert!(!drain(&mut rx).is_empty());
        assert_eq!(fake.request_count("/api/chat"), 1);
    }

    #[tokio::test]
    async fn health_lists_and_show_use_the_metadata_endpoints() {
        let fake = FakeOllama::start().await;
        let o = ollama(&fake, "llama3.2");
        o.health().await.expect("healthy");

        let models = o.list_models().await.expect("tags");
        assert_eq!(
            models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["llama3.2:latest", "tinyllama:latest"]
        );
        assert_eq!(models[0].parameter_size.as_deref(), Some("3.2B"));

        let details = o.show("llama3.2").await.expect("show");
        assert!(details.supports_tools());
        assert_eq!(details.context_length, Some(131_072));
        assert!(!o.show("tinyllama").await.expect("show").supports_tools());
        assert!(matches!(
            o.show("missing").await,
            Err(ProviderError::Rejected(_))
        ));

        fake.set_mode(Mode::Down {
            status: 503,
            message: "busy".into(),
        });
        assert!(matches!(
            o.health().await,
            Err(ProviderError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable() {
        let fake = FakeOllama::start().await;
        let o = ollama(&fake, "llama3.2");
        fake.shutdown().await.expect("stopped");
        assert!(matches!(
            o.chat(&request("x"), None).await,
            Err(ProviderError::Unavailable(_))
        ));
    }

    #[test]
    fn arguments_given_as_a_json_string_are_parsed() {
        let meter = Meter::default();
        let mut reply = StreamedReply::new(4, &meter);
        let line = r#"{"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"t","arguments":"{\"a\":1}"}}]},"done":false}"#;
        assert_eq!(reply.absorb(line, None), Ok(false));
        assert_eq!(
            reply.tool_calls,
            [ToolCall {
                id: "call_4".into(),
                name: "t".into(),
                arguments: json!({ "a": 1 })
            }]
        );
        let bad = r#"{"message":{"tool_calls":[{"function":{"name":"t","arguments":"{oops"}}]},"done":false}"#;
        assert!(matches!(
            reply.absorb(bad, None),
            Err(ProviderError::Protocol(_))
        ));
    }
}
