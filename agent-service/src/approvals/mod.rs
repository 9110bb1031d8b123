//! The approval queue: the state machine of gated writes. Creation (refused while writes
//! are frozen), decisions (role `approver`, never the requester, N-of-M, final), execution
//! exactly once, expiry, bulk cancel and the write freeze. Every transition commits in one
//! transaction with its audit event, and wakes the subscribers of the approval event stream.
//!
//! ```text
//! pending ─┬─> approved ──> executing ─┬─> executed
//!          │                           └─> failed
//!          └─> rejected | expired | cancelled
//! ```
//!
//! **Exactly once.** A built-in write (it changes the service's own database) runs inside
//! the claim's transaction: `UPDATE … SET status = 'executing' WHERE status = 'approved'`
//! (one row, or another process has it), the tool's write, the outcome and the audit events
//! commit together or not at all. A crash anywhere leaves the request `approved`, and the
//! sweeper (at start and every `APPROVAL_SWEEP_SECS`) drives it again. An HTTP write cannot
//! share the transaction: the claim commits `executing` with a lease first, the call carries
//! `Idempotency-Key: <approval id>`, then the outcome commits. A lease that runs out (the
//! process died mid-call, or the outcome is unknown) is claimed again and the call retried
//! with the same key: at-least-once delivery, deduplicated by the receiver on that key.
//!
//! This file holds the queue and the decisions (create, decide, cancel, freeze);
//! [`execute`] runs approved writes, [`sweeper`] expires and re-drives, `tests` checks the
//! whole machine against a real database.

pub mod execute;
pub mod sweeper;
#[cfg(test)]
mod tests;

pub use execute::{Execution, MAX_HTTP_ATTEMPTS};
pub use sweeper::Sweep;

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::db::approvals::{self, Approval, Decision, NewApproval};
use crate::db::audit::{self, Chain, NewEvent};
use crate::db::freeze::{self, Freeze};
use crate::db::{Db, millis};
use crate::domain::Principal;
use crate::domain::{ApprovalId, TenantId};
use crate::error::{Error, ErrorCode};
use crate::guardrails::Redactor;
use crate::metrics::{DecisionLabels, Metrics};
use crate::tools::Registry;

/// Audit actions of approval transitions start with this; the event stream sends them.
pub const APPROVAL_ACTION_PREFIX: &str = "approval.";

/// An approver's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    fn decision(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
    fn status(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Reject => "rejected",
        }
    }
}

/// The approval state machine over the database. One per process; cheap to share.
pub struct ApprovalQueue {
    db: Db,
    tools: Arc<Registry>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    redactor: Redactor,
    policy_version: String,
    /// This process, as the owner of HTTP-write leases.
    owner: String,
    /// Bumped after every committed transition; the event stream waits on it.
    changes: watch::Sender<u64>,
}

fn frozen(tenant: &TenantId, f: &Freeze) -> Error {
    Error::new(
        ErrorCode::WritesFrozen,
        format!(
            "writes are frozen for tenant {tenant}{}; no write can be proposed or approved until an operator calls POST /v1/admin/unfreeze",
            f.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    )
}

fn conflict(message: String) -> Error {
    Error::new(ErrorCode::Conflict, message)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| ms.to_string())
}

impl ApprovalQueue {
    pub fn new(
        db: Db,
        tools: Arc<Registry>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        redactor: Redactor,
        policy_version: String,
    ) -> Self {
        Self {
            db,
            tools,
            metrics,
            clock,
            redactor,
            policy_version,
            owner: format!("proc_{}", uuid::Uuid::now_v7().simple()),
            changes: watch::channel(0).0,
        }
    }

    fn now(&self) -> i64 {
        millis(self.clock.now())
    }

    /// Wakes the event stream's subscribers in this process (others poll the database).
    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes after every committed transition.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn event(
        &self,
        tenant: &TenantId,
        actor: &str,
        action: &str,
        approval_id: &ApprovalId,
        details: Value,
        request_id: Option<&str>,
    ) -> NewEvent {
        NewEvent {
            chain: Chain::Tenant(tenant.clone()),
            actor: actor.to_string(),
            action: format!("{APPROVAL_ACTION_PREFIX}{action}"),
            resource: format!("approval/{approval_id}"),
            details,
            request_id: request_id.map(str::to_string),
            policy_version: self.policy_version.clone(),
        }
    }

    fn count(&self, decision: &str, n: u64) {
        self.metrics
            .approvals
            .get_or_create(&DecisionLabels {
                decision: decision.to_string(),
            })
            .inc_by(n);
    }

    /// Sets `agent_approvals_pending` from the database (every replica's requests).
    pub async fn refresh_pending(&self) {
        match approvals::count_pending(&self.db).await {
            Ok(n) => {
                self.metrics.approvals_pending.set(n);
            }
            Err(e) => tracing::warn!(error = %e, "counting pending approvals failed"),
        }
    }

