//! HTTP tools declared in config (`[[http_tools]]`): a method, a URL template whose
//! `{arg}` placeholders are filled from the validated arguments (percent-encoded), the
//! remaining arguments sent as a JSON body (or, for GET, as query parameters), a schema and
//! a side-effect class. Every request goes through the egress guard.

use std::collections::BTreeSet;
use std::time::Duration;

use jsonschema::Validator;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Map, Value, json};
use url::Url;

use super::egress::{Egress, SendError};
use super::schema::{self, truncate_chars};
use super::{ProposedChange, SideEffect, ToolError, ToolSpec};
use crate::config::{ConfigError, HttpToolConfig};

/// A JSON answer larger than this is returned as truncated text instead.
const MAX_JSON_BYTES: usize = 1 << 20;
/// A non-JSON answer is returned as text cut to this many bytes.
const MAX_TEXT_BYTES: usize = 16 * 1024;
/// How much of an error answer is quoted in the failure message.
const ERROR_QUOTE_CHARS: usize = 200;
/// Everything but RFC 3986 unreserved characters is encoded, `/` and `?` included, so an
/// argument can never change the URL's structure.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Arg(String),
}

/// A configured HTTP tool, ready to call.
pub(super) struct HttpTool {
    name: String,
    method: Method,
    template: Vec<Part>,
    egress: Egress,
}

impl HttpTool {
    /// Checks one `[[http_tools]]` entry; every error names the offending key.
    pub(super) fn from_config(
        cfg: &HttpToolConfig,
        egress: &Egress,
    ) -> Result<(ToolSpec, Validator, HttpTool), ConfigError> {
        let err = |field: &str, message: String| ConfigError {
            key: format!("http_tools.{}.{field}", cfg.name),
            message,
        };
        if !is_tool_name(&cfg.name) {
            return Err(err(
                "name",
                format!(
                    "{:?} is not valid: use 1-64 characters of a-z, A-Z, 0-9, '_' or '-'",
                    cfg.name
                ),
            ));
        }
        let side_effect = match cfg.side_effect.as_str() {
            "read" => SideEffect::Read,
            "write" => SideEffect::Write,
            other => {
                return Err(err(
                    "side_effect",
                    format!("{other:?} is not allowed; expected one of: read, write"),
                ));
            }
        };
        let method = match cfg.method.to_ascii_uppercase().as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            _ => {
                return Err(err(
                    "method",
                    format!(
                        "{:?} is not allowed; expected one of: GET, POST, PUT, PATCH, DELETE",
                        cfg.method
                    ),
                ));
            }
        };
        if cfg.timeout_ms == 0 {
            return Err(err("timeout_ms", "must be greater than 0".into()));
        }
        if cfg.max_concurrency == 0 {
            return Err(err("max_concurrency", "must be greater than 0".into()));
        }
        let parameters = schema::from_toml(&cfg.schema).map_err(|m| err("schema", m))?;
        let validator = schema::compile(&parameters).map_err(|m| err("schema", m))?;
        let template = parse_template(&cfg.url).map_err(|m| err("url", m))?;
        let required: BTreeSet<&str> = parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for part in &template {
            if let Part::Arg(arg) = part
                && !required.contains(arg.as_str())
            {
                return Err(err(
                    "url",
                    format!(
                        "placeholder {{{arg}}} must be a required argument: add {arg:?} to `required` in http_tools.{}.schema",
                        cfg.name
                    ),
                ));
            }
        }
        // The fixed part of the URL must be one the guard would let through.
        let probe = fill(&template, |_| Some("x".to_string()));
        let probe = Url::parse(&probe)
            .map_err(|e| err("url", format!("{:?} is not a valid URL: {e}", cfg.url)))?;
        egress
            .check_url(&probe)
            .map_err(|denied| err("url", denied.message().to_string()))?;

