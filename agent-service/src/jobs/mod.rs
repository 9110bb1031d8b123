//! The job queue's moving parts: in-process workers that claim jobs under a
//! lease and run them through the engine, heartbeats, retries with backoff and dead
//! letters, cancellation, graceful release at shutdown, the expired-lease reaper that
//! keeps `agent_queue_depth` right, and signed callback delivery through the SSRF guard.
//!
//! The queue itself is the `jobs` table ([`crate::db::jobs`]); nothing here holds a job
//! only in memory, so any process on the same database can take over a dead one's work.
//! [`view`] is the job as clients see it (the API's body and the callbacks').

pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::JobConfig;
use crate::db::Db;
use crate::db::jobs::{self as store, CallbackOutcome, Job, JobError, Outcome};
use crate::domain::Principal;
use crate::domain::{JobId, Roles, TenantId, TraceId};
use crate::engine::{Engine, RunRequest};
use crate::error::{Error, ErrorCode};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::tools::egress::{Egress, SendError};
use crate::workflows::Workflow;

/// How often an idle worker looks for due jobs when nobody woke it.
const POLL: Duration = Duration::from_millis(500);
/// How often the keeper reaps expired leases.
const REAP_EVERY: Duration = Duration::from_secs(1);
/// The keeper recounts the queue from the database every this many reaps.
const RECOUNT_EVERY_REAPS: u32 = 5;
/// The longest wait before a failed attempt is retried.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// Delivery attempts per callback.
pub const CALLBACK_MAX_ATTEMPTS: i64 = 5;
/// A claimed callback is held this long; a sender that dies leaves it to another after.
const CALLBACK_HOLD: Duration = Duration::from_secs(60);
/// The signature header of callbacks.
pub const SIGNATURE_HEADER: &str = "X-Flightdeck-Signature";

/// What the HTTP layer and the workers share about the queue. Built once per process.
pub struct JobQueue {
    /// Wakes an idle worker: a job was enqueued or put back.
    wake: Notify,
    /// Wakes the callback sender: a job with a callback finished.
    callbacks: Notify,
    /// Cancel signals of the jobs this process runs, by job id.
    cancels: Mutex<HashMap<JobId, Arc<Notify>>>,
    egress: Egress,
    /// Names this process in lease owners.
    instance: String,
}

