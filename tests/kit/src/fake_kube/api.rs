//! The Kubernetes API: discovery, the resource verbs, the scale and status subresources,
//! SelfSubjectAccessReviews; plus the gate every API request passes (auth, faults, latency,
//! request log).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::controller;
use super::patch;
use super::policy::Attributes;
use super::resources::{self, ResPath, ResType, Target};
use super::selectors::{FieldSelector, LabelSelector};
use super::state::{RequestRecord, Shared, State as Store};
use super::status::{ApiError, json_response};
use super::{events, proxy, watch};

/// The Kubernetes version the fake claims to be.
pub const FAKE_KUBE_VERSION: (&str, &str) = ("1", "32");

pub type Query = BTreeMap<String, String>;

pub fn parse_query(q: Option<&str>) -> Query {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Every API request: latency, injected failures, bearer-token auth, request log.
pub async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (latency, fail, authorized, rollouts) = {
        let mut st = shared.lock();
        let fail = st
            .fail_rules
            .iter_mut()
            .find(|r| {
                r.count > 0
                    && (r.method == "*" || r.method.eq_ignore_ascii_case(&method))
                    && path.starts_with(&r.path_prefix)
            })
            .map(|r| {
                r.count -= 1;
                r.status
            });
        st.fail_rules.retain(|r| r.count > 0);
        let open = matches!(
            path.as_str(),
            "/version" | "/healthz" | "/livez" | "/readyz"
        );
        let authorized = open
            || st
                .token
                .as_deref()
                .is_none_or(|t| auth.as_deref() == Some(format!("Bearer {t}").as_str()));
        (st.latency, fail, authorized, st.rollouts)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resp = if let Some(code) = fail {
        injected(code, &method, &path, rollouts).into_response()
    } else if !authorized {
        ApiError::new(401, "Unauthorized").into_response()
    } else {
        next.run(req).await
    };
    shared.lock().log.push(RequestRecord {
        method,
        path,
        query,
        content_type,
        status: resp.status().as_u16(),
    });
    resp
}

/// The Status an injected failure answers with (a real-looking one for 404 and 409).
fn injected(code: u16, method: &str, path: &str, rollouts: bool) -> ApiError {
    if let Target::Resource(p) = resources::parse(path, rollouts)
        && let Some(name) = p.name.as_deref()
    {
        match code {
            409 if method == "POST" => return ApiError::already_exists(p.ty, name),
            409 => return ApiError::conflict(p.ty, name),
            404 => return ApiError::not_found(p.ty, name),
            _ => {}
        }
    }
    let message = match code {
        429 => "Too many requests, please try again later.".to_string(),
        500 => "Internal error occurred: injected by the fake API server".to_string(),
        503 => "the server is currently unable to handle the request".to_string(),
        504 => "Timeout: request did not complete within the allowed duration".to_string(),
        c => format!("injected failure {c}"),
    };
    ApiError::new(code, message)
}

/// The API router's one handler.
pub async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rollouts = shared.lock().rollouts;
    let target = resources::parse(uri.path(), rollouts);
    if !matches!(target, Target::Resource(_)) && method != Method::GET {
        return ApiError::new(
            405,
            "the server does not allow this method on the requested resource",
        )
        .into_response();
    }
    match target {
        Target::Version => ok(&json!({
            "major": FAKE_KUBE_VERSION.0, "minor": FAKE_KUBE_VERSION.1,
            "gitVersion": format!("v{}.{}.0-fake", FAKE_KUBE_VERSION.0, FAKE_KUBE_VERSION.1),
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc",
            "platform": "linux/amd64",
        })),
        Target::Health => (StatusCode::OK, "ok").into_response(),
        Target::CoreVersions => ok(&json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
        })),
        Target::Groups => ok(&json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": groups(rollouts).into_iter().map(|(g, v)| group_json(g, v)).collect::<Vec<_>>(),
        })),
        Target::Group { group } => match groups(rollouts).into_iter().find(|(g, _)| *g == group) {
            Some((g, v)) => {
                let mut j = group_json(g, v);
                j["kind"] = json!("APIGroup");
                j["apiVersion"] = json!("v1");
                ok(&j)
            }
            None => not_found_path(),
        },
        Target::GroupVersion { group, version } => {
            let types: Vec<&ResType> = resources::ALL
                .iter()
                .filter(|t| t.group == group && t.version == version && (!t.optional || rollouts))
                .collect();
            if types.is_empty() {
                return not_found_path();
            }
            let gv = if group.is_empty() {
                version
            } else {
                format!("{group}/{version}")
            };
            ok(&json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": types.iter().flat_map(|t| t.api_resource()).collect::<Vec<_>>(),
            }))
        }
        Target::Resource(p) => resource(&shared, method, uri.query(), &headers, body, p)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Target::Unknown => not_found_path(),
    }
}

