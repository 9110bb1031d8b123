//! The object store: every object as JSON, one global resourceVersion counter, the watch
//! history, and the knobs (policy, backends, faults) the handle sets.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use super::controller;
use super::policy::Policy;
use super::resources::{self, ResType};
use super::selectors::{FieldSelector, LabelSelector, labels_of};
use super::status::ApiError;

/// How many watch events are kept for watches that start from an older resourceVersion.
const HISTORY: usize = 10_000;

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct WatchRecord {
    pub rv: u64,
    pub ty: &'static str,
    pub ns: String,
    pub kind: &'static str,
    pub object: Value,
    /// The object before a MODIFIED change (a selector watch turns changes into ADDED or
    /// DELETED when the object starts or stops matching, as the API server's cache does).
    pub previous: Option<Value>,
}

/// One API request the fake answered (the `/__fake` control API excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string, `""` when none.
    pub query: String,
    pub content_type: Option<String>,
    pub status: u16,
}

/// Where the pod and service proxy sends requests for pods with these labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    pub base_url: String,
}

/// The next `count` requests of `method` (`*`: any) whose path starts with `path_prefix`
/// get `status` with a Status body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailRule {
    pub method: String,
    pub path_prefix: String,
    pub count: u32,
    pub status: u16,
}

type Key = (&'static str, String, String);

pub struct State {
    pub objects: BTreeMap<Key, Value>,
    pub rv: u64,
    history: VecDeque<Arc<WatchRecord>>,
    /// Watches from a resourceVersion below this get 410 Gone.
    pub compacted: u64,
    pub policy: Policy,
    pub backends: Vec<Backend>,
    pub fail_rules: Vec<FailRule>,
    pub latency: Duration,
    pub pod_ready_delay: Duration,
    pub bookmark_interval: Duration,
    pub log: Vec<RequestRecord>,
    pub token: Option<String>,
    pub user: String,
    pub rollouts: bool,
    /// Watch requests get 503 (set by [`Shared::interrupt_watches`]).
    pub watches_down: bool,
    /// Pods to turn Running + Ready once the ready delay has passed: (namespace, name, uid).
    pub pending_ready: Vec<(String, String, String)>,
    tx: broadcast::Sender<Arc<WatchRecord>>,
    seq: u64,
}

pub struct Shared {
    state: Mutex<State>,
    shutdown: watch::Sender<bool>,
    /// Bumped by [`Shared::interrupt_watches`]: every open watch ends.
    watch_epoch: watch::Sender<u64>,
}

impl Shared {
    pub fn new(token: Option<String>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(4096);
        let mut st = State {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted: 0,
            policy: Policy::allow_all(),
            backends: Vec::new(),
            fail_rules: Vec::new(),
            latency: Duration::ZERO,
            pod_ready_delay: Duration::ZERO,
            bookmark_interval: Duration::from_secs(1),
            log: Vec::new(),
            token,
            user: "fake-user".into(),
            rollouts: false,
            watches_down: false,
            pending_ready: Vec::new(),
            tx,
            seq: 0,
        };
        for ns in ["default", "kube-system"] {
            st.ensure_namespace(ns);
        }
        let (shutdown, _) = watch::channel(false);
        let (watch_epoch, _) = watch::channel(0);
        Arc::new(Self {
            state: Mutex::new(st),
            shutdown,
            watch_epoch,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent JSON behind: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state, then starts the timers it asked for (pod readiness).
    pub fn write<R>(self: &Arc<Self>, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, pending, delay) = {
            let mut st = self.lock();
            let out = f(&mut st);
            (
                out,
                std::mem::take(&mut st.pending_ready),
                st.pod_ready_delay,
            )
        };
        self.ready_later(pending, delay);
        out
    }

    fn ready_later(self: &Arc<Self>, pending: Vec<(String, String, String)>, delay: Duration) {
        if pending.is_empty() {
            return;
        }
        let me = Arc::downgrade(self);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(me) = me.upgrade() {
                    me.make_ready(&pending);
                }
            });
        }
    }

    fn make_ready(self: &Arc<Self>, pods: &[(String, String, String)]) {
        let (pending, delay) = {
            let mut st = self.lock();
            for (ns, name, uid) in pods {
                controller::mark_ready(&mut st, ns, name, uid);
            }
            let namespaces: std::collections::BTreeSet<&String> =
                pods.iter().map(|(ns, _, _)| ns).collect();
            for ns in namespaces {
                controller::reconcile(&mut st, ns);
            }
            (std::mem::take(&mut st.pending_ready), st.pod_ready_delay)
        };
        self.ready_later(pending, delay);
    }

    pub fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Taken by a watch under the state lock: it ends when the epoch moves.
    pub fn subscribe_watch_epoch(&self) -> watch::Receiver<u64> {
        self.watch_epoch.subscribe()
    }

    /// Ends every open watch, and answers new watch requests with 503 until
    /// [`Shared::resume_watches`], as an API server whose watch cache is re-initialising
    /// does. Changes made meanwhile reach the clients only by their next list (or by a
    /// watch from their last resourceVersion, unless the history was compacted).
    pub fn interrupt_watches(&self) {
        let mut st = self.lock();
        st.watches_down = true;
        // Under the lock: no change can be recorded between the flag and the epoch.
        self.watch_epoch.send_modify(|e| *e += 1);
    }

    pub fn resume_watches(&self) {
        self.lock().watches_down = false;
    }
}

