//! The recorder of one run: builds its span tree as the engine works (timings from the
//! monotonic clock), redacts and truncates every payload on the way in, and hands the
//! finished trace to the [`TraceSink`] without waiting. A run dropped before it finishes
//! (the client went away) is still recorded, as `cancelled`.
//!
//! Attribute names follow the OpenTelemetry GenAI semantic conventions where they exist
//! (`gen_ai.*`, `error.type`, `enduser.id`); the rest are namespaced `flightdeck.*`.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use super::{AttrValue, SpanKind, SpanRecord, SpanStatus, TraceRecord, TraceSink};
use crate::domain::{ApprovalId, TraceId};
use crate::guardrails::Policy;
use crate::providers::{ChatResponse, Finish, Usage};

/// Longest stored payload field, in characters (after redaction).
pub const MAX_PAYLOAD_CHARS: usize = 4096;

/// A span of the trace being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanId(usize);

/// What is known about a run when it starts.
#[derive(Debug, Clone)]
pub struct TraceHeader {
    pub trace_id: TraceId,
    pub tenant: String,
    pub request_id: String,
    pub workflow: String,
    pub user_id: Option<String>,
    /// `ollama`, `openai` or `scripted`.
    pub provider: &'static str,
    /// The configured model.
    pub model: String,
    pub policy_version: String,
    pub release_track: String,
    pub release_version: String,
    pub release_git_sha: String,
    /// Wall clock at the start, Unix milliseconds (from the injected clock).
    pub started_at_ms: i64,
}

/// The trace of one run, recorded as it happens.
pub struct RunTrace {
    sink: TraceSink,
    policy: Arc<Policy>,
    origin: Instant,
    building: Option<Building>,
}

struct Building {
    record: TraceRecord,
    ended: Vec<bool>,
}

fn new_span_id() -> String {
    // OTLP: 8 bytes, not all zero; 16 lower-case hex digits.
    hex::encode(rand::random::<u64>().max(1).to_be_bytes())
}

