//! Each policy check catches the breakage it exists for: the prod overlay, broken one way
//! at a time, must fail exactly that check with a message that says what is wrong. And a
//! real broken overlay (tests/deploy/fixtures/broken-overlay), rendered by kubectl, fails.

use std::collections::BTreeMap;

use deploy_policy::policy::{self, APP, CANARY, CHECKS, CONTAINER};
use deploy_policy::{Bundle, canary};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Capabilities, Container, EnvVar, Secret};
use k8s_openapi::api::networking::v1::{
    NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::overlay;

fn deployment<'a>(b: &'a mut Bundle, name: &str) -> &'a mut Deployment {
    b.deployments
        .iter_mut()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("Deployment {name}"))
}

fn container<'a>(b: &'a mut Bundle, name: &str) -> &'a mut Container {
    deployment(b, name)
        .spec
        .template
        .spec
        .as_mut()
        .expect("pod spec")
        .containers
        .iter_mut()
        .find(|c| c.name == CONTAINER)
        .expect("agent-service container")
}

fn stable(b: &mut Bundle) -> &mut Container {
    container(b, APP)
}

fn role<'a>(b: &'a mut Bundle, name: &str) -> &'a mut Vec<PolicyRule> {
    b.roles
        .iter_mut()
        .find(|r| r.metadata.name.as_deref() == Some(name))
        .and_then(|r| r.rules.as_mut())
        .unwrap_or_else(|| panic!("Role {name}"))
}

fn set_env(c: &mut Container, name: &str, value: &str) {
    let env = c.env.get_or_insert_with(Vec::new);
    env.retain(|e| e.name != name);
    env.push(EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    });
}

fn canary_annotation(b: &mut Bundle, key: &str, value: &str) {
    deployment(b, CANARY)
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
}

fn security_context(b: &mut Bundle) -> &mut k8s_openapi::api::core::v1::SecurityContext {
    stable(b)
        .security_context
        .as_mut()
        .expect("container securityContext")
}

type Mutation = fn(&mut Bundle);

