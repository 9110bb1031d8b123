//! A typed async client for one agent-service endpoint and API key: health, info, metrics,
//! registries, invoke, approvals (with the live SSE event stream, resumed by
//! `Last-Event-ID` and reconnected with backoff), audit, the write freeze, traces, evals.
//!
//! Every failure is an [`Error`] with a closed [`crate::ErrorCode`], built from the service's
//! `{error:{code,message,request_id}}` envelope when there is one; odd bodies become
//! `protocol` errors, never panics.

pub mod sse;
pub mod wire;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::{BaseUrl, Secret};
use crate::error::{ApiError, Error, Result, code_for};
use crate::prom::{self, PromScrape};

pub use wire::*;

/// Timeouts for one request; the event stream has none (see [`StreamConfig`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared HTTP client: rustls, a connect timeout, no overall timeout (each request
/// sets its own so that streams can stay open).
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("flightdeck/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Process(format!("the HTTP client could not be built: {e}")))
}

/// A decision's reason: required by the service, 1–2000 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Self> {
        let n = raw.chars().count();
        if raw.trim().is_empty() {
            return Err(Error::invalid(
                "a reason is required: say why, it is kept in the audit log",
            ));
        }
        if n > 2000 {
            return Err(Error::invalid(format!(
                "the reason is {n} characters long; the limit is 2000"
            )));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An id that goes into a URL path (approval, trace, eval run ids).
fn segment(kind: &str, id: &str) -> Result<String> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(id.to_string())
    } else {
        Err(Error::invalid(format!(
            "{kind} id {id:?} is not valid: use letters, digits, '_', '-' and '.'"
        )))
    }
}

/// One agent-service endpoint with one API key.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    base: BaseUrl,
    key: Option<Secret>,
    timeout: Duration,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("base", &self.base)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A request's shape before it is sent.
struct Call<'a> {
    method: Method,
    path: &'a str,
    accept: &'static str,
    query: Option<String>,
    body: Option<Value>,
    idempotency_key: Option<String>,
}

impl<'a> Call<'a> {
    fn get(path: &'a str) -> Self {
        Self {
            method: Method::GET,
            path,
            accept: "application/json",
            query: None,
            body: None,
            idempotency_key: None,
        }
    }

    fn post(path: &'a str, body: Value) -> Self {
        Self {
            method: Method::POST,
            body: Some(body),
            idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
            ..Self::get(path)
        }
    }

    fn delete(path: &'a str) -> Self {
        Self {
            method: Method::DELETE,
            ..Self::get(path)
        }
    }

    fn query(mut self, q: String) -> Self {
        self.query = (!q.is_empty()).then_some(q);
        self
    }
}

