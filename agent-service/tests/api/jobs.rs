//! The job queue: create → run → result, idempotent create, bad input, cancellation,
//! `agent_queue_depth`, retries after a worker is killed, dead letters, graceful release at
//! shutdown, and signed callbacks through the SSRF guard.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Row;
use testkit::{FakeOllama, Mode};

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

fn job_body(workflow: &str, text: &str) -> Value {
    json!({"workflow": workflow, "input": {"text": text}})
}

/// `POST /v1/jobs` with the demo `invoke` key; returns the 202 body.
async fn create(app: &TestApp, body: &Value) -> Value {
    let (s, _, v) = app
        .post_json(Some(app.key("invoke")), "/v1/jobs", body, &[])
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["status"], "queued", "{v}");
    v
}

async fn job(app: &TestApp, id: &str) -> Value {
    let (s, _, v) = app
        .get(Some(app.key("invoke")), &format!("/v1/jobs/{id}"))
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Polls the job until `done` holds, failing after `timeout` with the job and the logs.
async fn wait_job(
    app: &TestApp,
    id: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let v = job(app, id).await;
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "job {id} did not get there within {timeout:?}: {v}\nlogs:\n{}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["status"] == status
}

fn is_finished(v: &Value) -> bool {
    !matches!(v["status"].as_str(), Some("queued" | "running"))
}

async fn slow_model(first_chunk_ms: u64) -> FakeOllama {
    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::Slow {
        first_chunk_ms,
        between_chunks_ms: 0,
    });
    fake
}

fn ollama_env(fake: &FakeOllama) -> Vec<(&'static str, String)> {
    vec![
        ("USE_OLLAMA", "true".into()),
        ("OLLAMA_BASE_URL", fake.url()),
        ("OLLAMA_MODEL", "llama3.2".into()),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn pool(app: &TestApp) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&app.db.url)
        .await
        .expect("connect to the test database")
}

/// Queued jobs of the demo tenant, as the API lists them.
async fn queued_now(app: &TestApp) -> f64 {
    let (s, _, v) = app
        .get(Some(app.key("invoke")), "/v1/jobs?status=queued&limit=100")
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().map(Vec::len).unwrap_or_default() as f64
}

