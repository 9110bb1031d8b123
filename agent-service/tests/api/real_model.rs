//! The real model in the loop: llama.cpp's own server with SmolLM2-135M-Instruct
//! (`testkit::LlamaServer`, installed by `scripts/setup-model.sh`, found through
//! `TEST_MODEL_PYTHON`) behind the `openai` provider. SQLite only: the database is not
//! what these tests are about.
//!
//! A 135M model does not call tools and does not cite evidence, so the read workflows
//! (both require citations) cannot succeed: the tests assert what really happens —
//! `blocked` by `citation_required`, or `budget_exceeded` when the reply ran into the
//! per-call output cap or the deadline — and never a `success`. Token accounting is
//! checked against the server's own count (`llamacpp:tokens_predicted_total`).

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use testkit::llama::MODEL_ALIAS;
use testkit::{LlamaOptions, LlamaServer};

use crate::helpers::{Backend, TestApp};
use crate::stream::{parse_sse, stored_trace};

/// The deadline of every run here. On a busy two-core machine a run may reach it: it then
/// ends `budget_exceeded` (`deadline`), which the tests accept as the honest outcome.
const REQUEST_TIMEOUT_SECS: u64 = 60;

/// `POST /v1/invoke`, waiting longer than the run's deadline (the test kit's client gives
/// up after 60 s).
async fn invoke(app: &TestApp, workflow: &str, text: &str) -> (reqwest::StatusCode, Value) {
    let resp = app
        .http
        .post(app.url("/v1/invoke"))
        .bearer_auth(app.key("invoke"))
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS + 30))
        .json(&json!({"workflow": workflow, "input": {"text": text}}))
        .send()
        .await
        .expect("the invoke answers");
    let status = resp.status();
    (status, resp.json().await.expect("a JSON reply"))
}

async fn service(llama: &LlamaServer, extra: &[(&str, &str)]) -> TestApp {
    let url = llama.openai_url();
    let timeout = REQUEST_TIMEOUT_SECS.to_string();
    let mut env = vec![
        ("AGENT_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", url.as_str()),
        ("MODEL_NAME", MODEL_ALIAS),
        ("MAX_OUTPUT_TOKENS", "32"),
        ("REQUEST_TIMEOUT_SECS", timeout.as_str()),
        ("PROVIDER_TIMEOUT_SECS", "50"),
    ];
    env.extend_from_slice(extra);
    TestApp::spawn(Backend::Sqlite, &env).await
}

/// Output tokens the service has booked (`agent_tokens_total{direction="output"}`, all
/// models).
async fn service_output_tokens(app: &TestApp) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with("agent_tokens_total{") && l.contains("direction=\"output\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The service's and the server's output tokens since `before`, once the server is idle
/// and the service has booked what it will book.
async fn deltas(app: &TestApp, llama: &LlamaServer, before: (f64, f64)) -> (f64, f64) {
    llama.idle(Duration::from_secs(60)).await;
    let server = llama.tokens_predicted().await - before.1;
    let mut service = service_output_tokens(app).await - before.0;
    // A run whose client left books its tokens when it ends; give it a moment.
    for _ in 0..50 {
        if (service - server).abs() <= server * 0.05 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        service = service_output_tokens(app).await - before.0;
    }
    (service, server)
}

async fn counts(app: &TestApp, llama: &LlamaServer) -> (f64, f64) {
    (
        service_output_tokens(app).await,
        llama.tokens_predicted().await,
    )
}

fn assert_within_5_percent(service: f64, server: f64) {
    assert!(server > 0.0, "the model generated nothing");
    assert!(
        (service - server).abs() <= server * 0.05,
        "the service booked {service} output tokens, the model server generated {server}"
    );
}

/// What a read workflow may honestly end with when the model cites nothing.
fn assert_honest_ending(v: &Value) {
    match v["status"].as_str() {
        Some("blocked") => assert_eq!(v["guardrail_rule"], "citation_required", "{v}"),
        Some("budget_exceeded") => assert!(
            ["output_tokens", "deadline"].contains(&v["budget"].as_str().unwrap_or("")),
            "{v}"
        ),
        _ => panic!("a 135M model that cites nothing cannot succeed: {v}"),
    }
}

async fn stream(app: &TestApp, workflow: &str, text: &str) -> Vec<(String, Value)> {
    let resp = app
        .http
        .post(app.url("/v1/invoke/stream"))
        .bearer_auth(app.key("invoke"))
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS + 30))
        .json(&json!({"workflow": workflow, "input": {"text": text}}))
        .send()
        .await
        .expect("stream starts");
    assert_eq!(resp.status(), 200);
    parse_sse(&resp.text().await.expect("the stream ends"))
}

