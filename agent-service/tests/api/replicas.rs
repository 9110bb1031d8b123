//! The production shape: agent-service replicas on one PostgreSQL behind a real load
//! balancer (HAProxy, round-robin, health checks on `/readyz`; the kit's [`Balancer`]).
//! Through the balancer: the tenant's daily budget and the per-key rate limit hold to one
//! limit across the replicas; an approval created on one replica is decided through
//! another and executes once; an event stream on one replica carries the events of all of
//! them and resumes after its replica is killed; jobs run once; the audit chain verifies
//! after concurrent writes from every replica; a rolling restart under traffic fails no
//! request and loses nothing.
//!
//! Each scenario runs on three replicas and on one (`<scenario>::three::postgres`,
//! `::one::postgres`), except the rolling restart, which needs another replica to take
//! the traffic. What the rolling restart relies on: the balancer sends a request again,
//! to another replica, when a connection to the one it chose fails or closes before any
//! answer, or when the answer is a 503 (`retry-on conn-failure empty-response 503`,
//! `option redispatch`) — agent-service answers 503 `shutting_down` before running
//! anything once SIGTERM arrives, and its listener closes at once, so no request it
//! accepted is lost and none it refused has done anything.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Row;
use testkit::Balancer;

use crate::helpers::{Backend, TestApp};

/// Settings of every replica of the suite: few database connections each (several
/// clusters share the PostgreSQL server's 100), a fast approval sweeper.
const BASE_ENV: [(&str, &str); 2] = [
    ("DATABASE_MAX_CONNECTIONS", "6"),
    ("APPROVAL_SWEEP_SECS", "1"),
];

/// Replicas on one fresh PostgreSQL database and a balancer in front of them.
struct Cluster {
    replicas: Vec<TestApp>,
    lb: Balancer,
    env: Vec<(&'static str, &'static str)>,
    http: reqwest::Client,
}

impl Cluster {
    async fn start(n: usize, extra: &[(&'static str, &'static str)]) -> Self {
        let mut env: Vec<(&str, &str)> = BASE_ENV.to_vec();
        env.extend_from_slice(extra);
        let first = TestApp::spawn(Backend::Postgres, &env).await;
        let mut replicas = vec![first];
        for _ in 1..n {
            let r = replicas[0].replica(&env).await;
            replicas.push(r);
        }
        let bases: Vec<&str> = replicas.iter().map(|r| r.base.as_str()).collect();
        let lb = Balancer::start(&bases);
        lb.wait_all_up(Duration::from_secs(20)).await;
        Self {
            replicas,
            lb,
            env,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    fn key(&self, role: &str) -> String {
        self.replicas[0].key(role).to_string()
    }

    /// `POST path` through the balancer: status and JSON body.
    async fn post(&self, base: &str, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.lb.logs()));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, base: &str, key: &str, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.lb.logs()));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn pool(&self) -> sqlx::AnyPool {
        crate::approvals::pool(&self.replicas[0]).await
    }

    /// Proposes a ticket note through `base` and returns the approval id.
    async fn propose(&self, base: &str, marker: &str) -> String {
        let ticket = format!("T-{}", 1001 + marker.len() % 12);
        let (s, v) = self
            .post(
                base,
                &self.key("invoke"),
                "/v1/invoke",
                &json!({"workflow": "ticket_update",
                        "input": {"text": format!("add a note to {ticket} comment: {marker}")}}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "approval_required", "{v}");
        v["approval_request_id"].as_str().unwrap().to_string()
    }

    /// Restarts replica `i` (SIGTERM, drained exit, a new process on a new port) and
    /// points the balancer at it.
    async fn rolling_restart_one(&mut self, i: usize) {
        self.replicas[i].terminate();
        let exited =
            tokio::task::block_in_place(|| self.replicas[i].wait_exit(Duration::from_secs(30)));
        assert!(
            exited.is_some_and(|s| s.success()),
            "replica {i} did not drain and exit cleanly: {exited:?}\n{}",
            self.replicas[i].logs()
        );
        let env = self.env.clone();
        self.replicas[i].restart(&env).await;
        self.lb.set_server(i, &self.replicas[i].base);
        self.lb.wait_all_up(Duration::from_secs(20)).await;
    }
}

/// Runs a scenario on three replicas and on one: `scenario::three::postgres` and
/// `scenario::one::postgres` (scripts/check.sh selects PostgreSQL variants by the suffix).
macro_rules! on_replicas {
    ($name:ident, $body:path) => {
        mod $name {
            pub mod three {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $body(3).await
                }
            }
            pub mod one {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $body(1).await
                }
            }
        }
    };
}