impl AgentClient {
    pub fn new(http: reqwest::Client, base: BaseUrl, key: Option<Secret>) -> Self {
        Self {
            http,
            base,
            key,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    fn url(&self, path: &str, query: Option<&str>) -> String {
        match query {
            Some(q) => format!("{}?{q}", self.base.join(path)),
            None => self.base.join(path),
        }
    }

    async fn send(&self, call: Call<'_>) -> Result<reqwest::Response> {
        let endpoint = self.base.join(call.path);
        let mut req = self
            .http
            .request(call.method, self.url(call.path, call.query.as_deref()))
            .timeout(self.timeout)
            .header(ACCEPT, call.accept);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key.expose());
        }
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        if let Some(k) = &call.idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::from_reqwest(&endpoint, e, self.timeout))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(error_from_response(&endpoint, resp, self.timeout).await)
        }
    }

    async fn json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T> {
        let endpoint = self.base.join(call.path);
        let resp = self.send(call).await?;
        decode(&endpoint, resp, self.timeout).await
    }

    /// `GET /healthz`.
    pub async fn healthz(&self) -> Result<Health> {
        self.json(Call::get("/healthz")).await
    }

    /// `GET /readyz`; `unavailable` (503) is an answer, not an error.
    pub async fn readyz(&self) -> Result<Readiness> {
        let endpoint = self.base.join("/readyz");
        let resp = self
            .http
            .get(&endpoint)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| Error::from_reqwest(&endpoint, e, self.timeout))?;
        if resp.status().is_success() || resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| Error::from_reqwest(&endpoint, e, self.timeout))?;
            match serde_json::from_slice::<Readiness>(&bytes) {
                Ok(r) => Ok(r),
                Err(_) if !status.is_success() => {
                    Err(error_from_parts(&endpoint, status, &headers, &bytes))
                }
                Err(e) => Err(Error::protocol(
                    &endpoint,
                    format!("the readiness body is not the expected JSON: {e}"),
                )),
            }
        } else {
            Err(error_from_response(&endpoint, resp, self.timeout).await)
        }
    }

    /// `GET /metrics` as text.
    pub async fn metrics_text(&self) -> Result<String> {
        let endpoint = self.base.join("/metrics");
        let call = Call {
            accept: "application/openmetrics-text;version=1.0.0, text/plain;version=0.0.4;q=0.5",
            ..Call::get("/metrics")
        };
        let resp = self.send(call).await?;
        resp.text()
            .await
            .map_err(|e| Error::from_reqwest(&endpoint, e, self.timeout))
    }

    /// `GET /metrics`, parsed.
    pub async fn metrics(&self) -> Result<PromScrape> {
        prom::parse(&self.metrics_text().await?)
    }

    /// `GET /v1/admin/receivers`: the notification receivers of the key's tenant (admin or
    /// operator).
    pub async fn receivers(&self) -> Result<Vec<wire::Receiver>> {
        let page: Page<wire::Receiver> = self
            .json(Call::get("/v1/admin/receivers").query("limit=100".into()))
            .await?;
        Ok(page.items)
    }

    /// `POST /v1/admin/receivers` (admin). The URL and secret go to the service sealed
    /// there; what comes back never carries them.
    pub async fn create_receiver(&self, req: &wire::NewReceiver) -> Result<wire::Receiver> {
        self.json(Call::post("/v1/admin/receivers", to_value(req)?))
            .await
    }

    /// `DELETE /v1/admin/receivers/{id}` (admin).
    pub async fn delete_receiver(&self, id: &str) -> Result<()> {
        let path = format!("/v1/admin/receivers/{}", segment("receiver", id)?);
        self.send(Call::delete(&path)).await.map(|_| ())
    }

    /// `POST /v1/admin/receivers/{id}/test` (admin): a test event to this receiver only.
    pub async fn test_receiver(&self, id: &str) -> Result<wire::ReceiverTest> {
        let path = format!("/v1/admin/receivers/{}/test", segment("receiver", id)?);
        self.json(Call::post(&path, serde_json::json!({}))).await
    }

    /// `GET /v1/info`.
    pub async fn info(&self) -> Result<Info> {
        self.json(Call::get("/v1/info")).await
    }

    pub async fn workflows(&self) -> Result<Vec<Workflow>> {
        let page: Page<Workflow> = self.json(Call::get("/v1/workflows")).await?;
        Ok(page.items)
    }

    pub async fn tools(&self) -> Result<Vec<Tool>> {
        let page: Page<Tool> = self.json(Call::get("/v1/tools")).await?;
        Ok(page.items)
    }

    /// `GET /v1/whoami`: who the key is (tenant, roles); any valid key may ask.
    pub async fn whoami(&self) -> Result<Whoami> {
        self.json(Call::get("/v1/whoami")).await
    }

    /// `POST /v1/invoke` (no idempotency key: every call is a new run).
    pub async fn invoke(&self, req: &InvokeRequest) -> Result<InvokeReply> {
        let mut call = Call::post("/v1/invoke", to_value(req)?);
        call.idempotency_key = None;
        self.json(call).await
    }

    /// `GET /v1/approvals?status=&cursor=&limit=`.
    pub async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Approval>> {
        // The serializer is not `Send`: finish the query before awaiting, so the future is.
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            if let Some(s) = status {
                q.append_pair("status", s.as_str());
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
            if let Some(l) = limit {
                q.append_pair("limit", &l.to_string());
            }
            q.finish()
        };
        self.json(Call::get("/v1/approvals").query(query)).await
    }

    pub async fn approval(&self, id: &str) -> Result<Approval> {
        let path = format!("/v1/approvals/{}", segment("approval", id)?);
        self.json(Call::get(&path)).await
    }

    /// Approves; `idempotency_key` makes a retried click safe (one is generated if `None`).
    pub async fn approve(
        &self,
        id: &str,
        reason: &Reason,
        idempotency_key: Option<&str>,
    ) -> Result<Approval> {
        self.decide(id, "approve", reason, idempotency_key).await
    }

    pub async fn reject(
        &self,
        id: &str,
        reason: &Reason,
        idempotency_key: Option<&str>,
    ) -> Result<Approval> {
        self.decide(id, "reject", reason, idempotency_key).await
    }

    async fn decide(
        &self,
        id: &str,
        verb: &str,
        reason: &Reason,
        key: Option<&str>,
    ) -> Result<Approval> {
        let path = format!("/v1/approvals/{}/{verb}", segment("approval", id)?);
        let mut call = Call::post(&path, serde_json::json!({ "reason": reason.as_str() }));
        if let Some(k) = key {
            call.idempotency_key = Some(k.to_string());
        }
        self.json(call).await
    }

    /// Cancels pending requests proposed by a release (`track` and/or `version`).
    pub async fn cancel_approvals(
        &self,
        track: Option<&str>,
        version: Option<&str>,
        reason: &Reason,
    ) -> Result<CancelResult> {
        if track.is_none() && version.is_none() {
            return Err(Error::invalid(
                "give a track or a version: a cancel must not empty the whole queue",
            ));
        }
        let mut body = serde_json::json!({ "reason": reason.as_str() });
        if let Some(t) = track {
            body["track"] = t.into();
        }
        if let Some(v) = version {
            body["version"] = v.into();
        }
        self.json(Call::post("/v1/approvals/cancel", body)).await
    }

    /// The live approval events; see [`ApprovalEvents`].
    pub fn approval_events(
        &self,
        last_event_id: Option<u64>,
        config: StreamConfig,
    ) -> ApprovalEvents {
        ApprovalEvents::start(self.clone(), last_event_id, config)
    }

    /// `GET /v1/audit/verify`: the hash chain of the caller's tenant.
    pub async fn audit_verify(&self) -> Result<AuditVerify> {
        self.json(Call::get("/v1/audit/verify")).await
    }

    pub async fn freeze_state(&self) -> Result<FreezeState> {
        self.json(Call::get("/v1/admin/freeze")).await
    }

    /// The incident kill switch: new writes are refused, pending ones cannot be approved.
    pub async fn freeze(&self, reason: &Reason) -> Result<FreezeState> {
        self.json(Call::post(
            "/v1/admin/freeze",
            serde_json::json!({ "reason": reason.as_str() }),
        ))
        .await
    }

    pub async fn unfreeze(&self, reason: &Reason) -> Result<FreezeState> {
        self.json(Call::post(
            "/v1/admin/unfreeze",
            serde_json::json!({ "reason": reason.as_str() }),
        ))
        .await
    }

    pub async fn traces(&self, q: &TraceQuery) -> Result<Page<TraceSummary>> {
        let pairs: [(&str, Option<String>); 9] = [
            ("status", q.status.clone()),
            ("workflow", q.workflow.clone()),
            ("min_latency_ms", q.min_latency_ms.map(|v| v.to_string())),
            ("since", q.since.clone()),
            ("request_id", q.request_id.clone()),
            ("errors_only", q.errors_only.then(|| "true".to_string())),
            ("flagged", q.flagged.map(|v| v.to_string())),
            ("cursor", q.cursor.clone()),
            ("limit", q.limit.map(|v| v.to_string())),
        ];
        let query = {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                if let Some(v) = v {
                    s.append_pair(k, &v);
                }
            }
            s.finish()
        };
        self.json(Call::get("/v1/traces").query(query)).await
    }

    pub async fn trace(&self, id: &str) -> Result<Trace> {
        let path = format!("/v1/traces/{}", segment("trace", id)?);
        self.json(Call::get(&path)).await
    }

    pub async fn eval_suites(&self) -> Result<Vec<EvalSuite>> {
        let page: Page<EvalSuite> = self.json(Call::get("/v1/evals/suites")).await?;
        Ok(page.items)
    }

    pub async fn eval_runs(
        &self,
        suite: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<EvalRunSummary>> {
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            if let Some(s) = suite {
                q.append_pair("suite", s);
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
            q.finish()
        };
        self.json(Call::get("/v1/evals/runs").query(query)).await
    }

    pub async fn eval_run(&self, id: &str) -> Result<EvalRun> {
        let path = format!("/v1/evals/runs/{}", segment("eval run", id)?);
        self.json(Call::get(&path)).await
    }

    /// Queues a run (the service answers 202 at once); poll [`AgentClient::eval_run`].
    pub async fn start_eval(&self, req: &StartEval) -> Result<EvalRun> {
        self.json(Call::post("/v1/evals/runs", to_value(req)?))
            .await
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v)
        .map_err(|e| Error::invalid(format!("the request could not be encoded: {e}")))
}

