//! The dispatcher: a background task that fans outbox events out to their receivers, one
//! queued delivery (a `notify` job) per event and subscribed receiver, and wakes a job
//! worker when it queued any. Several processes may run it on one database: each event is
//! fanned out once ([`crate::db::notifications::dispatch`]).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::db::Db;
use crate::db::notifications as store;
use crate::shutdown::Shutdown;

/// How often the outbox is looked at.
const POLL: Duration = Duration::from_millis(500);
/// Events fanned out per transaction.
const BATCH: i64 = 100;

/// What the dispatcher needs.
pub struct Context {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Attempts of each delivery (`NOTIFY_MAX_ATTEMPTS`).
    pub max_attempts: i64,
    /// Wakes a job worker: deliveries were queued.
    pub wake: Box<dyn Fn() + Send + Sync>,
    pub stop: Shutdown,
}

/// Fans out due events until shutdown.
pub async fn run(ctx: Context) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.stop.wait() => break,
        }
        loop {
            let now = ctx.clock.now().timestamp_millis();
            match store::dispatch(&ctx.db, now, BATCH, ctx.max_attempts).await {
                Ok(done) => {
                    let deliveries: usize = done.iter().map(|d| d.deliveries).sum();
                    for d in &done {
                        tracing::info!(
                            event_id = %d.event.id,
                            kind = %d.event.kind,
                            deliveries = d.deliveries,
                            "notification dispatched"
                        );
                    }
                    if deliveries > 0 {
                        (ctx.wake)();
                    }
                    if (done.len() as i64) < BATCH || ctx.stop.is_stopping() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dispatching notifications failed; will retry");
                    break;
                }
            }
        }
    }
}
