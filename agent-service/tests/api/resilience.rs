//! Load shedding (503 + Retry-After) and graceful shutdown on SIGTERM.

use std::time::Duration;

use serde_json::json;
use testkit::{FakeOllama, Mode, Reply};

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

async fn sheds_load_when_at_capacity(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(backend, &fake, &[("MAX_CONCURRENCY", "1")]).await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 1500,
        between_chunks_ms: 0,
    });
    fake.push_reply(Reply::text("I found no knowledge base article about that."));
    let body = json!({"workflow": "faq", "input": {"text": "anything"}});
    let first = {
        let http = app.http.clone();
        let url = app.url("/v1/invoke");
        let key = app.key("invoke").to_string();
        let body = body.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (s, h, v) = app
        .post_json(Some(app.key("invoke")), "/v1/invoke", &body, &[])
        .await;
    assert_error(s, &h, &v, 503, "overloaded");
    assert_eq!(h["retry-after"], "1");
    // Probes are not shed.
    assert_eq!(app.get(None, "/healthz").await.0, 200);
    assert_eq!(first.await.unwrap(), 200, "the request in flight completes");
}
both!(shed_test, super::sheds_load_when_at_capacity);

async fn sigterm_drains_in_flight_requests(backend: Backend) {
    let fake = FakeOllama::start().await;
    let mut app = TestApp::spawn_with_ollama(backend, &fake, &[]).await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 1500,
        between_chunks_ms: 0,
    });
    let mut inflight = Vec::new();
    for i in 0..3 {
        fake.push_reply(Reply::text(format!("answer {i}")));
        let http = app.http.clone();
        let url = app.url("/v1/invoke");
        let key = app.key("invoke").to_string();
        inflight.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&json!({"workflow": "faq", "input": {"text": "anything"}}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    app.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the in-flight requests drain.
    let fresh = reqwest::Client::new();
    let refused = fresh
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection after SIGTERM must be refused, got {refused:?}"
    );
    for h in inflight {
        let status = h.await.unwrap().expect("in-flight request completed");
        assert_eq!(status, 200);
    }
    let exit = app
        .wait_exit(Duration::from_secs(10))
        .expect("process exits after draining");
    assert!(exit.success(), "clean exit: {exit:?}");
    let logs = app.logs();
    assert!(logs.contains("draining in-flight requests"), "{logs}");
    assert!(logs.contains("agent-service stopped"), "{logs}");
}
both!(shutdown_test, super::sigterm_drains_in_flight_requests);
