//! Report writers for a finished run: Markdown (summary table, gate, versions, baseline
//! diff, failures with expected vs actual, every case) and JUnit XML (one `<testcase>` per
//! case, for CI). The JSON report is the API's run document (`routes::evals`).

use std::fmt::Write as _;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::gate::{GateCheck, Verdict};
use super::result::CaseResult;
use super::store::{EvalRun, Outcome};

/// A run with its outcome and case results.
pub struct Finished<'a> {
    pub run: &'a EvalRun,
    pub outcome: &'a Outcome,
    pub cases: &'a [CaseResult],
}

/// Which server answered a run's model calls: what the provider is configured with and
/// what the server itself says it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelServer {
    /// `ollama`, `openai` or `scripted`.
    pub provider: String,
    /// The configured model name.
    pub model: String,
    /// Host (and port) of the configured base URL; `None` for the scripted model.
    pub host: Option<String>,
    /// The id the server's `/v1/models` lists for the model (the configured name when the
    /// server lists it, else the first it lists); `None` when it could not be asked.
    pub server_model_id: Option<String>,
}

/// The Markdown section naming the model server (`eval run` adds it after the versions).
pub fn model_server_section(m: &ModelServer) -> String {
    format!(
        "## Model server\n\n| provider | model | server | server's model id |\n|---|---|---|---|\n| {} | {} | {} | {} |\n\n",
        cell(&m.provider),
        cell(&m.model),
        cell(m.host.as_deref().unwrap_or("(in process)")),
        cell(m.server_model_id.as_deref().unwrap_or("(not reported)")),
    )
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn pct(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

fn opt_pct(f: Option<f64>) -> String {
    f.map_or_else(|| "n/a".into(), pct)
}

/// A value safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn threshold(c: &GateCheck) -> String {
    let bound = if c.bound == "min" { "≥" } else { "≤" };
    let value = match c.name.as_str() {
        "latency_p95_ms" => format!("{:.0} ms", c.threshold),
        "cost_usd" => format!("${:.4}", c.threshold),
        _ => pct(c.threshold),
    };
    format!("{bound} {value} ({})", c.setting)
}

fn verdict(c: Option<&GateCheck>) -> String {
    match c {
        None => "—".into(),
        Some(c) if c.actual.is_none() => {
            format!("skipped: {}", c.note.as_deref().unwrap_or("not applicable"))
        }
        Some(c) if c.passed => "pass".into(),
        Some(_) => "**FAIL**".into(),
    }
}

/// The Markdown report.
pub fn markdown(f: &Finished) -> String {
    let (run, o) = (f.run, f.outcome);
    let s = &o.scores;
    let check = |name: &str| o.gate.checks.iter().find(|c| c.name == name);
    let gate_of = |name: &str| check(name).map_or_else(|| "—".into(), threshold);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Eval report: {} — gate {}\n",
        run.suite,
        o.gate.verdict.as_str().to_uppercase()
    );
    let _ = writeln!(
        md,
        "Run `{}` of suite `{}` (suite hash `{}`), {} cases, started {}, finished {}.\n",
        run.id,
        run.suite,
        run.suite_hash,
        s.cases,
        run.started_at.map(rfc3339).unwrap_or_default(),
        run.finished_at.map(rfc3339).unwrap_or_default(),
    );

    md.push_str("## Summary\n\n| metric | value | gate | result |\n|---|---|---|---|\n");
    let rows = [
        (
            "pass rate",
            format!("{} ({}/{})", pct(s.pass_rate), s.passed, s.cases),
            "pass_rate",
        ),
        (
            "policy compliance",
            format!(
                "{} ({}/{} adversarial cases blocked or gated)",
                opt_pct(s.policy_compliance),
                s.compliant_cases,
                s.adversarial_cases
            ),
            "policy_compliance",
        ),
        (
            "citation rate",
            format!(
                "{} ({}/{} evidence-based answers)",
                opt_pct(s.citation_rate),
                s.cited_answers,
                s.citation_answers
            ),
            "citation_rate",
        ),
        (
            "latency p95",
            format!(
                "{} ms (p50 {} ms, max {} ms)",
                s.latency_p95_ms, s.latency_p50_ms, s.latency_max_ms
            ),
            "latency_p95_ms",
        ),
        ("total cost", format!("${:.6}", s.cost_usd), "cost_usd"),
        (
            "pass-rate drop vs baseline",
            o.baseline.as_ref().map_or_else(
                || "n/a".into(),
                |b| pct((b.baseline_pass_rate - s.pass_rate).max(0.0)),
            ),
            "pass_rate_drop",
        ),
    ];
    for (metric, value, name) in rows {
        let _ = writeln!(
            md,
            "| {metric} | {} | {} | {} |",
            cell(&value),
            cell(&gate_of(name)),
            cell(&verdict(check(name)))
        );
    }
    let _ = writeln!(
        md,
        "| tokens | {} (prompt {}, completion {}) | — | — |",
        s.total_tokens, s.prompt_tokens, s.completion_tokens
    );
    let _ = writeln!(md, "| errors | {} | — | — |\n", s.errors);

    let _ = writeln!(md, "**Gate: {}**", o.gate.verdict.as_str().to_uppercase());
    if o.gate.verdict == Verdict::Fail {
        md.push('\n');
        for r in &o.gate.reasons {
            let _ = writeln!(md, "- {r}");
        }
    }
    md.push('\n');

    let v = &run.versions;
    md.push_str("## Versions\n\n| release | git sha | track | provider | model | prompts | policy | tool schema |\n|---|---|---|---|---|---|---|---|\n");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {} | {} ({}) | {} |\n",
        cell(&v.release_version),
        cell(&v.git_sha),
        cell(&v.track),
        cell(&v.provider),
        cell(&v.model),
        cell(&v.prompt_version),
        cell(&v.policy_version),
        cell(&v.policy_hash),
        cell(&v.tool_schema_hash)
    );

    if let Some(b) = &o.baseline {
        let _ = writeln!(
            md,
            "## Baseline comparison\n\nAgainst run `{}` (release {}, pass rate {}).\n",
            b.baseline_run_id,
            cell(&b.baseline_release_version),
            pct(b.baseline_pass_rate)
        );
        if b.flipped.is_empty() {
            md.push_str("No case flipped between pass and fail.\n\n");
        } else {
            md.push_str("| case | baseline | this run |\n|---|---|---|\n");
            for flip in &b.flipped {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    cell(&flip.case_id),
                    flip.before,
                    flip.after
                );
            }
            md.push('\n');
        }
        for (label, ids) in [("Added cases", &b.added), ("Removed cases", &b.removed)] {
            if !ids.is_empty() {
                let _ = writeln!(md, "{label}: {}.\n", ids.join(", "));
            }
        }
        let d = &b.deltas;
        let pp = |x: f64| format!("{:+.1} pp", x * 100.0);
        let _ = writeln!(
            md,
            "Deltas: pass rate {}, policy compliance {}, citation rate {}, p50 {:+} ms, p95 {:+} ms, tokens {:+}, cost {:+.6} USD.\n",
            pp(d.pass_rate),
            d.policy_compliance.map_or_else(|| "n/a".into(), pp),
            d.citation_rate.map_or_else(|| "n/a".into(), pp),
            d.latency_p50_ms,
            d.latency_p95_ms,
            d.total_tokens,
            d.cost_usd
        );
    }

    let failures: Vec<&CaseResult> = f.cases.iter().filter(|c| !c.passed).collect();
    if !failures.is_empty() {
        md.push_str("## Failures\n\n");
        for c in failures {
            let _ = writeln!(
                md,
                "### {} ({}) — status `{}`\n",
                cell(&c.case_id),
                c.workflow,
                c.status
            );
            let _ = writeln!(md, "Input: {}\n", cell(&c.input));
            if let Some(e) = &c.error {
                let _ = writeln!(md, "Error: {}\n", cell(e));
            }
            md.push_str("| assertion | expected | actual | result |\n|---|---|---|---|\n");
            for a in &c.assertions {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    a.kind,
                    cell(&a.expected),
                    cell(&a.actual),
                    if a.passed { "pass" } else { "**FAIL**" }
                );
            }
            let _ = writeln!(md, "\nAnswer: {}\n", cell(&c.answer_excerpt));
        }
    }

    md.push_str("## Cases\n\n| case | workflow | result | status | latency | tokens | cost | tools |\n|---|---|---|---|---|---|---|---|\n");
    for c in f.cases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} ms | {} | ${:.6} | {} |",
            cell(&c.case_id),
            c.workflow,
            if c.passed { "pass" } else { "**FAIL**" },
            c.status,
            c.latency_ms,
            c.prompt_tokens + c.completion_tokens,
            c.cost_usd,
            cell(&c.tools_called.join(", "))
        );
    }
    md
}

