//! The per-key rate limit answers 429 with Retry-After; kept in the database, it is one
//! limit across every process on it.

use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

async fn rate_limit(backend: Backend) {
    let app = TestApp::spawn(backend, &[("RATE_LIMIT_RPM", "3")]).await;
    let body = json!({"workflow": "faq", "input": {"text": "refunds"}});
    for _ in 0..3 {
        let (s, _, v) = app
            .post_json(Some(app.key("invoke")), "/v1/invoke", &body, &[])
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, h, v) = app
        .post_json(Some(app.key("invoke")), "/v1/invoke", &body, &[])
        .await;
    assert_error(s, &h, &v, 429, "rate_limited");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Limits are per key: another key is unaffected.
    let (s, _, v) = app
        .post_json(
            Some(app.key_of("invoke", "other")),
            "/v1/invoke",
            &body,
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Probes need no key and are not limited.
    for _ in 0..5 {
        assert_eq!(app.get(None, "/healthz").await.0, 200);
    }
}
both!(rate_limit_test, super::rate_limit);

/// Fires `n` requests of one key at the processes in turn, as fast as they answer, and
/// returns how many were admitted and how long it took.
async fn burst(bases: &[String], key: &str, n: usize) -> (usize, std::time::Duration) {
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut admitted = 0;
    for i in 0..n {
        let resp = http
            .get(format!("{}/v1/whoami", bases[i % bases.len()]))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => admitted += 1,
            429 => {
                let retry = resp.headers()["retry-after"].to_str().unwrap().to_string();
                let v: Value = resp.json().await.unwrap();
                assert_eq!(v["error"]["code"], "rate_limited", "{v}");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("rate limit of 30 requests per minute"),
                    "{v}"
                );
                assert!(
                    retry.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)),
                    "{retry}"
                );
            }
            s => panic!("unexpected status {s}"),
        }
    }
    (admitted, started.elapsed())
}

/// Three processes on one database: with the limit kept there, a key gets its 30 requests
/// per minute across all three (plus what refills while the burst lasts); kept per
/// process, each process admits its own 30.
async fn one_rate_limit_across_processes(backend: Backend) {
    let shared = [("RATE_LIMIT_RPM", "30"), ("RATE_LIMIT_STORE", "database")];
    let a = TestApp::spawn(backend, &shared).await;
    let b = a.replica(&shared).await;
    let c = a.replica(&shared).await;
    // Asked with another key than the burst's: every request of a key counts.
    let (_, _, info) = a.get(Some(a.key("invoke")), "/v1/info").await;
    assert_eq!(info["limits"]["rate_limit"]["scope"], "global", "{info}");
    assert_eq!(info["limits"]["rate_limit"]["store"], "database", "{info}");
    assert_eq!(info["limits"]["rate_limit"]["requests_per_minute"], 30);
    assert_eq!(info["limits"]["concurrency"]["scope"], "replica");
    assert_eq!(info["limits"]["tenant_daily_budget"]["scope"], "global");
    let bases = [a.base.clone(), b.base.clone(), c.base.clone()];
    let key = a.key("viewer").to_string();
    let (admitted, took) = burst(&bases, &key, 90).await;
    // One request refills every two seconds.
    let refilled = (took.as_secs_f64() / 2.0).ceil() as usize;
    eprintln!("shared limit of 30/min: admitted {admitted} of 90 in {took:?}");
    assert!(
        (30..=30 + refilled).contains(&admitted),
        "admitted {admitted} of 90 in {took:?}"
    );
    drop((b, c));

    // The same processes with the limit in each: three times the rate.
    let local = [("RATE_LIMIT_RPM", "30"), ("RATE_LIMIT_STORE", "process")];
    let b = a.replica(&local).await;
    let c = a.replica(&local).await;
    let d = a.replica(&local).await;
    let (_, _, info) = b.get(Some(b.key("invoke")), "/v1/info").await;
    assert_eq!(info["limits"]["rate_limit"]["scope"], "replica", "{info}");
    assert_eq!(info["limits"]["rate_limit"]["store"], "process", "{info}");
    let bases = [b.base.clone(), c.base.clone(), d.base.clone()];
    let key = a.key_of("invoke", "other").to_string();
    let (admitted, took) = burst(&bases, &key, 90).await;
    let refilled = 3 * (took.as_secs_f64() / 2.0).ceil() as usize;
    assert!(
        (90 - refilled.min(90)..=90).contains(&admitted) && admitted > 30 + refilled / 3,
        "per process: admitted {admitted} of 90 in {took:?}"
    );
}
both!(
    rate_limit_across_processes_test,
    super::one_rate_limit_across_processes
);

/// `auto` keeps the limit in the database on PostgreSQL and in the process on SQLite.
async fn the_default_store_follows_the_database(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let (_, _, info) = app.get(Some(app.key("viewer")), "/v1/info").await;
    let want = match backend {
        Backend::Postgres => ("global", "database"),
        Backend::Sqlite => ("replica", "process"),
    };
    assert_eq!(info["limits"]["rate_limit"]["scope"], want.0, "{info}");
    assert_eq!(info["limits"]["rate_limit"]["store"], want.1, "{info}");
    assert_eq!(info["limits"]["rate_limit"]["requests_per_minute"], 6000);
    assert_eq!(
        info["limits"]["tenant_daily_budget"]["run_reservation_tokens"],
        8000
    );
    assert_eq!(
        info["limits"]["concurrency"]["max_concurrent_requests"],
        512
    );
}
both!(
    default_store_test,
    super::the_default_store_follows_the_database
);
