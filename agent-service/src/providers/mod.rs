//! Model providers: the [`ChatModel`] trait, its three implementations (`ollama`, `openai`,
//! `scripted`), and [`Provider`], which wraps one with a timeout, bounded jittered retries
//! and a circuit breaker.

pub mod ollama;
pub mod openai;
pub mod resilience;
pub mod scripted;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

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
        Self { role: MessageRole::System, content: content.into(), tool_calls: vec![], tool_call_id: None, tool_name: None }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: MessageRole::User, content: content.into(), tool_calls: vec![], tool_call_id: None, tool_name: None }
    }
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self { role: MessageRole::Assistant, content: content.into(), tool_calls, tool_call_id: None, tool_name: None }
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
    /// Upper bound on completion tokens for this call.
    pub max_tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// The model that answered, as the provider reports it.
    pub model: String,
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
    async fn chat(&self, req: &ChatRequest, sink: Option<&TokenSink>) -> Result<ChatResponse, ProviderError>;
    /// A cheap reachability check for `/readyz` (e.g. Ollama `/api/version`).
    async fn health(&self) -> Result<(), ProviderError>;
}

/// Builds the configured provider.
pub fn from_settings(
    s: &crate::config::Settings,
    http: reqwest::Client,
    metrics: Arc<crate::metrics::Metrics>,
) -> Provider {
    let model: Arc<dyn ChatModel> = match s.provider {
        crate::config::ProviderKind::Ollama => {
            Arc::new(ollama::Ollama::new(http, s.ollama_base_url.clone(), s.ollama_model.clone()))
        }
        crate::config::ProviderKind::Openai => Arc::new(openai::OpenAi::new(
            http,
            s.openai_base_url.clone(),
            s.model_name.clone(),
            s.openai_api_key.clone(),
        )),
        crate::config::ProviderKind::Scripted => Arc::new(scripted::Scripted::new()),
    };
    Provider::new(model, ResilienceConfig::from_settings(s), metrics)
}

/// Rough token count for providers that do not report usage: about 4 characters a token.
pub fn estimate_tokens(text: &str) -> u32 {
    let chars = text.chars().count() as u32;
    chars.div_ceil(4).max(u32::from(!text.is_empty()))
}
