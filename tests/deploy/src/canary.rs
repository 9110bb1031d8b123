//! The canary plan: annotations on the canary Deployment that every Flightdeck console
//! reads (deploy/README.md documents each key).

use std::collections::BTreeMap;

use serde::Deserialize;

/// Traffic steps in percent, e.g. `"10,25,50,100"`.
pub const STEPS: &str = "flightdeck.dev/canary-steps";
/// How many steps are done: `"0"` = no canary traffic; `i` = at `steps[i-1]` percent.
pub const STEP: &str = "flightdeck.dev/canary-step";
/// The analysis thresholds, a JSON object ([`Analysis`]).
pub const ANALYSIS: &str = "flightdeck.dev/analysis";

/// The thresholds canary-vs-stable analysis judges each step by.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Highest error rate (5xx-class statuses / all requests) the canary may show.
    pub max_error_rate: f64,
    /// Highest p95 latency of the canary, from the histogram buckets, in milliseconds.
    pub max_p95_latency_ms: u64,
    /// Lowest share of runs ending `success` (or `approval_required`).
    pub min_success_rate: f64,
    /// Highest model cost per successful run, in US dollars.
    pub max_cost_per_success_usd: f64,
    /// Highest share of requests a guardrail blocked.
    pub max_guardrail_block_rate: f64,
    /// Requests the canary must have served before a verdict; fewer = inconclusive.
    pub min_samples: u64,
}

/// The parsed plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryPlan {
    pub steps: Vec<u8>,
    pub step: usize,
    pub analysis: Analysis,
}

impl CanaryPlan {
    /// Reads and validates the three annotations; the error names the key and the fix.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |key: &str| {
            annotations
                .get(key)
                .ok_or_else(|| format!("annotation {key} is missing"))
        };
        let steps = parse_steps(get(STEPS)?)?;
        let step_text = get(STEP)?;
        let step: usize = step_text.trim().parse().map_err(|_| {
            format!("{STEP}={step_text:?} is not a whole number (0 = no canary traffic)")
        })?;
        if step > steps.len() {
            return Err(format!(
                "{STEP}={step} is past the last of the {} steps in {STEPS}",
                steps.len()
            ));
        }
        let analysis_text = get(ANALYSIS)?;
        let analysis: Analysis = serde_json::from_str(analysis_text).map_err(|e| {
            format!("{ANALYSIS} is not the expected JSON object: {e} (in {analysis_text})")
        })?;
        check_analysis(&analysis)?;
        Ok(CanaryPlan {
            steps,
            step,
            analysis,
        })
    }
}

fn parse_steps(text: &str) -> Result<Vec<u8>, String> {
    let steps: Vec<u8> = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<u8>()
                .map_err(|_| format!("{STEPS}={text:?}: {s:?} is not a percentage from 1 to 100"))
        })
        .collect::<Result<_, _>>()?;
    if steps.iter().any(|s| *s == 0 || *s > 100) {
        return Err(format!(
            "{STEPS}={text:?}: each step must be from 1 to 100 %"
        ));
    }
    if steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("{STEPS}={text:?}: steps must strictly increase"));
    }
    if steps.last() != Some(&100) {
        return Err(format!("{STEPS}={text:?}: the last step must be 100"));
    }
    Ok(steps)
}

fn check_analysis(a: &Analysis) -> Result<(), String> {
    for (key, v) in [
        ("max_error_rate", a.max_error_rate),
        ("min_success_rate", a.min_success_rate),
        ("max_guardrail_block_rate", a.max_guardrail_block_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!(
                "{ANALYSIS}: {key}={v} must be a fraction from 0 to 1"
            ));
        }
    }
    if !(a.max_cost_per_success_usd.is_finite() && a.max_cost_per_success_usd >= 0.0) {
        return Err(format!(
            "{ANALYSIS}: max_cost_per_success_usd={} must be a number >= 0",
            a.max_cost_per_success_usd
        ));
    }
    if a.max_p95_latency_ms == 0 {
        return Err(format!("{ANALYSIS}: max_p95_latency_ms must be above 0"));
    }
    if a.min_samples == 0 {
        return Err(format!("{ANALYSIS}: min_samples must be at least 1"));
    }
    Ok(())
}
