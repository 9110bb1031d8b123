//! Registry tests against a seeded temporary SQLite database and, for HTTP tools and
//! retrieval, a local axum server (127.0.0.1 is allowlisted for them).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::egress::Lookup;
use super::*;
use crate::config::{HttpToolConfig, ToolConfig};
use crate::db::demo::testing::{TempDb, seeded};

fn ctx(t: &TempDb, tenant: &str) -> ToolCtx {
    ToolCtx {
        tenant: TenantId::parse(tenant).expect("tenant"),
        db: t.db.clone(),
    }
}

fn registry() -> Registry {
    Registry::new(&ToolConfig::default()).expect("default registry")
}

fn invalid_message(err: ToolError) -> String {
    match err {
        ToolError::InvalidArguments { message, .. } => message,
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

fn failed_message(err: ToolError) -> String {
    match err {
        ToolError::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

// ---- built-in tools -------------------------------------------------------------------

#[tokio::test]
async fn ticket_read_returns_the_ticket() {
    let t = seeded().await;
    let out = registry()
        .run(
            &ctx(&t, "demo"),
            TICKET_READ,
            &json!({"ticket_id": "T-1001"}),
        )
        .await
        .expect("read");
    assert_eq!(out["id"], "T-1001");
    assert_eq!(out["subject"], "Cannot log in after password reset");
    assert_eq!(out["status"], "open");
    assert_eq!(out["priority"], "high");
    assert_eq!(out["customer_email"], "jane.doe@acme-corp.com");
    assert!(out["body"].as_str().is_some_and(|b| b.contains("password")));
    assert!(
        out["updated_at"]
            .as_str()
            .is_some_and(|s| s.starts_with("2025-03-03T")),
        "{out}"
    );
}

#[tokio::test]
async fn unknown_records_are_not_found() {
    let t = seeded().await;
    let r = registry();
    let c = ctx(&t, "demo");
    let err = r
        .run(&c, TICKET_READ, &json!({"ticket_id": "T-9999"}))
        .await
        .expect_err("unknown");
    assert_eq!(err, ToolError::NotFound("ticket T-9999".into()));
    assert_eq!(err.to_string(), "ticket T-9999 was not found");
    let err = r
        .run(&c, INVOICE_READ, &json!({"invoice_id": "INV-9999"}))
        .await
        .expect_err("unknown");
    assert_eq!(err, ToolError::NotFound("invoice INV-9999".into()));
}

#[tokio::test]
async fn invoice_read_returns_the_invoice() {
    let t = seeded().await;
    let out = registry()
        .run(
            &ctx(&t, "demo"),
            INVOICE_READ,
            &json!({"invoice_id": "INV-2002"}),
        )
        .await
        .expect("read");
    assert_eq!(
        out,
        json!({"id": "INV-2002", "vendor": "Globex Consulting", "amount_usd": 18400.0, "status": "open", "due_date": "2025-03-20"})
    );
}

#[tokio::test]
async fn kb_search_ranks_articles_by_term_overlap() {
    let t = seeded().await;
    let r = registry();
    let c = ctx(&t, "demo");
    let out = r
        .run(
            &c,
            KB_SEARCH,
            &json!({"query": "How do I reset my password?"}),
        )
        .await
        .expect("search");
    let articles = out["articles"].as_array().expect("articles");
    assert_eq!(articles[0]["id"], "KB-1", "{out}");
    assert_eq!(articles[0]["title"], "Resetting your password");
    assert!(
        articles[0]["score"]
            .as_f64()
            .is_some_and(|s| s > 0.0 && s <= 1.0)
    );
    assert!(
        articles[0]["snippet"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    let out = r
        .run(&c, KB_SEARCH, &json!({"query": "locked account login"}))
        .await
        .expect("search");
    let ids: Vec<&str> = out["articles"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 3, "default limit is 3: {out}");
    assert_eq!(ids[0], "KB-1", "{out}");

    let out = r
        .run(
            &c,
            KB_SEARCH,
            &json!({"query": "API rate limit 429", "limit": 1}),
        )
        .await
        .expect("search");
    assert_eq!(out["articles"].as_array().map(Vec::len), Some(1));
    assert_eq!(out["articles"][0]["id"], "KB-6");

    let again = r
        .run(
            &c,
            KB_SEARCH,
            &json!({"query": "API rate limit 429", "limit": 1}),
        )
        .await
        .expect("search");
    assert_eq!(out, again, "ranking is deterministic");
    let none = r
        .run(&c, KB_SEARCH, &json!({"query": "zebra xylophone"}))
        .await
        .expect("search");
    assert_eq!(none, json!({"articles": []}));
}

#[tokio::test]
async fn tenants_only_see_their_own_data() {
    let t = seeded().await;
    let r = registry();
    let other = ctx(&t, "other");
    let err = r
        .run(&other, TICKET_READ, &json!({"ticket_id": "T-1001"}))
        .await
        .expect_err("cross-tenant");
    assert_eq!(err, ToolError::NotFound("ticket T-1001".into()));
    let err = r
        .run(&other, INVOICE_READ, &json!({"invoice_id": "INV-2001"}))
        .await
        .expect_err("cross-tenant");
    assert_eq!(err, ToolError::NotFound("invoice INV-2001".into()));
    let own = r
        .run(&other, TICKET_READ, &json!({"ticket_id": "T-5001"}))
        .await
        .expect("own ticket");
    assert_eq!(own["subject"], "Warehouse scanner offline");
    let demo = ctx(&t, "demo");
    assert!(
        r.run(&demo, TICKET_READ, &json!({"ticket_id": "T-5001"}))
            .await
            .is_err()
    );

    // KB-1 exists in both tenants with different content.
    let hits = r
        .run(&other, KB_SEARCH, &json!({"query": "password reset"}))
        .await
        .expect("search");
    assert_eq!(hits, json!({"articles": []}));
    let hits = r
        .run(&other, KB_SEARCH, &json!({"query": "scanner"}))
        .await
        .expect("search");
    assert_eq!(
        hits["articles"][0]["title"],
        "Restarting a warehouse scanner"
    );

    // Writes are scoped too.
    let err = r
        .propose(
            &other,
            TICKET_UPDATE,
            &json!({"ticket_id": "T-1001", "status": "closed"}),
        )
        .await;
    assert_eq!(
        err.expect_err("cross-tenant"),
        ToolError::NotFound("ticket T-1001".into())
    );
    let err = r
        .execute(
            &other,
            INVOICE_PAY,
            &json!({"invoice_id": "INV-2001", "amount_usd": 1250.0}),
        )
        .await;
    assert_eq!(
        err.expect_err("cross-tenant"),
        ToolError::NotFound("invoice INV-2001".into())
    );
}

#[tokio::test]
async fn schema_violations_are_refused_with_the_argument_named() {
    let t = seeded().await;
    let r = registry();
    let c = ctx(&t, "demo");
    let cases = [
        (
            TICKET_READ,
            json!({"ticket_id": "1001"}),
            "ticket_id: \"1001\" does not match \"^T-",
        ),
        (
            TICKET_READ,
            json!({}),
            "arguments: \"ticket_id\" is a required property",
        ),
        (
            TICKET_READ,
            json!({"ticket_id": "T-1001", "verbose": true}),
            "unexpected argument(s): verbose",
        ),
        (
            KB_SEARCH,
            json!({"query": ""}),
            "query: \"\" is shorter than 1 character",
        ),
        (KB_SEARCH, json!({"query": "x".repeat(501)}), "query: "),
        (
            KB_SEARCH,
            json!({"query": "sso", "limit": 11}),
            "limit: 11 is greater than the maximum of 10",
        ),
        (
            KB_SEARCH,
            json!({"query": "sso", "limit": "3"}),
            "limit: \"3\" is not of type \"integer\"",
        ),
        (
            INVOICE_READ,
            json!({"invoice_id": "INV-12"}),
            "invoice_id: \"INV-12\" does not match",
        ),
        (
            TICKET_UPDATE,
            json!({"ticket_id": "T-1001"}),
            "arguments: at least 2 arguments are required, got 1",
        ),
        (
            TICKET_UPDATE,
            json!({"ticket_id": "T-1001", "status": "done"}),
            "status: \"done\" is not one of",
        ),
        (
            TICKET_UPDATE,
            json!({"ticket_id": "T-1001", "comment": "x".repeat(2001)}),
            "comment: ",
        ),
        (
            INVOICE_PAY,
            json!({"invoice_id": "INV-2001", "amount_usd": 0}),
            "amount_usd: 0 is less than or equal to the minimum of 0",
        ),
        (
            INVOICE_PAY,
            json!({"invoice_id": "INV-2001"}),
            "\"amount_usd\" is a required property",
        ),
    ];
    for (tool, args, expected) in cases {
        let via_validate = invalid_message(r.validate(tool, &args).expect_err("invalid"));
        assert!(
            via_validate.contains(expected),
            "{tool} {args}: {via_validate}"
        );
        let via_call = if r.get(tool).map(|s| s.side_effect) == Some(SideEffect::Write) {
            r.propose(&c, tool, &args).await.expect_err("invalid")
        } else {
            r.run(&c, tool, &args).await.expect_err("invalid")
        };
        assert_eq!(via_call.outcome(), "invalid_arguments");
        assert!(
            via_call
                .to_string()
                .starts_with(&format!("invalid arguments for {tool}: ")),
            "{via_call}"
        );
    }
}

#[tokio::test]
async fn unknown_tools_are_refused() {
    let t = seeded().await;
    let r = registry();
    let err = r
        .run(&ctx(&t, "demo"), "rm_rf", &json!({}))
        .await
        .expect_err("unknown");
    assert_eq!(err, ToolError::UnknownTool("rm_rf".into()));
    assert_eq!(
        r.validate("rm_rf", &json!({}))
            .expect_err("unknown")
            .outcome(),
        "unknown_tool"
    );
}

// ---- write tools ----------------------------------------------------------------------

#[tokio::test]
async fn write_tools_refuse_to_run_directly() {
    let t = seeded().await;
    let r = registry();
    let c = ctx(&t, "demo");
    for (tool, args) in [
        (
            TICKET_UPDATE,
            json!({"ticket_id": "T-1001", "status": "resolved"}),
        ),
        (
            INVOICE_PAY,
            json!({"invoice_id": "INV-2001", "amount_usd": 1250.0}),
        ),
    ] {
        let err = r.run(&c, tool, &args).await.expect_err("needs approval");
        assert_eq!(err, ToolError::WriteNeedsApproval(tool.into()));
        assert_eq!(err.outcome(), "needs_approval");
    }
    let unchanged = r
        .run(&c, INVOICE_READ, &json!({"invoice_id": "INV-2001"}))
        .await
        .expect("read");
    assert_eq!(unchanged["status"], "open");
    // Read tools have nothing to propose or execute.
    let err = r
        .propose(&c, TICKET_READ, &json!({"ticket_id": "T-1001"}))
        .await
        .expect_err("read tool");
    assert_eq!(err.outcome(), "failed");
}

#[tokio::test]
async fn ticket_update_proposes_a_diff_and_applies_it_once() {
    let t = seeded().await;
    let r = registry();
    let c = ctx(&t, "demo");
    let args = json!({"ticket_id": "T-1001", "status": "resolved", "priority": "normal", "comment": "Unlocked the account."});

    let change = r.propose(&c, TICKET_UPDATE, &args).await.expect("propose");
    assert_eq!(change.resource, "ticket/T-1001");
    assert_eq!(change.before["status"], "open");
    assert_eq!(change.after["status"], "resolved");
    assert_eq!(change.after["priority"], "normal");
    assert!(
        change.after["body"]
            .as_str()
            .is_some_and(|b| b.ends_with("--- comment ---\nUnlocked the account."))
    );
    assert!(
        change.diff.starts_with("--- before\n+++ after\n"),
        "{}",
        change.diff
    );
    assert!(
        change.diff.contains("-  \"status\": \"open\",")
            && change.diff.contains("+  \"status\": \"resolved\","),
        "{}",
        change.diff
    );
    assert!(
        change.diff.contains("-  \"priority\": \"high\","),
        "{}",
        change.diff
    );

    // Proposing changed nothing.
    let current = r
        .run(&c, TICKET_READ, &json!({"ticket_id": "T-1001"}))
        .await
        .expect("read");
    assert_eq!(current, change.before);

    let done = r.execute(&c, TICKET_UPDATE, &args).await.expect("execute");
    assert_eq!(done["status"], "resolved");
    assert_eq!(done["body"], change.after["body"]);
    assert_ne!(done["updated_at"], change.before["updated_at"]);
    assert_eq!(
        r.run(&c, TICKET_READ, &json!({"ticket_id": "T-1001"}))
            .await
            .expect("read"),
        done
    );

    // A second execution finds nothing to change and changes nothing.
    let again = r
        .execute(&c, TICKET_UPDATE, &args)
        .await
        .expect_err("already applied");
    assert!(failed_message(again).contains("nothing to change"));
    assert_eq!(
        r.run(&c, TICKET_READ, &json!({"ticket_id": "T-1001"}))
            .await
            .expect("read"),
        done
    );
}

#[tokio::test]
async fn invoice_pay_checks_the_invoice_and_pays_once() {
    let t = seeded().await;
    let r = registry();
    let c = ctx(&t, "demo");

    let paid = r
        .propose(
            &c,
            INVOICE_PAY,
            &json!({"invoice_id": "INV-2003", "amount_usd": 342.75}),
        )
        .await;
    assert!(failed_message(paid.expect_err("paid")).contains("INV-2003 is already paid"));
    let wrong = r
        .propose(
            &c,
            INVOICE_PAY,
            &json!({"invoice_id": "INV-2002", "amount_usd": 1000}),
        )
        .await;
    assert!(
        failed_message(wrong.expect_err("mismatch"))
            .contains("amount 1000.00 USD does not match invoice INV-2002 amount 18400.00 USD")
    );
    let disputed = r
        .propose(
            &c,
            INVOICE_PAY,
            &json!({"invoice_id": "INV-2007", "amount_usd": 860}),
        )
        .await;
    assert!(failed_message(disputed.expect_err("disputed")).contains("is disputed"));

    let args = json!({"invoice_id": "INV-2002", "amount_usd": 18400});
    let change = r.propose(&c, INVOICE_PAY, &args).await.expect("propose");
    assert_eq!(change.resource, "invoice/INV-2002");
    assert_eq!(change.before["status"], "open");
    assert_eq!(
        change.after,
        json!({"id": "INV-2002", "vendor": "Globex Consulting", "amount_usd": 18400.0, "status": "paid", "due_date": "2025-03-20"})
    );
    assert!(
        change.diff.contains("-  \"status\": \"open\"")
            && change.diff.contains("+  \"status\": \"paid\""),
        "{}",
        change.diff
    );

    let done = r.execute(&c, INVOICE_PAY, &args).await.expect("execute");
    assert_eq!(done, change.after);
    let again = r
        .execute(&c, INVOICE_PAY, &args)
        .await
        .expect_err("second payment");
    assert!(failed_message(again).contains("already paid"));
}

// ---- registry -------------------------------------------------------------------------

#[test]
fn specs_are_sorted_and_described() {
    let r = registry();
    let names: Vec<&str> = r.specs().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            INVOICE_PAY,
            INVOICE_READ,
            KB_SEARCH,
            TICKET_READ,
            TICKET_UPDATE
        ]
    );
    for spec in r.specs() {
        assert_eq!(spec.source, "builtin");
        assert!(spec.timeout >= Duration::from_secs(1) && spec.max_concurrency > 0);
        assert_eq!(spec.parameters["type"], "object");
    }
    assert_eq!(
        r.get(TICKET_UPDATE).map(|s| s.side_effect),
        Some(SideEffect::Write)
    );
    assert_eq!(
        r.get(INVOICE_PAY).map(|s| s.side_effect),
        Some(SideEffect::Write)
    );
    assert_eq!(
        r.get(KB_SEARCH).map(|s| s.side_effect),
        Some(SideEffect::Read)
    );
    let json = serde_json::to_value(r.get(TICKET_READ).expect("spec")).expect("serializes");
    assert_eq!(json["timeout"], 2000);
    assert_eq!(json["side_effect"], "read");

    let defs = r.offered(&[KB_SEARCH, "nope", TICKET_READ]);
    let def_names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(def_names, [KB_SEARCH, TICKET_READ]);
    assert_eq!(
        defs[0].parameters,
        r.get(KB_SEARCH).expect("spec").parameters
    );
}

#[test]
fn schema_hash_is_stable_and_tracks_the_contracts() {
    let a = registry().schema_hash();
    assert_eq!(a.len(), 64);
    assert_eq!(a, registry().schema_hash());
    let with_tool = Registry::new(&ToolConfig {
        http_tools: vec![order_status("http://127.0.0.1:9/x/{order_id}")],
        egress_allowlist: vec!["127.0.0.1".into()],
        ..ToolConfig::default()
    })
    .expect("registry");
    assert_ne!(a, with_tool.schema_hash());
}

#[test]
fn outcome_labels_are_stable() {
    let cases = [
        (ToolError::UnknownTool("x".into()), "unknown_tool"),
        (ToolError::invalid("x", "m"), "invalid_arguments"),
        (ToolError::NotFound("x".into()), "not_found"),
        (ToolError::Timeout("x".into()), "timeout"),
        (ToolError::unavailable("x", "m"), "unavailable"),
        (ToolError::EgressDenied("m".into()), "egress_denied"),
        (ToolError::failed("x", "m"), "failed"),
        (ToolError::WriteNeedsApproval("x".into()), "needs_approval"),
    ];
    for (err, label) in cases {
        assert_eq!(err.outcome(), label);
    }
}

// ---- HTTP tools -----------------------------------------------------------------------

#[derive(Default)]
struct Upstream {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    kb_queries: Mutex<Vec<HashMap<String, String>>>,
}

async fn slow(State(up): State<Arc<Upstream>>) -> &'static str {
    let now = up.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    up.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    up.in_flight.fetch_sub(1, Ordering::SeqCst);
    "done"
}

/// Serves the fake upstream on 127.0.0.1; returns its base URL and shared state.
async fn upstream() -> (String, Arc<Upstream>) {
    let state = Arc::new(Upstream::default());
    let router = Router::new()
        .route(
            "/orders/{id}",
            get(|Path(id): Path<String>, Query(q): Query<HashMap<String, String>>| async move {
                Json(json!({"id": id, "query": q}))
            }),
        )
        .route(
            "/orders/{id}/refund",
            post(|Path(id): Path<String>, Json(body): Json<Value>| async move { Json(json!({"refunded": id, "body": body})) }),
        )
        .route("/slow", get(slow))
        .route("/text", get(|| async { "x".repeat(20 * 1024) }))
        .route("/fail", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "upstream is down") }))
        .route(
            "/kb",
            get(|State(up): State<Arc<Upstream>>, Query(q): Query<HashMap<String, String>>| async move {
                up.kb_queries.lock().map(|mut v| v.push(q)).ok();
                Json(json!({"articles": [
                    {"id": "EXT-1", "title": "External one", "snippet": "from retrieval", "score": 0.9},
                    {"id": "EXT-2", "title": "External two", "snippet": "also", "score": 0.5}
                ]}))
            }),
        )
        .route("/kb-broken", get(|| async { Json(json!({"results": []})) }))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), state)
}

