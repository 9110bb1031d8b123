//! Versioned guardrails: input checks, output redaction, streaming redaction.
//!
//! - `policy`: the policy file (`policies/guardrails-v3.toml` is the embedded default)
//!   and the input rules: size limit, prompt injection, system-prompt exfiltration and
//!   blocked topics.
//! - `redact`: the PII and secret patterns and the [`Redactor`]; the same redactor runs
//!   on answers, trace payloads and every log line (see `crate::telemetry`).
//! - `stream`: the [`StreamRedactor`] that filters model output as it streams.
//!
//! Rule names are metric labels (`agent_guardrail_blocks_total{rule}`): `input_too_large`,
//! `prompt_injection`, `system_prompt_exfiltration`, `blocked_topic:<name>` for blocks,
//! and [`Rule::as_str`] for redactions.

mod policy;
mod redact;
mod stream;

pub use policy::{Block, Policy, PolicyError};
pub use redact::{Redacted, Redactor, Rule};
pub use stream::StreamRedactor;
