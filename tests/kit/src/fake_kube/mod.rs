//! A wire-faithful fake Kubernetes API server for tests: real Kubernetes JSON (objects are
//! checked against the k8s-openapi types), resourceVersions and 409 conflicts, list and
//! watch, merge / strategic-merge / JSON patch, the scale subresource, a small deployment
//! controller (ReplicaSet revisions, pods, status), the pod and service proxy to real
//! processes, Events, SelfSubjectAccessReviews answered by a configurable policy that also
//! makes real requests 403, and `Status` error bodies.
//!
//! Start it in-process with [`FakeKube::start`] and point a `kube::Client` at it through
//! [`FakeKube::write_kubeconfig`], or run the `fake-kube` binary and drive it over HTTP
//! (`/__fake/…`, see [`control`]). It speaks plain `http://` and wants the bearer token of
//! [`FakeKube::token`] on every API request (401 otherwise).
//!
//! # Served
//!
//! | group/version | resources |
//! |---|---|
//! | `v1` | `namespaces`, `pods` (+ `status`, `proxy`), `services` (+ `proxy`), `events` |
//! | `apps/v1` | `deployments`, `replicasets` (+ `status`, `scale` as `autoscaling/v1` Scale) |
//! | `events.k8s.io/v1` | `events`: a converted view of the core Events (one storage, as in a cluster) |
//! | `authorization.k8s.io/v1` | `selfsubjectaccessreviews` (create) |
//! | `argoproj.io/v1alpha1` | `rollouts`, only after [`FakeKube::enable_rollouts`] (stored, no controller) |
//!
//! plus discovery (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`).
//!
//! Verbs: get; list with `labelSelector` (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`)
//! and `fieldSelector` (`metadata.name`, `metadata.namespace`); watch (`watch=true`,
//! `resourceVersion`, `allowWatchBookmarks`, `timeoutSeconds`, `sendInitialEvents`; a
//! compacted resourceVersion gets a 410 `ERROR` event); create; update (409 on a stale
//! resourceVersion); patch (`application/merge-patch+json`,
//! `application/strategic-merge-patch+json`, `application/json-patch+json`; server-side
//! apply gets 415); delete (owned objects go too, as with the garbage collector).
//! `dryRun` is refused with 400 rather than ignored.
//!
//! Deliberate simplifications: a rollout is immediate (no surge steps); `limit`/`continue`
//! are ignored (one page).

mod api;
pub mod control;
mod controller;
mod events;
mod kubeconfig;
mod patch;
mod policy;
mod proxy;
mod resources;
mod selectors;
mod state;
mod status;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use api::FAKE_KUBE_VERSION;
pub use controller::{HASH_LABEL, REVISION};
pub use kubeconfig::KubeconfigOpts;
pub use policy::{Decision, Policy, PolicyRule};
pub use state::{Backend, FailRule, RequestRecord};

use state::Shared;

use crate::serve::Server;

/// Which object an `apply` touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// What [`FakeKube::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Created or replaced, in document order.
    pub applied: Vec<ObjectRef>,
    /// Kinds the fake does not serve (ServiceAccount, HPA, …), left out.
    pub skipped: Vec<ObjectRef>,
}

/// Why an `apply` failed; nothing after the failing document was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeKubeError {
    /// Not JSON or YAML, or a document that is not an object.
    Parse(String),
    /// The API server would have refused this object (the `Status` code and message).
    Rejected {
        object: String,
        code: u16,
        message: String,
    },
}

impl std::fmt::Display for FakeKubeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Parse(m) => write!(f, "cannot read the manifests: {m}"),
            Self::Rejected {
                object,
                code,
                message,
            } => {
                write!(f, "{object} rejected ({code}): {message}")
            }
        }
    }
}

impl std::error::Error for FakeKubeError {}

