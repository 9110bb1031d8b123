//! Model providers: the [`ChatModel`] trait, its three implementations (`ollama`, `openai`,
//! `scripted`), [`Provider`], which wraps one with a timeout, bounded jittered retries
//! and a circuit breaker, and the fallback chains of named providers ([`chain`]).

pub mod chain;
pub mod ollama;
pub mod openai;
pub mod resilience;
pub mod scripted;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use chain::{Chain, Link, Providers};
pub use resilience::{CircuitState, Provider, ResilienceConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    System,
    User,
    Assistant,
    Tool,
}

/// One message of a conversation with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: MessageRole,
    pub content: String,
    /// Tool calls the assistant asked for (assistant messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Tool` messages: the id of the call this answers and the tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: MessageRole::System,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: None,
            tool_name: None,
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: MessageRole::User,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: None,
            tool_name: None,
        }
    }
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            role: MessageRole::Assistant,
            content: content.into(),
            tool_calls,
            tool_call_id: None,
            tool_name: None,
        }
    }
    pub fn tool(call: &ToolCall, content: impl Into<String>) -> Self {
        Self {
            role: MessageRole::Tool,
            content: content.into(),
            tool_calls: vec![],
            tool_call_id: Some(call.id.clone()),
            tool_name: Some(call.name.clone()),
        }
    }
}

/// A tool call requested by the model. `arguments` is the parsed JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

/// A tool offered to the model: name, description, JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The workflow being run; the scripted model follows that workflow's script.
    pub workflow: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDef>,
    /// Upper bound on completion tokens for this call (`max_tokens` / `num_predict`):
    /// the workflow's per-call output cap, or less when the run's budget is nearly spent.
    pub max_tokens: u32,
    /// Tokens (prompt and completion) the caller may still spend on this call, retries
    /// included: a retry goes only when it fits.
    pub budget_tokens: u32,
    /// When the caller stops waiting: no attempt outlives it, no retry starts that cannot
    /// finish before it.
    pub deadline: Option<Instant>,
    /// Where the providers count tokens as they stream, so a call that fails, times out
    /// or is dropped still accounts for what it generated.
    pub meter: Meter,
}

impl ChatRequest {
    /// A request with no deadline and a budget of `max_tokens` plus the prompt.
    pub fn new(workflow: impl Into<String>, messages: Vec<ChatMessage>, max_tokens: u32) -> Self {
        Self {
            workflow: workflow.into(),
            messages,
            tools: Vec::new(),
            max_tokens,
            budget_tokens: u32::MAX,
            deadline: None,
            meter: Meter::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Usage {
    pub fn total(self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

/// Why the model stopped generating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The model ended its reply.
    #[default]
    Stop,
    /// The model ended its reply with tool calls.
    ToolCalls,
    /// The reply was cut off at the output limit (`done_reason` / `finish_reason`
    /// `length`): what it holds is unfinished, half-written tool calls are dropped.
    Length,
}

impl Finish {
    /// The OpenTelemetry `gen_ai.response.finish_reasons` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::ToolCalls => "tool_calls",
            Self::Length => "length",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatResponse {
    /// The answer, without the model's thinking.
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// Tokens generated across every attempt of the call, thinking included.
    pub usage: Usage,
    /// The model that answered, as the provider reports it.
    pub model: String,
    pub finish: Finish,
    /// What a thinking model thought before answering (never part of `content`).
    pub thinking: String,
    /// Streamed thinking pieces (about one token each); part of `usage.completion_tokens`.
    pub thinking_tokens: u32,
}

/// Tokens a model call has used so far. The providers count as the stream arrives
/// (prompt estimated when the answer starts, one token per streamed piece, replaced by
/// the server's own count when it sends one); [`Provider`] closes each attempt. Clones
/// share the count.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<MeterState>>);

#[derive(Debug, Default)]
struct MeterState {
    /// Attempts that ended without an answer.
    failed: Usage,
    /// The attempt whose answer is arriving.
    current: Option<Usage>,
}

impl Meter {
    fn lock(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer of an attempt started arriving; the prompt counts from now on.
    pub fn start(&self, prompt_tokens: u32) {
        self.lock().current = Some(Usage {
            prompt_tokens,
            completion_tokens: 0,
        });
    }

    /// `n` more generated tokens of the attempt in progress.
    pub fn generated(&self, n: u32) {
        if let Some(u) = self.lock().current.as_mut() {
            u.completion_tokens = u.completion_tokens.saturating_add(n);
        }
    }

    /// The server's own count for the attempt in progress.
    pub fn reported(&self, usage: Usage) {
        self.lock().current = Some(usage);
    }

    /// Completion tokens of the attempt in progress.
    pub fn current_completion(&self) -> u32 {
        self.lock().current.map_or(0, |u| u.completion_tokens)
    }

    /// Everything counted so far: failed attempts and the one in progress.
    pub fn total(&self) -> Usage {
        let s = self.lock();
        s.failed.plus(s.current.unwrap_or_default())
    }

    /// The attempt in progress failed: what it used stays counted.
    pub(crate) fn attempt_failed(&self) {
        let mut s = self.lock();
        if let Some(u) = s.current.take() {
            s.failed = s.failed.plus(u);
        }
    }

    /// The attempt in progress answered: its usage is the answer's.
    pub(crate) fn attempt_answered(&self) {
        self.lock().current = None;
    }

    /// What no answer accounts for (failed attempts and one still in progress), and a
    /// fresh count from here on.
    pub fn take_unaccounted(&self) -> Usage {
        let mut s = self.lock();
        let u = s.failed.plus(s.current.take().unwrap_or_default());
        s.failed = Usage::default();
        u
    }
}

/// Where streamed text deltas go, as they arrive from the model.
pub type TokenSink = mpsc::UnboundedSender<String>;

/// Why a model call failed. `retryable()` decides whether [`Provider`] tries again.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ProviderError {
    /// Could not connect, or the server answered 5xx / 429.
    #[error("model provider unavailable: {0}")]
    Unavailable(String),
    /// The call did not finish within the per-call timeout.
    #[error("model provider timed out after {0} s")]
    Timeout(u64),
    /// The circuit breaker is open: the call was not attempted.
    #[error("model provider circuit is open; retry in {retry_after_secs} s")]
    CircuitOpen { retry_after_secs: u64 },
    /// The provider refused the request (4xx other than 429): not retryable.
    #[error("model provider rejected the request: {0}")]
    Rejected(String),
    /// The provider answered something that is not its documented protocol.
    #[error("model provider answered malformed data: {0}")]
    Protocol(String),
    /// The stream broke after it started (an `error` line mid-stream, a cut connection).
    #[error("model provider stream failed: {0}")]
    Stream(String),
    /// The prompt does not fit the model's context window (the message names the limit).
    #[error("the prompt does not fit the model's context: {0}")]
    ContextExceeded(String),
}

impl ProviderError {
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout(_))
    }
    /// The label used in `agent_provider_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Timeout(_) => "timeout",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::Rejected(_) => "rejected",
            Self::Protocol(_) => "protocol",
            Self::Stream(_) => "stream",
            Self::ContextExceeded(_) => "context_exceeded",
        }
    }
}

/// A model behind some wire protocol. Implementations do one attempt; retries, timeouts
/// and the circuit breaker live in [`Provider`].
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// `ollama`, `openai` or `scripted`.
    fn kind(&self) -> &'static str;
    /// The configured model name.
    fn model(&self) -> &str;
    /// One chat completion. When `sink` is given, text deltas are sent to it as they
    /// arrive (the full text is still returned in the response).
    async fn chat(
        &self,
        req: &ChatRequest,
        sink: Option<&TokenSink>,
    ) -> Result<ChatResponse, ProviderError>;
    /// A cheap reachability check for `/readyz` (e.g. Ollama `/api/version`).
    async fn health(&self) -> Result<(), ProviderError>;
}

