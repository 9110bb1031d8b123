//! The sweeper: expires pending requests whose time ran out and re-drives approved writes
//! nobody executed (a crash, a lifted freeze) and HTTP writes whose lease ran out; at
//! start (crash recovery) and every `APPROVAL_SWEEP_SECS`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{ApprovalQueue, Execution};
use crate::db::approvals;
use crate::db::audit;
use crate::domain::{ApprovalId, TenantId};
use crate::error::Error;
use crate::shutdown::Shutdown;

/// How many due requests one sweep handles of each kind.
const SWEEP_BATCH: i64 = 200;
/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    pub expired: usize,
    pub executed: usize,
    pub failed: usize,
}

impl ApprovalQueue {
    /// Expires one pending request whose time ran out; false when it was no longer pending.
    async fn expire(&self, tenant: &TenantId, id: &ApprovalId) -> Result<bool, Error> {
        let now = self.now();
        let mut tx = self.db.pool().begin().await?;
        if !approvals::close_pending(&mut tx, tenant, id, "expired", now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let ev = self.event(
            tenant,
            "system",
            "expired",
            id,
            json!({"status": "expired"}),
            None,
        );
        audit::append(&mut tx, &ev, now).await?;
        tx.commit().await?;
        self.changed();
        self.count("expired", 1);
        Ok(true)
    }

    /// One pass of the sweeper: expires pending requests past `expires_at`, drives approved
    /// requests nobody executed (a crash, a freeze that has lifted) and HTTP writes whose
    /// lease ran out, and refreshes the pending gauge.
    pub async fn sweep(&self) -> Result<Sweep, Error> {
        let mut report = Sweep::default();
        for (tenant, id) in approvals::due_to_expire(&self.db, self.now(), SWEEP_BATCH).await? {
            let (Ok(tenant), Ok(id)) = (TenantId::parse(&tenant), ApprovalId::parse(&id)) else {
                tracing::warn!(approval_id = %id, %tenant, "skipping an approval with an invalid tenant or id");
                continue;
            };
            if self.expire(&tenant, &id).await? {
                report.expired += 1;
            }
        }
        for (tenant, id) in approvals::due_to_execute(&self.db, self.now(), SWEEP_BATCH).await? {
            let (Ok(tenant), Ok(id)) = (TenantId::parse(&tenant), ApprovalId::parse(&id)) else {
                tracing::warn!(approval_id = %id, %tenant, "skipping an approval with an invalid tenant or id");
                continue;
            };
            match self.execute(&tenant, &id).await {
                Ok(Execution::Executed) => report.executed += 1,
                Ok(Execution::Failed) => report.failed += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(approval_id = %id, error = %e.report(), "re-driving an approved write failed")
                }
            }
        }
        self.refresh_pending().await;
        Ok(report)
    }
}

/// The background sweeper: runs [`ApprovalQueue::sweep`] at start (crash recovery) and
/// every `every` (`APPROVAL_SWEEP_SECS`), until `stop`. A sweep in progress finishes first.
pub async fn run(queue: Arc<ApprovalQueue>, every: Duration, stop: Shutdown) {
    let every = every.max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait() => break,
        }
        match queue.sweep().await {
            Ok(s) if s != Sweep::default() => {
                tracing::info!(
                    expired = s.expired,
                    executed = s.executed,
                    failed = s.failed,
                    "approval sweep"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.report(), "approval sweep failed; retrying"),
        }
    }
}
