//! The fake Ollama against a real HTTP client: wire shapes, failure modes, control API.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{FakeModel, FakeOllama, Mode, Reply};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(fake: &FakeOllama, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", fake.url()))
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

async fn get(fake: &FakeOllama, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", fake.url()))
        .send()
        .await
        .expect("request sent")
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

/// The `data:` payloads of an SSE body, `[DONE]` included as a string.
fn sse(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("data field").to_string())
        .collect()
}

fn chat_body(content: &str) -> Value {
    json!({ "model": "llama3.2", "messages": [{ "role": "user", "content": content }] })
}

#[tokio::test]
async fn chat_streams_word_pieces_then_a_done_line_with_counts() {
    let fake = FakeOllama::start().await;
    let resp = post(&fake, "/api/chat", chat_body("why is the sky blue")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&resp.text().await.expect("body"));

    let pieces: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            assert_eq!(l["done"], false);
            assert_eq!(l["model"], "llama3.2");
            assert!(l["created_at"].is_string());
            assert_eq!(l["message"]["role"], "assistant");
            l["message"]["content"].as_str().expect("content")
        })
        .collect();
    assert_eq!(pieces, ["why", " is", " the", " sky", " blue"]);
    let last = &lines[lines.len() - 1];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], 5);
    assert_eq!(last["prompt_eval_count"], 5);
    assert!(last["total_duration"].is_u64());
}

#[tokio::test]
async fn chat_without_streaming_answers_one_object() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::text("Hello there").with_usage(11, 3));
    let mut body = chat_body("hi");
    body["stream"] = json!(false);
    let got: Value = post(&fake, "/api/chat", body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        got["message"],
        json!({ "role": "assistant", "content": "Hello there" })
    );
    assert_eq!(got["done"], true);
    assert_eq!(got["prompt_eval_count"], 11);
    assert_eq!(got["eval_count"], 3);
}

#[tokio::test]
async fn chat_tool_calls_use_ollamas_shape_with_call_ids() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::tool_call(
        "ticket_read",
        json!({ "ticket_id": "T-1001" }),
    ));
    let mut body = chat_body("summarise T-1001");
    body["tools"] = json!([{ "type": "function", "function": { "name": "ticket_read", "description": "", "parameters": {} } }]);
    let lines = ndjson(
        &post(&fake, "/api/chat", body)
            .await
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(lines.len(), 2);
    let calls = &lines[0]["message"]["tool_calls"];
    let id = calls[0]["id"]
        .as_str()
        .expect("a native tool call has an id");
    assert!(is_call_id(id), "{id}");
    assert_eq!(
        calls,
        &json!([{ "id": id, "function": { "index": 0, "name": "ticket_read", "arguments": { "ticket_id": "T-1001" } } }])
    );
    assert_eq!(lines[1]["done"], true);
}

