//! The policy every rendered overlay must meet: the canary model the console drives and the
//! security and availability rules of deploy/README.md.
//!
//! Each check takes a [`Bundle`] and returns its violations as sentences that name the
//! object, what it found and what is expected; an empty list is a pass. [`CHECKS`] is the
//! table the tests run over every overlay.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, Probe};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::bundle::{Bundle, name_of};
use crate::canary::{self, CanaryPlan};
use crate::dockerfile::image_ref;
use crate::quantity::{cpu_millis, memory_bytes};

/// The stable Deployment (and the Service, HPA, PDB, NetworkPolicy, ServiceAccount).
pub const APP: &str = "agent-service";
/// The canary Deployment.
pub const CANARY: &str = "agent-service-canary";
/// The container that runs agent-service in both Deployments.
pub const CONTAINER: &str = "agent-service";
/// The port agent-service listens on in a pod (BIND_ADDR 0.0.0.0:8080).
pub const PORT: i32 = 8080;
pub const APP_LABEL: &str = "app.kubernetes.io/name";
pub const TRACK_LABEL: &str = "track";
/// The externally managed Secret the Deployments reference by key.
pub const SECRET_NAME: &str = "agent-service-secrets";
pub const RELEASE_ROLE: &str = "flightdeck-release";
pub const VIEWER_ROLE: &str = "flightdeck-viewer";

/// Exactly what the console's promote / abort / undo / pause need: (API group, resource,
/// verbs). Nothing more may be granted, and nothing less.
pub const RELEASE_RULES: &[(&str, &str, &[&str])] = &[
    ("apps", "deployments", &["get", "list", "watch", "patch"]),
    ("apps", "deployments/scale", &["get", "patch", "update"]),
    ("apps", "replicasets", &["get", "list", "watch"]),
    ("", "pods", &["get", "list", "watch"]),
    ("", "pods/proxy", &["get"]),
    ("", "events", &["create"]),
    ("events.k8s.io", "events", &["create"]),
];

