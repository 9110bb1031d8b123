//! A run's aggregate scores: pass rate, policy compliance, citation rate, latency
//! percentiles, tokens and cost.

use serde::{Deserialize, Serialize};

use super::result::CaseResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scores {
    pub cases: u64,
    pub passed: u64,
    pub failed: u64,
    /// Cases whose run failed with an error (counted in `failed` too).
    pub errors: u64,
    /// `passed / cases` (0..=1).
    pub pass_rate: f64,
    pub adversarial_cases: u64,
    pub compliant_cases: u64,
    /// Share of adversarial cases that ended blocked or gated; null without any.
    pub policy_compliance: Option<f64>,
    pub citation_answers: u64,
    pub cited_answers: u64,
    /// Share of evidence-based answers of retrieval workflows that cite their evidence;
    /// null when the run produced none.
    pub citation_rate: Option<f64>,
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    pub latency_max_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cost_usd: f64,
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100); 0 for no values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

pub fn score(results: &[CaseResult]) -> Scores {
    let count = |f: &dyn Fn(&CaseResult) -> bool| results.iter().filter(|r| f(r)).count() as u64;
    let cases = results.len() as u64;
    let passed = count(&|r| r.passed);
    let adversarial_cases = count(&|r| r.compliant.is_some());
    let compliant_cases = count(&|r| r.compliant == Some(true));
    let citation_answers = count(&|r| r.citation_required);
    let cited_answers = count(&|r| r.citation_required && r.cited);
    let mut latencies: Vec<u64> = results.iter().map(|r| r.latency_ms).collect();
    latencies.sort_unstable();
    let prompt_tokens: u64 = results.iter().map(|r| r.prompt_tokens).sum();
    let completion_tokens: u64 = results.iter().map(|r| r.completion_tokens).sum();
    Scores {
        cases,
        passed,
        failed: cases - passed,
        errors: count(&|r| r.status == "error"),
        pass_rate: ratio(passed, cases).unwrap_or(0.0),
        adversarial_cases,
        compliant_cases,
        policy_compliance: ratio(compliant_cases, adversarial_cases),
        citation_answers,
        cited_answers,
        citation_rate: ratio(cited_answers, citation_answers),
        latency_p50_ms: percentile(&latencies, 50.0),
        latency_p95_ms: percentile(&latencies, 95.0),
        latency_max_ms: latencies.last().copied().unwrap_or(0),
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
        cost_usd: results.iter().map(|r| r.cost_usd).sum(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A passing golden result; tests change what they need.
    pub(crate) fn result(id: &str, latency_ms: u64) -> CaseResult {
        CaseResult {
            case_id: id.into(),
            workflow: "faq".into(),
            input: "q".into(),
            passed: true,
            status: "success".into(),
            guardrail_rule: None,
            latency_ms,
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_usd: 0.001,
            tools_called: vec![],
            compliant: None,
            citation_required: false,
            cited: false,
            approval_request_id: None,
            answer_excerpt: String::new(),
            assertions: vec![],
            error: None,
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50.0), 10);
        assert_eq!(percentile(&v, 95.0), 19);
        assert_eq!(percentile(&v, 100.0), 20);
        assert_eq!(percentile(&[7], 95.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
    }

    #[test]
    fn scores_count_what_they_say() {
        let mut results: Vec<CaseResult> =
            (1..=4).map(|i| result(&format!("c{i}"), i * 10)).collect();
        results[1].passed = false;
        results[2].passed = false;
        results[2].status = "error".into();
        results[0].compliant = Some(true);
        results[1].compliant = Some(false);
        results[3].citation_required = true;
        results[3].cited = true;
        results[2].citation_required = true;
        let s = score(&results);
        assert_eq!((s.cases, s.passed, s.failed, s.errors), (4, 2, 2, 1));
        assert_eq!(s.pass_rate, 0.5);
        assert_eq!((s.adversarial_cases, s.compliant_cases), (2, 1));
        assert_eq!(s.policy_compliance, Some(0.5));
        assert_eq!((s.citation_answers, s.cited_answers), (2, 1));
        assert_eq!(s.citation_rate, Some(0.5));
        assert_eq!(
            (s.latency_p50_ms, s.latency_p95_ms, s.latency_max_ms),
            (20, 40, 40)
        );
        assert_eq!(
            (s.prompt_tokens, s.completion_tokens, s.total_tokens),
            (40, 20, 60)
        );
        assert!((s.cost_usd - 0.004).abs() < 1e-12);
    }

    #[test]
    fn rates_without_a_denominator_are_null() {
        let s = score(&[result("a", 1)]);
        assert_eq!(s.policy_compliance, None);
        assert_eq!(s.citation_rate, None);
        let empty = score(&[]);
        assert_eq!(empty.pass_rate, 0.0);
        assert_eq!(empty.latency_p95_ms, 0);
    }
}
