//! Provider fallback chains against the real binary: the primary (the fake Ollama, native
//! protocol) killed mid-traffic hands its calls to the secondary (a second fake speaking
//! `/v1`, or llama.cpp's server with a real model) without an error for any client whose
//! stream had not started; a stream that had started ends with a clear error and is never
//! continued by another model; traces, metrics, `/readyz` and `/v1/info` show each hop and
//! the serving link; the primary restored gets its traffic back through the half-open
//! probe. Budgets span the chain: a failed link's tokens are booked, at its own price, and
//! the next link may only spend what is left.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use testkit::{FakeOllama, Mode};

use crate::both;
use crate::helpers::{Backend, TestApp, run_cli, temp_dir};
use crate::stream::{parse_sse, stored_trace};

/// The primary's circuit stays open this long.
const OPEN_SECS: u64 = 3;

/// Echoed back by the fakes (no reply queued): a plain answer of 16 word pieces, which
/// `ticket_update` returns as a success (it needs no citations).
const QUESTION: &str =
    "Please tell me in plain words what the current status of ticket T-1001 is right now today";

/// A plain text of `n` word pieces.
fn words(n: usize) -> String {
    let words = [
        "the", "customer", "would", "like", "to", "know", "more", "about", "this", "ticket",
    ];
    (0..n)
        .map(|i| words[i % words.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A config file naming the chain `local` (native Ollama at `primary`; its circuit opens
/// after `threshold` failed calls) → `hosted` (the OpenAI-compatible API at `secondary`),
/// each with its own resilience and price.
fn chain_file(dir: &tempfile::TempDir, primary: &str, secondary: &str, threshold: u32) -> PathBuf {
    let path = dir.path().join("agent.toml");
    std::fs::write(
        &path,
        format!(
            r#"provider_chain = ["local", "hosted"]

[providers.local]
kind = "ollama"
base_url = "{primary}"
model = "llama3.2"
timeout_secs = 10
max_retries = 0
circuit_failure_threshold = {threshold}
circuit_open_secs = {OPEN_SECS}

[providers.hosted]
kind = "openai"
base_url = "{secondary}"
model = "llama3.2"
timeout_secs = 10
max_retries = 1
price = {{ input_per_1k = 1.0, output_per_1k = 2.0 }}
"#
        ),
    )
    .expect("write the config file");
    path
}

async fn invoke(app: &TestApp, text: &str) -> (u16, Value) {
    let (s, v) = app.invoke("ticket_update", text).await;
    (s.as_u16(), v)
}

/// A streamed run read event by event, as a client does.
struct SseClient {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
    events: Vec<(String, Value)>,
}

impl SseClient {
    async fn open(app: &TestApp, text: &str) -> Self {
        let resp = app
            .http
            .post(app.url("/v1/invoke/stream"))
            .bearer_auth(app.key("invoke"))
            .json(&json!({"workflow": "ticket_update", "input": {"text": text}}))
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(resp.status(), 200);
        Self {
            body: resp.bytes_stream().boxed(),
            buf: String::new(),
            events: Vec::new(),
        }
    }

    /// Reads until an event named `name` arrived (true), or the stream ended (false).
    async fn until(&mut self, name: &str) -> bool {
        loop {
            if self.events.iter().any(|(e, _)| e == name) {
                return true;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.buf.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = self.buf.find("\n\n") {
                        let block: String = self.buf.drain(..end + 2).collect();
                        self.events.extend(parse_sse(&block));
                    }
                }
                _ => return false,
            }
        }
    }

    /// Every event once the stream has ended.
    async fn finish(mut self) -> Vec<(String, Value)> {
        while self.until("\u{0}never").await {}
        self.events.extend(parse_sse(&self.buf));
        self.events
    }
}

fn tokens(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(e, _)| e == "token")
        .filter_map(|(_, d)| d["text"].as_str())
        .collect()
}

fn link<'a>(readyz: &'a Value, name: &str) -> &'a Value {
    readyz["provider_chain"]["links"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["name"] == name))
        .unwrap_or_else(|| panic!("no link {name} in {readyz}"))
}

