//! Every budget kind stops a run with `budget_exceeded`, names the kind, and is counted.

use serde_json::{Value, json};
use testkit::{FakeOllama, Mode, Reply};

use crate::both;
use crate::helpers::{Backend, TestApp};

async fn expect_exceeded(app: &TestApp, workflow: &str, text: &str, kind: &str) {
    let (s, v) = app.invoke(workflow, text).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "budget_exceeded", "{kind}: {v}");
    assert_eq!(v["budget"], kind, "{v}");
    let series = format!(r#"agent_budget_exceeded_total{{kind="{kind}"}}"#);
    assert!(
        app.metric(&series).await.unwrap_or(0.0) >= 1.0,
        "{series} counted"
    );
}

async fn scripted_budgets(backend: Backend) {
    let app = TestApp::spawn(backend, &[("MAX_TOKENS_PER_REQUEST", "60")]).await;
    expect_exceeded(
        &app,
        "support_ticket_summary",
        "Summarize ticket T-1001",
        "tokens",
    )
    .await;
    drop(app);
    let app = TestApp::spawn(backend, &[("MAX_TOOL_CALLS", "1")]).await;
    expect_exceeded(
        &app,
        "support_ticket_summary",
        "Summarize ticket T-1001",
        "tool_calls",
    )
    .await;
    drop(app);
    let app = TestApp::spawn(backend, &[("MAX_COST_PER_REQUEST_USD", "0.00001")]).await;
    expect_exceeded(
        &app,
        "support_ticket_summary",
        "Summarize ticket T-1001",
        "cost",
    )
    .await;
    drop(app);

    // Daily tenant budget: the first run spends it, the next is refused; other tenants are not affected.
    let app = TestApp::spawn(backend, &[("TENANT_DAILY_TOKEN_BUDGET", "100")]).await;
    let (_, v) = app
        .invoke("support_ticket_summary", "Summarize ticket T-1001")
        .await;
    assert_eq!(v["status"], "success", "{v}");
    expect_exceeded(&app, "faq", "refunds", "tenant_daily_tokens").await;
    let (_, _, v) = app
        .post_json(
            Some(app.key_of("invoke", "other")),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": {"text": "refunds"}}),
            &[],
        )
        .await;
    assert_ne!(v["status"], "budget_exceeded", "{v}");
}
both!(scripted_budgets_test, super::scripted_budgets);

async fn model_driven_budgets(backend: Backend) {
    let fake = FakeOllama::start().await;
    let url = fake.url();
    let env = [
        ("USE_OLLAMA", "true"),
        ("OLLAMA_BASE_URL", url.as_str()),
        ("OLLAMA_MODEL", "llama3.2"),
    ];

    // A repeated identical tool call is a loop.
    let app = TestApp::spawn(backend, &env).await;
    for _ in 0..3 {
        fake.push_reply(Reply::tool_call(
            "kb_search",
            json!({"query": "vpn", "limit": 3}),
        ));
    }
    expect_exceeded(&app, "faq", "vpn help", "loop").await;
    fake.clear_replies();
    drop(app);

    // The request deadline.
    let mut env2 = env.to_vec();
    env2.push(("REQUEST_TIMEOUT_SECS", "1"));
    let app = TestApp::spawn(backend, &env2).await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 3000,
        between_chunks_ms: 0,
    });
    let started = std::time::Instant::now();
    expect_exceeded(&app, "faq", "vpn help", "deadline").await;
    assert!(started.elapsed() < std::time::Duration::from_millis(2500));
    fake.set_mode(Mode::Normal);
}
both!(model_budgets_test, super::model_driven_budgets);