/// Ollama's tool call ids: `call_` and 8 characters of `[a-z0-9]`.
fn is_call_id(id: &str) -> bool {
    id.strip_prefix("call_").is_some_and(|rest| {
        rest.len() == 8
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

#[tokio::test]
async fn tools_on_a_model_without_the_capability_are_refused() {
    let fake = FakeOllama::start().await;
    let body = json!({ "model": "tinyllama", "messages": [{ "role": "user", "content": "x" }],
                       "tools": [{ "type": "function", "function": { "name": "t" } }] });
    let resp = post(&fake, "/api/chat", body).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.expect("json");
    assert!(
        err["error"]
            .as_str()
            .expect("error")
            .contains("does not support tools")
    );
}

#[tokio::test]
async fn unknown_models_get_404_with_an_error_body() {
    let fake = FakeOllama::start().await;
    let resp = post(
        &fake,
        "/api/chat",
        json!({ "model": "nope", "messages": [] }),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({ "error": "model \"nope\" not found, try pulling it first" })
    );
    let resp = post(&fake, "/api/show", json!({ "model": "nope" })).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({ "error": "model 'nope' not found" })
    );
    let resp = post(
        &fake,
        "/v1/chat/completions",
        chat_body("x").tap(|b| b["model"] = json!("nope")),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.expect("json");
    assert_eq!(err["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn bad_request_bodies_get_a_clear_400() {
    let fake = FakeOllama::start().await;
    let resp = client()
        .post(format!("{}/api/chat", fake.url()))
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.expect("json");
    assert!(
        err["error"]
            .as_str()
            .expect("error")
            .starts_with("invalid request body")
    );
    let resp = post(&fake, "/api/chat", json!({ "messages": [] })).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({ "error": "model is required" })
    );
}

#[tokio::test]
async fn show_tags_version_and_ps_describe_the_models() {
    let fake = FakeOllama::start().await;
    let show: Value = post(&fake, "/api/show", json!({ "model": "llama3.2" }))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(show["capabilities"], json!(["completion", "tools"]));
    assert_eq!(show["details"]["format"], "gguf");
    assert_eq!(show["model_info"]["llama.context_length"], 131_072);
    let show: Value = post(&fake, "/api/show", json!({ "name": "tinyllama" }))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(show["capabilities"], json!(["completion"]));
    fake.add_model(FakeModel::new("phi3:mini").without_tools());
    let show: Value = post(&fake, "/api/show", json!({ "model": "phi3:mini" }))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(show["capabilities"], json!(["completion"]));
    fake.set_models(vec![
        FakeModel::new("llama3.2"),
        FakeModel::new("tinyllama").without_tools(),
    ]);

    let tags: Value = get(&fake, "/api/tags").await.json().await.expect("json");
    let names: Vec<&str> = tags["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["llama3.2:latest", "tinyllama:latest"]);
    assert_eq!(tags["models"][0]["details"]["parameter_size"], "3.2B");
    assert_eq!(tags["models"][0]["digest"].as_str().map(str::len), Some(64));

    let version: Value = get(&fake, "/api/version").await.json().await.expect("json");
    assert_eq!(
        version["version"],
        testkit::fake_ollama::FAKE_OLLAMA_VERSION
    );

    let ps: Value = get(&fake, "/api/ps").await.json().await.expect("json");
    assert_eq!(ps["models"], json!([]));
    post(&fake, "/api/chat", chat_body("load me"))
        .await
        .text()
        .await
        .expect("body");
    let ps: Value = get(&fake, "/api/ps").await.json().await.expect("json");
    assert_eq!(ps["models"][0]["name"], "llama3.2:latest");
    assert!(ps["models"][0]["expires_at"].is_string());
}

#[tokio::test]
async fn pull_reports_one_series_per_layer_and_adds_the_model() {
    let fake = FakeOllama::start().await;
    let lines = ndjson(
        &post(&fake, "/api/pull", json!({ "model": "qwen2.5:0.5b" }))
            .await
            .text()
            .await
            .expect("body"),
    );
    let statuses: Vec<&str> = lines.iter().filter_map(|l| l["status"].as_str()).collect();
    assert_eq!(statuses.first(), Some(&"pulling manifest"));
    assert_eq!(
        statuses[statuses.len() - 3..],
        ["verifying sha256 digest", "writing manifest", "success"]
    );
    // One `pulling <12 hex>` series per layer: model, template, params, config.
    let mut series: Vec<(String, u64)> = Vec::new();
    for l in lines.iter().filter(|l| l["digest"].is_string()) {
        let digest = l["digest"].as_str().expect("digest");
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        assert_eq!(hex.len(), 64);
        assert_eq!(l["status"], format!("pulling {}", &hex[..12]));
        let total = l["total"].as_u64().expect("total");
        match series.last() {
            Some((d, _)) if d == digest => {}
            _ => {
                assert!(
                    l.get("completed").is_none(),
                    "a series starts at 0, and 0 is left out: {l}"
                );
                series.push((digest.to_string(), total));
            }
        }
        if let Some(c) = l.get("completed") {
            assert!(c.as_u64().expect("completed") > 0, "{l}");
        }
    }
    assert_eq!(series.len(), 4, "{series:?}");
    let last_of = |digest: &str| {
        lines
            .iter()
            .rev()
            .find(|l| l["digest"] == digest)
            .expect("a line")["completed"]
            .clone()
    };
    for (digest, total) in &series {
        assert_eq!(last_of(digest), json!(total), "each layer completes");
    }
    let size: u64 = series.iter().map(|(_, t)| t).sum();
    let pulled = fake
        .models()
        .into_iter()
        .find(|m| m.name == "qwen2.5:0.5b")
        .expect("the model was added");
    assert_eq!(size, pulled.size, "the layers add up to the model");
    assert!(series[0].1 > series[1].1, "the weights come first");
}

#[tokio::test]
async fn pulling_a_name_the_registry_lacks_fails_after_the_manifest() {
    let fake = FakeOllama::start().await;
    let resp = post(&fake, "/api/pull", json!({ "model": "no-such-model:7b" })).await;
    assert_eq!(resp.status(), 200, "the stream has started");
    let lines = ndjson(&resp.text().await.expect("body"));
    assert_eq!(
        lines,
        [
            json!({ "status": "pulling manifest" }),
            json!({ "error": "pull model manifest: file does not exist" })
        ]
    );
    assert!(!fake.models().iter().any(|m| m.name == "no-such-model:7b"));

    let resp = post(
        &fake,
        "/api/pull",
        json!({ "model": "no-such-model:7b", "stream": false }),
    )
    .await;
    assert_eq!(resp.status(), 500);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({ "error": "pull model manifest: file does not exist" })
    );

    let control = reqwest::Client::new()
        .post(format!("{}/__fake/registry", fake.url()))
        .json(&json!({ "name": "no-such-model:7b", "size": 5000 }))
        .send()
        .await
        .expect("sent");
    assert_eq!(control.status(), 204);
    let lines = ndjson(
        &post(&fake, "/api/pull", json!({ "model": "no-such-model:7b" }))
            .await
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(lines.last(), Some(&json!({ "status": "success" })));
}

#[tokio::test]
async fn generate_streams_response_deltas() {
    let fake = FakeOllama::start().await;
    fake.set_chunking(Some(3), None);
    fake.push_reply(Reply::text("abcdefg"));
    let body = json!({ "model": "llama3.2", "prompt": "letters" });
    let lines = ndjson(
        &post(&fake, "/api/generate", body)
            .await
            .text()
            .await
            .expect("body"),
    );
    let text: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["response"].as_str())
        .collect();
    assert_eq!(text, ["abc", "def", "g", ""]);
    assert_eq!(lines[3]["context"], json!([1, 2, 3]));
}

#[tokio::test]
async fn openai_stream_has_content_tool_call_fragments_usage_and_done() {
    let fake = FakeOllama::start().await;
    fake.push_reply(
        Reply::text("Let me check")
            .and_tool_call("kb_search", json!({ "query": "reset password" })),
    );
    let body = json!({ "model": "llama3.2", "stream": true, "stream_options": { "include_usage": true },
                       "messages": [{ "role": "user", "content": "how do I reset my password" }] });
    let resp = post(&fake, "/v1/chat/completions", body).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = sse(&resp.text().await.expect("body"));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("json chunk"))
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );

    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check");
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).expect("arguments"),
        json!({ "query": "reset password" })
    );
    let fragments = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
        .count();
    assert!(fragments > 2, "arguments arrive in fragments");
    let first_call = chunks
        .iter()
        .find(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
        .expect("call");
    assert_eq!(
        first_call["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "kb_search"
    );
    assert!(
        first_call["choices"][0]["delta"]["tool_calls"][0]["id"]
            .as_str()
            .expect("id")
            .starts_with("call_")
    );

    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().expect("total") > 0);
}

#[tokio::test]
async fn openai_without_streaming_answers_a_chat_completion() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::tool_call(
        "invoice_read",
        json!({ "invoice_id": "INV-2001" }),
    ));
    let got: Value = post(&fake, "/v1/chat/completions", chat_body("pay INV-2001"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(got["object"], "chat.completion");
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
    let call = &got["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(
        call["function"]["arguments"],
        "{\"invoice_id\":\"INV-2001\"}"
    );
    assert!(got["usage"]["prompt_tokens"].as_u64().expect("usage") > 0);

    let models: Value = get(&fake, "/v1/models").await.json().await.expect("json");
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "llama3.2:latest");
}

