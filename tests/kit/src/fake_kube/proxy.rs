//! The pod and service proxy: `…/pods/{name}[:port]/proxy/{path}` is forwarded to the
//! backend configured for the pod's labels (a real process, e.g. the agent-service).

use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::resources::{PODS, ResPath, SERVICES};
use super::selectors::{labels_of, string_map};
use super::state::Shared;
use super::status::ApiError;

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

/// `name`, `name:port` or `scheme:name:port` -> `name`.
fn bare_name(raw: &str) -> &str {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        [n] | [n, _] => n,
        ["http" | "https", n, _] => n,
        _ => raw,
    }
}

pub async fn forward(
    shared: &Arc<Shared>,
    p: &ResPath,
    method: Method,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let raw = p.name.as_deref().unwrap_or("");
    let name = bare_name(raw);
    let ns = p.namespace.as_deref().unwrap_or("");
    let base = {
        let st = shared.lock();
        let candidates: Vec<std::collections::BTreeMap<String, String>> = if p.ty.kind == "Pod" {
            let pod = st
                .get(&PODS, Some(ns), name)
                .ok_or_else(|| ApiError::not_found(&PODS, name))?;
            vec![labels_of(pod)]
        } else {
            let svc = st
                .get(&SERVICES, Some(ns), name)
                .ok_or_else(|| ApiError::not_found(&SERVICES, name))?;
            let sel = string_map(&svc["spec"]["selector"]);
            st.list(&PODS, Some(ns), None, None)
                .iter()
                .map(labels_of)
                .filter(|l| !sel.is_empty() && sel.iter().all(|(k, v)| l.get(k) == Some(v)))
                .collect()
        };
        if p.ty.kind == "Service" && candidates.is_empty() {
            return Err(ApiError::new(
                503,
                format!("no endpoints available for service \"{raw}\""),
            ));
        }
        st.backends
            .iter()
            .find(|b| {
                b.namespace == ns
                    && candidates
                        .iter()
                        .any(|l| b.selector.iter().all(|(k, v)| l.get(k) == Some(v)))
            })
            .map(|b| b.base_url.clone())
    };
    let Some(base) = base else {
        return Err(ApiError::new(
            503,
            format!(
                "error trying to reach service: no backend configured in the fake for {} \"{raw}\"",
                p.ty.plural
            ),
        ));
    };
    let rest = p.rest.as_deref().filter(|r| !r.is_empty()).unwrap_or("/");
    let mut url = format!("{}{rest}", base.trim_end_matches('/'));
    if let Some(q) = raw_query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    let mut req = client().request(method, &url).body(body);
    for h in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = headers.get(&h) {
            req = req.header(h, v);
        }
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ApiError::new(503, format!("error trying to reach service: {e}")))?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
    let mut out = Response::builder().status(status);
    if let Some(ct) = ct {
        out = out.header(header::CONTENT_TYPE, ct);
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .map_err(|e| ApiError::new(500, e.to_string()))
        .map(IntoResponse::into_response)
}
