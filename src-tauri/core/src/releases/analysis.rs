//! Canary analysis as a pure function over measurements: successive totals of
//! the canary and stable tracks (each the sum of its pods' `/metrics`), judged interval by
//! interval against the thresholds of the canary's `flightdeck.dev/analysis` annotation.

use std::collections::VecDeque;

use serde::Deserialize;

use super::dto::{
    EvalGateStatus, GateVerdict, Measurement, MetricAnalysis, MetricName, ReleaseAnalysis, Verdict,
};
use crate::error::{Error, Result};
use crate::prom::{Histogram, PromScrape};
use crate::series::{NON_ERROR_STATUSES, bucket_increase, histogram_quantile, increase};

/// How many ticks of measurements are kept per release (the contract's "last 60").
pub const KEPT_MEASUREMENTS: usize = 60;

/// The thresholds of `flightdeck.dev/analysis`: every key required, no others.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub max_error_rate: f64,
    pub max_p95_latency_ms: f64,
    pub min_success_rate: f64,
    pub max_cost_per_success_usd: f64,
    pub max_guardrail_block_rate: f64,
    pub min_samples: u64,
}

impl Thresholds {
    /// Parses the annotation, naming what is wrong.
    pub fn parse(raw: &str) -> Result<Self> {
        let t: Self = serde_json::from_str(raw).map_err(|e| {
            Error::invalid(format!(
                "annotation flightdeck.dev/analysis is not a valid analysis object: {e}"
            ))
        })?;
        let fraction = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid(format!(
                    "annotation flightdeck.dev/analysis: {name} must be a fraction 0-1, not {v}"
                )))
            }
        };
        fraction("max_error_rate", t.max_error_rate)?;
        fraction("min_success_rate", t.min_success_rate)?;
        fraction("max_guardrail_block_rate", t.max_guardrail_block_rate)?;
        if t.max_p95_latency_ms.is_nan() || t.max_p95_latency_ms <= 0.0 {
            return Err(Error::invalid(
                "annotation flightdeck.dev/analysis: max_p95_latency_ms must be > 0",
            ));
        }
        if t.max_cost_per_success_usd.is_nan() || t.max_cost_per_success_usd < 0.0 {
            return Err(Error::invalid(
                "annotation flightdeck.dev/analysis: max_cost_per_success_usd must be >= 0",
            ));
        }
        if t.min_samples == 0 {
            return Err(Error::invalid(
                "annotation flightdeck.dev/analysis: min_samples must be >= 1",
            ));
        }
        Ok(t)
    }
}

/// The cumulative counters of one track at one moment (summed over its pods).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackTotals {
    pub requests: f64,
    /// `success` and `approval_required`.
    pub successes: f64,
    /// Statuses that are not outcomes (see [`NON_ERROR_STATUSES`]).
    pub errors: f64,
    pub cost_usd: f64,
    pub guardrail_blocks: f64,
    pub latency: Option<Histogram>,
}

impl TrackTotals {
    /// The totals of one pod's scrape.
    pub fn of(scrape: &PromScrape) -> Self {
        let by_status = scrape.sum_by("agent_requests_total", "status", &[]);
        let requests = by_status.values().sum();
        let successes = ["success", "approval_required"]
            .iter()
            .filter_map(|s| by_status.get(*s))
            .sum();
        let errors = by_status
            .iter()
            .filter(|(s, _)| !NON_ERROR_STATUSES.contains(&s.as_str()))
            .map(|(_, v)| v)
            .sum();
        Self {
            requests,
            successes,
            errors,
            cost_usd: scrape.sum("agent_cost_usd_total", &[]).unwrap_or(0.0),
            guardrail_blocks: scrape
                .sum("agent_guardrail_blocks_total", &[])
                .unwrap_or(0.0),
            latency: scrape.histogram("agent_request_duration_seconds", &[]),
        }
    }

