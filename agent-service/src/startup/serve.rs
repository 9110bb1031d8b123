//! The accept loop: every connection is served by hyper's HTTP/1.1 connection over a
//! [`ConnIo`] (read deadlines, envelopes for hyper's own error responses), with the router
//! as its service. While the process drains, every response carries `Connection: close`,
//! so keep-alive clients reconnect (elsewhere, once balancers have seen `/readyz`). When
//! shutdown starts the loop stops accepting and each connection shuts down gracefully:
//! idle ones close, busy ones close after their current response.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::connection::{ConnIo, Deadlines, Exchange, ExchangeGuard};
use crate::shutdown::Shutdown;

/// The most bytes a request head (request line and headers) may have; more is a 431.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// A response body that ends its request's exchange when hyper is done with it.
struct ExchangeBody {
    inner: Body,
    _guard: ExchangeGuard,
}

impl http_body::Body for ExchangeBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves one request of a connection through the router.
async fn handle(
    router: Router,
    exchange: Arc<Exchange>,
    shutdown: Shutdown,
    req: Request<Incoming>,
) -> Result<Response<ExchangeBody>, Infallible> {
    let guard = exchange.begin();
    let mut resp = router.oneshot(req.map(Body::new)).await?;
    if shutdown.is_draining() {
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(resp.map(|inner| ExchangeBody {
        inner,
        _guard: guard,
    }))
}

/// Accepts connections until shutdown starts; each is watched by `graceful`, which the
/// caller shuts down (and waits for) afterwards.
pub async fn accept_until_stopped(
    listener: &TcpListener,
    router: Router,
    deadlines: Deadlines,
    shutdown: Shutdown,
    graceful: &GracefulShutdown,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_header_size(MAX_HEAD_BYTES);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.wait() => return,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // The client gave up between its SYN and our accept: nothing to do.
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    continue;
                }
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let exchange = Arc::new(Exchange::default());
        let io = TokioIo::new(ConnIo::new(stream, deadlines, exchange.clone()));
        let service = {
            let router = router.clone();
            let shutdown = shutdown.clone();
            hyper::service::service_fn(move |req| {
                handle(router.clone(), exchange.clone(), shutdown.clone(), req)
            })
        };
        let conn = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
