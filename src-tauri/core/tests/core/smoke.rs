//! The smoke suite against the fake Ollama (healthy, without tools, on CPU, missing model,
//! broken stream, slow, down, hanging) and the real agent-service binary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flightdeck_core::BaseUrl;
use flightdeck_core::agent::http_client;
use flightdeck_core::clock::SystemClock;
use flightdeck_core::smoke::{self, CheckStatus, SmokeConfig, SmokeProgress, SmokeReport};
use serde_json::json;
use testkit::{AgentService, Backend, FakeModel, FakeOllama, Mode, Reply};

use crate::helpers::{client, within};

async fn run(config: &SmokeConfig) -> (SmokeReport, Vec<SmokeProgress>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let report = within(60, "the smoke suite", async {
        smoke::run(config, http_client().unwrap(), &SystemClock, &move |p| {
            sink.lock().unwrap().push(p)
        })
        .await
    })
    .await;
    let events = events.lock().unwrap().clone();
    (report, events)
}

fn config(fake: &FakeOllama, model: &str) -> SmokeConfig {
    SmokeConfig::new(BaseUrl::parse(&fake.url()).unwrap(), model).unwrap()
}

/// (check, status) for every check, in order.
fn statuses(r: &SmokeReport) -> Vec<(&str, CheckStatus)> {
    r.checks
        .iter()
        .map(|c| (c.name.as_str(), c.status))
        .collect()
}

