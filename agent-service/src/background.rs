//! Background tasks that run beside the HTTP server. Each one is handed what it needs (a
//! context struct per task group, or its few dependencies) and a [`Shutdown`] handle, and
//! returns once shutdown starts; the server waits for them (within the grace period)
//! before closing the database.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::budget::UsageLedger;
use crate::clock::Clock;
use crate::routes::AppState;
use crate::shutdown::Shutdown;
use crate::traces::writer;

/// How often each process looks for expired budget reservations.
const RESERVATION_SWEEP: Duration = Duration::from_secs(5);

/// Starts every background task of a serving process.
pub fn spawn_all(state: &AppState) -> Vec<JoinHandle<()>> {
    let engine = &state.engine;
    let settings = &state.settings;
    let stop = &state.shutdown;
    let mut tasks = vec![tokio::spawn(reservation_sweeper(
        engine.ledger.clone(),
        engine.clock.clone(),
        stop.clone(),
    ))];
    // The key was checked when the settings loaded; a failure here is logged, and every
    // delivery then fails with the reason.
    let secrets = settings
        .notify
        .notify_secret_key
        .as_ref()
        .and_then(|k| match crate::notify::seal::SecretBox::new(k) {
            Ok(b) => Some(Arc::new(b)),
            Err(e) => {
                tracing::error!(error = %e, "NOTIFY_SECRET_KEY is not usable; notifications cannot be delivered");
                None
            }
        });
    tasks.extend(crate::jobs::spawn_tasks(Arc::new(crate::jobs::Context {
        db: state.db.clone(),
        engine: engine.clone(),
        queue: state.jobs.clone(),
        metrics: state.metrics.clone(),
        workflows: state.workflows.clone(),
        config: settings.jobs.clone(),
        grace: Duration::from_secs(settings.server.shutdown_grace_secs),
        stop: stop.clone(),
        notify: settings.notify.clone(),
        secrets,
    })));
    let queue = state.jobs.clone();
    tasks.push(tokio::spawn(crate::notify::dispatch::run(
        crate::notify::dispatch::Context {
            db: state.db.clone(),
            clock: engine.clock.clone(),
            max_attempts: i64::from(settings.notify.notify_max_attempts),
            wake: Box::new(move || queue.wake_worker()),
            stop: stop.clone(),
        },
    )));
    tasks.push(tokio::spawn(crate::notify::watch::run(
        crate::notify::watch::Context {
            db: state.db.clone(),
            clock: engine.clock.clone(),
            metrics: state.metrics.clone(),
            budgets: settings.budgets.clone(),
            quality: settings.quality.clone(),
            instance: format!(
                "pid{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            stop: stop.clone(),
        },
    )));
    tasks.push(tokio::spawn(crate::approvals::sweeper::run(
        engine.approvals.clone(),
        Duration::from_secs(settings.approvals.approval_sweep_secs),
        Duration::from_secs(settings.notify.notify_approval_warning_secs),
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

/// Charges and removes expired budget reservations (those of runs whose process died
/// before settling) every few seconds.
async fn reservation_sweeper(ledger: Arc<UsageLedger>, clock: Arc<dyn Clock>, stop: Shutdown) {
    // The first sweep one period after start: a process that just started holds no
    // reservation, and its first requests need the pool's connections more.
    let start = tokio::time::Instant::now() + RESERVATION_SWEEP;
    let mut tick = tokio::time::interval_at(start, RESERVATION_SWEEP);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait() => break,
        }
        match ledger.sweep(clock.now().timestamp_millis()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                reservations = n,
                "charged expired budget reservations in full: their runs' process stopped before settling"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "sweeping expired budget reservations failed; will retry")
            }
        }
    }
}
