//! What the fake servers share: serving an axum app until a shutdown flag flips, and (for
//! their binaries) waiting for a stop signal.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An axum app served on a bound port by a background task.
pub(crate) struct Server {
    pub addr: SocketAddr,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves `app` until `stopped` turns true
    /// or its sender is gone (both mean stop).
    pub async fn start(
        addr: SocketAddr,
        app: axum::Router,
        mut stopped: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Self {
            addr,
            task: Some(task),
        })
    }

    /// Waits for the serving task to end (after the flag flipped): the port is closed.
    pub async fn join(&mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: when the `fake-*` binaries stop.
pub async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
