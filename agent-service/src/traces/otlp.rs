//! OTLP/HTTP export of stored traces, in OTLP's JSON encoding (`POST {endpoint}/v1/traces`,
//! `Content-Type: application/json`): `resourceSpans` → `scopeSpans` → `spans`, ids as
//! lowercase hex, times as Unix-nanosecond strings, attributes as `{key, value:{…Value}}`.
//!
//! Hand-written with serde rather than the `opentelemetry-otlp` crates: those are built
//! around live spans from the SDK, while these traces are already finished and stored (ids
//! and timings are ours); the JSON wire format is stable and small. Payloads are not
//! exported (only structure, timings and attributes leave the service); a failed export
//! is logged and counted, never retried into the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{AttrValue, SpanKind, SpanStatus, TraceRecord};

/// Time allowed for one export request.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Batches waiting for the exporter before new ones are dropped.
const QUEUE_BATCHES: usize = 64;

/// Who is exporting: the OTLP resource of every span.
#[derive(Debug, Clone)]
pub struct Resource {
    pub service_version: String,
    pub git_sha: String,
    pub track: String,
    pub environment: String,
}

/// `{endpoint}/v1/traces`, as the OTLP exporter spec builds it from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn traces_url(endpoint: &url::Url) -> Result<url::Url, url::ParseError> {
    let mut base = endpoint.clone();
    base.set_query(None);
    base.set_fragment(None);
    url::Url::parse(&format!(
        "{}/v1/traces",
        base.as_str().trim_end_matches('/')
    ))
}

/// The 16-byte OTLP trace id of a stored trace: our ids are `tr_` + 32 hex digits; any
/// other id is hashed to 16 bytes so it still maps to one stable OTLP id.
pub fn otlp_trace_id(trace_id: &str) -> String {
    let hex = trace_id.strip_prefix("tr_").unwrap_or(trace_id);
    if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex.to_ascii_lowercase()
    } else {
        hex::encode(&sha2::Sha256::digest(trace_id.as_bytes())[..16])
    }
}

fn any_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        // proto3 JSON writes 64-bit integers as strings.
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Float(f) => json!({ "doubleValue": f }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
        AttrValue::StrList(items) => json!({
            "arrayValue": { "values": items.iter().map(|s| json!({ "stringValue": s })).collect::<Vec<_>>() }
        }),
    }
}

fn key_value(key: &str, v: &AttrValue) -> Value {
    json!({ "key": key, "value": any_value(v) })
}

fn kind_code(k: SpanKind) -> u8 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
    }
}

fn unix_nanos(started_at_ms: i64, offset_us: i64) -> String {
    (i128::from(started_at_ms) * 1_000_000 + i128::from(offset_us) * 1_000).to_string()
}

/// The OTLP JSON body (`ExportTraceServiceRequest`) for a batch of traces.
pub fn encode(traces: &[TraceRecord], resource: &Resource) -> Value {
    let spans: Vec<Value> = traces
        .iter()
        .flat_map(|t| {
            let trace_id = otlp_trace_id(&t.trace_id);
            t.spans.iter().map(move |s| {
                let mut span = json!({
                    "traceId": trace_id,
                    "spanId": s.span_id,
                    "name": s.name,
                    "kind": kind_code(s.kind),
                    "startTimeUnixNano": unix_nanos(t.started_at_ms, s.start_us),
                    "endTimeUnixNano": unix_nanos(t.started_at_ms, s.start_us + s.duration_us),
                    "attributes": s.attributes.iter().map(|(k, v)| key_value(k, v)).collect::<Vec<_>>(),
                    "status": match s.status {
                        SpanStatus::Ok => json!({ "code": 1 }),
                        SpanStatus::Error => {
                            let message = s.attributes.iter().find(|(k, _)| *k == "error.type").and_then(|(_, v)| match v {
                                AttrValue::Str(m) => Some(m.as_ref()),
                                _ => None,
                            }).unwrap_or("error");
                            json!({ "code": 2, "message": message })
                        }
                    },
                });
                if let Some(parent) = &s.parent_span_id {
                    span["parentSpanId"] = json!(parent);
                }
                span
            })
        })
        .collect();
    let resource_attrs = [
        ("service.name", AttrValue::from("agent-service")),
        (
            "service.version",
            AttrValue::from(resource.service_version.clone()),
        ),
        (
            "deployment.environment.name",
            AttrValue::from(resource.environment.clone()),
        ),
        (
            "flightdeck.release.track",
            AttrValue::from(resource.track.clone()),
        ),
        (
            "flightdeck.release.git_sha",
            AttrValue::from(resource.git_sha.clone()),
        ),
    ];
    json!({
        "resourceSpans": [{
            "resource": { "attributes": resource_attrs.iter().map(|(k, v)| key_value(k, v)).collect::<Vec<_>>() },
            "scopeSpans": [{
                "scope": { "name": "agent-service", "version": resource.service_version },
                "spans": spans,
            }],
        }],
    })
}

