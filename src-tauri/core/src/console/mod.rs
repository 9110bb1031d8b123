//! The console's application layer: one async method per IPC command (named exactly as the
//! command, taking its argument DTO and answering its result DTO or a `CommandError`), the
//! Local profile's lifecycle, and the live data the UI receives as pushed events (a scrape
//! loop for the Overview, the relayed approval event stream, eval/smoke/pull progress,
//! freeze and permission changes). The Tauri layer holds one [`Console`] and an
//! [`EventSink`] over its window; tests hold one with a recording sink.

pub mod dto;
mod live;
pub mod map;
mod releases;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::agent::{AgentClient, Reason, StartEval, TraceQuery as WireTraceQuery};
use crate::domain::{BaseUrl, ProfileId, Secret};
use crate::host::Host;
use crate::local::{LocalConfig, LocalService, Traffic, TrafficConfig};
use crate::releases::cluster::KubeconfigSource;
use crate::releases::{ReleaseOptions, ReleaseService};
use crate::series::{SeriesConfig, SeriesStore};
use crate::smoke::ollama::OllamaClient;
use crate::smoke::{self, SmokeConfig, SmokeProgress};
use crate::store::Target;
use dto::*;

pub use dto::CommandError;

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
    /// `http://127.0.0.1:11434`, exports in `data_dir/exports`.
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
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            theme: Theme::Light,
            retention_hours: 72.0,
            active_id: None,
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

/// A profile id from a display name: lower case, `[a-z0-9_-]`, at most 64 characters.
pub fn profile_id_for(name: &str) -> Option<ProfileId> {
    let mut id = String::new();
    for c in name.trim().to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if !(c == '-' && id.ends_with('-')) {
            id.push(c);
        }
    }
    let id: String = id.trim_matches('-').chars().take(64).collect();
    ProfileId::parse(&id).ok()
}

/// A model name as Ollama accepts it (`llama3.2:3b`, `library/qwen2.5:0.5b`).
fn valid_model(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    let (base, tag) = name.split_once(':').unwrap_or((name, "latest"));
    !base.is_empty()
        && name.len() <= 200
        && base.starts_with(|c: char| c.is_ascii_alphanumeric())
        && base.chars().all(ok)
        && !tag.is_empty()
        && tag.chars().all(|c| ok(c) && c != '/')
}

