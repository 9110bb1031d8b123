//! The Local profile against the real agent-service binary: start on embedded defaults,
//! live synthetic traffic, provider detection, stop and drop, and clear start-up errors.

use std::time::Duration;

use flightdeck_core::agent::{ApprovalStatus, http_client};
use flightdeck_core::local::{LocalConfig, LocalProvider, LocalService, Traffic, TrafficConfig};
use flightdeck_core::{BaseUrl, ErrorCode};
use testkit::FakeOllama;
use testkit::agent::agent_service_bin;

use crate::helpers::within;

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("fd-local-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(data_dir: std::path::PathBuf, ollama: &str) -> LocalConfig {
    LocalConfig {
        ollama_url: BaseUrl::parse(ollama).unwrap(),
        stop_grace: Duration::from_secs(3),
        ..LocalConfig::new(agent_service_bin(), data_dir)
    }
}

/// Whether a process with this pid still exists (zombies excepted: they have exited).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_profile_serves_demo_data_with_live_traffic_and_stops() {
    let dir = temp_dir();
    let http = http_client().unwrap();
    let svc = within(
        60,
        "the local service",
        LocalService::start(&config(dir.clone(), "http://127.0.0.1:9"), &http),
    )
    .await
    .unwrap();
    match svc.provider() {
        LocalProvider::Scripted { reason } => {
            assert!(reason.contains("no Ollama answered"), "{reason}")
        }
        other => panic!("expected scripted, got {other:?}"),
    }
    assert!(
        dir.join("agent-service.db").is_file(),
        "SQLite in the data dir"
    );
    let viewer = svc.client(&http, "viewer").unwrap();
    let info = viewer.info().await.unwrap();
    assert!(info.provider.scripted);
    assert_eq!(
        svc.client(&http, "nobody").unwrap_err().code(),
        ErrorCode::Invalid
    );

    let traffic = Traffic::start(
        svc.client(&http, "invoke").unwrap(),
        TrafficConfig {
            per_second: 25.0,
            injection_every: 5,
            max_inflight: 8,
            seed: 3,
        },
    )
    .unwrap();
    within(30, "traffic of every kind", async {
        loop {
            let o = traffic.stats().outcomes();
            if ["success", "approval_required", "blocked"]
                .iter()
                .all(|k| o.get(*k).copied().unwrap_or(0) > 0)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    drop(traffic);
    let approver = svc.client(&http, "approver").unwrap();
    let pending = approver
        .approvals(Some(ApprovalStatus::Pending), None, None)
        .await
        .unwrap();
    assert!(!pending.items.is_empty(), "writes wait for approval");
    let metrics = viewer.metrics().await.unwrap();
    assert!(metrics.sum("agent_requests_total", &[]).unwrap() >= 3.0);
    assert!(metrics.sum("agent_guardrail_blocks_total", &[]).unwrap() >= 1.0);

    let pid = svc.pid().unwrap();
    let status = within(10, "the service to stop", svc.stop()).await.unwrap();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}");
    assert!(!alive(pid));

    // The same data dir again: the demo data is reused, new keys work.
    let again = within(
        60,
        "the second start",
        LocalService::start(&config(dir.clone(), "http://127.0.0.1:9"), &http),
    )
    .await
    .unwrap();
    assert!(
        again
            .client(&http, "viewer")
            .unwrap()
            .healthz()
            .await
            .is_ok()
    );
    let pid = again.pid().unwrap();
    drop(again);
    within(10, "the dropped service to exit", async {
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_ollama_is_used_when_it_answers() {
    let fake = FakeOllama::start().await;
    let dir = temp_dir();
    let http = http_client().unwrap();
    let svc = within(
        60,
        "the local service",
        LocalService::start(&config(dir.clone(), &fake.url()), &http),
    )
    .await
    .unwrap();
    assert_eq!(
        svc.provider(),
        &LocalProvider::Ollama {
            url: fake.url(),
            model: "llama3.2:latest".into()
        }
    );
    let info = svc.client(&http, "viewer").unwrap().info().await.unwrap();
    assert_eq!(
        (info.provider.kind.as_str(), info.provider.model.as_str()),
        ("ollama", "llama3.2:latest")
    );
    assert!(!info.provider.scripted);

    fake.set_models(vec![]);
    let none =
        flightdeck_core::local::detect_provider(&http, &BaseUrl::parse(&fake.url()).unwrap(), None)
            .await;
    assert!(matches!(none, LocalProvider::Scripted { reason } if reason.contains("no models")));
    drop(svc);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_failures_are_clear_errors() {
    let http = http_client().unwrap();
    let dir = temp_dir();
    let missing = LocalConfig::new(dir.join("no-such-binary"), dir.clone());
    let err = LocalService::start(&missing, &http)
        .await
        .err()
        .expect("an error");
    assert_eq!(err.code(), ErrorCode::Process);
    assert!(
        err.to_string().contains("bundled agent-service is missing"),
        "{err}"
    );

    // A binary that is not the agent-service: seed-demo fails.
    let wrong = LocalConfig {
        ollama_url: BaseUrl::parse("http://127.0.0.1:9").unwrap(),
        ..LocalConfig::new("/bin/false".into(), dir.clone())
    };
    let err = LocalService::start(&wrong, &http)
        .await
        .err()
        .expect("an error");
    assert!(err.to_string().contains("seed-demo failed"), "{err}");

    // Stand-ins whose `seed-demo` works but whose `serve` exits, or never listens.
    let script = |name: &str, serve: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nif [ \"$1\" = seed-demo ]; then printf 'invoke\\tdemo\\tfdk_x\\n'; exit 0; fi\n{serve}\n"),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
        LocalConfig {
            ollama_url: BaseUrl::parse("http://127.0.0.1:9").unwrap(),
            startup_timeout: Duration::from_secs(1),
            ..LocalConfig::new(path, dir.join(format!("{name}-data")))
        }
    };
    let exits = script(
        "exits",
        "echo 'DATABASE_URL is not usable: boom' >&2; exit 2",
    );
    let err = LocalService::start(&exits, &http)
        .await
        .err()
        .expect("an error");
    assert!(
        err.to_string().contains("exited before it was listening"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("stderr: DATABASE_URL is not usable: boom"),
        "{err}"
    );
    let silent = script("silent", "exec sleep 30");
    let started = std::time::Instant::now();
    let err = LocalService::start(&silent, &http)
        .await
        .err()
        .expect("an error");
    assert!(
        err.to_string().contains("was not listening within 1 s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the silent process was killed"
    );
    std::fs::remove_dir_all(&dir).ok();
}
