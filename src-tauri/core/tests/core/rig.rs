//! The set-up shared by the console and release tests: a recording event sink, a temporary
//! directory removed on drop, and the fake cluster with the release `agent-service` (stable
//! 0.1.0, canary 0.2.0 at step 0) whose pods are real agent-service processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use flightdeck_core::console::EventSink;
use flightdeck_core::releases::ReleaseOptions;
use serde_json::{Value, json};
use testkit::{AgentService, Backend, FakeKube, KubeconfigOpts};

use crate::helpers::within;

pub const NS: &str = "flightdeck-test";
pub const APP: &str = "agent-service";

/// Records every pushed event and notification.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<(String, Value)>>,
    pub notes: Mutex<Vec<(String, String)>>,
}

impl EventSink for Recorder {
    fn emit(&self, event: &str, payload: Value) {
        self.events
            .lock()
            .unwrap()
            .push((event.to_string(), payload));
    }

    fn notify(&self, title: &str, body: &str) {
        self.notes
            .lock()
            .unwrap()
            .push((title.to_string(), body.to_string()));
    }
}

impl Recorder {
    pub fn of(&self, event: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _)| e == event)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// The first `event` payload (recorded so far or later) that satisfies `pred`.
    pub async fn wait_for(&self, secs: u64, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        within(secs, event, async {
            loop {
                if let Some(v) = self.of(event).into_iter().find(|v| pred(v)) {
                    return v;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    pub fn clear(&self) {
        self.events.lock().unwrap().clear();
    }

    pub fn all_json(&self) -> String {
        serde_json::to_string(&*self.events.lock().unwrap()).unwrap()
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Release options fast enough for tests; `inconclusive_pause_after` as given.
pub fn release_options(inconclusive_pause_after: usize) -> ReleaseOptions {
    ReleaseOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        rollout_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(50),
        failure_limit: 1,
        inconclusive_pause_after,
        conflict_retries: 3,
        actor: "tester".into(),
    }
}

/// The canary analysis annotation with `min_samples`.
pub fn analysis_json(min_samples: u64) -> String {
    json!({"max_error_rate": 0.01, "max_p95_latency_ms": 8000, "min_success_rate": 0.95,
           "max_cost_per_success_usd": 0.05, "max_guardrail_block_rate": 0.5,
           "min_samples": min_samples})
    .to_string()
}

/// A Deployment of track `track` of the release `APP` in `NS`.
pub fn deployment(
    name: &str,
    track: &str,
    replicas: i64,
    image: &str,
    version: &str,
    annotations: Value,
) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations,
            "labels": {"app.kubernetes.io/name": APP, "track": track}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": APP, "track": track}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": APP, "track": track,
                    "app.kubernetes.io/version": version},
                    "annotations": {"flightdeck.dev/model": "scripted-v1"}},
                "spec": {"containers": [{"name": "agent-service", "image": image,
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": [{"name": "RELEASE_TRACK", "value": track},
                            {"name": "RELEASE_VERSION", "value": version}]}]}
            }
        }
    })
}

/// A fake cluster with the release `APP` (stable 0.1.0, canary 0.2.0 at step 0, analysis
/// needing `min_samples`) in `NS`, and its kubeconfig in `dir` with the context `context`
/// (an exec plugin for the credentials when `exec`).
pub async fn cluster(
    dir: &TempDir,
    context: &str,
    exec: bool,
    min_samples: u64,
) -> (FakeKube, PathBuf) {
    let kube = FakeKube::start().await;
    let kc = dir.0.join(format!("kubeconfig-{context}"));
    kube.write_kubeconfig(
        &kc,
        &KubeconfigOpts {
            context: context.into(),
            namespace: Some(NS.into()),
            token: None,
            exec,
        },
    )
    .unwrap();
    kube.apply_value(deployment(
        APP,
        "stable",
        9,
        "ghcr.io/flightdeck/agent-service:0.1.0",
        "0.1.0",
        json!({}),
    ))
    .unwrap();
    kube.apply_value(deployment(
        &format!("{APP}-canary"),
        "canary",
        0,
        "ghcr.io/flightdeck/agent-service:0.2.0",
        "0.2.0",
        json!({"flightdeck.dev/canary-steps": "10,25,50,100", "flightdeck.dev/canary-step": "0",
               "flightdeck.dev/analysis": analysis_json(min_samples)}),
    ))
    .unwrap();
    (kube, kc)
}

/// Real agent-services as the pods of both tracks (the canary's with `canary_env` added).
pub async fn backends(
    kube: &FakeKube,
    canary_env: &[(&str, &str)],
) -> (AgentService, AgentService) {
    let stable = AgentService::spawn(
        Backend::Sqlite,
        &[("RELEASE_TRACK", "stable"), ("RELEASE_VERSION", "0.1.0")],
    )
    .await;
    let mut env = vec![("RELEASE_TRACK", "canary"), ("RELEASE_VERSION", "0.2.0")];
    env.extend_from_slice(canary_env);
    let canary = AgentService::spawn(Backend::Sqlite, &env).await;
    for (track, svc) in [("stable", &stable), ("canary", &canary)] {
        kube.set_backend(
            NS,
            BTreeMap::from([("track".to_string(), track.to_string())]),
            svc.base_url(),
        );
    }
    (stable, canary)
}
