//! The control API of the fake (`/__fake/…`, no auth, never logged), for tests in other
//! processes (the desktop e2e drives the `fake-kube` binary with it):
//!
//! | request | body | effect |
//! |---|---|---|
//! | `POST /__fake/apply` | JSON object / array / `List`, or multi-doc YAML | create or replace; answers `{"applied":[ObjectRef],"skipped":[…]}`; 422 with `{"error"}` when refused |
//! | `GET /__fake/objects?apiVersion=apps/v1&kind=Deployment[&namespace=ns]` | | the stored objects |
//! | `POST /__fake/delete` | `{"apiVersion","kind","namespace","name"}` | deletes (and what it owns) |
//! | `PUT /__fake/policy` | a `Policy`: `{"default_allow":true,"rules":[{"verb":"patch","resource":"deployments","allow":false,"reason":"…"}]}` | SSAR answers + 403 |
//! | `POST /__fake/backends` | `{"namespace","selector":{"track":"canary"},"base_url"}` | pod/service proxy target |
//! | `DELETE /__fake/backends` | | no proxy targets |
//! | `POST /__fake/fail-next` | `{"method":"PUT","path_prefix":"/apis/apps/v1/namespaces/p/deployments/web","count":1,"status":409}` | fault injection |
//! | `PUT /__fake/latency` | `{"ms":200}` | delay before every API answer |
//! | `PUT /__fake/pod-ready-delay` | `{"ms":500}` | new pods become Ready after this |
//! | `PUT /__fake/bookmark-interval` | `{"ms":1000}` | watch bookmark period |
//! | `PUT /__fake/rollouts` | `{"enabled":true}` | serve `argoproj.io/v1alpha1` rollouts |
//! | `POST /__fake/compact` | | watches from older resourceVersions get 410 |
//! | `PUT /__fake/watches` | `{"interrupted":true}` | ends every open watch; new ones get 503 until `{"interrupted":false}` |
//! | `GET /__fake/requests` / `DELETE /__fake/requests` | | the API request log / clear it |
//! | `GET /__fake/events?namespace=ns` | | core v1 Events, oldest first |
//! | `GET /__fake/info` | | `{"token","resource_version"}` |

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::policy::Policy;
use super::resources;
use super::state::{Backend, FailRule, Shared, State as Store};
use super::{Applied, FakeKubeError, ObjectRef, api, controller};

pub fn router() -> axum::Router<Arc<Shared>> {
    axum::Router::new()
        .route("/apply", post(apply))
        .route("/objects", get(objects))
        .route("/delete", post(delete))
        .route("/policy", put(policy))
        .route("/backends", post(add_backend).delete(clear_backends))
        .route("/fail-next", post(fail_next))
        .route("/latency", put(latency))
        .route("/pod-ready-delay", put(ready_delay))
        .route("/bookmark-interval", put(bookmark_interval))
        .route("/rollouts", put(rollouts))
        .route("/compact", post(compact))
        .route("/watches", put(watches))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/events", get(events_route))
        .route("/info", get(info))
}

/// Reads JSON (object, array, `List`) or multi-document YAML into objects.
pub fn parse_manifests(text: &str) -> Result<Vec<Value>, FakeKubeError> {
    let trimmed = text.trim_start();
    let docs: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text)
            .map_err(|e| FakeKubeError::Parse(format!("JSON: {e}")))?
        {
            Value::Array(a) => a,
            v => vec![v],
        }
    } else {
        serde_saphyr::from_multiple::<Value>(text)
            .map_err(|e| FakeKubeError::Parse(format!("YAML: {e}")))?
    };
    let mut out = Vec::new();
    for d in docs {
        match d {
            Value::Null => {}
            Value::Object(_)
                if d["kind"].as_str().is_some_and(|k| k.ends_with("List"))
                    && d["items"].is_array() =>
            {
                out.extend(d["items"].as_array().cloned().unwrap_or_default());
            }
            Value::Object(_) => out.push(d),
            other => {
                return Err(FakeKubeError::Parse(format!(
                    "a document is not an object: {other}"
                )));
            }
        }
    }
    Ok(out)
}

fn obj_ref(d: &Value) -> ObjectRef {
    ObjectRef {
        api_version: d["apiVersion"].as_str().unwrap_or("").to_string(),
        kind: d["kind"].as_str().unwrap_or("").to_string(),
        namespace: d["metadata"]["namespace"].as_str().map(str::to_string),
        name: d["metadata"]["name"].as_str().unwrap_or("").to_string(),
    }
}