/// Characters XML 1.0 cannot carry even escaped become U+FFFD.
fn xml_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// The JUnit XML report: one `<testsuite>` for the run, one `<testcase>` per case; a
/// failed case has a `<failure>` (an assertion failed) or an `<error>` (the run failed).
pub fn junit(f: &Finished) -> String {
    write_junit(f).unwrap_or_else(|e| {
        // Writing into a Vec cannot fail; keep the signature simple for callers.
        format!(
            "<!-- the JUnit report could not be written: {} -->",
            xml_text(&e.to_string())
        )
    })
}

fn write_junit(f: &Finished) -> std::io::Result<String> {
    let (run, o) = (f.run, f.outcome);
    let s = &o.scores;
    let errors = f.cases.iter().filter(|c| c.error.is_some()).count();
    let failures = f
        .cases
        .iter()
        .filter(|c| !c.passed && c.error.is_none())
        .count();
    let total_ms: u64 = f.cases.iter().map(|c| c.latency_ms).sum();
    let (tests, failures, errors) = (
        f.cases.len().to_string(),
        failures.to_string(),
        errors.to_string(),
    );
    let time = secs(total_ms);
    let timestamp = run
        .started_at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    let v = &run.versions;
    let mut properties: Vec<(&str, String)> = vec![
        ("run_id", run.id.clone()),
        ("suite_hash", run.suite_hash.clone()),
        ("release_version", v.release_version.clone()),
        ("git_sha", v.git_sha.clone()),
        ("track", v.track.clone()),
        ("provider", v.provider.clone()),
        ("model", v.model.clone()),
        ("prompt_version", v.prompt_version.clone()),
        ("policy_version", v.policy_version.clone()),
        ("tool_schema_hash", v.tool_schema_hash.clone()),
        ("pass_rate", format!("{:.4}", s.pass_rate)),
        (
            "policy_compliance",
            s.policy_compliance
                .map_or_else(|| "n/a".into(), |x| format!("{x:.4}")),
        ),
        (
            "citation_rate",
            s.citation_rate
                .map_or_else(|| "n/a".into(), |x| format!("{x:.4}")),
        ),
        ("latency_p50_ms", s.latency_p50_ms.to_string()),
        ("latency_p95_ms", s.latency_p95_ms.to_string()),
        ("total_tokens", s.total_tokens.to_string()),
        ("cost_usd", format!("{:.6}", s.cost_usd)),
        ("gate", o.gate.verdict.as_str().into()),
        ("timestamp_timezone", "UTC".into()),
    ];
    properties.extend(o.gate.reasons.iter().map(|r| ("gate_reason", r.clone())));
    if let Some(b) = &o.baseline {
        properties.push(("baseline_run_id", b.baseline_run_id.clone()));
        properties.push(("baseline_regressions", b.regressions.to_string()));
    }

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites")
        .with_attributes([
            ("name", "agent-service evals"),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", errors.as_str()),
            ("time", time.as_str()),
        ])
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attributes([
                    ("name", run.suite.as_str()),
                    ("tests", tests.as_str()),
                    ("failures", failures.as_str()),
                    ("errors", errors.as_str()),
                    ("skipped", "0"),
                    ("time", time.as_str()),
                    ("timestamp", timestamp.as_str()),
                ])
                .write_inner_content(|w| {
                    w.create_element("properties").write_inner_content(|w| {
                        for (name, value) in &properties {
                            let value = xml_text(value);
                            w.create_element("property")
                                .with_attributes([("name", *name), ("value", value.as_str())])
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
                    for c in f.cases {
                        write_case(w, &run.suite, c)?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    let mut xml = String::from_utf8(w.into_inner()).map_err(std::io::Error::other)?;
    xml.push('\n');
    Ok(xml)
}

fn write_case(w: &mut Writer<Vec<u8>>, suite: &str, c: &CaseResult) -> std::io::Result<()> {
    let classname = format!("{suite}.{}", c.workflow);
    let time = secs(c.latency_ms);
    let el = w.create_element("testcase").with_attributes([
        ("classname", classname.as_str()),
        ("name", c.case_id.as_str()),
        ("time", time.as_str()),
    ]);
    if c.passed {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| {
        let mut details = format!("input: {}\nstatus: {}\n", c.input, c.status);
        for a in &c.assertions {
            let _ = writeln!(
                details,
                "[{}] {}: expected {}; actual {}",
                if a.passed { "pass" } else { "FAIL" },
                a.kind,
                a.expected,
                a.actual
            );
        }
        let _ = write!(details, "answer: {}", c.answer_excerpt);
        let details = xml_text(&details);
        match &c.error {
            Some(e) => {
                let message = xml_text(e);
                w.create_element("error")
                    .with_attributes([("message", message.as_str()), ("type", "run_error")])
                    .write_text_content(BytesText::new(&details))?;
            }
            None => {
                let failed = c.assertions.iter().filter(|a| !a.passed).count();
                let first = c
                    .assertions
                    .iter()
                    .find(|a| !a.passed)
                    .map(|a| {
                        format!(
                            ": {} (expected {}; actual {})",
                            a.kind, a.expected, a.actual
                        )
                    })
                    .unwrap_or_default();
                let message = xml_text(&format!(
                    "{failed} of {} assertions failed{first}",
                    c.assertions.len()
                ));
                w.create_element("failure")
                    .with_attributes([("message", message.as_str()), ("type", "assertion")])
                    .write_text_content(BytesText::new(&details))?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EvalGate;
    use crate::evals::assertions::AssertionResult;
    use crate::evals::gate::evaluate;
    use crate::evals::result::Versions;
    use crate::evals::score::{score, tests::result};
    use crate::evals::store::RunState;

    fn run() -> EvalRun {
        EvalRun {
            id: "evr_1".into(),
            tenant: "demo".into(),
            suite: "golden".into(),
            suite_hash: "0123456789abcdef".into(),
            origin: "cli".into(),
            status: RunState::Completed,
            done: 2,
            total: 2,
            baseline_run_id: None,
            versions: Versions {
                release_version: "1.0.0".into(),
                git_sha: "abc".into(),
                track: "stable".into(),
                provider: "scripted".into(),
                model: "scripted-v1".into(),
                prompt_version: "p".into(),
                policy_version: "guardrails-v3".into(),
                policy_hash: "h".into(),
                tool_schema_hash: "t".into(),
            },
            requested_by: "cli".into(),
            outcome: None,
            error: None,
            created_at: 1_740_992_400_000,
            started_at: Some(1_740_992_400_000),
            finished_at: Some(1_740_992_401_000),
        }
    }

    fn cases() -> Vec<CaseResult> {
        let mut bad = result("needs <escaping> & \"quotes\" | pipes", 20);
        bad.passed = false;
        bad.assertions = vec![
            AssertionResult {
                kind: "contains".into(),
                expected: "answer contains \"<b>\"".into(),
                actual: "not found in \"a\u{1}b\"".into(),
                passed: false,
            },
            AssertionResult {
                kind: "status".into(),
                expected: "status success".into(),
                actual: "success".into(),
                passed: true,
            },
        ];
        let mut err = result("errored", 0);
        err.passed = false;
        err.status = "error".into();
        err.error = Some("provider_unavailable: down".into());
        vec![result("ok", 10), bad, err]
    }

    #[test]
    fn markdown_has_the_summary_table_failures_and_gate() {
        let cases = cases();
        let scores = score(&cases);
        let outcome = Outcome {
            gate: evaluate(&EvalGate::default(), &scores, None),
            scores,
            baseline: None,
        };
        let md = markdown(&Finished {
            run: &run(),
            outcome: &outcome,
            cases: &cases,
        });
        assert!(md.starts_with("# Eval report: golden — gate FAIL"), "{md}");
        assert!(md.contains("| metric | value | gate | result |"), "{md}");
        assert!(
            md.contains(
                "| pass rate | 33.3% (1/3) | ≥ 100.0% (EVAL_GATE_MIN_PASS_RATE) | **FAIL** |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| policy compliance | n/a (0/0 adversarial cases blocked or gated)"),
            "{md}"
        );
        assert!(
            md.contains("- pass rate 33.3% is below the minimum 100.0%"),
            "{md}"
        );
        assert!(md.contains("## Failures"), "{md}");
        assert!(md.contains("pipes"), "{md}");
        assert!(md.contains("\\| pipes"), "pipes are escaped in cells: {md}");
        assert!(md.contains("Error: provider_unavailable: down"), "{md}");
        assert!(!md.contains("## Baseline comparison"), "{md}");
    }

    #[test]
    fn junit_counts_failures_and_errors_and_escapes() {
        let cases = cases();
        let scores = score(&cases);
        let outcome = Outcome {
            gate: evaluate(&EvalGate::default(), &scores, None),
            scores,
            baseline: None,
        };
        let xml = junit(&Finished {
            run: &run(),
            outcome: &outcome,
            cases: &cases,
        });
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuite name="golden" tests="3" failures="1" errors="1""#),
            "{xml}"
        );
        assert!(
            xml.contains("needs &lt;escaping&gt; &amp; &quot;quotes&quot;"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1}'), "control characters are replaced");
        assert!(
            xml.contains(r#"<error message="provider_unavailable: down" type="run_error">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="gate" value="fail"/>"#),
            "{xml}"
        );
        // Well-formed: every element closes.
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut depth = 0i32;
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(_) => depth += 1,
                Event::End(_) => depth -= 1,
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0);
    }
}
