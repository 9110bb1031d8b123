//! The Local profile against the real agent-service binary: start on embedded defaults,
//! live synthetic traffic, provider detection, a model server given (the fake's `/v1`, and
//! llama.cpp's real server), stop and drop, and clear start-up errors.

use std::time::Duration;

use flightdeck_core::agent::{ApprovalStatus, InvokeRequest, http_client};
use flightdeck_core::local::{
    LocalConfig, LocalProvider, LocalService, ModelServer, Traffic, TrafficConfig,
};
use flightdeck_core::{BaseUrl, ErrorCode};
use testkit::agent::agent_service_bin;
use testkit::{FakeOllama, Reply};

use crate::helpers::within;

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("fd-local-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(data_dir: std::path::PathBuf, ollama: &str) -> LocalConfig {
    LocalConfig {
        ollama_url: BaseUrl::parse(ollama).unwrap(),
        stop_grace: Duration::from_secs(3),
        ..LocalConfig::new(agent_service_bin(), data_dir)
    }
}

/// Whether a process with this pid still exists (zombies excepted: they have exited).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_profile_serves_demo_data_with_live_traffic_and_stops() {
    let dir = temp_dir();
    let http = http_client().unwrap();
    let svc = within(
        60,
        "the local service",
        LocalService::start(&config(dir.clone(), "http://127.0.0.1:9"), &http),
    )
    .await
    .unwrap();
    match svc.provider() {
        LocalProvider::Scripted { reason } => {
            assert!(reason.contains("no Ollama answered"), "{reason}")
        }
        other => panic!("expected scripted, got {other:?}"),
    }
    assert!(
        dir.join("agent-service.db").is_file(),
        "SQLite in the data dir"
    );
    let viewer = svc.client(&http, "viewer").unwrap();
    let info = viewer.info().await.unwrap();
    assert!(info.provider.scripted);
    assert_eq!(
        svc.client(&http, "nobody").unwrap_err().code(),
        ErrorCode::Invalid
    );

    let traffic = Traffic::start(
        svc.client(&http, "invoke").unwrap(),
        TrafficConfig {
            per_second: 25.0,
            injection_every: 5,
            max_inflight: 8,
            seed: 3,
            ..TrafficConfig::default()
        },
    )
    .unwrap();
    within(30, "traffic of every kind", async {
        loop {
            let o = traffic.stats().outcomes();
            if ["success", "approval_required", "blocked"]
                .iter()
                .all(|k| o.get(*k).copied().unwrap_or(0) > 0)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    drop(traffic);
    let approver = svc.client(&http, "approver").unwrap();
    let pending = approver
        .approvals(Some(ApprovalStatus::Pending), None, None)
        .await
        .unwrap();
    assert!(!pending.items.is_empty(), "writes wait for approval");
    let metrics = viewer.metrics().await.unwrap();
    assert!(metrics.sum("agent_requests_total", &[]).unwrap() >= 3.0);
    assert!(metrics.sum("agent_guardrail_blocks_total", &[]).unwrap() >= 1.0);

    let pid = svc.pid().unwrap();
    let status = within(10, "the service to stop", svc.stop()).await.unwrap();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}");
    assert!(!alive(pid));

    // The same data dir again: the demo data is reused, new keys work.
    let again = within(
        60,
        "the second start",
        LocalService::start(&config(dir.clone(), "http://127.0.0.1:9"), &http),
    )
    .await
    .unwrap();
    assert!(
        again
            .client(&http, "viewer")
            .unwrap()
            .healthz()
            .await
            .is_ok()
    );
    let pid = again.pid().unwrap();
    drop(again);
    within(10, "the dropped service to exit", async {
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_ollama_is_used_when_it_answers() {
    let fake = FakeOllama::start().await;
    let dir = temp_dir();
    let http = http_client().unwrap();
    let svc = within(
        60,
        "the local service",
        LocalService::start(&config(dir.clone(), &fake.url()), &http),
    )
    .await
    .unwrap();
    assert_eq!(
        svc.provider(),
        &LocalProvider::Ollama {
            url: fake.url(),
            model: "llama3.2:latest".into()
        }
    );
    let info = svc.client(&http, "viewer").unwrap().info().await.unwrap();
    assert_eq!(
        (info.provider.kind.as_str(), info.provider.model.as_str()),
        ("ollama", "llama3.2:latest")
    );
    assert!(!info.provider.scripted);

    fake.set_models(vec![]);
    let none =
        flightdeck_core::local::detect_provider(&http, &BaseUrl::parse(&fake.url()).unwrap(), None)
            .await;
    assert!(matches!(none, LocalProvider::Scripted { reason } if reason.contains("no models")));
    drop(svc);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_failures_are_clear_errors() {
    let http = http_client().unwrap();
    let dir = temp_dir();
    let missing = LocalConfig::new(dir.join("no-such-binary"), dir.clone());
    let err = LocalService::start(&missing, &http)
        .await
        .err()
        .expect("an error");
    assert_eq!(err.code(), ErrorCode::Process);
    assert!(
        err.to_string().contains("bundled agent-service is missing"),
        "{err}"
    );

    // A binary that is not the agent-service: seed-demo fails.
    let wrong = LocalConfig {
        ollama_url: BaseUrl::parse("http://127.0.0.1:9").unwrap(),
        ..LocalConfig::new("/bin/false".into(), dir.clone())
    };
    let err = LocalService::start(&wrong, &http)
        .await
        .err()
        .expect("an error");
    assert!(err.to_string().contains("seed-demo failed"), "{err}");

    // Stand-ins whose `seed-demo` works but whose `serve` exits, or never listens.
    let script = |name: &str, serve: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nif [ \"$1\" = seed-demo ]; then printf 'invoke\\tdemo\\tfdk_x\\n'; exit 0; fi\n{serve}\n"),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
        LocalConfig {
            ollama_url: BaseUrl::parse("http://127.0.0.1:9").unwrap(),
            startup_timeout: Duration::from_secs(1),
            ..LocalConfig::new(path, dir.join(format!("{name}-data")))
        }
    };
    let exits = script(
        "exits",
        "echo 'DATABASE_URL is not usable: boom' >&2; exit 2",
    );
    let err = LocalService::start(&exits, &http)
        .await
        .err()
        .expect("an error");
    assert!(
        err.to_string().contains("exited before it was listening"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("stderr: DATABASE_URL is not usable: boom"),
        "{err}"
    );
    let silent = script("silent", "exec sleep 30");
    let started = std::time::Instant::now();
    let err = LocalService::start(&silent, &http)
        .await
        .err()
        .expect("an error");
    assert!(
        err.to_string().contains("was not listening within 1 s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the silent process was killed"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn model_server(url: &str, model: &str, max_output_tokens: u32) -> ModelServer {
    ModelServer {
        url: BaseUrl::parse(url).unwrap(),
        model: model.into(),
        api_key: None,
        max_output_tokens: Some(max_output_tokens),
    }
}

/// The console with its Local service on an OpenAI-compatible server (what
/// `scripts/start.sh --model` sets up): the service calls that server with the output cap
/// given, and the Smoke tests view proposes the server and its model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_its_local_service_on_a_model_server_and_proposes_it() {
    use std::sync::Arc;

    use flightdeck_core::clock::SystemClock;
    use flightdeck_core::console::dto::ModelServerArgs;
    use flightdeck_core::console::{Console, ConsoleOptions};
    use flightdeck_core::host::Host;

    let fake = FakeOllama::start().await;
    let dir = temp_dir();
    let host = Host::in_memory(Arc::new(SystemClock)).await.unwrap();
    let console = within(
        90,
        "the console on a model server",
        Console::start(
            host,
            Arc::new(crate::rig::Recorder::default()),
            ConsoleOptions {
                agent_binary: Some(agent_service_bin()),
                start_local: true,
                // An Ollama answers too: the model server given wins over detection.
                ollama_url: BaseUrl::parse(&fake.url()).unwrap(),
                model_server: Ok(Some(model_server(
                    &fake.openai_url(),
                    "llama3.2:latest",
                    24,
                ))),
                ..ConsoleOptions::new(dir.clone())
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(console.local_error(), None);
    let local = console.local_client("viewer").unwrap();
    let info = local.info().await.unwrap();
    assert_eq!(
        (info.provider.kind.as_str(), info.provider.model.as_str()),
        ("openai", "llama3.2:latest")
    );
    assert!(!info.provider.scripted);

    fake.push_reply(Reply::text("Reset it from the login page [kb:kb-1]."));
    let reply = console
        .local_client("invoke")
        .unwrap()
        .invoke(&InvokeRequest::new("faq", "How do I reset my password?"))
        .await
        .unwrap();
    assert_eq!(reply.model, "llama3.2:latest");
    let calls = fake.bodies("/v1/chat/completions");
    assert!(!calls.is_empty(), "the service called the model server");
    assert!(
        calls.iter().all(|c| c["max_tokens"].as_u64() == Some(24)),
        "MAX_OUTPUT_TOKENS reached the service: {calls:?}"
    );
    assert_eq!(
        fake.request_count("/api/chat"),
        0,
        "not Ollama's native API"
    );

    // The Smoke tests view proposes that server and its model.
    let proposed = console
        .discover_model_server(ModelServerArgs {
            url: None,
            api_key: None,
        })
        .await
        .unwrap();
    assert_eq!(proposed.url, fake.openai_url());
    assert!(proposed.detected && proposed.reachable, "{proposed:?}");
    assert_eq!(proposed.default_model.as_deref(), Some("llama3.2:latest"));
    console.shutdown().await;

    // An incomplete environment is the Local profile's start-up error, naming the variable.
    let console = Console::start(
        Host::in_memory(Arc::new(SystemClock)).await.unwrap(),
        Arc::new(crate::rig::Recorder::default()),
        ConsoleOptions {
            agent_binary: Some(agent_service_bin()),
            start_local: true,
            model_server: ModelServer::from_env(|k| {
                (k == "AGENT_PROVIDER").then(|| "openai".to_string())
            })
            .map_err(|e| e.to_string()),
            ..ConsoleOptions::new(dir.join("second"))
        },
    )
    .await
    .unwrap();
    let e = console.local_error().expect("no Local profile");
    assert!(e.message.contains("needs OPENAI_BASE_URL"), "{e:?}");
    assert!(console.local_url().is_none());
    console.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// The Local service on llama.cpp's real server with SmolLM2-135M: a real answer, each
/// call within the output cap, every token the server generated booked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_the_local_service_answers_with_a_real_model() {
    let llama = testkit::LlamaServer::start(testkit::LlamaOptions::default()).await;
    let dir = temp_dir();
    let http = http_client().unwrap();
    let svc = within(
        60,
        "the local service on the real model",
        LocalService::start(
            &LocalConfig {
                model_server: Some(model_server(
                    &llama.openai_url(),
                    testkit::llama::MODEL_ALIAS,
                    32,
                )),
                ..config(dir.clone(), "http://127.0.0.1:9")
            },
            &http,
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        svc.provider(),
        &LocalProvider::Openai {
            url: llama.openai_url(),
            model: testkit::llama::MODEL_ALIAS.into(),
        }
    );
    let traffic = TrafficConfig::for_provider(svc.provider());
    assert_eq!(
        traffic.max_inflight, 1,
        "one synthetic request at a time against a real model"
    );
    assert!(
        traffic.request_timeout > Duration::from_secs(60),
        "the demo client outwaits the service's 60 s request deadline: {traffic:?}"
    );
    let before = llama.tokens_predicted().await;
    let reply = within(
        120,
        "a real model's answer",
        svc.client(&http, "invoke")
            .unwrap()
            .invoke(&InvokeRequest::new("faq", "How do I reset my password?")),
    )
    .await
    .unwrap();
    assert_eq!(reply.model, testkit::llama::MODEL_ALIAS);
    let generated = llama.tokens_predicted().await - before;
    assert!(generated > 0.0, "the server generated nothing");
    let booked = reply.usage.completion_tokens as f64;
    assert!(
        (booked - generated).abs() <= generated * 0.05,
        "every generated token is booked: the server generated {generated}, the service booked {booked}"
    );
    drop(svc);
    std::fs::remove_dir_all(&dir).ok();
}

/// The output cap `scripts/start.sh --model` gives the Local service unless
/// `MAX_OUTPUT_TOKENS` is set: read from the script, so that this test runs what a new user
/// gets.
fn start_sh_output_cap() -> u32 {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/start.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    let at = text
        .find("MAX_OUTPUT_TOKENS:-")
        .expect("start.sh sets a default MAX_OUTPUT_TOKENS");
    let digits: String = text[at + "MAX_OUTPUT_TOKENS:-".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number of tokens")
}

/// What `scripts/start.sh --model` gives a new user: the console's Local service on
/// llama.cpp's real server with SmolLM2-135M, the demo traffic a real model gets (one
/// request at a time) and the script's output cap. The Overview counts the real model's
/// requests and the Traces view shows its runs with the model's own words in their LLM
/// spans, whatever each run's ending: a 135M model does not cite its evidence, so the read
/// workflows end `blocked` (`citation_required`) and the trace keeps the answer withheld.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_the_console_shows_a_real_models_answers() {
    use std::sync::Arc;
    use std::time::Instant;

    use flightdeck_core::clock::SystemClock;
    use flightdeck_core::console::dto::{SpanKind, TraceIdArgs, TraceQuery};
    use flightdeck_core::console::{Console, ConsoleOptions};
    use flightdeck_core::host::Host;

    let cap = start_sh_output_cap();
    assert!(
        (128..=512).contains(&cap),
        "start.sh's cap {cap} leaves a small model room for an answer"
    );
    let llama = testkit::LlamaServer::start(testkit::LlamaOptions::default()).await;
    let dir = temp_dir();
    let sink = Arc::new(crate::rig::Recorder::default());
    let console = within(
        90,
        "the console on the real model",
        Console::start(
            Host::in_memory(Arc::new(SystemClock)).await.unwrap(),
            sink.clone(),
            ConsoleOptions {
                agent_binary: Some(agent_service_bin()),
                start_local: true,
                traffic: true,
                model_server: Ok(Some(model_server(
                    &llama.openai_url(),
                    testkit::llama::MODEL_ALIAS,
                    cap,
                ))),
                ..ConsoleOptions::new(dir.clone())
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(console.local_error(), None);

    // The Traces view: a run of the demo traffic whose LLM span holds the model's answer.
    let deadline = Instant::now() + Duration::from_secs(240);
    let (summary, answer) = 'found: loop {
        let page = console
            .list_traces(TraceQuery {
                errors_only: false,
                min_duration_ms: None,
                workflow: None,
                request_id: None,
                flagged_only: false,
                cursor: None,
                limit: 50,
            })
            .await
            .unwrap();
        let seen: Vec<_> = page
            .items
            .iter()
            .map(|t| (t.workflow.clone(), t.status, t.error_code.clone()))
            .collect();
        for t in page.items {
            assert_eq!(t.model, testkit::llama::MODEL_ALIAS, "{t:?}");
            let detail = console
                .get_trace(TraceIdArgs {
                    trace_id: t.trace_id.clone(),
                })
                .await
                .unwrap();
            for span in detail.spans.iter().filter(|s| s.kind == SpanKind::Llm) {
                let output = span
                    .payload
                    .as_deref()
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                    .and_then(|p| p["output"].as_str().map(str::to_string))
                    .unwrap_or_default();
                if output.split_whitespace().count() >= 3 {
                    assert_eq!(span.model.as_deref(), Some(testkit::llama::MODEL_ALIAS));
                    assert!(
                        span.completion_tokens.unwrap_or(0) > 0,
                        "the tokens of the answer are booked: {span:?}"
                    );
                    break 'found (t, output);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no trace with a real model's answer within 240 s; the runs: {seen:?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    eprintln!(
        "# {} ended {:?} after {:.0} ms; the model said: {answer:?}",
        summary.workflow, summary.status, summary.duration_ms
    );
    assert!(summary.tokens > 0, "{summary:?}");
    assert_ne!(
        summary.status,
        flightdeck_core::console::dto::TraceStatus::Error,
        "a run the model answered ends as what it earned, not as an error: {summary:?} {answer:?}"
    );

    // The Overview: the real model's requests arrive as live numbers.
    let pushed = sink
        .wait_for(60, "overview_event", |o| {
            o["services"][0]["stats"]["request_rate"]
                .as_f64()
                .is_some_and(|r| r > 0.0)
        })
        .await;
    assert_eq!(pushed["services"][0]["readiness"], "ready", "{pushed}");
    console.shutdown().await;
    drop(llama);
    std::fs::remove_dir_all(&dir).ok();
}
