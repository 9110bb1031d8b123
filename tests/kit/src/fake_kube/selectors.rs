//! Label and field selectors as the API server parses them.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Req>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_req(part)?);
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => labels.get(k) == Some(v),
            Req::NotEq(k, v) => labels.get(k) != Some(v),
            Req::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Req::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Req::Exists(k) => labels.contains_key(k),
            Req::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_req(part: &str) -> Result<Req, String> {
    let bad = || format!("unable to parse requirement: {part:?}");
    for (op, neg) in [(" notin ", true), (" in ", false)] {
        if let Some(i) = part.find(op) {
            let key = part[..i].trim();
            let vals = part[i + op.len()..].trim();
            let vals = vals
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(bad)?;
            let vals: Vec<String> = vals.split(',').map(|v| v.trim().to_string()).collect();
            check_key(key).map_err(|_| bad())?;
            return Ok(if neg {
                Req::NotIn(key.into(), vals)
            } else {
                Req::In(key.into(), vals)
            });
        }
    }
    if let Some((k, v)) = part.split_once("!=") {
        check_key(k.trim()).map_err(|_| bad())?;
        return Ok(Req::NotEq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        check_key(k.trim()).map_err(|_| bad())?;
        return Ok(Req::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some(k) = part.strip_prefix('!') {
        check_key(k.trim()).map_err(|_| bad())?;
        return Ok(Req::NotExists(k.trim().into()));
    }
    check_key(part).map_err(|_| bad())?;
    Ok(Req::Exists(part.into()))
}

fn check_key(k: &str) -> Result<(), ()> {
    let ok = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok { Ok(()) } else { Err(()) }
}

/// A parsed `fieldSelector`: `metadata.name` and `metadata.namespace` (`=`, `==`, `!=`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    pub fn parse(s: &str, kind: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v, eq) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let k = k.trim();
            let supported = matches!(k, "metadata.name" | "metadata.namespace")
                || (kind == "Event"
                    && (k.starts_with("involvedObject.")
                        || k.starts_with("regarding.")
                        || matches!(
                            k,
                            "reason" | "type" | "reportingComponent" | "reportingController"
                        )))
                || (kind == "Pod" && k == "status.phase");
            if !supported {
                return Err(format!(
                    "\"{k}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                ));
            }
            out.push((k.to_string(), v.trim().to_string(), eq));
        }
        Ok(Self(out))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, want, eq)| {
            let mut cur = obj;
            for seg in path.split('.') {
                cur = &cur[seg];
            }
            let have = cur.as_str().unwrap_or("");
            (have == want) == *eq
        })
    }
}

/// The labels of an object.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    string_map(&obj["metadata"]["labels"])
}

pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a `LabelSelector` object (`matchLabels` + `matchExpressions`) selects `labels`.
pub fn selector_object_matches(sel: &Value, labels: &BTreeMap<String, String>) -> bool {
    let ml = string_map(&sel["matchLabels"]);
    if !ml.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return false;
    }
    let Some(exprs) = sel["matchExpressions"].as_array() else {
        return true;
    };
    exprs.iter().all(|e| {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let have = labels.get(key).map(String::as_str);
        match e["operator"].as_str().unwrap_or("") {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

/// A `LabelSelector` object as the selector string of a Scale status.
pub fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = string_map(&sel["matchLabels"])
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fake_kube_label_selectors_parse_and_match() {
        let l = labels(&[("app", "web"), ("track", "canary")]);
        assert!(
            LabelSelector::parse("app=web,track==canary")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("app=web,track!=canary")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelSelector::parse("track in (canary, stable)")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelSelector::parse("track notin (canary)")
                .unwrap()
                .matches(&l)
        );
        assert!(LabelSelector::parse("app,!missing").unwrap().matches(&l));
        assert!(!LabelSelector::parse("missing").unwrap().matches(&l));
        assert!(LabelSelector::parse("").unwrap().matches(&l));
        assert!(LabelSelector::parse("track in canary").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
    }

    #[test]
    fn fake_kube_field_selectors() {
        let obj = serde_json::json!({"metadata": {"name": "web", "namespace": "p"}});
        assert!(
            FieldSelector::parse("metadata.name=web", "Deployment")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=web", "Deployment")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("spec.replicas=1", "Deployment").is_err());
    }
}
