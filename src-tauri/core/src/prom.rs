//! Prometheus text exposition and OpenMetrics parsing into typed families and samples
//! (`PromScrape`), with the lookups the series need: summed counters and gauges, and
//! histograms aggregated across label sets.
//!
//! A small hand-written parser rather than the `prometheus-parse` crate: that crate matches
//! lines with regexes and silently drops what it does not recognise (so malformed input is
//! never an error with a line number), and it knows neither `# UNIT` nor `# EOF`. This one
//! follows the exposition format's grammar, is strict where a mistake would corrupt data
//! (label escapes, numbers, `le`), and never panics (a test throws random mutations at it).

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// A family's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `untyped` (Prometheus), `unknown` (OpenMetrics), or no `# TYPE` line.
    Unknown,
}

impl MetricType {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "gaugehistogram" => Self::GaugeHistogram,
            "summary" => Self::Summary,
            "info" => Self::Info,
            "stateset" => Self::StateSet,
            "untyped" | "unknown" => Self::Unknown,
            _ => return None,
        })
    }

    /// The suffixes a sample of this family's may carry after the family name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Self::Counter => &["_total", "_created"],
            Self::Histogram => &["_bucket", "_sum", "_count", "_created"],
            Self::GaugeHistogram => &["_bucket", "_gsum", "_gcount"],
            Self::Summary => &["_sum", "_count", "_created"],
            Self::Info => &["_info"],
            Self::Gauge | Self::StateSet | Self::Unknown => &[],
        }
    }
}

type LabelPairs = Vec<(String, String)>;

/// Label pairs, sorted by name, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every `(name, value)` of `filter` is present.
    pub fn matches(&self, filter: &[(&str, &str)]) -> bool {
        filter.iter().all(|(n, v)| self.get(n) == Some(*v))
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Labels {
    fn from(pairs: [(&str, &str); N]) -> Self {
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        v.sort();
        v.dedup_by(|a, b| a.0 == b.0);
        Labels(v)
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The full sample name, e.g. `agent_requests_total` or `x_bucket`.
    pub name: String,
    pub labels: Labels,
    pub value: f64,
    /// As written: milliseconds in the Prometheus format, seconds in OpenMetrics.
    pub timestamp: Option<f64>,
}

/// A metric family: its metadata and its samples in exposition order.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: MetricType,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

impl Family {
    /// The samples that carry the family's value: a counter's `_total` (or, in the old
    /// Prometheus style, the bare name), anything else's bare name.
    pub fn value_samples(&self) -> impl Iterator<Item = &Sample> {
        let total = format!("{}_total", self.name);
        let is_counter = self.kind == MetricType::Counter;
        self.samples
            .iter()
            .filter(move |s| s.name == self.name || is_counter && s.name == total)
    }
}

/// A cumulative histogram: buckets sorted by upper bound, the last one `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// `(le, cumulative count)`.
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromScrape {
    pub families: Vec<Family>,
    /// Whether the text ended with OpenMetrics' `# EOF`.
    pub openmetrics_eof: bool,
}

impl PromScrape {
    /// The family named `name`. Counters are found by either spelling: `x_total` finds a
    /// family declared as `x` (OpenMetrics) and `x` one declared as `x_total` (Prometheus).
    pub fn family(&self, name: &str) -> Option<&Family> {
        let counter = |n: &str| {
            self.families
                .iter()
                .find(|f| f.name == n && f.kind == MetricType::Counter)
        };
        self.families
            .iter()
            .find(|f| f.name == name)
            .or_else(|| counter(name.strip_suffix("_total")?))
            .or_else(|| counter(&format!("{name}_total")))
    }

    /// The sum of the value samples (for a counter its `_total` samples; for a gauge or an
    /// untyped metric the samples named like the family) whose labels match `filter`.
    /// `None` when the family is absent; `Some(0.0)` when it is present but nothing matches.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        let family = self.family(name)?;
        Some(
            family
                .value_samples()
                .filter(|s| s.labels.matches(filter))
                .map(|s| s.value)
                .sum(),
        )
    }

    /// Like [`PromScrape::sum`], grouped by the value of one label (e.g. requests per
    /// `status`); samples without the label count under `""`.
    pub fn sum_by(
        &self,
        name: &str,
        label: &str,
        filter: &[(&str, &str)],
    ) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let Some(family) = self.family(name) else {
            return out;
        };
        for s in family.value_samples().filter(|s| s.labels.matches(filter)) {
            let key = s.labels.get(label).unwrap_or("").to_string();
            *out.entry(key).or_insert(0.0) += s.value;
        }
        out
    }

    /// The histogram family `name` summed over every label set matching `filter`. `None`
    /// when absent or when it has no `+Inf` bucket.
    pub fn histogram(&self, name: &str, filter: &[(&str, &str)]) -> Option<Histogram> {
        let family = self.family(name)?;
        let bucket_name = format!("{}_bucket", family.name);
        let sum_name = format!("{}_sum", family.name);
        let count_name = format!("{}_count", family.name);
        let mut by_le: Vec<(f64, f64)> = Vec::new();
        let (mut sum, mut count) = (0.0, 0.0);
        for s in family.samples.iter().filter(|s| s.labels.matches(filter)) {
            if s.name == bucket_name {
                let le = s.labels.get("le").and_then(parse_float)?;
                match by_le.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, c)) => *c += s.value,
                    None => by_le.push((le, s.value)),
                }
            } else if s.name == sum_name {
                sum += s.value;
            } else if s.name == count_name {
                count += s.value;
            }
        }
        by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
        if by_le.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
            return None;
        }
        Some(Histogram {
            buckets: by_le,
            sum,
            count,
        })
    }

    /// The label values of the first sample of `name` (e.g. `agent_build_info`).
    pub fn labels_of(&self, name: &str) -> Option<&Labels> {
        self.family(name)?.samples.first().map(|s| &s.labels)
    }
}

