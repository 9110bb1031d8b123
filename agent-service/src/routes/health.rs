//! Liveness, readiness with per-dependency checks (one per provider of the chains), and
//! the Prometheus exposition.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use tokio::time::Instant;

use super::AppState;
use crate::providers::{CircuitState, Link};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process is serving.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Check {
    /// `ok`, `degraded` or `failing`.
    pub status: &'static str,
    pub detail: String,
    pub latency_ms: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Checks {
    pub database: Check,
    pub provider: Check,
    pub retrieval: Check,
}

/// One provider of the chains: reachable or not, its breaker, whether it serves.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LinkCheck {
    /// The link name chains use.
    pub name: String,
    /// `ollama`, `openai` or `scripted`.
    pub kind: String,
    pub model: String,
    /// `ok`, `degraded` (reachable, but its circuit is not closed) or `failing`
    /// (unreachable).
    pub status: &'static str,
    pub detail: String,
    pub latency_ms: u64,
    /// `closed`, `open` or `half_open`.
    #[schema(value_type = String)]
    pub circuit: CircuitState,
    /// This link serves the service's chain now.
    pub serving: bool,
}

/// The service's provider chain as readiness sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChainReadiness {
    /// The service's chain, in order (link names).
    pub chain: Vec<String>,
    /// The link serving the service's chain: the last to answer while its circuit is not
    /// open, else the first whose circuit is not open; `null` when every circuit is open.
    pub serving: Option<String>,
    /// Every provider in use (the service chain's first, then the workflows' own).
    pub links: Vec<LinkCheck>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (still serving) or `unavailable`.
    pub status: &'static str,
    pub checks: Checks,
    /// The breaker of the first provider of the service's chain: `closed`, `open` or
    /// `half_open` (every link's is in `provider_chain`).
    #[schema(value_type = String)]
    pub circuit: CircuitState,
    pub provider_chain: ChainReadiness,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn timed<F, E: std::fmt::Display>(fut: F) -> (Result<(), String>, u64)
where
    F: std::future::Future<Output = Result<(), E>>,
{
    let t = Instant::now();
    let r = match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    (r, t.elapsed().as_millis() as u64)
}

/// One provider's check from its health probe and its breaker.
fn link_check(
    link: &Link,
    probe: &Result<(), String>,
    latency_ms: u64,
    serving: bool,
) -> LinkCheck {
    let p = &link.provider;
    let circuit = p.circuit_state();
    let (status, detail) = match (probe, circuit) {
        (Ok(()), CircuitState::Closed) => ("ok", format!("{} {}", p.kind(), p.model())),
        (Ok(()), c) => (
            "degraded",
            format!("{} reachable but circuit is {c:?}", p.kind()),
        ),
        (Err(e), c) => (
            "failing",
            format!("{} unreachable ({e}); circuit {c:?}", p.kind()),
        ),
    };
    LinkCheck {
        name: link.name().to_string(),
        kind: p.kind().to_string(),
        model: p.model().to_string(),
        status,
        detail,
        latency_ms,
        circuit,
        serving,
    }
}

/// The `provider` check over every link: `ok` when all are, else `degraded` (the service
/// still answers what needs no model, and another link may serve). A single provider is
/// described as before chains existed; a chain names the serving link and the others'
/// trouble.
fn provider_check(links: &[LinkCheck], serving: Option<&str>, latency_ms: u64) -> Check {
    if let [only] = links {
        return Check {
            status: if only.status == "ok" {
                "ok"
            } else {
                "degraded"
            },
            detail: only.detail.clone(),
            latency_ms,
        };
    }
    let troubled: Vec<String> = links
        .iter()
        .filter(|l| l.status != "ok")
        .map(|l| format!("{}: {}", l.name, l.detail))
        .collect();
    let serving = match serving.and_then(|s| links.iter().find(|l| l.name == s)) {
        Some(l) => format!("serving: {} ({} {})", l.name, l.kind, l.model),
        None => "no provider of the chain is serving (every circuit is open)".to_string(),
    };
    Check {
        status: if troubled.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        detail: if troubled.is_empty() {
            serving
        } else {
            format!("{serving}; {}", troubled.join("; "))
        },
        latency_ms,
    }
}

/// Readiness: `ready`, `degraded` (200, serving with something missing: a provider down
/// while another serves, retrieval down) or `unavailable` (503: the database is down or
/// the process is shutting down).
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let providers = &state.engine.providers;
    let probes =
        futures::future::join_all(providers.links().iter().map(|l| timed(l.provider.health())));
    let ((db, db_ms), probes, (retr, retr_ms)) = tokio::join!(
        timed(state.db.ping()),
        probes,
        timed(async {
            match &state.settings.tools.retrieval_url {
                None => Ok::<(), String>(()),
                Some(url) => {
                    let resp = state
                        .http
                        .get(url.clone())
                        .timeout(CHECK_TIMEOUT)
                        .send()
                        .await
                        .map_err(|e| format!("{}", e.without_url()))?;
                    if resp.status().is_server_error() {
                        Err(format!("retrieval answered {}", resp.status()))
                    } else {
                        Ok(())
                    }
                }
            }
        }),
    );
    let service_chain = providers.service();
    let serving = service_chain.serving_name().map(str::to_string);
    let links: Vec<LinkCheck> = providers
        .links()
        .iter()
        .zip(&probes)
        .map(|(l, (probe, ms))| link_check(l, probe, *ms, serving.as_deref() == Some(l.name())))
        .collect();
    let prov_ms = probes.iter().map(|(_, ms)| *ms).max().unwrap_or(0);
    let circuit = service_chain.primary().provider.circuit_state();
    let db_check = match db {
        Ok(()) => Check {
            status: "ok",
            detail: state.db.backend().as_str().into(),
            latency_ms: db_ms,
        },
        Err(e) => Check {
            status: "failing",
            detail: format!("database: {e}"),
            latency_ms: db_ms,
        },
    };
    let provider_check = provider_check(&links, serving.as_deref(), prov_ms);
    let retrieval_check = match (&retr, &state.settings.tools.retrieval_url) {
        (Ok(()), None) => Check {
            status: "ok",
            detail: "built-in knowledge base".into(),
            latency_ms: retr_ms,
        },
        (Ok(()), Some(_)) => Check {
            status: "ok",
            detail: "external retrieval reachable".into(),
            latency_ms: retr_ms,
        },
        (Err(e), _) => Check {
            status: "degraded",
            detail: format!("retrieval unreachable: {e}; faq answers without it"),
            latency_ms: retr_ms,
        },
    };
    let shutting_down = state.shutdown.is_draining();
    let status = if shutting_down || db_check.status == "failing" {
        "unavailable"
    } else if provider_check.status != "ok" || retrieval_check.status != "ok" {
        "degraded"
    } else {
        "ready"
    };
    let code = if status == "unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut resp = (
        code,
        Json(Readiness {
            status,
            checks: Checks {
                database: db_check,
                provider: provider_check,
                retrieval: retrieval_check,
            },
            circuit,
            provider_chain: ChainReadiness {
                chain: service_chain.names(),
                serving,
                links,
            },
        }),
    )
        .into_response();
    if code == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(5u64));
    }
    resp
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for link in state.engine.providers.links() {
        let p = &link.provider;
        state
            .metrics
            .set_circuit(&p.dependency(), p.circuit_state().gauge());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
