//! Timeout, bounded jittered retries and a circuit breaker around a [`ChatModel`].
//!
//! Each attempt has the configured timeout, cut to the request's deadline. Retryable
//! failures (unavailable, timeout) are retried with full-jitter exponential backoff,
//! unless text has already reached the caller's sink, and only when the retry fits: the
//! tokens the failed attempts used are counted (the request's [`Meter`](super::Meter)),
//! the retry asks for no more than the budget left, and it must be able to finish before
//! the deadline. A timed-out attempt that was already generating is not retried: the
//! model works, only too slowly for this call, and a second run would take as long again.
//! A call that still fails counts towards the breaker (rejections do not):
//! after `failure_threshold` consecutive failed calls the circuit opens for `open_for`,
//! during which calls fail fast; then one probe call is let through (half-open), and its
//! outcome closes or reopens the circuit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{ChatModel, ChatRequest, ChatResponse, ProviderError, TokenSink};
use crate::metrics::{CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN, Metrics};

/// The dependency label of the provider's breaker in `agent_circuit_state`.
const DEPENDENCY: &str = "provider";
/// First retry waits up to this long; each further retry doubles it, up to the cap.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// `health()` gives the model this long.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// The `agent_circuit_state` gauge value.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => CIRCUIT_CLOSED,
            Self::HalfOpen => CIRCUIT_HALF_OPEN,
            Self::Open => CIRCUIT_OPEN,
        }
    }
}

/// The breaker as `/readyz` and the console show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CircuitSnapshot {
    pub state: CircuitState,
    /// Failed calls in a row so far (reset by a success).
    pub consecutive_failures: u32,
    /// While open: seconds until a probe call is let through.
    pub retry_after_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ResilienceConfig {
    pub timeout: std::time::Duration,
    pub max_retries: u32,
    pub failure_threshold: u32,
    pub open_for: std::time::Duration,
}

impl ResilienceConfig {
    pub fn from_settings(s: &crate::config::ProviderConfig) -> Self {
        Self {
            timeout: std::time::Duration::from_secs(s.provider_timeout_secs),
            max_retries: s.provider_max_retries,
            failure_threshold: s.circuit_failure_threshold,
            open_for: std::time::Duration::from_secs(s.circuit_open_secs),
        }
    }
}

/// The configured model behind a timeout, retries and a circuit breaker. Cheap to clone:
/// clones share one breaker.
#[derive(Clone)]
pub struct Provider {
    model: Arc<dyn ChatModel>,
    cfg: ResilienceConfig,
    metrics: Arc<Metrics>,
    breaker: Arc<Mutex<Breaker>>,
}

impl Provider {
    pub fn new(model: Arc<dyn ChatModel>, cfg: ResilienceConfig, metrics: Arc<Metrics>) -> Self {
        metrics.set_circuit(DEPENDENCY, CircuitState::Closed.gauge());
        Self {
            model,
            cfg,
            metrics,
            breaker: Arc::new(Mutex::new(Breaker::default())),
        }
    }