/// A reply cut off at the workflow's per-call output cap is never an answer: neither the
/// half-written text nor a half-written tool call; the run ends `budget_exceeded` with
/// `output_tokens`, on both wire protocols, and the trace says `length`.
async fn truncated_replies_are_never_success(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(backend, &fake, &[("MAX_OUTPUT_TOKENS", "6")]).await;
    fake.push_reply(Reply::text(
        "Refunds are issued within five business days of the request [kb:KB-2].",
    ));
    expect_exceeded(&app, "faq", "refund policy", "output_tokens").await;
    assert_eq!(fake.bodies("/api/chat")[0]["options"]["num_predict"], 6);

    // A tool call cut in the middle of its arguments is not run.
    fake.push_reply(Reply::tool_call(
        "kb_search",
        json!({"query": "refund policy for annual plans"}),
    ));
    let (_, v) = app.invoke("faq", "refund policy").await;
    assert_eq!(v["status"], "budget_exceeded", "{v}");
    assert_eq!(v["budget"], "output_tokens", "{v}");
    assert!(v["answer"].as_str().unwrap().contains("cut off"), "{v}");
    assert_eq!(
        fake.bodies("/api/chat").len(),
        2,
        "nothing ran after the cut call"
    );
    assert!(
        app.metric(r#"agent_tool_calls_total{tool="kb_search",outcome="ok"}"#)
            .await
            .is_none()
    );
    let trace = crate::stream::stored_trace(&app, v["trace_id"].as_str().unwrap()).await;
    assert_eq!(
        trace["spans"][0]["attributes"]["flightdeck.budget"],
        "output_tokens"
    );
    let chat = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("chat "))
        .cloned()
        .unwrap();
    assert_eq!(
        chat["attributes"]["gen_ai.response.finish_reasons"],
        json!(["length"])
    );
    assert_eq!(chat["attributes"]["flightdeck.truncated"], true);
    drop(app);

    let openai_url = fake.openai_url();
    let app = TestApp::spawn(
        backend,
        &[
            ("AGENT_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", &openai_url),
            ("MODEL_NAME", "llama3.2"),
            ("MAX_OUTPUT_TOKENS", "6"),
        ],
    )
    .await;
    fake.push_reply(Reply::text(
        "Refunds are issued within five business days of the request [kb:KB-2].",
    ));
    expect_exceeded(&app, "faq", "refund policy", "output_tokens").await;
    assert_eq!(fake.bodies("/v1/chat/completions")[0]["max_tokens"], 6);
}
both!(truncation_test, super::truncated_replies_are_never_success);

