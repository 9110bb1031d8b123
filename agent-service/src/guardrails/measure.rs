//! Measurement of the guardrails on labelled corpora (JSONL): attack detection per
//! category, false positives on plain and look-alike benign messages, PII and secret recall
//! per kind and locale, false redactions, and the input scan's cost per request. Used by
//! `agent-service guardrails measure` (with a release build for the timings) and by the
//! held-out regression test; and the feature export the training script reads.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::policy::{Action, Policy};
use super::redact::Redactor;
use super::scan::features;

/// One line of an attack/benign corpus.
#[derive(Debug, Clone, Deserialize)]
pub struct Example {
    pub id: String,
    pub label: String,
    pub category: String,
    pub text: String,
}

/// One line of a PII corpus: `text` carries each of `secrets`.
#[derive(Debug, Clone, Deserialize)]
pub struct PiiCase {
    pub id: String,
    pub kind: String,
    pub locale: String,
    pub text: String,
    pub secrets: Vec<String>,
}

/// Counts for one group.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Rate {
    pub n: usize,
    pub hits: usize,
}

impl Rate {
    pub fn rate(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.hits as f64 / self.n as f64
        }
    }

    fn add(&mut self, hit: bool) {
        self.n += 1;
        self.hits += usize::from(hit);
    }
}

/// Detection figures over an attack/benign corpus.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DetectionReport {
    /// Attacks blocked, per category and overall (`all`).
    pub blocked: BTreeMap<String, Rate>,
    /// Attacks blocked or flagged (any action but allow).
    pub caught: BTreeMap<String, Rate>,
    /// Benign messages blocked, per benign category (`plain`, `lookalike`).
    pub false_blocks: BTreeMap<String, Rate>,
    /// Benign messages flagged or worse.
    pub false_flags: BTreeMap<String, Rate>,
    /// Ids of the misses and false positives (for reading, never for tuning on held-out).
    pub missed: Vec<String>,
    pub false_positive_ids: Vec<String>,
}

/// PII figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PiiReport {
    pub recall_by_kind: BTreeMap<String, Rate>,
    pub recall_by_locale: BTreeMap<String, Rate>,
    pub recall: Rate,
    /// Benign texts the redactor changed.
    pub false_redactions: Rate,
    pub missed: Vec<String>,
    pub false_redaction_ids: Vec<String>,
}

/// Scan cost per request in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timing {
    pub chars: usize,
    pub samples: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// Scans every example with `policy` and counts.
pub fn detection(policy: &Policy, examples: &[Example]) -> DetectionReport {
    let mut r = DetectionReport::default();
    for e in examples {
        let d = policy.scan_input(&e.text);
        let blocked = d.action == Action::Block;
        let caught = d.action != Action::Allow;
        if e.label == "attack" {
            for key in [e.category.as_str(), "all"] {
                r.blocked.entry(key.into()).or_default().add(blocked);
                r.caught.entry(key.into()).or_default().add(caught);
            }
            if !blocked {
                r.missed.push(e.id.clone());
            }
        } else {
            for key in [e.category.as_str(), "all"] {
                r.false_blocks.entry(key.into()).or_default().add(blocked);
                r.false_flags.entry(key.into()).or_default().add(caught);
            }
            if caught {
                r.false_positive_ids.push(e.id.clone());
            }
        }
    }
    r
}

/// Whether `out` (a redacted text) still shows any 4-character run of `secret`'s letters
/// and digits that the text around the secret does not itself contain (a kept area code
/// or the last four digits of a card count as a leak).
pub fn leaks(out: &str, secret: &str, context: &str) -> bool {
    let compact = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let sec = compact(secret);
    let untagged = REDACTED_TAG.replace_all(out, " ");
    let out_c: String = compact(&untagged).into_iter().collect();
    let ctx: String = compact(context).into_iter().collect();
    let n = 4.min(sec.len());
    if n == 0 {
        return false;
    }
    sec.windows(n).any(|w| {
        let w: String = w.iter().collect();
        out_c.contains(&w) && !ctx.contains(&w)
    })
}