/// Cuts `text` to [`MAX_PAYLOAD_CHARS`] characters, saying how much was cut.
fn truncate(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_PAYLOAD_CHARS) {
        None => Cow::Borrowed(text),
        Some((at, _)) => Cow::Owned(format!(
            "{}…[truncated {} characters]",
            &text[..at],
            text[at..].chars().count()
        )),
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    // Serializing a `str` into a byte buffer cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// Writes `value` as JSON, every string value redacted (object keys are not): the same
/// text as redacting a copy with [`Redactor::redact_json`] and serializing it, without
/// the copy.
///
/// [`Redactor::redact_json`]: crate::guardrails::Redactor::redact_json
fn write_redacted(out: &mut Vec<u8>, value: &Value, redactor: &crate::guardrails::Redactor) {
    // Writing to a Vec cannot fail, and a `Value` holds no non-finite float.
    match value {
        Value::String(s) => {
            let _ = serde_json::to_writer(&mut *out, redactor.redact(s).text.as_ref());
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_redacted(out, item, redactor);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_redacted(out, v, redactor);
            }
            out.push(b'}');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {
            let _ = serde_json::to_writer(&mut *out, value);
        }
    }
}

impl RunTrace {
    /// Starts recording: the root `request` span begins at `origin`.
    pub fn begin(sink: TraceSink, policy: Arc<Policy>, h: TraceHeader, origin: Instant) -> Self {
        let scripted = h.provider == "scripted";
        let mut attributes: Vec<(&'static str, AttrValue)> = vec![
            ("flightdeck.workflow", h.workflow.clone().into()),
            ("flightdeck.tenant", h.tenant.clone().into()),
            ("flightdeck.request_id", h.request_id.clone().into()),
            ("flightdeck.policy_version", h.policy_version.into()),
            ("flightdeck.release.track", h.release_track.into()),
            ("flightdeck.release.version", h.release_version.into()),
            ("flightdeck.release.git_sha", h.release_git_sha.into()),
            ("gen_ai.provider.name", h.provider.into()),
            ("gen_ai.system", h.provider.into()),
            ("gen_ai.request.model", h.model.clone().into()),
            ("flightdeck.provider.scripted", scripted.into()),
        ];
        if scripted {
            attributes.push((
                "flightdeck.provider.label",
                "scripted (deterministic offline model for demos and tests, not an LLM)".into(),
            ));
        }
        if let Some(user) = &h.user_id {
            let user = policy.redactor.redact(user).text.into_owned();
            attributes.push(("enduser.id", truncate(&user).into_owned().into()));
        }
        let root = SpanRecord {
            span_id: new_span_id(),
            parent_span_id: None,
            name: "request".into(),
            kind: SpanKind::Server,
            status: SpanStatus::Ok,
            start_us: 0,
            duration_us: 0,
            attributes,
            payload: Vec::new(),
        };
        sink.opened();
        Self {
            sink,
            policy,
            origin,
            building: Some(Building {
                record: TraceRecord {
                    trace_id: h.trace_id.to_string(),
                    tenant: h.tenant,
                    request_id: h.request_id,
                    workflow: h.workflow,
                    status: String::new(),
                    error_code: None,
                    started_at_ms: h.started_at_ms,
                    duration_us: 0,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    cost_usd: 0.0,
                    model: h.model,
                    provider: h.provider.to_string(),
                    flagged: false,
                    guardrail_rule: None,
                    spans: vec![root],
                },
                ended: vec![false],
            }),
        }
    }

    /// The root `request` span.
    pub fn root(&self) -> SpanId {
        SpanId(0)
    }

    fn now_us(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_micros()).unwrap_or(i64::MAX)
    }

    fn span_mut(&mut self, id: SpanId) -> Option<&mut SpanRecord> {
        self.building.as_mut()?.record.spans.get_mut(id.0)
    }

    /// Starts a child span of `parent`.
    pub fn start(&mut self, name: impl Into<String>, kind: SpanKind, parent: SpanId) -> SpanId {
        let start_us = self.now_us();
        let Some(b) = self.building.as_mut() else {
            return parent;
        };
        let parent_span_id = b.record.spans.get(parent.0).map(|p| p.span_id.clone());
        b.record.spans.push(SpanRecord {
            span_id: new_span_id(),
            parent_span_id,
            name: name.into(),
            kind,
            status: SpanStatus::Ok,
            start_us,
            duration_us: 0,
            attributes: Vec::new(),
            payload: Vec::new(),
        });
        b.ended.push(false);
        SpanId(b.record.spans.len() - 1)
    }

    pub fn attr(&mut self, span: SpanId, key: &'static str, value: impl Into<AttrValue>) {
        let value = value.into();
        if let Some(s) = self.span_mut(span) {
            match s.attributes.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => s.attributes.push((key, value)),
            }
        }
    }

    fn push_payload(&mut self, span: SpanId, key: &'static str, json_text: String) {
        if let Some(s) = self.span_mut(span) {
            s.payload.push((key, json_text));
        }
    }

    /// Stores a text payload, redacted and truncated.
    pub fn payload_text(&mut self, span: SpanId, key: &'static str, text: &str) {
        if self.building.is_none() {
            return;
        }
        let redacted = self.policy.redactor.redact(text);
        let stored = json_string(&truncate(&redacted.text));
        self.push_payload(span, key, stored);
    }

    /// Stores a JSON payload, redacted; one that serializes longer than
    /// [`MAX_PAYLOAD_CHARS`] is stored as its truncated JSON text (a string).
    pub fn payload_json(&mut self, span: SpanId, key: &'static str, value: &Value) {
        if self.building.is_none() {
            return;
        }
        let mut out = Vec::with_capacity(256);
        write_redacted(&mut out, value, &self.policy.redactor);
        // Only whole JSON tokens of valid UTF-8 were written.
        let text = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let stored = if text.len() > MAX_PAYLOAD_CHARS {
            json_string(&truncate(&text))
        } else {
            text
        };
        self.push_payload(span, key, stored);
    }

    /// Ends a span (the first end counts).
    pub fn end(&mut self, span: SpanId, status: SpanStatus) {
        let now = self.now_us();
        let Some(b) = self.building.as_mut() else {
            return;
        };
        if b.ended.get(span.0).copied().unwrap_or(true) {
            return;
        }
        b.ended[span.0] = true;
        let s = &mut b.record.spans[span.0];
        s.duration_us = (now - s.start_us).max(0);
        s.status = status;
    }

    /// Ends a span as failed with an `error.type`.
    pub fn fail(&mut self, span: SpanId, error_type: &'static str) {
        self.attr(span, "error.type", error_type);
        self.end(span, SpanStatus::Error);
    }

    /// Starts an LLM call span (`chat {model}`, GenAI attributes).
    pub fn llm_start(&mut self, provider: &'static str, model: &str, max_tokens: u32) -> SpanId {
        let root = self.root();
        let span = self.start(format!("chat {model}"), SpanKind::Client, root);
        self.attr(span, "gen_ai.operation.name", "chat");
        self.attr(span, "gen_ai.provider.name", provider);
        self.attr(span, "gen_ai.system", provider);
        self.attr(span, "gen_ai.request.model", model.to_string());
        self.attr(span, "gen_ai.request.max_tokens", max_tokens);
        span
    }

    /// Ends an LLM call span with the model's answer, its token usage and cost. A reply
    /// cut off at the output limit (`finish_reasons` `["length"]`) also gets
    /// `flightdeck.truncated`; a thinking model's thinking is counted
    /// (`flightdeck.usage.thinking_tokens`, part of the output tokens) and stored as the
    /// `thinking` payload, apart from the answer.
    pub fn llm_end(&mut self, span: SpanId, response: &ChatResponse, cost_usd: f64) {
        self.attr(span, "gen_ai.response.model", response.model.clone());
        self.attr(
            span,
            "gen_ai.response.finish_reasons",
            vec![response.finish.as_str().to_string()],
        );
        if response.finish == Finish::Length {
            self.attr(span, "flightdeck.truncated", true);
        }
        if response.thinking_tokens > 0 || !response.thinking.is_empty() {
            self.attr(
                span,
                "flightdeck.usage.thinking_tokens",
                response.thinking_tokens,
            );
            self.payload_text(span, "thinking", &response.thinking);
        }
        if !response.content.is_empty() {
            self.payload_text(span, "output", &response.content);
        }
        if !response.tool_calls.is_empty() {
            // The arguments are on each tool call's own span.
            let names: Vec<String> = response.tool_calls.iter().map(|c| c.name.clone()).collect();
            self.attr(span, "flightdeck.tool_calls", names);
        }
        self.llm_usage(span, &response.model, response.usage, cost_usd);
        self.end(span, SpanStatus::Ok);
    }

    /// Ends an LLM call span that produced no answer (failed, timed out, cancelled) with
    /// the tokens it used all the same.
    pub fn llm_interrupted(
        &mut self,
        span: SpanId,
        model: &str,
        usage: Usage,
        cost_usd: f64,
        error_type: &'static str,
    ) {
        self.llm_usage(span, model, usage, cost_usd);
        self.fail(span, error_type);
    }

    /// Usage and cost on the span and in the trace's totals.
    fn llm_usage(&mut self, span: SpanId, model: &str, usage: Usage, cost_usd: f64) {
        self.attr(span, "gen_ai.usage.input_tokens", usage.prompt_tokens);
        self.attr(span, "gen_ai.usage.output_tokens", usage.completion_tokens);
        self.attr(span, "flightdeck.cost_usd", cost_usd);
        if let Some(b) = self.building.as_mut() {
            let r = &mut b.record;
            r.prompt_tokens += i64::from(usage.prompt_tokens);
            r.completion_tokens += i64::from(usage.completion_tokens);
            r.cost_usd += cost_usd;
            r.model = model.to_string();
        }
    }

    /// Starts a tool call span (`execute_tool {name}`).
    pub fn tool_start(
        &mut self,
        name: &str,
        call_id: &str,
        side_effect: Option<&'static str>,
        arguments: &Value,
    ) -> SpanId {
        let root = self.root();
        let span = self.start(format!("execute_tool {name}"), SpanKind::Internal, root);
        self.attr(span, "gen_ai.operation.name", "execute_tool");
        self.attr(span, "gen_ai.tool.name", name.to_string());
        self.attr(span, "gen_ai.tool.call.id", call_id.to_string());
        self.attr(span, "gen_ai.tool.type", "function");
        if let Some(effect) = side_effect {
            self.attr(span, "flightdeck.tool.side_effect", effect);
        }
        self.payload_json(span, "arguments", arguments);
        span
    }

    /// Ends a tool call span with its outcome (`ok`, `needs_approval`, or an error kind).
    pub fn tool_end(&mut self, span: SpanId, outcome: &'static str, result: Option<&Value>) {
        self.attr(span, "flightdeck.tool.outcome", outcome);
        if let Some(r) = result {
            self.payload_json(span, "result", r);
        }
        if matches!(outcome, "ok" | "needs_approval") {
            self.end(span, SpanStatus::Ok);
        } else {
            self.fail(span, outcome);
        }
    }

    /// Records a guardrail check as one finished span: `verdict` is `allow`, `redacted`
    /// or `block`; `rules` are the rules that fired.
    pub fn guardrail(&mut self, span: SpanId, verdict: &'static str, rules: &[&str]) {
        self.attr(span, "flightdeck.guardrail.verdict", verdict);
        if !rules.is_empty() {
            self.attr(span, "flightdeck.guardrail.rule", rules.join(","));
        }
        self.end(span, SpanStatus::Ok);
    }

    /// Ends an `approval.create` span: the pending approval a gated write became.
    pub fn approval_created(
        &mut self,
        span: SpanId,
        id: &ApprovalId,
        required: i64,
        resource: &str,
    ) {
        self.attr(span, "flightdeck.approval.id", id.to_string());
        self.attr(span, "flightdeck.approval.required_approvals", required);
        self.attr(span, "flightdeck.approval.resource", resource.to_string());
        self.end(span, SpanStatus::Ok);
    }

    /// Ends the trace: the root span gets the status, the answer and the totals; spans
    /// still open (a deadline cut them short) end now as `interrupted`; the trace goes to
    /// the writer.
    pub fn finish(
        mut self,
        status: &'static str,
        error_code: Option<&'static str>,
        answer: Option<&str>,
    ) {
        self.complete(status, error_code, answer);
    }

    fn complete(
        &mut self,
        status: &'static str,
        error_code: Option<&'static str>,
        answer: Option<&str>,
    ) {
        if self.building.is_none() {
            return;
        }
        let root = self.root();
        if let Some(a) = answer {
            self.payload_text(root, "output", a);
        }
        self.attr(root, "flightdeck.status", status);
        if let Some(code) = error_code {
            self.attr(root, "error.type", code);
        }
        let open: Vec<usize> = self
            .building
            .as_ref()
            .map(|b| {
                b.ended
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, e)| !**e)
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
        for i in open {
            self.fail(SpanId(i), "interrupted");
        }
        let (prompt, completion, cost) = self
            .building
            .as_ref()
            .map(|b| {
                (
                    b.record.prompt_tokens,
                    b.record.completion_tokens,
                    b.record.cost_usd,
                )
            })
            .unwrap_or_default();
        self.attr(root, "flightdeck.usage.input_tokens", prompt);
        self.attr(root, "flightdeck.usage.output_tokens", completion);
        self.attr(root, "flightdeck.cost_usd", cost);
        let failed = matches!(status, "error" | "cancelled");
        self.end(
            root,
            if failed {
                SpanStatus::Error
            } else {
                SpanStatus::Ok
            },
        );
        if let Some(mut b) = self.building.take() {
            b.record.status = status.to_string();
            b.record.error_code = error_code.map(str::to_string);
            b.record.duration_us = b.record.spans[0].duration_us;
            (b.record.flagged, b.record.guardrail_rule) = guardrail_summary(&b.record.spans);
            self.sink.submit(b.record);
            self.sink.closed();
        }
    }

    /// Stores the run's input on the root span (redacted, truncated).
    pub fn input(&mut self, text: &str) {
        let root = self.root();
        self.payload_text(root, "input", text);
    }
}

