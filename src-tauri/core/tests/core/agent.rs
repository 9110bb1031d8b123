//! The agent client against the real agent-service binary (scripted provider, demo data),
//! and the event stream's reconnect/resume against a server that drops connections.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flightdeck_core::ErrorCode;
use flightdeck_core::agent::{
    ApprovalEventKind, ApprovalStatus, EvalRunState, InvokeRequest, Reason, RunStatus, StartEval,
    StreamConfig, StreamItem, TraceQuery,
};
use testkit::{AgentService, Backend};

use crate::helpers::{client, client_with_key, eval_run_done, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_info_registries_and_metrics() {
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let viewer = client(&svc, "viewer");
    assert_eq!(viewer.healthz().await.unwrap().status, "ok");
    let ready = viewer.readyz().await.unwrap();
    assert_eq!(ready.status, flightdeck_core::agent::ReadyState::Ready);
    assert_eq!(ready.checks["database"].status, "ok");
    assert_eq!(ready.circuit, "closed");
    let info = viewer.info().await.unwrap();
    assert!(info.provider.scripted, "{info:?}");
    assert_eq!(
        (info.track.as_str(), info.policy_version.as_str()),
        ("stable", "guardrails-v4")
    );
    let mut workflows: Vec<String> = viewer
        .workflows()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    workflows.sort();
    assert_eq!(
        workflows,
        [
            "faq",
            "invoice_approval",
            "support_ticket_summary",
            "ticket_update"
        ]
    );
    let tools = viewer.tools().await.unwrap();
    let update = tools
        .iter()
        .find(|t| t.name == "ticket_update")
        .expect("ticket_update tool");
    assert_eq!(update.side_effect, "write");
    let scrape = viewer.metrics().await.unwrap();
    assert!(scrape.openmetrics_eof);
    let build = scrape
        .labels_of("agent_build_info")
        .expect("agent_build_info");
    assert_eq!(build.get("model"), Some("scripted-v1"));
    assert!(
        scrape
            .histogram("agent_request_duration_seconds", &[])
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_closed_codes_and_request_ids() {
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let expect = |r: Result<(), flightdeck_core::Error>, code: ErrorCode, server: &str| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        match e.api() {
            Some(a) => {
                assert_eq!(a.server_code, server, "{e}");
                assert!(
                    a.request_id.as_deref().is_some_and(|r| !r.is_empty()),
                    "{e}"
                );
            }
            None => panic!("not an API error: {e:?}"),
        }
    };
    let bad_key = client_with_key(svc.base_url(), Some("fdk_not_a_key"));
    expect(
        bad_key.info().await.map(drop),
        ErrorCode::Unauthorized,
        "unauthorized",
    );
    let approver = client(&svc, "approver");
    expect(
        approver
            .invoke(&InvokeRequest::new("faq", "hello"))
            .await
            .map(drop),
        ErrorCode::Forbidden,
        "forbidden",
    );
    let invoker = client(&svc, "invoke");
    expect(
        invoker
            .invoke(&InvokeRequest::new("no_such_workflow", "hello"))
            .await
            .map(drop),
        ErrorCode::NotFound,
        "unknown_workflow",
    );
    expect(
        invoker
            .invoke(&InvokeRequest::new("faq", "   "))
            .await
            .map(drop),
        ErrorCode::Invalid,
        "invalid_input",
    );
    expect(
        approver.approval("apr_does_not_exist").await.map(drop),
        ErrorCode::NotFound,
        "not_found",
    );
    // Refused before anything is sent.
    let reason_err = Reason::parse(" ").unwrap_err();
    assert_eq!(reason_err.code(), ErrorCode::Invalid);
    assert_eq!(
        approver.approval("../admin").await.unwrap_err().code(),
        ErrorCode::Invalid
    );
    // Nobody listening.
    let closed = client_with_key("http://127.0.0.1:9", Some("k"));
    assert_eq!(
        closed.healthz().await.unwrap_err().code(),
        ErrorCode::Network
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_flow_with_live_events_resume_and_audit() {
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let approver = client(&svc, "approver");
    let invoker = client(&svc, "invoke");
    let mut events = approver.approval_events(None, StreamConfig::default());
    match within(10, "the stream to connect", events.next()).await {
        Some(Ok(StreamItem::Connected {
            resumed_after: None,
        })) => {}
        other => panic!("expected Connected, got {other:?}"),
    }
    let reply = invoker
        .invoke(&InvokeRequest::new(
            "ticket_update",
            "Please close T-1001, priority urgent",
        ))
        .await
        .unwrap();
    assert_eq!(reply.status, RunStatus::ApprovalRequired);
    let id = reply.approval_request_id.clone().expect("approval id");
    let created = match within(10, "the created event", events.next()).await {
        Some(Ok(StreamItem::Event(e))) => e,
        other => panic!("expected an event, got {other:?}"),
    };
    assert_eq!(
        (created.kind.clone(), created.approval_id.as_str()),
        (ApprovalEventKind::Created, id.as_str())
    );

    let pending = approver
        .approvals(Some(ApprovalStatus::Pending), None, None)
        .await
        .unwrap();
    assert!(pending.items.iter().any(|a| a.id == id), "{pending:?}");
    let detail = approver.approval(&id).await.unwrap();
    assert_eq!(
        (detail.status, detail.tool.as_str()),
        (ApprovalStatus::Pending, "ticket_update")
    );
    assert!(
        detail.proposed_change["diff"]
            .as_str()
            .is_some_and(|d| d.contains("+  \"status\": \"closed\""))
    );

    let reason = Reason::parse("customer confirmed the fix").unwrap();
    let decided = approver
        .approve(&id, &reason, Some("click-1"))
        .await
        .unwrap();
    assert_eq!(decided.status, ApprovalStatus::Executed, "{decided:?}");
    assert_eq!(decided.decisions.len(), 1);
    // The same click again replays the first answer instead of failing.
    let replay = approver
        .approve(&id, &reason, Some("click-1"))
        .await
        .unwrap();
    assert_eq!(replay.status, ApprovalStatus::Executed);
    // A second, different decision is a conflict.
    let again = approver.reject(&id, &reason, None).await.unwrap_err();
    assert_eq!(again.code(), ErrorCode::Conflict, "{again}");

    let mut kinds = Vec::new();
    while kinds.last() != Some(&ApprovalEventKind::Executed) {
        match within(10, "the decision events", events.next()).await {
            Some(Ok(StreamItem::Event(e))) => kinds.push(e.kind),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    assert_eq!(
        kinds,
        [
            ApprovalEventKind::Approved,
            ApprovalEventKind::Executing,
            ApprovalEventKind::Executed
        ]
    );
    drop(events);

    // Resuming after `created` replays exactly what followed it.
    let mut resumed = approver.approval_events(Some(created.seq), StreamConfig::default());
    match within(10, "the resumed stream", resumed.next()).await {
        Some(Ok(StreamItem::Connected { resumed_after })) => {
            assert_eq!(resumed_after, Some(created.seq))
        }
        other => panic!("expected Connected, got {other:?}"),
    }
    match within(10, "the first resumed event", resumed.next()).await {
        Some(Ok(StreamItem::Event(e))) => {
            assert_eq!(e.kind, ApprovalEventKind::Approved);
            assert!(e.seq > created.seq);
        }
        other => panic!("expected an event, got {other:?}"),
    }

    let audit = approver.audit_verify().await.unwrap();
    assert!(
        audit.ok && audit.checked >= 4 && audit.first_broken.is_none(),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_refuses_writes_until_unfrozen_and_cancel_needs_a_filter() {
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let operator = client(&svc, "operator");
    let invoker = client(&svc, "invoke");
    let reason = Reason::parse("incident 42").unwrap();
    let state = operator.freeze(&reason).await.unwrap();
    assert!(state.frozen && state.changed == Some(true), "{state:?}");
    assert!(operator.freeze_state().await.unwrap().frozen);
    let refused = invoker
        .invoke(&InvokeRequest::new("ticket_update", "Please close T-1002"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Conflict);
    assert!(
        refused
            .api()
            .is_some_and(|a| a.server_code == "writes_frozen")
    );
    assert!(!operator.unfreeze(&reason).await.unwrap().frozen);
    let reply = invoker
        .invoke(&InvokeRequest::new("ticket_update", "Please close T-1002"))
        .await
        .unwrap();
    assert_eq!(reply.status, RunStatus::ApprovalRequired);
    assert_eq!(
        operator
            .cancel_approvals(None, None, &reason)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::Invalid
    );
    let cancelled = operator
        .cancel_approvals(Some("stable"), None, &reason)
        .await
        .unwrap();
    assert_eq!(cancelled.cancelled, 1);
    assert_eq!(cancelled.ids, [reply.approval_request_id.unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_an_eval_run() {
    let svc = AgentService::spawn(Backend::Sqlite, &[]).await;
    let invoker = client(&svc, "invoke");
    let viewer = client(&svc, "viewer");
    let operator = client(&svc, "operator");
    let reply = invoker
        .invoke(&InvokeRequest::new(
            "support_ticket_summary",
            "Summarize T-1001",
        ))
        .await
        .unwrap();
    assert_eq!(reply.status, RunStatus::Success);
    // Traces are written in the background: poll until it is there.
    let query = TraceQuery {
        request_id: Some(reply.request_id.clone()),
        ..TraceQuery::default()
    };
    let page = within(20, "the trace to be stored", async {
        loop {
            let page = viewer.traces(&query).await.unwrap();
            if !page.items.is_empty() {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(page.items.len(), 1, "{page:?}");
    let trace = viewer.trace(&page.items[0].trace_id).await.unwrap();
    assert_eq!(trace.summary.trace_id, reply.trace_id);
    assert!(
        trace
            .spans
            .iter()
            .any(|s| s.parent_span_id.is_none() && s.name == "request")
    );
    assert!(
        trace
            .spans
            .iter()
            .any(|s| s.name.starts_with("execute_tool"))
    );
    let errors = viewer
        .traces(&TraceQuery {
            errors_only: true,
            ..TraceQuery::default()
        })
        .await
        .unwrap();
    assert!(errors.items.is_empty());

    let suites = viewer.eval_suites().await.unwrap();
    assert!(suites.iter().any(|s| s.name == "golden"), "{suites:?}");
    let run = operator
        .start_eval(&StartEval {
            suite: "golden".into(),
            baseline_run_id: None,
        })
        .await
        .unwrap();
    assert!(matches!(
        run.status,
        EvalRunState::Queued | EvalRunState::Running
    ));
    let done = eval_run_done(&viewer, &run.id).await;
    assert_eq!(done.status, EvalRunState::Completed, "{:?}", done.error);
    assert!(done.gate.is_some() && !done.cases.is_empty());
    let runs = viewer.eval_runs(Some("golden"), None).await.unwrap();
    assert!(runs.items.iter().any(|r| r.id == run.id));
}

/// A server that drops every connection after a little: the stream must reconnect with
/// `Last-Event-ID`, report a malformed event and go on, back off on 503, and end on 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_reconnects_resumes_and_stops_on_auth_errors() {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;

    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let app = axum::Router::new().route(
        "/v1/approvals/events",
        axum::routing::get({
            let seen = seen.clone();
            move |headers: HeaderMap| {
                let seen = seen.clone();
                async move {
                    let last = headers
                        .get("last-event-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push(last);
                        s.len()
                    };
                    let sse = |body: &'static str| {
                        ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
                    };
                    match n {
                        1 => sse(": hi\n\nid: 1\nevent: created\ndata: {\"seq\":1,\"event\":\"created\",\"approval_id\":\"apr_a\"}\n\n"),
                        2 => sse("id: 2\nevent: approved\ndata: {\"seq\":2,\"event\":\"approved\",\"approval_id\":\"apr_a\"}\n\nid: 3\nevent: created\ndata: {oops\n\n"),
                        3 => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(header::RETRY_AFTER, "1")],
                            r#"{"error":{"code":"overloaded","message":"busy","request_id":"r"}}"#,
                        )
                            .into_response(),
                        _ => (
                            StatusCode::UNAUTHORIZED,
                            [(header::CONTENT_TYPE, "application/json")],
                            r#"{"error":{"code":"unauthorized","message":"key revoked","request_id":"r"}}"#,
                        )
                            .into_response(),
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let c = client_with_key(&format!("http://{addr}"), Some("k"));
    let config = StreamConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(5),
    };
    let mut stream = c.approval_events(None, config);
    let mut log = Vec::new();
    let end = within(20, "the stream to end", async {
        loop {
            match stream.next().await {
                Some(Ok(StreamItem::Connected { resumed_after })) => {
                    log.push(format!("connected after {resumed_after:?}"))
                }
                Some(Ok(StreamItem::Event(e))) => log.push(format!("event {} {:?}", e.seq, e.kind)),
                Some(Ok(StreamItem::Malformed { id, .. })) => log.push(format!("malformed {id:?}")),
                Some(Ok(StreamItem::Reconnecting { error, retry_in })) => {
                    assert!(retry_in <= Duration::from_millis(200), "{retry_in:?}");
                    log.push(format!("reconnecting: {}", error.code().as_str()));
                }
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    })
    .await;
    assert_eq!(
        log,
        [
            "connected after None",
            "event 1 Created",
            "reconnecting: protocol",
            "connected after Some(1)",
            "event 2 Approved",
            "malformed Some(\"3\")",
            "reconnecting: protocol",
            "reconnecting: unavailable",
        ]
    );
    assert_eq!(end.map(|e| e.code()), Some(ErrorCode::Unauthorized));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            None,
            Some("1".to_string()),
            Some("3".to_string()),
            Some("3".to_string())
        ]
    );
}
