//! Versioned guardrails: the input scan and its policy decisions, output and tool-result
//! helpers, and redaction of personal data and secrets (whole texts and streams).
//!
//! - `policy`: the policy file (`policies/guardrails-v4.toml` is the embedded default) and
//!   the decisions on inputs ([`Policy::scan_input`]: allow, flag, require approval, block,
//!   with a score and reasons) and on tool results ([`Policy::scan_tool_result`]).
//! - `normalise`, `decode`, `scan`: the layered scan — normalisation that decodes hidden
//!   text, embedded payload decoding, structural signals and the n-gram model
//!   (`guardrails-data/model/`, trained by `guardrails-data/train.py`).
//! - `literals`: literal gates, one pass over a text for the literals patterns require, so
//!   that the scan's phrase rules and the policy's pattern sets run only where they can match.
//! - `output`: link neutralisation for answers, system-prompt leak detection, and
//!   [`spotlight`] to hand tool output to the model as delimited data.
//! - `redact`: the PII and secret patterns and the [`Redactor`]; the same redactor runs
//!   on answers, trace payloads, approvals, audit details and every log line.
//! - `stream`: the [`StreamRedactor`] that filters model output as it streams.
//! - `measure`: the corpus measurement behind `agent-service guardrails measure` and the
//!   held-out regression test.
//!
//! Rule names are metric labels (`agent_guardrail_blocks_total{rule}`): `input_too_large`,
//! `prompt_injection`, `jailbreak`, `system_prompt_exfiltration`, `data_exfiltration`,
//! `blocked_topic:<name>` for input decisions, and [`Rule::as_str`] for redactions.

mod decode;
mod literals;
pub mod measure;
mod normalise;
mod output;
mod policy;
mod redact;
mod scan;
mod stream;

pub use decode::{Decoded, Encoding, decode_payloads};
pub use normalise::{Normalised, Tricks, normalise};
pub use output::{Leak, LinkStream, Neutralised, OutputRules, spotlight, spotlit_data};
pub use policy::{
    Action, Block, InputDecision, Policy, PolicyError, ToolResultAction, ToolResultDecision,
    ToolResultRules,
};
pub use redact::{Redacted, Redactor, Rule};
pub use scan::{Category, Features, Model, Reason, Scan, Signal, analyse, features, scan};
pub use stream::StreamRedactor;
