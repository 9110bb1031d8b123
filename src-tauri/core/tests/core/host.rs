//! The `Host` wiring against the real agent-service: a profile with its key in the secret
//! store, an audited decision, and scrapes that become series and stored history.

use std::sync::Arc;

use flightdeck_core::agent::{InvokeRequest, Reason};
use flightdeck_core::clock::ManualClock;
use flightdeck_core::host::Host;
use flightdeck_core::series::{Metric, SeriesConfig, SeriesKey, SeriesStore};
use flightdeck_core::store::Outcome;
use flightdeck_core::{ErrorCode, ProfileId};
use testkit::{AgentService, Backend};

use crate::helpers::client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_an_audited_decision_and_scraped_series() {
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let host = Host::in_memory(clock.clone()).await.unwrap();
    let id = ProfileId::parse("local-test").unwrap();
    host.save_agent_profile(
        id.clone(),
        "Local test",
        svc.base_url(),
        Some(svc.key("approver")),
    )
    .await
    .unwrap();
    let approver = host.agent_client(&id).await.unwrap();

    let reply = client(&svc, "invoke")
        .invoke(&InvokeRequest::new("ticket_update", "Please close T-1003"))
        .await
        .unwrap();
    let apr = reply.approval_request_id.unwrap();
    let reason = Reason::parse("verified with the customer").unwrap();
    let target = format!("approval/{apr}");
    let done = host
        .audited(
            "Local test (approver)",
            "approve",
            &target,
            approver.approve(&apr, &reason, None),
        )
        .await
        .unwrap();
    assert_eq!(done.id, apr);
    let again = host
        .audited(
            "Local test (approver)",
            "approve",
            &target,
            approver.approve(&apr, &reason, None),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), ErrorCode::Conflict);
    let log = host.store.actions(10, None).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        [Outcome::Failed, Outcome::Ok]
    );
    assert!(log[0].detail.starts_with("conflict: "), "{}", log[0].detail);

    let mut series = SeriesStore::new(SeriesConfig::default());
    let first = host
        .scrape(&approver, "local", "stable", &mut series)
        .await
        .unwrap();
    assert!(
        first.iter().all(|(m, _)| *m != Metric::RequestRate),
        "one scrape has no rate"
    );
    let invoker = client(&svc, "invoke");
    for _ in 0..4 {
        invoker
            .invoke(&InvokeRequest::new("faq", "How do I reset my password?"))
            .await
            .unwrap();
    }
    clock.advance_ms(5000);
    let second = host
        .scrape(&approver, "local", "stable", &mut series)
        .await
        .unwrap();
    let rate = second
        .iter()
        .find(|(m, _)| *m == Metric::RequestRate)
        .map(|(_, v)| *v)
        .unwrap();
    assert!((rate - 0.8).abs() < 1e-9, "4 requests in 5 s: {rate}");
    assert_eq!(
        second
            .iter()
            .find(|(m, _)| *m == Metric::ErrorRate)
            .map(|(_, v)| *v),
        Some(0.0)
    );
    let key = SeriesKey {
        service: "local".into(),
        track: "stable".into(),
        metric: Metric::RequestRate,
    };
    let stored = host.store.points(&key, 0, i64::MAX).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].t_ms, 1_700_000_005_000);
}
