//! Building and running the HTTP application: state wiring, the router and its layers,
//! background tasks, and graceful shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::auth::KeyCache;
use crate::config::Settings;
use crate::db::Db;
use crate::engine::Engine;
use crate::guardrails::Policy;
use crate::metrics::Metrics;
use crate::runtime::{self, Runtime, ServiceInfo};
use crate::shutdown::{Shutdown, Stop};
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
    pub limiter: Arc<DefaultKeyedRateLimiter<String>>,
    pub shed: Arc<Semaphore>,
    /// Starts when SIGTERM/SIGINT arrives: the load shedder refuses new requests, event
    /// streams end, background tasks stop.
    pub shutdown: Shutdown,
    pub http: reqwest::Client,
    /// The job queue's wake-ups, cancel signals and callback egress guard.
    pub jobs: Arc<crate::jobs::JobQueue>,
    /// Wakes the eval worker when `POST /v1/evals/runs` queues a run.
    pub eval_wakeup: Arc<tokio::sync::Notify>,
}

pub struct Application {
    stop: Stop,
    listener: TcpListener,
    port: u16,
    state: AppState,
    router: Router,
}

impl Application {
    /// Connects and migrates the database, loads the policy, wires everything, binds.
    pub async fn build(settings: Settings, policy: Policy) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let db = Db::open(&settings).await?;
        let metrics = Arc::new(Metrics::new());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        let Runtime {
            engine,
            info,
            workflows: wf_list,
        } = runtime::build_runtime(
            settings.clone(),
            Arc::new(policy),
            db.clone(),
            metrics.clone(),
            http.clone(),
        )
        .await?;
        // `release_changed` in the system audit chain when this release differs from the last.
        let release = crate::db::audit::ReleaseFingerprint {
            version: info.version.clone(),
            git_sha: info.git_sha.clone(),
            track: info.track.clone(),
            prompt_version: info.prompt_version.clone(),
            policy_version: info.policy_version.clone(),
            policy_hash: info.policy_hash.clone(),
            config_hash: info.config_hash.clone(),
        };
        crate::db::audit::record_release(&db, &release, engine.clock.now().timestamp_millis())
            .await
            .context("recording the release in the audit log")?;
        let engine = Arc::new(engine);
        let (stop, shutdown) = Shutdown::new();
        let rpm = NonZeroU32::new(settings.rate_limit_rpm).context("RATE_LIMIT_RPM must be > 0")?;
        let state = AppState(Arc::new(SharedState {
            settings: settings.clone(),
            db,
            engine,
            keys: Arc::new(KeyCache::default()),
            metrics,
            workflows: Arc::new(
                wf_list
                    .into_iter()
                    .map(|w| (w.name.to_string(), Arc::new(w)))
                    .collect(),
            ),
            info: Arc::new(info),
            limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(rpm))),
            shed: Arc::new(Semaphore::new(settings.max_concurrency as usize)),
            shutdown,
            http,
            jobs: Arc::new(
                crate::jobs::JobQueue::new(&settings.egress_allowlist)
                    .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?,
            ),
            eval_wakeup: Arc::new(tokio::sync::Notify::new()),
        }));
        let router = router(state.clone());
        let listener = TcpListener::bind(settings.bind_addr)
            .await
            .with_context(|| format!("cannot listen on BIND_ADDR {}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            stop,
            listener,
            port,
            state,
            router,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGTERM/SIGINT, then drains in-flight requests for up to the grace
    /// period, flushes usage and closes the database.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            stop,
            listener,
            state,
            router,
            ..
        } = self;
        let tasks = crate::background::spawn_all(&state);
        tracing::info!(addr = %listener.local_addr()?, "agent-service listening");
        let stop = Arc::new(stop);
        let server = axum::serve(listener, router).with_graceful_shutdown({
            let stop = stop.clone();
            async move {
                shutdown_signal().await;
                tracing::info!(
                    "shutdown signal received: no new connections, draining in-flight requests"
                );
                stop.stop();
            }
        });
        let grace = Duration::from_secs(state.settings.shutdown_grace_secs);
        let stopping = stop.subscribe();
        tokio::select! {
            r = server => r.context("the HTTP server failed")?,
            _ = async {
                stopping.wait().await;
                tokio::time::sleep(grace).await;
            } => tracing::warn!(grace_secs = grace.as_secs(), "grace period over; exiting with requests still in flight"),
        }
        stop.stop();
        for task in tasks {
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!("a background task did not stop within the grace period");
            }
        }
        state.db.close().await;
        tracing::info!("agent-service stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn router(state: AppState) -> Router {
    use crate::routes;
    use axum::middleware::{from_fn, from_fn_with_state};
    use axum::routing::{get, post};

    let api = Router::new()
        .route("/v1/info", get(routes::info::info))
        .route("/v1/whoami", get(routes::info::whoami))
        .route("/v1/tools", get(routes::info::tools))
        .route("/v1/workflows", get(routes::info::workflows))
        .route("/v1/invoke", post(routes::invoke::invoke))
        .route("/v1/invoke/stream", post(routes::invoke::invoke_stream))
        .route("/v1/approvals", get(routes::approvals::list))
        .route("/v1/approvals/events", get(routes::approvals::events))
        .route("/v1/approvals/cancel", post(routes::approvals::cancel))
        .route("/v1/approvals/{id}", get(routes::approvals::get_one))
        .route(
            "/v1/approvals/{id}/approve",
            post(routes::approvals::approve),
        )
        .route("/v1/approvals/{id}/reject", post(routes::approvals::reject))
        .route("/v1/audit", get(routes::audit::list))
        .route("/v1/audit/verify", get(routes::audit::verify))
        .route(
            "/v1/admin/freeze",
            get(routes::admin::freeze_state).post(routes::admin::freeze),
        )
        .route("/v1/admin/unfreeze", post(routes::admin::unfreeze))
        .route("/v1/traces", get(routes::traces::list))
        .route("/v1/traces/{id}", get(routes::traces::get_one))
        .route(
            "/v1/jobs",
            post(routes::jobs::create).get(routes::jobs::list),
        )
        .route("/v1/jobs/{id}", get(routes::jobs::get_one))
        .route("/v1/jobs/{id}/cancel", post(routes::jobs::cancel))
        .route("/v1/evals/suites", get(routes::evals::suites))
        .route(
            "/v1/evals/runs",
            post(routes::evals::create_run).get(routes::evals::list_runs),
        )
        .route("/v1/evals/runs/{id}", get(routes::evals::get_run))
        .route(
            "/v1/evals/runs/{id}/report.md",
            get(routes::evals::report_markdown),
        )
        .route(
            "/v1/evals/runs/{id}/report.xml",
            get(routes::evals::report_junit),
        )
        .layer(from_fn_with_state(state.clone(), crate::limits::shed));

    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route("/openapi.json", get(routes::info::openapi))
        .route("/.well-known/agent.json", get(routes::info::agent_card))
        .merge(api)
        .fallback(routes::fallback)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            routes::panic_response,
        ))
        .layer(from_fn(crate::request_id::middleware))
        .with_state(state)
}
