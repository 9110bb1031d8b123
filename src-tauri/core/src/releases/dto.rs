//! The Releases IPC contract: the shapes the command layer sends to the UI (and the UI
//! sends back), exactly as `releases-contract` fixes them. TypeScript types are generated
//! from these by ts-rs.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, export_to = "releases/")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, export_to = "releases/")]
pub enum ReleaseKind {
    Deployment,
    ArgoRollout,
}

/// Identifies a release: a Kubernetes profile id (cluster connection), namespace and app
/// name (the stable Deployment's name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseRef {
    pub profile_id: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ReleaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.profile_id, self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct TrackInfo {
    pub image: String,
    /// From the pod template annotations `flightdeck.dev/model`, `/prompt-version`,
    /// `/policy-version` (null when absent).
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub policy_version: Option<String>,
    /// The pod template's `app.kubernetes.io/version` label.
    pub version: Option<String>,
    #[ts(type = "number")]
    pub replicas_desired: i64,
    #[ts(type = "number")]
    pub replicas_ready: i64,
    /// The Deployment's `deployment.kubernetes.io/revision`.
    #[ts(type = "number | null")]
    pub revision: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, export_to = "releases/")]
pub enum ReleaseState {
    WaitingDecision,
    Progressing,
    Paused,
    Complete,
    Aborted,
    Idle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseSummary {
    #[serde(rename = "ref")]
    #[ts(rename = "ref")]
    pub release: ReleaseRef,
    /// The profile's (human) name.
    pub cluster: String,
    pub kind: ReleaseKind,
    pub stable: TrackInfo,
    /// Null when no canary Deployment exists.
    pub canary: Option<TrackInfo>,
    pub steps: Vec<u32>,
    /// Steps done (0 = no canary traffic).
    pub step: u32,
    /// Percent: `steps[step-1]` or 0.
    pub desired_weight: u32,
    /// Percent from ready replicas, rounded.
    pub actual_weight: u32,
    pub state: ReleaseState,
    pub paused_reason: Option<String>,
    pub verdict: Option<Verdict>,
    #[ts(type = "number")]
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, export_to = "releases/")]
pub enum MetricName {
    SuccessRate,
    ErrorRate,
    P95LatencyMs,
    CostPerSuccessUsd,
    GuardrailBlockRate,
}

impl MetricName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SuccessRate => "success_rate",
            Self::ErrorRate => "error_rate",
            Self::P95LatencyMs => "p95_latency_ms",
            Self::CostPerSuccessUsd => "cost_per_success_usd",
            Self::GuardrailBlockRate => "guardrail_block_rate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct Measurement {
    #[ts(type = "number")]
    pub at_ms: i64,
    pub canary: Option<f64>,
    pub stable: Option<f64>,
    pub passed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct MetricAnalysis {
    pub metric: MetricName,
    /// Human, e.g. "canary error rate <= 0.01".
    pub condition: String,
    pub limit: f64,
    /// Oldest first, one per analysis tick (the last 60).
    pub measurements: Vec<Measurement>,
    pub failures: u32,
    pub failure_limit: u32,
    pub verdict: Verdict,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, export_to = "releases/")]
