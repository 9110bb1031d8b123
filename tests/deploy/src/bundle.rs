//! One rendered overlay as typed Kubernetes objects.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::{Metadata, Resource};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Every object an overlay renders, by kind. A kind not listed here fails the parse, so a
/// new kind cannot reach a cluster without checks written for it.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// The overlay's name (`dev`, `staging`, `prod`) or the fixture's.
    pub name: String,
    pub namespaces: Vec<Namespace>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub network_policies: Vec<NetworkPolicy>,
}

/// The overlays under `deploy/k8s/overlays`, sorted by name.
pub fn overlays() -> Result<Vec<PathBuf>> {
    let dir = crate::deploy_dir().join("k8s/overlays");
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    found.sort();
    Ok(found)
}

/// `kubectl kustomize <dir>`: the overlay's objects as one multi-document YAML stream.
pub fn kustomize(dir: &Path) -> Result<String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(Error::KubectlMissing)?;
    if !out.status.success() {
        return Err(Error::Kustomize {
            overlay: dir.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: NameOnly,
}

#[derive(Deserialize, Default)]
struct NameOnly {
    #[serde(default)]
    name: String,
}

impl Bundle {
    /// Renders the overlay in `dir` and parses it.
    pub fn render(dir: &Path) -> Result<Self> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Self::parse(&name, &kustomize(dir)?)
    }

    /// Parses a multi-document YAML stream into typed objects.
    pub fn parse(name: &str, yaml: &str) -> Result<Self> {
        let mut bundle = Bundle {
            name: name.to_string(),
            ..Bundle::default()
        };
        for (index, doc) in serde_norway::Deserializer::from_str(yaml).enumerate() {
            let value = serde_json::Value::deserialize(doc).map_err(|e| Error::Yaml {
                source_name: name.to_string(),
                index,
                message: e.to_string(),
            })?;
            if value.is_null() {
                continue;
            }
            bundle.add(value)?;
        }
        Ok(bundle)
    }

    fn add(&mut self, value: serde_json::Value) -> Result<()> {
        let meta: TypeMeta = serde_json::from_value(value.clone())
            .map_err(|e| self.schema_error("?", "?", "?", e))?;
        let is =
            |api_version: &str, kind: &str| meta.api_version == api_version && meta.kind == kind;
        macro_rules! push {
            ($field:ident, $ty:ty) => {{
                let object: $ty = self.typed(&meta, value)?;
                self.$field.push(object);
                return Ok(());
            }};
        }
        if is(Namespace::API_VERSION, Namespace::KIND) {
            push!(namespaces, Namespace)
        }
        if is(ServiceAccount::API_VERSION, ServiceAccount::KIND) {
            push!(service_accounts, ServiceAccount)
        }
        if is(Role::API_VERSION, Role::KIND) {
            push!(roles, Role)
        }
        if is(RoleBinding::API_VERSION, RoleBinding::KIND) {
            push!(role_bindings, RoleBinding)
        }
        if is(ClusterRole::API_VERSION, ClusterRole::KIND) {
            push!(cluster_roles, ClusterRole)
        }
        if is(ClusterRoleBinding::API_VERSION, ClusterRoleBinding::KIND) {
            push!(cluster_role_bindings, ClusterRoleBinding)
        }
        if is(ConfigMap::API_VERSION, ConfigMap::KIND) {
            push!(config_maps, ConfigMap)
        }
        if is(Secret::API_VERSION, Secret::KIND) {
            push!(secrets, Secret)
        }
        if is(Deployment::API_VERSION, Deployment::KIND) {
            push!(deployments, Deployment)
        }
        if is(Service::API_VERSION, Service::KIND) {
            push!(services, Service)
        }
        if is(
            HorizontalPodAutoscaler::API_VERSION,
            HorizontalPodAutoscaler::KIND,
        ) {
            push!(hpas, HorizontalPodAutoscaler)
        }
        if is(PodDisruptionBudget::API_VERSION, PodDisruptionBudget::KIND) {
            push!(pdbs, PodDisruptionBudget)
        }
        if is(NetworkPolicy::API_VERSION, NetworkPolicy::KIND) {
            push!(network_policies, NetworkPolicy)
        }
        Err(Error::UnknownKind {
            source_name: self.name.clone(),
            api_version: meta.api_version,
            kind: meta.kind,
            name: meta.metadata.name,
        })
    }

    fn typed<T: DeserializeOwned>(&self, meta: &TypeMeta, value: serde_json::Value) -> Result<T> {
        serde_json::from_value(value)
            .map_err(|e| self.schema_error(&meta.api_version, &meta.kind, &meta.metadata.name, e))
    }

    fn schema_error(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        e: serde_json::Error,
    ) -> Error {
        Error::Schema {
            source_name: self.name.clone(),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            message: e.to_string(),
        }
    }

    /// The Deployment called `name`.
    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| name_of(*d) == name)
    }

    /// The namespace the overlay deploys into (the one Namespace object it renders).
    pub fn namespace(&self) -> Option<&str> {
        match self.namespaces.as_slice() {
            [ns] => ns.metadata.name.as_deref(),
            _ => None,
        }
    }

    /// `(kind, name, namespace)` of every namespaced object.
    pub fn namespaced(&self) -> Vec<(&'static str, String, Option<String>)> {
        fn rows<
            T: Resource + Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
        >(
            items: &[T],
        ) -> Vec<(&'static str, String, Option<String>)> {
            items
                .iter()
                .map(|o| {
                    (
                        T::KIND,
                        name_of(o).to_string(),
                        o.metadata().namespace.clone(),
                    )
                })
                .collect()
        }
        let mut all = Vec::new();
        all.extend(rows(&self.service_accounts));
        all.extend(rows(&self.roles));
        all.extend(rows(&self.role_bindings));
        all.extend(rows(&self.config_maps));
        all.extend(rows(&self.secrets));
        all.extend(rows(&self.deployments));
        all.extend(rows(&self.services));
        all.extend(rows(&self.hpas));
        all.extend(rows(&self.pdbs));
        all.extend(rows(&self.network_policies));
        all
    }
}

/// An object's `metadata.name`, or "" when it has none.
pub fn name_of<T: Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>>(
    object: &T,
) -> &str {
    object.metadata().name.as_deref().unwrap_or("")
}
