//! `POST /v1/invoke/stream`: the event sequence, and redaction of a secret split across
//! stream chunks.

use serde_json::{Value, json};
use testkit::{FakeOllama, Reply};

use crate::both;
use crate::helpers::{Backend, TestApp};

/// Parses a finished SSE body into (event, data) pairs.
pub fn parse_sse(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            Some((
                event?,
                serde_json::from_str(&data).unwrap_or(Value::String(data)),
            ))
        })
        .collect()
}

async fn stream_events(app: &TestApp, workflow: &str, text: &str) -> Vec<(String, Value)> {
    let resp = app
        .http
        .post(app.url("/v1/invoke/stream"))
        .bearer_auth(app.key("invoke"))
        .json(&json!({"workflow": workflow, "input": {"text": text}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    parse_sse(&resp.text().await.unwrap())
}

async fn scripted_stream_sequence(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let events = stream_events(&app, "support_ticket_summary", "Summarize ticket T-1001").await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"tool_call"), "{names:?}");
    assert!(names.contains(&"tool_result"));
    assert!(names.contains(&"token"));
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let tokens: String = events
        .iter()
        .filter(|(e, _)| e == "token")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    let done = &events.last().unwrap().1;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(
        tokens,
        done["answer"].as_str().unwrap(),
        "the streamed tokens add up to the answer"
    );

    let events = stream_events(&app, "ticket_update", "close ticket T-1009").await;
    let approval = events
        .iter()
        .find(|(e, _)| e == "approval_required")
        .expect("approval_required event");
    assert!(
        approval.1["approval_request_id"]
            .as_str()
            .unwrap()
            .starts_with("apr_")
    );
    assert_eq!(events.last().unwrap().1["status"], "approval_required");
}
both!(scripted_stream_test, super::scripted_stream_sequence);

async fn split_secrets_are_redacted_in_the_stream(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(backend, &fake, &[]).await;
    // Three characters a chunk, and NDJSON frames of 7 bytes: every secret is split.
    fake.set_chunking(Some(3), Some(7));
    fake.push_reply(Reply::tool_call(
        "ticket_read",
        json!({"ticket_id": "T-1001"}),
    ));
    let filler =
        "The customer cannot log in after resetting the password and has tried two browsers. "
            .repeat(4);
    fake.push_reply(Reply::text(format!(
        "{filler}Ticket T-1001: reach the customer at jane.roe@example.org or +1 415 555 0100; card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwx [ticket:T-1001]"
    )));
    let events = stream_events(&app, "support_ticket_summary", "Summarize ticket T-1001").await;
    let tokens: String = events
        .iter()
        .filter(|(e, _)| e == "token")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert!(
        events.iter().filter(|(e, _)| e == "token").count() > 5,
        "streamed in many events"
    );
    for secret in [
        "jane.roe@example.org",
        "555 0100",
        "4111 1111 1111 1111",
        "abcdefghijklmnopqrstuvwx",
    ] {
        assert!(!tokens.contains(secret), "stream leaks {secret}: {tokens}");
    }
    assert!(tokens.contains("[REDACTED:email]"), "{tokens}");
    assert!(tokens.contains("[REDACTED:card_number]"), "{tokens}");
    let done = &events.last().unwrap().1;
    assert_eq!(done["status"], "success", "{done}");
    assert!(!done["answer"].as_str().unwrap().contains("4111"), "{done}");
}
both!(
    split_secrets_test,
    super::split_secrets_are_redacted_in_the_stream
);

/// With `OLLAMA_THINK=true` a thinking model thinks first: nothing of it reaches the
/// streamed tokens or the answer, but it is counted in usage and recorded in the trace.
async fn thinking_never_reaches_the_answer(backend: Backend) {
    let fake = FakeOllama::start().await;
    fake.add_model(testkit::FakeModel::new("qwen3").thinking());
    let url = fake.url();
    let app = TestApp::spawn(
        backend,
        &[
            ("AGENT_PROVIDER", "ollama"),
            ("OLLAMA_BASE_URL", url.as_str()),
            ("OLLAMA_MODEL", "qwen3"),
            ("OLLAMA_THINK", "true"),
        ],
    )
    .await;
    fake.push_reply(
        Reply::tool_call("kb_search", json!({"query": "refund"}))
            .with_thinking("I should search the knowledge base SECRET-THOUGHT"),
    );
    fake.push_reply(
        Reply::text("Refunds take 5 days [kb:KB-2].")
            .with_thinking("KB-2 answers it SECRET-THOUGHT"),
    );
    let events = stream_events(&app, "faq", "refund policy").await;
    let tokens: String = events
        .iter()
        .filter(|(e, _)| e == "token")
        .filter_map(|(_, d)| d["text"].as_str())
        .collect();
    assert!(!tokens.contains("SECRET-THOUGHT"), "{tokens}");
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "done", "{events:?}");
    assert!(!done["answer"].as_str().unwrap().contains("SECRET-THOUGHT"));
    assert_eq!(fake.bodies("/api/chat")[0]["think"], true);
    // Thinking tokens are output tokens: 7 + 4 thinking pieces on top of the answer's.
    let completion = done["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(completion >= 11 + 6, "{done}");

    let trace = stored_trace(&app, done["trace_id"].as_str().unwrap()).await;
    let thinking: Vec<u64> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["attributes"]["flightdeck.usage.thinking_tokens"].as_u64())
        .collect();
    assert_eq!(thinking, [7, 4], "{trace}");
}
both!(thinking_test, super::thinking_never_reaches_the_answer);

/// The stored trace `id`, waiting for the background writer (up to 10 s).
pub async fn stored_trace(app: &TestApp, id: &str) -> Value {
    for _ in 0..100 {
        let (s, _, t) = app
            .get(Some(app.key("viewer")), &format!("/v1/traces/{id}"))
            .await;
        if s == 200 {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("trace {id} was not stored within 10 s");
}