    /// Adds another pod's totals (histograms whose bounds differ are not mixed: the first
    /// kept).
    pub fn add(&mut self, other: &TrackTotals) {
        self.requests += other.requests;
        self.successes += other.successes;
        self.errors += other.errors;
        self.cost_usd += other.cost_usd;
        self.guardrail_blocks += other.guardrail_blocks;
        match (&mut self.latency, &other.latency) {
            (None, Some(h)) => self.latency = Some(h.clone()),
            (Some(a), Some(b))
                if a.buckets.len() == b.buckets.len()
                    && a.buckets.iter().zip(&b.buckets).all(|(x, y)| x.0 == y.0) =>
            {
                for (x, y) in a.buckets.iter_mut().zip(&b.buckets) {
                    x.1 += y.1;
                }
                a.sum += b.sum;
                a.count += b.count;
            }
            _ => {}
        }
    }
}

/// Both tracks' totals at one analysis tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at_ms: i64,
    pub canary: TrackTotals,
    pub stable: TrackTotals,
}

/// What one interval between two ticks measured on one track.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct IntervalValues {
    requests: f64,
    success_rate: Option<f64>,
    error_rate: Option<f64>,
    p95_latency_ms: Option<f64>,
    cost_per_success_usd: Option<f64>,
    guardrail_block_rate: Option<f64>,
}

impl IntervalValues {
    fn between(prev: &TrackTotals, cur: &TrackTotals) -> Self {
        // A drop of the request total means a pod restarted (or left): count `cur` since.
        let reset = cur.requests < prev.requests;
        let delta = |p: f64, c: f64| if reset { c } else { increase(p, c) };
        let requests = delta(prev.requests, cur.requests);
        let successes = delta(prev.successes, cur.successes);
        let errors = delta(prev.errors, cur.errors);
        let cost = delta(prev.cost_usd, cur.cost_usd);
        let blocks = delta(prev.guardrail_blocks, cur.guardrail_blocks);
        let per_request = |v: f64| (requests > 0.0).then(|| v / requests);
        let p95_latency_ms = cur.latency.as_ref().and_then(|h| {
            let prev_h = if reset { None } else { prev.latency.as_ref() };
            let deltas = bucket_increase(prev_h, h);
            let q = histogram_quantile(0.95, &deltas) * 1000.0;
            (deltas.last().is_some_and(|(_, c)| *c > 0.0) && q.is_finite()).then_some(q)
        });
        Self {
            requests,
            success_rate: per_request(successes),
            error_rate: per_request(errors),
            p95_latency_ms,
            cost_per_success_usd: (successes > 0.0).then(|| cost / successes),
            guardrail_block_rate: per_request(blocks),
        }
    }

    fn get(&self, m: MetricName) -> Option<f64> {
        match m {
            MetricName::SuccessRate => self.success_rate,
            MetricName::ErrorRate => self.error_rate,
            MetricName::P95LatencyMs => self.p95_latency_ms,
            MetricName::CostPerSuccessUsd => self.cost_per_success_usd,
            MetricName::GuardrailBlockRate => self.guardrail_block_rate,
        }
    }
}

/// Whether a value is the lower or the upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    AtLeast,
    AtMost,
}

fn rule(t: &Thresholds, m: MetricName) -> (Bound, f64, &'static str) {
    match m {
        MetricName::SuccessRate => (Bound::AtLeast, t.min_success_rate, "success rate"),
        MetricName::ErrorRate => (Bound::AtMost, t.max_error_rate, "error rate"),
        MetricName::P95LatencyMs => (Bound::AtMost, t.max_p95_latency_ms, "p95 latency (ms)"),
        MetricName::CostPerSuccessUsd => (
            Bound::AtMost,
            t.max_cost_per_success_usd,
            "cost per success (USD)",
        ),
        MetricName::GuardrailBlockRate => (
            Bound::AtMost,
            t.max_guardrail_block_rate,
            "guardrail block rate",
        ),
    }
}

const METRICS: [MetricName; 5] = [
    MetricName::SuccessRate,
    MetricName::ErrorRate,
    MetricName::P95LatencyMs,
    MetricName::CostPerSuccessUsd,
    MetricName::GuardrailBlockRate,
];

