//! Notifications end to end: receivers managed through the API (secrets write-only,
//! tenants apart), every event kind arriving once at loopback receivers that verify the
//! Standard Webhooks signature, the Slack and PagerDuty formats, a receiver down for a
//! minute getting everything after it returns, dead letters and their retry, and the egress
//! guard refusing a receiver on a private address that is not allowlisted.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::IntoResponse;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Row;
use testkit::{FakeOllama, Mode, Reply};

use crate::approvals::{decide, pool, propose};
use crate::both;
use crate::helpers::{Backend, TestApp, assert_error, run_cli};

/// A key for sealing receivers' secrets (32 bytes, base64).
const SEAL_KEY: &str = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGh8=";

/// A fresh Standard Webhooks signing secret.
fn webhook_secret() -> String {
    let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// One request a loopback receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Unix seconds when it arrived.
    at: i64,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Checks the delivery as a Standard Webhooks receiver does, written here from the
    /// convention (not with the service's code): HMAC-SHA256 over "id.timestamp.body" with
    /// the base64-decoded secret, `v1,<base64>`, and the timestamp within 5 minutes.
    fn verify(&self, secret: &str) -> Result<(), String> {
        let id = self.header("webhook-id");
        let ts = self.header("webhook-timestamp");
        let t: i64 = ts.parse().map_err(|_| format!("timestamp {ts:?}"))?;
        if (self.at - t).abs() > 300 {
            return Err(format!("timestamp {t} is {} s off", self.at - t));
        }
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&self.body);
        let want = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        let sigs = self.header("webhook-signature");
        if sigs.split(' ').any(|s| s == want) {
            Ok(())
        } else {
            Err(format!("signature {sigs:?} does not match {want:?}"))
        }
    }
}

/// An HTTP receiver on 127.0.0.1 that records every request and answers 200 with
/// `Connection: close` (so a stopped receiver leaves no connection to reuse). Stopping it
/// closes its port (connections are refused); starting it again binds the same port.
struct Loopback {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Loopback {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut me = Self {
            addr: listener.local_addr().expect("addr"),
            got: Arc::new(Mutex::new(Vec::new())),
            server: None,
        };
        me.serve(listener);
        me
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let got = self.got.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let got = got.clone();
            async move {
                got.lock().unwrap().push(Got {
                    path: uri.path().to_string(),
                    headers,
                    body: body.to_vec(),
                    at: chrono::Utc::now().timestamp(),
                });
                let mut resp = "ok".into_response();
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                resp
            }
        });
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Closes the port: deliveries get "connection refused" until [`Loopback::resume`].
    async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = s.await;
        }
    }

    async fn resume(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .unwrap_or_else(|e| panic!("could not bind {} again: {e}", self.addr));
        self.serve(listener);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn got(&self, path: &str) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

/// Polls `done` every 100 ms until it holds, failing after `timeout` with `what` and the
/// service's logs.
async fn wait_until(app: &TestApp, timeout: Duration, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "{what} did not happen within {timeout:?}\nlogs:\n{}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /v1/admin/receivers` with the demo admin key; returns the 201 body.
async fn add_receiver(app: &TestApp, body: Value) -> Value {
    let (s, _, v) = app
        .post_json(Some(app.key("admin")), "/v1/admin/receivers", &body, &[])
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

/// The webhook deliveries at `path` by `webhook-id`: every one verified against `secret`,
/// its body's `id` equal to its `webhook-id`.
fn verified(rx: &Loopback, path: &str, secret: &str) -> BTreeMap<String, Vec<Value>> {
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for g in rx.got(path) {
        g.verify(secret)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&g.body)));
        let body = g.json();
        assert_eq!(body["id"], g.header("webhook-id"), "{body}");
        by_id
            .entry(g.header("webhook-id").to_string())
            .or_default()
            .push(body);
    }
    by_id
}

