//! Stored traces: every run is recorded as a tree of spans (the request, guardrail checks,
//! each LLM call with OpenTelemetry GenAI attributes, each tool call, approval creation),
//! handed to a background writer over a bounded queue (when it is full, the traces of
//! successful runs no guardrail flagged are dropped first), stored in batches, listed at
//! `/v1/traces`, exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and
//! deleted after `TRACE_RETENTION_DAYS`.
//!
//! Invariant: a payload (input, answer, tool arguments and results) enters a
//! [`SpanRecord`] only through the recorder, which redacts and truncates it first.

pub mod otlp;
pub mod recorder;
pub mod repository;
pub mod retention;
pub mod writer;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::metrics::{KindLabels, Metrics};

pub use recorder::{RunTrace, SpanId, TraceHeader};

/// How many finished traces may wait for the writer before some are dropped, unless
/// `TRACE_QUEUE_CAPACITY` says otherwise: ten flush intervals at 1,000 traces/s, a few MB
/// at most.
pub const CHANNEL_CAPACITY: usize = 1024;

/// Every status a stored trace can have: the five run outcomes, `error` (the run ended
/// with an error envelope; `error_code` says which) and `cancelled` (the caller went away
/// before the run finished).
pub const STATUSES: [&str; 7] = [
    "success",
    "approval_required",
    "blocked",
    "budget_exceeded",
    "degraded",
    "error",
    "cancelled",
];

/// An attribute value, typed as OTLP types them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    Str(Cow<'static, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    StrList(Vec<String>),
}

impl From<&'static str> for AttrValue {
    fn from(v: &'static str) -> Self {
        Self::Str(Cow::Borrowed(v))
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        Self::Str(Cow::Owned(v))
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<u32> for AttrValue {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}
impl From<usize> for AttrValue {
    fn from(v: usize) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<Vec<String>> for AttrValue {
    fn from(v: Vec<String>) -> Self {
        Self::StrList(v)
    }
}

/// The OpenTelemetry span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal,
    Server,
    Client,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStatus {
    Ok,
    Error,
}

impl SpanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// One finished span. Times are microseconds from the start of its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// 16 hex digits, as OTLP wants them.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub status: SpanStatus,
    pub start_us: i64,
    pub duration_us: i64,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// Each value is JSON text, redacted and truncated by the recorder.
    pub payload: Vec<(&'static str, String)>,
}

fn push_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing a plain value to a Vec cannot fail; a non-finite float is written as null.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// The stored span document of a trace: a JSON array with one object per span
/// (`span_id`, `parent_span_id`, `name`, `kind`, `status`, `start_us`, `duration_us`,
/// `attributes`, `payload`), written straight from the records without building values.
pub fn spans_json(spans: &[SpanRecord]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(256 * spans.len() + 2);
    out.push(b'[');
    for (i, s) in spans.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"span_id\":");
        push_json(&mut out, &s.span_id);
        out.extend_from_slice(b",\"parent_span_id\":");
        push_json(&mut out, &s.parent_span_id);
        out.extend_from_slice(b",\"name\":");
        push_json(&mut out, &s.name);
        out.extend_from_slice(b",\"kind\":");
        push_json(&mut out, s.kind.as_str());
        out.extend_from_slice(b",\"status\":");
        push_json(&mut out, s.status.as_str());
        out.extend_from_slice(b",\"start_us\":");
        push_json(&mut out, &s.start_us);
        out.extend_from_slice(b",\"duration_us\":");
        push_json(&mut out, &s.duration_us);
        out.extend_from_slice(b",\"attributes\":{");
        for (j, (k, v)) in s.attributes.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            push_json(&mut out, k);
            out.push(b':');
            push_json(&mut out, v);
        }
        out.extend_from_slice(b"},\"payload\":");
        if s.payload.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            out.push(b'{');
            for (j, (k, v)) in s.payload.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                push_json(&mut out, k);
                out.push(b':');
                out.extend_from_slice(v.as_bytes());
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
    out.push(b']');
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// One span as stored and read back. Times are microseconds from the trace start.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct StoredSpan {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub start_us: i64,
    pub duration_us: i64,
    pub attributes: Value,
    pub payload: Option<Value>,
}

