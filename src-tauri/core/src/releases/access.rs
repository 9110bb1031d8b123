//! Access review: what each release action needs from RBAC, asked of the cluster with
//! SelfSubjectAccessReviews, and why the release's state makes an action pointless; together
//! the per-action permissions of a release's detail.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use super::cluster::call;
use super::connect::Cluster;
use super::dto::*;
use super::{ReleaseService, argo};
use crate::error::{Error, Result};

/// What an action needs from RBAC: (verb, group, resource).
pub(super) fn needs(action: ReleaseActionId) -> Vec<(&'static str, &'static str, &'static str)> {
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

impl ReleaseService {
    pub(super) async fn access(
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
    pub(super) fn rbac_denial(
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

    pub(super) async fn permissions(
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

    #[test]
    fn undo_needs_to_list_replica_sets_and_every_action_writes_an_event() {
        for a in ReleaseActionId::ALL {
            assert!(needs(a).contains(&("create", "", "events")));
            assert!(needs(a).contains(&("patch", "apps", "deployments")));
        }
        assert!(needs(ReleaseActionId::Undo).contains(&("list", "apps", "replicasets")));
    }
}
