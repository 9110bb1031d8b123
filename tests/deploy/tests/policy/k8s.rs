//! Every rendered overlay meets every policy check (deploy_policy::policy::CHECKS), and
//! the overlays differ where they should.

use deploy_policy::policy::{self, CHECKS, Check, app_container, env_literal};

use crate::{assert_no_violations, overlay, overlays};

fn check_every_overlay(name: &str, check: Check) {
    let mut failures = Vec::new();
    for bundle in overlays() {
        failures.extend(
            check(bundle)
                .into_iter()
                .map(|v| format!("overlay {}: {v}", bundle.name)),
        );
    }
    assert_no_violations(&format!("policy check {name}"), &failures);
}

macro_rules! policy_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                check_every_overlay(stringify!($check), policy::$check);
            }
        )*

        #[test]
        fn every_check_has_a_test() {
            let tested = [$(stringify!($check)),*];
            let all: Vec<&str> = CHECKS.iter().map(|(name, _)| *name).collect();
            assert_eq!(tested.to_vec(), all, "policy_tests! must list every entry of CHECKS");
        }
    };
}

policy_tests!(
    objects,
    namespace,
    tracks,
    same_pod,
    probes,
    resources,
    security,
    graceful_shutdown,
    scrape,
    image,
    service,
    hpa,
    pdb,
    network_policy,
    rbac,
    secrets,
    canary_plan,
);

#[test]
fn the_three_environments_exist() {
    let names: Vec<&str> = overlays().iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["dev", "prod", "staging"], "deploy/k8s/overlays");
}

/// What each overlay sets: (overlay, namespace, HPA min replicas at least, log level).
const OVERLAYS: &[(&str, &str, i32, &str)] = &[
    ("dev", "flightdeck-dev", 1, "debug"),
    ("staging", "flightdeck-staging", 2, "info"),
    ("prod", "flightdeck-prod", 3, "info"),
];

#[test]
fn each_overlay_sets_its_namespace_replicas_and_config() {
    for (name, namespace, min_replicas, log_level) in OVERLAYS {
        let b = overlay(name);
        assert_eq!(b.namespace(), Some(*namespace), "overlay {name}: namespace");
        let hpa = b
            .hpas
            .first()
            .unwrap_or_else(|| panic!("overlay {name}: no HPA"));
        let min = hpa.spec.min_replicas.unwrap_or(1);
        assert!(
            min >= *min_replicas,
            "overlay {name}: HPA minReplicas {min}, expected at least {min_replicas}"
        );
        let config = b
            .config_maps
            .first()
            .and_then(|cm| cm.data.clone())
            .unwrap_or_default();
        assert_eq!(
            config.get("LOG_LEVEL").map(String::as_str),
            Some(*log_level),
            "overlay {name}: LOG_LEVEL in the ConfigMap"
        );
        for d in &b.deployments {
            let c = app_container(d).expect("the container exists (objects check)");
            assert!(
                env_literal(c, "RELEASE_VERSION").is_some(),
                "overlay {name}: RELEASE_VERSION is set on {:?}",
                d.metadata.name
            );
        }
    }
}

#[test]
fn prod_can_lose_a_pod_to_a_drain_and_keep_serving() {
    let prod = overlay("prod");
    let min = prod.hpas[0].spec.min_replicas.unwrap_or(1);
    assert!(
        min >= 2,
        "prod HPA minReplicas {min}: one pod cannot be drained without an outage"
    );
}
