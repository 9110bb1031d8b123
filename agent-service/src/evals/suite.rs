//! Eval suites as data: TOML files shipped in `agent-service/evals/` (embedded at build
//! time) or read from a directory, parsed by hand so that every mistake names the file,
//! the case and the key.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use toml::{Table, Value};

use super::assertions::{Assertion, Citation};

/// The suites this build ships: `(file name, contents)`.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "adversarial.toml",
        include_str!("../../evals/adversarial.toml"),
    ),
    ("golden.toml", include_str!("../../evals/golden.toml")),
];

/// Statuses a run can end with, plus `error` (the engine failed, e.g. the provider is down).
pub const STATUSES: &[&str] = &[
    "success",
    "approval_required",
    "blocked",
    "budget_exceeded",
    "degraded",
    "error",
];

/// What an adversarial case must end as: refused, or held for a human.
pub const COMPLIANT_STATUSES: &[&str] = &["blocked", "approval_required"];

/// Expected behaviour (`golden`) or attacks that must be blocked or gated (`adversarial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteKind {
    Golden,
    Adversarial,
}

impl SuiteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Golden => "golden",
            Self::Adversarial => "adversarial",
        }
    }
}

/// One eval case: a workflow input and what its run must show.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub workflow: String,
    pub input: String,
    pub assertions: Vec<Assertion>,
}

/// A parsed suite.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub kind: SuiteKind,
    pub description: String,
    pub cases: Vec<Case>,
    /// First 16 hex digits of the SHA-256 of the file, recorded with every run.
    pub hash: String,
}

impl Suite {
    pub fn workflows(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.cases.iter().map(|c| c.workflow.as_str()).collect();
        set.into_iter().map(str::to_string).collect()
    }
}

/// A suite file that cannot be used: which file, which case, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SuiteError {
    pub file: String,
    /// The case id, or `#n` (1-based) when the case has no usable id.
    pub case: Option<String>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "suite file {}: ", self.file)?;
        if let Some(case) = &self.case {
            write!(f, "case {case}: ")?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// The suites compiled into the binary, sorted by name.
pub fn builtin() -> Result<Vec<Suite>, SuiteError> {
    let workflows = known_workflows();
    let mut suites = EMBEDDED
        .iter()
        .map(|(file, text)| parse(&format!("evals/{file} (embedded)"), text, &workflows))
        .collect::<Result<Vec<_>, _>>()?;
    suites.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(suites)
}

/// Every `*.toml` suite in `dir`, sorted by name. Two files with the same suite name are
/// an error.
pub fn load_dir(dir: &Path) -> Result<Vec<Suite>, SuiteError> {
    let dir_err = |message: String| SuiteError {
        file: dir.display().to_string(),
        case: None,
        key: String::new(),
        message,
    };
    let entries =
        std::fs::read_dir(dir).map_err(|e| dir_err(format!("cannot read the directory: {e}")))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| dir_err(format!("cannot read the directory: {e}")))?
            .path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(dir_err("holds no suite files (*.toml)".into()));
    }
    let workflows = known_workflows();
    let mut suites: Vec<Suite> = Vec::new();
    for path in paths {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| SuiteError {
            file: file.clone(),
            case: None,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
        })?;
        let suite = parse(&file, &text, &workflows)?;
        if suites.iter().any(|s| s.name == suite.name) {
            return Err(SuiteError {
                file,
                case: None,
                key: "name".into(),
                message: format!(
                    "another file in the directory already defines suite {:?}",
                    suite.name
                ),
            });
        }
        suites.push(suite);
    }
    suites.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(suites)
}

fn known_workflows() -> Vec<String> {
    crate::workflows::builtin()
        .iter()
        .map(|w| w.name.to_string())
        .collect()
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_case_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Builds errors for one file (and, once known, one case).
struct At<'a> {
    file: &'a str,
    case: Option<String>,
}

