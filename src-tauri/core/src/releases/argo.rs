//! Argo Rollouts (`argoproj.io/v1alpha1` `Rollout`), where the CRD is installed: read as
//! releases of kind `argo_rollout` and driven through the fields Argo's own kubectl plugin
//! sets — `spec.paused`, `status.pauseConditions` / `status.currentStepIndex` (promote a
//! step), `status.promoteFull`, `status.abort`, `spec.template` (undo). Argo's controller
//! does the scaling; the console only asks.

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use super::ReleaseService;
use super::connect::Cluster;
use super::dto::{
    ReleaseActionId, ReleaseKind, ReleaseRef, ReleaseState, ReleaseSummary, TrackInfo,
};
use super::state;
use crate::error::{Error, Result};

pub const HASH_LABEL: &str = "rollouts-pod-template-hash";

pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

/// What an action on a Rollout needs from RBAC: (verb, group, resource[/subresource]).
pub fn needs(action: ReleaseActionId) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v = vec![
        ("get", "argoproj.io", "rollouts"),
        ("patch", "argoproj.io", "rollouts"),
        ("create", "", "events"),
    ];
    match action {
        ReleaseActionId::PromoteStep | ReleaseActionId::PromoteFull | ReleaseActionId::Abort => {
            v.push(("patch", "argoproj.io", "rollouts/status"));
        }
        ReleaseActionId::Undo => v.push(("list", "apps", "replicasets")),
        ReleaseActionId::Pause | ReleaseActionId::Resume => {}
    }
    v
}

/// The traffic weights of the canary steps (`setWeight`), ending at 100, and how many of
/// them `status.currentStepIndex` has passed.
pub fn plan(ro: &Value) -> (Vec<u32>, u32) {
    let steps = ro["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let index = ro["status"]["currentStepIndex"].as_u64().unwrap_or(0) as usize;
    let mut weights = Vec::new();
    let mut done = 0;
    for (i, s) in steps.iter().enumerate() {
        if let Some(w) = s["setWeight"].as_u64() {
            weights.push(w.min(100) as u32);
            if i < index {
                done += 1;
            }
        }
    }
    if weights.last() != Some(&100) {
        weights.push(100);
        if index >= steps.len() && !steps.is_empty() {
            done += 1;
        }
    }
    (weights, done)
}

fn paused_by_step(ro: &Value) -> bool {
    ro["status"]["pauseConditions"]
        .as_array()
        .is_some_and(|p| !p.is_empty())
}

/// The Rollout's state in the contract's terms.
pub fn release_state(ro: &Value) -> ReleaseState {
    let status = &ro["status"];
    if status["abort"].as_bool() == Some(true) {
        return ReleaseState::Aborted;
    }
    if ro["spec"]["paused"].as_bool() == Some(true) {
        return ReleaseState::Paused;
    }
    if paused_by_step(ro) {
        return ReleaseState::WaitingDecision;
    }
    let current = status["currentPodHash"].as_str();
    let stable = status["stableRS"].as_str();
    match status["phase"].as_str() {
        Some("Progressing") | Some("Degraded") => ReleaseState::Progressing,
        _ if current.is_some() && current == stable => {
            if status["currentStepIndex"].as_u64().is_some() {
                ReleaseState::Complete
            } else {
                ReleaseState::Idle
            }
        }
        Some("Healthy") | None => ReleaseState::Idle,
        _ => ReleaseState::Progressing,
    }
}

fn rs_hash(rs: &ReplicaSet) -> Option<&str> {
    rs.metadata
        .labels
        .as_ref()?
        .get(HASH_LABEL)
        .map(String::as_str)
}

fn owned_by(rs: &ReplicaSet, uid: Option<&str>) -> bool {
    rs.metadata
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|o| Some(o.uid.as_str()) == uid))
}

fn track_from_rs(rs: &ReplicaSet) -> TrackInfo {
    let t = rs.spec.template.as_ref();
    let d = k8s_openapi::api::apps::v1::Deployment {
        metadata: rs.metadata.clone(),
        spec: k8s_openapi::api::apps::v1::DeploymentSpec {
            replicas: rs.spec.replicas,
            template: t.cloned().unwrap_or_default(),
            ..Default::default()
        },
        status: Some(k8s_openapi::api::apps::v1::DeploymentStatus {
            ready_replicas: rs.status.as_ref().and_then(|s| s.ready_replicas),
            replicas: rs.status.as_ref().map(|s| s.replicas),
            ..Default::default()
        }),
    };
    state::track_info(&d)
}

