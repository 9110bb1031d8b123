//! What a release is, read from its objects: the stable Deployment, its `<app>-canary` and
//! the canary annotations (deploy/README.md), as pure functions over k8s-openapi types.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::dto::{ReleaseState, Revision, TrackInfo};
use crate::error::{Error, Result};

pub const APP_LABEL: &str = "app.kubernetes.io/name";
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
pub const TRACK_LABEL: &str = "track";
pub const STEPS: &str = "flightdeck.dev/canary-steps";
pub const STEP: &str = "flightdeck.dev/canary-step";
pub const ANALYSIS: &str = "flightdeck.dev/analysis";
pub const PAUSED: &str = "flightdeck.dev/paused";
pub const PAUSED_REASON: &str = "flightdeck.dev/paused-reason";
/// Set by Abort (the operator's reason), removed by the next promote (resume keeps it).
pub const ABORTED: &str = "flightdeck.dev/aborted";
/// Set by a full promotion, removed by the next promote step.
pub const COMPLETED: &str = "flightdeck.dev/completed";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

pub fn canary_name(app: &str) -> String {
    format!("{app}-canary")
}

fn annotations(d: &Deployment) -> Option<&BTreeMap<String, String>> {
    d.metadata.annotations.as_ref()
}

pub fn annotation<'a>(d: &'a Deployment, key: &str) -> Option<&'a str> {
    annotations(d)?.get(key).map(String::as_str)
}

/// `flightdeck.dev/canary-steps`: strictly increasing percents 1-100, the last 100.
pub fn parse_steps(raw: &str) -> Result<Vec<u32>> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "annotation {STEPS} {raw:?} is not a canary plan: {why}"
        ))
    };
    let steps: Vec<u32> = raw
        .split(',')
        .map(|s| s.trim().parse::<u32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("each step is a whole percent"))?;
    if steps.is_empty() || steps.iter().any(|s| !(1..=100).contains(s)) {
        return Err(bad("each step is 1-100"));
    }
    if steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("steps must increase"));
    }
    if steps.last() != Some(&100) {
        return Err(bad("the last step is 100"));
    }
    Ok(steps)
}

/// The canary's plan and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<u32>,
    pub step: u32,
}

impl Plan {
    pub fn of(canary: &Deployment) -> Result<Self> {
        let name = canary.metadata.name.as_deref().unwrap_or("?");
        let steps = parse_steps(annotation(canary, STEPS).ok_or_else(|| {
            Error::invalid(format!("Deployment {name} has no {STEPS} annotation"))
        })?)?;
        let raw_step = annotation(canary, STEP).unwrap_or("0");
        let step: u32 = raw_step.trim().parse().map_err(|_| {
            Error::invalid(format!(
                "annotation {STEP} {raw_step:?} on {name} is not a step number"
            ))
        })?;
        if step as usize > steps.len() {
            return Err(Error::invalid(format!(
                "annotation {STEP} {step} on {name} is past the plan's {} steps",
                steps.len()
            )));
        }
        Ok(Self { steps, step })
    }

    pub fn weight(&self) -> u32 {
        weight_at(&self.steps, self.step)
    }
}

/// The percent at `step` steps done.
pub fn weight_at(steps: &[u32], step: u32) -> u32 {
    match step {
        0 => 0,
        i => steps.get(i as usize - 1).copied().unwrap_or(100),
    }
}

/// Canary replicas for `weight` percent of traffic next to `stable` ready replicas
/// (traffic follows ready replicas): at least one while the weight is above 0.
pub fn canary_replicas(stable: i32, weight: u32) -> i32 {
    if weight == 0 {
        return 0;
    }
    if weight >= 100 {
        return stable.max(1);
    }
    let w = f64::from(weight);
    let c = (f64::from(stable) * w / (100.0 - w)).round() as i32;
    c.max(1)
}

pub fn desired(d: &Deployment) -> i64 {
    d.spec
        .replicas
        .or_else(|| d.status.as_ref().and_then(|s| s.replicas))
        .unwrap_or(0)
        .into()
}