/// Parses Prometheus text exposition (0.0.4) or OpenMetrics 1.0 text.
pub fn parse(text: &str) -> Result<PromScrape> {
    let mut out = PromScrape::default();
    let mut typed: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |message: String| Error::MetricsParse {
            line: line_no,
            message,
        };
        if out.openmetrics_eof {
            if line.trim().is_empty() {
                continue;
            }
            return Err(err("text after `# EOF`".into()));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start_matches(' ');
            if comment.trim_end() == "EOF" {
                out.openmetrics_eof = true;
                continue;
            }
            let (keyword, rest) = comment.split_once(' ').unwrap_or((comment, ""));
            match keyword {
                "HELP" | "TYPE" | "UNIT" => {
                    let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                    if !is_metric_name(name) {
                        return Err(err(format!(
                            "`# {keyword}` needs a metric name, got {name:?}"
                        )));
                    }
                    let idx = family_index(&mut out, &mut typed, name);
                    let family = &mut out.families[idx];
                    match keyword {
                        "HELP" => {
                            family.help = Some(unescape_help(value).map_err(err)?);
                        }
                        "UNIT" => family.unit = Some(value.trim().to_string()),
                        _ => {
                            let kind = MetricType::parse(value.trim()).ok_or_else(|| {
                                err(format!("unknown metric type {:?} for {name}", value.trim()))
                            })?;
                            if family.kind != MetricType::Unknown || !family.samples.is_empty() {
                                return Err(err(format!(
                                    "`# TYPE` for {name} comes after its samples or a second time"
                                )));
                            }
                            family.kind = kind;
                        }
                    }
                }
                // Any other comment is allowed by the Prometheus format.
                _ => {}
            }
            continue;
        }
        let sample = parse_sample(line).map_err(err)?;
        let idx = owning_family(&out, &sample.name)
            .unwrap_or_else(|| family_index(&mut out, &mut typed, &sample.name.clone()));
        let family = &mut out.families[idx];
        if matches!(
            family.kind,
            MetricType::Histogram | MetricType::GaugeHistogram
        ) && sample.name.ends_with("_bucket")
        {
            match sample.labels.get("le") {
                None => return Err(err(format!("{} has no `le` label", sample.name))),
                Some(le) if parse_float(le).is_none() => {
                    return Err(err(format!("`le` value {le:?} is not a number")));
                }
                Some(_) => {}
            }
        }
        family.samples.push(sample);
    }
    Ok(out)
}

/// The family a sample named `name` belongs to: the last declared family whose name is
/// `name` or `name` minus one of its type's suffixes.
fn owning_family(scrape: &PromScrape, name: &str) -> Option<usize> {
    scrape.families.iter().rposition(|f| {
        f.name == name
            || f.kind
                .suffixes()
                .iter()
                .any(|suffix| name.strip_suffix(suffix).is_some_and(|base| base == f.name))
    })
}