fn measurement(r: &SmokeReport, check: &str, name: &str) -> f64 {
    r.check(check)
        .and_then(|c| c.measurements.iter().find(|m| m.name == name))
        .map(|m| m.value)
        .unwrap_or_else(|| panic!("{check} has no measurement {name}: {:?}", r.check(check)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_passes_against_a_healthy_ollama_and_the_service() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::text("Yes, I am ready."));
    fake.push_reply(Reply::text("Ready again."));
    fake.push_reply(Reply::tool_call("get_weather", json!({ "city": "Paris" })));
    fake.push_reply(Reply::text("It is 18 °C and clear in Paris."));
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let mut cfg = config(&fake, "llama3.2");
    cfg.agent = Some(client(&svc, "invoke"));
    let (report, events) = run(&cfg).await;
    assert_eq!(
        statuses(&report),
        smoke::CHECKS
            .iter()
            .map(|(n, _)| (*n, CheckStatus::Pass))
            .collect::<Vec<_>>(),
        "{}",
        report.to_markdown()
    );
    assert_eq!(measurement(&report, "load_time", "cold_load"), 1200.0);
    assert_eq!(measurement(&report, "load_time", "warm_load"), 50.0);
    assert!(measurement(&report, "generation", "tokens_per_second") > 0.0);
    assert!(measurement(&report, "generation", "time_to_first_token") > 0.0);
    assert_eq!(measurement(&report, "cpu_fallback", "in_vram"), 100.0);
    assert!(
        report
            .check("agent_golden")
            .unwrap()
            .reason
            .contains("[ticket:T-1001]")
    );
    assert!(
        report
            .check("agent_adversarial")
            .unwrap()
            .reason
            .contains("prompt_injection")
    );
    // The tool result went back to the model as a `tool` message.
    let chats = fake.bodies("/api/chat");
    assert_eq!(chats.len(), 4);
    assert_eq!(chats[3]["messages"][2]["role"], "tool");
    // Progress: a start and a finish per check, in order.
    let finished: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            SmokeProgress::CheckFinished { result } => Some(result.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        finished,
        smoke::CHECKS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>()
    );
    let started = events
        .iter()
        .filter(|e| matches!(e, SmokeProgress::CheckStarted { .. }))
        .count();
    assert_eq!(started, 10);
    let md = report.to_markdown();
    for (_, title) in smoke::CHECKS {
        assert!(md.contains(title), "{title} missing from\n{md}");
    }
    assert_eq!(SmokeReport::from_json(&report.to_json()).unwrap(), report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_without_tools_skips_the_round_trip_and_cpu_fallback_fails() {
    let fake = FakeOllama::start().await;
    fake.set_models(vec![FakeModel::new("tinyllama").without_tools().on_cpu()]);
    let (report, _) = run(&config(&fake, "tinyllama")).await;
    assert_eq!(
        statuses(&report),
        [
            ("reachability", CheckStatus::Pass),
            ("models_listed", CheckStatus::Pass),
            ("model_present", CheckStatus::Pass),
            ("generation", CheckStatus::Pass),
            ("load_time", CheckStatus::Pass),
            ("cpu_fallback", CheckStatus::Fail),
            ("tool_call", CheckStatus::Skip),
            ("agent_golden", CheckStatus::Skip),
            ("agent_adversarial", CheckStatus::Skip),
            ("agent_write_gated", CheckStatus::Skip),
        ]
    );
    assert!(
        report
            .check("cpu_fallback")
            .unwrap()
            .reason
            .contains("runs on the CPU")
    );
    assert_eq!(
        report.check("tool_call").unwrap().reason,
        "tinyllama:latest does not support tools (capabilities: completion)"
    );
    assert_eq!(
        report.check("agent_golden").unwrap().reason,
        "no agent-service endpoint was given"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_is_pulled_with_progress_or_fails_without_pull() {
    let fake = FakeOllama::start().await;
    let (report, _) = run(&config(&fake, "qwen2.5:0.5b")).await;
    let present = report.check("model_present").unwrap();
    assert_eq!(present.status, CheckStatus::Fail);
    assert_eq!(
        present.reason,
        "qwen2.5:0.5b is not installed; pull it (ollama pull qwen2.5:0.5b)"
    );
    assert_eq!(
        report.check("generation").unwrap().reason,
        "qwen2.5:0.5b is not available"
    );

    let mut cfg = config(&fake, "qwen2.5:0.5b");
    cfg.pull_if_missing = true;
    let (report, events) = run(&cfg).await;
    assert_eq!(
        report.check("model_present").unwrap().status,
        CheckStatus::Pass,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        report.check("generation").unwrap().status,
        CheckStatus::Pass
    );
    let pulls: Vec<(String, Option<u64>)> = events
        .iter()
        .filter_map(|e| match e {
            SmokeProgress::Pull { progress } => Some((progress.status.clone(), progress.completed)),
            _ => None,
        })
        .collect();
    assert_eq!(
        pulls.first().map(|p| p.0.as_str()),
        Some("pulling manifest")
    );
    assert_eq!(pulls.last().map(|p| p.0.as_str()), Some("success"));
    assert!(
        pulls.iter().any(|p| p.1.is_some_and(|c| c > 0)),
        "{pulls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_breaks_fails_generation_with_its_message() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::text("one two three four five six"));
    fake.set_mode(Mode::ErrorAfter {
        chunks: 2,
        message: "an error was encountered while running the model: CUDA error".into(),
    });
    let (report, _) = run(&config(&fake, "llama3.2")).await;
    let generation = report.check("generation").unwrap();
    assert_eq!(generation.status, CheckStatus::Fail);
    assert!(
        generation.reason.contains("CUDA error"),
        "{}",
        generation.reason
    );

    fake.set_mode(Mode::Malformed { after_chunks: 1 });
    let (report, _) = run(&config(&fake, "llama3.2")).await;
    let generation = report.check("generation").unwrap();
    assert_eq!(generation.status, CheckStatus::Fail);
    assert!(
        generation.reason.contains("not JSON"),
        "{}",
        generation.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_token_is_measured() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::text("a slow but fine answer"));
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 400,
        between_chunks_ms: 5,
    });
    let (report, _) = run(&config(&fake, "llama3.2")).await;
    assert_eq!(
        report.check("generation").unwrap().status,
        CheckStatus::Pass
    );
    let ttft = measurement(&report, "generation", "time_to_first_token");
    assert!(ttft >= 400.0, "{ttft} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_down_or_hanging_ollama_fails_reachability_and_skips_the_rest() {
    let closed =
        SmokeConfig::new(BaseUrl::parse("http://127.0.0.1:9").unwrap(), "llama3.2").unwrap();
    let (report, _) = run(&closed).await;
    assert_eq!(report.checks[0].status, CheckStatus::Fail);
    assert!(
        report.checks[0].reason.contains("is Ollama running"),
        "{}",
        report.checks[0].reason
    );
    assert!(
        report.checks[1..]
            .iter()
            .all(|c| c.status == CheckStatus::Skip)
    );
    assert_eq!(report.checks[3].reason, "Ollama is not reachable");
    assert!(!report.passed());

    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::Down {
        status: 503,
        message: "server busy".into(),
    });
    let (report, _) = run(&config(&fake, "llama3.2")).await;
    assert_eq!(report.checks[0].status, CheckStatus::Fail);
    assert!(
        report.checks[0].reason.contains("server busy"),
        "{}",
        report.checks[0].reason
    );

    fake.set_mode(Mode::Hang);
    let mut cfg = config(&fake, "llama3.2");
    cfg.check_timeout = Duration::from_millis(500);
    let (report, _) = run(&cfg).await;
    assert_eq!(report.checks[0].status, CheckStatus::Fail);
    assert!(report.checks[0].duration_ms < 5000.0);
}
