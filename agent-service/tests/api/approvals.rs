//! Approvals end to end: the lifecycle, the decision rules, N-of-M, expiry, the write
//! freeze, bulk cancel, the event stream (SSE with resume), and exactly-once execution
//! across SIGKILLs, restarts and two processes racing on one database.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;
use testkit::{FakeOllama, Reply};

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error, temp_dir};

pub async fn pool(app: &TestApp) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&app.db.url)
        .await
        .expect("connect to the test database")
}

/// Invokes a write workflow and returns the approval id it created.
pub async fn propose(app: &TestApp, workflow: &str, text: &str) -> String {
    let (s, v) = app.invoke(workflow, text).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "approval_required", "{v}");
    v["approval_request_id"]
        .as_str()
        .expect("approval id")
        .to_string()
}

pub async fn decide(
    app: &TestApp,
    key: &str,
    id: &str,
    verb: &str,
    reason: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    app.post_json(
        Some(key),
        &format!("/v1/approvals/{id}/{verb}"),
        &json!({ "reason": reason }),
        &[],
    )
    .await
}

async fn detail(app: &TestApp, id: &str) -> Value {
    let (s, _, v) = app
        .get(Some(app.key("viewer")), &format!("/v1/approvals/{id}"))
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn ticket_body(pool: &sqlx::AnyPool, tenant: &str, id: &str) -> String {
    sqlx::query("SELECT body FROM tickets WHERE tenant = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("ticket")
        .get("body")
}

async fn column(pool: &sqlx::AnyPool, sql: &str, id: &str) -> String {
    sqlx::query(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("row")
        .get(0)
}

pub async fn verify(app: &TestApp) -> Value {
    let (s, _, v) = app.get(Some(app.key("viewer")), "/v1/audit/verify").await;
    assert_eq!(s, 200, "{v}");
    v
}

/// The tenant's approval audit actions for one approval, oldest first.
async fn audit_actions(app: &TestApp, id: &str) -> Vec<String> {
    let (s, _, v) = app
        .get(
            Some(app.key("viewer")),
            &format!("/v1/audit?resource=approval/{id}&limit=200"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mut actions: Vec<String> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action").to_string())
        .collect();
    actions.reverse();
    actions
}

async fn lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let db = pool(&app).await;
    let id = propose(
        &app,
        "ticket_update",
        "close ticket T-1009 comment: [lifecycle-check]",
    )
    .await;

    let (s, _, list) = app
        .get(Some(app.key("approver")), "/v1/approvals?status=pending")
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"][0]["id"], id.as_str(), "{list}");
    assert!(list["next_cursor"].is_null());
    assert_eq!(app.metric("agent_approvals_pending").await, Some(1.0));

    let idem = [("Idempotency-Key", "approve-lifecycle-1")];
    let path = format!("/v1/approvals/{id}/approve");
    let body = json!({"reason": "customer confirmed the fix"});
    let (s, h, a) = app
        .post_json(Some(app.key("approver")), &path, &body, &idem)
        .await;
    assert_eq!(s, 200, "{a}");
    assert!(h.get("idempotency-replayed").is_none());
    assert_eq!(a["status"], "executed", "{a}");
    assert_eq!(a["approvals_count"], 1);
    assert_eq!(a["decisions"][0]["decision"], "approve");
    assert_eq!(a["decisions"][0]["reason"], "customer confirmed the fix");
    assert_eq!(a["execution"]["status"], "executed");
    assert_eq!(a["execution"]["attempts"], 1);
    assert_eq!(a["execution"]["result"]["status"], "closed", "{a}");
    assert_eq!(
        column(
            &db,
            "SELECT status FROM tickets WHERE tenant = 'demo' AND id = $1",
            "T-1009"
        )
        .await,
        "closed"
    );
    let body_text = ticket_body(&db, "demo", "T-1009").await;
    assert_eq!(
        body_text.matches("[lifecycle-check]").count(),
        1,
        "{body_text}"
    );

    // The same key and body replays the first answer; nothing runs twice.
    let (s, h, replay) = app
        .post_json(Some(app.key("approver")), &path, &body, &idem)
        .await;
    assert_eq!(s, 200, "{replay}");
    assert_eq!(h.get("idempotency-replayed").unwrap(), "true");
    assert_eq!(replay, a);
    // The same key with another body is refused.
    let (s, h, v) = app
        .post_json(
            Some(app.key("approver")),
            &path,
            &json!({"reason": "different"}),
            &idem,
        )
        .await;
    assert_error(s, &h, &v, 422, "idempotency_key_reused");
    // A new decision on a decided request is a conflict.
    let (s, h, v) = decide(&app, app.key("approver"), &id, "approve", "again").await;
    assert_error(s, &h, &v, 409, "conflict");
    assert_eq!(
        ticket_body(&db, "demo", "T-1009")
            .await
            .matches("[lifecycle-check]")
            .count(),
        1
    );

    assert_eq!(
        audit_actions(&app, &id).await,
        [
            "approval.created",
            "approval.approved",
            "approval.executing",
            "approval.executed"
        ]
    );
    let v = verify(&app).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(app.metric("agent_approvals_pending").await, Some(0.0));
    assert_eq!(
        app.metric(r#"agent_approvals_total{decision="approved"}"#)
            .await,
        Some(1.0)
    );
    let (_, _, executed) = app
        .get(Some(app.key("operator")), "/v1/approvals?status=executed")
        .await;
    assert_eq!(executed["items"].as_array().unwrap().len(), 1, "{executed}");

    let (_, _, doc) = app.get(None, "/openapi.json").await;
    for path in [
        "/v1/approvals",
        "/v1/approvals/{id}",
        "/v1/approvals/{id}/approve",
        "/v1/approvals/{id}/reject",
        "/v1/approvals/cancel",
        "/v1/approvals/events",
        "/v1/audit",
        "/v1/audit/verify",
        "/v1/admin/freeze",
        "/v1/admin/unfreeze",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
}
both!(lifecycle_test, super::lifecycle);

async fn decision_rules(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let id = propose(&app, "ticket_update", "set T-1005 priority to high").await;

    // Separation of duties: the key that invoked cannot decide, even with every role.
    let (s, v) = {
        let (s, _, v) = app
            .post_json(
                Some(app.key("admin")),
                "/v1/invoke",
                &json!({"workflow": "ticket_update", "input": {"text": "close ticket T-1004"}}),
                &[],
            )
            .await;
        (s, v)
    };
    assert_eq!(s, 200, "{v}");
    let own = v["approval_request_id"].as_str().expect("id").to_string();
    let (s, h, v) = decide(&app, app.key("admin"), &own, "approve", "mine").await;
    assert_error(s, &h, &v, 403, "forbidden");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("separation of duties"),
        "{v}"
    );
    // Roles: a viewer or an operator cannot decide.
    for role in ["viewer", "operator", "invoke"] {
        let (s, h, v) = decide(&app, app.key(role), &id, "approve", "ok").await;
        assert_error(s, &h, &v, 403, "forbidden");
    }
    // Another tenant's approver does not see it at all.
    let other = app.key_of("approver", "other");
    let (s, h, v) = decide(&app, other, &id, "approve", "ok").await;
    assert_error(s, &h, &v, 404, "not_found");
    let (s, h, v) = app.get(Some(other), &format!("/v1/approvals/{id}")).await;
    assert_error(s, &h, &v, 404, "not_found");
    let (_, _, list) = app.get(Some(other), "/v1/approvals").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");

    // Bad input: a reason is required and bounded; the body must be the right JSON.
    let path = format!("/v1/approvals/{id}/approve");
    let approver = app.key("approver");
    for body in [
        json!({}),
        json!({"reason": ""}),
        json!({"reason": "   "}),
        json!({"reason": "x".repeat(2001)}),
        json!({"reason": 5}),
        json!({"reason": "ok", "extra": true}),
    ] {
        let (s, h, v) = app.post_json(Some(approver), &path, &body, &[]).await;
        assert_error(s, &h, &v, 400, "invalid_input");
    }
    let resp = app
        .http
        .post(app.url(&path))
        .bearer_auth(approver)
        .send()
        .await
        .unwrap();
    let (s, h) = (resp.status(), resp.headers().clone());
    let v: Value = resp.json().await.unwrap();
    assert_error(s, &h, &v, 400, "invalid_input");
    let resp = app
        .http
        .post(app.url(&path))
        .bearer_auth(approver)
        .header("content-type", "application/json")
        .body("{\"reason\": ")
        .send()
        .await
        .unwrap();
    let (s, h) = (resp.status(), resp.headers().clone());
    let v: Value = resp.json().await.unwrap();
    assert_error(s, &h, &v, 400, "malformed_json");
    let (s, h, v) = decide(&app, approver, "apr_does_not_exist", "approve", "ok").await;
    assert_error(s, &h, &v, 404, "not_found");
    // None of that touched it.
    assert_eq!(detail(&app, &id).await["status"], "pending");

    // A decision is final.
    let (s, _, v) = decide(&app, approver, &id, "reject", "not needed").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "rejected");
    assert!(v["execution"].is_null(), "{v}");
    let (s, h, v) = decide(&app, approver, &id, "approve", "changed my mind").await;
    assert_error(s, &h, &v, 409, "conflict");
    let (s, h, v) = decide(&app, app.key("admin"), &id, "reject", "me too").await;
    assert_error(s, &h, &v, 409, "conflict");

    // Listing: filters, pages, and bad parameters.
    propose(&app, "ticket_update", "set T-1008 priority to low").await;
    let (_, _, page1) = app
        .get(Some(app.key("viewer")), "/v1/approvals?limit=2")
        .await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2, "{page1}");
    let cursor = page1["next_cursor"].as_str().expect("next page");
    let (_, _, page2) = app
        .get(
            Some(app.key("viewer")),
            &format!("/v1/approvals?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1, "{page2}");
    assert!(page2["next_cursor"].is_null());
    let mut ids: Vec<String> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids[2], id, "newest first: {ids:?}");
    ids.dedup();
    assert_eq!(ids.len(), 3);
    for bad in [
        "/v1/approvals?status=done",
        "/v1/approvals?limit=0",
        "/v1/approvals?limit=201",
        "/v1/approvals?limit=x",
        "/v1/approvals?cursor=garbage",
        "/v1/approvals?colour=red",
    ] {
        let (s, h, v) = app.get(Some(app.key("viewer")), bad).await;
        assert_error(s, &h, &v, 400, "invalid_input");
    }
    let (s, h, v) = app.get(Some(app.key("invoke")), "/v1/approvals").await;
    assert_error(s, &h, &v, 403, "forbidden");
}
both!(decision_rules_test, super::decision_rules);

async fn expiry(backend: Backend) {
    let app = TestApp::spawn(
        backend,
        &[("APPROVAL_TTL_SECS", "1"), ("APPROVAL_SWEEP_SECS", "1")],
    )
    .await;
    let id = propose(&app, "ticket_update", "close ticket T-1003").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while detail(&app, &id).await["status"] != "expired" {
        assert!(Instant::now() < deadline, "not expired in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, h, v) = decide(&app, app.key("approver"), &id, "approve", "too late").await;
    assert_error(s, &h, &v, 409, "conflict");
    assert_eq!(
        audit_actions(&app, &id).await,
        ["approval.created", "approval.expired"]
    );
    assert_eq!(
        app.metric(r#"agent_approvals_total{decision="expired"}"#)
            .await,
        Some(1.0)
    );
    assert_eq!(app.metric("agent_approvals_pending").await, Some(0.0));
    let db = pool(&app).await;
    assert_eq!(
        column(
            &db,
            "SELECT status FROM tickets WHERE tenant = 'demo' AND id = $1",
            "T-1003"
        )
        .await,
        "pending",
        "the seeded status, unchanged"
    );
}
both!(expiry_test, super::expiry);

async fn two_approvers(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let db = pool(&app).await;
    let id = propose(&app, "invoice_approval", "pay invoice INV-2002").await;
    assert_eq!(detail(&app, &id).await["required_approvals"], 2);

    let (s, _, v) = decide(&app, app.key("approver"), &id, "approve", "budget ok").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "pending", "one of two: {v}");
    assert_eq!(v["approvals_count"], 1);
    let (s, h, v) = decide(&app, app.key("approver"), &id, "approve", "twice").await;
    assert_error(s, &h, &v, 409, "conflict");
    assert_eq!(detail(&app, &id).await["approvals_count"], 1);
    assert_eq!(
        column(
            &db,
            "SELECT status FROM invoices WHERE tenant = 'demo' AND id = $1",
            "INV-2002"
        )
        .await,
        "open"
    );

    // A second, distinct approver (the admin key holds every role) completes it.
    let (s, _, v) = decide(&app, app.key("admin"), &id, "approve", "second sign-off").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "executed", "{v}");
    assert_eq!(v["approvals_count"], 2);
    assert_eq!(v["decisions"].as_array().unwrap().len(), 2);
    assert_eq!(
        column(
            &db,
            "SELECT status FROM invoices WHERE tenant = 'demo' AND id = $1",
            "INV-2002"
        )
        .await,
        "paid"
    );
    assert_eq!(
        audit_actions(&app, &id).await,
        [
            "approval.created",
            "approval.approved",
            "approval.approved",
            "approval.executing",
            "approval.executed"
        ]
    );
    // One reject is enough to reject an N-of-M request.
    let id = propose(&app, "invoice_approval", "pay invoice INV-2004").await;
    decide(&app, app.key("approver"), &id, "approve", "fine").await;
    let (s, _, v) = decide(&app, app.key("admin"), &id, "reject", "duplicate").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "rejected");
}
both!(two_approvers_test, super::two_approvers);

async fn write_freeze(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let db = pool(&app).await;
    let waiting = propose(&app, "ticket_update", "close ticket T-1007").await;
    let count = || async {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM approvals")
            .fetch_one(&db)
            .await
            .unwrap()
            .get("n");
        n
    };

    let op = app.key("operator");
    let (s, h, v) = app
        .post_json(
            Some(app.key("viewer")),
            "/v1/admin/freeze",
            &json!({"reason": "x"}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 403, "forbidden");
    let (s, h, v) = app
        .post_json(Some(op), "/v1/admin/freeze", &json!({}), &[])
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    let (s, _, v) = app
        .post_json(
            Some(op),
            "/v1/admin/freeze",
            &json!({"reason": "INC-7: bad writes"}),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["frozen"].clone(), v["changed"].clone()),
        (json!(true), json!(true))
    );
    let (_, _, v) = app
        .post_json(
            Some(op),
            "/v1/admin/freeze",
            &json!({"reason": "again"}),
            &[],
        )
        .await;
    assert_eq!(v["changed"], false, "already frozen: {v}");
    let (s, _, state) = app.get(Some(app.key("approver")), "/v1/admin/freeze").await;
    assert_eq!(s, 200);
    assert_eq!(state["frozen"], true);
    assert_eq!(state["reason"], "INC-7: bad writes");

    // New writes are refused at gate time, and nothing is stored.
    let before = count().await;
    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/invoke",
            &json!({"workflow": "ticket_update", "input": {"text": "close ticket T-1008"}}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 409, "writes_frozen");
    assert_eq!(count().await, before);
    // Reads still work.
    let (s, v) = app
        .invoke("support_ticket_summary", "Summarize T-1001")
        .await;
    assert_eq!((s.as_u16(), v["status"].clone()), (200, json!("success")));
    // Pending requests cannot be approved; rejecting is still possible.
    let (s, h, v) = decide(&app, app.key("approver"), &waiting, "approve", "go").await;
    assert_error(s, &h, &v, 409, "writes_frozen");
    assert_eq!(detail(&app, &waiting).await["status"], "pending");

    let (s, _, v) = app
        .post_json(
            Some(op),
            "/v1/admin/unfreeze",
            &json!({"reason": "INC-7 resolved"}),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["frozen"].clone(), v["changed"].clone()),
        (json!(false), json!(true))
    );
    let resp = app
        .http
        .post(app.url("/v1/admin/unfreeze"))
        .bearer_auth(op)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "an empty body is fine");
    let (s, _, v) = decide(&app, app.key("approver"), &waiting, "approve", "go").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "executed");
    propose(&app, "ticket_update", "close ticket T-1008").await;

    let (_, _, frozen) = app
        .get(Some(app.key("viewer")), "/v1/audit?action=writes.frozen")
        .await;
    assert_eq!(frozen["items"].as_array().unwrap().len(), 1, "{frozen}");
    assert_eq!(frozen["items"][0]["details"]["reason"], "INC-7: bad writes");
    let (_, _, unfrozen) = app
        .get(Some(app.key("viewer")), "/v1/audit?action=writes.unfrozen")
        .await;
    assert_eq!(unfrozen["items"].as_array().unwrap().len(), 1, "{unfrozen}");
    assert_eq!(verify(&app).await["ok"], true);
}
both!(write_freeze_test, super::write_freeze);

async fn bulk_cancel(backend: Backend) {
    let canary = [
        ("RELEASE_TRACK", "canary"),
        ("RELEASE_VERSION", "2.0.0-rc1"),
    ];
    let mut app = TestApp::spawn(backend, &canary).await;
    let c1 = propose(&app, "ticket_update", "close ticket T-1001").await;
    let c2 = propose(&app, "invoice_approval", "pay invoice INV-2001").await;
    let approved = propose(&app, "ticket_update", "set T-1004 priority to low").await;
    let (s, _, v) = decide(&app, app.key("approver"), &approved, "approve", "ok").await;
    assert_eq!((s.as_u16(), v["status"].clone()), (200, json!("executed")));
    assert_eq!(detail(&app, &c1).await["release"]["track"], "canary");

    // The canary is replaced by the stable release on the same database.
    app.restart(&[]).await;
    let stable = propose(&app, "ticket_update", "close ticket T-1005").await;

    let op = app.key("operator");
    let (s, h, v) = app
        .post_json(
            Some(app.key("approver")),
            "/v1/approvals/cancel",
            &json!({"track": "canary", "reason": "abort"}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 403, "forbidden");
    for body in [
        json!({"reason": "no filter"}),
        json!({"track": "canary"}),
        json!({"track": "", "reason": "empty"}),
    ] {
        let (s, h, v) = app
            .post_json(Some(op), "/v1/approvals/cancel", &body, &[])
            .await;
        assert_error(s, &h, &v, 400, "invalid_input");
    }
    let body = json!({"track": "canary", "version": "2.0.0-rc1", "reason": "canary aborted"});
    let idem = [("Idempotency-Key", "cancel-canary-1")];
    let (s, _, v) = app
        .post_json(Some(op), "/v1/approvals/cancel", &body, &idem)
        .await;
    assert_eq!(s, 200, "{v}");
    let mut want = vec![c1.clone(), c2.clone()];
    want.sort();
    assert_eq!(v, json!({"cancelled": 2, "ids": want}));
    let (_, h, replay) = app
        .post_json(Some(op), "/v1/approvals/cancel", &body, &idem)
        .await;
    assert_eq!(replay, v);
    assert_eq!(h.get("idempotency-replayed").unwrap(), "true");
    for id in [&c1, &c2] {
        let d = detail(&app, id).await;
        assert_eq!(d["status"], "cancelled", "{d}");
        assert_eq!(d["decisions"][0]["decision"], "cancel");
        assert_eq!(d["decisions"][0]["reason"], "canary aborted");
    }
    assert_eq!(detail(&app, &stable).await["status"], "pending");
    assert_eq!(detail(&app, &approved).await["status"], "executed");
    assert_eq!(app.metric("agent_approvals_pending").await, Some(1.0));
    let (s, h, v) = decide(&app, app.key("approver"), &c1, "approve", "late").await;
    assert_error(s, &h, &v, 409, "conflict");

    // Each start with a different release recorded release_changed in the system chain.
    let (s, _, sys) = app
        .get(
            Some(app.key("admin")),
            "/v1/audit?chain=system&action=release_changed",
        )
        .await;
    assert_eq!(s, 200, "{sys}");
    let items = sys["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{sys}");
    assert_eq!(items[0]["details"]["from"]["version"], "2.0.0-rc1");
    assert_eq!(items[0]["details"]["to"]["track"], "stable");
    let (s, h, v) = app
        .get(Some(app.key("operator")), "/v1/audit?chain=system")
        .await;
    assert_error(s, &h, &v, 403, "forbidden");
    let (_, _, sv) = app
        .get(Some(app.key("admin")), "/v1/audit/verify?chain=system")
        .await;
    assert_eq!(
        (sv["ok"].clone(), sv["checked"].clone()),
        (json!(true), json!(2))
    );
    // Restarting the same release records nothing new.
    app.restart(&[]).await;
    let (_, _, sys) = app
        .get(Some(app.key("admin")), "/v1/audit?chain=system")
        .await;
    assert_eq!(sys["items"].as_array().unwrap().len(), 2, "{sys}");
}
both!(bulk_cancel_test, super::bulk_cancel);

/// A minimal Server-Sent Events reader.
pub struct SseStream {
    resp: reqwest::Response,
    buf: String,
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: i64,
    pub event: String,
    pub data: Value,
}

impl SseStream {
    pub async fn open(app: &TestApp, key: &str, last_event_id: Option<i64>) -> SseStream {
        let mut req = reqwest::Client::new()
            .get(app.url("/v1/approvals/events"))
            .bearer_auth(key);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.expect("open the event stream");
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseStream {
            resp,
            buf: String::new(),
        }
    }

    /// The next event, or `None` when none arrives within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, Vec::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.trim_start().to_string());
                    }
                }
                if let (Some(id), Some(event)) = (id, event) {
                    let data = serde_json::from_str(&data.join("\n")).expect("JSON data");
                    return Some(SseEvent { id, event, data });
                }
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

async fn event_stream(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let (s, h, v) = app
        .get(Some(app.key("invoke")), "/v1/approvals/events")
        .await;
    assert_error(s, &h, &v, 403, "forbidden");
    let resp = app
        .http
        .get(app.url("/v1/approvals/events"))
        .bearer_auth(app.key("viewer"))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    let (s, h) = (resp.status(), resp.headers().clone());
    let v: Value = resp.json().await.unwrap();
    assert_error(s, &h, &v, 400, "invalid_input");

    let wait = Duration::from_secs(5);
    let mut sse = SseStream::open(&app, app.key("viewer"), None).await;
    let id = propose(&app, "ticket_update", "close ticket T-1010").await;
    let created = sse.next(wait).await.expect("created");
    assert_eq!(created.event, "created");
    assert_eq!(created.data["approval_id"], id.as_str());
    assert_eq!(created.data["status"], "pending");
    decide(&app, app.key("approver"), &id, "approve", "ok").await;
    let mut seen = vec![created.clone()];
    for want in ["approved", "executing", "executed"] {
        let ev = sse.next(wait).await.unwrap_or_else(|| panic!("no {want}"));
        assert_eq!(ev.event, want, "{ev:?}");
        assert_eq!(ev.data["approval_id"], id.as_str());
        seen.push(ev);
    }
    for pair in seen.windows(2) {
        assert!(pair[0].id < pair[1].id, "ids increase: {seen:?}");
    }
    let last = seen.last().unwrap().id;
    drop(sse);

    // While disconnected: two more requests, one rejected.
    let a = propose(&app, "ticket_update", "close ticket T-1011").await;
    let b = propose(&app, "ticket_update", "set T-1012 priority to high").await;
    decide(&app, app.key("approver"), &a, "reject", "no").await;

    let mut sse = SseStream::open(&app, app.key("approver"), Some(last)).await;
    let mut missed = Vec::new();
    while let Some(ev) = sse.next(Duration::from_millis(2500)).await {
        missed.push(ev);
    }
    let got: Vec<(String, String)> = missed
        .iter()
        .map(|e| {
            (
                e.event.clone(),
                e.data["approval_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("created".to_string(), a.clone()),
            ("created".to_string(), b.clone()),
            ("rejected".to_string(), a.clone()),
        ],
        "exactly the missed events, in order"
    );
    let ids: Vec<i64> = missed.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [last + 1, last + 2, last + 3],
        "no gaps, no duplicates"
    );
    // Live again on the resumed stream.
    decide(&app, app.key("approver"), &b, "approve", "ok").await;
    let next = sse.next(wait).await.expect("live after resume");
    assert_eq!((next.event.as_str(), next.id), ("approved", last + 4));
}
both!(event_stream_test, super::event_stream);

/// The invoices the stress tests pay.
const STRESS_INVOICES: [&str; 3] = ["INV-2001", "INV-2005", "INV-2008"];

/// Tickets and invoices the stress tests write to, each approval with a unique marker.
fn stress_requests(n: usize) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for inv in STRESS_INVOICES {
        out.push((
            "invoice_approval".to_string(),
            format!("pay invoice {inv}"),
            None,
        ));
    }
    let mut i = 0;
    while out.len() < n {
        let ticket = format!("T-{}", 1001 + (i % 12));
        let marker = format!("[crash-{i:02}]");
        out.push((
            "ticket_update".to_string(),
            format!("add a note to {ticket} comment: {marker}"),
            Some(marker),
        ));
        i += 1;
    }
    out
}

/// Approves `id` on whichever process `base` points at, retrying through crashes until
/// the decision is known: 200, or 409 because an earlier attempt's answer was lost.
async fn approve_until_decided(base: Arc<Mutex<String>>, key: String, id: String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(Instant::now() < deadline, "approval {id} never got through");
        let url = format!("{}/v1/approvals/{id}/approve", base.lock().unwrap());
        let sent = client
            .post(url)
            .bearer_auth(&key)
            .json(&json!({"reason": "stress"}))
            .send()
            .await;
        if let Ok(resp) = sent {
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            match status {
                200 => return,
                409 if body["error"]["code"] == "conflict" => return,
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until no approval is approved or executing.
async fn settled(db: &sqlx::AnyPool, within: Duration) -> BTreeMap<String, (String, i64)> {
    let deadline = Instant::now() + within;
    loop {
        let rows = sqlx::query("SELECT id, status, attempts FROM approvals")
            .fetch_all(db)
            .await
            .unwrap();
        let all: BTreeMap<String, (String, i64)> = rows
            .iter()
            .map(|r| (r.get("id"), (r.get("status"), r.get("attempts"))))
            .collect();
        if all
            .values()
            .all(|(s, _)| s != "approved" && s != "executing" && s != "pending")
        {
            return all;
        }
        assert!(Instant::now() < deadline, "not settled: {all:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every approval executed exactly once: one `executed` status and attempt, its marker in
/// exactly one ticket body once, each of `invoices` paid, one `approval.executed` event
/// each, and an intact audit chain.
async fn assert_exactly_once(
    app: &TestApp,
    db: &sqlx::AnyPool,
    ids: &[(String, Option<String>)],
    invoices: &[&str],
) {
    let all = settled(db, Duration::from_secs(60)).await;
    for (id, _) in ids {
        assert_eq!(all[id], ("executed".to_string(), 1), "{id}: {all:?}");
    }
    let bodies: Vec<String> = sqlx::query("SELECT body FROM tickets WHERE tenant = 'demo'")
        .fetch_all(db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("body"))
        .collect();
    for marker in ids.iter().filter_map(|(_, m)| m.as_ref()) {
        let n: usize = bodies
            .iter()
            .map(|b| b.matches(marker.as_str()).count())
            .sum();
        assert_eq!(n, 1, "{marker} applied {n} times");
    }
    for inv in invoices {
        assert_eq!(
            column(
                db,
                "SELECT status FROM invoices WHERE tenant = 'demo' AND id = $1",
                inv
            )
            .await,
            "paid"
        );
    }
    let executed: Vec<String> = sqlx::query(
        "SELECT resource FROM audit_events WHERE tenant = 'demo' AND action = 'approval.executed'",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("resource"))
    .collect();
    assert_eq!(executed.len(), ids.len(), "{executed:?}");
    let unique: HashSet<&String> = executed.iter().collect();
    assert_eq!(unique.len(), ids.len());
    let v = verify(app).await;
    assert_eq!(v["ok"], true, "{v}");
}

async fn crash_recovery(backend: Backend) {
    let env = [("APPROVAL_SWEEP_SECS", "1")];
    let mut app = TestApp::spawn(backend, &env).await;
    let db = pool(&app).await;
    let mut ids = Vec::new();
    for (workflow, text, marker) in stress_requests(20) {
        ids.push((propose(&app, &workflow, &text).await, marker));
    }
    let base = Arc::new(Mutex::new(app.base.clone()));
    let key = app.key("approver").to_string();
    let mut tasks = Vec::new();
    for (id, _) in &ids {
        let (base, key, id) = (base.clone(), key.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..2500))).await;
            approve_until_decided(base, key, id).await;
        }));
    }
    // SIGKILL at random points while the approvals stream in, restarting on the same db.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(rand::random_range(100..700))).await;
        app.restart(&env).await;
        *base.lock().unwrap() = app.base.clone();
    }
    for t in tasks {
        t.await.expect("approver task");
    }
    assert_exactly_once(&app, &db, &ids, &STRESS_INVOICES).await;
}
both!(crash_recovery_test, super::crash_recovery);

async fn two_processes_race(backend: Backend) {
    let env = [("APPROVAL_SWEEP_SECS", "1")];
    let mut a = TestApp::spawn(backend, &env).await;
    let b = a.replica(&env).await;
    let db = pool(&a).await;
    let mut ids = Vec::new();
    for (workflow, text, marker) in stress_requests(20) {
        ids.push((propose(&a, &workflow, &text).await, marker));
    }
    let (via_api, left_approved) = ids.split_at(10);
    let base_a = Arc::new(Mutex::new(a.base.clone()));
    let base_b = Arc::new(Mutex::new(b.base.clone()));
    let key = a.key("approver").to_string();
    let mut tasks = Vec::new();
    for (i, (id, _)) in via_api.iter().enumerate() {
        let base = if i % 2 == 0 {
            base_a.clone()
        } else {
            base_b.clone()
        };
        let (key, id) = (key.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..1500))).await;
            approve_until_decided(base, key, id).await;
        }));
    }
    // The state a process leaves when it dies right after committing decisions: approved,
    // not executed. Both processes' sweepers race for these.
    let now = chrono::Utc::now().timestamp_millis();
    for (id, _) in left_approved {
        sqlx::query(
            "UPDATE approvals SET status = 'approved', approvals_count = required_approvals, \
             decided_at = $1, updated_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    }
    // Kill one process mid-stream: what it approved but did not execute is left to the
    // sweepers too.
    tokio::time::sleep(Duration::from_millis(rand::random_range(300..900))).await;
    a.restart(&env).await;
    *base_a.lock().unwrap() = a.base.clone();
    for t in tasks {
        t.await.expect("approver task");
    }
    assert_exactly_once(&a, &db, &ids, &STRESS_INVOICES).await;
    drop(b);
}
both!(two_processes_race_test, super::two_processes_race);

/// A receiver of an HTTP write tool: records each call's Idempotency-Key; the first call
/// never answers (the service is killed while waiting), later ones answer.
async fn receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = calls.clone();
    let router = axum::Router::new().route(
        "/refunds/{order}",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let first = {
                    let mut calls = seen.lock().unwrap();
                    calls.push(key.clone());
                    calls.len() == 1
                };
                if first {
                    std::future::pending::<()>().await;
                }
                axum::Json(json!({"refund": "rf_1", "idempotency_key": key}))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, calls)
}

