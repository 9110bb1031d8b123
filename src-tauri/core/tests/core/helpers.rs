//! Shared helpers: clients for a spawned agent-service, and waiting with a deadline.

use std::time::Duration;

use flightdeck_core::agent::{AgentClient, EvalRun, EvalRunState, http_client};
use flightdeck_core::{BaseUrl, Secret};
use testkit::AgentService;

pub fn client(service: &AgentService, role: &str) -> AgentClient {
    client_with_key(service.base_url(), Some(service.key(role)))
}

pub fn client_with_key(url: &str, key: Option<&str>) -> AgentClient {
    AgentClient::new(
        http_client().expect("HTTP client"),
        BaseUrl::parse(url).expect("service URL"),
        key.map(|k| Secret::parse(k).expect("key")),
    )
    .with_timeout(Duration::from_secs(20))
}

/// Awaits `fut` for at most `secs` seconds, failing the test with `what` otherwise.
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s waiting for {what}"),
    }
}

/// Polls the eval run `id` through `client` until it completes or fails (90 s at most).
pub async fn eval_run_done(client: &AgentClient, id: &str) -> EvalRun {
    within(90, "the eval run to finish", async {
        loop {
            let r = client.eval_run(id).await.unwrap();
            if matches!(r.status, EvalRunState::Completed | EvalRunState::Failed) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
}
