//! Releases on Kubernetes (SPEC 3.3 item 4, 3.4): every canary across the connected
//! clusters, its analysis against stable, and the operator's actions on it — promote (a
//! step or in full), abort, undo, pause, resume — each checked with a
//! SelfSubjectAccessReview first, recorded in the local action log and as a Kubernetes
//! Event, and written with resourceVersion preconditions so a concurrent change is never
//! overwritten. [`ReleaseService`] is the facade the command layer calls; its methods are
//! named like the IPC commands of the releases contract.

mod actions;
pub mod analysis;
pub mod argo;
pub mod cluster;
pub mod dto;
mod measure;
pub mod state;

pub use actions::merge_diff;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Event;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};

use self::analysis::TickHistory;
use self::cluster::{KubeconfigSource, call};
use self::dto::*;
use self::state::{
    ABORTED, APP_LABEL, PAUSED, PAUSED_REASON, Plan, STEP, TRACK_LABEL, annotation, canary_name,
};
use crate::domain::ProfileId;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::store::{Profile, Target};

/// Timeouts, limits and the operator's name.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    /// An unreachable cluster fails within this (plus DNS).
    pub connect_timeout: Duration,
    /// Every single API call.
    pub request_timeout: Duration,
    /// Waiting for replicas to become ready after an action.
    pub rollout_timeout: Duration,
    pub poll_interval: Duration,
    /// A metric fails after more than this many out-of-bounds intervals.
    pub failure_limit: u32,
    /// Inconclusive analysis pauses a canary with traffic after this many intervals.
    pub inconclusive_pause_after: usize,
    /// 409 answers retried on fresh state before giving up.
    pub conflict_retries: u32,
    /// Who acts, as recorded in the action log and the Kubernetes Events.
    pub actor: String,
}

impl Default for ReleaseOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            rollout_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(500),
            failure_limit: 2,
            inconclusive_pause_after: 5,
            conflict_retries: 3,
            actor: std::env::var("USER").unwrap_or_else(|_| "operator".into()),
        }
    }
}

/// Receives progress of long actions (the console emits `release_progress`).
pub type ProgressSink = Arc<dyn Fn(ReleaseProgressEvent) + Send + Sync>;
/// A watch-driven change of one release.
#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseChange {
    /// New or changed (the console emits `release_event`).
    Updated(Box<ReleaseSummary>),
    /// Its stable Deployment (or its Rollout) is gone (the console emits `release_removed`).
    Removed(ReleaseRef),
}

/// Receives watch-driven changes of releases.
pub type SummarySink = Arc<dyn Fn(ReleaseChange) + Send + Sync>;

/// What a watch has pushed per release, so that it pushes only changes, and the releases a
/// re-list (after the watch lost its connection) found, so that those missing from it are
/// reported removed: a re-list reports no deletions of its own.
#[derive(Default)]
struct Pushed {
    last: HashMap<String, ReleaseSummary>,
    relisting: Option<HashSet<String>>,
}

impl Pushed {
    /// Pushes `s` unless it is what was pushed last for its release (`updated_at_ms` aside).
    fn update(&mut self, mut s: ReleaseSummary, sink: &SummarySink) {
        let at = s.updated_at_ms;
        s.updated_at_ms = 0;
        if self.last.get(&s.release.name) != Some(&s) {
            self.last.insert(s.release.name.clone(), s.clone());
            s.updated_at_ms = at;
            sink(ReleaseChange::Updated(Box::new(s)));
        }
    }

    fn remove(&mut self, release: ReleaseRef, sink: &SummarySink) {
        self.last.remove(&release.name);
        sink(ReleaseChange::Removed(release));
    }

    /// Takes one watcher event: keeps the re-list's bookkeeping (`release_name` names the
    /// release an object belongs to) and hands back the object of an apply or delete, with
    /// whether it was deleted.
    fn take<K>(
        &mut self,
        event: kube::runtime::watcher::Event<K>,
        c: &Cluster,
        sink: &SummarySink,
        release_name: impl Fn(&K) -> Option<String>,
    ) -> Option<(K, bool)> {
        use kube::runtime::watcher::Event;
        match event {
            Event::Init => {
                self.relisting = Some(HashSet::new());
                None
            }
            Event::InitDone => {
                self.relist_done(c, sink);
                None
            }
            Event::InitApply(obj) => {
                if let (Some(seen), Some(name)) = (self.relisting.as_mut(), release_name(&obj)) {
                    seen.insert(name);
                }
                Some((obj, false))
            }
            Event::Apply(obj) => Some((obj, false)),
            Event::Delete(obj) => Some((obj, true)),
        }
    }

