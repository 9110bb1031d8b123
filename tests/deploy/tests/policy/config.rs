//! The configuration the bundle gives agent-service is configuration agent-service accepts:
//! every key is one it reads (a typo would be ignored silently), and its own loader
//! (`Settings::load_from`, what `serve` and `check-config` run) takes the values.

use std::collections::BTreeMap;

use agent_service::config::{ENV_KEYS, Environment, LogFormat, Settings};
use deploy_policy::Bundle;
use deploy_policy::policy::{PORT, TRACKS, app_container};
use serde_json::Value;

use crate::{deploy_yaml, overlays};

/// Placeholder values for what the externally managed Secret holds.
fn secret_placeholder(key: &str) -> String {
    match key {
        "DATABASE_URL" => "postgres://agent:placeholder@postgres:5432/agent".into(),
        _ => "placeholder-secret".into(),
    }
}

/// The environment a container of `deployment` starts with.
fn pod_env(bundle: &Bundle, deployment: &str) -> BTreeMap<String, String> {
    let d = bundle.deployment(deployment).expect("deployment");
    let c = app_container(d).expect("container");
    let mut env = BTreeMap::new();
    for source in c.env_from.iter().flatten() {
        let name = &source
            .config_map_ref
            .as_ref()
            .expect("envFrom is ConfigMaps only")
            .name;
        let cm = bundle
            .config_maps
            .iter()
            .find(|cm| cm.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("ConfigMap {name}"));
        env.extend(cm.data.clone().unwrap_or_default());
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) if from.secret_key_ref.is_some() => secret_placeholder(&e.name),
            _ => panic!("env {} has neither a value nor a secretKeyRef", e.name),
        };
        env.insert(e.name.clone(), value);
    }
    env
}

fn unknown_keys(env: &BTreeMap<String, String>) -> Vec<&String> {
    env.keys()
        .filter(|k| !ENV_KEYS.contains(&k.as_str()))
        .collect()
}

#[test]
fn every_deployment_starts_with_configuration_agent_service_accepts() {
    for bundle in overlays() {
        for (track, deployment) in TRACKS {
            let at = format!("overlay {} Deployment {deployment}", bundle.name);
            let env = pod_env(bundle, deployment);
            assert!(
                unknown_keys(&env).is_empty(),
                "{at}: keys agent-service does not read: {:?}",
                unknown_keys(&env)
            );
            let s = Settings::load_from(&env)
                .unwrap_or_else(|e| panic!("{at}: agent-service rejects its configuration: {e}"));
            assert_eq!(
                s.server.environment,
                Environment::Production,
                "{at}: AGENT_ENV"
            );
            assert_eq!(
                s.release.release_track.as_str(),
                *track,
                "{at}: RELEASE_TRACK"
            );
            assert_eq!(s.logging.log_format, LogFormat::Json, "{at}: LOG_FORMAT");
            assert!(
                s.server.bind_addr.ip().is_unspecified(),
                "{at}: BIND_ADDR {} must listen on every interface",
                s.server.bind_addr
            );
            assert_eq!(
                s.server.bind_addr.port(),
                PORT as u16,
                "{at}: BIND_ADDR port"
            );
        }
    }
}

/// Compose's `${VAR:-default}` → default, `${VAR:?message}` → a placeholder.
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let inner = &rest[start + 2..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        } else {
            out.push_str("placeholder");
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_compose_service_starts_with_configuration_agent_service_accepts() {
    let compose = deploy_yaml("compose.yaml");
    let environment = compose["services"]["agent-service"]["environment"]
        .as_object()
        .expect("services.agent-service.environment is a map");
    let env: BTreeMap<String, String> = environment
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), interpolate(&text))
        })
        .collect();
    assert!(
        unknown_keys(&env).is_empty(),
        "compose.yaml: keys agent-service does not read: {:?}",
        unknown_keys(&env)
    );
    let s = Settings::load_from(&env)
        .unwrap_or_else(|e| panic!("compose.yaml: agent-service rejects its configuration: {e}"));
    assert_eq!(s.server.environment, Environment::Production);
    assert!(
        s.database.database_url.starts_with("postgres://"),
        "compose runs on PostgreSQL"
    );
    assert_eq!(s.server.bind_addr.port(), PORT as u16);
}
