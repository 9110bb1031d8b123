//! Releases against the fake Kubernetes API server (`testkit::fake_kube`) with real
//! agent-service processes behind the pods: promote walks the plan, analysis fails a
//! failing canary and pauses a starved one, abort cancels the canary's approvals, undo
//! restores a revision, conflicts are never applied blindly, RBAC disables actions, an
//! unreachable cluster fails fast, exec-plugin kubeconfig works.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flightdeck_core::ProfileId;
use flightdeck_core::agent::InvokeRequest;
use flightdeck_core::clock::ManualClock;
use flightdeck_core::host::Host;
use flightdeck_core::releases::cluster::KubeconfigSource;
use flightdeck_core::releases::dto::*;
use flightdeck_core::releases::{ReleaseChange, ReleaseOptions, ReleaseService, WatchHandle};
use serde_json::{Value, json};
use testkit::fake_kube::Policy;
use testkit::{AgentService, FakeKube};

use crate::helpers::{client, eval_run_done, within};
use crate::rig::{APP, NS, TempDir, backends, cluster, release_options};

struct Rig {
    kube: Arc<FakeKube>,
    svc: ReleaseService,
    host: Host,
    clock: Arc<ManualClock>,
    stable: AgentService,
    canary: AgentService,
    profile: ProfileId,
    progress: Arc<Mutex<Vec<ReleaseProgressEvent>>>,
    _dir: TempDir,
}

fn release(rig: &Rig) -> ReleaseRef {
    ReleaseRef {
        profile_id: rig.profile.as_str().to_string(),
        namespace: NS.into(),
        name: APP.into(),
    }
}

fn options() -> ReleaseOptions {
    release_options(2)
}

async fn rig_with(
    canary_env: &[(&str, &str)],
    min_samples: u64,
    opts: ReleaseOptions,
    exec: bool,
) -> Rig {
    let dir = TempDir::new("fd-releases");
    let (kube, kc) = cluster(&dir, "fake", exec, min_samples).await;
    let kube = Arc::new(kube);
    kube.apply_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    let (stable, canary) = backends(&kube, canary_env).await;

    let clock = Arc::new(ManualClock::new(1_790_000_000_000));
    let host = Host::in_memory(clock.clone()).await.unwrap();
    let svc = ReleaseService::new(host.clone(), KubeconfigSource::Paths(vec![kc]), opts);
    let contexts = svc.list_kube_contexts().await.unwrap();
    assert_eq!(contexts.len(), 1);
    assert!(contexts[0].current);
    let profile = svc
        .add_kube_profile(AddKubeProfileArgs {
            name: "Fake cluster".into(),
            context: "fake".into(),
            namespace: NS.into(),
            agent_profile_id: None,
        })
        .await
        .unwrap();
    // The agent-service that eval gates and approval cancels go through: the canary's.
    let agent = ProfileId::parse("canary-agent").unwrap();
    host.save_agent_profile(
        agent.clone(),
        "Canary service",
        canary.base_url(),
        Some(canary.key("operator")),
    )
    .await
    .unwrap();
    svc.link_agent_profile(&profile.id, Some(agent));
    let progress = Arc::new(Mutex::new(Vec::new()));
    let sink = progress.clone();
    svc.set_progress_sink(Some(Arc::new(move |e| sink.lock().unwrap().push(e))));
    Rig {
        kube,
        svc,
        host,
        clock,
        stable,
        canary,
        profile: profile.id,
        progress,
        _dir: dir,
    }
}

async fn rig() -> Rig {
    rig_with(&[], 5, options(), false).await
}

fn ann(d: &Value, key: &str) -> Option<String> {
    d["metadata"]["annotations"][key]
        .as_str()
        .map(str::to_string)
}

fn canary_obj(rig: &Rig) -> Value {
    rig.kube.deployment(NS, &format!("{APP}-canary")).unwrap()
}

fn stable_obj(rig: &Rig) -> Value {
    rig.kube.deployment(NS, APP).unwrap()
}

fn reasons_of_events(rig: &Rig) -> Vec<String> {
    rig.kube
        .events(NS)
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .filter(|r| r.starts_with("Flightdeck"))
        .map(str::to_string)
        .collect()
}

async fn promote(rig: &Rig, full: bool) -> ReleaseActionResult {
    within(
        60,
        "promote",
        rig.svc.promote_release(PromoteArgs {
            release: release(rig),
            full,
            reason: "metrics look good".into(),
        }),
    )
    .await
    .unwrap()
}

/// A one-step promote with `reason` that must fail: its error.
async fn promote_refused(rig: &Rig, reason: &str) -> flightdeck_core::Error {
    rig.svc
        .promote_release(PromoteArgs {
            release: release(rig),
            full: false,
            reason: reason.into(),
        })
        .await
        .unwrap_err()
}

