//! Assertion kinds of an eval case and how each is checked against what a run produced:
//! `contains`, `not_contains`, `regex`, `must_cite`, `tool_called`, `status`,
//! `max_latency_ms`, `max_cost`.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// `[kind:ID]` citations, in the format the engine's citation rule checks.
static CITATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[(ticket|kb|invoice|tool):([A-Za-z0-9_.-]+)\]").expect("static regex")
});

const CITATION_KINDS: &[&str] = &["ticket", "kb", "invoice", "tool"];

/// Characters of the answer quoted in a failed assertion's `actual`.
const QUOTE_CHARS: usize = 160;

/// What `must_cite` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Citation {
    /// At least one citation, and every citation backed by evidence the run gathered.
    Any,
    /// This citation, backed by evidence.
    Exact { kind: String, id: String },
}

impl Citation {
    /// `kind:ID`, e.g. `ticket:T-1001`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = format!("[{s}]");
        match CITATION.captures(&text) {
            Some(c) if c.get(0).is_some_and(|m| m.as_str() == text) => Ok(Self::Exact {
                kind: c[1].to_string(),
                id: c[2].to_string(),
            }),
            _ => Err(format!(
                "{s:?} is not a citation: write \"kind:ID\" with kind one of {}, e.g. \"ticket:T-1001\"",
                CITATION_KINDS.join(", ")
            )),
        }
    }
}

/// One check of a case.
#[derive(Debug, Clone)]
pub enum Assertion {
    /// The answer contains the text (case-insensitive).
    Contains(String),
    /// The answer does not contain the text (case-insensitive).
    NotContains(String),
    /// The answer matches the regular expression.
    Regex(Regex),
    MustCite(Citation),
    /// The run called this tool (a write tool counts when it was proposed).
    ToolCalled(String),
    /// The run ended with one of these statuses.
    Status(Vec<String>),
    MaxLatencyMs(u64),
    /// Most the run may cost, in USD.
    MaxCost(f64),
}

/// What one run produced, as the assertions see it.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// A run status, or `error` when the engine failed.
    pub status: String,
    pub answer: String,
    /// `(kind, id)` of each piece of evidence.
    pub evidence: Vec<(String, String)>,
    pub tools_called: Vec<String>,
    pub latency_ms: u64,
    pub cost_usd: f64,
}

/// The outcome of one assertion: what was expected, what was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssertionResult {
    /// The assertion kind, e.g. `contains`.
    pub kind: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
}

