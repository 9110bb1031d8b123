//! Building and running the HTTP application: opening the database, building the runtime
//! and the handlers' state, binding, starting the background tasks, serving (our own
//! accept loop over hyper, `serve`; each connection's transport, `connection`), and the
//! shutdown: drain window, then graceful stop.

mod connection;
mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::auth::KeyCache;
use crate::concurrency::Admission;
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
        let limiter = Arc::new(crate::rate_limit::RateLimit::new(
            &settings.limits,
            &db,
            &settings.database.database_url,
        ));
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
            limiter,
            admission: Arc::new(Admission::new(
                settings.limits.max_concurrency,
                settings.limits.max_key_concurrency_percent,
            )),
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

    /// Serves until SIGTERM/SIGINT, then: the drain window (`SHUTDOWN_DRAIN_SECS`:
    /// `/readyz` unavailable, still accepting, `Connection: close` on every response), then
    /// stops accepting and drains in-flight requests for up to `SHUTDOWN_GRACE_SECS`, stops
    /// the background tasks (held jobs go back to the queue), flushes usage and closes the
    /// database.
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
        let server = &state.settings.server;
        let deadlines = connection::Deadlines {
            header: Duration::from_secs(server.header_read_timeout_secs),
            keep_alive: Duration::from_secs(server.keep_alive_timeout_secs),
        };
        let drain = Duration::from_secs(server.shutdown_drain_secs);
        let grace = Duration::from_secs(server.shutdown_grace_secs);
        let graceful = GracefulShutdown::new();
        let signalled = async {
            shutdown_signal().await;
            tracing::info!(
                drain_secs = drain.as_secs(),
                "shutdown signal received: readiness is off; still accepting for the drain window, closing connections after their responses"
            );
            stop.drain();
            tokio::time::sleep(drain).await;
            tracing::info!("drain window over: no new connections, draining in-flight requests");
            stop.stop();
        };
        tokio::join!(
            serve::accept_until_stopped(
                &listener,
                router,
                deadlines,
                state.shutdown.clone(),
                &graceful,
            ),
            signalled,
        );
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "grace period over; exiting with requests still in flight"
            );
        }
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