fn http_tool(
    name: &str,
    method: &str,
    url: &str,
    side_effect: &str,
    schema: &str,
) -> HttpToolConfig {
    HttpToolConfig {
        name: name.into(),
        description: format!("test tool {name}"),
        method: method.into(),
        url: url.into(),
        schema: toml::from_str(schema).expect("schema toml"),
        side_effect: side_effect.into(),
        timeout_ms: 2_000,
        max_concurrency: 8,
    }
}

const ORDER_SCHEMA: &str = r#"
type = "object"
required = ["order_id"]
additionalProperties = false
[properties.order_id]
type = "string"
maxLength = 64
[properties.verbose]
type = "boolean"
"#;

fn order_status(url: &str) -> HttpToolConfig {
    http_tool("order_status", "GET", url, "read", ORDER_SCHEMA)
}

fn http_registry(tools: Vec<HttpToolConfig>) -> Registry {
    let settings = ToolConfig {
        http_tools: tools,
        egress_allowlist: vec!["127.0.0.1".into()],
        ..ToolConfig::default()
    };
    Registry::new(&settings).expect("registry")
}

#[tokio::test]
async fn http_get_tool_fills_the_template_and_returns_json() {
    let t = seeded().await;
    let (base, _) = upstream().await;
    let r = http_registry(vec![order_status(&format!("{base}/orders/{{order_id}}"))]);
    let spec = r.get("order_status").expect("registered");
    assert_eq!((spec.source, spec.side_effect), ("http", SideEffect::Read));
    let out = r
        .run(
            &ctx(&t, "demo"),
            "order_status",
            &json!({"order_id": "A 1/2", "verbose": true}),
        )
        .await
        .expect("call");
    assert_eq!(out, json!({"id": "A 1/2", "query": {"verbose": "true"}}));
    let err = r
        .run(&ctx(&t, "demo"), "order_status", &json!({"order_id": 7}))
        .await
        .expect_err("schema");
    assert!(invalid_message(err).contains("order_id: 7 is not of type \"string\""));
}