        let spec = ToolSpec {
            name: cfg.name.clone(),
            description: cfg.description.clone(),
            parameters,
            side_effect,
            timeout: Duration::from_millis(cfg.timeout_ms),
            max_concurrency: cfg.max_concurrency,
            source: "http",
        };
        let tool = HttpTool {
            name: cfg.name.clone(),
            method,
            template,
            egress: egress.clone(),
        };
        Ok((spec, validator, tool))
    }

    /// The URL (placeholders filled) and JSON body for these (validated) arguments.
    fn request_parts(&self, args: &Value) -> Result<(Url, Option<Value>), ToolError> {
        let empty = Map::new();
        let args = args.as_object().unwrap_or(&empty);
        let mut used = BTreeSet::new();
        let mut missing = None;
        let filled = fill(&self.template, |arg| {
            used.insert(arg.to_string());
            let value = args.get(arg).map(text);
            if value.is_none() {
                missing = Some(arg.to_string());
            }
            value
        });
        if let Some(arg) = missing {
            return Err(ToolError::invalid(
                &self.name,
                format!("{arg}: is required by the URL"),
            ));
        }
        let mut url = Url::parse(&filled)
            .map_err(|e| ToolError::invalid(&self.name, format!("the URL is not valid: {e}")))?;
        let rest: Map<String, Value> = args
            .iter()
            .filter(|(k, _)| !used.contains(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let body = if self.method == Method::GET {
            if !rest.is_empty() {
                let mut query = url.query_pairs_mut();
                for (k, v) in &rest {
                    query.append_pair(k, &text(v));
                }
            }
            None
        } else if self.method == Method::DELETE && rest.is_empty() {
            None
        } else {
            Some(Value::Object(rest))
        };
        Ok((url, body))
    }

    /// Sends the request and returns the answer: its JSON, or `{status, body, truncated}`.
    pub(super) async fn call(&self, args: &Value) -> Result<Value, ToolError> {
        self.call_with_headers(args, &[]).await
    }

    /// [`Self::call`] with extra request headers (e.g. `Idempotency-Key` on a write).
    pub(super) async fn call_with_headers(
        &self,
        args: &Value,
        headers: &[(&str, &str)],
    ) -> Result<Value, ToolError> {
        let (url, body) = self.request_parts(args)?;
        let host = url.host_str().unwrap_or_default().to_string();
        let mut builder = self
            .egress
            .client()
            .request(self.method.clone(), url)
            .header(ACCEPT, "application/json, text/plain;q=0.9, */*;q=0.5");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(body) = &body {
            builder = builder.json(body);
        }
        let request = builder
            .build()
            .map_err(|e| ToolError::failed(&self.name, e.to_string()))?;
        let response = self
            .egress
            .send(request)
            .await
            .map_err(|e| ToolError::from_send(&self.name, e))?;
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
        let cap = if is_json {
            MAX_JSON_BYTES
        } else {
            MAX_TEXT_BYTES
        };
        let (bytes, truncated) = read_capped(response, cap)
            .await
            .map_err(|e| ToolError::from_send(&self.name, e))?;
        if !status.is_success() {
            let quote = truncate_chars(String::from_utf8_lossy(&bytes).trim(), ERROR_QUOTE_CHARS);
            return Err(ToolError::failed(
                &self.name,
                format!("{host} answered HTTP {status}: {quote}"),
            ));
        }
        if is_json
            && !truncated
            && let Ok(value) = serde_json::from_slice::<Value>(&bytes)
        {
            return Ok(value);
        }
        let (text, cut) = utf8_prefix(&bytes, MAX_TEXT_BYTES);
        Ok(json!({ "status": status.as_u16(), "body": text, "truncated": truncated || cut }))
    }

    /// What a write would send, for the approver: there is no "before" to show.
    pub(super) fn propose(&self, args: &Value) -> Result<ProposedChange, ToolError> {
        let (url, body) = self.request_parts(args)?;
        let after = json!({ "method": self.method.as_str(), "url": url.as_str(), "body": body });
        Ok(ProposedChange::new(
            format!("{} {url}", self.method),
            Value::Null,
            after,
        ))
    }
}

/// OpenAI-compatible function names.
fn is_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Splits `https://h/orders/{order_id}` into literals and placeholders; placeholders may
/// only appear after the host.
fn parse_template(raw: &str) -> Result<Vec<Part>, String> {
    let authority_start = raw
        .find("://")
        .map(|i| i + 3)
        .ok_or("must be an absolute http:// or https:// URL")?;
    let authority_end = raw[authority_start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| authority_start + i);
    if raw[..authority_end].contains(['{', '}']) {
        return Err(
            "placeholders may only appear in the path or query, not in the scheme or host".into(),
        );
    }
    let mut parts = Vec::new();
    let mut rest = raw;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or("has a '{' without a closing '}'")?;
        let name = &rest[open + 1..close];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "placeholder {{{name}}} is not valid: use letters, digits and '_'"
            ));
        }
        if open > 0 {
            parts.push(Part::Literal(rest[..open].to_string()));
        }
        parts.push(Part::Arg(name.to_string()));
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err("has a '}' without an opening '{'".into());
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(parts)
}

/// The template with each placeholder replaced by `value(name)`, percent-encoded.
fn fill(template: &[Part], mut value: impl FnMut(&str) -> Option<String>) -> String {
    template
        .iter()
        .map(|part| match part {
            Part::Literal(s) => s.clone(),
            Part::Arg(name) => value(name)
                .map(|v| utf8_percent_encode(&v, COMPONENT).to_string())
                .unwrap_or_default(),
        })
        .collect()
}

/// An argument as URL text: strings as they are, anything else as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most `max` bytes of `bytes` as text, cut at a character boundary; and whether it was cut.
fn utf8_prefix(bytes: &[u8], max: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= max {
        return (text.into_owned(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

/// Reads at most `cap` bytes of the body; the flag says whether there was more.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), SendError> {
    let mut buf = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SendError::from_reqwest(&e))?
    {
        let room = cap.saturating_sub(buf.len());
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_literals_and_placeholders() {
        let parts =
            parse_template("https://h.example/orders/{order_id}/lines?x={n}").expect("valid");
        assert_eq!(
            parts,
            [
                Part::Literal("https://h.example/orders/".into()),
                Part::Arg("order_id".into()),
                Part::Literal("/lines?x=".into()),
                Part::Arg("n".into()),
            ]
        );
        for bad in [
            "https://{tenant}.example/x",
            "https://h.example:{port}/",
            "{scheme}://h.example/",
            "https://h.example/{open",
            "https://h.example/close}",
            "https://h.example/{a-b}",
            "h.example/x",
        ] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filled_values_cannot_change_the_url_structure() {
        let parts = parse_template("https://h.example/orders/{id}").expect("valid");
        let url = fill(&parts, |_| Some("../admin?x=1#frag é".into()));
        assert_eq!(
            url,
            "https://h.example/orders/..%2Fadmin%3Fx%3D1%23frag%20%C3%A9"
        );
        assert_eq!(
            Url::parse(&url).expect("url").path(),
            "/orders/..%2Fadmin%3Fx%3D1%23frag%20%C3%A9"
        );
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        let (text, cut) = utf8_prefix("aé".as_bytes(), 2);
        assert_eq!((text.as_str(), cut), ("a", true));
        assert_eq!(utf8_prefix(b"abc", 3), ("abc".to_string(), false));
    }
}