fn family_index(scrape: &mut PromScrape, typed: &mut BTreeMap<String, usize>, name: &str) -> usize {
    if let Some(i) = typed.get(name) {
        return *i;
    }
    scrape.families.push(Family {
        name: name.to_string(),
        kind: MetricType::Unknown,
        help: None,
        unit: None,
        samples: Vec::new(),
    });
    let i = scrape.families.len() - 1;
    typed.insert(name.to_string(), i);
    i
}

fn is_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A float as the exposition formats write them: decimal, exponent, `NaN`, `+Inf`, `-Inf`.
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => return Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => return Some(f64::INFINITY),
        "-Inf" | "-inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    // Rust also accepts "infinity" and "nan" spelled other ways; the formats do not.
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

fn unescape_help(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            // OpenMetrics escapes quotes in HELP too.
            Some('"') => out.push('"'),
            // The Prometheus format keeps any other backslash as it is.
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Ok(out)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("{name:?} is not a valid metric name"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    // An exemplar (` # {...} value`) may follow in OpenMetrics.
    let (values, exemplar) = match rest.find(" # ") {
        Some(i) => (&rest[..i], Some(&rest[i + 3..])),
        None => (rest, None),
    };
    if let Some(ex) = exemplar
        && !ex.trim_start().starts_with('{')
    {
        return Err("an exemplar must start with `{`".into());
    }
    let mut fields = values.split([' ', '\t']).filter(|f| !f.is_empty());
    let value_raw = fields
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    let value = parse_float(value_raw)
        .ok_or_else(|| format!("sample {name} has value {value_raw:?}, which is not a number"))?;
    let timestamp =
        match fields.next() {
            None => None,
            Some(t) => Some(parse_float(t).filter(|t| t.is_finite()).ok_or_else(|| {
                format!("sample {name} has timestamp {t:?}, which is not a number")
            })?),
        };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the value of {name}"));
    }
    labels.sort();
    if labels.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(format!("sample {name} repeats a label name"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels: Labels(labels),
        value,
        timestamp,
    })
}

