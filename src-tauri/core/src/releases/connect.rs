//! Connections: a Kubernetes profile from the store, its kube client (one per profile,
//! made again when the profile's context changes), and the reads every other part starts
//! from (a Deployment, a release's stable and canary Deployments).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

use super::ReleaseService;
use super::cluster::call;
use super::dto::*;
use super::state::canary_name;
use crate::domain::ProfileId;
use crate::error::{Error, Result};
use crate::store::{Profile, Target};

/// One Kubernetes profile, connected.
#[derive(Clone)]
pub(super) struct Cluster {
    pub(super) profile: Profile,
    pub(super) namespace: String,
    pub(super) client: Client,
}

impl Cluster {
    pub(super) fn release_ref(&self, name: &str) -> ReleaseRef {
        ReleaseRef {
            profile_id: self.profile.id.as_str().to_string(),
            namespace: self.namespace.clone(),
            name: name.to_string(),
        }
    }

    pub(super) fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub(super) fn what(&self, object: &str) -> String {
        format!(
            "cluster {} ({}): {object}",
            self.profile.name, self.namespace
        )
    }
}

impl ReleaseService {
    pub(super) async fn profile(&self, id: &str) -> Result<Profile> {
        let pid = ProfileId::parse(id)?;
        self.inner
            .host
            .store
            .profile(&pid)
            .await?
            .ok_or_else(|| Error::invalid(format!("there is no profile {id}")))
    }

    pub(super) async fn connect(&self, p: &Profile) -> Result<Cluster> {
        let Target::Kubernetes { context, namespace } = &p.target else {
            return Err(Error::invalid(format!(
                "profile {} is an agent-service profile, not a Kubernetes one",
                p.id
            )));
        };
        let mut clients = self.inner.clients.lock().await;
        let key = p.id.as_str().to_string();
        let client = match clients.get(&key) {
            Some((ctx, client)) if ctx == context => client.clone(),
            _ => {
                let client = self
                    .inner
                    .source
                    .client(context, self.inner.options.connect_timeout)
                    .await?;
                clients.insert(key, (context.clone(), client.clone()));
                client
            }
        };
        Ok(Cluster {
            profile: p.clone(),
            namespace: namespace.clone(),
            client,
        })
    }

    pub(super) async fn cluster(&self, r: &ReleaseRef) -> Result<Cluster> {
        let p = self.profile(&r.profile_id).await?;
        let c = self.connect(&p).await?;
        if c.namespace != r.namespace {
            return Err(Error::invalid(format!(
                "profile {} watches namespace {}, not {}",
                p.name, c.namespace, r.namespace
            )));
        }
        Ok(c)
    }

    pub(super) fn timeout(&self) -> Duration {
        self.inner.options.request_timeout
    }

    pub(super) async fn get_deployment(
        &self,
        c: &Cluster,
        name: &str,
    ) -> Result<Option<Deployment>> {
        call(
            &c.what(&format!("deployments/{name}")),
            self.timeout(),
            c.deployments().get_opt(name),
        )
        .await
    }

    /// The stable Deployment (an error when absent) and its canary (if any).
    pub(super) async fn objects(
        &self,
        c: &Cluster,
        name: &str,
    ) -> Result<(Deployment, Option<Deployment>)> {
        let stable = self.get_deployment(c, name).await?.ok_or_else(|| {
            Error::invalid(format!(
                "there is no Deployment {name} in namespace {} of {}",
                c.namespace, c.profile.name
            ))
        })?;
        let canary = self.get_deployment(c, &canary_name(name)).await?;
        Ok((stable, canary))
    }
}