async fn decode<T: DeserializeOwned>(
    endpoint: &str,
    resp: reqwest::Response,
    timeout: Duration,
) -> Result<T> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Error::from_reqwest(endpoint, e, timeout))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::protocol(
            endpoint,
            format!(
                "the body is not the expected JSON ({e}): {}",
                excerpt(&bytes)
            ),
        )
    })
}

/// The first 200 characters of a body, for error messages.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

async fn error_from_response(endpoint: &str, resp: reqwest::Response, timeout: Duration) -> Error {
    let status = resp.status();
    let headers = resp.headers().clone();
    match resp.bytes().await {
        Ok(bytes) => error_from_parts(endpoint, status, &headers, &bytes),
        Err(e) => Error::from_reqwest(endpoint, e, timeout),
    }
}

/// An error status and body → the error, reading the envelope when there is one.
pub(crate) fn error_from_parts(
    endpoint: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let header_request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let envelope = serde_json::from_slice::<Value>(body).ok();
    let field = |name: &str| {
        envelope
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let server_code = field("code").unwrap_or_else(|| format!("http_{}", status.as_u16()));
    let message = field("message")
        // Ollama's shape: {"error": "…"}.
        .or_else(|| {
            envelope
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            let body = excerpt(body);
            if body.trim().is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no reason given")
                    .to_string()
            } else {
                body
            }
        });
    Error::Api(Box::new(ApiError {
        code: code_for(status.as_u16(), &server_code, retry_after),
        status: status.as_u16(),
        server_code,
        message,
        request_id: field("request_id")
            .filter(|r| !r.is_empty())
            .or(header_request_id),
        endpoint: endpoint.to_string(),
    }))
}

