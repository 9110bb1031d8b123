//! Watching a Kubernetes profile's releases: its Deployments (and, where the CRD is
//! installed, its Argo Rollouts) through kube's watcher with backoff, each change pushed as
//! the release's new summary and each deletion (also one found by a re-list after a lost
//! connection) as a removal.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;

use super::ReleaseService;
use super::connect::Cluster;
use super::dto::*;
use super::state::{APP_LABEL, TRACK_LABEL};
use crate::domain::ProfileId;
use crate::error::Result;

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

impl ReleaseService {
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
}
