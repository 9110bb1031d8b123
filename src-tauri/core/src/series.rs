//! Time series per (service, track, metric) derived from successive `/metrics` scrapes:
//! reset-aware counter rates, error rate, tokens/s, cost/hour, latency quantiles from
//! histogram bucket deltas (Prometheus `histogram_quantile` semantics), ring buffers that
//! hold 24 h at the scrape interval, window selection, and min/max downsampling for drawing.
//!
//! Time is always passed in (unix milliseconds): nothing here reads a clock.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::prom::{Histogram, PromScrape};

/// Statuses of `agent_requests_total` that are outcomes, not failures: a blocked input or
/// a gated write is the service doing its job. Every other status (an error code such as
/// `provider_unavailable` or `internal`) counts as an error.
pub const NON_ERROR_STATUSES: &[&str] = &[
    "success",
    "approval_required",
    "blocked",
    "budget_exceeded",
    "degraded",
];

/// A derived metric the console charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    RequestRate,
    ErrorRate,
    LatencyP50,
    LatencyP95,
    LatencyP99,
    TokensPerSecond,
    CostPerHour,
    QueueDepth,
    Inflight,
    ApprovalsPending,
    GuardrailBlockRate,
    /// The worst circuit state: 0 closed, 1 half-open, 2 open.
    CircuitState,
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Self::RequestRate,
        Self::ErrorRate,
        Self::LatencyP50,
        Self::LatencyP95,
        Self::LatencyP99,
        Self::TokensPerSecond,
        Self::CostPerHour,
        Self::QueueDepth,
        Self::Inflight,
        Self::ApprovalsPending,
        Self::GuardrailBlockRate,
        Self::CircuitState,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestRate => "request_rate",
            Self::ErrorRate => "error_rate",
            Self::LatencyP50 => "latency_p50",
            Self::LatencyP95 => "latency_p95",
            Self::LatencyP99 => "latency_p99",
            Self::TokensPerSecond => "tokens_per_second",
            Self::CostPerHour => "cost_per_hour",
            Self::QueueDepth => "queue_depth",
            Self::Inflight => "inflight",
            Self::ApprovalsPending => "approvals_pending",
            Self::GuardrailBlockRate => "guardrail_block_rate",
            Self::CircuitState => "circuit_state",
        }
    }

    pub fn parse(raw: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == raw)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
                Error::invalid(format!(
                    "unknown metric {raw:?}; known: {}",
                    known.join(", ")
                ))
            })
    }

    /// A human title for chart headings.
    pub fn title(self) -> &'static str {
        match self {
            Self::RequestRate => "Request rate",
            Self::ErrorRate => "Error rate",
            Self::LatencyP50 => "Latency p50",
            Self::LatencyP95 => "Latency p95",
            Self::LatencyP99 => "Latency p99",
            Self::TokensPerSecond => "Tokens per second",
            Self::CostPerHour => "Cost per hour",
            Self::QueueDepth => "Queue depth",
            Self::Inflight => "In-flight requests",
            Self::ApprovalsPending => "Pending approvals",
            Self::GuardrailBlockRate => "Guardrail blocks",
            Self::CircuitState => "Circuit state",
        }
    }

    /// The unit values are stored in.
    pub fn unit(self) -> Unit {
        match self {
            Self::RequestRate | Self::GuardrailBlockRate => Unit::PerSecond,
            Self::ErrorRate => Unit::Ratio,
            Self::LatencyP50 | Self::LatencyP95 | Self::LatencyP99 => Unit::Seconds,
            Self::TokensPerSecond => Unit::TokensPerSecond,
            Self::CostPerHour => Unit::UsdPerHour,
            Self::QueueDepth | Self::Inflight | Self::ApprovalsPending | Self::CircuitState => {
                Unit::Count
            }
        }
    }
}

/// How a value is written on an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    PerSecond,
    /// 0..1, shown as a percentage.
    Ratio,
    Seconds,
    TokensPerSecond,
    UsdPerHour,
    Count,
}

impl Unit {
    /// `v` formatted with this unit, e.g. `1.2 %`, `350 ms`, `$0.42/h`.
    pub fn format(self, v: f64) -> String {
        if !v.is_finite() {
            return "–".into();
        }
        match self {
            Self::PerSecond => format!("{}/s", compact(v)),
            Self::Ratio => format!("{} %", compact(v * 100.0)),
            Self::Seconds if v.abs() < 1.0 && v != 0.0 => format!("{} ms", compact(v * 1000.0)),
            Self::Seconds => format!("{} s", compact(v)),
            Self::TokensPerSecond => format!("{} tok/s", compact(v)),
            Self::UsdPerHour => format!("${}/h", compact(v)),
            Self::Count => compact(v),
        }
    }
}

