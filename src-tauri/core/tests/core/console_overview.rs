//! The Overview across profiles against real agent-service processes: a
//! card per agent-service profile and track with its own numbers, the active profile's
//! first, and a service on a closed port as a card with `live: false` and its error while
//! the other cards keep updating.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flightdeck_core::BaseUrl;
use flightdeck_core::agent::InvokeRequest;
use flightdeck_core::clock::SystemClock;
use flightdeck_core::console::dto::*;
use flightdeck_core::console::{Console, ConsoleOptions, EventSink};
use flightdeck_core::host::Host;
use serde_json::Value;
use testkit::{AgentService, Backend};

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
    /// The newest pushed overview (so far or later) that satisfies `pred`; on time out, the
    /// failure shows the last one pushed.
    async fn wait_for(&self, secs: u64, what: &str, pred: impl Fn(&Overview) -> bool) -> Overview {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let pushed: Vec<Overview> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .map(|v| serde_json::from_value(v.clone()).expect("an Overview"))
                .collect();
            if let Some(o) = pushed.iter().rev().find(|o| pred(o)) {
                return o.clone();
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out after {secs} s waiting for {what}; {} pushed, the last: {:#?}",
                    pushed.len(),
                    pushed.last()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The overview asked directly, over the last five minutes.
async fn overview_m5(console: &Console) -> Overview {
    console
        .get_overview(OverviewArgs {
            window: ChartWindow::M5,
        })
        .await
        .unwrap()
}

fn card<'a>(o: &'a Overview, profile: &str) -> Option<&'a ServiceCard> {
    o.services.iter().find(|c| c.profile_id == profile)
}

fn rate(o: &Overview, profile: &str) -> f64 {
    card(o, profile)
        .and_then(|c| c.stats.request_rate)
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_has_a_card_per_service_and_track_and_keeps_unreachable_ones() {
    let stable = AgentService::spawn(Backend::Sqlite, &[]).await;
    let canary = AgentService::spawn(Backend::Sqlite, &[("RELEASE_TRACK", "canary")]).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead_url = format!("http://127.0.0.1:{closed}");
    // A port that takes connections (the kernel's backlog) and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());

    let dir = std::env::temp_dir().join(format!("fd-overview-{}", uuid::Uuid::new_v4().simple()));
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
    let add = |name: &str, url: &str, key: &str| AddAgentProfileArgs {
        name: name.into(),
        url: url.into(),
        api_key: key.into(),
    };
    for args in [
        add("Stable", stable.base_url(), stable.key("admin")),
        add("Canary", canary.base_url(), canary.key("admin")),
        add("Dead", &dead_url, "fdk_nothing_listens_here"),
        add("Hung", &hung_url, "fdk_nothing_answers_here"),
    ] {
        console.add_agent_profile(args).await.unwrap();
    }

    // Rates need a scrape before the traffic: wait for the first of each live service.
    sink.wait_for(30, "the first scrapes", |o| {
        ["stable", "canary"]
            .iter()
            .all(|p| card(o, p).is_some_and(|c| c.scraped_at_ms.is_some()))
    })
    .await;

    // Traffic on the canary only: two answered requests and one gated write.
    let invoker = client(&canary, "invoke");
    for _ in 0..2 {
        invoker
            .invoke(&InvokeRequest::new("faq", "How do I reset my password?"))
            .await
            .unwrap();
    }
    let gated = invoker
        .invoke(&InvokeRequest::new(
            "ticket_update",
            "Please close T-1001, priority urgent",
        ))
        .await
        .unwrap();
    assert!(gated.approval_request_id.is_some(), "a gated write");

    let o = sink
        .wait_for(40, "the canary's traffic on its card", |o| {
            rate(o, "canary") > 0.0
                && card(o, "canary").unwrap().stats.pending_approvals == Some(1.0)
                && card(o, "stable").is_some_and(|c| c.scraped_at_ms.is_some())
                && card(o, "dead").is_some_and(|c| c.error.is_some())
                && card(o, "hung").is_some_and(|c| {
                    c.error
                        .as_deref()
                        .is_some_and(|e| e.contains("did not answer"))
                })
        })
        .await;
    // One card per profile (each process runs one track), the active profile's first.
    let order: Vec<(&str, &str)> = o
        .services
        .iter()
        .map(|c| (c.profile_id.as_str(), c.track.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("stable", "stable"),
            ("canary", "canary"),
            ("dead", "stable"),
            ("hung", "stable")
        ]
    );
    // Each card has its own numbers: the stable service saw no traffic and no write.
    let (s, c) = (card(&o, "stable").unwrap(), card(&o, "canary").unwrap());
    assert!(s.live && c.live, "{s:?} {c:?}");
    assert_eq!(
        (s.readiness, c.readiness),
        (ReadyState::Ready, ReadyState::Ready)
    );
    assert_eq!(rate(&o, "stable"), 0.0, "{:?}", s.stats);
    assert_eq!(s.stats.pending_approvals, Some(0.0));
    assert!(s.error.is_none() && c.error.is_none(), "{s:?} {c:?}");
    assert!(!c.versions.release.is_empty() && c.url.starts_with(canary.base_url()));
    // The closed port: a card that says so, with the address in the error.
    let d = card(&o, "dead").unwrap();
    assert!(!d.live && d.readiness == ReadyState::Unavailable, "{d:?}");
    let err = d.error.as_deref().unwrap();
    assert!(
        err.contains("could not reach") && err.contains(&closed.to_string()),
        "{err}"
    );
    assert_eq!(d.stats.request_rate, None);
    // The endpoint that never answers: down after the read time limit (2 s at 500 ms
    // scrapes), without holding up the others.
    let h = card(&o, "hung").unwrap();
    let err = h.error.as_deref().unwrap();
    assert!(
        !h.live && err.contains("did not answer within 2000 ms") && err.contains(&hung_url),
        "{h:?}"
    );

    // While it stays dead, the others keep updating.
    let before = card(&o, "stable").unwrap().scraped_at_ms.unwrap();
    let later = sink
        .wait_for(10, "a newer scrape of the stable service", |o| {
            card(o, "stable").and_then(|c| c.scraped_at_ms) > Some(before)
                && card(o, "dead").is_some_and(|c| !c.live)
                && card(o, "hung").is_some_and(|c| !c.live)
        })
        .await;
    assert_eq!(later.services.len(), 4);

    // Traffic on the stable service shows on its card.
    let invoker = client(&stable, "invoke");
    for _ in 0..2 {
        invoker
            .invoke(&InvokeRequest::new("faq", "What are your opening hours?"))
            .await
            .unwrap();
    }
    sink.wait_for(20, "the stable service's traffic", |o| {
        rate(o, "stable") > 0.0
    })
    .await;

    // Asked directly: the same cards, and a switch puts the new active profile first.
    let asked = overview_m5(&console).await;
    assert_eq!(asked.services.len(), 4);
    assert_eq!(asked.services[0].profile_id, "stable");
    assert!(!card(&asked, "dead").unwrap().live && !card(&asked, "hung").unwrap().live);
    console
        .set_active_profile(ProfileIdArgs {
            profile_id: "canary".into(),
        })
        .await
        .unwrap();
    let asked = overview_m5(&console).await;
    let first: Vec<&str> = asked
        .services
        .iter()
        .map(|c| c.profile_id.as_str())
        .collect();
    // The others follow in the profile list's order (by name).
    assert_eq!(first, ["canary", "dead", "hung", "stable"]);
    sink.wait_for(10, "a push with the canary first", |o| {
        o.services.first().is_some_and(|c| c.profile_id == "canary")
    })
    .await;

    // Charts are per profile and track.
    let charts = console
        .get_charts(ChartArgs {
            profile_id: "canary".into(),
            track: "canary".into(),
            window: ChartWindow::M5,
            theme: Theme::Light,
        })
        .await
        .unwrap();
    assert_eq!(charts.len(), 8);
    assert!(charts.iter().all(|c| c.svg.contains("<svg")));

    // A removed profile's card goes with it.
    console
        .remove_profile(ProfileIdArgs {
            profile_id: "dead".into(),
        })
        .await
        .unwrap();
    let asked = overview_m5(&console).await;
    assert!(card(&asked, "dead").is_none() && asked.services.len() == 3);
    console.shutdown().await;
    drop(hung);
    let _ = std::fs::remove_dir_all(&dir);
}
