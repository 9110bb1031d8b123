//! The background trace writer: every [`FLUSH_INTERVAL`] it takes the finished traces off
//! the bounded channel and stores them in batches (up to [`BATCH_MAX`] traces per
//! transaction), then hands each batch to the OTLP exporter when one is configured. At
//! shutdown it keeps writing until no run is still recording and the channel is empty, so
//! traces of requests drained during the grace period are kept.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::otlp::{ExportQueue, Resource};
use super::{TraceRecord, TraceSink, repository};
use crate::config::Environment;
use crate::db::Db;
use crate::db::approvals::Release;

pub const BATCH_MAX: usize = 200;
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How often the shutdown drain looks for runs that are still recording.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// Consecutive idle polls (no open run, nothing queued) before the drain ends.
const DRAIN_IDLE_POLLS: u32 = 3;
const STORE_ATTEMPTS: u32 = 3;
const EXPORT_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The OTLP resource of a process running `release` in `environment`.
pub fn resource(release: &Release, environment: Environment) -> Resource {
    Resource {
        service_version: release.version.clone(),
        git_sha: release.git_sha.clone(),
        track: release.track.clone(),
        environment: match environment {
            Environment::Development => "development".into(),
            Environment::Production => "production".into(),
        },
    }
}

/// The OTLP exporter, when an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`) is configured.
pub fn exporter(
    endpoint: Option<&url::Url>,
    http: &reqwest::Client,
    resource: Resource,
) -> Option<ExportQueue> {
    endpoint.map(|endpoint| ExportQueue::spawn(http.clone(), endpoint, resource))
}

/// A writer started by a process without the HTTP server (e.g. `eval run`).
pub struct WriterHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl WriterHandle {
    /// Writes every trace still recording or queued, then stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts a writer for the traces of `sink`; `None` if one is already running.
pub fn spawn(db: Db, sink: TraceSink, exporter: Option<ExportQueue>) -> Option<WriterHandle> {
    let rx = sink.take_receiver()?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(write_until_stopped(db, sink, rx, exporter, async move {
        let _ = stop_rx.await;
    }));
    Some(WriterHandle {
        stop: stop_tx,
        task,
    })
}

/// Where batches go: the database, then the OTLP exporter.
struct Destination {
    db: Db,
    exporter: Option<ExportQueue>,
}

impl Destination {
    async fn write(&self, batch: Vec<TraceRecord>) {
        if store(&self.db, &batch).await
            && let Some(e) = &self.exporter
        {
            e.submit(batch);
        }
    }

    /// Writes everything queued right now, [`BATCH_MAX`] traces per transaction, without
    /// waiting for more. Returns how many traces it took and whether the channel is still
    /// open.
    async fn drain(&self, rx: &mut mpsc::Receiver<TraceRecord>) -> (usize, bool) {
        let mut taken = 0;
        loop {
            let mut batch = Vec::with_capacity(BATCH_MAX);
            let mut open = true;
            while batch.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(t) => batch.push(t),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let full = batch.len() == BATCH_MAX;
            taken += batch.len();
            if !batch.is_empty() {
                self.write(batch).await;
            }
            if !full || !open {
                return (taken, open);
            }
        }
    }
}

/// Stores and exports traces from `rx` until `stop` resolves and the drain is over.
///
/// The writer wakes on a timer ([`FLUSH_INTERVAL`]) rather than per trace: a request
/// hands its trace over without waking anyone, so recording costs no cross-thread
/// wake-up on the request path. Under load it is also woken once the channel is half
/// full ([`TraceSink::backlog`]), so a burst between two ticks is not dropped.
pub async fn write_until_stopped(
    db: Db,
    sink: TraceSink,
    mut rx: mpsc::Receiver<TraceRecord>,
    exporter: Option<ExportQueue>,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let dest = Destination { db, exporter };
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    while open {
        tokio::select! {
            biased;
            () = &mut stop => break,
            _ = tick.tick() => {}
            () = sink.backlog() => {}
        }
        open = dest.drain(&mut rx).await.1;
    }
    // Shutting down: requests still draining keep recording; write until they are done.
    let mut idle = 0;
    while open && idle < DRAIN_IDLE_POLLS {
        let (taken, still_open) = dest.drain(&mut rx).await;
        open = still_open;
        if taken > 0 || sink.open_runs() > 0 {
            idle = 0;
        } else {
            idle += 1;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    if let Some(e) = dest.exporter {
        e.close(EXPORT_CLOSE_WAIT).await;
    }
    let dropped = sink.dropped();
    if dropped > 0 {
        tracing::warn!(
            dropped_total = dropped,
            "trace writer stopped; some traces were dropped while it was behind"
        );
    }
}

/// Stores one batch, retrying a failed transaction; gives up (and logs) after
/// [`STORE_ATTEMPTS`] so the channel keeps moving.
async fn store(db: &Db, batch: &[TraceRecord]) -> bool {
    for attempt in 1..=STORE_ATTEMPTS {
        match repository::insert_batch(db, batch).await {
            Ok(()) => return true,
            Err(e) if attempt < STORE_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, traces = batch.len(), "storing traces failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) => {
                tracing::error!(error = %e, traces = batch.len(), "storing traces failed; this batch is lost");
            }
        }
    }
    false
}
