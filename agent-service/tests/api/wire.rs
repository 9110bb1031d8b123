//! Raw HTTP/1.1 over TCP, for what an HTTP client library will not send: half-sent heads,
//! stalled bodies, NUL bytes in headers, raw spaces in paths, too many headers.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response as read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {:?}",
                self.headers,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the error envelope: status, code, and the request id in header and body.
    pub fn assert_envelope(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.len() > 10, "a sentence: {body}");
        let rid = body["error"]["request_id"]
            .as_str()
            .expect("request_id")
            .to_string();
        assert!(!rid.is_empty(), "{body}");
        assert_eq!(self.header("x-request-id"), Some(rid.as_str()), "{self:?}");
        rid
    }
}

/// `host:port` of a base URL like `http://127.0.0.1:PORT`.
pub fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Connects and writes `bytes`.
pub async fn send(base: &str, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr(base)).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    s
}

/// Reads one response (head, then a body of its Content-Length), within `within`.
pub async fn read_response(s: &mut TcpStream, within: Duration) -> Option<RawResponse> {
    tokio::time::timeout(within, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.get(9..12)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(RawResponse {
            status,
            headers,
            body,
        })
    })
    .await
    .ok()
    .flatten()
}

/// Reads (and drops) until the server closes the connection; how long that took from
/// `since`, or `None` if it was still open after `within`.
pub async fn closed_after(s: &mut TcpStream, since: Instant, within: Duration) -> Option<Duration> {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}
