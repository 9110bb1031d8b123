//! The approval state machine against a real (SQLite) database and a clock moved by hand.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::*;
use crate::config::ToolConfig;
use crate::db::approvals::Release;
use crate::domain::{Roles, TraceId};
use crate::guardrails::Policy;
use crate::tools::ToolCtx;

/// A clock the test moves by hand.
struct ManualClock(Mutex<i64>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let ms = *self.0.lock().expect("clock");
        DateTime::from_timestamp_millis(ms).expect("valid time")
    }
}

impl ManualClock {
    fn advance(&self, ms: i64) {
        *self.0.lock().expect("clock") += ms;
    }
}

struct Fixture {
    queue: ApprovalQueue,
    db: Db,
    clock: Arc<ManualClock>,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const T0: i64 = 1_750_000_000_000;

async fn fixture() -> Fixture {
    let dir =
        std::env::temp_dir().join(format!("approvals-unit-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = Db::connect(&format!("sqlite://{}/t.db", dir.display()))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    crate::db::demo::seed(&db).await.expect("seed");
    let tools = Arc::new(Registry::new(&ToolConfig::default()).expect("tools"));
    let clock = Arc::new(ManualClock(Mutex::new(T0)));
    let policy = Policy::load(None).expect("policy");
    let queue = ApprovalQueue::new(
        db.clone(),
        tools,
        Arc::new(Metrics::new()),
        clock.clone(),
        policy.redactor.clone(),
        policy.version.to_string(),
    );
    Fixture {
        queue,
        db,
        clock,
        dir,
    }
}

fn apr(id: &str) -> ApprovalId {
    ApprovalId::parse(id).expect("approval id")
}

fn tenant() -> TenantId {
    TenantId::parse("demo").expect("tenant")
}

fn key(id: &str) -> Principal {
    Principal {
        key_id: id.into(),
        key_name: format!("name-of-{id}"),
        tenant: tenant(),
        roles: Roles::parse("approver").expect("roles"),
    }
}

fn record(id: &str, tool: &str, arguments: Value, required: i64, track: &str) -> NewApproval {
    NewApproval {
        id: apr(id),
        tenant: tenant(),
        workflow: "ticket_update".into(),
        tool: tool.into(),
        arguments,
        proposed_change: json!({"resource": "ticket/T-1003", "before": {}, "after": {}, "diff": ""}),
        evidence: json!([]),
        risk_tier: 2,
        requested_by: "key_requester".into(),
        requested_by_user: None,
        request_id: "req_1".into(),
        trace_id: TraceId::parse("tr_1").expect("trace id"),
        required_approvals: required,
        release: Release {
            version: "1.0.0".into(),
            git_sha: "abc".into(),
            track: track.into(),
        },
        policy_version: "guardrails-v3".into(),
        created_at: T0,
        expires_at: T0 + 60_000,
    }
}

fn close_ticket(id: &str, ticket: &str) -> NewApproval {
    record(
        id,
        "ticket_update",
        json!({"ticket_id": ticket, "comment": format!("note {id}")}),
        1,
        "stable",
    )
}

async fn status(f: &Fixture, id: &str) -> String {
    approvals::get(&f.db, &tenant(), &apr(id))
        .await
        .expect("get")
        .expect("exists")
        .status
}

async fn actions(f: &Fixture, resource: &str) -> Vec<String> {
    let filter = audit::Filter {
        resource: Some(resource.into()),
        ..Default::default()
    };
    let mut events = audit::list(&f.db, &Chain::Tenant(tenant()), &filter, 100)
        .await
        .expect("audit");
    events.reverse();
    events.into_iter().map(|e| e.action).collect()
}

async fn ticket_body(f: &Fixture, id: &str) -> String {
    sqlx::query("SELECT body FROM tickets WHERE tenant = 'demo' AND id = $1")
        .bind(id)
        .fetch_one(f.db.pool())
        .await
        .expect("ticket")
        .get("body")
}

async fn verified(f: &Fixture) -> audit::Verification {
    audit::verify(&f.db, &Chain::Tenant(tenant()))
        .await
        .expect("verify")
}

#[tokio::test]
async fn an_approval_executes_the_write_once_and_audits_every_step() {
    let f = fixture().await;
    f.queue
        .create(&close_ticket("apr_1", "T-1003"))
        .await
        .expect("create");
    let a = f
        .queue
        .decide(
            &key("key_b"),
            &apr("apr_1"),
            Verdict::Approve,
            "ok",
            "req_2",
        )
        .await
        .expect("approve");
    assert_eq!(a.status, "executed");
    assert_eq!(a.attempts, 1);
    assert!(
        a.result.expect("result")["body"]
            .as_str()
            .expect("body")
            .ends_with("note apr_1")
    );
    assert_eq!(
        ticket_body(&f, "T-1003")
            .await
            .matches("note apr_1")
            .count(),
        1
    );
    assert_eq!(
        f.queue
            .execute(&tenant(), &apr("apr_1"))
            .await
            .expect("again"),
        Execution::NotClaimed,
        "an executed request is never claimed again"
    );
    assert_eq!(
        actions(&f, "approval/apr_1").await,
        [
            "approval.created",
            "approval.approved",
            "approval.executing",
            "approval.executed"
        ]
    );
    let v = verified(&f).await;
    assert!(v.ok, "{v:?}");
    assert_eq!(v.checked, 4);
}

#[tokio::test]
async fn the_requester_cannot_decide_and_a_decision_is_final() {
    let f = fixture().await;
    f.queue
        .create(&close_ticket("apr_1", "T-1003"))
        .await
        .expect("create");
    let err = f
        .queue
        .decide(
            &key("key_requester"),
            &apr("apr_1"),
            Verdict::Approve,
            "mine",
            "r",
        )
        .await
        .expect_err("self-approval");
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(
        err.message.contains("separation of duties"),
        "{}",
        err.message
    );
    let a = f
        .queue
        .decide(&key("key_b"), &apr("apr_1"), Verdict::Reject, "no", "r")
        .await
        .expect("reject");
    assert_eq!(a.status, "rejected");
    for verdict in [Verdict::Approve, Verdict::Reject] {
        let err = f
            .queue
            .decide(&key("key_c"), &apr("apr_1"), verdict, "late", "r")
            .await
            .expect_err("decided");
        assert_eq!(err.code, ErrorCode::Conflict, "{}", err.message);
    }
    let err = f
        .queue
        .decide(
            &key("key_b"),
            &apr("apr_missing"),
            Verdict::Approve,
            "x",
            "r",
        )
        .await
        .expect_err("missing");
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(!ticket_body(&f, "T-1003").await.contains("note apr_1"));
}

#[tokio::test]
async fn two_approvals_are_needed_and_an_approver_counts_once() {
    let f = fixture().await;
    let rec = record(
        "apr_2",
        "invoice_pay",
        json!({"invoice_id": "INV-2002", "amount_usd": 18400.0}),
        2,
        "stable",
    );
    f.queue.create(&rec).await.expect("create");
    let a = f
        .queue
        .decide(
            &key("key_b"),
            &apr("apr_2"),
            Verdict::Approve,
            "first",
            "r1",
        )
        .await
        .expect("first");
    assert_eq!((a.status.as_str(), a.approvals_count), ("pending", 1));
    let err = f
        .queue
        .decide(
            &key("key_b"),
            &apr("apr_2"),
            Verdict::Approve,
            "again",
            "r2",
        )
        .await
        .expect_err("same approver");
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(status(&f, "apr_2").await, "pending");
    let a = f
        .queue
        .decide(
            &key("key_c"),
            &apr("apr_2"),
            Verdict::Approve,
            "second",
            "r3",
        )
        .await
        .expect("second");
    assert_eq!((a.status.as_str(), a.approvals_count), ("executed", 2));
    let paid: String =
        sqlx::query("SELECT status FROM invoices WHERE tenant = 'demo' AND id = 'INV-2002'")
            .fetch_one(f.db.pool())
            .await
            .expect("invoice")
            .get("status");
    assert_eq!(paid, "paid");
    let decisions = approvals::decisions(&f.db, &tenant(), &apr("apr_2"))
        .await
        .expect("decisions");
    assert_eq!(decisions.len(), 2);
}

#[tokio::test]
async fn expiry_follows_the_clock() {
    let f = fixture().await;
    f.queue
        .create(&close_ticket("apr_3", "T-1004"))
        .await
        .expect("create");
    assert_eq!(f.queue.sweep().await.expect("sweep").expired, 0);
    f.clock.advance(60_001);
    let err = f
        .queue
        .decide(&key("key_b"), &apr("apr_3"), Verdict::Approve, "late", "r")
        .await
        .expect_err("expired");
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(err.message.contains("expired"), "{}", err.message);
    assert_eq!(f.queue.sweep().await.expect("sweep").expired, 1);
    assert_eq!(status(&f, "apr_3").await, "expired");
    assert_eq!(f.queue.sweep().await.expect("sweep").expired, 0);
    assert_eq!(
        actions(&f, "approval/apr_3").await,
        ["approval.created", "approval.expired"]
    );
}

/// Marks a request approved as a committed decision would, without executing it: the
/// state a crash right after the decision leaves.
async fn approve_without_executing(f: &Fixture, id: &str) {
    let mut tx = f.db.pool().begin().await.expect("tx");
    let a = approvals::count_approve(&mut tx, &tenant(), &apr(id), T0)
        .await
        .expect("count")
        .expect("pending");
    assert_eq!(a.status, "approved");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn a_freeze_refuses_new_writes_and_approvals_and_holds_execution() {
    let f = fixture().await;
    let op = key("key_op");
    let (state, changed) = f
        .queue
        .set_freeze(&op, true, Some("incident 42"), "r")
        .await
        .expect("freeze");
    assert!(state.frozen && changed);
    let (_, changed) = f
        .queue
        .set_freeze(&op, true, Some("again"), "r")
        .await
        .expect("freeze twice");
    assert!(!changed, "freezing a frozen tenant changes nothing");
    let err = f
        .queue
        .create(&close_ticket("apr_4", "T-1005"))
        .await
        .expect_err("frozen");
    assert_eq!(err.code, ErrorCode::WritesFrozen);
    assert!(err.message.contains("incident 42"), "{}", err.message);
    assert!(
        approvals::get(&f.db, &tenant(), &apr("apr_4"))
            .await
            .expect("get")
            .is_none(),
        "nothing stored"
    );

    f.queue
        .set_freeze(&op, false, None, "r")
        .await
        .expect("unfreeze");
    f.queue
        .create(&close_ticket("apr_5", "T-1005"))
        .await
        .expect("create");
    f.queue
        .set_freeze(&op, true, Some("again"), "r")
        .await
        .expect("freeze");
    let err = f
        .queue
        .decide(&key("key_b"), &apr("apr_5"), Verdict::Approve, "ok", "r")
        .await
        .expect_err("frozen approve");
    assert_eq!(err.code, ErrorCode::WritesFrozen);
    assert_eq!(status(&f, "apr_5").await, "pending");

    // Approved before the freeze, not yet executed: held, then executed once unfrozen.
    approve_without_executing(&f, "apr_5").await;
    assert_eq!(
        f.queue
            .execute(&tenant(), &apr("apr_5"))
            .await
            .expect("held"),
        Execution::Held
    );
    assert_eq!(status(&f, "apr_5").await, "approved");
    f.queue
        .set_freeze(&op, false, None, "r")
        .await
        .expect("unfreeze");
    assert_eq!(f.queue.sweep().await.expect("sweep").executed, 1);
    assert_eq!(status(&f, "apr_5").await, "executed");
    let all = audit::list(
        &f.db,
        &Chain::Tenant(tenant()),
        &audit::Filter::default(),
        100,
    )
    .await
    .expect("audit");
    let freezes = all
        .iter()
        .filter(|e| e.action.starts_with("writes."))
        .count();
    assert_eq!(
        freezes, 4,
        "two freezes and two unfreezes changed the state"
    );
    assert!(verified(&f).await.ok);
}

#[tokio::test]
async fn a_claim_that_never_commits_leaves_the_request_approved() {
    let f = fixture().await;
    f.queue
        .create(&close_ticket("apr_6", "T-1008"))
        .await
        .expect("create");
    approve_without_executing(&f, "apr_6").await;
    {
        // A process that claimed it and died before committing.
        let mut tx = f.db.pool().begin().await.expect("tx");
        let attempt = approvals::claim(&mut tx, &tenant(), &apr("apr_6"), None, T0)
            .await
            .expect("claim");
        assert_eq!(attempt, Some(1));
        let ctx = ToolCtx {
            tenant: tenant(),
            db: f.db.clone(),
        };
        f.queue
            .tools
            .execute_in(
                &mut tx,
                &ctx,
                "ticket_update",
                &json!({"ticket_id": "T-1008", "comment": "note apr_6"}),
            )
            .await
            .expect("write");
    }
    assert_eq!(status(&f, "apr_6").await, "approved");
    assert!(!ticket_body(&f, "T-1008").await.contains("note apr_6"));
    let sweep = f.queue.sweep().await.expect("sweep");
    assert_eq!(sweep.executed, 1);
    assert_eq!(f.queue.sweep().await.expect("sweep").executed, 0);
    assert_eq!(
        ticket_body(&f, "T-1008")
            .await
            .matches("note apr_6")
            .count(),
        1
    );
    let a = approvals::get(&f.db, &tenant(), &apr("apr_6"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((a.status.as_str(), a.attempts), ("executed", 1));
}

#[tokio::test]
async fn a_write_that_no_longer_applies_is_recorded_as_failed() {
    let f = fixture().await;
    let rec = record(
        "apr_7",
        "invoice_pay",
        json!({"invoice_id": "INV-2003", "amount_usd": 342.75}),
        1,
        "stable",
    );
    f.queue.create(&rec).await.expect("create");
    let a = f
        .queue
        .decide(&key("key_b"), &apr("apr_7"), Verdict::Approve, "ok", "r")
        .await
        .expect("approve");
    assert_eq!(a.status, "failed");
    assert!(a.error.expect("error").contains("already paid"));
    assert_eq!(
        actions(&f, "approval/apr_7")
            .await
            .last()
            .map(String::as_str),
        Some("approval.failed")
    );
}

#[tokio::test]
async fn bulk_cancel_takes_only_pending_requests_of_the_release() {
    let f = fixture().await;
    for (id, ticket, track) in [
        ("apr_c1", "T-1001", "canary"),
        ("apr_c2", "T-1004", "canary"),
        ("apr_s1", "T-1005", "stable"),
    ] {
        let mut rec = close_ticket(id, ticket);
        rec.release.track = track.into();
        f.queue.create(&rec).await.expect("create");
    }
    let err = f
        .queue
        .cancel(&key("key_op"), None, None, "no filter", "r")
        .await
        .expect_err("filter required");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let ids = f
        .queue
        .cancel(&key("key_op"), Some("canary"), None, "canary aborted", "r")
        .await
        .expect("cancel");
    assert_eq!(ids, [apr("apr_c1"), apr("apr_c2")]);
    assert_eq!(status(&f, "apr_c1").await, "cancelled");
    assert_eq!(status(&f, "apr_s1").await, "pending");
    let again = f
        .queue
        .cancel(&key("key_op"), Some("canary"), Some("1.0.0"), "again", "r")
        .await
        .expect("cancel");
    assert!(again.is_empty());
    let d = approvals::decisions(&f.db, &tenant(), &apr("apr_c2"))
        .await
        .expect("decisions");
    assert_eq!(d[0].decision, "cancel");
    assert_eq!(d[0].reason, "canary aborted");
}

#[tokio::test]
async fn verify_names_the_edited_or_deleted_event() {
    let f = fixture().await;
    for (id, ticket) in [
        ("apr_a", "T-1001"),
        ("apr_b", "T-1004"),
        ("apr_c", "T-1005"),
    ] {
        f.queue
            .create(&close_ticket(id, ticket))
            .await
            .expect("create");
    }
    let v = verified(&f).await;
    assert_eq!((v.ok, v.checked), (true, 3));

    sqlx::query("UPDATE audit_events SET details = '{\"tool\":\"forged\"}' WHERE tenant = 'demo' AND seq = 2")
        .execute(f.db.pool())
        .await
        .expect("tamper");
    let v = verified(&f).await;
    let b = v.first_broken.expect("broken");
    assert_eq!((v.ok, b.seq, v.checked), (false, 2, 1));
    assert!(b.id.is_some() && b.reason.contains("edited"), "{b:?}");

    sqlx::query("DELETE FROM audit_events WHERE tenant = 'demo' AND seq = 2")
        .execute(f.db.pool())
        .await
        .expect("delete");
    let b = verified(&f).await.first_broken.expect("broken");
    assert_eq!((b.seq, b.id.as_deref()), (2, None));
    assert!(b.reason.contains("missing"), "{b:?}");

    sqlx::query("DELETE FROM audit_events WHERE tenant = 'demo' AND seq >= 2")
        .execute(f.db.pool())
        .await
        .expect("truncate");
    let v = verified(&f).await;
    let b = v.first_broken.expect("broken");
    assert_eq!((b.seq, b.id.as_deref(), v.checked), (2, None, 1));
    assert!(b.reason.contains("end of the chain"), "{b:?}");
}