    /// Ends a re-list: what was pushed before and is not in it is removed.
    fn relist_done(&mut self, c: &Cluster, sink: &SummarySink) {
        let Some(seen) = self.relisting.take() else {
            return;
        };
        let gone: Vec<String> = self
            .last
            .keys()
            .filter(|name| !seen.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            self.remove(c.release_ref(&name), sink);
        }
    }
}

/// The release a watched Deployment belongs to, and whether it is the canary half: a
/// canary is `<app>-canary` labelled `track=canary`; a canary without that name is none.
fn release_of(d: &Deployment) -> Option<(String, bool)> {
    let name = d.metadata.name.clone()?;
    let canary = d
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(TRACK_LABEL))
        .is_some_and(|t| t == "canary");
    if canary {
        Some((name.strip_suffix("-canary")?.to_string(), true))
    } else {
        Some((name, false))
    }
}

/// The Releases view's back end.
#[derive(Clone)]
pub struct ReleaseService {
    inner: Arc<Inner>,
}

struct Inner {
    host: Host,
    source: KubeconfigSource,
    options: ReleaseOptions,
    clients: tokio::sync::Mutex<HashMap<String, (String, Client)>>,
    histories: Mutex<HashMap<ReleaseRef, TickHistory>>,
    verdicts: Mutex<HashMap<ReleaseRef, Verdict>>,
    agents: RwLock<HashMap<String, ProfileId>>,
    progress: RwLock<Option<ProgressSink>>,
}

/// One Kubernetes profile, connected.
#[derive(Clone)]
struct Cluster {
    profile: Profile,
    namespace: String,
    client: Client,
}

impl Cluster {
    fn release_ref(&self, name: &str) -> ReleaseRef {
        ReleaseRef {
            profile_id: self.profile.id.as_str().to_string(),
            namespace: self.namespace.clone(),
            name: name.to_string(),
        }
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn what(&self, object: &str) -> String {
        format!(
            "cluster {} ({}): {object}",
            self.profile.name, self.namespace
        )
    }
}

/// A running watch; dropping it stops the watch.
pub struct WatchHandle {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The local action log's target for a release.
pub fn log_target(r: &ReleaseRef) -> String {
    format!("release/{}/{}/{}", r.profile_id, r.namespace, r.name)
}

fn reason_of(raw: &str) -> Result<String> {
    let r = raw.trim();
    if r.is_empty() {
        return Err(Error::invalid(
            "a release action needs a reason (it is recorded in the action log and the Kubernetes Event)",
        ));
    }
    if r.chars().count() > 500 {
        return Err(Error::invalid("the reason is longer than 500 characters"));
    }
    Ok(r.to_string())
}

/// What an action needs from RBAC: (verb, group, resource).
fn needs(action: ReleaseActionId) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v = vec![
        ("get", "apps", "deployments"),
        ("patch", "apps", "deployments"),
        ("create", "", "events"),
    ];
    if action == ReleaseActionId::Undo {
        v.push(("list", "apps", "replicasets"));
    }
    v
}

/// The parts of a canary an action decides on; when they change under a write, the
/// action stops instead of applying its decision to a release that moved.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decided {
    step: Option<String>,
    paused: Option<String>,
    aborted: bool,
    image: String,
}

impl Decided {
    fn of(d: &Deployment) -> Self {
        Self {
            step: annotation(d, STEP).map(str::to_string),
            paused: annotation(d, PAUSED).map(str::to_string),
            aborted: annotation(d, ABORTED).is_some(),
            image: state::image_of(state::template(d)),
        }
    }

    fn describe_change(&self, now: &Self) -> String {
        let mut parts = Vec::new();
        if self.step != now.step {
            parts.push(format!(
                "the canary step went from {} to {}",
                self.step.as_deref().unwrap_or("0"),
                now.step.as_deref().unwrap_or("0")
            ));
        }
        if self.paused != now.paused {
            parts.push("its pause state changed".to_string());
        }
        if self.aborted != now.aborted {
            parts.push("it was aborted or restarted".to_string());
        }
        if self.image != now.image {
            parts.push(format!("its image changed to {}", now.image));
        }
        parts.join(", ")
    }
}

