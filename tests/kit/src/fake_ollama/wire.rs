//! Wire helpers shared by the Ollama and OpenAI-compatible handlers: error bodies, text
//! pieces, token estimates, and streamed bodies paced and framed as the mode says.

use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Mode;
use super::state::Shared;

/// The behaviour settings a handler needs, read once per request.
pub(crate) struct Settings {
    pub mode: Mode,
    pub chunk_chars: Option<usize>,
    pub frame_bytes: Option<usize>,
}

impl Settings {
    pub fn read(shared: &Shared) -> Self {
        shared.with(|s| Self {
            mode: s.mode.clone(),
            chunk_chars: s.chunk_chars,
            frame_bytes: s.frame_bytes,
        })
    }

    pub fn between_chunks(&self) -> Duration {
        match self.mode {
            Mode::Slow {
                between_chunks_ms, ..
            } => Duration::from_millis(between_chunks_ms),
            _ => Duration::ZERO,
        }
    }

    /// The message of an error that strikes before the first byte of the answer
    /// (`error_after` with `chunks: 0`): the handler answers HTTP 500 with a JSON body.
    pub fn error_before_first_byte(&self) -> Option<&str> {
        match &self.mode {
            Mode::ErrorAfter { chunks: 0, message } => Some(message),
            _ => None,
        }
    }

    /// Arranges the lines of a stream as the mode says: `content` lines count as chunks,
    /// `tail` lines (final line, usage, `[DONE]`) follow them.
    pub fn shape(
        &self,
        content: Vec<String>,
        tail: Vec<String>,
        error_line: impl FnOnce(&str) -> String,
        malformed_line: String,
    ) -> Vec<String> {
        match &self.mode {
            Mode::ErrorAfter { chunks, message } => {
                let mut lines: Vec<String> = content.into_iter().take(*chunks).collect();
                lines.push(error_line(message));
                lines
            }
            Mode::Malformed { after_chunks } => {
                let at = (*after_chunks).min(content.len());
                let mut lines = content;
                lines.insert(at, malformed_line);
                lines.extend(tail);
                lines
            }
            _ => content.into_iter().chain(tail).collect(),
        }
    }
}

/// Ollama's error body: `{"error": "…"}`.
pub(crate) fn ollama_error(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// The OpenAI-compatible error body Ollama sends on `/v1/*`.
pub(crate) fn openai_error(status: u16, message: &str) -> Response {
    json_response(status, &openai_error_body(status, message))
}

pub(crate) fn openai_error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        404 => "not_found_error",
        _ => "api_error",
    };
    json!({ "error": { "message": message, "type": kind, "param": null, "code": null } })
}

pub(crate) fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// A body that is cut short, for the malformed mode on non-streaming requests.
pub(crate) fn truncated_json(body: &Value) -> Response {
    let text = body.to_string();
    let cut = text.len() / 2;
    let cut = (0..=cut)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        text[..cut].to_string(),
    )
        .into_response()
}

/// The request body as JSON, or Ollama's 400 answer.
pub(crate) fn parse_body(body: &Bytes) -> Result<Value, String> {
    if body.is_empty() {
        return Err("missing request body".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))
}

/// Reply text as streamed: pieces of `chunk_chars` characters, or word pieces like real
/// tokens (`"Hello"`, `" world"`).
pub(crate) fn pieces(text: &str, chunk_chars: Option<usize>) -> Vec<String> {
    match chunk_chars {
        Some(n) => {
            let chars: Vec<char> = text.chars().collect();
            chars.chunks(n).map(|c| c.iter().collect()).collect()
        }
        None => {
            let mut out: Vec<String> = Vec::new();
            let mut current = String::new();
            let mut prev_space = false;
            for c in text.chars() {
                let space = c.is_whitespace();
                if space
                    && !prev_space
                    && !current.is_empty()
                    && !current.chars().all(char::is_whitespace)
                {
                    out.push(std::mem::take(&mut current));
                }
                current.push(c);
                prev_space = space;
            }
            if !current.is_empty() {
                out.push(current);
            }
            out
        }
    }
}

/// About four characters a token, at least one for non-empty text.
pub(crate) fn estimate_tokens(text: &str) -> u32 {
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    chars.div_ceil(4).max(u32::from(!text.is_empty()))
}

/// The prompt tokens of a chat request: the estimate over all message contents.
pub(crate) fn prompt_tokens(messages: &[Value]) -> u32 {
    messages
        .iter()
        .map(|m| estimate_tokens(m["content"].as_str().unwrap_or("")))
        .sum()
}

/// The content of the last `user` message.
pub(crate) fn last_user_message(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A stable sha256-looking digest for a model name (64 hex characters).
pub(crate) fn digest(name: &str) -> String {
    (0u8..4)
        .map(|salt| {
            let mut h = DefaultHasher::new();
            (salt, name).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// A streamed 200 response: `lines` (each with its terminator) written one by one,
/// `between` apart, each in frames of at most `frame_bytes` bytes when set.
pub(crate) fn stream_response(
    lines: Vec<String>,
    content_type: &'static str,
    between: Duration,
    frame_bytes: Option<usize>,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        for (i, line) in lines.into_iter().enumerate() {
            if i > 0 && !between.is_zero() {
                tokio::time::sleep(between).await;
            }
            let frames: Vec<Bytes> = match frame_bytes {
                Some(n) => line
                    .as_bytes()
                    .chunks(n)
                    .map(Bytes::copy_from_slice)
                    .collect(),
                None => vec![Bytes::from(line)],
            };
            let split = frames.len() > 1;
            for frame in frames {
                // The client went away: stop producing.
                if tx.send(Ok(frame)).await.is_err() {
                    return;
                }
                if split {
                    // Give each frame its own write so the client sees the line in pieces.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_pieces_keep_leading_spaces_like_tokens() {
        assert_eq!(
            pieces("Hello big  world", None),
            ["Hello", " big", "  world"]
        );
        assert_eq!(pieces(" lead", None), [" lead"]);
        assert_eq!(pieces("", None), Vec::<String>::new());
    }

    #[test]
    fn char_pieces_split_by_characters_not_bytes() {
        assert_eq!(pieces("héllo", Some(2)), ["hé", "ll", "o"]);
    }

    #[test]
    fn digest_is_stable_hex() {
        let d = digest("llama3.2:latest");
        assert_eq!(d.len(), 64);
        assert_eq!(d, digest("llama3.2:latest"));
        assert!(d.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