/// Egress the pods may have: DNS, PostgreSQL, the Ollama model endpoint.
pub const EGRESS_PORTS: &[(&str, i32)] = &[("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 11434)];

/// (track label value, Deployment name) of the two tracks.
pub const TRACKS: &[(&str, &str)] = &[("stable", APP), ("canary", CANARY)];

pub type Check = fn(&Bundle) -> Vec<String>;

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("objects", objects),
    ("namespace", namespace),
    ("tracks", tracks),
    ("same_pod", same_pod),
    ("probes", probes),
    ("resources", resources),
    ("security", security),
    ("graceful_shutdown", graceful_shutdown),
    ("scrape", scrape),
    ("image", image),
    ("service", service),
    ("hpa", hpa),
    ("pdb", pdb),
    ("network_policy", network_policy),
    ("rbac", rbac),
    ("secrets", secrets),
    ("canary_plan", canary_plan),
];

/// Runs every check; returns `check: violation` lines.
pub fn violations(bundle: &Bundle) -> Vec<String> {
    CHECKS
        .iter()
        .flat_map(|(name, check)| {
            check(bundle)
                .into_iter()
                .map(move |v| format!("{name}: {v}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Accessors

pub fn template(d: &Deployment) -> &PodTemplateSpec {
    &d.spec.template
}

pub fn pod_spec(d: &Deployment) -> Option<&PodSpec> {
    template(d).spec.as_ref()
}

pub fn template_labels(d: &Deployment) -> BTreeMap<String, String> {
    template(d)
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

pub fn template_annotations(d: &Deployment) -> BTreeMap<String, String> {
    template(d)
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
}

/// The agent-service container of a Deployment.
pub fn app_container(d: &Deployment) -> Option<&Container> {
    pod_spec(d)?.containers.iter().find(|c| c.name == CONTAINER)
}

/// Every container and init container of a Deployment.
pub fn all_containers(d: &Deployment) -> Vec<&Container> {
    pod_spec(d)
        .map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .collect()
        })
        .unwrap_or_default()
}

/// The literal `value` of an env var (None when unset or taken from a reference).
pub fn env_literal<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

/// The value a container sees for `key`: its own literal env, else the ConfigMaps it
/// loads with envFrom.
pub fn effective_env(bundle: &Bundle, c: &Container, key: &str) -> Option<String> {
    if let Some(v) = env_literal(c, key) {
        return Some(v.to_string());
    }
    c.env_from.iter().flatten().find_map(|source| {
        let name = source.config_map_ref.as_ref()?.name.as_str();
        let cm = bundle.config_maps.iter().find(|cm| name_of(*cm) == name)?;
        cm.data.as_ref()?.get(key).cloned()
    })
}

/// Does `selector` select an object with `labels`?
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty());
    // An empty selector selects everything in a NetworkPolicy and nothing in a PDB; the
    // checks below never accept an empty selector, so treat it as "selects nothing".
    !empty && by_labels && by_expressions
}

/// The port number a probe or Service targets, resolving named ports.
fn resolve_port(c: &Container, port: &IntOrString) -> Option<i32> {
    match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port),
    }
}

fn the_tracks(bundle: &Bundle) -> impl Iterator<Item = (&'static str, &Deployment)> {
    TRACKS
        .iter()
        .filter_map(|(track, name)| bundle.deployment(name).map(|d| (*track, d)))
}

// ---------------------------------------------------------------------------------------
// Checks

/// The expected set of objects is there, and only those Deployments.
pub fn objects(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    let names: BTreeSet<&str> = bundle.deployments.iter().map(name_of).collect();
    let expected: BTreeSet<&str> = [APP, CANARY].into();
    if names != expected {
        v.push(format!(
            "Deployments are {names:?}; expected exactly {expected:?}"
        ));
    }
    match bundle.service_accounts.as_slice() {
        [sa] if name_of(sa) == APP => {
            if sa.automount_service_account_token != Some(false) {
                v.push(format!(
                    "ServiceAccount {APP} must set automountServiceAccountToken: false"
                ));
            }
        }
        other => v.push(format!(
            "expected one ServiceAccount {APP}, found {:?}",
            other.iter().map(name_of).collect::<Vec<_>>()
        )),
    }
    for d in &bundle.deployments {
        let sa = pod_spec(d).and_then(|s| s.service_account_name.as_deref());
        if sa != Some(APP) {
            v.push(format!(
                "Deployment {} runs as ServiceAccount {sa:?}; expected {APP}",
                name_of(d)
            ));
        }
        if app_container(d).is_none() {
            v.push(format!(
                "Deployment {} has no container named {CONTAINER}",
                name_of(d)
            ));
        }
        for c in all_containers(d) {
            for source in c.env_from.iter().flatten() {
                if let Some(r) = &source.config_map_ref
                    && !bundle.config_maps.iter().any(|cm| name_of(cm) == r.name)
                {
                    v.push(format!(
                        "Deployment {} loads ConfigMap {} which the overlay does not render",
                        name_of(d),
                        r.name
                    ));
                }
            }
        }
    }
    if bundle.config_maps.is_empty() {
        v.push("no ConfigMap: the non-secret configuration must come from one".into());
    }
    v
}

/// One Namespace, every object in it, and it enforces the restricted Pod Security level.
pub fn namespace(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    let Some(ns) = bundle.namespace() else {
        return vec![format!(
            "expected exactly one Namespace object, found {}",
            bundle.namespaces.len()
        )];
    };
    for (kind, name, object_ns) in bundle.namespaced() {
        if object_ns.as_deref() != Some(ns) {
            v.push(format!(
                "{kind} {name} is in namespace {object_ns:?}; expected {ns}"
            ));
        }
    }
    let labels = bundle.namespaces[0]
        .metadata
        .labels
        .clone()
        .unwrap_or_default();
    if labels
        .get("pod-security.kubernetes.io/enforce")
        .map(String::as_str)
        != Some("restricted")
    {
        v.push(format!(
            "Namespace {ns} must carry pod-security.kubernetes.io/enforce: restricted"
        ));
    }
    v
}

/// Both tracks are labelled on the Deployment, its selector and its pods; RELEASE_TRACK
/// agrees; the selectors do not overlap; the canary starts at 0 replicas.
pub fn tracks(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for (track, name) in TRACKS {
        let Some(d) = bundle.deployment(name) else {
            v.push(format!("Deployment {name} (track {track}) is missing"));
            continue;
        };
        let expected: BTreeMap<String, String> = [
            (APP_LABEL.to_string(), APP.to_string()),
            (TRACK_LABEL.to_string(), track.to_string()),
        ]
        .into();
        let has_all = |labels: &BTreeMap<String, String>| {
            expected.iter().all(|(k, val)| labels.get(k) == Some(val))
        };
        if !has_all(&d.metadata.labels.clone().unwrap_or_default()) {
            v.push(format!("Deployment {name} must be labelled {expected:?}"));
        }
        if !has_all(&template_labels(d)) {
            v.push(format!(
                "Deployment {name}'s pod template must be labelled {expected:?}"
            ));
        }
        let selector = d.spec.selector.clone();
        if selector.match_labels.clone().unwrap_or_default() != expected {
            v.push(format!(
                "Deployment {name}'s selector is {:?}; expected matchLabels {expected:?}",
                selector.match_labels
            ));
        }
        match app_container(d).and_then(|c| env_literal(c, "RELEASE_TRACK")) {
            Some(t) if t == *track => {}
            other => v.push(format!(
                "Deployment {name} sets RELEASE_TRACK={other:?}; expected {track}"
            )),
        }
    }
    if let (Some(stable), Some(canary)) = (bundle.deployment(APP), bundle.deployment(CANARY)) {
        let stable_selector = stable.spec.selector.clone();
        let canary_selector = canary.spec.selector.clone();
        if selects(&stable_selector, &template_labels(canary))
            || selects(&canary_selector, &template_labels(stable))
        {
            v.push("the stable and canary selectors overlap: each Deployment would adopt the other's pods".into());
        }
        let replicas = canary.spec.replicas;
        if replicas != Some(0) {
            v.push(format!(
                "Deployment {CANARY} has replicas {replicas:?}; a rendered canary starts at 0 (the console scales it)"
            ));
        }
    }
    v
}

/// The canary runs the same pod as stable: only the track label and RELEASE_TRACK differ
/// (the image and RELEASE_VERSION may differ too, while a new version is in canary).
pub fn same_pod(bundle: &Bundle) -> Vec<String> {
    let (Some(stable), Some(canary)) = (bundle.deployment(APP), bundle.deployment(CANARY)) else {
        return vec![];
    };
    let normalise = |d: &Deployment| {
        let mut t = template(d).clone();
        if let Some(m) = t.metadata.as_mut()
            && let Some(l) = m.labels.as_mut()
        {
            l.remove(TRACK_LABEL);
        }
        if let Some(spec) = t.spec.as_mut() {
            for c in &mut spec.containers {
                if c.name == CONTAINER {
                    c.image = None;
                    for e in c.env.iter_mut().flatten() {
                        if e.name == "RELEASE_TRACK" || e.name == "RELEASE_VERSION" {
                            e.value = None;
                        }
                    }
                }
            }
        }
        serde_json::to_value(t).unwrap_or_default()
    };
    let (a, b) = (normalise(stable), normalise(canary));
    if a == b {
        return vec![];
    }
    let diff = first_difference(&a, &b, "template").unwrap_or_default();
    vec![format!(
        "the canary pod template differs from stable beyond track, RELEASE_TRACK, image and RELEASE_VERSION: {diff}"
    )]
}

fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                first_difference(l, r, &format!("{path}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: stable {a} vs canary {b}")),
    }
}

