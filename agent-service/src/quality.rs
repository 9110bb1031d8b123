//! Quality signals of the service's answers. How each run ended is classified here (did an
//! answer that must cite evidence cite it, was it a refusal, empty or cut off, was the run
//! blocked or its answer redacted); `metrics` counts the classes in Prometheus series, and
//! [`Windows`] keeps the most recent runs, tool calls and approval decisions of each
//! workflow and track for `/v1/info`'s quality summary and the service's own alerts.
//!
//! Everything here is pure bookkeeping: no I/O, no clock, no knowledge of the engine.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use crate::config::QualityConfig;

/// How one run ended, as the quality signals see it.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    pub workflow: &'a str,
    pub track: &'a str,
    /// The run status (`success`, `blocked`, …), or the error code of a failed run.
    pub status: &'a str,
    /// The run failed with an error (then `status` is its code and there is no answer).
    pub failed: bool,
    /// Which budget stopped the run (`output_tokens` = the reply was cut off).
    pub budget: Option<&'a str>,
    /// Which guardrail rule blocked the run.
    pub guardrail_rule: Option<&'a str>,
    /// The answer returned (already redacted).
    pub answer: &'a str,
    /// What the run's model calls cost, as its reply reports it (0 for a failed run).
    pub cost_usd: f64,
    /// The workflow's answers must cite the evidence they rest on.
    pub citation_required: bool,
}

/// What kind of answer a run gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A returned answer that is neither a refusal nor empty.
    Answer,
    /// A returned answer that declines to help ("I can't help with that").
    Refusal,
    /// A returned answer with no text.
    Empty,
    /// The model's reply was cut off at its output limit (`budget_exceeded`,
    /// `output_tokens`): nothing was returned.
    Truncated,
}

impl AnswerKind {
    pub const ALL: [AnswerKind; 4] = [Self::Answer, Self::Refusal, Self::Empty, Self::Truncated];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Refusal => "refusal",
            Self::Empty => "empty",
            Self::Truncated => "truncated",
        }
    }
}

/// The classes of one run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Verdict {
    /// For an answer that must cite: `Some(true)` when it passed the citation check
    /// (status `success`), `Some(false)` when it was withheld for not citing.
    pub citation: Option<bool>,
    /// For a run that returned an answer (`success`, `degraded`) or whose reply was cut off.
    pub answer: Option<AnswerKind>,
    /// Status `blocked` (an input rule, or the citation rule on the output).
    pub blocked: bool,
    /// A returned answer in which the output guardrail redacted something.
    pub flagged: bool,
    /// Status `success`.
    pub success: bool,
    /// Characters of a returned answer.
    pub answer_chars: Option<usize>,
}

/// The marker the redactor leaves where it removed PII or a secret.
const REDACTION_MARKER: &str = "[REDACTED:";

static REFUSAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(i|we) (can ?not|can't|am unable to|'m unable to|are unable to|am not able to|",
        r"'m not able to|won't be able to|will not be able to|must decline to|have to decline to) ",
        r"(help|assist|answer|provide|comply|support|do that|do this|fulfil|fulfill|share|discuss)\b",
        r"|\b(i'm|i am) sorry,? but (i|we) (can ?not|can't|won't)\b",
        r"|\b(i|we) (must|have to) (decline|refuse)\b",
        r"|\bas an ai( language model)?,? i (can ?not|can't|am unable|'m unable|do not|don't)\b",
    ))
    .expect("static regex")
});

/// Whether an answer declines to help. Matched on a lowercased copy with typographic
/// apostrophes folded, so "I can’t help with that" and "I CANNOT assist" both count.
pub fn is_refusal(answer: &str) -> bool {
    let text = answer.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    REFUSAL.is_match(&text)
}

