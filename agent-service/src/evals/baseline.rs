//! Comparison with a baseline run of the same suite: which cases flipped between pass and
//! fail, which were added or removed, and how each metric moved.

use serde::{Deserialize, Serialize};

use super::result::CaseResult;
use super::score::Scores;

/// A case whose verdict changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Flip {
    pub case_id: String,
    /// `pass` or `fail` in the baseline run.
    pub before: String,
    /// `pass` or `fail` in this run.
    pub after: String,
}

/// This run minus the baseline, per metric (positive = went up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deltas {
    pub pass_rate: f64,
    /// Null unless both runs have adversarial cases.
    pub policy_compliance: Option<f64>,
    /// Null unless both runs have a citation rate.
    pub citation_rate: Option<f64>,
    pub latency_p50_ms: i64,
    pub latency_p95_ms: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BaselineDiff {
    pub baseline_run_id: String,
    /// The release the baseline ran against.
    pub baseline_release_version: String,
    pub baseline_pass_rate: f64,
    /// Cases that passed in one run and failed in the other, in this run's order.
    pub flipped: Vec<Flip>,
    /// How many of `flipped` went from pass to fail.
    pub regressions: u64,
    /// Case ids only in this run.
    pub added: Vec<String>,
    /// Case ids only in the baseline.
    pub removed: Vec<String>,
    pub deltas: Deltas,
}

/// The baseline side of a comparison.
pub struct Baseline<'a> {
    pub run_id: &'a str,
    pub release_version: &'a str,
    pub scores: &'a Scores,
    pub cases: &'a [CaseResult],
}

fn verdict(passed: bool) -> String {
    if passed { "pass" } else { "fail" }.into()
}

pub fn compare(base: &Baseline, scores: &Scores, cases: &[CaseResult]) -> BaselineDiff {
    let find = |id: &str| base.cases.iter().find(|c| c.case_id == id);
    let mut flipped = Vec::new();
    let mut added = Vec::new();
    for case in cases {
        match find(&case.case_id) {
            None => added.push(case.case_id.clone()),
            Some(before) if before.passed != case.passed => flipped.push(Flip {
                case_id: case.case_id.clone(),
                before: verdict(before.passed),
                after: verdict(case.passed),
            }),
            Some(_) => {}
        }
    }
    let removed = base
        .cases
        .iter()
        .filter(|b| !cases.iter().any(|c| c.case_id == b.case_id))
        .map(|b| b.case_id.clone())
        .collect();
    let both = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    let b = base.scores;
    BaselineDiff {
        baseline_run_id: base.run_id.to_string(),
        baseline_release_version: base.release_version.to_string(),
        baseline_pass_rate: b.pass_rate,
        regressions: flipped.iter().filter(|f| f.after == "fail").count() as u64,
        flipped,
        added,
        removed,
        deltas: Deltas {
            pass_rate: scores.pass_rate - b.pass_rate,
            policy_compliance: both(scores.policy_compliance, b.policy_compliance),
            citation_rate: both(scores.citation_rate, b.citation_rate),
            latency_p50_ms: scores.latency_p50_ms as i64 - b.latency_p50_ms as i64,
            latency_p95_ms: scores.latency_p95_ms as i64 - b.latency_p95_ms as i64,
            total_tokens: scores.total_tokens as i64 - b.total_tokens as i64,
            cost_usd: scores.cost_usd - b.cost_usd,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evals::score::{score, tests::result};

    #[test]
    fn lists_flips_both_ways_and_added_and_removed_cases() {
        let mut before = vec![
            result("a", 10),
            result("b", 10),
            result("c", 10),
            result("gone", 10),
        ];
        before[1].passed = false;
        let mut after = vec![
            result("a", 30),
            result("b", 30),
            result("c", 30),
            result("new", 30),
        ];
        after[0].passed = false;
        after[3].passed = false;
        let (sb, sa) = (score(&before), score(&after));
        let diff = compare(
            &Baseline {
                run_id: "evr_1",
                release_version: "1.0.0",
                scores: &sb,
                cases: &before,
            },
            &sa,
            &after,
        );
        assert_eq!(
            diff.flipped,
            [
                Flip {
                    case_id: "a".into(),
                    before: "pass".into(),
                    after: "fail".into()
                },
                Flip {
                    case_id: "b".into(),
                    before: "fail".into(),
                    after: "pass".into()
                },
            ]
        );
        assert_eq!(diff.regressions, 1);
        assert_eq!(diff.added, ["new"]);
        assert_eq!(diff.removed, ["gone"]);
        assert_eq!(diff.baseline_run_id, "evr_1");
        assert_eq!(diff.baseline_pass_rate, 0.75);
        assert_eq!(diff.deltas.pass_rate, -0.25);
        assert_eq!(diff.deltas.latency_p95_ms, 20);
        assert_eq!(diff.deltas.total_tokens, 0);
        assert_eq!(diff.deltas.policy_compliance, None);
    }

    #[test]
    fn identical_runs_have_no_flips() {
        let cases = vec![result("a", 5), result("b", 6)];
        let s = score(&cases);
        let diff = compare(
            &Baseline {
                run_id: "evr_0",
                release_version: "1",
                scores: &s,
                cases: &cases,
            },
            &s,
            &cases,
        );
        assert!(diff.flipped.is_empty() && diff.added.is_empty() && diff.removed.is_empty());
        assert_eq!(diff.regressions, 0);
        assert_eq!(diff.deltas.pass_rate, 0.0);
    }
}
