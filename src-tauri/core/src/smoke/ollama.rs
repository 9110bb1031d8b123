//! A small client for Ollama's native API as the smoke suite needs it: `/api/version`,
//! `/api/tags`, `/api/show`, `/api/ps`, `/api/pull` (NDJSON progress) and streaming
//! `/api/chat` with time-to-first-token measured on the wire.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent::error_from_parts;
use crate::domain::BaseUrl;
use crate::error::{ApiError, Error, ErrorCode, Result};

/// A model as `/api/tags` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct LocalModel {
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub details: ModelDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ModelDetails {
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub parameter_size: String,
    #[serde(default)]
    pub quantization_level: String,
}

/// A loaded model as `/api/ps` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct RunningModel {
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub size_vram: u64,
}

/// One line of `/api/pull` progress.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct PullProgress {
    pub status: String,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub completed: Option<u64>,
}

/// A tool offered to the model (Ollama's function-calling shape).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// What one streamed chat produced and how fast.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatOutcome {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// From sending the request to the first content or tool call.
    pub time_to_first_token: Option<Duration>,
    pub elapsed: Duration,
    pub chunks: usize,
    pub eval_count: Option<u64>,
    pub eval_duration: Option<Duration>,
    pub load_duration: Option<Duration>,
    /// What a thinking model thought before answering (never part of `content`).
    pub thinking: String,
    pub thinking_chunks: usize,
    /// When the first thinking arrived; `time_to_first_token` is the first *answer*
    /// token (text or a tool call), after any thinking.
    pub first_thinking: Option<Duration>,
}

impl ChatOutcome {
    /// How long the model thought: from its first thinking to its first answer token (or
    /// to the end, when it never answered).
    pub fn thinking_time(&self) -> Option<Duration> {
        let first = self.first_thinking?;
        let until = self.time_to_first_token.unwrap_or(self.elapsed);
        Some(until.saturating_sub(first))
    }

    /// Generation speed: `eval_count / eval_duration` as Ollama measured it, else chunks
    /// per second after the first token.
    pub fn tokens_per_second(&self) -> Option<f64> {
        match (self.eval_count, self.eval_duration) {
            (Some(n), Some(d)) if n > 0 && !d.is_zero() => Some(n as f64 / d.as_secs_f64()),
            _ => {
                let after_first = self.elapsed.checked_sub(self.time_to_first_token?)?;
                (self.chunks > 1 && !after_first.is_zero())
                    .then(|| (self.chunks - 1) as f64 / after_first.as_secs_f64())
            }
        }
    }
}

