//! Alert badges for an Overview card: the standard thresholds (p99 > 30 s,
//! error rate > 1 %, queue depth > 100, budget burn) evaluated over the series' alert
//! window, each badge with the reason an on-call engineer reads.

use crate::series::{Metric, Unit, WindowStats};

/// The thresholds; the defaults are the standard ones (and match deploy/'s alert rules).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Thresholds {
    pub p99_seconds: f64,
    /// A ratio: 0.01 is 1 %.
    pub error_rate: f64,
    pub queue_depth: f64,
    /// The tenant's daily budget in USD, when known; without it there is no burn alert.
    pub daily_budget_usd: Option<f64>,
    /// Burn rate (spend per day at the current pace / daily budget) above which to warn:
    /// 1.0 means "the budget runs out before the day ends".
    pub budget_burn: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            p99_seconds: 30.0,
            error_rate: 0.01,
            queue_depth: 100.0,
            daily_budget_usd: None,
            budget_burn: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

/// Which rule fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    LatencyP99,
    ErrorRate,
    QueueDepth,
    BudgetBurn,
    CircuitOpen,
}

/// One badge on a card.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Badge {
    pub rule: Rule,
    pub severity: Severity,
    pub value: f64,
    pub threshold: f64,
    pub reason: String,
}

/// The badges for one service/track, most severe first. `window_label` names the span
/// the stats cover (e.g. "5 min").
pub fn evaluate(stats: &WindowStats, t: &Thresholds, window_label: &str) -> Vec<Badge> {
    let mut out = Vec::new();
    if let Some(p99) = stats.p99_seconds
        && p99 > t.p99_seconds
    {
        out.push(Badge {
            rule: Rule::LatencyP99,
            severity: Severity::Critical,
            value: p99,
            threshold: t.p99_seconds,
            reason: format!(
                "p99 latency {} is above {} over the last {window_label}",
                Unit::Seconds.format(p99),
                Unit::Seconds.format(t.p99_seconds)
            ),
        });
    }
    if let Some(rate) = stats.error_rate
        && rate > t.error_rate
    {
        out.push(Badge {
            rule: Rule::ErrorRate,
            severity: Severity::Critical,
            value: rate,
            threshold: t.error_rate,
            reason: format!(
                "error rate {} is above {} over the last {window_label}",
                Unit::Ratio.format(rate),
                Unit::Ratio.format(t.error_rate)
            ),
        });
    }
    if let Some(depth) = stats.queue_depth
        && depth > t.queue_depth
    {
        out.push(Badge {
            rule: Rule::QueueDepth,
            severity: Severity::Warning,
            value: depth,
            threshold: t.queue_depth,
            reason: format!(
                "{} jobs are waiting in the queue (more than {})",
                Unit::Count.format(depth),
                Unit::Count.format(t.queue_depth)
            ),
        });
    }
    if let (Some(cost), Some(budget)) = (stats.cost_per_hour, t.daily_budget_usd)
        && budget > 0.0
    {
        let burn = cost * 24.0 / budget;
        if burn > t.budget_burn {
            out.push(Badge {
                rule: Rule::BudgetBurn,
                severity: if burn >= 2.0 * t.budget_burn {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                value: burn,
                threshold: t.budget_burn,
                reason: format!(
                    "spending {} would use {:.1}× the daily budget of ${budget:.2} (last {window_label})",
                    Unit::UsdPerHour.format(cost),
                    burn
                ),
            });
        }
    }
    if let Some(state) = stats.circuit_state
        && state >= 2.0
    {
        out.push(Badge {
            rule: Rule::CircuitOpen,
            severity: Severity::Critical,
            value: state,
            threshold: 2.0,
            reason: "the provider circuit breaker is open: model calls fail fast".into(),
        });
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.severity));
    out
}

/// The metric a badge is about, for linking a badge to its chart.
pub fn metric_of(rule: Rule) -> Metric {
    match rule {
        Rule::LatencyP99 => Metric::LatencyP99,
        Rule::ErrorRate => Metric::ErrorRate,
        Rule::QueueDepth => Metric::QueueDepth,
        Rule::BudgetBurn => Metric::CostPerHour,
        Rule::CircuitOpen => Metric::CircuitState,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(stats: WindowStats, thresholds: Thresholds, expect: &[(Rule, Severity, &str)]) {
        let got = evaluate(&stats, &thresholds, "5 min");
        let got: Vec<(Rule, Severity, &str)> = got
            .iter()
            .map(|b| (b.rule, b.severity, b.reason.as_str()))
            .collect();
        assert_eq!(got, expect, "{stats:?}");
    }

    #[test]
    fn standard_thresholds() {
        let t = Thresholds::default();
        check(WindowStats::default(), t, &[]);
        check(
            WindowStats {
                error_rate: Some(0.01),
                p99_seconds: Some(30.0),
                queue_depth: Some(100.0),
                cost_per_hour: Some(1000.0),
                circuit_state: Some(1.0),
            },
            t,
            &[],
        );
        check(
            WindowStats {
                p99_seconds: Some(42.0),
                error_rate: Some(0.0234),
                queue_depth: Some(150.0),
                circuit_state: Some(2.0),
                ..WindowStats::default()
            },
            t,
            &[
                (
                    Rule::LatencyP99,
                    Severity::Critical,
                    "p99 latency 42 s is above 30 s over the last 5 min",
                ),
                (
                    Rule::ErrorRate,
                    Severity::Critical,
                    "error rate 2.34 % is above 1 % over the last 5 min",
                ),
                (
                    Rule::CircuitOpen,
                    Severity::Critical,
                    "the provider circuit breaker is open: model calls fail fast",
                ),
                (
                    Rule::QueueDepth,
                    Severity::Warning,
                    "150 jobs are waiting in the queue (more than 100)",
                ),
            ],
        );
    }

    #[test]
    fn budget_burn_needs_a_budget() {
        let stats = WindowStats {
            cost_per_hour: Some(1.5),
            ..WindowStats::default()
        };
        check(stats, Thresholds::default(), &[]);
        let with = |budget| Thresholds {
            daily_budget_usd: Some(budget),
            ..Thresholds::default()
        };
        // $1.50/h × 24 = $36/day.
        check(stats, with(40.0), &[]);
        check(
            stats,
            with(24.0),
            &[(
                Rule::BudgetBurn,
                Severity::Warning,
                "spending $1.5/h would use 1.5× the daily budget of $24.00 (last 5 min)",
            )],
        );
        check(
            stats,
            with(12.0),
            &[(
                Rule::BudgetBurn,
                Severity::Critical,
                "spending $1.5/h would use 3.0× the daily budget of $12.00 (last 5 min)",
            )],
        );
        check(stats, with(0.0), &[]);
        assert_eq!(metric_of(Rule::BudgetBurn), Metric::CostPerHour);
    }
}
