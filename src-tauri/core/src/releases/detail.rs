//! One release in full: its summary, analysis, revisions, what the connection may do, the
//! Kubernetes Events of its objects and the local action log's entries for it.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;

use super::cluster::call;
use super::connect::Cluster;
use super::dto::*;
use super::state::{self, canary_name};
use super::{ReleaseService, argo, log_target};
use crate::error::Result;

impl ReleaseService {
    pub(super) async fn detail(
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

    pub(super) async fn replica_sets(
        &self,
        c: &Cluster,
        stable: &Deployment,
    ) -> Result<Vec<ReplicaSet>> {
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
}