/// Who owns an object: `(kind, name, uid)` of its controller owner reference.
pub fn controller_of(obj: &Value) -> Option<(String, String, String)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"].as_bool() == Some(true))
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or("").to_string(),
                o["name"].as_str().unwrap_or("").to_string(),
                o["uid"].as_str().unwrap_or("").to_string(),
            )
        })
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ns_key(ty: &ResType, ns: Option<&str>) -> String {
    if ty.namespaced {
        ns.unwrap_or("").to_string()
    } else {
        String::new()
    }
}

impl State {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchRecord>> {
        self.tx.subscribe()
    }

    /// A fresh uid (UUID v4).
    pub fn uid(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// Five characters as in generated names (`web-7d9c5b8f6c-x2kqp`).
    pub fn suffix(&mut self) -> String {
        self.seq += 1;
        let bytes = *uuid::Uuid::new_v4().as_bytes();
        let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
        bytes[..5]
            .iter()
            .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
            .collect()
    }

    pub fn get(&self, ty: &ResType, ns: Option<&str>, name: &str) -> Option<&Value> {
        self.objects
            .get(&(ty.id(), ns_key(ty, ns), name.to_string()))
    }

    /// Objects of a type (in `ns`, or everywhere), filtered by the selectors.
    pub fn list(
        &self,
        ty: &ResType,
        ns: Option<&str>,
        labels: Option<&LabelSelector>,
        fields: Option<&FieldSelector>,
    ) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((t, n, _), _)| *t == ty.id() && ns.is_none_or(|ns| !ty.namespaced || n == ns))
            .filter(|(_, o)| labels.is_none_or(|l| l.matches(&labels_of(o))))
            .filter(|(_, o)| fields.is_none_or(|f| f.matches(o)))
            .map(|(_, o)| o.clone())
            .collect()
    }

    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .contains_key(&(resources::NAMESPACES.id(), String::new(), ns.to_string()))
    }

    pub fn ensure_namespace(&mut self, ns: &str) {
        if self.namespace_exists(ns) {
            return;
        }
        let obj = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}});
        let _ = self.create(&resources::NAMESPACES, None, obj);
    }

    /// Stores the object under a new resourceVersion and tells the watches.
    fn commit(
        &mut self,
        ty: &'static ResType,
        ns: &str,
        mut obj: Value,
        kind: &'static str,
    ) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let key = (ty.id(), ns.to_string(), name);
        let previous = if kind == "DELETED" {
            self.objects.remove(&key)
        } else {
            self.objects.insert(key, obj.clone())
        };
        let rec = Arc::new(WatchRecord {
            rv: self.rv,
            ty: ty.id(),
            ns: ns.to_string(),
            kind,
            object: obj.clone(),
            previous: previous.filter(|_| kind == "MODIFIED"),
        });
        self.history.push_back(rec.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.compacted = self.compacted.max(old.rv + 1);
            }
        }
        let _ = self.tx.send(rec);
        obj
    }

    /// Watch events after `rv` for a type (in `ns`), or `Err(floor)` when `rv` is compacted.
    pub fn history_since(
        &self,
        ty: &ResType,
        ns: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Arc<WatchRecord>>, u64> {
        if rv + 1 < self.compacted {
            return Err(self.compacted);
        }
        Ok(self
            .history
            .iter()
            .filter(|r| r.rv > rv && r.ty == ty.id() && ns.is_none_or(|n| r.ns == n))
            .cloned()
            .collect())
    }

    /// Forgets the history: watches from any earlier resourceVersion get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv + 1;
    }

    /// Creates an object (metadata filled in as the API server does).
    pub fn create(
        &mut self,
        ty: &'static ResType,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let ns = ns_key(ty, ns);
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let name = match obj["metadata"]["name"].as_str() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match obj["metadata"]["generateName"].as_str() {
                Some(g) if !g.is_empty() => {
                    let n = format!("{g}{}", self.suffix());
                    obj["metadata"]["name"] = json!(n);
                    n
                }
                _ => {
                    return Err(ApiError::invalid(
                        ty,
                        "",
                        &[(
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                        )],
                    ));
                }
            },
        };
        if ty.namespaced {
            if let Some(body_ns) = obj["metadata"]["namespace"].as_str()
                && !body_ns.is_empty()
                && body_ns != ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            if !self.namespace_exists(&ns) {
                return Err(ApiError::namespace_not_found(&ns));
            }
            obj["metadata"]["namespace"] = json!(ns);
        }
        if self.get(ty, Some(&ns), &name).is_some() {
            return Err(ApiError::already_exists(ty, &name));
        }
        obj["apiVersion"] = json!(ty.api_version());
        obj["kind"] = json!(ty.kind);
        let uid = self.uid();
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(now());
        if let Some(m) = meta.as_object_mut() {
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
        }
        if obj.get("spec").is_some() {
            obj["metadata"]["generation"] = json!(1);
        }
        if ty.kind == "Namespace" {
            obj["status"] = json!({"phase": "Active"});
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        if ty.has_status() && ty.kind != "Pod" && ty.kind != "Service" {
            // Status is written by the controllers only.
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        Ok(self.commit(ty, &ns, obj, "ADDED"))
    }

    /// Replaces an object. `expect_rv` from the body: a stale one is a 409 Conflict.
    /// `status_only`: the status subresource (only `status` changes); otherwise `status`
    /// of types with a status subresource is kept.
    pub fn update(
        &mut self,
        ty: &'static ResType,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let ns = ns_key(ty, ns);
        let Some(old) = self.get(ty, Some(&ns), name).cloned() else {
            return Err(ApiError::not_found(ty, name));
        };
        match obj["metadata"]["name"].as_str() {
            Some(n) if n == name => {}
            Some("") | None => obj["metadata"]["name"] = json!(name),
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        if ty.namespaced
            && let Some(body_ns) = obj["metadata"]["namespace"].as_str()
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if let Some(rv) = obj["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(ty, name));
        }
        let mut new = if status_only {
            let mut n = old.clone();
            n["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
            n
        } else {
            if ty.has_status() && ty.kind != "Pod" && ty.kind != "Service" {
                match old.get("status") {
                    Some(s) => obj["status"] = s.clone(),
                    None => {
                        if let Some(m) = obj.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            obj
        };
        new["apiVersion"] = json!(ty.api_version());
        new["kind"] = json!(ty.kind);
        for f in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ] {
            match old["metadata"].get(f) {
                Some(v) => new["metadata"][f] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(f);
                    }
                }
            }
        }
        if ty.namespaced {
            new["metadata"]["namespace"] = json!(ns);
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == old {
            // A no-op update keeps the resourceVersion, as the API server does.
            return Ok(old);
        }
        if old.get("spec") != new.get("spec") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(g);
        }
        Ok(self.commit(ty, &ns, new, "MODIFIED"))
    }

    /// Writes an object as the controllers do: no checks, no generation bump; a no-op
    /// write is skipped.
    pub fn put_internal(&mut self, ty: &'static ResType, obj: Value) -> Value {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        match self.get(ty, Some(&ns), &name) {
            Some(old) => {
                let mut cmp = obj.clone();
                cmp["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
                if &cmp == old {
                    return old.clone();
                }
                let mut obj = obj;
                if old.get("spec") != obj.get("spec") {
                    let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                    obj["metadata"]["generation"] = json!(g);
                }
                self.commit(ty, &ns, obj, "MODIFIED")
            }
            None => self.commit(ty, &ns, obj, "ADDED"),
        }
    }

    /// Deletes an object and, as the garbage collector does, what it owns.
    pub fn delete(
        &mut self,
        ty: &'static ResType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let ns = ns_key(ty, ns);
        let Some(old) = self.get(ty, Some(&ns), name).cloned() else {
            return Err(ApiError::not_found(ty, name));
        };
        let uid = old["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let gone = self.commit(ty, &ns, old, "DELETED");
        if ty.kind == "Namespace" {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|(_, n, _)| n == name)
                .cloned()
                .collect();
            for (t, n, name) in inside {
                if let Some(rt) = resources::ALL.iter().find(|r| r.id() == t) {
                    let _ = self.delete(rt, Some(&n), &name);
                }
            }
        }
        let owned: Vec<(Key, &'static ResType)> = self
            .objects
            .iter()
            .filter(|((_, n, _), o)| {
                *n == ns
                    && o["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|r| r["uid"].as_str() == Some(uid.as_str())))
            })
            .filter_map(|(k, _)| {
                resources::ALL
                    .iter()
                    .find(|r| r.id() == k.0)
                    .map(|r| (k.clone(), r))
            })
            .collect();
        for ((_, n, name), rt) in owned {
            let _ = self.delete(rt, Some(&n), &name);
        }
        Ok(gone)
    }

    /// Records a core v1 Event about `obj` (as a controller or the console would).
    pub fn record_event(
        &mut self,
        obj: &Value,
        typ: &str,
        reason: &str,
        message: &str,
        component: &str,
    ) {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.seq += 1;
        let ts = now();
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{name}.{:016x}", self.seq ^ 0x17a3_0000_0000_0000), "namespace": ns},
            "involvedObject": {
                "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": name, "namespace": ns,
                "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "type": typ,
            "source": {"component": component},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": "",
        });
        let _ = self.create(&resources::EVENTS, Some(&ns), ev);
    }
}
