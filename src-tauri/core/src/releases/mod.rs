//! Releases on Kubernetes: every canary across the connected clusters, its analysis
//! against stable, and the operator's actions on it — promote (a step or in full), abort,
//! undo, pause, resume — each checked with a SelfSubjectAccessReview first, recorded in the
//! local action log and as a Kubernetes Event, and written with resourceVersion
//! preconditions so a concurrent change is never overwritten. [`ReleaseService`] is the
//! facade the command layer calls; its methods are named like the IPC commands of the
//! releases contract.
//!
//! This file holds the facade (options, construction, the commands); the work is in one
//! file per concern: `connect` (profiles to kube clients), `summary` (listing and reading
//! releases), `detail`, `access` (access review: what each action needs and may do),
//! `actions`, `measure` and `analysis` (the canary analysis), `watch`, `argo` (Argo
//! Rollouts), `state` (what a release is, from its objects) and `cluster` (kubeconfig and
//! kube errors).

mod access;
mod actions;
pub mod analysis;
pub mod argo;
pub mod cluster;
mod connect;
mod detail;
pub mod dto;
mod measure;
pub mod state;
mod summary;
mod watch;

pub use actions::merge_diff;
pub use watch::{ReleaseChange, SummarySink, WatchHandle};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kube::Client;

use self::analysis::TickHistory;
use self::cluster::KubeconfigSource;
use self::connect::Cluster;
use self::dto::*;
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

/// The local action log's target for a release.
pub fn log_target(r: &ReleaseRef) -> String {
    format!("release/{}/{}/{}", r.profile_id, r.namespace, r.name)
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
}
