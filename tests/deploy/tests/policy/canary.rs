//! The canary plan annotations: what parses, and what each bad value says.

use std::collections::BTreeMap;

use deploy_policy::canary::{ANALYSIS, Analysis, CanaryPlan, STEP, STEPS};
use deploy_policy::policy::CANARY;

use crate::overlays;

const GOOD_ANALYSIS: &str = r#"{"max_error_rate":0.01,"max_p95_latency_ms":8000,"min_success_rate":0.95,"max_cost_per_success_usd":0.05,"max_guardrail_block_rate":0.05,"min_samples":200}"#;

fn plan(steps: &str, step: &str, analysis: &str) -> Result<CanaryPlan, String> {
    let annotations: BTreeMap<String, String> = [
        (STEPS.to_string(), steps.to_string()),
        (STEP.to_string(), step.to_string()),
        (ANALYSIS.to_string(), analysis.to_string()),
    ]
    .into();
    CanaryPlan::from_annotations(&annotations)
}

#[test]
fn a_good_plan_parses_into_its_values() {
    let p = plan("10,25,50,100", "2", GOOD_ANALYSIS).expect("valid plan");
    assert_eq!(p.steps, [10, 25, 50, 100]);
    assert_eq!(p.step, 2);
    assert_eq!(
        p.analysis,
        Analysis {
            max_error_rate: 0.01,
            max_p95_latency_ms: 8000,
            min_success_rate: 0.95,
            max_cost_per_success_usd: 0.05,
            max_guardrail_block_rate: 0.05,
            min_samples: 200,
        }
    );
}

#[test]
fn bad_plans_say_what_is_wrong() {
    let bad_analysis = |from: &str, to: &str| GOOD_ANALYSIS.replace(from, to);
    let cases: &[(&str, &str, String, &str)] = &[
        (
            "10,25,50",
            "0",
            GOOD_ANALYSIS.into(),
            "the last step must be 100",
        ),
        (
            "10,x,100",
            "0",
            GOOD_ANALYSIS.into(),
            "\"x\" is not a percentage",
        ),
        ("0,100", "0", GOOD_ANALYSIS.into(), "from 1 to 100"),
        ("50,25,100", "0", GOOD_ANALYSIS.into(), "strictly increase"),
        (
            "10,100",
            "3",
            GOOD_ANALYSIS.into(),
            "past the last of the 2 steps",
        ),
        (
            "10,100",
            "-1",
            GOOD_ANALYSIS.into(),
            "is not a whole number",
        ),
        (
            "10,100",
            "0",
            bad_analysis("\"max_error_rate\":0.01", "\"max_error_rate\":1.5"),
            "max_error_rate=1.5 must be a fraction",
        ),
        (
            "10,100",
            "0",
            bad_analysis("\"min_samples\":200", "\"min_samples\":0"),
            "min_samples must be at least 1",
        ),
        (
            "10,100",
            "0",
            bad_analysis(",\"min_samples\":200", ""),
            "missing field `min_samples`",
        ),
        (
            "10,100",
            "0",
            bad_analysis("\"max_p95_latency_ms\":8000", "\"max_p95_latency_ms\":0"),
            "max_p95_latency_ms must be above 0",
        ),
        (
            "10,100",
            "0",
            bad_analysis(
                "\"max_cost_per_success_usd\":0.05",
                "\"max_cost_per_success_usd\":-1",
            ),
            "max_cost_per_success_usd=-1 must be a number >= 0",
        ),
    ];
    for (steps, step, analysis, phrase) in cases {
        match plan(steps, step, analysis) {
            Ok(p) => panic!(
                "steps {steps:?} step {step:?} analysis {analysis} parsed as {p:?}; expected an error with {phrase:?}"
            ),
            Err(e) => assert!(
                e.contains(phrase),
                "steps {steps:?} step {step:?}: error {e:?} should contain {phrase:?}"
            ),
        }
    }
    let missing = CanaryPlan::from_annotations(&BTreeMap::new()).unwrap_err();
    assert!(
        missing.contains(STEPS) && missing.contains("missing"),
        "{missing}"
    );
}

#[test]
fn every_overlay_starts_with_an_idle_canary_whose_plan_ends_at_full_traffic() {
    for b in overlays() {
        let d = b
            .deployment(CANARY)
            .unwrap_or_else(|| panic!("overlay {}: no {CANARY}", b.name));
        let annotations = d.metadata.annotations.clone().unwrap_or_default();
        let p = CanaryPlan::from_annotations(&annotations)
            .unwrap_or_else(|e| panic!("overlay {}: {e}", b.name));
        assert_eq!(
            p.step, 0,
            "overlay {}: a rendered canary has not started",
            b.name
        );
        assert_eq!(p.steps.last(), Some(&100), "overlay {}", b.name);
    }
}
