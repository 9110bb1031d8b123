//! Kubernetes `Status` error bodies, shaped like the API server's.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::{ResPath, ResType};

/// An API error answered as a `Status` object with the matching HTTP code.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason_for(code),
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn not_found(ty: &ResType, name: &str) -> Self {
        Self::new(404, format!("{} \"{name}\" not found", ty.qualified()))
            .with_details(details(ty, name))
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    pub fn already_exists(ty: &ResType, name: &str) -> Self {
        Self::new(409, format!("{} \"{name}\" already exists", ty.qualified()))
            .with_reason("AlreadyExists")
            .with_details(details(ty, name))
    }

    pub fn conflict(ty: &ResType, name: &str) -> Self {
        Self::new(
            409,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                ty.qualified()
            ),
        )
        .with_details(details(ty, name))
    }

    /// 422 Invalid with one cause per field error `(field, message)`.
    pub fn invalid(ty: &ResType, name: &str, errors: &[(String, String)]) -> Self {
        let kind_q = if ty.group.is_empty() {
            ty.kind.to_string()
        } else {
            format!("{}.{}", ty.kind, ty.group)
        };
        let summary: Vec<String> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let message = if summary.len() == 1 {
            format!("{kind_q} \"{name}\" is invalid: {}", summary[0])
        } else {
            format!("{kind_q} \"{name}\" is invalid: [{}]", summary.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
            .collect();
        Self::new(422, message).with_details(json!({
            "name": name, "group": ty.group, "kind": ty.kind, "causes": causes
        }))
    }

    /// 403 for a request the policy denies, worded like RBAC's answer.
    pub fn forbidden(p: &ResPath, verb: &str, user: &str, reason: &str) -> Self {
        let ty = p.ty;
        let full_res = match p.sub.as_deref() {
            Some(s) => format!("{}/{s}", ty.plural),
            None => ty.plural.to_string(),
        };
        let qualified = if ty.group.is_empty() {
            full_res.clone()
        } else {
            format!("{full_res}.{}", ty.group)
        };
        // `name:port` in proxy paths: the object's name is the first part.
        let name = p.name.as_deref().map(|n| {
            if p.sub.as_deref() == Some("proxy") {
                n.split(':').next().unwrap_or(n)
            } else {
                n
            }
        });
        let subject = match name {
            Some(n) => format!("{qualified} \"{n}\" is forbidden"),
            None => format!("{qualified} is forbidden"),
        };
        let scope = match p.namespace.as_deref() {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".to_string(),
        };
        let mut message = format!(
            "{subject}: User \"{user}\" cannot {verb} resource \"{full_res}\" in API group \"{}\"{scope}",
            ty.group
        );
        if !reason.is_empty() {
            message.push_str(": ");
            message.push_str(reason);
        }
        let mut d = json!({"group": ty.group, "kind": ty.plural});
        if let Some(n) = name {
            d["name"] = json!(n);
        }
        Self::new(403, message).with_details(d)
    }

    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }

    pub fn body(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

fn details(ty: &ResType, name: &str) -> Value {
    json!({"name": name, "group": ty.group, "kind": ty.plural})
}

/// The `reason` the API server uses for an HTTP code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.body())
    }
}

pub fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