    /// The tenant's write freeze.
    pub async fn freeze_state(&self, tenant: &TenantId) -> Result<Freeze, Error> {
        Ok(freeze::get(&self.db, tenant).await?)
    }

    /// Stores a new pending request with its `approval.created` event; refused with
    /// `writes_frozen` (and nothing stored) while the tenant's writes are frozen.
    pub async fn create(&self, rec: &NewApproval) -> Result<(), Error> {
        let f = freeze::get(&self.db, &rec.tenant).await?;
        if f.frozen {
            return Err(frozen(&rec.tenant, &f));
        }
        let mut tx = self.db.pool().begin().await?;
        // The insert comes first: on SQLite it takes the write lock, so the freeze read
        // below cannot be overtaken by a freeze committing in between.
        approvals::insert_pending(&mut tx, rec).await?;
        let f = freeze::get_in(&mut tx, &rec.tenant).await?;
        if f.frozen {
            tx.rollback().await?;
            return Err(frozen(&rec.tenant, &f));
        }
        let details = json!({
            "workflow": rec.workflow,
            "tool": rec.tool,
            "resource": rec.proposed_change.get("resource"),
            "risk_tier": rec.risk_tier,
            "required_approvals": rec.required_approvals,
            "requested_by": rec.requested_by,
            "requested_by_user": rec.requested_by_user,
            "trace_id": rec.trace_id,
            "expires_at": rfc3339(rec.expires_at),
            "release": rec.release,
            "status": "pending",
        });
        let ev = self.event(
            &rec.tenant,
            &rec.requested_by,
            "created",
            &rec.id,
            details,
            Some(&rec.request_id),
        );
        audit::append(&mut tx, &ev, rec.created_at).await?;
        tx.commit().await?;
        self.changed();
        self.refresh_pending().await;
        Ok(())
    }

    /// Why a request that was pending a moment ago cannot be decided now.
    async fn not_decidable(&self, tenant: &TenantId, id: &ApprovalId) -> Error {
        match approvals::get(&self.db, tenant, id).await {
            Ok(Some(a)) if a.status == "pending" => conflict(format!(
                "approval {id} expired at {}; it can no longer be decided",
                rfc3339(a.expires_at)
            )),
            Ok(Some(a)) => conflict(format!(
                "approval {id} is already {}; a decision is final",
                a.status
            )),
            Ok(None) => Error::not_found(format!("approval {id}")),
            Err(e) => e.into(),
        }
    }

    /// Records an approver's decision. The last approval a request needs makes it
    /// `approved` and executes it before returning; the request as it then stands is
    /// returned. Role checks are the caller's; this enforces everything else.
    pub async fn decide(
        &self,
        who: &Principal,
        id: &ApprovalId,
        verdict: Verdict,
        reason: &str,
        request_id: &str,
    ) -> Result<Approval, Error> {
        let tenant = &who.tenant;
        let found = approvals::get(&self.db, tenant, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("approval {id}")))?;
        if found.requested_by == who.key_id {
            return Err(Error::forbidden(format!(
                "separation of duties: API key {} requested approval {id}, so it cannot decide on it; another approver must",
                who.key_name
            )));
        }
        let now = self.now();
        if found.status != "pending" || found.expires_at <= now {
            return Err(self.not_decidable(tenant, id).await);
        }
        if verdict == Verdict::Approve {
            let f = freeze::get(&self.db, tenant).await?;
            if f.frozen {
                return Err(frozen(tenant, &f));
            }
        }
        let decision = Decision {
            approver: who.key_id.clone(),
            approver_name: who.key_name.clone(),
            decision: verdict.decision().into(),
            reason: self.redactor.redact(reason.trim()).text.into_owned(),
            request_id: request_id.to_string(),
            decided_at: now,
        };

        let mut tx = self.db.pool().begin().await?;
        // The row update first: on SQLite it takes the write lock at once.
        let (status, count) = match verdict {
            Verdict::Approve => match approvals::count_approve(&mut tx, tenant, id, now).await? {
                Some(a) => (a.status, a.approvals_count),
                None => {
                    tx.rollback().await?;
                    return Err(self.not_decidable(tenant, id).await);
                }
            },
            Verdict::Reject => {
                if !approvals::close_pending(&mut tx, tenant, id, "rejected", now).await? {
                    tx.rollback().await?;
                    return Err(self.not_decidable(tenant, id).await);
                }
                ("rejected".to_string(), found.approvals_count)
            }
        };
        if !approvals::insert_decision(&mut tx, tenant, id, &decision).await? {
            tx.rollback().await?;
            return Err(conflict(format!(
                "API key {} already decided on approval {id}; each approver counts once and a decision is final",
                who.key_name
            )));
        }
        if verdict == Verdict::Approve {
            let f = freeze::get_in(&mut tx, tenant).await?;
            if f.frozen {
                tx.rollback().await?;
                return Err(frozen(tenant, &f));
            }
        }
        let details = json!({
            "decision": decision.decision,
            "reason": decision.reason,
            "approver": who.key_id,
            "approver_name": who.key_name,
            "approvals_count": count,
            "required_approvals": found.required_approvals,
            "status": status,
        });
        let ev = self.event(
            tenant,
            &who.key_id,
            verdict.status(),
            id,
            details,
            Some(request_id),
        );
        audit::append(&mut tx, &ev, now).await?;
        tx.commit().await?;
        self.changed();
        self.count(verdict.status(), 1);
        self.refresh_pending().await;
        tracing::info!(approval_id = %id, decision = verdict.decision(), %status, approvals = count, "approval decided");