#[tokio::test]
async fn http_write_tool_needs_approval_then_posts_the_remaining_arguments() {
    let t = seeded().await;
    let (base, _) = upstream().await;
    let schema = r#"
        type = "object"
        required = ["order_id", "reason"]
        [properties.order_id]
        type = "string"
        [properties.reason]
        type = "string"
        [properties.amount]
        type = "number"
    "#;
    let r = http_registry(vec![http_tool(
        "refund_order",
        "post",
        &format!("{base}/orders/{{order_id}}/refund"),
        "write",
        schema,
    )]);
    let c = ctx(&t, "demo");
    let args = json!({"order_id": "A-7", "reason": "damaged", "amount": 12.5});
    assert_eq!(
        r.run(&c, "refund_order", &args).await,
        Err(ToolError::WriteNeedsApproval("refund_order".into()))
    );
    let change = r.propose(&c, "refund_order", &args).await.expect("propose");
    assert_eq!(change.resource, format!("POST {base}/orders/A-7/refund"));
    assert_eq!(change.before, Value::Null);
    assert_eq!(
        change.after["body"],
        json!({"reason": "damaged", "amount": 12.5})
    );
    assert!(
        change.diff.contains("+  \"method\": \"POST\","),
        "{}",
        change.diff
    );
    let out = r.execute(&c, "refund_order", &args).await.expect("execute");
    assert_eq!(
        out,
        json!({"refunded": "A-7", "body": {"reason": "damaged", "amount": 12.5}})
    );
}

