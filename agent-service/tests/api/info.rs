//! Probes and the service's self-description: /healthz, /readyz, /v1/info, /openapi.json,
//! the agent card, and the tool and workflow registries.

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

async fn self_description(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let (s, _, v) = app.get(None, "/healthz").await;
    assert_eq!((s.as_u16(), v["status"].as_str()), (200, Some("ok")));

    let (s, _, v) = app.get(None, "/readyz").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["checks"]["database"]["status"], "ok");
    assert_eq!(v["circuit"], "closed");

    let (s, h, v) = app.get(None, "/v1/info").await;
    assert_error(s, &h, &v, 401, "unauthorized");
    let (s, _, v) = app.get(Some(app.key("viewer")), "/v1/info").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["provider"]["kind"], "scripted");
    assert_eq!(v["provider"]["scripted"], true);
    assert!(
        v["provider"]["label"]
            .as_str()
            .unwrap()
            .contains("scripted")
    );
    assert_eq!(v["policy_version"], "guardrails-v4");
    assert_eq!(v["track"], "stable");
    for k in [
        "version",
        "git_sha",
        "prompt_version",
        "tool_schema_hash",
        "policy_hash",
        "config_hash",
    ] {
        assert!(
            v[k].as_str().is_some_and(|s| !s.is_empty()),
            "{k} missing: {v}"
        );
    }
    assert_eq!(v["prompts"].as_array().unwrap().len(), 4);

    let (s, _, v) = app.get(None, "/openapi.json").await;
    assert_eq!(s, 200);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."), "{v}");
    for p in [
        "/v1/invoke",
        "/v1/invoke/stream",
        "/readyz",
        "/v1/info",
        "/v1/tools",
        "/v1/workflows",
    ] {
        assert!(v["paths"][p].is_object(), "openapi lacks {p}");
    }
    assert!(v["components"]["schemas"]["InvokeResponse"].is_object());

    let (s, _, v) = app.get(None, "/.well-known/agent.json").await;
    assert_eq!(s, 200);
    assert_eq!(v["skills"].as_array().unwrap().len(), 4);
    assert_eq!(v["capabilities"]["streaming"], true);

    let (s, _, v) = app.get(Some(app.key("viewer")), "/v1/tools").await;
    assert_eq!(s, 200, "{v}");
    let tools = v["items"].as_array().unwrap();
    let pay = tools
        .iter()
        .find(|t| t["name"] == "invoice_pay")
        .expect("invoice_pay listed");
    assert_eq!(pay["side_effect"], "write");
    assert_eq!(pay["approval"], "required");
    assert!(pay["parameters"]["properties"]["invoice_id"].is_object());

    let (s, _, v) = app.get(Some(app.key("viewer")), "/v1/workflows").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "faq",
            "invoice_approval",
            "support_ticket_summary",
            "ticket_update"
        ]
    );
}
both!(self_description_test, super::self_description);

/// `GET /v1/whoami`: any valid key learns its tenant, roles and key id; never the secret.
async fn whoami(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;

    let viewer = app.key("viewer");
    let (s, _, v) = app.get(Some(viewer), "/v1/whoami").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["tenant"], "demo", "{v}");
    assert_eq!(v["roles"], serde_json::json!(["viewer"]), "{v}");
    assert_eq!(v["key_name"], "demo-viewer", "{v}");
    let viewer_id = v["key_id"].as_str().expect("key_id").to_string();
    assert!(viewer_id.starts_with("key_"), "{v}");
    let body = v.to_string();
    assert!(
        !body.contains(viewer),
        "whoami must not echo the key: {body}"
    );
    assert!(
        !body.contains("fdk_"),
        "whoami must not carry key material: {body}"
    );

    let (s, _, v) = app
        .get(Some(app.key_of("approver", "other")), "/v1/whoami")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["tenant"], "other", "{v}");
    assert_eq!(v["roles"], serde_json::json!(["approver"]), "{v}");
    assert_eq!(v["key_name"], "demo-approver", "{v}");
    let approver_id = v["key_id"].as_str().expect("key_id");
    assert!(
        approver_id.starts_with("key_") && approver_id != viewer_id,
        "{v}"
    );

    let (s, h, v) = app.get(None, "/v1/whoami").await;
    assert_error(s, &h, &v, 401, "unauthorized");
    let (s, h, v) = app.get(Some("fdk_not-a-real-key"), "/v1/whoami").await;
    assert_error(s, &h, &v, 401, "unauthorized");

    let (s, _, v) = app.get(None, "/openapi.json").await;
    assert_eq!(s, 200);
    let op = &v["paths"]["/v1/whoami"]["get"];
    assert!(op.is_object(), "openapi lacks /v1/whoami: {}", v["paths"]);
    assert!(op["responses"]["401"].is_object(), "{op}");
    assert!(v["components"]["schemas"]["WhoamiResponse"]["properties"]["key_id"].is_object());
}
both!(whoami_test, super::whoami);
