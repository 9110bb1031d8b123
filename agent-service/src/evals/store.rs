//! Storage of eval runs (`eval_runs`) and their case results (`eval_case_results`): create,
//! claim under a lease, record progress, finish, read, list with a cursor.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::baseline::BaselineDiff;
use super::gate::Gate;
use super::result::{CaseResult, Versions};
use super::score::Scores;
use crate::db::{Backend, Db};
use crate::domain::TenantId;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for an eval worker of the same release (see [`Versions::pin`]).
    Queued,
    Running,
    Completed,
    /// The run could not finish (see `error`); its gate is absent, which gates as a fail.
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            other => {
                return Err(sqlx::Error::Decode(
                    format!("unknown eval run status {other:?}").into(),
                ));
            }
        })
    }
}

/// Who executes a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `POST /v1/evals/runs`: a server's eval worker.
    Api,
    /// `agent-service eval run`: the command itself.
    Cli,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Cli => "cli",
        }
    }
}

/// What a completed run concluded; stored as the run's `summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub scores: Scores,
    pub gate: Gate,
    pub baseline: Option<BaselineDiff>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRun {
    pub id: String,
    pub tenant: String,
    pub suite: String,
    pub suite_hash: String,
    pub origin: String,
    pub status: RunState,
    pub done: u64,
    pub total: u64,
    pub baseline_run_id: Option<String>,
    pub versions: Versions,
    pub requested_by: String,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A run to create.
pub struct NewRun<'a> {
    pub id: &'a str,
    pub tenant: &'a TenantId,
    pub suite: &'a str,
    pub suite_hash: &'a str,
    pub origin: Origin,
    pub total: u64,
    pub baseline_run_id: Option<&'a str>,
    pub versions: &'a Versions,
    pub requested_by: &'a str,
    pub now: i64,
}

impl NewRun<'_> {
    /// The run as [`insert`] stores it for a worker: queued, nothing done yet.
    pub fn as_queued(&self) -> EvalRun {
        EvalRun {
            id: self.id.to_string(),
            tenant: self.tenant.to_string(),
            suite: self.suite.to_string(),
            suite_hash: self.suite_hash.to_string(),
            origin: self.origin.as_str().to_string(),
            status: RunState::Queued,
            done: 0,
            total: self.total,
            baseline_run_id: self.baseline_run_id.map(str::to_string),
            versions: self.versions.clone(),
            requested_by: self.requested_by.to_string(),
            outcome: None,
            error: None,
            created_at: self.now,
            started_at: None,
            finished_at: None,
        }
    }
}

pub fn new_run_id() -> String {
    format!("evr_{}", uuid::Uuid::now_v7().simple())
}

const COLUMNS: &str = "id, tenant, suite, suite_hash, origin, status, done, total, baseline_run_id, \
    release_version, git_sha, track, provider, model, prompt_version, policy_version, policy_hash, \
    tool_schema_hash, requested_by, summary, error, created_at, started_at, finished_at";