/// An id that may become part of a file name.
fn file_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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
        let config = LocalConfig {
            ollama_url: self.inner.options.ollama_url.clone(),
            ..LocalConfig::new(binary, self.inner.options.data_dir.join("local"))
        };
        let http = &self.inner.host.http;
        let service = LocalService::start(&config, http).await?;
        let traffic = if self.inner.options.traffic {
            Some(Traffic::start(
                service.client(http, "invoke")?,
                TrafficConfig::default(),
            )?)
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

    // --- profiles and keyring ----------------------------------------------------------

    pub async fn list_profiles(&self) -> CmdResult<ProfileList> {
        let mut profiles = Vec::new();
        if let Some(url) = self.local_url() {
            profiles.push(Profile {
                id: LOCAL_PROFILE_ID.into(),
                name: "Local".into(),
                kind: ProfileKind::Agent,
                is_local: true,
                url: Some(url),
                context: None,
                namespace: None,
                has_secret: true,
                agent_profile_id: None,
            });
        }
        let stored = self.inner.host.store.profiles().await?;
        let ids: Vec<ProfileId> = stored.iter().map(|p| p.id.clone()).collect();
        let secrets = self.inner.host.secrets.clone();
        let has: Vec<bool> = tokio::task::spawn_blocking(move || {
            ids.iter()
                .map(|id| secrets.get(id).map(|s| s.is_some()))
                .collect::<crate::Result<Vec<_>>>()
        })
        .await
        .map_err(|e| {
            CommandError::new(
                CommandErrorCode::Keyring,
                format!("the keyring call did not finish: {e}"),
            )
        })??;
        let links = self.inner.host.store.agent_links().await?;
        for (p, has_secret) in stored.into_iter().zip(has) {
            let agent_profile_id = links.get(&p.id).map(ToString::to_string);
            let (kind, url, context, namespace) = match p.target {
                Target::Agent { url } => (ProfileKind::Agent, Some(url.to_string()), None, None),
                Target::Kubernetes { context, namespace } => (
                    ProfileKind::Kubernetes,
                    None,
                    Some(context),
                    Some(namespace),
                ),
            };
            profiles.push(Profile {
                id: p.id.to_string(),
                name: p.name,
                kind,
                is_local: false,
                url,
                context,
                namespace,
                has_secret,
                agent_profile_id,
            });
        }
        Ok(ProfileList {
            profiles,
            active_id: self.active_id(),
        })
    }

    pub async fn add_agent_profile(&self, args: AddAgentProfileArgs) -> CmdResult<Profile> {
        self.guard(ActionId::ManageProfiles)?;
        let name = args.name.trim();
        if name.is_empty() {
            return Err(CommandError::invalid("The profile needs a name"));
        }
        let url = BaseUrl::parse(&args.url)?;
        Secret::parse(&args.api_key)?;
        let id = profile_id_for(name).unwrap_or_else(ProfileId::generate);
        if id.as_str() == LOCAL_PROFILE_ID || self.profile_exists(id.as_str()).await? {
            return Err(CommandError::new(
                CommandErrorCode::Conflict,
                format!("A profile named {name} already exists"),
            ));
        }
        let host = &self.inner.host;
        let saved = self
            .audited(
                "add_profile",
                &format!("profile/{id}"),
                host.save_agent_profile(id, name, url.as_str(), Some(&args.api_key)),
            )
            .await?;
        if self.active_id().is_none() {
            lock(&self.inner.state).persisted.active_id = Some(saved.id.to_string());
            self.save_settings()?;
            self.restart_live();
            // Kubernetes profiles follow the active agent-service profile.
            self.sync_releases().await;
        }
        Ok(Profile {
            id: saved.id.to_string(),
            name: saved.name,
            kind: ProfileKind::Agent,
            is_local: false,
            url: Some(url.to_string()),
            context: None,
            namespace: None,
            has_secret: true,
            agent_profile_id: None,
        })
    }

    pub async fn remove_profile(&self, args: ProfileIdArgs) -> CmdResult<ProfileList> {
        self.guard(ActionId::ManageProfiles)?;
        if args.profile_id == LOCAL_PROFILE_ID {
            return Err(CommandError::invalid("The Local profile cannot be removed"));
        }
        let pid = ProfileId::parse(&args.profile_id)?;
        if !self.profile_exists(pid.as_str()).await? {
            return Err(CommandError::not_found(format!(
                "No profile {}",
                args.profile_id
            )));
        }
        self.audited(
            "remove_profile",
            &format!("profile/{pid}"),
            self.inner.host.remove_profile(&pid),
        )
        .await?;
        self.sync_releases().await;
        if self.active_id().as_deref() == Some(pid.as_str()) {
            let next = self.default_active().await?;
            lock(&self.inner.state).persisted.active_id = next;
            self.save_settings()?;
            self.restart_live();
        }
        self.list_profiles().await
    }

    pub async fn set_active_profile(&self, args: ProfileIdArgs) -> CmdResult<ProfileList> {
        if !self.profile_exists(&args.profile_id).await? {
            return Err(CommandError::not_found(format!(
                "No profile {}",
                args.profile_id
            )));
        }
        if self.active_id().as_deref() != Some(args.profile_id.as_str()) {
            lock(&self.inner.state).persisted.active_id = Some(args.profile_id.clone());
            self.save_settings()?;
            self.restart_live();
            // Kubernetes profiles follow the active agent-service profile.
            self.sync_releases().await;
        }
        self.list_profiles().await
    }

    pub async fn keyring_status(&self) -> CmdResult<KeyringStatus> {
        let backend = if cfg!(target_os = "macos") {
            "keychain"
        } else if cfg!(target_os = "windows") {
            "windows-credential"
        } else {
            "secret-service"
        };
        Ok(match self.inner.host.keyring_status().await {
            Ok(message) => KeyringStatus {
                available: true,
                backend: if message.contains("in-memory") {
                    "memory".into()
                } else {
                    backend.into()
                },
                message,
            },
            Err(e) => KeyringStatus {
                available: false,
                backend: backend.into(),
                message: e.to_string(),
            },
        })
    }

    /// Reads the active key's roles (`GET /v1/whoami`) and what they allow; pushes
    /// `permissions_event` when that changed.
    pub async fn get_permissions(&self) -> CmdResult<Permissions> {
        let perms = match self.active_id() {
            None => map::permissions(
                None,
                &[],
                Some("No connection: add an agent-service profile in Settings"),
            ),
            Some(id) => match self.client_of(&id, "admin").await {
                Err(e) => map::permissions(
                    Some(&id),
                    &[],
                    Some(&format!("The key's roles could not be read: {}", e.message)),
                ),
                Ok(client) => match client.whoami().await {
                    Ok(who) => map::permissions(Some(&id), &who.roles, None),
                    Err(e) => map::permissions(
                        Some(&id),
                        &[],
                        Some(&format!("The key's roles could not be read: {e}")),
                    ),
                },
            },
        };
        let changed = {
            let mut st = lock(&self.inner.state);
            // A profile switch while asking: answer, but do not cache for the wrong profile.
            if st.persisted.active_id == perms.profile_id {
                let changed = st.permissions.as_ref() != Some(&perms);
                st.permissions = Some(perms.clone());
                changed
            } else {
                false
            }
        };
        if changed {
            self.emit("permissions_event", &perms);
        }
        Ok(perms)
    }

    // --- settings ------------------------------------------------------------------------

    pub async fn get_settings(&self) -> CmdResult<Settings> {
        let p = &lock(&self.inner.state).persisted;
        Ok(Settings {
            theme: p.theme,
            retention_hours: p.retention_hours,
        })
    }

    /// Saves the settings; a shorter retention prunes older history at once.
    pub async fn update_settings(&self, args: Settings) -> CmdResult<Settings> {
        if !args.retention_hours.is_finite() || !(1.0..=24.0 * 90.0).contains(&args.retention_hours)
        {
            return Err(CommandError::invalid(
                "retention must be between 1 hour and 90 days",
            ));
        }
        {
            let mut st = lock(&self.inner.state);
            st.persisted.theme = args.theme;
            st.persisted.retention_hours = args.retention_hours;
        }
        self.save_settings()?;
        let before = self.now_ms() - (args.retention_hours * 3_600_000.0) as i64;
        self.inner.host.store.prune(before).await?;
        self.get_settings().await
    }

    // --- overview ------------------------------------------------------------------------

    /// A card per agent-service profile and track, the active profile's first (readiness,
    /// versions and freeze as the scrape loops last read them, at once for a profile not
    /// read yet; stats from the scraped series; an unreachable service is a card with
    /// `live: false` and its error); later `overview_event`s use `args.window`.
    pub async fn get_overview(&self, args: OverviewArgs) -> CmdResult<Overview> {
        lock(&self.inner.state).overview_window = args.window;
        self.overview(args.window, true).await
    }

    pub async fn get_charts(&self, args: ChartArgs) -> CmdResult<Vec<Chart>> {
        live::charts(self, &args).await
    }

    // --- traces --------------------------------------------------------------------------

    pub async fn list_workflows(&self) -> CmdResult<Vec<String>> {
        let (_, client) = self.active().await?;
        Ok(client
            .workflows()
            .await?
            .into_iter()
            .map(|w| w.name)
            .collect())
    }

    pub async fn list_traces(&self, args: TraceQuery) -> CmdResult<TracePage> {
        if !(1..=500).contains(&args.limit) {
            return Err(CommandError::invalid("limit must be 1-500"));
        }
        let nonblank =
            |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let (_, client) = self.active().await?;
        let page = client
            .traces(&WireTraceQuery {
                errors_only: args.errors_only,
                min_latency_ms: args.min_duration_ms,
                workflow: nonblank(args.workflow),
                request_id: nonblank(args.request_id),
                cursor: nonblank(args.cursor),
                limit: Some(args.limit),
                ..WireTraceQuery::default()
            })
            .await?;
        Ok(TracePage {
            items: page
                .items
                .iter()
                .map(map::trace_summary)
                .collect::<CmdResult<_>>()?,
            next_cursor: page.next_cursor,
            total: None,
        })
    }

    pub async fn get_trace(&self, args: TraceIdArgs) -> CmdResult<TraceDetail> {
        let (_, client) = self.active().await?;
        let t = client.trace(&args.trace_id).await?;
        Ok(TraceDetail {
            summary: map::trace_summary(&t.summary)?,
            spans: t.spans.iter().map(map::span).collect(),
        })
    }

    // --- approvals and audit ---------------------------------------------------------------

    pub async fn list_approvals(&self, args: ApprovalListArgs) -> CmdResult<ApprovalPage> {
        let (_, client) = self.active().await?;
        let status = match args.view {
            ApprovalListView::Pending => Some(crate::agent::ApprovalStatus::Pending),
            ApprovalListView::History => None,
        };
        let page = client
            .approvals(status, args.cursor.as_deref(), Some(100))
            .await?;
        let mut items = page
            .items
            .iter()
            .map(map::approval_summary)
            .collect::<CmdResult<Vec<_>>>()?;
        match args.view {
            ApprovalListView::Pending => items.sort_by_key(|a| a.expires_at_ms),
            ApprovalListView::History => {
                items.retain(|a| a.status != ApprovalStatus::Pending);
                items
                    .sort_by_key(|a| std::cmp::Reverse(a.decided_at_ms.unwrap_or(a.created_at_ms)));
            }
        }
        Ok(ApprovalPage {
            items,
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get_approval(&self, args: ApprovalIdArgs) -> CmdResult<ApprovalDetail> {
        let (_, client) = self.active().await?;
        map::approval_detail(&client.approval(&args.id).await?)
    }

    /// Approves or rejects with a required reason; the service executes an approved write,
    /// and the change reaches the UI as `approval_event`s from the live stream.
    pub async fn decide_approval(&self, args: DecideArgs) -> CmdResult<ApprovalDetail> {
        let (action, verb) = match args.decision {
            DecisionKind::Approve => (ActionId::Approve, "approve"),
            DecisionKind::Reject => (ActionId::Reject, "reject"),
        };
        self.guard(action)?;
        let reason = Reason::parse(&args.reason).map_err(|_| {
            CommandError::invalid(format!("A reason is required to {verb} {}", args.id))
        })?;
        let (_, client) = self.active().await?;
        let target = format!("approval/{}", args.id);
        // One idempotency key per decision, so a retried call cannot decide twice.
        let key = uuid::Uuid::new_v4().to_string();
        let decided = self
            .audited(verb, &target, async {
                match args.decision {
                    DecisionKind::Approve => client.approve(&args.id, &reason, Some(&key)).await,
                    DecisionKind::Reject => client.reject(&args.id, &reason, Some(&key)).await,
                }
            })
            .await?;
        map::approval_detail(&decided)
    }

    pub async fn verify_audit(&self) -> CmdResult<AuditStatus> {
        self.guard(ActionId::VerifyAudit)?;
        let (_, client) = self.active().await?;
        let v = self
            .audited("verify_audit", "audit", client.audit_verify())
            .await?;
        Ok(map::audit_status(&v, self.now_ms()))
    }

    // --- evals ---------------------------------------------------------------------------

    pub async fn list_eval_suites(&self) -> CmdResult<Vec<EvalSuite>> {
        let (_, client) = self.active().await?;
        client
            .eval_suites()
            .await?
            .iter()
            .map(map::eval_suite)
            .collect()
    }

    pub async fn list_eval_runs(&self) -> CmdResult<Vec<EvalRunSummary>> {
        let (_, client) = self.active().await?;
        Ok(client
            .eval_runs(None, None)
            .await?
            .items
            .iter()
            .map(map::eval_summary)
            .collect())
    }

    pub async fn get_eval_run(&self, args: EvalRunIdArgs) -> CmdResult<EvalRunDetail> {
        let (_, client) = self.active().await?;
        Ok(map::eval_detail(&client.eval_run(&args.run_id).await?))
    }

    /// Queues a run; `eval_progress` follows while it runs and once when it ends.
    pub async fn start_eval(&self, args: StartEvalArgs) -> CmdResult<EvalRunSummary> {
        self.guard(ActionId::StartEval)?;
        let suite = args.suite.trim();
        if suite.is_empty() {
            return Err(CommandError::invalid(
                "Name the suite to run: golden or adversarial",
            ));
        }
        let (_, client) = self.active().await?;
        let run = self
            .audited(
                "start_eval",
                &format!("eval/{suite}"),
                client.start_eval(&StartEval {
                    suite: suite.to_string(),
                    baseline_run_id: args.baseline_run_id.clone(),
                }),
            )
            .await?;
        let detail = map::eval_detail(&run);
        live::follow_eval(self, client, run.id.clone());
        Ok(detail.summary)
    }

    pub async fn eval_pass_rates(&self) -> CmdResult<Vec<PassRatePoint>> {
        Ok(map::pass_rates(&self.list_eval_runs().await?))
    }

    // --- smoke tests ---------------------------------------------------------------------

    fn ollama(&self, timeout: Duration) -> OllamaClient {
        OllamaClient::new(
            self.inner.host.http.clone(),
            self.inner.options.ollama_url.clone(),
            timeout,
        )
    }

    pub async fn discover_ollama(&self) -> CmdResult<OllamaStatus> {
        let url = self.inner.options.ollama_url.to_string();
        Ok(match self.ollama(Duration::from_secs(3)).version().await {
            Ok(v) => OllamaStatus {
                url,
                reachable: true,
                version: Some(v),
                error: None,
            },
            Err(e) => OllamaStatus {
                url,
                reachable: false,
                version: None,
                error: Some(format!(
                    "{e} (install Ollama and run `ollama serve`, or set OLLAMA_BASE_URL)"
                )),
            },
        })
    }

    pub async fn list_models(&self) -> CmdResult<Vec<OllamaModel>> {
        let ollama = self.ollama(Duration::from_secs(10));
        let mut out = Vec::new();
        for m in ollama.models().await? {
            let tools = ollama
                .capabilities(&m.name)
                .await
                .map(|c| c.iter().any(|c| c == "tools"))
                .unwrap_or(false);
            out.push(OllamaModel {
                name: m.name,
                size_bytes: m.size,
                family: m.details.family,
                parameter_size: m.details.parameter_size,
                quantization: m.details.quantization_level,
                supports_tools: tools,
                // `/api/tags` times are not read by the core's client yet.
                modified_at_ms: 0,
            });
        }
        Ok(out)
    }

    /// Pulls a model, pushing `pull_progress` for every status line.
    pub async fn pull_model(&self, args: PullModelArgs) -> CmdResult<OllamaModel> {
        self.guard(ActionId::PullModel)?;
        let name = args.model.trim().to_string();
        if !valid_model(&name) {
            return Err(CommandError::invalid(format!(
                "{:?} is not a model name (e.g. llama3.2:3b)",
                args.model
            )));
        }
        let ollama = self.ollama(Duration::from_secs(3600));
        let this = self.clone();
        let model = name.clone();
        let mut on_progress = move |p: crate::smoke::ollama::PullProgress| {
            this.emit(
                "pull_progress",
                &PullProgressEvent {
                    model: model.clone(),
                    status: p.status,
                    completed_bytes: p.completed,
                    total_bytes: p.total,
                },
            );
        };
        self.audited(
            "pull_model",
            &format!("model/{name}"),
            ollama.pull(&name, &mut on_progress),
        )
        .await?;
        let canonical = crate::smoke::ollama::canonical_model(&name);
        self.list_models()
            .await?
            .into_iter()
            .find(|m| crate::smoke::ollama::canonical_model(&m.name) == canonical)
            .ok_or_else(|| {
                CommandError::new(
                    CommandErrorCode::Protocol,
                    format!("Ollama reported {name} pulled but does not list it"),
                )
            })
    }

    /// Runs the smoke suite (pushing `smoke_progress`), stores and returns the report.
    pub async fn run_smoke(&self, args: RunSmokeArgs) -> CmdResult<SmokeReport> {
        self.guard(ActionId::RunSmoke)?;
        let mut config = SmokeConfig::new(self.inner.options.ollama_url.clone(), &args.model)?;
        if args.through_agent {
            let id = self.active_id().ok_or_else(|| {
                CommandError::invalid(
                    "The agent-service checks need a connection: add or pick a profile",
                )
            })?;
            config.agent = Some(self.client_of(&id, "invoke").await?);
        }
        let this = self.clone();
        let progress = move |p: SmokeProgress| match p {
            SmokeProgress::CheckStarted { name, index, total } => {
                let title = smoke::CHECKS
                    .iter()
                    .find(|(id, _)| *id == name)
                    .map_or_else(|| name.clone(), |(_, t)| (*t).to_string());
                this.emit(
                    "smoke_progress",
                    &SmokeProgressEvent::CheckStarted {
                        name,
                        title,
                        index: index as u64,
                        total: total as u64,
                    },
                );
            }
            SmokeProgress::CheckFinished { result } => this.emit(
                "smoke_progress",
                &SmokeProgressEvent::CheckFinished {
                    result: map::check_result(&result),
                },
            ),
            SmokeProgress::Pull { progress } => this.emit(
                "pull_progress",
                &PullProgressEvent {
                    model: args.model.clone(),
                    status: progress.status,
                    completed_bytes: progress.completed,
                    total_bytes: progress.total,
                },
            ),
        };
        let host = &self.inner.host;
        let report = smoke::run(&config, host.http.clone(), host.clock.as_ref(), &progress).await;
        self.audited(
            "run_smoke",
            &format!("smoke/{}", report.id),
            host.store.save_smoke_report(&report),
        )
        .await?;
        Ok(map::smoke_report(&report))
    }

    pub async fn list_smoke_runs(&self) -> CmdResult<Vec<SmokeRunSummary>> {
        Ok(self
            .inner
            .host
            .store
            .smoke_runs(200)
            .await?
            .into_iter()
            .map(|r| SmokeRunSummary {
                id: r.id,
                model: r.model,
                started_at_ms: r.started_at_ms,
                passed: r.passed,
                failed: r.failed,
                skipped: r.skipped,
            })
            .collect())
    }

    async fn stored_report(&self, id: &str) -> CmdResult<crate::smoke::SmokeReport> {
        self.inner
            .host
            .store
            .smoke_report(id)
            .await?
            .ok_or_else(|| CommandError::not_found(format!("smoke run {id} not found")))
    }

    pub async fn get_smoke_report(&self, args: SmokeRunIdArgs) -> CmdResult<SmokeReport> {
        Ok(map::smoke_report(&self.stored_report(&args.id).await?))
    }

    /// Writes a stored report as Markdown or JSON into the export directory.
    pub async fn export_smoke_report(&self, args: ExportSmokeArgs) -> CmdResult<ExportedFile> {
        if !file_safe(&args.id) {
            return Err(CommandError::invalid(format!(
                "smoke run id {:?} is not valid",
                args.id
            )));
        }
        let report = self.stored_report(&args.id).await?;
        let (text, ext) = match args.format {
            ExportFormat::Markdown => (report.to_markdown(), "md"),
            ExportFormat::Json => (report.to_json(), "json"),
        };
        let path = self
            .inner
            .options
            .export_dir
            .join(format!("flightdeck-smoke-{}.{ext}", args.id));
        write_atomic(&path, text.as_bytes())?;
        Ok(ExportedFile {
            path: path.display().to_string(),
            bytes: text.len() as u64,
        })
    }

    // --- incident switch -----------------------------------------------------------------

    pub async fn get_freeze_state(&self) -> CmdResult<FreezeState> {
        let (_, client) = self.active().await?;
        let f = map::freeze_state(&client.freeze_state().await?);
        self.freeze_seen(&f);
        Ok(f)
    }

    /// Pushes `freeze_event` when the freeze state differs from the last one seen.
    fn freeze_seen(&self, f: &FreezeState) {
        let changed = {
            let mut st = lock(&self.inner.state);
            let changed = st.freeze.as_ref() != Some(f);
            st.freeze = Some(f.clone());
            changed
        };
        if changed {
            self.emit("freeze_event", f);
        }
    }

    /// Freezes writes on the active service, pauses the canaries in progress of the
    /// Kubernetes profiles linked to it (`rollouts_paused`, reason = the incident's) and
    /// writes an incident pack (the freeze, versions, recent failing traces, the metrics
    /// and the series' window stats).
    pub async fn incident_switch(&self, args: IncidentArgs) -> CmdResult<IncidentResult> {
        self.guard(ActionId::IncidentSwitch)?;
        let reason = Reason::parse(&args.reason)
            .map_err(|_| CommandError::invalid("A reason is required for the incident switch"))?;
        let (id, client) = self.active().await?;
        let frozen = self
            .audited("freeze", &format!("service/{id}"), client.freeze(&reason))
            .await?;
        let freeze = map::freeze_state(&frozen);
        self.freeze_seen(&freeze);
        let rollouts_paused = self.pause_linked_rollouts(&id, reason.as_str()).await;
        let pack_path = live::incident_pack(self, &id, &client, &freeze, reason.as_str()).await?;
        Ok(IncidentResult {
            freeze,
            rollouts_paused,
            pack_path,
        })
    }

    pub async fn unfreeze_writes(&self, args: IncidentArgs) -> CmdResult<FreezeState> {
        self.guard(ActionId::UnfreezeWrites)?;
        let reason = Reason::parse(&args.reason)
            .map_err(|_| CommandError::invalid("A reason is required to unfreeze writes"))?;
        let (id, client) = self.active().await?;
        let f = self
            .audited(
                "unfreeze",
                &format!("service/{id}"),
                client.unfreeze(&reason),
            )
            .await?;
        let f = map::freeze_state(&f);
        self.freeze_seen(&f);
        Ok(f)
    }

    // --- desktop integration -----------------------------------------------------------

    /// Shows a desktop notification through the sink.
    pub async fn notify(&self, args: NotifyArgs) -> CmdResult<()> {
        let title = args.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(CommandError::invalid(
                "a notification needs a title of 1-200 characters",
            ));
        }
        if args.body.chars().count() > 2000 {
            return Err(CommandError::invalid(
                "a notification body is at most 2000 characters",
            ));
        }
        self.inner.sink.notify(title, &args.body);
        Ok(())
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
        send(c.run_smoke(RunSmokeArgs {
            model: "m".into(),
            through_agent: false,
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

    #[test]
    fn profile_ids_come_from_names() {
        let cases = [
            ("Production EU", Some("production-eu")),
            ("  staging/2 ", Some("staging-2")),
            ("prod_eu", Some("prod_eu")),
            ("Ünïcode", Some("n-code")),
            ("!!!", None),
        ];
        for (name, want) in cases {
            assert_eq!(
                profile_id_for(name).map(|p| p.to_string()).as_deref(),
                want,
                "{name}"
            );
        }
        assert_eq!(profile_id_for(&"a".repeat(100)).unwrap().as_str().len(), 64);
    }

    #[test]
    fn model_names() {
        for ok in ["llama3.2:3b", "gemma2", "library/qwen2.5:0.5b-instruct"] {
            assert!(valid_model(ok), "{ok}");
        }
        for bad in ["", ":3b", "llama 3", "llama3:", "-x", "a:b/c", "x;rm"] {
            assert!(!valid_model(bad), "{bad}");
        }
    }

    #[test]
    fn file_safe_ids() {
        assert!(file_safe("smoke_0190abc"));
        for bad in ["", "../etc", "a/b", "a b", &"x".repeat(101)] {
            assert!(!file_safe(bad), "{bad}");
        }
    }

    #[test]
    fn add_profile_args_never_print_the_key() {
        let a = AddAgentProfileArgs {
            name: "prod".into(),
            url: "https://x".into(),
            api_key: "fdk_live_secret".into(),
        };
        let shown = format!("{a:?}");
        assert!(!shown.contains("fdk_live_secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
