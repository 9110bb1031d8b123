//! The incident switch: the active service's freeze state (`freeze_event` when it
//! changes), freezing writes with the linked canaries paused and an incident pack written,
//! and unfreezing.

use super::dto::*;
use super::{CmdResult, Console, live, lock, map};
use crate::agent::Reason;

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
        let pack_path = live::incident_pack(self, &id, &client, &freeze, reason.as_str()).await?;
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
