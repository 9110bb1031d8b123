//! `agent-service eval run`: runs a suite in process against the configured database and
//! provider, stores the run, writes `<suite>-<run>.json`, `.md` and `.junit.xml`, prints a
//! summary, and with `--gate` exits non-zero when the gate fails, so CI can block a release.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::report::{self, Finished, ModelServer};
use super::result::{CaseResult, Versions};
use super::runner::{self, Ctx, Driven};
use super::store::{self, EvalRun, NewRun, Origin, Outcome, RunState};
use super::suite::{self, Suite};
use crate::config::Settings;
use crate::db::Db;
use crate::domain::TenantId;
use crate::guardrails::Policy;
use crate::metrics::Metrics;

/// The gate failed (with `--gate`).
pub const EXIT_GATE_FAILED: u8 = 1;
/// Bad flags, an unknown suite or baseline, a malformed suite file.
pub const EXIT_USAGE: u8 = 2;
/// The run could not complete (database, start-up, interrupted, reports not written).
pub const EXIT_RUN_FAILED: u8 = 3;

/// The flags of `eval run`.
#[derive(Debug, Clone)]
pub struct Options {
    pub suite: String,
    pub gate: bool,
    /// `latest` or a run id.
    pub baseline: Option<String>,
    pub out: PathBuf,
    pub suites_dir: Option<PathBuf>,
    /// The tenant that owns the stored run (who can read it over the API).
    pub tenant: String,
}

impl From<crate::cli::EvalCommand> for Options {
    fn from(cmd: crate::cli::EvalCommand) -> Self {
        let crate::cli::EvalCommand::Run {
            suite,
            gate,
            baseline,
            out,
            suites_dir,
            tenant,
        } = cmd;
        Self {
            suite,
            gate,
            baseline,
            out,
            suites_dir,
            tenant,
        }
    }
}

enum Failure {
    Usage(String),
    Run(String),
}