/// A running fake Kubernetes API server. Dropping the handle stops it.
pub struct FakeKube {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeKube {
    /// Starts on `127.0.0.1` on a free port with a random bearer token. Panics if no port
    /// can be bound: in a test there is nothing better to do.
    pub async fn start() -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr).await {
            Ok(fake) => fake,
            Err(e) => panic!("fake Kubernetes API could not bind {addr}: {e}"),
        }
    }

    /// Starts on `addr` (port 0 picks a free port) with a random bearer token.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let token = format!("fake-kube-{}", uuid::Uuid::new_v4().simple());
        Self::bind_with_token(addr, Some(token)).await
    }

    /// Starts on `addr` with this bearer token (`None`: no authentication).
    pub async fn bind_with_token(addr: SocketAddr, token: Option<String>) -> std::io::Result<Self> {
        let shared = Shared::new(token);
        let server =
            Server::start(addr, router(shared.clone()), shared.subscribe_shutdown()).await?;
        tracing::debug!(addr = %server.addr, "fake Kubernetes API listening");
        Ok(Self { server, shared })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The bearer token every API request needs (`""` when authentication is off).
    pub fn token(&self) -> String {
        self.shared.lock().token.clone().unwrap_or_default()
    }

    /// Writes a kubeconfig for this server (see [`KubeconfigOpts`]).
    pub fn write_kubeconfig(&self, path: &Path, opts: &KubeconfigOpts) -> std::io::Result<()> {
        kubeconfig::write(path, &self.url(), &self.token(), opts)
    }

    /// Creates or replaces objects: one JSON object, a JSON array, a `v1` `List`, or
    /// (multi-document) YAML such as `kubectl kustomize` prints. Namespaces the objects
    /// name are created when missing; a replace ignores resourceVersions.
    pub fn apply(&self, manifests: &str) -> Result<Applied, FakeKubeError> {
        let docs = control::parse_manifests(manifests)?;
        self.shared.write(|st| control::apply_docs(st, docs))
    }

    /// [`FakeKube::apply`] for one object.
    pub fn apply_value(&self, obj: Value) -> Result<Applied, FakeKubeError> {
        self.shared.write(|st| control::apply_docs(st, vec![obj]))
    }

    /// One object as stored (with kind and apiVersion).
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let ty = resources::find_kind(api_version, kind)?;
        self.shared.lock().get(ty, namespace, name).cloned()
    }

    /// The objects of a kind (in `namespace`, or all), ordered by namespace and name.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        match resources::find_kind(api_version, kind) {
            Some(ty) => self.shared.lock().list(ty, namespace, None, None),
            None => Vec::new(),
        }
    }

    /// A Deployment (shorthand for `get("apps/v1", "Deployment", …)`).
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Value> {
        self.get("apps/v1", "Deployment", Some(namespace), name)
    }

    /// The pods in `namespace` whose labels include all of `labels`.
    pub fn pods(&self, namespace: &str, labels: &[(&str, &str)]) -> Vec<Value> {
        self.list("v1", "Pod", Some(namespace))
            .into_iter()
            .filter(|p| {
                labels
                    .iter()
                    .all(|(k, v)| p["metadata"]["labels"][*k].as_str() == Some(*v))
            })
            .collect()
    }

    /// Deletes an object (and what it owns). False when there was none.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let Some(ty) = resources::find_kind(api_version, kind) else {
            return false;
        };
        self.shared.write(|st| {
            let ok = st.delete(ty, namespace, name).is_ok();
            if let Some(ns) = namespace {
                controller::reconcile(st, ns);
            }
            ok
        })
    }

    /// The core v1 Events in `namespace`, oldest first.
    pub fn events(&self, namespace: &str) -> Vec<Value> {
        control::events(&self.shared.lock(), namespace)
    }

    /// Every API request answered so far (not `/__fake`), oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    pub fn clear_request_log(&self) {
        self.shared.lock().log.clear();
    }

    /// The policy SelfSubjectAccessReviews answer by and real requests are checked against.
    pub fn set_policy(&self, policy: Policy) {
        self.shared.lock().policy = policy;
    }

    /// The user name 403 messages name (default `fake-user`).
    pub fn set_user(&self, user: &str) {
        self.shared.lock().user = user.to_string();
    }

    /// Pods in `namespace` whose labels include `selector` are proxied to `base_url`
    /// (a later call for the same namespace and selector replaces the earlier one).
    pub fn set_backend(&self, namespace: &str, selector: BTreeMap<String, String>, base_url: &str) {
        control::set_backend(
            &mut self.shared.lock(),
            Backend {
                namespace: namespace.to_string(),
                selector,
                base_url: base_url.to_string(),
            },
        );
    }

    /// The next `count` requests of `method` (`"*"`: any) whose path starts with
    /// `path_prefix` get `status` with a Status body (real-looking for 404 and 409).
    pub fn fail_next(&self, method: &str, path_prefix: &str, count: u32, status: u16) {
        self.shared.lock().fail_rules.push(FailRule {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            count,
            status,
        });
    }

    /// A delay before every API answer.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// New pods stay Pending and not Ready this long (default 0: ready at once).
    pub fn set_pod_ready_delay(&self, delay: Duration) {
        self.shared.lock().pod_ready_delay = delay;
    }

    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK (default 1 s).
    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.shared.lock().bookmark_interval = interval;
    }

    /// Serves `argoproj.io/v1alpha1` `rollouts`, as if the CRD were installed.
    pub fn enable_rollouts(&self, enabled: bool) {
        self.shared.lock().rollouts = enabled;
    }

    /// Forgets the watch history: a watch from any earlier resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        self.shared.lock().compact();
    }

    /// Ends every open watch and answers new watch requests with 503 until
    /// [`FakeKube::resume_watches`]: what changes meanwhile reaches a client only through
    /// its next list, or a watch from its last resourceVersion (410 Gone after
    /// [`FakeKube::compact`], which makes it re-list).
    pub fn interrupt_watches(&self) {
        self.shared.interrupt_watches();
    }

    /// Serves watch requests again after [`FakeKube::interrupt_watches`].
    pub fn resume_watches(&self) {
        self.shared.resume_watches();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Stops serving and waits until the port is closed (the cluster becomes unreachable).
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.shared.shutdown();
        self.server.join().await
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .fallback(api::api)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            api::gate,
        ))
        .nest("/__fake", control::router())
        .with_state(shared)
}