/// A tenant's daily token budget of 20,000, spent by 12 clients through the balancer: the
/// tokens let through pass it by no more than the runs in flight can spend (each run
/// reserves what it may spend before it starts, on whichever replica).
async fn budget_holds(n: usize) {
    const BUDGET: i64 = 20_000;
    const CLIENTS: usize = 12;
    let c = Arc::new(
        Cluster::start(
            n,
            &[
                ("TENANT_DAILY_TOKEN_BUDGET", "20000"),
                ("MAX_TOKENS_PER_REQUEST", "1000"),
            ],
        )
        .await,
    );
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let key = c.key("invoke");
            let body = json!({"workflow": "support_ticket_summary",
                              "input": {"text": "Summarize ticket T-1001"}});
            let (mut spent, mut largest, mut busy) = (0i64, 0i64, 0u32);
            loop {
                let (s, v) = c.post(&c.lb.base, &key, "/v1/invoke", &body).await;
                if s == 429 && v["error"]["code"] == "tenant_budget_exceeded" {
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                assert_eq!(s, 200, "{v}\n{}", c.lb.logs());
                if v["budget"] == "tenant_daily_tokens" {
                    return (spent, largest, busy);
                }
                assert_eq!(v["status"], "success", "{v}");
                let used = v["usage"]["prompt_tokens"].as_i64().unwrap()
                    + v["usage"]["completion_tokens"].as_i64().unwrap();
                spent += used;
                largest = largest.max(used);
            }
        }));
    }
    let (mut total, mut largest, mut busy) = (0, 0, 0);
    for t in tasks {
        let (s, l, b) = t.await.unwrap();
        total += s;
        largest = largest.max(l);
        busy += b;
    }
    let db = c.pool().await;
    let row = sqlx::query("SELECT tokens, reserved_tokens FROM tenant_usage WHERE tenant = 'demo'")
        .fetch_one(&db)
        .await
        .unwrap();
    let (stored, reserved): (i64, i64) = (row.get("tokens"), row.get("reserved_tokens"));
    eprintln!(
        "{n} replica(s), daily budget {BUDGET}: let through {total} tokens ({:.3}x, overshoot {}), \
         largest run {largest}, {CLIENTS} clients, {busy} busy refusals",
        total as f64 / BUDGET as f64,
        total - BUDGET
    );
    assert_eq!(
        stored, total,
        "the stored total is what the clients were given"
    );
    assert_eq!(reserved, 0, "every run settled");
    assert!(
        total >= BUDGET,
        "refused before the budget was spent: {total}"
    );
    assert!(
        total - BUDGET <= CLIENTS as i64 * largest,
        "overshoot {} is more than the {CLIENTS} runs in flight could spend ({largest} each)",
        total - BUDGET
    );
}
on_replicas!(budget, crate::replicas::budget_holds);