/// Stable and canary from the Rollout's ReplicaSets (`status.stableRS`,
/// `status.currentPodHash`); without them, the Rollout's own template and counts.
pub fn tracks(ro: &Value, sets: &[ReplicaSet]) -> (TrackInfo, Option<TrackInfo>) {
    let uid = ro["metadata"]["uid"].as_str();
    let owned: Vec<&ReplicaSet> = sets.iter().filter(|rs| owned_by(rs, uid)).collect();
    let stable_hash = ro["status"]["stableRS"].as_str();
    let current_hash = ro["status"]["currentPodHash"].as_str();
    let find = |h: Option<&str>| {
        owned
            .iter()
            .find(|rs| h.is_some() && rs_hash(rs) == h)
            .copied()
    };
    let stable = match find(stable_hash) {
        Some(rs) => track_from_rs(rs),
        None => {
            let d: k8s_openapi::api::apps::v1::Deployment =
                serde_json::from_value(json!({"metadata": ro["metadata"], "spec": ro["spec"], "status": {
                    "replicas": ro["status"]["replicas"], "readyReplicas": ro["status"]["readyReplicas"]}}))
                .unwrap_or_default();
            state::track_info(&d)
        }
    };
    let canary = (current_hash != stable_hash)
        .then(|| find(current_hash).map(track_from_rs))
        .flatten();
    (stable, canary)
}

/// The version the Rollout's (desired) pod template names.
pub fn template_version(ro: &Value) -> Option<String> {
    let t: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(ro["spec"]["template"].clone()).ok()?;
    state::version_of(Some(&t))
}

/// The Rollout's revisions from its ReplicaSets (`rollout.argoproj.io/revision`), newest
/// first; the current one is `status.currentPodHash`'s.
pub fn revisions(ro: &Value, sets: &[ReplicaSet]) -> Vec<super::dto::Revision> {
    let uid = ro["metadata"]["uid"].as_str();
    let current = ro["status"]["currentPodHash"].as_str();
    let mut out: Vec<super::dto::Revision> = sets
        .iter()
        .filter(|rs| owned_by(rs, uid))
        .filter_map(|rs| {
            let a = rs.metadata.annotations.as_ref()?;
            let revision = a
                .get("rollout.argoproj.io/revision")
                .or_else(|| a.get(state::REVISION))?
                .parse()
                .ok()?;
            Some(super::dto::Revision {
                revision,
                image: state::image_of(rs.spec.template.as_ref()),
                created_at_ms: rs
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_millisecond()),
                current: current.is_some() && rs_hash(rs) == current,
                change_cause: a.get(state::CHANGE_CAUSE).cloned(),
            })
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.revision));
    out
}

impl ReleaseService {
    pub(super) fn rollouts(&self, c: &Cluster) -> Api<DynamicObject> {
        Api::namespaced_with(c.client.clone(), &c.namespace, &resource())
    }

    /// Whether the cluster serves Rollouts to this connection (the CRD is installed and
    /// they may be listed).
    pub(super) async fn rollouts_served(&self, c: &Cluster) -> bool {
        let what = c.what("rollouts.argoproj.io");
        let lp = kube::api::ListParams::default().limit(1);
        super::cluster::call(&what, self.timeout(), self.rollouts(c).list(&lp))
            .await
            .is_ok()
    }

