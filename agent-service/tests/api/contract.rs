//! The OpenAPI document as a contract: what it promises on every operation (the error
//! envelope, `X-Request-Id`, the statuses the layers around every handler answer), held
//! against the running service; and the defects the OpenAPI-driven fuzz run
//! (`scripts/fuzz-api.sh`) found where the handlers disagreed with the documented rules.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, TestApp, assert_error};

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// The document lists what every request may be answered, and every secured operation
/// really answers 401 with the envelope and the request id when no key is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_what_every_operation_answers() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let (s, _, doc) = app.get(None, "/openapi.json").await;
    assert_eq!(s, 200);
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "{} operations", ops.len());
    let mut secured = 0;
    for (method, path, op) in &ops {
        let what = format!("{} {path}", method.to_uppercase());
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            assert_eq!(
                response["headers"]["X-Request-Id"]["required"],
                json!(true),
                "{what} {status}: X-Request-Id is not a required header"
            );
            // A not-ready /readyz answers its readiness document, not an error.
            let readiness = path == "/readyz" && status == "503";
            if (status.starts_with('4') || status.starts_with('5')) && !readiness {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    json!("#/components/schemas/ErrorEnvelope"),
                    "{what} {status}: not the error envelope"
                );
            }
            if status == "429" || status == "503" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{what} {status}: no Retry-After"
                );
            }
        }
        let lists = |status: &str| responses.contains_key(status);
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            secured += 1;
            for status in ["401", "429", "503"] {
                assert!(lists(status), "{what} does not list {status}");
            }
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "408", "413", "415"] {
                assert!(
                    lists(status),
                    "{what} takes a body but does not list {status}"
                );
            }
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["in"] == "path" || param["in"] == "query" {
                assert!(lists("400"), "{what} has parameters but does not list 400");
            }
            if param["name"] == "limit" {
                let schema = &param["schema"];
                // Jobs and notification deliveries (jobs of the queue) page by 100.
                let max = if path == "/v1/jobs" || path == "/v1/admin/deliveries" {
                    100
                } else {
                    200
                };
                assert_eq!(
                    (schema["minimum"].as_u64(), schema["maximum"].as_u64()),
                    (Some(1), Some(max)),
                    "{what}: limit {schema}"
                );
            }
        }
    }
    assert!(secured >= 25, "{secured} secured operations");

    // The trace list takes an empty value as absent, and says so.
    for param in doc["paths"]["/v1/traces"]["get"]["parameters"]
        .as_array()
        .unwrap()
    {
        assert_eq!(param["allowEmptyValue"], json!(true), "{param}");
    }
    let (s, _, v) = app
        .get(Some(app.key("viewer")), "/v1/traces?limit=&status=&cursor=")
        .await;
    assert_eq!(s, 200, "{v}");
    // Required strings say that they must not be empty.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["InvokeInput"]["properties"]["text"]["minLength"], 1);
    assert_eq!(
        (
            &schemas["DecisionRequest"]["properties"]["reason"]["minLength"],
            &schemas["DecisionRequest"]["properties"]["reason"]["maxLength"]
        ),
        (&json!(1), &json!(2000))
    );

    // And the server answers what the document says: 401 on every secured operation.
    for (method, path, op) in &ops {
        if op["security"].as_array().is_none_or(|s| s.is_empty()) {
            continue;
        }
        let url = app.url(&path.replace("{id}", "x1"));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = app
            .http
            .request(method.clone(), url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let (s, h) = (resp.status(), resp.headers().clone());
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert_error(s, &h, &v, 401, "unauthorized");
    }

    // Every role's key gets only statuses the operation lists (a fuzzer with one key
    // never sees another role's 403). The approval event stream does not end, so only its
    // refusals are read.
    let mut unlisted = Vec::new();
    for role in ["invoke", "viewer", "approver", "operator", "admin"] {
        for (method, path, op) in &ops {
            if op["security"].as_array().is_none_or(|s| s.is_empty()) {
                continue;
            }
            let url = app.url(&path.replace("{id}", "x1"));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = app.http.request(m, url).bearer_auth(app.key(role));
            if op.get("requestBody").is_some() {
                req = req.header("content-type", "application/json").body("{}");
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            if !op["responses"][status.as_str()].is_object() {
                unlisted.push(format!(
                    "{} {path} answered the {role} key {status}",
                    method.to_uppercase()
                ));
            }
            assert!(
                resp.headers().contains_key("x-request-id"),
                "{} {path}: no X-Request-Id",
                method.to_uppercase()
            );
            if path == "/v1/approvals/events" && status.is_success() {
                drop(resp);
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "statuses the document does not list:\n{}",
        unlisted.join("\n")
    );
    // Statuses the handlers answer that the document once left out.
    for (method, path, status) in [
        ("post", "/v1/invoke/stream", "404"),
        ("get", "/v1/evals/runs/{id}/report.md", "403"),
        ("get", "/v1/evals/runs/{id}/report.xml", "403"),
        ("post", "/v1/jobs/{id}/cancel", "400"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"][status].is_object(),
            "{method} {path} does not list {status}"
        );
    }
}

/// Length limits count characters, as the document's `maxLength` does, not UTF-8 bytes: a
/// 128-character user id or release filter and a 256-character audit filter of two-byte
/// characters were refused.
async fn limits_count_characters(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let (s, _, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/invoke",
            &json!({"workflow": "support_ticket_summary", "input": {"text": "Summarize T-1001"},
                "user_id": "é".repeat(128)}),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/invoke",
            &json!({"workflow": "support_ticket_summary", "input": {"text": "Summarize T-1001"},
                "user_id": "é".repeat(129)}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");

    let (s, _, v) = app
        .post_json(
            Some(app.key("operator")),
            "/v1/approvals/cancel",
            &json!({"track": "ü".repeat(128), "reason": "canary aborted"}),
            &[],
        )
        .await;
    assert_eq!((s.as_u16(), &v["cancelled"]), (200, &json!(0)), "{v}");
    let (s, h, v) = app
        .post_json(
            Some(app.key("operator")),
            "/v1/approvals/cancel",
            &json!({"version": "ü".repeat(129), "reason": "canary aborted"}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");

    let action = "ä".repeat(256);
    let (s, _, v) = app
        .get(
            Some(app.key("viewer")),
            &format!("/v1/audit?action={action}"),
        )
        .await;
    assert_eq!((s.as_u16(), &v["items"]), (200, &json!([])), "{v}");
    let (s, h, v) = app
        .get(
            Some(app.key("viewer")),
            &format!("/v1/audit?action={action}ä"),
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
}
both!(limits_count_characters_test, super::limits_count_characters);

/// An unfreeze's optional body may be JSON `null` (no reason), as the document allows; it
/// was refused as not matching the expected shape.
async fn unfreeze_takes_null(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let op = app.key("operator");
    let (s, _, v) = app
        .post_json(
            Some(op),
            "/v1/admin/freeze",
            &json!({"reason": "INC-9"}),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = app
        .post_json(Some(op), "/v1/admin/unfreeze", &Value::Null, &[])
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((&v["frozen"], &v["changed"]), (&json!(false), &json!(true)));
    // Anything else that is not an object is still refused.
    let (s, h, v) = app
        .post_json(Some(op), "/v1/admin/unfreeze", &json!([]), &[])
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
}
both!(unfreeze_takes_null_test, super::unfreeze_takes_null);

/// An empty `cursor` asks for the first page, as an absent one does, on every list; a
/// cursor that is not one is still refused.
async fn empty_cursor_is_the_first_page(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let (s, v) = app
        .invoke("support_ticket_summary", "Summarize T-1001")
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/jobs",
            &json!({"workflow": "support_ticket_summary", "input": {"text": "Summarize T-1002"}}),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let viewer = app.key("viewer");
    for list in [
        "/v1/approvals",
        "/v1/audit",
        "/v1/evals/runs",
        "/v1/jobs",
        "/v1/traces",
    ] {
        let (s, _, first) = app.get(Some(viewer), &format!("{list}?limit=5")).await;
        assert_eq!(s, 200, "{list}: {first}");
        let (s, _, empty) = app
            .get(Some(viewer), &format!("{list}?limit=5&cursor="))
            .await;
        assert_eq!(s, 200, "{list}?cursor=: {empty}");
        // Jobs move on in the background: compare ids, not whole documents.
        let ids = |v: &Value| -> Vec<Value> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    i.get("id")
                        .or_else(|| i.get("trace_id"))
                        .or_else(|| i.get("seq"))
                        .cloned()
                        .unwrap_or(Value::Null)
                })
                .collect()
        };
        assert_eq!(ids(&first), ids(&empty), "{list}");
        let (s, h, v) = app
            .get(Some(viewer), &format!("{list}?cursor=bm90LWEtY3Vyc29y"))
            .await;
        assert_error(s, &h, &v, 400, "invalid_input");
    }
}
both!(empty_cursor_test, super::empty_cursor_is_the_first_page);

/// A body is an object with named fields: serde would also read a struct from a list of
/// its field values (`["why"]` as `{"reason": "why"}`), and a freeze given that way took
/// effect. Refused at any depth, and nothing changes.
async fn bodies_given_as_lists_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let op = app.key("operator");
    let (s, h, v) = app
        .post_json(Some(op), "/v1/admin/freeze", &json!(["INC-9"]), &[])
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the body is a list"),
        "{v}"
    );
    let (s, _, v) = app.get(Some(op), "/v1/admin/freeze").await;
    assert_eq!((s.as_u16(), &v["frozen"]), (200, &json!(false)), "{v}");

    let before = app.get(Some(app.key("viewer")), "/v1/traces").await.2["items"]
        .as_array()
        .unwrap()
        .len();
    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/invoke",
            &json!({"workflow": "faq", "input": ["How do refunds work?"]}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("input is a list"),
        "{v}"
    );
    let (s, h, v) = app
        .post_json(
            Some(app.key("invoke")),
            "/v1/jobs",
            &json!(["faq", {"text": "How do refunds work?"}]),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    let after = app.get(Some(app.key("viewer")), "/v1/traces").await.2["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "no run started");
    let (_, _, jobs) = app.get(Some(app.key("viewer")), "/v1/jobs").await;
    assert_eq!(jobs["items"], json!([]), "no job queued");
}
both!(list_bodies_test, super::bodies_given_as_lists_are_refused);
