//! Shared test kit for every test of the project: the wire-faithful fake Ollama server
//! ([`FakeOllama`]), usable in-process or as the `fake-ollama` binary driven over HTTP;
//! the wire-faithful fake Kubernetes API server ([`FakeKube`], also the `fake-kube` binary);
//! [`AgentService`], the real agent-service binary spawned on a fresh SQLite or PostgreSQL
//! database — the one spawn helper of agent-service's API tests and of the console core's
//! tests; and [`LlamaServer`], a real model (llama.cpp's server with SmolLM2-135M) for the
//! real-model tests.

pub mod agent;
pub mod fake_kube;
pub mod fake_ollama;
pub mod llama;
pub mod serve;

pub use agent::{AgentService, Backend};
pub use fake_kube::{FakeKube, KubeconfigOpts};
pub use llama::{LlamaOptions, LlamaServer};

pub use fake_ollama::{
    Counters, FakeModel, FakeOllama, FakeToolCall, FakeUsage, Mode, RecordedRequest, Reply,
};
