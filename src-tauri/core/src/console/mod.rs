//! The console's application layer: one async method per IPC command (named exactly as the
//! command, taking its argument DTO and answering its result DTO or a `CommandError`), the
//! Local profile's lifecycle, and the live data the UI receives as pushed events (a scrape
//! loop for the Overview, the relayed approval event stream, eval/smoke/pull progress,
//! freeze and permission changes). The Tauri layer holds one [`Console`] and an
//! [`EventSink`] over its window; tests hold one with a recording sink.
//!
//! This file holds the [`Console`] itself (its state, start and shutdown, and the plumbing
//! every command shares: the active profile's client, the permission guard, the action
//! log); the commands live in one file per feature: `profiles`, `settings`, `overview`,
//! `traces`, `approvals`, `evals`, `smoke`, `incident`, `desktop` and `releases`. `live/`
//! holds the background tasks that push events.

mod approvals;
mod desktop;
pub mod dto;
mod evals;
mod incident;
mod live;
pub mod map;
mod overview;
mod profiles;
mod quality;
mod receivers;
mod releases;
mod settings;
mod smoke;
mod traces;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::agent::AgentClient;
use crate::domain::{BaseUrl, ProfileId};
use crate::host::Host;
use crate::local::{LocalConfig, LocalService, ModelServer, Traffic, TrafficConfig};
use crate::releases::cluster::KubeconfigSource;
use crate::releases::{ReleaseOptions, ReleaseService};
use crate::series::{SeriesConfig, SeriesStore};
use crate::store::Target;
use dto::*;

pub use dto::CommandError;
pub use profiles::profile_id_for;

/// The id of the Local profile (the bundled agent-service).
pub const LOCAL_PROFILE_ID: &str = "local";

type CmdResult<T> = std::result::Result<T, CommandError>;

/// Where pushed events and desktop notifications go: the Tauri window in the app, a
/// recorder in tests.
pub trait EventSink: Send + Sync + 'static {
    /// `event` is an `EventMap` key (`approval_event`, `overview_event`, `eval_progress`,
    /// `smoke_progress`, `pull_progress`, `freeze_event`, `permissions_event`).
    fn emit(&self, event: &str, payload: serde_json::Value);
    /// A desktop notification (a new pending approval, the `notify` command).
    fn notify(&self, _title: &str, _body: &str) {}
}

/// How to start the console.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// `settings.json`, the Local profile's database, exports and incident packs.
    pub data_dir: PathBuf,
    /// The bundled agent-service; without it there is no Local profile.
    pub agent_binary: Option<PathBuf>,
    pub start_local: bool,
    /// Synthetic traffic against the Local profile, so a new user sees live numbers.
    pub traffic: bool,
    pub scrape_interval: Duration,
    /// The Ollama the Smoke tests view talks to.
    pub ollama_url: BaseUrl,
    /// An OpenAI-compatible model server for the Local service instead of detecting Ollama
    /// (also the Smoke tests view's proposal for that kind of server). From the app's
    /// environment ([`ModelServer::from_env`]); an error there (the variables are incomplete
    /// or invalid) is the Local profile's start-up error.
    pub model_server: std::result::Result<Option<ModelServer>, String>,
    /// Where exported reports and incident packs are written.
    pub export_dir: PathBuf,
    /// Where the Kubernetes profiles' contexts come from (default: `KUBECONFIG` or
    /// `~/.kube/config`).
    pub kubeconfig: KubeconfigSource,
    /// Timeouts and the actor of release actions. The analysis tick of canaries runs
    /// every `scrape_interval`.
    pub releases: ReleaseOptions,
}

