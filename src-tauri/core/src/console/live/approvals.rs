//! The approval relay: the active profile's approval event stream (resumed after the last
//! event seen) pushed as `approval_event`, with a desktop notification for a new pending
//! request.

use crate::agent::{ApprovalEventKind, StreamConfig, StreamItem};
use crate::console::dto::*;
use crate::console::{Console, lock, map};

/// Relays the approval events of `profile_id` while it is the active profile.
pub(super) async fn approval_loop(console: Console, profile_id: String) {
    let client = match console.client_of(&profile_id, "admin").await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(profile = %profile_id, error = %e.message, "no approval stream");
            return;
        }
    };
    // Back on a profile seen before: resume after its last event (`Last-Event-ID`), so the
    // queue the UI shows misses nothing that happened meanwhile.
    let resume = lock(&console.inner.state)
        .last_event
        .get(&profile_id)
        .copied();
    let mut events = client.approval_events(resume, StreamConfig::default());
    while let Some(item) = events.next().await {
        let set_live = |live: bool| lock(&console.inner.state).stream_live = live;
        match item {
            Ok(StreamItem::Connected { .. }) => set_live(true),
            Ok(StreamItem::Event(ev)) => {
                lock(&console.inner.state)
                    .last_event
                    .insert(profile_id.clone(), ev.seq);
                let approval = match client.approval(&ev.approval_id).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(approval = %ev.approval_id, error = %e, "event without its approval");
                        continue;
                    }
                };
                let summary = match map::approval_summary(&approval) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e.message, "approval not understood");
                        continue;
                    }
                };
                if !console.still_active(&profile_id) {
                    return;
                }
                if ev.kind == ApprovalEventKind::Created
                    && summary.status == ApprovalStatus::Pending
                {
                    console.inner.sink.notify(
                        "Approval waiting",
                        &format!(
                            "{} wants {} on {} (risk tier {})",
                            summary.workflow, summary.tool, summary.resource, summary.risk_tier
                        ),
                    );
                }
                console.emit(
                    "approval_event",
                    &ApprovalEvent {
                        kind: map::approval_event_kind(&ev.kind),
                        approval: summary,
                    },
                );
            }
            Ok(StreamItem::Malformed { id, error }) => {
                tracing::warn!(?id, %error, "malformed approval event skipped");
            }
            Ok(StreamItem::Reconnecting { error, retry_in }) => {
                set_live(false);
                tracing::debug!(%error, ?retry_in, "approval stream reconnecting");
            }
            Err(e) => {
                set_live(false);
                tracing::warn!(error = %e, "approval stream ended");
                return;
            }
        }
    }
}