async fn fallbacks(app: &TestApp, reason: &str) -> f64 {
    app.metric(&format!(
        r#"agent_provider_fallbacks_total{{from="local",to="hosted",reason="{reason}"}}"#
    ))
    .await
    .unwrap_or(0.0)
}

/// Waits until `/readyz` shows the primary's circuit open; how long that took.
async fn until_primary_open(app: &TestApp, within: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < within {
        let (_, _, r) = app.get(None, "/readyz").await;
        if link(&r, "local")["circuit"] == "open" {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the primary's circuit did not open within {within:?}");
}

async fn a_killed_primary_fails_over_and_recovers(backend: Backend) {
    let primary = FakeOllama::start().await;
    let secondary = FakeOllama::start().await;
    let dir = temp_dir();
    let config = chain_file(&dir, &primary.url(), &secondary.openai_url(), 2);
    let app = TestApp::spawn(
        backend,
        &[("AGENT_CONFIG", config.to_str().expect("utf-8 path"))],
    )
    .await;

    // Healthy: the primary serves.
    let (s, v) = invoke(&app, QUESTION).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["provider_link"].as_str(),
            v["provider"].as_str()
        ),
        (Some("success"), Some("local"), Some("ollama")),
        "{v}"
    );
    let (_, _, r) = app.get(None, "/readyz").await;
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(
        r["provider_chain"]["chain"],
        json!(["local", "hosted"]),
        "{r}"
    );
    assert_eq!(r["provider_chain"]["serving"], "local", "{r}");
    assert_eq!(link(&r, "hosted")["kind"], "openai", "{r}");
    let (_, _, info) = app.get(Some(app.key("viewer")), "/v1/info").await;
    assert_eq!(info["provider_chain"]["serving"], "local", "{info}");
    assert_eq!(
        info["provider"]["kind"], "ollama",
        "the primary names the service: {info}"
    );

    // Traffic: the primary answers slowly (first piece after 400 ms, then one every
    // 30 ms), so at the kill one stream has shown text, some answers are mid-stream, and
    // one has not started. (The stream redactor holds back the undecided tail of the
    // text, so a stream shows its first text only after a few hundred characters.)
    primary.set_mode(Mode::Slow {
        first_chunk_ms: 400,
        between_chunks_ms: 30,
    });
    let mut started_stream = SseClient::open(&app, &format!("stream-one {}", words(150))).await;
    assert!(
        started_stream.until("token").await,
        "the first stream got text from the primary"
    );
    let invokes: Vec<_> = (0..3)
        .map(|i| {
            let http = app.http.clone();
            let url = app.url("/v1/invoke");
            let key = app.key("invoke").to_string();
            tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"workflow": "ticket_update", "input": {"text": format!("invoke-{i} {}", words(40))}}))
                    .send()
                    .await
                    .expect("answered");
                (resp.status().as_u16(), resp.json::<Value>().await.expect("JSON"))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let unstarted_stream = SseClient::open(&app, &format!("stream-two {QUESTION}")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let killed_at = Instant::now();
    let primary_addr = primary.kill().await.expect("the primary is killed");

    // The stream that had started ends with a clear error, not with another model's text.
    let events = started_stream.finish().await;
    let (last, data) = events.last().expect("events");
    assert_eq!(last, "error", "{events:?}");
    let message = data["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("incomplete") && message.contains("local"),
        "the error says the answer is incomplete and which provider failed: {data}"
    );
    assert!(!events.iter().any(|(e, _)| e == "done"), "{events:?}");
    assert!(!tokens(&events).is_empty());
    assert!(
        !secondary
            .bodies("/v1/chat/completions")
            .iter()
            .any(|b| b.to_string().contains("stream-one")),
        "the secondary never continued the started stream"
    );

    // Every client whose stream had not started is served by the secondary, no error.
    for task in invokes {
        let (s, v) = task.await.expect("task");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "success", "{v}");
        assert_eq!(v["provider_link"], "hosted", "{v}");
        assert_eq!(v["provider"], "openai", "{v}");
    }
    let events = unstarted_stream.finish().await;
    let (last, done) = events.last().expect("events");
    assert_eq!(last, "done", "{events:?}");
    assert_eq!(done["provider_link"], "hosted", "{done}");
    assert_eq!(done["status"], "success", "{done}");
    assert!(!events.iter().any(|(e, _)| e == "error"), "{events:?}");
    assert_eq!(
        tokens(&events),
        done["answer"].as_str().unwrap_or_default(),
        "only the secondary's answer was streamed"
    );

    // Within one circuit-open interval the primary's circuit is open, and meanwhile every
    // request is served by the secondary.
    let mut served = 0;
    while killed_at.elapsed() < Duration::from_secs(OPEN_SECS) / 2 {
        let (s, v) = invoke(&app, QUESTION).await;
        assert_eq!(
            (s, v["provider_link"].as_str()),
            (200, Some("hosted")),
            "{v}"
        );
        served += 1;
    }
    assert!(served > 0);
    let opened = until_primary_open(&app, Duration::from_secs(OPEN_SECS)).await;
    assert!(
        killed_at.elapsed() < Duration::from_secs(OPEN_SECS),
        "open {opened:?} after the last check, {:?} after the kill",
        killed_at.elapsed()
    );
    let (s, _, r) = app.get(None, "/readyz").await;
    assert_eq!(s, 200, "degraded still serves: {r}");
    assert_eq!(r["status"], "degraded", "{r}");
    assert_eq!(r["circuit"], "open", "the primary's breaker: {r}");
    assert_eq!(r["provider_chain"]["serving"], "hosted", "{r}");
    assert_eq!(link(&r, "local")["status"], "failing", "{r}");
    assert_eq!(link(&r, "local")["serving"], false, "{r}");
    assert_eq!(link(&r, "hosted")["status"], "ok", "{r}");
    assert_eq!(link(&r, "hosted")["serving"], true, "{r}");
    assert!(
        r["checks"]["provider"]["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("serving: hosted"),
        "{r}"
    );
    let (_, _, info) = app.get(Some(app.key("viewer")), "/v1/info").await;
    assert_eq!(info["provider_chain"]["serving"], "hosted", "{info}");
    assert_eq!(
        info["provider_chain"]["links"][0]["circuit"], "open",
        "{info}"
    );
    assert_eq!(
        app.metric(r#"agent_circuit_state{dependency="provider:local"}"#)
            .await,
        Some(2.0)
    );
    assert_eq!(
        app.metric(r#"agent_circuit_state{dependency="provider:hosted"}"#)
            .await,
        Some(0.0)
    );
    // While open, calls skip the primary at once.
    let (s, v) = invoke(&app, QUESTION).await;
    assert_eq!(
        (s, v["provider_link"].as_str()),
        (200, Some("hosted")),
        "{v}"
    );
    assert!(
        fallbacks(&app, "stream").await >= 1.0,
        "answers cut mid-stream"
    );
    assert!(
        fallbacks(&app, "circuit_open").await >= 1.0,
        "calls while open"
    );

    // The trace of a call while the circuit is open: the refused attempt, the hop, the
    // answer.
    let (s, v) = invoke(&app, QUESTION).await;
    assert_eq!(s, 200, "{v}");
    let trace = stored_trace(&app, v["trace_id"].as_str().expect("trace id")).await;
    let spans = trace["spans"].as_array().expect("spans");
    let chats: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("chat ")))
        .collect();
    assert_eq!(chats.len(), 2, "{trace}");
    assert_eq!(
        chats[0]["attributes"]["flightdeck.provider.link"], "local",
        "{trace}"
    );
    assert_eq!(chats[0]["status"], "error", "{trace}");
    assert_eq!(
        chats[1]["attributes"]["flightdeck.provider.link"], "hosted",
        "{trace}"
    );
    assert_eq!(chats[1]["status"], "ok", "{trace}");
    let hop = spans
        .iter()
        .find(|s| s["name"] == "provider.fallback")
        .unwrap_or_else(|| panic!("a provider.fallback span: {trace}"));
    assert_eq!(
        hop["attributes"]["flightdeck.fallback.from"], "local",
        "{hop}"
    );
    assert_eq!(
        hop["attributes"]["flightdeck.fallback.to"], "hosted",
        "{hop}"
    );
    assert_eq!(
        hop["attributes"]["flightdeck.fallback.reason"], "circuit_open",
        "{hop}"
    );
    // Priced at the hosted link's own price (USD 1 / 2 per 1,000 tokens in / out).
    let usage = &v["usage"];
    let want = usage["prompt_tokens"].as_f64().unwrap() / 1000.0
        + 2.0 * usage["completion_tokens"].as_f64().unwrap() / 1000.0;
    assert!(
        (usage["cost_usd"].as_f64().unwrap() - want).abs() < 1e-9,
        "{usage}"
    );

    // Half-open with the primary still down: the probe fails (unavailable), the circuit
    // opens again, the secondary serves.
    tokio::time::sleep(Duration::from_secs(OPEN_SECS) + Duration::from_millis(300)).await;
    let unavailable = fallbacks(&app, "unavailable").await;
    let (s, v) = invoke(&app, QUESTION).await;
    assert_eq!(
        (s, v["provider_link"].as_str()),
        (200, Some("hosted")),
        "{v}"
    );
    assert_eq!(fallbacks(&app, "unavailable").await, unavailable + 1.0);
    let (_, _, r) = app.get(None, "/readyz").await;
    assert_eq!(
        link(&r, "local")["circuit"],
        "open",
        "the probe failed: {r}"
    );

    // The primary restored: after the open interval the probe goes to it and succeeds,
    // and traffic is back on the primary.
    let restored = FakeOllama::bind(primary_addr).await.expect("rebind");
    tokio::time::sleep(Duration::from_secs(OPEN_SECS) + Duration::from_millis(300)).await;
    for _ in 0..3 {
        let (s, v) = invoke(&app, QUESTION).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["provider_link"], "local", "{v}");
    }
    assert_eq!(restored.request_count("/api/chat"), 3);
    let (_, _, r) = app.get(None, "/readyz").await;
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(r["circuit"], "closed", "{r}");
    assert_eq!(r["provider_chain"]["serving"], "local", "{r}");
    assert_eq!(
        app.metric(r#"agent_circuit_state{dependency="provider:local"}"#)
            .await,
        Some(0.0)
    );
}
both!(
    failover_test,
    super::a_killed_primary_fails_over_and_recovers
);