/// One finished run: the summary row and its spans (the root span first).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    pub trace_id: String,
    pub tenant: String,
    pub request_id: String,
    pub workflow: String,
    /// One of [`STATUSES`].
    pub status: String,
    pub error_code: Option<String>,
    /// Unix milliseconds (wall clock at the start of the run).
    pub started_at_ms: i64,
    pub duration_us: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
    pub model: String,
    pub provider: String,
    /// A guardrail flagged the run's input or one of its tool results (the root span's
    /// `flightdeck.guardrail.flagged`).
    pub flagged: bool,
    /// The guardrail rule that blocked the run, else the rule of its first flag; `None`
    /// when no guardrail fired.
    pub guardrail_rule: Option<String>,
    pub spans: Vec<SpanRecord>,
}

/// The counters a [`TraceSink`] keeps: every trace dropped (`agent_traces_dropped_total`),
/// the same by the run's status (`agent_traces_dropped_by_kind_total{kind}`), and
/// successful runs left out by the sample rate (`agent_traces_sampled_out_total`).
#[derive(Clone, Default)]
pub struct SinkCounters {
    pub dropped: Counter,
    pub dropped_by_kind: Family<KindLabels, Counter>,
    pub sampled_out: Counter,
}

impl SinkCounters {
    /// The process's series in `metrics`.
    pub fn of(metrics: &Metrics) -> Self {
        Self {
            dropped: metrics.traces_dropped.clone(),
            dropped_by_kind: metrics.traces_dropped_by_kind.clone(),
            sampled_out: metrics.traces_sampled_out.clone(),
        }
    }
}

/// Whether a trace is the first to go when the queue is full (and the only kind the
/// sample rate leaves out): a successful run's that no guardrail flagged. Every other
/// outcome (error, blocked, approval required, budget exceeded, degraded, cancelled) and a
/// flagged run are what an operator looks for after an incident.
fn is_routine(trace: &TraceRecord) -> bool {
    trace.status == "success" && !trace.flagged
}

/// The finished traces waiting for the writer: routine runs' (see [`is_routine`]) and the
/// rest apart, so a full queue gives up a routine trace before any other.
struct Queue {
    /// Every trace but the routine ones; the writer takes these first.
    kept: VecDeque<TraceRecord>,
    routine: VecDeque<TraceRecord>,
    capacity: usize,
    /// The writer has stopped: nothing is queued any more.
    closed: bool,
}

impl Queue {
    fn len(&self) -> usize {
        self.kept.len() + self.routine.len()
    }
}

/// Why a trace was not queued.
#[derive(Debug, Clone, Copy)]
enum DropReason {
    Behind,
    Stopped,
}

/// The sending side of the trace queue, shared by every run of a process. Sending never
/// waits: when the writer falls behind and the queue is full, a trace is dropped and
/// counted — a routine one first (a successful run no guardrail flagged): any other takes
/// the place of the oldest queued routine trace, and is dropped itself only when none is
/// left. With a sample rate below 1, only that fraction of routine runs is kept; every
/// other outcome, and every flagged run, is always kept.
#[derive(Clone)]
pub struct TraceSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    queue: Mutex<Queue>,
    receiver_taken: AtomicBool,
    open: AtomicUsize,
    counters: SinkCounters,
    sample_rate: f64,
    /// Wakes the writer before its next tick once the queue is half full.
    backlog: Notify,
}

/// The receiving side: the one writer of a process takes finished traces from it. When it
/// is dropped (the writer stopped), traces submitted later are dropped and counted.
pub struct TraceReceiver {
    sink: TraceSink,
}

impl TraceReceiver {
    /// The next trace, other outcomes before successful runs'; `None` when none waits.
    pub fn try_recv(&mut self) -> Option<TraceRecord> {
        let mut q = self.sink.lock();
        q.kept.pop_front().or_else(|| q.routine.pop_front())
    }

    /// Up to `max` waiting traces, other outcomes first, without waiting for more.
    pub fn take(&mut self, max: usize) -> Vec<TraceRecord> {
        let mut q = self.sink.lock();
        let from_kept = q.kept.len().min(max);
        let mut batch: Vec<TraceRecord> = q.kept.drain(..from_kept).collect();
        let from_routine = q.routine.len().min(max - batch.len());
        batch.extend(q.routine.drain(..from_routine));
        batch
    }
}

impl Drop for TraceReceiver {
    fn drop(&mut self) {
        let mut guard = self.sink.lock();
        guard.closed = true;
        let q = &mut *guard;
        let left: Vec<TraceRecord> = q.kept.drain(..).chain(q.routine.drain(..)).collect();
        drop(guard);
        for t in left {
            self.sink.count_drop(&t.status, DropReason::Stopped);
        }
    }
}

impl TraceSink {
    /// A sink that keeps every trace, with counters of its own.
    pub fn new(capacity: usize) -> Self {
        Self::with_sampling(capacity, 1.0, SinkCounters::default())
    }