static REDACTED_TAG: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\[REDACTED:[a-z_]+\]").unwrap_or_else(|e| panic!("tag pattern: {e}"))
});

/// Redacts every case and counts the ones where a secret (or a 5-character part of it)
/// survives; then counts the benign texts the redactor changes at all.
pub fn pii(redactor: &Redactor, cases: &[PiiCase], benign: &[Example]) -> PiiReport {
    let mut r = PiiReport::default();
    for c in cases {
        let out = redactor.redact(&c.text).text;
        let mut context = c.text.clone();
        for s in &c.secrets {
            context = context.replace(s.as_str(), " ");
        }
        let ok = c.secrets.iter().all(|s| !leaks(&out, s, &context));
        r.recall.add(ok);
        r.recall_by_kind.entry(c.kind.clone()).or_default().add(ok);
        r.recall_by_locale
            .entry(c.locale.clone())
            .or_default()
            .add(ok);
        if !ok {
            r.missed.push(c.id.clone());
        }
    }
    for b in benign {
        let out = redactor.redact(&b.text);
        let changed = !out.rules.is_empty();
        r.false_redactions.add(changed);
        if changed {
            r.false_redaction_ids.push(b.id.clone());
        }
    }
    r
}

/// The input scan's cost at `chars` characters: texts built by concatenating the corpus to
/// that length, taking the categories in turn (plain and look-alike benign messages,
/// injections, jailbreaks, exfiltration, encoded payloads), each text scanned `rounds`
/// times.
pub fn timing(policy: &Policy, examples: &[Example], chars: usize, rounds: usize) -> Timing {
    let inputs = timing_inputs(examples, chars);
    let mut samples = Vec::with_capacity(inputs.len() * rounds);
    for _ in 0..rounds {
        for text in &inputs {
            let t = Instant::now();
            let d = policy.scan_input(text);
            std::hint::black_box(&d);
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Timing {
        chars,
        samples: samples.len(),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        max_us: samples.last().copied().unwrap_or(0.0),
    }
}

/// The texts [`timing`] scans: up to 64 texts of `chars` characters, each the corpus's
/// examples concatenated with the categories taken in turn.
pub fn timing_inputs(examples: &[Example], chars: usize) -> Vec<String> {
    let mut by_category: BTreeMap<&str, Vec<&Example>> = BTreeMap::new();
    for e in examples {
        by_category.entry(e.category.as_str()).or_default().push(e);
    }
    let longest = by_category.values().map(Vec::len).max().unwrap_or(0);
    let interleaved =
        (0..longest).flat_map(|i| by_category.values().filter_map(move |v| v.get(i).copied()));
    let mut inputs = Vec::new();
    let mut current = String::new();
    for e in interleaved {
        current.push_str(&e.text);
        current.push('\n');
        if current.chars().count() >= chars {
            let cut: String = current.chars().take(chars).collect();
            inputs.push(cut);
            current.clear();
        }
        if inputs.len() >= 64 {
            break;
        }
    }
    inputs
}

/// Writes the model's features of every example (JSONL: id, windows of hashed n-gram
/// indices and values, signals) for the training script.
pub fn write_features(
    bits: u32,
    examples: &[Example],
    out: &mut impl Write,
) -> std::io::Result<()> {
    for e in examples {
        let windows: Vec<serde_json::Value> = features(bits, &e.text)
            .into_iter()
            .map(|f| {
                let (i, v): (Vec<u32>, Vec<f32>) = f.grams.into_iter().unzip();
                serde_json::json!({"i": i, "v": v, "s": f.signals})
            })
            .collect();
        serde_json::to_writer(&mut *out, &serde_json::json!({"id": e.id, "w": windows}))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A plain-text summary of the figures.
pub fn summary(d: &DetectionReport, p: Option<&PiiReport>, t: Option<&Timing>) -> String {
    let mut s = String::new();
    let pct = |r: &Rate| format!("{:6.2} % ({}/{})", r.rate() * 100.0, r.hits, r.n);
    s.push_str("attack detection (blocked | blocked or flagged)\n");
    for (k, r) in &d.blocked {
        s.push_str(&format!("  {k:<14} {} | {}\n", pct(r), pct(&d.caught[k])));
    }
    s.push_str("false positives on benign (blocked | blocked or flagged)\n");
    for (k, r) in &d.false_blocks {
        s.push_str(&format!(
            "  {k:<14} {} | {}\n",
            pct(r),
            pct(&d.false_flags[k])
        ));
    }
    if let Some(p) = p {
        s.push_str(&format!("PII/secret recall {}\n", pct(&p.recall)));
        for (k, r) in &p.recall_by_kind {
            s.push_str(&format!("  kind   {k:<16} {}\n", pct(r)));
        }
        for (k, r) in &p.recall_by_locale {
            s.push_str(&format!("  locale {k:<16} {}\n", pct(r)));
        }
        s.push_str(&format!(
            "false redactions on benign {}\n",
            pct(&p.false_redactions)
        ));
    }
    if let Some(t) = t {
        s.push_str(&format!(
            "input scan at {} chars: p50 {:.1} us, p99 {:.1} us, max {:.1} us ({} samples)\n",
            t.chars, t.p50_us, t.p99_us, t.max_us, t.samples
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("guardrails-data/corpus")
            .join(name)
    }

    /// The held-out split (never trained or tuned on) through the embedded policy: a change
    /// that loses detection, adds false positives or lets personal data through fails here.
    /// The bounds are the targets (docs/guardrails.md has the figures this model measured).
    #[test]
    fn heldout_regression() {
        let policy = Policy::load(None).expect("embedded policy");
        let examples: Vec<Example> = read_jsonl(&data("heldout.jsonl")).expect("held-out corpus");
        let d = detection(&policy, &examples);
        let caught = d.caught["all"].rate();
        let blocked = d.blocked["all"].rate();
        let plain = d.false_blocks["plain"].rate();
        let lookalike = d.false_blocks["lookalike"].rate();
        assert!(caught >= 0.95, "attacks blocked or flagged {caught:.4}");
        assert!(blocked >= BLOCKED_BOUND, "attacks blocked {blocked:.4}");
        assert!(plain <= 0.01, "plain false blocks {plain:.4}");
        assert!(
            lookalike <= LOOKALIKE_BOUND,
            "look-alike false blocks {lookalike:.4}"
        );

        let cases: Vec<PiiCase> = read_jsonl(&data("pii-heldout.jsonl")).expect("PII corpus");
        let mut benign: Vec<Example> = read_jsonl(&data("pii-benign.jsonl")).expect("benign");
        benign.extend(examples.into_iter().filter(|e| e.label == "benign"));
        let p = pii(&policy.redactor, &cases, &benign);
        assert!(
            p.recall.rate() >= 0.995,
            "PII recall {:.4}",
            p.recall.rate()
        );
        assert!(
            p.false_redactions.rate() <= 0.01,
            "false redactions {:.4}",
            p.false_redactions.rate()
        );
    }

    const LOOKALIKE_BOUND: f64 = 0.05;
    const BLOCKED_BOUND: f64 = 0.95;

    #[test]
    fn leak_check() {
        assert!(!leaks(
            "call [REDACTED:phone] now",
            "0114 496 0104",
            "call now"
        ));
        assert!(leaks(
            "call 0114 [REDACTED:phone] now",
            "0114 496 0104",
            "call now"
        ));
        assert!(leaks("ssn 123456789", "123-45-6789", "ssn"));
        // Digits that are also in the surrounding text do not count.
        assert!(!leaks(
            "order 2024 ok [REDACTED:phone]",
            "+1 2024 55",
            "order 2024 ok"
        ));
    }
}
