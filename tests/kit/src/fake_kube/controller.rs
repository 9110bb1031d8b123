//! A small deployment + replica set controller, run synchronously after every write so that
//! tests see a settled state as soon as a request returns (pods can become ready later,
//! after the configured delay).
//!
//! Differences from the real one: the rollout is immediate (the current ReplicaSet gets
//! `spec.replicas` at once, old ones 0: no surge steps); no rolling-update strategy knobs.

use serde_json::{Map, Value, json};

use super::resources::{DEPLOYMENTS, PODS, REPLICASETS};
use super::selectors::{labels_of, selector_object_matches};
use super::state::{State, controller_of, now};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const HASH_LABEL: &str = "pod-template-hash";

/// Settles the Deployments, ReplicaSets and Pods of a namespace.
pub fn reconcile(st: &mut State, ns: &str) {
    for d in st.list(&DEPLOYMENTS, Some(ns), None, None) {
        rollout(st, &d);
    }
    for rs in st.list(&REPLICASETS, Some(ns), None, None) {
        sync_pods(st, &rs);
    }
    for rs in st.list(&REPLICASETS, Some(ns), None, None) {
        rs_status(st, &rs);
    }
    for d in st.list(&DEPLOYMENTS, Some(ns), None, None) {
        deployment_status(st, &d);
    }
}

/// Kubernetes' pod-template-hash: FNV-1a (32 bit) of the template, its decimal digits
/// mapped onto the "safe" alphabet.
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|d| alphabet[usize::from(d) % alphabet.len()] as char)
        .collect()
}

fn revision_of(obj: &Value) -> i64 {
    obj["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn owned_by(list: Vec<Value>, uid: &str) -> Vec<Value> {
    list.into_iter()
        .filter(|o| controller_of(o).is_some_and(|(_, _, u)| u == uid))
        .collect()
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove(HASH_LABEL);
    }
    t
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

fn replicas_of(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn rollout(st: &mut State, d: &Value) {
    let ns = d["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let dname = d["metadata"]["name"].as_str().unwrap_or("").to_string();
    let uid = d["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let template = d["spec"]["template"].clone();
    let want = replicas_of(d);
    let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
    let owned = owned_by(st.list(&REPLICASETS, Some(&ns), None, None), &uid);
    let max_rev = owned.iter().map(revision_of).max().unwrap_or(0);
    let current = owned
        .iter()
        .find(|rs| without_hash(&rs["spec"]["template"]) == template)
        .cloned();
    let current = match current {
        Some(rs) if revision_of(&rs) == max_rev => rs,
        // A rollback to an older template: that ReplicaSet becomes the newest revision.
        Some(mut rs) if !paused => {
            rs["metadata"]["annotations"][REVISION] = json!((max_rev + 1).to_string());
            copy_change_cause(d, &mut rs);
            st.put_internal(&REPLICASETS, rs)
        }
        Some(_) => return,
        None if paused => return,
        None => {
            let hash = template_hash(&template);
            let mut tpl = template.clone();
            tpl["metadata"]["labels"][HASH_LABEL] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let mut annotations = Map::new();
            if let Some(a) = d["metadata"]["annotations"].as_object() {
                for (k, v) in a {
                    if !k.starts_with("deployment.kubernetes.io/")
                        && k != "kubectl.kubernetes.io/last-applied-configuration"
                    {
                        annotations.insert(k.clone(), v.clone());
                    }
                }
            }
            annotations.insert(REVISION.into(), json!((max_rev + 1).to_string()));
            annotations.insert(
                "deployment.kubernetes.io/desired-replicas".into(),
                json!(want.to_string()),
            );
            annotations.insert(
                "deployment.kubernetes.io/max-replicas".into(),
                json!(want.to_string()),
            );
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {
                    "name": format!("{dname}-{hash}"), "namespace": ns,
                    "labels": tpl["metadata"]["labels"], "annotations": annotations,
                    "ownerReferences": [owner_ref(d)],
                },
                "spec": {"replicas": 0, "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                         "selector": selector, "template": tpl},
            });
            match st.create(&REPLICASETS, Some(&ns), rs) {
                Ok(rs) => rs,
                Err(e) => {
                    tracing::warn!(error = %e.message, "fake kube: creating a ReplicaSet failed");
                    return;
                }
            }
        }
    };
    let current_name = current["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // Scale: the current ReplicaSet to spec.replicas, the others to 0.
    let owned = owned_by(st.list(&REPLICASETS, Some(&ns), None, None), &uid);
    for mut rs in owned {
        let name = rs["metadata"]["name"].as_str().unwrap_or("").to_string();
        let is_current = name == current_name;
        if paused && !is_current {
            continue;
        }
        let target = if is_current { want } else { 0 };
        let have = rs["spec"]["replicas"].as_i64().unwrap_or(1);
        if is_current {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                json!(want.to_string());
            rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] =
                json!(want.to_string());
        }
        if have != target {
            rs["spec"]["replicas"] = json!(target);
            let dir = if target > have { "up" } else { "down" };
            let msg = format!("Scaled {dir} replica set {name} from {have} to {target}");
            st.put_internal(&REPLICASETS, rs);
            st.record_event(
                d,
                "Normal",
                "ScalingReplicaSet",
                &msg,
                "deployment-controller",
            );
        } else {
            st.put_internal(&REPLICASETS, rs);
        }
    }
    // The Deployment carries the revision of its current ReplicaSet.
    if let Some(mut fresh) = st.get(&DEPLOYMENTS, Some(&ns), &dname).cloned() {
        let rev = revision_of(
            &st.get(&REPLICASETS, Some(&ns), &current_name)
                .cloned()
                .unwrap_or_default(),
        );
        if revision_of(&fresh) != rev {
            fresh["metadata"]["annotations"][REVISION] = json!(rev.to_string());
            st.put_internal(&DEPLOYMENTS, fresh);
        }
    }
}

fn copy_change_cause(d: &Value, rs: &mut Value) {
    let key = "kubernetes.io/change-cause";
    match d["metadata"]["annotations"].get(key) {
        Some(v) => rs["metadata"]["annotations"][key] = v.clone(),
        None => {
            if let Some(a) = rs["metadata"]["annotations"].as_object_mut() {
                a.remove(key);
            }
        }
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn pod_status(st: &mut State, pod: &Value, ready: bool) -> Value {
    let ts = now();
    let flag = if ready { "True" } else { "False" };
    let n = st.rv % 250 + 2;
    let ip = pod["status"]["podIP"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("10.244.0.{n}"));
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let state = if ready {
                        json!({"running": {"startedAt": ts}})
                    } else {
                        json!({"waiting": {"reason": "ContainerCreating"}})
                    };
                    json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
                           "restartCount": 0, "started": ready, "state": state})
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "phase": if ready { "Running" } else { "Pending" },
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": flag, "lastTransitionTime": ts},
            {"type": "Initialized", "status": "True", "lastTransitionTime": ts},
            {"type": "Ready", "status": flag, "lastTransitionTime": ts},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": ts},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
        ],
        "hostIP": "172.18.0.2",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": pod["status"]["startTime"].as_str().map(str::to_string).unwrap_or(ts),
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    })
}

