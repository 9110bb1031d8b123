//! What a process needs to run workflows, with or without HTTP in front: the engine over
//! its provider, tools, policy, approval queue and trace sink, the workflows, and the
//! versions it runs with. The server, the eval worker and `eval run` all build one here.

use std::sync::Arc;

use crate::budget::UsageLedger;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::db::{Db, approvals};
use crate::engine::Engine;
use crate::guardrails::Policy;
use crate::metrics::{BuildLabels, Metrics};
use crate::tools::Registry;
use crate::workflows::{self, Workflow};

/// Versions and hashes this process runs with (`/v1/info`, `agent_build_info`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceInfo {
    pub version: String,
    pub git_sha: String,
    pub track: String,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    pub tool_schema_hash: String,
    pub policy_version: String,
    pub policy_hash: String,
    pub config_hash: String,
}

fn hash16(text: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// What a process needs to run workflows, with or without HTTP in front (the server, the
/// job workers and `eval run` all use it).
pub struct Runtime {
    pub engine: Engine,
    pub info: ServiceInfo,
    pub workflows: Vec<Workflow>,
}

/// Builds the engine and the version info from config over an open database.
pub async fn build_runtime(
    settings: Arc<Settings>,
    policy: Arc<Policy>,
    db: Db,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
) -> anyhow::Result<Runtime> {
    let provider = crate::providers::from_settings(&settings.providers, http, metrics.clone());
    let tools = Arc::new(
        Registry::new(&settings.tools)
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?,
    );
    let workflows = workflows::configured(&settings.tools, &settings.budgets)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let prompt_version = workflows::prompt_set_version(&workflows);
    let git_sha = env!("AGENT_GIT_SHA").to_string();
    let config_hash = hash16(
        &settings
            .describe()
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>(),
    );
    let info = ServiceInfo {
        version: settings.release.release_version.clone(),
        git_sha: git_sha.clone(),
        track: settings.release.release_track.as_str().into(),
        provider: provider.kind().into(),
        model: provider.model().into(),
        prompt_version: prompt_version.clone(),
        tool_schema_hash: tools.schema_hash(),
        policy_version: policy.version.to_string(),
        policy_hash: policy.hash(),
        config_hash,
    };
    metrics
        .build_info
        .get_or_create(&BuildLabels {
            version: info.version.clone(),
            git_sha: info.git_sha.clone(),
            track: info.track.clone(),
            model: info.model.clone(),
            prompt_version,
            policy_version: info.policy_version.clone(),
        })
        .set(1);
    metrics.set_circuit("provider", crate::metrics::CIRCUIT_CLOSED);
    metrics
        .approvals_pending
        .set(approvals::count_pending(&db).await.unwrap_or(0));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let approval_queue = Arc::new(crate::approvals::ApprovalQueue::new(
        db.clone(),
        tools.clone(),
        metrics.clone(),
        clock.clone(),
        policy.redactor.clone(),
        policy.version.to_string(),
    ));
    let ledger = Arc::new(UsageLedger::new(db.clone()));
    let traces = crate::traces::TraceSink::with_sampling(
        crate::traces::CHANNEL_CAPACITY,
        settings.traces.trace_sample_rate,
        metrics.traces_dropped.clone(),
        metrics.traces_sampled_out.clone(),
    );
    let engine = Engine {
        budgets: settings.budgets.clone(),
        guardrails: settings.guardrails.clone(),
        approval_rules: settings.approvals.clone(),
        db,
        provider,
        tools,
        policy,
        metrics,
        ledger,
        clock,
        release: approvals::Release {
            version: info.version.clone(),
            git_sha,
            track: info.track.clone(),
        },
        traces,
        approvals: approval_queue,
    };
    Ok(Runtime {
        engine,
        info,
        workflows,
    })
}