impl ReleaseService {
    pub fn new(host: Host, source: KubeconfigSource, options: ReleaseOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                host,
                source,
                options,
                clients: Default::default(),
                histories: Default::default(),
                verdicts: Default::default(),
                agents: Default::default(),
                progress: Default::default(),
            }),
        }
    }

    /// Where `release_progress` events go.
    pub fn set_progress_sink(&self, sink: Option<ProgressSink>) {
        *self.inner.progress.write().expect("progress lock") = sink;
    }

    /// The agent-service profile (URL + API key) serving the releases of a Kubernetes
    /// profile: the eval gate and the cancel of a canary's approvals go through it.
    pub fn link_agent_profile(&self, kube_profile: &ProfileId, agent_profile: Option<ProfileId>) {
        let mut agents = self.inner.agents.write().expect("agents lock");
        match agent_profile {
            Some(a) => agents.insert(kube_profile.as_str().to_string(), a),
            None => agents.remove(kube_profile.as_str()),
        };
    }

    fn progress(
        &self,
        r: &ReleaseRef,
        action: ReleaseActionId,
        phase: &str,
        fraction: Option<f64>,
        done: bool,
        error: Option<String>,
    ) {
        let sink = self.inner.progress.read().expect("progress lock").clone();
        if let Some(sink) = sink {
            sink(ReleaseProgressEvent {
                release: r.clone(),
                action,
                phase: phase.to_string(),
                fraction,
                done,
                error,
            });
        }
    }

    // ---- commands -------------------------------------------------------------------

    pub async fn list_kube_contexts(&self) -> Result<Vec<KubeContext>> {
        let source = self.inner.source.clone();
        tokio::task::spawn_blocking(move || source.contexts())
            .await
            .map_err(|e| Error::Process(format!("reading kubeconfig did not finish: {e}")))?
    }

    /// Saves a Kubernetes profile for a context that exists in kubeconfig.
    pub async fn add_kube_profile(&self, args: AddKubeProfileArgs) -> Result<Profile> {
        let contexts = self.list_kube_contexts().await?;
        if !contexts.iter().any(|c| c.name == args.context) {
            return Err(Error::invalid(format!(
                "kubeconfig has no context {:?}; known: {}",
                args.context,
                contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let profile = Profile::new(
            ProfileId::generate(),
            &args.name,
            Target::Kubernetes {
                context: args.context,
                namespace: args.namespace,
            },
        )?;
        let host = &self.inner.host;
        host.store
            .save_profile(&profile, host.clock.now_ms())
            .await?;
        Ok(profile)
    }

    /// The Kubernetes profiles in the store.
    pub async fn kube_profiles(&self) -> Result<Vec<Profile>> {
        Ok(self
            .inner
            .host
            .store
            .profiles()
            .await?
            .into_iter()
            .filter(|p| matches!(p.target, Target::Kubernetes { .. }))
            .collect())
    }

    /// Every release of every Kubernetes profile; a cluster that fails is listed in
    /// `errors` and does not hide the others. Those waiting for a decision come first.
    pub async fn list_releases(&self) -> Result<ReleaseList> {
        let profiles = self.kube_profiles().await?;
        let results = futures::future::join_all(profiles.iter().map(|p| async move {
            let c = self.connect(p).await?;
            self.list_cluster(&c).await
        }))
        .await;
        let mut out = ReleaseList {
            releases: Vec::new(),
            errors: Vec::new(),
        };
        for (p, r) in profiles.iter().zip(results) {
            match r {
                Ok(mut list) => out.releases.append(&mut list),
                Err(e) => out.errors.push(ClusterError {
                    profile_id: p.id.as_str().to_string(),
                    cluster: p.name.clone(),
                    message: e.to_string(),
                }),
            }
        }
        out.releases.sort_by(|a, b| {
            let waiting = |s: &ReleaseSummary| s.state != ReleaseState::WaitingDecision;
            (
                waiting(a),
                &a.cluster,
                &a.release.namespace,
                &a.release.name,
            )
                .cmp(&(
                    waiting(b),
                    &b.cluster,
                    &b.release.namespace,
                    &b.release.name,
                ))
        });
        Ok(out)
    }

    /// One release in full: summary, a fresh analysis tick, revisions, what the
    /// connection may do, Kubernetes Events and the local action log.
    pub async fn get_release(&self, args: ReleaseRefArgs) -> Result<ReleaseDetail> {
        let r = args.release;
        let c = self.cluster(&r).await?;
        let analysis = self.tick(&c, &r).await?;
        self.detail(&c, &r, analysis).await
    }

    /// One analysis tick without the rest of the detail, for the console's periodic loop
    /// over releases with a canary: measures both tracks, judges the canary (the verdict
    /// then shows in summaries), and pauses a canary starved of samples. `None` when the
    /// release has no canary.
    pub async fn analysis_tick(&self, args: ReleaseRefArgs) -> Result<Option<ReleaseAnalysis>> {
        let c = self.cluster(&args.release).await?;
        self.tick(&c, &args.release).await
    }

    async fn tick(&self, c: &Cluster, r: &ReleaseRef) -> Result<Option<ReleaseAnalysis>> {
        if self.kind_of(c, &r.name).await? == ReleaseKind::ArgoRollout {
            // Argo Rollouts judges its canaries with its own AnalysisRuns.
            return Ok(None);
        }
        let (stable, canary) = self.objects(c, &r.name).await?;
        let Some(canary) = canary else {
            return Ok(None);
        };
        let a = self.analyze(c, r, &stable, &canary).await;
        if a.verdict == Verdict::Inconclusive {
            self.pause_if_starved(c, r, &canary, &a).await?;
        }
        Ok(Some(a))
    }

    pub async fn promote_release(&self, args: PromoteArgs) -> Result<ReleaseActionResult> {
        let action = if args.full {
            ReleaseActionId::PromoteFull
        } else {
            ReleaseActionId::PromoteStep
        };
        let r = args.release.clone();
        let key = args.release.clone();
        self.act(&key, action, &args.reason, None, |c, reason| async move {
            if args.full {
                self.promote_full(&c, &r, &reason).await
            } else {
                self.promote_step(&c, &r, &reason).await
            }
        })
        .await
    }

    pub async fn abort_release(&self, args: ReleaseReasonArgs) -> Result<ReleaseActionResult> {
        let r = args.release.clone();
        let key = args.release.clone();
        self.act(
            &key,
            ReleaseActionId::Abort,
            &args.reason,
            None,
            |c, reason| async move { self.abort(&c, &r, &reason).await },
        )
        .await
    }

    pub async fn undo_release(&self, args: UndoArgs) -> Result<ReleaseActionResult> {
        let r = args.release.clone();
        let revision = args.revision;
        let key = args.release.clone();
        self.act(
            &key,
            ReleaseActionId::Undo,
            &args.reason,
            Some(revision),
            |c, _reason| async move { self.undo(&c, &r, revision).await },
        )
        .await
    }

    pub async fn pause_release(&self, args: ReleaseReasonArgs) -> Result<ReleaseActionResult> {
        let r = args.release.clone();
        let key = args.release.clone();
        self.act(
            &key,
            ReleaseActionId::Pause,
            &args.reason,
            None,
            |c, reason| async move {
                self.set_paused(&c, &r, ReleaseActionId::Pause, Some(&reason))
                    .await?;
                Ok((format!("paused {}", r.name), None))
            },
        )
        .await
    }

    pub async fn resume_release(&self, args: ReleaseReasonArgs) -> Result<ReleaseActionResult> {
        let r = args.release.clone();
        let key = args.release.clone();
        self.act(
            &key,
            ReleaseActionId::Resume,
            &args.reason,
            None,
            |c, _reason| async move {
                self.set_paused(&c, &r, ReleaseActionId::Resume, None)
                    .await?;
                self.inner
                    .histories
                    .lock()
                    .expect("histories lock")
                    .remove(&r);
                Ok((format!("resumed {}", r.name), None))
            },
        )
        .await
    }

    /// Watches the Deployments (and, where the CRD is installed, the Argo Rollouts) of a
    /// Kubernetes profile and calls `sink` with the summary of each release that changed.
    /// The watches re-connect with backoff; drop the handle to stop them.
    pub async fn watch(&self, profile_id: &ProfileId, sink: SummarySink) -> Result<WatchHandle> {
        let profile = self.profile(profile_id.as_str()).await?;
        let c = self.connect(&profile).await?;
        let rollouts = tokio::spawn(self.clone().watch_rollouts(c.clone(), sink.clone()));
        let svc = self.clone();
        let task = tokio::spawn(async move {
            use kube::runtime::{WatchStreamExt, watcher};
            let stream = watcher(
                c.deployments(),
                watcher::Config::default().labels(&format!("{APP_LABEL},{TRACK_LABEL}")),
            )
            .default_backoff();
            futures::pin_mut!(stream);
            let mut pushed = Pushed::default();
            while let Some(item) = stream.next().await {
                let event = match item {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::warn!(profile = %c.profile.id, error = %e, "release watch error; retrying");
                        continue;
                    }
                };
                let Some((d, deleted)) =
                    pushed.take(event, &c, &sink, |d| release_of(d).map(|(app, _)| app))
                else {
                    continue;
                };
                let Some((app, canary)) = release_of(&d) else {
                    continue;
                };
                if deleted && !canary {
                    pushed.remove(c.release_ref(&app), &sink);
                    continue;
                }
                // A canary's change (or deletion) changes its release: read both again.
                if let Ok((stable, canary)) = svc.objects(&c, &app).await {
                    pushed.update(svc.summary(&c, &stable, canary.as_ref()), &sink);
                }
            }
        });
        Ok(WatchHandle {
            tasks: vec![task, rollouts],
        })
    }

    /// The Rollouts half of [`ReleaseService::watch`]; ends at once without the CRD.
    async fn watch_rollouts(self, c: Cluster, sink: SummarySink) {
        use kube::runtime::{WatchStreamExt, watcher};
        if !self.rollouts_served(&c).await {
            return;
        }
        let stream = watcher(self.rollouts(&c), watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        let mut pushed = Pushed::default();
        while let Some(item) = stream.next().await {
            let Ok(event) = item else {
                continue;
            };
            let Some((obj, deleted)) = pushed.take(event, &c, &sink, |o| o.metadata.name.clone())
            else {
                continue;
            };
            if deleted {
                if let Some(name) = obj.metadata.name.as_deref() {
                    pushed.remove(c.release_ref(name), &sink);
                }
                continue;
            }
            let Ok(ro) = serde_json::to_value(&obj) else {
                continue;
            };
            let sets = self.rollout_sets(&c, &ro).await.unwrap_or_default();
            pushed.update(self.rollout_summary(&c, &ro, &sets), &sink);
        }
    }

    // ---- connections ----------------------------------------------------------------

    async fn profile(&self, id: &str) -> Result<Profile> {
        let pid = ProfileId::parse(id)?;
        self.inner
            .host
            .store
            .profile(&pid)
            .await?
            .ok_or_else(|| Error::invalid(format!("there is no profile {id}")))
    }

    async fn connect(&self, p: &Profile) -> Result<Cluster> {
        let Target::Kubernetes { context, namespace } = &p.target else {
            return Err(Error::invalid(format!(
                "profile {} is an agent-service profile, not a Kubernetes one",
                p.id
            )));
        };
        let mut clients = self.inner.clients.lock().await;
        let key = p.id.as_str().to_string();
        let client = match clients.get(&key) {
            Some((ctx, client)) if ctx == context => client.clone(),
            _ => {
                let client = self
                    .inner
                    .source
                    .client(context, self.inner.options.connect_timeout)
                    .await?;
                clients.insert(key, (context.clone(), client.clone()));
                client
            }
        };
        Ok(Cluster {
            profile: p.clone(),
            namespace: namespace.clone(),
            client,
        })
    }

    async fn cluster(&self, r: &ReleaseRef) -> Result<Cluster> {
        let p = self.profile(&r.profile_id).await?;
        let c = self.connect(&p).await?;
        if c.namespace != r.namespace {
            return Err(Error::invalid(format!(
                "profile {} watches namespace {}, not {}",
                p.name, c.namespace, r.namespace
            )));
        }
        Ok(c)
    }

    fn timeout(&self) -> Duration {
        self.inner.options.request_timeout
    }

    async fn get_deployment(&self, c: &Cluster, name: &str) -> Result<Option<Deployment>> {
        call(
            &c.what(&format!("deployments/{name}")),
            self.timeout(),
            c.deployments().get_opt(name),
        )
        .await
    }

    /// The stable Deployment (an error when absent) and its canary (if any).
    async fn objects(&self, c: &Cluster, name: &str) -> Result<(Deployment, Option<Deployment>)> {
        let stable = self.get_deployment(c, name).await?.ok_or_else(|| {
            Error::invalid(format!(
                "there is no Deployment {name} in namespace {} of {}",
                c.namespace, c.profile.name
            ))
        })?;
        let canary = self.get_deployment(c, &canary_name(name)).await?;
        Ok((stable, canary))
    }

    async fn list_cluster(&self, c: &Cluster) -> Result<Vec<ReleaseSummary>> {
        let list = |track: &'static str| {
            let lp = ListParams::default().labels(&format!("{APP_LABEL},{TRACK_LABEL}={track}"));
            let api = c.deployments();
            async move { call(&c.what("deployments"), self.timeout(), api.list(&lp)).await }
        };
        let (stables, canaries, rollouts) =
            futures::try_join!(list("stable"), list("canary"), self.list_rollouts(c))?;
        let mut out: Vec<ReleaseSummary> = stables
            .items
            .iter()
            .map(|s| {
                let cname = canary_name(s.metadata.name.as_deref().unwrap_or_default());
                let canary = canaries
                    .items
                    .iter()
                    .find(|d| d.metadata.name.as_deref() == Some(cname.as_str()));
                self.summary(c, s, canary)
            })
            .collect();
        for ro in &rollouts {
            let sets = self.rollout_sets(c, ro).await.unwrap_or_default();
            out.push(self.rollout_summary(c, ro, &sets));
        }
        Ok(out)
    }

    /// Whether `name` is a Deployment release or an Argo Rollout.
    async fn kind_of(&self, c: &Cluster, name: &str) -> Result<ReleaseKind> {
        if self.get_deployment(c, name).await?.is_some() {
            return Ok(ReleaseKind::Deployment);
        }
        if self.get_rollout(c, name).await?.is_some() {
            return Ok(ReleaseKind::ArgoRollout);
        }
        Err(Error::invalid(format!(
            "there is no Deployment or Rollout {name} in namespace {} of {}",
            c.namespace, c.profile.name
        )))
    }

    fn summary(
        &self,
        c: &Cluster,
        stable: &Deployment,
        canary: Option<&Deployment>,
    ) -> ReleaseSummary {
        let name = stable.metadata.name.clone().unwrap_or_default();
        let r = ReleaseRef {
            profile_id: c.profile.id.as_str().to_string(),
            namespace: c.namespace.clone(),
            name,
        };
        let plan = canary.map(Plan::of);
        let (steps, step, plan_error) = match &plan {
            Some(Ok(p)) => (p.steps.clone(), p.step, None),
            Some(Err(e)) => (Vec::new(), 0, Some(e.to_string())),
            None => (Vec::new(), 0, None),
        };
        let ok_plan = plan.as_ref().and_then(|p| p.as_ref().ok());
        let state = state::release_state(stable, canary, ok_plan);
        let stable_info = state::track_info(stable);
        let canary_info = canary.map(state::track_info);
        let paused_reason = plan_error.or_else(|| {
            canary
                .filter(|d| annotation(d, PAUSED) == Some("true"))
                .map(|d| annotation(d, PAUSED_REASON).unwrap_or("paused").to_string())
        });
        let verdict = canary.and_then(|_| {
            self.inner
                .verdicts
                .lock()
                .expect("verdicts lock")
                .get(&r)
                .copied()
        });
        ReleaseSummary {
            cluster: c.profile.name.clone(),
            kind: ReleaseKind::Deployment,
            actual_weight: state::actual_weight(
                canary_info.as_ref().map_or(0, |t| t.replicas_ready),
                stable_info.replicas_ready,
            ),
            desired_weight: state::weight_at(&steps, step),
            steps,
            step,
            stable: stable_info,
            canary: canary_info,
            state,
            paused_reason,
            verdict,
            updated_at_ms: self.inner.host.clock.now_ms(),
            release: r,
        }
    }

    // ---- detail ---------------------------------------------------------------------

    async fn detail(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        analysis: Option<ReleaseAnalysis>,
    ) -> Result<ReleaseDetail> {
        let (summary, sets, revisions) = match self.kind_of(c, &r.name).await? {
            ReleaseKind::Deployment => {
                let (stable, canary) = self.objects(c, &r.name).await?;
                let summary = self.summary(c, &stable, canary.as_ref());
                let sets = self.replica_sets(c, &stable).await.unwrap_or_default();
                let revisions = state::revisions(&stable, &sets);
                (summary, sets, revisions)
            }
            ReleaseKind::ArgoRollout => {
                let ro = self.get_rollout(c, &r.name).await?.unwrap_or_default();
                let sets = self.rollout_sets(c, &ro).await.unwrap_or_default();
                let summary = self.rollout_summary(c, &ro, &sets);
                let revisions = argo::revisions(&ro, &sets);
                (summary, sets, revisions)
            }
        };
        let permissions = self.permissions(c, &summary, &revisions).await;
        let events = self.events(c, r, &sets).await.unwrap_or_default();
        let target = log_target(r);
        let log = self
            .inner
            .host
            .store
            .actions(500, None)
            .await?
            .into_iter()
            .filter(|a| a.target == target)
            .map(|a| ReleaseLogEntry {
                at_ms: a.at_ms,
                action: a.action,
                actor: a.actor,
                outcome: a.outcome.as_str().to_string(),
                detail: (!a.detail.is_empty()).then_some(a.detail),
            })
            .collect();
        Ok(ReleaseDetail {
            summary,
            analysis,
            revisions,
            permissions,
            events,
            log,
        })
    }

    async fn replica_sets(&self, c: &Cluster, stable: &Deployment) -> Result<Vec<ReplicaSet>> {
        let selector = stable
            .spec
            .selector
            .match_labels
            .as_ref()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(c.client.clone(), &c.namespace);
        let list = call(
            &c.what("replicasets"),
            self.timeout(),
            api.list(&ListParams::default().labels(&selector)),
        )
        .await?;
        Ok(list.items)
    }

    async fn events(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        sets: &[ReplicaSet],
    ) -> Result<Vec<KubeEventInfo>> {
        let api: Api<Event> = Api::namespaced(c.client.clone(), &c.namespace);
        let list = call(
            &c.what("events"),
            self.timeout(),
            api.list(&ListParams::default()),
        )
        .await?;
        let mut names: BTreeSet<String> = [r.name.clone(), canary_name(&r.name)].into();
        names.extend(sets.iter().filter_map(|s| s.metadata.name.clone()));
        let mut out: Vec<KubeEventInfo> = list
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object
                    .name
                    .as_ref()
                    .is_some_and(|n| names.contains(n))
            })
            .map(|e| KubeEventInfo {
                at_ms: e
                    .last_timestamp
                    .as_ref()
                    .or(e.first_timestamp.as_ref())
                    .map(|t| t.0.as_millisecond())
                    .or_else(|| e.event_time.as_ref().map(|t| t.0.as_millisecond()))
                    .or_else(|| {
                        e.metadata
                            .creation_timestamp
                            .as_ref()
                            .map(|t| t.0.as_millisecond())
                    })
                    .unwrap_or(0),
                kind: e.type_.unwrap_or_else(|| "Normal".into()),
                reason: e.reason.unwrap_or_default(),
                message: e.message.unwrap_or_default(),
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
        out.truncate(100);
        Ok(out)
    }

    // ---- permissions ----------------------------------------------------------------

    async fn access(
        &self,
        c: &Cluster,
        checks: &[(&'static str, &'static str, &'static str)],
    ) -> Result<HashMap<(&'static str, &'static str, &'static str), (bool, Option<String>)>> {
        let api: Api<SelfSubjectAccessReview> = Api::all(c.client.clone());
        let reviews = checks.iter().map(|&(verb, group, resource)| {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some({
                        let (res, sub) = match resource.split_once('/') {
                            Some((r, s)) => (r, Some(s.to_string())),
                            None => (resource, None),
                        };
                        ResourceAttributes {
                            namespace: Some(c.namespace.clone()),
                            verb: Some(verb.into()),
                            group: Some(group.into()),
                            resource: Some(res.into()),
                            subresource: sub,
                            ..Default::default()
                        }
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let api = api.clone();
            async move {
                let answer = call(
                    &c.what("selfsubjectaccessreviews"),
                    self.timeout(),
                    api.create(&PostParams::default(), &review),
                )
                .await?;
                let status = answer.status.unwrap_or_default();
                Ok::<_, Error>(((verb, group, resource), (status.allowed, status.reason)))
            }
        });
        Ok(futures::future::try_join_all(reviews)
            .await?
            .into_iter()
            .collect())
    }

    /// Why `action` is not possible under RBAC, if it is not.
    fn rbac_denial(
        c: &Cluster,
        needed: &[(&'static str, &'static str, &'static str)],
        answers: &HashMap<(&'static str, &'static str, &'static str), (bool, Option<String>)>,
    ) -> Option<String> {
        let missing: Vec<String> = needed
            .iter()
            .copied()
            .filter(|k| !answers.get(k).is_some_and(|(allowed, _)| *allowed))
            .map(|(verb, group, resource)| {
                let res = if group.is_empty() {
                    resource.to_string()
                } else {
                    format!("{resource}.{group}")
                };
                match answers
                    .get(&(verb, group, resource))
                    .and_then(|(_, r)| r.clone())
                    .filter(|r| !r.is_empty())
                {
                    Some(why) => format!("{verb} {res} ({why})"),
                    None => format!("{verb} {res}"),
                }
            })
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "RBAC: {} may not {} in namespace {}",
                c.profile.name,
                missing.join(", "),
                c.namespace
            )
        })
    }

    async fn permissions(
        &self,
        c: &Cluster,
        s: &ReleaseSummary,
        revisions: &[Revision],
    ) -> Vec<ReleaseActionPermission> {
        let needs_of = |a: ReleaseActionId| match s.kind {
            ReleaseKind::Deployment => needs(a),
            ReleaseKind::ArgoRollout => argo::needs(a),
        };
        let all: BTreeSet<_> = ReleaseActionId::ALL
            .iter()
            .flat_map(|a| needs_of(*a))
            .collect();
        let all: Vec<_> = all.into_iter().collect();
        let answers = self.access(c, &all).await;
        ReleaseActionId::ALL
            .iter()
            .map(|&action| {
                let rbac = match &answers {
                    Ok(a) => Self::rbac_denial(c, &needs_of(action), a),
                    Err(e) => Some(format!("could not ask the cluster what is allowed: {e}")),
                };
                let reason = rbac.or_else(|| state_denial(action, s, revisions));
                ReleaseActionPermission {
                    action,
                    allowed: reason.is_none(),
                    reason,
                }
            })
            .collect()
    }
}

/// Why the release's state makes `action` pointless, if it does.
fn state_denial(
    action: ReleaseActionId,
    s: &ReleaseSummary,
    revisions: &[Revision],
) -> Option<String> {
    if s.kind == ReleaseKind::ArgoRollout {
        let settled = matches!(s.state, ReleaseState::Idle | ReleaseState::Complete);
        return match action {
            ReleaseActionId::PromoteStep | ReleaseActionId::PromoteFull => {
                settled.then(|| "the rollout is not in progress: nothing to promote".to_string())
            }
            ReleaseActionId::Abort => (settled || s.state == ReleaseState::Aborted)
                .then(|| "the rollout is not in progress: nothing to abort".to_string()),
            ReleaseActionId::Undo => (revisions.len() < 2)
                .then(|| "there is no earlier revision to go back to".to_string()),
            ReleaseActionId::Pause => {
                (s.state == ReleaseState::Paused).then(|| "already paused".to_string())
            }
            ReleaseActionId::Resume => {
                (s.state != ReleaseState::Paused).then(|| "not paused".to_string())
            }
        };
    }
    let Some(canary) = &s.canary else {
        return (action != ReleaseActionId::Undo || revisions.len() < 2).then(|| match action {
            ReleaseActionId::Undo => "there is no earlier revision to go back to".to_string(),
            _ => format!("{} has no canary Deployment", s.release.name),
        });
    };
    let paused = s.state == ReleaseState::Paused;
    match action {
        ReleaseActionId::PromoteStep | ReleaseActionId::PromoteFull => {
            (canary.image == s.stable.image && s.step == 0)
                .then(|| "the canary runs the stable image: nothing to promote".to_string())
        }
        ReleaseActionId::Abort => (s.step == 0 && canary.replicas_desired == 0)
            .then(|| "the canary has no traffic: nothing to abort".to_string()),
        ReleaseActionId::Undo => {
            (revisions.len() < 2).then(|| "there is no earlier revision to go back to".to_string())
        }
        ReleaseActionId::Pause => paused.then(|| "already paused".to_string()),
        ReleaseActionId::Resume => (!paused).then(|| "not paused".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn merge_diff_replaces_exactly() {
        let from = json!({"metadata": {"labels": {"a": "1", "pod-template-hash": "x"}},
                          "spec": {"containers": [{"name": "c", "image": "i:1"}], "dns": "x"}});
        let to = json!({"metadata": {"labels": {"a": "1"}},
                        "spec": {"containers": [{"name": "c", "image": "i:2"}]}});
        let patch = merge_diff(&from, &to);
        assert_eq!(
            patch,
            json!({"metadata": {"labels": {"pod-template-hash": null}},
            "spec": {"containers": [{"name": "c", "image": "i:2"}], "dns": null}})
        );
        let mut applied = from.clone();
        json_merge(&mut applied, &patch);
        assert_eq!(applied, to);
    }

    /// RFC 7386 apply, to check `merge_diff` against.
    fn json_merge(target: &mut Value, patch: &Value) {
        match patch {
            Value::Object(p) => {
                if !target.is_object() {
                    *target = json!({});
                }
                let t = target.as_object_mut().unwrap();
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        json_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            _ => *target = patch.clone(),
        }
    }

    #[test]
    fn reasons_are_required() {
        assert_eq!(reason_of("  ").unwrap_err().code().as_str(), "invalid");
        assert_eq!(reason_of(" ok ").unwrap(), "ok");
        assert!(reason_of(&"x".repeat(501)).is_err());
    }

    #[test]
    fn a_moved_release_is_described() {
        let before = Decided {
            step: Some("1".into()),
            paused: None,
            aborted: false,
            image: "img:2".into(),
        };
        let mut now = before.clone();
        now.step = Some("2".into());
        assert_eq!(
            before.describe_change(&now),
            "the canary step went from 1 to 2"
        );
        now.image = "img:3".into();
        assert!(
            before
                .describe_change(&now)
                .ends_with("its image changed to img:3")
        );
    }

    #[test]
    fn undo_needs_to_list_replica_sets_and_every_action_writes_an_event() {
        for a in ReleaseActionId::ALL {
            assert!(needs(a).contains(&("create", "", "events")));
            assert!(needs(a).contains(&("patch", "apps", "deployments")));
        }
        assert!(needs(ReleaseActionId::Undo).contains(&("list", "apps", "replicasets")));
    }
}