    /// A Rollout by name; `None` when absent or when the CRD is not installed.
    pub(super) async fn get_rollout(&self, c: &Cluster, name: &str) -> Result<Option<Value>> {
        let what = c.what(&format!("rollouts.argoproj.io/{name}"));
        match super::cluster::call(&what, self.timeout(), self.rollouts(c).get_opt(name)).await {
            Ok(o) => Ok(o.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
            Err(e) if e.api().is_some_and(|a| a.status == 404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every Rollout; empty when the CRD is not installed or the connection may not read
    /// Rollouts (the console's Role does not grant them).
    pub(super) async fn list_rollouts(&self, c: &Cluster) -> Result<Vec<Value>> {
        let what = c.what("rollouts.argoproj.io");
        match super::cluster::call(
            &what,
            self.timeout(),
            self.rollouts(c).list(&Default::default()),
        )
        .await
        {
            Ok(list) => Ok(list
                .items
                .into_iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect()),
            Err(e) if e.api().is_some_and(|a| a.status == 404 || a.status == 403) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub(super) fn rollout_summary(
        &self,
        c: &Cluster,
        ro: &Value,
        sets: &[ReplicaSet],
    ) -> ReleaseSummary {
        let name = ro["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let r = ReleaseRef {
            profile_id: c.profile.id.as_str().to_string(),
            namespace: c.namespace.clone(),
            name,
        };
        let (steps, step) = plan(ro);
        let (stable, canary) = tracks(ro, sets);
        let state = release_state(ro);
        let paused_reason = match state {
            ReleaseState::Paused => Some("paused (spec.paused)".to_string()),
            ReleaseState::WaitingDecision => ro["status"]["pauseConditions"][0]["reason"]
                .as_str()
                .map(|r| format!("waiting at a pause step ({r})")),
            ReleaseState::Aborted => ro["status"]["message"].as_str().map(str::to_string),
            _ => None,
        };
        let actual = ro["status"]["canary"]["weights"]["canary"]["weight"]
            .as_u64()
            .map(|w| w as u32)
            .unwrap_or_else(|| {
                state::actual_weight(
                    canary.as_ref().map_or(0, |t| t.replicas_ready),
                    stable.replicas_ready,
                )
            });
        ReleaseSummary {
            cluster: c.profile.name.clone(),
            kind: ReleaseKind::ArgoRollout,
            desired_weight: state::weight_at(&steps, step),
            actual_weight: actual,
            steps,
            step,
            stable,
            canary,
            state,
            paused_reason,
            verdict: None,
            updated_at_ms: self.inner.host.clock.now_ms(),
            release: r,
        }
    }

    /// The Rollout's ReplicaSets (by its selector).
    pub(super) async fn rollout_sets(&self, c: &Cluster, ro: &Value) -> Result<Vec<ReplicaSet>> {
        let selector = ro["spec"]["selector"]["matchLabels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(c.client.clone(), &c.namespace);
        let list = super::cluster::call(
            &c.what("replicasets"),
            self.timeout(),
            api.list(&kube::api::ListParams::default().labels(&selector)),
        )
        .await?;
        Ok(list.items)
    }

    async fn patch_rollout(
        &self,
        c: &Cluster,
        name: &str,
        status: bool,
        body: Value,
        rv: &str,
    ) -> Result<()> {
        let what = c.what(&format!(
            "rollouts.argoproj.io/{name}{}",
            if status { "/status" } else { "" }
        ));
        let mut body = body;
        body["metadata"]["resourceVersion"] = rv.into();
        let api = self.rollouts(c);
        let pp = PatchParams::default();
        if status {
            super::cluster::call(
                &what,
                self.timeout(),
                api.patch_status(name, &pp, &Patch::Merge(&body)),
            )
            .await?;
        } else {
            super::cluster::call(
                &what,
                self.timeout(),
                api.patch(name, &pp, &Patch::Merge(&body)),
            )
            .await?;
        }
        Ok(())
    }

    /// Drives a Rollout the way Argo's kubectl plugin does. Each write carries the read
    /// resourceVersion; a 409 is returned as a conflict (the Rollout moved: look again).
    pub(super) async fn rollout_action(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        action: ReleaseActionId,
        revision: Option<i64>,
    ) -> Result<(String, Option<u64>)> {
        let ro = self.get_rollout(c, &r.name).await?.ok_or_else(|| {
            Error::invalid(format!("there is no Rollout {} in {}", r.name, c.namespace))
        })?;
        let rv = ro["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.progress(
            r,
            action,
            &format!("updating rollout {}", r.name),
            None,
            false,
            None,
        );
        let message = match action {
            ReleaseActionId::PromoteStep => {
                if paused_by_step(&ro) || ro["spec"]["paused"].as_bool() == Some(true) {
                    self.patch_rollout(
                        c,
                        &r.name,
                        true,
                        json!({"status": {"pauseConditions": null}}),
                        &rv,
                    )
                    .await?;
                    let rv = self
                        .get_rollout(c, &r.name)
                        .await?
                        .and_then(|o| {
                            o["metadata"]["resourceVersion"]
                                .as_str()
                                .map(str::to_string)
                        })
                        .unwrap_or_default();
                    self.patch_rollout(c, &r.name, false, json!({"spec": {"paused": false}}), &rv)
                        .await?;
                    format!("{} promoted past its pause step", r.name)
                } else {
                    let next = ro["status"]["currentStepIndex"].as_u64().unwrap_or(0) + 1;
                    self.patch_rollout(
                        c,
                        &r.name,
                        true,
                        json!({"status": {"currentStepIndex": next}}),
                        &rv,
                    )
                    .await?;
                    format!("{} skipped to step index {next}", r.name)
                }
            }
            ReleaseActionId::PromoteFull => {
                self.patch_rollout(
                    c,
                    &r.name,
                    true,
                    json!({"status": {"promoteFull": true}}),
                    &rv,
                )
                .await?;
                format!(
                    "{} promoted in full (Argo Rollouts finishes the rollout)",
                    r.name
                )
            }
            ReleaseActionId::Abort => {
                self.patch_rollout(c, &r.name, true, json!({"status": {"abort": true}}), &rv)
                    .await?;
                format!(
                    "{} aborted: Argo Rollouts shifts all traffic back to stable",
                    r.name
                )
            }
            ReleaseActionId::Pause | ReleaseActionId::Resume => {
                let paused = action == ReleaseActionId::Pause;
                self.patch_rollout(c, &r.name, false, json!({"spec": {"paused": paused}}), &rv)
                    .await?;
                format!("{} {}", if paused { "paused" } else { "resumed" }, r.name)
            }
            ReleaseActionId::Undo => {
                let revision = revision.ok_or_else(|| Error::invalid("undo needs a revision"))?;
                let sets = self.rollout_sets(c, &ro).await?;
                let uid = ro["metadata"]["uid"].as_str();
                let rs = sets
                    .iter()
                    .find(|rs| {
                        owned_by(rs, uid)
                            && revisions(&ro, std::slice::from_ref(*rs))
                                .first()
                                .is_some_and(|x| x.revision == revision)
                    })
                    .ok_or_else(|| {
                        Error::invalid(format!("{} has no revision {revision}", r.name))
                    })?;
                let mut template = rs.spec.template.clone().unwrap_or_default();
                if let Some(l) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                    l.remove(HASH_LABEL);
                }
                let current = ro["spec"]["template"].clone();
                let wanted = serde_json::to_value(&template).unwrap_or(Value::Null);
                let patch = json!({"spec": {"template": super::merge_diff(&current, &wanted)}});
                self.patch_rollout(c, &r.name, false, patch, &rv).await?;
                format!("{} is going back to revision {revision}", r.name)
            }
        };
        Ok((message, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(status: Value, paused: bool) -> Value {
        json!({
            "metadata": {"name": "agent", "uid": "u1"},
            "spec": {"paused": paused, "replicas": 4, "selector": {"matchLabels": {"app": "agent"}},
                "template": {"spec": {"containers": [{"name": "a", "image": "img:2"}]}},
                "strategy": {"canary": {"steps": [
                    {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "10m"}}]}}},
            "status": status
        })
    }

    #[test]
    fn plans_come_from_set_weight_steps() {
        let ro = rollout(json!({"currentStepIndex": 1}), false);
        assert_eq!(plan(&ro), (vec![20, 50, 100], 1));
        let ro = rollout(json!({"currentStepIndex": 3}), false);
        assert_eq!(plan(&ro), (vec![20, 50, 100], 2));
        let ro = rollout(json!({"currentStepIndex": 4}), false);
        assert_eq!(plan(&ro), (vec![20, 50, 100], 3));
        let ro = rollout(json!({}), false);
        assert_eq!(plan(&ro), (vec![20, 50, 100], 0));
    }

    #[test]
    fn states_follow_argo_status() {
        let waiting = rollout(
            json!({"currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep"}],
                   "phase": "Paused", "stableRS": "a", "currentPodHash": "b"}),
            false,
        );
        assert_eq!(release_state(&waiting), ReleaseState::WaitingDecision);
        assert_eq!(
            release_state(&rollout(json!({"abort": true}), false)),
            ReleaseState::Aborted
        );
        assert_eq!(
            release_state(&rollout(json!({}), true)),
            ReleaseState::Paused
        );
        assert_eq!(
            release_state(&rollout(json!({"phase": "Progressing"}), false)),
            ReleaseState::Progressing
        );
        assert_eq!(
            release_state(&rollout(
                json!({"phase": "Healthy", "stableRS": "a", "currentPodHash": "a", "currentStepIndex": 4}),
                false
            )),
            ReleaseState::Complete
        );
    }

    #[test]
    fn rollout_actions_need_the_status_subresource() {
        assert!(needs(ReleaseActionId::Abort).contains(&(
            "patch",
            "argoproj.io",
            "rollouts/status"
        )));
        assert!(!needs(ReleaseActionId::Pause).contains(&(
            "patch",
            "argoproj.io",
            "rollouts/status"
        )));
        assert!(needs(ReleaseActionId::Undo).contains(&("list", "apps", "replicasets")));
    }
}
