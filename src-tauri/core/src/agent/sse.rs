//! A Server-Sent Events decoder (the WHATWG event-stream format): bytes in, events out,
//! however the bytes are split across network reads.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen on the stream so far (ids persist across events).
    pub id: Option<String>,
    /// A `retry:` the server asked for, in milliseconds.
    pub retry_ms: Option<u64>,
}

/// Incremental decoder; keeps partial lines between calls.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    last_id: Option<String>,
    retry_ms: Option<u64>,
    /// Whether any byte (a comment, a keep-alive) arrived since the last call of
    /// [`SseDecoder::take_activity`].
    activity: bool,
    bom_checked: bool,
    after_cr: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id to resume from (`Last-Event-ID`).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Starts with a known last id (after a reconnect).
    pub fn with_last_id(last_id: Option<String>) -> Self {
        Self {
            last_id,
            ..Self::default()
        }
    }

    pub fn take_activity(&mut self) -> bool {
        std::mem::take(&mut self.activity)
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        if !bytes.is_empty() {
            self.activity = true;
        }
        self.buf.extend_from_slice(bytes);
        if !self.bom_checked && self.buf.len() >= 3 {
            if self.buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.buf.drain(..3);
            }
            self.bom_checked = true;
        }
        let mut out = Vec::new();
        loop {
            // A \n right after a \r that ended the previous line belongs to it.
            if self.after_cr && !self.buf.is_empty() {
                if self.buf[0] == b'\n' {
                    self.buf.remove(0);
                }
                self.after_cr = false;
            }
            // A line ends at \n, \r\n, or a lone \r.
            let Some(pos) = self.buf.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                break;
            };
            let cr = self.buf[pos] == b'\r';
            let line: Vec<u8> = self.buf.drain(..=pos).take(pos).collect();
            self.after_cr = cr;
            let line = String::from_utf8_lossy(&line);
            if let Some(ev) = self.line(&line) {
                out.push(ev);
            }
        }
        out
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                data,
                id: self.last_id.clone(),
                retry_ms: self.retry_ms,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &str, piece: usize) -> Vec<(String, String, Option<String>)> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in input.as_bytes().chunks(piece) {
            out.extend(d.push(chunk).into_iter().map(|e| (e.event, e.data, e.id)));
        }
        out
    }

    #[test]
    fn events_survive_any_split() {
        let stream = "\u{feff}: keep-alive\n\nid: 7\nevent: created\ndata: {\"a\":\ndata:1}\n\n\
                      event: approved\r\ndata: é\r\n\r\nretry: 3000\rdata: plain\r\r";
        let want = vec![
            (
                "created".to_string(),
                "{\"a\":\n1}".to_string(),
                Some("7".to_string()),
            ),
            (
                "approved".to_string(),
                "é".to_string(),
                Some("7".to_string()),
            ),
            (
                "message".to_string(),
                "plain".to_string(),
                Some("7".to_string()),
            ),
        ];
        for piece in [1, 2, 3, 5, 7, 64, 4096] {
            assert_eq!(decode_in_pieces(stream, piece), want, "pieces of {piece}");
        }
    }

    #[test]
    fn fields_without_data_dispatch_nothing() {
        let mut d = SseDecoder::with_last_id(Some("3".into()));
        assert!(d.push(b"event: x\nid: 4\n\n").is_empty());
        assert_eq!(d.last_id(), Some("4"));
        assert!(d.take_activity());
        assert!(!d.take_activity());
        let ev = d.push(b"data\n\n");
        assert_eq!(ev[0].data, "");
        assert_eq!(ev[0].id.as_deref(), Some("4"));
    }
}