/// Budgets span the chain, streams hand over only while nothing reached the client, and
/// only a link failure hands a call on: a stream that breaks after its text reached the
/// client ends with a clear error (the secondary is not asked); one that breaks while the
/// redactor still held all of its text back is answered by the secondary alone; a run that
/// is not streamed falls back with the broken attempt's tokens booked and the next call
/// capped by what is left of the request's budget; a request the primary refuses (4xx) is
/// not handed on.
async fn budgets_span_the_chain_and_started_streams_end(backend: Backend) {
    let primary = FakeOllama::start().await;
    let secondary = FakeOllama::start().await;
    let dir = temp_dir();
    let config = chain_file(&dir, &primary.url(), &secondary.openai_url(), 10);
    let app = TestApp::spawn(
        backend,
        &[
            ("AGENT_CONFIG", config.to_str().expect("utf-8 path")),
            // Below ticket_update's per-call cap (512) once the first attempt is spent.
            ("MAX_TOKENS_PER_REQUEST", "520"),
        ],
    )
    .await;
    let asked = || secondary.bodies("/v1/chat/completions");

    // Text reached the client, then the primary broke: a clear error, nothing spliced.
    primary.set_mode(Mode::ErrorAfter {
        chunks: 120,
        message: "model runner crashed".into(),
    });
    let events = SseClient::open(&app, &words(150)).await.finish().await;
    let (last, data) = events.last().expect("events");
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(data["error"]["code"], "provider_error", "{data}");
    assert!(
        data["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("the answer is incomplete"),
        "{data}"
    );
    let shown = tokens(&events);
    assert!(!shown.is_empty(), "text had reached the client");
    assert!(
        words(150).starts_with(&shown),
        "only the primary's text: {shown}"
    );
    assert_eq!(asked().len(), 0, "the secondary was not asked");

    // The primary broke while the redactor still held its text back: the client never saw
    // it, so the secondary answers, and only its text is streamed.
    primary.set_mode(Mode::ErrorAfter {
        chunks: 3,
        message: "model runner crashed".into(),
    });
    let events = SseClient::open(&app, &format!("short {QUESTION}"))
        .await
        .finish()
        .await;
    let (last, done) = events.last().expect("events");
    assert_eq!(last, "done", "{events:?}");
    assert_eq!(done["provider_link"], "hosted", "{done}");
    assert_eq!(tokens(&events), done["answer"].as_str().unwrap_or_default());
    assert_eq!(asked().len(), 1);

    // Not streamed: the broken attempt is booked and the secondary gets what is left.
    let (s, v) = invoke(&app, QUESTION).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["provider_link"].as_str()),
        (Some("success"), Some("hosted")),
        "{v}"
    );
    let trace = stored_trace(&app, v["trace_id"].as_str().expect("trace id")).await;
    let spans = trace["spans"].as_array().expect("spans");
    let failed = spans
        .iter()
        .find(|s| s["attributes"]["flightdeck.provider.link"] == "local")
        .expect("the primary's attempt");
    let spent_in = failed["attributes"]["gen_ai.usage.input_tokens"]
        .as_u64()
        .unwrap();
    let spent_out = failed["attributes"]["gen_ai.usage.output_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(
        spent_out, 3,
        "the three pieces before the break are booked: {failed}"
    );
    assert_eq!(
        failed["attributes"]["error.type"], "provider_error",
        "{failed}"
    );
    let hop = spans
        .iter()
        .find(|s| s["name"] == "provider.fallback")
        .expect("a hop");
    assert_eq!(
        hop["attributes"]["flightdeck.fallback.reason"], "stream",
        "{hop}"
    );
    let last_ask = asked().pop().expect("the secondary was asked");
    assert_eq!(
        last_ask["max_tokens"].as_u64(),
        Some(520 - spent_in - spent_out),
        "the secondary may spend only what is left of the request's budget"
    );
    // The reply's usage is the whole chain's: the broken attempt and the answer.
    let answered = spans
        .iter()
        .find(|s| s["attributes"]["flightdeck.provider.link"] == "hosted")
        .expect("the secondary's answer");
    assert_eq!(
        v["usage"]["completion_tokens"].as_u64(),
        Some(
            spent_out
                + answered["attributes"]["gen_ai.usage.output_tokens"]
                    .as_u64()
                    .unwrap()
        )
    );
    assert_eq!(
        app.metric(r#"agent_provider_fallbacks_total{from="local",to="hosted",reason="stream"}"#)
            .await,
        Some(2.0)
    );

    // A refusal is about the request, not the link: it is not handed on.
    primary.set_mode(Mode::Down {
        status: 400,
        message: "invalid message format".into(),
    });
    let (s, v) = invoke(&app, QUESTION).await;
    assert_eq!(v["error"]["code"], "provider_error", "{v}");
    assert!(s >= 400, "{v}");
    assert_eq!(asked().len(), 2, "not asked");
}
both!(
    chain_budget_test,
    super::budgets_span_the_chain_and_started_streams_end
);

