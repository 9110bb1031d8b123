//! One client connection's transport under hyper: the deadlines of its reads, and the error
//! envelope on the responses hyper writes by itself.
//!
//! **Deadlines.** A request head must arrive within `HEADER_READ_TIMEOUT_SECS`, counted
//! from the connection's accept or from the first byte after an idle period; an idle
//! keep-alive connection is closed after `KEEP_ALIVE_TIMEOUT_SECS`. While a request is
//! being served no read deadline applies (its body has its own, `routes::body`). hyper's
//! own `header_read_timeout` would also close idle keep-alive connections at the header
//! timeout (it starts when hyper waits for the next head), which races a balancer's
//! reuse of its idle connections; here the two are apart. The service tells the reader
//! when a request starts and ends through an [`Exchange`].
//!
//! **Envelopes.** When a request cannot be parsed (a NUL in a header value, a raw space in
//! the path, more than 100 headers, a head over the size limit), hyper answers it itself
//! with a body-less 400/431/414 and closes the connection; there is no hook for that
//! response. Every response the router produces carries `x-request-id` (the request-id
//! middleware is outermost), so a 4xx/5xx head written without one is hyper's own: the
//! transport replaces it with the JSON envelope (same status, a generated request id,
//! `Connection: close`). hyper writes a head as one contiguous buffer at the start of a
//! write (the first slice of a vectored write), so it is seen whole.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::error::ErrorCode;
use crate::routes::error::{ErrorBody, ErrorEnvelope};

/// The read deadlines of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From the first byte of a request head (or the accept) to its end.
    pub header: Duration,
    /// How long a connection may sit idle between requests.
    pub keep_alive: Duration,
}

/// Whether the connection's service is serving a request, shared by the service (which
/// starts and ends requests) and the transport (which picks its read deadline from it).
#[derive(Debug, Default)]
pub struct Exchange {
    serving: AtomicBool,
    /// How many requests have ended; a change starts a new idle period.
    ended: AtomicU64,
}

impl Exchange {
    /// A request has been read and is being served; ends when the guard is dropped (with
    /// the response body, or with the service future if no response was made).
    pub fn begin(self: &Arc<Self>) -> ExchangeGuard {
        self.serving.store(true, Ordering::Release);
        ExchangeGuard(self.clone())
    }

    fn end(&self) {
        self.serving.store(false, Ordering::Release);
        self.ended.fetch_add(1, Ordering::Release);
    }
}

/// Ends the request it was made for when dropped.
#[derive(Debug)]
pub struct ExchangeGuard(Arc<Exchange>);

impl Drop for ExchangeGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// What the transport is waiting for, and so which deadline applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// The rest of a request head (or the first byte of the first one).
    Head,
    /// The next request on a keep-alive connection.
    Idle,
    /// Nothing: a request is being served.
    Serving,
}

/// A connection's transport: reads under the current deadline, writes with hyper's own
/// error responses replaced by envelopes.
pub struct ConnIo<T> {
    inner: T,
    deadlines: Deadlines,
    exchange: Arc<Exchange>,
    waiting: Waiting,
    /// `exchange.ended` when the current idle period started.
    seen_ended: u64,
    timer: Pin<Box<Sleep>>,
    /// An envelope that replaced hyper's response, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> ConnIo<T> {
    pub fn new(inner: T, deadlines: Deadlines, exchange: Arc<Exchange>) -> Self {
        Self {
            inner,
            deadlines,
            exchange,
            waiting: Waiting::Head,
            seen_ended: 0,
            timer: Box::pin(tokio::time::sleep(deadlines.header)),
            replacement: None,
        }
    }

    /// Moves to the deadline the exchange's state calls for.
    fn follow_exchange(&mut self) {
        if self.exchange.serving.load(Ordering::Acquire) {
            self.waiting = Waiting::Serving;
            return;
        }
        let ended = self.exchange.ended.load(Ordering::Acquire);
        if self.waiting == Waiting::Serving || ended != self.seen_ended {
            self.seen_ended = ended;
            self.waiting = Waiting::Idle;
            self.timer
                .as_mut()
                .reset(Instant::now() + self.deadlines.keep_alive);
        }
    }
}

