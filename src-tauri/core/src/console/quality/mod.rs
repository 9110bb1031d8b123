//! The Overview's quality panel: quality per workflow and track over the window, the canary
//! against stable, and spend by tenant and workflow with each tenant's budget burn, from
//! the scrape loops' snapshots of `/metrics` and the last `/v1/info`.

use std::collections::BTreeMap;

mod numbers;

pub(super) use numbers::Snapshot;

use super::dto::*;
use super::{CmdResult, Console, lock, map};
use crate::agent::wire::QualitySummary;
use numbers::History;

/// What the scrape loop keeps per profile for the panel.
#[derive(Debug, Clone, Default)]
pub(super) struct Memory {
    pub history: History,
    /// `/v1/info` `quality`, as last read.
    pub info: Option<QualitySummary>,
}

impl Console {
    /// The quality panel of one agent-service profile over `args.window`, as the scrape
    /// loop last read it (empty before the first scrape).
    pub async fn get_quality(&self, args: QualityArgs) -> CmdResult<QualityView> {
        if !self.profile_exists(&args.profile_id).await? {
            return Err(CommandError::not_found(format!(
                "No profile {}",
                args.profile_id
            )));
        }
        let now = self.now_ms();
        let window_ms = map::chart_window(args.window).duration().as_millis() as i64;
        let st = lock(&self.inner.state);
        let Some(mem) = st.quality.get(&args.profile_id) else {
            return Ok(QualityView {
                profile_id: args.profile_id,
                window: args.window,
                workflows: Vec::new(),
                thresholds: None,
                tenants: Vec::new(),
                workflow_spend: Vec::new(),
                scraped_at_ms: None,
            });
        };
        let thresholds = mem.info.as_ref().map(|i| QualityThresholds {
            min_samples: i.thresholds.min_samples,
            min_citation_rate: i.thresholds.min_citation_rate,
            max_refusal_rate: i.thresholds.max_refusal_rate,
            max_tool_error_rate: i.thresholds.max_tool_error_rate,
            max_empty_or_truncated_rate: i.thresholds.max_empty_or_truncated_rate,
            max_approval_rejection_rate: i.thresholds.max_approval_rejection_rate,
        });
        let alerts: BTreeMap<(String, String), Vec<String>> = mem
            .info
            .iter()
            .flat_map(|i| &i.workflows)
            .map(|w| ((w.workflow.clone(), w.track.clone()), w.alerts.clone()))
            .collect();
        // Without the service's thresholds, only its own alerts count.
        let never = QualityThresholds {
            min_samples: u64::MAX,
            min_citation_rate: 0.0,
            max_refusal_rate: 1.0,
            max_tool_error_rate: 1.0,
            max_empty_or_truncated_rate: 1.0,
            max_approval_rejection_rate: 1.0,
        };
        Ok(QualityView {
            workflows: numbers::workflows(
                &mem.history,
                window_ms,
                now,
                thresholds.as_ref().unwrap_or(&never),
                &alerts,
            ),
            thresholds,
            tenants: numbers::tenants(&mem.history),
            workflow_spend: numbers::workflow_spend(&mem.history),
            scraped_at_ms: mem.history.latest().map(|s| s.t_ms),
            profile_id: args.profile_id,
            window: args.window,
        })
    }
}