impl ConsoleOptions {
    /// Defaults: no Local profile, 5 s scrapes, Ollama at `OLLAMA_BASE_URL` or
    /// `http://127.0.0.1:11434`, the model server of `AGENT_PROVIDER=openai` if set,
    /// exports in `data_dir/exports`.
    pub fn new(data_dir: PathBuf) -> Self {
        let ollama_url = std::env::var("OLLAMA_BASE_URL")
            .ok()
            .and_then(|u| BaseUrl::parse(&u).ok())
            .unwrap_or_else(|| {
                BaseUrl::parse("http://127.0.0.1:11434").expect("a valid constant URL")
            });
        Self {
            export_dir: data_dir.join("exports"),
            data_dir,
            agent_binary: None,
            start_local: false,
            traffic: false,
            scrape_interval: Duration::from_secs(5),
            ollama_url,
            model_server: ModelServer::from_env(|k| std::env::var(k).ok())
                .map_err(|e| e.to_string()),
            kubeconfig: KubeconfigSource::Default,
            releases: ReleaseOptions::default(),
        }
    }
}

/// What `settings.json` keeps (no secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Persisted {
    theme: Theme,
    retention_hours: f64,
    #[serde(default)]
    active_id: Option<String>,
    /// The OpenAI-compatible server the smoke suite checked last.
    #[serde(default)]
    model_server_url: Option<String>,
    /// The server the model-server key in the keyring belongs to (it is sent nowhere else).
    #[serde(default)]
    model_server_key_url: Option<String>,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            theme: Theme::Light,
            retention_hours: 72.0,
            active_id: None,
            model_server_url: None,
            model_server_key_url: None,
        }
    }
}

/// The running Local profile.
struct Local {
    service: LocalService,
    traffic: Option<Traffic>,
}

struct State {
    persisted: Persisted,
    overview_window: ChartWindow,
    /// Roles of the active profile's key, once read (`Err`: why they could not be).
    permissions: Option<Permissions>,
    /// Per profile: its track, the last versions seen and what changed, newest first.
    known: std::collections::HashMap<String, live::Known>,
    /// Per profile: the quality and spend counters of its scrapes, and what `/v1/info`
    /// last said about quality.
    quality: std::collections::HashMap<String, quality::Memory>,
    freeze: Option<FreezeState>,
    /// Per profile: the last approval event seen, to resume the stream after it.
    last_event: std::collections::HashMap<String, u64>,
    tasks: Vec<JoinHandle<()>>,
    stream_live: bool,
}

struct Inner {
    host: Host,
    sink: Arc<dyn EventSink>,
    options: ConsoleOptions,
    state: Mutex<State>,
    series: tokio::sync::Mutex<SeriesStore>,
    local: Mutex<Option<Local>>,
    local_error: Mutex<Option<CommandError>>,
    releases: releases::Releases,
}

/// The console's application layer; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("data_dir", &self.inner.options.data_dir)
            .field("active_id", &self.active_id())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> CommandError {
    CommandError::new(
        CommandErrorCode::Storage,
        format!("{what} {}: {e}", path.display()),
    )
}

/// Writes `bytes` to `path` through a temporary file, so a crash leaves the old or the new.
fn write_atomic(path: &Path, bytes: &[u8]) -> CmdResult<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io_error("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error("cannot replace", path, e))
}