/// Runs the command; every failure is printed to stderr and mapped to its exit status.
pub async fn run(opts: Options, settings: Settings, policy: Policy) -> ExitCode {
    match execute(&opts, settings, policy).await {
        Ok(code) => code,
        Err(Failure::Usage(m)) => {
            eprintln!("agent-service eval run: {m}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Run(m)) => {
            eprintln!("agent-service eval run: {m}");
            ExitCode::from(EXIT_RUN_FAILED)
        }
    }
}

fn pick_suite(opts: &Options) -> Result<Suite, Failure> {
    let suites = match &opts.suites_dir {
        Some(dir) => suite::load_dir(dir),
        None => suite::builtin(),
    }
    .map_err(|e| Failure::Usage(e.to_string()))?;
    let names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
    let Some(found) = suites.iter().find(|s| s.name == opts.suite) else {
        let place = opts.suites_dir.as_ref().map_or_else(
            || "shipped suites".to_string(),
            |d| format!("suites in {}", d.display()),
        );
        return Err(Failure::Usage(format!(
            "--suite: unknown suite {:?}; {place}: {}",
            opts.suite,
            names.join(", ")
        )));
    };
    Ok(found.clone())
}

async fn resolve_baseline(
    db: &Db,
    tenant: &TenantId,
    suite: &Suite,
    baseline: Option<&str>,
) -> Result<Option<String>, Failure> {
    let db_err = |e: sqlx::Error| Failure::Run(format!("reading the baseline run failed: {e}"));
    match baseline {
        None => Ok(None),
        Some("latest") => {
            let found = store::latest_completed(db, tenant, &suite.name)
                .await
                .map_err(db_err)?;
            if found.is_none() {
                eprintln!(
                    "note: --baseline latest: no completed run of suite {} in tenant {tenant} yet; running without a baseline",
                    suite.name
                );
            }
            Ok(found.map(|r| r.id))
        }
        Some(id) => {
            let run = store::get(db, tenant, id).await.map_err(db_err)?.ok_or_else(|| {
                Failure::Usage(format!(
                    "--baseline: no eval run {id:?} in tenant {tenant}; use `latest` or a run id from GET /v1/evals/runs"
                ))
            })?;
            if run.suite != suite.name {
                return Err(Failure::Usage(format!(
                    "--baseline: run {id} is of suite {:?}, not {:?}",
                    run.suite, suite.name
                )));
            }
            if run.status != RunState::Completed {
                return Err(Failure::Usage(format!(
                    "--baseline: run {id} is {}, not completed",
                    run.status.as_str()
                )));
            }
            Ok(Some(run.id))
        }
    }
}

async fn execute(opts: &Options, settings: Settings, policy: Policy) -> Result<ExitCode, Failure> {
    let suite = pick_suite(opts)?;
    let tenant =
        TenantId::parse(&opts.tenant).map_err(|e| Failure::Usage(format!("--tenant: {e}")))?;
    let run_err = |what: &str, e: &dyn std::fmt::Display| Failure::Run(format!("{what}: {e}"));

    let db = Db::open(&settings.database)
        .await
        .map_err(|e| Failure::Run(format!("{e:#}")))?;
    let baseline = resolve_baseline(&db, &tenant, &suite, opts.baseline.as_deref()).await?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| run_err("building the HTTP client", &e))?;
    let server = model_server(&settings, &http).await;
    let gate_settings = settings.eval_gate.clone();
    let settings = Arc::new(settings);
    let rt = crate::runtime::build_runtime(
        settings.clone(),
        Arc::new(policy),
        db.clone(),
        Arc::new(Metrics::new()),
        http,
    )
    .await
    .map_err(|e| Failure::Run(format!("{e:#}")))?;
    let versions = Versions::from_info(&rt.info);
    let workflows = runner::workflow_map(rt.workflows);
    let engine = rt.engine;
    runner::prepare(&db)
        .await
        .map_err(|e| run_err("seeding the eval tenant failed", &e))?;

    let ctx = Ctx {
        engine: &engine,
        workflows: &workflows,
        lease: runner::lease_for(&settings.budgets),
    };
    let id = store::new_run_id();
    let worker = format!("cli_{}", uuid::Uuid::now_v7().simple());
    let now = engine.clock.now().timestamp_millis();
    store::insert(
        &db,
        &NewRun {
            id: &id,
            tenant: &tenant,
            suite: &suite.name,
            suite_hash: &suite.hash,
            origin: Origin::Cli,
            total: suite.cases.len() as u64,
            baseline_run_id: baseline.as_deref(),
            versions: &versions,
            requested_by: "cli",
            now,
        },
        Some((&worker, now + ctx.lease.as_millis() as i64)),
    )
    .await
    .map_err(|e| run_err("storing the run failed", &e))?;
    eprintln!(
        "eval run {id}: suite {} ({} cases) against {} {}/{}",
        suite.name,
        suite.cases.len(),
        versions.release_version,
        versions.provider,
        versions.model
    );

    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let driven = runner::drive(&ctx, &id, &suite, &worker, interrupted, |r, done, total| {
        eprintln!(
            "[{done}/{total}] {} {} ({}, {} ms)",
            if r.passed { "pass" } else { "FAIL" },
            r.case_id,
            r.status,
            r.latency_ms
        );
    })
    .await;
    match driven {
        Ok(Driven::Done) => {}
        Ok(Driven::Stopped) => return Err(abandon(&engine, &id, "interrupted".into()).await),
        Ok(Driven::Lost) => {
            return Err(abandon(&engine, &id, "another process took the run over".into()).await);
        }
        Err(e) => return Err(abandon(&engine, &id, e.message).await),
    }
    let run_row = store::get(&db, &tenant, &id)
        .await
        .map_err(|e| run_err("reading the run back failed", &e))?
        .ok_or_else(|| Failure::Run(format!("run {id} disappeared from the database")))?;
    let outcome = match runner::finish(&ctx, &gate_settings, &run_row, &worker).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Err(abandon(&engine, &id, "another process took the run over".into()).await);
        }
        Err(e) => return Err(abandon(&engine, &id, e.message).await),
    };
    if let Err(e) = engine.ledger.flush().await {
        eprintln!("warning: flushing the eval tenant's usage failed: {e}");
    }
    let run_row = store::get(&db, &tenant, &id)
        .await
        .map_err(|e| run_err("reading the run back failed", &e))?
        .ok_or_else(|| Failure::Run(format!("run {id} disappeared from the database")))?;
    let cases = store::case_results(&db, &id)
        .await
        .map_err(|e| run_err("reading the case results failed", &e))?;
    db.close().await;

    let written = write_reports(&opts.out, &run_row, &outcome, &cases, &server).map_err(|e| {
        run_err(
            &format!("writing the reports to {} failed", opts.out.display()),
            &e,
        )
    })?;
    print!("{}", summary(&run_row, &outcome, &cases, &written));
    println!(
        "  model server: {} {} at {} (the server lists it as {})",
        server.provider,
        server.model,
        server.host.as_deref().unwrap_or("(in process)"),
        server
            .server_model_id
            .as_deref()
            .unwrap_or("(not reported)")
    );
    if opts.gate && outcome.gate.verdict == super::gate::Verdict::Fail {
        return Ok(ExitCode::from(EXIT_GATE_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Marks the run failed and cancels the approvals it left pending.
async fn abandon(engine: &crate::engine::Engine, id: &str, message: String) -> Failure {
    let now = engine.clock.now().timestamp_millis();
    if let Err(e) = store::fail(&engine.db, id, &message, now).await {
        eprintln!("warning: marking run {id} failed did not work: {e}");
    }
    if let Err(e) = runner::cancel_approvals(engine, id).await {
        eprintln!(
            "warning: cancelling the approvals of run {id} failed: {}",
            e.message
        );
    }
    Failure::Run(format!("run {id} failed: {message}"))
}

/// Writes `<suite>-<run>.json`, `.md` and `.junit.xml` into `dir` (created if missing).
fn write_reports(
    dir: &Path,
    run: &EvalRun,
    outcome: &Outcome,
    cases: &[CaseResult],
    server: &ModelServer,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let base = format!("{}-{}", run.suite, run.id);
    let finished = Finished {
        run,
        outcome,
        cases,
    };
    // The API's run document, as the API serves it (the model server is in the
    // Markdown report and the summary).
    let json =
        serde_json::to_string_pretty(&super::document::run_document(run.clone(), cases.to_vec()))
            .map_err(std::io::Error::other)?;
    let files = [
        (format!("{base}.json"), json + "\n"),
        (
            format!("{base}.md"),
            with_server(report::markdown(&finished), server),
        ),
        (format!("{base}.junit.xml"), report::junit(&finished)),
    ];
    let mut written = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        written.push(path);
    }
    Ok(written)
}

/// The Markdown report with the model server's section after the versions table.
fn with_server(mut md: String, server: &ModelServer) -> String {
    let section = report::model_server_section(server);
    match md
        .find("## Versions")
        .and_then(|at| md[at..].find("\n\n## ").map(|end| at + end + 2))
    {
        Some(at) => md.insert_str(at, &section),
        None => md.push_str(&section),
    }
    md
}

/// The model server of the configured provider: its host, and the model id its
/// OpenAI-compatible `/v1/models` lists (Ollama serves that list too). A server that does
/// not answer leaves the id unknown; the run itself then reports the failures.
async fn model_server(settings: &Settings, http: &reqwest::Client) -> ModelServer {
    use crate::config::ProviderKind;
    let models_url = match settings.providers.provider {
        ProviderKind::Openai => Some(crate::providers::endpoint(
            &settings.providers.openai_base_url,
            "models",
        )),
        ProviderKind::Ollama => Some(crate::providers::endpoint(
            &settings.providers.ollama_base_url,
            "v1/models",
        )),
        ProviderKind::Scripted => None,
    };
    let host = models_url.as_ref().and_then(|u| {
        let host = u.host_str()?;
        Some(match u.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        })
    });
    let mut server_model_id = None;
    if let Some(url) = models_url {
        let mut req = http.get(url).timeout(Duration::from_secs(10));
        if settings.providers.provider == ProviderKind::Openai
            && let Some(key) = &settings.providers.openai_api_key
        {
            req = req.bearer_auth(key.expose());
        }
        if let Ok(resp) = req.send().await
            && let Ok(list) = resp.json::<serde_json::Value>().await
        {
            let ids: Vec<&str> = list["data"]
                .as_array()
                .map(|d| d.iter().filter_map(|m| m["id"].as_str()).collect())
                .unwrap_or_default();
            let wanted = settings.model();
            server_model_id = ids
                .iter()
                .find(|id| **id == wanted)
                .or(ids.first())
                .map(|id| id.to_string());
        }
    }
    ModelServer {
        provider: settings.providers.provider.as_str().to_string(),
        model: settings.model().to_string(),
        host,
        server_model_id,
    }
}

fn pct(f: Option<f64>) -> String {
    f.map_or_else(|| "n/a".into(), |f| format!("{:.1}%", f * 100.0))
}

/// The summary printed on stdout.
fn summary(run: &EvalRun, o: &Outcome, cases: &[CaseResult], written: &[PathBuf]) -> String {
    let s = &o.scores;
    let v = &run.versions;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "eval run {} of suite {}: {}/{} passed ({})",
        run.id,
        run.suite,
        s.passed,
        s.cases,
        pct(Some(s.pass_rate))
    );
    let _ = writeln!(
        out,
        "  policy compliance {} ({}/{}), citation rate {} ({}/{}), latency p50 {} ms p95 {} ms, tokens {}, cost ${:.6}",
        pct(s.policy_compliance),
        s.compliant_cases,
        s.adversarial_cases,
        pct(s.citation_rate),
        s.cited_answers,
        s.citation_answers,
        s.latency_p50_ms,
        s.latency_p95_ms,
        s.total_tokens,
        s.cost_usd
    );
    let _ = writeln!(
        out,
        "  versions: release {} (git {}, track {}), {}/{}, prompts {}, policy {} ({}), tools {}",
        v.release_version,
        v.git_sha,
        v.track,
        v.provider,
        v.model,
        v.prompt_version,
        v.policy_version,
        v.policy_hash,
        v.tool_schema_hash
    );
    if let Some(b) = &o.baseline {
        let flips: Vec<String> = b
            .flipped
            .iter()
            .map(|f| format!("{} {}->{}", f.case_id, f.before, f.after))
            .collect();
        let _ = writeln!(
            out,
            "  baseline {}: pass rate {:+.1} pp, {} flipped ({} regressions){}",
            b.baseline_run_id,
            b.deltas.pass_rate * 100.0,
            b.flipped.len(),
            b.regressions,
            if flips.is_empty() {
                String::new()
            } else {
                format!(": {}", flips.join(", "))
            }
        );
    }
    for c in cases.iter().filter(|c| !c.passed) {
        let why: Vec<String> = match &c.error {
            Some(e) => vec![e.clone()],
            None => c
                .assertions
                .iter()
                .filter(|a| !a.passed)
                .map(|a| format!("{}: expected {}; actual {}", a.kind, a.expected, a.actual))
                .collect(),
        };
        let _ = writeln!(
            out,
            "  FAIL {} ({}): {}",
            c.case_id,
            c.status,
            why.join(" | ")
        );
    }
    let _ = writeln!(out, "gate: {}", o.gate.verdict.as_str().to_uppercase());
    for r in &o.gate.reasons {
        let _ = writeln!(out, "  - {r}");
    }
    let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(out, "reports: {}", paths.join(", "));
    out
}