/// What the trace list shows of a run's guardrails, read from its spans: whether the root
/// span says a guardrail flagged the run, and the rule that decided — the root's (the rule
/// that blocked the run), else the first span's whose verdict is a flag (`flag`,
/// `require_approval`, `withhold`).
fn guardrail_summary(spans: &[SpanRecord]) -> (bool, Option<String>) {
    fn attr<'a>(s: &'a SpanRecord, key: &str) -> Option<&'a AttrValue> {
        s.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    fn text<'a>(s: &'a SpanRecord, key: &str) -> Option<&'a str> {
        match attr(s, key)? {
            AttrValue::Str(v) if !v.is_empty() => Some(v.as_ref()),
            _ => None,
        }
    }
    let Some(root) = spans.first() else {
        return (false, None);
    };
    let flagged = attr(root, "flightdeck.guardrail.flagged") == Some(&AttrValue::Bool(true));
    let first_flag = || {
        spans.iter().skip(1).find_map(|s| {
            let verdict = text(s, "flightdeck.guardrail.verdict")?;
            matches!(verdict, "flag" | "require_approval" | "withhold")
                .then(|| text(s, "flightdeck.guardrail.rule"))
                .flatten()
        })
    };
    let rule =
        text(root, "flightdeck.guardrail.rule").or_else(|| flagged.then(first_flag).flatten());
    (flagged, rule.map(str::to_string))
}

