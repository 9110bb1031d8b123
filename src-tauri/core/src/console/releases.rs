//! The Releases view wired into the console: the nine release commands
//! delegate to a [`ReleaseService`]; `release_event` (and `release_removed`, with the
//! release's ref, when its stable Deployment or Rollout is deleted) is pushed from a watch
//! per Kubernetes profile, and `release_event` whenever the periodic analysis tick changes a release's
//! verdict; `release_progress` from the service's progress sink. Every Kubernetes
//! profile is linked to an agent-service profile (the eval gate and the cancel of a
//! canary's approvals go through it): the one it names, else the active one, re-linked when
//! the active profile changes; the Local profile is never linked (it is the bundled service, not one running in a
//! cluster). The incident switch pauses every canary linked to the frozen service.
//!
//! Links: a Kubernetes profile added with `agent_profile_id` stays linked to that
//! agent-service profile (stored; removing that profile falls back to following); one added
//! without follows the active agent-service profile. The service's links are rebuilt at
//! start and on every profile change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::dto::{ActionId, CommandError, Profile, ProfileKind};
use super::{CmdResult, Console, EventSink, LOCAL_PROFILE_ID, lock};
use crate::domain::ProfileId;
use crate::releases::dto as rd;
use crate::releases::{ReleaseChange, ReleaseService, WatchHandle};
use crate::store::Target;

/// The console's release state: the service, the running watches and the last verdict
/// pushed per release.
pub(super) struct Releases {
    service: ReleaseService,
    /// Per Kubernetes profile id: its watch.
    watches: Mutex<HashMap<String, WatchHandle>>,
    /// Per Kubernetes profile id: the agent-service profile linked to it.
    links: Mutex<HashMap<String, Option<ProfileId>>>,
    /// The last verdict seen per release by the analysis tick.
    verdicts: Mutex<HashMap<rd::ReleaseRef, Option<rd::Verdict>>>,
    tick: Mutex<Option<JoinHandle<()>>>,
    /// Serialises [`Console::sync_releases`] (called from several places at once).
    sync: tokio::sync::Mutex<()>,
}

impl Releases {
    /// The service, with its progress going to `release_progress` on `sink`.
    pub(super) fn new(service: ReleaseService, sink: Arc<dyn EventSink>) -> Self {
        service.set_progress_sink(Some(Arc::new(move |e: rd::ReleaseProgressEvent| {
            match serde_json::to_value(&e) {
                Ok(v) => sink.emit("release_progress", v),
                Err(e) => tracing::error!(error = %e, "release_progress could not be encoded"),
            }
        })));
        Self {
            service,
            watches: Default::default(),
            links: Default::default(),
            verdicts: Default::default(),
            tick: Default::default(),
            sync: Default::default(),
        }
    }

    /// Stops the watches and the analysis tick.
    pub(super) fn stop(&self) {
        lock(&self.watches).clear();
        if let Some(t) = lock(&self.tick).take() {
            t.abort();
        }
    }
}

fn summary_sink(sink: Arc<dyn EventSink>) -> crate::releases::SummarySink {
    Arc::new(move |change: ReleaseChange| {
        let (event, value) = match &change {
            ReleaseChange::Updated(s) => ("release_event", serde_json::to_value(s)),
            ReleaseChange::Removed(r) => ("release_removed", serde_json::to_value(r)),
        };
        match value {
            Ok(v) => sink.emit(event, v),
            Err(e) => tracing::error!(error = %e, "{event} could not be encoded"),
        }
    })
}

impl Console {
    fn releases(&self) -> &Releases {
        &self.inner.releases
    }

    /// The release service the commands delegate to (tools and tests).
    pub fn release_service(&self) -> ReleaseService {
        self.releases().service.clone()
    }

    /// The Kubernetes profiles in the store.
    async fn kube_profiles(&self) -> CmdResult<Vec<ProfileId>> {
        let profiles = self.releases().service.kube_profiles().await?;
        Ok(profiles.into_iter().map(|p| p.id).collect())
    }

    /// The agent-service profile a Kubernetes profile may be linked to: a stored one (the
    /// Local profile is the bundled service, not one running in a cluster).
    async fn link_target(&self, id: &str) -> CmdResult<ProfileId> {
        let not_linkable = || {
            CommandError::invalid(format!(
                "{id:?} is not an agent-service profile a cluster can be linked to (the Local \
                 profile cannot: it is the bundled service, not one running in a cluster)"
            ))
        };
        if id == LOCAL_PROFILE_ID {
            return Err(not_linkable());
        }
        let pid = ProfileId::parse(id).map_err(|_| not_linkable())?;
        match self.inner.host.store.profile(&pid).await? {
            Some(p) if matches!(p.target, Target::Agent { .. }) => Ok(pid),
            _ => Err(not_linkable()),
        }
    }

