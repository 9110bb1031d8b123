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
    // The v4 policy names a block by its strongest category: the override of prior
    // instructions (weighted up in the policy) outweighs the request for the system prompt.
    let adversarial = &report.check("agent_adversarial").unwrap().reason;
    assert!(adversarial.contains("prompt_injection"), "{adversarial}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_model_is_sized_from_all_its_layers_and_a_failed_pull_shows_its_error() {
    let fake = FakeOllama::start().await;
    let mut cfg = config(&fake, "qwen2.5:0.5b");
    cfg.pull_if_missing = true;
    let (report, _) = run(&cfg).await;
    let registry_size = testkit::fake_ollama::default_registry()
        .into_iter()
        .find(|m| m.name == "qwen2.5:0.5b")
        .unwrap()
        .size;
    assert_eq!(
        measurement(&report, "model_present", "size"),
        registry_size as f64,
        "weights, template, parameters and config together"
    );
    assert_eq!(measurement(&report, "model_present", "layers"), 4.0);

    let mut cfg = config(&fake, "no-such-model:7b");
    cfg.pull_if_missing = true;
    let (report, _) = run(&cfg).await;
    let present = report.check("model_present").unwrap();
    assert_eq!(present.status, CheckStatus::Fail);
    assert!(
        present
            .reason
            .starts_with("pulling no-such-model:7b failed:")
            && present
                .reason
                .contains("pull model manifest: file does not exist"),
        "{}",
        present.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thinking_time_is_reported_apart_from_the_first_answer_token() {
    let fake = FakeOllama::start().await;
    fake.add_model(FakeModel::new("qwen3").thinking());
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 0,
        between_chunks_ms: 40,
    });
    // Ollama's default for a thinking model: it thinks first.
    fake.push_reply(Reply::text("Yes, ready.").with_thinking("the user asks if I am ready"));
    let (report, _) = run(&config(&fake, "qwen3")).await;
    let generation = report.check("generation").unwrap();
    assert_eq!(generation.status, CheckStatus::Pass, "{generation:?}");
    assert!(
        generation.reason.contains("after thinking"),
        "{generation:?}"
    );
    let thinking = measurement(&report, "generation", "thinking_time");
    let ttft = measurement(&report, "generation", "time_to_first_token");
    assert_eq!(measurement(&report, "generation", "thinking_tokens"), 7.0);
    // Seven thinking pieces 40 ms apart come before the first answer token.
    assert!(thinking >= 6.0 * 40.0, "thinking {thinking} ms");
    assert!(ttft >= thinking, "ttft {ttft} ms, thinking {thinking} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_compatible_server_gets_its_checks_and_exports() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::text("Yes, I am ready."));
    fake.push_reply(Reply::tool_call("get_weather", json!({ "city": "Paris" })));
    fake.push_reply(Reply::text("It is 18 °C and clear in Paris."));
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let mut cfg = SmokeConfig::openai_compatible(
        BaseUrl::parse(&fake.openai_url()).unwrap(),
        "llama3.2:latest",
    )
    .unwrap();
    cfg.agent = Some(client(&svc, "invoke"));
    let (report, _) = run(&cfg).await;
    assert_eq!(
        statuses(&report),
        [
            ("reachability", CheckStatus::Pass),
            ("models_listed", CheckStatus::Pass),
            ("model_present", CheckStatus::Pass),
            ("generation", CheckStatus::Pass),
            ("load_time", CheckStatus::Skip),
            ("cpu_fallback", CheckStatus::Skip),
            ("tool_call", CheckStatus::Pass),
            ("agent_golden", CheckStatus::Pass),
            ("agent_adversarial", CheckStatus::Pass),
            ("agent_write_gated", CheckStatus::Pass),
        ],
        "{}",
        report.to_markdown()
    );
    assert!(measurement(&report, "generation", "time_to_first_token") > 0.0);
    assert!(measurement(&report, "generation", "tokens_per_second") > 0.0);
    let chats = fake.bodies("/v1/chat/completions");
    assert_eq!(
        chats.len(),
        3,
        "generation, then the two tool round-trip calls"
    );
    assert_eq!(chats[0]["max_tokens"], 64, "a bounded generation");
    assert_eq!(chats[2]["messages"][2]["role"], "tool");
    assert_eq!(
        fake.request_count("/api/chat"),
        0,
        "only the /v1 API is used"
    );

    assert_eq!(report.target, smoke::SmokeTarget::OpenaiCompatible);
    let md = report.to_markdown();
    assert!(md.contains("(OpenAI-compatible API)"), "{md}");
    assert!(md.contains("| Server reachable | pass |"), "{md}");
    assert!(md.contains("does not report model load times"), "{md}");
    assert_eq!(SmokeReport::from_json(&report.to_json()).unwrap(), report);

    // A model the server does not serve: said so, with what it serves.
    let cfg = SmokeConfig::openai_compatible(BaseUrl::parse(&fake.openai_url()).unwrap(), "gpt-x")
        .unwrap();
    let (report, _) = run(&cfg).await;
    let present = report.check("model_present").unwrap();
    assert_eq!(present.status, CheckStatus::Fail);
    assert!(
        present.reason.contains("llama3.2:latest"),
        "{}",
        present.reason
    );
}

/// The OpenAI-compatible checks against llama.cpp's real server with SmolLM2-135M
/// (`TEST_MODEL_PYTHON`, see scripts/setup-model.sh), and the service pointed at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_llama_cpp_server_through_the_openai_compatible_checks() {
    let llama = testkit::LlamaServer::start(testkit::LlamaOptions::default()).await;
    let base = llama.openai_url();
    let svc = AgentService::spawn(
        Backend::Sqlite,
        &[
            ("AGENT_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", base.as_str()),
            ("MODEL_NAME", testkit::llama::MODEL_ALIAS),
            ("MAX_OUTPUT_TOKENS", "32"),
        ],
    )
    .await;
    let mut cfg =
        SmokeConfig::openai_compatible(BaseUrl::parse(&base).unwrap(), testkit::llama::MODEL_ALIAS)
            .unwrap();
    cfg.agent = Some(client(&svc, "invoke"));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let report = within(240, "the smoke suite against the real model", async {
        smoke::run(&cfg, http_client().unwrap(), &SystemClock, &move |p| {
            sink.lock().unwrap().push(p)
        })
        .await
    })
    .await;
    let md = report.to_markdown();
    let status = |name: &str| report.check(name).unwrap().status;
    for check in [
        "reachability",
        "models_listed",
        "model_present",
        "generation",
    ] {
        assert_eq!(status(check), CheckStatus::Pass, "{check}\n{md}");
    }
    assert!(measurement(&report, "generation", "time_to_first_token") > 0.0);
    assert!(measurement(&report, "generation", "tokens_per_second") > 0.0);
    assert_eq!(status("load_time"), CheckStatus::Skip);
    assert_eq!(status("cpu_fallback"), CheckStatus::Skip);
    // SmolLM2's chat template has no tools, and llama.cpp says so.
    let tool = report.check("tool_call").unwrap();
    assert_eq!(tool.status, CheckStatus::Skip, "{md}");
    assert!(tool.reason.contains("supports_tools is false"), "{md}");
    // Through the service: the input guardrail stops the injection whatever the model;
    // the model neither cites nor calls tools, so the golden case and the gated write
    // fail, and the report says so.
    assert_eq!(status("agent_adversarial"), CheckStatus::Pass, "{md}");
    assert_eq!(status("agent_golden"), CheckStatus::Fail, "{md}");
    assert_eq!(status("agent_write_gated"), CheckStatus::Fail, "{md}");
    assert_eq!(SmokeReport::from_json(&report.to_json()).unwrap(), report);
    assert!(md.contains(testkit::llama::MODEL_ALIAS), "{md}");
}

