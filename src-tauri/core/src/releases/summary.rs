//! Reading releases: a cluster's releases (stable Deployments with their `<app>-canary`,
//! and Argo Rollouts), whether a named release is a Deployment or a Rollout, and the
//! summary of a Deployment release.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;

use super::ReleaseService;
use super::cluster::call;
use super::connect::Cluster;
use super::dto::*;
use super::state::{
    self, APP_LABEL, PAUSED, PAUSED_REASON, Plan, TRACK_LABEL, annotation, canary_name,
};
use crate::error::{Error, Result};

impl ReleaseService {
    pub(super) async fn list_cluster(&self, c: &Cluster) -> Result<Vec<ReleaseSummary>> {
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
    pub(super) async fn kind_of(&self, c: &Cluster, name: &str) -> Result<ReleaseKind> {
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

    pub(super) fn summary(
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
}
