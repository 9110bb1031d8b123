//! The eval worker of a serving process: claims queued API runs pinned to this release,
//! runs them, and at shutdown puts an unfinished run back in the queue (its recorded cases
//! are kept, so the next worker resumes where this one stopped).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::result::Versions;
use super::runner::{self, Ctx, Driven};
use super::store;
use super::suite::{self, Suite};
use crate::config::Settings;
use crate::db::Db;
use crate::engine::Engine;
use crate::guardrails::Policy;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::traces::TraceSink;
use crate::workflows::Workflow;

/// How often the worker looks for runs queued through another replica.
const POLL: Duration = Duration::from_secs(2);

/// What the eval worker works with; built once by the serving process.
pub struct Context {
    pub settings: Arc<Settings>,
    pub policy: Arc<Policy>,
    pub db: Db,
    pub http: reqwest::Client,
    /// The serving engine's trace sink: eval runs are traced like every other run.
    pub traces: TraceSink,
    /// The workflows cases may name, by name.
    pub workflows: Arc<BTreeMap<String, Arc<Workflow>>>,
    /// The versions this process serves: it takes only runs pinned to them.
    pub versions: Versions,
    /// Woken when `POST /v1/evals/runs` queues a run.
    pub wakeup: Arc<Notify>,
    pub stop: Shutdown,
}

/// The engine eval runs use: the process's provider config, tools, policy and trace
/// sink, but its own metrics registry, so eval traffic (dozens of blocked attacks) never
/// shows in the request, guardrail and approval metrics that canary analysis reads.
pub async fn eval_engine(ctx: &Context) -> anyhow::Result<Engine> {
    let mut rt = crate::runtime::build_runtime(
        ctx.settings.clone(),
        ctx.policy.clone(),
        ctx.db.clone(),
        Arc::new(Metrics::new()),
        ctx.http.clone(),
    )
    .await?;
    rt.engine.traces = ctx.traces.clone();
    Ok(rt.engine)
}

/// The worker task: takes queued runs of this release until `ctx.stop`.
pub async fn run(ctx: Context) {
    let engine = match eval_engine(&ctx).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "the eval worker cannot start; API eval runs stay queued"
            );
            return;
        }
    };
    let suites = match suite::builtin() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the shipped eval suites do not parse; API eval runs stay queued");
            return;
        }
    };
    let pin = ctx.versions.pin();
    let worker = format!("evw_{}", uuid::Uuid::now_v7().simple());
    let run_ctx = Ctx {
        engine: &engine,
        workflows: &ctx.workflows,
        lease: runner::lease_for(&ctx.settings.budgets),
    };
    loop {
        let now = engine.clock.now().timestamp_millis();
        let lease_until = now + run_ctx.lease.as_millis() as i64;
        match store::claim_next(&ctx.db, &pin, &worker, now, lease_until).await {
            Ok(Some(id)) => {
                let retry_later = process(&ctx, &run_ctx, &suites, &id, &worker).await;
                if ctx.stop.is_stopping() {
                    break;
                }
                if !retry_later {
                    continue;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "looking for queued eval runs failed; will retry"),
        }
        tokio::select! {
            () = ctx.wakeup.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            () = ctx.stop.wait() => break,
        }
    }
    if let Err(e) = engine.ledger.flush().await {
        tracing::warn!(error = %e, "flushing eval usage failed");
    }
}

/// Runs one claimed run to its end. `true` when it went back to the queue after an error,
/// so the worker waits before claiming again.
async fn process(
    worker_ctx: &Context,
    ctx: &Ctx<'_>,
    suites: &[Suite],
    id: &str,
    worker: &str,
) -> bool {
    let db = &worker_ctx.db;
    let now = || ctx.engine.clock.now().timestamp_millis();
    let run = match store::get_any(db, id).await {
        Ok(Some(run)) => run,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(eval_run = %id, error = %e, "reading a claimed eval run failed; it is retried when its lease expires");
            return true;
        }
    };
    let fail = |message: String| async move {
        tracing::warn!(eval_run = %id, error = %message, "eval run failed");
        if let Err(e) = store::fail(db, id, &message, now()).await {
            tracing::warn!(eval_run = %id, error = %e, "marking the eval run failed did not work");
        }
    };
    let Some(suite) = suites.iter().find(|s| s.name == run.suite) else {
        fail(format!(
            "suite {:?} is not shipped with this release",
            run.suite
        ))
        .await;
        return false;
    };
    if suite.hash != run.suite_hash {
        fail(format!(
            "suite {:?} changed since the run was requested (hash {} then, {} now)",
            run.suite, run.suite_hash, suite.hash
        ))
        .await;
        return false;
    }
    if let Err(e) = runner::prepare(db).await {
        tracing::warn!(eval_run = %id, error = %e, "seeding the eval tenant failed; the run goes back to the queue");
        let _ = store::release(db, id, worker, now()).await;
        return true;
    }
    tracing::info!(eval_run = %id, suite = %suite.name, cases = suite.cases.len(), "eval run started");
    let driven = runner::drive(ctx, id, suite, worker, worker_ctx.stop.wait(), |r, done, total| {
        tracing::debug!(eval_run = %id, case = %r.case_id, passed = r.passed, done, total, "eval case finished");
    })
    .await;
    let retry_later = driven.is_err();
    match driven {
        Ok(Driven::Done) => {
            match runner::finish(ctx, &worker_ctx.settings.eval_gate, &run, worker).await {
                Ok(Some(outcome)) => tracing::info!(
                    eval_run = %id,
                    suite = %suite.name,
                    pass_rate = outcome.scores.pass_rate,
                    gate = outcome.gate.verdict.as_str(),
                    "eval run completed"
                ),
                Ok(None) => {
                    tracing::warn!(eval_run = %id, "another worker took the eval run over before it completed")
                }
                Err(e) => {
                    tracing::warn!(eval_run = %id, error = %e.message, "completing the eval run failed; it goes back to the queue");
                    let _ = store::release(db, id, worker, now()).await;
                    return true;
                }
            }
        }
        Ok(Driven::Stopped) => {
            tracing::info!(eval_run = %id, "shutting down: the eval run goes back to the queue with its finished cases");
            if let Err(e) = store::release(db, id, worker, now()).await {
                tracing::warn!(eval_run = %id, error = %e, "releasing the eval run failed; it is retried when its lease expires");
            }
        }
        Ok(Driven::Lost) => {
            tracing::warn!(eval_run = %id, "another worker took the eval run over (this worker's lease expired)")
        }
        Err(e) => {
            tracing::warn!(eval_run = %id, error = %e.message, "the eval run hit an error; it goes back to the queue");
            let _ = store::release(db, id, worker, now()).await;
        }
    }
    retry_later
}
