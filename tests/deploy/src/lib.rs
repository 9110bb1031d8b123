//! The deploy/ bundle as typed values, and the policy it must meet.
//!
//! [`bundle`] renders a kustomize overlay with `kubectl kustomize` and parses every
//! document into a typed `k8s-openapi` object; [`policy`] holds the checks every overlay
//! must pass (each returns the violations it finds, as sentences naming the object and
//! the fix); [`canary`] parses the canary plan annotations the Flightdeck console reads;
//! [`dockerfile`] reads deploy/Dockerfile's instructions; [`quantity`] reads resource
//! quantities. The tests in `tests/policy/` run the checks over every overlay and prove
//! that each one catches the breakage it is there for.

pub mod bundle;
pub mod canary;
pub mod dockerfile;
pub mod policy;
pub mod quantity;

use std::path::{Path, PathBuf};

pub use bundle::Bundle;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run kubectl ({0}); install kubectl 1.32 (the build image ships it)")]
    KubectlMissing(std::io::Error),
    #[error("`kubectl kustomize {overlay}` failed: {stderr}")]
    Kustomize { overlay: String, stderr: String },
    #[error("{source_name}: document {index} is not valid YAML: {message}")]
    Yaml {
        source_name: String,
        index: usize,
        message: String,
    },
    #[error("{source_name}: {kind} {name:?} does not fit the {api_version} schema: {message}")]
    Schema {
        source_name: String,
        api_version: String,
        kind: String,
        name: String,
        message: String,
    },
    #[error(
        "{source_name}: {kind} ({api_version}) {name:?} is a kind deploy-policy has no checks for; add it to bundle::Object and write its checks"
    )]
    UnknownKind {
        source_name: String,
        api_version: String,
        kind: String,
        name: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The repository root (this crate lives in `tests/deploy`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("tests/deploy sits two levels below the repository root")
}

/// `deploy/` in the repository.
pub fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

/// Reads a file of the repository as text.
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