impl JobQueue {
    /// The queue state of this process; callbacks go through a guard over
    /// `EGRESS_ALLOWLIST`.
    pub fn new(egress_allowlist: &[String]) -> Result<Self, String> {
        Ok(Self {
            wake: Notify::new(),
            callbacks: Notify::new(),
            cancels: Mutex::new(HashMap::new()),
            egress: Egress::new(egress_allowlist)?,
            instance: format!(
                "pid{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
        })
    }

    /// The SSRF guard callback URLs are checked with.
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// Wakes one idle worker.
    pub fn wake_worker(&self) {
        self.wake.notify_one();
    }

    /// Wakes the callback sender: a job with a callback finished.
    pub fn wake_callbacks(&self) {
        self.callbacks.notify_one();
    }

    /// Tells this process's worker of job `id`, if it runs it, to stop now. (A worker in
    /// another process sees the request at its next heartbeat.)
    pub fn signal_cancel(&self, id: &JobId) {
        if let Some(signal) = self.cancels_map().get(id) {
            signal.notify_one();
        }
    }

    fn cancels_map(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Arc<Notify>>> {
        // The map holds no invariant a panicking holder could break.
        self.cancels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the queue's tasks work with; built once by the serving process.
pub struct Context {
    pub db: Db,
    /// Runs the jobs' workflows and shapes their results.
    pub engine: Arc<Engine>,
    pub queue: Arc<JobQueue>,
    pub metrics: Arc<Metrics>,
    /// The workflows a job may name, by name.
    pub workflows: Arc<BTreeMap<String, Arc<Workflow>>>,
    /// Workers, lease, attempts and the callback signing key (without it callbacks fail
    /// for good).
    pub config: JobConfig,
    /// The shutdown grace period; a running job gets most of it to finish.
    pub grace: Duration,
    pub stop: Shutdown,
}

/// Starts the queue's tasks: the workers, the keeper and the callback sender.
pub fn spawn_tasks(ctx: Arc<Context>) -> Vec<JoinHandle<()>> {
    let mut tasks: Vec<JoinHandle<()>> = (0..ctx.config.job_workers)
        .map(|i| tokio::spawn(worker(ctx.clone(), i)))
        .collect();
    tasks.push(tokio::spawn(keeper(ctx.clone())));
    tasks.push(tokio::spawn(callback_sender(ctx)));
    tasks
}

impl Context {
    /// How long a claim holds a job without a heartbeat.
    fn lease(&self) -> Duration {
        Duration::from_secs(self.config.job_lease_secs)
    }
}

fn now_ms(ctx: &Context) -> i64 {
    ctx.engine.clock.now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Heartbeats renew the lease three times per lease period.
pub fn heartbeat_every(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(100))
}

/// How long a running job may go on after shutdown starts before it is released: the
/// grace period less a second for the release itself, but at least half of it.
pub fn drain_budget(grace: Duration) -> Duration {
    grace.saturating_sub(Duration::from_secs(1)).max(grace / 2)
}

/// Wait before retrying after failed attempt `attempt` (1-based): 1 s, 2 s, 4 s, …, at
/// least what the failure asked for (`Retry-After`), at most [`MAX_RETRY_DELAY`].
pub fn retry_delay(attempt: i64, retry_after_secs: Option<u64>) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let backoff = Duration::from_secs(1u64 << exp);
    let asked = Duration::from_secs(retry_after_secs.unwrap_or(0));
    backoff.max(asked).min(MAX_RETRY_DELAY)
}

/// Failures a later attempt may not hit: the model provider, the database, load.
pub fn retryable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ProviderUnavailable
            | ErrorCode::ProviderTimeout
            | ErrorCode::ProviderError
            | ErrorCode::DependencyUnavailable
            | ErrorCode::Overloaded
            | ErrorCode::RateLimited
            | ErrorCode::ShuttingDown
    )
}

/// The `X-Flightdeck-Signature` value for `body` sent at Unix time `t`:
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &[u8], t: i64, body: &str) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|e| format!("JOB_CALLBACK_SECRET cannot key HMAC-SHA256: {e}"))?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!(
        "t={t},v1={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Takes due jobs one at a time until shutdown.
async fn worker(ctx: Arc<Context>, index: u32) {
    let owner = format!("{}/worker-{index}", ctx.queue.instance);
    let lease_ms = millis(ctx.lease());
    loop {
        if ctx.stop.is_stopping() {
            break;
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        match store::claim(&ctx.db, &owner, &token, now_ms(&ctx), lease_ms).await {
            Ok(Some(job)) => {
                ctx.metrics.queue_depth.dec();
                run_job(&ctx, job, &token).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, worker = %owner, "claiming a job failed; will retry")
            }
        }
        tokio::select! {
            _ = ctx.queue.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = ctx.stop.wait() => break,
        }
    }
    tracing::debug!(worker = %owner, "job worker stopped");
}

/// How driving a run ended.
enum Ended {
    Run(Box<Result<crate::engine::RunOutcome, Error>>),
    Cancelled,
    LeaseLost,
    /// Shutdown's drain budget ran out first.
    Released,
}

async fn run_job(ctx: &Context, job: Job, token: &str) {
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        attempt = job.attempts,
        request_id = %job.request_id,
        tenant = %job.tenant,
        workflow = tracing::field::Empty,
        policy_version = tracing::field::Empty,
    );
    let signal = Arc::new(Notify::new());
    ctx.queue
        .cancels_map()
        .insert(job.id.clone(), signal.clone());
    let request_id = job.request_id.clone();
    crate::request_id::scope(request_id, attempt(ctx, &job, token, &signal))
        .instrument(span)
        .await;
    ctx.queue.cancels_map().remove(&job.id);
}

/// The run request of a job: its workflow, its (redacted) input, and the principal that
/// created it, acting with role `invoke` only.
fn run_request(ctx: &Context, job: &Job) -> Result<RunRequest, JobError> {
    let workflow = ctx
        .workflows
        .get(&job.workflow)
        .cloned()
        .ok_or_else(|| JobError {
            code: ErrorCode::UnknownWorkflow.as_str().into(),
            message: format!(
                "workflow {:?} is no longer configured in this service",
                job.workflow
            ),
        })?;
    let internal = |message: String| JobError {
        code: ErrorCode::Internal.as_str().into(),
        message,
    };
    let principal = Principal {
        key_id: job.key_id.clone(),
        key_name: job.key_name.clone(),
        tenant: TenantId::parse(&job.tenant).map_err(internal)?,
        roles: Roles::parse("invoke").map_err(internal)?,
    };
    Ok(RunRequest {
        workflow,
        text: job.input_text.clone(),
        user_id: job.user_id.clone(),
        principal,
        request_id: job.request_id.clone(),
        trace_id: TraceId::generate(),
    })
}

