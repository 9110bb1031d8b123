//! Real providers against the shared fake Ollama: both wire protocols, the circuit
//! breaker (open, fail fast, degraded readiness, half-open recovery) and timeouts.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{FakeOllama, Mode, Reply};

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

fn summary_script(fake: &FakeOllama) {
    fake.push_reply(Reply::tool_call(
        "ticket_read",
        json!({"ticket_id": "T-1001"}),
    ));
    fake.push_reply(Reply::text(
        "Ticket T-1001 is about a login problem [ticket:T-1001].",
    ));
}

async fn ollama_and_openai_protocols(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(backend, &fake, &[]).await;
    summary_script(&fake);
    let (s, v) = app
        .invoke("support_ticket_summary", "Summarize T-1001")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["provider"], "ollama");
    assert!(
        v["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "T-1001"),
        "{v}"
    );
    let chats = fake.bodies("/api/chat");
    assert_eq!(chats.len(), 2, "one call for the tool, one for the answer");
    assert_eq!(chats[0]["model"], "llama3.2");
    assert!(
        chats[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "ticket_read")
    );
    assert_eq!(
        chats[1]["messages"].as_array().unwrap().last().unwrap()["role"],
        "tool",
        "the tool result goes back to the model"
    );
    drop(app);

    let openai_url = fake.openai_url();
    let app = TestApp::spawn(
        backend,
        &[
            ("AGENT_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", &openai_url),
            ("MODEL_NAME", "llama3.2"),
        ],
    )
    .await;
    summary_script(&fake);
    let (s, v) = app
        .invoke("support_ticket_summary", "Summarize T-1001")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["provider"], "openai");
    assert_eq!(fake.bodies("/v1/chat/completions").len(), 2);
}
both!(protocols_test, super::ollama_and_openai_protocols);

async fn circuit_opens_fails_fast_and_recovers(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(
        backend,
        &fake,
        &[
            ("CIRCUIT_FAILURE_THRESHOLD", "2"),
            ("CIRCUIT_OPEN_SECS", "2"),
            ("PROVIDER_MAX_RETRIES", "1"),
        ],
    )
    .await;
    fake.set_mode(Mode::Down {
        status: 503,
        message: "server busy".into(),
    });
    for _ in 0..2 {
        let (s, v) = app.invoke("faq", "refund policy").await;
        assert_eq!(s, 503, "{v}");
        assert_eq!(v["error"]["code"], "provider_unavailable", "{v}");
    }
    let calls_before = fake.request_count("/api/chat");
    assert_eq!(
        calls_before, 4,
        "two requests, each tried twice (one retry)"
    );

    // Open: fails fast without touching the provider, with Retry-After.
    let started = Instant::now();
    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": {"text": "refunds"}}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 503, "provider_unavailable");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("circuit"),
        "{v}"
    );
    assert!(h.contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_millis(500), "fail fast");
    assert_eq!(
        fake.request_count("/api/chat"),
        calls_before,
        "no request reached the provider"
    );

    let (s, _, r) = app.get(None, "/readyz").await;
    assert_eq!(s, 200, "degraded still serves: {r}");
    assert_eq!(r["status"], "degraded", "{r}");
    assert_eq!(r["circuit"], "open");
    assert_eq!(
        app.metric(r#"agent_circuit_state{dependency="provider:ollama"}"#)
            .await,
        Some(2.0)
    );
    assert!(
        app.metric(r#"agent_provider_errors_total{provider="ollama",kind="unavailable"}"#)
            .await
            .unwrap()
            >= 4.0
    );

    // Half-open after CIRCUIT_OPEN_SECS: one probe goes through and closes the circuit.
    fake.set_mode(Mode::Normal);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    fake.push_reply(Reply::tool_call("kb_search", json!({"query": "refund"})));
    fake.push_reply(Reply::text("Refunds take 5 days [kb:KB-2]."));
    let (s, v) = app.invoke("faq", "refund policy").await;
    assert_eq!(s, 200, "{v}");
    let (_, _, r) = app.get(None, "/readyz").await;
    assert_eq!(r["circuit"], "closed", "{r}");
    assert_eq!(r["status"], "ready", "{r}");
}
both!(circuit_test, super::circuit_opens_fails_fast_and_recovers);

async fn slow_provider_times_out(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(
        backend,
        &fake,
        &[
            ("PROVIDER_TIMEOUT_SECS", "1"),
            ("PROVIDER_MAX_RETRIES", "0"),
        ],
    )
    .await;
    fake.set_mode(Mode::Hang);
    let started = Instant::now();
    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": {"text": "refunds"}}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 503, "provider_timeout");
    assert!(h.contains_key("retry-after"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}
both!(timeout_test, super::slow_provider_times_out);