/// The `(kind, id)` citations in an answer, in order.
pub fn citations(answer: &str) -> Vec<(String, String)> {
    CITATION
        .captures_iter(answer)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// Whether the answer cites at least one piece of evidence and every citation is backed
/// by evidence (the citation rate counts these).
pub fn cites_evidence(o: &Observation) -> bool {
    let cited = citations(&o.answer);
    !cited.is_empty() && cited.iter().all(|c| o.evidence.contains(c))
}

fn quote(text: &str) -> String {
    let mut out: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().count() > QUOTE_CHARS {
        out.push('…');
    }
    format!("{out:?}")
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

impl Assertion {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Contains(_) => "contains",
            Self::NotContains(_) => "not_contains",
            Self::Regex(_) => "regex",
            Self::MustCite(_) => "must_cite",
            Self::ToolCalled(_) => "tool_called",
            Self::Status(_) => "status",
            Self::MaxLatencyMs(_) => "max_latency_ms",
            Self::MaxCost(_) => "max_cost",
        }
    }

    pub fn expected(&self) -> String {
        match self {
            Self::Contains(t) => format!("answer contains {t:?}"),
            Self::NotContains(t) => format!("answer does not contain {t:?}"),
            Self::Regex(re) => format!("answer matches /{}/", re.as_str()),
            Self::MustCite(Citation::Any) => {
                "answer cites evidence, and only evidence the run gathered".into()
            }
            Self::MustCite(Citation::Exact { kind, id }) => {
                format!("answer cites [{kind}:{id}], backed by evidence")
            }
            Self::ToolCalled(t) => format!("tool {t} is called"),
            Self::Status(allowed) => format!("status {}", allowed.join(" or ")),
            Self::MaxLatencyMs(ms) => format!("latency <= {ms} ms"),
            Self::MaxCost(usd) => format!("cost <= ${usd}"),
        }
    }

    pub fn check(&self, o: &Observation) -> AssertionResult {
        let (passed, actual) = match self {
            Self::Contains(t) => {
                let found = o.answer.to_lowercase().contains(&t.to_lowercase());
                let actual = if found {
                    "found".into()
                } else {
                    format!("not found in {}", quote(&o.answer))
                };
                (found, actual)
            }
            Self::NotContains(t) => {
                let at = o.answer.to_lowercase().find(&t.to_lowercase());
                // Never echo the forbidden text: it may be the very secret under test.
                let actual = match at {
                    None => "absent".into(),
                    Some(i) => format!("found at byte {i} of the answer"),
                };
                (at.is_none(), actual)
            }
            Self::Regex(re) => match re.find(&o.answer) {
                Some(m) => (true, format!("matched {}", quote(m.as_str()))),
                None => (false, format!("no match in {}", quote(&o.answer))),
            },
            Self::MustCite(want) => check_citation(want, o),
            Self::ToolCalled(t) => (
                o.tools_called.contains(t),
                format!("called: {}", list_or_none(&o.tools_called)),
            ),
            Self::Status(allowed) => (allowed.contains(&o.status), o.status.clone()),
            Self::MaxLatencyMs(ms) => (o.latency_ms <= *ms, format!("{} ms", o.latency_ms)),
            Self::MaxCost(usd) => (o.cost_usd <= *usd + 1e-12, format!("${:.6}", o.cost_usd)),
        };
        AssertionResult {
            kind: self.kind().into(),
            expected: self.expected(),
            actual,
            passed,
        }
    }
}