async fn attempt(ctx: &Context, job: &Job, token: &str, signal: &Notify) {
    tracing::info!(
        attempts = job.attempts,
        max_attempts = job.max_attempts,
        "job started"
    );
    let req = match run_request(ctx, job) {
        Ok(r) => r,
        Err(e) => return record(ctx, job, token, Outcome::Failed(e)).await,
    };
    let ended = drive(ctx, job, token, &req, signal).await;
    let outcome = match ended {
        Ended::Run(run) => match *run {
            Ok(outcome) => {
                let body = ctx.engine.reply(&req, outcome);
                match serde_json::to_string(&body) {
                    Ok(result) => Outcome::Succeeded { result },
                    Err(e) => Outcome::Failed(JobError {
                        code: ErrorCode::Internal.as_str().into(),
                        message: format!("the run's reply could not be stored: {e}"),
                    }),
                }
            }
            Err(e) => {
                // Where the run's error becomes the job's outcome: logged once, with its causes.
                tracing::warn!(code = e.code.as_str(), error = %e.report(), "the job's run failed");
                let error = JobError {
                    code: e.code.as_str().into(),
                    message: e.message.clone(),
                };
                if !retryable(e.code) {
                    Outcome::Failed(error)
                } else if job.attempts >= job.max_attempts {
                    Outcome::Dead(error)
                } else {
                    let wait = retry_delay(job.attempts, e.retry_after_secs);
                    Outcome::Retry {
                        error,
                        run_after: now_ms(ctx) + millis(wait),
                    }
                }
            }
        },
        Ended::LeaseLost => {
            tracing::warn!(
                "the job's lease was lost (another worker took it over); dropping this attempt"
            );
            return;
        }
        Ended::Released => {
            match store::release(&ctx.db, &job.id, token, now_ms(ctx)).await {
                Ok(true) => {
                    ctx.metrics.queue_depth.inc();
                    tracing::warn!(
                        "shutdown: the job did not finish in time and was put back in the queue"
                    );
                }
                Ok(false) => tracing::warn!("shutdown: the job's lease was already lost"),
                Err(e) => {
                    tracing::warn!(error = %e, "shutdown: releasing the job failed; it is retried once its lease expires")
                }
            }
            return;
        }
        Ended::Cancelled => Outcome::Cancelled,
    };
    record(ctx, job, token, outcome).await;
}

/// Runs the job's workflow while renewing its lease, until it ends, is cancelled, loses
/// its lease, or outlives shutdown's drain budget.
async fn drive(ctx: &Context, job: &Job, token: &str, req: &RunRequest, signal: &Notify) -> Ended {
    let lease = ctx.lease();
    let run = ctx.engine.run(req, None);
    tokio::pin!(run);
    let mut beat = tokio::time::interval_at(
        Instant::now() + heartbeat_every(lease),
        heartbeat_every(lease),
    );
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            r = &mut run => return Ended::Run(Box::new(r)),
            _ = signal.notified() => {
                tracing::info!("job cancelled while running");
                return Ended::Cancelled;
            }
            _ = beat.tick() => {
                match store::heartbeat(&ctx.db, &job.id, token, now_ms(ctx), millis(lease)).await {
                    Ok(Some(true)) => {
                        tracing::info!("job cancelled while running");
                        return Ended::Cancelled;
                    }
                    Ok(Some(false)) => {}
                    Ok(None) => return Ended::LeaseLost,
                    Err(e) => tracing::warn!(error = %e, "renewing the job's lease failed; will retry"),
                }
            }
            _ = ctx.stop.wait(), if deadline.is_none() => {
                let budget = drain_budget(ctx.grace);
                tracing::info!(budget_ms = millis(budget), "shutdown: letting the running job finish");
                deadline = Some(Instant::now() + budget);
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                return Ended::Released;
            }
        }
    }
}