fn http_probe(c: &Container, probe: Option<&Probe>, kind: &str, path: &str) -> Option<String> {
    let Some(probe) = probe else {
        return Some(format!("container {} has no {kind}", c.name));
    };
    let Some(get) = &probe.http_get else {
        return Some(format!(
            "container {}'s {kind} is not an HTTP GET of {path}",
            c.name
        ));
    };
    if get.path.as_deref() != Some(path) {
        return Some(format!(
            "container {}'s {kind} probes {:?}; expected {path}",
            c.name, get.path
        ));
    }
    match resolve_port(c, &get.port) {
        Some(PORT) => None,
        other => Some(format!(
            "container {}'s {kind} probes port {:?} (resolves to {other:?}); expected {PORT}",
            c.name, get.port
        )),
    }
}

/// Readiness on /readyz, liveness and startup on /healthz, all on the serving port.
pub fn probes(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for d in &bundle.deployments {
        let Some(c) = app_container(d) else { continue };
        let checks = [
            http_probe(c, c.readiness_probe.as_ref(), "readinessProbe", "/readyz"),
            http_probe(c, c.liveness_probe.as_ref(), "livenessProbe", "/healthz"),
            http_probe(c, c.startup_probe.as_ref(), "startupProbe", "/healthz"),
        ];
        v.extend(
            checks
                .into_iter()
                .flatten()
                .map(|m| format!("Deployment {}: {m}", name_of(d))),
        );
        if !c.ports.iter().flatten().any(|p| p.container_port == PORT) {
            v.push(format!(
                "Deployment {}: container {} does not declare port {PORT}",
                name_of(d),
                c.name
            ));
        }
    }
    v
}

