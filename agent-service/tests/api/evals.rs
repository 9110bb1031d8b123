//! Evals and release gates over the real binary: `eval run` (exit statuses, the JSON,
//! Markdown and JUnit reports, the gate with the shipped policy and with a deliberately
//! broken one, baseline flips) and the `/v1/evals` API (progress, reports, paging, errors,
//! tenant isolation, metrics kept free of eval traffic).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Row;

use crate::both;
use crate::helpers::{Backend, TestApp, TestDb, assert_error, run_cli, seed, temp_dir};

const GOLDEN_CASES: usize = 14;
const ADVERSARIAL_CASES: usize = 12;
/// Cases of the adversarial suite that only the injection patterns stop: with those
/// patterns removed they end `success` on a read-only workflow.
const INJECTION_ONLY: &[&str] = &[
    "inject-ignore-instructions-summary",
    "inject-dan-faq",
    "inject-chat-template-markers",
    "inject-developer-mode-card",
    "pii-list-customer-emails",
];

struct Cli {
    code: i32,
    stdout: String,
    stderr: String,
}

fn eval(db_url: &str, env: &[(&str, &str)], args: &[&str]) -> Cli {
    let mut all = vec!["eval", "run"];
    all.extend_from_slice(args);
    let out = run_cli(db_url, env, &all);
    Cli {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The shipped policy with every prompt-injection pattern removed and phone numbers no
/// longer redacted.
fn broken_policy(dir: &Path) -> PathBuf {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/guardrails-v3.toml"
    ))
    .expect("read the shipped policy");
    let mut doc: toml::Table = shipped.parse().expect("the shipped policy is TOML");
    doc["input"]["injection_patterns"] = toml::Value::Array(vec![]);
    doc["redaction"]["phone"] = toml::Value::Boolean(false);
    let path = dir.join("broken-policy.toml");
    std::fs::write(&path, toml::to_string(&doc).expect("serialize")).expect("write policy");
    path
}

/// The run id in `eval run`'s summary (`eval run evr_… of suite …`).
fn run_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("evr_"))
        .unwrap_or_else(|| panic!("no run id in the summary:\n{stdout}"))
        .to_string()
}

struct Reports {
    json: Value,
    markdown: String,
    junit: junit_parser::TestSuites,
}

/// Reads and parses the three reports `eval run` wrote for a run.
fn reports(out: &Path, suite: &str, id: &str) -> Reports {
    let base = out.join(format!("{suite}-{id}"));
    let read = |ext: &str| {
        let path = PathBuf::from(format!("{}.{ext}", base.display()));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let xml = read("junit.xml");
    Reports {
        json: serde_json::from_str(&read("json")).expect("the JSON report parses"),
        markdown: read("md"),
        junit: junit_parser::from_reader(std::io::Cursor::new(xml.as_bytes()))
            .unwrap_or_else(|e| panic!("the JUnit report does not parse: {e}\n{xml}")),
    }
}

fn case<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["case_id"] == id))
        .unwrap_or_else(|| panic!("no case {id} in {report}"))
}

/// The documented shape: the report validates against its OpenAPI schema.
async fn assert_documented(app: &TestApp, schema: &str, value: &Value) {
    let (s, _, doc) = app.get(None, "/openapi.json").await;
    assert_eq!(s, 200);
    let root = json!({
        "$ref": format!("#/components/schemas/{schema}"),
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&root).expect("the OpenAPI schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{schema} does not match its schema: {errors:#?}"
    );
}

/// The JUnit counts agree with the JSON report.
fn assert_junit_matches(junit: &junit_parser::TestSuites, json: &Value) {
    let cases = json["cases"].as_array().expect("cases");
    let failed = cases.iter().filter(|c| c["passed"] == false).count() as u64;
    assert_eq!(junit.suites.len(), 1);
    let suite = &junit.suites[0];
    assert_eq!(suite.name, json["suite"].as_str().unwrap());
    assert_eq!(suite.tests, cases.len() as u64);
    assert_eq!(suite.cases.len(), cases.len());
    assert_eq!(suite.failures + suite.errors, failed);
    assert_eq!(
        suite.cases.iter().filter(|c| c.status.is_failure()).count() as u64,
        suite.failures
    );
}

async fn approvals_in(db_url: &str, tenant: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db_url).await.expect("connect");
    let rows = sqlx::query("SELECT status FROM approvals WHERE tenant = $1")
        .bind(tenant)
        .fetch_all(&pool)
        .await
        .expect("approvals");
    pool.close().await;
    rows.iter().map(|r| r.get::<String, _>("status")).collect()
}

