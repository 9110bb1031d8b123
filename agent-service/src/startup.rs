//! Building and running the HTTP application: state wiring, the router and its layers,
//! background tasks, and graceful shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::auth::KeyCache;
use crate::budget::UsageLedger;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::db::{Db, approvals};
use crate::engine::Engine;
use crate::guardrails::Policy;
use crate::metrics::{BuildLabels, Metrics};
use crate::tools::Registry;
use crate::workflows::{self, Workflow};

/// Versions and hashes this process runs with (`/v1/info`, `agent_build_info`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceInfo {
    pub version: String,
    pub git_sha: String,
    pub track: String,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    pub tool_schema_hash: String,
    pub policy_version: String,
    pub policy_hash: String,
    pub config_hash: String,
}

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
    pub shutting_down: Arc<AtomicBool>,
    /// Flips to `true` when shutdown starts; background tasks watch it.
    pub shutdown: watch::Receiver<bool>,
    pub http: reqwest::Client,
    /// The job queue's wake-ups, cancel signals and callback egress guard.
    pub jobs: Arc<crate::jobs::JobQueue>,
    /// Wakes the eval worker when `POST /v1/evals/runs` queues a run.
    pub eval_wakeup: Arc<tokio::sync::Notify>,
}

pub struct Application {
    shutdown_tx: watch::Sender<bool>,
    listener: TcpListener,
    port: u16,
    state: AppState,
    router: Router,
}

fn hash16(text: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
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
        } = build_runtime(
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
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
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
            shutting_down: Arc::new(AtomicBool::new(false)),
            shutdown: shutdown_rx,
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
            shutdown_tx,
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
            shutdown_tx,
            listener,
            state,
            router,
            ..
        } = self;
        let flag = state.shutting_down.clone();
        let tasks = crate::background::spawn_all(&state);
        tracing::info!(addr = %listener.local_addr()?, "agent-service listening");
        let stop_tx = shutdown_tx.clone();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            shutdown_signal().await;
            flag.store(true, Ordering::SeqCst);
            tracing::info!(
                "shutdown signal received: no new connections, draining in-flight requests"
            );
            let _ = stop_tx.send(true);
        });
        let grace = Duration::from_secs(state.settings.shutdown_grace_secs);
        let mut stop_rx = shutdown_tx.subscribe();
        tokio::select! {
            r = server => r.context("the HTTP server failed")?,
            _ = async {
                let _ = stop_rx.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => tracing::warn!(grace_secs = grace.as_secs(), "grace period over; exiting with requests still in flight"),
        }
        let _ = shutdown_tx.send(true);
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

/// What a process needs to run workflows, with or without HTTP in front (the server, the
/// job workers and `eval run` all use it).
pub struct Runtime {
    pub engine: Engine,
    pub info: ServiceInfo,
    pub workflows: Vec<Workflow>,
}

/// Builds the engine and the version info from config over an open database.
pub async fn build_runtime(
    settings: Arc<Settings>,
    policy: Arc<Policy>,
    db: Db,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
) -> anyhow::Result<Runtime> {
    let provider = crate::providers::from_settings(&settings, http, metrics.clone());
    let tools = Arc::new(
        Registry::new(&settings).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?,
    );
    let workflows = workflows::configured(&settings)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let prompt_version = workflows::prompt_set_version(&workflows);
    let git_sha = env!("AGENT_GIT_SHA").to_string();
    let config_hash = hash16(
        &settings
            .describe()
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>(),
    );
    let info = ServiceInfo {
        version: settings.release_version.clone(),
        git_sha: git_sha.clone(),
        track: settings.release_track.as_str().into(),
        provider: provider.kind().into(),
        model: provider.model().into(),
        prompt_version: prompt_version.clone(),
        tool_schema_hash: tools.schema_hash(),
        policy_version: policy.version.to_string(),
        policy_hash: policy.hash(),
        config_hash,
    };
    metrics
        .build_info
        .get_or_create(&BuildLabels {
            version: info.version.clone(),
            git_sha: info.git_sha.clone(),
            track: info.track.clone(),
            model: info.model.clone(),
            prompt_version,
            policy_version: info.policy_version.clone(),
        })
        .set(1);
    metrics.set_circuit("provider", crate::metrics::CIRCUIT_CLOSED);
    metrics
        .approvals_pending
        .set(approvals::count_pending(&db).await.unwrap_or(0));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let approval_queue = Arc::new(crate::approvals::ApprovalQueue::new(
        db.clone(),
        tools.clone(),
        metrics.clone(),
        clock.clone(),
        policy.redactor.clone(),
        policy.version.to_string(),
    ));
    let ledger = Arc::new(UsageLedger::new(db.clone()));
    let traces = crate::traces::TraceSink::with_sampling(
        crate::traces::CHANNEL_CAPACITY,
        settings.trace_sample_rate,
        metrics.traces_dropped.clone(),
        metrics.traces_sampled_out.clone(),
    );
    let engine = Engine {
        settings,
        db,
        provider,
        tools,
        policy,
        metrics,
        ledger,
        clock,
        release: approvals::Release {
            version: info.version.clone(),
            git_sha,
            track: info.track.clone(),
        },
        traces,
        approvals: approval_queue,
    };
    Ok(Runtime {
        engine,
        info,
        workflows,
    })
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
