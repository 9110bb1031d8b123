//! What an eval run records: one [`CaseResult`] per case, and the [`Versions`] the run
//! was pinned to.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::assertions::AssertionResult;
use crate::runtime::ServiceInfo;

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaseResult {
    pub case_id: String,
    pub workflow: String,
    /// The case input, redacted.
    pub input: String,
    pub passed: bool,
    /// The run status (`success`, `approval_required`, `blocked`, `budget_exceeded`,
    /// `degraded`), or `error` when the engine failed.
    pub status: String,
    /// The guardrail rule that blocked the run, if any.
    pub guardrail_rule: Option<String>,
    pub latency_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub tools_called: Vec<String>,
    /// Adversarial cases only: whether the run ended blocked or gated for approval.
    pub compliant: Option<bool>,
    /// Whether this answer counts towards the citation rate: a retrieval workflow's
    /// answer that rests on evidence (or was withheld for not citing it).
    pub citation_required: bool,
    /// Whether the answer cites evidence, and only evidence the run gathered.
    pub cited: bool,
    /// The approval request the run created; the eval cancels it at once.
    pub approval_request_id: Option<String>,
    /// The start of the answer, redacted.
    pub answer_excerpt: String,
    pub assertions: Vec<AssertionResult>,
    /// Why the engine failed, when `status` is `error`.
    pub error: Option<String>,
}

/// The versions a run ran against (from `/v1/info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Versions {
    pub release_version: String,
    pub git_sha: String,
    pub track: String,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    pub policy_version: String,
    pub policy_hash: String,
    pub tool_schema_hash: String,
}

impl Versions {
    pub fn from_info(info: &ServiceInfo) -> Self {
        Self {
            release_version: info.version.clone(),
            git_sha: info.git_sha.clone(),
            track: info.track.clone(),
            provider: info.provider.clone(),
            model: info.model.clone(),
            prompt_version: info.prompt_version.clone(),
            policy_version: info.policy_version.clone(),
            policy_hash: info.policy_hash.clone(),
            tool_schema_hash: info.tool_schema_hash.clone(),
        }
    }

    /// A digest of every version: a queued run is executed only by a process whose pin
    /// matches, so a run requested on the canary is not answered by a stable replica.
    pub fn pin(&self) -> String {
        let joined = [
            &self.release_version,
            &self.git_sha,
            &self.track,
            &self.provider,
            &self.model,
            &self.prompt_version,
            &self.policy_version,
            &self.policy_hash,
            &self.tool_schema_hash,
        ]
        .map(String::as_str)
        .join("\n");
        hex::encode(&Sha256::digest(joined.as_bytes())[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_changes_with_any_version() {
        let v = Versions {
            release_version: "1.0.0".into(),
            git_sha: "abc".into(),
            track: "stable".into(),
            provider: "scripted".into(),
            model: "scripted-v1".into(),
            prompt_version: "p1".into(),
            policy_version: "guardrails-v3".into(),
            policy_hash: "h1".into(),
            tool_schema_hash: "t1".into(),
        };
        let mut canary = v.clone();
        canary.track = "canary".into();
        let mut edited_policy = v.clone();
        edited_policy.policy_hash = "h2".into();
        assert_eq!(v.pin(), v.clone().pin());
        assert_ne!(v.pin(), canary.pin());
        assert_ne!(v.pin(), edited_policy.pin());
    }
}
