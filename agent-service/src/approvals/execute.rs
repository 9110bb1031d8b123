//! Executing an approved write, exactly once across processes: a built-in write inside
//! the claim's transaction, an HTTP write under a lease with `Idempotency-Key: <approval
//! id>` (retried with the same key when the lease runs out).

use std::time::Duration;

use serde_json::{Value, json};

use super::{ApprovalQueue, rfc3339};
use crate::db::approvals::{self, Approval, Lease, Outcome};
use crate::db::audit::{self, NewEvent};
use crate::db::freeze;
use crate::domain::{ApprovalId, TenantId};
use crate::error::Error;
use crate::metrics::ToolLabels;
use crate::tools::{ToolCtx, ToolError};

/// Attempts of an HTTP write before it is marked `failed` with an unknown outcome.
pub const MAX_HTTP_ATTEMPTS: i64 = 5;
/// An HTTP write's lease: the tool's timeout plus this margin.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
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

/// Tool failures after which the write may or may not have happened, or that say nothing
/// about the write (the store did not answer): the request is retried, never `failed`.
fn outcome_unknown(e: &ToolError) -> bool {
    matches!(e, ToolError::Timeout(_) | ToolError::Unavailable { .. })
}

impl ApprovalQueue {
    /// Executes an approved request (or retries an HTTP write whose lease ran out), exactly
    /// once across processes: whoever claims the row runs it, everyone else does nothing.
    pub async fn execute(&self, tenant: &TenantId, id: &ApprovalId) -> Result<Execution, Error> {
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
            .execute_http(ctx, &a.tool, &a.arguments, a.id.as_str())
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
}