    pub fn kind(&self) -> &'static str {
        self.model.kind()
    }

    pub fn model(&self) -> &str {
        self.model.model()
    }

    pub fn circuit_state(&self) -> CircuitState {
        self.lock().state()
    }

    /// State, failure count and (while open) when the next probe may go.
    pub fn circuit(&self) -> CircuitSnapshot {
        let breaker = self.lock();
        CircuitSnapshot {
            state: breaker.state(),
            consecutive_failures: breaker.consecutive_failures,
            retry_after_secs: breaker.retry_after(Instant::now()),
        }
    }

    /// While the circuit is open: seconds until a probe call is let through.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.lock().retry_after(Instant::now())
    }

    /// One chat completion with timeout, retries and the breaker. Text deltas go to
    /// `sink` as they arrive; once any has, the call is not retried (the caller would
    /// see the text twice).
    pub async fn chat(
        &self,
        req: &ChatRequest,
        sink: Option<&TokenSink>,
    ) -> Result<ChatResponse, ProviderError> {
        let permit = match self.admit() {
            Ok(permit) => permit,
            Err(err) => {
                self.metrics.provider_error(self.kind(), err.kind());
                return Err(err);
            }
        };
        let streamed = AtomicBool::new(false);
        let mut retries = 0;
        let mut retry_req: Option<ChatRequest> = None;
        loop {
            let this = retry_req.as_ref().unwrap_or(req);
            let timeout = self.attempt_timeout(req.deadline);
            let result = if timeout.is_zero() {
                Err(ProviderError::Timeout(0))
            } else {
                match tokio::time::timeout(timeout, self.attempt(this, sink, &streamed)).await {
                    Ok(result) => result,
                    Err(_) => Err(ProviderError::Timeout(ceil_secs(timeout))),
                }
            };
            let err = match result {
                Ok(resp) => {
                    req.meter.attempt_answered();
                    permit.settle(Outcome::Healthy);
                    return Ok(resp);
                }
                Err(err) => err,
            };
            // Generating when the time ran out: the model is up but too slow for this call.
            let was_generating =
                matches!(err, ProviderError::Timeout(_)) && req.meter.current_completion() > 0;
            req.meter.attempt_failed();
            self.metrics.provider_error(self.kind(), err.kind());
            let wait = backoff(retries + 1);
            let next = self.retry_request(req, wait);
            let may_retry = err.retryable()
                && retries < self.cfg.max_retries
                && !streamed.load(Ordering::Relaxed)
                && !was_generating
                && next.is_some()
                && !permit.is_probe()
                && self.circuit_state() == CircuitState::Closed;
            if !may_retry {
                let outcome = if matches!(
                    err,
                    ProviderError::Rejected(_) | ProviderError::ContextExceeded(_)
                ) {
                    Outcome::Healthy
                } else {
                    Outcome::Failed
                };
                permit.settle(outcome);
                return Err(err);
            }
            retries += 1;
            tracing::debug!(provider = self.kind(), error = %err, retry = retries, wait_ms = wait.as_millis() as u64, "retrying model call");
            tokio::time::sleep(wait).await;
            retry_req = next;
        }
    }

    /// The configured per-attempt timeout, cut to what is left before `deadline`.
    fn attempt_timeout(&self, deadline: Option<Instant>) -> Duration {
        match deadline {
            Some(d) => self
                .cfg
                .timeout
                .min(d.saturating_duration_since(Instant::now())),
            None => self.cfg.timeout,
        }
    }

    /// The request a retry would send after waiting `wait`, or `None` when no retry fits:
    /// the failed attempts' tokens leave no room for the prompt and some output, or the
    /// deadline leaves less than a second (the configured timeout, when shorter) after
    /// the wait. The retry asks for at most the tokens left; its attempt timeout is cut to
    /// the deadline like every attempt's.
    fn retry_request(&self, req: &ChatRequest, wait: Duration) -> Option<ChatRequest> {
        let spent = req.meter.total().total();
        let prompt = super::estimate_prompt_tokens(&req.messages);
        let left = req
            .budget_tokens
            .saturating_sub(spent)
            .saturating_sub(prompt);
        if left == 0 {
            return None;
        }
        if let Some(deadline) = req.deadline {
            let needed = self.cfg.timeout.min(Duration::from_secs(1)) + wait;
            if deadline.saturating_duration_since(Instant::now()) < needed {
                return None;
            }
        }
        let mut next = req.clone();
        next.max_tokens = req.max_tokens.min(left);
        next.budget_tokens = req.budget_tokens.saturating_sub(spent);
        Some(next)
    }

    /// A cheap reachability check with a short timeout; it does not move the breaker.
    pub async fn health(&self) -> Result<(), ProviderError> {
        match tokio::time::timeout(HEALTH_TIMEOUT, self.model.health()).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Timeout(ceil_secs(HEALTH_TIMEOUT))),
        }
    }

    /// One attempt; deltas are relayed to `sink` and `streamed` records that one was.
    async fn attempt(
        &self,
        req: &ChatRequest,
        sink: Option<&TokenSink>,
        streamed: &AtomicBool,
    ) -> Result<ChatResponse, ProviderError> {
        let Some(sink) = sink else {
            return self.model.chat(req, None).await;
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let call = async move {
            let result = self.model.chat(req, Some(&tx)).await;
            drop(tx);
            result
        };
        let relay = async {
            while let Some(delta) = rx.recv().await {
                streamed.store(true, Ordering::Relaxed);
                // A receiver that went away only means nobody watches the stream.
                let _ = sink.send(delta);
            }
        };
        let (result, ()) = tokio::join!(call, relay);
        result
    }

    fn admit(&self) -> Result<Permit<'_>, ProviderError> {
        let now = Instant::now();
        let (admission, transition) = self.lock().admit(now, self.cfg.open_for);
        if let Some((from, to)) = transition {
            self.transitioned(from, to);
        }
        admission.map(|probe| Permit {
            provider: self,
            probe,
            settled: false,
        })
    }

    fn record(&self, probe: bool, outcome: Outcome) {
        let transition = self.lock().record(
            Instant::now(),
            probe,
            outcome,
            self.cfg.failure_threshold,
            self.cfg.open_for,
        );
        if let Some((from, to)) = transition {
            self.transitioned(from, to);
        }
    }

    fn transitioned(&self, from: CircuitState, to: CircuitState) {
        self.metrics.set_circuit(DEPENDENCY, to.gauge());
        tracing::warn!(
            provider = self.kind(),
            model = self.model(),
            ?from,
            ?to,
            "model provider circuit changed state"
        );
    }

    fn lock(&self) -> MutexGuard<'_, Breaker> {
        // The breaker's data stays consistent even if a holder panicked.
        self.breaker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How a call ended, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Answered, or refused this request: the provider is up.
    Healthy,
    /// Unavailable, timed out, broke mid-stream or spoke garbage.
    Failed,
}

