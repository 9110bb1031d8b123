//! `Idempotency-Key`: the same key and body replays the first response; another body is 422.

use serde_json::json;

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

async fn replay_and_mismatch(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let key = app.key("invoke");
    let body =
        json!({"workflow": "ticket_update", "input": {"text": "set T-1005 priority to high"}});
    let (s1, h1, v1) = app
        .post_json(
            Some(key),
            "/v1/invoke",
            &body,
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(s1, 200, "{v1}");
    assert!(h1.get("idempotency-replayed").is_none());
    let (s2, h2, v2) = app
        .post_json(
            Some(key),
            "/v1/invoke",
            &body,
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(s2, 200);
    assert_eq!(h2["idempotency-replayed"], "true");
    assert_eq!(v1, v2, "the replay is the first response, byte for byte");

    // One approval only, not two.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db.url).await.unwrap();
    let n: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) AS n FROM approvals")
            .fetch_one(&pool)
            .await
            .unwrap(),
        "n",
    );
    assert_eq!(n, 1);

    let other =
        json!({"workflow": "ticket_update", "input": {"text": "set T-1005 priority to low"}});
    let (s, h, v) = app
        .post_json(
            Some(key),
            "/v1/invoke",
            &other,
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_error(s, &h, &v, 422, "idempotency_key_reused");

    // Keys are per tenant: the other tenant may use the same key string.
    let (s, h, _) = app
        .post_json(
            Some(app.key_of("invoke", "other")),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": {"text": "refunds"}}),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(s, 200);
    assert!(h.get("idempotency-replayed").is_none());

    let long = "k".repeat(300);
    let (s, h, v) = app
        .post_json(
            Some(key),
            "/v1/invoke",
            &body,
            &[("Idempotency-Key", &long)],
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
}
both!(replay_test, super::replay_and_mismatch);
