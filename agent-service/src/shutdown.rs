//! The process's shutdown signal, in two steps: [`Stop::drain`] starts the drain window
//! (readiness turns unavailable and responses carry `Connection: close`, while everything
//! else keeps serving), [`Stop::stop`] starts shutdown proper. Any number of [`Shutdown`]
//! handles (cheap to clone) let background tasks, streams, `/readyz`, the connections and
//! the load shedder see it, by waiting ([`Shutdown::wait`]) or by asking
//! ([`Shutdown::is_draining`], [`Shutdown::is_stopping`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Starts shutdown for every [`Shutdown`] handle made from it.
#[derive(Debug)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    tx: watch::Sender<bool>,
}

/// A view of the shutdown signal. `is_stopping` and `is_draining` are one atomic load each
/// (the load shedder and every connection ask on every request); `wait` resolves once
/// shutdown has started.
#[derive(Debug, Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// A new signal, not yet stopping.
    pub fn new() -> (Stop, Shutdown) {
        let flag = Arc::new(AtomicBool::new(false));
        let draining = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(false);
        (
            Stop {
                flag: flag.clone(),
                draining: draining.clone(),
                tx,
            },
            Shutdown { flag, draining, rx },
        )
    }

    /// Whether shutdown has started.
    pub fn is_stopping(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Whether the drain window (or shutdown itself) has started: readiness is off and
    /// connections are closed after their current response.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Resolves once shutdown has started (or the [`Stop`] is gone).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

impl Stop {
    /// Starts the drain window: `is_draining` turns true; nothing stops yet.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Starts shutdown (and the drain, if it has not started); every handle sees it.
    /// Stopping twice changes nothing.
    pub fn stop(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.flag.store(true, Ordering::SeqCst);
        self.tx.send_replace(true);
    }

    /// Another handle on this signal.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            flag: self.flag.clone(),
            draining: self.draining.clone(),
            rx: self.tx.subscribe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_handle_sees_the_stop() {
        let (stop, shutdown) = Shutdown::new();
        let other = stop.subscribe();
        let copy = shutdown.clone();
        assert!(!shutdown.is_stopping());
        let waiting = tokio::spawn(async move { copy.wait().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "waits until stopped");
        stop.stop();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("woken")
            .expect("task");
        assert!(shutdown.is_stopping() && other.is_stopping());
        other.wait().await;
        stop.stop();
        assert!(shutdown.is_stopping());
    }

    #[tokio::test]
    async fn draining_comes_before_stopping() {
        let (stop, shutdown) = Shutdown::new();
        assert!(!shutdown.is_draining());
        stop.drain();
        assert!(shutdown.is_draining() && !shutdown.is_stopping());
        let waiting = tokio::spawn({
            let s = shutdown.clone();
            async move { s.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "draining is not stopping");
        stop.stop();
        waiting.await.expect("woken by the stop");
        let (stop, shutdown) = Shutdown::new();
        stop.stop();
        assert!(
            shutdown.is_draining(),
            "a stop without a drain window drains too"
        );
    }

    #[tokio::test]
    async fn a_dropped_stop_ends_the_wait() {
        let (stop, shutdown) = Shutdown::new();
        drop(stop);
        tokio::time::timeout(Duration::from_secs(1), shutdown.wait())
            .await
            .expect("no hang once nobody can stop it");
    }
}