/// The secondary is a real model: llama.cpp's server with SmolLM2-135M. The chain is set
/// in the compact environment form (`PROVIDER_CHAIN=ollama,openai`). The primary, killed
/// with an answer in flight and a stream waiting for its first token, hands both to the
/// real model. SQLite only, like the other real-model tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_serves_when_the_primary_is_killed() {
    use testkit::llama::MODEL_ALIAS;
    let llama = testkit::LlamaServer::start(testkit::LlamaOptions::default()).await;
    let primary = FakeOllama::start().await;
    let (ollama, openai) = (primary.url(), llama.openai_url());
    let app = TestApp::spawn(
        Backend::Sqlite,
        &[
            ("PROVIDER_CHAIN", "ollama,openai"),
            ("OLLAMA_BASE_URL", ollama.as_str()),
            ("OLLAMA_MODEL", "llama3.2"),
            ("OPENAI_BASE_URL", openai.as_str()),
            ("MODEL_NAME", MODEL_ALIAS),
            ("MAX_OUTPUT_TOKENS", "24"),
            ("PROVIDER_MAX_RETRIES", "0"),
            ("CIRCUIT_FAILURE_THRESHOLD", "1"),
            ("CIRCUIT_OPEN_SECS", "60"),
            ("PROVIDER_TIMEOUT_SECS", "50"),
            ("REQUEST_TIMEOUT_SECS", "60"),
        ],
    )
    .await;
    primary.set_mode(Mode::Slow {
        first_chunk_ms: 1500,
        between_chunks_ms: 100,
    });
    let in_flight = {
        let http = app.http.clone();
        let url = app.url("/v1/invoke");
        let key = app.key("invoke").to_string();
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(key)
                .timeout(Duration::from_secs(90))
                .json(&json!({"workflow": "ticket_update", "input": {"text": "Is ticket T-1001 open?"}}))
                .send()
                .await
                .expect("answered");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.expect("JSON"),
            )
        })
    };
    let stream = SseClient::open(&app, "Say hello to the customer of ticket T-1001").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = llama.tokens_predicted().await;
    primary.kill().await.expect("killed");

    let (s, v) = in_flight.await.expect("task");
    assert_eq!(
        s, 200,
        "no error for a client whose answer had not started: {v}"
    );
    assert_eq!(
        (
            v["provider_link"].as_str(),
            v["provider"].as_str(),
            v["model"].as_str()
        ),
        (Some("openai"), Some("openai"), Some(MODEL_ALIAS)),
        "{v}"
    );
    // What a 135M model answers within 24 tokens: an answer, or one cut at the cap.
    assert!(
        ["success", "budget_exceeded"].contains(&v["status"].as_str().unwrap_or_default()),
        "{v}"
    );
    let events = stream.finish().await;
    let (last, done) = events.last().expect("events");
    assert_eq!(last, "done", "{events:?}");
    assert_eq!(done["provider_link"], "openai", "{done}");
    assert!(
        llama.tokens_predicted().await > before,
        "the real model generated the answers"
    );
    let (_, _, r) = app.get(None, "/readyz").await;
    assert_eq!(r["status"], "degraded", "{r}");
    assert_eq!(r["provider_chain"]["serving"], "openai", "{r}");
    assert_eq!(link(&r, "openai")["status"], "ok", "{r}");
    assert!(
        app.metric(
            r#"agent_provider_fallbacks_total{from="ollama",to="openai",reason="unavailable"}"#
        )
        .await
        .unwrap_or(0.0)
            >= 1.0,
        "the answers waiting on the killed primary fell back"
    );
}