async fn create_runs_the_workflow_and_stores_its_result(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let created = create(
        &app,
        &job_body(
            "support_ticket_summary",
            "Summarize ticket T-1001 for jane.doe@example.com",
        ),
    )
    .await;
    let id = created["id"].as_str().expect("job id").to_string();
    assert_eq!(created["attempts"], 0);
    assert_eq!(created["max_attempts"], 3);
    assert!(
        created["result"].is_null() && created["lease"].is_null(),
        "{created}"
    );
    let input = created["input"]["text"].as_str().unwrap();
    assert!(
        !input.contains("jane.doe@example.com") && input.contains("T-1001"),
        "the stored input is redacted: {input}"
    );

    let done = wait_job(&app, &id, Duration::from_secs(20), is_finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1);
    assert!(done["lease"].is_null() && done["error"].is_null(), "{done}");
    assert!(
        done["started_at"].is_string() && done["finished_at"].is_string(),
        "{done}"
    );
    let result = &done["result"];
    assert_eq!(result["status"], "success", "{done}");
    assert_eq!(result["workflow"], "support_ticket_summary");
    assert_eq!(result["policy_version"], "guardrails-v4");
    assert_eq!(result["request_id"], created["request_id"]);
    assert!(
        result["answer"]
            .as_str()
            .unwrap()
            .contains("[ticket:T-1001]"),
        "the invoke-shaped result: {result}"
    );
    assert!(result["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // A write proposed by a job waits for approval like any other.
    let gated = create(&app, &job_body("ticket_update", "close ticket T-1009")).await;
    let gated = wait_job(
        &app,
        gated["id"].as_str().unwrap(),
        Duration::from_secs(20),
        is_finished,
    )
    .await;
    assert_eq!(gated["status"], "succeeded", "{gated}");
    assert_eq!(gated["result"]["status"], "approval_required", "{gated}");
    assert!(
        gated["result"]["approval_request_id"].is_string(),
        "{gated}"
    );

    // Readable by the tenant's viewer, listed newest first, paged with an opaque cursor.
    let (s, _, v) = app
        .get(Some(app.key("viewer")), &format!("/v1/jobs/{id}"))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, page1) = app.get(Some(app.key("invoke")), "/v1/jobs?limit=1").await;
    assert_eq!(s, 200, "{page1}");
    assert_eq!(page1["items"].as_array().unwrap().len(), 1);
    assert_eq!(page1["items"][0]["id"], gated["id"]);
    let cursor = page1["next_cursor"].as_str().expect("a second page");
    let (s, _, page2) = app
        .get(
            Some(app.key("invoke")),
            &format!("/v1/jobs?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(s, 200, "{page2}");
    assert_eq!(page2["items"][0]["id"], id.as_str());
    assert!(page2["next_cursor"].is_null(), "{page2}");
    let (_, _, succeeded) = app
        .get(Some(app.key("invoke")), "/v1/jobs?status=succeeded")
        .await;
    assert_eq!(
        succeeded["items"].as_array().unwrap().len(),
        2,
        "{succeeded}"
    );
    let (_, _, queued) = app
        .get(Some(app.key("invoke")), "/v1/jobs?status=queued")
        .await;
    assert_eq!(queued["items"], json!([]), "{queued}");

    // Another tenant sees nothing: its requests for this id are 404s.
    let other = app.key_of("invoke", "other");
    let (s, h, v) = app.get(Some(other), &format!("/v1/jobs/{id}")).await;
    assert_error(s, &h, &v, 404, "not_found");
    let (s, h, v) = app
        .post_json(
            Some(other),
            &format!("/v1/jobs/{id}/cancel"),
            &json!({}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 404, "not_found");
    let (_, _, v) = app.get(Some(other), "/v1/jobs").await;
    assert_eq!(v["items"], json!([]), "{v}");
}
both!(
    happy_path_test,
    super::create_runs_the_workflow_and_stores_its_result
);

async fn idempotent_create(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let body = job_body("faq", "How do I reset my password?");
    let key = [("Idempotency-Key", "job-key-1")];
    let (s1, _, first) = app
        .post_json(Some(app.key("invoke")), "/v1/jobs", &body, &key)
        .await;
    assert_eq!(s1, 202, "{first}");
    let (s2, h2, second) = app
        .post_json(Some(app.key("invoke")), "/v1/jobs", &body, &key)
        .await;
    assert_eq!(s2, 202, "{second}");
    assert_eq!(
        second["id"], first["id"],
        "the same key and body give the same job"
    );
    assert_eq!(h2["idempotency-replayed"], "true");

    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/jobs",
            &job_body("faq", "a different question"),
            &key,
        )
        .await;
    assert_error(s, &h, &v, 422, "idempotency_key_reused");

    let (_, _, list) = app.get(Some(app.key("invoke")), "/v1/jobs").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "one job: {list}"
    );
}
both!(idempotent_create_test, super::idempotent_create);

async fn bad_input_is_refused_and_creates_nothing(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let invoke = Some(app.key("invoke"));
    for (body, status, code) in [
        (job_body("no_such_workflow", "hi"), 404, "unknown_workflow"),
        (json!({"workflow": "faq"}), 400, "invalid_input"),
        (job_body("faq", "   "), 400, "invalid_input"),
        (
            json!({"workflow": "faq", "input": {"text": "hi"}, "priority": 9}),
            400,
            "invalid_input",
        ),
        (
            json!({"workflow": "faq", "input": {"text": "hi"}, "user_id": ""}),
            400,
            "invalid_input",
        ),
        (
            json!({"workflow": "faq", "input": {"text": "hi"}, "callback_url": "https://hooks.example.com/x"}),
            400,
            "invalid_input",
        ),
    ] {
        let (s, h, v) = app.post_json(invoke, "/v1/jobs", &body, &[]).await;
        assert_error(s, &h, &v, status, code);
        if body.get("callback_url").is_some() {
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("JOB_CALLBACK_SECRET"),
                "names the missing setting: {v}"
            );
        }
    }
    let resp = app
        .http
        .post(app.url("/v1/jobs"))
        .bearer_auth(app.key("invoke"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "malformed_json");

    let body = job_body("faq", "hi");
    let (s, h, v) = app.post_json(None, "/v1/jobs", &body, &[]).await;
    assert_error(s, &h, &v, 401, "unauthorized");
    let (s, h, v) = app
        .post_json(Some(app.key("viewer")), "/v1/jobs", &body, &[])
        .await;
    assert_error(s, &h, &v, 403, "forbidden");
    let (s, h, v) = app
        .post_json(
            Some(app.key("viewer")),
            "/v1/jobs/job_0/cancel",
            &json!({}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 403, "forbidden");

    for path in [
        "/v1/jobs?status=done",
        "/v1/jobs?limit=0",
        "/v1/jobs?limit=101",
        "/v1/jobs?cursor=bm90LWEtY3Vyc29y",
        "/v1/jobs?sort=asc",
    ] {
        let (s, h, v) = app.get(invoke, path).await;
        assert_error(s, &h, &v, 400, "invalid_input");
    }
    let missing = "job_0190f0a0b0c07d00a000000000000000";
    let (s, h, v) = app.get(invoke, &format!("/v1/jobs/{missing}")).await;
    assert_error(s, &h, &v, 404, "not_found");
    let (s, h, v) = app
        .post_json(
            invoke,
            &format!("/v1/jobs/{missing}/cancel"),
            &json!({}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 404, "not_found");

    let (_, _, list) = app.get(invoke, "/v1/jobs").await;
    assert_eq!(
        list["items"],
        json!([]),
        "no bad request created a job: {list}"
    );
    // The service is unharmed: a good request still goes through.
    let ok = create(&app, &body).await;
    let done = wait_job(
        &app,
        ok["id"].as_str().unwrap(),
        Duration::from_secs(20),
        is_finished,
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
}
both!(
    bad_input_test,
    super::bad_input_is_refused_and_creates_nothing
);

async fn cancel_queued_and_running(backend: Backend) {
    let fake = slow_model(5000).await;
    let mut env = ollama_env(&fake);
    env.push(("JOB_WORKERS", "1".into()));
    let app = TestApp::spawn(backend, &env_refs(&env)).await;
    let running = create(&app, &job_body("ticket_update", "anything to update?")).await;
    let running_id = running["id"].as_str().unwrap().to_string();
    wait_job(
        &app,
        &running_id,
        Duration::from_secs(10),
        status_is("running"),
    )
    .await;
    let queued = create(&app, &job_body("ticket_update", "and this one?")).await;
    let queued_id = queued["id"].as_str().unwrap().to_string();
    assert_eq!(job(&app, &queued_id).await["status"], "queued");

    // A queued job is cancelled at once.
    let path = format!("/v1/jobs/{queued_id}/cancel");
    let key = [("Idempotency-Key", "cancel-1")];
    let (s, _, v) = app
        .post_json(Some(app.key("invoke")), &path, &json!({}), &key)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "cancelled", "{v}");
    assert!(v["finished_at"].is_string(), "{v}");
    // Retried with the same Idempotency-Key, the decision replays instead of a 409.
    let (s, h, again) = app
        .post_json(Some(app.key("invoke")), &path, &json!({}), &key)
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again, v);
    assert_eq!(h["idempotency-replayed"], "true");

    // A running one is asked to stop; its worker stops well before the model answers.
    let asked = Instant::now();
    let path = format!("/v1/jobs/{running_id}/cancel");
    let (s, _, v) = app
        .post_json(Some(app.key("operator")), &path, &json!({}), &[])
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["cancel_requested"], true, "{v}");
    let done = wait_job(&app, &running_id, Duration::from_secs(10), is_finished).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        done["result"].is_null() && done["lease"].is_null(),
        "{done}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "the worker stopped at its next check, not when the model answered: {:?}",
        asked.elapsed()
    );

    // Finished jobs cannot be cancelled again.
    for id in [&queued_id, &running_id] {
        let (s, h, v) = app
            .post_json(
                Some(app.key("invoke")),
                &format!("/v1/jobs/{id}/cancel"),
                &json!({}),
                &[],
            )
            .await;
        assert_error(s, &h, &v, 409, "conflict");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cancelled"),
            "{v}"
        );
    }
    // The worker is free again: the next job runs.
    fake.set_mode(Mode::Normal);
    let next = create(&app, &job_body("ticket_update", "one more")).await;
    let next = wait_job(
        &app,
        next["id"].as_str().unwrap(),
        Duration::from_secs(20),
        is_finished,
    )
    .await;
    assert_eq!(next["status"], "succeeded", "{next}");
}
both!(cancel_test, super::cancel_queued_and_running);

