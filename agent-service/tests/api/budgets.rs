//! Every budget kind stops a run with `budget_exceeded`, names the kind, and is counted.

use serde_json::json;
use testkit::{FakeOllama, Mode, Reply};

use crate::both;
use crate::helpers::{Backend, TestApp};

async fn expect_exceeded(app: &TestApp, workflow: &str, text: &str, kind: &str) {
    let (s, v) = app.invoke(workflow, text).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "budget_exceeded", "{kind}: {v}");
    assert_eq!(v["budget"], kind, "{v}");
    let series = format!(r#"agent_budget_exceeded_total{{kind="{kind}"}}"#);
    assert!(
        app.metric(&series).await.unwrap_or(0.0) >= 1.0,
        "{series} counted"
    );
}

async fn scripted_budgets(backend: Backend) {
    let app = TestApp::spawn(backend, &[("MAX_TOKENS_PER_REQUEST", "60")]).await;
    expect_exceeded(
        &app,
        "support_ticket_summary",
        "Summarize ticket T-1001",
        "tokens",
    )
    .await;
    drop(app);
    let app = TestApp::spawn(backend, &[("MAX_TOOL_CALLS", "1")]).await;
    expect_exceeded(
        &app,
        "support_ticket_summary",
        "Summarize ticket T-1001",
        "tool_calls",
    )
    .await;
    drop(app);
    let app = TestApp::spawn(backend, &[("MAX_COST_PER_REQUEST_USD", "0.00001")]).await;
    expect_exceeded(
        &app,
        "support_ticket_summary",
        "Summarize ticket T-1001",
        "cost",
    )
    .await;
    drop(app);

    // Daily tenant budget: the first run spends it, the next is refused; other tenants are not affected.
    let app = TestApp::spawn(backend, &[("TENANT_DAILY_TOKEN_BUDGET", "100")]).await;
    let (_, v) = app
        .invoke("support_ticket_summary", "Summarize ticket T-1001")
        .await;
    assert_eq!(v["status"], "success", "{v}");
    expect_exceeded(&app, "faq", "refunds", "tenant_daily_tokens").await;
    let (_, _, v) = app
        .post_json(
            Some(app.key_of("invoke", "other")),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": {"text": "refunds"}}),
            &[],
        )
        .await;
    assert_ne!(v["status"], "budget_exceeded", "{v}");
}
both!(scripted_budgets_test, super::scripted_budgets);

async fn model_driven_budgets(backend: Backend) {
    let fake = FakeOllama::start().await;
    let url = fake.url();
    let env = [
        ("USE_OLLAMA", "true"),
        ("OLLAMA_BASE_URL", url.as_str()),
        ("OLLAMA_MODEL", "llama3.2"),
    ];

    // A repeated identical tool call is a loop.
    let app = TestApp::spawn(backend, &env).await;
    for _ in 0..3 {
        fake.push_reply(Reply::tool_call(
            "kb_search",
            json!({"query": "vpn", "limit": 3}),
        ));
    }
    expect_exceeded(&app, "faq", "vpn help", "loop").await;
    fake.clear_replies();
    drop(app);

    // The request deadline.
    let mut env2 = env.to_vec();
    env2.push(("REQUEST_TIMEOUT_SECS", "1"));
    let app = TestApp::spawn(backend, &env2).await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 3000,
        between_chunks_ms: 0,
    });
    let started = std::time::Instant::now();
    expect_exceeded(&app, "faq", "vpn help", "deadline").await;
    assert!(started.elapsed() < std::time::Duration::from_millis(2500));
    fake.set_mode(Mode::Normal);
}
both!(model_budgets_test, super::model_driven_budgets);
