//! The state every handler shares: the engine, the database, the key cache, the limits
//! and the process's identity. Only the HTTP layer, the start-up wiring that builds it,
//! and `background` (which builds each task group's context from it) know this type.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::auth::KeyCache;
use crate::config::Settings;
use crate::db::Db;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::runtime::ServiceInfo;
use crate::shutdown::Shutdown;
use crate::workflows::Workflow;

/// Shared state of every handler: one `Arc`, so the several clones each request makes
/// (middleware, extractors) cost one atomic increment each, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct SharedState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub engine: Arc<Engine>,
    pub keys: Arc<KeyCache>,
    pub metrics: Arc<Metrics>,
    pub workflows: Arc<BTreeMap<String, Arc<Workflow>>>,
    pub info: Arc<ServiceInfo>,
    /// The per-key rate limit (in the database or in this process).
    pub limiter: Arc<crate::rate_limit::RateLimit>,
    /// The concurrency cap and each key's share of it.
    pub admission: Arc<crate::concurrency::Admission>,
    /// Drains when SIGTERM/SIGINT arrives (`/readyz` unavailable, connections closed after
    /// their response), then stops: the load shedder refuses new requests, event streams
    /// end, background tasks stop.
    pub shutdown: Shutdown,
    pub http: reqwest::Client,
    /// The job queue's wake-ups, cancel signals and callback egress guard.
    pub jobs: Arc<crate::jobs::JobQueue>,
    /// Wakes the eval worker when `POST /v1/evals/runs` queues a run.
    pub eval_wakeup: Arc<tokio::sync::Notify>,
}

impl AppState {
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }
}
