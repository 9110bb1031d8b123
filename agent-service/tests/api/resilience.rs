//! Load shedding (503 + Retry-After), graceful shutdown on SIGTERM, and the drain window
//! before it (SHUTDOWN_DRAIN_SECS) under keep-alive traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    let mut app = TestApp::spawn_with_ollama(backend, &fake, &[("SHUTDOWN_DRAIN_SECS", "0")]).await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 4000,
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
    // New connections are refused while the in-flight requests drain: the listener closes
    // within moments of the signal (polled, so that a busy machine's slower signal handling
    // is not mistaken for a failure), long before the model's first chunk (4 s) arrives.
    let signalled = Instant::now();
    let refused = loop {
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let attempt = fresh
            .get(app.url("/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if attempt.is_err() || signalled.elapsed() > Duration::from_millis(2500) {
            break attempt;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused.is_err(),
        "a new connection after SIGTERM must be refused, got {refused:?} {:?} after the signal",
        signalled.elapsed()
    );
    assert!(
        inflight.iter().all(|h| !h.is_finished()),
        "the in-flight requests are still being served when new connections are refused"
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

/// What the clients of the drain test saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    /// Responses that carried `Connection: close`.
    closes: AtomicUsize,
    /// Idempotent requests sent again on a fresh connection after a transport error.
    retried: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

/// One keep-alive client (its own connection): POSTs an invoke (not idempotent: never
/// retried) or GETs /v1/info (idempotent: retried once on a fresh connection after a
/// transport error), over and over, until the balancer has taken the replica out of
/// rotation. reqwest honours `Connection: close`: the next request opens a new connection.
async fn keep_alive_client(
    base: String,
    key: String,
    post: bool,
    out: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let client = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let mut http = client();
    while !out.load(Ordering::SeqCst) {
        let send = |http: &reqwest::Client| {
            let req = if post {
                http.post(format!("{base}/v1/invoke")).json(
                    &json!({"workflow": "support_ticket_summary", "input": {"text": "Summarize ticket T-1001"}}),
                )
            } else {
                http.get(format!("{base}/v1/info"))
            };
            req.bearer_auth(&key).send()
        };
        let result = match send(&http).await {
            Err(e) if !post => {
                tally.retried.fetch_add(1, Ordering::SeqCst);
                http = client();
                send(&http)
                    .await
                    .map_err(|e2| format!("{e}; retried: {e2}"))
            }
            other => other.map_err(|e| format!("{e:?}")),
        };
        match result {
            Ok(resp) => {
                if resp
                    .headers()
                    .get("connection")
                    .is_some_and(|v| v == "close")
                {
                    tally.closes.fetch_add(1, Ordering::SeqCst);
                }
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                if status == 200 {
                    tally.ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    tally.fail(format!("{status}: {body}"));
                }
            }
            Err(e) => tally.fail(e),
        }
    }
}

async fn sigterm_under_keep_alive_traffic_fails_nothing(backend: Backend) {
    let mut app = TestApp::spawn(
        backend,
        &[("SHUTDOWN_DRAIN_SECS", "3"), ("RATE_LIMIT_RPM", "1000000")],
    )
    .await;
    let out = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    // The balancer: a health check on /readyz every 100 ms, each on a new connection; the
    // first failure takes the replica out of rotation.
    let balancer = {
        let (out, url) = (out.clone(), app.url("/readyz"));
        tokio::spawn(async move {
            loop {
                let http = reqwest::Client::new();
                let ready = http
                    .get(&url)
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if !ready {
                    out.store(true, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let clients: Vec<_> = (0..64)
        .map(|i| {
            tokio::spawn(keep_alive_client(
                app.base.clone(),
                app.key("invoke").to_string(),
                i % 2 == 0,
                out.clone(),
                tally.clone(),
            ))
        })
        .collect();
    // SIGTERM comes once every client has been served at least once on average (a slow
    // machine gets there later; the drain is what is measured, not the warm-up).
    let warm_until = std::time::Instant::now() + Duration::from_secs(20);
    while tally.ok.load(Ordering::SeqCst) <= 64 && std::time::Instant::now() < warm_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = tally.ok.load(Ordering::SeqCst);
    assert!(before > 64, "the clients are busy: {before} requests");
    app.terminate();
    let signalled = std::time::Instant::now();
    balancer.await.unwrap();
    let noticed = signalled.elapsed();
    for c in clients {
        c.await.unwrap();
    }
    let exit = tokio::task::spawn_blocking(move || {
        let exit = app.wait_exit(Duration::from_secs(30));
        (exit, app)
    })
    .await
    .unwrap();
    let (exit, app) = exit;
    let exit = exit.expect("exits after the drain");
    let failures = tally.failures.lock().unwrap().clone();
    let (ok, closes, retried) = (
        tally.ok.load(Ordering::SeqCst),
        tally.closes.load(Ordering::SeqCst),
        tally.retried.load(Ordering::SeqCst),
    );
    eprintln!(
        "drain run: {ok} requests served ({} after SIGTERM), {closes} with Connection: close, \
         {retried} idempotent retries, {} failures; out of rotation after {noticed:?}",
        ok - before,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
    assert!(
        noticed < Duration::from_secs(3),
        "readiness turned unavailable at once, not after the drain: {noticed:?}"
    );
    assert!(
        closes > 0,
        "connections in the drain window were closed after their response"
    );
    assert!(exit.success(), "clean exit: {exit:?}");
    let logs = app.logs();
    assert!(logs.contains("drain window over"), "{logs}");
    assert!(logs.contains("agent-service stopped"), "{logs}");
}
both!(
    drain_test,
    super::sigterm_under_keep_alive_traffic_fails_nothing
);
