//! Liveness, readiness with per-dependency checks, and the Prometheus exposition.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use tokio::time::Instant;

use super::AppState;
use crate::providers::CircuitState;

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

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (still serving) or `unavailable`.
    pub status: &'static str,
    pub checks: Checks,
    /// `closed`, `open` or `half_open`.
    #[schema(value_type = String)]
    pub circuit: CircuitState,
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

/// Readiness: `ready`, `degraded` (200, serving with something missing) or
/// `unavailable` (503: the database is down or the process is shutting down).
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let provider = &state.engine.provider;
    let ((db, db_ms), (prov, prov_ms), (retr, retr_ms)) = tokio::join!(
        timed(state.db.ping()),
        timed(provider.health()),
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
    let circuit = provider.circuit_state();
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
    let provider_check = match (&prov, circuit) {
        (Ok(()), CircuitState::Closed) => Check {
            status: "ok",
            detail: format!("{} {}", provider.kind(), provider.model()),
            latency_ms: prov_ms,
        },
        (Ok(()), c) => Check {
            status: "degraded",
            detail: format!("{} reachable but circuit is {c:?}", provider.kind()),
            latency_ms: prov_ms,
        },
        (Err(e), c) => Check {
            status: "degraded",
            detail: format!("{} unreachable ({e}); circuit {c:?}", provider.kind()),
            latency_ms: prov_ms,
        },
    };
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
    let shutting_down = state.shutdown.is_stopping();
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
    state.metrics.set_circuit(
        "provider",
        match state.engine.provider.circuit_state() {
            CircuitState::Closed => crate::metrics::CIRCUIT_CLOSED,
            CircuitState::HalfOpen => crate::metrics::CIRCUIT_HALF_OPEN,
            CircuitState::Open => crate::metrics::CIRCUIT_OPEN,
        },
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
