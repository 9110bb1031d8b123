//! Prometheus: the alert rules use metrics agent-service really exports, count exactly the
//! 5xx statuses as errors, cover the overview's thresholds (p99, error rate, queue depth,
//! budget burn) and link to runbook sections that exist; promtool accepts the config and
//! rules, the rule tests pass, and every threshold is tight (moving it either way breaks
//! alerts_test.yml).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use agent_service::error::ErrorCode;
use agent_service::metrics::{KindLabels, Metrics, RequestLabels};
use serde_json::Value;

use crate::{deploy_file, deploy_text, deploy_yaml, have};

/// The alerts the bundle must ship (the overview's thresholds, target down, circuit open).
const ALERTS: &[&str] = &[
    "AgentServiceHighP99Latency",
    "AgentServiceHighErrorRate",
    "AgentServiceQueueBacklog",
    "AgentServiceBudgetExceededRate",
    "AgentServiceCostBurn",
    "AgentServiceTargetDown",
    "AgentServiceCircuitOpen",
];

fn rules() -> Vec<Value> {
    let alerts = deploy_yaml("prometheus/alerts.yml");
    alerts["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn rule(alert: &str) -> Value {
    rules()
        .into_iter()
        .find(|r| r["alert"] == alert)
        .unwrap_or_else(|| panic!("alerts.yml has no alert {alert}"))
}

#[test]
fn the_spec_thresholds_each_have_an_alert_a_test_and_a_runbook_section() {
    let names: Vec<String> = rules()
        .iter()
        .filter_map(|r| r["alert"].as_str().map(String::from))
        .collect();
    assert_eq!(names, ALERTS, "alerts.yml");
    let tests = deploy_yaml("prometheus/alerts_test.yml");
    let tested: BTreeSet<String> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .filter_map(|t| t["alertname"].as_str().map(String::from))
        .collect();
    let runbook = deploy_text("RUNBOOK.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(slug)
        .collect();
    for alert in ALERTS {
        assert!(
            tested.contains(*alert),
            "alerts_test.yml never expects {alert} to fire"
        );
        let r = rule(alert);
        let url = r["annotations"]["runbook_url"].as_str().unwrap_or_default();
        let anchor = url
            .strip_prefix("deploy/RUNBOOK.md#")
            .unwrap_or_else(|| panic!("{alert}: runbook_url {url:?}"));
        assert!(
            anchors.contains(anchor),
            "{alert}: RUNBOOK.md has no section #{anchor} (sections: {anchors:?})"
        );
        for key in ["summary", "description"] {
            assert!(
                r["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{alert}: annotation {key}"
            );
        }
        assert!(
            r["labels"]["severity"].is_string(),
            "{alert}: severity label"
        );
    }
}

/// GitHub's heading anchors: lower-case, spaces to '-', punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// `agent_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("agent_") {
        let start = i + pos;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            names.insert(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

#[test]
fn alerts_use_metrics_agent_service_exports() {
    // Families without a child print nothing, so give the labelled ones a sample each.
    let metrics = Metrics::new();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            workflow: "faq".into(),
            status: "success".into(),
            track: "stable".into(),
        })
        .inc();
    metrics
        .budget_exceeded
        .get_or_create(&KindLabels {
            kind: "tokens".into(),
        })
        .inc();
    metrics.set_circuit("provider", 0);
    let exposition = metrics.encode();
    let declared: BTreeSet<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for r in rules() {
        let expr = r["expr"].as_str().expect("expr");
        for name in metric_names(expr) {
            let family = ["_bucket", "_total", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|f| declared.contains(f)))
                .or_else(|| declared.get(name.as_str()).copied());
            assert!(
                family.is_some(),
                "alert {}: {name} is not a metric agent-service exports (its families: {declared:?})",
                r["alert"]
            );
        }
    }
}

/// Every error code, by an exhaustive match: a new code fails to compile here until it is
/// listed, so the error-rate alert cannot silently miss it.
fn all_error_codes() -> Vec<ErrorCode> {
    use ErrorCode::*;
    let all = vec![
        InvalidInput,
        MalformedJson,
        UnsupportedMediaType,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        UnknownWorkflow,
        Conflict,
        IdempotencyKeyReused,
        IdempotencyInProgress,
        PayloadTooLarge,
        RateLimited,
        Overloaded,
        ShuttingDown,
        ProviderUnavailable,
        ProviderTimeout,
        ProviderError,
        TenantBudgetExceeded,
        WritesFrozen,
        DependencyUnavailable,
        Internal,
    ];
    for code in &all {
        match code {
            InvalidInput
            | MalformedJson
            | UnsupportedMediaType
            | Unauthorized
            | Forbidden
            | NotFound
            | MethodNotAllowed
            | UnknownWorkflow
            | Conflict
            | IdempotencyKeyReused
            | IdempotencyInProgress
            | PayloadTooLarge
            | RateLimited
            | Overloaded
            | ShuttingDown
            | ProviderUnavailable
            | ProviderTimeout
            | ProviderError
            | TenantBudgetExceeded
            | WritesFrozen
            | DependencyUnavailable
            | Internal => {}
        }
    }
    all
}

#[test]
fn the_error_rate_counts_exactly_the_5xx_error_codes() {
    let expr = rule("AgentServiceHighErrorRate")["expr"]
        .as_str()
        .unwrap()
        .to_string();
    let start = expr
        .find("status=~\"")
        .expect("the error rate selects statuses with status=~")
        + "status=~\"".len();
    let end = start + expr[start..].find('"').unwrap();
    let counted: BTreeSet<&str> = expr[start..end].split('|').collect();
    let server_errors: BTreeSet<&str> = all_error_codes()
        .into_iter()
        .filter(|c| c.status().is_server_error())
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        counted, server_errors,
        "AgentServiceHighErrorRate must count exactly the codes answered with 5xx"
    );
    let header = deploy_text("prometheus/alerts.yml");
    for code in &server_errors {
        assert!(
            header.contains(&format!("{code},"))
                || header.contains(&format!("{code}:"))
                || header.contains(&format!("{code}.")),
            "alerts.yml's header must list {code} among the errors"
        );
    }
}