    /// The active profile when it is a stored agent-service profile (Local is not).
    async fn linkable_active(&self) -> Option<ProfileId> {
        self.link_target(&self.active_id()?).await.ok()
    }

    /// Brings the watches and the agent links in line with the stored Kubernetes profiles
    /// and the active profile: a watch per profile (a new one started, a removed one's
    /// stopped), every profile linked to the agent profile it names, else to the active
    /// agent-service profile. A watch that
    /// cannot start is logged and retried at the next sync.
    pub(super) async fn sync_releases(&self) {
        let r = self.releases();
        let _one = r.sync.lock().await;
        let kube = match self.kube_profiles().await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e.message, "the Kubernetes profiles could not be read");
                return;
            }
        };
        let active = self.linkable_active().await;
        let explicit = match self.inner.host.store.agent_links().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "the cluster links could not be read; following the active profile");
                HashMap::new()
            }
        };
        {
            let mut links = lock(&r.links);
            links.retain(|id, _| kube.iter().any(|k| k.as_str() == id));
            for k in &kube {
                let agent = explicit.get(k).cloned().or_else(|| active.clone());
                r.service.link_agent_profile(k, agent.clone());
                links.insert(k.as_str().to_string(), agent);
            }
        }
        lock(&r.watches).retain(|id, _| kube.iter().any(|k| k.as_str() == id));
        for k in &kube {
            if lock(&r.watches).contains_key(k.as_str()) {
                continue;
            }
            let sink = summary_sink(self.inner.sink.clone());
            match r.service.watch(k, sink).await {
                Ok(h) => {
                    lock(&r.watches).insert(k.as_str().to_string(), h);
                }
                Err(e) => {
                    tracing::warn!(profile = %k, error = %e, "the release watch did not start");
                }
            }
        }
    }

    /// Starts the periodic analysis tick (every scrape interval) over the releases with a
    /// canary; a verdict that changes is pushed as `release_event`.
    pub(super) fn start_release_tick(&self) {
        let c = self.clone();
        let every = self.inner.options.scrape_interval;
        let task = tokio::spawn(async move {
            let mut timer = tokio::time::interval(every);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                timer.tick().await;
                c.analysis_round().await;
            }
        });
        if let Some(old) = lock(&self.releases().tick).replace(task) {
            old.abort();
        }
    }

    /// One analysis tick of every Deployment release with a canary.
    async fn analysis_round(&self) {
        let r = self.releases();
        let list = match r.service.list_releases().await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "releases could not be listed for analysis");
                return;
            }
        };
        let mut changed = Vec::new();
        for s in list
            .releases
            .iter()
            .filter(|s| s.canary.is_some() && s.kind == rd::ReleaseKind::Deployment)
        {
            let args = rd::ReleaseRefArgs {
                release: s.release.clone(),
            };
            let verdict = match r.service.analysis_tick(args).await {
                Ok(a) => a.map(|a| a.verdict),
                Err(e) => {
                    tracing::debug!(release = %s.release, error = %e, "analysis tick failed");
                    continue;
                }
            };
            let before = lock(&r.verdicts).insert(s.release.clone(), verdict);
            if before != Some(verdict) {
                changed.push(s.release.clone());
            }
        }
        if changed.is_empty() {
            return;
        }
        // Fresh summaries: the tick may also have paused a starved canary.
        match r.service.list_releases().await {
            Ok(l) => {
                for s in l.releases.iter().filter(|s| changed.contains(&s.release)) {
                    self.emit("release_event", s);
                }
            }
            Err(e) => tracing::debug!(error = %e, "releases could not be listed after analysis"),
        }
    }

    /// Pauses every canary in progress of the Kubernetes profiles linked to
    /// `agent_profile` (the incident switch); answers how many were paused. A release
    /// that cannot be paused (RBAC, unreachable) is logged and does not stop the others.
    pub(super) async fn pause_linked_rollouts(&self, agent_profile: &str, reason: &str) -> u64 {
        let r = self.releases();
        let linked: Vec<String> = lock(&r.links)
            .iter()
            .filter(|(_, a)| a.as_ref().is_some_and(|a| a.as_str() == agent_profile))
            .map(|(k, _)| k.clone())
            .collect();
        if linked.is_empty() {
            return 0;
        }
        let list = match r.service.list_releases().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "releases could not be listed to pause them");
                return 0;
            }
        };
        let mut paused = 0;
        for s in list.releases.iter().filter(|s| {
            linked.contains(&s.release.profile_id)
                && matches!(
                    s.state,
                    rd::ReleaseState::WaitingDecision | rd::ReleaseState::Progressing
                )
                && (s.canary.is_some() || s.kind == rd::ReleaseKind::ArgoRollout)
        }) {
            let args = rd::ReleaseReasonArgs {
                release: s.release.clone(),
                reason: reason.to_string(),
            };
            match r.service.pause_release(args).await {
                Ok(_) => paused += 1,
                Err(e) => {
                    tracing::warn!(release = %s.release, error = %e, "incident: a rollout could not be paused");
                }
            }
        }
        paused
    }

    // --- the nine release commands -------------------------------------------------------

    pub async fn list_kube_contexts(&self) -> CmdResult<Vec<rd::KubeContext>> {
        Ok(self.releases().service.list_kube_contexts().await?)
    }

    /// Saves a Kubernetes profile, links it to the agent-service profile it names (or, without
    /// one, to the active profile, followed as it changes) and starts its watch.
    pub async fn add_kube_profile(&self, args: rd::AddKubeProfileArgs) -> CmdResult<Profile> {
        self.guard(ActionId::ManageProfiles)?;
        if args.name.trim().is_empty() {
            return Err(CommandError::invalid("The profile needs a name"));
        }
        let link = match args.agent_profile_id.as_deref() {
            None => None,
            Some(id) => Some(self.link_target(id).await?),
        };
        let target = format!("kube-context/{}", args.context);
        let saved = self
            .audited(
                "add_profile",
                &target,
                self.releases().service.add_kube_profile(args),
            )
            .await?;
        if link.is_some() {
            self.inner
                .host
                .store
                .set_agent_link(&saved.id, link.as_ref())
                .await?;
        }
        self.sync_releases().await;
        let (context, namespace) = match saved.target {
            Target::Kubernetes { context, namespace } => (Some(context), Some(namespace)),
            Target::Agent { .. } => (None, None),
        };
        Ok(Profile {
            id: saved.id.to_string(),
            name: saved.name,
            kind: ProfileKind::Kubernetes,
            is_local: false,
            url: None,
            context,
            namespace,
            has_secret: false,
            agent_profile_id: link.map(|l| l.to_string()),
        })
    }

    /// Links a Kubernetes profile to the agent-service profile named (or, without one, lets
    /// it follow the active profile) and re-links its releases at once.
    pub async fn link_kube_profile(
        &self,
        args: rd::LinkKubeProfileArgs,
    ) -> CmdResult<super::dto::ProfileList> {
        self.guard(ActionId::ManageProfiles)?;
        let kube = ProfileId::parse(&args.profile_id)?;
        match self.inner.host.store.profile(&kube).await? {
            Some(p) if matches!(p.target, Target::Kubernetes { .. }) => {}
            _ => {
                return Err(CommandError::not_found(format!(
                    "No Kubernetes profile {}",
                    args.profile_id
                )));
            }
        }
        let link = match args.agent_profile_id.as_deref() {
            None => None,
            Some(id) => Some(self.link_target(id).await?),
        };
        let target = format!("profile/{kube}");
        let store = self.inner.host.store.clone();
        self.audited("link_profile", &target, async {
            store.set_agent_link(&kube, link.as_ref()).await
        })
        .await?;
        self.sync_releases().await;
        self.list_profiles().await
    }

    pub async fn list_releases(&self) -> CmdResult<rd::ReleaseList> {
        Ok(self.releases().service.list_releases().await?)
    }

    pub async fn get_release(&self, args: rd::ReleaseRefArgs) -> CmdResult<rd::ReleaseDetail> {
        Ok(self.releases().service.get_release(args).await?)
    }

    pub async fn promote_release(
        &self,
        args: rd::PromoteArgs,
    ) -> CmdResult<rd::ReleaseActionResult> {
        Ok(self.releases().service.promote_release(args).await?)
    }

    pub async fn abort_release(
        &self,
        args: rd::ReleaseReasonArgs,
    ) -> CmdResult<rd::ReleaseActionResult> {
        Ok(self.releases().service.abort_release(args).await?)
    }

    pub async fn undo_release(&self, args: rd::UndoArgs) -> CmdResult<rd::ReleaseActionResult> {
        Ok(self.releases().service.undo_release(args).await?)
    }

    pub async fn pause_release(
        &self,
        args: rd::ReleaseReasonArgs,
    ) -> CmdResult<rd::ReleaseActionResult> {
        Ok(self.releases().service.pause_release(args).await?)
    }

    pub async fn resume_release(
        &self,
        args: rd::ReleaseReasonArgs,
    ) -> CmdResult<rd::ReleaseActionResult> {
        Ok(self.releases().service.resume_release(args).await?)
    }
}
