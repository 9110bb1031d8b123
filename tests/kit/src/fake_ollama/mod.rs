//! A fake Ollama server that speaks Ollama's real HTTP API (NDJSON streaming on `/api/*`,
//! the OpenAI-compatible SSE API on `/v1/*`) and can be told how to misbehave.
//!
//! Start it in-process with [`FakeOllama::start`] and drive it with the handle's methods,
//! or run the `fake-ollama --port N` binary and drive it over HTTP. Both share one state.
//!
//! # Ollama API served
//!
//! | endpoint | what it does |
//! |---|---|
//! | `POST /api/chat` | NDJSON stream (`application/x-ndjson`) of `message` deltas (`thinking` first, then `content`, then `tool_calls` with `call_…` ids) and a final `done` line with `done_reason` `stop` or `length`, or one object when `"stream": false` |
//! | `POST /api/generate` | the same with `thinking` / `response` deltas |
//! | `GET /api/tags` | the configured models |
//! | `POST /api/show` | details and `capabilities` (`completion`, `tools`, `thinking`); 404 `{"error":"model 'x' not found"}` |
//! | `GET /api/version` | `{"version": "…"}` ([`FAKE_OLLAMA_VERSION`]) |
//! | `GET /api/ps` | the models used since the start (`size_vram` from [`FakeModel::size_vram`]) |
//! | `POST /api/pull` | `pulling manifest`, one `pulling <12 hex>` series per layer (model, template, params, config), `verifying sha256 digest`, `writing manifest`, `success`; adds the model. A name the registry lacks: `pulling manifest`, then an error line |
//! | `POST /v1/chat/completions` | OpenAI-compatible chat: SSE chunks (`delta.reasoning` for thinking), tool-call deltas, a finish chunk (`stop`, `tool_calls`, `length`), a usage chunk when asked, `data: [DONE]` |
//! | `GET /v1/models` | OpenAI-compatible model list |
//!
//! The first chat or generate call of a model reports a cold `load_duration` (1.2 s), later
//! ones a warm one (50 ms), like a real server that keeps the model loaded.
//!
//! Chat replies come from a FIFO queue of scripted [`Reply`]s (thinking, text and/or tool
//! calls); when it is empty the reply echoes the last user message. An unknown model gets
//! 404. Generation follows the request like a real server: at most `options.num_predict`
//! (native) or `max_tokens` (`/v1`) tokens, thinking included, cut replies ending with
//! `length`; thinking only from models with the `thinking` capability, on by default
//! there, and `think: true` for any other model is a 400.
//!
//! Errors before the first byte are an HTTP 5xx with a JSON body; after it, the native
//! stream ends with an `{"error": …}` line and the `/v1` stream with an empty chunk and no
//! finish chunk or `[DONE]`, as Ollama does (see [`Mode::ErrorAfter`]).
//!
//! # Control API (`/__fake/…`, never logged or counted)
//!
//! | request | body | effect |
//! |---|---|---|
//! | `GET /__fake/state` | | mode, chunking, fail-next, models, queued replies, counters |
//! | `PUT /__fake/mode` | a [`Mode`], e.g. `{"mode":"down"}`, `{"mode":"hang"}`, `{"mode":"slow","first_chunk_ms":200,"between_chunks_ms":50}`, `{"mode":"error_after","chunks":2,"message":"boom"}`, `{"mode":"malformed","after_chunks":1}`, `{"mode":"normal"}` | how the next requests are answered |
//! | `PUT /__fake/chunking` | `{"chunk_chars": 3, "frame_bytes": 7}` (each may be `null`) | reply text split into pieces of N characters (default: word pieces like real tokens); body written in frames of at most N bytes, so lines arrive split |
//! | `POST /__fake/fail-next` | `{"count": 2}` | the next N model API requests get 503, then the mode applies again |
//! | `PUT /__fake/models` | `[FakeModel, …]` | replaces the model list |
//! | `POST /__fake/models` | a [`FakeModel`] | adds (or replaces by name) one model |
//! | `POST /__fake/registry` | a [`FakeModel`] | makes one more model pullable |
//! | `POST /__fake/replies` | a [`Reply`] or an array of them | queues replies, e.g. `{"content":"Hi"}`, `{"tool_calls":[{"name":"kb_search","arguments":{"query":"vpn"}}]}` |
//! | `DELETE /__fake/replies` | | empties the reply queue |
//! | `GET /__fake/requests` | | every received request: `[{"method","path","headers","body"}]` |
//! | `DELETE /__fake/requests` | | clears the request log and the counters |
//! | `GET /__fake/counters` | | `{"total": n, "by_path": {"/api/chat": n, …}}` |
//! | `POST /__fake/reset` | | back to the state at start |