fn kinds(by_id: &BTreeMap<String, Vec<Value>>) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for bodies in by_id.values() {
        *count
            .entry(bodies[0]["type"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    count
}

fn assert_each_once(by_id: &BTreeMap<String, Vec<Value>>) {
    for (id, bodies) in by_id {
        assert_eq!(bodies.len(), 1, "event {id} arrived {} times", bodies.len());
    }
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, _, v) = app
        .get(
            Some(app.key("operator")),
            &format!("/v1/admin/deliveries{query}"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().expect("items").clone()
}

// ---- receivers through the API ------------------------------------------------------

/// An admin key of tenant `other` (seed-demo gives it none).
fn other_admin(app: &TestApp) -> String {
    let out = run_cli(
        &app.db.url,
        &[],
        &[
            "keys",
            "create",
            "--tenant",
            "other",
            "--roles",
            "admin",
            "--name",
            "other-admin",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn receivers_api(backend: Backend) {
    let rx = Loopback::start().await;
    let app = TestApp::spawn(
        backend,
        &[
            ("NOTIFY_SECRET_KEY", SEAL_KEY),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
        ],
    )
    .await;
    let secret = webhook_secret();
    let hook_url = rx.url("/hooks/c2VjcmV0LXBhdGg");
    let created = add_receiver(
        &app,
        json!({"name": "on-call", "format": "webhook", "url": hook_url, "secret": secret,
               "events": ["approval.created", "freeze.on", "approval.created"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("rcv_"), "{created}");
    assert_eq!(created["tenant"], "demo");
    assert_eq!(created["format"], "webhook");
    assert_eq!(created["url_hint"], format!("http://{}", rx.addr));
    assert_eq!(created["events"], json!(["approval.created", "freeze.on"]));
    assert_eq!(created["has_secret"], true);

    // Readers see it; never its secret or its URL's path.
    let (s, _, one) = app
        .get(
            Some(app.key("operator")),
            &format!("/v1/admin/receivers/{id}"),
        )
        .await;
    assert_eq!(s, 200, "{one}");
    let (s, _, list) = app.get(Some(app.key("admin")), "/v1/admin/receivers").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, _, audit) = app
        .get(
            Some(app.key("viewer")),
            &format!("/v1/audit?resource=receiver/{id}"),
        )
        .await;
    assert_eq!(audit["items"][0]["action"], "receiver.created", "{audit}");
    for shown in [&created, &one, &list, &audit] {
        let text = shown.to_string();
        assert!(!text.contains(&secret[6..]), "secret shown: {text}");
        assert!(!text.contains("c2VjcmV0LXBhdGg"), "URL path shown: {text}");
    }
    // Stored only sealed.
    let db = pool(&app).await;
    let row =
        sqlx::query("SELECT url_sealed, secret_sealed FROM notification_receivers WHERE id = $1")
            .bind(&id)
            .fetch_one(&db)
            .await
            .expect("row");
    let url_sealed: String = row.get("url_sealed");
    let secret_sealed: String = row.get("secret_sealed");
    for sealed in [&url_sealed, &secret_sealed] {
        assert!(sealed.starts_with("v1."), "{sealed}");
        assert!(!sealed.contains("whsec") && !sealed.contains("127.0.0.1"));
    }

    // Roles: managing needs admin, reading admin or operator.
    let (s, h, v) = app
        .get(Some(app.key("viewer")), "/v1/admin/receivers")
        .await;
    assert_error(s, &h, &v, 403, "forbidden");
    let (s, h, v) = app
        .post_json(
            Some(app.key("operator")),
            "/v1/admin/receivers",
            &json!({"name": "x", "format": "slack", "url": rx.url("/s")}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 403, "forbidden");

    // Bad input: a clear error, nothing stored, no secret repeated.
    let bad = [
        (
            json!({"name": "x", "format": "email", "url": hook_url}),
            "format",
        ),
        (
            json!({"name": "x", "format": "webhook", "url": hook_url}),
            "secret",
        ),
        (
            json!({"name": "x", "format": "webhook", "url": hook_url, "secret": "plain-text-secret-value"}),
            "whsec_",
        ),
        (
            json!({"name": "x", "format": "slack", "url": hook_url, "secret": "whsec_AAAA"}),
            "no secret",
        ),
        (json!({"name": "x", "format": "pagerduty"}), "routing key"),
        (
            json!({"name": "x", "format": "slack", "url": hook_url, "events": ["approval.maybe"]}),
            "approval.created",
        ),
        (
            json!({"name": "", "format": "slack", "url": hook_url}),
            "name",
        ),
        (
            json!({"name": "x", "format": "slack", "url": "ftp://h/x"}),
            "http",
        ),
        (
            json!({"name": "x", "format": "slack", "url": "http://10.20.30.40/hook"}),
            "EGRESS_ALLOWLIST",
        ),
        (
            json!({"name": "x", "format": "slack", "url": "http://169.254.169.254/latest"}),
            "metadata",
        ),
    ];
    for (body, says) in bad {
        let (s, h, v) = app
            .post_json(Some(app.key("admin")), "/v1/admin/receivers", &body, &[])
            .await;
        assert_error(s, &h, &v, 400, "invalid_input");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
        assert!(!message.contains("plain-text-secret-value"), "{message}");
    }
    let (_, _, list) = app.get(Some(app.key("admin")), "/v1/admin/receivers").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

    // Tenants apart: another tenant's admin neither sees nor deletes it.
    let other = other_admin(&app);
    let (s, _, v) = app.get(Some(&other), "/v1/admin/receivers").await;
    assert_eq!((s.as_u16(), v["items"].as_array().unwrap().len()), (200, 0));
    let (s, h, v) = app
        .get(Some(&other), &format!("/v1/admin/receivers/{id}"))
        .await;
    assert_error(s, &h, &v, 404, "not_found");
    let resp = app
        .http
        .delete(app.url(&format!("/v1/admin/receivers/{id}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // A test notification arrives, signed.
    let (s, _, t) = app
        .post_json(
            Some(app.key("admin")),
            &format!("/v1/admin/receivers/{id}/test"),
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{t}");
    wait_until(
        &app,
        Duration::from_secs(20),
        "the test notification",
        || !rx.got("/hooks/c2VjcmV0LXBhdGg").is_empty(),
    )
    .await;
    let got = verified(&rx, "/hooks/c2VjcmV0LXBhdGg", &secret);
    assert_eq!(got.len(), 1);
    let body = &got[t["event_id"].as_str().unwrap()][0];
    assert_eq!(body["type"], "notification.test");
    assert_eq!(body["data"]["receiver_name"], "on-call");
    let delivery = format!(
        "/v1/admin/deliveries/{}",
        t["delivery_id"].as_str().unwrap()
    );
    let start = Instant::now();
    loop {
        let (s, _, d) = app.get(Some(app.key("operator")), &delivery).await;
        assert_eq!(s, 200, "{d}");
        if d["status"] == "succeeded" {
            assert_eq!(d["event_id"], t["event_id"]);
            assert_eq!(d["event_kind"], "notification.test");
            assert_eq!(
                (d["attempts"].as_i64(), d["response_status"].as_i64()),
                (Some(1), Some(200))
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nothing secret reached the logs.
    let logs = app.logs();
    assert!(!logs.contains(&secret[6..]), "the secret was logged");
    assert!(!logs.contains("c2VjcmV0LXBhdGg"), "the URL path was logged");

    // Deleted: gone from the API, kept in the delivery history.
    let resp = app
        .http
        .delete(app.url(&format!("/v1/admin/receivers/{id}")))
        .bearer_auth(app.key("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (s, h, v) = app
        .get(Some(app.key("admin")), &format!("/v1/admin/receivers/{id}"))
        .await;
    assert_error(s, &h, &v, 404, "not_found");
    let history = deliveries(&app, &format!("?receiver_id={id}")).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["receiver_name"], "on-call");
}
both!(receivers_api_test, super::receivers_api);

/// The delivery list's filters: an empty id or cursor is absent, an id not of an id's shape
/// matches nothing (an empty page), a status outside its values is a 400 — also next to an
/// id that matches nothing.
async fn delivery_filters(backend: Backend) {
    let app = TestApp::spawn(backend, &[("NOTIFY_SECRET_KEY", SEAL_KEY)]).await;
    let admin = Some(app.key("admin"));
    let (s, _, v) = app
        .get(
            admin,
            "/v1/admin/deliveries?receiver_id=&event_id=&cursor=&limit=1",
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = app
        .get(admin, "/v1/admin/deliveries?receiver_id=not-an-id")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"items": [], "next_cursor": null}));
    let (s, _, v) = app
        .get(
            admin,
            "/v1/admin/deliveries?receiver_id=not-an-id&status=odd",
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_input", "{v}");
}
both!(delivery_filters_test, super::delivery_filters);

async fn receivers_need_the_sealing_key(backend: Backend) {
    let app = TestApp::spawn(backend, &[]).await;
    let (s, h, v) = app
        .post_json(
            Some(app.key("admin")),
            "/v1/admin/receivers",
            &json!({"name": "x", "format": "pagerduty", "secret": "R0UTING"}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("NOTIFY_SECRET_KEY"),
        "{v}"
    );
}
both!(sealing_key_test, super::receivers_need_the_sealing_key);

// ---- every event kind, once, signed -------------------------------------------------

async fn approval_and_freeze_events_arrive_once_in_every_format(backend: Backend) {
    let rx = Loopback::start().await;
    let app = TestApp::spawn(
        backend,
        &[
            ("NOTIFY_SECRET_KEY", SEAL_KEY),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
            ("APPROVAL_SWEEP_SECS", "1"),
            // Every pending request is about to expire (they live 24 h).
            ("NOTIFY_APPROVAL_WARNING_SECS", "86400"),
        ],
    )
    .await;
    let secret = webhook_secret();
    add_receiver(
        &app,
        json!({"name": "hook", "format": "webhook", "url": rx.url("/hook"), "secret": secret}),
    )
    .await;
    add_receiver(
        &app,
        json!({"name": "chat", "format": "slack", "url": rx.url("/slack/T0/B0/x")}),
    )
    .await;
    add_receiver(
        &app,
        json!({"name": "pager", "format": "pagerduty", "url": rx.url("/pd"), "secret": "R0UT1NGKEY"}),
    )
    .await;

    // Three proposals: one executed, one failed (its invoice was paid meanwhile), one left
    // pending until it is about to expire.
    let executed = propose(&app, "invoice_approval", "pay invoice INV-2001").await;
    let failing = propose(&app, "invoice_approval", "pay invoice INV-2001").await;
    let pending = propose(&app, "ticket_update", "close ticket T-1009 comment: done").await;
    let (s, _, a) = decide(&app, app.key("approver"), &executed, "approve", "ok").await;
    assert_eq!(
        (s.as_u16(), a["status"].as_str()),
        (200, Some("executed")),
        "{a}"
    );
    let (s, _, a) = decide(&app, app.key("approver"), &failing, "approve", "ok").await;
    assert_eq!(
        (s.as_u16(), a["status"].as_str()),
        (200, Some("failed")),
        "{a}"
    );
    for path in ["/v1/admin/freeze", "/v1/admin/unfreeze"] {
        let (s, _, v) = app
            .post_json(
                Some(app.key("operator")),
                path,
                &json!({"reason": "incident drill"}),
                &[],
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }

    let want: BTreeMap<&str, usize> = [
        ("approval.created", 3),
        ("approval.decided", 2),
        ("approval.executed", 1),
        ("approval.failed", 1),
        ("freeze.on", 1),
        ("freeze.off", 1),
    ]
    .into();
    let complete = |by_id: &BTreeMap<String, Vec<Value>>| {
        let k = kinds(by_id);
        want.iter().all(|(kind, n)| k.get(*kind) == Some(n))
            && by_id.values().any(|b| {
                b[0]["type"] == "approval.expiring" && b[0]["data"]["approval_id"] == pending
            })
    };
    wait_until(
        &app,
        Duration::from_secs(30),
        "every event at the webhook",
        || complete(&verified(&rx, "/hook", &secret)),
    )
    .await;
    // Nothing more arrives later (no duplicates from retries or other sweeps).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hook = verified(&rx, "/hook", &secret);
    assert_each_once(&hook);
    assert!(complete(&hook), "{:?}", kinds(&hook));
    let by_kind = |kind: &str| -> Vec<&Value> {
        hook.values()
            .map(|b| &b[0])
            .filter(|b| b["type"] == kind)
            .collect()
    };
    let decided = by_kind("approval.decided");
    assert!(decided.iter().all(|b| b["data"]["decision"] == "approved"));
    assert!(
        decided
            .iter()
            .all(|b| b["data"]["approver_name"] == "demo-approver")
    );
    let failed = by_kind("approval.failed");
    assert_eq!(failed[0]["data"]["approval_id"], failing);
    assert!(
        failed[0]["data"]["error"]
            .as_str()
            .unwrap()
            .contains("already paid"),
        "{}",
        failed[0]
    );
    let created = by_kind("approval.created");
    assert!(created.iter().all(|b| b["tenant"] == "demo"
        && b["data"]["resource"].is_string()
        && b["data"]["expires_at"].is_string()));
    assert_eq!(by_kind("freeze.on")[0]["data"]["reason"], "incident drill");

    // The same events reach Slack (messages) and PagerDuty (Events v2), once each.
    let events = hook.len();
    wait_until(&app, Duration::from_secs(20), "Slack and PagerDuty", || {
        rx.got("/slack/T0/B0/x").len() == events && rx.got("/pd").len() == events
    })
    .await;
    for g in rx.got("/slack/T0/B0/x") {
        let m = g.json();
        assert!(m["text"].as_str().is_some_and(|t| t.len() > 20), "{m}");
        assert_eq!(m["blocks"][0]["text"]["text"], m["text"]);
        assert!(
            g.headers.get("webhook-signature").is_none(),
            "Slack is not signed"
        );
    }
    let pd: Vec<Value> = rx.got("/pd").iter().map(Got::json).collect();
    for e in &pd {
        assert_eq!(e["routing_key"], "R0UT1NGKEY");
        assert!(
            e["dedup_key"].as_str().is_some_and(|k| !k.is_empty()),
            "{e}"
        );
    }
    let actions: HashMap<&str, usize> = pd.iter().fold(HashMap::new(), |mut m, e| {
        *m.entry(e["event_action"].as_str().unwrap()).or_default() += 1;
        m
    });
    // Resolves: two decisions, one execution, the unfreeze; everything else triggers.
    assert_eq!(actions.get("resolve"), Some(&4), "{pd:?}");
    assert_eq!(actions.get("trigger"), Some(&(events - 4)), "{pd:?}");
    let trigger = pd
        .iter()
        .find(|e| e["payload"]["class"] == "approval.failed")
        .expect("the failure triggers");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(trigger["dedup_key"], format!("approval:{failing}"));

    // Every delivery is recorded as delivered, with the receiver's status.
    let all = deliveries(&app, "?limit=100").await;
    assert_eq!(all.len(), 3 * events, "{all:?}");
    assert!(
        all.iter().all(|d| d["status"] == "succeeded"
            && d["response_status"] == 200
            && d["attempts"] == 1),
        "{all:?}"
    );
    assert_eq!(
        app.metric(r#"agent_notifications_total{kind="approval.created",outcome="delivered"}"#)
            .await,
        Some(9.0),
        "three approvals, three receivers"
    );
}
both!(
    approval_events_test,
    super::approval_and_freeze_events_arrive_once_in_every_format
);

// ---- a receiver that is down for a minute ---------------------------------------------

async fn a_receiver_down_for_a_minute_gets_everything_after_it_returns(backend: Backend) {
    let mut rx = Loopback::start().await;
    let app = TestApp::spawn(
        backend,
        &[
            ("NOTIFY_SECRET_KEY", SEAL_KEY),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
            // Real retries, with short waits: 0.5 s doubling up to 5 s.
            ("NOTIFY_RETRY_BASE_MS", "500"),
            ("NOTIFY_RETRY_MAX_SECS", "5"),
            ("NOTIFY_MAX_ATTEMPTS", "40"),
        ],
    )
    .await;
    let secret = webhook_secret();
    add_receiver(
        &app,
        json!({"name": "hook", "format": "webhook", "url": rx.url("/hook"), "secret": secret}),
    )
    .await;
    rx.stop().await;
    let down_at = Instant::now();

    let first = propose(&app, "ticket_update", "close ticket T-1005 comment: down").await;
    let (s, _, a) = decide(&app, app.key("approver"), &first, "reject", "not now").await;
    assert_eq!(
        (s.as_u16(), a["status"].as_str()),
        (200, Some("rejected")),
        "{a}"
    );
    for path in ["/v1/admin/freeze", "/v1/admin/unfreeze"] {
        let (s, _, v) = app
            .post_json(
                Some(app.key("operator")),
                path,
                &json!({"reason": "drill"}),
                &[],
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let second = propose(
        &app,
        "ticket_update",
        "close ticket T-1006 comment: still down",
    )
    .await;

    // While it is down the deliveries wait and retry; nothing is lost.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let waiting = deliveries(&app, "").await;
    assert_eq!(waiting.len(), 5, "{waiting:?}");
    for d in &waiting {
        assert!(
            matches!(d["status"].as_str(), Some("queued" | "running")),
            "{d}"
        );
        assert!(d["attempts"].as_i64().unwrap() > 1, "retried: {d}");
        assert_eq!(d["last_error"]["code"], "delivery_failed", "{d}");
    }
    assert!(rx.got("/hook").is_empty());

    tokio::time::sleep(Duration::from_secs(60).saturating_sub(down_at.elapsed())).await;
    rx.resume().await;
    let back = chrono::Utc::now().timestamp();
    wait_until(
        &app,
        Duration::from_secs(30),
        "every event after the return",
        || verified(&rx, "/hook", &secret).len() == 5,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = verified(&rx, "/hook", &secret);
    assert_each_once(&got);
    assert_eq!(
        kinds(&got),
        [
            ("approval.created".to_string(), 2),
            ("approval.decided".to_string(), 1),
            ("freeze.off".to_string(), 1),
            ("freeze.on".to_string(), 1)
        ]
        .into()
    );
    let ids: Vec<&Value> = got.values().map(|b| &b[0]["data"]["approval_id"]).collect();
    assert!(ids.contains(&&json!(first)) && ids.contains(&&json!(second)));
    // Signed at the attempt that got through, so a receiver's replay window accepts it.
    for g in rx.got("/hook") {
        let ts: i64 = g.header("webhook-timestamp").parse().unwrap();
        assert!(
            ts >= back - 1,
            "signed at {ts}, the receiver returned at {back}"
        );
    }
    let done = deliveries(&app, "").await;
    assert!(done.iter().all(|d| d["status"] == "succeeded"), "{done:?}");
}
both!(
    receiver_down_test,
    super::a_receiver_down_for_a_minute_gets_everything_after_it_returns
);

// ---- dead letters ----------------------------------------------------------------------

async fn dead_letters_are_listed_and_can_be_retried(backend: Backend) {
    let mut rx = Loopback::start().await;
    rx.stop().await;
    let app = TestApp::spawn(
        backend,
        &[
            ("NOTIFY_SECRET_KEY", SEAL_KEY),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
            ("NOTIFY_RETRY_BASE_MS", "100"),
            ("NOTIFY_RETRY_MAX_SECS", "1"),
            ("NOTIFY_MAX_ATTEMPTS", "3"),
        ],
    )
    .await;
    let secret = webhook_secret();
    let r = add_receiver(
        &app,
        json!({"name": "hook", "format": "webhook", "url": rx.url("/hook"), "secret": secret,
               "events": ["freeze.on"]}),
    )
    .await;
    let (s, _, v) = app
        .post_json(
            Some(app.key("operator")),
            "/v1/admin/freeze",
            &json!({"reason": "dead letter drill"}),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let start = Instant::now();
    let dead = loop {
        let dead = deliveries(&app, "?status=dead").await;
        if !dead.is_empty() {
            break dead;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", app.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    let d = &dead[0];
    assert_eq!(d["receiver_id"], r["id"]);
    assert_eq!(d["event_kind"], "freeze.on");
    assert_eq!(
        (d["attempts"].as_i64(), d["max_attempts"].as_i64()),
        (Some(3), Some(3))
    );
    assert_eq!(d["last_error"]["code"], "delivery_failed");
    assert!(
        d["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{d}"
    );
    assert!(
        d["finished_at"].is_string() && d["next_attempt_at"].is_null(),
        "{d}"
    );
    assert_eq!(
        app.metric(r#"agent_notifications_total{kind="freeze.on",outcome="dead"}"#)
            .await,
        Some(1.0)
    );
    assert!(rx.got("/hook").is_empty());

    // Retried by hand once the receiver is back: delivered, once.
    rx.resume().await;
    let id = d["id"].as_str().unwrap();
    let (s, _, v) = app
        .post_json(
            Some(app.key("admin")),
            &format!("/v1/admin/deliveries/{id}/retry"),
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{v}");
    // Queued with fresh attempts (a worker may have taken it already).
    assert!(
        matches!(
            v["status"].as_str(),
            Some("queued" | "running" | "succeeded")
        ),
        "{v}"
    );
    assert!(v["attempts"].as_i64().unwrap() <= 1, "{v}");
    wait_until(
        &app,
        Duration::from_secs(20),
        "the retried delivery",
        || rx.got("/hook").len() == 1,
    )
    .await;
    let got = verified(&rx, "/hook", &secret);
    assert_eq!(kinds(&got), [("freeze.on".to_string(), 1)].into());
    let start = Instant::now();
    loop {
        let (_, _, d) = app
            .get(
                Some(app.key("operator")),
                &format!("/v1/admin/deliveries/{id}"),
            )
            .await;
        if d["status"] == "succeeded" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A delivered notification is not a dead letter: it cannot be retried.
    let (s, h, v) = app
        .post_json(
            Some(app.key("admin")),
            &format!("/v1/admin/deliveries/{id}/retry"),
            &json!({}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 409, "conflict");
}
both!(
    dead_letters_test,
    super::dead_letters_are_listed_and_can_be_retried
);

// ---- the egress guard ------------------------------------------------------------------

async fn receivers_on_private_addresses_need_the_allowlist(backend: Backend) {
    let rx = Loopback::start().await;
    let mut app = TestApp::spawn(
        backend,
        &[
            ("NOTIFY_SECRET_KEY", SEAL_KEY),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
        ],
    )
    .await;
    let secret = webhook_secret();
    let r = add_receiver(
        &app,
        json!({"name": "hook", "format": "webhook", "url": rx.url("/hook"), "secret": secret}),
    )
    .await;
    // The same service without 127.0.0.1 on its allowlist refuses to send there...
    app.restart(&[("NOTIFY_SECRET_KEY", SEAL_KEY)]).await;
    let (s, h, v) = app
        .post_json(
            Some(app.key("admin")),
            "/v1/admin/receivers",
            &json!({"name": "again", "format": "webhook", "url": rx.url("/hook"), "secret": secret}),
            &[],
        )
        .await;
    assert_error(s, &h, &v, 400, "invalid_input");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("loopback address"),
        "{v}"
    );
    let (s, _, t) = app
        .post_json(
            Some(app.key("admin")),
            &format!("/v1/admin/receivers/{}/test", r["id"].as_str().unwrap()),
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(s, 202, "{t}");
    let id = t["delivery_id"].as_str().unwrap().to_string();
    let start = Instant::now();
    let d = loop {
        let (_, _, d) = app
            .get(
                Some(app.key("operator")),
                &format!("/v1/admin/deliveries/{id}"),
            )
            .await;
        if d["status"] == "failed" {
            break d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{d}\n{}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // ...at once and for good: not retried.
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["last_error"]["code"], "delivery_refused", "{d}");
    let message = d["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("egress guard") && message.contains("EGRESS_ALLOWLIST"),
        "{message}"
    );
    assert!(rx.got("/hook").is_empty(), "nothing reached the receiver");
}
both!(
    egress_test,
    super::receivers_on_private_addresses_need_the_allowlist
);

// ---- budget burn, quality alerts, circuits -------------------------------------------

async fn budget_burn_and_quality_alerts_arrive_once(backend: Backend) {
    let rx = Loopback::start().await;
    let app = TestApp::spawn(
        backend,
        &[
            ("NOTIFY_SECRET_KEY", SEAL_KEY),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
            ("SCRIPTED_VARIANT", "uncited"),
            ("RELEASE_TRACK", "canary"),
            ("QUALITY_CHECK_SECS", "1"),
            ("QUALITY_ALERT_MIN_SAMPLES", "3"),
            // A few runs reach 80 % and then 100 % of the day's tokens.
            ("TENANT_DAILY_TOKEN_BUDGET", "4000"),
        ],
    )
    .await;
    let secret = webhook_secret();
    add_receiver(
        &app,
        json!({"name": "hook", "format": "webhook", "url": rx.url("/hook"), "secret": secret,
               "events": ["budget.burn", "quality.alert"]}),
    )
    .await;
    let mut refused = false;
    for _ in 0..40 {
        let (s, v) = app.invoke("faq", "how do I reset my password").await;
        assert_eq!(s, 200, "{v}");
        match v["status"].as_str() {
            Some("blocked") => assert_eq!(v["guardrail_rule"], "citation_required", "{v}"),
            Some("budget_exceeded") => {
                assert_eq!(v["budget"], "tenant_daily_tokens", "{v}");
                refused = true;
                break;
            }
            other => panic!("unexpected {other:?}: {v}"),
        }
        // The usage is flushed every second; the watch reads it every second.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(refused, "the budget was never reached");
    wait_until(
        &app,
        Duration::from_secs(20),
        "burn and quality alerts",
        || {
            let k = kinds(&verified(&rx, "/hook", &secret));
            k.get("budget.burn") == Some(&2) && k.get("quality.alert") == Some(&1)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = verified(&rx, "/hook", &secret);
    assert_each_once(&got);
    let bodies: Vec<&Value> = got.values().map(|b| &b[0]).collect();
    let mut burns: Vec<u64> = bodies
        .iter()
        .filter(|b| b["type"] == "budget.burn")
        .map(|b| {
            assert_eq!(b["tenant"], "demo");
            assert_eq!(b["data"]["budget"], "tokens");
            assert_eq!(b["data"]["limit"], 4000.0);
            b["data"]["threshold_percent"].as_u64().unwrap()
        })
        .collect();
    burns.sort();
    assert_eq!(burns, [80, 100]);
    let alert = bodies
        .iter()
        .find(|b| b["type"] == "quality.alert")
        .unwrap();
    assert_eq!(alert["tenant"], Value::Null, "service-wide");
    assert_eq!(alert["data"]["workflow"], "faq");
    assert_eq!(alert["data"]["track"], "canary");
    assert_eq!(alert["data"]["signal"], "citation_rate");
    assert_eq!(alert["data"]["state"], "firing");
    assert_eq!(alert["data"]["value"], 0.0);
    assert_eq!(
        app.metric(r#"agent_quality_alert{workflow="faq",track="canary",signal="citation_rate"}"#)
            .await,
        Some(1.0)
    );
    let used = app
        .metric(r#"agent_tenant_usage_today_tokens{tenant="demo"}"#)
        .await
        .unwrap();
    assert!(used >= 4000.0, "{used}");
    assert_eq!(
        app.metric(r#"agent_tenant_daily_budget_tokens{tenant="demo"}"#)
            .await,
        Some(4000.0)
    );
    let (_, _, info) = app.get(Some(app.key("viewer")), "/v1/info").await;
    assert_eq!(info["budget"]["tenant"], "demo", "{info}");
    assert_eq!(info["budget"]["tokens_limit"], 4000);
    assert!(
        info["budget"]["tokens_used"].as_i64().unwrap() >= 4000,
        "{info}"
    );
}
both!(
    burn_and_quality_test,
    super::budget_burn_and_quality_alerts_arrive_once
);

async fn circuit_changes_arrive_once(backend: Backend) {
    let rx = Loopback::start().await;
    let fake = FakeOllama::start().await;
    let app = TestApp::spawn_with_ollama(
        backend,
        &fake,
        &[
            ("NOTIFY_SECRET_KEY", SEAL_KEY),
            ("EGRESS_ALLOWLIST", "127.0.0.1"),
            ("CIRCUIT_FAILURE_THRESHOLD", "2"),
            ("CIRCUIT_OPEN_SECS", "1"),
            ("PROVIDER_MAX_RETRIES", "0"),
        ],
    )
    .await;
    let secret = webhook_secret();
    add_receiver(
        &app,
        json!({"name": "hook", "format": "webhook", "url": rx.url("/hook"), "secret": secret,
               "events": ["circuit.open", "circuit.closed"]}),
    )
    .await;
    fake.set_mode(Mode::Down {
        status: 503,
        message: "busy".into(),
    });
    for _ in 0..3 {
        let (s, v) = app.invoke("faq", "refunds").await;
        assert_eq!(s, 503, "{v}");
    }
    fake.set_mode(Mode::Normal);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    fake.push_reply(Reply::tool_call("kb_search", json!({"query": "refund"})));
    fake.push_reply(Reply::text("Refunds take 5 days [kb:KB-2]."));
    let (s, v) = app.invoke("faq", "refund policy").await;
    assert_eq!(s, 200, "{v}");
    wait_until(&app, Duration::from_secs(20), "circuit events", || {
        verified(&rx, "/hook", &secret).len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = verified(&rx, "/hook", &secret);
    assert_each_once(&got);
    let mut events: Vec<(&str, &str)> = got
        .values()
        .map(|b| {
            (
                b[0]["type"].as_str().unwrap(),
                b[0]["timestamp"].as_str().unwrap(),
            )
        })
        .collect();
    events.sort_by_key(|(_, at)| *at);
    let order: Vec<&str> = events.iter().map(|(k, _)| *k).collect();
    assert_eq!(order, ["circuit.open", "circuit.closed"]);
    assert!(
        got.values()
            .all(|b| b[0]["data"]["dependency"] == "provider:ollama" && b[0]["tenant"].is_null()),
        "each provider link has its own circuit, named provider:<link>: {got:?}"
    );
}
both!(circuit_events_test, super::circuit_changes_arrive_once);
