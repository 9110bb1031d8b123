//! Logging setup (zero2prod style): one `get_subscriber` that production points at stdout
//! and tests at a buffer, and `init_subscriber` to install it.
//!
//! The JSON format writes one object per line: `timestamp` (RFC 3339), `level`, `target`,
//! `message`, the innermost `span` name, the static fields (service, version, track,
//! policy version), the fields of every span in scope flattened outer to inner (so the
//! request span's `request_id`, `tenant`, `workflow` are on every line of that request,
//! including fields recorded later with `Span::record`), then the event's own fields.
//!
//! **Invariant:** nothing reaches the sink unredacted. Redaction lives in the subscriber,
//! not at call sites: every formatted line, in both formats, passes through
//! [`Redactor::redact`] on its way to the sink, and the JSON format also redacts each value
//! before serialising it (so a match never straddles JSON syntax or escapes).

use std::fmt;
use std::io::{self, Write};

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;
use crate::guardrails::Redactor;

/// Keys the JSON format writes itself; fields of the same name do not override them.
const RESERVED: [&str; 5] = ["timestamp", "level", "target", "message", "span"];

/// Builds the subscriber: `filter` is an `EnvFilter` directive (e.g. `info` or
/// `agent_service=debug,tower_http=info`; an invalid one falls back to `info`, so validate
/// it with [`check_filter`] when reading configuration).
pub fn get_subscriber<W>(
    filter: &str,
    format: LogFormat,
    static_fields: Vec<(&'static str, String)>,
    redactor: Redactor,
    sink: W,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = RedactingMakeWriter::new(sink, redactor.clone());
    let (json, pretty) = match format {
        LogFormat::Json => (Some(JsonLayer::new(writer, static_fields, redactor)), None),
        LogFormat::Pretty => (
            None,
            // No ANSI colours: escape codes next to a value would hide it from redaction.
            Some(
                tracing_subscriber::fmt::layer()
                    .pretty()
                    .with_ansi(false)
                    .with_writer(writer),
            ),
        ),
    };
    Registry::default().with(env_filter).with(json).with(pretty)
}

/// Installs `subscriber` as the global default and routes `log` records into it. If a
/// global subscriber is already installed (a second call), that one stays and this says so
/// on stderr: the only place left to say it.
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync + 'static) {
    if let Err(e) = subscriber.try_init() {
        eprintln!("agent-service: logging was already initialised; keeping it ({e})");
    }
}

/// Whether `filter` is a valid `EnvFilter` directive; the error says what is wrong.
pub fn check_filter(filter: &str) -> Result<(), String> {
    EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| format!("LOG_LEVEL {filter:?} is not a valid log filter: {e}"))
}

// ---------------------------------------------------------------------------------------
// Redacting sink

/// Wraps a sink so that every line written through it is redacted first.
#[derive(Debug)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    redactor: Redactor,
}

impl<M> RedactingMakeWriter<M> {
    pub fn new(inner: M, redactor: Redactor) -> Self {
        Self { inner, redactor }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer(), &self.redactor)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer_for(meta), &self.redactor)
    }
}

/// Buffers what one event writes and, when dropped (or flushed), writes it redacted.
/// Formatters write an event through one writer and drop it, so a secret never straddles
/// two redaction passes.
pub struct RedactingWriter<'a, W: Write> {
    inner: W,
    redactor: &'a Redactor,
    buf: Vec<u8>,
}

impl<'a, W: Write> RedactingWriter<'a, W> {
    fn new(inner: W, redactor: &'a Redactor) -> Self {
        Self {
            inner,
            redactor,
            buf: Vec::new(),
        }
    }

    fn write_redacted(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let redacted = self.redactor.redact(&text);
        let result = self.inner.write_all(redacted.text.as_bytes());
        self.buf.clear();
        result
    }
}

impl<W: Write> Write for RedactingWriter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_redacted()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<'_, W> {
    fn drop(&mut self) {
        // Nowhere to report a failed log write; the line is dropped.
        let _ = self.write_redacted();
    }
}

// ---------------------------------------------------------------------------------------
// JSON format

/// The fields recorded on a span so far, kept in its extensions.
#[derive(Debug, Default)]
struct SpanFields(Vec<(&'static str, Value)>);

/// Ordered JSON fields where a later value replaces an earlier one of the same key.
#[derive(Debug, Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn put(&mut self, key: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
}

struct Recorder<'a>(&'a mut Fields);