impl<T: AsyncWrite + Unpin> ConnIo<T> {
    /// Writes what is left of a replacement envelope.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            if *written == bytes.len() {
                self.replacement = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes hyper's `claimed` bytes as written and queues `envelope` in their place.
    fn replace(&mut self, cx: &mut Context<'_>, envelope: Vec<u8>, claimed: usize) -> usize {
        self.replacement = Some((envelope, 0));
        // Best effort now; the rest goes out on the next write, flush or shutdown.
        let _ = self.poll_replacement(cx);
        claimed
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ConnIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.follow_exchange();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.waiting == Waiting::Idle && buf.filled().len() > before {
                    this.waiting = Waiting::Head;
                    this.timer
                        .as_mut()
                        .reset(Instant::now() + this.deadlines.header);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.waiting != Waiting::Serving && this.timer.as_mut().poll(cx).is_ready() {
                    let what = match this.waiting {
                        Waiting::Head => {
                            "the request head did not arrive within HEADER_READ_TIMEOUT_SECS"
                        }
                        _ => "the connection was idle for KEEP_ALIVE_TIMEOUT_SECS",
                    };
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ConnIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if let Some(envelope) = envelope_for_bare_error(buf) {
            return Poll::Ready(Ok(this.replace(cx, envelope, buf.len())));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(envelope) = envelope_for_bare_error(first)
        {
            let claimed = bufs.iter().map(|b| b.len()).sum();
            return Poll::Ready(Ok(this.replace(cx, envelope, claimed)));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// If `buf` starts with a whole 4xx/5xx response head that has no `x-request-id` (one
/// hyper wrote by itself), the envelope response that replaces it.
pub fn envelope_for_bare_error(buf: &[u8]) -> Option<Vec<u8>> {
    // "HTTP/1.x NNN": the cheap test every response write passes through.
    if buf.len() < 12
        || !buf.starts_with(b"HTTP/1.")
        || buf[8] != b' '
        || !matches!(buf[9], b'4' | b'5')
    {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    let mut date = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("x-request-id") {
            return None;
        }
        if name.eq_ignore_ascii_case("date") {
            date = Some(value.trim());
        }
    }
    let (code, message) = match status {
        431 => (
            ErrorCode::HeadersTooLarge,
            "the request has too many headers (more than 100) or too large a head; nothing was processed",
        ),
        414 => (
            ErrorCode::UriTooLong,
            "the request target is too long; nothing was processed",
        ),
        500..=599 => (
            ErrorCode::Internal,
            "the connection failed before the request could be routed",
        ),
        _ => (
            ErrorCode::MalformedRequest,
            "the request is not valid HTTP/1.1 (its request line, path or a header holds \
             characters HTTP does not allow); nothing was processed",
        ),
    };
    let request_id = crate::request_id::accept(None);
    tracing::debug!(%request_id, status, code = code.as_str(), "request refused before routing");
    let body = serde_json::to_vec(&ErrorEnvelope {
        error: ErrorBody {
            code,
            message: message.into(),
            request_id: request_id.clone(),
        },
    })
    .ok()?;
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(status_line.as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\nx-request-id: ");
    out.extend_from_slice(request_id.as_bytes());
    out.extend_from_slice(b"\r\nconnection: close\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    if let Some(date) = date {
        out.extend_from_slice(b"\r\ndate: ");
        out.extend_from_slice(date.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(resp: &[u8]) -> (String, serde_json::Value) {
        let text = String::from_utf8(resp.to_vec()).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        (head.to_string(), serde_json::from_str(body).expect("JSON"))
    }

    #[test]
    fn hyper_error_heads_become_envelopes() {
        for (head, status, code) in [
            (
                "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT\r\n\r\n",
                "400",
                "malformed_request",
            ),
            (
                "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n",
                "431",
                "headers_too_large",
            ),
            ("HTTP/1.0 414 URI Too Long\r\n\r\n", "414", "uri_too_long"),
        ] {
            let out = envelope_for_bare_error(head.as_bytes()).expect(head);
            let (new_head, body) = split(&out);
            assert!(
                new_head.starts_with(head.lines().next().unwrap()),
                "{new_head}"
            );
            assert!(new_head.contains("\r\nconnection: close"), "{new_head}");
            assert!(new_head.contains("\r\ncontent-type: application/json"));
            let rid = body["error"]["request_id"].as_str().expect("id");
            assert!(
                new_head.contains(&format!("\r\nx-request-id: {rid}")),
                "{new_head}"
            );
            let len: usize = new_head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.parse().ok())
                .expect("length");
            assert_eq!(len, out.len() - new_head.len() - 4);
            assert_eq!(body["error"]["code"], code, "{status}");
            if head.contains("date:") {
                assert!(new_head.contains("\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT"));
            }
        }
    }

    #[test]
    fn responses_of_the_app_and_other_bytes_pass() {
        for bytes in [
            "HTTP/1.1 400 Bad Request\r\nx-request-id: abc\r\ncontent-length: 2\r\n\r\n{}",
            "HTTP/1.1 404 Not Found\r\nX-Request-Id: abc\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            "{\"HTTP/1.1 400\": 1}",
            "1a\r\nHTTP/1.1 400 Bad Request\r\n\r\n",
        ] {
            assert!(
                envelope_for_bare_error(bytes.as_bytes()).is_none(),
                "{bytes}"
            );
        }
    }
}