/// A generation that times out is not retried at full length, and what it streamed is
/// booked: usage in the trace, tokens in the metrics, the tenant's daily ledger.
async fn timed_out_generations_are_counted_and_not_retried(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(
        backend,
        &fake,
        &[
            ("PROVIDER_TIMEOUT_SECS", "1"),
            ("PROVIDER_MAX_RETRIES", "2"),
            ("TENANT_DAILY_TOKEN_BUDGET", "1000000"),
        ],
    )
    .await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 0,
        between_chunks_ms: 150,
    });
    fake.push_reply(Reply::text(
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen",
    ));
    let (s, v) = app.invoke("faq", "count for me").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "provider_timeout", "{v}");
    assert_eq!(
        fake.request_count("/api/chat"),
        1,
        "a generation that was already streaming is not started again"
    );
    let out = app
        .metric(r#"agent_tokens_total{model="llama3.2",direction="output"}"#)
        .await
        .unwrap_or(0.0);
    assert!(
        (4.0..=8.0).contains(&out),
        "about 1 s of 150 ms tokens was generated and counted: {out}"
    );
    assert!(
        app.metric(r#"agent_tokens_total{model="llama3.2",direction="input"}"#)
            .await
            .unwrap_or(0.0)
            > 0.0
    );
}
both!(
    timeout_accounting_test,
    super::timed_out_generations_are_counted_and_not_retried
);

/// A client that gives up mid-generation drops its run: what the model streamed until
/// then is still booked — in the metrics, and in the trace stored as `cancelled`.
async fn a_dropped_run_books_what_the_model_streamed(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(backend, &fake, &[]).await;
    // The client's clock below starts with its request: a fresh process opens its pool's
    // first connections now (the background tasks race for them), so one request first.
    assert_eq!(app.get(Some(app.key("invoke")), "/v1/whoami").await.0, 200);
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 0,
        between_chunks_ms: 200,
    });
    fake.push_reply(Reply::text(
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen",
    ));
    // The client gives up about 1 s after the model started answering (timed from the
    // model's side, so a busy machine's slower start is not mistaken for lost tokens).
    let request = {
        let http = app.http.clone();
        let url = app.url("/v1/invoke");
        let key = app.key("invoke").to_string();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&json!({"workflow": "faq", "input": {"text": "count for me"}}))
                .send()
                .await
        })
    };
    for _ in 0..200 {
        if fake.request_count("/api/chat") > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(fake.request_count("/api/chat"), 1, "the model was called");
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(!request.is_finished(), "the reply is still streaming");
    request.abort();
    assert!(
        request.await.unwrap_err().is_cancelled(),
        "the client gave up"
    );

    let mut trace = Value::Null;
    for _ in 0..100 {
        let (_, _, v) = app
            .get(Some(app.key("viewer")), "/v1/traces?status=cancelled")
            .await;
        if let Some(t) = v["items"].as_array().and_then(|i| i.first()) {
            trace = t.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let completion = trace["completion_tokens"].as_u64().unwrap_or(0);
    assert!(
        (4..=8).contains(&completion),
        "about 1 s of 200 ms tokens, booked in the cancelled trace: {trace}"
    );
    assert!(trace["prompt_tokens"].as_u64().unwrap_or(0) > 0, "{trace}");
    let out = app
        .metric(r#"agent_tokens_total{model="llama3.2",direction="output"}"#)
        .await
        .unwrap_or(0.0);
    assert_eq!(out, completion as f64, "the metrics book the same tokens");
}
both!(
    dropped_run_test,
    super::a_dropped_run_books_what_the_model_streamed
);

/// What the database holds for a tenant's day: (spent tokens, reserved tokens, open
/// reservation rows).
async fn stored_day(app: &TestApp, tenant: &str) -> (i64, i64, i64) {
    let db = crate::approvals::pool(app).await;
    // One statement, so the day row and the reservation rows are read from one snapshot
    // (a run reserving between two reads would otherwise show half of its reservation).
    let day = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT tokens, reserved_tokens, \
                (SELECT COUNT(*) FROM budget_reservations WHERE tenant = $1) \
         FROM tenant_usage WHERE tenant = $1",
    )
    .bind(tenant)
    .fetch_optional(&db)
    .await
    .unwrap();
    let day = match day {
        Some(day) => day,
        None => {
            let (rows,) = sqlx::query_as::<_, (i64,)>(
                "SELECT COUNT(*) FROM budget_reservations WHERE tenant = $1",
            )
            .bind(tenant)
            .fetch_one(&db)
            .await
            .unwrap();
            (0, 0, rows)
        }
    };
    db.close().await;
    day
}

/// Three processes on one database share each tenant's daily budget: runs reserve before
/// they start, so the day's total passes the budget only by what the runs in flight at
/// the end spend beyond their reservations — not three times over, as when each process
/// counted only its own spend.
async fn the_daily_budget_holds_across_processes(backend: Backend) {
    const BUDGET: i64 = 6_000;
    const CLIENTS: usize = 6;
    let env = [
        ("TENANT_DAILY_TOKEN_BUDGET", "6000"),
        ("MAX_TOKENS_PER_REQUEST", "1000"),
    ];
    let a = TestApp::spawn(backend, &env).await;
    let b = a.replica(&env).await;
    let c = a.replica(&env).await;
    let bases = [a.base.clone(), b.base.clone(), c.base.clone()];
    let key = a.key("invoke").to_string();
    let body =
        json!({"workflow": "support_ticket_summary", "input": {"text": "Summarize ticket T-1001"}});
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (bases, key, body) = (bases.clone(), key.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut spent, mut largest, mut busy) = (0i64, 0i64, 0u32);
            for n in i.. {
                let resp = http
                    .post(format!("{}/v1/invoke", bases[n % bases.len()]))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let v: Value = resp.json().await.unwrap();
                if status == 429 {
                    // What is left is held by runs in flight: they settle shortly.
                    assert_eq!(v["error"]["code"], "tenant_budget_exceeded", "{v}");
                    busy += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
                assert_eq!(status, 200, "{v}");
                if v["budget"] == "tenant_daily_tokens" {
                    return (spent, largest, busy);
                }
                assert_eq!(v["status"], "success", "{v}");
                let used = v["usage"]["prompt_tokens"].as_i64().unwrap()
                    + v["usage"]["completion_tokens"].as_i64().unwrap();
                spent += used;
                largest = largest.max(used);
            }
            unreachable!()
        }));
    }
    let (mut total, mut largest, mut busy) = (0, 0, 0);
    for c in clients {
        let (s, l, b) = c.await.unwrap();
        total += s;
        largest = largest.max(l);
        busy += b;
    }
    let (stored, reserved, rows) = stored_day(&a, "demo").await;
    eprintln!(
        "budget {BUDGET}: admitted {total} tokens ({:.2}x), largest run {largest}, {busy} busy refusals",
        total as f64 / BUDGET as f64
    );
    assert_eq!(stored, total, "every admitted run settled what it spent");
    assert_eq!((reserved, rows), (0, 0), "no reservation is left");
    assert!(
        total >= BUDGET,
        "runs were refused only once the budget was spent"
    );
    assert!(
        total - BUDGET <= CLIENTS as i64 * largest,
        "overshoot {} is more than the {CLIENTS} runs in flight could spend",
        total - BUDGET
    );
}
both!(
    budget_across_processes_test,
    super::the_daily_budget_holds_across_processes
);