mod control;
mod generation;
mod native;
mod openai;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use state::Shared;

use crate::serve::Server;

/// The Ollama release whose wire behaviour the fake imitates, and what it answers on
/// `/api/version`. Every "as Ollama does" comment in this module refers to the source of
/// this release (server/routes.go, api/types.go, openai/openai.go, middleware/openai.go,
/// server/images.go, server/download.go, llm/server.go).
pub const FAKE_OLLAMA_VERSION: &str = "0.32.15";

/// A model the fake knows, as listed by `/api/tags` and described by `/api/show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeModel {
    /// `name:tag`; a name given without a tag means `:latest`.
    pub name: String,
    #[serde(default = "default_size")]
    pub size: u64,
    /// As `/api/show` reports them, e.g. `["completion", "tools"]`.
    #[serde(default = "default_capabilities")]
    pub capabilities: Vec<String>,
    #[serde(default = "default_family")]
    pub family: String,
    #[serde(default = "default_parameter_size")]
    pub parameter_size: String,
    #[serde(default = "default_quantization")]
    pub quantization_level: String,
    /// Bytes in GPU memory once loaded, as `/api/ps` reports them; `None`: all of it.
    /// `Some(0)` is a model that fell back to the CPU.
    #[serde(default)]
    pub size_vram: Option<u64>,
}

fn default_size() -> u64 {
    2_019_393_189
}
fn default_capabilities() -> Vec<String> {
    vec!["completion".into(), "tools".into()]
}
fn default_family() -> String {
    "llama".into()
}
fn default_parameter_size() -> String {
    "3.2B".into()
}
fn default_quantization() -> String {
    "Q4_K_M".into()
}

impl FakeModel {
    /// A model with the `completion` and `tools` capabilities.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: canonical_name(&name.into()),
            size: default_size(),
            capabilities: default_capabilities(),
            family: default_family(),
            parameter_size: default_parameter_size(),
            quantization_level: default_quantization(),
            size_vram: None,
        }
    }

    /// The same model without the `tools` capability (chat with tools gets 400).
    pub fn without_tools(mut self) -> Self {
        self.capabilities.retain(|c| c != "tools");
        self
    }

    /// The same model running on the CPU only (`size_vram` 0 in `/api/ps`).
    pub fn on_cpu(mut self) -> Self {
        self.size_vram = Some(0);
        self
    }

    pub fn with_size(mut self, size: u64) -> Self {
        self.size = size;
        self
    }

    /// The same model with the `thinking` capability (like qwen3, deepseek-r1, gpt-oss).
    pub fn thinking(mut self) -> Self {
        if !self.supports_thinking() {
            self.capabilities.push("thinking".into());
        }
        self
    }

    pub fn supports_tools(&self) -> bool {
        self.capabilities.iter().any(|c| c == "tools")
    }

    pub fn supports_thinking(&self) -> bool {
        self.capabilities.iter().any(|c| c == "thinking")
    }
}

/// The models the fake starts with: `llama3.2:latest` (tools) and `tinyllama:latest`
/// (completion only).
pub fn default_models() -> Vec<FakeModel> {
    vec![
        FakeModel::new("llama3.2:latest"),
        FakeModel {
            family: "llama".into(),
            parameter_size: "1.1B".into(),
            quantization_level: "Q4_0".into(),
            ..FakeModel::new("tinyllama:latest")
                .with_size(637_700_138)
                .without_tools()
        },
    ]
}

