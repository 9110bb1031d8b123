//! The Overview's quality panel against real agent-service processes: a canary whose
//! scripted model stopped citing shows a red citation badge while stable stays clean; spend
//! by tenant and workflow equals what the runs reported; a tenant burning through its daily
//! token budget gets a forecast consistent with its rate.

use std::sync::Arc;
use std::time::Duration;

use flightdeck_core::BaseUrl;
use flightdeck_core::agent::InvokeRequest;
use flightdeck_core::clock::SystemClock;
use flightdeck_core::console::dto::*;
use flightdeck_core::console::{Console, ConsoleOptions};
use flightdeck_core::host::Host;
use testkit::{AgentService, Backend};

use crate::helpers::client;
use crate::rig::Recorder;

async fn quality(console: &Console, profile: &str) -> QualityView {
    console
        .get_quality(QualityArgs {
            profile_id: profile.into(),
            window: ChartWindow::M15,
        })
        .await
        .unwrap()
}

/// Polls the panel of `profile` until `pred` holds (`secs` at most).
async fn wait_for(
    console: &Console,
    profile: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&QualityView) -> bool,
) -> QualityView {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let q = quality(console, profile).await;
        if pred(&q) {
            return q;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}; the last panel: {q:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal<'a>(
    q: &'a QualityView,
    workflow: &str,
    track: &str,
    kind: QualitySignalKind,
) -> Option<&'a QualitySignal> {
    q.workflows
        .iter()
        .find(|w| w.workflow == workflow)?
        .tracks
        .iter()
        .find(|t| t.track == track)?
        .signals
        .iter()
        .find(|s| s.kind == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncited_canary_is_red_spend_matches_the_runs_and_the_burn_is_forecast() {
    let quality_env = [
        ("QUALITY_CHECK_SECS", "1"),
        ("QUALITY_ALERT_MIN_SAMPLES", "3"),
    ];
    let stable = AgentService::spawn(Backend::Sqlite, &quality_env).await;
    let mut canary_env = quality_env.to_vec();
    canary_env.extend([
        ("RELEASE_TRACK", "canary"),
        ("SCRIPTED_VARIANT", "uncited"),
        // Enough for the runs below, and reached within minutes at their rate.
        ("TENANT_DAILY_TOKEN_BUDGET", "1000000"),
    ]);
    let canary = AgentService::spawn(Backend::Sqlite, &canary_env).await;

    let dir = std::env::temp_dir().join(format!("fd-quality-{}", uuid::Uuid::new_v4().simple()));
    let host = Host::in_memory(Arc::new(SystemClock)).await.unwrap();
    let console = Console::start(
        host,
        Arc::new(Recorder::default()),
        ConsoleOptions {
            scrape_interval: Duration::from_millis(300),
            ollama_url: BaseUrl::parse("http://127.0.0.1:9").unwrap(),
            ..ConsoleOptions::new(dir.clone())
        },
    )
    .await
    .unwrap();
    for (name, svc) in [("Stable", &stable), ("Canary", &canary)] {
        console
            .add_agent_profile(AddAgentProfileArgs {
                name: name.into(),
                url: svc.base_url().into(),
                api_key: svc.key("admin").into(),
            })
            .await
            .unwrap();
    }
    // Before any scrape: an empty panel, not an error; an unknown profile is not found.
    let err = console
        .get_quality(QualityArgs {
            profile_id: "nope".into(),
            window: ChartWindow::M15,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, CommandErrorCode::NotFound, "{err:?}");
    for p in ["stable", "canary"] {
        wait_for(&console, p, 30, "the first scrape and /v1/info", |q| {
            q.scraped_at_ms.is_some() && q.thresholds.is_some()
        })
        .await;
    }

    // The same questions to both: stable cites, the canary's answers are withheld as
    // blocked by the citation rule.
    let mut canary_cost = 0.0;
    let mut canary_tokens = 0;
    for (svc, is_canary) in [(&stable, false), (&canary, true)] {
        let invoker = client(svc, "invoke");
        for _ in 0..5 {
            let r = invoker
                .invoke(&InvokeRequest::new("faq", "How do I reset my password?"))
                .await
                .unwrap();
            if is_canary {
                assert_eq!(
                    r.guardrail_rule.as_deref(),
                    Some("citation_required"),
                    "{r:?}"
                );
                canary_cost += r.usage.cost_usd;
                canary_tokens += r.usage.prompt_tokens + r.usage.completion_tokens;
            }
        }
    }
    assert!(canary_tokens > 0, "the scripted model books tokens");

    let q = wait_for(
        &console,
        "canary",
        40,
        "the canary's runs and usage today",
        |q| {
            signal(q, "faq", "canary", QualitySignalKind::Citation).is_some_and(|s| s.samples == 5)
                && q.tenants
                    .iter()
                    .any(|t| t.tenant == "demo" && t.today_tokens == Some(canary_tokens))
        },
    )
    .await;
    let cite = signal(&q, "faq", "canary", QualitySignalKind::Citation).unwrap();
    assert_eq!((cite.rate, cite.hits), (Some(0.0), 0), "{cite:?}");
    assert!(cite.alert, "a canary that stopped citing is red: {cite:?}");
    let blocked = signal(&q, "faq", "canary", QualitySignalKind::Blocked).unwrap();
    assert_eq!((blocked.hits, blocked.samples), (5, 5), "{blocked:?}");
    let faq = q.workflows.iter().find(|w| w.workflow == "faq").unwrap();
    assert!(faq.tracks.iter().all(|t| t.track == "canary") && faq.tracks[0].alert);
    assert_eq!(faq.tracks[0].runs, 5);
    let t = q.thresholds.as_ref().unwrap();
    assert_eq!(t.min_samples, 3);

    // Spend by tenant and by workflow: what the runs reported.
    let demo = q.tenants.iter().find(|t| t.tenant == "demo").unwrap();
    assert!(
        (demo.cost_usd - canary_cost).abs() < 1e-9,
        "{demo:?} vs {canary_cost}"
    );
    assert_eq!(demo.tokens, canary_tokens);
    let wf = q
        .workflow_spend
        .iter()
        .find(|w| w.workflow == "faq")
        .unwrap();
    assert!((wf.cost_usd - canary_cost).abs() < 1e-9 && wf.tokens == canary_tokens);
    // The burn: at the rate since the console's first scrape, a million tokens are reached
    // well before midnight (the run above took seconds) — unless the test runs within
    // minutes of 00:00 UTC, when the forecast rightly says nothing.
    assert_eq!(demo.budget_tokens, Some(1_000_000));
    let rate = demo.tokens_per_hour.expect("a burn rate after two scrapes");
    assert!(rate > 0.0);
    let scraped = q.scraped_at_ms.unwrap();
    let expect =
        scraped + ((1_000_000.0 - canary_tokens as f64) / (rate / 3_600_000.0)).round() as i64;
    match demo.hits_budget_at_ms {
        Some(at) => {
            assert!((at - expect).abs() <= 1, "{at} vs {expect}: {demo:?}");
            assert!(at < demo.resets_at_ms && at > scraped);
            assert_eq!(demo.hits_budget, Some(BudgetKind::Tokens));
        }
        None => assert!(expect >= demo.resets_at_ms, "{demo:?}"),
    }
    assert!(!demo.exhausted);

    // Stable: cited, no alert.
    let q = wait_for(&console, "stable", 40, "stable's runs", |q| {
        signal(q, "faq", "stable", QualitySignalKind::Citation).is_some_and(|s| s.samples == 5)
    })
    .await;
    let cite = signal(&q, "faq", "stable", QualitySignalKind::Citation).unwrap();
    assert_eq!(cite.rate, Some(1.0));
    assert!(!cite.alert, "{cite:?}");
    assert!(q.workflows.iter().flat_map(|w| &w.tracks).all(|t| !t.alert));

    console.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
