//! The console application layer (`flightdeck_core::console::Console`) against the real
//! agent-service binary (the Local profile, a spawned service) and the fake Ollama, with a
//! recording event sink: commands answer DTOs, live data arrives as pushed events, bad
//! input is a `CommandError` with the right code, and no secret leaves the keyring.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flightdeck_core::agent::InvokeRequest;
use flightdeck_core::clock::SystemClock;
use flightdeck_core::console::dto::*;
use flightdeck_core::console::{Console, ConsoleOptions};
use flightdeck_core::host::Host;
use flightdeck_core::{BaseUrl, ProfileId};
use serde_json::{Value, json};
use testkit::agent::agent_service_bin;
use testkit::{AgentService, Backend, FakeOllama, Reply};

use crate::helpers::within;
use crate::rig::Recorder;

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("fd-console-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn host() -> Host {
    Host::in_memory(Arc::new(SystemClock)).await.unwrap()
}

fn options(dir: &std::path::Path, ollama: &str) -> ConsoleOptions {
    ConsoleOptions {
        scrape_interval: Duration::from_millis(500),
        ollama_url: BaseUrl::parse(ollama).unwrap(),
        ..ConsoleOptions::new(dir.to_path_buf())
    }
}

fn pid(id: &str) -> ProfileIdArgs {
    ProfileIdArgs {
        profile_id: id.into(),
    }
}