impl Visit for Recorder<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.put(field.name(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.put(field.name(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.put(field.name(), value.into());
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.0.put(field.name(), value.to_string().into());
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.put(field.name(), value.to_string().into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.put(field.name(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.put(field.name(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.put(field.name(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.put(field.name(), format!("{value:?}").into());
    }
}

/// Formats events as JSON lines and keeps span fields for flattening.
struct JsonLayer<M> {
    writer: M,
    static_fields: Vec<(&'static str, Value)>,
    redactor: Redactor,
}

impl<M> JsonLayer<M> {
    fn new(writer: M, static_fields: Vec<(&'static str, String)>, redactor: Redactor) -> Self {
        Self {
            writer,
            static_fields: static_fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
            redactor,
        }
    }
}

impl<S, M> Layer<S> for JsonLayer<M>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    M: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut Recorder(&mut fields));
        span.extensions_mut().insert(SpanFields(fields.0));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let mut fields = Fields(
            extensions
                .remove::<SpanFields>()
                .map(|f| f.0)
                .unwrap_or_default(),
        );
        values.record(&mut Recorder(&mut fields));
        extensions.insert(SpanFields(fields.0));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut own = Fields::default();
        event.record(&mut Recorder(&mut own));
        let message = own
            .0
            .iter()
            .position(|(k, _)| *k == "message")
            .map(|i| own.0.remove(i).1)
            .unwrap_or_else(|| Value::String(String::new()));

        let mut line = Fields::default();
        line.put(
            "timestamp",
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.put("level", meta.level().as_str().into());
        line.put("target", meta.target().into());
        line.put("message", message);
        let mut rest = Fields::default();
        for (k, v) in &self.static_fields {
            rest.put(k, v.clone());
        }
        if let Some(scope) = ctx.event_scope(event) {
            let mut innermost = None;
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &fields.0 {
                        rest.put(k, v.clone());
                    }
                }
                innermost = Some(span.name());
            }
            if let Some(name) = innermost {
                line.put("span", name.into());
            }
        }
        for (k, v) in own.0 {
            rest.put(k, v);
        }
        for (k, v) in rest.0 {
            if !RESERVED.contains(&k) {
                line.put(k, v);
            }
        }

        let mut buf = Vec::with_capacity(256);
        buf.push(b'{');
        for (i, (k, v)) in line.0.iter_mut().enumerate() {
            self.redactor.redact_json(v);
            if i > 0 {
                buf.push(b',');
            }
            // Writing into a Vec cannot fail, and a str and a Value always serialise.
            let _ = serde_json::to_writer(&mut buf, k);
            buf.push(b':');
            let _ = serde_json::to_writer(&mut buf, v);
        }
        buf.extend_from_slice(b"}\n");
        let mut writer = self.writer.make_writer_for(meta);
        // Nowhere to report a failed log write; the line is dropped.
        let _ = writer.write_all(&buf);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::{info, info_span, warn};

    use super::*;

    /// A sink that captures everything written into a shared buffer.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Capture {
        fn text(&self) -> String {
            let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8(bytes).unwrap_or_default()
        }

        fn json_lines(&self) -> Vec<serde_json::Map<String, Value>> {
            self.text()
                .lines()
                .map(|l| match serde_json::from_str(l) {
                    Ok(Value::Object(map)) => map,
                    other => panic!("not a JSON object line: {l:?} ({other:?})"),
                })
                .collect()
        }
    }

    impl Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn statics() -> Vec<(&'static str, String)> {
        vec![
            ("service", "agent-service".into()),
            ("version", "0.1.0".into()),
            ("track", "canary".into()),
            ("policy_version", "guardrails-v3".into()),
        ]
    }

    fn capture(format: LogFormat, f: impl FnOnce()) -> Capture {
        let sink = Capture::default();
        let subscriber =
            get_subscriber("info", format, statics(), Redactor::builtin(), sink.clone());
        tracing::subscriber::with_default(subscriber, f);
        sink
    }

    #[test]
    fn json_lines_have_the_base_fields_and_static_fields() {
        let sink = capture(LogFormat::Json, || {
            info!("starting");
            warn!(port = 8080, ready = true, "listening");
            tracing::debug!("filtered out at info");
        });
        let lines = sink.json_lines();
        assert_eq!(lines.len(), 2, "{}", sink.text());
        for line in &lines {
            let ts = line["timestamp"].as_str().unwrap_or_default();
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
                "timestamp {ts:?}"
            );
            assert_eq!(line["target"], "agent_service::telemetry::tests");
            for (k, v) in statics() {
                assert_eq!(line[k], v.as_str(), "{k} on every line");
            }
        }
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "starting");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["message"], "listening");
        assert_eq!(lines[1]["port"], 8080);
        assert_eq!(lines[1]["ready"], true);
        assert!(!lines[0].contains_key("span"));
    }

    #[test]
    fn span_fields_are_flattened_outer_to_inner() {
        let sink = capture(LogFormat::Json, || {
            let request = info_span!(
                "request",
                request_id = "req-1",
                tenant = "demo",
                workflow = tracing::field::Empty,
                policy_version = "guardrails-v3",
            );
            let _entered = request.enter();
            info!("before record");
            request.record("workflow", "faq");
            info_span!("tool", tool = "lookup_ticket", tenant = "inner-wins").in_scope(|| {
                info!(attempt = 2, "calling tool");
            });
            info!("after tool");
        });
        let lines = sink.json_lines();
        assert_eq!(lines.len(), 3, "{}", sink.text());
        // (line, key, expected value or null when absent)
        let expectations: &[(usize, &str, Value)] = &[
            (0, "request_id", "req-1".into()),
            (0, "tenant", "demo".into()),
            (0, "workflow", Value::Null),
            (0, "span", "request".into()),
            (1, "request_id", "req-1".into()),
            (1, "workflow", "faq".into()),
            (1, "tool", "lookup_ticket".into()),
            (1, "tenant", "inner-wins".into()),
            (1, "attempt", 2.into()),
            (1, "span", "tool".into()),
            (1, "policy_version", "guardrails-v3".into()),
            (2, "tool", Value::Null),
            (2, "tenant", "demo".into()),
            (2, "workflow", "faq".into()),
        ];
        for (i, key, expected) in expectations {
            assert_eq!(
                lines[*i].get(*key).unwrap_or(&Value::Null),
                expected,
                "line {i} key {key}"
            );
        }
    }

    /// A log call, and what must be absent from and present in the output.
    type Case = (fn(), &'static [&'static str], &'static [&'static str]);

    const REDACTION_CASES: &[Case] = &[
        (
            || info!("user bob@example.com paid"),
            &["bob@example.com"],
            &["[REDACTED:email]"],
        ),
        (
            || info!(card = "4111 1111 1111 1111", "payment"),
            &["4111 1111 1111 1111"],
            &["[REDACTED:card_number]"],
        ),
        (
            || info!(header = ?"Bearer abcdef123456ghijkl", "auth"),
            &["abcdef123456ghijkl"],
            &["[REDACTED:bearer_token]"],
        ),
        (
            || {
                info_span!("request", user = "carol@example.org")
                    .in_scope(|| info!("line\nwith carol@example.org and api_key=abc123xyz789"))
            },
            &["carol@example.org", "abc123xyz789"],
            &["[REDACTED:email]", "[REDACTED:api_key]"],
        ),
    ];

    #[test]
    fn secrets_are_redacted_in_both_formats() {
        for format in [LogFormat::Json, LogFormat::Pretty] {
            for (log, absent, present) in REDACTION_CASES {
                let out = capture(format, *log).text();
                assert!(!out.is_empty(), "{format:?}: nothing logged");
                for secret in *absent {
                    assert!(!out.contains(secret), "{format:?} leaked {secret:?}: {out}");
                }
                for tag in *present {
                    assert!(out.contains(tag), "{format:?}: {tag:?} missing in {out}");
                }
                if format == LogFormat::Json {
                    assert!(
                        !Capture(Arc::new(Mutex::new(out.into_bytes())))
                            .json_lines()
                            .is_empty()
                    );
                }
            }
        }
    }

    #[test]
    fn redacting_writer_buffers_until_flush() {
        let sink = Capture::default();
        let make = RedactingMakeWriter::new(sink.clone(), Redactor::builtin());
        let mut w = make.make_writer();
        w.write_all(b"mail bob@exa").expect("buffered");
        w.write_all(b"mple.com\n").expect("buffered");
        assert_eq!(sink.text(), "");
        w.flush().expect("flushed");
        assert_eq!(sink.text(), "mail [REDACTED:email]\n");
        drop(w);
        assert_eq!(
            sink.text(),
            "mail [REDACTED:email]\n",
            "nothing written twice"
        );
    }

    #[test]
    fn filters() {
        assert!(check_filter("info").is_ok());
        assert!(check_filter("agent_service=debug,tower_http=warn").is_ok());
        let err = check_filter("info,=[").expect_err("invalid");
        assert!(err.starts_with("LOG_LEVEL \"info,=[\""), "{err}");
    }
}