fn groups(rollouts: bool) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for t in resources::ALL {
        if !t.group.is_empty()
            && (!t.optional || rollouts)
            && !out.iter().any(|(g, _)| *g == t.group)
        {
            out.push((t.group, t.version));
        }
    }
    out
}

fn group_json(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

fn not_found_path() -> Response {
    ApiError::new(404, "the server could not find the requested resource")
        .with_details(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))
        .into_response()
}

fn verb_of(method: &Method, p: &ResPath, query: &Query) -> &'static str {
    let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    match *method {
        Method::GET if p.sub.as_deref() == Some("proxy") => "get",
        Method::GET if p.name.is_none() && watch => "watch",
        Method::GET if p.name.is_none() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if p.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

async fn resource(
    shared: &Arc<Shared>,
    method: Method,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    p: ResPath,
) -> Result<Response, ApiError> {
    let query = parse_query(raw_query);
    let verb = verb_of(&method, &p, &query);
    if p.ty.kind == "SelfSubjectAccessReview" {
        if method != Method::POST || p.name.is_some() {
            return Err(ApiError::new(
                405,
                "the server does not allow this method on the requested resource",
            ));
        }
        return ssar(shared, &body);
    }
    if query.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::bad_request(
            "dryRun is not supported by the fake API server",
        ));
    }
    // The policy applies to real requests too.
    {
        let st = shared.lock();
        let d = st.policy.decide(&Attributes {
            namespace: p.namespace.as_deref(),
            verb,
            group: p.ty.group,
            resource: p.ty.plural,
            subresource: p.sub.as_deref(),
        });
        if !d.allowed {
            return Err(ApiError::forbidden(&p, verb, &st.user, &d.reason));
        }
    }
    if p.sub.as_deref() == Some("proxy") {
        return proxy::forward(shared, &p, method, raw_query, headers, body).await;
    }
    if p.ty.id() == resources::EVENTS_V1.id() && verb != "watch" {
        return events::handle(
            shared,
            verb,
            p.namespace.as_deref(),
            p.name.as_deref(),
            &query,
            headers,
            &body,
        );
    }
    let ns = p.namespace.clone();
    let ty = p.ty;
    match (verb, p.name.clone(), p.sub.as_deref()) {
        ("watch", None, None) => watch::watch(shared, &p, &query).await,
        ("list", None, None) => list(shared, &p, &query),
        ("get", Some(name), None | Some("status")) => {
            let st = shared.lock();
            st.get(ty, ns.as_deref(), &name)
                .map(ok)
                .ok_or_else(|| ApiError::not_found(ty, &name))
        }
        ("get", Some(name), Some("scale")) => {
            let st = shared.lock();
            let obj = st
                .get(ty, ns.as_deref(), &name)
                .ok_or_else(|| ApiError::not_found(ty, &name))?;
            Ok(ok(&scale_of(obj)))
        }
        ("create", None, None) => {
            let obj = decode_body(ty, headers, &body)?;
            validate(ty, &obj)?;
            let created = shared.write(|st| {
                let created = st.create(ty, ns.as_deref(), obj)?;
                settle(st, ty, ns.as_deref());
                Ok::<_, ApiError>(created)
            })?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        ("update", Some(name), None | Some("status")) => {
            let obj = decode_body(ty, headers, &body)?;
            let status_only = p.sub.is_some();
            if !status_only {
                validate(ty, &obj)?;
            }
            let updated = shared.write(|st| {
                let u = st.update(ty, ns.as_deref(), &name, obj, status_only)?;
                settle(st, ty, ns.as_deref());
                Ok::<_, ApiError>(u)
            })?;
            Ok(ok(&updated))
        }
        ("patch", Some(name), None | Some("status")) => {
            let ct = content_type(headers);
            let status_only = p.sub.is_some();
            let updated = shared.write(|st| {
                let mut obj = st
                    .get(ty, ns.as_deref(), &name)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(ty, &name))?;
                let before_rv = obj["metadata"]["resourceVersion"].clone();
                patch::apply(&mut obj, &ct, &body)?;
                if obj["metadata"]["resourceVersion"] == before_rv {
                    // The patch did not ask for a precondition.
                    obj["metadata"]["resourceVersion"] = json!("");
                }
                validate(ty, &obj)?;
                let u = st.update(ty, ns.as_deref(), &name, obj, status_only)?;
                settle(st, ty, ns.as_deref());
                Ok::<_, ApiError>(u)
            })?;
            Ok(ok(&updated))
        }
        ("update" | "patch", Some(name), Some("scale")) => {
            let is_patch = verb == "patch";
            let ct = content_type(headers);
            let scale = if is_patch {
                None
            } else {
                Some(decode_scale(&body)?)
            };
            let result = shared.write(|st| {
                let obj = st
                    .get(ty, ns.as_deref(), &name)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(ty, &name))?;
                let current = scale_of(&obj);
                let scale = match scale {
                    Some(s) => s,
                    None => {
                        let mut s = current.clone();
                        patch::apply(&mut s, &ct, &body)?;
                        decode_scale(s.to_string().as_bytes())?
                    }
                };
                let want_rv = scale["metadata"]["resourceVersion"].as_str().unwrap_or("");
                if !want_rv.is_empty()
                    && want_rv
                        != current["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or("")
                {
                    return Err(ApiError::conflict(ty, &name));
                }
                let Some(replicas) = scale["spec"]["replicas"].as_i64() else {
                    return Err(ApiError::invalid(
                        ty,
                        &name,
                        &[("spec.replicas".into(), "Required value".into())],
                    ));
                };
                if replicas < 0 {
                    return Err(ApiError::invalid(
                        ty,
                        &name,
                        &[(
                            "spec.replicas".into(),
                            format!(
                                "Invalid value: {replicas}: must be greater than or equal to 0"
                            ),
                        )],
                    ));
                }
                let mut obj = obj;
                obj["spec"]["replicas"] = json!(replicas);
                obj["metadata"]["resourceVersion"] = json!("");
                let u = st.update(ty, ns.as_deref(), &name, obj, false)?;
                settle(st, ty, ns.as_deref());
                Ok::<_, ApiError>(scale_of(&u))
            })?;
            Ok(ok(&result))
        }
        ("delete", Some(name), None) => {
            let gone = shared.write(|st| {
                let gone = st.delete(ty, ns.as_deref(), &name)?;
                settle(st, ty, ns.as_deref());
                Ok::<_, ApiError>(gone)
            })?;
            Ok(ok(&json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": ty.group, "kind": ty.plural, "uid": gone["metadata"]["uid"]},
            })))
        }
        _ => Err(ApiError::new(
            405,
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// Runs the controllers after a write to something they watch.
fn settle(st: &mut Store, ty: &ResType, ns: Option<&str>) {
    if matches!(ty.kind, "Deployment" | "ReplicaSet" | "Pod")
        && let Some(ns) = ns
    {
        controller::reconcile(st, ns);
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The request body as a JSON object (JSON, or YAML when the content type says so).
pub fn decode_body_as(ty: &ResType, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    decode_body(ty, headers, body)
}

fn decode_body(ty: &ResType, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = content_type(headers);
    let obj: Value = if ct.contains("yaml") {
        let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
                kind = ty.kind,
                v = ty.version
            ))
        })?
    };
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: not an object",
            kind = ty.kind,
            v = ty.version
        )));
    }
    Ok(obj)
}