/// Three significant digits without trailing zeros: 0.0123, 1.5, 42, 1230, 1.2e6.
pub fn compact(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// One value at one time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Unix milliseconds.
    pub t_ms: i64,
    pub v: f64,
}

/// A fixed-capacity ring of points in time order; the oldest falls off when it is full.
#[derive(Debug, Clone)]
pub struct Ring {
    points: VecDeque<Point>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            points: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends; a point not after the newest one replaces nothing and is dropped (a clock
    /// that went back must not fold the series).
    pub fn push(&mut self, p: Point) -> bool {
        if !p.v.is_finite() || self.points.back().is_some_and(|last| p.t_ms <= last.t_ms) {
            return false;
        }
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(p);
        true
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn latest(&self) -> Option<Point> {
        self.points.back().copied()
    }

    /// The points with `t_ms >= since_ms`, oldest first.
    pub fn since(&self, since_ms: i64) -> Vec<Point> {
        let start = self.points.partition_point(|p| p.t_ms < since_ms);
        self.points.range(start..).copied().collect()
    }
}

/// The chart windows the Overview offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Window {
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "6h")]
    H6,
    #[serde(rename = "24h")]
    H24,
}

impl Window {
    pub const ALL: [Window; 5] = [Self::M5, Self::M15, Self::H1, Self::H6, Self::H24];

    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Self::M5 => 5 * 60,
            Self::M15 => 15 * 60,
            Self::H1 => 3600,
            Self::H6 => 6 * 3600,
            Self::H24 => 24 * 3600,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::H1 => "1h",
            Self::H6 => "6h",
            Self::H24 => "24h",
        }
    }

    pub fn parse(raw: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|w| w.as_str() == raw)
            .ok_or_else(|| {
                Error::invalid(format!("window {raw:?} is not one of 5m, 15m, 1h, 6h, 24h"))
            })
    }
}

/// How much to keep and how often it arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesConfig {
    pub scrape_interval: Duration,
    pub retention: Duration,
    /// The span over which alert values are computed (rates, error rate, p99).
    pub alert_window: Duration,
}

impl Default for SeriesConfig {
    fn default() -> Self {
        Self {
            scrape_interval: Duration::from_secs(5),
            retention: Duration::from_secs(24 * 3600),
            alert_window: Duration::from_secs(5 * 60),
        }
    }
}

impl SeriesConfig {
    /// Points per series: retention / interval (17,280 for 24 h at 5 s).
    pub fn capacity(&self) -> usize {
        let interval = self.scrape_interval.as_millis().max(1);
        (self.retention.as_millis() / interval).max(1) as usize
    }
}

/// Identifies one series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub service: String,
    pub track: String,
    pub metric: Metric,
}

/// The counters and histogram of one scrape, the state the next scrape's rates need.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    t_ms: i64,
    requests: f64,
    errors: f64,
    tokens: f64,
    cost_usd: f64,
    guardrail_blocks: f64,
    latency: Option<Histogram>,
}

impl Snapshot {
    fn of(t_ms: i64, s: &PromScrape) -> Self {
        let by_status = s.sum_by("agent_requests_total", "status", &[]);
        let requests: f64 = by_status.values().sum();
        let errors: f64 = by_status
            .iter()
            .filter(|(status, _)| !NON_ERROR_STATUSES.contains(&status.as_str()))
            .map(|(_, v)| v)
            .sum();
        Self {
            t_ms,
            requests,
            errors,
            tokens: s.sum("agent_tokens_total", &[]).unwrap_or(0.0),
            cost_usd: s.sum("agent_cost_usd_total", &[]).unwrap_or(0.0),
            guardrail_blocks: s.sum("agent_guardrail_blocks_total", &[]).unwrap_or(0.0),
            latency: s.histogram("agent_request_duration_seconds", &[]),
        }
    }
}

/// How much a counter grew from `prev` to `cur`: a drop means the process restarted and
/// counted `cur` since (Prometheus' `increase` rule).
pub fn increase(prev: f64, cur: f64) -> f64 {
    if cur >= prev { cur - prev } else { cur }
}