/// A chain that names an unknown provider, or a workflow that does not exist, stops the
/// start with the key named; `check-config` shows the chain.
#[test]
fn bad_chains_stop_the_start_and_check_config_shows_the_chain() {
    let db = temp_dir();
    let db_url = format!("sqlite://{}/x.db", db.path().display());
    let out = run_cli(
        &db_url,
        &[("PROVIDER_CHAIN", "ollama,nowhere")],
        &["check-config"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PROVIDER_CHAIN") && stderr.contains("\"nowhere\" is not a provider"),
        "{stderr}"
    );

    let dir = temp_dir();
    let path = dir.path().join("agent.toml");
    std::fs::write(
        &path,
        "[workflow_provider_chain]\nrefunds = [\"scripted\"]\n",
    )
    .unwrap();
    let out = run_cli(
        &db_url,
        &[("AGENT_CONFIG", path.to_str().unwrap())],
        &["check-config"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("workflow_provider_chain.refunds") && stderr.contains("unknown workflow"),
        "{stderr}"
    );

    let config = chain_file(&dir, "http://127.0.0.1:1", "http://127.0.0.1:2/v1", 2);
    let out = run_cli(
        &db_url,
        &[("AGENT_CONFIG", config.to_str().unwrap())],
        &["check-config"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "PROVIDER_CHAIN = local,hosted",
        "provider_chain.local = ollama (llama3.2)",
        "provider_chain.hosted = openai (llama3.2)",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(
        stdout.contains("providers.local = ollama llama3.2 at http://127.0.0.1:1/ (timeout 10 s, 0 retries, circuit opens after 2 failures for 3 s)"),
        "{stdout}"
    );
}