/// Builds every provider the configured chains use, each link once.
pub fn from_settings(
    s: &crate::config::ProviderConfig,
    http: reqwest::Client,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Providers, crate::config::ConfigError> {
    Providers::build(s, |link| build_link(link, http.clone(), metrics.clone()))
}

/// One link: its wire protocol behind its own timeout, retries and breaker.
pub fn build_link(
    l: &crate::config::ProviderLink,
    http: reqwest::Client,
    metrics: Arc<crate::metrics::Metrics>,
) -> Provider {
    let model: Arc<dyn ChatModel> = match l.kind {
        crate::config::ProviderKind::Ollama => Arc::new(
            ollama::Ollama::new(http, l.base_url.clone(), l.model.clone()).with_think(l.think),
        ),
        crate::config::ProviderKind::Openai => Arc::new(openai::OpenAi::new(
            http,
            l.base_url.clone(),
            l.model.clone(),
            l.api_key.clone(),
        )),
        crate::config::ProviderKind::Scripted => {
            Arc::new(scripted::Scripted::with_variant(l.scripted_variant))
        }
    };
    Provider::named(&l.name, model, ResilienceConfig::of_link(l), metrics)
}

/// Rough token count for providers that do not report usage: about 4 characters a token.
pub fn estimate_tokens(text: &str) -> u32 {
    tokens_of_chars(text.chars().count())
}

fn tokens_of_chars(chars: usize) -> u32 {
    let chars = u32::try_from(chars).unwrap_or(u32::MAX);
    chars.div_ceil(4).max(u32::from(chars > 0))
}

/// [`estimate_tokens`] of the messages' contents joined by newlines, without building
/// the joined text.
pub fn estimate_prompt_tokens(messages: &[ChatMessage]) -> u32 {
    let chars: usize = messages.iter().map(|m| m.content.chars().count()).sum();
    tokens_of_chars(chars + messages.len().saturating_sub(1))
}

/// `base` joined with a relative `path`, whether or not `base` ends with `/`
/// (`http://h/v1` + `models` is `http://h/v1/models`, not `http://h/models`).
pub fn endpoint(base: &url::Url, path: &str) -> url::Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// The error for a non-success HTTP status: 429 and 5xx are worth retrying, any other
/// 4xx is the provider refusing this request, a prompt over the context window (llama.cpp
/// and OpenAI say so in the body) is its own kind.
pub(crate) fn status_error(status: reqwest::StatusCode, message: &str) -> ProviderError {
    let text = format!("HTTP {}: {message}", status.as_u16());
    let lower = message.to_ascii_lowercase();
    if status.is_client_error()
        && (lower.contains("exceed_context_size")
            || lower.contains("exceeds the available context size")
            || lower.contains("context_length_exceeded")
            || lower.contains("maximum context length"))
    {
        return ProviderError::ContextExceeded(text);
    }
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ProviderError::Unavailable(text)
    } else if status.is_client_error() {
        ProviderError::Rejected(text)
    } else {
        ProviderError::Protocol(text)
    }
}