        if status == "approved" {
            // The decision stands whatever happens here; the sweeper re-drives the write.
            match self.execute(tenant, id).await {
                Ok(outcome) => tracing::info!(approval_id = %id, ?outcome, "approved write driven"),
                Err(e) => {
                    tracing::warn!(approval_id = %id, error = %e.report(), "executing the approved write failed; the sweeper retries it")
                }
            }
        }
        approvals::get(&self.db, tenant, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("approval {id}")))
    }
    /// Cancels the tenant's pending requests proposed by a release on `track` and/or at
    /// `version`; returns their ids (sorted).
    pub async fn cancel(
        &self,
        who: &Principal,
        track: Option<&str>,
        version: Option<&str>,
        reason: &str,
        request_id: &str,
    ) -> Result<Vec<ApprovalId>, Error> {
        if track.is_none() && version.is_none() {
            return Err(Error::invalid(
                "give at least one filter, track or version, so a cancel cannot empty the whole queue",
            ));
        }
        let tenant = &who.tenant;
        let reason = self.redactor.redact(reason.trim()).text.into_owned();
        let now = self.now();
        let mut tx = self.db.pool().begin().await?;
        let ids = approvals::cancel_pending(&mut tx, tenant, track, version, &reason, now).await?;
        if ids.is_empty() {
            tx.rollback().await?;
            return Ok(ids);
        }
        let decision = Decision {
            approver: who.key_id.clone(),
            approver_name: who.key_name.clone(),
            decision: "cancel".into(),
            reason: reason.clone(),
            request_id: request_id.to_string(),
            decided_at: now,
        };
        for id in &ids {
            approvals::insert_decision(&mut tx, tenant, id, &decision).await?;
        }
        for id in &ids {
            let details = json!({
                "reason": reason,
                "filter": {"track": track, "version": version},
                "by": who.key_id,
                "by_name": who.key_name,
                "status": "cancelled",
            });
            let ev = self.event(
                tenant,
                &who.key_id,
                "cancelled",
                id,
                details,
                Some(request_id),
            );
            audit::append(&mut tx, &ev, now).await?;
        }
        tx.commit().await?;
        self.changed();
        self.count("cancelled", ids.len() as u64);
        self.refresh_pending().await;
        tracing::info!(
            cancelled = ids.len(),
            ?track,
            ?version,
            "pending approvals cancelled"
        );
        Ok(ids)
    }

    /// Freezes (`frozen`) or unfreezes the tenant's writes; returns the state and whether
    /// this call changed it. Audited as `writes.frozen` / `writes.unfrozen`.
    pub async fn set_freeze(
        &self,
        who: &Principal,
        frozen: bool,
        reason: Option<&str>,
        request_id: &str,
    ) -> Result<(Freeze, bool), Error> {
        let tenant = &who.tenant;
        let reason = reason.map(|r| self.redactor.redact(r.trim()).text.into_owned());
        let now = self.now();
        let mut tx = self.db.pool().begin().await?;
        let changed =
            freeze::set_in(&mut tx, tenant, frozen, reason.as_deref(), &who.key_id, now).await?;
        if changed {
            let ev = NewEvent {
                chain: Chain::Tenant(tenant.clone()),
                actor: who.key_id.clone(),
                action: if frozen {
                    "writes.frozen"
                } else {
                    "writes.unfrozen"
                }
                .into(),
                resource: format!("tenant/{tenant}"),
                details: json!({"reason": reason, "by_name": who.key_name}),
                request_id: Some(request_id.to_string()),
                policy_version: self.policy_version.clone(),
            };
            audit::append(&mut tx, &ev, now).await?;
            tx.commit().await?;
            tracing::warn!(
                frozen,
                reason = reason.as_deref().unwrap_or(""),
                "write freeze changed"
            );
        } else {
            tx.rollback().await?;
        }
        Ok((freeze::get(&self.db, tenant).await?, changed))
    }
}
