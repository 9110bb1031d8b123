//! The process's shutdown signal: one [`Stop`] starts shutdown; any number of
//! [`Shutdown`] handles (cheap to clone) let background tasks, streams and the load
//! shedder see it, by waiting ([`Shutdown::wait`]) or by asking ([`Shutdown::is_stopping`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Starts shutdown for every [`Shutdown`] handle made from it.
#[derive(Debug)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    tx: watch::Sender<bool>,
}

/// A view of the shutdown signal. `is_stopping` is one atomic load (the load shedder asks
/// on every request); `wait` resolves once shutdown has started.
#[derive(Debug, Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// A new signal, not yet stopping.
    pub fn new() -> (Stop, Shutdown) {
        let flag = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(false);
        (
            Stop {
                flag: flag.clone(),
                tx,
            },
            Shutdown { flag, rx },
        )
    }

    /// Whether shutdown has started.
    pub fn is_stopping(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown has started (or the [`Stop`] is gone).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}

impl Stop {
    /// Starts shutdown; every handle sees it. Stopping twice changes nothing.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.tx.send_replace(true);
    }

    /// Another handle on this signal.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            flag: self.flag.clone(),
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
    async fn a_dropped_stop_ends_the_wait() {
        let (stop, shutdown) = Shutdown::new();
        drop(stop);
        tokio::time::timeout(Duration::from_secs(1), shutdown.wait())
            .await
            .expect("no hang once nobody can stop it");
    }
}