/// Stores how the attempt ended and keeps the gauge and the callback sender up to date.
async fn record(ctx: &Context, job: &Job, token: &str, outcome: Outcome) {
    let label = match &outcome {
        Outcome::Succeeded { .. } => "succeeded",
        Outcome::Failed(_) => "failed",
        Outcome::Dead(_) => "dead",
        Outcome::Retry { .. } => "retry",
        Outcome::Cancelled => "cancelled",
    };
    match store::finish(&ctx.db, &job.id, token, now_ms(ctx), &outcome).await {
        Ok(true) => {
            match &outcome {
                Outcome::Retry { error, run_after } => {
                    ctx.metrics.queue_depth.inc();
                    tracing::warn!(code = %error.code, error = %error.message, retry_in_ms = run_after - now_ms(ctx), "job attempt failed; it will be retried");
                }
                Outcome::Failed(e) | Outcome::Dead(e) => {
                    tracing::warn!(status = label, code = %e.code, error = %e.message, "job ended without a result")
                }
                _ => tracing::info!(status = label, "job finished"),
            }
            if job.callback.is_some() && !matches!(outcome, Outcome::Retry { .. }) {
                ctx.queue.callbacks.notify_one();
            }
        }
        Ok(false) => {
            tracing::warn!(
                status = label,
                "the job's lease was lost before its outcome was stored; the new holder decides"
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, status = label, "storing the job's outcome failed; it is retried once its lease expires")
        }
    }
}