/// What an approval event says happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalEventKind {
    Created,
    Approved,
    Rejected,
    Executing,
    Executed,
    Failed,
    Expired,
    Cancelled,
    Other(String),
}

impl ApprovalEventKind {
    fn parse(raw: &str) -> Self {
        match raw {
            "created" => Self::Created,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "executing" => Self::Executing,
            "executed" => Self::Executed,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_string()),
        }
    }
}

/// One event of `GET /v1/approvals/events`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApprovalEvent {
    /// The audit sequence number; also the SSE id to resume after.
    pub seq: u64,
    pub kind: ApprovalEventKind,
    pub approval_id: String,
    pub status: Option<String>,
    pub at: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub details: Value,
}

#[derive(serde::Deserialize)]
struct EventData {
    seq: u64,
    event: String,
    approval_id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    at: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    details: Value,
}

fn approval_event(ev: &sse::SseEvent) -> std::result::Result<ApprovalEvent, String> {
    let d: EventData =
        serde_json::from_str(&ev.data).map_err(|e| format!("event {:?}: {e}", ev.event))?;
    Ok(ApprovalEvent {
        seq: d.seq,
        kind: ApprovalEventKind::parse(&d.event),
        approval_id: d.approval_id,
        status: d.status,
        at: d.at,
        actor: d.actor,
        request_id: d.request_id,
        details: d.details,
    })
}

