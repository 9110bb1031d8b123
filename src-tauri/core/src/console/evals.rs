//! The Evals view: the suites, the runs, one run in full, starting a run (followed with
//! `eval_progress` until it ends) and the pass rates over time.

use super::dto::*;
use std::time::Duration;

use super::{CmdResult, Console, lock, map};
use crate::agent::{AgentClient, StartEval};

impl Console {
    pub async fn list_eval_suites(&self) -> CmdResult<Vec<EvalSuite>> {
        let (_, client) = self.active().await?;
        client
            .eval_suites()
            .await?
            .iter()
            .map(map::eval_suite)
            .collect()
    }

    pub async fn list_eval_runs(&self) -> CmdResult<Vec<EvalRunSummary>> {
        let (_, client) = self.active().await?;
        Ok(client
            .eval_runs(None, None)
            .await?
            .items
            .iter()
            .map(map::eval_summary)
            .collect())
    }

    pub async fn get_eval_run(&self, args: EvalRunIdArgs) -> CmdResult<EvalRunDetail> {
        let (_, client) = self.active().await?;
        Ok(map::eval_detail(&client.eval_run(&args.run_id).await?))
    }

    /// Queues a run; `eval_progress` follows while it runs and once when it ends.
    pub async fn start_eval(&self, args: StartEvalArgs) -> CmdResult<EvalRunSummary> {
        self.guard(ActionId::StartEval)?;
        let suite = args.suite.trim();
        if suite.is_empty() {
            return Err(CommandError::invalid(
                "Name the suite to run: golden or adversarial",
            ));
        }
        let (_, client) = self.active().await?;
        let run = self
            .audited(
                "start_eval",
                &format!("eval/{suite}"),
                client.start_eval(&StartEval {
                    suite: suite.to_string(),
                    baseline_run_id: args.baseline_run_id.clone(),
                }),
            )
            .await?;
        let detail = map::eval_detail(&run);
        follow_eval(self, client, run.id.clone());
        Ok(detail.summary)
    }

    pub async fn eval_pass_rates(&self) -> CmdResult<Vec<PassRatePoint>> {
        Ok(map::pass_rates(&self.list_eval_runs().await?))
    }
}

/// Follows an eval run, pushing `eval_progress` on every change and once at the end.
fn follow_eval(console: &Console, client: AgentClient, run_id: String) {
    let c = console.clone();
    let task = tokio::spawn(async move {
        let mut last: Option<EvalProgressEvent> = None;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            match client.eval_run(&run_id).await {
                Ok(run) => {
                    let d = map::eval_detail(&run);
                    let ev = EvalProgressEvent {
                        run_id: run_id.clone(),
                        status: d.summary.status,
                        done: d.summary.done,
                        total: d.summary.total,
                        pass_rate: d.summary.pass_rate,
                    };
                    if last.as_ref() != Some(&ev) {
                        c.emit("eval_progress", &ev);
                    }
                    if matches!(ev.status, EvalRunState::Completed | EvalRunState::Failed) {
                        return;
                    }
                    last = Some(ev);
                }
                Err(e) if e.code().is_transient() => {}
                Err(e) => {
                    tracing::warn!(run = %run_id, error = %e, "stopped following the eval run");
                    return;
                }
            }
        }
    });
    lock(&console.inner.state).tasks.push(task);
}