/// Export counters, readable while the exporter runs.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub exported_traces: AtomicU64,
    pub failed_batches: AtomicU64,
    pub dropped_batches: AtomicU64,
}

/// A background exporter behind a bounded queue: the writer hands it batches and never
/// waits for the collector.
pub struct ExportQueue {
    tx: mpsc::Sender<Vec<TraceRecord>>,
    task: JoinHandle<()>,
    pub stats: Arc<ExportStats>,
}

impl ExportQueue {
    pub fn spawn(http: reqwest::Client, endpoint: &url::Url, resource: Resource) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let stats = Arc::new(ExportStats::default());
        let url = traces_url(endpoint).unwrap_or_else(|_| endpoint.clone());
        let task = tokio::spawn(export_loop(http, url, resource, rx, stats.clone()));
        Self { tx, task, stats }
    }

    /// Queues a batch; drops and counts it when the exporter is this far behind.
    pub fn submit(&self, batch: Vec<TraceRecord>) {
        if batch.is_empty() {
            return;
        }
        if self.tx.try_send(batch).is_err() {
            let n = self.stats.dropped_batches.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(100) {
                tracing::warn!(
                    dropped_batches = n,
                    "OTLP export is behind; a batch of traces was not exported"
                );
            }
        }
    }

    /// Exports what is queued (up to `wait`), then stops.
    pub async fn close(self, wait: Duration) {
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(wait, &mut task).await.is_err() {
            task.abort();
            tracing::warn!(
                "OTLP export did not finish before shutdown; queued traces were not exported"
            );
        }
    }
}