/// Leave to make one call. A probe that is dropped unsettled (the caller gave up) frees
/// the half-open slot so the next call can probe.
struct Permit<'a> {
    provider: &'a Provider,
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    fn is_probe(&self) -> bool {
        self.probe
    }

    fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        self.provider.record(self.probe, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.provider.lock().release_probe();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Breaker {
    phase: Phase,
    consecutive_failures: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            phase: Phase::Closed,
            consecutive_failures: 0,
        }
    }
}

type Transition = Option<(CircuitState, CircuitState)>;

impl Breaker {
    fn state(&self) -> CircuitState {
        match self.phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn retry_after(&self, now: Instant) -> Option<u64> {
        match self.phase {
            Phase::Open { until } => Some(ceil_secs(until.saturating_duration_since(now)).max(1)),
            Phase::HalfOpen { probing: true } => Some(1),
            _ => None,
        }
    }

    /// `Ok(is_probe)` when the call may go ahead, `CircuitOpen` when it must fail fast.
    fn admit(
        &mut self,
        now: Instant,
        open_for: Duration,
    ) -> (Result<bool, ProviderError>, Transition) {
        match self.phase {
            Phase::Closed => (Ok(false), None),
            Phase::Open { until } if now >= until => {
                self.phase = Phase::HalfOpen { probing: true };
                (Ok(true), Some((CircuitState::Open, CircuitState::HalfOpen)))
            }
            Phase::HalfOpen { probing: false } => {
                self.phase = Phase::HalfOpen { probing: true };
                (Ok(true), None)
            }
            Phase::Open { .. } | Phase::HalfOpen { probing: true } => {
                let retry_after_secs = self.retry_after(now).unwrap_or_else(|| ceil_secs(open_for));
                (Err(ProviderError::CircuitOpen { retry_after_secs }), None)
            }
        }
    }

    fn record(
        &mut self,
        now: Instant,
        probe: bool,
        outcome: Outcome,
        threshold: u32,
        open_for: Duration,
    ) -> Transition {
        let before = self.state();
        match (outcome, probe) {
            (Outcome::Healthy, true) => {
                self.phase = Phase::Closed;
                self.consecutive_failures = 0;
            }
            (Outcome::Failed, true) => {
                self.phase = Phase::Open {
                    until: now + open_for,
                };
            }
            // Calls admitted before the circuit opened do not move it again.
            (_, false) if self.phase != Phase::Closed => {}
            (Outcome::Healthy, false) => self.consecutive_failures = 0,
            (Outcome::Failed, false) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= threshold.max(1) {
                    self.phase = Phase::Open {
                        until: now + open_for,
                    };
                }
            }
        }
        let after = self.state();
        (before != after).then_some((before, after))
    }

    fn release_probe(&mut self) {
        if self.phase == (Phase::HalfOpen { probing: true }) {
            self.phase = Phase::HalfOpen { probing: false };
        }
    }
}