fn decode_scale(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "Scale in version \"v1\" cannot be handled as a Scale: {e}"
        ))
    })?;
    serde_json::from_value::<k8s_openapi::api::autoscaling::v1::Scale>(v.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "Scale in version \"v1\" cannot be handled as a Scale: {e}"
        ))
    })?;
    Ok(v)
}

/// The autoscaling/v1 Scale of a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
                   "selector": super::selectors::selector_string(&obj["spec"]["selector"])},
    })
}

fn list(shared: &Arc<Shared>, p: &ResPath, query: &Query) -> Result<Response, ApiError> {
    let (labels, fields) = list_selectors(query, p.ty.kind)?;
    let st = shared.lock();
    let items = st.list(
        p.ty,
        p.namespace.as_deref(),
        labels.as_ref(),
        fields.as_ref(),
    );
    Ok(ok(&list_body(p.ty.kind, &p.ty.api_version(), st.rv, items)))
}

/// The `labelSelector` and `fieldSelector` of a list (field paths of `kind`).
pub fn list_selectors(
    query: &Query,
    kind: &str,
) -> Result<(Option<LabelSelector>, Option<FieldSelector>), ApiError> {
    let labels = query
        .get("labelSelector")
        .map(|s| LabelSelector::parse(s))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let fields = query
        .get("fieldSelector")
        .map(|s| FieldSelector::parse(s, kind))
        .transpose()
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// A `<kind>List` at resourceVersion `rv`.
pub fn list_body(
    kind: &str,
    api_version: &str,
    rv: u64,
    items: impl IntoIterator<Item = Value>,
) -> Value {
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            // List items carry no kind/apiVersion, as the API server sends them.
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    json!({
        "kind": format!("{kind}List"),
        "apiVersion": api_version,
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

fn ssar(shared: &Arc<Shared>, body: &[u8]) -> Result<Response, ApiError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "SelfSubjectAccessReview in version \"v1\" cannot be handled as a SelfSubjectAccessReview: {e}"
        ))
    })?;
    serde_json::from_value::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(v.clone()).map_err(
        |e| {
            ApiError::bad_request(format!(
                "SelfSubjectAccessReview in version \"v1\" cannot be handled as a SelfSubjectAccessReview: {e}"
            ))
        },
    )?;
    let ra = &v["spec"]["resourceAttributes"];
    let decision = if ra.is_object() {
        let s = |k: &str| ra[k].as_str().unwrap_or("").to_string();
        let (ns, verb, group, res, sub) = (
            s("namespace"),
            s("verb"),
            s("group"),
            s("resource"),
            s("subresource"),
        );
        shared.lock().policy.decide(&Attributes {
            namespace: Some(ns.as_str()).filter(|n| !n.is_empty()),
            verb: &verb,
            group: &group,
            resource: &res,
            subresource: Some(sub.as_str()).filter(|s| !s.is_empty()),
        })
    } else if v["spec"]["nonResourceAttributes"].is_object() {
        super::policy::Decision {
            allowed: true,
            denied: false,
            reason: String::new(),
        }
    } else {
        return Err(ApiError::invalid(
            &resources::SSAR,
            "",
            &[(
                "spec.resourceAttributes".into(),
                "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
                    .into(),
            )],
        ));
    };
    let mut status = json!({"allowed": decision.allowed});
    if decision.denied {
        status["denied"] = json!(true);
    }
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    v["status"] = status;
    v["apiVersion"] = json!("authorization.k8s.io/v1");
    v["kind"] = json!("SelfSubjectAccessReview");
    if !v["metadata"].is_object() {
        v["metadata"] = json!({});
    }
    v["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_response(StatusCode::CREATED, &v))
}