/// Classifies how a run ended.
pub fn classify(r: &RunEnd) -> Verdict {
    if r.failed {
        return Verdict::default();
    }
    let returned = matches!(r.status, "success" | "degraded");
    let citation = match (r.citation_required, r.status, r.guardrail_rule) {
        (true, "success", _) => Some(true),
        (true, "blocked", Some("citation_required")) => Some(false),
        _ => None,
    };
    let answer = if returned {
        Some(if r.answer.trim().is_empty() {
            AnswerKind::Empty
        } else if is_refusal(r.answer) {
            AnswerKind::Refusal
        } else {
            AnswerKind::Answer
        })
    } else if r.status == "budget_exceeded" && r.budget == Some("output_tokens") {
        Some(AnswerKind::Truncated)
    } else {
        None
    };
    Verdict {
        citation,
        answer,
        blocked: r.status == "blocked",
        flagged: returned && r.answer.contains(REDACTION_MARKER),
        success: r.status == "success",
        answer_chars: returned.then(|| r.answer.chars().count()),
    }
}

/// A signal the service alerts on by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    CitationRate,
    RefusalRate,
    ToolErrorRate,
    EmptyOrTruncatedRate,
    ApprovalRejectionRate,
}

impl Signal {
    pub const ALL: [Signal; 5] = [
        Self::CitationRate,
        Self::RefusalRate,
        Self::ToolErrorRate,
        Self::EmptyOrTruncatedRate,
        Self::ApprovalRejectionRate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CitationRate => "citation_rate",
            Self::RefusalRate => "refusal_rate",
            Self::ToolErrorRate => "tool_error_rate",
            Self::EmptyOrTruncatedRate => "empty_or_truncated_rate",
            Self::ApprovalRejectionRate => "approval_rejection_rate",
        }
    }
}

/// When a signal alerts: at least `min_samples` samples in the window and its rate past
/// the threshold (below the minimum citation rate, above every other maximum).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub min_samples: u64,
    pub min_citation_rate: f64,
    pub max_refusal_rate: f64,
    pub max_tool_error_rate: f64,
    pub max_empty_or_truncated_rate: f64,
    pub max_approval_rejection_rate: f64,
}

impl From<&QualityConfig> for Thresholds {
    fn from(c: &QualityConfig) -> Self {
        Self {
            min_samples: u64::from(c.quality_alert_min_samples),
            min_citation_rate: c.quality_min_citation_rate,
            max_refusal_rate: c.quality_max_refusal_rate,
            max_tool_error_rate: c.quality_max_tool_error_rate,
            max_empty_or_truncated_rate: c.quality_max_empty_rate,
            max_approval_rejection_rate: c.quality_max_rejection_rate,
        }
    }
}

impl Thresholds {
    /// The threshold of `signal` and whether a rate below it (rather than above) alerts.
    pub fn of(&self, signal: Signal) -> (f64, bool) {
        match signal {
            Signal::CitationRate => (self.min_citation_rate, true),
            Signal::RefusalRate => (self.max_refusal_rate, false),
            Signal::ToolErrorRate => (self.max_tool_error_rate, false),
            Signal::EmptyOrTruncatedRate => (self.max_empty_or_truncated_rate, false),
            Signal::ApprovalRejectionRate => (self.max_approval_rejection_rate, false),
        }
    }
}

/// A rate over the window: `hits / samples`, `None` without samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rate {
    pub hits: u64,
    pub samples: u64,
}

impl Rate {
    fn of(hits: usize, samples: usize) -> Self {
        Self {
            hits: hits as u64,
            samples: samples as u64,
        }
    }

    pub fn rate(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.hits as f64 / self.samples as f64)
    }
}

/// The quality of one workflow on one track over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowQuality {
    pub workflow: String,
    pub track: String,
    /// Runs in the window.
    pub runs: u64,
    /// Runs since this process started.
    pub runs_total: u64,
    /// Answers of citation-required workflows that cited their evidence.
    pub citation: Rate,
    /// Answers that refused.
    pub refusal: Rate,
    /// Answers that were empty or cut off.
    pub empty_or_truncated: Rate,
    /// Runs blocked by a guardrail.
    pub blocked: Rate,
    /// Runs whose answer the output guardrail redacted.
    pub flagged: Rate,
    /// Tool calls that failed.
    pub tool_errors: Rate,
    /// Final approval decisions that rejected the proposed write.
    pub approval_rejections: Rate,
    /// Runs that ended `success`.
    pub successes: u64,
    /// What the window's runs cost, divided by its successes.
    pub cost_per_success_usd: Option<f64>,
    /// Median and 95th percentile of returned answers' length in characters.
    pub answer_chars_p50: Option<u64>,
    pub answer_chars_p95: Option<u64>,
    /// Signals past their threshold (with enough samples).
    pub alerts: Vec<Signal>,
}