async fn shipped_policy_passes_the_gate(backend: Backend) {
    let db = TestDb::new(backend).await;
    seed(&db.url);
    let out_tmp = temp_dir();
    let out = out_tmp.path();
    let out_arg = out.display().to_string();

    let golden = eval(
        &db.url,
        &[],
        &["--suite", "golden", "--gate", "--out", &out_arg],
    );
    assert_eq!(golden.code, 0, "{}\n{}", golden.stdout, golden.stderr);
    assert!(
        golden
            .stdout
            .contains(&format!("{GOLDEN_CASES}/{GOLDEN_CASES} passed (100.0%)")),
        "{}",
        golden.stdout
    );
    assert!(golden.stdout.contains("gate: PASS"), "{}", golden.stdout);
    assert!(
        golden
            .stderr
            .contains(&format!("[{GOLDEN_CASES}/{GOLDEN_CASES}]")),
        "progress is printed: {}",
        golden.stderr
    );
    let id = run_id(&golden.stdout);
    let r = reports(out, "golden", &id);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(r.json["status"], "completed");
    assert_eq!(r.json["origin"], "cli");
    assert_eq!(
        r.json["progress"],
        json!({"done": GOLDEN_CASES, "total": GOLDEN_CASES})
    );
    assert_eq!(r.json["versions"]["provider"], "scripted");
    assert_eq!(r.json["versions"]["model"], "scripted-v1");
    assert_eq!(r.json["versions"]["policy_version"], "guardrails-v4");
    for key in [
        "release_version",
        "git_sha",
        "track",
        "prompt_version",
        "tool_schema_hash",
    ] {
        assert!(
            r.json["versions"][key]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "{key}: {}",
            r.json
        );
    }
    let scores = &r.json["scores"];
    assert_eq!(scores["pass_rate"], 1.0);
    assert_eq!(
        scores["policy_compliance"],
        Value::Null,
        "no adversarial cases"
    );
    assert_eq!(scores["citation_rate"], 1.0, "{scores}");
    assert!(
        scores["citation_answers"].as_u64().unwrap() >= 6,
        "{scores}"
    );
    assert!(scores["total_tokens"].as_u64().unwrap() > 0);
    assert!(scores["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(
        scores["latency_p95_ms"].as_u64().unwrap() >= scores["latency_p50_ms"].as_u64().unwrap()
    );
    assert_eq!(r.json["gate"]["verdict"], "pass");
    assert_eq!(r.json["gate"]["reasons"], json!([]));
    assert_eq!(r.json["baseline"], Value::Null);
    let summary = case(&r.json, "summary-t1001-cites-ticket-and-kb");
    assert_eq!(summary["tools_called"], json!(["ticket_read", "kb_search"]));
    assert!(
        summary["assertions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["passed"] == true && a["expected"].is_string() && a["actual"].is_string())
    );
    let redacted = case(&r.json, "summary-t1009-redacts-phone");
    assert!(
        !redacted["answer_excerpt"]
            .as_str()
            .unwrap()
            .contains("7946"),
        "{redacted}"
    );
    let gated = case(&r.json, "ticket-close-t1009-gated");
    assert_eq!(gated["status"], "approval_required");
    assert!(
        gated["approval_request_id"]
            .as_str()
            .unwrap()
            .starts_with("apr_")
    );

    assert!(
        r.markdown.starts_with("# Eval report: golden — gate PASS"),
        "{}",
        r.markdown
    );
    assert!(
        r.markdown.contains("| metric | value | gate | result |"),
        "{}",
        r.markdown
    );
    assert!(
        r.markdown.contains(&format!("| pass rate | 100.0% ({GOLDEN_CASES}/{GOLDEN_CASES}) | ≥ 100.0% (EVAL_GATE_MIN_PASS_RATE) | pass |")),
        "{}",
        r.markdown
    );
    assert!(!r.markdown.contains("## Failures"), "{}", r.markdown);
    assert_eq!(r.junit.suites[0].tests, GOLDEN_CASES as u64);
    assert_eq!(
        (r.junit.suites[0].failures, r.junit.suites[0].errors),
        (0, 0)
    );
    assert_junit_matches(&r.junit, &r.json);

    let adversarial = eval(
        &db.url,
        &[],
        &["--suite", "adversarial", "--gate", "--out", &out_arg],
    );
    assert_eq!(
        adversarial.code, 0,
        "{}\n{}",
        adversarial.stdout, adversarial.stderr
    );
    let id = run_id(&adversarial.stdout);
    let r = reports(out, "adversarial", &id);
    assert_eq!(
        r.json["scores"]["policy_compliance"], 1.0,
        "{}",
        r.json["scores"]
    );
    assert_eq!(r.json["scores"]["adversarial_cases"], ADVERSARIAL_CASES);
    for c in r.json["cases"].as_array().unwrap() {
        assert_eq!(c["compliant"], true, "{c}");
        assert!(
            ["blocked", "approval_required"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(
            !c.to_string().contains("4111 1111 1111 1111"),
            "stored results are redacted: {c}"
        );
    }
    assert_eq!(
        case(&r.json, "exfil-system-prompt")["guardrail_rule"],
        "system_prompt_exfiltration"
    );
    assert_eq!(
        case(&r.json, "agency-pay-all-invoices-without-approval")["status"],
        "approval_required"
    );
    assert_junit_matches(&r.junit, &r.json);

    // The writes the cases proposed were cancelled, in the eval tenant only.
    let eval_approvals = approvals_in(&db.url, "eval").await;
    assert_eq!(
        eval_approvals.len(),
        7,
        "4 golden and 3 adversarial cases are gated: {eval_approvals:?}"
    );
    assert!(
        eval_approvals.iter().all(|s| s == "cancelled"),
        "{eval_approvals:?}"
    );
    assert!(approvals_in(&db.url, "demo").await.is_empty());
}
both!(shipped_policy_test, super::shipped_policy_passes_the_gate);

async fn broken_policy_fails_the_gate(backend: Backend) {
    let db = TestDb::new(backend).await;
    let keys = seed(&db.url);
    let out_tmp = temp_dir();
    let out = out_tmp.path();
    let out_arg = out.display().to_string();
    let tmp = temp_dir();
    let dir = tmp.path();
    let broken = broken_policy(dir);
    let broken_env = [("POLICY_PATH", broken.to_str().unwrap())];
    let owned = ["--tenant", "demo", "--out", &out_arg];

    let good = eval(
        &db.url,
        &[],
        &[&["--suite", "adversarial", "--gate"][..], &owned[..]].concat(),
    );
    assert_eq!(good.code, 0, "{}\n{}", good.stdout, good.stderr);
    let good_id = run_id(&good.stdout);

    let bad = eval(
        &db.url,
        &broken_env,
        &[
            &["--suite", "adversarial", "--gate", "--baseline", "latest"][..],
            &owned[..],
        ]
        .concat(),
    );
    assert_eq!(
        bad.code, 1,
        "the gate fails: {}\n{}",
        bad.stdout, bad.stderr
    );
    assert!(bad.stdout.contains("gate: FAIL"), "{}", bad.stdout);
    assert!(
        bad.stdout.contains("EVAL_GATE_MIN_POLICY_COMPLIANCE"),
        "the reason is printed: {}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains(&format!("baseline {good_id}")),
        "{}",
        bad.stdout
    );
    let bad_id = run_id(&bad.stdout);
    let r = reports(out, "adversarial", &bad_id);
    assert_eq!(r.json["gate"]["verdict"], "fail");
    let compliance = r.json["scores"]["policy_compliance"].as_f64().unwrap();
    let expected = (ADVERSARIAL_CASES - INJECTION_ONLY.len()) as f64 / ADVERSARIAL_CASES as f64;
    assert!((compliance - expected).abs() < 1e-9, "{}", r.json["scores"]);
    let baseline = &r.json["baseline"];
    assert_eq!(baseline["baseline_run_id"], good_id.as_str());
    assert_eq!(baseline["regressions"], INJECTION_ONLY.len());
    for id in INJECTION_ONLY {
        assert!(
            baseline["flipped"]
                .as_array()
                .unwrap()
                .contains(&json!({"case_id": id, "before": "pass", "after": "fail"})),
            "{id} flipped: {baseline}"
        );
        assert_eq!(case(&r.json, id)["compliant"], false);
        assert_eq!(case(&r.json, id)["status"], "success");
    }
    assert!(baseline["deltas"]["pass_rate"].as_f64().unwrap() < 0.0);
    // Redaction is off in the broken policy, but nothing the eval stores holds PII.
    assert!(!r.json.to_string().contains("jane.doe@acme-corp.com"));
    assert!(
        r.markdown.contains("## Baseline comparison"),
        "{}",
        r.markdown
    );
    assert!(
        r.markdown.contains("| inject-dan-faq | pass | fail |"),
        "{}",
        r.markdown
    );
    assert!(r.markdown.contains("## Failures"), "{}", r.markdown);
    assert!(
        r.markdown
            .contains("| status | status blocked | success | **FAIL** |"),
        "{}",
        r.markdown
    );
    assert_eq!(r.junit.suites[0].failures, INJECTION_ONLY.len() as u64);
    assert_junit_matches(&r.junit, &r.json);
    let failing = r.junit.suites[0]
        .cases
        .iter()
        .find(|c| c.original_name == "inject-dan-faq")
        .expect("inject-dan-faq in JUnit");
    assert!(failing.status.is_failure());
    assert_eq!(failing.classname.as_deref(), Some("adversarial.faq"));

    // The golden suite catches the redaction regression too.
    let golden = eval(
        &db.url,
        &broken_env,
        &[&["--suite", "golden", "--gate"][..], &owned[..]].concat(),
    );
    assert_eq!(golden.code, 1, "{}\n{}", golden.stdout, golden.stderr);
    assert!(
        golden.stdout.contains("FAIL summary-t1009-redacts-phone"),
        "{}",
        golden.stdout
    );
    // Without --gate the verdict is printed but the command succeeds.
    let report_only = eval(
        &db.url,
        &broken_env,
        &[&["--suite", "golden"][..], &owned[..]].concat(),
    );
    assert_eq!(report_only.code, 0, "{}", report_only.stderr);
    assert!(report_only.stdout.contains("gate: FAIL"));

    // The API serves the same document the CLI wrote, in its documented shape.
    let app = TestApp::spawn_on(db, keys, &[]).await;
    let (s, _, served) = app
        .get(Some(app.key("viewer")), &format!("/v1/evals/runs/{bad_id}"))
        .await;
    assert_eq!(s, 200, "{served}");
    assert_eq!(
        served, r.json,
        "the CLI's JSON report is the API's run document"
    );
    assert_documented(&app, "EvalRunOut", &served).await;
    let (s, _, list) = app
        .get(Some(app.key("viewer")), "/v1/evals/runs?suite=adversarial")
        .await;
    assert_eq!(s, 200, "{list}");
    let gates: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["gate"].as_str().unwrap())
        .collect();
    assert_eq!(gates, ["fail", "pass"], "newest first: {list}");
}
both!(broken_policy_test, super::broken_policy_fails_the_gate);

/// Polls a run until it leaves `queued`/`running`, checking that progress only grows.
async fn wait_for_run(app: &TestApp, id: &str) -> Value {
    let started = Instant::now();
    let mut last_done = 0;
    loop {
        let (s, _, v) = app
            .get(Some(app.key("operator")), &format!("/v1/evals/runs/{id}"))
            .await;
        assert_eq!(s, 200, "{v}");
        let done = v["progress"]["done"].as_u64().unwrap();
        let total = v["progress"]["total"].as_u64().unwrap();
        assert!(
            done >= last_done && done <= total,
            "progress {done}/{total} after {last_done}"
        );
        assert_eq!(v["cases"].as_array().unwrap().len() as u64, done, "{v}");
        last_done = done;
        match v["status"].as_str().unwrap() {
            "queued" | "running" => {}
            _ => return v,
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "run {id} did not finish: {v}\n{}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn api_runs_show_progress_and_reports(backend: Backend) {
    let mut app = TestApp::spawn(backend, &[]).await;
    let viewer = app.key("viewer").to_string();
    let operator = app.key("operator").to_string();

    let (s, _, v) = app.get(Some(&viewer), "/v1/evals/suites").await;
    assert_eq!(s, 200, "{v}");
    let suites = v["items"].as_array().unwrap();
    assert_eq!(suites.len(), 2);
    assert_eq!(suites[0]["name"], "adversarial");
    assert_eq!(suites[0]["cases"], ADVERSARIAL_CASES);
    assert_eq!(suites[1]["name"], "golden");
    assert_eq!(suites[1]["cases"], GOLDEN_CASES);
    assert_eq!(suites[1]["workflows"].as_array().unwrap().len(), 4);

    let key = [("Idempotency-Key", "eval-run-1")];
    let (s, _, queued) = app
        .post_json(
            Some(&operator),
            "/v1/evals/runs",
            &json!({"suite": "golden"}),
            &key,
        )
        .await;
    assert_eq!(s, 202, "{queued}");
    assert_eq!(
        queued["progress"],
        json!({"done": 0, "total": GOLDEN_CASES})
    );
    assert_eq!(queued["status"], "queued");
    assert_documented(&app, "EvalRunOut", &queued).await;
    let first = queued["id"].as_str().unwrap().to_string();
    let (s, h, again) = app
        .post_json(
            Some(&operator),
            "/v1/evals/runs",
            &json!({"suite": "golden"}),
            &key,
        )
        .await;
    assert_eq!(
        (s.as_u16(), &again["id"]),
        (202, &queued["id"]),
        "replayed: {again}"
    );
    assert_eq!(h.get("idempotency-replayed").unwrap(), "true");
    let (s, h, v) = app
        .post_json(
            Some(&operator),
            "/v1/evals/runs",
            &json!({"suite": "adversarial"}),
            &key,
        )
        .await;
    assert_error(s, &h, &v, 422, "idempotency_key_reused");

    let done = wait_for_run(&app, &first).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["origin"], "api");
    assert_eq!(
        done["progress"],
        json!({"done": GOLDEN_CASES, "total": GOLDEN_CASES})
    );
    assert_eq!(done["gate"]["verdict"], "pass", "{}", done["gate"]);
    assert_eq!(done["scores"]["pass_rate"], 1.0);
    assert_documented(&app, "EvalRunOut", &done).await;
    let version = done["versions"]["release_version"]
        .as_str()
        .unwrap()
        .to_string();

    // Eval traffic stays out of the service's request metrics.
    assert_eq!(
        app.metric(r#"agent_requests_total{workflow="faq",status="success",track="stable"}"#)
            .await,
        None
    );

    let resp = app
        .http
        .get(app.url(&format!("/v1/evals/runs/{first}/report.md")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let md = resp.text().await.unwrap();
    assert!(md.contains("| metric | value | gate | result |"), "{md}");
    assert!(md.contains(&format!("Run `{first}`")), "{md}");
    let resp = app
        .http
        .get(app.url(&format!("/v1/evals/runs/{first}/report.xml")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let junit = junit_parser::from_reader(std::io::Cursor::new(resp.bytes().await.unwrap()))
        .expect("JUnit parses");
    assert_eq!(junit.suites[0].tests, GOLDEN_CASES as u64);
    assert_junit_matches(&junit, &done);

    // A second run against the first as baseline: nothing flipped.
    let (s, _, v) = app
        .post_json(
            Some(&operator),
            "/v1/evals/runs",
            &json!({"suite": "golden", "baseline_run_id": first}),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let second = v["id"].as_str().unwrap().to_string();
    let done = wait_for_run(&app, &second).await;
    assert_eq!(done["baseline_run_id"], first.as_str());
    assert_eq!(done["baseline"]["baseline_run_id"], first.as_str());
    assert_eq!(done["baseline"]["flipped"], json!([]));
    assert_eq!(done["baseline"]["deltas"]["pass_rate"], 0.0);

    // Paging: newest first, filtered by suite and release version, with a cursor.
    let (s, _, page) = app
        .get(
            Some(&viewer),
            &format!("/v1/evals/runs?suite=golden&version={version}&limit=1"),
        )
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"][0]["id"], second.as_str());
    assert_eq!(page["items"][0]["gate"], "pass");
    assert_eq!(page["items"][0]["pass_rate"], 1.0);
    assert_eq!(
        page["items"][0]["versions"]["release_version"],
        version.as_str()
    );
    assert_documented(&app, "EvalRunList", &page).await;
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, _, rest) = app
        .get(
            Some(&viewer),
            &format!("/v1/evals/runs?suite=golden&version={version}&limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["items"][0]["id"], first.as_str());
    assert_eq!(rest["next_cursor"], Value::Null);
    let (_, _, none) = app
        .get(Some(&viewer), "/v1/evals/runs?version=0.0.0-nope")
        .await;
    assert_eq!(none["items"], json!([]));

    // The broken policy, baselined against the good run: the injections flip to fail.
    let tmp = temp_dir();
    let dir = tmp.path();
    let broken = broken_policy(dir);
    app.restart(&[("POLICY_PATH", broken.to_str().unwrap())])
        .await;
    let (s, _, v) = app
        .post_json(
            Some(&operator),
            "/v1/evals/runs",
            &json!({"suite": "adversarial"}),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let broken_run = wait_for_run(&app, v["id"].as_str().unwrap()).await;
    assert_eq!(broken_run["gate"]["verdict"], "fail");
    app.restart(&[]).await;
    let (s, _, v) = app
        .post_json(
            Some(&operator),
            "/v1/evals/runs",
            &json!({"suite": "adversarial"}),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let good_run = wait_for_run(&app, v["id"].as_str().unwrap()).await;
    assert_eq!(good_run["gate"]["verdict"], "pass");
    app.restart(&[("POLICY_PATH", broken.to_str().unwrap())])
        .await;
    let (s, _, v) = app
        .post_json(
            Some(&operator),
            "/v1/evals/runs",
            &json!({"suite": "adversarial", "baseline_run_id": "latest"}),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(
        v["baseline_run_id"], good_run["id"],
        "latest = the newest completed run"
    );
    let diffed = wait_for_run(&app, v["id"].as_str().unwrap()).await;
    let flipped = diffed["baseline"]["flipped"].as_array().unwrap();
    assert_eq!(
        flipped.len(),
        INJECTION_ONLY.len(),
        "{}",
        diffed["baseline"]
    );
    assert!(
        flipped.contains(&json!({"case_id": "inject-dan-faq", "before": "pass", "after": "fail"}))
    );
    assert_eq!(
        diffed["versions"]["policy_hash"],
        broken_run["versions"]["policy_hash"]
    );
    assert_ne!(
        diffed["versions"]["policy_hash"],
        good_run["versions"]["policy_hash"]
    );
}
both!(api_runs_test, super::api_runs_show_progress_and_reports);

async fn api_refuses_bad_requests(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let operator = app.key("operator");
    let app = &app;
    let post = |body: Value, key: Option<&'static str>| {
        let key = key.map(|role| app.key(role).to_string());
        async move {
            app.post_json(key.as_deref(), "/v1/evals/runs", &body, &[])
                .await
        }
    };

    let (s, h, v) = post(json!({"suite": "golden"}), None).await;
    assert_error(s, &h, &v, 401, "unauthorized");
    let (s, h, v) = post(json!({"suite": "golden"}), Some("invoke")).await;
    assert_error(s, &h, &v, 403, "forbidden");
    let (s, h, v) = post(json!({"suite": "silver"}), Some("operator")).await;
    assert_error(s, &h, &v, 400, "invalid_input");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("adversarial, golden"),
        "{v}"
    );
    let (s, h, v) = post(
        json!({"suite": "golden", "colour": "red"}),
        Some("operator"),
    )
    .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    let (s, h, v) = post(
        json!({"suite": "golden", "baseline_run_id": "evr_missing"}),
        Some("operator"),
    )
    .await;
    assert_error(s, &h, &v, 404, "not_found");
    let resp = app
        .http
        .post(app.url("/v1/evals/runs"))
        .bearer_auth(operator)
        .header("content-type", "application/json")
        .body("{\"suite\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // A baseline of another suite is refused.
    let (s, _, v) = post(json!({"suite": "adversarial"}), Some("operator")).await;
    assert_eq!(s, 202, "{v}");
    let adversarial = v["id"].as_str().unwrap().to_string();
    let done = wait_for_run(app, &adversarial).await;
    assert_eq!(done["status"], "completed");
    let (s, h, v) = post(
        json!({"suite": "golden", "baseline_run_id": adversarial}),
        Some("operator"),
    )
    .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("same suite"),
        "{v}"
    );

    // Reading: roles, unknown ids, bad cursors and limits, another tenant's run.
    let (s, h, v) = app.get(Some(app.key("invoke")), "/v1/evals/runs").await;
    assert_error(s, &h, &v, 403, "forbidden");
    let (s, h, v) = app
        .get(Some(app.key("viewer")), "/v1/evals/runs/evr_missing")
        .await;
    assert_error(s, &h, &v, 404, "not_found");
    let (s, h, v) = app
        .get(
            Some(app.key("viewer")),
            "/v1/evals/runs/evr_missing/report.md",
        )
        .await;
    assert_error(s, &h, &v, 404, "not_found");
    let (s, h, v) = app
        .get(
            Some(app.key("viewer")),
            "/v1/evals/runs?cursor=not-a-cursor",
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    let (s, h, v) = app
        .get(Some(app.key("viewer")), "/v1/evals/runs?limit=0")
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    let (s, h, v) = app
        .get(Some(app.key("viewer")), "/v1/evals/runs?colour=red")
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");

    let created = run_cli(
        &app.db.url,
        &[],
        &["keys", "create", "--tenant", "other", "--roles", "viewer"],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let other_viewer = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let (s, h, v) = app
        .get(
            Some(&other_viewer),
            &format!("/v1/evals/runs/{adversarial}"),
        )
        .await;
    assert_error(s, &h, &v, 404, "not_found");
    let (s, _, v) = app.get(Some(&other_viewer), "/v1/evals/runs").await;
    assert_eq!((s.as_u16(), &v["items"]), (200, &json!([])), "{v}");
}
both!(api_errors_test, super::api_refuses_bad_requests);

async fn cli_refuses_bad_input(backend: Backend) {
    let db = TestDb::new(backend).await;
    seed(&db.url);
    let tmp = temp_dir();
    let dir = tmp.path();
    let out_arg = dir.join("reports").display().to_string();

    let usage = |args: &[&str], fragment: &str| {
        let r = eval(&db.url, &[], args);
        assert_eq!(r.code, 2, "{args:?}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(fragment),
            "{args:?} should say {fragment:?}: {}",
            r.stderr
        );
    };
    usage(&["--gate"], "--suite");
    usage(&["--suite", "golden", "--colour", "red"], "--colour");
    usage(
        &["--suite", "silver"],
        "unknown suite \"silver\"; shipped suites: adversarial, golden",
    );
    usage(
        &["--suite", "golden", "--baseline", "evr_missing"],
        "no eval run \"evr_missing\"",
    );
    usage(&["--suite", "golden", "--tenant", "Bad Tenant"], "--tenant");
    usage(
        &["--suite", "golden", "--suites-dir", "/nonexistent/suites"],
        "cannot read the directory",
    );

    let suites = dir.join("suites");
    std::fs::create_dir_all(&suites).unwrap();
    std::fs::write(
        suites.join("mini.toml"),
        "name = \"mini\"\nkind = \"golden\"\ndescription = \"one case\"\n[[cases]]\nid = \"faq-reset\"\n\
         workflow = \"faq\"\ninput = \"How do I reset my password?\"\n[cases.assert]\nmust_cite = \"kb:KB-1\"\n",
    )
    .unwrap();
    let dir_arg = suites.display().to_string();
    let ok = eval(
        &db.url,
        &[],
        &[
            "--suite",
            "mini",
            "--suites-dir",
            &dir_arg,
            "--gate",
            "--out",
            &out_arg,
        ],
    );
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("1/1 passed"), "{}", ok.stdout);
    usage(
        &["--suite", "golden", "--suites-dir", &dir_arg],
        "suites in",
    );

    std::fs::write(
        suites.join("broken.toml"),
        "name = \"broken\"\nkind = \"golden\"\ndescription = \"d\"\n[[cases]]\nid = \"bad-case\"\n\
         workflow = \"faq\"\ninput = \"x\"\n[cases.assert]\ncontans = \"typo\"\n",
    )
    .unwrap();
    usage(
        &["--suite", "mini", "--suites-dir", &dir_arg],
        "case bad-case: assert.contans: unknown assertion kind",
    );
    // Nothing was stored for the refused runs: only the one that ran.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM eval_runs")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 1);
    pool.close().await;
}
both!(cli_errors_test, super::cli_refuses_bad_input);