#[test]
fn prometheus_scrapes_the_pods_and_the_compose_service() {
    let config = deploy_yaml("prometheus/prometheus.yml");
    let rule_files: Vec<&str> = config["rule_files"]
        .as_array()
        .expect("rule_files")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(rule_files, ["alerts.yml"]);
    let jobs = config["scrape_configs"].as_array().expect("scrape_configs");
    let job = |name: &str| {
        jobs.iter()
            .find(|j| j["job_name"] == name)
            .unwrap_or_else(|| panic!("job {name}"))
    };

    let compose = deploy_yaml("compose.yaml");
    let service_port = compose["services"]["agent-service"]["environment"]["BIND_ADDR"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .expect("compose BIND_ADDR");
    let targets = &job("agent-service")["static_configs"][0]["targets"];
    assert_eq!(
        targets,
        &serde_json::json!([format!("agent-service:{service_port}")]),
        "the compose target"
    );

    let pods = job("agent-service-pods");
    assert_eq!(pods["kubernetes_sd_configs"][0]["role"], "pod");
    let relabel = pods["relabel_configs"].as_array().expect("relabel_configs");
    let keeps_annotated = relabel.iter().any(|r| {
        r["action"] == "keep"
            && r["regex"] == "true"
            && r["source_labels"]
                == serde_json::json!(["__meta_kubernetes_pod_annotation_prometheus_io_scrape"])
    });
    assert!(
        keeps_annotated,
        "the pod job must keep only pods annotated prometheus.io/scrape: \"true\""
    );
    for (meta, target) in [
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_path",
            "__metrics_path__",
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_port",
            "__address__",
        ),
    ] {
        assert!(
            relabel.iter().any(|r| r["target_label"] == target
                && r["source_labels"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|l| l == meta))),
            "the pod job must set {target} from {meta}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// promtool

fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A scratch directory for this test process.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("deploy-policy-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn promtool_accepts_the_config_and_the_rules_and_the_rule_tests_pass() {
    if !have("promtool") {
        return;
    }
    let dir = deploy_file("prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"][..],
    ] {
        let o = promtool(args, &dir);
        assert!(
            o.status.success(),
            "promtool {}:\n{}",
            args.join(" "),
            text(&o)
        );
    }
    let o = promtool(&["check", "config", "prometheus.yml"], &dir);
    if o.status.success() {
        return;
    }
    // Debian's promtool is built without Kubernetes service discovery. Check everything
    // else: the same config with the pod discovery swapped for a static pod address.
    assert!(
        text(&o).contains("kubernetes_sd_configs not found"),
        "promtool check config prometheus.yml:\n{}",
        text(&o)
    );
    eprintln!(
        "NOTE: this promtool has no Kubernetes discovery; checking prometheus.yml with a static pod target in its place"
    );
    let mut config = deploy_yaml("prometheus/prometheus.yml");
    for job in config["scrape_configs"]
        .as_array_mut()
        .expect("scrape_configs")
    {
        let job = job.as_object_mut().expect("job");
        if job.remove("kubernetes_sd_configs").is_some() {
            job.insert(
                "static_configs".into(),
                serde_json::json!([{"targets": ["10.0.0.1:8080"]}]),
            );
        }
    }
    let tmp = scratch("config");
    std::fs::write(
        tmp.join("prometheus.yml"),
        serde_norway::to_string(&config).unwrap(),
    )
    .unwrap();
    std::fs::copy(dir.join("alerts.yml"), tmp.join("alerts.yml")).unwrap();
    let o = promtool(&["check", "config", "prometheus.yml"], &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        o.status.success(),
        "promtool check config (pod discovery swapped for a static target):\n{}",
        text(&o)
    );
}

/// (alert, text in its expression, the same text with the threshold moved): moving a
/// threshold either way must make alerts_test.yml fail, so the tests pin it exactly.
const THRESHOLD_MOVES: &[(&str, &str, &str)] = &[
    ("AgentServiceHighP99Latency", ") > 30", ") > 29.9"),
    ("AgentServiceHighP99Latency", ") > 30", ") > 33"),
    ("AgentServiceHighErrorRate", "> 0.01", "> 0.0099"),
    ("AgentServiceHighErrorRate", "> 0.01", "> 0.0111"),
    ("AgentServiceHighErrorRate", "|provider_error|", "|"),
    ("AgentServiceQueueBacklog", "> 100", "> 99"),
    ("AgentServiceQueueBacklog", "> 100", "> 101"),
    ("AgentServiceBudgetExceededRate", "> 0.05", "> 0.048"),
    ("AgentServiceBudgetExceededRate", "> 0.05", "> 0.052"),
    ("AgentServiceCostBurn", "* 3600 > 10", "* 3600 > 9.8"),
    ("AgentServiceCostBurn", "* 3600 > 10", "* 3600 > 10.3"),
    ("AgentServiceTargetDown", "== 0", "<= 1"),
    ("AgentServiceCircuitOpen", "== 2", ">= 1"),
];

#[test]
fn every_alert_threshold_is_pinned_by_the_rule_tests() {
    if !have("promtool") {
        return;
    }
    let original = deploy_text("prometheus/alerts.yml");
    let tmp = scratch("thresholds");
    std::fs::copy(
        deploy_file("prometheus/alerts_test.yml"),
        tmp.join("alerts_test.yml"),
    )
    .unwrap();
    let mut survivors = Vec::new();
    for (alert, from, to) in THRESHOLD_MOVES {
        let expr = rule(alert)["expr"].as_str().unwrap().to_string();
        assert!(
            expr.contains(from),
            "{alert}: expression {expr:?} no longer contains {from:?}; update THRESHOLD_MOVES"
        );
        let start = original
            .find(&format!("- alert: {alert}\n"))
            .expect("the rule in alerts.yml");
        let end = original[start + 1..]
            .find("- alert: ")
            .map_or(original.len(), |e| start + 1 + e);
        let at = start
            + original[start..end]
                .find(from)
                .expect("the threshold inside its rule");
        let moved = format!("{}{to}{}", &original[..at], &original[at + from.len()..]);
        std::fs::write(tmp.join("alerts.yml"), moved).unwrap();
        if promtool(&["test", "rules", "alerts_test.yml"], &tmp)
            .status
            .success()
        {
            survivors.push(format!("{alert}: {from:?} → {to:?}"));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        survivors.is_empty(),
        "alerts_test.yml still passes with these thresholds moved:\n  - {}",
        survivors.join("\n  - ")
    );
}
