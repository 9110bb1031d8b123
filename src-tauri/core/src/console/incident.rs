//! The incident switch: the active service's freeze state (`freeze_event` when it
//! changes), freezing writes with the linked canaries paused and an incident pack written,
//! and unfreezing.

use super::dto::*;
use serde_json::json;

use super::{CmdResult, Console, lock, map, write_atomic};
use crate::agent::{AgentClient, Reason};

impl Console {
    pub async fn get_freeze_state(&self) -> CmdResult<FreezeState> {
        let (_, client) = self.active().await?;
        let f = map::freeze_state(&client.freeze_state().await?);
        self.freeze_seen(&f);
        Ok(f)
    }

    /// Pushes `freeze_event` when the freeze state differs from the last one seen.
    pub(super) fn freeze_seen(&self, f: &FreezeState) {
        let changed = {
            let mut st = lock(&self.inner.state);
            let changed = st.freeze.as_ref() != Some(f);
            st.freeze = Some(f.clone());
            changed
        };
        if changed {
            self.emit("freeze_event", f);
        }
    }

    /// Freezes writes on the active service, pauses the canaries in progress of the
    /// Kubernetes profiles linked to it (`rollouts_paused`, reason = the incident's) and
    /// writes an incident pack (the freeze, versions, recent failing traces, the metrics
    /// and the series' window stats).
    pub async fn incident_switch(&self, args: IncidentArgs) -> CmdResult<IncidentResult> {
        self.guard(ActionId::IncidentSwitch)?;
        let reason = Reason::parse(&args.reason)
            .map_err(|_| CommandError::invalid("A reason is required for the incident switch"))?;
        let (id, client) = self.active().await?;
        let frozen = self
            .audited("freeze", &format!("service/{id}"), client.freeze(&reason))
            .await?;
        let freeze = map::freeze_state(&frozen);
        self.freeze_seen(&freeze);
        let rollouts_paused = self.pause_linked_rollouts(&id, reason.as_str()).await;
        let pack_path = incident_pack(self, &id, &client, &freeze, reason.as_str()).await?;
        Ok(IncidentResult {
            freeze,
            rollouts_paused,
            pack_path,
        })
    }

    pub async fn unfreeze_writes(&self, args: IncidentArgs) -> CmdResult<FreezeState> {
        self.guard(ActionId::UnfreezeWrites)?;
        let reason = Reason::parse(&args.reason)
            .map_err(|_| CommandError::invalid("A reason is required to unfreeze writes"))?;
        let (id, client) = self.active().await?;
        let f = self
            .audited(
                "unfreeze",
                &format!("service/{id}"),
                client.unfreeze(&reason),
            )
            .await?;
        let f = map::freeze_state(&f);
        self.freeze_seen(&f);
        Ok(f)
    }
}

/// Writes the incident pack (JSON): the freeze, versions, recent failing traces with their
/// spans, the current metrics text and the Overview card. Everything in it comes from the
/// service already redacted; no key is in it.
async fn incident_pack(
    console: &Console,
    profile_id: &str,
    client: &AgentClient,
    freeze: &FreezeState,
    reason: &str,
) -> CmdResult<String> {
    let now = console.now_ms();
    let failing = client
        .traces(&crate::agent::TraceQuery {
            errors_only: true,
            limit: Some(50),
            ..Default::default()
        })
        .await;
    let mut traces = Vec::new();
    if let Ok(page) = &failing {
        for t in page.items.iter().take(10) {
            if let Ok(full) = client.trace(&t.trace_id).await {
                traces.push(full);
            }
        }
    }
    let info = client.info().await;
    let metrics = client.metrics_text().await;
    let cards = console.profile_cards(profile_id, ChartWindow::M15).await;
    let pack = json!({
        "kind": "flightdeck-incident-pack",
        "created_at_ms": now,
        "profile_id": profile_id,
        "url": client.base().to_string(),
        "reason": reason,
        "freeze": freeze,
        "versions": info.as_ref().map_or_else(|e| json!({ "error": e.to_string() }), |i| json!(i)),
        "failing_traces": failing.as_ref().map_or_else(|e| json!({ "error": e.to_string() }), |p| json!(p.items)),
        "failing_trace_details": traces,
        "overview": cards,
        "metrics_text": metrics.unwrap_or_else(|e| format!("# metrics unavailable: {e}")),
    });
    let stamp = chrono::DateTime::from_timestamp_millis(now)
        .map(|t| t.format("%Y%m%d-%H%M%S").to_string())
        .unwrap_or_else(|| now.to_string());
    let path = console
        .inner
        .options
        .export_dir
        .join(format!("flightdeck-incident-{profile_id}-{stamp}.json"));
    let raw = serde_json::to_vec_pretty(&pack)
        .map_err(|e| CommandError::new(CommandErrorCode::Storage, e.to_string()))?;
    write_atomic(&path, &raw)?;
    Ok(path.display().to_string())
}