impl Console {
    /// Opens the settings, starts the Local profile when asked (its failure is kept in
    /// [`Console::local_error`], not fatal: the other profiles still work) and the live
    /// tasks for the active profile.
    pub async fn start(
        host: Host,
        sink: Arc<dyn EventSink>,
        options: ConsoleOptions,
    ) -> CmdResult<Console> {
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|e| io_error("cannot create", &options.data_dir, e))?;
        let settings_path = options.data_dir.join("settings.json");
        let persisted = match std::fs::read(&settings_path) {
            Ok(raw) => serde_json::from_slice(&raw).map_err(|e| {
                CommandError::new(
                    CommandErrorCode::Storage,
                    format!(
                        "{} is not valid settings ({e}); fix or delete it",
                        settings_path.display()
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(e) => return Err(io_error("cannot read", &settings_path, e)),
        };
        let series = SeriesStore::new(SeriesConfig {
            scrape_interval: options.scrape_interval,
            ..SeriesConfig::default()
        });
        let release_service = ReleaseService::new(
            host.clone(),
            options.kubeconfig.clone(),
            options.releases.clone(),
        );
        let console = Console {
            inner: Arc::new(Inner {
                releases: releases::Releases::new(release_service, sink.clone()),
                host,
                sink,
                state: Mutex::new(State {
                    persisted,
                    overview_window: ChartWindow::M15,
                    permissions: None,
                    known: Default::default(),
                    quality: Default::default(),
                    freeze: None,
                    last_event: Default::default(),
                    tasks: Vec::new(),
                    stream_live: false,
                }),
                series: tokio::sync::Mutex::new(series),
                local: Mutex::new(None),
                local_error: Mutex::new(None),
                options,
            }),
        };
        let retention_ms = (console.get_settings().await?.retention_hours * 3_600_000.0) as i64;
        console
            .inner
            .host
            .store
            .prune(console.now_ms() - retention_ms)
            .await?;
        if console.inner.options.start_local
            && let Err(e) = console.start_local().await
        {
            tracing::warn!(error = %e.message, "the Local profile did not start");
            *lock(&console.inner.local_error) = Some(e);
        }
        // A remembered active profile that is gone falls back to Local or none.
        let active = console.active_id();
        let fallback = match &active {
            Some(id) if console.profile_exists(id).await? => active.clone(),
            _ => console.default_active().await?,
        };
        if fallback != active {
            lock(&console.inner.state).persisted.active_id = fallback;
            console.save_settings()?;
        }
        console.restart_live();
        console.sync_releases().await;
        console.start_release_tick();
        Ok(console)
    }

    async fn start_local(&self) -> CmdResult<()> {
        let binary = self.inner.options.agent_binary.clone().ok_or_else(|| {
            CommandError::new(
                CommandErrorCode::Process,
                "no bundled agent-service binary was given, so there is no Local profile",
            )
        })?;
        let model_server = self
            .inner
            .options
            .model_server
            .clone()
            .map_err(|e| CommandError::new(CommandErrorCode::Invalid, e))?;
        let config = LocalConfig {
            ollama_url: self.inner.options.ollama_url.clone(),
            model_server,
            ..LocalConfig::new(binary, self.inner.options.data_dir.join("local"))
        };
        let http = &self.inner.host.http;
        let service = LocalService::start(&config, http).await?;
        let traffic = if self.inner.options.traffic {
            let traffic = TrafficConfig::for_provider(service.provider());
            tracing::info!(provider = ?service.provider(), per_second = traffic.per_second,
                max_inflight = traffic.max_inflight, "synthetic traffic for the Local profile");
            Some(Traffic::start(service.client(http, "invoke")?, traffic)?)
        } else {
            None
        };
        *lock(&self.inner.local) = Some(Local { service, traffic });
        Ok(())
    }

    /// Why the Local profile is not running, when it was asked for and failed.
    pub fn local_error(&self) -> Option<CommandError> {
        lock(&self.inner.local_error).clone()
    }

    /// The Local profile's URL while it runs.
    pub fn local_url(&self) -> Option<String> {
        lock(&self.inner.local)
            .as_ref()
            .map(|l| l.service.url().to_string())
    }

    /// A client of the Local profile acting with the demo key of `role` (`invoke`,
    /// `viewer`, `approver`, `operator`, `admin`), for tools and tests; the key stays inside.
    pub fn local_client(&self, role: &str) -> CmdResult<AgentClient> {
        self.client_of_local(role)
    }

    fn client_of_local(&self, role: &str) -> CmdResult<AgentClient> {
        let local = lock(&self.inner.local);
        let l = local.as_ref().ok_or_else(|| {
            CommandError::new(
                CommandErrorCode::Unavailable,
                "the Local profile is not running; restart Flightdeck or pick another profile",
            )
        })?;
        Ok(l.service.client(&self.inner.host.http, role)?)
    }

    /// Whether the approval event stream of the active profile is connected.
    pub fn approval_stream_live(&self) -> bool {
        lock(&self.inner.state).stream_live
    }

    /// Stops the live tasks and the traffic, then the Local child (SIGTERM, then kill).
    pub async fn shutdown(&self) {
        for t in std::mem::take(&mut lock(&self.inner.state).tasks) {
            t.abort();
        }
        self.inner.releases.stop();
        let local = lock(&self.inner.local).take();
        if let Some(mut local) = local {
            drop(local.traffic.take());
            if let Err(e) = local.service.stop().await {
                tracing::warn!(error = %e, "the Local profile did not stop cleanly");
            }
        }
    }

    // --- helpers ---------------------------------------------------------------------

    fn emit<T: Serialize>(&self, event: &str, payload: &T) {
        match serde_json::to_value(payload) {
            Ok(v) => self.inner.sink.emit(event, v),
            Err(e) => tracing::error!(event, error = %e, "an event could not be encoded"),
        }
    }

    fn now_ms(&self) -> i64 {
        self.inner.host.clock.now_ms()
    }

    fn active_id(&self) -> Option<String> {
        lock(&self.inner.state).persisted.active_id.clone()
    }

    fn save_settings(&self) -> CmdResult<()> {
        let p = lock(&self.inner.state).persisted.clone();
        let raw = serde_json::to_vec_pretty(&p)
            .map_err(|e| CommandError::new(CommandErrorCode::Storage, e.to_string()))?;
        write_atomic(&self.inner.options.data_dir.join("settings.json"), &raw)
    }

    fn local_running(&self) -> bool {
        lock(&self.inner.local).is_some()
    }

    async fn profile_exists(&self, id: &str) -> CmdResult<bool> {
        if id == LOCAL_PROFILE_ID {
            return Ok(self.local_running());
        }
        let Ok(pid) = ProfileId::parse(id) else {
            return Ok(false);
        };
        Ok(self.inner.host.store.profile(&pid).await?.is_some())
    }

    async fn default_active(&self) -> CmdResult<Option<String>> {
        if self.local_running() {
            return Ok(Some(LOCAL_PROFILE_ID.into()));
        }
        Ok(self
            .inner
            .host
            .store
            .profiles()
            .await?
            .into_iter()
            .find(|p| matches!(p.target, Target::Agent { .. }))
            .map(|p| p.id.to_string()))
    }

    /// A client of `profile_id` acting with `role`'s key on Local (the profile's own key
    /// elsewhere).
    async fn client_of(&self, profile_id: &str, local_role: &str) -> CmdResult<AgentClient> {
        if profile_id == LOCAL_PROFILE_ID {
            return self.client_of_local(local_role);
        }
        let pid = ProfileId::parse(profile_id)?;
        if self.inner.host.store.profile(&pid).await?.is_none() {
            return Err(CommandError::not_found(format!("No profile {profile_id}")));
        }
        Ok(self.inner.host.agent_client(&pid).await?)
    }

    /// The active profile and a client with its key.
    async fn active(&self) -> CmdResult<(String, AgentClient)> {
        let id = self.active_id().ok_or_else(|| {
            CommandError::invalid("No connection: add an agent-service profile in Settings")
        })?;
        let client = self.client_of(&id, "admin").await?;
        Ok((id, client))
    }

    /// Refuses an action the active key's roles do not allow (as last read); the service
    /// enforces the same, this only answers sooner and says why.
    fn guard(&self, action: ActionId) -> CmdResult<()> {
        match &lock(&self.inner.state).permissions {
            // Roles that could not be read decide nothing: the service will.
            Some(p) if !p.roles.is_empty() => map::denied(p, action).map_or(Ok(()), Err),
            _ => Ok(()),
        }
    }

    /// Records an operator action in the local action log, with its outcome.
    async fn audited<T>(
        &self,
        action: &str,
        target: &str,
        run: impl std::future::Future<Output = crate::Result<T>>,
    ) -> CmdResult<T> {
        let actor = self.active_id().unwrap_or_else(|| "console".into());
        Ok(self.inner.host.audited(&actor, action, target, run).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only if every command's future is `Send` (Tauri's async commands need it).
    #[allow(dead_code, clippy::too_many_lines)]
    fn command_futures_are_send(c: &Console) {
        fn send<T: Send>(_: T) {}
        let id = || ProfileIdArgs {
            profile_id: "p".into(),
        };
        let reason = || IncidentArgs { reason: "r".into() };
        send(c.list_profiles());
        send(c.add_agent_profile(AddAgentProfileArgs {
            name: "n".into(),
            url: "http://x".into(),
            api_key: "k".into(),
        }));
        send(c.remove_profile(id()));
        send(c.set_active_profile(id()));
        send(c.keyring_status());
        send(c.get_permissions());
        send(c.get_settings());
        send(c.update_settings(Settings {
            theme: Theme::Light,
            retention_hours: 1.0,
        }));
        send(c.get_overview(OverviewArgs {
            window: ChartWindow::M5,
        }));
        send(c.get_charts(ChartArgs {
            profile_id: "p".into(),
            track: "stable".into(),
            window: ChartWindow::M5,
            theme: Theme::Light,
        }));
        send(c.list_workflows());
        send(c.list_traces(TraceQuery {
            errors_only: false,
            flagged_only: false,
            min_duration_ms: None,
            workflow: None,
            request_id: None,
            cursor: None,
            limit: 1,
        }));
        send(c.get_trace(TraceIdArgs {
            trace_id: "t".into(),
        }));
        send(c.list_approvals(ApprovalListArgs {
            view: ApprovalListView::Pending,
            cursor: None,
        }));
        send(c.get_approval(ApprovalIdArgs { id: "a".into() }));
        send(c.decide_approval(DecideArgs {
            id: "a".into(),
            decision: DecisionKind::Approve,
            reason: "r".into(),
        }));
        send(c.verify_audit());
        send(c.list_eval_suites());
        send(c.list_eval_runs());
        send(c.get_eval_run(EvalRunIdArgs { run_id: "r".into() }));
        send(c.start_eval(StartEvalArgs {
            suite: "golden".into(),
            baseline_run_id: None,
        }));
        send(c.eval_pass_rates());
        send(c.discover_ollama());
        send(c.list_models());
        send(c.pull_model(PullModelArgs { model: "m".into() }));
        send(c.discover_model_server(ModelServerArgs {
            url: None,
            api_key: None,
        }));
        send(c.run_smoke(RunSmokeArgs {
            model: "m".into(),
            through_agent: false,
            target: SmokeTarget::OpenaiCompatible,
            server_url: None,
            api_key: None,
        }));
        send(c.list_smoke_runs());
        send(c.get_smoke_report(SmokeRunIdArgs { id: "s".into() }));
        send(c.export_smoke_report(ExportSmokeArgs {
            id: "s".into(),
            format: ExportFormat::Json,
        }));
        send(c.get_freeze_state());
        send(c.incident_switch(reason()));
        send(c.unfreeze_writes(reason()));
        send(c.notify(NotifyArgs {
            title: "t".into(),
            body: "b".into(),
        }));
        {
            use crate::releases::dto as rd;
            let r = || rd::ReleaseRef {
                profile_id: "k".into(),
                namespace: "ns".into(),
                name: "app".into(),
            };
            let why = || rd::ReleaseReasonArgs {
                release: r(),
                reason: "r".into(),
            };
            send(c.list_kube_contexts());
            send(c.add_kube_profile(rd::AddKubeProfileArgs {
                name: "n".into(),
                context: "c".into(),
                namespace: "ns".into(),
                agent_profile_id: None,
            }));
            send(c.link_kube_profile(rd::LinkKubeProfileArgs {
                profile_id: "k".into(),
                agent_profile_id: None,
            }));
            send(c.list_releases());
            send(c.get_release(rd::ReleaseRefArgs { release: r() }));
            send(c.promote_release(rd::PromoteArgs {
                release: r(),
                full: false,
                reason: "r".into(),
            }));
            send(c.abort_release(why()));
            send(c.undo_release(rd::UndoArgs {
                release: r(),
                revision: 1,
                reason: "r".into(),
            }));
            send(c.pause_release(why()));
            send(c.resume_release(why()));
        }
        send(c.shutdown());
    }
}
