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

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::db::approvals::{self, Approval, Decision, Lease, NewApproval, Outcome};
use crate::db::audit::{self, Chain, NewEvent};
use crate::db::freeze::{self, Freeze};
use crate::db::{Db, millis};
use crate::domain::Principal;
use crate::domain::TenantId;
use crate::error::{Error, ErrorCode};
use crate::guardrails::Redactor;
use crate::metrics::{DecisionLabels, Metrics, ToolLabels};
use crate::shutdown::Shutdown;
use crate::tools::{Registry, ToolCtx, ToolError};

/// Attempts of an HTTP write before it is marked `failed` with an unknown outcome.
pub const MAX_HTTP_ATTEMPTS: i64 = 5;
/// An HTTP write's lease: the tool's timeout plus this margin.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How many due requests one sweep handles of each kind.
const SWEEP_BATCH: i64 = 200;
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

/// What one attempt to execute a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// The write was applied and recorded.
    Executed,
    /// The write was refused and recorded as `failed`.
    Failed,
    /// Writes are frozen for the tenant: left `approved` until they are unfrozen.
    Held,
    /// The outcome is unknown or the store did not answer: left for the sweeper to retry.
    Retrying,
    /// Not approved (any more), or another process claimed it first.
    NotClaimed,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    pub expired: usize,
    pub executed: usize,
    pub failed: usize,
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