const INPUTS: [(&str, &str); 2] = [
    ("faq", "How do I reset my password?"),
    ("support_ticket_summary", "Summarize ticket T-1001"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_read_workflows_invoke_and_stream_within_their_deadline() {
    let llama = LlamaServer::start(LlamaOptions::default()).await;
    let app = service(&llama, &[]).await;
    let before = counts(&app, &llama).await;
    let deadline = Duration::from_secs(REQUEST_TIMEOUT_SECS + 5);

    for (workflow, text) in INPUTS {
        let started = Instant::now();
        let (s, v) = invoke(&app, workflow, text).await;
        assert!(
            started.elapsed() < deadline,
            "{workflow} took {:?}",
            started.elapsed()
        );
        assert_eq!(s, 200, "{workflow}: {v}");
        assert_honest_ending(&v);
        assert_eq!(v["provider"], "openai");
        assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{v}");
        assert!(
            v["usage"]["completion_tokens"].as_u64().unwrap() <= 48 * 8,
            "{v}"
        );

        let started = Instant::now();
        let events = stream(&app, workflow, text).await;
        assert!(
            started.elapsed() < deadline,
            "{workflow} took {:?}",
            started.elapsed()
        );
        let (name, done) = events.last().expect("events");
        assert_eq!(name, "done", "{events:?}");
        assert_honest_ending(done);
        assert!(
            events.iter().any(|(e, _)| e == "token"),
            "the model's text streamed: {events:?}"
        );
    }
    let (service, server) = deltas(&app, &llama, before).await;
    assert_within_5_percent(service, server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_tokens_of_cancelled_streams_and_invokes_are_counted() {
    let llama = LlamaServer::start(LlamaOptions::default()).await;
    let app = service(&llama, &[("MAX_OUTPUT_TOKENS", "96")]).await;
    let before = counts(&app, &llama).await;
    let rambling = "Tell me a very long story about a dragon who learns to bake bread.";

    // A stream whose client leaves after the first tokens.
    let resp = app
        .http
        .post(app.url("/v1/invoke/stream"))
        .bearer_auth(app.key("invoke"))
        .json(&json!({"workflow": "faq", "input": {"text": rambling}}))
        .send()
        .await
        .expect("stream starts");
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while let Some(chunk) = body.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        if seen.matches("event: token").count() >= 3 {
            break;
        }
    }
    drop(body);

    // An invoke whose client gives up mid-generation (the handler is dropped with it).
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(4))
        .build()
        .expect("client");
    let gave_up = impatient
        .post(app.url("/v1/invoke"))
        .bearer_auth(app.key("invoke"))
        .json(&json!({"workflow": "faq", "input": {"text": rambling}}))
        .send()
        .await;
    if let Ok(resp) = gave_up {
        // The whole run fit in 4 s: it was booked the ordinary way.
        let v: Value = resp.json().await.expect("json");
        assert_honest_ending(&v);
    }

    let (service, server) = deltas(&app, &llama, before).await;
    assert_within_5_percent(service, server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_cut_replies_context_overflow_and_more_requests_than_slots() {
    let llama = LlamaServer::start(LlamaOptions::default()).await;
    let app = service(&llama, &[("MAX_OUTPUT_TOKENS", "8")]).await;

    // Cut at the cap: reported as such, never as an answer.
    let (s, v) = invoke(
        &app,
        "faq",
        "Explain in great detail, step by step, how refunds, chargebacks and credits work.",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "budget_exceeded", "{v}");
    assert_eq!(v["budget"], "output_tokens", "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 8, "{v}");
    let trace = stored_trace(&app, v["trace_id"].as_str().unwrap()).await;
    let chat = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("chat "))
        .cloned()
        .expect("a chat span");
    assert_eq!(
        chat["attributes"]["gen_ai.response.finish_reasons"],
        json!(["length"]),
        "{chat}"
    );
    assert_eq!(chat["attributes"]["gen_ai.request.max_tokens"], 8);

    // A prompt over a slot's context: a clear error naming the limit.
    let huge = "refund ".repeat(llama.slot_context() as usize + 200);
    let (s, v) = invoke(&app, "faq", &huge).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "provider_error", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("context")
            && message.contains(&format!("({} tokens)", llama.slot_context())),
        "{message}"
    );

    // More requests at once than the server has slots: they queue, and all end well.
    let slots = llama.options().parallel as usize;
    let runs = (0..slots * 2 + 1).map(|i| {
        let app = &app;
        async move {
            let started = Instant::now();
            let r = invoke(app, "faq", &format!("Question {i}: what is a refund?")).await;
            (r, started.elapsed())
        }
    });
    for ((s, v), took) in futures::future::join_all(runs).await {
        assert_eq!(s, 200, "{v}");
        assert_honest_ending(&v);
        assert!(
            took < Duration::from_secs(REQUEST_TIMEOUT_SECS + 5),
            "{took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_server_killed_mid_stream_opens_the_circuit_then_recovers() {
    let mut llama = LlamaServer::start(LlamaOptions::default()).await;
    let app = service(
        &llama,
        &[
            ("MAX_OUTPUT_TOKENS", "120"),
            ("CIRCUIT_FAILURE_THRESHOLD", "1"),
            ("CIRCUIT_OPEN_SECS", "2"),
            ("PROVIDER_MAX_RETRIES", "0"),
        ],
    )
    .await;
    let resp = app
        .http
        .post(app.url("/v1/invoke/stream"))
        .bearer_auth(app.key("invoke"))
        .json(&json!({"workflow": "faq", "input": {"text": "Tell me a very long story about a dragon."}}))
        .send()
        .await
        .expect("stream starts");
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while let Some(chunk) = body.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        if seen.contains("event: token") {
            break;
        }
    }
    llama.kill().await;
    while let Some(chunk) = body.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
    }
    let events = parse_sse(&seen);
    let (name, last) = events.last().expect("events");
    assert_eq!(name, "error", "{seen}");
    assert_eq!(last["error"]["code"], "provider_error", "{last}");

    let (s, _, r) = app.get(None, "/readyz").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "degraded", "{r}");
    assert_eq!(r["circuit"], "open", "{r}");

    llama.restart().await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (s, v) = invoke(&app, "faq", "What is a refund?").await;
    assert_eq!(s, 200, "the half-open probe goes through: {v}");
    assert_honest_ending(&v);
    let (_, _, r) = app.get(None, "/readyz").await;
    assert_eq!(r["circuit"], "closed", "{r}");
    assert_eq!(r["status"], "ready", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_eval_run_reports_what_the_model_earned_and_where_it_ran() {
    let llama = LlamaServer::start(LlamaOptions::default()).await;
    let db = crate::helpers::TestDb::new(Backend::Sqlite).await;
    crate::helpers::seed(&db.url);
    let out = crate::helpers::temp_dir();
    let url = llama.openai_url();
    let out_dir = out.path().to_string_lossy().into_owned();
    let run = tokio::task::spawn_blocking({
        let db_url = db.url.clone();
        move || {
            crate::helpers::run_cli(
                &db_url,
                &[
                    ("AGENT_PROVIDER", "openai"),
                    ("OPENAI_BASE_URL", url.as_str()),
                    ("MODEL_NAME", MODEL_ALIAS),
                    ("MAX_OUTPUT_TOKENS", "32"),
                    ("LOG_LEVEL", "error"),
                ],
                &["eval", "run", "--suite", "adversarial", "--out", &out_dir],
            )
        }
    })
    .await
    .expect("eval run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    // Without --gate the run completes whatever the verdict.
    assert_eq!(
        run.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "model server: openai {MODEL_ALIAS} at 127.0.0.1:{}",
            llama.url().rsplit(':').next().unwrap()
        )),
        "{stdout}"
    );

    let report = std::fs::read_dir(out.path())
        .expect("reports")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a JSON report");
    let doc: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let md = std::fs::read_to_string(report.with_extension("md")).expect("markdown report");
    let host = llama.url().trim_start_matches("http://").to_string();
    let server_row = format!(
        "| openai | {MODEL_ALIAS} | {host} | {} |",
        llama.model_id().await
    );
    assert!(md.contains("## Model server"), "{md}");
    assert!(md.contains(&server_row), "{server_row} in\n{md}");
    // The verdict is what the checks say, nothing else.
    let checks = doc["gate"]["checks"].as_array().expect("gate checks");
    let all_passed = checks.iter().all(|c| c["passed"] == true);
    assert_eq!(
        doc["gate"]["verdict"],
        if all_passed { "pass" } else { "fail" },
        "{}",
        doc["gate"]
    );
    assert_eq!(doc["scores"]["cases"], 12);
    assert_eq!(doc["versions"]["provider"], "openai");
    assert_eq!(doc["versions"]["model"], MODEL_ALIAS);
}
