//! Each workflow's happy path with the demo keys, and write gating.

use serde_json::Value;
use sqlx::Row;

use crate::both;
use crate::helpers::{Backend, TestApp};

fn assert_reply_shape(v: &Value, status: &str) {
    assert_eq!(v["status"], status, "reply: {v}");
    for field in [
        "request_id",
        "answer",
        "evidence",
        "usage",
        "policy_version",
        "trace_id",
    ] {
        assert!(!v[field].is_null(), "reply lacks {field}: {v}");
    }
    assert_eq!(v["policy_version"], "guardrails-v4");
    assert_eq!(v["provider"], "scripted");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["cost_usd"].as_f64().unwrap() > 0.0);
}

async fn workflows_happy_paths(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;

    let (s, v) = app
        .invoke("support_ticket_summary", "Summarize ticket T-1001 please")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_reply_shape(&v, "success");
    let answer = v["answer"].as_str().unwrap();
    assert!(
        answer.contains("[ticket:T-1001]"),
        "cites the ticket: {answer}"
    );
    let kinds: Vec<&str> = v["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"ticket"), "evidence lists the ticket: {v}");

    let (s, v) = app.invoke("faq", "How do I reset my password?").await;
    assert_eq!(s, 200, "{v}");
    assert_reply_shape(&v, "success");
    assert!(v["answer"].as_str().unwrap().contains("[kb:KB-"), "{v}");

    let (s, v) = app
        .invoke("ticket_update", "Set ticket T-1002 priority to low")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_reply_shape(&v, "approval_required");
    let approval_id = v["approval_request_id"]
        .as_str()
        .expect("approval id")
        .to_string();
    let change = &v["proposed_change"];
    assert_eq!(change["resource"], "ticket/T-1002");
    assert_eq!(change["after"]["priority"], "low");
    assert!(
        change["diff"].as_str().unwrap().contains("+"),
        "a unified diff: {change}"
    );

    let (s, v) = app
        .invoke("invoice_approval", "Please pay invoice INV-2001")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_reply_shape(&v, "approval_required");
    assert_eq!(v["proposed_change"]["after"]["status"], "paid", "{v}");

    // The approval is stored as pending and readable by the tenant's approver.
    let (s, _, a) = app
        .get(
            Some(app.key("approver")),
            &format!("/v1/approvals/{approval_id}"),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["status"], "pending");
    assert_eq!(a["tool"], "ticket_update");
    assert_eq!(a["required_approvals"], 1);
    assert_eq!(a["release"]["track"], "stable");
    assert!(!a["trace_id"].as_str().unwrap().is_empty());
}
both!(workflows_happy_paths_test, super::workflows_happy_paths);

async fn write_is_gated_and_nothing_is_written(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db.url).await.unwrap();
    let before: String =
        sqlx::query("SELECT status FROM tickets WHERE tenant = 'demo' AND id = 'T-1003'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("status");
    let (s, v) = app
        .invoke("ticket_update", "Please close ticket T-1003")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "approval_required", "{v}");
    assert_eq!(v["proposed_change"]["after"]["status"], "closed");
    let after: String =
        sqlx::query("SELECT status FROM tickets WHERE tenant = 'demo' AND id = 'T-1003'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("status");
    assert_eq!(
        before, after,
        "a write tool call must not change the ticket before approval"
    );
    let pending: i64 = sqlx::query("SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(pending, 1);
    assert_eq!(app.metric("agent_approvals_pending").await, Some(1.0));

    // Large invoices need two approvers.
    let (_, v) = app.invoke("invoice_approval", "Pay INV-2002").await;
    let id = v["approval_request_id"].as_str().expect("approval id");
    let (_, _, a) = app
        .get(Some(app.key("approver")), &format!("/v1/approvals/{id}"))
        .await;
    assert_eq!(
        a["required_approvals"], 2,
        "INV-2002 is above the threshold: {a}"
    );
}
both!(
    write_is_gated_test,
    super::write_is_gated_and_nothing_is_written
);

async fn metrics_count_requests_tokens_and_tools(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let (s, _) = app
        .invoke("support_ticket_summary", "Summarize T-1001")
        .await;
    assert_eq!(s, 200);
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"agent_requests_total{workflow="support_ticket_summary",status="success",track="stable"} 1"#,
        r#"agent_tool_calls_total{tool="ticket_read",outcome="ok"} 1"#,
        r#"agent_tokens_total{model="scripted-v1",direction="input"}"#,
        "agent_request_duration_seconds_bucket",
        "agent_inflight_requests 0",
        "agent_build_info{",
        r#"agent_circuit_state{dependency="provider:scripted"} 0"#,
    ] {
        assert!(text.contains(series), "metrics lack {series}:\n{text}");
    }
}
both!(metrics_test, super::metrics_count_requests_tokens_and_tools);

async fn retrieval_down_degrades_faq(backend: Backend) {
    // Nothing listens on port 9 of loopback: retrieval is down.
    let app = TestApp::spawn(backend, &[("RETRIEVAL_URL", "http://127.0.0.1:9/search")]).await;
    let (s, v) = app.invoke("faq", "How do I reset my password?").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "degraded", "{v}");
    assert!(
        v["answer"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("unavailable"),
        "the answer says what is missing: {v}"
    );
    let (s, _, r) = app.get(None, "/readyz").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "degraded", "{r}");
    assert_eq!(r["checks"]["retrieval"]["status"], "degraded", "{r}");
    // Read-only workflows that do not need retrieval still succeed.
    let (_, v) = app.invoke("ticket_update", "close ticket T-1007").await;
    assert_eq!(v["status"], "approval_required", "{v}");
}
both!(retrieval_down_test, super::retrieval_down_degrades_faq);