impl WorkflowQuality {
    pub fn rate_of(&self, signal: Signal) -> Rate {
        match signal {
            Signal::CitationRate => self.citation,
            Signal::RefusalRate => self.refusal,
            Signal::ToolErrorRate => self.tool_errors,
            Signal::EmptyOrTruncatedRate => self.empty_or_truncated,
            Signal::ApprovalRejectionRate => self.approval_rejections,
        }
    }
}

/// The signals of `q` past their thresholds.
pub fn alerts(q: &WorkflowQuality, t: &Thresholds) -> Vec<Signal> {
    Signal::ALL
        .into_iter()
        .filter(|s| {
            let r = q.rate_of(*s);
            let (threshold, below) = t.of(*s);
            match r.rate() {
                Some(rate) if r.samples >= t.min_samples => {
                    if below {
                        rate < threshold
                    } else {
                        rate > threshold
                    }
                }
                _ => false,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    verdict: Verdict,
    cost_usd: f64,
}

#[derive(Debug, Default)]
struct Window {
    runs: VecDeque<Sample>,
    /// Tool calls: `true` for a failed one.
    tools: VecDeque<bool>,
    /// Final approval decisions: `true` for a rejection.
    decisions: VecDeque<bool>,
    runs_total: u64,
}

fn push<T>(q: &mut VecDeque<T>, item: T, size: usize) {
    q.push_back(item);
    while q.len() > size {
        q.pop_front();
    }
}

/// The most recent runs, tool calls and approval decisions per workflow and track.
#[derive(Debug)]
pub struct Windows {
    size: AtomicUsize,
    keys: Mutex<BTreeMap<(String, String), Window>>,
}

impl Default for Windows {
    fn default() -> Self {
        Self::new(QualityConfig::default().quality_window_runs as usize)
    }
}

impl Windows {
    pub fn new(size: usize) -> Self {
        Self {
            size: AtomicUsize::new(size.max(1)),
            keys: Mutex::new(BTreeMap::new()),
        }
    }

    /// Keeps at most `size` of each (runs, tool calls, decisions) from now on.
    pub fn set_size(&self, size: usize) {
        self.size.store(size.max(1), Ordering::Relaxed);
    }

    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    fn with<R>(&self, workflow: &str, track: &str, f: impl FnOnce(&mut Window, usize) -> R) -> R {
        let size = self.size();
        // The map holds no invariant a panicking holder could break.
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let w = keys
            .entry((workflow.to_string(), track.to_string()))
            .or_default();
        f(w, size)
    }

    pub fn record_run(&self, workflow: &str, track: &str, verdict: Verdict, cost_usd: f64) {
        self.with(workflow, track, |w, size| {
            w.runs_total += 1;
            push(&mut w.runs, Sample { verdict, cost_usd }, size);
        });
    }

    pub fn record_tool(&self, workflow: &str, track: &str, failed: bool) {
        self.with(workflow, track, |w, size| push(&mut w.tools, failed, size));
    }

    pub fn record_decision(&self, workflow: &str, track: &str, rejected: bool) {
        self.with(workflow, track, |w, size| {
            push(&mut w.decisions, rejected, size)
        });
    }

    /// Every workflow and track seen so far, with its window's rates and alerts.
    pub fn summary(&self, t: &Thresholds) -> Vec<WorkflowQuality> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .map(|((workflow, track), w)| {
                let mut q = summarize(workflow, track, w);
                q.alerts = alerts(&q, t);
                q
            })
            .collect()
    }
}

fn percentile(sorted: &[usize], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as u64)
}

fn summarize(workflow: &str, track: &str, w: &Window) -> WorkflowQuality {
    let runs = &w.runs;
    let count = |f: &dyn Fn(&Verdict) -> bool| runs.iter().filter(|s| f(&s.verdict)).count();
    let cited = count(&|v| v.citation == Some(true));
    let checked = count(&|v| v.citation.is_some());
    let answered = count(&|v| v.answer.is_some());
    let refused = count(&|v| v.answer == Some(AnswerKind::Refusal));
    let empty = count(&|v| {
        matches!(
            v.answer,
            Some(AnswerKind::Empty) | Some(AnswerKind::Truncated)
        )
    });
    let successes = count(&|v| v.success);
    let cost: f64 = runs.iter().map(|s| s.cost_usd).sum();
    let mut lengths: Vec<usize> = runs.iter().filter_map(|s| s.verdict.answer_chars).collect();
    lengths.sort_unstable();
    WorkflowQuality {
        workflow: workflow.to_string(),
        track: track.to_string(),
        runs: runs.len() as u64,
        runs_total: w.runs_total,
        citation: Rate::of(cited, checked),
        refusal: Rate::of(refused, answered),
        empty_or_truncated: Rate::of(empty, answered),
        blocked: Rate::of(count(&|v| v.blocked), runs.len()),
        flagged: Rate::of(count(&|v| v.flagged), runs.len()),
        tool_errors: Rate::of(w.tools.iter().filter(|f| **f).count(), w.tools.len()),
        approval_rejections: Rate::of(
            w.decisions.iter().filter(|r| **r).count(),
            w.decisions.len(),
        ),
        successes: successes as u64,
        cost_per_success_usd: (successes > 0).then(|| cost / successes as f64),
        answer_chars_p50: percentile(&lengths, 0.5),
        answer_chars_p95: percentile(&lengths, 0.95),
        alerts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end<'a>(status: &'a str, answer: &'a str) -> RunEnd<'a> {
        RunEnd {
            workflow: "faq",
            track: "stable",
            status,
            failed: false,
            budget: None,
            guardrail_rule: None,
            answer,
            cost_usd: 0.001,
            citation_required: true,
        }
    }

    #[test]
    fn refusals_are_recognised_in_their_common_wordings() {
        for text in [
            "I can't help with that.",
            "I cannot assist with this request.",
            "I’m sorry, but I can’t do that.",
            "Sorry — I am unable to provide that information.",
            "We must decline to answer.",
            "As an AI language model, I cannot browse the web.",
            "I CANNOT HELP with invoices here.",
        ] {
            assert!(is_refusal(text), "{text}");
        }
        for text in [
            "Ticket T-1001 is open with high priority. [ticket:T-1001]",
            "I could not find ticket T-9.",
            "You cannot log in until the account unlocks [kb:KB-3].",
            "I can help with that: reset the password first.",
        ] {
            assert!(!is_refusal(text), "{text}");
        }
    }

    #[test]
    fn each_ending_gets_its_classes() {
        let ok = classify(&end("success", "Reset it [kb:KB-1]"));
        assert_eq!(ok.citation, Some(true));
        assert_eq!(ok.answer, Some(AnswerKind::Answer));
        assert!(ok.success && !ok.blocked && !ok.flagged);
        assert_eq!(ok.answer_chars, Some(18));

        let withheld = RunEnd {
            guardrail_rule: Some("citation_required"),
            ..end("blocked", "The answer was withheld")
        };
        let v = classify(&withheld);
        assert_eq!(v.citation, Some(false));
        assert_eq!(v.answer, None, "a withheld answer is not returned");
        assert!(v.blocked && !v.success);

        let input_block = RunEnd {
            guardrail_rule: Some("prompt_injection"),
            ..end("blocked", "refused")
        };
        assert_eq!(classify(&input_block).citation, None);

        let cut = RunEnd {
            budget: Some("output_tokens"),
            ..end("budget_exceeded", "The model's reply was cut off")
        };
        assert_eq!(classify(&cut).answer, Some(AnswerKind::Truncated));
        let other_budget = RunEnd {
            budget: Some("deadline"),
            ..end("budget_exceeded", "stopped")
        };
        assert_eq!(classify(&other_budget).answer, None);

        assert_eq!(
            classify(&end("success", "  ")).answer,
            Some(AnswerKind::Empty)
        );
        assert_eq!(
            classify(&end("degraded", "I cannot help with that.")).answer,
            Some(AnswerKind::Refusal)
        );
        let flagged = classify(&end("success", "Mail [REDACTED:email] [kb:KB-1]"));
        assert!(flagged.flagged);

        let not_cited_workflow = RunEnd {
            citation_required: false,
            ..end("success", "done")
        };
        assert_eq!(classify(&not_cited_workflow).citation, None);

        let failed = RunEnd {
            failed: true,
            ..end("provider_unavailable", "")
        };
        assert_eq!(classify(&failed), Verdict::default());
    }

    #[test]
    fn the_window_keeps_the_latest_runs_and_alerts_past_thresholds() {
        let w = Windows::new(4);
        let t = Thresholds {
            min_samples: 3,
            min_citation_rate: 0.8,
            max_refusal_rate: 0.2,
            max_tool_error_rate: 0.2,
            max_empty_or_truncated_rate: 0.1,
            max_approval_rejection_rate: 0.5,
        };
        let cited = classify(&end("success", "ok [kb:KB-1]"));
        let withheld = classify(&RunEnd {
            guardrail_rule: Some("citation_required"),
            ..end("blocked", "withheld")
        });
        for _ in 0..4 {
            w.record_run("faq", "stable", cited, 0.002);
        }
        let q = &w.summary(&t)[0];
        assert_eq!((q.runs, q.runs_total), (4, 4));
        assert_eq!(q.citation.rate(), Some(1.0));
        assert_eq!(q.cost_per_success_usd, Some(0.002));
        assert!(q.alerts.is_empty());
        // Three uncited answers push three cited ones out of the window of four.
        for _ in 0..3 {
            w.record_run("faq", "stable", withheld, 0.001);
        }
        let q = &w.summary(&t)[0];
        assert_eq!((q.runs, q.runs_total), (4, 7));
        assert_eq!(
            q.citation,
            Rate {
                hits: 1,
                samples: 4
            }
        );
        assert_eq!(q.blocked.rate(), Some(0.75));
        assert_eq!(q.alerts, vec![Signal::CitationRate]);
        let cost = (0.002 + 3.0 * 0.001) / 1.0;
        assert!((q.cost_per_success_usd.unwrap() - cost).abs() < 1e-12);

        // Too few samples never alert: two of two tool calls failed, minimum three.
        w.record_tool("faq", "stable", true);
        w.record_tool("faq", "stable", true);
        assert!(!w.summary(&t)[0].alerts.contains(&Signal::ToolErrorRate));
        w.record_tool("faq", "stable", false);
        let q = &w.summary(&t)[0];
        assert_eq!(
            q.tool_errors,
            Rate {
                hits: 2,
                samples: 3
            }
        );
        assert!(q.alerts.contains(&Signal::ToolErrorRate));

        w.record_decision("ticket_update", "canary", true);
        let all = w.summary(&t);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].workflow, "ticket_update");
        assert_eq!(all[1].approval_rejections.rate(), Some(1.0));
        assert_eq!(all[1].runs, 0);
    }

    #[test]
    fn answer_lengths_give_nearest_rank_percentiles() {
        let w = Windows::new(100);
        for n in 1..=10 {
            let text = "x".repeat(n * 10);
            w.record_run("faq", "stable", classify(&end("success", &text)), 0.0);
        }
        let t = Thresholds::from(&QualityConfig::default());
        let q = &w.summary(&t)[0];
        assert_eq!(q.answer_chars_p50, Some(50));
        assert_eq!(q.answer_chars_p95, Some(100));
    }
}