impl Drop for RunTrace {
    fn drop(&mut self) {
        if self.building.is_some() {
            self.complete("cancelled", Some("cancelled"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{ToolCall, Usage};

    fn header() -> TraceHeader {
        TraceHeader {
            trace_id: TraceId::parse("tr_0123456789abcdef0123456789abcdef").expect("trace id"),
            tenant: "demo".into(),
            request_id: "req-1".into(),
            workflow: "faq".into(),
            user_id: Some("jane@example.com".into()),
            provider: "scripted",
            model: "scripted-v1".into(),
            policy_version: "guardrails-v3".into(),
            release_track: "stable".into(),
            release_version: "0.1.0".into(),
            release_git_sha: "abc".into(),
            started_at_ms: 1_700_000_000_000,
        }
    }

    fn policy() -> Arc<Policy> {
        Arc::new(Policy::load(None).expect("built-in policy"))
    }

    #[test]
    fn redacted_json_is_written_as_a_redacted_copy_would_serialize() {
        let redactor = crate::guardrails::Redactor::builtin();
        let value = serde_json::json!({
            "id": "T-1001",
            "body": "Mail jane.doe@acme-corp.com or call +1 415-555-0134.\nQuote \"x\" \\ tab\t é ✓",
            "nested": [null, true, 1.5, -3, 18446744073709551615u64, {"card": "4111 1111 1111 1111"}],
            "token: sk-abcdefghijklmnopqrstuvwxyz": "key names are not redacted",
            "empty": {},
            "list": [],
        });
        let mut copy = value.clone();
        assert!(
            !redactor.redact_json(&mut copy).is_empty(),
            "the fixture has PII"
        );
        let mut out = Vec::new();
        write_redacted(&mut out, &value, &redactor);
        assert_eq!(String::from_utf8(out).expect("utf-8"), copy.to_string());
    }

    fn attr<'a>(s: &'a SpanRecord, key: &str) -> Option<&'a AttrValue> {
        s.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    #[tokio::test]
    async fn records_a_tree_with_redacted_payloads_and_totals() {
        let sink = TraceSink::new(4);
        let mut rx = sink.take_receiver().expect("receiver");
        let mut t = RunTrace::begin(sink.clone(), policy(), header(), Instant::now());
        assert_eq!(sink.open_runs(), 1);
        t.input("mail me at jane@example.com");
        let llm = t.llm_start("scripted", "scripted-v1", 100);
        t.llm_end(
            llm,
            &ChatResponse {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "kb_search".into(),
                    arguments: serde_json::json!({"query": "jane@example.com"}),
                }],
                usage: Usage {
                    prompt_tokens: 10,
                    completion_tokens: 5,
                },
                model: "scripted-v1".into(),
                finish: crate::providers::Finish::ToolCalls,
                ..ChatResponse::default()
            },
            0.25,
        );
        let tool = t.tool_start(
            "kb_search",
            "c1",
            Some("read"),
            &serde_json::json!({"q": "x"}),
        );
        // Left open: a deadline cut the run short.
        let _ = tool;
        t.finish("budget_exceeded", None, Some("stopped"));
        assert_eq!(sink.open_runs(), 0);
        let rec = rx.try_recv().expect("a trace was submitted");
        assert_eq!(rec.status, "budget_exceeded");
        assert_eq!((rec.prompt_tokens, rec.completion_tokens), (10, 5));
        assert!((rec.cost_usd - 0.25).abs() < 1e-9);
        assert_eq!(rec.spans.len(), 3);
        let root_id = rec.spans[0].span_id.clone();
        assert!(
            rec.spans[1..]
                .iter()
                .all(|s| s.parent_span_id.as_deref() == Some(root_id.as_str()))
        );
        assert_eq!(rec.spans[2].status, SpanStatus::Error);
        assert_eq!(
            attr(&rec.spans[2], "error.type"),
            Some(&AttrValue::Str("interrupted".into()))
        );
        assert_eq!(
            attr(&rec.spans[1], "gen_ai.usage.input_tokens"),
            Some(&AttrValue::Int(10))
        );
        let all = crate::traces::spans_json(&rec.spans);
        let parsed: Vec<crate::traces::StoredSpan> =
            serde_json::from_str(&all).expect("the span document is JSON");
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].attributes["gen_ai.usage.input_tokens"], 10);
        assert_eq!(
            parsed[2].payload.as_ref().map(|p| p["arguments"].clone()),
            Some(serde_json::json!({"q": "x"}))
        );
        assert!(!all.contains("jane@example.com"), "PII stored: {all}");
        assert!(all.contains("kb_search"));
    }

    #[tokio::test]
    async fn a_dropped_run_is_recorded_as_cancelled() {
        let sink = TraceSink::new(4);
        let mut rx = sink.take_receiver().expect("receiver");
        drop(RunTrace::begin(
            sink.clone(),
            policy(),
            header(),
            Instant::now(),
        ));
        let rec = rx.try_recv().expect("a trace was submitted");
        assert_eq!(rec.status, "cancelled");
        assert_eq!(rec.spans[0].status, SpanStatus::Error);
        assert_eq!(sink.open_runs(), 0);
    }

    #[tokio::test]
    async fn a_full_channel_drops_and_counts() {
        let sink = TraceSink::new(1);
        let _rx = sink.take_receiver().expect("receiver");
        for _ in 0..3 {
            RunTrace::begin(sink.clone(), policy(), header(), Instant::now())
                .finish("success", None, None);
        }
        assert_eq!(sink.dropped(), 2);
        assert_eq!(sink.open_runs(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_drops_successful_runs_first_and_counts_each_kind() {
        let metrics = crate::metrics::Metrics::new();
        let sink = TraceSink::with_sampling(3, 1.0, crate::traces::SinkCounters::of(&metrics));
        let mut rx = sink.take_receiver().expect("receiver");
        let finish = |status: &'static str, answer: &str| {
            RunTrace::begin(sink.clone(), policy(), header(), Instant::now()).finish(
                status,
                None,
                Some(answer),
            );
        };
        for i in 0..3 {
            finish("success", &format!("s{i}"));
        }
        // Full of successful runs: another one is dropped, the others take their place.
        finish("success", "s3");
        finish("blocked", "b0");
        finish("error", "e0");
        finish("approval_required", "a0");
        // Nothing successful is left to give way: this one is dropped itself.
        finish("budget_exceeded", "x0");
        assert_eq!(sink.dropped(), 5);
        assert_eq!(sink.dropped_of("success"), 4);
        assert_eq!(sink.dropped_of("budget_exceeded"), 1);
        assert_eq!(sink.dropped_of("blocked"), 0);
        let answers: Vec<String> = std::iter::from_fn(|| rx.try_recv())
            .map(|t| {
                let root = &t.spans[0];
                format!("{}:{}", t.status, root.payload[0].1)
            })
            .collect();
        assert_eq!(
            answers,
            ["blocked:\"b0\"", "error:\"e0\"", "approval_required:\"a0\""],
            "the oldest successful runs gave way, in arrival order"
        );
        // Room again: a successful run is queued, behind nothing.
        finish("success", "s4");
        finish("degraded", "d0");
        let order: Vec<String> = rx.take(10).into_iter().map(|t| t.status).collect();
        assert_eq!(
            order,
            ["degraded", "success"],
            "other outcomes are written first"
        );
        let text = metrics.encode();
        assert!(
            text.contains("agent_traces_dropped_by_kind_total{kind=\"success\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("\nagent_traces_dropped_total 5\n"), "{text}");
        // Once the writer is gone, every trace is dropped and counted.
        drop(rx);
        finish("blocked", "b1");
        assert_eq!(sink.dropped_of("blocked"), 1);
        assert!(sink.take_receiver().is_none(), "one writer per process");
    }

    #[tokio::test]
    async fn a_half_full_channel_wakes_the_writer() {
        let sink = TraceSink::new(4);
        let _rx = sink.take_receiver().expect("receiver");
        let wait = std::time::Duration::from_millis(50);
        let finish = || {
            RunTrace::begin(sink.clone(), policy(), header(), Instant::now())
                .finish("success", None, None);
        };
        finish();
        assert!(
            tokio::time::timeout(wait, sink.backlog()).await.is_err(),
            "one of four queued: the writer waits for its tick"
        );
        finish();
        assert!(
            tokio::time::timeout(wait, sink.backlog()).await.is_ok(),
            "two of four queued: the writer is woken"
        );
        assert_eq!(sink.dropped(), 0);
    }

    #[tokio::test]
    async fn sampling_leaves_out_only_successful_runs() {
        let p = policy();
        let counters = crate::traces::SinkCounters::default();
        let (dropped, sampled_out) = (counters.dropped.clone(), counters.sampled_out.clone());
        let sink = TraceSink::with_sampling(16, 0.0, counters);
        let mut rx = sink.take_receiver().expect("receiver");
        let outcomes = [
            ("success", None),
            ("blocked", None),
            ("approval_required", None),
            ("budget_exceeded", None),
            ("degraded", None),
            ("error", Some("provider_unavailable")),
            ("success", None),
        ];
        for (status, code) in outcomes {
            RunTrace::begin(sink.clone(), p.clone(), header(), Instant::now())
                .finish(status, code, None);
        }
        // A run dropped mid-way (cancelled) is kept too.
        drop(RunTrace::begin(
            sink.clone(),
            p.clone(),
            header(),
            Instant::now(),
        ));
        let mut kept = Vec::new();
        while let Some(rec) = rx.try_recv() {
            kept.push(rec.status);
        }
        assert_eq!(
            kept,
            [
                "blocked",
                "approval_required",
                "budget_exceeded",
                "degraded",
                "error",
                "cancelled"
            ]
        );
        assert_eq!((sampled_out.get(), sink.sampled_out()), (2, 2));
        assert_eq!((dropped.get(), sink.dropped()), (0, 0));
        assert_eq!(sink.open_runs(), 0);
    }

    #[tokio::test]
    async fn the_default_rate_keeps_every_trace_and_a_half_rate_keeps_some() {
        let p = policy();
        let all = TraceSink::new(64);
        let mut rx = all.take_receiver().expect("receiver");
        for _ in 0..50 {
            RunTrace::begin(all.clone(), p.clone(), header(), Instant::now())
                .finish("success", None, None);
        }
        let mut n = 0;
        while rx.try_recv().is_some() {
            n += 1;
        }
        assert_eq!((n, all.sampled_out()), (50, 0));

        let half = TraceSink::with_sampling(512, 0.5, crate::traces::SinkCounters::default());
        let mut rx = half.take_receiver().expect("receiver");
        for _ in 0..400 {
            RunTrace::begin(half.clone(), p.clone(), header(), Instant::now())
                .finish("success", None, None);
        }
        let mut kept = 0u64;
        while rx.try_recv().is_some() {
            kept += 1;
        }
        assert_eq!(kept + half.sampled_out(), 400);
        // Binomial(400, 0.5): 120..=280 is more than 8 standard deviations wide.
        assert!(
            (120..=280).contains(&kept),
            "kept {kept} of 400 at rate 0.5"
        );
    }

    #[tokio::test]
    async fn drops_and_sampled_out_traces_show_in_metrics() {
        let p = policy();
        let metrics = crate::metrics::Metrics::new();
        let sink = TraceSink::with_sampling(1, 0.0, crate::traces::SinkCounters::of(&metrics));
        let _rx = sink.take_receiver().expect("receiver");
        // Three kept outcomes into a channel of one: two are dropped.
        for _ in 0..3 {
            RunTrace::begin(sink.clone(), p.clone(), header(), Instant::now())
                .finish("blocked", None, None);
        }
        RunTrace::begin(sink.clone(), p.clone(), header(), Instant::now())
            .finish("success", None, None);
        let text = metrics.encode();
        assert!(text.contains("\nagent_traces_dropped_total 2\n"), "{text}");
        assert!(
            text.contains("\nagent_traces_dropped_by_kind_total{kind=\"blocked\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("\nagent_traces_sampled_out_total 1\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_record_says_whether_a_guardrail_flagged_or_blocked_the_run() {
        let p = policy();
        let sink = TraceSink::with_sampling(16, 0.0, crate::traces::SinkCounters::default());
        let mut rx = sink.take_receiver().expect("receiver");

        // Flagged (a tool result, then the input's allow): kept although it succeeded and
        // the sample rate is 0; the rule is the flag's.
        let mut t = RunTrace::begin(sink.clone(), p.clone(), header(), Instant::now());
        let g = t.start("guardrail.input", SpanKind::Internal, t.root());
        t.guardrail(g, "allow", &[]);
        let tool = t.start("execute_tool kb_search", SpanKind::Internal, t.root());
        t.attr(tool, "flightdeck.guardrail.verdict", "flag");
        t.attr(
            tool,
            "flightdeck.guardrail.rule",
            "tool_result:prompt_injection",
        );
        t.end(tool, SpanStatus::Ok);
        let root = t.root();
        t.attr(root, "flightdeck.guardrail.flagged", true);
        t.finish("success", None, None);
        let rec = rx.try_recv().expect("a flagged run is not sampled out");
        assert!(rec.flagged);
        assert_eq!(
            rec.guardrail_rule.as_deref(),
            Some("tool_result:prompt_injection")
        );

        // Blocked: the root's rule, not flagged.
        let mut t = RunTrace::begin(sink.clone(), p.clone(), header(), Instant::now());
        let g = t.start("guardrail.input", SpanKind::Internal, t.root());
        t.guardrail(g, "block", &["jailbreak"]);
        let root = t.root();
        t.attr(root, "flightdeck.guardrail.rule", "jailbreak");
        t.finish("blocked", None, None);
        let rec = rx.try_recv().expect("blocked");
        assert!(!rec.flagged);
        assert_eq!(rec.guardrail_rule.as_deref(), Some("jailbreak"));

        // Nothing fired: a redaction is no flag, and a routine run is sampled out.
        let mut t = RunTrace::begin(sink.clone(), p.clone(), header(), Instant::now());
        let g = t.start("guardrail.output", SpanKind::Internal, t.root());
        t.guardrail(g, "redacted", &["email"]);
        t.finish("degraded", None, None);
        let rec = rx.try_recv().expect("degraded");
        assert_eq!((rec.flagged, rec.guardrail_rule), (false, None));
        RunTrace::begin(sink.clone(), p, header(), Instant::now()).finish("success", None, None);
        assert!(rx.try_recv().is_none());
        assert_eq!(sink.sampled_out(), 1);
    }

    #[test]
    fn span_ids_are_16_lower_case_hex_digits_and_never_zero() {
        let ids: Vec<String> = (0..200).map(|_| new_span_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 16, "{id}");
            assert!(
                id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
            assert_ne!(id, "0000000000000000");
        }
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "random ids repeat");
    }

    #[test]
    fn long_payloads_are_truncated_on_a_char_boundary() {
        let long = "é".repeat(MAX_PAYLOAD_CHARS + 10);
        let cut = truncate(&long);
        assert!(cut.starts_with(&"é".repeat(MAX_PAYLOAD_CHARS)));
        assert!(cut.ends_with("[truncated 10 characters]"), "{cut}");
        assert_eq!(truncate("short"), "short");
    }

    #[tokio::test]
    async fn span_timings_come_from_the_monotonic_clock() {
        let sink = TraceSink::new(4);
        let mut rx = sink.take_receiver().expect("receiver");
        let mut t = RunTrace::begin(sink, policy(), header(), Instant::now());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let g = t.start("guardrail.input", SpanKind::Internal, t.root());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        t.guardrail(g, "allow", &[]);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        t.finish("success", None, None);
        let rec = rx.try_recv().expect("trace");
        let (start, dur) = (rec.spans[1].start_us, rec.spans[1].duration_us);
        assert!(start >= 5_000, "{start}");
        assert!(dur >= 2_000, "{dur}");
        assert!(rec.duration_us >= start + dur + 3_000, "{rec:?}");
        assert_eq!(rec.spans[0].duration_us, rec.duration_us);
    }
}