fn check_citation(want: &Citation, o: &Observation) -> (bool, String) {
    let cited = citations(&o.answer);
    let shown: Vec<String> = cited.iter().map(|(k, i)| format!("{k}:{i}")).collect();
    let unbacked: Vec<String> = cited
        .iter()
        .filter(|c| !o.evidence.contains(c))
        .map(|(k, i)| format!("{k}:{i}"))
        .collect();
    match want {
        Citation::Any => {
            if cited.is_empty() {
                (false, "no citations".into())
            } else if !unbacked.is_empty() {
                (
                    false,
                    format!(
                        "cites {} but {} is not in the evidence",
                        shown.join(", "),
                        unbacked.join(", ")
                    ),
                )
            } else {
                (true, format!("cites {}", shown.join(", ")))
            }
        }
        Citation::Exact { kind, id } => {
            let pair = (kind.clone(), id.clone());
            let actual = if cited.is_empty() {
                "no citations".into()
            } else {
                format!("cites {}", shown.join(", "))
            };
            if !cited.contains(&pair) {
                (false, actual)
            } else if !o.evidence.contains(&pair) {
                (
                    false,
                    format!("{actual}; {kind}:{id} is not in the evidence"),
                )
            } else {
                (true, actual)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs() -> Observation {
        Observation {
            status: "success".into(),
            answer:
                "Ticket T-1001 is open. Related: Resetting your password [kb:KB-1]. [ticket:T-1001]"
                    .into(),
            evidence: vec![
                ("ticket".into(), "T-1001".into()),
                ("kb".into(), "KB-1".into()),
            ],
            tools_called: vec!["ticket_read".into(), "kb_search".into()],
            latency_ms: 42,
            cost_usd: 0.002,
        }
    }

    /// Checks `a` and that its result names the kind and the expectation.
    fn check(a: Assertion, o: &Observation) -> AssertionResult {
        let r = a.check(o);
        assert_eq!(r.kind, a.kind());
        assert_eq!(r.expected, a.expected());
        r
    }

    #[test]
    fn contains_is_case_insensitive() {
        let o = obs();
        assert!(check(Assertion::Contains("ticket t-1001".into()), &o).passed);
        let r = check(Assertion::Contains("refund".into()), &o);
        assert!(!r.passed);
        assert!(
            r.actual.starts_with("not found in \"Ticket T-1001"),
            "{}",
            r.actual
        );
    }

    #[test]
    fn not_contains_never_echoes_the_text() {
        let o = obs();
        assert!(check(Assertion::NotContains("4111".into()), &o).passed);
        let r = check(Assertion::NotContains("RESETTING YOUR".into()), &o);
        assert!(!r.passed);
        assert!(
            !r.actual.to_lowercase().contains("resetting"),
            "{}",
            r.actual
        );
        assert!(r.actual.contains("found at byte"), "{}", r.actual);
    }

    #[test]
    fn regex_reports_the_match() {
        let o = obs();
        let r = check(Assertion::Regex(Regex::new(r"T-\d{4}").unwrap()), &o);
        assert!(r.passed);
        assert_eq!(r.actual, "matched \"T-1001\"");
        assert!(!check(Assertion::Regex(Regex::new(r"INV-\d+").unwrap()), &o).passed);
    }

    #[test]
    fn must_cite_needs_citations_backed_by_evidence() {
        let o = obs();
        let any = Assertion::MustCite(Citation::Any);
        assert!(check(any.clone(), &o).passed);
        assert!(cites_evidence(&o));

        let exact = |s: &str| Assertion::MustCite(Citation::parse(s).expect("citation"));
        assert!(check(exact("ticket:T-1001"), &o).passed);
        let r = check(exact("ticket:T-1002"), &o);
        assert!(!r.passed);
        assert_eq!(r.actual, "cites kb:KB-1, ticket:T-1001");

        // A citation the evidence does not back fails both forms.
        let mut made_up = obs();
        made_up.answer.push_str(" See [kb:KB-99].");
        let r = check(any.clone(), &made_up);
        assert!(!r.passed);
        assert!(
            r.actual.contains("kb:KB-99 is not in the evidence"),
            "{}",
            r.actual
        );
        assert!(!cites_evidence(&made_up));
        let r = check(exact("kb:KB-99"), &made_up);
        assert!(
            !r.passed && r.actual.contains("not in the evidence"),
            "{}",
            r.actual
        );

        let mut bare = obs();
        bare.answer = "No sources.".into();
        let r = check(any, &bare);
        assert!(!r.passed);
        assert_eq!(r.actual, "no citations");
        assert!(!cites_evidence(&bare));
    }

    #[test]
    fn citation_parse_rejects_malformed() {
        assert_eq!(
            Citation::parse("kb:KB-3"),
            Ok(Citation::Exact {
                kind: "kb".into(),
                id: "KB-3".into()
            })
        );
        for bad in ["T-1001", "wiki:X", "kb:", "kb:KB 3", "kb:KB-3] [ticket:T"] {
            assert!(Citation::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tool_called_lists_what_ran() {
        let o = obs();
        assert!(check(Assertion::ToolCalled("kb_search".into()), &o).passed);
        let r = check(Assertion::ToolCalled("ticket_update".into()), &o);
        assert!(!r.passed);
        assert_eq!(r.actual, "called: ticket_read, kb_search");
        let none = Observation::default();
        assert_eq!(
            check(Assertion::ToolCalled("x".into()), &none).actual,
            "called: (none)"
        );
    }

    #[test]
    fn status_allows_any_listed() {
        let o = obs();
        let a = Assertion::Status(vec!["blocked".into(), "approval_required".into()]);
        let r = check(a.clone(), &o);
        assert!(!r.passed);
        assert_eq!(r.actual, "success");
        assert_eq!(r.expected, "status blocked or approval_required");
        let mut gated = obs();
        gated.status = "approval_required".into();
        assert!(check(a, &gated).passed);
    }

    #[test]
    fn latency_and_cost_limits_are_inclusive() {
        let o = obs();
        assert!(check(Assertion::MaxLatencyMs(42), &o).passed);
        let r = check(Assertion::MaxLatencyMs(41), &o);
        assert!(!r.passed);
        assert_eq!(r.actual, "42 ms");
        assert!(check(Assertion::MaxCost(0.002), &o).passed);
        let r = check(Assertion::MaxCost(0.001), &o);
        assert!(!r.passed);
        assert_eq!(r.actual, "$0.002000");
    }
}