const NAME_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or \
    '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn valid_subdomain(n: &str) -> bool {
    n.len() <= 253
        && n.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Decodes the body into the real k8s-openapi type (400 when it does not fit) and checks
/// what the API server's validation would (422).
pub fn validate(ty: &ResType, obj: &Value) -> Result<(), ApiError> {
    use k8s_openapi::api;
    let bad = |e: serde_json::Error| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
            kind = ty.kind,
            v = ty.version
        ))
    };
    if let Some(av) = obj["apiVersion"].as_str()
        && av != ty.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            ty.api_version()
        )));
    }
    if let Some(k) = obj["kind"].as_str()
        && k != ty.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            ty.kind
        )));
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let mut errs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() && !valid_subdomain(name) && ty.kind != "Event" {
        errs.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": {NAME_RULE}"),
        ));
    }
    let mut typed_obj = obj.clone();
    typed_obj["apiVersion"] = json!(ty.api_version());
    typed_obj["kind"] = json!(ty.kind);
    match (ty.group, ty.kind) {
        ("apps", "Deployment") | ("apps", "ReplicaSet") => {
            if obj["spec"]["selector"].is_null() {
                errs.push(("spec.selector".into(), "Required value".into()));
                return Err(ApiError::invalid(ty, name, &errs));
            }
            if ty.kind == "Deployment" {
                serde_json::from_value::<api::apps::v1::Deployment>(typed_obj).map_err(bad)?;
            } else {
                serde_json::from_value::<api::apps::v1::ReplicaSet>(typed_obj).map_err(bad)?;
            }
            workload_rules(obj, &mut errs);
        }
        ("", "Pod") => {
            serde_json::from_value::<api::core::v1::Pod>(typed_obj).map_err(bad)?;
            if obj["spec"]["containers"]
                .as_array()
                .is_none_or(Vec::is_empty)
            {
                errs.push(("spec.containers".into(), "Required value".into()));
            }
        }
        ("", "Service") => {
            serde_json::from_value::<api::core::v1::Service>(typed_obj).map_err(bad)?;
        }
        ("", "Namespace") => {
            serde_json::from_value::<api::core::v1::Namespace>(typed_obj).map_err(bad)?;
        }
        ("", "Event") => {
            serde_json::from_value::<api::core::v1::Event>(typed_obj).map_err(bad)?;
            if obj["involvedObject"].is_null() {
                errs.push(("involvedObject".into(), "Required value".into()));
            }
        }
        ("events.k8s.io", "Event") => {
            serde_json::from_value::<api::events::v1::Event>(typed_obj).map_err(bad)?;
        }
        _ => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(ty, name, &errs))
    }
}