/// The models a pull can find besides [`default_models`]: any other name fails the way a
/// name the registry lacks fails.
pub fn default_registry() -> Vec<FakeModel> {
    let mut models = default_models();
    models.extend([
        FakeModel::new("qwen2.5:0.5b").with_size(397_821_319),
        FakeModel {
            family: "qwen3".into(),
            parameter_size: "751.63M".into(),
            ..FakeModel::new("qwen3:0.6b")
                .with_size(522_653_767)
                .thinking()
        },
        FakeModel::new("llama3.2:1b").with_size(1_321_098_329),
        FakeModel::new("smollm2:135m")
            .with_size(270_898_672)
            .without_tools(),
    ]);
    models
}

/// Ollama's rule: a model name without a tag means `:latest`.
pub fn canonical_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// A scripted chat reply: text, tool calls, or both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    /// What a thinking model thinks before it answers (sent only when thinking is on).
    pub thinking: String,
    pub content: String,
    pub tool_calls: Vec<FakeToolCall>,
    /// Token counts to report instead of the fake's own estimate.
    pub usage: Option<FakeUsage>,
}

impl Reply {
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ..Self::default()
        }
    }

    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self {
            tool_calls: vec![FakeToolCall {
                name: name.into(),
                arguments,
            }],
            ..Self::default()
        }
    }

    /// Adds one more tool call to this reply.
    pub fn and_tool_call(mut self, name: impl Into<String>, arguments: Value) -> Self {
        self.tool_calls.push(FakeToolCall {
            name: name.into(),
            arguments,
        });
        self
    }

    /// Thinking that comes before the answer, for models with the `thinking` capability.
    pub fn with_thinking(mut self, thinking: impl Into<String>) -> Self {
        self.thinking = thinking.into();
        self
    }

    pub fn with_usage(mut self, prompt_tokens: u32, completion_tokens: u32) -> Self {
        self.usage = Some(FakeUsage {
            prompt_tokens,
            completion_tokens,
        });
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeToolCall {
    pub name: String,
    /// The arguments object.
    #[serde(default)]
    pub arguments: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// How the fake answers the Ollama API (the control API is never affected).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Answers like a healthy Ollama.
    #[default]
    Normal,
    /// Every request gets this status (503 unless set) with an error body.
    Down {
        #[serde(default = "default_down_status")]
        status: u16,
        #[serde(default = "default_down_message")]
        message: String,
    },
    /// Requests are accepted and never answered.
    Hang,
    /// A delay before the first byte and between stream chunks.
    Slow {
        first_chunk_ms: u64,
        between_chunks_ms: u64,
    },
    /// The model fails after this many chunks (thinking or content). With `chunks: 0`
    /// nothing has been written yet, so the answer is an HTTP 500 with a JSON error body
    /// (native `{"error": "…"}`, `/v1` `{"error": {"message", "type", …}}`). Later, the
    /// native stream ends with an `{"error": "…"}` line; the `/v1` stream with one chunk
    /// whose delta is an empty `content` and `model` is `""` (Ollama's `/v1` writer turns
    /// the error line into an empty response) and no finish chunk or `[DONE]`, as Ollama
    /// does (server/routes.go `streamResponse`, middleware/openai.go `ChatWriter`).
    /// Non-streaming requests get 500; a pull fails with an error line.
    ErrorAfter {
        chunks: usize,
        #[serde(default = "default_stream_error")]
        message: String,
    },
    /// After this many content chunks, one line that is not valid JSON is inserted (the
    /// stream then goes on); a non-streaming body is cut short.
    Malformed { after_chunks: usize },
}

fn default_down_status() -> u16 {
    503
}
fn default_down_message() -> String {
    "server busy, please try again. maximum pending requests exceeded".into()
}
fn default_stream_error() -> String {
    "an error was encountered while running the model: unexpected EOF".into()
}

/// One request the fake received (control requests excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names are lowercase.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The JSON body; `null` when empty, a string when it was not JSON.
    pub body: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub total: u64,
    pub by_path: std::collections::BTreeMap<String, u64>,
}

