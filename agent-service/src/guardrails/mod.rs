//! Versioned guardrails (SPEC 2.4): input checks, output redaction, streaming redaction.
//! INTERFACE STUB — being implemented; signatures are the contract.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use crate::domain::PolicyVersion;

/// Why an input was refused. `rule` is the metric label (`agent_guardrail_blocks_total{rule}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub rule: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
#[error("guardrail policy {path}: {message}")]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

/// Redacts PII and secrets. Cheap to clone (shared compiled patterns).
#[derive(Clone, Debug)]
pub struct Redactor {
    _inner: Arc<()>,
}

/// The result of redacting one text: the text and the rules that fired (metric labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<'a> {
    pub text: Cow<'a, str>,
    pub rules: Vec<&'static str>,
}

impl Redactor {
    /// The built-in patterns (also used by the log writer before any policy is loaded).
    pub fn builtin() -> Self {
        unimplemented!()
    }
    pub fn redact<'a>(&self, _text: &'a str) -> Redacted<'a> {
        unimplemented!()
    }
    /// Redacts every string inside a JSON value, in place; returns the rules that fired.
    pub fn redact_json(&self, _v: &mut serde_json::Value) -> Vec<&'static str> {
        unimplemented!()
    }
    pub fn stream(&self) -> StreamRedactor {
        unimplemented!()
    }
}

/// Redacts a text that arrives in chunks, holding back enough of the tail that a pattern
/// split across chunks is still caught.
pub struct StreamRedactor {}

impl StreamRedactor {
    /// Feeds a chunk; returns the redacted text that is now safe to emit (may be empty).
    pub fn push(&mut self, _chunk: &str) -> String {
        unimplemented!()
    }
    /// Ends the stream; returns the redacted remainder.
    pub fn finish(&mut self) -> String {
        unimplemented!()
    }
    /// Rules that fired so far.
    pub fn rules(&self) -> &[&'static str] {
        unimplemented!()
    }
}

/// A loaded guardrail policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub version: PolicyVersion,
    pub max_input_chars: usize,
    pub redactor: Redactor,
}

impl Policy {
    /// Loads the policy file at `path`, or the embedded `guardrails-v3` when `None`.
    pub fn load(_path: Option<&Path>) -> Result<Self, PolicyError> {
        unimplemented!()
    }
    /// Input rules: size limit, prompt injection, system-prompt exfiltration, blocked topics.
    pub fn check_input(&self, _text: &str) -> Result<(), Block> {
        unimplemented!()
    }
    /// Whether answers of this workflow must cite evidence.
    pub fn citation_required(&self, _workflow: &str) -> bool {
        unimplemented!()
    }
    /// A stable hash of the policy's content, for `/v1/info` and the config hash.
    pub fn hash(&self) -> String {
        unimplemented!()
    }
}