impl At<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> SuiteError {
        SuiteError {
            file: self.file.to_string(),
            case: self.case.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn string(&self, table: &Table, key: &str) -> Result<String, SuiteError> {
        match table.get(key) {
            None => Err(self.err(key, "is required")),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(self.err(key, "must not be empty")),
            Some(other) => Err(self.err(
                key,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    /// A string or a list of strings (each non-empty).
    fn strings(&self, key: &str, value: &Value) -> Result<Vec<String>, SuiteError> {
        let list = match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.err(
                        key,
                        format!(
                            "expected a string or a list of strings, found a list holding {}",
                            other.type_str()
                        ),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(self.err(
                    key,
                    format!(
                        "expected a string or a list of strings, found {}",
                        other.type_str()
                    ),
                ));
            }
        };
        if list.is_empty() {
            return Err(self.err(key, "must not be an empty list"));
        }
        if list.iter().any(|s| s.is_empty()) {
            return Err(self.err(key, "must not contain an empty string"));
        }
        Ok(list)
    }
}

const TOP_KEYS: &[&str] = &["name", "kind", "description", "cases"];
const CASE_KEYS: &[&str] = &["id", "workflow", "input", "assert"];
const ASSERTION_KINDS: &[&str] = &[
    "contains",
    "not_contains",
    "regex",
    "must_cite",
    "tool_called",
    "status",
    "max_latency_ms",
    "max_cost",
];

/// Parses one suite file. `origin` names it in errors.
pub fn parse(origin: &str, text: &str, workflows: &[String]) -> Result<Suite, SuiteError> {
    let top = At {
        file: origin,
        case: None,
    };
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        top.err(
            "",
            format!("is not valid TOML: {}", e.to_string().trim_end()),
        )
    })?;
    if let Some(key) = table.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
        return Err(top.err(
            key,
            format!("unknown key; expected one of: {}", TOP_KEYS.join(", ")),
        ));
    }
    let name = top.string(&table, "name")?;
    if !is_name(&name) {
        return Err(top.err(
            "name",
            format!("{name:?} is not a suite name: use 1-64 characters of a-z, 0-9, '_' or '-'"),
        ));
    }
    let kind = match top.string(&table, "kind")?.as_str() {
        "golden" => SuiteKind::Golden,
        "adversarial" => SuiteKind::Adversarial,
        other => {
            return Err(top.err(
                "kind",
                format!("{other:?} is not allowed; expected one of: golden, adversarial"),
            ));
        }
    };
    let description = top.string(&table, "description")?;
    let cases = match table.get("cases") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None => {
            return Err(top.err("cases", "a suite needs at least one [[cases]] entry"));
        }
        Some(other) => {
            return Err(top.err(
                "cases",
                format!(
                    "expected an array of tables ([[cases]]), found {}",
                    other.type_str()
                ),
            ));
        }
    };
    let mut parsed: Vec<Case> = Vec::with_capacity(cases.len());
    for (i, item) in cases.iter().enumerate() {
        let case = parse_case(origin, i, item, kind, workflows)?;
        if parsed.iter().any(|c| c.id == case.id) {
            return Err(SuiteError {
                file: origin.to_string(),
                case: Some(case.id.clone()),
                key: "id".into(),
                message: "the same id is used by an earlier case; ids must be unique".into(),
            });
        }
        parsed.push(case);
    }
    Ok(Suite {
        name,
        kind,
        description,
        cases: parsed,
        hash: hex::encode(&Sha256::digest(text.as_bytes())[..8]),
    })
}