/// Parses `name="value",...}` (the opening brace already consumed); returns the pairs and
/// what follows the closing brace.
fn parse_labels(mut s: &str) -> Result<(LabelPairs, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("a label has no `=`")?;
        let name = s[..eq].trim_end_matches([' ', '\t']);
        if !is_label_name(name) {
            return Err(format!("{name:?} is not a valid label name"));
        }
        s = s[eq + 1..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {name} must be quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("the value of label {name} is not closed")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => {
                        return Err(format!(
                            "label {name} has the escape \\{other}; only \\\\, \\\" and \\n exist"
                        ));
                    }
                    None => return Err(format!("the value of label {name} is not closed")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        s = s[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(format!("expected `,` or `}}` after label {name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the agent-service's `/metrics` serves (prometheus-client, OpenMetrics).
    const AGENT_METRICS: &str = r#"# HELP agent_requests Workflow requests by final status.
# TYPE agent_requests counter
agent_requests_total{workflow="faq",status="success",track="stable"} 7
agent_requests_total{workflow="faq",status="provider_unavailable",track="stable"} 2
agent_requests_total{workflow="ticket_update",status="approval_required",track="canary"} 1
# HELP agent_request_duration_seconds Latency of workflow requests.
# TYPE agent_request_duration_seconds histogram
agent_request_duration_seconds_sum 3.5
agent_request_duration_seconds_count 10
agent_request_duration_seconds_bucket{le="0.1"} 4
agent_request_duration_seconds_bucket{le="1.0"} 9
agent_request_duration_seconds_bucket{le="+Inf"} 10
# HELP agent_cost_usd Model cost in US dollars.
# TYPE agent_cost_usd counter
# UNIT agent_cost_usd usd
agent_cost_usd_total 0.00046850000000000006
# TYPE agent_queue_depth gauge
agent_queue_depth 3
# TYPE agent_build_info gauge
agent_build_info{version="0.1.0",git_sha="eb178aa",track="stable",model="scripted-v1",prompt_version="prompts-4bf",policy_version="guardrails-v3"} 1
# EOF
"#;

    #[test]
    fn agent_service_exposition() {
        let s = parse(AGENT_METRICS).unwrap();
        assert!(s.openmetrics_eof);
        let kinds: Vec<(&str, MetricType)> = s
            .families
            .iter()
            .map(|f| (f.name.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("agent_requests", MetricType::Counter),
                ("agent_request_duration_seconds", MetricType::Histogram),
                ("agent_cost_usd", MetricType::Counter),
                ("agent_queue_depth", MetricType::Gauge),
                ("agent_build_info", MetricType::Gauge),
            ]
        );
        assert_eq!(s.sum("agent_requests_total", &[]), Some(10.0));
        assert_eq!(s.sum("agent_requests", &[("track", "stable")]), Some(9.0));
        assert_eq!(s.sum("agent_requests", &[("track", "nope")]), Some(0.0));
        assert_eq!(s.sum("agent_missing", &[]), None);
        assert_eq!(s.sum("agent_queue_depth", &[]), Some(3.0));
        assert_eq!(s.sum("agent_cost_usd", &[]), Some(0.00046850000000000006));
        assert_eq!(
            s.family("agent_cost_usd").unwrap().unit.as_deref(),
            Some("usd")
        );
        assert_eq!(
            s.family("agent_requests").unwrap().help.as_deref(),
            Some("Workflow requests by final status.")
        );
        let by_status = s.sum_by("agent_requests", "status", &[]);
        assert_eq!(by_status.get("provider_unavailable"), Some(&2.0));
        assert_eq!(by_status.get("success"), Some(&7.0));
        let h = s.histogram("agent_request_duration_seconds", &[]).unwrap();
        assert_eq!(
            h.buckets,
            vec![(0.1, 4.0), (1.0, 9.0), (f64::INFINITY, 10.0)]
        );
        assert_eq!((h.sum, h.count), (3.5, 10.0));
        assert_eq!(
            s.labels_of("agent_build_info")
                .unwrap()
                .get("policy_version"),
            Some("guardrails-v3")
        );
    }

    /// (input, expected samples as (name, labels, value) or the error's line and a part of
    /// its message).
    /// Samples as (name, labels, value), or the error's line and part of its message.
    type Expected<'a> =
        std::result::Result<Vec<(&'a str, Vec<(&'a str, &'a str)>, f64)>, (usize, &'a str)>;
    /// A sample flattened for comparison.
    type Flat = (String, LabelPairs, f64);

    fn check(input: &str, expect: Expected) {
        match (parse(input), expect) {
            (Ok(scrape), Ok(want)) => {
                let got: Vec<Flat> = scrape
                    .families
                    .iter()
                    .flat_map(|f| f.samples.iter())
                    .map(|s| {
                        (
                            s.name.clone(),
                            s.labels.iter().map(|(a, b)| (a.into(), b.into())).collect(),
                            s.value,
                        )
                    })
                    .collect();
                let want: Vec<Flat> = want
                    .into_iter()
                    .map(|(n, l, v)| {
                        let mut l: LabelPairs =
                            l.into_iter().map(|(a, b)| (a.into(), b.into())).collect();
                        l.sort();
                        (n.into(), l, v)
                    })
                    .collect();
                assert_eq!(got.len(), want.len(), "{input:?}: {got:?}");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!((&g.0, &g.1), (&w.0, &w.1), "{input:?}");
                    assert!(
                        g.2 == w.2 || g.2.is_nan() && w.2.is_nan(),
                        "{input:?}: {} != {}",
                        g.2,
                        w.2
                    );
                }
            }
            (Err(Error::MetricsParse { line, message }), Err((want_line, want_msg))) => {
                assert_eq!(line, want_line, "{input:?}: {message}");
                assert!(
                    message.contains(want_msg),
                    "{input:?}: {message:?} lacks {want_msg:?}"
                );
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn samples_and_escapes() {
        check("up 1", Ok(vec![("up", vec![], 1.0)]));
        check("up 1 1700000000000\n", Ok(vec![("up", vec![], 1.0)]));
        check("x NaN", Ok(vec![("x", vec![], f64::NAN)]));
        check(
            "x +Inf\ny -Inf",
            Ok(vec![
                ("x", vec![], f64::INFINITY),
                ("y", vec![], f64::NEG_INFINITY),
            ]),
        );
        check("x 1.5e3", Ok(vec![("x", vec![], 1500.0)]));
        check("x{} 2", Ok(vec![("x", vec![], 2.0)]));
        check(
            r#"x{a="q\"uote",b="back\\slash",c="new\nline",} 1"#,
            Ok(vec![(
                "x",
                vec![("a", "q\"uote"), ("b", "back\\slash"), ("c", "new\nline")],
                1.0,
            )]),
        );
        check(
            r#"x{a="{},= #"} 1"#,
            Ok(vec![("x", vec![("a", "{},= #")], 1.0)]),
        );
        check("# a free comment\n\nx 1\r\n", Ok(vec![("x", vec![], 1.0)]));
        check(
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1 # {trace_id=\"a\"} 0.5\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 1.5\n# EOF",
            Ok(vec![
                ("h_bucket", vec![("le", "1")], 1.0),
                ("h_bucket", vec![("le", "+Inf")], 2.0),
                ("h_count", vec![], 2.0),
                ("h_sum", vec![], 1.5),
            ]),
        );
    }

    #[test]
    fn malformed_input_names_the_line() {
        check("ok 1\n9bad 1", Err((2, "not a valid metric name")));
        check("x", Err((1, "has no value")));
        check("x abc", Err((1, "not a number")));
        check("x infinity", Err((1, "not a number")));
        check("x 1 2 3", Err((1, "unexpected")));
        check("x 1 ts", Err((1, "timestamp")));
        check(r#"x{a="b} 1"#, Err((1, "not closed")));
        check(r#"x{a=b} 1"#, Err((1, "must be quoted")));
        check(r#"x{a="\t"} 1"#, Err((1, "escape")));
        check(r#"x{a="1" b="2"} 1"#, Err((1, "expected `,`")));
        check(r#"x{a="1",a="2"} 1"#, Err((1, "repeats a label")));
        check(r#"x{1a="1"} 1"#, Err((1, "label name")));
        check("# TYPE x sparkline", Err((1, "unknown metric type")));
        check("x 1\n# TYPE x gauge", Err((2, "after its samples")));
        check("# TYPE x gauge\n# TYPE x counter", Err((2, "second time")));
        check("# TYPE h histogram\nh_bucket 1", Err((2, "no `le`")));
        check(
            "# TYPE h histogram\nh_bucket{le=\"big\"} 1",
            Err((2, "`le` value")),
        );
        check("x 1\n# EOF\ny 2", Err((3, "after `# EOF`")));
        check("x 1 # nope", Err((1, "exemplar")));
        check("# HELP", Err((1, "metric name")));
    }

    #[test]
    fn histograms_sum_across_label_sets_and_need_inf() {
        let s = parse(
            "# TYPE d histogram\n\
             d_bucket{track=\"a\",le=\"1\"} 1\nd_bucket{track=\"a\",le=\"+Inf\"} 2\nd_sum{track=\"a\"} 3\nd_count{track=\"a\"} 2\n\
             d_bucket{track=\"b\",le=\"1\"} 5\nd_bucket{track=\"b\",le=\"+Inf\"} 5\nd_sum{track=\"b\"} 1\nd_count{track=\"b\"} 5\n\
             # TYPE e histogram\ne_bucket{le=\"1\"} 1\n",
        )
        .unwrap();
        let all = s.histogram("d", &[]).unwrap();
        assert_eq!(all.buckets, vec![(1.0, 6.0), (f64::INFINITY, 7.0)]);
        assert_eq!((all.sum, all.count), (4.0, 7.0));
        let b = s.histogram("d", &[("track", "b")]).unwrap();
        assert_eq!(b.buckets, vec![(1.0, 5.0), (f64::INFINITY, 5.0)]);
        assert_eq!(s.histogram("e", &[]), None, "no +Inf bucket");
    }

    /// Random mutations of a valid exposition: every result is a value or a
    /// `MetricsParse` error with a line inside the text, never a panic.
    #[test]
    fn random_mutations_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let alphabet = b"{}\"\\=,# \n\tle+Inf-NaN0.9e_xa";
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..3000 {
            let mut bytes = AGENT_METRICS.as_bytes().to_vec();
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..bytes.len());
                let byte = alphabet[rng.random_range(0..alphabet.len())];
                match rng.random_range(0..3) {
                    0 => bytes.insert(at, byte),
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes[at] = byte,
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            match parse(&text) {
                Ok(_) => ok += 1,
                Err(Error::MetricsParse { line, .. }) => {
                    assert!(line >= 1 && line <= text.split('\n').count(), "line {line}");
                    failed += 1;
                }
                Err(other) => panic!("unexpected error kind: {other}"),
            }
        }
        assert!(ok > 100 && failed > 100, "ok {ok}, failed {failed}");
    }
}