async fn http_write_crash_is_retried_with_the_same_key(backend: Backend) {
    let fake = FakeOllama::start().await;
    let (port, calls) = receiver().await;
    let tmp = temp_dir();
    let dir = tmp.path();
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "egress_allowlist = [\"127.0.0.2\"]\n\
             [[http_tools]]\nname = \"refund_order\"\ndescription = \"refund an order\"\nmethod = \"POST\"\n\
             url = \"http://127.0.0.2:{port}/refunds/{{order_id}}\"\nside_effect = \"write\"\ntimeout_ms = 2000\n\
             [http_tools.schema]\ntype = \"object\"\nrequired = [\"order_id\"]\n\
             [http_tools.schema.properties.order_id]\ntype = \"string\"\n\
             [workflow_tools]\nticket_update = [\"refund_order\"]\n"
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap().to_string();
    let url = fake.url();
    let env = [
        ("USE_OLLAMA", "true"),
        ("OLLAMA_BASE_URL", url.as_str()),
        ("OLLAMA_MODEL", "llama3.2"),
        ("AGENT_CONFIG", cfg.as_str()),
        ("APPROVAL_SWEEP_SECS", "1"),
    ];
    let mut app = TestApp::spawn(backend, &env).await;
    fake.push_reply(Reply::tool_call(
        "refund_order",
        json!({"order_id": "ord-77"}),
    ));
    let id = propose(&app, "ticket_update", "refund order ord-77").await;

    // The approval starts the call; the receiver holds it; the service dies mid-call.
    let approving = {
        let (url, key) = (
            app.url(&format!("/v1/approvals/{id}/approve")),
            app.key("approver").to_string(),
        );
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"reason": "refund approved"}))
                .send()
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the write was never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.kill9();
    assert!(
        approving.await.unwrap().is_err(),
        "the approve call died with the process"
    );
    let db = pool(&app).await;
    assert_eq!(
        column(&db, "SELECT status FROM approvals WHERE id = $1", &id).await,
        "executing"
    );

    // After a restart the lease runs out and the call is retried with the same key.
    app.restart(&env).await;
    let all = settled(&db, Duration::from_secs(30)).await;
    assert_eq!(all[&id], ("executed".to_string(), 2), "{all:?}");
    assert_eq!(*calls.lock().unwrap(), [id.clone(), id.clone()]);
    let d = detail(&app, &id).await;
    assert_eq!(d["execution"]["result"]["refund"], "rf_1", "{d}");
    assert_eq!(
        audit_actions(&app, &id).await,
        [
            "approval.created",
            "approval.approved",
            "approval.executing",
            "approval.executing",
            "approval.executed"
        ]
    );
    assert_eq!(verify(&app).await["ok"], true);
}
both!(
    http_write_crash_test,
    super::http_write_crash_is_retried_with_the_same_key
);