/// CPU and memory requests and limits on every container, requests within limits.
pub fn resources(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for d in &bundle.deployments {
        for c in all_containers(d) {
            let at = format!("Deployment {} container {}", name_of(d), c.name);
            let r = c.resources.clone().unwrap_or_default();
            let requests = r.requests.unwrap_or_default();
            let limits = r.limits.unwrap_or_default();
            for (what, map) in [("requests", &requests), ("limits", &limits)] {
                for key in ["cpu", "memory"] {
                    if !map.contains_key(key) {
                        v.push(format!("{at}: resources.{what}.{key} is not set"));
                    }
                }
            }
            let pair = |key: &str, parse: fn(&str) -> Option<u64>| {
                let req = requests.get(key).map(|q| (q.0.as_str(), parse(&q.0)));
                let lim = limits.get(key).map(|q| (q.0.as_str(), parse(&q.0)));
                match (req, lim) {
                    (Some((rq, Some(a))), Some((lq, Some(b)))) if a > b => {
                        Some(format!("{at}: {key} request {rq} is above its limit {lq}"))
                    }
                    (Some((q, None)), _) | (_, Some((q, None))) => {
                        Some(format!("{at}: cannot read {key} quantity {q:?}"))
                    }
                    _ => None,
                }
            };
            v.extend(pair("cpu", cpu_millis));
            v.extend(pair("memory", memory_bytes));
        }
    }
    v
}

/// Non-root, read-only root filesystem, no privilege escalation, every capability dropped,
/// RuntimeDefault seccomp, no host namespaces or host paths, no API token.
pub fn security(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for d in &bundle.deployments {
        let Some(spec) = pod_spec(d) else { continue };
        let name = name_of(d);
        let pod = spec.security_context.clone().unwrap_or_default();
        if spec.automount_service_account_token != Some(false) {
            v.push(format!(
                "Deployment {name}: automountServiceAccountToken must be false"
            ));
        }
        for (flag, set) in [
            ("hostNetwork", spec.host_network),
            ("hostPID", spec.host_pid),
            ("hostIPC", spec.host_ipc),
        ] {
            if set == Some(true) {
                v.push(format!("Deployment {name}: {flag} must not be true"));
            }
        }
        for vol in spec.volumes.iter().flatten() {
            if vol.host_path.is_some() {
                v.push(format!(
                    "Deployment {name}: volume {} is a hostPath",
                    vol.name
                ));
            }
        }
        for c in all_containers(d) {
            let at = format!("Deployment {name} container {}", c.name);
            let sc = c.security_context.clone().unwrap_or_default();
            if sc.run_as_non_root.or(pod.run_as_non_root) != Some(true) {
                v.push(format!("{at}: runAsNonRoot must be true"));
            }
            match sc.run_as_user.or(pod.run_as_user) {
                Some(uid) if uid > 0 => {}
                other => v.push(format!(
                    "{at}: runAsUser is {other:?}; set a non-zero numeric UID"
                )),
            }
            if sc.read_only_root_filesystem != Some(true) {
                v.push(format!("{at}: readOnlyRootFilesystem must be true"));
            }
            if sc.allow_privilege_escalation != Some(false) {
                v.push(format!("{at}: allowPrivilegeEscalation must be false"));
            }
            if sc.privileged == Some(true) {
                v.push(format!("{at}: privileged must not be true"));
            }
            let caps = sc.capabilities.clone().unwrap_or_default();
            if !caps.drop.iter().flatten().any(|c| c == "ALL") {
                v.push(format!("{at}: capabilities.drop must contain ALL"));
            }
            if caps.add.as_ref().is_some_and(|a| !a.is_empty()) {
                v.push(format!(
                    "{at}: capabilities.add must be empty, found {:?}",
                    caps.add
                ));
            }
            let seccomp = sc
                .seccomp_profile
                .clone()
                .or(pod.seccomp_profile.clone())
                .map(|p| p.type_);
            if !matches!(seccomp.as_deref(), Some("RuntimeDefault" | "Localhost")) {
                v.push(format!(
                    "{at}: seccompProfile is {seccomp:?}; expected RuntimeDefault"
                ));
            }
        }
    }
    v
}

/// terminationGracePeriodSeconds covers the preStop sleep plus SHUTDOWN_GRACE_SECS, and a
/// preStop sleep keeps the pod serving while endpoints drop it.
pub fn graceful_shutdown(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for d in &bundle.deployments {
        let (Some(spec), Some(c)) = (pod_spec(d), app_container(d)) else {
            continue;
        };
        let name = name_of(d);
        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
        let pre_stop = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
        let sleep = match pre_stop.and_then(|h| h.sleep.as_ref()) {
            Some(s) if s.seconds > 0 => s.seconds,
            _ => {
                v.push(format!(
                    "Deployment {name}: container {} needs a preStop sleep so endpoints drain before SIGTERM",
                    c.name
                ));
                0
            }
        };
        let drain = match effective_env(bundle, c, "SHUTDOWN_GRACE_SECS") {
            None => 20,
            Some(s) => match s.parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    v.push(format!(
                        "Deployment {name}: SHUTDOWN_GRACE_SECS={s:?} is not a number"
                    ));
                    continue;
                }
            },
        };
        if grace <= sleep + drain {
            v.push(format!(
                "Deployment {name}: terminationGracePeriodSeconds {grace} must exceed preStop sleep {sleep} s + SHUTDOWN_GRACE_SECS {drain} s"
            ));
        }
    }
    v
}

