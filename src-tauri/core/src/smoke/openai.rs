//! The smoke suite's client for servers that speak only the OpenAI-compatible API
//! (llama.cpp's server, LM Studio, vLLM, Ollama's own `/v1`): `GET /models`, streamed
//! `POST /chat/completions` (time to the first answer token apart from thinking, sent as
//! `delta.reasoning` or `delta.reasoning_content`), tool calls assembled from their
//! fragments, and llama.cpp's `/props`, which says whether the model's chat template can
//! call tools at all.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ollama::{ChatOutcome, ToolCall, ToolSpec};
use crate::agent::error_from_parts;
use crate::domain::BaseUrl;
use crate::error::{Error, Result};

/// A client of one OpenAI-compatible base URL (e.g. `http://127.0.0.1:8080/v1`).
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    base: BaseUrl,
    timeout: Duration,
    api_key: Option<String>,
}

impl OpenAiClient {
    pub fn new(
        http: reqwest::Client,
        base: BaseUrl,
        timeout: Duration,
        api_key: Option<String>,
    ) -> Self {
        Self {
            http,
            base,
            timeout,
            api_key,
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        endpoint: &str,
    ) -> Result<reqwest::Response> {
        let req = match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        };
        let resp = req
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| Error::from_reqwest(endpoint, e, self.timeout))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::from_reqwest(endpoint, e, self.timeout))?;
        Err(error_from_parts(endpoint, status, &headers, &bytes))
    }

    /// The ids `GET /models` lists.
    pub async fn models(&self) -> Result<Vec<String>> {
        let endpoint = self.base.join("/models");
        let resp = self.send(self.http.get(&endpoint), &endpoint).await?;
        let list: Value = resp
            .json()
            .await
            .map_err(|e| Error::protocol(&endpoint, format!("the body is not JSON: {e}")))?;
        let data = list["data"]
            .as_array()
            .ok_or_else(|| Error::protocol(&endpoint, "the answer has no `data` list"))?;
        Ok(data
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect())
    }

    /// Whether the model's chat template supports tools, from llama.cpp's `/props`
    /// (`chat_template_caps.supports_tools`) at the server root; `None` when the server
    /// does not say (other servers have no such endpoint).
    pub async fn template_supports_tools(&self) -> Option<bool> {
        let root = self.base.as_str().trim_end_matches("/v1");
        let endpoint = format!("{root}/props");
        let resp = self.send(self.http.get(&endpoint), &endpoint).await.ok()?;
        let props: Value = resp.json().await.ok()?;
        props["chat_template_caps"]["supports_tools"].as_bool()
    }

    /// One streamed chat completion (`max_tokens` bounds it; the usage chunk is asked
    /// for), timed: the first answer token apart from any thinking before it.
    pub async fn chat(
        &self,
        model: &str,
        messages: &[Value],
        tools: &[ToolSpec],
        max_tokens: u32,
    ) -> Result<ChatOutcome> {
        let endpoint = self.base.join("/chat/completions");
        let mut body = json!({ "model": model, "messages": messages, "stream": true,
                               "stream_options": { "include_usage": true }, "max_tokens": max_tokens });
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
        let mut resp = self
            .send(self.http.post(&endpoint).json(&body), &endpoint)
            .await?;
        let mut out = ChatOutcome::default();
        let mut calls: BTreeMap<u64, (String, String)> = BTreeMap::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut finished = false;
        'stream: loop {
            let chunk = resp
                .chunk()
                .await
                .map_err(|e| Error::from_reqwest(&endpoint, e, self.timeout))?;
            let Some(chunk) = chunk else { break };
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim().strip_prefix("data:").map(str::trim) else {
                    continue;
                };
                if data == "[DONE]" {
                    finished = true;
                    break 'stream;
                }
                let value: Value = serde_json::from_str(data).map_err(|e| {
                    Error::protocol(&endpoint, format!("an event is not JSON ({e})"))
                })?;
                if let Some(err) = value.get("error") {
                    let message = err["message"]
                        .as_str()
                        .map_or_else(|| err.to_string(), str::to_string);
                    return Err(Error::protocol(
                        &endpoint,
                        format!("the stream failed: {message}"),
                    ));
                }
                absorb(&value, &mut out, &mut calls, start, &mut finished);
            }
        }
        if !finished {
            return Err(Error::protocol(
                &endpoint,
                "the stream ended without a finish reason or [DONE]: the server stopped mid-reply",
            ));
        }
        for (_, (name, arguments)) in calls {
            let arguments = if arguments.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&arguments).map_err(|e| {
                    Error::protocol(
                        &endpoint,
                        format!("tool call {name} has arguments that are not JSON: {e}"),
                    )
                })?
            };
            out.tool_calls.push(ToolCall { name, arguments });
        }
        out.elapsed = start.elapsed();
        Ok(out)
    }
}

/// Takes in one chunk of the stream.
fn absorb(
    value: &Value,
    out: &mut ChatOutcome,
    calls: &mut BTreeMap<u64, (String, String)>,
    start: Instant,
    finished: &mut bool,
) {
    if let Some(n) = value["usage"]["completion_tokens"].as_u64() {
        out.eval_count = Some(n);
    }
    // llama.cpp adds its own timings to the usage chunk.
    if let Some(ms) = value["timings"]["predicted_ms"].as_f64() {
        out.eval_duration = Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let Some(choice) = value["choices"].as_array().and_then(|c| c.first()) else {
        return;
    };
    if !choice["finish_reason"].is_null() {
        *finished = true;
    }
    let delta = &choice["delta"];
    let thought = delta["reasoning"]
        .as_str()
        .filter(|t| !t.is_empty())
        .or_else(|| {
            delta["reasoning_content"]
                .as_str()
                .filter(|t| !t.is_empty())
        });
    if let Some(thought) = thought {
        out.chunks += 1;
        out.thinking_chunks += 1;
        out.first_thinking.get_or_insert_with(|| start.elapsed());
        out.thinking.push_str(thought);
    }
    let text = delta["content"].as_str().unwrap_or("");
    let fragments = delta["tool_calls"].as_array().cloned().unwrap_or_default();
    if !text.is_empty() || !fragments.is_empty() {
        out.chunks += 1;
        out.time_to_first_token
            .get_or_insert_with(|| start.elapsed());
    }
    out.content.push_str(text);
    for (position, f) in fragments.iter().enumerate() {
        let index = f["index"].as_u64().unwrap_or(position as u64);
        let call = calls.entry(index).or_default();
        if let Some(name) = f["function"]["name"].as_str().filter(|n| !n.is_empty()) {
            call.0 = name.to_string();
        }
        if let Some(args) = f["function"]["arguments"].as_str() {
            call.1.push_str(args);
        }
    }
}