/// Tool failures after which the write may or may not have happened, or that say nothing
/// about the write (the store did not answer): the request is retried, never `failed`.
fn outcome_unknown(e: &ToolError) -> bool {
    matches!(e, ToolError::Timeout(_) | ToolError::Unavailable { .. })
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
        approval_id: &str,
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
    async fn not_decidable(&self, tenant: &TenantId, id: &str) -> Error {
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
        id: &str,
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
                    tracing::warn!(approval_id = %id, error = %e.message, "executing the approved write failed; the sweeper retries it")
                }
            }
        }
        approvals::get(&self.db, tenant, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("approval {id}")))
    }

    /// Executes an approved request (or retries an HTTP write whose lease ran out), exactly
    /// once across processes: whoever claims the row runs it, everyone else does nothing.
    pub async fn execute(&self, tenant: &TenantId, id: &str) -> Result<Execution, Error> {
        let Some(a) = approvals::get(&self.db, tenant, id).await? else {
            return Ok(Execution::NotClaimed);
        };
        let now = self.now();
        let due = a.status == "approved"
            || (a.status == "executing" && a.lease_until.is_some_and(|until| until < now));
        if !due {
            return Ok(Execution::NotClaimed);
        }
        let ctx = ToolCtx {
            tenant: tenant.clone(),
            db: self.db.clone(),
        };
        let http = self
            .tools
            .get(&a.tool)
            .map(|s| (s.source == "http", s.timeout));
        match http {
            Some((true, timeout)) => self.execute_http(&a, &ctx, timeout).await,
            _ => self.execute_builtin(&a, &ctx).await,
        }
    }

    fn count_tool(&self, tool: &str, outcome: &str) {
        self.metrics
            .tool_calls
            .get_or_create(&ToolLabels {
                tool: tool.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The stored form of a tool's answer: the record redacted, or the error redacted.
    fn outcome_of(&self, result: Result<Value, ToolError>) -> (Outcome, &'static str) {
        match result {
            Ok(mut record) => {
                self.redactor.redact_json(&mut record);
                (Outcome::Executed(record), "ok")
            }
            Err(e) => {
                let label = e.outcome();
                let message = self.redactor.redact(&e.to_string()).text.into_owned();
                (Outcome::Failed(message), label)
            }
        }
    }

    fn outcome_event(
        &self,
        a: &Approval,
        tenant: &TenantId,
        attempt: i64,
        outcome: &Outcome,
    ) -> NewEvent {
        let (action, details) = match outcome {
            Outcome::Executed(record) => (
                "executed",
                json!({"attempt": attempt, "tool": a.tool, "result": record, "status": "executed"}),
            ),
            Outcome::Failed(error) => (
                "failed",
                json!({"attempt": attempt, "tool": a.tool, "error": error, "status": "failed"}),
            ),
        };
        self.event(tenant, "system", action, &a.id, details, None)
    }

    fn executing_event(
        &self,
        a: &Approval,
        tenant: &TenantId,
        attempt: i64,
        extra: Value,
    ) -> NewEvent {
        let mut details = json!({"attempt": attempt, "tool": a.tool, "status": "executing"});
        if let (Some(d), Value::Object(more)) = (details.as_object_mut(), extra) {
            d.extend(more);
        }
        self.event(tenant, "system", "executing", &a.id, details, None)
    }

    /// Claim, write, outcome and audit in one transaction.
    async fn execute_builtin(&self, a: &Approval, ctx: &ToolCtx) -> Result<Execution, Error> {
        let tenant = &ctx.tenant;
        let now = self.now();
        let mut tx = self.db.pool().begin().await?;
        let Some(attempt) = approvals::claim(&mut tx, tenant, &a.id, None, now).await? else {
            tx.rollback().await?;
            return Ok(Execution::NotClaimed);
        };
        if freeze::get_in(&mut tx, tenant).await?.frozen {
            tx.rollback().await?;
            return Ok(Execution::Held);
        }
        let result = self
            .tools
            .execute_in(&mut tx, ctx, &a.tool, &a.arguments)
            .await;
        if let Err(e) = &result
            && outcome_unknown(e)
        {
            tx.rollback().await?;
            self.count_tool(&a.tool, e.outcome());
            tracing::warn!(approval_id = %a.id, error = %e, "the approved write could not run; it stays approved and is retried");
            return Ok(Execution::Retrying);
        }
        let (outcome, label) = self.outcome_of(result);
        let done = self.now();
        if !approvals::finish(&mut tx, tenant, &a.id, attempt, None, &outcome, done).await? {
            tx.rollback().await?;
            return Ok(Execution::NotClaimed);
        }
        audit::append(
            &mut tx,
            &self.executing_event(a, tenant, attempt, json!({})),
            now,
        )
        .await?;
        audit::append(
            &mut tx,
            &self.outcome_event(a, tenant, attempt, &outcome),
            done,
        )
        .await?;
        tx.commit().await?;
        self.tools.records_changed(tenant);
        self.changed();
        self.count_tool(&a.tool, label);
        Ok(match outcome {
            Outcome::Executed(_) => Execution::Executed,
            Outcome::Failed(_) => Execution::Failed,
        })
    }

    /// Claim with a lease (committed), the call with `Idempotency-Key`, then the outcome.
    async fn execute_http(
        &self,
        a: &Approval,
        ctx: &ToolCtx,
        timeout: Duration,
    ) -> Result<Execution, Error> {
        let tenant = &ctx.tenant;
        let now = self.now();
        let lease_ms = i64::try_from((timeout + LEASE_MARGIN).as_millis()).unwrap_or(i64::MAX);
        let lease = Lease {
            owner: self.owner.clone(),
            until: now.saturating_add(lease_ms),
        };
        let mut tx = self.db.pool().begin().await?;
        let Some(attempt) = approvals::claim(&mut tx, tenant, &a.id, Some(&lease), now).await?
        else {
            tx.rollback().await?;
            return Ok(Execution::NotClaimed);
        };
        if freeze::get_in(&mut tx, tenant).await?.frozen {
            tx.rollback().await?;
            return Ok(Execution::Held);
        }
        if attempt > MAX_HTTP_ATTEMPTS {
            let outcome = Outcome::Failed(format!(
                "gave up after {MAX_HTTP_ATTEMPTS} attempts whose outcome is unknown; ask the receiver whether it applied Idempotency-Key {}",
                a.id
            ));
            approvals::finish(
                &mut tx,
                tenant,
                &a.id,
                attempt,
                Some(&self.owner),
                &outcome,
                now,
            )
            .await?;
            audit::append(
                &mut tx,
                &self.outcome_event(a, tenant, attempt, &outcome),
                now,
            )
            .await?;
            tx.commit().await?;
            self.changed();
            return Ok(Execution::Failed);
        }
        let extra = json!({"idempotency_key": a.id, "lease_until": rfc3339(lease.until)});
        audit::append(
            &mut tx,
            &self.executing_event(a, tenant, attempt, extra),
            now,
        )
        .await?;
        tx.commit().await?;
        self.changed();

        let result = self
            .tools
            .execute_http(ctx, &a.tool, &a.arguments, &a.id)
            .await;
        if let Err(e) = &result
            && outcome_unknown(e)
        {
            self.count_tool(&a.tool, e.outcome());
            tracing::warn!(approval_id = %a.id, attempt, error = %e, "the outcome of the HTTP write is unknown; it is retried with the same Idempotency-Key when its lease runs out");
            return Ok(Execution::Retrying);
        }
        let (outcome, label) = self.outcome_of(result);
        self.count_tool(&a.tool, label);
        let done = self.now();
        let mut tx = self.db.pool().begin().await?;
        if !approvals::finish(
            &mut tx,
            tenant,
            &a.id,
            attempt,
            Some(&self.owner),
            &outcome,
            done,
        )
        .await?
        {
            // The lease ran out and a later attempt owns the request now; it records the
            // outcome (the receiver saw both calls under one Idempotency-Key).
            tx.rollback().await?;
            return Ok(Execution::NotClaimed);
        }
        audit::append(
            &mut tx,
            &self.outcome_event(a, tenant, attempt, &outcome),
            done,
        )
        .await?;
        tx.commit().await?;
        self.changed();
        Ok(match outcome {
            Outcome::Executed(_) => Execution::Executed,
            Outcome::Failed(_) => Execution::Failed,
        })
    }

    /// Expires one pending request whose time ran out; false when it was no longer pending.
    async fn expire(&self, tenant: &TenantId, id: &str) -> Result<bool, Error> {
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
            let Ok(tenant) = TenantId::parse(&tenant) else {
                tracing::warn!(approval_id = %id, %tenant, "skipping an approval with an invalid tenant");
                continue;
            };
            if self.expire(&tenant, &id).await? {
                report.expired += 1;
            }
        }
        for (tenant, id) in approvals::due_to_execute(&self.db, self.now(), SWEEP_BATCH).await? {
            let Ok(tenant) = TenantId::parse(&tenant) else {
                tracing::warn!(approval_id = %id, %tenant, "skipping an approval with an invalid tenant");
                continue;
            };
            match self.execute(&tenant, &id).await {
                Ok(Execution::Executed) => report.executed += 1,
                Ok(Execution::Failed) => report.failed += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(approval_id = %id, error = %e.message, "re-driving an approved write failed")
                }
            }
        }
        self.refresh_pending().await;
        Ok(report)
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
    ) -> Result<Vec<String>, Error> {
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

/// The background sweeper: runs [`ApprovalQueue::sweep`] at start (crash recovery) and
/// every `every` (`APPROVAL_SWEEP_SECS`), until `stop`. A sweep in progress finishes first.
pub async fn sweeper(queue: Arc<ApprovalQueue>, every: Duration, stop: Shutdown) {
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
            Err(e) => tracing::warn!(error = %e.message, "approval sweep failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{DateTime, Utc};
    use sqlx::Row;

    use super::*;
    use crate::config::Settings;
    use crate::db::approvals::Release;
    use crate::domain::Roles;
    use crate::guardrails::Policy;

    /// A clock the test moves by hand.
    struct ManualClock(Mutex<i64>);

    impl Clock for ManualClock {
        fn now(&self) -> DateTime<Utc> {
            let ms = *self.0.lock().expect("clock");
            DateTime::from_timestamp_millis(ms).expect("valid time")
        }
    }

    impl ManualClock {
        fn advance(&self, ms: i64) {
            *self.0.lock().expect("clock") += ms;
        }
    }

    struct Fixture {
        queue: ApprovalQueue,
        db: Db,
        clock: Arc<ManualClock>,
        dir: std::path::PathBuf,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    const T0: i64 = 1_750_000_000_000;

    async fn fixture() -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("approvals-unit-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.display()))
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        crate::db::demo::seed(&db).await.expect("seed");
        let tools = Arc::new(Registry::new(&Settings::default()).expect("tools"));
        let clock = Arc::new(ManualClock(Mutex::new(T0)));
        let policy = Policy::load(None).expect("policy");
        let queue = ApprovalQueue::new(
            db.clone(),
            tools,
            Arc::new(Metrics::new()),
            clock.clone(),
            policy.redactor.clone(),
            policy.version.to_string(),
        );
        Fixture {
            queue,
            db,
            clock,
            dir,
        }
    }

    fn tenant() -> TenantId {
        TenantId::parse("demo").expect("tenant")
    }

    fn key(id: &str) -> Principal {
        Principal {
            key_id: id.into(),
            key_name: format!("name-of-{id}"),
            tenant: tenant(),
            roles: Roles::parse("approver").expect("roles"),
        }
    }

    fn record(id: &str, tool: &str, arguments: Value, required: i64, track: &str) -> NewApproval {
        NewApproval {
            id: id.into(),
            tenant: tenant(),
            workflow: "ticket_update".into(),
            tool: tool.into(),
            arguments,
            proposed_change: json!({"resource": "ticket/T-1003", "before": {}, "after": {}, "diff": ""}),
            evidence: json!([]),
            risk_tier: 2,
            requested_by: "key_requester".into(),
            requested_by_user: None,
            request_id: "req_1".into(),
            trace_id: "tr_1".into(),
            required_approvals: required,
            release: Release {
                version: "1.0.0".into(),
                git_sha: "abc".into(),
                track: track.into(),
            },
            policy_version: "guardrails-v3".into(),
            created_at: T0,
            expires_at: T0 + 60_000,
        }
    }

    fn close_ticket(id: &str, ticket: &str) -> NewApproval {
        record(
            id,
            "ticket_update",
            json!({"ticket_id": ticket, "comment": format!("note {id}")}),
            1,
            "stable",
        )
    }

    async fn status(f: &Fixture, id: &str) -> String {
        approvals::get(&f.db, &tenant(), id)
            .await
            .expect("get")
            .expect("exists")
            .status
    }

    async fn actions(f: &Fixture, resource: &str) -> Vec<String> {
        let filter = audit::Filter {
            resource: Some(resource.into()),
            ..Default::default()
        };
        let mut events = audit::list(&f.db, &Chain::Tenant(tenant()), &filter, 100)
            .await
            .expect("audit");
        events.reverse();
        events.into_iter().map(|e| e.action).collect()
    }

    async fn ticket_body(f: &Fixture, id: &str) -> String {
        sqlx::query("SELECT body FROM tickets WHERE tenant = 'demo' AND id = $1")
            .bind(id)
            .fetch_one(f.db.pool())
            .await
            .expect("ticket")
            .get("body")
    }

    async fn verified(f: &Fixture) -> audit::Verification {
        audit::verify(&f.db, &Chain::Tenant(tenant()))
            .await
            .expect("verify")
    }

    #[tokio::test]
    async fn an_approval_executes_the_write_once_and_audits_every_step() {
        let f = fixture().await;
        f.queue
            .create(&close_ticket("apr_1", "T-1003"))
            .await
            .expect("create");
        let a = f
            .queue
            .decide(&key("key_b"), "apr_1", Verdict::Approve, "ok", "req_2")
            .await
            .expect("approve");
        assert_eq!(a.status, "executed");
        assert_eq!(a.attempts, 1);
        assert!(
            a.result.expect("result")["body"]
                .as_str()
                .expect("body")
                .ends_with("note apr_1")
        );
        assert_eq!(
            ticket_body(&f, "T-1003")
                .await
                .matches("note apr_1")
                .count(),
            1
        );
        assert_eq!(
            f.queue.execute(&tenant(), "apr_1").await.expect("again"),
            Execution::NotClaimed,
            "an executed request is never claimed again"
        );
        assert_eq!(
            actions(&f, "approval/apr_1").await,
            [
                "approval.created",
                "approval.approved",
                "approval.executing",
                "approval.executed"
            ]
        );
        let v = verified(&f).await;
        assert!(v.ok, "{v:?}");
        assert_eq!(v.checked, 4);
    }

    #[tokio::test]
    async fn the_requester_cannot_decide_and_a_decision_is_final() {
        let f = fixture().await;
        f.queue
            .create(&close_ticket("apr_1", "T-1003"))
            .await
            .expect("create");
        let err = f
            .queue
            .decide(
                &key("key_requester"),
                "apr_1",
                Verdict::Approve,
                "mine",
                "r",
            )
            .await
            .expect_err("self-approval");
        assert_eq!(err.code, ErrorCode::Forbidden);
        assert!(
            err.message.contains("separation of duties"),
            "{}",
            err.message
        );
        let a = f
            .queue
            .decide(&key("key_b"), "apr_1", Verdict::Reject, "no", "r")
            .await
            .expect("reject");
        assert_eq!(a.status, "rejected");
        for verdict in [Verdict::Approve, Verdict::Reject] {
            let err = f
                .queue
                .decide(&key("key_c"), "apr_1", verdict, "late", "r")
                .await
                .expect_err("decided");
            assert_eq!(err.code, ErrorCode::Conflict, "{}", err.message);
        }
        let err = f
            .queue
            .decide(&key("key_b"), "apr_missing", Verdict::Approve, "x", "r")
            .await
            .expect_err("missing");
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(!ticket_body(&f, "T-1003").await.contains("note apr_1"));
    }

    #[tokio::test]
    async fn two_approvals_are_needed_and_an_approver_counts_once() {
        let f = fixture().await;
        let rec = record(
            "apr_2",
            "invoice_pay",
            json!({"invoice_id": "INV-2002", "amount_usd": 18400.0}),
            2,
            "stable",
        );
        f.queue.create(&rec).await.expect("create");
        let a = f
            .queue
            .decide(&key("key_b"), "apr_2", Verdict::Approve, "first", "r1")
            .await
            .expect("first");
        assert_eq!((a.status.as_str(), a.approvals_count), ("pending", 1));
        let err = f
            .queue
            .decide(&key("key_b"), "apr_2", Verdict::Approve, "again", "r2")
            .await
            .expect_err("same approver");
        assert_eq!(err.code, ErrorCode::Conflict);
        assert_eq!(status(&f, "apr_2").await, "pending");
        let a = f
            .queue
            .decide(&key("key_c"), "apr_2", Verdict::Approve, "second", "r3")
            .await
            .expect("second");
        assert_eq!((a.status.as_str(), a.approvals_count), ("executed", 2));
        let paid: String =
            sqlx::query("SELECT status FROM invoices WHERE tenant = 'demo' AND id = 'INV-2002'")
                .fetch_one(f.db.pool())
                .await
                .expect("invoice")
                .get("status");
        assert_eq!(paid, "paid");
        let decisions = approvals::decisions(&f.db, &tenant(), "apr_2")
            .await
            .expect("decisions");
        assert_eq!(decisions.len(), 2);
    }

    #[tokio::test]
    async fn expiry_follows_the_clock() {
        let f = fixture().await;
        f.queue
            .create(&close_ticket("apr_3", "T-1004"))
            .await
            .expect("create");
        assert_eq!(f.queue.sweep().await.expect("sweep").expired, 0);
        f.clock.advance(60_001);
        let err = f
            .queue
            .decide(&key("key_b"), "apr_3", Verdict::Approve, "late", "r")
            .await
            .expect_err("expired");
        assert_eq!(err.code, ErrorCode::Conflict);
        assert!(err.message.contains("expired"), "{}", err.message);
        assert_eq!(f.queue.sweep().await.expect("sweep").expired, 1);
        assert_eq!(status(&f, "apr_3").await, "expired");
        assert_eq!(f.queue.sweep().await.expect("sweep").expired, 0);
        assert_eq!(
            actions(&f, "approval/apr_3").await,
            ["approval.created", "approval.expired"]
        );
    }

    /// Marks a request approved as a committed decision would, without executing it: the
    /// state a crash right after the decision leaves.
    async fn approve_without_executing(f: &Fixture, id: &str) {
        let mut tx = f.db.pool().begin().await.expect("tx");
        let a = approvals::count_approve(&mut tx, &tenant(), id, T0)
            .await
            .expect("count")
            .expect("pending");
        assert_eq!(a.status, "approved");
        tx.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn a_freeze_refuses_new_writes_and_approvals_and_holds_execution() {
        let f = fixture().await;
        let op = key("key_op");
        let (state, changed) = f
            .queue
            .set_freeze(&op, true, Some("incident 42"), "r")
            .await
            .expect("freeze");
        assert!(state.frozen && changed);
        let (_, changed) = f
            .queue
            .set_freeze(&op, true, Some("again"), "r")
            .await
            .expect("freeze twice");
        assert!(!changed, "freezing a frozen tenant changes nothing");
        let err = f
            .queue
            .create(&close_ticket("apr_4", "T-1005"))
            .await
            .expect_err("frozen");
        assert_eq!(err.code, ErrorCode::WritesFrozen);
        assert!(err.message.contains("incident 42"), "{}", err.message);
        assert!(
            approvals::get(&f.db, &tenant(), "apr_4")
                .await
                .expect("get")
                .is_none(),
            "nothing stored"
        );

        f.queue
            .set_freeze(&op, false, None, "r")
            .await
            .expect("unfreeze");
        f.queue
            .create(&close_ticket("apr_5", "T-1005"))
            .await
            .expect("create");
        f.queue
            .set_freeze(&op, true, Some("again"), "r")
            .await
            .expect("freeze");
        let err = f
            .queue
            .decide(&key("key_b"), "apr_5", Verdict::Approve, "ok", "r")
            .await
            .expect_err("frozen approve");
        assert_eq!(err.code, ErrorCode::WritesFrozen);
        assert_eq!(status(&f, "apr_5").await, "pending");

        // Approved before the freeze, not yet executed: held, then executed once unfrozen.
        approve_without_executing(&f, "apr_5").await;
        assert_eq!(
            f.queue.execute(&tenant(), "apr_5").await.expect("held"),
            Execution::Held
        );
        assert_eq!(status(&f, "apr_5").await, "approved");
        f.queue
            .set_freeze(&op, false, None, "r")
            .await
            .expect("unfreeze");
        assert_eq!(f.queue.sweep().await.expect("sweep").executed, 1);
        assert_eq!(status(&f, "apr_5").await, "executed");
        let all = audit::list(
            &f.db,
            &Chain::Tenant(tenant()),
            &audit::Filter::default(),
            100,
        )
        .await
        .expect("audit");
        let freezes = all
            .iter()
            .filter(|e| e.action.starts_with("writes."))
            .count();
        assert_eq!(
            freezes, 4,
            "two freezes and two unfreezes changed the state"
        );
        assert!(verified(&f).await.ok);
    }

    #[tokio::test]
    async fn a_claim_that_never_commits_leaves_the_request_approved() {
        let f = fixture().await;
        f.queue
            .create(&close_ticket("apr_6", "T-1008"))
            .await
            .expect("create");
        approve_without_executing(&f, "apr_6").await;
        {
            // A process that claimed it and died before committing.
            let mut tx = f.db.pool().begin().await.expect("tx");
            let attempt = approvals::claim(&mut tx, &tenant(), "apr_6", None, T0)
                .await
                .expect("claim");
            assert_eq!(attempt, Some(1));
            let ctx = ToolCtx {
                tenant: tenant(),
                db: f.db.clone(),
            };
            f.queue
                .tools
                .execute_in(
                    &mut tx,
                    &ctx,
                    "ticket_update",
                    &json!({"ticket_id": "T-1008", "comment": "note apr_6"}),
                )
                .await
                .expect("write");
        }
        assert_eq!(status(&f, "apr_6").await, "approved");
        assert!(!ticket_body(&f, "T-1008").await.contains("note apr_6"));
        let sweep = f.queue.sweep().await.expect("sweep");
        assert_eq!(sweep.executed, 1);
        assert_eq!(f.queue.sweep().await.expect("sweep").executed, 0);
        assert_eq!(
            ticket_body(&f, "T-1008")
                .await
                .matches("note apr_6")
                .count(),
            1
        );
        let a = approvals::get(&f.db, &tenant(), "apr_6")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!((a.status.as_str(), a.attempts), ("executed", 1));
    }

    #[tokio::test]
    async fn a_write_that_no_longer_applies_is_recorded_as_failed() {
        let f = fixture().await;
        let rec = record(
            "apr_7",
            "invoice_pay",
            json!({"invoice_id": "INV-2003", "amount_usd": 342.75}),
            1,
            "stable",
        );
        f.queue.create(&rec).await.expect("create");
        let a = f
            .queue
            .decide(&key("key_b"), "apr_7", Verdict::Approve, "ok", "r")
            .await
            .expect("approve");
        assert_eq!(a.status, "failed");
        assert!(a.error.expect("error").contains("already paid"));
        assert_eq!(
            actions(&f, "approval/apr_7")
                .await
                .last()
                .map(String::as_str),
            Some("approval.failed")
        );
    }

    #[tokio::test]
    async fn bulk_cancel_takes_only_pending_requests_of_the_release() {
        let f = fixture().await;
        for (id, ticket, track) in [
            ("apr_c1", "T-1001", "canary"),
            ("apr_c2", "T-1004", "canary"),
            ("apr_s1", "T-1005", "stable"),
        ] {
            let mut rec = close_ticket(id, ticket);
            rec.release.track = track.into();
            f.queue.create(&rec).await.expect("create");
        }
        let err = f
            .queue
            .cancel(&key("key_op"), None, None, "no filter", "r")
            .await
            .expect_err("filter required");
        assert_eq!(err.code, ErrorCode::InvalidInput);
        let ids = f
            .queue
            .cancel(&key("key_op"), Some("canary"), None, "canary aborted", "r")
            .await
            .expect("cancel");
        assert_eq!(ids, ["apr_c1", "apr_c2"]);
        assert_eq!(status(&f, "apr_c1").await, "cancelled");
        assert_eq!(status(&f, "apr_s1").await, "pending");
        let again = f
            .queue
            .cancel(&key("key_op"), Some("canary"), Some("1.0.0"), "again", "r")
            .await
            .expect("cancel");
        assert!(again.is_empty());
        let d = approvals::decisions(&f.db, &tenant(), "apr_c2")
            .await
            .expect("decisions");
        assert_eq!(d[0].decision, "cancel");
        assert_eq!(d[0].reason, "canary aborted");
    }

    #[tokio::test]
    async fn verify_names_the_edited_or_deleted_event() {
        let f = fixture().await;
        for (id, ticket) in [
            ("apr_a", "T-1001"),
            ("apr_b", "T-1004"),
            ("apr_c", "T-1005"),
        ] {
            f.queue
                .create(&close_ticket(id, ticket))
                .await
                .expect("create");
        }
        let v = verified(&f).await;
        assert_eq!((v.ok, v.checked), (true, 3));

        sqlx::query("UPDATE audit_events SET details = '{\"tool\":\"forged\"}' WHERE tenant = 'demo' AND seq = 2")
            .execute(f.db.pool())
            .await
            .expect("tamper");
        let v = verified(&f).await;
        let b = v.first_broken.expect("broken");
        assert_eq!((v.ok, b.seq, v.checked), (false, 2, 1));
        assert!(b.id.is_some() && b.reason.contains("edited"), "{b:?}");

        sqlx::query("DELETE FROM audit_events WHERE tenant = 'demo' AND seq = 2")
            .execute(f.db.pool())
            .await
            .expect("delete");
        let b = verified(&f).await.first_broken.expect("broken");
        assert_eq!((b.seq, b.id.as_deref()), (2, None));
        assert!(b.reason.contains("missing"), "{b:?}");

        sqlx::query("DELETE FROM audit_events WHERE tenant = 'demo' AND seq >= 2")
            .execute(f.db.pool())
            .await
            .expect("truncate");
        let v = verified(&f).await;
        let b = v.first_broken.expect("broken");
        assert_eq!((b.seq, b.id.as_deref(), v.checked), (2, None, 1));
        assert!(b.reason.contains("end of the chain"), "{b:?}");
    }
}
