//! Building and running the HTTP application: opening the database, building the runtime
//! and the handlers' state, binding, starting the background tasks, and graceful shutdown.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use governor::{Quota, RateLimiter};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::auth::KeyCache;
use crate::config::Settings;
use crate::db::Db;
use crate::guardrails::Policy;
use crate::metrics::Metrics;
use crate::routes::{self, AppState, SharedState};
use crate::runtime::{self, Runtime};
use crate::shutdown::{Shutdown, Stop};

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
        let db = Db::open(&settings.database).await?;
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
        let rpm = NonZeroU32::new(settings.limits.rate_limit_rpm)
            .context("RATE_LIMIT_RPM must be > 0")?;
        let state = AppState::new(SharedState {
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
            shed: Arc::new(Semaphore::new(settings.limits.max_concurrency as usize)),
            shutdown,
            http,
            jobs: Arc::new(
                crate::jobs::JobQueue::new(&settings.tools.egress_allowlist)
                    .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?,
            ),
            eval_wakeup: Arc::new(tokio::sync::Notify::new()),
        });
        let router = routes::router(state.clone());
        let listener = TcpListener::bind(settings.server.bind_addr)
            .await
            .with_context(|| format!("cannot listen on BIND_ADDR {}", settings.server.bind_addr))?;
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
        let grace = Duration::from_secs(state.settings.server.shutdown_grace_secs);
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
