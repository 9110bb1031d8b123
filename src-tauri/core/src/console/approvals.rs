//! The Approvals view: the pending queue and the history, one approval in full, a decision
//! with its reason, and the audit chain's verification. Changes reach the UI as
//! `approval_event`s from the live stream (`live/approvals.rs`).

use super::dto::*;
use super::{CmdResult, Console, map};
use crate::agent::Reason;

impl Console {
    pub async fn list_approvals(&self, args: ApprovalListArgs) -> CmdResult<ApprovalPage> {
        let (_, client) = self.active().await?;
        let status = match args.view {
            ApprovalListView::Pending => Some(crate::agent::ApprovalStatus::Pending),
            ApprovalListView::History => None,
        };
        let page = client
            .approvals(status, args.cursor.as_deref(), Some(100))
            .await?;
        let mut items = page
            .items
            .iter()
            .map(map::approval_summary)
            .collect::<CmdResult<Vec<_>>>()?;
        match args.view {
            ApprovalListView::Pending => items.sort_by_key(|a| a.expires_at_ms),
            ApprovalListView::History => {
                items.retain(|a| a.status != ApprovalStatus::Pending);
                items
                    .sort_by_key(|a| std::cmp::Reverse(a.decided_at_ms.unwrap_or(a.created_at_ms)));
            }
        }
        Ok(ApprovalPage {
            items,
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get_approval(&self, args: ApprovalIdArgs) -> CmdResult<ApprovalDetail> {
        let (_, client) = self.active().await?;
        map::approval_detail(&client.approval(&args.id).await?)
    }

    /// Approves or rejects with a required reason; the service executes an approved write,
    /// and the change reaches the UI as `approval_event`s from the live stream.
    pub async fn decide_approval(&self, args: DecideArgs) -> CmdResult<ApprovalDetail> {
        let (action, verb) = match args.decision {
            DecisionKind::Approve => (ActionId::Approve, "approve"),
            DecisionKind::Reject => (ActionId::Reject, "reject"),
        };
        self.guard(action)?;
        let reason = Reason::parse(&args.reason).map_err(|_| {
            CommandError::invalid(format!("A reason is required to {verb} {}", args.id))
        })?;
        let (_, client) = self.active().await?;
        let target = format!("approval/{}", args.id);
        // One idempotency key per decision, so a retried call cannot decide twice.
        let key = uuid::Uuid::new_v4().to_string();
        let decided = self
            .audited(verb, &target, async {
                match args.decision {
                    DecisionKind::Approve => client.approve(&args.id, &reason, Some(&key)).await,
                    DecisionKind::Reject => client.reject(&args.id, &reason, Some(&key)).await,
                }
            })
            .await?;
        map::approval_detail(&decided)
    }

    pub async fn verify_audit(&self) -> CmdResult<AuditStatus> {
        self.guard(ActionId::VerifyAudit)?;
        let (_, client) = self.active().await?;
        let v = self
            .audited("verify_audit", "audit", client.audit_verify())
            .await?;
        Ok(map::audit_status(&v, self.now_ms()))
    }
}