pub fn ready(d: &Deployment) -> i64 {
    d.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
        .into()
}

/// Whether the Deployment controller has caught up with the spec and every wanted
/// replica of the current template is ready.
pub fn rolled_out(d: &Deployment) -> bool {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else {
        return false;
    };
    // An autoscaled Deployment may leave spec.replicas unset: the status count is wanted.
    let want = d.spec.replicas.or(status.replicas).unwrap_or(1);
    status.observed_generation.unwrap_or(0) >= generation
        && status.updated_replicas.unwrap_or(0) >= want
        && status.ready_replicas.unwrap_or(0) >= want
        && status.replicas.unwrap_or(0) <= want.max(status.ready_replicas.unwrap_or(0))
}

pub fn template(d: &Deployment) -> Option<&PodTemplateSpec> {
    Some(&d.spec.template)
}

pub fn image_of(t: Option<&PodTemplateSpec>) -> String {
    t.and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

pub fn version_of(t: Option<&PodTemplateSpec>) -> Option<String> {
    let t = t?;
    if let Some(v) = t
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref()?.get(VERSION_LABEL))
    {
        return Some(v.clone());
    }
    t.spec
        .as_ref()?
        .containers
        .first()?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == "RELEASE_VERSION")
        .and_then(|e| e.value.clone())
}

fn template_annotation(t: Option<&PodTemplateSpec>, key: &str) -> Option<String> {
    t?.metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

pub fn revision_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

pub fn track_info(d: &Deployment) -> TrackInfo {
    let t = template(d);
    TrackInfo {
        image: image_of(t),
        model: template_annotation(t, "flightdeck.dev/model"),
        prompt_version: template_annotation(t, "flightdeck.dev/prompt-version"),
        policy_version: template_annotation(t, "flightdeck.dev/policy-version"),
        version: version_of(t),
        replicas_desired: desired(d),
        replicas_ready: ready(d),
        revision: revision_of(&d.metadata),
    }
}

/// Percent of ready replicas that are canary, rounded.
pub fn actual_weight(canary_ready: i64, stable_ready: i64) -> u32 {
    let total = canary_ready + stable_ready;
    if total <= 0 {
        return 0;
    }
    ((canary_ready as f64 / total as f64) * 100.0).round() as u32
}

/// The release's state from its objects (the Releases list puts those waiting for a
/// decision first).
pub fn release_state(
    stable: &Deployment,
    canary: Option<&Deployment>,
    plan: Option<&Plan>,
) -> ReleaseState {
    let Some(canary) = canary else {
        return ReleaseState::Idle;
    };
    if annotation(canary, PAUSED) == Some("true") {
        return ReleaseState::Paused;
    }
    if annotation(canary, ABORTED).is_some() {
        return ReleaseState::Aborted;
    }
    let step = plan.map_or(0, |p| p.step);
    let same = image_of(template(canary)) == image_of(template(stable));
    if step == 0 && same {
        return if annotation(canary, COMPLETED).is_some() {
            ReleaseState::Complete
        } else {
            ReleaseState::Idle
        };
    }
    if !rolled_out(canary) || !rolled_out(stable) {
        return ReleaseState::Progressing;
    }
    ReleaseState::WaitingDecision
}

/// The stable Deployment's revisions from its ReplicaSets, newest first.
pub fn revisions(stable: &Deployment, sets: &[ReplicaSet]) -> Vec<Revision> {
    let uid = stable.metadata.uid.as_deref();
    let current = revision_of(&stable.metadata);
    let mut out: Vec<Revision> = sets
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|o| Some(o.uid.as_str()) == uid))
        })
        .filter_map(|rs| {
            let revision = revision_of(&rs.metadata)?;
            Some(Revision {
                revision,
                image: image_of(rs.spec.template.as_ref()),
                created_at_ms: rs
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_millisecond()),
                current: Some(revision) == current,
                change_cause: rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(CHANGE_CAUSE).cloned()),
            })
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.revision));
    out
}

