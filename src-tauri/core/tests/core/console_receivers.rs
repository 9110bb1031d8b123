//! Settings → Notifications against a real agent-service: an admin creates a webhook
//! receiver (its URL and secret never come back), sends it a test notification that arrives
//! signed at a loopback receiver, and deletes it; bad input comes back as the service's own
//! words; a key without the admin role is refused before the call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use flightdeck_core::BaseUrl;
use flightdeck_core::clock::SystemClock;
use flightdeck_core::console::dto::*;
use flightdeck_core::console::{Console, ConsoleOptions};
use flightdeck_core::host::Host;
use testkit::{AgentService, Backend};

use crate::rig::Recorder;

const SEAL_KEY: &str = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGh8=";
/// `whsec_` and the base64 of 32 bytes.
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5mJ+XwPbJNM=";

/// A loopback webhook receiver: the `webhook-signature` header of every POST to `/hook`.
async fn loopback() -> (String, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let sig = headers
                    .get("webhook-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.lock().unwrap().push(sig);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

async fn console_on(svc: &AgentService, role: &str, dir: &std::path::Path) -> Console {
    let host = Host::in_memory(Arc::new(SystemClock)).await.unwrap();
    let console = Console::start(
        host,
        Arc::new(Recorder::default()),
        ConsoleOptions {
            scrape_interval: Duration::from_millis(500),
            ollama_url: BaseUrl::parse("http://127.0.0.1:9").unwrap(),
            ..ConsoleOptions::new(dir.to_path_buf())
        },
    )
    .await
    .unwrap();
    let p = console
        .add_agent_profile(AddAgentProfileArgs {
            name: "Svc".into(),
            url: svc.base_url().into(),
            api_key: svc.key(role).into(),
        })
        .await
        .unwrap();
    console
        .set_active_profile(ProfileIdArgs { profile_id: p.id })
        .await
        .unwrap();
    console
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_tests_and_deletes_a_receiver() {
    let svc = AgentService::spawn(
        Backend::Sqlite,
        &[
            ("NOTIFY_SECRET_KEY", SEAL_KEY),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
        ],
    )
    .await;
    let (hook, got) = loopback().await;
    let dir = std::env::temp_dir().join(format!("fd-receivers-{}", uuid::Uuid::new_v4().simple()));
    let console = console_on(&svc, "admin", &dir).await;

    assert_eq!(console.list_receivers().await.unwrap(), Vec::new());
    let created = console
        .create_receiver(CreateReceiverArgs {
            name: " On-call ".into(),
            format: ReceiverFormat::Webhook,
            url: Some(format!("{hook}?token=private")),
            secret: Some(SIGNING_SECRET.into()),
            events: vec!["approval.created".into(), "quality.alert".into()],
        })
        .await
        .unwrap();
    assert_eq!(created.name, "On-call");
    assert_eq!(created.format, ReceiverFormat::Webhook);
    assert!(created.has_secret && created.created_at_ms.is_some());
    // Only scheme, host and port come back: not the path, not the query, not the secret.
    let port = hook.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert_eq!(created.url_hint, format!("http://127.0.0.1:{port}"));
    let listed = console.list_receivers().await.unwrap();
    assert_eq!(listed, vec![created.clone()]);
    let json = serde_json::to_string(&listed).unwrap();
    assert!(
        !json.contains("token=private") && !json.contains("whsec_"),
        "{json}"
    );

    // A test notification reaches the loopback receiver, signed.
    let t = console
        .test_receiver(ReceiverIdArgs {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    assert!(
        t.event_id.starts_with("evt_") && !t.delivery_id.is_empty(),
        "{t:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the test notification never arrived\n{}",
            svc.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sig = got.lock().unwrap()[0].clone();
    assert!(
        sig.starts_with("v1,"),
        "a Standard Webhooks signature: {sig:?}"
    );

    // Bad input: the service's words.
    for (args, says) in [
        (
            CreateReceiverArgs {
                name: "x".into(),
                format: ReceiverFormat::Slack,
                url: Some("http://10.20.30.40/hook".into()),
                secret: None,
                events: vec![],
            },
            "EGRESS_ALLOWLIST",
        ),
        (
            CreateReceiverArgs {
                name: "x".into(),
                format: ReceiverFormat::Webhook,
                url: Some(hook.clone()),
                secret: Some("not-a-secret".into()),
                events: vec![],
            },
            "whsec_",
        ),
    ] {
        let e = console.create_receiver(args).await.unwrap_err();
        assert_eq!(e.code, CommandErrorCode::Invalid, "{e:?}");
        assert!(e.message.contains(says), "{says}: {e:?}");
    }
    let e = console
        .create_receiver(CreateReceiverArgs {
            name: "  ".into(),
            format: ReceiverFormat::Slack,
            url: Some(hook.clone()),
            secret: None,
            events: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, CommandErrorCode::Invalid);
    assert_eq!(
        console.list_receivers().await.unwrap().len(),
        1,
        "nothing half-made"
    );

    console
        .delete_receiver(ReceiverIdArgs {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(console.list_receivers().await.unwrap(), Vec::new());
    let e = console
        .delete_receiver(ReceiverIdArgs { id: created.id })
        .await
        .unwrap_err();
    assert_eq!(e.code, CommandErrorCode::NotFound, "{e:?}");
    console.shutdown().await;

    // An operator key reads the list but may not change it: refused before the call.
    let operator = console_on(&svc, "operator", &dir.join("op")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let p = operator.get_permissions().await.unwrap();
        if !p.roles.is_empty() {
            let a = p
                .actions
                .iter()
                .find(|a| a.action == ActionId::ManageReceivers)
                .unwrap();
            assert!(
                !a.allowed && a.reason.as_deref().unwrap().contains("admin"),
                "{a:?}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "roles never read");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(operator.list_receivers().await.unwrap(), Vec::new());
    let e = operator
        .create_receiver(CreateReceiverArgs {
            name: "x".into(),
            format: ReceiverFormat::Slack,
            url: Some(hook),
            secret: None,
            events: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, CommandErrorCode::Forbidden, "{e:?}");
    operator.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