/// Bucket deltas between two cumulative histograms with the same bounds; the current one
/// whole if the bounds changed or any bucket went down (a reset).
pub fn bucket_increase(prev: Option<&Histogram>, cur: &Histogram) -> Vec<(f64, f64)> {
    match prev {
        Some(p)
            if p.buckets.len() == cur.buckets.len()
                && p.buckets
                    .iter()
                    .zip(&cur.buckets)
                    .all(|(a, b)| a.0 == b.0 && b.1 >= a.1) =>
        {
            p.buckets
                .iter()
                .zip(&cur.buckets)
                .map(|(a, b)| (b.0, b.1 - a.1))
                .collect()
        }
        _ => cur.buckets.clone(),
    }
}

/// Prometheus `histogram_quantile(q, buckets)`: `buckets` are cumulative `(le, count)`
/// sorted by `le` and ending with `+Inf`. Linear interpolation inside the bucket the rank
/// falls in (the lowest bucket starts at 0); a rank in the `+Inf` bucket gives the highest
/// finite bound. NaN without observations or with fewer than two buckets.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if buckets.len() < 2 || buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
        return f64::NAN;
    }
    // Counts must not decrease with the bound; Prometheus repairs them the same way.
    let mut fixed: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    let mut max = 0.0_f64;
    for (le, c) in buckets {
        max = max.max(*c);
        fixed.push((*le, max));
    }
    let total = fixed[fixed.len() - 1].1;
    if total == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * total;
    let last = fixed.len() - 1;
    let b = fixed[..last].partition_point(|(_, c)| *c < rank);
    if b == last {
        return fixed[last - 1].0;
    }
    if b == 0 && fixed[0].0 <= 0.0 {
        return fixed[0].0;
    }
    let (mut start, end, mut count) = (0.0, fixed[b].0, fixed[b].1);
    if b > 0 {
        start = fixed[b - 1].0;
        count -= fixed[b - 1].1;
        rank -= fixed[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Per-interval histogram increases kept for the alert window of one service/track.
#[derive(Debug, Clone, Default)]
struct RecentBuckets(VecDeque<(i64, Vec<(f64, f64)>)>);

impl RecentBuckets {
    fn push(&mut self, t_ms: i64, deltas: Vec<(f64, f64)>, keep_ms: i64) {
        self.0.push_back((t_ms, deltas));
        while self.0.front().is_some_and(|(t, _)| *t <= t_ms - keep_ms) {
            self.0.pop_front();
        }
    }

    /// The summed increases since `since_ms` (bounds must agree; other intervals are
    /// skipped rather than mixed).
    fn sum_since(&self, since_ms: i64) -> Option<Vec<(f64, f64)>> {
        let mut sum: Option<Vec<(f64, f64)>> = None;
        for (_, d) in self.0.iter().filter(|(t, _)| *t > since_ms) {
            match &mut sum {
                None => sum = Some(d.clone()),
                Some(s) if s.len() == d.len() && s.iter().zip(d).all(|(a, b)| a.0 == b.0) => {
                    for (a, b) in s.iter_mut().zip(d) {
                        a.1 += b.1;
                    }
                }
                Some(_) => {}
            }
        }
        sum
    }
}

/// The values derived from one scrape, as recorded.
pub type Derived = Vec<(Metric, f64)>;

/// Every series of every service and track the console watches.
#[derive(Debug, Clone)]
pub struct SeriesStore {
    config: SeriesConfig,
    rings: HashMap<SeriesKey, Ring>,
    last: HashMap<(String, String), Snapshot>,
    recent: HashMap<(String, String), RecentBuckets>,
}

impl SeriesStore {
    pub fn new(config: SeriesConfig) -> Self {
        Self {
            config,
            rings: HashMap::new(),
            last: HashMap::new(),
            recent: HashMap::new(),
        }
    }

    pub fn config(&self) -> &SeriesConfig {
        &self.config
    }

    /// Records one scrape of `service`/`track` taken at `t_ms`. Gauges are recorded from
    /// the first scrape on; rates and quantiles need the previous scrape, and an interval
    /// without requests records no error rate and no quantiles (there is nothing to rate).
    /// A scrape older than the previous one is ignored.
    pub fn ingest(
        &mut self,
        service: &str,
        track: &str,
        t_ms: i64,
        scrape: &PromScrape,
    ) -> Derived {
        let id = (service.to_string(), track.to_string());
        let cur = Snapshot::of(t_ms, scrape);
        let mut out: Derived = Vec::new();
        let prev = self.last.get(&id);
        if prev.is_some_and(|p| p.t_ms >= t_ms) {
            return out;
        }
        for (metric, family) in [
            (Metric::QueueDepth, "agent_queue_depth"),
            (Metric::Inflight, "agent_inflight_requests"),
            (Metric::ApprovalsPending, "agent_approvals_pending"),
        ] {
            if let Some(v) = scrape.sum(family, &[]) {
                out.push((metric, v));
            }
        }
        if let Some(f) = scrape.family("agent_circuit_state") {
            let worst = f.samples.iter().map(|s| s.value).fold(0.0, f64::max);
            out.push((Metric::CircuitState, worst));
        }
        if let Some(prev) = prev {
            let dt = (t_ms - prev.t_ms) as f64 / 1000.0;
            let requests = increase(prev.requests, cur.requests);
            // A reset of the totals resets the error counters too.
            let errors = if cur.requests < prev.requests {
                cur.errors
            } else {
                increase(prev.errors, cur.errors)
            };
            out.push((Metric::RequestRate, requests / dt));
            if requests > 0.0 {
                out.push((Metric::ErrorRate, errors / requests));
            }
            out.push((
                Metric::TokensPerSecond,
                increase(prev.tokens, cur.tokens) / dt,
            ));
            out.push((
                Metric::CostPerHour,
                increase(prev.cost_usd, cur.cost_usd) / dt * 3600.0,
            ));
            out.push((
                Metric::GuardrailBlockRate,
                increase(prev.guardrail_blocks, cur.guardrail_blocks) / dt,
            ));
            if let Some(h) = &cur.latency {
                let deltas = bucket_increase(prev.latency.as_ref(), h);
                if deltas.last().is_some_and(|(_, c)| *c > 0.0) {
                    for (metric, q) in [
                        (Metric::LatencyP50, 0.5),
                        (Metric::LatencyP95, 0.95),
                        (Metric::LatencyP99, 0.99),
                    ] {
                        out.push((metric, histogram_quantile(q, &deltas)));
                    }
                }
                let keep = self.config.alert_window.as_millis() as i64;
                self.recent
                    .entry(id.clone())
                    .or_default()
                    .push(t_ms, deltas, keep);
            }
        }
        let capacity = self.config.capacity();
        out.retain(|(_, v)| v.is_finite());
        for (metric, v) in &out {
            self.rings
                .entry(SeriesKey {
                    service: service.to_string(),
                    track: track.to_string(),
                    metric: *metric,
                })
                .or_insert_with(|| Ring::new(capacity))
                .push(Point { t_ms, v: *v });
        }
        self.last.insert(id, cur);
        out
    }

    pub fn ring(&self, service: &str, track: &str, metric: Metric) -> Option<&Ring> {
        self.rings.get(&SeriesKey {
            service: service.to_string(),
            track: track.to_string(),
            metric,
        })
    }

    /// The points of one series within `window` before `now_ms`.
    pub fn window(
        &self,
        service: &str,
        track: &str,
        metric: Metric,
        window: Window,
        now_ms: i64,
    ) -> Vec<Point> {
        let since = now_ms - window.duration().as_millis() as i64;
        self.ring(service, track, metric)
            .map(|r| {
                r.since(since)
                    .into_iter()
                    .filter(|p| p.t_ms <= now_ms)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn latest(&self, service: &str, track: &str, metric: Metric) -> Option<Point> {
        self.ring(service, track, metric).and_then(Ring::latest)
    }

    /// Values over the alert window ending at `now_ms`, for [`crate::alerts`].
    pub fn window_stats(&self, service: &str, track: &str, now_ms: i64) -> WindowStats {
        let since = now_ms - self.config.alert_window.as_millis() as i64;
        let points = |m: Metric| {
            self.ring(service, track, m)
                .map(|r| r.since(since + 1))
                .unwrap_or_default()
        };
        let rates = points(Metric::RequestRate);
        let error_rates = points(Metric::ErrorRate);
        // Error rate over the window = errors / requests, i.e. each interval's ratio
        // weighted by its request count (rate × interval length).
        let mut weights = 0.0;
        let mut errors = 0.0;
        for e in &error_rates {
            if let Some(r) = rates.iter().find(|r| r.t_ms == e.t_ms) {
                weights += r.v;
                errors += r.v * e.v;
            }
        }
        let cost: Vec<Point> = points(Metric::CostPerHour);
        let p99 = self
            .recent
            .get(&(service.to_string(), track.to_string()))
            .and_then(|r| r.sum_since(since))
            .map(|b| histogram_quantile(0.99, &b))
            .filter(|v| v.is_finite());
        WindowStats {
            error_rate: (weights > 0.0).then(|| errors / weights),
            p99_seconds: p99,
            queue_depth: self.latest(service, track, Metric::QueueDepth).map(|p| p.v),
            cost_per_hour: (!cost.is_empty())
                .then(|| cost.iter().map(|p| p.v).sum::<f64>() / cost.len() as f64),
            circuit_state: self
                .latest(service, track, Metric::CircuitState)
                .map(|p| p.v),
        }
    }
}

/// What the alert rules look at; `None` where there is no data.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    pub error_rate: Option<f64>,
    pub p99_seconds: Option<f64>,
    pub queue_depth: Option<f64>,
    pub cost_per_hour: Option<f64>,
    pub circuit_state: Option<f64>,
}

/// At most two points per pixel column (the minimum and the maximum, in time order), so a
/// chart of any length keeps its spikes. Series that already fit are returned unchanged.
pub fn downsample_min_max(points: &[Point], columns: usize) -> Vec<Point> {
    if columns == 0 || points.len() <= 2 * columns {
        return points.to_vec();
    }
    let (t0, t1) = (points[0].t_ms, points[points.len() - 1].t_ms);
    let span = (t1 - t0).max(1) as f64;
    let mut out = Vec::with_capacity(2 * columns);
    let mut i = 0;
    while i < points.len() {
        let col = (((points[i].t_ms - t0) as f64 / span) * columns as f64) as usize;
        let col = col.min(columns - 1);
        let (mut lo, mut hi) = (points[i], points[i]);
        let mut j = i + 1;
        while j < points.len() {
            let c = ((((points[j].t_ms - t0) as f64 / span) * columns as f64) as usize)
                .min(columns - 1);
            if c != col {
                break;
            }
            if points[j].v < lo.v {
                lo = points[j];
            }
            if points[j].v > hi.v {
                hi = points[j];
            }
            j += 1;
        }
        if lo.t_ms == hi.t_ms {
            out.push(lo);
        } else if lo.t_ms < hi.t_ms {
            out.extend([lo, hi]);
        } else {
            out.extend([hi, lo]);
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::parse;

    fn approx(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() < 1e-9 || a.is_nan() && b.is_nan()
    }

    #[test]
    fn histogram_quantile_matches_prometheus() {
        let inf = f64::INFINITY;
        // (q, buckets, expected): worked by hand with Prometheus' rule.
        type Case<'a> = (f64, &'a [(f64, f64)], f64);
        let cases: &[Case] = &[
            // 10 obs: 4 ≤ 0.1, 5 in (0.1, 1], 1 above. p50: rank 5 → bucket (0.1,1],
            // 1 of 5 into it → 0.1 + 0.9 × 1/5 = 0.28.
            (0.5, &[(0.1, 4.0), (1.0, 9.0), (inf, 10.0)], 0.28),
            // p90: rank 9 → end of (0.1, 1] → 1.0.
            (0.9, &[(0.1, 4.0), (1.0, 9.0), (inf, 10.0)], 1.0),
            // p99: rank 9.9 falls in +Inf → highest finite bound.
            (0.99, &[(0.1, 4.0), (1.0, 9.0), (inf, 10.0)], 1.0),
            // p25 in the lowest bucket, which starts at 0: 0.1 × 2.5/4 = 0.0625.
            (0.25, &[(0.1, 4.0), (1.0, 9.0), (inf, 10.0)], 0.0625),
            // 100 obs spread 50/40/10 over (0,10], (10,30], (30,60]: p95 rank 95 →
            // 5 of 10 into (30, 60] → 45.
            (
                0.95,
                &[(10.0, 50.0), (30.0, 90.0), (60.0, 100.0), (inf, 100.0)],
                45.0,
            ),
            // A lowest bound ≤ 0 is returned as is.
            (0.1, &[(-1.0, 5.0), (1.0, 10.0), (inf, 10.0)], -1.0),
            // Non-monotonic counts are repaired (max so far): [(1,4),(2,4),(inf,8)] →
            // p50 rank 4 → first bucket → 1.0.
            (0.5, &[(1.0, 4.0), (2.0, 3.0), (inf, 8.0)], 1.0),
            (0.5, &[(1.0, 0.0), (inf, 0.0)], f64::NAN),
            (0.5, &[(inf, 3.0)], f64::NAN),
            (0.5, &[(1.0, 3.0), (2.0, 4.0)], f64::NAN),
            (-0.1, &[(1.0, 3.0), (inf, 3.0)], f64::NEG_INFINITY),
            (1.1, &[(1.0, 3.0), (inf, 3.0)], inf),
        ];
        for (q, buckets, want) in cases {
            let got = histogram_quantile(*q, buckets);
            assert!(
                approx(got, *want),
                "q={q} {buckets:?}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn counters_increase_across_resets() {
        assert_eq!(increase(10.0, 15.0), 5.0);
        assert_eq!(increase(10.0, 10.0), 0.0);
        assert_eq!(increase(10.0, 3.0), 3.0, "reset: counted 3 since");
        let inf = f64::INFINITY;
        let a = Histogram {
            buckets: vec![(1.0, 4.0), (inf, 6.0)],
            sum: 0.0,
            count: 6.0,
        };
        let b = Histogram {
            buckets: vec![(1.0, 5.0), (inf, 9.0)],
            sum: 0.0,
            count: 9.0,
        };
        let reset = Histogram {
            buckets: vec![(1.0, 1.0), (inf, 2.0)],
            sum: 0.0,
            count: 2.0,
        };
        let rebucketed = Histogram {
            buckets: vec![(2.0, 7.0), (inf, 9.0)],
            sum: 0.0,
            count: 9.0,
        };
        assert_eq!(bucket_increase(Some(&a), &b), vec![(1.0, 1.0), (inf, 3.0)]);
        assert_eq!(bucket_increase(Some(&b), &reset), reset.buckets);
        assert_eq!(bucket_increase(Some(&a), &rebucketed), rebucketed.buckets);
        assert_eq!(bucket_increase(None, &a), a.buckets);
    }

    /// An exposition with the given totals, as the agent-service writes it.
    /// `buckets` are the cumulative counts of `le="0.5"`, `le="1.0"` and `+Inf`.
    fn exposition(
        ok: u64,
        failed: u64,
        tokens: u64,
        cost: f64,
        (le_05, le_1, inf): (u64, u64, u64),
        queue: u64,
    ) -> PromScrape {
        parse(&format!(
            "# TYPE agent_requests counter\n\
             agent_requests_total{{workflow=\"faq\",status=\"success\",track=\"stable\"}} {ok}\n\
             agent_requests_total{{workflow=\"faq\",status=\"blocked\",track=\"stable\"}} 1\n\
             agent_requests_total{{workflow=\"faq\",status=\"provider_unavailable\",track=\"stable\"}} {failed}\n\
             # TYPE agent_request_duration_seconds histogram\n\
             agent_request_duration_seconds_bucket{{le=\"0.5\"}} {le_05}\n\
             agent_request_duration_seconds_bucket{{le=\"1.0\"}} {le_1}\n\
             agent_request_duration_seconds_bucket{{le=\"+Inf\"}} {inf}\n\
             agent_request_duration_seconds_count {inf}\n\
             agent_request_duration_seconds_sum 1\n\
             # TYPE agent_tokens counter\n\
             agent_tokens_total{{model=\"m\",direction=\"input\"}} {tokens}\n\
             # TYPE agent_cost_usd counter\n\
             agent_cost_usd_total {cost}\n\
             # TYPE agent_queue_depth gauge\n\
             agent_queue_depth {queue}\n\
             # TYPE agent_circuit_state gauge\n\
             agent_circuit_state{{dependency=\"provider\"}} 0\n\
             # EOF\n"
        ))
        .unwrap()
    }

    fn derived(d: &Derived, m: Metric) -> Option<f64> {
        d.iter().find(|(k, _)| *k == m).map(|(_, v)| *v)
    }

    #[test]
    fn ingest_derives_rates_and_quantiles() {
        let mut s = SeriesStore::new(SeriesConfig::default());
        let first = s.ingest(
            "agent",
            "stable",
            0,
            &exposition(10, 0, 1000, 0.5, (10, 11, 11), 3),
        );
        assert_eq!(
            first,
            vec![(Metric::QueueDepth, 3.0), (Metric::CircuitState, 0.0)],
            "the first scrape has gauges only"
        );
        // 10 s later: +40 success, +10 failed (+0 blocked) = 50 requests; +5000 tokens;
        // +$0.05; buckets +20 ≤0.5, +45 ≤1, +50 total.
        let d = s.ingest(
            "agent",
            "stable",
            10_000,
            &exposition(50, 10, 6000, 0.55, (30, 56, 61), 120),
        );
        assert!(approx(derived(&d, Metric::RequestRate).unwrap(), 5.0));
        assert!(approx(derived(&d, Metric::ErrorRate).unwrap(), 0.2));
        assert!(approx(derived(&d, Metric::TokensPerSecond).unwrap(), 500.0));
        assert!(approx(
            derived(&d, Metric::CostPerHour).unwrap(),
            0.05 / 10.0 * 3600.0
        ));
        // p50: rank 25 of 50 → (0, 0.5] holds 20, (0.5, 1] holds 25: 0.5 + 0.5 × 5/25 = 0.6.
        assert!(approx(derived(&d, Metric::LatencyP50).unwrap(), 0.6));
        // p95: rank 47.5 → +Inf bucket (45 below it) → 1.0.
        assert!(approx(derived(&d, Metric::LatencyP95).unwrap(), 1.0));
        assert_eq!(derived(&d, Metric::QueueDepth), Some(120.0));
        // A restart: counters start over and count 5 requests (4 ok, 1 failed) since.
        let d = s.ingest(
            "agent",
            "stable",
            20_000,
            &exposition(4, 1, 100, 0.01, (5, 5, 5), 0),
        );
        assert!(
            approx(derived(&d, Metric::RequestRate).unwrap(), 0.6),
            "4 + 1 blocked + 1 failed = 6 in 10 s"
        );
        assert!(approx(derived(&d, Metric::ErrorRate).unwrap(), 1.0 / 6.0));
        assert!(approx(derived(&d, Metric::LatencyP50).unwrap(), 0.25));
        // No requests in an interval: no error rate, no quantiles.
        let d = s.ingest(
            "agent",
            "stable",
            30_000,
            &exposition(4, 1, 100, 0.01, (5, 5, 5), 0),
        );
        assert_eq!(derived(&d, Metric::RequestRate), Some(0.0));
        assert_eq!(derived(&d, Metric::ErrorRate), None);
        assert_eq!(derived(&d, Metric::LatencyP99), None);
        // Out of order: ignored.
        assert!(
            s.ingest(
                "agent",
                "stable",
                25_000,
                &exposition(9, 9, 9, 9.0, (9, 9, 9), 9)
            )
            .is_empty()
        );
        let ring = s.ring("agent", "stable", Metric::RequestRate).unwrap();
        assert_eq!(ring.len(), 3);
        assert_eq!(
            s.ring("agent", "canary", Metric::RequestRate)
                .map(Ring::len),
            None
        );
    }

    #[test]
    fn ring_keeps_24h_at_the_interval_and_selects_windows() {
        let config = SeriesConfig {
            scrape_interval: Duration::from_secs(5),
            ..SeriesConfig::default()
        };
        assert_eq!(config.capacity(), 17_280);
        let mut ring = Ring::new(4);
        for t in 1..=6 {
            assert!(ring.push(Point {
                t_ms: t * 1000,
                v: t as f64
            }));
        }
        assert!(
            !ring.push(Point { t_ms: 6000, v: 0.0 }),
            "not after the newest"
        );
        assert!(
            !ring.push(Point {
                t_ms: 7000,
                v: f64::NAN
            }),
            "not a number"
        );
        assert_eq!(ring.len(), 4);
        let ts: Vec<i64> = ring.since(0).iter().map(|p| p.t_ms).collect();
        assert_eq!(ts, [3000, 4000, 5000, 6000]);
        let ts: Vec<i64> = ring.since(4500).iter().map(|p| p.t_ms).collect();
        assert_eq!(ts, [5000, 6000]);
        assert_eq!(ring.latest().map(|p| p.v), Some(6.0));

        let mut s = SeriesStore::new(config);
        let now = 2 * 3600 * 1000;
        for i in 0..=1440 {
            // One scrape every 5 s over the last 2 h: queue depth = minutes ago.
            let t = now - (1440 - i) * 5000;
            s.ingest(
                "a",
                "stable",
                t,
                &exposition(0, 0, 0, 0.0, (0, 0, 0), ((now - t) / 60_000) as u64),
            );
        }
        let w5 = s.window("a", "stable", Metric::QueueDepth, Window::M5, now);
        assert_eq!(w5.len(), 61, "5 min at 5 s, both ends included");
        assert_eq!(
            s.window("a", "stable", Metric::QueueDepth, Window::H1, now)
                .len(),
            721
        );
        assert_eq!(
            s.window("a", "stable", Metric::QueueDepth, Window::H24, now)
                .len(),
            1441
        );
        assert_eq!(Window::parse("6h").unwrap(), Window::H6);
        assert_eq!(Window::parse("7m").unwrap_err().code().as_str(), "invalid");
    }

    #[test]
    fn window_stats_weight_error_rate_by_requests() {
        let mut s = SeriesStore::new(SeriesConfig::default());
        s.ingest("a", "stable", 0, &exposition(0, 0, 0, 0.0, (0, 0, 0), 0));
        // 10 s: 99 more requests, 0 errors; 100 observations, all ≤ 0.5 s.
        s.ingest(
            "a",
            "stable",
            10_000,
            &exposition(99, 0, 0, 0.0, (100, 100, 100), 0),
        );
        // 20 s: 10 more requests, 5 failed; 10 slow (> 1 s).
        s.ingest(
            "a",
            "stable",
            20_000,
            &exposition(104, 5, 0, 0.36, (100, 100, 110), 7),
        );
        let w = s.window_stats("a", "stable", 20_000);
        // 5 errors of 109 requests, not the mean of 0 % and 50 %.
        assert!(approx(w.error_rate.unwrap(), 5.0 / 109.0));
        // Summed buckets: 100 ≤ 0.5, 100 ≤ 1, 110 total: p99 rank 108.9 → +Inf → 1.0.
        assert!(approx(w.p99_seconds.unwrap(), 1.0));
        assert_eq!(w.queue_depth, Some(7.0));
        // $0 then $0.36 in 10 s = $129.6/h: mean 64.8.
        assert!(approx(w.cost_per_hour.unwrap(), 64.8));
        assert_eq!(
            SeriesStore::new(SeriesConfig::default()).window_stats("x", "y", 0),
            WindowStats::default()
        );
    }

    #[test]
    fn downsampling_keeps_extremes_per_column() {
        let points: Vec<Point> = (0..1000)
            .map(|i| Point {
                t_ms: i,
                v: if i == 503 {
                    100.0
                } else if i == 777 {
                    -50.0
                } else {
                    (i % 7) as f64
                },
            })
            .collect();
        let d = downsample_min_max(&points, 100);
        assert!(d.len() <= 200, "{}", d.len());
        assert!(d.iter().any(|p| p.v == 100.0 && p.t_ms == 503));
        assert!(d.iter().any(|p| p.v == -50.0 && p.t_ms == 777));
        assert!(d.windows(2).all(|w| w[0].t_ms < w[1].t_ms), "time order");
        assert_eq!(d.first().map(|p| p.t_ms), Some(0));
        assert_eq!(
            downsample_min_max(&points[..10], 100),
            points[..10].to_vec()
        );
        assert_eq!(downsample_min_max(&[], 100), vec![]);
    }

    #[test]
    fn units_format_compactly() {
        let cases: &[(Unit, f64, &str)] = &[
            (Unit::Ratio, 0.0123, "1.23 %"),
            (Unit::Seconds, 0.35, "350 ms"),
            (Unit::Seconds, 42.0, "42 s"),
            (Unit::UsdPerHour, 0.4199, "$0.42/h"),
            (Unit::PerSecond, 1234.6, "1235/s"),
            (Unit::TokensPerSecond, 12.26, "12.3 tok/s"),
            (Unit::Count, 0.0, "0"),
            (Unit::Count, 2_500_000.0, "2.5e6"),
            (Unit::Count, f64::NAN, "–"),
        ];
        for (unit, v, want) in cases {
            assert_eq!(unit.format(*v), *want, "{unit:?} {v}");
        }
        assert_eq!(Metric::parse("latency_p99").unwrap(), Metric::LatencyP99);
        assert!(Metric::parse("p99").is_err());
    }
}