/// 60 requests per minute per key, 180 requests through the balancer as fast as they
/// are answered: at most the limit, what refills meanwhile, and one per replica.
async fn rate_limit_holds(n: usize) {
    let c = Cluster::start(n, &[("RATE_LIMIT_RPM", "60")]).await;
    let key = c.key("viewer");
    let started = Instant::now();
    let (mut admitted, mut limited) = (0usize, 0usize);
    for _ in 0..180 {
        let resp = c
            .http
            .get(c.lb.url("/v1/whoami"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => admitted += 1,
            429 => {
                assert!(resp.headers().contains_key("retry-after"));
                let v: Value = resp.json().await.unwrap();
                assert_eq!(
                    v["error"]["message"],
                    "rate limit of 60 requests per minute for this API key exceeded"
                );
                limited += 1;
            }
            s => panic!("unexpected {s}\n{}", c.lb.logs()),
        }
    }
    let took = started.elapsed();
    let refilled = took.as_secs_f64().ceil() as usize;
    eprintln!(
        "{n} replica(s), 60 requests/minute: admitted {admitted} of 180 in {took:?} ({limited} limited)"
    );
    assert!(
        (60..=60 + refilled + n).contains(&admitted),
        "admitted {admitted} of 180 in {took:?}"
    );
    let (_, info) = c.get(&c.lb.base, &c.key("invoke"), "/v1/info").await;
    assert_eq!(info["limits"]["rate_limit"]["scope"], "global", "{info}");
    assert_eq!(info["limits"]["concurrency"]["scope"], "replica", "{info}");
}
on_replicas!(rate_limit, crate::replicas::rate_limit_holds);

/// A minimal Server-Sent Events reader of `/v1/approvals/events` at any base URL.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

#[derive(Debug, Clone)]
struct Event {
    id: i64,
    event: String,
    approval: String,
}

impl Events {
    async fn open(base: &str, key: &str, last: Option<i64>) -> Self {
        let mut req = reqwest::Client::new()
            .get(format!("{base}/v1/approvals/events"))
            .bearer_auth(key);
        if let Some(id) = last {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.expect("open the event stream");
        assert_eq!(resp.status(), 200);
        Self {
            resp,
            buf: String::new(),
        }
    }

    async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let (Some(id), Some(event)) = (id, event) {
                    let v: Value = serde_json::from_str(&data).expect("JSON data");
                    let approval = v["approval_id"].as_str().unwrap_or_default().to_string();
                    return Some(Event {
                        id,
                        event,
                        approval,
                    });
                }
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Events until none comes for `quiet`.
    async fn until_quiet(&mut self, quiet: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = self.next(quiet).await {
            out.push(e);
        }
        out
    }
}

/// Approvals created on every replica and decided through another: each executes once;
/// a subscriber on the first replica sees every replica's events in order, and after its
/// replica is killed resumes with `Last-Event-ID` through the balancer with exactly the
/// events it missed.
async fn approvals_across_replicas(n: usize) {
    let mut c = Cluster::start(n, &[]).await;
    let approver = c.key("approver");
    let mut sse = Events::open(&c.replicas[0].base, &c.key("viewer"), None).await;
    let mut proposed = Vec::new();
    for i in 0..6 {
        let marker = format!("[replica-{i:02}]");
        let id = c.propose(&c.replicas[i % n].base.clone(), &marker).await;
        // Decided through another replica than the one that created it; twice at once,
        // through two replicas, for the first: one decision wins, the other is a conflict.
        let other = c.replicas[(i + 1) % n].base.clone();
        let path = format!("/v1/approvals/{id}/approve");
        let body = json!({"reason": "looks right"});
        if i == 0 {
            let third = c.replicas[(i + 2) % n].base.clone();
            let (a, b) = tokio::join!(
                c.post(&other, &approver, &path, &body),
                c.post(&third, &approver, &path, &body)
            );
            let mut statuses = [a.0, b.0];
            statuses.sort();
            assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        } else {
            let (s, v) = c.post(&other, &approver, &path, &body).await;
            assert_eq!(s, 200, "{v}");
        }
        proposed.push((id, marker));
    }
    let want: usize = proposed.len() * 4;
    let mut seen = Vec::new();
    while seen.len() < want {
        let e = sse
            .next(Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("only {} of {want} events arrived: {seen:?}", seen.len()));
        seen.push(e);
    }
    for pair in seen.windows(2) {
        assert!(pair[0].id < pair[1].id, "in order: {seen:?}");
    }
    for (id, _) in &proposed {
        let kinds: Vec<&str> = seen
            .iter()
            .filter(|e| &e.approval == id)
            .map(|e| e.event.as_str())
            .collect();
        assert_eq!(
            kinds,
            ["created", "approved", "executing", "executed"],
            "{id}"
        );
    }
    let last = seen.last().unwrap().id;

    // The subscriber's replica dies; meanwhile more happens on the others.
    c.replicas[0].kill9();
    drop(sse);
    let live = if n == 1 {
        let env = c.env.clone();
        c.replicas[0].restart(&env).await;
        c.lb.set_server(0, &c.replicas[0].base);
        c.lb.wait_all_up(Duration::from_secs(20)).await;
        c.replicas[0].base.clone()
    } else {
        c.replicas[1].base.clone()
    };
    let late_a = c.propose(&live, "[replica-late-a]").await;
    let late_b = c.propose(&live, "[replica-late-b]").await;
    let (s, v) = c
        .post(
            &live,
            &approver,
            &format!("/v1/approvals/{late_a}/reject"),
            &json!({"reason": "not now"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mut resumed = Events::open(&c.lb.base, &c.key("viewer"), Some(last)).await;
    let missed = resumed.until_quiet(Duration::from_secs(3)).await;
    let got: Vec<(String, String)> = missed
        .iter()
        .map(|e| (e.event.clone(), e.approval.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("created".to_string(), late_a.clone()),
            ("created".to_string(), late_b.clone()),
            ("rejected".to_string(), late_a.clone()),
        ],
        "exactly the missed events, in order"
    );
    assert!(missed.iter().all(|e| e.id > last));
    for pair in missed.windows(2) {
        assert!(pair[0].id < pair[1].id);
    }

    // Executed exactly once each: one attempt, the note once, one audit event.
    let db = c.pool().await;
    for (id, marker) in &proposed {
        let row = sqlx::query("SELECT status, attempts FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
        let (status, attempts): (String, i64) = (row.get("status"), row.get("attempts"));
        assert_eq!((status.as_str(), attempts), ("executed", 1), "{id}");
        let notes: i64 = sqlx::query("SELECT body FROM tickets WHERE tenant = 'demo'")
            .fetch_all(&db)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("body").matches(marker.as_str()).count() as i64)
            .sum();
        assert_eq!(notes, 1, "{marker} applied {notes} times");
        let executed: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM audit_events WHERE tenant = 'demo' \
             AND action = 'approval.executed' AND resource = $1",
        )
        .bind(format!("approval/{id}"))
        .fetch_one(&db)
        .await
        .unwrap()
        .get("n");
        assert_eq!(executed, 1, "{id}");
    }
}
on_replicas!(approvals, crate::replicas::approvals_across_replicas);

/// Jobs submitted through the balancer are claimed by whichever replica's workers get
/// there first, and each runs exactly once: one attempt, one run (one trace).
async fn jobs_run_once(n: usize) {
    let c = Cluster::start(n, &[]).await;
    let key = c.key("invoke");
    let mut ids = Vec::new();
    for i in 0..24 {
        let (s, v) = c
            .post(
                &c.lb.base,
                &key,
                "/v1/jobs",
                &json!({"workflow": "faq", "input": {"text": format!("refund policy {i}")}}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let jobs = wait_jobs(&c, &ids, Duration::from_secs(60)).await;
    let db = c.pool().await;
    for (id, job) in &jobs {
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        let runs = traces_of(&db, job["request_id"].as_str().unwrap(), 1).await;
        assert_eq!(runs, 1, "job {id} ran {runs} times");
    }
}
on_replicas!(jobs, crate::replicas::jobs_run_once);

/// Polls the jobs through the balancer until each is finished.
async fn wait_jobs(c: &Cluster, ids: &[String], within: Duration) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + within;
    let key = c.key("viewer");
    let mut done = BTreeMap::new();
    while done.len() < ids.len() {
        let pending: Vec<&String> = ids.iter().filter(|id| !done.contains_key(*id)).collect();
        for id in pending {
            let (s, v) = c.get(&c.lb.base, &key, &format!("/v1/jobs/{id}")).await;
            assert_eq!(s, 200, "{v}");
            if ["succeeded", "failed", "dead", "cancelled"].contains(&v["status"].as_str().unwrap())
            {
                done.insert(id.clone(), v);
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} jobs finished",
            done.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done
}

/// How many stored traces the request `request_id` has, waiting for at least `want`
/// (the trace writer stores them shortly after the run).
async fn traces_of(db: &sqlx::AnyPool, request_id: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM traces WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(db)
            .await
            .unwrap()
            .get("n");
        if n >= want || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every replica writes to the tenant's audit chain at once (approvals created, approved,
/// executed, rejected; a write freeze and its end): the chain verifies, with no gap.
async fn audit_chain_verifies(n: usize) {
    let c = Arc::new(Cluster::start(n, &[]).await);
    let mut tasks = Vec::new();
    for w in 0..3 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let base = c.replicas[w % n].base.clone();
            let approver = c.key("approver");
            for i in 0..5 {
                let id = c.propose(&base, &format!("[audit-{w}-{i}]")).await;
                let verb = if i % 2 == 0 { "approve" } else { "reject" };
                let (s, v) = c
                    .post(
                        &base,
                        &approver,
                        &format!("/v1/approvals/{id}/{verb}"),
                        &json!({"reason": "concurrent"}),
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let db = c.pool().await;
    // Executions are asynchronous to the decisions: wait for them to land.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM approvals WHERE status IN ('approved', 'executing')",
        )
        .fetch_one(&db)
        .await
        .unwrap()
        .get("n");
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} approvals still executing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, v) = c
        .get(&c.lb.base, &c.key("viewer"), "/v1/audit/verify")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    let seqs: Vec<i64> =
        sqlx::query("SELECT seq FROM audit_events WHERE tenant = 'demo' ORDER BY seq")
            .fetch_all(&db)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("seq"))
            .collect();
    // 15 created, 8 approved + executing + executed, 7 rejected.
    assert!(seqs.len() >= 15 + 8 * 3 + 7, "{} events", seqs.len());
    assert_eq!(v["checked"], seqs.len() as i64, "{v}");
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "no gap in the chain");
    }
}
on_replicas!(audit, crate::replicas::audit_chain_verifies);

/// What the traffic of the rolling restart saw.
#[derive(Default)]
struct Traffic {
    ok: AtomicU64,
    failed: std::sync::Mutex<Vec<String>>,
    retried: AtomicU64,
    jobs: std::sync::Mutex<Vec<String>>,
    approvals: std::sync::Mutex<Vec<(String, String)>>,
}

impl Traffic {
    fn fail(&self, what: String) {
        self.failed.lock().unwrap().push(what);
    }
}

/// Sends one request through the balancer, again on a connection error (the request is
/// idempotent, or carries an Idempotency-Key): status and body.
async fn send_retrying(
    t: &Traffic,
    req: impl Fn() -> reqwest::RequestBuilder,
    what: &str,
) -> Option<(u16, Value)> {
    for attempt in 0..5 {
        match req().send().await {
            Ok(resp) => {
                let s = resp.status().as_u16();
                let v = resp.json().await.unwrap_or(Value::Null);
                return Some((s, v));
            }
            Err(e) => {
                t.retried.fetch_add(1, Ordering::Relaxed);
                if attempt == 4 {
                    t.fail(format!("{what}: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    None
}

/// Replicas are stopped with SIGTERM one at a time and started again while clients keep
/// invoking, queueing jobs, proposing and approving: no request fails, every job runs to
/// its end, every approval executes once, the audit chain verifies.
async fn rolling_restart(n: usize) {
    let mut c = Cluster::start(n, &[]).await;
    let base = c.lb.base.clone();
    let (invoke, approver, viewer) = (c.key("invoke"), c.key("approver"), c.key("viewer"));
    let traffic = Arc::new(Traffic::default());
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut clients = Vec::new();
    // Invokes with an Idempotency-Key each.
    for w in 0..3 {
        let (t, stop, http, base, key) = (
            traffic.clone(),
            stop.clone(),
            http.clone(),
            base.clone(),
            invoke.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let ikey = format!("roll-invoke-{w}-{i}");
                let r = send_retrying(
                    &t,
                    || {
                        http.post(format!("{base}/v1/invoke"))
                            .bearer_auth(&key)
                            .header("Idempotency-Key", &ikey)
                            .json(&json!({"workflow": "faq", "input": {"text": "refund policy"}}))
                    },
                    &ikey,
                )
                .await;
                match r {
                    Some((200, _)) => {
                        t.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Some((s, v)) => t.fail(format!("{ikey}: {s} {v}")),
                    None => {}
                }
                i += 1;
            }
        }));
    }
    // Jobs, with an Idempotency-Key each.
    {
        let (t, stop, http, base, key) = (
            traffic.clone(),
            stop.clone(),
            http.clone(),
            base.clone(),
            invoke.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let ikey = format!("roll-job-{i}");
                let r = send_retrying(
                    &t,
                    || {
                        http.post(format!("{base}/v1/jobs"))
                            .bearer_auth(&key)
                            .header("Idempotency-Key", &ikey)
                            .json(&json!({"workflow": "support_ticket_summary",
                                      "input": {"text": "Summarize ticket T-1002"}}))
                    },
                    &ikey,
                )
                .await;
                match r {
                    Some((202, v)) => {
                        t.ok.fetch_add(1, Ordering::Relaxed);
                        t.jobs
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string());
                    }
                    Some((s, v)) => t.fail(format!("{ikey}: {s} {v}")),
                    None => {}
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    // Proposals, each approved.
    {
        let (t, stop, http, base) = (traffic.clone(), stop.clone(), http.clone(), base.clone());
        let (invoke, approver) = (invoke.clone(), approver.clone());
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let marker = format!("[roll-{i:03}]");
                let ikey = format!("roll-propose-{i}");
                let ticket = format!("T-{}", 1001 + i % 12);
                let r = send_retrying(&t, || {
                    http.post(format!("{base}/v1/invoke"))
                        .bearer_auth(&invoke)
                        .header("Idempotency-Key", &ikey)
                        .json(&json!({"workflow": "ticket_update",
                                      "input": {"text": format!("add a note to {ticket} comment: {marker}")}}))
                }, &ikey)
                .await;
                let id = match r {
                    Some((200, v)) if v["status"] == "approval_required" => {
                        t.ok.fetch_add(1, Ordering::Relaxed);
                        v["approval_request_id"].as_str().unwrap().to_string()
                    }
                    Some((s, v)) => {
                        t.fail(format!("{ikey}: {s} {v}"));
                        i += 1;
                        continue;
                    }
                    None => {
                        i += 1;
                        continue;
                    }
                };
                let akey = format!("roll-approve-{i}");
                let r = send_retrying(&t, || {
                    http.post(format!("{base}/v1/approvals/{id}/approve"))
                        .bearer_auth(&approver)
                        .header("Idempotency-Key", &akey)
                        .json(&json!({"reason": "rolling"}))
                }, &akey)
                .await;
                match r {
                    Some((200, _)) => {
                        t.ok.fetch_add(1, Ordering::Relaxed);
                        t.approvals.lock().unwrap().push((id, marker));
                    }
                    Some((s, v)) => t.fail(format!("{akey}: {s} {v}")),
                    None => {}
                }
                i += 1;
            }
        }));
    }
    // Reads.
    {
        let (t, stop, http, base) = (traffic.clone(), stop.clone(), http.clone(), base.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = send_retrying(
                    &t,
                    || {
                        http.get(format!("{base}/v1/approvals?limit=5"))
                            .bearer_auth(&viewer)
                    },
                    "list approvals",
                )
                .await;
                match r {
                    Some((200, _)) => {
                        t.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Some((s, v)) => t.fail(format!("list approvals: {s} {v}")),
                    None => {}
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..n {
        let before = traffic.ok.load(Ordering::Relaxed);
        c.rolling_restart_one(i).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            traffic.ok.load(Ordering::Relaxed) > before,
            "traffic kept flowing while replica {i} restarted"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let failed = traffic.failed.lock().unwrap().clone();
    let balancer_retries = c.lb.retried();
    eprintln!(
        "rolling restart of {n} replicas: {} requests answered, {} failed, {} client retries \
         after connection errors, {} requests the balancer sent again",
        traffic.ok.load(Ordering::Relaxed),
        failed.len(),
        traffic.retried.load(Ordering::Relaxed),
        balancer_retries.len()
    );
    assert!(failed.is_empty(), "failed requests: {failed:#?}");

    // Nothing lost: every job finished once, every approval executed once.
    let jobs = traffic.jobs.lock().unwrap().clone();
    let done = wait_jobs(&c, &jobs, Duration::from_secs(90)).await;
    for (id, job) in &done {
        assert_eq!(job["status"], "succeeded", "{id}: {job}");
    }
    let db = c.pool().await;
    let approvals = traffic.approvals.lock().unwrap().clone();
    assert!(!approvals.is_empty());
    let deadline = Instant::now() + Duration::from_secs(60);
    let ids: HashSet<&String> = approvals.iter().map(|(id, _)| id).collect();
    loop {
        let rows = sqlx::query("SELECT id, status, attempts FROM approvals")
            .fetch_all(&db)
            .await
            .unwrap();
        let executed: Vec<(String, i64)> = rows
            .iter()
            .filter(|r| ids.contains(&r.get::<String, _>("id")))
            .filter(|r| r.get::<String, _>("status") == "executed")
            .map(|r| (r.get("id"), r.get("attempts")))
            .collect();
        if executed.len() == ids.len() {
            assert!(executed.iter().all(|(_, a)| *a == 1), "{executed:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} approvals executed",
            executed.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bodies: Vec<String> = sqlx::query("SELECT body FROM tickets WHERE tenant = 'demo'")
        .fetch_all(&db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("body"))
        .collect();
    for (_, marker) in &approvals {
        let n: usize = bodies
            .iter()
            .map(|b| b.matches(marker.as_str()).count())
            .sum();
        assert_eq!(n, 1, "{marker} applied {n} times");
    }
    let (s, v) = c
        .get(&c.lb.base, &c.key("viewer"), "/v1/audit/verify")
        .await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
}

mod rolling_restart {
    pub mod three {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres() {
            super::super::rolling_restart(3).await
        }
    }
}