/// Full jitter: a uniform wait in `[0, min(cap, base * 2^(retry-1))]`.
fn backoff(retry: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << retry.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

/// Whole seconds, rounded up (a 300 ms timeout is reported as 1 s, not 0 s).
fn ceil_secs(d: Duration) -> u64 {
    u64::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::providers::{ChatMessage, Usage};

    /// A model that plays back a script of outcomes and counts its calls.
    struct Script {
        steps: Mutex<VecDeque<Step>>,
        calls: std::sync::atomic::AtomicU32,
        /// `max_tokens` of each call, in order.
        asked: Mutex<Vec<u32>>,
    }

    #[derive(Clone)]
    enum Step {
        Answer,
        Fail(ProviderError),
        /// Sends one delta, then fails.
        StreamThenFail(ProviderError),
        Sleep(Duration),
        /// Starts answering, generates this many tokens (counted in the request's meter),
        /// then fails.
        SpendThenFail(u32, ProviderError),
        /// Starts answering, generates one token, then hangs.
        GenerateThenHang,
    }

    impl Script {
        fn new(steps: impl IntoIterator<Item = Step>) -> Arc<Self> {
            Arc::new(Self {
                steps: Mutex::new(steps.into_iter().collect()),
                calls: Default::default(),
                asked: Mutex::default(),
            })
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl ChatModel for Script {
        fn kind(&self) -> &'static str {
            "script"
        }
        fn model(&self) -> &str {
            "script-1"
        }
        async fn chat(
            &self,
            req: &ChatRequest,
            sink: Option<&TokenSink>,
        ) -> Result<ChatResponse, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.asked.lock().expect("lock").push(req.max_tokens);
            let step = self
                .steps
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or(Step::Answer);
            match step {
                Step::Answer => Ok(answer()),
                Step::Fail(err) => Err(err),
                Step::StreamThenFail(err) => {
                    if let Some(sink) = sink {
                        sink.send("partial".into()).expect("open sink");
                    }
                    Err(err)
                }
                Step::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    Ok(answer())
                }
                Step::SpendThenFail(n, err) => {
                    req.meter.start(1);
                    req.meter.generated(n);
                    Err(err)
                }
                Step::GenerateThenHang => {
                    req.meter.start(1);
                    req.meter.generated(1);
                    std::future::pending().await
                }
            }
        }
        async fn health(&self) -> Result<(), ProviderError> {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        }
    }

    fn answer() -> ChatResponse {
        ChatResponse {
            content: "ok".into(),
            model: "script-1".into(),
            ..ChatResponse::default()
        }
    }

    fn req() -> ChatRequest {
        ChatRequest::new("faq", vec![ChatMessage::user("hi")], 10)
    }

    fn cfg(max_retries: u32, failure_threshold: u32) -> ResilienceConfig {
        ResilienceConfig {
            timeout: Duration::from_millis(200),
            max_retries,
            failure_threshold,
            open_for: Duration::from_millis(300),
        }
    }

    fn unavailable() -> ProviderError {
        ProviderError::Unavailable("HTTP 503: busy".into())
    }

    fn provider(model: Arc<Script>, cfg: ResilienceConfig) -> (Provider, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        (Provider::new(model, cfg, metrics.clone()), metrics)
    }

    #[tokio::test]
    async fn retryable_failures_are_retried_and_counted_per_attempt() {
        let model = Script::new([
            Step::Fail(unavailable()),
            Step::Fail(ProviderError::Timeout(1)),
        ]);
        let (p, metrics) = provider(model.clone(), cfg(2, 5));
        assert_eq!(p.chat(&req(), None).await, Ok(answer()));
        assert_eq!(model.calls(), 3);
        let text = metrics.encode();
        assert!(
            text.contains(r#"agent_provider_errors_total{provider="script",kind="unavailable"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"agent_provider_errors_total{provider="script",kind="timeout"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_retry_asks_for_no_more_than_the_budget_left_and_none_goes_without_room() {
        let model = Script::new([Step::SpendThenFail(50, unavailable())]);
        let (p, _) = provider(model.clone(), cfg(2, 5));
        let mut r = ChatRequest::new("faq", vec![ChatMessage::user("hi")], 40);
        r.budget_tokens = 60;
        assert_eq!(p.chat(&r, None).await, Ok(answer()));
        // 60 - (1 prompt + 50 generated) - 1 prompt for the retry.
        assert_eq!(*model.asked.lock().expect("lock"), [40, 8]);
        assert_eq!(
            r.meter.take_unaccounted(),
            Usage {
                prompt_tokens: 1,
                completion_tokens: 50
            },
            "the failed attempt's tokens stay counted"
        );

        let model = Script::new([Step::SpendThenFail(59, unavailable())]);
        let (p, _) = provider(model.clone(), cfg(2, 5));
        let mut r = ChatRequest::new("faq", vec![ChatMessage::user("hi")], 40);
        r.budget_tokens = 60;
        assert_eq!(p.chat(&r, None).await, Err(unavailable()));
        assert_eq!(model.calls(), 1, "no room for a retry");
    }

    #[tokio::test]
    async fn a_timed_out_generation_is_not_retried_and_its_tokens_count() {
        let model = Script::new([Step::GenerateThenHang]);
        let (p, _) = provider(model.clone(), cfg(2, 5));
        let r = req();
        let err = p.chat(&r, None).await.expect_err("times out");
        assert!(matches!(err, ProviderError::Timeout(_)), "{err:?}");
        assert_eq!(model.calls(), 1);
        assert_eq!(r.meter.take_unaccounted().completion_tokens, 1);
    }

    #[tokio::test]
    async fn attempts_end_at_the_deadline_and_no_retry_starts_without_time_left() {
        let model = Script::new([Step::Sleep(Duration::from_secs(5))]);
        let (p, _) = provider(
            model.clone(),
            ResilienceConfig {
                timeout: Duration::from_secs(2),
                ..cfg(2, 5)
            },
        );
        let mut r = req();
        r.deadline = Some(Instant::now() + Duration::from_millis(150));
        let started = Instant::now();
        let err = p.chat(&r, None).await.expect_err("the deadline");
        assert!(matches!(err, ProviderError::Timeout(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_millis(600));
        assert_eq!(model.calls(), 1, "less than a second was left: no retry");
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let model = Script::new(vec![Step::Fail(unavailable()); 5]);
        let (p, _) = provider(model.clone(), cfg(1, 5));
        assert_eq!(p.chat(&req(), None).await, Err(unavailable()));
        assert_eq!(model.calls(), 2);
    }

    #[tokio::test]
    async fn non_retryable_failures_are_not_retried() {
        for err in [
            ProviderError::Rejected("HTTP 400: bad".into()),
            ProviderError::Protocol("garbage".into()),
            ProviderError::Stream("cut".into()),
        ] {
            let model = Script::new([Step::Fail(err.clone())]);
            let (p, _) = provider(model.clone(), cfg(3, 5));
            assert_eq!(p.chat(&req(), None).await, Err(err));
            assert_eq!(model.calls(), 1);
        }
    }

    #[tokio::test]
    async fn nothing_is_retried_once_text_reached_the_sink() {
        let model = Script::new([Step::StreamThenFail(unavailable())]);
        let (p, _) = provider(model.clone(), cfg(3, 5));
        let (tx, mut rx) = mpsc::unbounded_channel();
        assert_eq!(p.chat(&req(), Some(&tx)).await, Err(unavailable()));
        assert_eq!(model.calls(), 1);
        assert_eq!(rx.try_recv().ok().as_deref(), Some("partial"));
    }

    #[tokio::test]
    async fn each_attempt_has_the_timeout() {
        let model = Script::new([Step::Sleep(Duration::from_secs(5))]);
        let (p, _) = provider(model.clone(), cfg(1, 5));
        let started = Instant::now();
        assert_eq!(
            p.chat(&req(), None).await,
            Ok(answer()),
            "the retry answers at once"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(model.calls(), 2);
    }

    #[tokio::test]
    async fn the_breaker_opens_after_the_threshold_and_fails_fast() {
        let model = Script::new(vec![Step::Fail(unavailable()); 3]);
        let (p, metrics) = provider(model.clone(), cfg(0, 3));
        for _ in 0..3 {
            assert_eq!(p.chat(&req(), None).await, Err(unavailable()));
        }
        assert_eq!(p.circuit_state(), CircuitState::Open);
        assert_eq!(
            p.chat(&req(), None).await,
            Err(ProviderError::CircuitOpen {
                retry_after_secs: 1
            })
        );
        assert_eq!(model.calls(), 3, "no call while open");
        let snapshot = p.circuit();
        assert_eq!(
            (snapshot.state, snapshot.consecutive_failures),
            (CircuitState::Open, 3)
        );
        assert_eq!(p.retry_after_secs(), Some(1));
        assert!(
            metrics
                .encode()
                .contains(r#"agent_circuit_state{dependency="provider"} 2"#)
        );
    }

    #[tokio::test]
    async fn rejections_and_successes_keep_the_circuit_closed() {
        let model = Script::new([
            Step::Fail(unavailable()),
            Step::Fail(ProviderError::Rejected("HTTP 404: no model".into())),
            Step::Fail(unavailable()),
            Step::Answer,
            Step::Fail(unavailable()),
        ]);
        let (p, _) = provider(model, cfg(0, 2));
        for _ in 0..5 {
            let _ = p.chat(&req(), None).await;
        }
        assert_eq!(p.circuit_state(), CircuitState::Closed);
        assert_eq!(p.circuit().consecutive_failures, 1);
    }

    #[tokio::test]
    async fn a_successful_probe_closes_the_circuit() {
        let model = Script::new([Step::Fail(unavailable())]);
        let (p, metrics) = provider(model.clone(), cfg(0, 1));
        assert_eq!(p.chat(&req(), None).await, Err(unavailable()));
        assert_eq!(p.circuit_state(), CircuitState::Open);
        tokio::time::sleep(Duration::from_millis(320)).await;
        assert_eq!(p.chat(&req(), None).await, Ok(answer()));
        assert_eq!(p.circuit_state(), CircuitState::Closed);
        assert!(
            metrics
                .encode()
                .contains(r#"agent_circuit_state{dependency="provider"} 0"#)
        );
    }

    #[tokio::test]
    async fn a_failed_probe_reopens_and_concurrent_calls_fail_fast_meanwhile() {
        let model = Script::new([
            Step::Fail(unavailable()),
            Step::Sleep(Duration::from_secs(2)),
        ]);
        let (p, _) = provider(
            model.clone(),
            ResilienceConfig {
                timeout: Duration::from_millis(400),
                ..cfg(0, 1)
            },
        );
        assert_eq!(p.chat(&req(), None).await, Err(unavailable()));
        tokio::time::sleep(Duration::from_millis(320)).await;

        let probe_req = req();
        let probe = p.chat(&probe_req, None);
        let concurrent = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(p.circuit_state(), CircuitState::HalfOpen);
            p.chat(&req(), None).await
        };
        let (probe, concurrent) = tokio::join!(probe, concurrent);
        assert_eq!(probe, Err(ProviderError::Timeout(1)));
        assert!(
            matches!(concurrent, Err(ProviderError::CircuitOpen { .. })),
            "{concurrent:?}"
        );
        assert_eq!(p.circuit_state(), CircuitState::Open);
        assert_eq!(model.calls(), 2);
    }

    #[tokio::test]
    async fn a_dropped_probe_frees_the_half_open_slot() {
        let model = Script::new([
            Step::Fail(unavailable()),
            Step::Sleep(Duration::from_secs(5)),
        ]);
        let (p, _) = provider(
            model,
            ResilienceConfig {
                timeout: Duration::from_secs(10),
                ..cfg(0, 1)
            },
        );
        assert_eq!(p.chat(&req(), None).await, Err(unavailable()));
        tokio::time::sleep(Duration::from_millis(320)).await;
        let abandoned = tokio::time::timeout(Duration::from_millis(20), p.chat(&req(), None)).await;
        assert!(abandoned.is_err(), "the caller gave up");
        assert_eq!(p.circuit_state(), CircuitState::HalfOpen);
        assert_eq!(
            p.chat(&req(), None).await,
            Ok(answer()),
            "the next call probes"
        );
        assert_eq!(p.circuit_state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn health_has_a_short_timeout_and_leaves_the_breaker_alone() {
        let model = Script::new([]);
        let (p, _) = provider(model, cfg(0, 1));
        assert_eq!(p.health().await, Err(ProviderError::Timeout(2)));
        assert_eq!(p.circuit_state(), CircuitState::Closed);
    }

    #[test]
    fn backoff_stays_within_the_jitter_window() {
        for retry in 1..10 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (retry - 1))
                .min(BACKOFF_CAP);
            for _ in 0..20 {
                assert!(backoff(retry) <= ceiling);
            }
        }
        assert_eq!(ceil_secs(Duration::from_millis(300)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(30)), 30);
    }
}