    /// A sink keeping `sample_rate` (clamped to 0..=1) of successful runs' traces, with a
    /// queue of `capacity` traces, counting drops and sampled-out traces on `counters`
    /// (the process's metrics).
    pub fn with_sampling(capacity: usize, sample_rate: f64, counters: SinkCounters) -> Self {
        let sample_rate = if sample_rate.is_nan() {
            1.0
        } else {
            sample_rate.clamp(0.0, 1.0)
        };
        Self {
            inner: Arc::new(SinkInner {
                queue: Mutex::new(Queue {
                    kept: VecDeque::new(),
                    routine: VecDeque::new(),
                    capacity: capacity.max(1),
                    closed: false,
                }),
                receiver_taken: AtomicBool::new(false),
                open: AtomicUsize::new(0),
                counters,
                sample_rate,
                backlog: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves the queues consistent (each step is one
        // push or pop), so a poisoned lock is used as it is.
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a finished run is stored: always, unless it is routine (succeeded, not
    /// flagged) and the sample rate leaves it out.
    fn keeps(&self, trace: &TraceRecord) -> bool {
        let rate = self.inner.sample_rate;
        !is_routine(trace) || rate >= 1.0 || (rate > 0.0 && rand::random::<f64>() < rate)
    }

    /// Traces of routine runs (successful, not flagged) left out by the sample rate.
    pub fn sampled_out(&self) -> u64 {
        self.inner.counters.sampled_out.get()
    }

    /// The receiving side, for the one writer of this process (`None` once taken).
    pub fn take_receiver(&self) -> Option<TraceReceiver> {
        if self.inner.receiver_taken.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(TraceReceiver { sink: self.clone() })
    }

    /// Runs that have started recording and not yet submitted their trace.
    pub fn open_runs(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// Traces dropped because the queue was full or the writer had stopped.
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.get()
    }

    /// Traces of runs that ended with `status` dropped so far.
    pub fn dropped_of(&self, status: &str) -> u64 {
        self.inner
            .counters
            .dropped_by_kind
            .get_or_create(&KindLabels {
                kind: status.to_string(),
            })
            .get()
    }

    /// Resolves when the queue has filled to half its capacity since the writer last
    /// waited here (or at once if it did while nobody waited).
    pub async fn backlog(&self) {
        self.inner.backlog.notified().await;
    }

    fn opened(&self) {
        self.inner.open.fetch_add(1, Ordering::SeqCst);
    }

    fn closed(&self) {
        self.inner.open.fetch_sub(1, Ordering::SeqCst);
    }

    fn submit(&self, trace: TraceRecord) {
        if !self.keeps(&trace) {
            self.inner.counters.sampled_out.inc();
            return;
        }
        let mut q = self.lock();
        if q.closed {
            drop(q);
            return self.count_drop(&trace.status, DropReason::Stopped);
        }
        let routine = is_routine(&trace);
        if q.len() >= q.capacity {
            if routine {
                drop(q);
                return self.count_drop(&trace.status, DropReason::Behind);
            }
            // Full: the oldest successful run's trace makes room for this one, if any is
            // left; otherwise this one is dropped.
            let Some(evicted) = q.routine.pop_front() else {
                drop(q);
                return self.count_drop(&trace.status, DropReason::Behind);
            };
            q.kept.push_back(trace);
            drop(q);
            return self.count_drop(&evicted.status, DropReason::Behind);
        }
        if routine {
            q.routine.push_back(trace);
        } else {
            q.kept.push_back(trace);
        }
        // Past half full, the writer is woken rather than left to its timer: under load
        // the queue would otherwise fill up between two ticks and drop traces.
        let wake = q.len() * 2 >= q.capacity;
        drop(q);
        if wake {
            self.inner.backlog.notify_one();
        }
    }

    fn count_drop(&self, status: &str, reason: DropReason) {
        let counters = &self.inner.counters;
        counters
            .dropped_by_kind
            .get_or_create(&KindLabels {
                kind: status.to_string(),
            })
            .inc();
        let n = counters.dropped.inc() + 1;
        let reason = match reason {
            DropReason::Behind => "the trace writer is behind",
            DropReason::Stopped => "the trace writer has stopped",
        };
        if n == 1 || n.is_multiple_of(1000) {
            tracing::warn!(
                dropped_total = n,
                status,
                reason,
                "trace dropped instead of delaying the request"
            );
        }
    }
}

impl Default for TraceSink {
    fn default() -> Self {
        Self::new(CHANNEL_CAPACITY)
    }
}
