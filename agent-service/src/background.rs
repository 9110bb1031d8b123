//! Background tasks that run beside the HTTP server. Each one is handed what it needs (a
//! context struct per task group, or its few dependencies) and a [`Shutdown`] handle, and
//! returns once shutdown starts; the server waits for them (within the grace period)
//! before closing the database.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::budget::UsageLedger;
use crate::routes::AppState;
use crate::shutdown::Shutdown;
use crate::traces::writer;

/// Starts every background task of a serving process.
pub fn spawn_all(state: &AppState) -> Vec<JoinHandle<()>> {
    let engine = &state.engine;
    let settings = &state.settings;
    let stop = &state.shutdown;
    let mut tasks = vec![tokio::spawn(usage_flusher(
        engine.ledger.clone(),
        stop.clone(),
    ))];
    tasks.extend(crate::jobs::spawn_tasks(Arc::new(crate::jobs::Context {
        db: state.db.clone(),
        engine: engine.clone(),
        queue: state.jobs.clone(),
        metrics: state.metrics.clone(),
        workflows: state.workflows.clone(),
        config: settings.jobs.clone(),
        grace: Duration::from_secs(settings.server.shutdown_grace_secs),
        stop: stop.clone(),
    })));
    tasks.push(tokio::spawn(crate::approvals::sweeper::run(
        engine.approvals.clone(),
        Duration::from_secs(settings.approvals.approval_sweep_secs),
        stop.clone(),
    )));
    match engine.traces.take_receiver() {
        Some(rx) => {
            let exporter = writer::exporter(
                settings.traces.otel_exporter_otlp_endpoint.as_ref(),
                &state.http,
                writer::resource(&engine.release, settings.server.environment),
            );
            let stop = stop.clone();
            tasks.push(tokio::spawn(writer::write_until_stopped(
                state.db.clone(),
                engine.traces.clone(),
                rx,
                exporter,
                async move { stop.wait().await },
            )));
        }
        None => {
            tracing::warn!("the trace writer is already running; not starting a second one")
        }
    }
    tasks.push(tokio::spawn(crate::traces::retention::run(
        state.db.clone(),
        engine.clock.clone(),
        settings.traces.trace_retention_days,
        stop.clone(),
    )));
    tasks.push(tokio::spawn(crate::evals::worker::run(
        crate::evals::worker::Context {
            settings: settings.clone(),
            policy: engine.policy.clone(),
            db: state.db.clone(),
            http: state.http.clone(),
            traces: engine.traces.clone(),
            workflows: state.workflows.clone(),
            versions: crate::evals::result::Versions::from_info(&state.info),
            wakeup: state.eval_wakeup.clone(),
            stop: stop.clone(),
        },
    )));
    tasks
}

/// Flushes per-tenant usage every second, and once more at shutdown.
async fn usage_flusher(ledger: Arc<UsageLedger>, stop: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait() => break,
        }
        if let Err(e) = ledger.flush().await {
            tracing::warn!(error = %e, "flushing tenant usage failed; will retry");
        }
    }
    if let Err(e) = ledger.flush().await {
        tracing::warn!(error = %e, "final usage flush failed");
    }
}
