//! The Overview card shows the service's provider fallback chain and which link serves,
//! against the real agent-service binary with the fake Ollama as its primary and a second
//! fake (OpenAI-compatible `/v1`) as its secondary: the primary serves, then it is killed
//! and the card shows it failing with its circuit open, the secondary serving and the
//! fallbacks between them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flightdeck_core::BaseUrl;
use flightdeck_core::agent::InvokeRequest;
use flightdeck_core::clock::SystemClock;
use flightdeck_core::console::dto::*;
use flightdeck_core::console::{Console, ConsoleOptions, EventSink};
use flightdeck_core::host::Host;
use serde_json::Value;
use testkit::{AgentService, Backend, FakeOllama};

use crate::helpers::client;

/// Keeps the pushed `overview_event`s.
#[derive(Default)]
struct Overviews(Mutex<Vec<Value>>);

impl EventSink for Overviews {
    fn emit(&self, event: &str, payload: Value) {
        if event == "overview_event" {
            self.0.lock().unwrap().push(payload);
        }
    }
}

impl Overviews {
    /// The first card of the newest pushed overview whose card satisfies `pred`.
    async fn card_where(
        &self,
        secs: u64,
        what: &str,
        pred: impl Fn(&ServiceCard) -> bool,
    ) -> ServiceCard {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let pushed: Vec<Overview> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .map(|v| serde_json::from_value(v.clone()).expect("an Overview"))
                .collect();
            if let Some(c) = pushed
                .iter()
                .rev()
                .filter_map(|o| o.services.first())
                .find(|c| pred(c))
            {
                return c.clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out after {secs} s waiting for {what}; the last card: {:#?}",
                    pushed.last().and_then(|o| o.services.first())
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The chain as `(name, serving, status, circuit)` per link.
fn chain(c: &ServiceCard) -> Vec<(&str, bool, DependencyStatus, Option<CircuitState>)> {
    c.provider_chain
        .iter()
        .map(|l| (l.name.as_str(), l.serving, l.status, l.circuit))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_shows_the_provider_chain_and_the_serving_link() {
    let primary = FakeOllama::start().await;
    let secondary = FakeOllama::start().await;
    let (ollama, openai) = (primary.url(), secondary.openai_url());
    let service = AgentService::spawn(
        Backend::Sqlite,
        &[
            ("PROVIDER_CHAIN", "ollama,openai"),
            ("OLLAMA_BASE_URL", ollama.as_str()),
            ("OLLAMA_MODEL", "llama3.2"),
            ("OPENAI_BASE_URL", openai.as_str()),
            ("MODEL_NAME", "llama3.2"),
            ("PROVIDER_MAX_RETRIES", "0"),
            ("CIRCUIT_FAILURE_THRESHOLD", "1"),
            ("CIRCUIT_OPEN_SECS", "60"),
        ],
    )
    .await;

    let dir = std::env::temp_dir().join(format!("fd-chain-{}", uuid::Uuid::new_v4().simple()));
    let sink = Arc::new(Overviews::default());
    let host = Host::in_memory(Arc::new(SystemClock)).await.unwrap();
    let console = Console::start(
        host,
        sink.clone(),
        ConsoleOptions {
            scrape_interval: Duration::from_millis(500),
            ollama_url: BaseUrl::parse("http://127.0.0.1:9").unwrap(),
            ..ConsoleOptions::new(dir.clone())
        },
    )
    .await
    .unwrap();
    console
        .add_agent_profile(AddAgentProfileArgs {
            name: "Chained".into(),
            url: service.base_url().into(),
            api_key: service.key("admin").into(),
        })
        .await
        .unwrap();

    // Healthy: the chain in order, the primary serving.
    let c = sink
        .card_where(30, "the chain with the primary serving", |c| {
            c.provider_chain.len() == 2 && c.provider_chain[0].serving
        })
        .await;
    assert_eq!(
        chain(&c),
        [
            (
                "ollama",
                true,
                DependencyStatus::Ok,
                Some(CircuitState::Closed)
            ),
            (
                "openai",
                false,
                DependencyStatus::Ok,
                Some(CircuitState::Closed)
            ),
        ]
    );
    assert_eq!(
        (
            c.provider_chain[1].kind.as_str(),
            c.provider_chain[1].model.as_str()
        ),
        ("openai", "llama3.2")
    );
    assert_eq!(c.readiness, ReadyState::Ready);
    // Two metrics scrapes done: the fallback counters' starting point is known, so what
    // follows counts as recent.
    let first = sink
        .card_where(30, "a metrics scrape", |c| c.scraped_at_ms.is_some())
        .await
        .scraped_at_ms;
    let c = sink
        .card_where(30, "a second metrics scrape", |c| c.scraped_at_ms > first)
        .await;
    assert!(c.recent_fallbacks.is_empty(), "{:?}", c.recent_fallbacks);

    // The primary killed: the first call falls back as the primary is unreachable and
    // opens its circuit, the second as the circuit is open; the card follows.
    primary.kill().await.expect("killed");
    for _ in 0..2 {
        let reply = client(&service, "invoke")
            .invoke(&InvokeRequest::new(
                "ticket_update",
                "Is ticket T-1001 open?",
            ))
            .await
            .expect("served by the secondary");
        assert_eq!(reply.provider_link, "openai");
    }
    let c = sink
        .card_where(30, "the secondary serving and both fallbacks", |c| {
            c.provider_chain.get(1).is_some_and(|l| l.serving) && c.recent_fallbacks.len() == 2
        })
        .await;
    let fallbacks: Vec<(&str, &str, &str, u64)> = c
        .recent_fallbacks
        .iter()
        .map(|f| (f.from.as_str(), f.to.as_str(), f.reason.as_str(), f.count))
        .collect();
    assert_eq!(
        fallbacks,
        [
            ("ollama", "openai", "circuit_open", 1),
            ("ollama", "openai", "unavailable", 1)
        ]
    );
    assert_eq!(
        chain(&c),
        [
            (
                "ollama",
                false,
                DependencyStatus::Failing,
                Some(CircuitState::Open)
            ),
            (
                "openai",
                true,
                DependencyStatus::Ok,
                Some(CircuitState::Closed)
            ),
        ]
    );
    assert!(
        c.provider_chain[0].detail.contains("unreachable"),
        "{:?}",
        c.provider_chain[0]
    );
    assert_eq!(
        c.readiness,
        ReadyState::Degraded,
        "a link down, another serving"
    );
    console.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
