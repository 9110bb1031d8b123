//! Timeout, bounded jittered retries and a circuit breaker around a [`ChatModel`].
//! INTERFACE STUB — being implemented; signatures are the contract.

use std::sync::Arc;

use serde::Serialize;

use super::{ChatModel, ChatRequest, ChatResponse, ProviderError, TokenSink};
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone)]
pub struct ResilienceConfig {
    pub timeout: std::time::Duration,
    pub max_retries: u32,
    pub failure_threshold: u32,
    pub open_for: std::time::Duration,
}

impl ResilienceConfig {
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        Self {
            timeout: std::time::Duration::from_secs(s.provider_timeout_secs),
            max_retries: s.provider_max_retries,
            failure_threshold: s.circuit_failure_threshold,
            open_for: std::time::Duration::from_secs(s.circuit_open_secs),
        }
    }
}

#[derive(Clone)]
pub struct Provider {
    model: Arc<dyn ChatModel>,
}

impl Provider {
    pub fn new(model: Arc<dyn ChatModel>, _cfg: ResilienceConfig, _metrics: Arc<Metrics>) -> Self {
        Self { model }
    }
    pub fn kind(&self) -> &'static str {
        self.model.kind()
    }
    pub fn model(&self) -> &str {
        self.model.model()
    }
    pub fn circuit_state(&self) -> CircuitState {
        unimplemented!()
    }
    pub async fn chat(&self, _req: &ChatRequest, _sink: Option<&TokenSink>) -> Result<ChatResponse, ProviderError> {
        unimplemented!()
    }
    pub async fn health(&self) -> Result<(), ProviderError> {
        unimplemented!()
    }
}