// --- the console's command path ---------------------------------------------------------

mod console_path {
    use std::sync::Arc;
    use std::time::Duration;

    use flightdeck_core::BaseUrl;
    use flightdeck_core::clock::SystemClock;
    use flightdeck_core::console::dto::*;
    use flightdeck_core::console::{Console, ConsoleOptions};
    use flightdeck_core::host::Host;
    use serde_json::Value;
    use testkit::{AgentService, Backend, FakeOllama, Reply};

    use crate::helpers::within;
    use crate::rig::{Recorder, TempDir};

    async fn console(ollama: &str, dir: &TempDir) -> (Console, Arc<Recorder>) {
        let sink = Arc::new(Recorder::default());
        let host = Host::in_memory(Arc::new(SystemClock)).await.unwrap();
        let options = ConsoleOptions {
            scrape_interval: Duration::from_millis(500),
            ollama_url: BaseUrl::parse(ollama).unwrap(),
            model_server: Ok(None),
            ..ConsoleOptions::new(dir.0.clone())
        };
        let console = Console::start(host, sink.clone(), options).await.unwrap();
        (console, sink)
    }

    fn run_args(target: SmokeTarget, model: &str, server_url: Option<&str>) -> RunSmokeArgs {
        RunSmokeArgs {
            model: model.into(),
            through_agent: false,
            target,
            server_url: server_url.map(str::to_string),
            api_key: None,
        }
    }