/// A process killed inside the execution transaction (PostgreSQL: blocked on the record's
/// lock; SQLite: blocked on the write lock, inside the decision) commits nothing: after a
/// restart the write happens exactly once.
async fn killed_inside_a_transaction(backend: Backend) {
    let env = [("APPROVAL_SWEEP_SECS", "1")];
    let mut app = TestApp::spawn(backend, &env).await;
    let db = pool(&app).await;
    let id = propose(
        &app,
        "ticket_update",
        "add a note to T-1002 comment: [txn-kill]",
    )
    .await;
    let mut blocker = db.acquire().await.unwrap();
    match backend {
        Backend::Postgres => {
            sqlx::query("BEGIN").execute(&mut *blocker).await.unwrap();
            sqlx::query(
                "SELECT id FROM tickets WHERE tenant = 'demo' AND id = 'T-1002' FOR UPDATE",
            )
            .execute(&mut *blocker)
            .await
            .unwrap();
        }
        Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *blocker)
                .await
                .unwrap();
        }
    }
    let approving = {
        let (url, key) = (
            app.url(&format!("/v1/approvals/{id}/approve")),
            app.key("approver").to_string(),
        );
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"reason": "ok"}))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if backend == Backend::Postgres {
        // The decision committed; the execution claim waits on the ticket's lock.
        let status: String = sqlx::query("SELECT status FROM approvals WHERE id = $1")
            .bind(&id)
            .fetch_one(&db)
            .await
            .unwrap()
            .get("status");
        assert_eq!(status, "approved");
    }
    app.kill9();
    assert!(approving.await.unwrap().is_err());
    sqlx::query("ROLLBACK")
        .execute(&mut *blocker)
        .await
        .unwrap();
    drop(blocker);
    let status = column(&db, "SELECT status FROM approvals WHERE id = $1", &id).await;
    let want = if backend == Backend::Postgres {
        "approved"
    } else {
        "pending"
    };
    assert_eq!(status, want, "nothing of the killed transaction committed");
    assert!(
        !ticket_body(&db, "demo", "T-1002")
            .await
            .contains("[txn-kill]")
    );

    app.restart(&env).await;
    if backend == Backend::Sqlite {
        let (s, _, v) = decide(&app, app.key("approver"), &id, "approve", "ok").await;
        assert_eq!(s, 200, "{v}");
    }
    assert_exactly_once(&app, &db, &[(id, Some("[txn-kill]".to_string()))], &[]).await;
}
both!(
    killed_inside_a_transaction_test,
    super::killed_inside_a_transaction
);