/// Creates or replaces each object; stops at the first one the API server would refuse.
pub fn apply_docs(st: &mut Store, docs: Vec<Value>) -> Result<Applied, FakeKubeError> {
    let mut out = Applied::default();
    let mut touched = std::collections::BTreeSet::new();
    for d in docs {
        let mut r = obj_ref(&d);
        let Some(ty) = resources::find_kind(&r.api_version, &r.kind) else {
            out.skipped.push(r);
            continue;
        };
        if ty.kind == "SelfSubjectAccessReview" {
            out.skipped.push(r);
            continue;
        }
        let rejected = |e: super::status::ApiError, r: &ObjectRef| FakeKubeError::Rejected {
            object: format!("{} {}", r.kind, r.name),
            code: e.code,
            message: e.message,
        };
        api::validate(ty, &d).map_err(|e| rejected(e, &r))?;
        let ns = if ty.namespaced {
            let ns = r.namespace.clone().unwrap_or_else(|| "default".into());
            st.ensure_namespace(&ns);
            r.namespace = Some(ns.clone());
            Some(ns)
        } else {
            r.namespace = None;
            None
        };
        let mut d = d;
        d["metadata"]["namespace"] = ns.as_deref().map(Value::from).unwrap_or(Value::Null);
        if ns.is_none()
            && let Some(m) = d["metadata"].as_object_mut()
        {
            m.remove("namespace");
        }
        if let Some(m) = d["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        let result = if st.get(ty, ns.as_deref(), &r.name).is_some() {
            st.update(ty, ns.as_deref(), &r.name, d, false)
        } else {
            st.create(ty, ns.as_deref(), d)
        };
        result.map_err(|e| rejected(e, &r))?;
        if let Some(ns) = ns {
            touched.insert(ns);
        }
        out.applied.push(r);
    }
    for ns in touched {
        controller::reconcile(st, &ns);
    }
    Ok(out)
}

pub fn events(st: &Store, namespace: &str) -> Vec<Value> {
    let mut evs = st.list(&resources::EVENTS, Some(namespace), None, None);
    evs.sort_by_key(|e| {
        e["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|r| r.parse::<u64>().ok())
    });
    evs
}

pub fn set_backend(st: &mut Store, b: Backend) {
    st.backends
        .retain(|o| !(o.namespace == b.namespace && o.selector == b.selector));
    st.backends.push(b);
}

fn error(code: StatusCode, message: impl std::fmt::Display) -> Response {
    (code, Json(json!({"error": message.to_string()}))).into_response()
}

async fn apply(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    let docs = match parse_manifests(text) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match shared.write(|st| apply_docs(st, docs)) {
        Ok(a) => Json(a).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectsQuery {
    api_version: String,
    kind: String,
    namespace: Option<String>,
}

async fn objects(State(shared): State<Arc<Shared>>, Query(q): Query<ObjectsQuery>) -> Response {
    match resources::find_kind(&q.api_version, &q.kind) {
        Some(ty) => {
            Json(shared.lock().list(ty, q.namespace.as_deref(), None, None)).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            format!("the fake does not serve {} {}", q.api_version, q.kind),
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteBody {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

async fn delete(State(shared): State<Arc<Shared>>, Json(b): Json<DeleteBody>) -> Response {
    let Some(ty) = resources::find_kind(&b.api_version, &b.kind) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("the fake does not serve {} {}", b.api_version, b.kind),
        );
    };
    let r = shared.write(|st| {
        let r = st.delete(ty, b.namespace.as_deref(), &b.name);
        if let Some(ns) = &b.namespace {
            controller::reconcile(st, ns);
        }
        r
    });
    match r {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e.message),
    }
}

async fn policy(State(shared): State<Arc<Shared>>, Json(p): Json<Policy>) -> StatusCode {
    shared.lock().policy = p;
    StatusCode::NO_CONTENT
}

async fn add_backend(State(shared): State<Arc<Shared>>, Json(b): Json<Backend>) -> Response {
    if reqwest::Url::parse(&b.base_url).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("base_url is not a URL: {:?}", b.base_url),
        );
    }
    set_backend(&mut shared.lock(), b);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_backends(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().backends.clear();
    StatusCode::NO_CONTENT
}

async fn fail_next(State(shared): State<Arc<Shared>>, Json(r): Json<FailRule>) -> Response {
    if !(400..=599).contains(&r.status) {
        return error(
            StatusCode::BAD_REQUEST,
            "status must be an HTTP error code (400-599)",
        );
    }
    shared.lock().fail_rules.push(r);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Millis {
    ms: u64,
}

async fn latency(State(shared): State<Arc<Shared>>, Json(m): Json<Millis>) -> StatusCode {
    shared.lock().latency = Duration::from_millis(m.ms);
    StatusCode::NO_CONTENT
}

async fn ready_delay(State(shared): State<Arc<Shared>>, Json(m): Json<Millis>) -> StatusCode {
    shared.lock().pod_ready_delay = Duration::from_millis(m.ms);
    StatusCode::NO_CONTENT
}

async fn bookmark_interval(State(shared): State<Arc<Shared>>, Json(m): Json<Millis>) -> StatusCode {
    shared.lock().bookmark_interval = Duration::from_millis(m.ms.max(10));
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

async fn rollouts(State(shared): State<Arc<Shared>>, Json(e): Json<Enabled>) -> StatusCode {
    shared.lock().rollouts = e.enabled;
    StatusCode::NO_CONTENT
}

async fn compact(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().compact();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Watches {
    interrupted: bool,
}

async fn watches(State(shared): State<Arc<Shared>>, Json(w): Json<Watches>) -> StatusCode {
    if w.interrupted {
        shared.interrupt_watches();
    } else {
        shared.resume_watches();
    }
    StatusCode::NO_CONTENT
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.lock().log.clone()).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().log.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct NsQuery {
    namespace: String,
}

async fn events_route(State(shared): State<Arc<Shared>>, Query(q): Query<NsQuery>) -> Response {
    Json(events(&shared.lock(), &q.namespace)).into_response()
}

async fn info(State(shared): State<Arc<Shared>>) -> Response {
    let st = shared.lock();
    Json(json!({"token": st.token, "resource_version": st.rv})).into_response()
}