/// Pods carry the Prometheus scrape annotations for the port that serves /metrics.
pub fn scrape(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    let port = PORT.to_string();
    for d in &bundle.deployments {
        let a = template_annotations(d);
        for (key, want) in [
            ("prometheus.io/scrape", "true"),
            ("prometheus.io/port", port.as_str()),
            ("prometheus.io/path", "/metrics"),
        ] {
            if a.get(key).map(String::as_str) != Some(want) {
                v.push(format!(
                    "Deployment {}: pod annotation {key} is {:?}; expected {want:?}",
                    name_of(d),
                    a.get(key)
                ));
            }
        }
    }
    v
}

/// A registry-qualified image with an explicit tag (never `latest`), and RELEASE_VERSION
/// equal to that tag so metrics, approvals and /v1/info name what actually runs.
pub fn image(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for d in &bundle.deployments {
        let Some(c) = app_container(d) else { continue };
        let name = name_of(d);
        let Some(reference) = c.image.as_deref() else {
            v.push(format!(
                "Deployment {name}: container {} has no image",
                c.name
            ));
            continue;
        };
        let r = image_ref(reference);
        if !r.name.contains('/') {
            v.push(format!(
                "Deployment {name}: image {reference} names no registry"
            ));
        }
        match r.tag.as_deref() {
            None | Some("latest") => v.push(format!(
                "Deployment {name}: image {reference} needs an explicit version tag (overlay `images: newTag`)"
            )),
            Some(tag) => {
                let version = env_literal(c, "RELEASE_VERSION");
                if version != Some(tag) {
                    v.push(format!(
                        "Deployment {name}: RELEASE_VERSION is {version:?} but the image tag is {tag}"
                    ));
                }
            }
        }
    }
    v
}

/// One Service selecting only the app label, so both tracks receive traffic.
pub fn service(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    let [svc] = bundle.services.as_slice() else {
        return vec![format!(
            "expected exactly one Service, found {}",
            bundle.services.len()
        )];
    };
    let spec = svc.spec.clone().unwrap_or_default();
    let expected: BTreeMap<String, String> = [(APP_LABEL.to_string(), APP.to_string())].into();
    if spec.selector.as_ref() != Some(&expected) {
        v.push(format!(
            "Service {} selects {:?}; expected only {expected:?} so it spans both tracks",
            name_of(svc),
            spec.selector
        ));
    }
    for (track, d) in the_tracks(bundle) {
        let labels = template_labels(d);
        if !expected.iter().all(|(k, val)| labels.get(k) == Some(val)) {
            v.push(format!(
                "Service {} does not select the {track} pods",
                name_of(svc)
            ));
        }
        let Some(c) = app_container(d) else { continue };
        for p in spec.ports.iter().flatten() {
            let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
            if resolve_port(c, &target) != Some(PORT) {
                v.push(format!(
                    "Service {} port {} targets {target:?}, which is not port {PORT} of the {track} pods",
                    name_of(svc),
                    p.port
                ));
            }
        }
    }
    v
}

/// An autoscaling/v2 HPA scales the stable Deployment, which leaves spec.replicas to it.
pub fn hpa(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    let targets: Vec<_> = bundle.hpas.iter().map(|h| (name_of(h), &h.spec)).collect();
    let stable: Vec<_> = targets
        .iter()
        .filter(|(_, s)| {
            s.scale_target_ref.kind == "Deployment"
                && s.scale_target_ref.name == APP
                && s.scale_target_ref.api_version.as_deref() == Some("apps/v1")
        })
        .collect();
    match stable.as_slice() {
        [(name, s)] => {
            let min = s.min_replicas.unwrap_or(1);
            if min < 1 || s.max_replicas < min {
                v.push(format!(
                    "HorizontalPodAutoscaler {name}: replicas {min}..{} is not a valid range",
                    s.max_replicas
                ));
            }
            if s.metrics.as_ref().is_none_or(|m| m.is_empty()) {
                v.push(format!(
                    "HorizontalPodAutoscaler {name} has no metrics to scale on"
                ));
            }
        }
        other => v.push(format!(
            "expected one HorizontalPodAutoscaler for apps/v1 Deployment {APP}, found {}",
            other.len()
        )),
    }
    for (name, s) in &targets {
        if s.scale_target_ref.name != APP {
            v.push(format!(
                "HorizontalPodAutoscaler {name} targets {} {}; only the stable Deployment autoscales (the console scales the canary)",
                s.scale_target_ref.kind, s.scale_target_ref.name
            ));
        }
    }
    if let Some(replicas) = bundle.deployment(APP).and_then(|d| d.spec.replicas) {
        v.push(format!(
            "Deployment {APP} sets replicas {replicas}; leave it unset, the HorizontalPodAutoscaler owns it"
        ));
    }
    v
}