/// While what is left of the day is reserved by runs in flight, a new run is refused with
/// 429 `tenant_budget_exceeded` and Retry-After (it may pass once they settle); once they
/// settled below the budget, runs pass again.
async fn a_budget_held_by_runs_in_flight_is_busy_not_spent(backend: Backend) {
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(
        backend,
        &fake,
        &[
            ("TENANT_DAILY_TOKEN_BUDGET", "1000"),
            ("MAX_TOKENS_PER_REQUEST", "600"),
        ],
    )
    .await;
    assert_eq!(app.get(Some(app.key("invoke")), "/v1/whoami").await.0, 200);
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 1500,
        between_chunks_ms: 0,
    });
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (url, key) = (app.url("/v1/invoke"), app.key("invoke").to_string());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"workflow": "faq", "input": {"text": "vpn help"}}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    // Both runs hold their share: 600 and the 400 left.
    let mut held = (0, 0, 0);
    for _ in 0..100 {
        held = stored_day(&app, "demo").await;
        // A run writes its reservation row and then holds its share of the day's row:
        // wait until both runs have done both.
        if held == (0, 1000, 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(held, (0, 1000, 2), "two runs in flight hold the whole day");
    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": {"text": "vpn help"}}),
            &[],
        )
        .await;
    crate::helpers::assert_error(s, &h, &v, 429, "tenant_budget_exceeded");
    assert_eq!(h["retry-after"], "1");
    for t in slow {
        assert_eq!(t.await.unwrap(), 200);
    }
    let (spent, reserved, rows) = stored_day(&app, "demo").await;
    assert!((1..1000).contains(&spent), "{spent}");
    assert_eq!((reserved, rows), (0, 0));
    fake.set_mode(Mode::Normal);
    let (s, v) = app.invoke("faq", "vpn help").await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(v["status"], "budget_exceeded", "{v}");
}
both!(
    budget_busy_test,
    super::a_budget_held_by_runs_in_flight_is_busy_not_spent
);