/// A canary pod template made the stable one: the track label, the selector's labels and
/// `RELEASE_TRACK` say `stable`; everything else (image, env, versions) is the canary's.
pub fn as_stable_template(canary: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = canary.clone();
    retrack(&mut t, "stable");
    t
}

/// Sets the track label and `RELEASE_TRACK` env of a template, and drops the
/// `pod-template-hash` label a ReplicaSet's template carries.
pub fn retrack(t: &mut PodTemplateSpec, track: &str) {
    let meta = t.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(TRACK_LABEL.into(), track.into());
    labels.remove("pod-template-hash");
    if let Some(spec) = t.spec.as_mut() {
        for c in &mut spec.containers {
            for e in c.env.iter_mut().flatten() {
                if e.name == "RELEASE_TRACK" && e.value_from.is_none() {
                    e.value = Some(track.into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    fn canary(step: &str, replicas: i32, ready: i32, image: &str) -> Deployment {
        deployment(serde_json::json!({
            "metadata": {"name": "agent-service-canary", "generation": 2, "annotations": {
                STEPS: "10,25,50,100", STEP: step}},
            "spec": {"replicas": replicas, "selector": {}, "template": {"spec": {"containers": [
                {"name": "agent-service", "image": image,
                 "env": [{"name": "RELEASE_TRACK", "value": "canary"}, {"name": "RELEASE_VERSION", "value": "0.2.0"}]}]}}},
            "status": {"observedGeneration": 2, "replicas": replicas, "readyReplicas": ready, "updatedReplicas": ready}
        }))
    }

    /// `d` with the annotation `key` set to `value`.
    fn annotated(mut d: Deployment, key: &str, value: &str) -> Deployment {
        d.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
        d
    }

    fn stable(image: &str) -> Deployment {
        deployment(serde_json::json!({
            "metadata": {"name": "agent-service", "uid": "u1", "generation": 1,
                         "annotations": {REVISION: "3"}},
            "spec": {"replicas": 9, "selector": {}, "template": {"metadata": {"labels": {
                "app.kubernetes.io/version": "0.1.0"}, "annotations": {"flightdeck.dev/model": "llama3.2"}},
                "spec": {"containers": [{"name": "agent-service", "image": image}]}}},
            "status": {"observedGeneration": 1, "replicas": 9, "readyReplicas": 9, "updatedReplicas": 9}
        }))
    }

    #[test]
    fn plans_are_parsed_strictly() {
        assert_eq!(parse_steps("10, 25,50,100").unwrap(), vec![10, 25, 50, 100]);
        for bad in [
            "",
            "10,5,100",
            "10,50",
            "0,100",
            "ten,100",
            "10,10,100",
            "50,150",
        ] {
            let e = parse_steps(bad).unwrap_err();
            assert!(e.to_string().contains(STEPS), "{bad}: {e}");
        }
        let c = canary("2", 3, 3, "img:2");
        assert_eq!(Plan::of(&c).unwrap().weight(), 25);
        let e = Plan::of(&canary("5", 0, 0, "img:2")).unwrap_err();
        assert!(e.to_string().contains("past the plan's 4 steps"), "{e}");
        let e = Plan::of(&canary("x", 0, 0, "img:2")).unwrap_err();
        assert!(e.to_string().contains("not a step number"), "{e}");
    }

    #[test]
    fn canary_replicas_follow_the_weight() {
        assert_eq!(canary_replicas(9, 0), 0);
        assert_eq!(canary_replicas(9, 10), 1);
        assert_eq!(canary_replicas(9, 25), 3);
        assert_eq!(canary_replicas(9, 50), 9);
        assert_eq!(canary_replicas(9, 100), 9);
        assert_eq!(
            canary_replicas(2, 10),
            1,
            "never 0 while the weight is above 0"
        );
        assert_eq!(actual_weight(1, 9), 10);
        assert_eq!(actual_weight(3, 9), 25);
        assert_eq!(actual_weight(0, 0), 0);
    }

    #[test]
    fn states_follow_the_objects() {
        let s = stable("img:1");
        assert_eq!(release_state(&s, None, None), ReleaseState::Idle);
        let c = canary("1", 1, 1, "img:2");
        let plan = Plan::of(&c).unwrap();
        assert_eq!(
            release_state(&s, Some(&c), Some(&plan)),
            ReleaseState::WaitingDecision
        );
        let c = canary("1", 1, 0, "img:2");
        assert_eq!(
            release_state(&s, Some(&c), Some(&plan)),
            ReleaseState::Progressing
        );
        let c = annotated(canary("1", 1, 1, "img:2"), PAUSED, "true");
        assert_eq!(
            release_state(&s, Some(&c), Some(&plan)),
            ReleaseState::Paused
        );
        let c = canary("0", 0, 0, "img:1");
        let plan0 = Plan::of(&c).unwrap();
        assert_eq!(
            release_state(&s, Some(&c), Some(&plan0)),
            ReleaseState::Idle
        );
        let c = annotated(canary("0", 0, 0, "img:1"), COMPLETED, "true");
        assert_eq!(
            release_state(&s, Some(&c), Some(&plan0)),
            ReleaseState::Complete
        );
        let c = annotated(canary("0", 0, 0, "img:2"), ABORTED, "bad");
        assert_eq!(
            release_state(&s, Some(&c), Some(&plan0)),
            ReleaseState::Aborted
        );
    }

    #[test]
    fn track_info_reads_versions_from_the_template() {
        let t = track_info(&stable("img:1"));
        assert_eq!(t.image, "img:1");
        assert_eq!(t.version.as_deref(), Some("0.1.0"));
        assert_eq!(t.model.as_deref(), Some("llama3.2"));
        assert_eq!(t.prompt_version, None);
        assert_eq!(
            (t.replicas_desired, t.replicas_ready, t.revision),
            (9, 9, Some(3))
        );
        // Without the label the version comes from RELEASE_VERSION.
        let c = track_info(&canary("1", 1, 1, "img:2"));
        assert_eq!(c.version.as_deref(), Some("0.2.0"));
    }

    #[test]
    fn a_canary_template_becomes_a_stable_one() {
        let c = canary("1", 1, 1, "img:2");
        let t = as_stable_template(template(&c).unwrap());
        let labels = t.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        assert_eq!(labels.get(TRACK_LABEL).map(String::as_str), Some("stable"));
        let env = t.spec.as_ref().unwrap().containers[0].env.as_ref().unwrap();
        assert_eq!(env[0].value.as_deref(), Some("stable"));
        assert_eq!(env[1].value.as_deref(), Some("0.2.0"));
        assert_eq!(image_of(Some(&t)), "img:2");
    }

    #[test]
    fn revisions_come_from_owned_replica_sets_newest_first() {
        let s = stable("img:3");
        let rs = |rev: &str, image: &str, owner: &str| -> ReplicaSet {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("agent-service-{rev}"),
                    "creationTimestamp": "2026-11-22T09:00:00Z",
                    "annotations": {REVISION: rev, CHANGE_CAUSE: format!("deploy {image}")},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                        "name": "agent-service", "uid": owner}]},
                "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "a", "image": image}]}}}
            }))
            .unwrap()
        };
        let revs = revisions(
            &s,
            &[
                rs("1", "img:1", "u1"),
                rs("3", "img:3", "u1"),
                rs("2", "img:2", "u1"),
                rs("9", "x", "other"),
            ],
        );
        let got: Vec<(i64, &str, bool)> = revs
            .iter()
            .map(|r| (r.revision, r.image.as_str(), r.current))
            .collect();
        assert_eq!(
            got,
            [(3, "img:3", true), (2, "img:2", false), (1, "img:1", false)]
        );
        assert_eq!(revs[0].change_cause.as_deref(), Some("deploy img:3"));
        assert!(revs[0].created_at_ms.is_some());
    }
}