async fn queue_depth_gauge_counts_queued_jobs(backend: Backend) {
    // Slow enough that the first job is still running through the counts below, even on
    // a loaded two-core machine (at 3 s it sometimes finished and the next one started).
    let fake = slow_model(6000).await;
    let mut env = ollama_env(&fake);
    env.push(("JOB_WORKERS", "1".into()));
    let app = TestApp::spawn(backend, &env_refs(&env)).await;
    assert_eq!(app.metric("agent_queue_depth").await, Some(0.0));
    let mut ids = Vec::new();
    for i in 0..4 {
        let v = create(&app, &job_body("ticket_update", &format!("job {i}"))).await;
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    wait_job(&app, &ids[0], Duration::from_secs(10), status_is("running")).await;
    assert_eq!(queued_now(&app).await, 3.0);
    assert_eq!(app.metric("agent_queue_depth").await, Some(3.0));

    for id in &ids[1..3] {
        let (s, _, v) = app
            .post_json(
                Some(app.key("invoke")),
                &format!("/v1/jobs/{id}/cancel"),
                &json!({}),
                &[],
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(queued_now(&app).await, 1.0);
    assert_eq!(app.metric("agent_queue_depth").await, Some(1.0));

    // After the periodic recount from the database it still agrees.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let queued = queued_now(&app).await;
    assert_eq!(app.metric("agent_queue_depth").await, Some(queued));
    for id in &ids {
        wait_job(&app, id, Duration::from_secs(60), is_finished).await;
    }
    assert_eq!(app.metric("agent_queue_depth").await, Some(0.0));
}
both!(
    queue_depth_test,
    super::queue_depth_gauge_counts_queued_jobs
);

async fn killed_worker_job_is_retried_after_its_lease_expires(backend: Backend) {
    let fake = slow_model(4000).await;
    let mut env = ollama_env(&fake);
    env.push(("JOB_LEASE_SECS", "2".into()));
    env.push(("JOB_WORKERS", "1".into()));
    let mut app = TestApp::spawn(backend, &env_refs(&env)).await;
    let created = create(&app, &job_body("ticket_update", "anything to update?")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let first = wait_job(&app, &id, Duration::from_secs(10), status_is("running")).await;
    let lease_at_start = first["lease"]["expires_at"].as_str().unwrap().to_string();

    // Heartbeats keep a run longer than its lease from being taken away.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let held = job(&app, &id).await;
    assert_eq!(held["status"], "running", "{held}");
    assert_eq!(held["attempts"], 1, "{held}");
    assert!(
        held["lease"]["expires_at"].as_str().unwrap() > lease_at_start.as_str(),
        "the lease was renewed: {held}"
    );

    app.kill9();
    app.restart(&env_refs(&env)).await;
    let done = wait_job(&app, &id, Duration::from_secs(30), is_finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["result"]["status"], "success", "{done}");
    assert_eq!(
        fake.request_count("/api/chat"),
        2,
        "one model call per attempt"
    );
    assert!(
        app.logs()
            .contains("reaped a job whose worker stopped renewing its lease"),
        "{}",
        app.logs()
    );
}
both!(
    kill9_test,
    super::killed_worker_job_is_retried_after_its_lease_expires
);

async fn attempts_are_bounded_then_dead_lettered(backend: Backend) {
    let fake = FakeOllama::start().await;
    fake.set_mode(Mode::Down {
        status: 503,
        message: "server busy".into(),
    });
    let mut env = ollama_env(&fake);
    env.push(("JOB_MAX_ATTEMPTS", "2".into()));
    env.push(("PROVIDER_MAX_RETRIES", "0".into()));
    let app = TestApp::spawn(backend, &env_refs(&env)).await;
    let created = create(&app, &job_body("ticket_update", "anything to update?")).await;
    assert_eq!(created["max_attempts"], 2);
    let id = created["id"].as_str().unwrap();
    let done = wait_job(&app, id, Duration::from_secs(40), is_finished).await;
    assert_eq!(done["status"], "dead", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["error"]["code"], "provider_unavailable", "{done}");
    assert!(
        !done["error"]["message"].as_str().unwrap().is_empty(),
        "{done}"
    );
    assert!(
        done["result"].is_null() && done["finished_at"].is_string(),
        "{done}"
    );
    // Dead is final: nothing picks it up again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(job(&app, id).await["attempts"], 2);
}
both!(
    dead_letter_test,
    super::attempts_are_bounded_then_dead_lettered
);

async fn shutdown_finishes_or_releases_running_jobs(backend: Backend) {
    let fake = slow_model(1500).await;
    let mut env = ollama_env(&fake);
    env.push(("SHUTDOWN_GRACE_SECS", "5".into()));
    let mut app = TestApp::spawn(backend, &env_refs(&env)).await;

    // A job that can finish within the grace period finishes.
    let quick = create(&app, &job_body("ticket_update", "quick one")).await;
    let quick_id = quick["id"].as_str().unwrap().to_string();
    wait_job(
        &app,
        &quick_id,
        Duration::from_secs(10),
        status_is("running"),
    )
    .await;
    app.terminate();
    let exit = app.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(exit.success(), "{exit:?}\n{}", app.logs());
    let pool = pool(&app).await;
    let row = sqlx::query("SELECT status, attempts FROM jobs WHERE id = $1")
        .bind(&quick_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        row.get::<String, _>("status"),
        "succeeded",
        "{}",
        app.logs()
    );

    // One that cannot is put back: queued, lease cleared, its attempt not counted.
    fake.set_mode(Mode::Slow {
        first_chunk_ms: 20_000,
        between_chunks_ms: 0,
    });
    env.retain(|(k, _)| *k != "SHUTDOWN_GRACE_SECS");
    env.push(("SHUTDOWN_GRACE_SECS", "2".into()));
    app.restart(&env_refs(&env)).await;
    let slow = create(&app, &job_body("ticket_update", "slow one")).await;
    let slow_id = slow["id"].as_str().unwrap().to_string();
    wait_job(
        &app,
        &slow_id,
        Duration::from_secs(10),
        status_is("running"),
    )
    .await;
    app.terminate();
    let exit = app.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(exit.success(), "{exit:?}\n{}", app.logs());
    let row = sqlx::query(
        "SELECT status, attempts, lease_token, lease_expires_at FROM jobs WHERE id = $1",
    )
    .bind(&slow_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("status"), "queued", "{}", app.logs());
    assert_eq!(row.get::<i64, _>("attempts"), 0);
    assert!(row.get::<Option<String>, _>("lease_token").is_none());
    assert!(row.get::<Option<i64>, _>("lease_expires_at").is_none());
    assert!(
        app.logs().contains("put back in the queue"),
        "{}",
        app.logs()
    );
    pool.close().await;

    // The next process runs it as its first attempt.
    fake.set_mode(Mode::Normal);
    app.restart(&env_refs(&env)).await;
    let done = wait_job(&app, &slow_id, Duration::from_secs(20), is_finished).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
}
both!(
    shutdown_test,
    super::shutdown_finishes_or_releases_running_jobs
);

/// A local webhook receiver that answers 500 to its first `fail_first` calls.
struct Receiver {
    url: String,
    calls: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let calls: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let seen = calls.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut calls = seen.lock().unwrap();
                calls.push((headers, body));
                if calls.len() <= fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url: format!("http://{addr}/hook"),
        calls,
    }
}

fn verify_signature(secret: &str, header: &str, body: &str) -> bool {
    let Some((t, v1)) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let Ok(expected) = hex::decode(v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&expected).is_ok()
}

async fn callbacks_are_signed_retried_and_guarded(backend: Backend) {
    let hook = receiver(1).await;
    let secret = "callback-secret-for-tests";
    let app = TestApp::spawn(
        backend,
        &[
            ("JOB_CALLBACK_SECRET", secret),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
        ],
    )
    .await;

    // The SSRF guard refuses internal destinations at creation.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hook",
        "http://localhost:9/hook",
        "file:///etc/passwd",
        "not a url",
    ] {
        let mut body = job_body("faq", "How do I reset my password?");
        body["callback_url"] = json!(url);
        let (s, h, v) = app
            .post_json(Some(app.key("invoke")), "/v1/jobs", &body, &[])
            .await;
        assert_error(s, &h, &v, 400, "invalid_input");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("callback_url"),
            "{v}"
        );
    }
    let mut body = job_body("faq", "How do I reset my password?");
    body["callback_url"] = json!("http://169.254.169.254/latest/meta-data/");
    let (_, _, v) = app
        .post_json(Some(app.key("invoke")), "/v1/jobs", &body, &[])
        .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cloud metadata"),
        "{v}"
    );

    let mut body = job_body("faq", "How do I reset my password?");
    body["callback_url"] = json!(hook.url);
    let created = create(&app, &body).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["callback"]["url"], hook.url.as_str());
    assert!(created["callback"]["state"].is_null(), "{created}");

    let done = wait_job(&app, id, Duration::from_secs(30), |v| {
        v["callback"]["state"] == "delivered"
    })
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["callback"]["attempts"], 2,
        "the first attempt got a 500: {done}"
    );
    assert_eq!(done["callback"]["last_status_code"], 204, "{done}");
    assert!(done["callback"]["completed_at"].is_string(), "{done}");

    let calls = hook.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    for (headers, body) in &calls {
        let sig = headers["x-flightdeck-signature"].to_str().unwrap();
        assert!(
            verify_signature(secret, sig, body),
            "signature {sig} verifies"
        );
        assert!(!verify_signature("another-secret", sig, body));
        assert!(!verify_signature(
            secret,
            sig,
            &body.replace("succeeded", "failed")
        ));
        let sent: Value = serde_json::from_str(body).unwrap();
        assert_eq!(sent["id"], id);
        assert_eq!(sent["status"], "succeeded");
        assert_eq!(sent["result"]["workflow"], "faq");
        assert_eq!(headers["content-type"], "application/json");
    }
}
both!(
    callback_test,
    super::callbacks_are_signed_retried_and_guarded
);