/// (what is broken, the check that must catch it, a phrase its message must contain).
const MUTATIONS: &[(&str, &str, &str, Mutation)] = &[
    (
        "readiness probes /healthz",
        "probes",
        "readinessProbe probes",
        |b| {
            stable(b)
                .readiness_probe
                .as_mut()
                .unwrap()
                .http_get
                .as_mut()
                .unwrap()
                .path = Some("/healthz".into());
        },
    ),
    ("no startup probe", "probes", "has no startupProbe", |b| {
        stable(b).startup_probe = None
    }),
    ("liveness on the wrong port", "probes", "resolves to", |b| {
        stable(b)
            .liveness_probe
            .as_mut()
            .unwrap()
            .http_get
            .as_mut()
            .unwrap()
            .port = IntOrString::Int(9090);
    }),
    (
        "no limits",
        "resources",
        "resources.limits.memory is not set",
        |b| {
            stable(b).resources.as_mut().unwrap().limits = None;
        },
    ),
    ("request above limit", "resources", "above its limit", |b| {
        let r = stable(b).resources.as_mut().unwrap();
        r.requests.as_mut().unwrap().insert(
            "memory".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("64Gi".into()),
        );
    }),
    (
        "runs as root allowed",
        "security",
        "runAsNonRoot must be true",
        |b| {
            security_context(b).run_as_non_root = Some(false);
        },
    ),
    ("runs as uid 0", "security", "runAsUser", |b| {
        security_context(b).run_as_user = Some(0)
    }),
    (
        "writable root fs",
        "security",
        "readOnlyRootFilesystem must be true",
        |b| {
            security_context(b).read_only_root_filesystem = Some(false);
        },
    ),
    (
        "privilege escalation unset",
        "security",
        "allowPrivilegeEscalation must be false",
        |b| {
            security_context(b).allow_privilege_escalation = None;
        },
    ),
    (
        "a capability added",
        "security",
        "capabilities.add must be empty",
        |b| {
            security_context(b).capabilities = Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into()]),
                drop: Some(vec!["ALL".into()]),
            });
        },
    ),
    (
        "capabilities kept",
        "security",
        "capabilities.drop must contain ALL",
        |b| {
            security_context(b).capabilities = None;
        },
    ),
    ("no seccomp profile", "security", "seccompProfile", |b| {
        security_context(b).seccomp_profile = None;
        deployment(b, APP)
            .spec
            .template
            .spec
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .seccomp_profile = None;
    }),
    ("host network", "security", "hostNetwork", |b| {
        deployment(b, APP)
            .spec
            .template
            .spec
            .as_mut()
            .unwrap()
            .host_network = Some(true);
    }),
    (
        "API token mounted",
        "security",
        "automountServiceAccountToken",
        |b| {
            deployment(b, APP)
                .spec
                .template
                .spec
                .as_mut()
                .unwrap()
                .automount_service_account_token = Some(true);
        },
    ),
    (
        "grace shorter than the drain",
        "graceful_shutdown",
        "must exceed",
        |b| {
            deployment(b, APP)
                .spec
                .template
                .spec
                .as_mut()
                .unwrap()
                .termination_grace_period_seconds = Some(20);
        },
    ),
    ("no preStop", "graceful_shutdown", "preStop sleep", |b| {
        stable(b).lifecycle = None
    }),
    (
        "PDB selects the canary only",
        "pdb",
        "no PodDisruptionBudget selects",
        |b| {
            let spec = b.pdbs[0].spec.as_mut().unwrap();
            spec.selector
                .as_mut()
                .unwrap()
                .match_labels
                .as_mut()
                .unwrap()
                .insert("track".into(), "canary".into());
        },
    ),
    ("no PDB", "pdb", "no PodDisruptionBudget selects", |b| {
        b.pdbs.clear()
    }),
    ("PDB blocks drains", "pdb", "blocks every drain", |b| {
        b.pdbs[0].spec.as_mut().unwrap().max_unavailable = Some(IntOrString::Int(0));
    }),
    (
        "no NetworkPolicy",
        "network_policy",
        "no NetworkPolicy selects",
        |b| b.network_policies.clear(),
    ),
    (
        "egress removed",
        "network_policy",
        "denies all egress",
        |b| {
            b.network_policies[0].spec.as_mut().unwrap().egress = None;
        },
    ),
    (
        "egress to the internet on 443",
        "network_policy",
        "allows TCP",
        |b| {
            b.network_policies[0]
                .spec
                .as_mut()
                .unwrap()
                .egress
                .as_mut()
                .unwrap()
                .push(NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        ip_block: Some(k8s_openapi::api::networking::v1::IPBlock {
                            cidr: "0.0.0.0/0".into(),
                            except: None,
                        }),
                        ..Default::default()
                    }]),
                    ports: Some(vec![NetworkPolicyPort {
                        port: Some(IntOrString::Int(443)),
                        protocol: Some("TCP".into()),
                        end_port: None,
                    }]),
                });
        },
    ),
    (
        "ingress from anywhere",
        "network_policy",
        "admits every source",
        |b| {
            b.network_policies[0]
                .spec
                .as_mut()
                .unwrap()
                .ingress
                .as_mut()
                .unwrap()[0]
                .from = None;
        },
    ),
    (
        "egress only, no ingress policy",
        "network_policy",
        "policyTypes must include Ingress",
        |b| {
            b.network_policies[0].spec.as_mut().unwrap().policy_types = Some(vec!["Egress".into()]);
        },
    ),
    (
        "HPA on the canary",
        "hpa",
        "targets Deployment agent-service-canary",
        |b| {
            b.hpas[0].spec.scale_target_ref.name = CANARY.into();
        },
    ),
    ("stable replicas pinned", "hpa", "leave it unset", |b| {
        deployment(b, APP).spec.replicas = Some(3)
    }),
    (
        "release role may delete",
        "rbac",
        "grants delete on deployments",
        |b| {
            role(b, policy::RELEASE_ROLE)[0].verbs.push("delete".into());
        },
    ),
    (
        "release role lacks the pod proxy",
        "rbac",
        "lacks get on pods/proxy",
        |b| {
            role(b, policy::RELEASE_ROLE)
                .retain(|r| !r.resources.iter().flatten().any(|x| x == "pods/proxy"));
        },
    ),
    ("a wildcard verb", "rbac", "contains a wildcard", |b| {
        role(b, policy::VIEWER_ROLE)[0].verbs = vec!["*".into()];
    }),
    ("viewer may patch", "rbac", "a viewer only reads", |b| {
        role(b, policy::VIEWER_ROLE)[0].verbs.push("patch".into());
    }),
    ("a ClusterRole", "rbac", "cluster-wide", |b| {
        b.cluster_roles.push(ClusterRole {
            metadata: ObjectMeta {
                name: Some("flightdeck-admin".into()),
                ..Default::default()
            },
            ..Default::default()
        });
    }),
    ("a Secret with data", "secrets", "carries values", |b| {
        b.secrets.push(Secret {
            metadata: ObjectMeta {
                name: Some("agent-service-secrets".into()),
                ..Default::default()
            },
            data: Some(
                [(
                    "DATABASE_URL".to_string(),
                    ByteString(b"postgres://u:p@db/x".to_vec()),
                )]
                .into(),
            ),
            ..Default::default()
        });
    }),
    (
        "DATABASE_URL inline",
        "secrets",
        "without a secretKeyRef",
        |b| {
            set_env(
                stable(b),
                "DATABASE_URL",
                "postgres://agent:hunter2@db/agent",
            );
        },
    ),
    ("API key in the ConfigMap", "secrets", "a credential", |b| {
        b.config_maps[0]
            .data
            .as_mut()
            .unwrap()
            .insert("OPENAI_API_KEY".into(), "sk-test".into());
    }),
    (
        "canary pods unlabelled",
        "tracks",
        "pod template must be labelled",
        |b| {
            deployment(b, CANARY)
                .spec
                .template
                .metadata
                .as_mut()
                .unwrap()
                .labels
                .as_mut()
                .unwrap()
                .remove("track");
        },
    ),
    ("canary scaled up in git", "tracks", "starts at 0", |b| {
        deployment(b, CANARY).spec.replicas = Some(2)
    }),
    (
        "stable selector without track",
        "tracks",
        "selectors overlap",
        |b| {
            deployment(b, APP)
                .spec
                .selector
                .match_labels
                .as_mut()
                .unwrap()
                .remove("track");
        },
    ),
    (
        "canary reports the stable track",
        "tracks",
        "RELEASE_TRACK",
        |b| {
            set_env(container(b, CANARY), "RELEASE_TRACK", "stable");
        },
    ),
    (
        "canary pod differs",
        "same_pod",
        "differs from stable",
        |b| {
            container(b, CANARY)
                .resources
                .as_mut()
                .unwrap()
                .limits
                .as_mut()
                .unwrap()
                .insert(
                    "memory".into(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity("8Gi".into()),
                );
        },
    ),
    (
        "analysis not JSON",
        "canary_plan",
        "not the expected JSON",
        |b| {
            canary_annotation(b, canary::ANALYSIS, "max_error_rate=0.01");
        },
    ),
    (
        "analysis with a typo",
        "canary_plan",
        "unknown field",
        |b| {
            canary_annotation(
                b,
                canary::ANALYSIS,
                r#"{"max_eror_rate":0.01,"max_p95_latency_ms":1,"min_success_rate":0.9,"max_cost_per_success_usd":0.1,"max_guardrail_block_rate":0.1,"min_samples":1}"#,
            );
        },
    ),
    (
        "steps out of order",
        "canary_plan",
        "strictly increase",
        |b| {
            canary_annotation(b, canary::STEPS, "10,5,100");
        },
    ),
    ("plan on stable", "canary_plan", "the plan lives on", |b| {
        deployment(b, APP)
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(canary::STEP.into(), "1".into());
    }),
    (
        "Service selects one track",
        "service",
        "expected only",
        |b| {
            b.services[0]
                .spec
                .as_mut()
                .unwrap()
                .selector
                .as_mut()
                .unwrap()
                .insert("track".into(), "stable".into());
        },
    ),
    (
        "Service targets the wrong port",
        "service",
        "which is not port 8080",
        |b| {
            b.services[0].spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
                Some(IntOrString::Int(80));
        },
    ),
    ("image :latest", "image", "explicit version tag", |b| {
        stable(b).image = Some("ghcr.io/flightdeck/agent-service:latest".into());
    }),
    (
        "version label drifts from the image",
        "image",
        "but the image tag is",
        |b| {
            set_env(stable(b), "RELEASE_VERSION", "9.9.9");
        },
    ),
    ("not scraped", "scrape", "prometheus.io/scrape", |b| {
        deployment(b, APP)
            .spec
            .template
            .metadata
            .as_mut()
            .unwrap()
            .annotations
            .as_mut()
            .unwrap()
            .remove("prometheus.io/scrape");
    }),
    (
        "an object in another namespace",
        "namespace",
        "is in namespace",
        |b| {
            b.services[0].metadata.namespace = Some("default".into());
        },
    ),
    (
        "namespace without pod security",
        "namespace",
        "restricted",
        |b| {
            b.namespaces[0].metadata.labels = None;
        },
    ),
    (
        "ServiceAccount mounts its token",
        "objects",
        "automountServiceAccountToken",
        |b| {
            b.service_accounts[0].automount_service_account_token = None;
        },
    ),
];

