//! The audit log over HTTP: filters and pages, the per-tenant chain and its hash links,
//! key changes from the command line, and tamper detection (an edited or deleted row is
//! named by `/v1/audit/verify`).

use serde_json::{Value, json};
use sqlx::Row;

use crate::approvals::{decide, pool, propose, verify};
use crate::both;
use crate::helpers::{Backend, TestApp, assert_error, run_cli};

async fn tampering_is_detected(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let db = pool(&app).await;
    let id = propose(&app, "ticket_update", "close ticket T-1003").await;
    let (s, _, v) = decide(&app, app.key("approver"), &id, "approve", "fine").await;
    assert_eq!(s, 200, "{v}");
    let v = verify(&app).await;
    assert_eq!(v["ok"], true, "{v}");
    let total = v["checked"].as_i64().unwrap();
    assert!(total >= 4, "{v}");

    let (_, _, found) = app
        .get(
            Some(app.key("viewer")),
            "/v1/audit?action=approval.approved",
        )
        .await;
    let event = &found["items"][0];
    let seq = event["seq"].as_i64().unwrap();
    let original: String =
        sqlx::query("SELECT details FROM audit_events WHERE tenant = 'demo' AND seq = $1")
            .bind(seq)
            .fetch_one(&db)
            .await
            .unwrap()
            .get("details");

    // Edit one row's details behind the service's back.
    let forged = original.replace("fine", "forged");
    assert_ne!(forged, original);
    sqlx::query("UPDATE audit_events SET details = $1 WHERE tenant = 'demo' AND seq = $2")
        .bind(&forged)
        .bind(seq)
        .execute(&db)
        .await
        .unwrap();
    let v = verify(&app).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_broken"]["seq"], seq, "{v}");
    assert_eq!(v["first_broken"]["id"], event["id"], "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("edited"),
        "{v}"
    );
    assert_eq!(v["checked"], seq - 1, "{v}");

    // Put it back: the chain is whole again.
    sqlx::query("UPDATE audit_events SET details = $1 WHERE tenant = 'demo' AND seq = $2")
        .bind(&original)
        .bind(seq)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(verify(&app).await["ok"], true);

    // Delete one row: the gap is named, with no id (the event is gone).
    sqlx::query("DELETE FROM audit_events WHERE tenant = 'demo' AND seq = $1")
        .bind(seq)
        .execute(&db)
        .await
        .unwrap();
    let v = verify(&app).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_broken"]["seq"], seq, "{v}");
    assert!(v["first_broken"]["id"].is_null(), "{v}");
    assert!(
        v["first_broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{v}"
    );
    // Another tenant's chain is untouched.
    let (_, _, other) = app
        .get(Some(app.key_of("approver", "other")), "/v1/audit/verify")
        .await;
    assert_eq!(other["ok"], true, "{other}");
    assert_eq!(other["chain"], "other");
}
both!(tampering_is_detected_test, super::tampering_is_detected);

async fn listing_filters_and_pages(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let viewer = app.key("viewer");
    let mut ids = Vec::new();
    for text in [
        "close ticket T-1001",
        "close ticket T-1004",
        "close ticket T-1005",
    ] {
        ids.push(propose(&app, "ticket_update", text).await);
    }

    // The whole chain, newest first, each event linked to the one before it.
    let (s, _, all) = app.get(Some(viewer), "/v1/audit?limit=200").await;
    assert_eq!(s, 200, "{all}");
    let items = all["items"].as_array().unwrap();
    for pair in items.windows(2) {
        assert_eq!(
            pair[0]["seq"].as_i64().unwrap(),
            pair[1]["seq"].as_i64().unwrap() + 1
        );
        assert_eq!(pair[0]["prev_hash"], pair[1]["hash"], "{pair:?}");
    }
    assert_eq!(items.last().unwrap()["seq"], 1);
    assert_eq!(items[0]["action"], "approval.created");
    assert_eq!(items[0]["policy_version"], "guardrails-v4");
    assert_eq!(items[0]["chain"], "demo");
    assert!(!items[0]["request_id"].as_str().unwrap().is_empty());

    // Pages.
    let (_, _, p1) = app
        .get(Some(viewer), "/v1/audit?action=approval.created&limit=2")
        .await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 2, "{p1}");
    let cursor = p1["next_cursor"].as_str().expect("a next page");
    let (_, _, p2) = app
        .get(
            Some(viewer),
            &format!("/v1/audit?action=approval.created&limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1, "{p2}");
    assert!(p2["next_cursor"].is_null());
    assert_eq!(p2["items"][0]["resource"], format!("approval/{}", ids[0]));

    // Filters.
    let (_, _, one) = app
        .get(
            Some(viewer),
            &format!("/v1/audit?resource=approval/{}", ids[1]),
        )
        .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1, "{one}");
    let (_, _, none) = app
        .get(Some(viewer), "/v1/audit?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(none["items"], json!([]));
    let (_, _, recent) = app
        .get(
            Some(viewer),
            "/v1/audit?since=2000-01-01T00:00:00Z&limit=200",
        )
        .await;
    assert_eq!(recent["items"].as_array().unwrap().len(), items.len());

    // Bad input and roles.
    for bad in [
        "/v1/audit?since=yesterday",
        "/v1/audit?chain=everything",
        "/v1/audit?cursor=%%%",
        "/v1/audit?limit=500",
        "/v1/audit?action=",
        "/v1/audit?unknown=1",
        "/v1/audit/verify?chain=nope",
    ] {
        let (s, h, v) = app.get(Some(viewer), bad).await;
        assert_error(s, &h, &v, 400, "invalid_input");
    }
    let (s, h, v) = app.get(Some(app.key("invoke")), "/v1/audit").await;
    assert_error(s, &h, &v, 403, "forbidden");
    let (s, h, v) = app.get(Some(viewer), "/v1/audit?chain=system").await;
    assert_error(s, &h, &v, 403, "forbidden");
    let (s, h, v) = app.get(None, "/v1/audit").await;
    assert_error(s, &h, &v, 401, "unauthorized");
    let (s, _, sys) = app
        .get(Some(app.key("admin")), "/v1/audit?chain=system")
        .await;
    assert_eq!(s, 200, "{sys}");
    let first: &Value = &sys["items"][0];
    assert_eq!(first["action"], "release_changed", "{sys}");
    assert_eq!(first["chain"], "_system");
    assert!(first["details"]["from"].is_null());
}
both!(
    listing_filters_and_pages_test,
    super::listing_filters_and_pages
);

/// Keys created and revoked on the command line are audited in their tenant's chain.
async fn key_changes_are_audited(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let out = run_cli(
        &app.db.url,
        &[],
        &[
            "keys", "create", "--tenant", "demo", "--roles", "viewer", "--name", "ci",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, _, created) = app
        .get(
            Some(app.key("viewer")),
            "/v1/audit?action=key.created&limit=200",
        )
        .await;
    let ours: Vec<&Value> = created["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["name"] == "ci")
        .collect();
    assert_eq!(ours.len(), 1, "{created}");
    assert_eq!(ours[0]["actor"], "cli");
    let key_id = ours[0]["resource"]
        .as_str()
        .unwrap()
        .strip_prefix("key/")
        .unwrap()
        .to_string();
    let out = run_cli(&app.db.url, &[], &["keys", "revoke", &key_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, _, revoked) = app
        .get(
            Some(app.key("viewer")),
            &format!("/v1/audit?action=key.revoked&resource=key/{key_id}"),
        )
        .await;
    assert_eq!(revoked["items"].as_array().unwrap().len(), 1, "{revoked}");
    let out = run_cli(&app.db.url, &[], &["keys", "revoke", &key_id]);
    assert!(!out.status.success(), "revoking twice fails");
    assert_eq!(verify(&app).await["ok"], true);
}
both!(key_changes_are_audited_test, super::key_changes_are_audited);
