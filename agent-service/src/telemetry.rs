//! STUB placed by the lead so the crate compiles; the guardrails/telemetry owner replaces
//! this file entirely (keep these two signatures).
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;
use crate::guardrails::Redactor;

pub fn get_subscriber<W>(
    filter: &str,
    _format: LogFormat,
    _static_fields: Vec<(&'static str, String)>,
    _redactor: Redactor,
    sink: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(sink).finish()
}

pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}