/// Reconnection and liveness settings of the event stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No byte (not even the server's keep-alive comment, every 15 s) for this long means
    /// the connection is dead.
    pub idle_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(45),
        }
    }
}

/// What the event stream reports.
#[derive(Debug)]
pub enum StreamItem {
    /// Connected (again); events after `resumed_after` follow without gaps.
    Connected {
        resumed_after: Option<u64>,
    },
    Event(ApprovalEvent),
    /// An event whose data could not be read; the stream goes on.
    Malformed {
        id: Option<String>,
        error: Error,
    },
    /// The connection failed or ended; the next attempt comes after `retry_in`.
    Reconnecting {
        error: Error,
        retry_in: Duration,
    },
}

/// The live approval event stream. It reconnects by itself with exponential backoff
/// (honouring `Retry-After`) and resumes with `Last-Event-ID`; it ends with an `Err` only
/// when retrying cannot help (unauthorized, forbidden, invalid, not found). Dropping it
/// closes the connection.
pub struct ApprovalEvents {
    rx: mpsc::Receiver<Result<StreamItem>>,
    task: JoinHandle<()>,
}

impl ApprovalEvents {
    fn start(client: AgentClient, last_event_id: Option<u64>, config: StreamConfig) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(run_stream(client, last_event_id, config, tx));
        Self { rx, task }
    }

    /// The next item; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Result<StreamItem>> {
        self.rx.recv().await
    }
}