fn workload_rules(obj: &Value, errs: &mut Vec<(String, String)>) {
    if let Some(r) = obj["spec"]["replicas"].as_i64()
        && r < 0
    {
        errs.push((
            "spec.replicas".into(),
            format!("Invalid value: {r}: must be greater than or equal to 0"),
        ));
    }
    let sel = &obj["spec"]["selector"];
    let empty = super::selectors::string_map(&sel["matchLabels"]).is_empty()
        && sel["matchExpressions"].as_array().is_none_or(Vec::is_empty);
    if empty {
        errs.push((
            "spec.selector".into(),
            "Invalid value: {}: empty selector is invalid for deployment".into(),
        ));
    }
    let labels = super::selectors::string_map(&obj["spec"]["template"]["metadata"]["labels"]);
    if !empty && !super::selectors::selector_object_matches(sel, &labels) {
        errs.push((
            "spec.template.metadata.labels".into(),
            format!(
                "Invalid value: {}: `selector` does not match template `labels`",
                serde_json::to_string(&labels).unwrap_or_default()
            ),
        ));
    }
    match obj["spec"]["template"]["spec"]["containers"].as_array() {
        None => errs.push((
            "spec.template.spec.containers".into(),
            "Required value".into(),
        )),
        Some(cs) if cs.is_empty() => errs.push((
            "spec.template.spec.containers".into(),
            "Required value".into(),
        )),
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                if c["image"].as_str().is_none_or(str::is_empty) {
                    errs.push((
                        format!("spec.template.spec.containers[{i}].image"),
                        "Required value".into(),
                    ));
                }
            }
        }
    }
}