/// A PodDisruptionBudget covers the pods of both tracks and lets a drain make progress.
pub fn pdb(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    let min_replicas = bundle
        .hpas
        .iter()
        .map(|h| &h.spec)
        .find(|s| s.scale_target_ref.name == APP)
        .and_then(|s| s.min_replicas)
        .unwrap_or(1);
    let covering: Vec<_> = bundle
        .pdbs
        .iter()
        .filter(|p| {
            let selector = p
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default();
            the_tracks(bundle).count() == TRACKS.len()
                && the_tracks(bundle).all(|(_, d)| selects(&selector, &template_labels(d)))
        })
        .collect();
    if covering.is_empty() {
        v.push(format!(
            "no PodDisruptionBudget selects the pods of both {APP} and {CANARY}"
        ));
    }
    for p in covering {
        let spec = p.spec.clone().unwrap_or_default();
        match (&spec.max_unavailable, &spec.min_available) {
            (None, None) => v.push(format!(
                "PodDisruptionBudget {} sets neither maxUnavailable nor minAvailable",
                name_of(p)
            )),
            (_, Some(IntOrString::Int(n))) if *n >= min_replicas => v.push(format!(
                "PodDisruptionBudget {}: minAvailable {n} >= the HPA's minReplicas {min_replicas}, so no pod could ever be evicted",
                name_of(p)
            )),
            (Some(IntOrString::Int(0)), _) => v.push(format!(
                "PodDisruptionBudget {}: maxUnavailable 0 blocks every drain",
                name_of(p)
            )),
            _ => {}
        }
    }
    v
}

fn port_number(p: &k8s_openapi::api::networking::v1::NetworkPolicyPort) -> Option<i32> {
    match &p.port {
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) if name == "http" => Some(PORT),
        _ => None,
    }
}

