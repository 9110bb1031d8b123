//! deploy/compose.yaml: pinned images, health-gated start, no secret values, and the
//! agent-service container run the way the image and Kubernetes run it.

use deploy_policy::dockerfile::{image_ref, is_sha256_digest};
use deploy_policy::policy::is_secret_key;
use serde_json::{Value, json};

use crate::deploy_yaml;
use crate::dockerfile::{healthcheck_argv, runtime_user};

fn services() -> serde_json::Map<String, Value> {
    deploy_yaml("compose.yaml")["services"]
        .as_object()
        .expect("services")
        .clone()
}

fn seconds(duration: &str) -> u64 {
    let (n, unit) = duration.split_at(
        duration
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(duration.len()),
    );
    let n: u64 = n
        .parse()
        .unwrap_or_else(|_| panic!("duration {duration:?}"));
    match unit {
        "s" | "" => n,
        "m" => n * 60,
        _ => panic!("duration {duration:?}: use s or m"),
    }
}

#[test]
fn every_pulled_image_is_pinned_by_tag_and_digest() {
    for (name, s) in services() {
        if s.get("build").is_some() {
            continue;
        }
        let image = s["image"]
            .as_str()
            .unwrap_or_else(|| panic!("service {name} has no image"));
        let r = image_ref(image);
        assert!(
            r.tag.as_deref().is_some_and(|t| t != "latest"),
            "service {name}: {image} needs a version tag"
        );
        assert!(
            r.digest.as_deref().is_some_and(is_sha256_digest),
            "service {name}: {image} needs its sha256 digest"
        );
    }
}

#[test]
fn start_is_health_gated() {
    let services = services();
    let expect = [
        ("agent-service", "postgres", "service_healthy"),
        ("agent-service", "ollama", "service_healthy"),
        (
            "agent-service",
            "ollama-pull",
            "service_completed_successfully",
        ),
        ("ollama-pull", "ollama", "service_healthy"),
        ("prometheus", "agent-service", "service_healthy"),
    ];
    for (service, dependency, condition) in expect {
        assert_eq!(
            services[service]["depends_on"][dependency]["condition"], condition,
            "{service} must wait for {dependency}: {condition}"
        );
    }
    for (name, s) in &services {
        let Some(deps) = s.get("depends_on") else {
            continue;
        };
        let deps = deps
            .as_object()
            .unwrap_or_else(|| panic!("{name}: depends_on must name a condition per service"));
        for (dep, spec) in deps {
            if spec["condition"] == "service_healthy" {
                let test = &services[dep]["healthcheck"]["test"];
                assert!(
                    test.as_array().is_some_and(|t| t.len() > 1),
                    "{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
                );
            }
        }
    }
    assert_eq!(services["postgres"]["healthcheck"]["test"][1], "pg_isready");
}

#[test]
fn no_secret_value_is_written_in_the_file() {
    for (name, s) in services() {
        for (key, value) in s["environment"].as_object().cloned().unwrap_or_default() {
            let value = value.as_str().unwrap_or_default().to_string();
            if is_secret_key(&key) {
                assert!(
                    value.contains("${"),
                    "service {name}: {key} must come from the environment, not the file"
                );
            }
            if key == "POSTGRES_PASSWORD" || key == "DATABASE_URL" {
                assert!(
                    value.contains("${POSTGRES_PASSWORD:?"),
                    "service {name}: {key} must require POSTGRES_PASSWORD (${{POSTGRES_PASSWORD:?…}})"
                );
            }
        }
    }
}

#[test]
fn agent_service_runs_as_the_image_and_kubernetes_run_it() {
    let s = &services()["agent-service"];
    assert_eq!(s["build"]["dockerfile"], "deploy/Dockerfile");
    assert_eq!(s["build"]["context"], "..");
    let mut test = vec![json!("CMD")];
    test.extend(healthcheck_argv().into_iter().map(Value::from));
    assert_eq!(
        s["healthcheck"]["test"],
        Value::Array(test),
        "the compose healthcheck is the image's HEALTHCHECK"
    );
    assert_eq!(s["user"], runtime_user(), "user");
    assert_eq!(s["read_only"], true, "read-only root filesystem");
    assert_eq!(s["cap_drop"], json!(["ALL"]));
    assert!(
        s["security_opt"]
            .as_array()
            .is_some_and(|o| o.contains(&json!("no-new-privileges:true")))
    );
    let drain: u64 = s["environment"]["SHUTDOWN_GRACE_SECS"]
        .as_str()
        .expect("SHUTDOWN_GRACE_SECS")
        .parse()
        .unwrap();
    let stop = seconds(s["stop_grace_period"].as_str().expect("stop_grace_period"));
    assert!(
        stop > drain,
        "stop_grace_period {stop} s must exceed SHUTDOWN_GRACE_SECS {drain} s"
    );
}

#[test]
fn prometheus_gets_the_bundle_config_and_rules() {
    let volumes = services()["prometheus"]["volumes"].clone();
    for mount in [
        "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
    ] {
        assert!(
            volumes
                .as_array()
                .is_some_and(|v| v.contains(&json!(mount))),
            "prometheus must mount {mount}"
        );
    }
}