pub enum GateVerdict {
    Pass,
    Fail,
    Missing,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct EvalGateStatus {
    pub version: Option<String>,
    pub verdict: GateVerdict,
    pub suite: Option<String>,
    pub pass_rate: Option<f64>,
    pub threshold: Option<f64>,
    pub run_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseAnalysis {
    pub verdict: Verdict,
    pub reason: String,
    #[ts(type = "number")]
    pub samples_canary: u64,
    #[ts(type = "number")]
    pub samples_stable: u64,
    #[ts(type = "number")]
    pub min_samples: u64,
    pub metrics: Vec<MetricAnalysis>,
    pub eval_gate: EvalGateStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct Revision {
    #[ts(type = "number")]
    pub revision: i64,
    pub image: String,
    #[ts(type = "number | null")]
    pub created_at_ms: Option<i64>,
    pub current: bool,
    pub change_cause: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, export_to = "releases/")]
pub enum ReleaseActionId {
    PromoteStep,
    PromoteFull,
    Abort,
    Undo,
    Pause,
    Resume,
}

impl ReleaseActionId {
    pub const ALL: [Self; 6] = [
        Self::PromoteStep,
        Self::PromoteFull,
        Self::Abort,
        Self::Undo,
        Self::Pause,
        Self::Resume,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PromoteStep => "promote_step",
            Self::PromoteFull => "promote_full",
            Self::Abort => "abort",
            Self::Undo => "undo",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }

    /// The Kubernetes Event reason recorded for the action.
    pub fn event_reason(self) -> &'static str {
        match self {
            Self::PromoteStep | Self::PromoteFull => "FlightdeckPromote",
            Self::Abort => "FlightdeckAbort",
            Self::Undo => "FlightdeckUndo",
            Self::Pause => "FlightdeckPause",
            Self::Resume => "FlightdeckResume",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseActionPermission {
    pub action: ReleaseActionId,
    pub allowed: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct KubeEventInfo {
    #[ts(type = "number")]
    pub at_ms: i64,
    #[serde(rename = "type")]
    #[ts(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseLogEntry {
    #[ts(type = "number")]
    pub at_ms: i64,
    pub action: String,
    pub actor: String,
    pub outcome: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseDetail {
    pub summary: ReleaseSummary,
    /// Null when there is no canary.
    pub analysis: Option<ReleaseAnalysis>,
    /// Newest first.
    pub revisions: Vec<Revision>,
    pub permissions: Vec<ReleaseActionPermission>,
    /// Kubernetes Events on the release's objects, newest first.
    pub events: Vec<KubeEventInfo>,
    /// The console's local action log for this release, newest first.
    pub log: Vec<ReleaseLogEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ClusterError {
    pub profile_id: String,
    pub cluster: String,
    pub message: String,
}

/// Releases waiting for a decision first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseList {
    pub releases: Vec<ReleaseSummary>,
    pub errors: Vec<ClusterError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct KubeContext {
    pub name: String,
    pub cluster: String,
    pub user: String,
    pub namespace: Option<String>,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct AddKubeProfileArgs {
    pub name: String,
    pub context: String,
    pub namespace: String,
    /// The agent-service profile the cluster's services answer through (the eval gate,
    /// cancelling a canary's approvals, the incident switch). Absent: the active profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub agent_profile_id: Option<String>,
}

/// Links a Kubernetes profile to an agent-service profile, or (without one) lets it follow
/// the active profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct LinkKubeProfileArgs {
    pub profile_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub agent_profile_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseRefArgs {
    #[serde(rename = "ref")]
    #[ts(rename = "ref")]
    pub release: ReleaseRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct PromoteArgs {
    #[serde(rename = "ref")]
    #[ts(rename = "ref")]
    pub release: ReleaseRef,
    pub full: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseReasonArgs {
    #[serde(rename = "ref")]
    #[ts(rename = "ref")]
    pub release: ReleaseRef,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct UndoArgs {
    #[serde(rename = "ref")]
    #[ts(rename = "ref")]
    pub release: ReleaseRef,
    #[ts(type = "number")]
    pub revision: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseActionResult {
    pub detail: ReleaseDetail,
    pub message: String,
    #[ts(type = "number | null")]
    pub cancelled_approvals: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, export_to = "releases/")]
pub struct ReleaseProgressEvent {
    #[serde(rename = "ref")]
    #[ts(rename = "ref")]
    pub release: ReleaseRef,
    pub action: ReleaseActionId,
    pub phase: String,
    pub fraction: Option<f64>,
    pub done: bool,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_follow_the_contract() {
        let r = ReleaseRef {
            profile_id: "k1".into(),
            namespace: "ns".into(),
            name: "agent-service".into(),
        };
        let args: PromoteArgs = serde_json::from_value(serde_json::json!({
            "ref": {"profile_id": "k1", "namespace": "ns", "name": "agent-service"},
            "full": false, "reason": "looks good"
        }))
        .unwrap();
        assert_eq!(args.release, r);
        let ev = KubeEventInfo {
            at_ms: 1,
            kind: "Normal".into(),
            reason: "FlightdeckPromote".into(),
            message: "m".into(),
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "Normal");
        assert_eq!(
            serde_json::to_value(ReleaseState::WaitingDecision).unwrap(),
            "waiting_decision"
        );
        assert_eq!(
            serde_json::to_value(MetricName::P95LatencyMs).unwrap(),
            "p95_latency_ms"
        );
        assert_eq!(
            serde_json::to_value(ReleaseKind::ArgoRollout).unwrap(),
            "argo_rollout"
        );
        let decl = ReleaseSummary::decl();
        assert!(decl.contains("ref: ReleaseRef"), "{decl}");
        assert!(KubeEventInfo::decl().contains("type: string"));
    }
}
