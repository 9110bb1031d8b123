//! `events.k8s.io/v1` Events as a view of the core v1 Events, as in a real cluster where
//! both APIs share one storage (what kube's `Recorder` writes, `Api<core::v1::Event>` reads).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::api::{Query, decode_body_as, list_body, list_selectors, validate};
use super::patch;
use super::resources::{EVENTS, EVENTS_V1};
use super::state::Shared;
use super::status::{ApiError, json_response};

/// (core field, events.k8s.io/v1 field)
const FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("related", "related"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn convert(obj: &Value, api_version: &str, from_core: bool) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    out.insert("metadata".into(), obj["metadata"].clone());
    for (core, v1) in FIELDS {
        let (src, dst) = if from_core { (core, v1) } else { (v1, core) };
        if let Some(v) = obj.get(*src).filter(|v| !v.is_null()) {
            out.insert((*dst).to_string(), v.clone());
        }
    }
    // A series' count lives in `series` in v1 and in `count` in core.
    if !from_core
        && out.get("count").is_none()
        && let Some(c) = obj["series"]["count"].as_i64()
    {
        out.insert("count".into(), json!(c));
    }
    Value::Object(out)
}

pub fn core_to_v1(core: &Value) -> Value {
    convert(core, "events.k8s.io/v1", true)
}

pub fn v1_to_core(v1: &Value) -> Value {
    let mut c = convert(v1, "v1", false);
    if c.get("source").is_none()
        && let Some(rc) = v1["reportingController"].as_str()
    {
        c["source"] = json!({"component": rc});
    }
    c
}

/// Every verb but watch on `events.k8s.io/v1` `events`.
pub fn handle(
    shared: &Arc<Shared>,
    verb: &str,
    ns: Option<&str>,
    name: Option<&str>,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let ok = |v: &Value| json_response(StatusCode::OK, v);
    match (verb, name) {
        ("list", None) => {
            let (labels, fields) = list_selectors(query, "Event")?;
            let st = shared.lock();
            let items: Vec<Value> = st
                .list(&EVENTS, ns, labels.as_ref(), None)
                .iter()
                .map(core_to_v1)
                .filter(|e| fields.as_ref().is_none_or(|f| f.matches(e)))
                .collect();
            Ok(ok(&list_body(
                "Event",
                EVENTS_V1.api_version().as_str(),
                st.rv,
                items,
            )))
        }
        ("get", Some(name)) => shared
            .lock()
            .get(&EVENTS, ns, name)
            .map(|e| ok(&core_to_v1(e)))
            .ok_or_else(|| ApiError::not_found(&EVENTS_V1, name)),
        ("create", None) => {
            let v1 = decode_body_as(&EVENTS_V1, headers, body)?;
            validate(&EVENTS_V1, &v1)?;
            let created = shared.lock().create(&EVENTS, ns, v1_to_core(&v1))?;
            Ok(json_response(StatusCode::CREATED, &core_to_v1(&created)))
        }
        ("update", Some(name)) => {
            let v1 = decode_body_as(&EVENTS_V1, headers, body)?;
            validate(&EVENTS_V1, &v1)?;
            let u = shared
                .lock()
                .update(&EVENTS, ns, name, v1_to_core(&v1), false)?;
            Ok(ok(&core_to_v1(&u)))
        }
        ("patch", Some(name)) => {
            let ct = headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut st = shared.lock();
            let core = st
                .get(&EVENTS, ns, name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&EVENTS_V1, name))?;
            let mut v1 = core_to_v1(&core);
            let before_rv = v1["metadata"]["resourceVersion"].clone();
            patch::apply(&mut v1, &ct, body)?;
            if v1["metadata"]["resourceVersion"] == before_rv {
                v1["metadata"]["resourceVersion"] = json!("");
            }
            validate(&EVENTS_V1, &v1)?;
            let u = st.update(&EVENTS, ns, name, v1_to_core(&v1), false)?;
            Ok(ok(&core_to_v1(&u)))
        }
        ("delete", Some(name)) => {
            let gone = shared
                .lock()
                .delete(&EVENTS, ns, name)
                .map_err(|_| ApiError::not_found(&EVENTS_V1, name))?;
            Ok(ok(&json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": "events.k8s.io", "kind": "events", "uid": gone["metadata"]["uid"]},
            })))
        }
        _ => Err(ApiError::new(
            405,
            "the server does not allow this method on the requested resource",
        )),
    }
}
