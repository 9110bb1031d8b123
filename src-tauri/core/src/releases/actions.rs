//! The release actions: promote (a step or in full), abort, undo, pause and resume, each
//! SSAR-checked, audited, recorded as a Kubernetes Event, and written as merge patches with
//! a resourceVersion precondition that are re-decided on 409.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::access::needs;
use super::cluster::{call, conflict, forbidden, is_conflict};
use super::connect::Cluster;
use super::dto::*;
use super::state::{
    self, ABORTED, COMPLETED, PAUSED, PAUSED_REASON, Plan, STEP, annotation, canary_name,
};
use super::{ReleaseService, argo, log_target};
use crate::agent::Reason;
use crate::error::{Error, Result};

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
    // ---- actions ----------------------------------------------------------------------

    /// Runs one action: reason, RBAC, the write, the Event, the log entry, the new detail.
    pub(super) async fn act<F, Fut>(
        &self,
        r: &ReleaseRef,
        action: ReleaseActionId,
        reason: &str,
        revision: Option<i64>,
        run: F,
    ) -> Result<ReleaseActionResult>
    where
        F: FnOnce(Cluster, String) -> Fut,
        Fut: std::future::Future<Output = Result<(String, Option<u64>)>>,
    {
        let host = self.inner.host.clone();
        let actor = self.inner.options.actor.clone();
        let outcome = host
            .audited_because(&actor, action.as_str(), &log_target(r), reason, async {
                let reason = reason_of(reason)?;
                let c = self.cluster(r).await?;
                self.progress(r, action, "checking permissions", None, false, None);
                let kind = self.kind_of(&c, &r.name).await?;
                let needed = match kind {
                    ReleaseKind::Deployment => needs(action),
                    ReleaseKind::ArgoRollout => argo::needs(action),
                };
                let answers = self.access(&c, &needed).await?;
                if let Some(denied) = Self::rbac_denial(&c, &needed, &answers) {
                    return Err(forbidden(&c.what(action.as_str()), denied));
                }
                let (mut message, cancelled) = match kind {
                    ReleaseKind::Deployment => run(c.clone(), reason.clone()).await?,
                    ReleaseKind::ArgoRollout => {
                        let mut done = self.rollout_action(&c, r, action, revision).await?;
                        if action == ReleaseActionId::Abort {
                            let ro = self.get_rollout(&c, &r.name).await?.unwrap_or_default();
                            let version = argo::template_version(&ro);
                            let (n, note) = self
                                .cancel_canary_approvals(r, version.as_deref(), &reason)
                                .await?;
                            done.0.push_str(&note);
                            done.1 = n;
                        }
                        done
                    }
                };
                if let Err(e) = self.record_event(&c, r, action, &actor, &reason).await {
                    message.push_str(&format!(
                        " (the Kubernetes Event could not be recorded: {e})"
                    ));
                }
                Ok((c, message, cancelled))
            })
            .await;
        match outcome {
            Ok((c, message, cancelled_approvals)) => {
                self.progress(r, action, "done", Some(1.0), true, None);
                Ok(ReleaseActionResult {
                    detail: self.detail(&c, r, None).await?,
                    message,
                    cancelled_approvals,
                })
            }
            Err(e) => {
                self.progress(r, action, "failed", None, true, Some(e.to_string()));
                Err(e)
            }
        }
    }

    pub(super) async fn record_event(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        action: ReleaseActionId,
        actor: &str,
        reason: &str,
    ) -> Result<()> {
        let name = canary_name(&r.name);
        let (api_version, kind, meta) = match self.get_deployment(c, &name).await? {
            Some(d) => ("apps/v1", "Deployment", d.metadata),
            None => match self.get_deployment(c, &r.name).await? {
                Some(d) => ("apps/v1", "Deployment", d.metadata),
                None => {
                    let ro = self.get_rollout(c, &r.name).await?.ok_or_else(|| {
                        Error::invalid(format!("{} is gone from {}", r.name, c.namespace))
                    })?;
                    let meta: ObjectMeta =
                        serde_json::from_value(ro["metadata"].clone()).unwrap_or_default();
                    ("argoproj.io/v1alpha1", "Rollout", meta)
                }
            },
        };
        let target = Deployment {
            metadata: meta,
            ..Default::default()
        };
        let now_ms = self.inner.host.clock.now_ms();
        let ts = k8s_openapi::jiff::Timestamp::from_millisecond(now_ms)
            .map_err(|e| Error::invalid(format!("clock time {now_ms} is not a timestamp: {e}")))?;
        let object = target.metadata.name.clone().unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{object}.{:x}{:04x}",
                    now_ms,
                    rand::random::<u16>()
                )),
                namespace: Some(c.namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
                name: Some(object),
                namespace: Some(c.namespace.clone()),
                uid: target.metadata.uid.clone(),
                resource_version: target.metadata.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(action.event_reason().into()),
            message: Some(format!("{actor}: {} — {reason}", action.as_str())),
            type_: Some("Normal".into()),
            count: Some(1),
            first_timestamp: Some(Time(ts)),
            last_timestamp: Some(Time(ts)),
            event_time: Some(MicroTime(ts)),
            action: Some(action.as_str().into()),
            reporting_component: Some("flightdeck.dev/console".into()),
            reporting_instance: Some(actor.chars().take(128).collect()),
            source: Some(EventSource {
                component: Some("flightdeck-console".into()),
                host: None,
            }),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(c.client.clone(), &c.namespace);
        call(
            &c.what("events"),
            self.timeout(),
            api.create(&PostParams::default(), &event),
        )
        .await?;
        Ok(())
    }

    /// GET -> decide -> PATCH with the read resourceVersion as precondition. On 409 the
    /// object is read again: if what the decision was based on moved, the action stops
    /// with a conflict naming the change; otherwise it decides again, a bounded number of
    /// times.
    pub(super) async fn patch_guarded<F>(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        action: ReleaseActionId,
        name: &str,
        decide: F,
    ) -> Result<Deployment>
    where
        F: Fn(&Deployment) -> Result<Value>,
    {
        let what = c.what(&format!("deployments/{name}"));
        let mut first: Option<Decided> = None;
        for _ in 0..=self.inner.options.conflict_retries {
            let cur = self.get_deployment(c, name).await?.ok_or_else(|| {
                Error::invalid(format!("Deployment {name} is gone from {}", c.namespace))
            })?;
            let now = Decided::of(&cur);
            match &first {
                None => first = Some(now),
                Some(before) if *before != now => {
                    return Err(conflict(
                        &what,
                        format!(
                            "{} changed while {} was being applied: {}; nothing was changed by this action, look again and decide",
                            r.name,
                            action.as_str(),
                            before.describe_change(&now)
                        ),
                    ));
                }
                Some(_) => {}
            }
            let rv = cur.metadata.resource_version.clone().unwrap_or_default();
            let body = decide(&cur)?;
            self.progress(r, action, &format!("updating {name}"), None, false, None);
            let params = PatchParams::default();
            let api = c.deployments();
            // A JSON merge patch (RFC 7386) carrying the resourceVersion read: the API
            // server applies it only to that version (409 otherwise).
            let mut body = body;
            body["metadata"]["resourceVersion"] = rv.into();
            let result = call(
                &what,
                self.timeout(),
                api.patch(name, &params, &Patch::Merge(&body)),
            )
            .await;
            match result {
                Ok(d) => return Ok(d),
                Err(e) if is_conflict(&e) => {
                    tracing::info!(deployment = name, "conflict on write; reading again");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(conflict(
            &what,
            format!(
                "{name} kept changing: {} writes were refused with 409; try again",
                self.inner.options.conflict_retries + 1
            ),
        ))
    }

    /// Polls until `name` is rolled out, reporting ready/desired as progress.
    pub(super) async fn wait_ready(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        action: ReleaseActionId,
        name: &str,
    ) -> Result<Deployment> {
        let deadline = tokio::time::Instant::now() + self.inner.options.rollout_timeout;
        loop {
            let d = self.get_deployment(c, name).await?.ok_or_else(|| {
                Error::invalid(format!("Deployment {name} is gone from {}", c.namespace))
            })?;
            let want = d.spec.replicas.unwrap_or(1);
            let ready = state::ready(&d);
            if state::rolled_out(&d) {
                return Ok(d);
            }
            let fraction = if want > 0 {
                Some((ready as f64 / f64::from(want)).min(1.0))
            } else {
                None
            };
            self.progress(
                r,
                action,
                &format!("waiting for {name}: {ready}/{want} ready"),
                fraction,
                false,
                None,
            );
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    endpoint: c.what(&format!(
                        "deployments/{name} rollout ({ready}/{want} ready)"
                    )),
                    after: self.inner.options.rollout_timeout,
                });
            }
            tokio::time::sleep(self.inner.options.poll_interval).await;
        }
    }

    pub(super) async fn promote_step(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        reason: &str,
    ) -> Result<(String, Option<u64>)> {
        let (stable, canary) = self.objects(c, &r.name).await?;
        let canary = canary.ok_or_else(|| no_canary(r))?;
        let plan = Plan::of(&canary)?;
        let next = plan.step + 1;
        if next as usize >= plan.steps.len() {
            // The next step is 100 %: that is the full promotion.
            return self.promote_full(c, r, reason).await;
        }
        let stable_replicas = state::desired(&stable) as i32;
        let cname = canary_name(&r.name);
        self.patch_guarded(c, r, ReleaseActionId::PromoteStep, &cname, |cur| {
            let p = Plan::of(cur)?;
            let weight = state::weight_at(&p.steps, next);
            Ok(json!({
                "metadata": {"annotations": {
                    STEP: next.to_string(), PAUSED: null, PAUSED_REASON: null, ABORTED: null, COMPLETED: null}},
                "spec": {"replicas": state::canary_replicas(stable_replicas, weight)}
            }))
        })
        .await?;
        self.wait_ready(c, r, ReleaseActionId::PromoteStep, &cname)
            .await?;
        let weight = state::weight_at(&plan.steps, next);
        Ok((
            format!(
                "{} promoted to step {next} of {} ({weight} %)",
                r.name,
                plan.steps.len()
            ),
            None,
        ))
    }

    pub(super) async fn promote_full(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        _reason: &str,
    ) -> Result<(String, Option<u64>)> {
        let action = ReleaseActionId::PromoteFull;
        let (_, canary) = self.objects(c, &r.name).await?;
        let canary = canary.ok_or_else(|| no_canary(r))?;
        let template = state::template(&canary).ok_or_else(|| {
            Error::invalid(format!("{} has no pod template", canary_name(&r.name)))
        })?;
        let image = state::image_of(Some(template));
        let stable_template = serde_json::to_value(state::as_stable_template(template))
            .map_err(|e| Error::invalid(format!("pod template: {e}")))?;
        self.patch_guarded(c, r, action, &r.name, |cur| {
            Ok(template_patch(cur, &stable_template))
        })
        .await?;
        self.progress(r, action, "rolling out stable", Some(0.0), false, None);
        self.wait_ready(c, r, action, &r.name).await?;
        let cname = canary_name(&r.name);
        self.patch_guarded(c, r, action, &cname, |_| {
            Ok(json!({
                "metadata": {"annotations": {
                    STEP: "0", COMPLETED: "true", PAUSED: null, PAUSED_REASON: null, ABORTED: null}},
                "spec": {"replicas": 0}
            }))
        })
        .await?;
        self.wait_ready(c, r, action, &cname).await?;
        self.inner
            .histories
            .lock()
            .expect("histories lock")
            .remove(r);
        self.inner.verdicts.lock().expect("verdicts lock").remove(r);
        Ok((
            format!("{} promoted in full: stable runs {image}", r.name),
            None,
        ))
    }

    pub(super) async fn abort(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        reason: &str,
    ) -> Result<(String, Option<u64>)> {
        let action = ReleaseActionId::Abort;
        let (_, canary) = self.objects(c, &r.name).await?;
        let canary = canary.ok_or_else(|| no_canary(r))?;
        let version = state::track_info(&canary).version;
        let cname = canary_name(&r.name);
        let reason_owned = reason.to_string();
        self.patch_guarded(c, r, action, &cname, |_| {
            Ok(json!({
                "metadata": {"annotations": {
                    STEP: "0", ABORTED: reason_owned, PAUSED: null, PAUSED_REASON: null, COMPLETED: null}},
                "spec": {"replicas": 0}
            }))
        })
        .await?;
        self.wait_ready(c, r, action, &cname).await?;
        // Stable carries all traffic again once its own replicas are ready.
        self.wait_ready(c, r, action, &r.name).await?;
        self.progress(
            r,
            action,
            "cancelling the canary's pending approvals",
            None,
            false,
            None,
        );
        let (cancelled, note) = self
            .cancel_canary_approvals(r, version.as_deref(), reason)
            .await?;
        Ok((
            format!(
                "{} aborted: canary scaled to 0, stable serves all traffic{note}",
                r.name
            ),
            cancelled,
        ))
    }

    /// Cancels the canary's pending approvals through the linked agent-service profile
    /// (`track=canary` and the canary's version); says so when no profile is linked.
    pub(super) async fn cancel_canary_approvals(
        &self,
        r: &ReleaseRef,
        version: Option<&str>,
        reason: &str,
    ) -> Result<(Option<u64>, String)> {
        match self.agent_client(&r.profile_id).await? {
            Some(agent) => {
                let why = Reason::parse(&format!("canary of {} aborted: {reason}", r.name))?;
                let res = agent.cancel_approvals(Some("canary"), version, &why).await?;
                Ok((
                    Some(res.cancelled),
                    format!("; {} pending canary approvals cancelled", res.cancelled),
                ))
            }
            None => Ok((
                None,
                "; no agent-service profile is linked to this cluster, so the canary's pending approvals were not cancelled".to_string(),
            )),
        }
    }

    pub(super) async fn undo(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        revision: i64,
    ) -> Result<(String, Option<u64>)> {
        let (stable, _) = self.objects(c, &r.name).await?;
        let sets = self.replica_sets(c, &stable).await?;
        let uid = stable.metadata.uid.clone();
        let rs = sets
            .iter()
            .find(|rs| {
                state::revision_of(&rs.metadata) == Some(revision)
                    && rs
                        .metadata
                        .owner_references
                        .as_ref()
                        .is_some_and(|o| o.iter().any(|o| Some(&o.uid) == uid.as_ref()))
            })
            .ok_or_else(|| {
                let known: Vec<String> = state::revisions(&stable, &sets)
                    .iter()
                    .map(|r| r.revision.to_string())
                    .collect();
                Error::invalid(format!(
                    "{} has no revision {revision}; known: {}",
                    r.name,
                    known.join(", ")
                ))
            })?;
        let mut template =
            rs.spec.template.clone().ok_or_else(|| {
                Error::invalid(format!("revision {revision} has no pod template"))
            })?;
        state::retrack(&mut template, "stable");
        let image = state::image_of(Some(&template));
        let value = serde_json::to_value(&template)
            .map_err(|e| Error::invalid(format!("pod template: {e}")))?;
        self.patch_guarded(c, r, ReleaseActionId::Undo, &r.name, |cur| {
            Ok(template_patch(cur, &value))
        })
        .await?;
        self.wait_ready(c, r, ReleaseActionId::Undo, &r.name)
            .await?;
        Ok((
            format!("{} is back at revision {revision} ({image})", r.name),
            None,
        ))
    }

    pub(super) async fn set_paused(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        action: ReleaseActionId,
        reason: Option<&str>,
    ) -> Result<()> {
        let cname = canary_name(&r.name);
        if self.get_deployment(c, &cname).await?.is_none() {
            return Err(no_canary(r));
        }
        let body = match reason {
            Some(why) => json!({"metadata": {"annotations": {PAUSED: "true", PAUSED_REASON: why}}}),
            None => json!({"metadata": {"annotations": {PAUSED: null, PAUSED_REASON: null}}}),
        };
        self.patch_guarded(c, r, action, &cname, |_| Ok(body.clone()))
            .await?;
        Ok(())
    }
}

/// A merge patch that makes `spec.template` of `cur` exactly `template`.
fn template_patch(cur: &Deployment, template: &Value) -> Value {
    let current = serde_json::to_value(&cur.spec.template).unwrap_or(Value::Null);
    json!({"spec": {"template": merge_diff(&current, template)}})
}

/// The RFC 7386 merge patch turning `from` into `to`: changed keys set, removed keys null,
/// objects recursed into, anything else (arrays included) replaced whole.
pub fn merge_diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = serde_json::Map::new();
            for (k, v) in b {
                match a.get(k) {
                    Some(old) if old == v => {}
                    Some(old) if old.is_object() && v.is_object() => {
                        out.insert(k.clone(), merge_diff(old, v));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => to.clone(),
    }
}

pub(super) fn no_canary(r: &ReleaseRef) -> Error {
    Error::invalid(format!(
        "{} has no canary Deployment {} in {}",
        r.name,
        canary_name(&r.name),
        r.namespace
    ))
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
}
