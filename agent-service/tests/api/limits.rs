//! The per-key rate limit answers 429 with Retry-After.

use serde_json::json;

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

async fn rate_limit(backend: Backend) {
    let app = TestApp::spawn(backend, &[("RATE_LIMIT_RPM", "3")]).await;
    let body = json!({"workflow": "faq", "input": {"text": "refunds"}});
    for _ in 0..3 {
        let (s, _, v) = app
            .post_json(Some(app.key("invoke")), "/v1/invoke", &body, &[])
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, h, v) = app
        .post_json(Some(app.key("invoke")), "/v1/invoke", &body, &[])
        .await;
    assert_error(s, &h, &v, 429, "rate_limited");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Limits are per key: another key is unaffected.
    let (s, _, v) = app
        .post_json(
            Some(app.key_of("invoke", "other")),
            "/v1/invoke",
            &body,
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Probes need no key and are not limited.
    for _ in 0..5 {
        assert_eq!(app.get(None, "/healthz").await.0, 200);
    }
}
both!(rate_limit_test, super::rate_limit);