#[tokio::test]
async fn down_mode_answers_503_in_each_apis_error_shape() {
    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::Down {
        status: 503,
        message: "overloaded".into(),
    });
    let resp = get(&fake, "/api/version").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({ "error": "overloaded" })
    );
    let resp = post(&fake, "/v1/chat/completions", chat_body("x")).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"]["message"],
        "overloaded"
    );
    assert_eq!(fake.request_count("/api/version"), 1);
}

#[tokio::test]
async fn fail_next_fails_only_that_many_model_requests() {
    let fake = FakeOllama::start().await;
    fake.fail_next(2);
    assert_eq!(
        get(&fake, "/api/version").await.status(),
        200,
        "metadata is not affected"
    );
    for want in [503, 503, 200] {
        assert_eq!(
            post(&fake, "/api/chat", chat_body("x")).await.status(),
            want
        );
    }
}

#[tokio::test]
async fn hang_mode_never_answers() {
    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::Hang);
    let sent = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client")
        .get(format!("{}/api/version", fake.url()))
        .send()
        .await;
    assert!(sent.expect_err("no answer").is_timeout());
}

#[tokio::test]
async fn slow_mode_delays_the_first_chunk_and_the_gaps() {
    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 150,
        between_chunks_ms: 50,
    });
    let started = Instant::now();
    let text = post(&fake, "/api/chat", chat_body("one two three"))
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(ndjson(&text).len(), 4);
    assert!(
        started.elapsed() >= Duration::from_millis(150 + 3 * 50),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn error_after_mode_breaks_the_stream_with_an_error_line() {
    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::ErrorAfter {
        chunks: 2,
        message: "boom".into(),
    });
    let lines = ndjson(
        &post(&fake, "/api/chat", chat_body("a b c d"))
            .await
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2], json!({ "error": "boom" }));

    // On `/v1` the error line becomes one empty chunk, and the stream just ends: no
    // finish chunk, no `[DONE]` (the error message is not sent at all).
    let body = json!({ "model": "llama3.2", "stream": true, "messages": [{ "role": "user", "content": "a b c" }] });
    let events = sse(&post(&fake, "/v1/chat/completions", body)
        .await
        .text()
        .await
        .expect("body"));
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
    let chunks: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(e).expect("json chunk"))
        .collect();
    assert!(chunks.iter().all(|c| c.get("error").is_none()));
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    let last = &chunks[2];
    assert_eq!(last["model"], "");
    assert_eq!(last["choices"][0]["delta"], json!({ "content": "" }));
    assert_eq!(last["id"], chunks[0]["id"]);

    let mut body = chat_body("x");
    body["stream"] = json!(false);
    assert_eq!(post(&fake, "/api/chat", body).await.status(), 500);
}

