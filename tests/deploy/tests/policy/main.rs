//! Policy tests of the deploy/ bundle: every kustomize overlay rendered by kubectl into
//! typed Kubernetes objects and checked, the checks themselves proven on broken input,
//! the Dockerfile, the compose file, and the Prometheus configuration and alert rules.

mod canary;
mod compose;
mod config;
mod dockerfile;
mod k8s;
mod mutations;
mod prometheus;
mod units;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use deploy_policy::{Bundle, bundle};

/// Every overlay under deploy/k8s/overlays, rendered once per test run.
pub fn overlays() -> &'static [Bundle] {
    static RENDERED: OnceLock<Vec<Bundle>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let dirs = bundle::overlays().unwrap_or_else(|e| panic!("{e}"));
        dirs.iter()
            .map(|dir| Bundle::render(dir).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    })
}

/// The rendered overlay called `name`.
pub fn overlay(name: &str) -> &'static Bundle {
    overlays()
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("overlay {name} is not under deploy/k8s/overlays"))
}

/// A file under deploy/.
pub fn deploy_file(relative: &str) -> PathBuf {
    deploy_policy::deploy_dir().join(relative)
}

/// Text of a file under deploy/.
pub fn deploy_text(relative: &str) -> String {
    deploy_policy::read(&deploy_file(relative)).unwrap_or_else(|e| panic!("{e}"))
}

/// A YAML file under deploy/ as a JSON value.
pub fn deploy_yaml(relative: &str) -> serde_json::Value {
    serde_norway::from_str(&deploy_text(relative))
        .unwrap_or_else(|e| panic!("deploy/{relative} is not valid YAML: {e}"))
}

/// Whether `program` can be run; tests that need a tool absent here say so and skip.
/// scripts/test-deploy.sh installs promtool, so CI always runs them.
pub fn have(program: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok();
    if !found {
        eprintln!(
            "SKIPPED: {program} is not installed; scripts/test-deploy.sh installs it (Debian package prometheus)"
        );
    }
    found
}

/// Fails with every violation listed, one per line.
pub fn assert_no_violations(context: &str, violations: &[String]) {
    assert!(
        violations.is_empty(),
        "{context}: {} violation(s):\n  - {}",
        violations.len(),
        violations.join("\n  - ")
    );
}