fn code(e: CommandError) -> CommandErrorCode {
    e.code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_runs_the_local_profile_end_to_end() {
    let dir = temp_dir();
    let sink = Arc::new(Recorder::default());
    let host = host().await;
    let console = within(
        90,
        "the console with the Local profile",
        Console::start(
            host.clone(),
            sink.clone(),
            ConsoleOptions {
                agent_binary: Some(agent_service_bin()),
                start_local: true,
                traffic: true,
                ..options(&dir, "http://127.0.0.1:9")
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(console.local_error(), None);

    // Profiles: Local is there and active; its key is the admin demo key.
    let profiles = console.list_profiles().await.unwrap();
    assert_eq!(profiles.active_id.as_deref(), Some("local"));
    let local = &profiles.profiles[0];
    assert!(
        local.is_local && local.has_secret && local.url.is_some(),
        "{local:?}"
    );
    let perms = sink
        .wait_for(10, "permissions_event", |p| p["profile_id"] == "local")
        .await;
    assert_eq!(perms["roles"], json!(["admin"]));
    let perms = console.get_permissions().await.unwrap();
    assert!(perms.actions.iter().all(|a| a.allowed), "{perms:?}");

    // Live numbers arrive as pushed overviews once the traffic has been scraped.
    let pushed = sink
        .wait_for(40, "overview_event", |o| {
            o["services"][0]["stats"]["request_rate"]
                .as_f64()
                .is_some_and(|r| r > 0.0)
        })
        .await;
    assert_eq!(pushed["window"], "15m");
    let overview = console
        .get_overview(OverviewArgs {
            window: ChartWindow::M5,
        })
        .await
        .unwrap();
    let card = &overview.services[0];
    assert!(card.live, "{card:?}");
    assert_eq!(card.readiness, ReadyState::Ready);
    assert!(!card.versions.release.is_empty() && !card.versions.policy.is_empty());
    assert!(card.stats.request_rate.unwrap() > 0.0, "{:?}", card.stats);
    assert!(card.scraped_at_ms.is_some());
    assert!(!card.frozen);
    let charts = console
        .get_charts(ChartArgs {
            profile_id: "local".into(),
            track: card.track.clone(),
            window: ChartWindow::M5,
            theme: Theme::Dark,
        })
        .await
        .unwrap();
    assert_eq!(charts.len(), 8);
    assert!(charts.iter().all(|c| c.svg.contains("<svg")), "SVG charts");
    // The next pushes use the window last asked for.
    sink.wait_for(10, "overview_event", |o| o["window"] == "5m")
        .await;

    // A gated write becomes an approval_event (and a notification) within a second.
    within(10, "the approval stream", async {
        while !console.approval_stream_live() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let invoker = console.local_client("invoke").unwrap();
    let gated = |text: &'static str| {
        let invoker = invoker.clone();
        async move {
            let reply = invoker
                .invoke(&InvokeRequest::new("ticket_update", text))
                .await
                .unwrap();
            reply.approval_request_id.expect("a gated write")
        }
    };
    let id = gated("Please close T-1001, priority urgent").await;
    let asked = Instant::now();
    let created = sink
        .wait_for(5, "approval_event", |e| {
            e["approval"]["id"] == id.as_str() && e["kind"] == "created"
        })
        .await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "approval_event after {:?}",
        asked.elapsed()
    );
    assert_eq!(created["approval"]["status"], "pending");
    assert_eq!(created["approval"]["tool"], "ticket_update");
    assert!(
        sink.notes
            .lock()
            .unwrap()
            .iter()
            .any(|(t, b)| t == "Approval waiting" && b.contains("ticket_update")),
        "a desktop notification for the new approval"
    );

    // Decisions: a reason is required; approve executes; reject is final.
    let blank = console
        .decide_approval(DecideArgs {
            id: id.clone(),
            decision: DecisionKind::Reject,
            reason: "   ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(blank.code, CommandErrorCode::Invalid, "{blank:?}");
    let pending = console
        .list_approvals(ApprovalListArgs {
            view: ApprovalListView::Pending,
            cursor: None,
        })
        .await
        .unwrap();
    assert!(pending.items.iter().any(|a| a.id == id));
    let approved = console
        .decide_approval(DecideArgs {
            id: id.clone(),
            decision: DecisionKind::Approve,
            reason: "customer confirmed".into(),
        })
        .await
        .unwrap();
    assert_eq!(approved.summary.status, ApprovalStatus::Executed);
    let detail = console
        .get_approval(ApprovalIdArgs { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(
        detail.execution.as_ref().map(|e| e.status.as_str()),
        Some("executed")
    );
    assert_eq!(detail.decisions[0].decision, DecisionKind::Approve);
    assert!(detail.proposed_change.diff.contains("closed"), "{detail:?}");
    sink.wait_for(5, "approval_event", |e| {
        e["approval"]["id"] == id.as_str() && e["approval"]["status"] == "executed"
    })
    .await;
    let again = console
        .decide_approval(DecideArgs {
            id: id.clone(),
            decision: DecisionKind::Reject,
            reason: "too late".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code, CommandErrorCode::Conflict, "{again:?}");
    assert!(
        again.request_id.is_some(),
        "the service's request id is kept"
    );
    let other = gated("Please set T-1002 priority high").await;
    let rejected = console
        .decide_approval(DecideArgs {
            id: other.clone(),
            decision: DecisionKind::Reject,
            reason: "not needed".into(),
        })
        .await
        .unwrap();
    assert_eq!(rejected.summary.status, ApprovalStatus::Rejected);
    let history = console
        .list_approvals(ApprovalListArgs {
            view: ApprovalListView::History,
            cursor: None,
        })
        .await
        .unwrap();
    assert!(
        history
            .items
            .iter()
            .all(|a| a.status != ApprovalStatus::Pending)
    );
    let missing = console
        .get_approval(ApprovalIdArgs {
            id: "apr_does_not_exist".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code, CommandErrorCode::NotFound);

    // Traces.
    assert!(
        console
            .list_workflows()
            .await
            .unwrap()
            .contains(&"ticket_update".to_string())
    );
    let traces = within(20, "traces", async {
        loop {
            let page = console
                .list_traces(TraceQuery {
                    errors_only: false,
                    flagged_only: false,
                    min_duration_ms: None,
                    workflow: Some("ticket_update".into()),
                    request_id: None,
                    cursor: None,
                    limit: 5,
                })
                .await
                .unwrap();
            if !page.items.is_empty() {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(traces.items.len() <= 5);
    assert!(traces.items.iter().all(|t| t.workflow == "ticket_update"));
    let trace = console
        .get_trace(TraceIdArgs {
            trace_id: traces.items[0].trace_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(trace.summary.trace_id, traces.items[0].trace_id);
    assert!(trace.spans.iter().any(|s| s.kind == SpanKind::Request));
    assert!(
        trace
            .spans
            .iter()
            .any(|s| s.kind == SpanKind::Llm && s.model.is_some())
    );
    let bad_limit = TraceQuery {
        errors_only: false,
        flagged_only: false,
        min_duration_ms: None,
        workflow: None,
        request_id: None,
        cursor: None,
        limit: 0,
    };
    assert_eq!(
        code(console.list_traces(bad_limit).await.unwrap_err()),
        CommandErrorCode::Invalid
    );
    for (id, want) in [
        ("no such/trace", CommandErrorCode::Invalid),
        ("tr_0000000000000000", CommandErrorCode::NotFound),
    ] {
        let e = console
            .get_trace(TraceIdArgs {
                trace_id: id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, want, "{id}: {e:?}");
    }

    // The audit chain verifies.
    let audit = console.verify_audit().await.unwrap();
    assert!(audit.ok && audit.checked > 0, "{audit:?}");

    // An eval run pushes its progress and ends completed.
    let suites = console.list_eval_suites().await.unwrap();
    assert!(
        suites
            .iter()
            .any(|s| s.name == "golden" && s.kind == EvalSuiteKind::Golden)
    );
    let run = console
        .start_eval(StartEvalArgs {
            suite: "golden".into(),
            baseline_run_id: None,
        })
        .await
        .unwrap();
    let end = sink
        .wait_for(120, "eval_progress", |e| {
            e["run_id"] == run.id.as_str() && e["status"] == "completed"
        })
        .await;
    assert_eq!(end["done"], end["total"]);
    let detail = console
        .get_eval_run(EvalRunIdArgs {
            run_id: run.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(detail.summary.status, EvalRunState::Completed);
    assert!(!detail.cases.is_empty() && detail.scores.is_some() && detail.gate.is_some());
    assert!(detail.summary.created_at_ms > 0 && detail.summary.finished_at_ms.is_some());
    assert!(
        console
            .list_eval_runs()
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == run.id)
    );
    assert!(
        console
            .eval_pass_rates()
            .await
            .unwrap()
            .iter()
            .any(|p| p.run_id == run.id)
    );
    let unknown = console
        .start_eval(StartEvalArgs {
            suite: "no_such_suite".into(),
            baseline_run_id: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            unknown.code,
            CommandErrorCode::Invalid | CommandErrorCode::NotFound
        ),
        "{unknown:?}"
    );

    // The incident switch freezes writes and writes a pack; unfreezing needs a reason too.
    let blank = console
        .incident_switch(IncidentArgs { reason: "".into() })
        .await
        .unwrap_err();
    assert_eq!(blank.code, CommandErrorCode::Invalid);
    let incident = console
        .incident_switch(IncidentArgs {
            reason: "p99 over 30 s on prod".into(),
        })
        .await
        .unwrap();
    assert!(incident.freeze.frozen);
    assert_eq!(
        incident.freeze.reason.as_deref(),
        Some("p99 over 30 s on prod")
    );
    let pack: Value = serde_json::from_slice(&std::fs::read(&incident.pack_path).unwrap()).unwrap();
    assert_eq!(pack["kind"], "flightdeck-incident-pack");
    assert!(
        pack["failing_traces"].is_array(),
        "{}",
        pack["failing_traces"]
    );
    assert!(pack["versions"]["version"].is_string());
    assert!(
        pack["metrics_text"]
            .as_str()
            .unwrap()
            .contains("agent_requests_total")
    );
    sink.wait_for(5, "freeze_event", |f| f["frozen"] == true)
        .await;
    assert!(console.get_freeze_state().await.unwrap().frozen);
    let frozen_write = invoker
        .invoke(&InvokeRequest::new("ticket_update", "Please close T-1003"))
        .await;
    assert!(
        frozen_write.map_or(true, |r| r.approval_request_id.is_none()),
        "no new write is queued while frozen"
    );
    let thawed = console
        .unfreeze_writes(IncidentArgs {
            reason: "mitigated".into(),
        })
        .await
        .unwrap();
    assert!(!thawed.frozen);
    sink.wait_for(5, "freeze_event", |f| f["frozen"] == false)
        .await;

    // Every operator action is in the local action log with its outcome.
    let log = host.store.actions(100, None).await.unwrap();
    for action in [
        "approve",
        "reject",
        "verify_audit",
        "start_eval",
        "freeze",
        "unfreeze",
    ] {
        assert!(
            log.iter().any(|a| a.action == action),
            "{action} logged: {log:?}"
        );
    }
    assert!(
        log.iter().any(|a| a.action == "reject"
            && a.target == format!("approval/{id}")
            && a.outcome == flightdeck_core::store::Outcome::Failed),
        "the refused second decision is logged as failed"
    );

    // Shutdown stops the child.
    let url = console.local_url().unwrap();
    console.shutdown().await;
    assert!(console.local_url().is_none());
    let gone = reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        gone.is_err(),
        "the Local service still answers after shutdown"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_smoke_tests_and_models_against_the_fake_ollama() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::text("Yes, I am ready."));
    fake.push_reply(Reply::text("Ready again."));
    fake.push_reply(Reply::tool_call("get_weather", json!({ "city": "Paris" })));
    fake.push_reply(Reply::text("It is 18 °C and clear in Paris."));
    let dir = temp_dir();
    let sink = Arc::new(Recorder::default());
    let console = Console::start(host().await, sink.clone(), options(&dir, &fake.url()))
        .await
        .unwrap();

    let status = console.discover_ollama().await.unwrap();
    assert!(status.reachable && status.version.is_some(), "{status:?}");
    let models = console.list_models().await.unwrap();
    let tools = |name: &str| {
        models
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.supports_tools)
    };
    assert_eq!(tools("llama3.2:latest"), Some(true));
    assert_eq!(tools("tinyllama:latest"), Some(false));

    let pulled = console
        .pull_model(PullModelArgs {
            model: "qwen2.5:0.5b".into(),
        })
        .await
        .unwrap();
    assert_eq!(pulled.name, "qwen2.5:0.5b");
    let pulls = sink.of("pull_progress");
    assert!(pulls.iter().all(|p| p["model"] == "qwen2.5:0.5b"));
    assert_eq!(pulls.last().unwrap()["status"], "success");
    let bad = console
        .pull_model(PullModelArgs {
            model: "not a model".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code, CommandErrorCode::Invalid);

    let report = within(
        60,
        "the smoke suite",
        console.run_smoke(RunSmokeArgs {
            model: "llama3.2".into(),
            through_agent: false,
            target: SmokeTarget::Ollama,
            server_url: None,
            api_key: None,
        }),
    )
    .await
    .unwrap();
    let status_of = |n: &str| report.checks.iter().find(|c| c.name == n).map(|c| c.status);
    assert_eq!(
        status_of("generation"),
        Some(CheckStatus::Pass),
        "{report:?}"
    );
    assert_eq!(
        status_of("tool_call"),
        Some(CheckStatus::Pass),
        "{report:?}"
    );
    assert_eq!(status_of("agent_golden"), Some(CheckStatus::Skip));
    let progress = sink.of("smoke_progress");
    let started = progress
        .iter()
        .filter(|p| p["type"] == "check_started")
        .count();
    let finished: Vec<&Value> = progress
        .iter()
        .filter(|p| p["type"] == "check_finished")
        .collect();
    assert_eq!(finished.len(), report.checks.len());
    assert!(started >= 1);
    assert!(
        progress
            .iter()
            .any(|p| p["type"] == "check_started" && p["title"] == "Ollama reachable")
    );

    let runs = console.list_smoke_runs().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, report.id);
    let stored = console
        .get_smoke_report(SmokeRunIdArgs {
            id: report.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(stored, report);
    for (format, ext) in [(ExportFormat::Markdown, "md"), (ExportFormat::Json, "json")] {
        let file = console
            .export_smoke_report(ExportSmokeArgs {
                id: report.id.clone(),
                format,
            })
            .await
            .unwrap();
        assert!(file.path.ends_with(ext), "{file:?}");
        let text = std::fs::read_to_string(&file.path).unwrap();
        assert_eq!(text.len() as u64, file.bytes);
        match format {
            ExportFormat::Markdown => assert!(text.starts_with("# Smoke test: llama3.2")),
            ExportFormat::Json => {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["id"], report.id.as_str());
            }
        }
    }
    for (id, want) in [
        ("../../etc/passwd", CommandErrorCode::Invalid),
        ("smoke_missing", CommandErrorCode::NotFound),
    ] {
        let e = console
            .export_smoke_report(ExportSmokeArgs {
                id: id.into(),
                format: ExportFormat::Json,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, want, "{id}");
    }
    let no_agent = console
        .run_smoke(RunSmokeArgs {
            model: "llama3.2".into(),
            through_agent: true,
            target: SmokeTarget::Ollama,
            server_url: None,
            api_key: None,
        })
        .await
        .unwrap_err();
    assert_eq!(no_agent.code, CommandErrorCode::Invalid, "{no_agent:?}");

    // Ollama down: discovery says why, listing is a network error. `shutdown` waits until
    // the server has stopped (dropping the handle only asks it to).
    fake.shutdown().await.unwrap();
    let down = console.discover_ollama().await.unwrap();
    assert!(!down.reachable && down.error.is_some());
    assert_eq!(
        console.list_models().await.unwrap_err().code,
        CommandErrorCode::Network
    );
    console.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_profiles_settings_permissions_and_bad_inputs() {
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let viewer_key = svc.key("viewer").to_string();
    assert!(viewer_key.len() > 8);
    let dir = temp_dir();
    let sink = Arc::new(Recorder::default());
    let host = host().await;
    let console = Console::start(
        host.clone(),
        sink.clone(),
        options(&dir, "http://127.0.0.1:9"),
    )
    .await
    .unwrap();

    // Nothing connected: an empty console that says what to do.
    let empty = console.list_profiles().await.unwrap();
    assert!(empty.profiles.is_empty() && empty.active_id.is_none());
    let perms = console.get_permissions().await.unwrap();
    let approve = perms
        .actions
        .iter()
        .find(|a| a.action == ActionId::Approve)
        .unwrap();
    assert!(!approve.allowed && approve.reason.as_deref().unwrap().contains("No connection"));
    assert!(
        perms
            .actions
            .iter()
            .find(|a| a.action == ActionId::RunSmoke)
            .unwrap()
            .allowed
    );
    assert!(
        console
            .get_overview(OverviewArgs {
                window: ChartWindow::H1
            })
            .await
            .unwrap()
            .services
            .is_empty()
    );
    assert_eq!(
        code(console.list_workflows().await.unwrap_err()),
        CommandErrorCode::Invalid
    );

    // Bad profile input is refused before anything is stored.
    let add = |name: &str, url: &str, key: &str| AddAgentProfileArgs {
        name: name.into(),
        url: url.into(),
        api_key: key.into(),
    };
    for (args, what) in [
        (add("", svc.base_url(), &viewer_key), "no name"),
        (add("X", "not a url", &viewer_key), "bad URL"),
        (add("X", "ftp://host", &viewer_key), "not http"),
        (add("X", svc.base_url(), "  "), "empty key"),
    ] {
        let e = console.add_agent_profile(args).await.unwrap_err();
        assert_eq!(e.code, CommandErrorCode::Invalid, "{what}: {e:?}");
    }
    assert!(console.list_profiles().await.unwrap().profiles.is_empty());

    let added = console
        .add_agent_profile(add("Staging EU", svc.base_url(), &viewer_key))
        .await
        .unwrap();
    assert_eq!((added.id.as_str(), added.has_secret), ("staging-eu", true));
    let clash = console
        .add_agent_profile(add("Staging EU", svc.base_url(), &viewer_key))
        .await
        .unwrap_err();
    assert_eq!(clash.code, CommandErrorCode::Conflict);
    let list = console.list_profiles().await.unwrap();
    assert_eq!(
        list.active_id.as_deref(),
        Some("staging-eu"),
        "the first profile becomes active"
    );

    // A read-only key gets a read-only console.
    let perms = sink
        .wait_for(10, "permissions_event", |p| p["profile_id"] == "staging-eu")
        .await;
    assert_eq!(perms["roles"], json!(["viewer"]));
    let perms = console.get_permissions().await.unwrap();
    let reason = |a: ActionId| {
        perms
            .actions
            .iter()
            .find(|p| p.action == a)
            .unwrap()
            .reason
            .clone()
    };
    assert_eq!(
        reason(ActionId::Approve).as_deref(),
        Some("The key's roles (viewer) do not include approver")
    );
    assert!(
        reason(ActionId::IncidentSwitch)
            .unwrap()
            .contains("operator")
    );
    assert_eq!(reason(ActionId::VerifyAudit), None);
    let denied = console
        .decide_approval(DecideArgs {
            id: "apr_1".into(),
            decision: DecisionKind::Approve,
            reason: "ok".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code, CommandErrorCode::Forbidden);
    assert!(console.verify_audit().await.unwrap().ok);

    // Switching profiles restarts the live tasks: new roles are pushed, and the approval
    // stream of a profile seen before resumes after its last event (Last-Event-ID), so a
    // write queued while another profile was active still arrives.
    let admin_key = svc.key("admin").to_string();
    console
        .add_agent_profile(add("Ops", svc.base_url(), &admin_key))
        .await
        .unwrap();
    console.set_active_profile(pid("ops")).await.unwrap();
    sink.wait_for(10, "permissions_event", |p| {
        p["profile_id"] == "ops" && p["roles"] == json!(["admin"])
    })
    .await;
    let stream_up = || async {
        within(10, "the approval stream", async {
            while !console.approval_stream_live() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    };
    stream_up().await;
    let invoker = crate::helpers::client(&svc, "invoke");
    let write = |text: &'static str| {
        let invoker = invoker.clone();
        async move {
            invoker
                .invoke(&InvokeRequest::new("ticket_update", text))
                .await
                .unwrap()
                .approval_request_id
                .expect("a gated write")
        }
    };
    let first = write("Please close T-1004, priority urgent").await;
    sink.wait_for(5, "approval_event", |e| {
        e["approval"]["id"] == first.as_str()
    })
    .await;
    console.set_active_profile(pid("staging-eu")).await.unwrap();
    sink.wait_for(10, "permissions_event", |p| p["profile_id"] == "staging-eu")
        .await;
    stream_up().await;
    let while_away = write("Please set T-1005 priority high").await;
    // The viewer profile's own stream relays it first; then only a resume can repeat it.
    sink.wait_for(5, "approval_event", |e| {
        e["approval"]["id"] == while_away.as_str()
    })
    .await;
    sink.clear();
    console.set_active_profile(pid("ops")).await.unwrap();
    let resumed = sink
        .wait_for(10, "approval_event", |e| {
            e["approval"]["id"] == while_away.as_str()
        })
        .await;
    assert_eq!(resumed["kind"], "created");
    assert!(
        sink.of("approval_event")
            .iter()
            .all(|e| e["approval"]["id"] != first.as_str()),
        "events before the last one seen are not replayed"
    );
    console.set_active_profile(pid("staging-eu")).await.unwrap();
    console.remove_profile(pid("ops")).await.unwrap();
    stream_up().await;

    // Unknown and reserved profiles.
    assert_eq!(
        code(console.set_active_profile(pid("nope")).await.unwrap_err()),
        CommandErrorCode::NotFound
    );
    assert_eq!(
        code(console.set_active_profile(pid("Bad Id")).await.unwrap_err()),
        CommandErrorCode::NotFound
    );
    assert_eq!(
        code(console.remove_profile(pid("local")).await.unwrap_err()),
        CommandErrorCode::Invalid
    );
    assert_eq!(
        code(console.remove_profile(pid("nope")).await.unwrap_err()),
        CommandErrorCode::NotFound
    );
    let charts = console
        .get_charts(ChartArgs {
            profile_id: "nope".into(),
            track: "stable".into(),
            window: ChartWindow::M5,
            theme: Theme::Light,
        })
        .await
        .unwrap_err();
    assert_eq!(charts.code, CommandErrorCode::NotFound);

    // Settings are validated and survive a restart, with the active profile.
    for bad in [0.0, -1.0, f64::NAN, 24.0 * 91.0] {
        let e = console
            .update_settings(Settings {
                theme: Theme::Dark,
                retention_hours: bad,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, CommandErrorCode::Invalid, "{bad}");
    }
    let saved = console
        .update_settings(Settings {
            theme: Theme::Dark,
            retention_hours: 48.0,
        })
        .await
        .unwrap();
    assert_eq!(saved.theme, Theme::Dark);

    // Notifications go to the sink, after validation.
    assert_eq!(
        code(
            console
                .notify(NotifyArgs {
                    title: " ".into(),
                    body: "x".into()
                })
                .await
                .unwrap_err()
        ),
        CommandErrorCode::Invalid
    );
    console
        .notify(NotifyArgs {
            title: "Build done".into(),
            body: "all green".into(),
        })
        .await
        .unwrap();
    assert!(
        sink.notes
            .lock()
            .unwrap()
            .contains(&("Build done".into(), "all green".into()))
    );

    // No secret in any DTO, event, Debug string or file the console wrote.
    let listed = serde_json::to_string(&console.list_profiles().await.unwrap()).unwrap();
    let perms_json = serde_json::to_string(&console.get_permissions().await.unwrap()).unwrap();
    let overview = serde_json::to_string(
        &console
            .get_overview(OverviewArgs {
                window: ChartWindow::M5,
            })
            .await
            .unwrap(),
    )
    .unwrap();
    let debug = format!("{console:?} {:?}", add("X", svc.base_url(), &viewer_key));
    let settings_file = std::fs::read_to_string(dir.join("settings.json")).unwrap();
    for (what, text) in [
        ("profiles", &listed),
        ("permissions", &perms_json),
        ("overview", &overview),
        ("events", &sink.all_json()),
        ("Debug", &debug),
        ("settings.json", &settings_file),
    ] {
        for key in [&viewer_key, &admin_key] {
            assert!(
                !text.contains(key.as_str()),
                "a key leaked into {what}: {text}"
            );
        }
    }
    console.shutdown().await;

    let again = Console::start(
        host.clone(),
        Arc::new(Recorder::default()),
        options(&dir, "http://127.0.0.1:9"),
    )
    .await
    .unwrap();
    assert_eq!(
        again.get_settings().await.unwrap(),
        Settings {
            theme: Theme::Dark,
            retention_hours: 48.0
        }
    );
    assert_eq!(
        again.list_profiles().await.unwrap().active_id.as_deref(),
        Some("staging-eu")
    );
    let after = again.remove_profile(pid("staging-eu")).await.unwrap();
    assert!(after.profiles.is_empty() && after.active_id.is_none());
    assert_eq!(
        host.secrets
            .get(&ProfileId::parse("staging-eu").unwrap())
            .unwrap(),
        None
    );
    again.shutdown().await;

    // A settings file that is not settings is a clear storage error, not a reset.
    std::fs::write(dir.join("settings.json"), "{ not json").unwrap();
    let broken = Console::start(
        host,
        Arc::new(Recorder::default()),
        options(&dir, "http://127.0.0.1:9"),
    )
    .await
    .unwrap_err();
    assert_eq!(broken.code, CommandErrorCode::Storage);
    assert!(
        broken.message.contains("settings.json"),
        "{}",
        broken.message
    );
    let _ = std::fs::remove_dir_all(&dir);
}