#[tokio::test]
async fn malformed_mode_inserts_a_line_that_is_not_json() {
    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::Malformed { after_chunks: 1 });
    let text = post(&fake, "/api/chat", chat_body("a b"))
        .await
        .text()
        .await
        .expect("body");
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        text.lines().count(),
        4,
        "the stream goes on after the bad line"
    );
}

#[tokio::test]
async fn frames_split_lines_across_reads() {
    let fake = FakeOllama::start().await;
    fake.set_chunking(None, Some(7));
    let mut resp = post(&fake, "/api/chat", chat_body("split me please")).await;
    let mut frames = 0;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        frames += 1;
        body.extend_from_slice(&chunk);
    }
    assert!(frames > 10, "only {frames} frames");
    assert_eq!(ndjson(&String::from_utf8(body).expect("utf-8")).len(), 4);
}

#[tokio::test]
async fn requests_are_logged_and_counted_but_control_calls_are_not() {
    let fake = FakeOllama::start().await;
    post(&fake, "/api/chat", chat_body("first"))
        .await
        .text()
        .await
        .expect("body");
    get(&fake, "/api/tags").await.text().await.expect("body");
    get(&fake, "/__fake/state")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(fake.total_requests(), 2);
    assert_eq!(fake.request_count("/api/chat"), 1);
    let log = fake.requests();
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].body["messages"][0]["content"], "first");
    assert_eq!(log[1].path, "/api/tags");
    assert_eq!(fake.bodies("/api/chat").len(), 1);
}

