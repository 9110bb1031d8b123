//! Hostile and slow clients: stalled bodies hold no concurrency slot and are cut at
//! BODY_READ_TIMEOUT_SECS, an oversized Content-Length is refused before a byte of body is
//! read, half-sent heads are cut at HEADER_READ_TIMEOUT_SECS while idle keep-alive
//! connections live KEEP_ALIVE_TIMEOUT_SECS, one key holds at most its share of
//! MAX_CONCURRENCY, and load shedding logs one line per interval, not one per request.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{FakeOllama, Mode, Reply};
use tokio::io::AsyncWriteExt;

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};
use crate::wire::{self, closed_after, read_response};

fn invoke_body() -> Value {
    json!({"workflow": "faq", "input": {"text": "How do I reset my password?"}})
}

/// A POST that announces 100 bytes of body and sends 10.
fn stalled_post(key: &str) -> Vec<u8> {
    format!(
        "POST /v1/invoke HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n0123456789"
    )
    .into_bytes()
}

async fn stalled_bodies_hold_no_slot(backend: Backend) {
    let app = TestApp::spawn(
        backend,
        &[("MAX_CONCURRENCY", "4"), ("BODY_READ_TIMEOUT_SECS", "2")],
    )
    .await;
    // MAX_CONCURRENCY stalled uploads from one read-only key.
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(wire::send(&app.base, &stalled_post(app.key("viewer"))).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every other tenant (and the same one) is served meanwhile.
    for key in [app.key_of("invoke", "other"), app.key("invoke")] {
        for _ in 0..3 {
            let (s, _, v) = app
                .post_json(Some(key), "/v1/invoke", &invoke_body(), &[])
                .await;
            assert_eq!(s, 200, "{v}");
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served while the uploads were still stalled"
    );
    // Each stalled upload is answered 408 and closed once its time is up.
    for mut s in stalled {
        let r = read_response(&mut s, Duration::from_secs(8))
            .await
            .expect("a stalled upload is answered");
        r.assert_envelope(408, "request_timeout");
        assert_eq!(r.header("connection"), Some("close"), "{r:?}");
        let at = closed_after(&mut s, started, Duration::from_secs(5))
            .await
            .expect("and closed");
        assert!(
            at >= Duration::from_millis(1900) && at < Duration::from_secs(6),
            "closed after {at:?}, BODY_READ_TIMEOUT_SECS=2"
        );
    }
    let (s, _, v) = app
        .post_json(Some(app.key("invoke")), "/v1/invoke", &invoke_body(), &[])
        .await;
    assert_eq!(s, 200, "{v}");
}
both!(stalled_bodies_test, super::stalled_bodies_hold_no_slot);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_content_length_is_refused_before_reading() {
    let app = TestApp::spawn(Backend::Sqlite, &[("MAX_BODY_BYTES", "2048")]).await;
    // The head only, asking to continue: the answer must come without a byte of body,
    // and it is the refusal, not `100 Continue`.
    let head = format!(
        "POST /v1/invoke HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n",
        app.key("invoke")
    );
    let started = Instant::now();
    let mut s = wire::send(&app.base, head.as_bytes()).await;
    let r = read_response(&mut s, Duration::from_secs(3))
        .await
        .expect("answered without the body");
    r.assert_envelope(413, "payload_too_large");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_BODY_BYTES")
    );
    assert_eq!(r.header("connection"), Some("close"));
    closed_after(&mut s, started, Duration::from_secs(3))
        .await
        .expect("the connection is closed, its body unread");

    // A chunked body that grows past the limit is cut the same way.
    let mut s = wire::send(
        &app.base,
        format!(
            "POST /v1/invoke HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            app.key("invoke")
        )
        .as_bytes(),
    )
    .await;
    for _ in 0..3 {
        let chunk = "x".repeat(1000);
        let _ = s
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await;
    }
    let r = read_response(&mut s, Duration::from_secs(3))
        .await
        .expect("answered");
    r.assert_envelope(413, "payload_too_large");

    // Within the limit, a body is read and served as before.
    let (s, _, v) = app
        .post_json(Some(app.key("invoke")), "/v1/invoke", &invoke_body(), &[])
        .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_are_cut_and_idle_connections_kept() {
    let app = TestApp::spawn(
        Backend::Sqlite,
        &[
            ("HEADER_READ_TIMEOUT_SECS", "2"),
            ("KEEP_ALIVE_TIMEOUT_SECS", "5"),
        ],
    )
    .await;
    let in_window = |at: Option<Duration>, what: &str| {
        let at = at.unwrap_or_else(|| panic!("{what}: still open"));
        assert!(
            at >= Duration::from_millis(1900) && at < Duration::from_secs(4),
            "{what}: closed after {at:?}, HEADER_READ_TIMEOUT_SECS=2"
        );
    };

    let started = Instant::now();
    let mut half = wire::send(&app.base, b"POST /v1/invoke HTTP/1.1\r\nHost: test\r\n").await;
    let mut silent = wire::send(&app.base, b"").await;
    // A head trickled a byte at a time: progress does not extend its time.
    let mut trickle = wire::send(&app.base, b"GET /healthz HTTP/1.1\r\n").await;
    let trickling = tokio::spawn(async move {
        for _ in 0..40 {
            if trickle.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        trickle
    });
    in_window(
        closed_after(&mut half, started, Duration::from_secs(6)).await,
        "a half-sent head",
    );
    in_window(
        closed_after(&mut silent, started, Duration::from_secs(6)).await,
        "a connection that sends nothing",
    );
    let mut trickle = trickling.await.unwrap();
    let gone = closed_after(&mut trickle, started, Duration::from_secs(1)).await;
    in_window(gone, "a trickled head");

    // An idle keep-alive connection outlives the header timeout and is closed at the
    // keep-alive timeout.
    let mut idle = wire::send(&app.base, b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await;
    let r = read_response(&mut idle, Duration::from_secs(3))
        .await
        .expect("answered");
    assert_eq!(r.status, 200);
    let answered = Instant::now();
    let at = closed_after(&mut idle, answered, Duration::from_secs(9))
        .await
        .expect("closed at the keep-alive timeout");
    assert!(
        at >= Duration::from_millis(4500) && at < Duration::from_secs(8),
        "idle connection closed after {at:?}, KEEP_ALIVE_TIMEOUT_SECS=5"
    );
    // The service is unharmed.
    assert_eq!(app.get(None, "/healthz").await.0, 200);
}

/// Starts a slow invoke with `key` (the fake model answers after 1.5 s).
fn slow_invoke(app: &TestApp, key: &str) -> tokio::task::JoinHandle<u16> {
    let http = app.http.clone();
    let url = app.url("/v1/invoke");
    let key = key.to_string();
    tokio::spawn(async move {
        http.post(url)
            .bearer_auth(key)
            .json(&invoke_body())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

async fn one_key_holds_at_most_its_share(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(
        backend,
        &fake,
        &[
            ("MAX_CONCURRENCY", "4"),
            ("MAX_KEY_CONCURRENCY_PERCENT", "50"),
        ],
    )
    .await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 1500,
        between_chunks_ms: 0,
    });
    for i in 0..4 {
        fake.push_reply(Reply::text(format!("I found no article about that ({i}).")));
    }
    let held: Vec<_> = (0..2)
        .map(|_| slow_invoke(&app, app.key("invoke")))
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (s, h, v) = app
        .post_json(Some(app.key("invoke")), "/v1/invoke", &invoke_body(), &[])
        .await;
    assert_error(s, &h, &v, 429, "concurrency_limited");
    assert_eq!(h["retry-after"], "1");
    // Another key still gets the slots left.
    let (s, _, v) = app
        .post_json(
            Some(app.key_of("invoke", "other")),
            "/v1/invoke",
            &invoke_body(),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    // Its slots given back, the key is served again.
    let (s, _, v) = app
        .post_json(Some(app.key("invoke")), "/v1/invoke", &invoke_body(), &[])
        .await;
    assert_eq!(s, 200, "{v}");
}
both!(key_share_test, super::one_key_holds_at_most_its_share);

async fn load_shedding_logs_once_per_interval(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(backend, &fake, &[("MAX_CONCURRENCY", "1")]).await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 2000,
        between_chunks_ms: 0,
    });
    fake.push_reply(Reply::text("I found no knowledge base article about that."));
    let held = slow_invoke(&app, app.key("invoke"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut shed = 0;
    for _ in 0..50 {
        let (s, h, v) = app
            .post_json(
                Some(app.key_of("invoke", "other")),
                "/v1/invoke",
                &invoke_body(),
                &[],
            )
            .await;
        assert_error(s, &h, &v, 503, "overloaded");
        shed += 1;
    }
    assert_eq!(held.await.unwrap(), 200);
    let logs = app.logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let reports: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shedding load"))
        })
        .collect();
    assert_eq!(reports.len(), 1, "{shed} refusals, one report line: {logs}");
    assert_eq!(reports[0]["level"], "WARN");
    assert!(reports[0]["refused"].as_u64().unwrap_or(0) >= 1);
    let per_request = lines
        .iter()
        .filter(|l| l["code"] == "overloaded" || l["message"] == "request failed")
        .count();
    assert_eq!(per_request, 0, "no line per refused request: {logs}");
}
both!(shed_log_test, super::load_shedding_logs_once_per_interval);