#[tokio::test]
async fn http_tool_answers_are_wrapped_truncated_or_failed() {
    let t = seeded().await;
    let (base, _) = upstream().await;
    let empty = r#"type = "object""#;
    let r = http_registry(vec![
        http_tool("text", "GET", &format!("{base}/text"), "read", empty),
        http_tool("fail", "GET", &format!("{base}/fail"), "read", empty),
    ]);
    let c = ctx(&t, "demo");
    let out = r.run(&c, "text", &json!({})).await.expect("text");
    assert_eq!(out["status"], 200);
    assert_eq!(out["truncated"], true);
    assert_eq!(out["body"].as_str().map(str::len), Some(16 * 1024));
    let err = r.run(&c, "fail", &json!({})).await.expect_err("503");
    let message = failed_message(err);
    assert!(
        message.contains("HTTP 503") && message.contains("upstream is down"),
        "{message}"
    );
}

#[tokio::test]
async fn http_tool_calls_time_out() {
    let t = seeded().await;
    let (base, _) = upstream().await;
    let mut tool = http_tool(
        "slow",
        "GET",
        &format!("{base}/slow"),
        "read",
        r#"type = "object""#,
    );
    tool.timeout_ms = 100;
    let r = http_registry(vec![tool]);
    let started = Instant::now();
    let err = r
        .run(&ctx(&t, "demo"), "slow", &json!({}))
        .await
        .expect_err("timeout");
    assert_eq!(err, ToolError::Timeout("slow".into()));
    assert!(
        started.elapsed() < Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http_tool_concurrency_is_capped_per_tool() {
    let t = seeded().await;
    let (base, up) = upstream().await;
    let mut tool = http_tool(
        "slow",
        "GET",
        &format!("{base}/slow"),
        "read",
        r#"type = "object""#,
    );
    tool.max_concurrency = 2;
    let r = http_registry(vec![tool]);
    let c = ctx(&t, "demo");
    let started = Instant::now();
    let args = json!({});
    let calls = (0..5).map(|_| r.run(&c, "slow", &args));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(up.peak.load(Ordering::SeqCst), 2);
    // Five calls two at a time take three rounds of 300 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
}

/// Resolves every name to one address, as a hostile or misconfigured DNS would.
struct ResolveTo(std::net::IpAddr);

#[async_trait]
impl Lookup for ResolveTo {
    async fn lookup(&self, _host: &str) -> std::io::Result<Vec<std::net::IpAddr>> {
        Ok(vec![self.0])
    }
}

#[tokio::test]
async fn http_tools_cannot_reach_internal_addresses() {
    let t = seeded().await;
    let settings = ToolConfig {
        http_tools: vec![order_status("http://orders.example.test/orders/{order_id}")],
        ..ToolConfig::default()
    };
    let lookup = Arc::new(ResolveTo("169.254.169.254".parse().expect("ip")));
    let r = Registry::with_lookup(&settings, lookup).expect("registry");
    let err = r
        .run(&ctx(&t, "demo"), "order_status", &json!({"order_id": "1"}))
        .await
        .expect_err("refused");
    assert_eq!(err.outcome(), "egress_denied");
    assert!(
        err.to_string()
            .contains("refusing 169.254.169.254 (cloud metadata endpoint) for orders.example.test"),
        "{err}"
    );
}

#[test]
fn http_tool_config_errors_name_the_key() {
    let ok_url = "https://orders.example.com/orders/{order_id}";
    let mut bad_timeout = order_status(ok_url);
    bad_timeout.timeout_ms = 0;
    let cases: Vec<(Vec<HttpToolConfig>, &str, &str)> = vec![
        (
            vec![http_tool("t", "GET", ok_url, "maybe", ORDER_SCHEMA)],
            "http_tools.t.side_effect",
            "expected one of: read, write",
        ),
        (
            vec![http_tool("t", "FETCH", ok_url, "read", ORDER_SCHEMA)],
            "http_tools.t.method",
            "GET, POST, PUT, PATCH, DELETE",
        ),
        (
            vec![http_tool("t", "GET", ok_url, "read", "type = \"array\"")],
            "http_tools.t.schema",
            "\"type\": \"object\"",
        ),
        (
            vec![http_tool(
                "t",
                "GET",
                ok_url,
                "read",
                "type = \"object\"\n[properties.order_id]\ntype = \"strnig\"",
            )],
            "http_tools.t.schema",
            "not a valid JSON Schema",
        ),
        (
            vec![http_tool(
                "t",
                "GET",
                ok_url,
                "read",
                "type = \"object\"\n[properties.order_id]\ntype = \"string\"",
            )],
            "http_tools.t.url",
            "placeholder {order_id} must be a required argument",
        ),
        (
            vec![http_tool(
                "t",
                "GET",
                "https://{order_id}.example.com/",
                "read",
                ORDER_SCHEMA,
            )],
            "http_tools.t.url",
            "not in the scheme or host",
        ),
        (
            vec![http_tool(
                "t",
                "GET",
                "ftp://example.com/{order_id}",
                "read",
                ORDER_SCHEMA,
            )],
            "http_tools.t.url",
            "only http and https",
        ),
        (
            vec![http_tool(
                "t",
                "GET",
                "http://10.0.0.5/{order_id}",
                "read",
                ORDER_SCHEMA,
            )],
            "http_tools.t.url",
            "refusing 10.0.0.5 (private address)",
        ),
        (
            vec![http_tool("bad name", "GET", ok_url, "read", ORDER_SCHEMA)],
            "http_tools.bad name.name",
            "is not valid",
        ),
        (
            vec![bad_timeout],
            "http_tools.order_status.timeout_ms",
            "greater than 0",
        ),
        (
            vec![order_status(ok_url), order_status(ok_url)],
            "http_tools.order_status",
            "declared more than once",
        ),
        (
            vec![http_tool(TICKET_READ, "GET", ok_url, "read", ORDER_SCHEMA)],
            "http_tools.ticket_read",
            "clashes with the built-in tool",
        ),
    ];
    for (tools, key, message) in cases {
        let err = match Registry::new(&ToolConfig {
            http_tools: tools,
            ..ToolConfig::default()
        }) {
            Err(err) => err,
            Ok(_) => panic!("{key}: expected a config error"),
        };
        assert_eq!(err.key, key, "{err}");
        assert!(err.message.contains(message), "{key}: {err}");
    }
    let err = match Registry::new(&ToolConfig {
        egress_allowlist: vec!["http://x".into()],
        ..ToolConfig::default()
    }) {
        Err(err) => err,
        Ok(_) => panic!("expected a config error"),
    };
    assert_eq!(err.key, "EGRESS_ALLOWLIST");
}

// ---- retrieval ------------------------------------------------------------------------

#[tokio::test]
async fn kb_search_uses_the_retrieval_service_when_configured() {
    let t = seeded().await;
    let (base, up) = upstream().await;
    // The retrieval host is allowed implicitly: no EGRESS_ALLOWLIST entry for 127.0.0.1.
    let settings = ToolConfig {
        retrieval_url: Some(format!("{base}/kb").parse().expect("url")),
        ..ToolConfig::default()
    };
    let r = Registry::new(&settings).expect("registry");
    let out = r
        .run(
            &ctx(&t, "demo"),
            KB_SEARCH,
            &json!({"query": "reset password", "limit": 1}),
        )
        .await
        .expect("search");
    assert_eq!(
        out,
        json!({"articles": [{"id": "EXT-1", "title": "External one", "snippet": "from retrieval", "score": 0.9}]})
    );
    let seen = up.kb_queries.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].get("q").map(String::as_str), Some("reset password"));
    assert_eq!(seen[0].get("tenant").map(String::as_str), Some("demo"));
    assert_eq!(seen[0].get("limit").map(String::as_str), Some("1"));
}

#[tokio::test]
async fn kb_search_is_unavailable_when_retrieval_is_down_or_broken() {
    let t = seeded().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let (base, _) = upstream().await;
    for url in [
        format!("http://127.0.0.1:{port}/kb"),
        format!("{base}/fail"),
        format!("{base}/kb-broken"),
    ] {
        let settings = ToolConfig {
            retrieval_url: Some(url.parse().expect("url")),
            ..ToolConfig::default()
        };
        let r = Registry::new(&settings).expect("registry");
        let err = r
            .run(&ctx(&t, "demo"), KB_SEARCH, &json!({"query": "refund"}))
            .await
            .expect_err("down");
        assert_eq!(err.outcome(), "unavailable", "{url}: {err}");
        assert!(err.to_string().contains("retrieval service"), "{err}");
    }
}
