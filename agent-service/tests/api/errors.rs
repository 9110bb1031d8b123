//! Bad input gets the right status and the single error envelope, and loses nothing.

use serde_json::json;

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

async fn bad_requests(backend: Backend) {
    let app = TestApp::spawn(backend, &[("MAX_BODY_BYTES", "2048")]).await;
    let key = app.key("invoke");
    let url = app.url("/v1/invoke");

    // Malformed JSON.
    let r = app
        .http
        .post(&url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body("{\"workflow\": ")
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    assert_error(s, &h, &r.json().await.unwrap(), 400, "malformed_json");

    // Not JSON at all.
    let r = app
        .http
        .post(&url)
        .bearer_auth(key)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    assert_error(
        s,
        &h,
        &r.json().await.unwrap(),
        415,
        "unsupported_media_type",
    );

    // Wrong shape, unknown field, empty text.
    for body in [
        json!({"workflow": "faq"}),
        json!({"workflow": "faq", "input": {"text": "x"}, "extra": 1}),
        json!({"workflow": "faq", "input": {"text": "  "}}),
    ] {
        let (s, h, v) = app.post_json(Some(key), "/v1/invoke", &body, &[]).await;
        assert_error(s, &h, &v, 400, "invalid_input");
    }

    // Unknown workflow names the known ones.
    let (s, h, v) = app
        .post_json(
            Some(key),
            "/v1/invoke",
            &json!({"workflow": "nope", "input": {"text": "hi"}}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 404, "unknown_workflow");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("support_ticket_summary")
    );

    // Oversized body.
    let big = "x".repeat(4096);
    let (s, h, v) = app
        .post_json(
            Some(key),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": {"text": big}}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 413, "payload_too_large");

    // Unknown route and wrong method.
    let (s, h, v) = app.get(Some(key), "/v1/nothing-here").await;
    assert_error(s, &h, &v, 404, "not_found");
    let (s, h, v) = app.get(Some(key), "/v1/invoke").await;
    assert_error(s, &h, &v, 405, "method_not_allowed");

    // A client request id is echoed; an unsafe one is replaced.
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "client-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-abc-123");
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");

    // The service still works after all that.
    let (s, v) = app.invoke("faq", "How do I reset my password?").await;
    assert_eq!(s, 200, "{v}");
}
both!(bad_requests_test, super::bad_requests);

async fn auth_roles_and_tenants(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let body = json!({"workflow": "faq", "input": {"text": "refund policy"}});

    let (s, h, v) = app.post_json(None, "/v1/invoke", &body, &[]).await;
    assert_error(s, &h, &v, 401, "unauthorized");
    let (s, h, v) = app
        .post_json(Some("fdk_not-a-real-key"), "/v1/invoke", &body, &[])
        .await;
    assert_error(s, &h, &v, 401, "unauthorized");
    let r = app
        .http
        .post(app.url("/v1/invoke"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    assert_error(s, &h, &r.json().await.unwrap(), 401, "unauthorized");

    // A viewer may not invoke.
    let (s, h, v) = app
        .post_json(Some(app.key("viewer")), "/v1/invoke", &body, &[])
        .await;
    assert_error(s, &h, &v, 403, "forbidden");
    assert!(v["error"]["message"].as_str().unwrap().contains("invoke"));

    // Another tenant's approval id is not found (not forbidden: its existence is not revealed).
    let (_, v) = app.invoke("ticket_update", "close ticket T-1004").await;
    let id = v["approval_request_id"].as_str().expect("approval id");
    let (s, h, v) = app
        .get(
            Some(app.key_of("approver", "other")),
            &format!("/v1/approvals/{id}"),
        )
        .await;
    assert_error(s, &h, &v, 404, "not_found");
    let (s, _, _) = app
        .get(Some(app.key("approver")), &format!("/v1/approvals/{id}"))
        .await;
    assert_eq!(s, 200);

    // Another tenant's ticket is invisible to the other tenant's workflows.
    let (s, _, v) = app
        .post_json(
            Some(app.key_of("invoke", "other")),
            "/v1/invoke",
            &json!({"workflow": "support_ticket_summary", "input": {"text": "Summarize T-1001"}}),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        !v["answer"].as_str().unwrap().contains("T-1001\" is"),
        "tenant other must not read demo's ticket: {v}"
    );
    assert!(
        v["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"] != "T-1001"),
        "{v}"
    );

    // A revoked key stops working (within the cache TTL).
    let out = crate::helpers::run_cli(&app.db.url, &[], &["keys", "list", "--tenant", "demo"]);
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let viewer_id = listing
        .lines()
        .find(|l| l.contains("demo-viewer"))
        .and_then(|l| l.split('\t').next())
        .expect("viewer key listed")
        .to_string();
    let out = crate::helpers::run_cli(&app.db.url, &[], &["keys", "revoke", &viewer_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    let (s, h, v) = app.get(Some(app.key("viewer")), "/v1/info").await;
    assert_error(s, &h, &v, 401, "unauthorized");
    let out = crate::helpers::run_cli(&app.db.url, &[], &["keys", "revoke", &viewer_id]);
    assert!(!out.status.success(), "revoking twice is an error");
}
both!(auth_test, super::auth_roles_and_tenants);

/// Requests hyper refuses before any routing get the envelope and an `X-Request-Id` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_before_routing_get_the_envelope() {
    use crate::wire::{read_response, send};
    use std::time::Duration;

    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let too_many: String = (0..101).map(|i| format!("X-Header-{i}: {i}\r\n")).collect();
    let cases: [(&str, Vec<u8>, u16, &str); 3] = [
        (
            "too many headers",
            format!("GET /healthz HTTP/1.1\r\nHost: test\r\n{too_many}\r\n").into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            "a NUL in a header value",
            b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Note: a\0b\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            "a raw space in the path",
            b"GET /v1/approvals/a b HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
    ];
    for (what, bytes, status, code) in cases {
        let mut s = send(&app.base, &bytes).await;
        let r = read_response(&mut s, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{what}: no response"));
        r.assert_envelope(status, code);
        assert_eq!(r.header("connection"), Some("close"), "{what}: {r:?}");
    }

    // A path id that is not UTF-8 once percent-decoded.
    for path in ["/v1/approvals/%FF", "/v1/traces/%C3%28", "/v1/jobs/%80abc"] {
        let (s, h, v) = app.get(Some(app.key("admin")), path).await;
        assert_error(s, &h, &v, 400, "invalid_input");
    }
    // The service is unharmed.
    assert_eq!(app.get(None, "/healthz").await.0, 200);
}

/// A request id whose digit groups pass the card-number checksum is logged as it is; the
/// card number in the same request is still redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_logged_unredacted() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    // 4111-1111-000002 passes the Luhn check.
    let rid = "01a25036-9b07-4111-1111-000002abcdef";
    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": {"text": "my card is 4111 1111 1111 1111"}}),
            &[("x-request-id", rid)],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["x-request-id"], rid);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = app.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &serde_json::Value| l["request_id"] == rid)
        .collect();
    assert!(
        !lines.is_empty(),
        "the request's lines carry its id: {logs}"
    );
    assert!(!logs.contains("4111 1111 1111 1111"), "{logs}");
    assert!(logs.contains("[REDACTED:card_number]"), "{logs}");
}