fn fmt(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Judges the canary over `ticks` (oldest first; each interval between two successive
/// ticks is one measurement). A metric fails when it was out of bounds in more than
/// `failure_limit` intervals; with no failing metric, fewer than `min_samples` canary
/// requests over the window is inconclusive; a failed eval gate fails the release.
pub fn analyze(
    thresholds: &Thresholds,
    ticks: &[Tick],
    failure_limit: u32,
    eval_gate: EvalGateStatus,
) -> ReleaseAnalysis {
    let ticks = &ticks[ticks.len().saturating_sub(KEPT_MEASUREMENTS + 1)..];
    let intervals: Vec<(i64, IntervalValues, IntervalValues)> = ticks
        .windows(2)
        .map(|w| {
            (
                w[1].at_ms,
                IntervalValues::between(&w[0].canary, &w[1].canary),
                IntervalValues::between(&w[0].stable, &w[1].stable),
            )
        })
        .collect();
    let samples_canary = intervals.iter().map(|(_, c, _)| c.requests).sum::<f64>() as u64;
    let samples_stable = intervals.iter().map(|(_, _, s)| s.requests).sum::<f64>() as u64;

    let metrics: Vec<MetricAnalysis> = METRICS
        .iter()
        .map(|&m| {
            let (bound, limit, label) = rule(thresholds, m);
            let measurements: Vec<Measurement> = intervals
                .iter()
                .map(|(at, c, s)| {
                    let canary = c.get(m);
                    Measurement {
                        at_ms: *at,
                        canary,
                        stable: s.get(m),
                        passed: canary.map(|v| match bound {
                            Bound::AtLeast => v >= limit,
                            Bound::AtMost => v <= limit,
                        }),
                    }
                })
                .collect();
            let failing: Vec<f64> = measurements
                .iter()
                .filter(|x| x.passed == Some(false))
                .filter_map(|x| x.canary)
                .collect();
            let failures = failing.len() as u32;
            let op = match bound {
                Bound::AtLeast => ">=",
                Bound::AtMost => "<=",
            };
            let condition = format!("canary {label} {op} {}", fmt(limit));
            let measured = measurements.iter().filter(|x| x.passed.is_some()).count();
            let (verdict, reason) = if failures > failure_limit {
                let values: Vec<String> = failing.iter().map(|v| fmt(*v)).collect();
                (
                    Verdict::Fail,
                    format!(
                        "{} failed {failures} times (limit {failure_limit}): canary {label} was {} against {op} {}",
                        m.as_str(),
                        values.join(", "),
                        fmt(limit)
                    ),
                )
            } else if measured == 0 {
                (
                    Verdict::Inconclusive,
                    format!("no canary {label} measured yet"),
                )
            } else {
                (
                    Verdict::Pass,
                    format!(
                        "{failures} of {measured} intervals out of bounds (limit {failure_limit})"
                    ),
                )
            };
            MetricAnalysis {
                metric: m,
                condition,
                limit,
                measurements,
                failures,
                failure_limit,
                verdict,
                reason,
            }
        })
        .collect();

    let failed: Vec<&MetricAnalysis> = metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Fail)
        .collect();
    let (verdict, reason) = if !failed.is_empty() {
        let reasons: Vec<&str> = failed.iter().map(|m| m.reason.as_str()).collect();
        (Verdict::Fail, reasons.join("; "))
    } else if eval_gate.verdict == GateVerdict::Fail {
        (
            Verdict::Fail,
            format!("eval gate failed: {}", eval_gate.reason),
        )
    } else if samples_canary < thresholds.min_samples {
        (
            Verdict::Inconclusive,
            format!(
                "only {samples_canary} canary requests measured, {} needed for a verdict",
                thresholds.min_samples
            ),
        )
    } else {
        let gate = match eval_gate.verdict {
            GateVerdict::Pass => "eval gate passed".to_string(),
            _ => format!("eval gate {}", eval_gate.reason),
        };
        (
            Verdict::Pass,
            format!("every metric within its limit over {samples_canary} canary requests; {gate}"),
        )
    };
    ReleaseAnalysis {
        verdict,
        reason,
        samples_canary,
        samples_stable,
        min_samples: thresholds.min_samples,
        metrics,
        eval_gate,
    }
}

/// The ticks of one canary version, bounded to the last `KEPT_MEASUREMENTS + 1`.
#[derive(Debug, Clone, Default)]
pub struct TickHistory {
    /// What the ticks measured: the canary's pod template image (a new canary starts over).
    pub canary_image: String,
    pub ticks: VecDeque<Tick>,
}

impl TickHistory {
    /// Adds a tick; a different canary image starts a new history.
    pub fn push(&mut self, canary_image: &str, tick: Tick) {
        if self.canary_image != canary_image {
            self.canary_image = canary_image.to_string();
            self.ticks.clear();
        }
        if self.ticks.back().is_some_and(|t| t.at_ms >= tick.at_ms) {
            return;
        }
        self.ticks.push_back(tick);
        while self.ticks.len() > KEPT_MEASUREMENTS + 1 {
            self.ticks.pop_front();
        }
    }

    pub fn as_slice(&mut self) -> &[Tick] {
        self.ticks.make_contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> Thresholds {
        Thresholds::parse(
            r#"{"max_error_rate":0.01,"max_p95_latency_ms":8000,"min_success_rate":0.95,
               "max_cost_per_success_usd":0.05,"max_guardrail_block_rate":0.05,"min_samples":200}"#,
        )
        .unwrap()
    }

    fn gate(verdict: GateVerdict) -> EvalGateStatus {
        EvalGateStatus {
            version: Some("0.2.0".into()),
            verdict,
            suite: Some("faq".into()),
            pass_rate: Some(0.97),
            threshold: Some(0.9),
            run_id: Some("run_1".into()),
            reason: "pass rate 0.97 >= 0.9".into(),
        }
    }

    /// Cumulative totals: `n` requests of which `err` errors, `blocked` blocked, all fast
    /// (0.1 s) except `slow` at 20 s; cost 0.001 per success.
    fn totals(n: f64, err: f64, blocked: f64, slow: f64) -> TrackTotals {
        let ok = n - err - blocked;
        TrackTotals {
            requests: n,
            successes: ok,
            errors: err,
            cost_usd: ok * 0.001,
            guardrail_blocks: blocked,
            latency: Some(Histogram {
                buckets: vec![
                    (0.25, n - slow),
                    (10.0, n - slow),
                    (30.0, n),
                    (f64::INFINITY, n),
                ],
                sum: 0.0,
                count: n,
            }),
        }
    }

    /// Ticks where each interval adds `per` requests with the given shares to the canary
    /// and a clean 2·`per` to stable.
    fn run(intervals: &[(f64, f64, f64, f64)]) -> Vec<Tick> {
        let mut c = (0.0, 0.0, 0.0, 0.0);
        let mut s = 0.0;
        let mut out = vec![Tick {
            at_ms: 0,
            canary: totals(0.0, 0.0, 0.0, 0.0),
            stable: totals(0.0, 0.0, 0.0, 0.0),
        }];
        for (i, (n, e, b, slow)) in intervals.iter().enumerate() {
            c = (c.0 + n, c.1 + e, c.2 + b, c.3 + slow);
            s += 2.0 * n;
            out.push(Tick {
                at_ms: (i as i64 + 1) * 10_000,
                canary: totals(c.0, c.1, c.2, c.3),
                stable: totals(s, 0.0, 0.0, 0.0),
            });
        }
        out
    }

    #[test]
    fn a_healthy_canary_with_enough_samples_passes() {
        let a = analyze(
            &thresholds(),
            &run(&[(100.0, 0.0, 1.0, 0.0), (150.0, 1.0, 0.0, 0.0)]),
            1,
            gate(GateVerdict::Pass),
        );
        assert_eq!(a.verdict, Verdict::Pass, "{}", a.reason);
        assert_eq!((a.samples_canary, a.samples_stable), (250, 500));
        let err = a
            .metrics
            .iter()
            .find(|m| m.metric == MetricName::ErrorRate)
            .unwrap();
        assert_eq!(err.measurements.len(), 2);
        assert_eq!(err.measurements[0].canary, Some(0.0));
        assert!((err.measurements[1].canary.unwrap() - 1.0 / 150.0).abs() < 1e-9);
        assert_eq!(err.measurements[1].stable, Some(0.0));
        assert_eq!(err.condition, "canary error rate <= 0.01");
        let p95 = a
            .metrics
            .iter()
            .find(|m| m.metric == MetricName::P95LatencyMs)
            .unwrap();
        assert!(p95.measurements[0].canary.unwrap() <= 250.0);
        let cost = a
            .metrics
            .iter()
            .find(|m| m.metric == MetricName::CostPerSuccessUsd)
            .unwrap();
        assert!((cost.measurements[0].canary.unwrap() - 0.001).abs() < 1e-12);
    }

    #[test]
    fn a_metric_over_its_limit_more_than_failure_limit_times_fails_naming_it() {
        // Error rate 10 % in two intervals; failure_limit 1 -> fail.
        let ticks = run(&[(100.0, 10.0, 0.0, 0.0), (100.0, 10.0, 0.0, 0.0)]);
        let a = analyze(&thresholds(), &ticks, 1, gate(GateVerdict::Pass));
        assert_eq!(a.verdict, Verdict::Fail);
        assert!(
            a.reason.contains("error_rate failed 2 times"),
            "{}",
            a.reason
        );
        assert!(a.reason.contains("0.1, 0.1"), "{}", a.reason);
        assert!(a.reason.contains("<= 0.01"), "{}", a.reason);
        // The success rate (0.9 < 0.95) fails too and is named as well.
        assert!(a.reason.contains("success_rate"), "{}", a.reason);
        // At the limit (one failing interval, limit 1) it has not failed yet.
        let a = analyze(&thresholds(), &ticks[..2], 1, gate(GateVerdict::Pass));
        assert_ne!(a.verdict, Verdict::Fail, "{}", a.reason);
        let err = a
            .metrics
            .iter()
            .find(|m| m.metric == MetricName::ErrorRate)
            .unwrap();
        assert_eq!((err.failures, err.verdict), (1, Verdict::Pass));
        assert_eq!(err.measurements[0].passed, Some(false));
    }

    #[test]
    fn latency_and_guardrail_blocks_fail_on_their_own() {
        // 10 % slow requests (20 s) -> p95 in the 10-30 s bucket.
        let a = analyze(
            &thresholds(),
            &run(&[
                (100.0, 0.0, 0.0, 10.0),
                (100.0, 0.0, 0.0, 10.0),
                (100.0, 0.0, 0.0, 10.0),
            ]),
            2,
            gate(GateVerdict::Pass),
        );
        assert_eq!(a.verdict, Verdict::Fail);
        assert!(
            a.reason.starts_with("p95_latency_ms failed 3 times"),
            "{}",
            a.reason
        );
        let a = analyze(
            &thresholds(),
            &run(&[(100.0, 0.0, 20.0, 0.0)]),
            0,
            gate(GateVerdict::Pass),
        );
        assert_eq!(a.verdict, Verdict::Fail);
        assert!(a.reason.contains("guardrail_block_rate"), "{}", a.reason);
    }

    #[test]
    fn too_few_samples_is_inconclusive_not_a_failure() {
        let a = analyze(
            &thresholds(),
            &run(&[(20.0, 0.0, 0.0, 0.0), (30.0, 0.0, 0.0, 0.0)]),
            1,
            gate(GateVerdict::Pass),
        );
        assert_eq!(a.verdict, Verdict::Inconclusive);
        assert_eq!(
            a.reason,
            "only 50 canary requests measured, 200 needed for a verdict"
        );
        // No ticks at all: inconclusive, every metric unmeasured.
        let a = analyze(&thresholds(), &[], 1, gate(GateVerdict::Missing));
        assert_eq!(a.verdict, Verdict::Inconclusive);
        assert!(a.metrics.iter().all(|m| m.verdict == Verdict::Inconclusive));
        // An interval without canary requests measures nothing (no rate of zero requests).
        let a = analyze(
            &thresholds(),
            &run(&[(0.0, 0.0, 0.0, 0.0)]),
            1,
            gate(GateVerdict::Pass),
        );
        assert_eq!(a.metrics[1].measurements[0].canary, None);
        assert_eq!(a.metrics[1].measurements[0].passed, None);
    }

    #[test]
    fn a_failed_eval_gate_fails_and_a_missing_one_is_reported() {
        let ticks = run(&[(300.0, 0.0, 0.0, 0.0)]);
        let mut g = gate(GateVerdict::Fail);
        g.reason = "pass rate 0.5 < 0.9".into();
        let a = analyze(&thresholds(), &ticks, 1, g);
        assert_eq!(a.verdict, Verdict::Fail);
        assert_eq!(a.reason, "eval gate failed: pass rate 0.5 < 0.9");
        let mut g = gate(GateVerdict::Missing);
        g.reason = "missing: no eval run for version 0.2.0".into();
        let a = analyze(&thresholds(), &ticks, 1, g);
        assert_eq!(a.verdict, Verdict::Pass);
        assert!(
            a.reason.contains("no eval run for version 0.2.0"),
            "{}",
            a.reason
        );
    }

    #[test]
    fn a_pod_restart_counts_from_zero_instead_of_going_negative() {
        let mut ticks = run(&[(300.0, 0.0, 0.0, 0.0)]);
        ticks.push(Tick {
            at_ms: 20_000,
            canary: totals(50.0, 0.0, 0.0, 0.0),
            stable: totals(700.0, 0.0, 0.0, 0.0),
        });
        let a = analyze(&thresholds(), &ticks, 1, gate(GateVerdict::Pass));
        assert_eq!(a.samples_canary, 350);
        assert!(a.metrics.iter().all(|m| {
            m.measurements
                .iter()
                .all(|x| x.canary.is_none_or(|v| v >= 0.0))
        }));
    }

    #[test]
    fn thresholds_are_parsed_strictly() {
        assert_eq!(thresholds().min_samples, 200);
        for (bad, needle) in [
            (r#"{"max_error_rate":0.01}"#, "missing field"),
            ("not json", "not a valid analysis object"),
            (
                r#"{"max_error_rate":2,"max_p95_latency_ms":8000,"min_success_rate":0.95,"max_cost_per_success_usd":0.05,"max_guardrail_block_rate":0.05,"min_samples":200}"#,
                "max_error_rate must be a fraction",
            ),
            (
                r#"{"max_error_rate":0.01,"max_p95_latency_ms":8000,"min_success_rate":0.95,"max_cost_per_success_usd":0.05,"max_guardrail_block_rate":0.05,"min_samples":0}"#,
                "min_samples must be >= 1",
            ),
            (
                r#"{"max_error_rate":0.01,"max_p95_latency_ms":8000,"min_success_rate":0.95,"max_cost_per_success_usd":0.05,"max_guardrail_block_rate":0.05,"min_samples":1,"extra":1}"#,
                "unknown field",
            ),
        ] {
            let e = Thresholds::parse(bad).unwrap_err();
            assert_eq!(e.code().as_str(), "invalid");
            assert!(e.to_string().contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn totals_of_a_scrape_sum_statuses_and_pods() {
        let text = "# TYPE agent_requests counter\n\
            agent_requests_total{workflow=\"faq\",status=\"success\"} 8\n\
            agent_requests_total{workflow=\"faq\",status=\"approval_required\"} 1\n\
            agent_requests_total{workflow=\"faq\",status=\"blocked\"} 1\n\
            agent_requests_total{workflow=\"faq\",status=\"provider_unavailable\"} 2\n\
            # TYPE agent_cost_usd counter\n\
            agent_cost_usd_total 0.09\n\
            # TYPE agent_request_duration_seconds histogram\n\
            agent_request_duration_seconds_bucket{le=\"1\"} 10\n\
            agent_request_duration_seconds_bucket{le=\"+Inf\"} 12\n\
            agent_request_duration_seconds_sum 5\n\
            agent_request_duration_seconds_count 12\n";
        let one = TrackTotals::of(&crate::prom::parse(text).unwrap());
        assert_eq!((one.requests, one.successes, one.errors), (12.0, 9.0, 2.0));
        let mut sum = one.clone();
        sum.add(&one);
        assert_eq!(sum.requests, 24.0);
        assert_eq!(
            sum.latency.unwrap().buckets,
            vec![(1.0, 20.0), (f64::INFINITY, 24.0)]
        );
    }

    #[test]
    fn history_starts_over_for_a_new_canary_and_stays_bounded() {
        let mut h = TickHistory::default();
        for i in 0..100 {
            h.push(
                "img:1",
                Tick {
                    at_ms: i,
                    canary: TrackTotals::default(),
                    stable: TrackTotals::default(),
                },
            );
        }
        assert_eq!(h.as_slice().len(), KEPT_MEASUREMENTS + 1);
        h.push(
            "img:2",
            Tick {
                at_ms: 200,
                canary: TrackTotals::default(),
                stable: TrackTotals::default(),
            },
        );
        assert_eq!(h.as_slice().len(), 1);
    }
}