/// A running fake Ollama. Dropping the handle stops the server.
pub struct FakeOllama {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeOllama {
    /// Starts on `127.0.0.1` on a free port. Panics if no port can be bound: in a test
    /// there is nothing better to do.
    pub async fn start() -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr).await {
            Ok(fake) => fake,
            Err(e) => panic!("fake Ollama could not bind {addr}: {e}"),
        }
    }

    /// Starts on `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::new());
        let server =
            Server::start(addr, router(shared.clone()), shared.subscribe_shutdown()).await?;
        tracing::debug!(addr = %server.addr, "fake Ollama listening");
        Ok(Self { server, shared })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash (what `OLLAMA_BASE_URL` takes).
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The OpenAI-compatible base URL, `http://127.0.0.1:PORT/v1`.
    pub fn openai_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.with(|s| s.mode = mode);
    }

    /// Reply text in pieces of `chunk_chars` characters (`None`: word pieces), and the
    /// body in frames of at most `frame_bytes` bytes (`None`: one frame per line).
    pub fn set_chunking(&self, chunk_chars: Option<usize>, frame_bytes: Option<usize>) {
        self.shared.with(|s| {
            s.chunk_chars = chunk_chars.filter(|n| *n > 0);
            s.frame_bytes = frame_bytes.filter(|n| *n > 0);
        });
    }

    /// The next `count` model API requests get 503; then the mode applies again.
    pub fn fail_next(&self, count: u32) {
        self.shared.with(|s| s.fail_next = count);
    }

    pub fn set_models(&self, models: Vec<FakeModel>) {
        self.shared.with(|s| s.set_models(models));
    }

    pub fn add_model(&self, model: FakeModel) {
        self.shared.with(|s| s.add_model(model));
    }

    pub fn models(&self) -> Vec<FakeModel> {
        self.shared.with(|s| s.models.clone())
    }

    /// Makes `model` pullable (the registry starts as [`default_registry`]).
    pub fn add_to_registry(&self, model: FakeModel) {
        self.shared.with(|s| s.add_to_registry(model));
    }

    pub fn push_reply(&self, reply: Reply) {
        self.shared.with(|s| s.replies.push_back(reply));
    }

    pub fn clear_replies(&self) {
        self.shared.with(|s| s.replies.clear());
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.with(|s| s.log.clone())
    }

    /// The JSON bodies of the requests to `path`, oldest first.
    pub fn bodies(&self, path: &str) -> Vec<Value> {
        self.shared.with(|s| {
            s.log
                .iter()
                .filter(|r| r.path == path)
                .map(|r| r.body.clone())
                .collect()
        })
    }

    pub fn counters(&self) -> Counters {
        self.shared.with(|s| s.counters.clone())
    }

    /// How many requests reached `path` (e.g. `/api/chat`).
    pub fn request_count(&self, path: &str) -> u64 {
        self.shared
            .with(|s| s.counters.by_path.get(path).copied().unwrap_or(0))
    }

    pub fn total_requests(&self) -> u64 {
        self.shared.with(|s| s.counters.total)
    }

    /// Back to the state at start: normal mode, default models, empty queue and log.
    pub fn reset(&self) {
        self.shared.with(|s| s.reset());
    }

    /// Stops accepting, releases hanging requests and waits for the server to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.shared.shutdown();
        self.server.join().await
    }
}

impl Drop for FakeOllama {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

fn router(shared: Arc<Shared>) -> axum::Router {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(|| async { "Ollama is running" }))
        .route("/api/chat", post(native::chat))
        .route("/api/generate", post(native::generate))
        .route("/api/tags", get(native::tags))
        .route("/api/show", post(native::show))
        .route("/api/version", get(native::version))
        .route("/api/ps", get(native::ps))
        .route("/api/pull", post(native::pull))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::models))
        .fallback(native::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            state::record_and_gate,
        ))
        .nest("/__fake", control::router())
        .with_state(shared)
}