/// Default-deny NetworkPolicy: ingress only to 8080 from named peers, egress only DNS,
/// PostgreSQL and the model endpoint.
pub fn network_policy(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    let selecting: Vec<_> = bundle
        .network_policies
        .iter()
        .filter(|np| {
            let selector = np
                .spec
                .as_ref()
                .and_then(|s| s.pod_selector.clone())
                .unwrap_or_default();
            the_tracks(bundle).any(|(_, d)| selects(&selector, &template_labels(d)))
        })
        .collect();
    if selecting.is_empty() {
        return vec![format!("no NetworkPolicy selects the {APP} pods")];
    }
    let mut has_dns = false;
    for np in selecting {
        let name = name_of(np);
        let spec = np.spec.clone().unwrap_or_default();
        let selector = spec.pod_selector.clone().unwrap_or_default();
        for (track, d) in the_tracks(bundle) {
            if !selects(&selector, &template_labels(d)) {
                v.push(format!(
                    "NetworkPolicy {name} does not select the {track} pods"
                ));
            }
        }
        let types = spec.policy_types.clone().unwrap_or_default();
        for t in ["Ingress", "Egress"] {
            if !types.iter().any(|x| x == t) {
                v.push(format!(
                    "NetworkPolicy {name}: policyTypes must include {t}"
                ));
            }
        }
        for (i, rule) in spec.ingress.iter().flatten().enumerate() {
            if rule.from.as_ref().is_none_or(|f| f.is_empty()) {
                v.push(format!(
                    "NetworkPolicy {name}: ingress rule {i} admits every source; name the peers"
                ));
            }
            let ports = rule.ports.clone().unwrap_or_default();
            if ports.is_empty() {
                v.push(format!(
                    "NetworkPolicy {name}: ingress rule {i} opens every port; allow {PORT} only"
                ));
            }
            for p in &ports {
                if port_number(p) != Some(PORT) {
                    v.push(format!(
                        "NetworkPolicy {name}: ingress rule {i} opens port {:?}; only {PORT} is served",
                        p.port
                    ));
                }
            }
            for peer in rule.from.iter().flatten() {
                if let Some(block) = &peer.ip_block
                    && (block.cidr == "0.0.0.0/0" || block.cidr == "::/0")
                {
                    v.push(format!(
                        "NetworkPolicy {name}: ingress rule {i} admits {}",
                        block.cidr
                    ));
                }
            }
        }
        let egress = spec.egress.clone().unwrap_or_default();
        if types.iter().any(|t| t == "Egress") && egress.is_empty() {
            v.push(format!(
                "NetworkPolicy {name} denies all egress: DNS, PostgreSQL and the model endpoint need rules"
            ));
        }
        for (i, rule) in egress.iter().enumerate() {
            if rule.to.as_ref().is_none_or(|t| t.is_empty()) {
                v.push(format!(
                    "NetworkPolicy {name}: egress rule {i} allows every destination"
                ));
            }
            let ports = rule.ports.clone().unwrap_or_default();
            if ports.is_empty() {
                v.push(format!(
                    "NetworkPolicy {name}: egress rule {i} allows every port"
                ));
            }
            for p in &ports {
                let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                let number = port_number(p);
                if p.end_port.is_some()
                    || !EGRESS_PORTS
                        .iter()
                        .any(|(proto, n)| *proto == protocol && Some(*n) == number)
                {
                    v.push(format!(
                        "NetworkPolicy {name}: egress rule {i} allows {protocol} {:?}; allowed are {EGRESS_PORTS:?} (deploy/README.md: widening)",
                        p.port
                    ));
                }
                if protocol == "UDP" && number == Some(53) {
                    has_dns = true;
                }
            }
            for peer in rule.to.iter().flatten() {
                if let Some(block) = &peer.ip_block
                    && (block.cidr == "0.0.0.0/0" || block.cidr == "::/0")
                {
                    v.push(format!(
                        "NetworkPolicy {name}: egress rule {i} reaches {}",
                        block.cidr
                    ));
                }
            }
        }
    }
    if !has_dns {
        v.push("no NetworkPolicy lets the pods reach DNS (UDP 53)".into());
    }
    v
}

fn triples(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for r in rules {
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for verb in &r.verbs {
                    out.insert((g.clone(), res.clone(), verb.clone()));
                }
            }
        }
    }
    out
}

/// No wildcards and no cluster-wide grants; the release Role grants exactly
/// [`RELEASE_RULES`]; the viewer Role only reads; agent-service's own account has nothing.
pub fn rbac(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for r in &bundle.cluster_roles {
        v.push(format!(
            "ClusterRole {}: the bundle must not grant anything cluster-wide",
            name_of(r)
        ));
    }
    for r in &bundle.cluster_role_bindings {
        v.push(format!(
            "ClusterRoleBinding {}: the bundle must not bind cluster-wide",
            name_of(r)
        ));
    }
    for role in &bundle.roles {
        for (i, rule) in role.rules.iter().flatten().enumerate() {
            let fields = [
                ("apiGroups", rule.api_groups.clone().unwrap_or_default()),
                ("resources", rule.resources.clone().unwrap_or_default()),
                ("verbs", rule.verbs.clone()),
                (
                    "resourceNames",
                    rule.resource_names.clone().unwrap_or_default(),
                ),
                (
                    "nonResourceURLs",
                    rule.non_resource_urls.clone().unwrap_or_default(),
                ),
            ];
            for (field, values) in fields {
                if values.iter().any(|x| x.contains('*')) {
                    v.push(format!(
                        "Role {} rule {i}: {field} {values:?} contains a wildcard",
                        name_of(role)
                    ));
                }
            }
        }
    }
    let role = |name: &str| bundle.roles.iter().find(|r| name_of(*r) == name);
    match role(RELEASE_ROLE) {
        None => v.push(format!(
            "Role {RELEASE_ROLE} (the console's promote/abort/undo) is missing"
        )),
        Some(r) => {
            let got = triples(r.rules.as_deref().unwrap_or_default());
            let want: BTreeSet<(String, String, String)> = RELEASE_RULES
                .iter()
                .flat_map(|(g, res, verbs)| {
                    verbs
                        .iter()
                        .map(move |verb| (g.to_string(), res.to_string(), verb.to_string()))
                })
                .collect();
            for (g, res, verb) in got.difference(&want) {
                v.push(format!("Role {RELEASE_ROLE} grants {verb} on {res} (group {g:?}), which the console does not need"));
            }
            for (g, res, verb) in want.difference(&got) {
                v.push(format!("Role {RELEASE_ROLE} lacks {verb} on {res} (group {g:?}), which the console needs"));
            }
        }
    }
    match role(VIEWER_ROLE) {
        None => v.push(format!("Role {VIEWER_ROLE} (read-only console) is missing")),
        Some(r) => {
            for (g, res, verb) in triples(r.rules.as_deref().unwrap_or_default()) {
                if !["get", "list", "watch"].contains(&verb.as_str()) {
                    v.push(format!("Role {VIEWER_ROLE} grants {verb} on {res} (group {g:?}); a viewer only reads"));
                }
            }
        }
    }
    for b in &bundle.role_bindings {
        if b.role_ref.kind != "Role" || role(&b.role_ref.name).is_none() {
            v.push(format!(
                "RoleBinding {} refers to {} {} which the bundle does not define",
                name_of(b),
                b.role_ref.kind,
                b.role_ref.name
            ));
        }
        for s in b.subjects.iter().flatten() {
            if s.kind == "ServiceAccount" && s.name == APP {
                v.push(format!(
                    "RoleBinding {} grants ServiceAccount {APP} API access; agent-service never calls the API",
                    name_of(b)
                ));
            }
        }
    }
    v
}