async fn export_loop(
    http: reqwest::Client,
    url: url::Url,
    resource: Resource,
    mut rx: mpsc::Receiver<Vec<TraceRecord>>,
    stats: Arc<ExportStats>,
) {
    let mut last_warning: Option<Instant> = None;
    while let Some(batch) = rx.recv().await {
        let body = encode(&batch, &resource);
        let result = http
            .post(url.clone())
            .timeout(EXPORT_TIMEOUT)
            .json(&body)
            .send()
            .await;
        let failure = match result {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => Some(format!("the collector answered {}", resp.status())),
            Err(e) => Some(format!("the request failed: {e}")),
        };
        match failure {
            None => {
                stats
                    .exported_traces
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Some(reason) => {
                let failed = stats.failed_batches.fetch_add(1, Ordering::Relaxed) + 1;
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        endpoint = %url,
                        reason,
                        failed_batches_total = failed,
                        traces = batch.len(),
                        "OTLP trace export failed; the traces stay stored locally"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::SpanRecord;

    fn record() -> TraceRecord {
        TraceRecord {
            trace_id: "tr_0190aabbccddeeff0011223344556677".into(),
            tenant: "demo".into(),
            request_id: "r1".into(),
            workflow: "faq".into(),
            status: "success".into(),
            error_code: None,
            started_at_ms: 1_700_000_000_123,
            duration_us: 1_500,
            prompt_tokens: 3,
            completion_tokens: 4,
            cost_usd: 0.01,
            model: "scripted-v1".into(),
            provider: "scripted".into(),
            flagged: false,
            guardrail_rule: None,
            spans: vec![
                SpanRecord {
                    span_id: "00000000000000aa".into(),
                    parent_span_id: None,
                    name: "request".into(),
                    kind: SpanKind::Server,
                    status: SpanStatus::Ok,
                    start_us: 0,
                    duration_us: 1_500,
                    attributes: vec![("flightdeck.workflow", "faq".into())],
                    payload: vec![("input", json!("secret text").to_string())],
                },
                SpanRecord {
                    span_id: "00000000000000bb".into(),
                    parent_span_id: Some("00000000000000aa".into()),
                    name: "chat scripted-v1".into(),
                    kind: SpanKind::Client,
                    status: SpanStatus::Error,
                    start_us: 250,
                    duration_us: 1_000,
                    attributes: vec![
                        ("gen_ai.usage.input_tokens", AttrValue::Int(3)),
                        ("flightdeck.cost_usd", AttrValue::Float(0.01)),
                        (
                            "gen_ai.response.finish_reasons",
                            vec!["stop".to_string()].into(),
                        ),
                        ("error.type", "provider_timeout".into()),
                    ],
                    payload: vec![],
                },
            ],
        }
    }

    fn resource() -> Resource {
        Resource {
            service_version: "0.1.0".into(),
            git_sha: "abc".into(),
            track: "stable".into(),
            environment: "development".into(),
        }
    }

    #[test]
    fn encodes_otlp_json() {
        let body = encode(&[record()], &resource());
        let spans = &body["resourceSpans"][0]["scopeSpans"][0]["spans"];
        assert_eq!(spans.as_array().map(Vec::len), Some(2));
        let root = &spans[0];
        assert_eq!(root["traceId"], "0190aabbccddeeff0011223344556677");
        assert_eq!(root["kind"], 2);
        assert!(root.get("parentSpanId").is_none());
        assert_eq!(root["startTimeUnixNano"], "1700000000123000000");
        assert_eq!(root["endTimeUnixNano"], "1700000000124500000");
        let llm = &spans[1];
        assert_eq!(llm["parentSpanId"], "00000000000000aa");
        assert_eq!(llm["kind"], 3);
        assert_eq!(llm["startTimeUnixNano"], "1700000000123250000");
        assert_eq!(
            llm["status"],
            json!({"code": 2, "message": "provider_timeout"})
        );
        let attrs = llm["attributes"].as_array().expect("attributes");
        assert!(
            attrs
                .contains(&json!({"key": "gen_ai.usage.input_tokens", "value": {"intValue": "3"}}))
        );
        assert!(
            attrs.contains(&json!({"key": "flightdeck.cost_usd", "value": {"doubleValue": 0.01}}))
        );
        assert!(
            attrs.contains(&json!({"key": "gen_ai.response.finish_reasons",
            "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}}))
        );
        assert!(
            !body.to_string().contains("secret text"),
            "payloads are not exported"
        );
        let res = &body["resourceSpans"][0]["resource"]["attributes"];
        assert!(
            res.as_array().expect("resource").contains(
                &json!({"key": "service.name", "value": {"stringValue": "agent-service"}})
            )
        );
    }

    #[test]
    fn builds_the_traces_url_and_ids() {
        let u = |s: &str| {
            traces_url(&url::Url::parse(s).expect("url"))
                .expect("traces url")
                .to_string()
        };
        assert_eq!(
            u("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(u("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(u("https://c/otel/"), "https://c/otel/v1/traces");
        let other = otlp_trace_id("job-42");
        assert_eq!(other.len(), 32);
        assert_eq!(other, otlp_trace_id("job-42"));
    }
}