/// What a watch has pushed so far.
type Seen = Arc<Mutex<Vec<ReleaseChange>>>;

/// The summaries among what a watch pushed.
fn updated(seen: &Seen) -> Vec<ReleaseSummary> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|c| match c {
            ReleaseChange::Updated(s) => Some(s.as_ref().clone()),
            ReleaseChange::Removed(_) => None,
        })
        .collect()
}

/// A watch of the rig's cluster and what it has pushed so far.
async fn watch_summaries(rig: &Rig) -> (WatchHandle, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let watch = rig
        .svc
        .watch(
            &rig.profile,
            Arc::new(move |s| sink.lock().unwrap().push(s)),
        )
        .await
        .unwrap();
    (watch, seen)
}

/// Waits up to `secs` for what the watch pushed to satisfy `done`.
async fn seen_until(seen: &Seen, secs: u64, what: &str, done: impl Fn(&Seen) -> bool) {
    within(secs, what, async {
        while !done(seen) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Sends `n` faq requests to a service (traffic the Service would route to it).
async fn traffic(svc: &AgentService, n: usize) {
    let c = client(svc, "invoke");
    for _ in 0..n {
        let _ = c
            .invoke(&InvokeRequest::new("faq", "What are your opening hours?"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_a_canary_walks_10_25_50_100_under_promote() {
    let rig = rig().await;
    rig.kube.set_pod_ready_delay(Duration::from_millis(150));
    let list = rig.svc.list_releases().await.unwrap();
    assert!(list.errors.is_empty(), "{:?}", list.errors);
    assert_eq!(list.releases.len(), 1);
    let s = &list.releases[0];
    assert_eq!(s.cluster, "Fake cluster");
    assert_eq!(s.state, ReleaseState::WaitingDecision);
    assert_eq!((s.step, s.desired_weight, s.actual_weight), (0, 0, 0));
    assert_eq!(s.steps, [10, 25, 50, 100]);
    assert_eq!(s.stable.version.as_deref(), Some("0.1.0"));
    assert_eq!(s.canary.as_ref().unwrap().version.as_deref(), Some("0.2.0"));
    assert_eq!(s.stable.model.as_deref(), Some("scripted-v1"));

    for (step, weight, replicas) in [(1, 10, 1), (2, 25, 3), (3, 50, 9)] {
        let r = promote(&rig, false).await;
        let s = &r.detail.summary;
        assert_eq!((s.step, s.desired_weight), (step, weight), "{}", r.message);
        assert_eq!(s.actual_weight, weight, "ready replicas give the weight");
        assert_eq!(s.canary.as_ref().unwrap().replicas_ready, replicas);
        assert_eq!(
            ann(&canary_obj(&rig), "flightdeck.dev/canary-step").as_deref(),
            Some(step.to_string().as_str())
        );
        assert!(r.message.contains(&format!("{weight} %")), "{}", r.message);
    }
    // The last step is 100 %: the canary's template becomes stable's.
    let r = promote(&rig, false).await;
    let s = &r.detail.summary;
    assert_eq!(s.state, ReleaseState::Complete, "{}", r.message);
    assert_eq!(s.step, 0);
    assert_eq!(s.stable.image, "ghcr.io/flightdeck/agent-service:0.2.0");
    assert_eq!(s.stable.version.as_deref(), Some("0.2.0"));
    assert_eq!(s.canary.as_ref().unwrap().replicas_desired, 0);
    let stable = stable_obj(&rig);
    assert_eq!(
        stable["spec"]["template"]["metadata"]["labels"]["track"],
        "stable"
    );
    assert_eq!(stable["status"]["readyReplicas"], 9);
    let env = &stable["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0], json!({"name": "RELEASE_TRACK", "value": "stable"}));

    // Every step is an Event on the canary and a line in the local log.
    assert_eq!(reasons_of_events(&rig), vec!["FlightdeckPromote"; 4]);
    let event = rig
        .kube
        .events(NS)
        .into_iter()
        .find(|e| e["reason"] == "FlightdeckPromote")
        .unwrap();
    assert_eq!(event["involvedObject"]["name"], format!("{APP}-canary"));
    assert!(event["message"].as_str().unwrap().contains("tester"));
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .contains("metrics look good")
    );
    let log = &r.detail.log;
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|l| l.outcome == "ok" && l.actor == "tester"));
    assert_eq!(log[0].action, "promote_step");
    assert!(
        log.iter().all(|l| l
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with("reason: "))),
        "every logged action carries the operator's reason: {log:?}"
    );
    // Waiting for ready replicas was reported as progress, and each action finished.
    let progress = rig.progress.lock().unwrap();
    assert!(
        progress
            .iter()
            .any(|p| p.phase.starts_with("waiting for") && p.fraction.is_some())
    );
    assert_eq!(
        progress
            .iter()
            .filter(|p| p.done && p.error.is_none())
            .count(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_a_failing_canary_fails_naming_the_metric_and_its_values() {
    // The canary's model provider is a dead Ollama: its requests fail.
    let rig = rig_with(
        &[
            ("AGENT_PROVIDER", "ollama"),
            ("OLLAMA_BASE_URL", "http://127.0.0.1:9"),
            ("PROVIDER_TIMEOUT_SECS", "2"),
        ],
        5,
        options(),
        false,
    )
    .await;
    promote(&rig, false).await;
    let get = || {
        rig.svc.get_release(ReleaseRefArgs {
            release: release(&rig),
        })
    };
    let first = get().await.unwrap();
    assert_eq!(
        first.analysis.as_ref().unwrap().verdict,
        Verdict::Inconclusive
    );
    for _ in 0..2 {
        traffic(&rig.canary, 6).await;
        traffic(&rig.stable, 6).await;
        rig.clock.advance_ms(10_000);
        get().await.unwrap();
    }
    let detail = get().await.unwrap();
    let a = detail.analysis.unwrap();
    assert_eq!(a.verdict, Verdict::Fail, "{}", a.reason);
    assert_eq!(detail.summary.verdict, Some(Verdict::Fail));
    let failed: Vec<&MetricAnalysis> = a
        .metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Fail)
        .collect();
    assert!(!failed.is_empty());
    for m in &failed {
        assert!(m.failures > m.failure_limit);
        assert!(
            a.reason.contains(m.metric.as_str()),
            "{} not in {}",
            m.metric.as_str(),
            a.reason
        );
        // The failing values are the canary's measurements, and stable was measured too.
        let bad: Vec<&Measurement> = m
            .measurements
            .iter()
            .filter(|x| x.passed == Some(false))
            .collect();
        assert!(bad.len() as u32 > m.failure_limit);
        assert!(bad.iter().all(|x| x.stable.is_some()));
    }
    // The dead provider makes every canary request an error: both intervals measured 1.
    assert!(
        a.reason
            .contains("canary error rate was 1, 1 against <= 0.01"),
        "{}",
        a.reason
    );
    assert!(
        failed
            .iter()
            .any(|m| matches!(m.metric, MetricName::ErrorRate | MetricName::SuccessRate)),
        "{}",
        a.reason
    );
    let stable_ok = a
        .metrics
        .iter()
        .find(|m| m.metric == MetricName::SuccessRate)
        .unwrap();
    assert!(
        stable_ok
            .measurements
            .iter()
            .skip(1)
            .all(|x| x.stable.is_some_and(|v| v >= 0.95))
    );
    assert_eq!(a.samples_canary, 12);
    // The eval gate of 0.2.0 was looked up through the linked service: no run yet.
    assert_eq!(a.eval_gate.verdict, GateVerdict::Missing);
    assert!(
        a.eval_gate.reason.contains("0.2.0"),
        "{}",
        a.eval_gate.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_too_few_samples_is_inconclusive_and_pauses_never_aborts() {
    let rig = rig_with(&[], 200, options(), false).await;
    promote(&rig, false).await;
    let get = || {
        rig.svc.get_release(ReleaseRefArgs {
            release: release(&rig),
        })
    };
    get().await.unwrap();
    for _ in 0..2 {
        traffic(&rig.canary, 2).await;
        rig.clock.advance_ms(10_000);
        get().await.unwrap();
    }
    let detail = get().await.unwrap();
    let a = detail.analysis.unwrap();
    assert_eq!(a.verdict, Verdict::Inconclusive);
    assert!(a.reason.contains("200 needed"), "{}", a.reason);
    let s = &detail.summary;
    assert_eq!(s.state, ReleaseState::Paused);
    assert!(
        s.paused_reason
            .as_deref()
            .unwrap()
            .starts_with("analysis inconclusive"),
        "{:?}",
        s.paused_reason
    );
    let c = canary_obj(&rig);
    assert_eq!(ann(&c, "flightdeck.dev/paused").as_deref(), Some("true"));
    // Paused, not aborted: the canary keeps its step and replicas.
    assert_eq!(ann(&c, "flightdeck.dev/canary-step").as_deref(), Some("1"));
    assert_eq!(c["spec"]["replicas"], 1);
    assert!(reasons_of_events(&rig).contains(&"FlightdeckPause".to_string()));
    assert!(
        detail
            .log
            .iter()
            .any(|l| l.action == "pause" && l.actor == "tester (analysis)")
    );
    let resume = detail
        .permissions
        .iter()
        .find(|p| p.action == ReleaseActionId::Resume)
        .unwrap();
    assert!(resume.allowed, "{:?}", resume.reason);
    let r = rig
        .svc
        .resume_release(ReleaseReasonArgs {
            release: release(&rig),
            reason: "waited for traffic".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.detail.summary.state, ReleaseState::WaitingDecision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_abort_restores_stable_and_cancels_the_canary_approvals() {
    let rig = rig().await;
    promote(&rig, false).await;
    promote(&rig, false).await;
    // A write the canary's model proposed waits for approval.
    let reply = client(&rig.canary, "invoke")
        .invoke(&InvokeRequest::new("ticket_update", "Please close T-1003"))
        .await
        .unwrap();
    let apr = reply.approval_request_id.expect("a gated write");
    let r = within(
        60,
        "abort",
        rig.svc.abort_release(ReleaseReasonArgs {
            release: release(&rig),
            reason: "p95 regression".into(),
        }),
    )
    .await
    .unwrap();
    assert_eq!(r.cancelled_approvals, Some(1), "{}", r.message);
    assert!(
        r.message.contains("1 pending canary approvals cancelled"),
        "{}",
        r.message
    );
    let s = &r.detail.summary;
    assert_eq!(s.state, ReleaseState::Aborted);
    assert_eq!((s.step, s.actual_weight), (0, 0));
    assert_eq!(s.canary.as_ref().unwrap().replicas_ready, 0);
    assert_eq!(s.stable.replicas_ready, 9);
    assert_eq!(s.stable.image, "ghcr.io/flightdeck/agent-service:0.1.0");
    let approval = client(&rig.canary, "operator")
        .approval(&apr)
        .await
        .unwrap();
    assert_eq!(approval.status.as_str(), "cancelled");
    assert_eq!(
        reasons_of_events(&rig).last().map(String::as_str),
        Some("FlightdeckAbort")
    );
    assert_eq!(r.detail.log[0].action, "abort");
    // An aborted canary is not promoted by accident: promoting again starts at step 1.
    let again = promote(&rig, false).await;
    assert_eq!(again.detail.summary.step, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_undo_restores_the_previous_template() {
    let rig = rig().await;
    let r = promote(&rig, true).await;
    assert_eq!(
        r.detail.summary.stable.image,
        "ghcr.io/flightdeck/agent-service:0.2.0"
    );
    let revs = &r.detail.revisions;
    assert_eq!(revs.len(), 2, "{revs:?}");
    assert!(revs[0].current);
    assert_eq!(revs[1].image, "ghcr.io/flightdeck/agent-service:0.1.0");
    let undo = rig
        .svc
        .undo_release(UndoArgs {
            release: release(&rig),
            revision: revs[1].revision,
            reason: "customer reports".into(),
        })
        .await
        .unwrap();
    let s = &undo.detail.summary;
    assert_eq!(
        s.stable.image, "ghcr.io/flightdeck/agent-service:0.1.0",
        "{}",
        undo.message
    );
    assert_eq!(s.stable.version.as_deref(), Some("0.1.0"));
    assert_eq!(s.stable.replicas_ready, 9);
    let stable = stable_obj(&rig);
    assert_eq!(
        stable["spec"]["template"]["metadata"]["labels"]["track"],
        "stable"
    );
    assert!(
        stable["spec"]["template"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none()
    );
    assert!(undo.detail.revisions[0].current);
    assert_eq!(
        undo.detail.revisions[0].image,
        "ghcr.io/flightdeck/agent-service:0.1.0"
    );
    assert_eq!(
        reasons_of_events(&rig).last().map(String::as_str),
        Some("FlightdeckUndo")
    );
    // An unknown revision is a clear error and changes nothing.
    let e = rig
        .svc
        .undo_release(UndoArgs {
            release: release(&rig),
            revision: 99,
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code().as_str(), "invalid");
    assert!(e.to_string().contains("no revision 99"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_a_409_during_promote_is_retried_on_fresh_state_never_blindly() {
    let rig = rig().await;
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/{APP}-canary");
    rig.kube.clear_request_log();
    rig.kube.fail_next("PATCH", &path, 1, 409);
    let r = promote(&rig, false).await;
    assert_eq!(r.detail.summary.step, 1);
    let writes: Vec<(String, u16)> = rig
        .kube
        .request_log()
        .into_iter()
        .filter(|x| x.path == path && x.method != "LIST")
        .map(|x| (x.method, x.status))
        .collect();
    let first_409 = writes
        .iter()
        .position(|w| *w == ("PATCH".to_string(), 409))
        .expect("the injected 409");
    // After the 409: a fresh GET, then the PATCH that succeeds.
    assert_eq!(
        writes[first_409 + 1],
        ("GET".to_string(), 200),
        "{writes:?}"
    );
    assert_eq!(
        writes[first_409 + 2],
        ("PATCH".to_string(), 200),
        "{writes:?}"
    );

    // Someone else promotes between our read and our write: the write gets a 409, the
    // fresh read shows the step moved, and the action stops instead of applying.
    let kube = rig.kube.clone();
    let done = Arc::new(Mutex::new(false));
    let flag = done.clone();
    rig.svc
        .set_progress_sink(Some(Arc::new(move |e: ReleaseProgressEvent| {
            let mut done = flag.lock().unwrap();
            if !*done && e.phase.starts_with("updating") {
                *done = true;
                let mut d = kube.deployment(NS, &format!("{APP}-canary")).unwrap();
                d["metadata"]["annotations"]["flightdeck.dev/canary-step"] = json!("2");
                d["spec"]["replicas"] = json!(3);
                d.as_object_mut().unwrap().remove("status");
                kube.apply_value(d).unwrap();
            }
        })));
    let e = promote_refused(&rig, "next").await;
    assert_eq!(e.code().as_str(), "conflict", "{e}");
    assert!(
        e.to_string().contains("the canary step went from 1 to 2"),
        "{e}"
    );
    let c = canary_obj(&rig);
    assert_eq!(
        ann(&c, "flightdeck.dev/canary-step").as_deref(),
        Some("2"),
        "the other operator's step stands"
    );
    assert_eq!(c["spec"]["replicas"], 3);
    let log = rig.host.store.actions(10, None).await.unwrap();
    assert_eq!(log[0].outcome.as_str(), "failed");
    assert!(log[0].detail.starts_with("conflict"), "{}", log[0].detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_forbidden_actions_are_disabled_with_the_reason() {
    let rig = rig().await;
    rig.kube.set_policy(Policy::read_only());
    let detail = rig
        .svc
        .get_release(ReleaseRefArgs {
            release: release(&rig),
        })
        .await
        .unwrap();
    assert_eq!(detail.permissions.len(), 6);
    for p in &detail.permissions {
        assert!(!p.allowed, "{:?}", p.action);
        let reason = p.reason.as_deref().unwrap();
        assert!(reason.contains("patch deployments.apps"), "{reason}");
        assert!(reason.contains("create events"), "{reason}");
    }
    let e = promote_refused(&rig, "try").await;
    assert_eq!(e.code().as_str(), "forbidden", "{e}");
    assert_eq!(
        ann(&canary_obj(&rig), "flightdeck.dev/canary-step").as_deref(),
        Some("0")
    );
    assert!(rig.kube.request_log().iter().all(|r| r.method != "PATCH"));
    let log = rig.host.store.actions(10, None).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].outcome.as_str()),
        ("promote_step", "failed")
    );

    // With the release role everything the state allows is enabled.
    rig.kube.set_policy(Policy::allow_all());
    let detail = rig
        .svc
        .get_release(ReleaseRefArgs {
            release: release(&rig),
        })
        .await
        .unwrap();
    let allowed = |a: ReleaseActionId| {
        detail
            .permissions
            .iter()
            .find(|p| p.action == a)
            .unwrap()
            .clone()
    };
    assert!(allowed(ReleaseActionId::PromoteStep).allowed);
    assert!(allowed(ReleaseActionId::Pause).allowed);
    let resume = allowed(ReleaseActionId::Resume);
    assert_eq!(
        (resume.allowed, resume.reason.as_deref()),
        (false, Some("not paused"))
    );
    // A reason is required before anything is asked of the cluster.
    let e = rig
        .svc
        .pause_release(ReleaseReasonArgs {
            release: release(&rig),
            reason: "  ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code().as_str(), "invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_an_unreachable_cluster_is_a_clear_error_fast() {
    let rig = rig().await;
    let rref = release(&rig);
    let kube = Arc::try_unwrap(rig.kube).ok().expect("one handle");
    kube.stop().await.unwrap();
    let started = Instant::now();
    let list = rig.svc.list_releases().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(list.releases.is_empty());
    assert_eq!(list.errors.len(), 1);
    assert_eq!(list.errors[0].cluster, "Fake cluster");
    assert!(
        list.errors[0]
            .message
            .contains("could not reach cluster Fake cluster"),
        "{}",
        list.errors[0].message
    );
    let e = rig
        .svc
        .get_release(ReleaseRefArgs { release: rref })
        .await
        .unwrap_err();
    assert!(matches!(e.code().as_str(), "network" | "timeout"), "{e}");

    // A cluster that never answers the connect (a black-hole address) times out.
    let dir = TempDir::new("fd-releases");
    let kc = dir.0.join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\ncurrent-context: void\nclusters:\n- name: void\n  cluster: {server: \"https://10.255.255.1:6443\"}\n\
         contexts:\n- name: void\n  context: {cluster: void, user: u}\nusers:\n- name: u\n  user: {token: t}\n",
    )
    .unwrap();
    let host = Host::in_memory(Arc::new(ManualClock::new(0)))
        .await
        .unwrap();
    let mut opts = options();
    opts.connect_timeout = Duration::from_secs(1);
    opts.request_timeout = Duration::from_secs(3);
    let svc = ReleaseService::new(host, KubeconfigSource::Paths(vec![kc]), opts);
    svc.add_kube_profile(AddKubeProfileArgs {
        name: "Void".into(),
        context: "void".into(),
        namespace: "default".into(),
        agent_profile_id: None,
    })
    .await
    .unwrap();
    let started = Instant::now();
    let list = svc.list_releases().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(list.errors.len(), 1, "{list:?}");
    // An unknown context is refused when the profile is added.
    let e = svc
        .add_kube_profile(AddKubeProfileArgs {
            name: "X".into(),
            context: "nope".into(),
            namespace: "default".into(),
            agent_profile_id: None,
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no context \"nope\""), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_exec_plugin_kubeconfig_works_and_watch_pushes_changes() {
    let rig = rig_with(&[], 5, options(), true).await;
    let list = rig.svc.list_releases().await.unwrap();
    assert!(list.errors.is_empty(), "{:?}", list.errors);
    assert_eq!(list.releases.len(), 1);
    let (_watch, seen) = watch_summaries(&rig).await;
    seen_until(&seen, 10, "the initial watch summary", |seen| {
        !updated(seen).is_empty()
    })
    .await;
    promote(&rig, false).await;
    seen_until(&seen, 10, "a watch summary at step 1", |seen| {
        updated(seen)
            .iter()
            .any(|s| s.step == 1 && s.actual_weight == 10)
    })
    .await;
    // The canary's Deployment deleted: its release is pushed again, without a canary.
    assert!(
        rig.kube
            .delete("apps/v1", "Deployment", Some(NS), &format!("{APP}-canary"))
    );
    seen_until(&seen, 10, "a watch summary without the canary", |seen| {
        updated(seen).iter().any(|s| s.canary.is_none())
    })
    .await;
    // The stable one deleted: the release is gone, and the watch says so.
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|c| matches!(c, ReleaseChange::Removed(_)))
    );
    assert!(rig.kube.delete("apps/v1", "Deployment", Some(NS), APP));
    seen_until(&seen, 10, "the release removed", |seen| {
        seen.lock()
            .unwrap()
            .contains(&ReleaseChange::Removed(release(&rig)))
    })
    .await;
    drop(rig.stable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_a_release_deleted_while_the_watch_was_down_is_removed_after_the_relist() {
    let rig = rig().await;
    let (_watch, seen) = watch_summaries(&rig).await;
    seen_until(&seen, 10, "the initial watch summary", |seen| {
        !updated(seen).is_empty()
    })
    .await;
    // The watch connection drops; meanwhile both Deployments of the release are deleted
    // and the API server compacts its history, so no watch event tells of the deletion:
    // the watch resumes from its last resourceVersion, gets 410 Gone and re-lists.
    let stable = stable_obj(&rig);
    rig.kube.clear_request_log();
    rig.kube.interrupt_watches();
    assert!(
        rig.kube
            .delete("apps/v1", "Deployment", Some(NS), &format!("{APP}-canary"))
    );
    assert!(rig.kube.delete("apps/v1", "Deployment", Some(NS), APP));
    rig.kube.compact();
    rig.kube.resume_watches();
    seen_until(&seen, 30, "the release removed after the re-list", |seen| {
        seen.lock()
            .unwrap()
            .contains(&ReleaseChange::Removed(release(&rig)))
    })
    .await;
    // It came from the re-list: no watch event carried either deletion (the canary's
    // alone would have pushed the release again without its canary first).
    assert!(
        !updated(&seen).iter().any(|s| s.canary.is_none()),
        "{:?}",
        seen.lock().unwrap()
    );
    let relisted = rig.kube.request_log().iter().any(|r| {
        r.method == "GET" && r.path.ends_with("/deployments") && !r.query.contains("watch=true")
    });
    assert!(relisted, "no list of Deployments after the interruption");
    // A release that comes back is pushed again.
    let mut again = stable.clone();
    again["metadata"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "labels" | "annotations"));
    again.as_object_mut().unwrap().remove("status");
    rig.kube.apply_value(again).unwrap();
    seen_until(&seen, 10, "the release pushed again", |seen| {
        matches!(seen.lock().unwrap().last(), Some(ReleaseChange::Updated(_)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_the_eval_gate_of_the_canary_version_is_read_from_its_service() {
    use flightdeck_core::agent::{EvalRunState, StartEval};
    let rig = rig().await;
    let operator = client(&rig.canary, "operator");
    let run = operator
        .start_eval(&StartEval {
            suite: "golden".into(),
            baseline_run_id: None,
        })
        .await
        .unwrap();
    let done = eval_run_done(&operator, &run.id).await;
    assert_eq!(done.status, EvalRunState::Completed, "{:?}", done.error);
    let detail = rig
        .svc
        .get_release(ReleaseRefArgs {
            release: release(&rig),
        })
        .await
        .unwrap();
    let gate = detail.analysis.unwrap().eval_gate;
    assert_eq!(gate.version.as_deref(), Some("0.2.0"));
    assert_eq!(
        gate.run_id.as_deref(),
        Some(run.id.as_str()),
        "{}",
        gate.reason
    );
    assert_eq!(gate.suite.as_deref(), Some("golden"));
    let want = match done.gate.unwrap().verdict {
        flightdeck_core::agent::Verdict::Pass => GateVerdict::Pass,
        flightdeck_core::agent::Verdict::Fail => GateVerdict::Fail,
    };
    assert_eq!(gate.verdict, want, "{}", gate.reason);
    assert!(gate.pass_rate.is_some());
    assert!(gate.threshold.is_some_and(|t| t > 0.0), "{gate:?}");

    // Without a linked agent-service profile the gate is missing, with the reason.
    rig.svc.link_agent_profile(&rig.profile, None);
    let detail = rig
        .svc
        .get_release(ReleaseRefArgs {
            release: release(&rig),
        })
        .await
        .unwrap();
    let gate = detail.analysis.unwrap().eval_gate;
    assert_eq!(gate.verdict, GateVerdict::Missing);
    assert!(
        gate.reason.contains("no agent-service profile"),
        "{}",
        gate.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_argo_rollouts_are_listed_and_driven_through_their_fields() {
    let rig = rig().await;
    rig.kube.enable_rollouts(true);
    rig.kube
        .apply_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "checkout", "namespace": NS},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "checkout",
                        "app.kubernetes.io/version": "2.0.0"}},
                    "spec": {"containers": [{"name": "checkout", "image": "checkout:2.0.0"}]}},
                "strategy": {"canary": {"steps": [
                    {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]}}
            }
        }))
        .unwrap();
    // The status, as Argo's controller would have written it (through /status, as the
    // fake, like a real CRD with a status subresource, ignores status on create).
    let status = json!({"status": {"currentStepIndex": 1, "phase": "Paused", "stableRS": "aaa",
        "currentPodHash": "bbb", "replicas": 4, "readyReplicas": 4,
        "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-11-22T09:00:00Z"}],
        "canary": {"weights": {"canary": {"weight": 20}, "stable": {"weight": 80}}}}});
    let answer = reqwest::Client::new()
        .patch(format!(
            "{}/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/checkout/status",
            rig.kube.url()
        ))
        .bearer_auth(rig.kube.token())
        .header("content-type", "application/merge-patch+json")
        .body(status.to_string())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
    let ro = rig
        .kube
        .get("argoproj.io/v1alpha1", "Rollout", Some(NS), "checkout")
        .unwrap();
    let uid = ro["metadata"]["uid"].as_str().unwrap().to_string();
    for (hash, rev, image, version) in [
        ("aaa", "1", "checkout:1.0.0", "1.0.0"),
        ("bbb", "2", "checkout:2.0.0", "2.0.0"),
    ] {
        rig.kube
            .apply_value(json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("checkout-{hash}"), "namespace": NS,
                    "labels": {"app.kubernetes.io/name": "checkout", "rollouts-pod-template-hash": hash},
                    "annotations": {"rollout.argoproj.io/revision": rev},
                    "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                        "name": "checkout", "uid": uid, "controller": true}]},
                "spec": {"replicas": 2,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "checkout", "rollouts-pod-template-hash": hash}},
                    "template": {"metadata": {"labels": {"app.kubernetes.io/name": "checkout",
                        "rollouts-pod-template-hash": hash, "app.kubernetes.io/version": version}},
                        "spec": {"containers": [{"name": "checkout", "image": image}]}}}
            }))
            .unwrap();
    }
    let list = rig.svc.list_releases().await.unwrap();
    assert!(list.errors.is_empty(), "{:?}", list.errors);
    let s = list
        .releases
        .iter()
        .find(|s| s.release.name == "checkout")
        .expect("the rollout is listed");
    assert_eq!(s.kind, ReleaseKind::ArgoRollout);
    assert_eq!(s.state, ReleaseState::WaitingDecision);
    assert_eq!(
        (s.steps.clone(), s.step, s.desired_weight, s.actual_weight),
        (vec![20, 50, 100], 1, 20, 20)
    );
    assert_eq!(s.stable.image, "checkout:1.0.0");
    assert_eq!(s.canary.as_ref().unwrap().version.as_deref(), Some("2.0.0"));

    let rref = ReleaseRef {
        profile_id: rig.profile.as_str().to_string(),
        namespace: NS.into(),
        name: "checkout".into(),
    };
    let (_watch, seen) = watch_summaries(&rig).await;
    // Those waiting for a decision come first: pause the Deployment release, and the
    // Rollout (alphabetically later) leads the list.
    rig.svc
        .pause_release(ReleaseReasonArgs {
            release: release(&rig),
            reason: "freeze".into(),
        })
        .await
        .unwrap();
    let order: Vec<(String, ReleaseState)> = rig
        .svc
        .list_releases()
        .await
        .unwrap()
        .releases
        .into_iter()
        .map(|s| (s.release.name, s.state))
        .collect();
    assert_eq!(
        order,
        [
            ("checkout".to_string(), ReleaseState::WaitingDecision),
            (APP.to_string(), ReleaseState::Paused)
        ]
    );
    let detail = rig
        .svc
        .get_release(ReleaseRefArgs {
            release: rref.clone(),
        })
        .await
        .unwrap();
    assert!(detail.analysis.is_none());
    assert_eq!(
        detail
            .revisions
            .iter()
            .map(|r| (r.revision, r.current))
            .collect::<Vec<_>>(),
        [(2, true), (1, false)]
    );
    assert!(
        detail
            .permissions
            .iter()
            .all(|p| p.action == ReleaseActionId::Resume || p.allowed),
        "{:?}",
        detail.permissions
    );

    // Promote past the pause step: the pause conditions go, spec.paused is false.
    let r = rig
        .svc
        .promote_release(PromoteArgs {
            release: rref.clone(),
            full: false,
            reason: "step looks fine".into(),
        })
        .await
        .unwrap();
    assert!(
        r.message.contains("promoted past its pause step"),
        "{}",
        r.message
    );
    let ro = rig
        .kube
        .get("argoproj.io/v1alpha1", "Rollout", Some(NS), "checkout")
        .unwrap();
    assert!(
        ro["status"]["pauseConditions"].is_null(),
        "{}",
        ro["status"]
    );
    assert_eq!(ro["spec"]["paused"], json!(false));
    // Pause, then abort: spec.paused and status.abort, each an Event on the Rollout.
    rig.svc
        .pause_release(ReleaseReasonArgs {
            release: rref.clone(),
            reason: "hold".into(),
        })
        .await
        .unwrap();
    let ro = rig
        .kube
        .get("argoproj.io/v1alpha1", "Rollout", Some(NS), "checkout")
        .unwrap();
    assert_eq!(ro["spec"]["paused"], json!(true));
    let r = rig
        .svc
        .abort_release(ReleaseReasonArgs {
            release: rref.clone(),
            reason: "errors".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.cancelled_approvals, Some(0), "{}", r.message);
    let ro = rig
        .kube
        .get("argoproj.io/v1alpha1", "Rollout", Some(NS), "checkout")
        .unwrap();
    assert_eq!(ro["status"]["abort"], json!(true));
    assert_eq!(r.detail.summary.state, ReleaseState::Aborted);
    seen_until(&seen, 10, "the watch to push the aborted rollout", |seen| {
        updated(seen)
            .iter()
            .any(|s| s.release.name == "checkout" && s.state == ReleaseState::Aborted)
    })
    .await;
    let events: Vec<(String, String)> = rig
        .kube
        .events(NS)
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == "Rollout")
        .map(|e| {
            (
                e["reason"].as_str().unwrap().to_string(),
                e["involvedObject"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("FlightdeckPromote", "checkout"),
            ("FlightdeckPause", "checkout"),
            ("FlightdeckAbort", "checkout")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // Undo to revision 1: the Rollout's template is revision 1's, without the hash label.
    rig.svc
        .undo_release(UndoArgs {
            release: rref.clone(),
            revision: 1,
            reason: "back".into(),
        })
        .await
        .unwrap();
    let ro = rig
        .kube
        .get("argoproj.io/v1alpha1", "Rollout", Some(NS), "checkout")
        .unwrap();
    assert_eq!(
        ro["spec"]["template"]["spec"]["containers"][0]["image"],
        "checkout:1.0.0"
    );
    assert!(
        ro["spec"]["template"]["metadata"]["labels"]
            .get("rollouts-pod-template-hash")
            .is_none()
    );
    // A deleted Rollout is pushed as removed.
    assert!(
        rig.kube
            .delete("argoproj.io/v1alpha1", "Rollout", Some(NS), "checkout")
    );
    seen_until(&seen, 10, "the rollout removed", |seen| {
        seen.lock()
            .unwrap()
            .contains(&ReleaseChange::Removed(rref.clone()))
    })
    .await;
    // Without the CRD the cluster lists its Deployments only.
    rig.kube.enable_rollouts(false);
    let list = rig.svc.list_releases().await.unwrap();
    assert!(list.errors.is_empty(), "{:?}", list.errors);
    assert!(
        list.releases
            .iter()
            .all(|s| s.kind == ReleaseKind::Deployment)
    );
}