#[test]
fn each_check_catches_what_it_is_for() {
    let prod = overlay("prod");
    let mut missed = Vec::new();
    for (what, check_name, phrase, mutate) in MUTATIONS {
        let check = CHECKS
            .iter()
            .find(|(name, _)| name == check_name)
            .unwrap_or_else(|| panic!("no check named {check_name}"))
            .1;
        assert!(
            check(prod).is_empty(),
            "prod must pass {check_name} before it is broken"
        );
        let mut broken = prod.clone();
        mutate(&mut broken);
        let found = check(&broken);
        if !found.iter().any(|v| v.contains(phrase)) {
            missed.push(format!(
                "{what}: check {check_name} reported {found:?}, expected a message containing {phrase:?}"
            ));
        }
    }
    assert!(
        missed.is_empty(),
        "breakage the policy did not catch:\n  - {}",
        missed.join("\n  - ")
    );
}

#[test]
fn every_check_is_proven_by_a_mutation() {
    for (name, _) in CHECKS {
        assert!(
            MUTATIONS.iter().any(|(_, check, _, _)| check == name),
            "check {name} has no mutation proving that it can fail"
        );
    }
}

#[test]
fn a_broken_overlay_rendered_by_kubectl_fails_the_policy() {
    let dir = deploy_policy::repo_root().join("tests/deploy/fixtures/broken-overlay");
    let bundle = Bundle::render(&dir).unwrap_or_else(|e| panic!("{e}"));
    let found = policy::violations(&bundle);
    for phrase in [
        "security: Deployment agent-service container agent-service: readOnlyRootFilesystem must be true",
        "rbac: Role flightdeck-release rule 6: verbs [\"*\"] contains a wildcard",
        "rbac: Role flightdeck-release grants * on secrets",
        "secrets: Secret agent-service-secrets-",
    ] {
        assert!(
            found.iter().any(|v| v.starts_with(phrase)),
            "the broken overlay should fail with {phrase:?}; the policy reported:\n  - {}",
            found.join("\n  - ")
        );
    }
}