/// Ollama's rule: a name without a tag means `:latest`.
pub fn canonical_model(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

#[derive(Debug, Clone)]
pub struct OllamaClient {
    http: reqwest::Client,
    base: BaseUrl,
    timeout: Duration,
}

impl OllamaClient {
    pub fn new(http: reqwest::Client, base: BaseUrl, timeout: Duration) -> Self {
        Self {
            http,
            base,
            timeout,
        }
    }

    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<reqwest::Response> {
        let endpoint = self.base.join(path);
        let mut req = self.http.request(method, &endpoint).timeout(self.timeout);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::from_reqwest(&endpoint, e, self.timeout))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::from_reqwest(&endpoint, e, self.timeout))?;
        Err(error_from_parts(&endpoint, status, &headers, &bytes))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T> {
        let endpoint = self.base.join(path);
        let resp = self.send(method, path, body).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::from_reqwest(&endpoint, e, self.timeout))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::protocol(&endpoint, format!("the body is not the expected JSON: {e}"))
        })
    }

    pub async fn version(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct V {
            version: String,
        }
        let v: V = self
            .json(reqwest::Method::GET, "/api/version", None)
            .await?;
        Ok(v.version)
    }

    pub async fn models(&self) -> Result<Vec<LocalModel>> {
        #[derive(Deserialize)]
        struct Tags {
            models: Vec<LocalModel>,
        }
        let t: Tags = self.json(reqwest::Method::GET, "/api/tags", None).await?;
        Ok(t.models)
    }

    /// The model's capabilities (`completion`, `tools`, `vision`, …) from `/api/show`.
    pub async fn capabilities(&self, model: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Show {
            #[serde(default)]
            capabilities: Vec<String>,
        }
        let s: Show = self
            .json(
                reqwest::Method::POST,
                "/api/show",
                Some(json!({ "model": model })),
            )
            .await?;
        Ok(s.capabilities)
    }

    pub async fn running(&self) -> Result<Vec<RunningModel>> {
        #[derive(Deserialize)]
        struct Ps {
            models: Vec<RunningModel>,
        }
        let p: Ps = self.json(reqwest::Method::GET, "/api/ps", None).await?;
        Ok(p.models)
    }

    /// Pulls a model, reporting every progress line; ends at `{"status":"success"}`.
    pub async fn pull(
        &self,
        model: &str,
        on_progress: &mut (dyn FnMut(PullProgress) + Send),
    ) -> Result<()> {
        let endpoint = self.base.join("/api/pull");
        let resp = self
            .send(
                reqwest::Method::POST,
                "/api/pull",
                Some(json!({ "model": model, "stream": true })),
            )
            .await?;
        let mut success = false;
        read_ndjson(resp, &endpoint, self.timeout, |line| {
            let p: PullProgress = serde_json::from_value(line).map_err(|e| {
                Error::protocol(
                    &endpoint,
                    format!("a pull progress line is not understood: {e}"),
                )
            })?;
            success |= p.status == "success";
            on_progress(p);
            Ok(())
        })
        .await?;
        if success {
            Ok(())
        } else {
            Err(Error::protocol(
                &endpoint,
                "the pull ended without \"success\"",
            ))
        }
    }

    /// A streamed chat: `messages` are `{role, content}` objects (and tool results).
    pub async fn chat(
        &self,
        model: &str,
        messages: &[Value],
        tools: &[ToolSpec],
    ) -> Result<ChatOutcome> {
        let endpoint = self.base.join("/api/chat");
        let mut body = json!({ "model": model, "messages": messages, "stream": true });
        if !tools.is_empty() {
            body["tools"] = tools
                .iter()
                .map(|t| {
                    json!({ "type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters } })
                })
                .collect();
        }
        let start = Instant::now();
        let resp = self
            .send(reqwest::Method::POST, "/api/chat", Some(body))
            .await?;
        let mut out = ChatOutcome::default();
        let mut done = false;
        read_ndjson(resp, &endpoint, self.timeout, |line| {
            out.chunks += 1;
            let message = &line["message"];
            if let Some(thought) = message["thinking"].as_str().filter(|t| !t.is_empty()) {
                out.thinking_chunks += 1;
                out.first_thinking.get_or_insert_with(|| start.elapsed());
                out.thinking.push_str(thought);
            }
            let piece = message["content"].as_str().unwrap_or("");
            let calls = message["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if out.time_to_first_token.is_none() && (!piece.is_empty() || !calls.is_empty()) {
                out.time_to_first_token = Some(start.elapsed());
            }
            out.content.push_str(piece);
            for c in calls {
                let name = c["function"]["name"].as_str().unwrap_or("").to_string();
                if name.is_empty() {
                    return Err(Error::protocol(
                        &endpoint,
                        "a tool call without a function name",
                    ));
                }
                out.tool_calls.push(ToolCall {
                    name,
                    arguments: c["function"]["arguments"].clone(),
                });
            }
            if line["done"].as_bool() == Some(true) {
                done = true;
                let ns = |k: &str| line[k].as_u64().map(Duration::from_nanos);
                out.eval_count = line["eval_count"].as_u64();
                out.eval_duration = ns("eval_duration");
                out.load_duration = ns("load_duration");
            }
            Ok(())
        })
        .await?;
        out.elapsed = start.elapsed();
        if !done {
            return Err(Error::protocol(
                &endpoint,
                "the chat stream ended before \"done\": true",
            ));
        }
        Ok(out)
    }
}

/// Reads an NDJSON body line by line (lines may arrive split across frames). A line
/// `{"error": "…"}` ends the stream with that error; a line that is not JSON is a protocol
/// error naming it.
async fn read_ndjson(
    mut resp: reqwest::Response,
    endpoint: &str,
    timeout: Duration,
    mut on_line: impl FnMut(Value) -> Result<()>,
) -> Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut handle = |raw: &[u8]| -> Result<()> {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            let excerpt: String = text.chars().take(80).collect();
            Error::protocol(
                endpoint,
                format!("a stream line is not JSON ({e}): {excerpt}"),
            )
        })?;
        if let Some(message) = value.get("error") {
            let message = message
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| message.to_string());
            return Err(Error::Api(Box::new(ApiError {
                code: ErrorCode::Unavailable {
                    retry_after_secs: None,
                },
                status: 200,
                server_code: "stream_error".into(),
                message,
                request_id: None,
                endpoint: endpoint.to_string(),
            })));
        }
        on_line(value)
    };
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| Error::from_reqwest(endpoint, e, timeout))?;
        let Some(chunk) = chunk else { break };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            handle(&line)?;
        }
    }
    handle(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_and_speeds() {
        assert_eq!(canonical_model("llama3.2"), "llama3.2:latest");
        assert_eq!(canonical_model("llama3.2:1b"), "llama3.2:1b");
        assert_eq!(
            canonical_model("registry.local:5000/m"),
            "registry.local:5000/m:latest"
        );
        let measured = ChatOutcome {
            eval_count: Some(50),
            eval_duration: Some(Duration::from_millis(2500)),
            ..ChatOutcome::default()
        };
        assert_eq!(measured.tokens_per_second(), Some(20.0));
        let counted = ChatOutcome {
            chunks: 11,
            time_to_first_token: Some(Duration::from_millis(500)),
            elapsed: Duration::from_millis(1500),
            ..ChatOutcome::default()
        };
        assert_eq!(counted.tokens_per_second(), Some(10.0));
        assert_eq!(ChatOutcome::default().tokens_per_second(), None);
    }
}