/// Reaps expired leases every second and recounts the queue every few seconds (so the
/// gauge agrees across replicas).
async fn keeper(ctx: Arc<Context>) {
    recount(&ctx).await;
    let mut tick = tokio::time::interval(REAP_EVERY);
    let mut reaps = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.stop.wait() => break,
        }
        match store::reap_expired(&ctx.db, now_ms(&ctx)).await {
            Ok(reaped) => {
                for (id, status) in reaped {
                    tracing::warn!(job_id = %id, status = status.as_str(), "reaped a job whose worker stopped renewing its lease");
                    if status == store::JobStatus::Queued {
                        ctx.metrics.queue_depth.inc();
                        ctx.queue.wake_worker();
                    } else {
                        ctx.queue.callbacks.notify_one();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reaping expired job leases failed; will retry"),
        }
        reaps += 1;
        if reaps.is_multiple_of(RECOUNT_EVERY_REAPS) {
            recount(&ctx).await;
        }
    }
}

async fn recount(ctx: &Context) {
    match store::count_queued(&ctx.db).await {
        Ok(n) => {
            ctx.metrics.queue_depth.set(n);
        }
        Err(e) => tracing::warn!(error = %e, "counting queued jobs failed"),
    }
}

/// Delivers due callbacks one at a time until shutdown.
async fn callback_sender(ctx: Arc<Context>) {
    loop {
        if ctx.stop.is_stopping() {
            break;
        }
        let now = now_ms(&ctx);
        match store::claim_callback(&ctx.db, now, now + millis(CALLBACK_HOLD)).await {
            Ok(Some(job)) => {
                tokio::select! {
                    _ = deliver(&ctx, job) => {}
                    // Left held; another process (or this one after a restart) sends it.
                    _ = ctx.stop.wait() => break,
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "claiming a job callback failed; will retry"),
        }
        tokio::select! {
            _ = ctx.queue.callbacks.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = ctx.stop.wait() => break,
        }
    }
}

/// One delivery attempt of a job's callback, and its record.
async fn deliver(ctx: &Context, job: Job) {
    let Some(callback) = job.callback.clone() else {
        return;
    };
    let span = tracing::info_span!("job_callback", job_id = %job.id, attempt = callback.attempts);
    async {
        let attempts = callback.attempts;
        let (status_code, result) = send_callback(ctx, &callback.url, &job).await;
        let now = now_ms(ctx);
        let outcome = match result {
            Ok(()) => CallbackOutcome::Delivered {
                status_code: status_code.unwrap_or_default(),
            },
            Err((error, final_)) if final_ || attempts >= CALLBACK_MAX_ATTEMPTS => {
                CallbackOutcome::Failed { status_code, error }
            }
            Err((error, _)) => CallbackOutcome::Retry {
                status_code,
                error,
                next_at: now + millis(retry_delay(attempts, None)),
            },
        };
        match &outcome {
            CallbackOutcome::Delivered { status_code } => {
                tracing::info!(status_code, "job callback delivered")
            }
            CallbackOutcome::Retry { error, .. } => {
                tracing::warn!(error = %error, "job callback failed; will retry")
            }
            CallbackOutcome::Failed { error, .. } => {
                tracing::warn!(error = %error, "job callback failed for good")
            }
        }
        if let Err(e) = store::record_callback(&ctx.db, &job.id, now, &outcome).await {
            tracing::warn!(error = %e, "recording the job callback's outcome failed; it is sent again later");
        }
    }
    .instrument(span)
    .await;
}

/// POSTs the job JSON, signed. `Err((message, final))`: `final` when retrying cannot help.
async fn send_callback(
    ctx: &Context,
    url: &str,
    job: &Job,
) -> (Option<i64>, Result<(), (String, bool)>) {
    let Some(secret) = ctx.config.job_callback_secret.as_ref() else {
        let m = "JOB_CALLBACK_SECRET is not configured, so the callback cannot be signed";
        return (None, Err((m.into(), true)));
    };
    let body = match serde_json::to_string(&view::JobOut::from(job.clone())) {
        Ok(b) => b,
        Err(e) => {
            return (
                None,
                Err((format!("the job could not be serialized: {e}"), true)),
            );
        }
    };
    let t = ctx.engine.clock.now().timestamp();
    let signature = match sign(secret.expose().as_bytes(), t, &body) {
        Ok(s) => s,
        Err(m) => return (None, Err((m, true))),
    };
    let request = match ctx
        .queue
        .egress
        .client()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header("X-Flightdeck-Job-Id", job.id.as_str())
        .timeout(Duration::from_secs(ctx.config.job_callback_timeout_secs))
        .body(body)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return (
                None,
                Err((format!("callback_url {url:?} is not usable: {e}"), true)),
            );
        }
    };
    match ctx.queue.egress.send(request).await {
        Ok(resp) if resp.status().is_success() => (Some(i64::from(resp.status().as_u16())), Ok(())),
        Ok(resp) => {
            let code = resp.status().as_u16();
            (
                Some(i64::from(code)),
                Err((format!("the receiver answered HTTP {code}"), false)),
            )
        }
        Err(SendError::Denied(d)) => (
            None,
            Err((
                format!("the egress guard refused the callback: {}", d.message()),
                true,
            )),
        ),
        Err(e) => (
            None,
            Err((format!("the callback request failed: {e}"), false)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently: python3 -c 'import hmac,hashlib;
        //   print(hmac.new(b"s3cret", b"1700000000.{\"id\":\"job_1\"}", hashlib.sha256).hexdigest())'
        let got = sign(b"s3cret", 1_700_000_000, r#"{"id":"job_1"}"#).expect("sign");
        assert_eq!(
            got,
            "t=1700000000,v1=417d6c45daf4bacba1b5191d49995a94bd63b70a09190a3ac7337cb5a90b6da3"
        );
        let other = sign(b"s3cret", 1_700_000_001, r#"{"id":"job_1"}"#).expect("sign");
        assert_ne!(got, other, "the timestamp is signed");
    }

    #[test]
    fn retry_delays_grow_honour_retry_after_and_are_capped() {
        let d = |attempt, after| retry_delay(attempt, after).as_secs();
        assert_eq!([d(1, None), d(2, None), d(3, None)], [1, 2, 4]);
        assert_eq!(
            d(1, Some(5)),
            5,
            "the failure's Retry-After wins when longer"
        );
        assert_eq!(d(4, Some(5)), 8);
        assert_eq!(d(40, None), MAX_RETRY_DELAY.as_secs());
        assert_eq!(d(0, None), 1);
        assert_eq!(d(-3, Some(100_000)), MAX_RETRY_DELAY.as_secs());
    }

    #[test]
    fn only_transient_failures_are_retried() {
        for code in [
            ErrorCode::ProviderUnavailable,
            ErrorCode::ProviderTimeout,
            ErrorCode::DependencyUnavailable,
        ] {
            assert!(retryable(code), "{code:?}");
        }
        for code in [
            ErrorCode::Internal,
            ErrorCode::InvalidInput,
            ErrorCode::UnknownWorkflow,
            ErrorCode::Forbidden,
        ] {
            assert!(!retryable(code), "{code:?}");
        }
    }

    #[test]
    fn heartbeats_and_drain_fit_their_periods() {
        assert_eq!(
            heartbeat_every(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
        assert_eq!(
            heartbeat_every(Duration::from_millis(150)),
            Duration::from_millis(100)
        );
        assert_eq!(
            drain_budget(Duration::from_secs(20)),
            Duration::from_secs(19)
        );
        assert_eq!(
            drain_budget(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(drain_budget(Duration::ZERO), Duration::ZERO);
    }
}