#[tokio::test]
async fn the_control_api_drives_the_fake_over_http() {
    let fake = FakeOllama::start().await;
    let control = |path: &str| format!("{}/__fake{path}", fake.url());
    let http = client();

    let replies = json!([{ "content": "scripted one" }, { "tool_calls": [{ "name": "kb_search", "arguments": { "query": "q" } }] }]);
    assert_eq!(
        http.post(control("/replies"))
            .json(&replies)
            .send()
            .await
            .expect("sent")
            .status(),
        204
    );
    let bad = http
        .post(control("/replies"))
        .json(&json!({ "contnet": "typo" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.expect("body").contains("contnet"));

    let mut body = chat_body("x");
    body["stream"] = json!(false);
    let got: Value = post(&fake, "/api/chat", body.clone())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(got["message"]["content"], "scripted one");
    let got: Value = post(&fake, "/api/chat", body.clone())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        got["message"]["tool_calls"][0]["function"]["name"],
        "kb_search"
    );
    let got: Value = post(&fake, "/api/chat", body.clone())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(got["message"]["content"], "x", "the default reply echoes");

    let mode = json!({ "mode": "down", "status": 500 });
    assert_eq!(
        http.put(control("/mode"))
            .json(&mode)
            .send()
            .await
            .expect("sent")
            .status(),
        204
    );
    assert_eq!(post(&fake, "/api/chat", body.clone()).await.status(), 500);
    let models = json!([{ "name": "mistral" }]);
    assert_eq!(
        http.put(control("/models"))
            .json(&models)
            .send()
            .await
            .expect("sent")
            .status(),
        204
    );
    let state: Value = http
        .get(control("/state"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(state["mode"]["mode"], "down");
    assert_eq!(state["models"][0]["name"], "mistral:latest");
    assert_eq!(
        state["models"][0]["capabilities"],
        json!(["completion", "tools"])
    );

    let counters: Value = http
        .get(control("/counters"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(counters["by_path"]["/api/chat"], 4);
    let log: Value = http
        .get(control("/requests"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(log.as_array().map(Vec::len), Some(4));

    assert_eq!(
        http.post(control("/reset"))
            .send()
            .await
            .expect("sent")
            .status(),
        204
    );
    assert_eq!(fake.total_requests(), 0);
    assert_eq!(post(&fake, "/api/chat", body).await.status(), 200);
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_listens_on_the_port_it_prints_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-ollama"))
        .args(["--port", "0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("fake-ollama starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .expect("a line");
    let url = line
        .trim()
        .strip_prefix("fake-ollama listening on ")
        .expect("the listening line")
        .to_string();

    let version: Value = client()
        .get(format!("{url}/api/version"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        version["version"],
        testkit::fake_ollama::FAKE_OLLAMA_VERSION
    );
    let mode = client()
        .put(format!("{url}/__fake/mode"))
        .json(&json!({ "mode": "down" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(mode.status(), 204);
    assert_eq!(
        client()
            .get(format!("{url}/api/tags"))
            .send()
            .await
            .expect("sent")
            .status(),
        503
    );

    let pid = child.id().expect("running");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("stops")
        .expect("status");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn num_predict_cuts_the_native_reply_with_done_reason_length() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::text("one two three four five six"));
    let body = chat_body("x").tap(|b| b["options"] = json!({ "num_predict": 3 }));
    let lines = ndjson(
        &post(&fake, "/api/chat", body)
            .await
            .text()
            .await
            .expect("body"),
    );
    let text: String = lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two three");
    let last = lines.last().expect("a done line");
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["eval_count"], 3);

    // Without a limit, or with Ollama's -1, it runs to the end.
    fake.push_reply(Reply::text("one two three four five six"));
    let body = chat_body("x").tap(|b| b["options"] = json!({ "num_predict": -1 }));
    let lines = ndjson(
        &post(&fake, "/api/chat", body)
            .await
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(lines.last().expect("done")["done_reason"], "stop");
    assert_eq!(lines.last().expect("done")["eval_count"], 6);

    fake.push_reply(Reply::text("one two three four five six"));
    let body = chat_body("x").tap(|b| {
        b["options"] = json!({ "num_predict": 2 });
        b["stream"] = json!(false);
    });
    let got: Value = post(&fake, "/api/chat", body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(got["message"]["content"], "one two");
    assert_eq!(got["done_reason"], "length");
}

#[tokio::test]
async fn max_tokens_cuts_the_v1_reply_with_finish_reason_length() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::text("one two three four five six"));
    let body = json!({ "model": "llama3.2", "stream": true, "max_tokens": 4,
                       "stream_options": { "include_usage": true },
                       "messages": [{ "role": "user", "content": "x" }] });
    let events = sse(&post(&fake, "/v1/chat/completions", body)
        .await
        .text()
        .await
        .expect("body"));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("json chunk"))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two three four");
    // `role` only on the first chunk; the finish chunk's delta is empty.
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks[1..]
            .iter()
            .all(|c| c["choices"][0]["delta"].get("role").is_none())
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[chunks.len() - 1]["usage"]["completion_tokens"], 4);

    fake.push_reply(Reply::text("one two three four five six"));
    let body = json!({ "model": "llama3.2", "max_tokens": 2, "messages": [{ "role": "user", "content": "x" }] });
    let got: Value = post(&fake, "/v1/chat/completions", body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(got["choices"][0]["message"]["content"], "one two");
    assert_eq!(got["choices"][0]["finish_reason"], "length");
    assert_eq!(got["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn a_tool_call_cut_by_the_limit_is_text_not_a_call() {
    let fake = FakeOllama::start().await;
    fake.push_reply(Reply::tool_call(
        "ticket_read",
        json!({ "ticket_id": "T-1001" }),
    ));
    let body = chat_body("x").tap(|b| {
        b["options"] = json!({ "num_predict": 2 });
        b["tools"] = json!([{ "type": "function", "function": { "name": "ticket_read" } }]);
    });
    let lines = ndjson(
        &post(&fake, "/api/chat", body)
            .await
            .text()
            .await
            .expect("body"),
    );
    assert!(lines.iter().all(|l| l["message"]["tool_calls"].is_null()));
    let text: String = lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert!(!text.is_empty());
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "half a call: {text}"
    );
    assert_eq!(lines.last().expect("done")["done_reason"], "length");

    fake.push_reply(Reply::tool_call(
        "ticket_read",
        json!({ "ticket_id": "T-1001" }),
    ));
    let body = json!({ "model": "llama3.2", "stream": true, "max_tokens": 2,
                       "messages": [{ "role": "user", "content": "x" }] });
    let events = sse(&post(&fake, "/v1/chat/completions", body)
        .await
        .text()
        .await
        .expect("body"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("json chunk"))
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["delta"]["tool_calls"].is_null())
    );
    assert_eq!(
        chunks.last().expect("finish")["choices"][0]["finish_reason"],
        "length"
    );
}

/// Adds a model and queues a reply through the control API (as another process would).
async fn control(fake: &FakeOllama, path: &str, body: Value) {
    let resp = client()
        .post(format!("{}/__fake{path}", fake.url()))
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        resp.status(),
        204,
        "{path}: {}",
        resp.text().await.unwrap_or_default()
    );
}

async fn thinking_model(fake: &FakeOllama) {
    control(
        fake,
        "/models",
        json!({ "name": "qwen3", "capabilities": ["completion", "tools", "thinking"] }),
    )
    .await;
}

#[tokio::test]
async fn thinking_models_stream_thinking_first_and_it_counts_toward_num_predict() {
    let fake = FakeOllama::start().await;
    thinking_model(&fake).await;
    let show: Value = post(&fake, "/api/show", json!({ "model": "qwen3" }))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        show["capabilities"],
        json!(["completion", "tools", "thinking"])
    );

    // `think` not sent: a thinking model thinks.
    control(
        &fake,
        "/replies",
        json!({ "thinking": "the user greets me", "content": "Hello there" }),
    )
    .await;
    let body = json!({ "model": "qwen3", "messages": [{ "role": "user", "content": "hi" }] });
    let lines = ndjson(
        &post(&fake, "/api/chat", body)
            .await
            .text()
            .await
            .expect("body"),
    );
    let thinking: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"]["thinking"].is_string())
        .collect();
    assert_eq!(thinking.len(), 4);
    assert!(
        thinking.iter().all(|l| l["message"]["content"] == ""),
        "thinking lines carry no content"
    );
    let first_content = lines
        .iter()
        .position(|l| {
            l["message"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .expect("content");
    assert_eq!(first_content, 4, "thinking comes first");
    let thought: String = thinking
        .iter()
        .filter_map(|l| l["message"]["thinking"].as_str())
        .collect();
    assert_eq!(thought, "the user greets me");
    let answer: String = lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert_eq!(answer, "Hello there");
    assert_eq!(lines.last().expect("done")["eval_count"], 6);

    // The limit is spent thinking: no answer at all, and `length`.
    control(
        &fake,
        "/replies",
        json!({ "thinking": "the user greets me", "content": "Hello there" }),
    )
    .await;
    let body = json!({ "model": "qwen3", "options": { "num_predict": 3 },
                       "messages": [{ "role": "user", "content": "hi" }] });
    let lines = ndjson(
        &post(&fake, "/api/chat", body)
            .await
            .text()
            .await
            .expect("body"),
    );
    let answer: String = lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert_eq!(answer, "");
    let last = lines.last().expect("done");
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["eval_count"], 3);

    // `think: false`: no thinking.
    control(
        &fake,
        "/replies",
        json!({ "thinking": "the user greets me", "content": "Hello there" }),
    )
    .await;
    let body = json!({ "model": "qwen3", "think": false, "stream": false,
                       "messages": [{ "role": "user", "content": "hi" }] });
    let got: Value = post(&fake, "/api/chat", body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        got["message"],
        json!({ "role": "assistant", "content": "Hello there" })
    );
}

#[tokio::test]
async fn v1_carries_thinking_as_delta_reasoning() {
    let fake = FakeOllama::start().await;
    thinking_model(&fake).await;
    control(
        &fake,
        "/replies",
        json!({ "thinking": "think hard", "content": "Done" }),
    )
    .await;
    let body = json!({ "model": "qwen3", "stream": true, "stream_options": { "include_usage": true },
                       "messages": [{ "role": "user", "content": "hi" }] });
    let events = sse(&post(&fake, "/v1/chat/completions", body)
        .await
        .text()
        .await
        .expect("body"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("json chunk"))
        .collect();
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning"].as_str())
        .collect();
    assert_eq!(reasoning, "think hard");
    assert_eq!(chunks[0]["choices"][0]["delta"]["reasoning"], "think");
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Done");
    assert_eq!(
        chunks.last().expect("usage")["usage"]["completion_tokens"],
        3,
        "thinking tokens are completion tokens"
    );

    // `reasoning_effort: "none"` turns thinking off.
    control(
        &fake,
        "/replies",
        json!({ "thinking": "think hard", "content": "Done" }),
    )
    .await;
    let body = json!({ "model": "qwen3", "reasoning_effort": "none",
                       "messages": [{ "role": "user", "content": "hi" }] });
    let got: Value = post(&fake, "/v1/chat/completions", body)
        .await
        .json()
        .await
        .expect("json");
    assert!(got["choices"][0]["message"].get("reasoning").is_none());
    assert_eq!(got["choices"][0]["message"]["content"], "Done");
}

#[tokio::test]
async fn think_on_a_model_that_cannot_think_is_a_400() {
    let fake = FakeOllama::start().await;
    let body = chat_body("hi").tap(|b| b["think"] = json!(true));
    let resp = post(&fake, "/api/chat", body).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({ "error": "\"llama3.2\" does not support thinking" })
    );
    let body = chat_body("hi").tap(|b| b["think"] = json!("high"));
    assert_eq!(post(&fake, "/api/chat", body).await.status(), 400);
    // Asking not to think is fine, as is not asking.
    let body = chat_body("hi").tap(|b| b["think"] = json!(false));
    assert_eq!(post(&fake, "/api/chat", body).await.status(), 200);
    let body = chat_body("hi").tap(|b| b["think"] = json!("loads"));
    let resp = post(&fake, "/api/chat", body).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.json::<Value>().await.expect("json")["error"]
            .as_str()
            .expect("error")
            .starts_with("invalid think value")
    );

    let body = chat_body("hi").tap(|b| b["reasoning_effort"] = json!("high"));
    let resp = post(&fake, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.expect("json");
    assert_eq!(
        err["error"]["message"],
        "\"llama3.2\" does not support thinking"
    );
    assert_eq!(err["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn an_error_before_the_first_byte_is_an_http_500_with_a_json_body() {
    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::ErrorAfter {
        chunks: 0,
        message: "model runner has unexpectedly stopped".into(),
    });
    let resp = post(&fake, "/api/chat", chat_body("a b c")).await;
    assert_eq!(resp.status(), 500);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({ "error": "model runner has unexpectedly stopped" })
    );
    let body = chat_body("a b c").tap(|b| b["stream"] = json!(true));
    let resp = post(&fake, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 500);
    let err: Value = resp.json().await.expect("json");
    assert_eq!(
        err["error"]["message"],
        "model runner has unexpectedly stopped"
    );
    assert_eq!(err["error"]["type"], "api_error");
}

/// `value.tap(|v| …)`: edit a JSON value inline.
trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}