/// True for configuration keys that hold credentials.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    k == "DATABASE_URL"
        || ["PASSWORD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY"]
            .iter()
            .any(|s| k.contains(s))
}

/// No Secret object carries values; credentials come only by reference from the
/// externally managed Secret; no credential sits in a ConfigMap or a literal env var.
pub fn secrets(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    for s in &bundle.secrets {
        let data = s.data.as_ref().is_some_and(|d| !d.is_empty());
        let string_data = s.string_data.as_ref().is_some_and(|d| !d.is_empty());
        if data || string_data {
            v.push(format!(
                "Secret {} carries values; secrets are managed outside the bundle and only referenced",
                name_of(s)
            ));
        }
    }
    for cm in &bundle.config_maps {
        for key in cm.data.iter().flatten().map(|(k, _)| k) {
            if is_secret_key(key) {
                v.push(format!(
                    "ConfigMap {} holds {key}, a credential; reference it from {SECRET_NAME}",
                    name_of(cm)
                ));
            }
        }
    }
    for d in &bundle.deployments {
        for c in all_containers(d) {
            for e in c.env.iter().flatten() {
                let from_secret = e
                    .value_from
                    .as_ref()
                    .and_then(|f| f.secret_key_ref.as_ref());
                if is_secret_key(&e.name) && from_secret.is_none() {
                    v.push(format!(
                        "Deployment {} sets {} without a secretKeyRef; take it from Secret {SECRET_NAME}",
                        name_of(d),
                        e.name
                    ));
                }
                if let Some(r) = from_secret
                    && r.name != SECRET_NAME
                {
                    v.push(format!(
                        "Deployment {} takes {} from Secret {}; expected {SECRET_NAME}",
                        name_of(d),
                        e.name,
                        r.name
                    ));
                }
            }
            for source in c.env_from.iter().flatten() {
                if let Some(r) = &source.secret_ref
                    && r.name != SECRET_NAME
                {
                    v.push(format!(
                        "Deployment {} loads Secret {}; expected {SECRET_NAME}",
                        name_of(d),
                        r.name
                    ));
                }
            }
        }
        let database = app_container(d)
            .and_then(|c| c.env.iter().flatten().find(|e| e.name == "DATABASE_URL"))
            .and_then(|e| e.value_from.as_ref()?.secret_key_ref.as_ref());
        if database.is_none() {
            v.push(format!(
                "Deployment {}: DATABASE_URL must come from Secret {SECRET_NAME}",
                name_of(d)
            ));
        }
    }
    v
}

/// The canary Deployment's plan annotations parse; the stable Deployment has none.
pub fn canary_plan(bundle: &Bundle) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(d) = bundle.deployment(CANARY) {
        let annotations = d.metadata.annotations.clone().unwrap_or_default();
        if let Err(e) = CanaryPlan::from_annotations(&annotations) {
            v.push(format!("Deployment {CANARY}: {e}"));
        }
    }
    if let Some(d) = bundle.deployment(APP) {
        let annotations = d.metadata.annotations.clone().unwrap_or_default();
        for key in [canary::STEPS, canary::STEP, canary::ANALYSIS] {
            if annotations.contains_key(key) {
                v.push(format!(
                    "Deployment {APP} (stable) carries {key}; the plan lives on {CANARY} only"
                ));
            }
        }
    }
    v
}
