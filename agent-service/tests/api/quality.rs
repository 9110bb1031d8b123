//! Quality signals from the real service: a canary whose answers stop citing (the scripted
//! model's `uncited` variant) next to a stable release that cites, as Prometheus series
//! (the exact series the alert rules in deploy/prometheus read) and in `/v1/info`'s quality
//! summary; cost and tokens by tenant and workflow matching the traces' sums, with tenants
//! past the label budget folded into `_other`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, TestApp, run_cli};

const RUNS: usize = 8;

/// The quality summary of `workflow` on `track` from `/v1/info`.
async fn quality_of(app: &TestApp, workflow: &str, track: &str) -> Value {
    let (s, _, info) = app.get(Some(app.key("viewer")), "/v1/info").await;
    assert_eq!(s, 200, "{info}");
    info["quality"]["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .find(|w| w["workflow"] == workflow && w["track"] == track)
        .cloned()
        .unwrap_or_else(|| panic!("no {workflow}/{track} in {}", info["quality"]))
}

async fn a_canary_that_stops_citing_shows_in_the_signals(backend: Backend) {
    let quality = [("QUALITY_ALERT_MIN_SAMPLES", "5")];
    let stable = TestApp::spawn(backend, &quality).await;
    let canary = stable
        .replica(&[
            ("QUALITY_ALERT_MIN_SAMPLES", "5"),
            ("SCRIPTED_VARIANT", "uncited"),
            ("RELEASE_TRACK", "canary"),
        ])
        .await;
    let questions = [
        "how do I reset my password",
        "refund policy",
        "my account is locked",
        "export invoices to csv",
    ];
    for i in 0..RUNS {
        let q = questions[i % questions.len()];
        let (s, v) = stable.invoke("faq", q).await;
        assert_eq!(
            (s.as_u16(), v["status"].as_str()),
            (200, Some("success")),
            "{v}"
        );
        let (s, v) = canary.invoke("faq", q).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "blocked", "an uncited answer is withheld: {v}");
        assert_eq!(v["guardrail_rule"], "citation_required", "{v}");
        assert_eq!(v["model"], "scripted-v1-uncited", "{v}");
    }

    // The series the citation alert rule reads, as each release exports them.
    let n = RUNS as f64;
    for (app, track, cited, uncited) in [(&stable, "stable", n, 0.0), (&canary, "canary", 0.0, n)] {
        for (result, want) in [("cited", cited), ("uncited", uncited)] {
            let series = format!(
                r#"agent_citation_checks_total{{workflow="faq",track="{track}",result="{result}"}}"#
            );
            assert_eq!(app.metric(&series).await, Some(want), "{series}");
        }
    }
    assert_eq!(
        canary
            .metric(
                r#"agent_guardrail_verdicts_total{workflow="faq",track="canary",verdict="blocked"}"#
            )
            .await,
        Some(n)
    );
    assert_eq!(
        stable
            .metric(r#"agent_answers_total{workflow="faq",track="stable",kind="answer"}"#)
            .await,
        Some(n)
    );
    assert_eq!(
        stable
            .metric(r#"agent_answer_length_chars_count{workflow="faq",track="stable"}"#)
            .await,
        Some(n)
    );
    assert_eq!(
        stable
            .metric(r#"agent_workflow_tool_calls_total{workflow="faq",track="stable",result="ok"}"#)
            .await,
        Some(n),
        "one kb_search per run"
    );
    assert_eq!(
        stable
            .metric(
                r#"agent_workflow_tool_calls_total{workflow="faq",track="stable",result="error"}"#
            )
            .await,
        Some(0.0)
    );

    // The same drop in /v1/info, with the service's own alert.
    let c = quality_of(&canary, "faq", "canary").await;
    assert_eq!(c["runs"], RUNS, "{c}");
    assert_eq!(
        c["citation"],
        json!({"rate": 0.0, "hits": 0, "samples": RUNS})
    );
    assert_eq!(c["blocked"]["rate"], 1.0, "{c}");
    assert_eq!(c["successes"], 0);
    assert!(c["cost_per_success_usd"].is_null(), "{c}");
    assert_eq!(c["alerts"], json!(["citation_rate"]), "{c}");
    let s = quality_of(&stable, "faq", "stable").await;
    assert_eq!(
        s["citation"],
        json!({"rate": 1.0, "hits": RUNS, "samples": RUNS})
    );
    assert_eq!(s["refusal"]["rate"], 0.0, "{s}");
    assert_eq!(s["empty_or_truncated"]["rate"], 0.0, "{s}");
    assert_eq!(
        s["tool_errors"],
        json!({"rate": 0.0, "hits": 0, "samples": RUNS})
    );
    assert_eq!(s["successes"], RUNS);
    assert!(s["cost_per_success_usd"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["answer_chars_p50"].as_u64().unwrap() > 20, "{s}");
    assert_eq!(s["alerts"], json!([]), "{s}");
    let (_, _, info) = canary.get(Some(canary.key("viewer")), "/v1/info").await;
    assert_eq!(info["provider"]["model"], "scripted-v1-uncited");
    assert_eq!(info["track"], "canary");
    assert_eq!(info["quality"]["thresholds"]["min_citation_rate"], 0.8);
    assert_eq!(info["quality"]["thresholds"]["min_samples"], 5);
}
both!(
    canary_test,
    super::a_canary_that_stops_citing_shows_in_the_signals
);

/// A key for `role` of tenant `other` (seed-demo gives it only invoke and approver).
fn other_key(app: &TestApp, role: &str) -> String {
    let out = run_cli(
        &app.db.url,
        &[],
        &[
            "keys", "create", "--tenant", "other", "--roles", role, "--name", role,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Sums of the tenant's stored traces of `workflow`: (count, cost, prompt, completion).
async fn trace_sums(app: &TestApp, key: &str, workflow: &str) -> (usize, f64, i64, i64) {
    let (s, _, v) = app
        .get(
            Some(key),
            &format!("/v1/traces?workflow={workflow}&limit=200"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let items = v["items"].as_array().expect("items");
    (
        items.len(),
        items.iter().map(|t| t["cost_usd"].as_f64().unwrap()).sum(),
        items
            .iter()
            .map(|t| t["prompt_tokens"].as_i64().unwrap())
            .sum(),
        items
            .iter()
            .map(|t| t["completion_tokens"].as_i64().unwrap())
            .sum(),
    )
}

async fn cost_by_tenant_and_workflow_matches_the_traces(backend: Backend) {
    // One tenant label: `demo` (first to spend) keeps its name, `other` is `_other`.
    let app = TestApp::spawn(backend, &[("METRICS_TENANT_LABELS", "1")]).await;
    let other_invoke = app.key_of("invoke", "other").to_string();
    let other_viewer = other_key(&app, "viewer");
    let runs = [
        ("demo", "faq", "refund policy", 3),
        ("demo", "support_ticket_summary", "summarise T-1001", 2),
        ("other", "faq", "scanner offline", 2),
    ];
    for (tenant, workflow, text, n) in runs {
        let key = if tenant == "demo" {
            app.key("invoke").to_string()
        } else {
            other_invoke.clone()
        };
        for _ in 0..n {
            let (s, _, v) = app
                .post_json(
                    Some(&key),
                    "/v1/invoke",
                    &json!({"workflow": workflow, "input": {"text": text}}),
                    &[],
                )
                .await;
            assert_eq!(s, 200, "{v}");
        }
    }
    let demo_viewer = app.key("viewer").to_string();
    let checks = [
        ("demo", demo_viewer.as_str(), "faq", 3),
        ("demo", demo_viewer.as_str(), "support_ticket_summary", 2),
        ("_other", other_viewer.as_str(), "faq", 2),
    ];
    for (label, key, workflow, n) in checks {
        // Traces are written off the request path: wait for them.
        let start = Instant::now();
        let (count, cost, prompt, completion) = loop {
            let sums = trace_sums(&app, key, workflow).await;
            if sums.0 == n {
                break sums;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{sums:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(count, n);
        let series = |name: &str, extra: &str| {
            format!(r#"{name}{{tenant="{label}",workflow="{workflow}",track="stable"{extra}}}"#)
        };
        let metric_cost = app
            .metric(&series("agent_tenant_cost_usd_total", ""))
            .await
            .unwrap_or_else(|| panic!("no cost series for {label}/{workflow}"));
        assert!(cost > 0.0);
        assert!(
            (metric_cost - cost).abs() < 1e-9,
            "{label}/{workflow}: metrics {metric_cost} vs traces {cost}"
        );
        assert_eq!(
            app.metric(&series(
                "agent_tenant_tokens_total",
                r#",direction="input""#
            ))
            .await,
            Some(prompt as f64),
            "{label}/{workflow}"
        );
        assert_eq!(
            app.metric(&series(
                "agent_tenant_tokens_total",
                r#",direction="output""#
            ))
            .await,
            Some(completion as f64),
            "{label}/{workflow}"
        );
    }
    assert_eq!(
        app.metric(r#"agent_tenant_cost_usd_total{tenant="other",workflow="faq",track="stable"}"#)
            .await,
        None,
        "past the label budget a tenant has no series of its own"
    );
    // The unlabelled total still adds everything up.
    let total = app.metric("agent_cost_usd_total").await.unwrap();
    let mut by_tenant = 0.0;
    for (label, workflow) in [
        ("demo", "faq"),
        ("demo", "support_ticket_summary"),
        ("_other", "faq"),
    ] {
        by_tenant += app
            .metric(&format!(
                r#"agent_tenant_cost_usd_total{{tenant="{label}",workflow="{workflow}",track="stable"}}"#
            ))
            .await
            .unwrap();
    }
    assert!((total - by_tenant).abs() < 1e-9, "{total} vs {by_tenant}");
}
both!(
    cost_test,
    super::cost_by_tenant_and_workflow_matches_the_traces
);
