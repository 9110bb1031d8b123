//! Measuring a release: each track's `/metrics` through the API server's pod proxy, the
//! canary version's eval gate through the linked agent-service, one analysis tick, and
//! the pause of a canary starved of samples.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

use super::analysis::{self, Thresholds, Tick, TrackTotals};
use super::cluster::call;
use super::connect::Cluster;
use super::dto::*;
use super::state::{self, ABORTED, ANALYSIS, PAUSED, Plan, annotation, canary_name};
use super::{ReleaseService, log_target};
use crate::agent::AgentClient;
use crate::error::{Error, Result};

impl ReleaseService {
    // ---- analysis -----------------------------------------------------------------------

    pub(super) async fn agent_client(&self, kube_profile: &str) -> Result<Option<AgentClient>> {
        let linked = self
            .inner
            .agents
            .read()
            .expect("agents lock")
            .get(kube_profile)
            .cloned();
        match linked {
            Some(id) => Ok(Some(self.inner.host.agent_client(&id).await?)),
            None => Ok(None),
        }
    }

    /// Sums the `/metrics` of the ready pods of a Deployment, read through the API
    /// server's pod proxy.
    pub(super) async fn track_totals(&self, c: &Cluster, d: &Deployment) -> Result<TrackTotals> {
        let selector: BTreeMap<String, String> =
            d.spec.selector.match_labels.clone().unwrap_or_default();
        let labels = selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let port = d
            .spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.ports.as_ref())
            .and_then(|p| {
                p.iter()
                    .find(|p| p.name.as_deref() == Some("http"))
                    .or(p.first())
            })
            .map_or(8080, |p| p.container_port);
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), &c.namespace);
        let list = call(
            &c.what("pods"),
            self.timeout(),
            pods.list(&ListParams::default().labels(&labels)),
        )
        .await?;
        let mut total = TrackTotals::default();
        for pod in list.items.iter().filter(|p| pod_ready(p)) {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let path = format!(
                "/api/v1/namespaces/{}/pods/{name}:{port}/proxy/metrics",
                c.namespace
            );
            let req = http::Request::get(&path)
                .body(Vec::new())
                .map_err(|e| Error::invalid(format!("proxy request {path}: {e}")))?;
            let text = call(
                &c.what(&format!("pods/{name}/proxy/metrics")),
                self.timeout(),
                c.client.request_text(req),
            )
            .await?;
            let scrape = crate::prom::parse(&text)?;
            total.add(&TrackTotals::of(&scrape));
        }
        Ok(total)
    }

    pub(super) async fn eval_gate(
        &self,
        r: &ReleaseRef,
        version: Option<String>,
    ) -> EvalGateStatus {
        let mut gate = EvalGateStatus {
            version: version.clone(),
            verdict: GateVerdict::Missing,
            suite: None,
            pass_rate: None,
            threshold: None,
            run_id: None,
            reason: String::new(),
        };
        let Some(version) = version else {
            gate.reason = "missing: the canary's pod template names no version (label app.kubernetes.io/version or RELEASE_VERSION)".into();
            return gate;
        };
        let agent = match self.agent_client(&r.profile_id).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                gate.reason = "missing: no agent-service profile (URL and API key) is linked to this cluster, so eval runs cannot be read".into();
                return gate;
            }
            Err(e) => {
                gate.verdict = GateVerdict::Error;
                gate.reason = format!("error: {e}");
                return gate;
            }
        };
        let runs = match agent.eval_runs(None, None).await {
            Ok(p) => p.items,
            Err(e) => {
                gate.verdict = GateVerdict::Error;
                gate.reason = format!("error: {e}");
                return gate;
            }
        };
        let Some(run) = runs.into_iter().find(|run| {
            run.versions.release_version == version
                && run.status == crate::agent::wire::EvalRunState::Completed
        }) else {
            gate.reason = format!("missing: no completed eval run for version {version}");
            return gate;
        };
        gate.suite = Some(run.suite.clone());
        gate.pass_rate = run.pass_rate;
        gate.run_id = Some(run.id.clone());
        match agent.eval_run(&run.id).await {
            Ok(full) => {
                let Some(g) = full.gate else {
                    gate.reason = format!("missing: eval run {} has no gate verdict", run.id);
                    return gate;
                };
                gate.threshold = g
                    .checks
                    .iter()
                    .find(|c| {
                        c.get("name").and_then(Value::as_str) == Some("pass_rate")
                            || c.get("setting")
                                .and_then(Value::as_str)
                                .is_some_and(|s| s.contains("pass_rate"))
                    })
                    .and_then(|c| c.get("threshold").and_then(Value::as_f64));
                let (verdict, word) = match g.verdict {
                    crate::agent::wire::Verdict::Pass => (GateVerdict::Pass, "passed"),
                    crate::agent::wire::Verdict::Fail => (GateVerdict::Fail, "failed"),
                };
                gate.verdict = verdict;
                gate.reason = if g.reasons.is_empty() {
                    format!(
                        "suite {} {word} for version {version} (run {})",
                        run.suite, run.id
                    )
                } else {
                    format!(
                        "suite {} {word} for version {version}: {}",
                        run.suite,
                        g.reasons.join("; ")
                    )
                };
            }
            Err(e) => {
                gate.verdict = GateVerdict::Error;
                gate.reason = format!("error: {e}");
            }
        }
        gate
    }

    /// Takes one analysis tick (both tracks' metrics now) and judges the canary.
    pub(super) async fn analyze(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        stable: &Deployment,
        canary: &Deployment,
    ) -> ReleaseAnalysis {
        let canary_info = state::track_info(canary);
        let gate = self.eval_gate(r, canary_info.version.clone()).await;
        let plan = Plan::of(canary);
        let thresholds = annotation(canary, ANALYSIS)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{} has no {ANALYSIS} annotation",
                    canary_name(&r.name)
                ))
            })
            .and_then(Thresholds::parse);
        let (thresholds, plan) = match (thresholds, plan) {
            (Ok(t), Ok(p)) => (t, p),
            (Err(e), _) | (_, Err(e)) => {
                return ReleaseAnalysis {
                    verdict: Verdict::Inconclusive,
                    reason: e.to_string(),
                    samples_canary: 0,
                    samples_stable: 0,
                    min_samples: 0,
                    metrics: Vec::new(),
                    eval_gate: gate,
                };
            }
        };
        let key = format!("{}@{}", canary_info.image, plan.step);
        let measured =
            futures::try_join!(self.track_totals(c, canary), self.track_totals(c, stable));
        let scrape_error = match measured {
            Ok((canary_totals, stable_totals)) => {
                let tick = Tick {
                    at_ms: self.inner.host.clock.now_ms(),
                    canary: canary_totals,
                    stable: stable_totals,
                };
                self.inner
                    .histories
                    .lock()
                    .expect("histories lock")
                    .entry(r.clone())
                    .or_default()
                    .push(&key, tick);
                None
            }
            Err(e) => Some(e),
        };
        let ticks: Vec<Tick> = {
            let mut h = self.inner.histories.lock().expect("histories lock");
            let h = h.entry(r.clone()).or_default();
            if h.canary_image == key {
                h.as_slice().to_vec()
            } else {
                Vec::new()
            }
        };
        let mut a = analysis::analyze(&thresholds, &ticks, self.inner.options.failure_limit, gate);
        if let Some(e) = scrape_error {
            a.reason = format!("{} (metrics could not be read this tick: {e})", a.reason);
        }
        self.inner
            .verdicts
            .lock()
            .expect("verdicts lock")
            .insert(r.clone(), a.verdict);
        a
    }

    /// Inconclusive analysis pauses a canary that has traffic once it has been measured
    /// for long enough; it never aborts.
    pub(super) async fn pause_if_starved(
        &self,
        c: &Cluster,
        r: &ReleaseRef,
        canary: &Deployment,
        a: &ReleaseAnalysis,
    ) -> Result<()> {
        let step = Plan::of(canary).map_or(0, |p| p.step);
        let intervals = a.metrics.first().map_or(0, |m| m.measurements.len());
        if step == 0
            || annotation(canary, PAUSED) == Some("true")
            || annotation(canary, ABORTED).is_some()
            || intervals < self.inner.options.inconclusive_pause_after
        {
            return Ok(());
        }
        let reason = format!("analysis inconclusive: {}", a.reason);
        let actor = format!("{} (analysis)", self.inner.options.actor);
        let action = ReleaseActionId::Pause;
        self.inner
            .host
            .audited_because(&actor, action.as_str(), &log_target(r), &reason, async {
                self.set_paused(c, r, action, Some(&reason)).await?;
                self.record_event(c, r, action, &actor, &reason).await
            })
            .await
    }
}

fn pod_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}