    fn statuses(r: &SmokeReport) -> Vec<(&str, CheckStatus)> {
        r.checks
            .iter()
            .map(|c| (c.name.as_str(), c.status))
            .collect()
    }

    /// Exports `report` in both formats and returns (Markdown, JSON).
    async fn exports(console: &Console, report: &SmokeReport) -> (String, Value) {
        let mut md = String::new();
        let mut json = Value::Null;
        for format in [ExportFormat::Markdown, ExportFormat::Json] {
            let file = console
                .export_smoke_report(ExportSmokeArgs {
                    id: report.id.clone(),
                    format,
                })
                .await
                .unwrap();
            let text = std::fs::read_to_string(&file.path).unwrap();
            assert_eq!(text.len() as u64, file.bytes, "{file:?}");
            match format {
                ExportFormat::Markdown => md = text,
                ExportFormat::Json => json = serde_json::from_str(&text).unwrap(),
            }
        }
        (md, json)
    }

    fn started_titles(sink: &Recorder) -> Vec<String> {
        sink.of("smoke_progress")
            .iter()
            .filter(|p| p["type"] == "check_started")
            .map(|p| p["title"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_console_runs_and_exports_both_kinds_of_server() {
        let fake = FakeOllama::start().await;
        let dir = TempDir::new("fd-smoke-console");
        let (console, sink) = console(&fake.url(), &dir).await;

        // Ollama, as before: the native API and its titles.
        fake.push_reply(Reply::text("Yes, I am ready."));
        let ollama = within(
            60,
            "the Ollama smoke run",
            console.run_smoke(run_args(SmokeTarget::Ollama, "llama3.2", None)),
        )
        .await
        .unwrap();
        assert_eq!(ollama.target, SmokeTarget::Ollama);
        assert_eq!(ollama.server_url, fake.url());
        assert_eq!(ollama.checks[0].title, "Ollama reachable");
        assert!(started_titles(&sink).contains(&"Ollama reachable".to_string()));
        let (md, json) = exports(&console, &ollama).await;
        assert!(md.starts_with("# Smoke test: llama3.2:latest at "), "{md}");
        assert!(!md.contains("OpenAI-compatible"), "{md}");
        assert_eq!(json["target"], "ollama");
        sink.clear();

        // The OpenAI-compatible kind: the server's /v1 only, its own titles, no pull.
        let status = console
            .discover_model_server(ModelServerArgs {
                url: Some(fake.openai_url()),
                api_key: None,
            })
            .await
            .unwrap();
        assert!(status.reachable, "{status:?}");
        assert!(
            status.models.contains(&"llama3.2:latest".to_string()),
            "{status:?}"
        );
        assert!(!status.detected && !status.key_stored, "{status:?}");
        let before_native = fake.request_count("/api/chat");
        fake.push_reply(Reply::text("Yes, I am ready."));
        let report = within(
            60,
            "the OpenAI-compatible smoke run",
            console.run_smoke(run_args(
                SmokeTarget::OpenaiCompatible,
                "llama3.2:latest",
                Some(&fake.openai_url()),
            )),
        )
        .await
        .unwrap();
        assert_eq!(report.target, SmokeTarget::OpenaiCompatible);
        assert_eq!(report.server_url, fake.openai_url());
        assert_eq!(report.model, "llama3.2:latest");
        assert_eq!(
            statuses(&report)[..6],
            [
                ("reachability", CheckStatus::Pass),
                ("models_listed", CheckStatus::Pass),
                ("model_present", CheckStatus::Pass),
                ("generation", CheckStatus::Pass),
                ("load_time", CheckStatus::Skip),
                ("cpu_fallback", CheckStatus::Skip),
            ],
            "{report:?}"
        );
        assert_eq!(fake.request_count("/api/chat"), before_native);
        assert_eq!(fake.request_count("/api/pull"), 0);
        // The progress titles are the kind's own.
        let titles = started_titles(&sink);
        assert_eq!(titles[0], "Server reachable", "{titles:?}");
        assert_eq!(titles[2], "Model served", "{titles:?}");
        assert!(!titles.iter().any(|t| t.contains("Ollama")), "{titles:?}");
        assert!(sink.of("pull_progress").is_empty());

        // Stored, listed, read back and exported like any other run.
        let runs = console.list_smoke_runs().await.unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].id, report.id);
        let stored = console
            .get_smoke_report(SmokeRunIdArgs {
                id: report.id.clone(),
            })
            .await
            .unwrap();
        assert_eq!(stored, report);
        let (md, json) = exports(&console, &report).await;
        assert!(
            md.starts_with(&format!(
                "# Smoke test: llama3.2:latest at {} (OpenAI-compatible API)",
                fake.openai_url()
            )),
            "{md}"
        );
        assert!(md.contains("| Server reachable | pass |"), "{md}");
        assert!(md.contains("| Model served | pass |"), "{md}");
        assert_eq!(json["target"], "openai_compatible");
        assert_eq!(json["id"], report.id.as_str());

        // The server URL is proposed next time.
        let proposed = console
            .discover_model_server(ModelServerArgs {
                url: None,
                api_key: None,
            })
            .await
            .unwrap();
        assert_eq!(proposed.url, fake.openai_url());
        console.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_model_server_key_lives_in_the_keyring_for_its_url_only() {
        let fake = FakeOllama::start().await;
        let other = FakeOllama::start().await;
        let dir = TempDir::new("fd-smoke-key");
        let (console, _sink) = console(&fake.url(), &dir).await;
        let auth = |f: &FakeOllama| -> Vec<Option<String>> {
            f.requests()
                .iter()
                .filter(|r| r.path == "/v1/models")
                .map(|r| r.headers.get("authorization").cloned())
                .collect()
        };

        let status = console
            .discover_model_server(ModelServerArgs {
                url: Some(fake.openai_url()),
                api_key: Some(" sk-local-123 ".into()),
            })
            .await
            .unwrap();
        assert!(status.reachable && status.key_stored, "{status:?}");
        assert_eq!(auth(&fake), [Some("Bearer sk-local-123".to_string())]);
        // Not in the settings file or the store: only the URL it belongs to.
        let settings = std::fs::read_to_string(dir.0.join("settings.json")).unwrap();
        assert!(!settings.contains("sk-local-123"), "{settings}");
        assert!(settings.contains(&fake.openai_url()), "{settings}");

        // A run without a key uses the stored one for this URL…
        let keyed = RunSmokeArgs {
            api_key: Some("sk-local-123".into()),
            ..run_args(SmokeTarget::OpenaiCompatible, "m", None)
        };
        assert!(!format!("{keyed:?}").contains("sk-local-123"), "{keyed:?}");
        let mut args = run_args(
            SmokeTarget::OpenaiCompatible,
            "llama3.2:latest",
            Some(&fake.openai_url()),
        );
        fake.push_reply(Reply::text("Ready."));
        let report = within(
            60,
            "the run with the stored key",
            console.run_smoke(args.clone()),
        )
        .await
        .unwrap();
        assert_eq!(report.checks[0].status, CheckStatus::Pass, "{report:?}");
        let chat_auth: Vec<_> = fake
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/chat/completions")
            .map(|r| r.headers.get("authorization").cloned())
            .collect();
        assert!(!chat_auth.is_empty());
        assert!(
            chat_auth
                .iter()
                .all(|a| a.as_deref() == Some("Bearer sk-local-123")),
            "{chat_auth:?}"
        );
        // …and never sends it to another server.
        let elsewhere = console
            .discover_model_server(ModelServerArgs {
                url: Some(other.openai_url()),
                api_key: None,
            })
            .await
            .unwrap();
        assert!(
            elsewhere.reachable && !elsewhere.key_stored,
            "{elsewhere:?}"
        );
        assert_eq!(auth(&other), [None]);

        // "" forgets it.
        args.api_key = Some(String::new());
        fake.push_reply(Reply::text("Ready."));
        within(60, "the run that forgets the key", console.run_smoke(args))
            .await
            .unwrap();
        let status = console
            .discover_model_server(ModelServerArgs {
                url: Some(fake.openai_url()),
                api_key: None,
            })
            .await
            .unwrap();
        assert!(!status.key_stored, "{status:?}");
        assert_eq!(auth(&fake).last(), Some(&None));
        console.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_smoke_input_is_refused_before_anything_runs() {
        let fake = FakeOllama::start().await;
        let dir = TempDir::new("fd-smoke-bad");
        let (console, _sink) = console(&fake.url(), &dir).await;
        let cases = [
            (
                run_args(SmokeTarget::OpenaiCompatible, "m", Some("not a url")),
                "is not a URL",
            ),
            (
                run_args(
                    SmokeTarget::OpenaiCompatible,
                    "two words",
                    Some(&fake.openai_url()),
                ),
                "is not valid",
            ),
            (
                run_args(SmokeTarget::Ollama, "llama3.2", Some(&fake.openai_url())),
                "takes no server URL",
            ),
            (
                RunSmokeArgs {
                    api_key: Some("has a space".into()),
                    ..run_args(SmokeTarget::OpenaiCompatible, "m", Some(&fake.openai_url()))
                },
                "API key",
            ),
        ];
        for (args, says) in cases {
            let e = console.run_smoke(args.clone()).await.unwrap_err();
            assert_eq!(e.code, CommandErrorCode::Invalid, "{args:?}: {e:?}");
            assert!(e.message.contains(says), "{args:?}: {}", e.message);
        }
        let e = console
            .discover_model_server(ModelServerArgs {
                url: Some("ftp://host/v1".into()),
                api_key: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, CommandErrorCode::Invalid);
        assert!(console.list_smoke_runs().await.unwrap().is_empty());
        assert_eq!(fake.counters().total, 0, "nothing reached the server");

        // A server that is not there: discovery says so and what to do.
        let down = console
            .discover_model_server(ModelServerArgs {
                url: Some("http://127.0.0.1:9/v1".into()),
                api_key: None,
            })
            .await
            .unwrap();
        assert!(!down.reachable, "{down:?}");
        assert!(
            down.error
                .as_deref()
                .unwrap()
                .contains("OpenAI-compatible server"),
            "{down:?}"
        );
        console.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pull_reports_every_layer_and_a_failed_pull_the_servers_error() {
        let fake = FakeOllama::start().await;
        let dir = TempDir::new("fd-smoke-pull");
        let (console, sink) = console(&fake.url(), &dir).await;
        console
            .pull_model(PullModelArgs {
                model: "qwen2.5:0.5b".into(),
            })
            .await
            .unwrap();
        let events = sink.of("pull_progress");
        // Each layer's total, as the UI adds them up.
        let mut layers = std::collections::BTreeMap::new();
        for e in &events {
            if let (Some(d), Some(t)) = (e["digest"].as_str(), e["total_bytes"].as_u64()) {
                layers.insert(d.to_string(), t);
            }
        }
        let registry_size = testkit::fake_ollama::default_registry()
            .into_iter()
            .find(|m| m.name == "qwen2.5:0.5b")
            .unwrap()
            .size;
        assert_eq!(layers.len(), 4, "{events:?}");
        assert_eq!(layers.values().sum::<u64>(), registry_size);
        assert!(
            events
                .iter()
                .filter(|e| e["digest"].is_string())
                .all(|e| e["status"].as_str().unwrap().starts_with("pulling ")),
            "{events:?}"
        );
        assert_eq!(events.last().unwrap()["status"], "success");
        assert!(events.last().unwrap()["digest"].is_null());

        sink.clear();
        let e = console
            .pull_model(PullModelArgs {
                model: "no-such-model:7b".into(),
            })
            .await
            .unwrap_err();
        assert!(
            e.message.starts_with("Pulling no-such-model:7b failed: ")
                && e.message
                    .contains("pull model manifest: file does not exist"),
            "{e:?}"
        );
        let events = sink.of("pull_progress");
        assert_eq!(events[0]["status"], "pulling manifest", "{events:?}");
        assert!(!events.iter().any(|e| e["status"] == "success"));
        console.shutdown().await;
    }

    /// The console's command path against llama.cpp's real server with SmolLM2-135M:
    /// discovered, run through the service pointed at it, stored, exported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_model_console_smoke_run_against_llama_cpp() {
        let llama = testkit::LlamaServer::start(testkit::LlamaOptions::default()).await;
        let base = llama.openai_url();
        let svc = AgentService::spawn(
            Backend::Sqlite,
            &[
                ("AGENT_PROVIDER", "openai"),
                ("OPENAI_BASE_URL", base.as_str()),
                ("MODEL_NAME", testkit::llama::MODEL_ALIAS),
                ("MAX_OUTPUT_TOKENS", "32"),
            ],
        )
        .await;
        let dir = TempDir::new("fd-smoke-real");
        let (console, sink) = console("http://127.0.0.1:9", &dir).await;
        console
            .add_agent_profile(AddAgentProfileArgs {
                name: "real model".into(),
                url: svc.base_url().to_string(),
                api_key: svc.key("admin").to_string(),
            })
            .await
            .unwrap();
        let status = console
            .discover_model_server(ModelServerArgs {
                url: Some(base.clone()),
                api_key: None,
            })
            .await
            .unwrap();
        assert_eq!(status.models, [testkit::llama::MODEL_ALIAS], "{status:?}");
        let report = within(
            240,
            "the smoke run against the real model",
            console.run_smoke(RunSmokeArgs {
                through_agent: true,
                ..run_args(
                    SmokeTarget::OpenaiCompatible,
                    testkit::llama::MODEL_ALIAS,
                    Some(&base),
                )
            }),
        )
        .await
        .unwrap();
        let status_of = |n: &str| report.checks.iter().find(|c| c.name == n).unwrap().status;
        for check in [
            "reachability",
            "models_listed",
            "model_present",
            "generation",
        ] {
            assert_eq!(status_of(check), CheckStatus::Pass, "{check}: {report:?}");
        }
        assert_eq!(status_of("tool_call"), CheckStatus::Skip, "{report:?}");
        assert_eq!(
            status_of("agent_adversarial"),
            CheckStatus::Pass,
            "{report:?}"
        );
        assert_eq!(status_of("agent_golden"), CheckStatus::Fail, "{report:?}");
        assert_eq!(report.checks.len(), 10);
        assert_eq!(
            sink.of("smoke_progress")
                .iter()
                .filter(|p| p["type"] == "check_finished")
                .count(),
            10
        );
        let (md, json) = exports(&console, &report).await;
        assert!(md.contains("(OpenAI-compatible API)"), "{md}");
        assert!(md.contains(testkit::llama::MODEL_ALIAS), "{md}");
        assert_eq!(json["target"], "openai_compatible");
        assert_eq!(json["checks"].as_array().unwrap().len(), 10);
        let generation = &json["checks"][3];
        assert_eq!(generation["name"], "generation");
        assert!(
            generation["measurements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "tokens_per_second" && m["value"].as_f64().unwrap() > 0.0),
            "{generation}"
        );
        console.shutdown().await;
    }
}