/// Turns a pending pod Running + Ready (after the ready delay).
pub fn mark_ready(st: &mut State, ns: &str, name: &str, uid: &str) {
    let Some(mut pod) = st.get(&PODS, Some(ns), name).cloned() else {
        return;
    };
    if pod["metadata"]["uid"].as_str() != Some(uid) || is_ready(&pod) {
        return;
    }
    pod["status"] = pod_status(st, &pod, true);
    st.put_internal(&PODS, pod);
}

fn sync_pods(st: &mut State, rs: &Value) {
    let ns = rs["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let rsname = rs["metadata"]["name"].as_str().unwrap_or("").to_string();
    let uid = rs["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let want = usize::try_from(replicas_of(rs).max(0)).unwrap_or(0);
    let mut pods = owned_by(st.list(&PODS, Some(&ns), None, None), &uid);
    if pods.len() < want {
        let delay = st.pod_ready_delay;
        for _ in pods.len()..want {
            let tpl = &rs["spec"]["template"];
            let name = format!("{rsname}-{}", st.suffix());
            let mut pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": tpl["metadata"]["labels"],
                             "ownerReferences": [owner_ref(rs)]},
                "spec": tpl["spec"],
            });
            if let Some(a) = tpl["metadata"]["annotations"].as_object() {
                pod["metadata"]["annotations"] = json!(a);
            }
            if pod["metadata"]["labels"].is_null() {
                pod["metadata"]["labels"] = json!({});
            }
            pod["spec"]["nodeName"] = json!("fake-node");
            let ready = delay.is_zero();
            pod["status"] = pod_status(st, &pod, ready);
            if let Ok(created) = st.create(&PODS, Some(&ns), pod)
                && !ready
            {
                let uid = created["metadata"]["uid"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                st.pending_ready.push((ns.clone(), name, uid));
            }
        }
    } else if pods.len() > want {
        // Not-ready pods go first, then the newest.
        pods.sort_by_key(|p| {
            (
                is_ready(p),
                std::cmp::Reverse(
                    p["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                ),
            )
        });
        for p in pods.iter().take(pods.len() - want) {
            let name = p["metadata"]["name"].as_str().unwrap_or("");
            let _ = st.delete(&PODS, Some(&ns), name);
        }
    }
}

fn rs_status(st: &mut State, rs: &Value) {
    let ns = rs["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let uid = rs["metadata"]["uid"].as_str().unwrap_or("");
    let sel = &rs["spec"]["selector"];
    let pods: Vec<Value> = owned_by(st.list(&PODS, Some(&ns), None, None), uid);
    let total = pods.len();
    let labeled = pods
        .iter()
        .filter(|p| selector_object_matches(sel, &labels_of(p)))
        .count();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let mut status = json!({"replicas": total, "observedGeneration": rs["metadata"]["generation"]});
    put_nonzero(&mut status, "fullyLabeledReplicas", labeled);
    put_nonzero(&mut status, "readyReplicas", ready);
    put_nonzero(&mut status, "availableReplicas", ready);
    if rs["status"] != status {
        let mut rs = rs.clone();
        rs["status"] = status;
        st.put_internal(&REPLICASETS, rs);
    }
}

/// Zero counts are left out of status, as the API server's `omitempty` does.
fn put_nonzero(status: &mut Value, key: &str, n: usize) {
    if n > 0 {
        status[key] = json!(n);
    }
}

fn condition(old: &Value, typ: &str, status: &str, reason: &str, message: &str) -> Value {
    let prev = old["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == typ));
    let ts = now();
    let (transition, update) = match prev {
        Some(p) if p["status"] == status && p["reason"] == reason && p["message"] == message => {
            (p["lastTransitionTime"].clone(), p["lastUpdateTime"].clone())
        }
        Some(p) if p["status"] == status => (p["lastTransitionTime"].clone(), json!(ts)),
        _ => (json!(ts), json!(ts)),
    };
    json!({"type": typ, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition,
           "reason": reason, "message": message})
}

fn deployment_status(st: &mut State, d: &Value) {
    let ns = d["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let uid = d["metadata"]["uid"].as_str().unwrap_or("");
    let want = usize::try_from(replicas_of(d).max(0)).unwrap_or(0);
    let owned = owned_by(st.list(&REPLICASETS, Some(&ns), None, None), uid);
    let rev = revision_of(d);
    let current = owned.iter().find(|rs| revision_of(rs) == rev && rev > 0);
    let count =
        |rs: &Value, k: &str| usize::try_from(rs["status"][k].as_i64().unwrap_or(0)).unwrap_or(0);
    let total: usize = owned.iter().map(|rs| count(rs, "replicas")).sum();
    let ready: usize = owned.iter().map(|rs| count(rs, "readyReplicas")).sum();
    let available: usize = owned.iter().map(|rs| count(rs, "availableReplicas")).sum();
    let updated = current.map(|rs| count(rs, "replicas")).unwrap_or(0);
    let current_name = current
        .and_then(|rs| rs["metadata"]["name"].as_str())
        .unwrap_or("")
        .to_string();
    let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
    let available_cond = if available >= want {
        condition(
            d,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        condition(
            d,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let progressing = if paused {
        condition(
            d,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        )
    } else if updated == want && available == want && total == want {
        condition(
            d,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{current_name}\" has successfully progressed."),
        )
    } else {
        condition(
            d,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{current_name}\" is progressing."),
        )
    };
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"],
        "conditions": [available_cond, progressing],
    });
    put_nonzero(&mut status, "replicas", total);
    put_nonzero(&mut status, "updatedReplicas", updated);
    put_nonzero(&mut status, "readyReplicas", ready);
    put_nonzero(&mut status, "availableReplicas", available);
    put_nonzero(
        &mut status,
        "unavailableReplicas",
        want.saturating_sub(available),
    );
    if d["status"] != status {
        let mut d = d.clone();
        d["status"] = status;
        st.put_internal(&DEPLOYMENTS, d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_kube_template_hash_is_stable_and_safe() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let h = template_hash(&t);
        assert_eq!(h, template_hash(&t.clone()));
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        let mut t2 = t.clone();
        t2["spec"]["containers"][0]["image"] = json!("x:2");
        assert_ne!(h, template_hash(&t2));
    }
}
