//! Background tasks that run beside the HTTP server. Each one watches `state.shutdown`
//! and returns once it flips to `true`; the server waits for them (within the grace
//! period) before closing the database.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::startup::AppState;

/// Starts every background task of a serving process.
pub fn spawn_all(state: &AppState) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(usage_flusher(state.clone()))];
    tasks.extend(crate::jobs::spawn_tasks(state));
    tasks.push(tokio::spawn(crate::approvals::sweeper(state.clone())));
    tasks.push(tokio::spawn(crate::traces::writer::run(state.clone())));
    tasks.push(tokio::spawn(crate::traces::retention::run(state.clone())));
    tasks.push(tokio::spawn(crate::evals::worker::run(state.clone())));
    tasks
}

/// Resolves when the process starts shutting down.
pub async fn stopping(state: &AppState) {
    let mut rx = state.shutdown.clone();
    let _ = rx.wait_for(|s| *s).await;
}

/// Flushes per-tenant usage every second, and once more at shutdown.
async fn usage_flusher(state: AppState) {
    let ledger = state.engine.ledger.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping(&state) => break,
        }
        if let Err(e) = ledger.flush().await {
            tracing::warn!(error = %e, "flushing tenant usage failed; will retry");
        }
    }
    if let Err(e) = ledger.flush().await {
        tracing::warn!(error = %e, "final usage flush failed");
    }
}