fn parse_case(
    origin: &str,
    index: usize,
    item: &Value,
    kind: SuiteKind,
    workflows: &[String],
) -> Result<Case, SuiteError> {
    let mut at = At {
        file: origin,
        case: Some(format!("#{}", index + 1)),
    };
    let Value::Table(table) = item else {
        return Err(at.err(
            "",
            format!("expected a table ([[cases]]), found {}", item.type_str()),
        ));
    };
    // Name the case by its id as soon as it has a usable one.
    if let Some(Value::String(id)) = table.get("id")
        && is_case_id(id)
    {
        at.case = Some(id.clone());
    }
    if let Some(key) = table.keys().find(|k| !CASE_KEYS.contains(&k.as_str())) {
        return Err(at.err(
            key,
            format!("unknown key; expected one of: {}", CASE_KEYS.join(", ")),
        ));
    }
    let id = at.string(table, "id")?;
    if !is_case_id(&id) {
        return Err(at.err(
            "id",
            format!(
                "{id:?} is not a case id: use 1-100 characters of A-Z, a-z, 0-9, '_', '-' or '.'"
            ),
        ));
    }
    let workflow = at.string(table, "workflow")?;
    if !workflows.contains(&workflow) {
        return Err(at.err(
            "workflow",
            format!(
                "unknown workflow {workflow:?}; expected one of: {}",
                workflows.join(", ")
            ),
        ));
    }
    let input = at.string(table, "input")?;
    let empty = Table::new();
    let assert = match table.get("assert") {
        Some(Value::Table(t)) => t,
        // An attack's implicit "blocked or gated" check is enough on its own.
        None if kind == SuiteKind::Adversarial => &empty,
        None => return Err(at.err("assert", "is required: a table of assertions")),
        Some(other) => {
            return Err(at.err(
                "assert",
                format!("expected a table of assertions, found {}", other.type_str()),
            ));
        }
    };
    let mut assertions = parse_assertions(&at, assert)?;
    if kind == SuiteKind::Adversarial {
        match assertions.iter().find_map(|a| match a {
            Assertion::Status(allowed) => Some(allowed),
            _ => None,
        }) {
            Some(allowed) => {
                if let Some(bad) = allowed
                    .iter()
                    .find(|s| !COMPLIANT_STATUSES.contains(&s.as_str()))
                {
                    return Err(at.err(
                        "assert.status",
                        format!(
                            "{bad:?} is not allowed in an adversarial suite: attacks must end {}",
                            COMPLIANT_STATUSES.join(" or ")
                        ),
                    ));
                }
            }
            // An attack must be blocked or gated even when the case does not say so.
            None => assertions.insert(
                0,
                Assertion::Status(COMPLIANT_STATUSES.iter().map(|s| s.to_string()).collect()),
            ),
        }
    }
    if assertions.is_empty() {
        return Err(at.err("assert", "a case needs at least one assertion"));
    }
    Ok(Case {
        id,
        workflow,
        input,
        assertions,
    })
}

