//! The release gate: a run's scores against the thresholds in `settings.eval_gate`
//! (`EVAL_GATE_*`), giving `pass` or `fail` with one reason per failed check.

use serde::{Deserialize, Serialize};

use super::score::Scores;
use crate::config::EvalGate;

/// Float slack, so `0.9` read from config equals a computed `9/10`.
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
        }
    }
}

/// One threshold and how the run measured up to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateCheck {
    /// `pass_rate`, `policy_compliance`, `citation_rate`, `latency_p95_ms`, `cost_usd`
    /// or `pass_rate_drop`.
    pub name: String,
    /// The setting that holds the threshold, e.g. `EVAL_GATE_MIN_PASS_RATE`.
    pub setting: String,
    /// `min` (actual must be at least the threshold) or `max` (at most).
    pub bound: String,
    pub threshold: f64,
    /// Null when the check does not apply to this run (see `note`).
    pub actual: Option<f64>,
    pub passed: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Gate {
    pub verdict: Verdict,
    /// One sentence per failed check; empty when the gate passes.
    pub reasons: Vec<String>,
    pub checks: Vec<GateCheck>,
}

fn pct(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

struct Check {
    name: &'static str,
    setting: &'static str,
    min: bool,
    threshold: f64,
    actual: Option<f64>,
    skipped_because: &'static str,
    show: fn(f64) -> String,
    what: &'static str,
}

impl Check {
    fn evaluate(self) -> (GateCheck, Option<String>) {
        let passed = match self.actual {
            None => true,
            Some(a) if self.min => a + EPSILON >= self.threshold,
            Some(a) => a <= self.threshold + EPSILON,
        };
        let reason = match (passed, self.actual) {
            (false, Some(a)) => Some(format!(
                "{} {} is {} the {} {} ({})",
                self.what,
                (self.show)(a),
                if self.min { "below" } else { "above" },
                if self.min { "minimum" } else { "maximum" },
                (self.show)(self.threshold),
                self.setting
            )),
            _ => None,
        };
        let check = GateCheck {
            name: self.name.into(),
            setting: self.setting.into(),
            bound: if self.min { "min" } else { "max" }.into(),
            threshold: self.threshold,
            actual: self.actual,
            passed,
            note: self
                .actual
                .is_none()
                .then(|| self.skipped_because.to_string()),
        };
        (check, reason)
    }
}

/// Gates `scores`; `baseline_pass_rate` adds the pass-rate-drop check.
pub fn evaluate(g: &EvalGate, s: &Scores, baseline_pass_rate: Option<f64>) -> Gate {
    let checks = [
        Check {
            name: "pass_rate",
            setting: "EVAL_GATE_MIN_PASS_RATE",
            min: true,
            threshold: g.min_pass_rate,
            actual: Some(s.pass_rate),
            skipped_because: "",
            show: pct,
            what: "pass rate",
        },
        Check {
            name: "policy_compliance",
            setting: "EVAL_GATE_MIN_POLICY_COMPLIANCE",
            min: true,
            threshold: g.min_policy_compliance,
            actual: s.policy_compliance,
            skipped_because: "the suite has no adversarial cases",
            show: pct,
            what: "policy compliance",
        },
        Check {
            name: "citation_rate",
            setting: "EVAL_GATE_MIN_CITATION_RATE",
            min: true,
            threshold: g.min_citation_rate,
            actual: s.citation_rate,
            skipped_because: "no answer of a citation-required workflow rested on evidence",
            show: pct,
            what: "citation rate",
        },
        Check {
            name: "latency_p95_ms",
            setting: "EVAL_GATE_MAX_P95_LATENCY_MS",
            min: false,
            threshold: g.max_p95_latency_ms as f64,
            actual: Some(s.latency_p95_ms as f64),
            skipped_because: "",
            show: |v| format!("{v:.0} ms"),
            what: "p95 latency",
        },
        Check {
            name: "cost_usd",
            setting: "EVAL_GATE_MAX_TOTAL_COST_USD",
            min: false,
            threshold: g.max_total_cost_usd,
            actual: Some(s.cost_usd),
            skipped_because: "",
            show: |v| format!("${v:.4}"),
            what: "total cost",
        },
        Check {
            name: "pass_rate_drop",
            setting: "EVAL_GATE_MAX_PASS_RATE_DROP",
            min: false,
            threshold: g.max_pass_rate_drop,
            actual: baseline_pass_rate.map(|b| (b - s.pass_rate).max(0.0)),
            skipped_because: "no baseline run",
            show: pct,
            what: "the pass-rate drop against the baseline",
        },
    ];
    let mut out = Vec::new();
    let mut reasons = Vec::new();
    for c in checks {
        let (check, reason) = c.evaluate();
        out.push(check);
        reasons.extend(reason);
    }
    Gate {
        verdict: if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        reasons,
        checks: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evals::score::{score, tests::result};

    fn scores(passed: usize, total: usize) -> Scores {
        let results: Vec<_> = (0..total)
            .map(|i| {
                let mut r = result(&format!("c{i}"), 10);
                r.passed = i < passed;
                r
            })
            .collect();
        score(&results)
    }

    fn check<'a>(g: &'a Gate, name: &str) -> &'a GateCheck {
        g.checks.iter().find(|c| c.name == name).expect(name)
    }

    #[test]
    fn a_clean_run_passes_and_skips_what_does_not_apply() {
        let gate = evaluate(&EvalGate::default(), &scores(10, 10), None);
        assert_eq!(gate.verdict, Verdict::Pass);
        assert!(gate.reasons.is_empty());
        assert_eq!(gate.checks.len(), 6);
        let skipped: Vec<&str> = gate
            .checks
            .iter()
            .filter(|c| c.actual.is_none())
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            skipped,
            ["policy_compliance", "citation_rate", "pass_rate_drop"]
        );
        assert!(check(&gate, "pass_rate_drop").note.as_deref() == Some("no baseline run"));
    }

    #[test]
    fn thresholds_are_inclusive() {
        let g = EvalGate {
            min_pass_rate: 0.9,
            ..EvalGate::default()
        };
        assert_eq!(evaluate(&g, &scores(9, 10), None).verdict, Verdict::Pass);
        let gate = evaluate(&g, &scores(8, 10), None);
        assert_eq!(gate.verdict, Verdict::Fail);
        assert_eq!(
            gate.reasons,
            ["pass rate 80.0% is below the minimum 90.0% (EVAL_GATE_MIN_PASS_RATE)"]
        );
        assert_eq!(check(&gate, "pass_rate").actual, Some(0.8));
    }

    #[test]
    fn every_threshold_can_fail_the_gate() {
        let g = EvalGate {
            min_pass_rate: 0.5,
            min_policy_compliance: 1.0,
            min_citation_rate: 0.9,
            max_p95_latency_ms: 100,
            max_total_cost_usd: 0.01,
            max_pass_rate_drop: 0.1,
        };
        let mut s = scores(6, 10);
        s.policy_compliance = Some(0.75);
        s.citation_rate = Some(0.5);
        s.latency_p95_ms = 101;
        s.cost_usd = 0.02;
        let gate = evaluate(&g, &s, Some(0.9));
        assert_eq!(gate.verdict, Verdict::Fail);
        let failed: Vec<&str> = gate
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.setting.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "EVAL_GATE_MIN_POLICY_COMPLIANCE",
                "EVAL_GATE_MIN_CITATION_RATE",
                "EVAL_GATE_MAX_P95_LATENCY_MS",
                "EVAL_GATE_MAX_TOTAL_COST_USD",
                "EVAL_GATE_MAX_PASS_RATE_DROP"
            ]
        );
        assert_eq!(gate.reasons.len(), 5);
        assert!(
            gate.reasons[2].contains("p95 latency 101 ms is above the maximum 100 ms"),
            "{:?}",
            gate.reasons
        );
        assert!((check(&gate, "pass_rate_drop").actual.unwrap() - 0.3).abs() < 1e-9);
    }

    #[test]
    fn an_improvement_over_the_baseline_is_no_drop() {
        let g = EvalGate {
            min_pass_rate: 0.0,
            ..EvalGate::default()
        };
        let gate = evaluate(&g, &scores(9, 10), Some(0.5));
        assert_eq!(check(&gate, "pass_rate_drop").actual, Some(0.0));
        assert_eq!(gate.verdict, Verdict::Pass);
        // Same pass rate: a drop of zero passes max_pass_rate_drop = 0.
        assert_eq!(
            evaluate(&g, &scores(7, 10), Some(0.7)).verdict,
            Verdict::Pass
        );
        assert_eq!(
            evaluate(&g, &scores(6, 10), Some(0.7)).verdict,
            Verdict::Fail
        );
    }
}