/// The error for a failed send: the provider could not be reached or did not answer.
pub(crate) fn send_error(err: &reqwest::Error) -> ProviderError {
    if err.is_timeout() {
        ProviderError::Unavailable(format!("request timed out: {err}"))
    } else {
        ProviderError::Unavailable(err.to_string())
    }
}

/// Splits a byte stream into lines as chunks arrive; a line may span chunks. Both NDJSON
/// (Ollama) and server-sent events (OpenAI) are line protocols.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line without its `\n` / `\r\n`, if one has arrived.
    pub(crate) fn next_line(&mut self) -> Result<Option<String>, ProviderError> {
        let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Self::decode(line).map(Some)
    }

    /// What is left once the stream has ended: a last line without a newline, if any.
    pub(crate) fn finish(&mut self) -> Result<Option<String>, ProviderError> {
        let rest = std::mem::take(&mut self.buf);
        if rest.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        Self::decode(rest).map(Some)
    }

    fn decode(line: Vec<u8>) -> Result<String, ProviderError> {
        String::from_utf8(line)
            .map_err(|e| ProviderError::Protocol(format!("a line is not UTF-8: {e}")))
    }
}

/// `text` cut to at most `max` characters, for error messages quoting a response body.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod helper_tests {
    use super::*;

    #[test]
    fn prompt_estimate_counts_the_contents_joined_by_newlines() {
        let msgs = |texts: &[&str]| -> Vec<ChatMessage> {
            texts.iter().map(|t| ChatMessage::user(*t)).collect()
        };
        for texts in [
            &[][..],
            &[""][..],
            &["", ""][..],
            &["abc"][..],
            &["Summarize ticket T-1001", "ünïcödé ✓", ""][..],
            &["a", "b", "c", "d"][..],
        ] {
            assert_eq!(
                estimate_prompt_tokens(&msgs(texts)),
                estimate_tokens(&texts.join("\n")),
                "{texts:?}"
            );
        }
    }

    #[test]
    fn endpoint_joins_with_or_without_trailing_slash() {
        for (base, path, want) in [
            (
                "https://api.openai.com/v1",
                "chat/completions",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1/",
                "/models",
                "https://api.openai.com/v1/models",
            ),
            (
                "http://127.0.0.1:11434",
                "api/chat",
                "http://127.0.0.1:11434/api/chat",
            ),
            (
                "http://127.0.0.1:11434/",
                "api/tags",
                "http://127.0.0.1:11434/api/tags",
            ),
            (
                "http://proxy/ollama/",
                "api/version",
                "http://proxy/ollama/api/version",
            ),
        ] {
            let base = url::Url::parse(base).expect("test url");
            assert_eq!(endpoint(&base, path).as_str(), want, "{base} + {path}");
        }
    }

    #[test]
    fn line_splitter_joins_lines_split_across_chunks() {
        let mut lines = LineSplitter::default();
        let mut got = vec![];
        for chunk in ["{\"a\":", "1}\n{\"b\"", ":2}\r\n\n{\"c\":3}"] {
            lines.push(chunk.as_bytes());
            while let Some(line) = lines.next_line().expect("utf-8") {
                got.push(line);
            }
        }
        got.extend(lines.finish().expect("utf-8"));
        assert_eq!(got, ["{\"a\":1}", "{\"b\":2}", "", "{\"c\":3}"]);
    }

    #[test]
    fn line_splitter_keeps_multibyte_characters_split_across_chunks() {
        let mut lines = LineSplitter::default();
        let bytes = "héllo\n".as_bytes();
        lines.push(&bytes[..2]);
        assert_eq!(lines.next_line(), Ok(None));
        lines.push(&bytes[2..]);
        assert_eq!(lines.next_line(), Ok(Some("héllo".to_string())));
    }

    #[test]
    fn status_errors_split_retryable_from_rejected() {
        use reqwest::StatusCode;
        assert!(matches!(
            status_error(StatusCode::SERVICE_UNAVAILABLE, "x"),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            status_error(StatusCode::TOO_MANY_REQUESTS, "x"),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            status_error(StatusCode::NOT_FOUND, "x"),
            ProviderError::Rejected(_)
        ));
        assert!(matches!(
            status_error(StatusCode::UNAUTHORIZED, "x"),
            ProviderError::Rejected(_)
        ));
    }
}