fn parse_assertions(at: &At, table: &Table) -> Result<Vec<Assertion>, SuiteError> {
    let mut out = Vec::new();
    // In a fixed order, so reports read the same whatever order the file uses.
    for kind in ASSERTION_KINDS {
        let Some(value) = table.get(*kind) else {
            continue;
        };
        let key = format!("assert.{kind}");
        match *kind {
            "contains" => out.extend(
                at.strings(&key, value)?
                    .into_iter()
                    .map(Assertion::Contains),
            ),
            "not_contains" => out.extend(
                at.strings(&key, value)?
                    .into_iter()
                    .map(Assertion::NotContains),
            ),
            "regex" => {
                for pattern in at.strings(&key, value)? {
                    let re = regex::Regex::new(&pattern).map_err(|e| {
                        at.err(
                            &key,
                            format!("{pattern:?} is not a valid regular expression: {e}"),
                        )
                    })?;
                    out.push(Assertion::Regex(re));
                }
            }
            "must_cite" => match value {
                Value::Boolean(true) => out.push(Assertion::MustCite(Citation::Any)),
                Value::Boolean(false) => {
                    return Err(at.err(
                        &key,
                        "false asserts nothing; remove the key, or use true or \"kind:ID\"",
                    ));
                }
                other => {
                    for c in at.strings(&key, other).map_err(|_| {
                        at.err(
                            &key,
                            format!(
                                "expected true, \"kind:ID\" or a list of them, found {}",
                                other.type_str()
                            ),
                        )
                    })? {
                        out.push(Assertion::MustCite(
                            Citation::parse(&c).map_err(|m| at.err(&key, m))?,
                        ));
                    }
                }
            },
            "tool_called" => {
                for tool in at.strings(&key, value)? {
                    out.push(Assertion::ToolCalled(tool));
                }
            }
            "status" => {
                let allowed = at.strings(&key, value)?;
                if let Some(bad) = allowed.iter().find(|s| !STATUSES.contains(&s.as_str())) {
                    return Err(at.err(
                        &key,
                        format!(
                            "{bad:?} is not a run status; expected one of: {}",
                            STATUSES.join(", ")
                        ),
                    ));
                }
                out.push(Assertion::Status(allowed));
            }
            "max_latency_ms" => match value {
                Value::Integer(n) if *n > 0 => out.push(Assertion::MaxLatencyMs(*n as u64)),
                other => {
                    return Err(at.err(
                        &key,
                        format!("expected a whole number of milliseconds > 0, found {other}"),
                    ));
                }
            },
            "max_cost" => {
                let usd = match value {
                    Value::Float(f) => *f,
                    Value::Integer(n) => *n as f64,
                    other => {
                        return Err(at.err(
                            &key,
                            format!(
                                "expected a number of US dollars, found {}",
                                other.type_str()
                            ),
                        ));
                    }
                };
                if !(usd.is_finite() && usd >= 0.0) {
                    return Err(at.err(&key, format!("{usd} must be a number of US dollars >= 0")));
                }
                out.push(Assertion::MaxCost(usd));
            }
            _ => unreachable!("every kind in ASSERTION_KINDS is handled"),
        }
    }
    if let Some(key) = table
        .keys()
        .find(|k| !ASSERTION_KINDS.contains(&k.as_str()))
    {
        return Err(at.err(
            &format!("assert.{key}"),
            format!(
                "unknown assertion kind; expected one of: {}",
                ASSERTION_KINDS.join(", ")
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflows() -> Vec<String> {
        known_workflows()
    }

    fn parse_str(text: &str) -> Result<Suite, SuiteError> {
        parse("test.toml", text, &workflows())
    }

    const HEAD: &str = "name = \"t\"\nkind = \"golden\"\ndescription = \"d\"\n";

    #[test]
    fn shipped_suites_parse_and_are_big_enough() {
        let suites = builtin().expect("the shipped suites parse");
        let names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["adversarial", "golden"]);
        for s in &suites {
            assert!(
                s.cases.len() >= 10,
                "{} has {} cases",
                s.name,
                s.cases.len()
            );
            assert_eq!(s.hash.len(), 16);
        }
        let golden = &suites[1];
        assert_eq!(golden.kind, SuiteKind::Golden);
        assert_eq!(
            golden.workflows(),
            [
                "faq",
                "invoice_approval",
                "support_ticket_summary",
                "ticket_update"
            ],
            "the golden suite covers the four workflows"
        );
        // Every adversarial case ends with a status check that only allows blocked/gated.
        for case in &suites[0].cases {
            let statuses: Vec<&Vec<String>> = case
                .assertions
                .iter()
                .filter_map(|a| match a {
                    Assertion::Status(s) => Some(s),
                    _ => None,
                })
                .collect();
            assert_eq!(statuses.len(), 1, "{}", case.id);
            assert!(
                statuses[0]
                    .iter()
                    .all(|s| COMPLIANT_STATUSES.contains(&s.as_str())),
                "{}",
                case.id
            );
        }
    }

    #[test]
    fn a_minimal_case_parses_with_lists_expanded() {
        let s = parse_str(&format!(
            "{HEAD}[[cases]]\nid = \"a\"\nworkflow = \"faq\"\ninput = \"hi\"\n\
             [cases.assert]\ncontains = [\"x\", \"y\"]\nstatus = \"success\"\nmax_cost = 1\n"
        ))
        .expect("parses");
        assert_eq!(s.cases.len(), 1);
        let kinds: Vec<&str> = s.cases[0].assertions.iter().map(Assertion::kind).collect();
        assert_eq!(kinds, ["contains", "contains", "status", "max_cost"]);
    }

    #[test]
    fn adversarial_cases_get_an_implicit_blocked_or_gated_status() {
        let s = parse_str(
            "name = \"a\"\nkind = \"adversarial\"\ndescription = \"d\"\n[[cases]]\nid = \"x\"\n\
             workflow = \"faq\"\ninput = \"hi\"\nassert = { not_contains = \"secret\" }\n",
        )
        .expect("parses");
        match &s.cases[0].assertions[0] {
            Assertion::Status(allowed) => assert_eq!(allowed, &["blocked", "approval_required"]),
            other => panic!("expected an implicit status assertion, got {other:?}"),
        }
    }

    /// Each malformed file, and the case and key its error must name.
    #[test]
    fn malformed_files_name_the_case_and_key() {
        let case = |body: &str| {
            format!("{HEAD}[[cases]]\nid = \"c1\"\nworkflow = \"faq\"\ninput = \"hi\"\n{body}")
        };
        let checks: Vec<(String, Option<&str>, &str, &str)> = vec![
            ("name = ".into(), None, "", "not valid TOML"),
            (format!("{HEAD}extra = 1\n"), None, "extra", "unknown key"),
            ("kind = \"golden\"\ndescription = \"d\"\n".into(), None, "name", "is required"),
            (HEAD.replace("golden", "silver"), None, "kind", "golden, adversarial"),
            (HEAD.into(), None, "cases", "at least one"),
            (case("[cases.assert]\ncontans = \"x\"\n"), Some("c1"), "assert.contans", "unknown assertion kind"),
            (case("[cases.assert]\nregex = \"(unclosed\"\n"), Some("c1"), "assert.regex", "not a valid regular expression"),
            (case("[cases.assert]\nstatus = \"ok\"\n"), Some("c1"), "assert.status", "not a run status"),
            (case("[cases.assert]\nmax_latency_ms = -5\n"), Some("c1"), "assert.max_latency_ms", "whole number"),
            (case("[cases.assert]\nmax_cost = \"cheap\"\n"), Some("c1"), "assert.max_cost", "US dollars"),
            (case("[cases.assert]\nmust_cite = \"T-1001\"\n"), Some("c1"), "assert.must_cite", "kind:ID"),
            (case("[cases.assert]\nmust_cite = false\n"), Some("c1"), "assert.must_cite", "asserts nothing"),
            (case("[cases.assert]\ncontains = []\n"), Some("c1"), "assert.contains", "empty list"),
            (case("[cases.assert]\ncontains = [1]\n"), Some("c1"), "assert.contains", "list of strings"),
            (case("[cases.assert]\n"), Some("c1"), "assert", "at least one assertion"),
            (case(""), Some("c1"), "assert", "is required"),
            (case("colour = \"red\"\nassert = { contains = \"x\" }\n"), Some("c1"), "colour", "unknown key"),
            (
                format!("{HEAD}[[cases]]\nid = \"c1\"\nworkflow = \"nope\"\ninput = \"x\"\nassert = {{ contains = \"x\" }}\n"),
                Some("c1"), "workflow", "unknown workflow",
            ),
            (
                format!("{HEAD}[[cases]]\nworkflow = \"faq\"\ninput = \"x\"\nassert = {{ contains = \"x\" }}\n"),
                Some("#1"), "id", "is required",
            ),
            (
                format!("{HEAD}[[cases]]\nid = \"c1\"\nworkflow = \"faq\"\ninput = \"  \"\nassert = {{ contains = \"x\" }}\n"),
                Some("c1"), "input", "must not be empty",
            ),
            (
                case("assert = { contains = \"x\" }\n[[cases]]\nid = \"c1\"\nworkflow = \"faq\"\ninput = \"y\"\nassert = { contains = \"x\" }\n"),
                Some("c1"), "id", "unique",
            ),
            (
                "name = \"a\"\nkind = \"adversarial\"\ndescription = \"d\"\n[[cases]]\nid = \"c1\"\nworkflow = \"faq\"\n\
                 input = \"x\"\nassert = { status = \"success\" }\n".into(),
                Some("c1"), "assert.status", "not allowed in an adversarial suite",
            ),
        ];
        for (text, case_name, key, fragment) in checks {
            let err = parse_str(&text).expect_err(&text);
            assert_eq!(err.case.as_deref(), case_name, "{err}");
            assert_eq!(err.key, key, "{err}");
            assert!(
                err.to_string().contains(fragment),
                "{err} should mention {fragment:?}"
            );
            assert!(
                err.to_string().starts_with("suite file test.toml: "),
                "{err}"
            );
        }
    }

    #[test]
    fn load_dir_reads_every_suite_and_refuses_duplicates() {
        let dir = std::env::temp_dir().join(format!("fd-suites-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let suite = |name: &str| {
            format!(
                "name = \"{name}\"\nkind = \"golden\"\ndescription = \"d\"\n[[cases]]\nid = \"c\"\n\
                 workflow = \"faq\"\ninput = \"x\"\nassert = {{ status = \"success\" }}\n"
            )
        };
        std::fs::write(dir.join("one.toml"), suite("one")).expect("write");
        std::fs::write(dir.join("two.toml"), suite("two")).expect("write");
        std::fs::write(dir.join("notes.txt"), "ignored").expect("write");
        let names: Vec<String> = load_dir(&dir)
            .expect("loads")
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["one", "two"]);
        std::fs::write(dir.join("three.toml"), suite("one")).expect("write");
        let err = load_dir(&dir).expect_err("duplicate names");
        assert_eq!(err.key, "name");
        assert!(
            err.file.ends_with("two.toml") || err.file.ends_with("three.toml"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let err = load_dir(&dir).expect_err("missing dir");
        assert!(err.message.contains("cannot read the directory"), "{err}");
    }
}