fn from_row(row: &AnyRow) -> Result<EvalRun, sqlx::Error> {
    let summary: Option<String> = row.try_get("summary")?;
    let outcome = summary
        .map(|s| serde_json::from_str(&s).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()?;
    let done: i64 = row.try_get("done")?;
    let total: i64 = row.try_get("total")?;
    Ok(EvalRun {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        suite: row.try_get("suite")?,
        suite_hash: row.try_get("suite_hash")?,
        origin: row.try_get("origin")?,
        status: RunState::parse(&row.try_get::<String, _>("status")?)?,
        done: done.max(0) as u64,
        total: total.max(0) as u64,
        baseline_run_id: row.try_get("baseline_run_id")?,
        versions: Versions {
            release_version: row.try_get("release_version")?,
            git_sha: row.try_get("git_sha")?,
            track: row.try_get("track")?,
            provider: row.try_get("provider")?,
            model: row.try_get("model")?,
            prompt_version: row.try_get("prompt_version")?,
            policy_version: row.try_get("policy_version")?,
            policy_hash: row.try_get("policy_hash")?,
            tool_schema_hash: row.try_get("tool_schema_hash")?,
        },
        requested_by: row.try_get("requested_by")?,
        outcome,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// Creates a run: `queued` for a worker (API), or already `running` under `worker` with a
/// lease (CLI).
pub async fn insert(
    db: &Db,
    run: &NewRun<'_>,
    worker: Option<(&str, i64)>,
) -> Result<(), sqlx::Error> {
    let v = run.versions;
    let (status, worker_id, lease_until, started_at) = match worker {
        Some((w, lease)) => ("running", Some(w), lease, Some(run.now)),
        None => ("queued", None, 0, None),
    };
    sqlx::query(
        "INSERT INTO eval_runs (id, tenant, suite, suite_hash, origin, status, done, total, baseline_run_id, \
         release_version, git_sha, track, provider, model, prompt_version, policy_version, policy_hash, \
         tool_schema_hash, pin, requested_by, worker, lease_until, created_at, started_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
         $20, $21, $22, $23, $22)",
    )
    .bind(run.id)
    .bind(run.tenant.as_str())
    .bind(run.suite)
    .bind(run.suite_hash)
    .bind(run.origin.as_str())
    .bind(status)
    .bind(run.total as i64)
    .bind(run.baseline_run_id)
    .bind(&v.release_version)
    .bind(&v.git_sha)
    .bind(&v.track)
    .bind(&v.provider)
    .bind(&v.model)
    .bind(&v.prompt_version)
    .bind(&v.policy_version)
    .bind(&v.policy_hash)
    .bind(&v.tool_schema_hash)
    .bind(v.pin())
    .bind(run.requested_by)
    .bind(worker_id)
    .bind(lease_until)
    .bind(run.now)
    .bind(started_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Claims the oldest API run for this pin that is queued, or running under an expired
/// lease (its worker died), and returns its id.
pub async fn claim_next(
    db: &Db,
    pin: &str,
    worker: &str,
    now: i64,
    lease_until: i64,
) -> Result<Option<String>, sqlx::Error> {
    // A read first: the worker polls, and an idle poll should not take SQLite's write lock.
    let waiting = sqlx::query(
        "SELECT id FROM eval_runs WHERE origin = 'api' AND pin = $1 \
         AND (status = 'queued' OR (status = 'running' AND lease_until < $2)) LIMIT 1",
    )
    .bind(pin)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    if waiting.is_none() {
        return Ok(None);
    }
    let claimable = "origin = 'api' AND pin = $3 AND (status = 'queued' OR (status = 'running' AND lease_until < $4))";
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        // One statement, and SQLite has a single writer: nobody can claim in between.
        Backend::Sqlite => "",
    };
    // The outer condition is re-checked on the locked row (PostgreSQL), so two workers
    // never both claim the same run.
    let sql = format!(
        "UPDATE eval_runs SET status = 'running', worker = $1, lease_until = $2, \
         started_at = COALESCE(started_at, $4), updated_at = $4 \
         WHERE id = (SELECT id FROM eval_runs WHERE {claimable} ORDER BY created_at, id LIMIT 1{lock}) \
         AND {claimable} RETURNING id"
    );
    let row = sqlx::query(&sql)
        .bind(worker)
        .bind(lease_until)
        .bind(pin)
        .bind(now)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| r.try_get("id")).transpose()
}

/// Stores a case result and the run's progress, and extends the lease. `false` when the
/// worker no longer holds the run (its lease expired and another worker took it over).
pub async fn record_case(
    db: &Db,
    run_id: &str,
    worker: &str,
    seq: u64,
    result: &CaseResult,
    now: i64,
    lease_until: i64,
) -> Result<bool, sqlx::Error> {
    let json = serde_json::to_string(result).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let mut tx = db.pool().begin().await?;
    // A write first, so SQLite takes its write lock at once.
    let held = sqlx::query(
        "UPDATE eval_runs SET lease_until = $1, updated_at = $2 \
         WHERE id = $3 AND worker = $4 AND status = 'running'",
    )
    .bind(lease_until)
    .bind(now)
    .bind(run_id)
    .bind(worker)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if held == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO eval_case_results (run_id, seq, case_id, passed, status, latency_ms, result, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id, case_id) DO NOTHING",
    )
    .bind(run_id)
    .bind(seq as i64)
    .bind(&result.case_id)
    .bind(i64::from(result.passed))
    .bind(&result.status)
    .bind(result.latency_ms as i64)
    .bind(json)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE eval_runs SET done = (SELECT COUNT(*) FROM eval_case_results WHERE run_id = $1) \
         WHERE id = $1",
    )
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Puts a run this worker holds back in the queue (shutdown), keeping its results.
pub async fn release(db: &Db, run_id: &str, worker: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE eval_runs SET status = 'queued', worker = NULL, lease_until = 0, updated_at = $1 \
         WHERE id = $2 AND worker = $3 AND status = 'running'",
    )
    .bind(now)
    .bind(run_id)
    .bind(worker)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Marks a run completed with its outcome. `false` when the worker lost the run.
pub async fn complete(
    db: &Db,
    run_id: &str,
    worker: &str,
    outcome: &Outcome,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let summary = serde_json::to_string(outcome).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let n = sqlx::query(
        "UPDATE eval_runs SET status = 'completed', pass_rate = $1, gate = $2, summary = $3, \
         finished_at = $4, updated_at = $4, lease_until = 0 \
         WHERE id = $5 AND worker = $6 AND status = 'running'",
    )
    .bind(outcome.scores.pass_rate)
    .bind(outcome.gate.verdict.as_str())
    .bind(summary)
    .bind(now)
    .bind(run_id)
    .bind(worker)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Marks a run failed: it cannot finish (its suite is gone or changed, the database
/// failed mid-run, …).
pub async fn fail(db: &Db, run_id: &str, error: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE eval_runs SET status = 'failed', error = $1, finished_at = $2, updated_at = $2, \
         lease_until = 0 WHERE id = $3 AND status IN ('queued', 'running')",
    )
    .bind(error)
    .bind(now)
    .bind(run_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// One run of the tenant; another tenant's run is not found.
pub async fn get(db: &Db, tenant: &TenantId, id: &str) -> Result<Option<EvalRun>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM eval_runs WHERE tenant = $1 AND id = $2"
    ))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A run by id alone, for the worker that executes it.
pub async fn get_any(db: &Db, id: &str) -> Result<Option<EvalRun>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM eval_runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The newest completed run of a suite in the tenant (for `--baseline latest`).
pub async fn latest_completed(
    db: &Db,
    tenant: &TenantId,
    suite: &str,
) -> Result<Option<EvalRun>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM eval_runs WHERE tenant = $1 AND suite = $2 AND status = 'completed' \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(tenant.as_str())
    .bind(suite)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A run's case results, in suite order.
pub async fn case_results(db: &Db, run_id: &str) -> Result<Vec<CaseResult>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT result FROM eval_case_results WHERE run_id = $1 ORDER BY seq, case_id")
            .bind(run_id)
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| {
            let text: String = r.try_get("result")?;
            serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .collect()
}

/// Filters and position of [`list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub suite: Option<String>,
    pub release_version: Option<String>,
    /// Only runs before this `(created_at, id)` (the cursor).
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

/// The tenant's runs, newest first.
pub async fn list(db: &Db, tenant: &TenantId, f: &ListFilter) -> Result<Vec<EvalRun>, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM eval_runs WHERE tenant = $1");
    let mut n = 1;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.suite.is_some() {
        sql.push_str(&format!(" AND suite = {}", next()));
    }
    if f.release_version.is_some() {
        sql.push_str(&format!(" AND release_version = {}", next()));
    }
    if f.before.is_some() {
        let (a, b, c) = (next(), next(), next());
        sql.push_str(&format!(
            " AND (created_at < {a} OR (created_at = {b} AND id < {c}))"
        ));
    }
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        next()
    ));
    let mut q = sqlx::query(&sql).bind(tenant.as_str());
    if let Some(s) = &f.suite {
        q = q.bind(s);
    }
    if let Some(v) = &f.release_version {
        q = q.bind(v);
    }
    if let Some((at, id)) = &f.before {
        q = q.bind(*at).bind(*at).bind(id);
    }
    let rows = q.bind(i64::from(f.limit)).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::demo::testing::empty;
    use crate::evals::score::tests::result;

    fn versions(track: &str) -> Versions {
        Versions {
            release_version: "1.2.3".into(),
            git_sha: "abc".into(),
            track: track.into(),
            provider: "scripted".into(),
            model: "scripted-v1".into(),
            prompt_version: "p".into(),
            policy_version: "guardrails-v3".into(),
            policy_hash: "h".into(),
            tool_schema_hash: "t".into(),
        }
    }

    async fn queue(db: &Db, id: &str, v: &Versions, now: i64) {
        let tenant = TenantId::parse("demo").unwrap();
        insert(
            db,
            &NewRun {
                id,
                tenant: &tenant,
                suite: "golden",
                suite_hash: "s",
                origin: Origin::Api,
                total: 2,
                baseline_run_id: None,
                versions: v,
                requested_by: "key_1",
                now,
            },
            None,
        )
        .await
        .expect("insert");
    }

    #[tokio::test]
    async fn claims_by_pin_records_progress_and_survives_a_dead_worker() {
        let t = empty().await;
        let db = &t.db;
        let stable = versions("stable");
        queue(db, "evr_a", &stable, 1_000).await;
        queue(db, "evr_b", &versions("canary"), 1_001).await;

        // A canary worker only sees the canary run.
        let canary_pin = versions("canary").pin();
        assert_eq!(
            claim_next(db, &canary_pin, "w-canary", 2_000, 9_000)
                .await
                .unwrap()
                .as_deref(),
            Some("evr_b")
        );
        assert_eq!(
            claim_next(db, &canary_pin, "w-canary", 2_000, 9_000)
                .await
                .unwrap(),
            None
        );

        let pin = stable.pin();
        assert_eq!(
            claim_next(db, &pin, "w1", 2_000, 5_000)
                .await
                .unwrap()
                .as_deref(),
            Some("evr_a")
        );
        // Held under a live lease: nobody else gets it.
        assert_eq!(
            claim_next(db, &pin, "w2", 4_999, 9_000).await.unwrap(),
            None
        );
        assert!(
            record_case(db, "evr_a", "w1", 0, &result("c1", 3), 3_000, 6_000)
                .await
                .unwrap()
        );
        let run = get_any(db, "evr_a").await.unwrap().unwrap();
        assert_eq!((run.status, run.done, run.total), (RunState::Running, 1, 2));

        // w1 dies; once its lease expires w2 takes over and w1 can no longer write.
        assert_eq!(
            claim_next(db, &pin, "w2", 6_001, 12_000)
                .await
                .unwrap()
                .as_deref(),
            Some("evr_a")
        );
        assert!(
            !record_case(db, "evr_a", "w1", 1, &result("c2", 3), 6_002, 9_000)
                .await
                .unwrap()
        );
        assert!(
            record_case(db, "evr_a", "w2", 1, &result("c2", 4), 6_003, 12_000)
                .await
                .unwrap()
        );
        // Recording the same case again does not count it twice.
        assert!(
            record_case(db, "evr_a", "w2", 1, &result("c2", 4), 6_004, 12_000)
                .await
                .unwrap()
        );
        let cases = case_results(db, "evr_a").await.unwrap();
        assert_eq!(
            cases.iter().map(|c| c.case_id.as_str()).collect::<Vec<_>>(),
            ["c1", "c2"]
        );
        assert_eq!(get_any(db, "evr_a").await.unwrap().unwrap().done, 2);

        // Released at shutdown, it is queued again with its results kept.
        release(db, "evr_a", "w2", 7_000).await.unwrap();
        let run = get_any(db, "evr_a").await.unwrap().unwrap();
        assert_eq!((run.status, run.done), (RunState::Queued, 2));
    }

    #[tokio::test]
    async fn lists_newest_first_with_filters_and_cursor() {
        let t = empty().await;
        let db = &t.db;
        let v = versions("stable");
        for i in 0..5 {
            queue(db, &format!("evr_{i}"), &v, 1_000 + i).await;
        }
        let demo = TenantId::parse("demo").unwrap();
        let page = list(
            db,
            &demo,
            &ListFilter {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["evr_4", "evr_3"]
        );
        let last = page.last().unwrap();
        let rest = list(
            db,
            &demo,
            &ListFilter {
                before: Some((last.created_at, last.id.clone())),
                limit: 10,
                suite: Some("golden".into()),
                release_version: Some("1.2.3".into()),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["evr_2", "evr_1", "evr_0"]
        );
        let none = list(
            db,
            &demo,
            &ListFilter {
                release_version: Some("9.9.9".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(none.is_empty());
        let other = TenantId::parse("other").unwrap();
        assert!(
            list(
                db,
                &other,
                &ListFilter {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
        );
        assert!(get(db, &other, "evr_1").await.unwrap().is_none());
        assert!(get(db, &demo, "evr_1").await.unwrap().is_some());
    }
}
