//! The fake's shared state, and the middleware that logs every API request and applies
//! the failure modes that act before a handler runs (down, hang, fail-next, first delay).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;
use tokio::sync::watch;

use super::{
    Counters, FakeModel, Mode, RecordedRequest, Reply, canonical_name, default_models,
    default_registry, wire,
};

/// Largest request body the fake reads (real requests are far smaller).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Paths whose requests run a model; `fail_next` applies to these only.
const MODEL_PATHS: [&str; 3] = ["/api/chat", "/api/generate", "/v1/chat/completions"];

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    shutdown: watch::Sender<bool>,
}

pub(crate) struct Inner {
    pub mode: Mode,
    pub chunk_chars: Option<usize>,
    pub frame_bytes: Option<usize>,
    pub fail_next: u32,
    pub models: Vec<FakeModel>,
    /// What a pull can find.
    pub registry: Vec<FakeModel>,
    /// Models used since the start, for `/api/ps`.
    pub loaded: BTreeSet<String>,
    pub replies: VecDeque<Reply>,
    pub log: Vec<RecordedRequest>,
    pub counters: Counters,
    /// For `chatcmpl-N` and `call_N` ids.
    pub next_id: u64,
}

impl Inner {
    fn new() -> Self {
        Self {
            mode: Mode::Normal,
            chunk_chars: None,
            frame_bytes: None,
            fail_next: 0,
            models: default_models(),
            registry: default_registry(),
            loaded: BTreeSet::new(),
            replies: VecDeque::new(),
            log: Vec::new(),
            counters: Counters::default(),
            next_id: 1,
        }
    }

    pub fn reset(&mut self) {
        *self = Self::new();
    }

    pub fn set_models(&mut self, models: Vec<FakeModel>) {
        self.models = models
            .into_iter()
            .map(|m| FakeModel {
                name: canonical_name(&m.name),
                ..m
            })
            .collect();
    }

    pub fn add_model(&mut self, model: FakeModel) {
        let model = FakeModel {
            name: canonical_name(&model.name),
            ..model
        };
        match self.models.iter_mut().find(|m| m.name == model.name) {
            Some(existing) => *existing = model,
            None => self.models.push(model),
        }
    }

    pub fn add_to_registry(&mut self, model: FakeModel) {
        let model = FakeModel {
            name: canonical_name(&model.name),
            ..model
        };
        self.registry.retain(|m| m.name != model.name);
        self.registry.push(model);
    }

    /// The registry's entry for `name`.
    pub fn in_registry(&self, name: &str) -> Option<&FakeModel> {
        let name = canonical_name(name);
        self.registry.iter().find(|m| m.name == name)
    }

    pub fn model(&self, name: &str) -> Option<&FakeModel> {
        let name = canonical_name(name);
        self.models.iter().find(|m| m.name == name)
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The next queued reply, or one that echoes the last user message.
    pub fn take_reply(&mut self, echo: &str) -> Reply {
        self.replies
            .pop_front()
            .unwrap_or_else(|| Reply::text(echo))
    }
}

impl Shared {
    pub fn new() -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Mutex::new(Inner::new()),
            shutdown,
        }
    }

    /// Runs `f` with the state locked (never across an await).
    pub fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut inner)
    }

    pub fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves when the server stops; hanging requests wait on this.
    pub async fn stopped(&self) {
        let mut rx = self.subscribe_shutdown();
        // An error means the sender is gone, which also means stopped.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// What the middleware decided before the handler runs.
enum Gate {
    Pass { first_delay: Duration },
    Fail { status: u16, message: String },
    Hang,
}

/// Logs the request (method, path, lowercase headers, JSON body), counts it, then applies
/// the mode: down and fail-next answer with an error, hang never answers, slow delays.
pub(crate) async fn record_and_gate(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => return wire::ollama_error(400, &format!("reading the request body: {e}")),
    };
    let path = parts.uri.path().to_string();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };

    let gate = shared.with(|s| {
        s.log.push(RecordedRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            headers,
            body,
        });
        s.counters.total += 1;
        *s.counters.by_path.entry(path.clone()).or_default() += 1;
        if s.fail_next > 0 && MODEL_PATHS.contains(&path.as_str()) {
            s.fail_next -= 1;
            return Gate::Fail {
                status: 503,
                message: "fake failure (fail-next)".into(),
            };
        }
        match &s.mode {
            Mode::Down { status, message } => Gate::Fail {
                status: *status,
                message: message.clone(),
            },
            Mode::Hang => Gate::Hang,
            Mode::Slow { first_chunk_ms, .. } => Gate::Pass {
                first_delay: Duration::from_millis(*first_chunk_ms),
            },
            Mode::Normal | Mode::ErrorAfter { .. } | Mode::Malformed { .. } => Gate::Pass {
                first_delay: Duration::ZERO,
            },
        }
    });

    let openai = path.starts_with("/v1/");
    match gate {
        Gate::Fail { status, message } if openai => wire::openai_error(status, &message),
        Gate::Fail { status, message } => wire::ollama_error(status, &message),
        Gate::Hang => {
            shared.stopped().await;
            wire::ollama_error(503, "fake Ollama is shutting down")
        }
        Gate::Pass { first_delay } => {
            if !first_delay.is_zero() {
                tokio::time::sleep(first_delay).await;
            }
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}