impl Drop for ApprovalEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl futures::Stream for ApprovalEvents {
    type Item = Result<StreamItem>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Exponential backoff with jitter in [½, 1] of the step.
fn backoff_delay(config: &StreamConfig, attempt: u32, hint: Option<Duration>) -> Duration {
    let step = config
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(config.max_backoff);
    let jitter = rand::random_range(0.5..=1.0);
    let d = step.mul_f64(jitter);
    match hint {
        Some(h) => d.max(h.min(config.max_backoff)),
        None => d,
    }
}

async fn run_stream(
    client: AgentClient,
    mut last_seq: Option<u64>,
    config: StreamConfig,
    tx: mpsc::Sender<Result<StreamItem>>,
) {
    let endpoint = client.base.join("/v1/approvals/events");
    let mut attempt: u32 = 0;
    let mut server_retry: Option<Duration> = None;
    loop {
        let outcome = stream_once(
            &client,
            &endpoint,
            &mut last_seq,
            &config,
            &tx,
            &mut server_retry,
        )
        .await;
        let error = match outcome {
            Ok(Connection::ReceiverGone) => return,
            Ok(Connection::Ended { received }) => {
                if received {
                    attempt = 0;
                }
                Error::protocol(&endpoint, "the event stream ended")
            }
            Err((e, received)) => {
                if received {
                    attempt = 0;
                }
                let code = e.code();
                if !code.is_transient() && !matches!(code, crate::ErrorCode::Protocol) {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                e
            }
        };
        let hint = error.code().retry_after().or(server_retry);
        let retry_in = backoff_delay(&config, attempt, hint);
        attempt = attempt.saturating_add(1);
        if tx
            .send(Ok(StreamItem::Reconnecting { error, retry_in }))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(retry_in).await;
    }
}

enum Connection {
    Ended { received: bool },
    ReceiverGone,
}

async fn stream_once(
    client: &AgentClient,
    endpoint: &str,
    last_seq: &mut Option<u64>,
    config: &StreamConfig,
    tx: &mpsc::Sender<Result<StreamItem>>,
    server_retry: &mut Option<Duration>,
) -> std::result::Result<Connection, (Error, bool)> {
    let mut req = client
        .http
        .get(endpoint)
        .header(ACCEPT, "text/event-stream")
        .timeout(Duration::from_secs(24 * 3600));
    if let Some(key) = &client.key {
        req = req.bearer_auth(key.expose());
    }
    if let Some(seq) = last_seq {
        req = req.header("Last-Event-ID", seq.to_string());
    }
    let connect = tokio::time::timeout(client.timeout, req.send()).await;
    let mut resp = match connect {
        Err(_) => {
            return Err((
                Error::Timeout {
                    endpoint: endpoint.to_string(),
                    after: client.timeout,
                },
                false,
            ));
        }
        Ok(Err(e)) => return Err((Error::from_reqwest(endpoint, e, client.timeout), false)),
        Ok(Ok(r)) => r,
    };
    if !resp.status().is_success() {
        return Err((
            error_from_response(endpoint, resp, client.timeout).await,
            false,
        ));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type.starts_with("text/event-stream") {
        return Err((
            Error::protocol(
                endpoint,
                format!("expected an event stream, got {content_type:?}"),
            ),
            false,
        ));
    }
    if tx
        .send(Ok(StreamItem::Connected {
            resumed_after: *last_seq,
        }))
        .await
        .is_err()
    {
        return Ok(Connection::ReceiverGone);
    }
    let mut decoder = sse::SseDecoder::with_last_id(last_seq.map(|s| s.to_string()));
    let mut received = false;
    loop {
        let chunk = match tokio::time::timeout(config.idle_timeout, resp.chunk()).await {
            Err(_) => {
                return Err((
                    Error::Timeout {
                        endpoint: endpoint.to_string(),
                        after: config.idle_timeout,
                    },
                    received,
                ));
            }
            Ok(Err(e)) => {
                return Err((
                    Error::from_reqwest(endpoint, e, config.idle_timeout),
                    received,
                ));
            }
            Ok(Ok(None)) => return Ok(Connection::Ended { received }),
            Ok(Ok(Some(c))) => c,
        };
        for ev in decoder.push(&chunk) {
            if let Some(ms) = ev.retry_ms {
                *server_retry = Some(Duration::from_millis(ms));
            }
            let item = match approval_event(&ev) {
                Ok(e) => {
                    received = true;
                    *last_seq = Some(e.seq);
                    StreamItem::Event(e)
                }
                Err(message) => {
                    // Skip past it on a resume too: its id is still the stream position.
                    if let Some(seq) = ev.id.as_deref().and_then(|i| i.parse().ok()) {
                        *last_seq = Some(seq);
                    }
                    StreamItem::Malformed {
                        id: ev.id.clone(),
                        error: Error::protocol(endpoint, message),
                    }
                }
            };
            if tx.send(Ok(item)).await.is_err() {
                return Ok(Connection::ReceiverGone);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn err(status: u16, headers: &[(&str, &str)], body: &str) -> Error {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        error_from_parts(
            "http://x/v1/y",
            StatusCode::from_u16(status).unwrap(),
            &h,
            body.as_bytes(),
        )
    }

    /// (status, headers, body) → (code, server code, message, request id).
    #[test]
    fn error_bodies_become_typed_errors() {
        type Case<'a> = (
            u16,
            &'a [(&'a str, &'a str)],
            &'a str,
            ErrorCode,
            &'a str,
            &'a str,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (
                401,
                &[],
                r#"{"error":{"code":"unauthorized","message":"missing key","request_id":"r1"}}"#,
                ErrorCode::Unauthorized,
                "unauthorized",
                "missing key",
                Some("r1"),
            ),
            (
                429,
                &[("retry-after", "7")],
                r#"{"error":{"code":"rate_limited","message":"slow down","request_id":"r2"}}"#,
                ErrorCode::RateLimited {
                    retry_after_secs: Some(7),
                },
                "rate_limited",
                "slow down",
                Some("r2"),
            ),
            (
                503,
                &[("retry-after", "1"), ("x-request-id", "h3")],
                r#"{"error":{"code":"overloaded","message":"busy","request_id":""}}"#,
                ErrorCode::Unavailable {
                    retry_after_secs: Some(1),
                },
                "overloaded",
                "busy",
                Some("h3"),
            ),
            (
                409,
                &[],
                r#"{"error":{"code":"writes_frozen","message":"frozen"}}"#,
                ErrorCode::Conflict,
                "writes_frozen",
                "frozen",
                None,
            ),
            (
                502,
                &[],
                "<html>bad gateway</html>",
                ErrorCode::Unavailable {
                    retry_after_secs: None,
                },
                "http_502",
                "<html>bad gateway</html>",
                None,
            ),
            (
                404,
                &[],
                r#"{"error":"model 'x' not found"}"#,
                ErrorCode::NotFound,
                "http_404",
                "model 'x' not found",
                None,
            ),
            (
                400,
                &[],
                "",
                ErrorCode::Invalid,
                "http_400",
                "Bad Request",
                None,
            ),
            (
                500,
                &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
                "[1,2",
                ErrorCode::Unavailable {
                    retry_after_secs: None,
                },
                "http_500",
                "[1,2",
                None,
            ),
            (
                418,
                &[],
                r#"{"error":{"code":42}}"#,
                ErrorCode::Invalid,
                "http_418",
                r#"{"error":{"code":42}}"#,
                None,
            ),
        ];
        for (status, headers, body, code, server, message, rid) in cases {
            match err(*status, headers, body).api() {
                Some(a) => {
                    assert_eq!(
                        (
                            a.code,
                            a.server_code.as_str(),
                            a.message.as_str(),
                            a.request_id.as_deref(),
                            a.status
                        ),
                        (*code, *server, *message, *rid, *status),
                        "{body}"
                    );
                }
                None => panic!("not an API error"),
            }
        }
    }

    #[test]
    fn reasons_and_ids_are_checked_before_sending() {
        assert!(Reason::parse("looks right").is_ok());
        assert_eq!(Reason::parse("  ").unwrap_err().code(), ErrorCode::Invalid);
        assert!(Reason::parse(&"é".repeat(2001)).is_err());
        assert!(segment("approval", "apr_01a2").is_ok());
        for bad in ["", "../admin", "a/b", "a?b", "a b"] {
            assert_eq!(
                segment("approval", bad).unwrap_err().code(),
                ErrorCode::Invalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn backoff_grows_caps_and_honours_hints() {
        let c = StreamConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(1),
        };
        for (attempt, lo, hi) in [
            (0, 50, 100),
            (1, 100, 200),
            (3, 400, 800),
            (10, 1000, 2000),
            (40, 1000, 2000),
        ] {
            let d = backoff_delay(&c, attempt, None).as_millis();
            assert!((lo..=hi).contains(&d), "attempt {attempt}: {d} ms");
        }
        assert!(backoff_delay(&c, 0, Some(Duration::from_secs(1))) >= Duration::from_secs(1));
        assert!(backoff_delay(&c, 0, Some(Duration::from_secs(60))) <= Duration::from_secs(2));
    }

    #[test]
    fn event_data_is_typed() {
        let ev = sse::SseEvent {
            event: "created".into(),
            data: r#"{"seq":12,"event":"created","approval_id":"apr_1","status":"pending","at":"t","actor":"key_1","request_id":"r","details":{"x":1}}"#.into(),
            id: Some("12".into()),
            retry_ms: None,
        };
        let e = approval_event(&ev).unwrap();
        assert_eq!(
            (
                e.seq,
                e.kind.clone(),
                e.approval_id.as_str(),
                e.status.as_deref()
            ),
            (12, ApprovalEventKind::Created, "apr_1", Some("pending"))
        );
        let odd = sse::SseEvent {
            data: "{\"seq\":\"x\"}".into(),
            ..ev.clone()
        };
        assert!(approval_event(&odd).is_err());
        let other = sse::SseEvent {
            data: ev
                .data
                .replace("\"event\":\"created\"", "\"event\":\"archived\""),
            ..ev
        };
        assert_eq!(
            approval_event(&other).unwrap().kind,
            ApprovalEventKind::Other("archived".into())
        );
    }

    #[test]
    fn clients_never_print_their_key() {
        let c = AgentClient::new(
            http_client().unwrap(),
            BaseUrl::parse("http://127.0.0.1:1").unwrap(),
            Some(Secret::parse("fdk_supersecret").unwrap()),
        );
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("<redacted>") && !dbg.contains("supersecret"),
            "{dbg}"
        );
    }
}
