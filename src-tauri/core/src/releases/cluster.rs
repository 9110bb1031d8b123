//! Cluster access: kubeconfig contexts (`KUBECONFIG` colon list or `~/.kube/config`, or
//! explicit files), one `kube::Client` per Kubernetes profile with a connect timeout, and
//! kube's errors mapped onto the core's closed codes.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::dto::KubeContext;
use crate::error::{ApiError, Error, Result, code_for, error_chain};

/// Where kubeconfig comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeconfigSource {
    /// `KUBECONFIG` (a colon-separated list, merged as kubectl does) or `~/.kube/config`.
    Default,
    /// These files, merged in order (tests; a console pointed at one file).
    Paths(Vec<PathBuf>),
}

impl KubeconfigSource {
    pub fn load(&self) -> Result<Kubeconfig> {
        let err = |e: kube::config::KubeconfigError| {
            Error::invalid(format!(
                "could not read kubeconfig: {} (set KUBECONFIG or create ~/.kube/config)",
                error_chain(&e)
            ))
        };
        match self {
            Self::Default => Kubeconfig::read().map_err(err),
            Self::Paths(paths) => {
                let mut merged: Option<Kubeconfig> = None;
                for p in paths {
                    let next = Kubeconfig::read_from(p).map_err(err)?;
                    merged = Some(match merged {
                        None => next,
                        Some(m) => m.merge(next).map_err(err)?,
                    });
                }
                merged.ok_or_else(|| Error::invalid("no kubeconfig file given"))
            }
        }
    }

    /// The contexts the console can connect through.
    pub fn contexts(&self) -> Result<Vec<KubeContext>> {
        let kc = self.load()?;
        let current = kc.current_context.clone();
        Ok(kc
            .contexts
            .iter()
            .map(|c| {
                let ctx = c.context.as_ref();
                KubeContext {
                    name: c.name.clone(),
                    cluster: ctx.map(|x| x.cluster.clone()).unwrap_or_default(),
                    user: ctx.and_then(|x| x.user.clone()).unwrap_or_default(),
                    namespace: ctx.and_then(|x| x.namespace.clone()),
                    current: current.as_deref() == Some(c.name.as_str()),
                }
            })
            .collect())
    }

    /// A client for `context` (exec-plugin and token auth are kube's), failing to connect
    /// within `connect_timeout`.
    pub async fn client(&self, context: &str, connect_timeout: Duration) -> Result<kube::Client> {
        let kc = self.load()?;
        if !kc.contexts.iter().any(|c| c.name == context) {
            return Err(Error::invalid(format!(
                "kubeconfig has no context {context:?}; `kubectl config get-contexts` lists them"
            )));
        }
        let options = KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| {
                Error::invalid(format!(
                    "kubeconfig context {context:?} is not usable: {}",
                    error_chain(&e)
                ))
            })?;
        config.connect_timeout = Some(connect_timeout);
        // Retries of 429/503 would stretch "unreachable" into a long wait; callers retry.
        config.default_retry = false;
        kube::Client::try_from(config).map_err(|e| {
            Error::invalid(format!(
                "cannot build a client for context {context:?}: {}",
                error_chain(&e)
            ))
        })
    }
}

/// Maps a kube error for a call on `what` (e.g. `cluster prod: deployments/agent`).
pub fn kube_error(what: &str, e: kube::Error, timeout: Duration) -> Error {
    match e {
        kube::Error::Api(status) => {
            let server_code = if status.reason.is_empty() {
                format!("http_{}", status.code)
            } else {
                status.reason.clone()
            };
            Error::Api(Box::new(ApiError {
                code: code_for(status.code, &server_code.to_ascii_lowercase(), None),
                status: status.code,
                server_code,
                message: status.message.clone(),
                request_id: None,
                endpoint: what.to_string(),
            }))
        }
        kube::Error::SerdeError(e) => Error::protocol(what, e.to_string()),
        other => {
            let message = error_chain(&other);
            let lower = message.to_ascii_lowercase();
            if lower.contains("timed out") || lower.contains("timeout") || lower.contains("elapsed")
            {
                Error::Timeout {
                    endpoint: what.to_string(),
                    after: timeout,
                }
            } else {
                Error::Network {
                    endpoint: what.to_string(),
                    message,
                }
            }
        }
    }
}

/// Runs one API call under `timeout`, mapping its error.
pub async fn call<T>(
    what: &str,
    timeout: Duration,
    fut: impl Future<Output = std::result::Result<T, kube::Error>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r.map_err(|e| kube_error(what, e, timeout)),
        Err(_) => Err(Error::Timeout {
            endpoint: what.to_string(),
            after: timeout,
        }),
    }
}

/// A 403 the console decided on its own (an SSAR said no), shaped like the server's.
pub fn forbidden(what: &str, message: String) -> Error {
    Error::Api(Box::new(ApiError {
        code: crate::error::ErrorCode::Forbidden,
        status: 403,
        server_code: "Forbidden".into(),
        message,
        request_id: None,
        endpoint: what.to_string(),
    }))
}

/// A conflict the console decided on (the release moved under the action).
pub fn conflict(what: &str, message: String) -> Error {
    Error::Api(Box::new(ApiError {
        code: crate::error::ErrorCode::Conflict,
        status: 409,
        server_code: "Conflict".into(),
        message,
        request_id: None,
        endpoint: what.to_string(),
    }))
}

pub fn is_conflict(e: &Error) -> bool {
    e.api().is_some_and(|a| a.status == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = r#"apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: c-staging
  cluster: {server: "http://127.0.0.1:1"}
- name: c-prod
  cluster: {server: "https://prod.example.com"}
contexts:
- name: staging
  context: {cluster: c-staging, user: alice, namespace: flightdeck-staging}
- name: prod
  context: {cluster: c-prod, user: bob}
users:
- name: alice
  user: {token: t1}
- name: bob
  user: {token: t2}
"#;

    #[tokio::test]
    async fn contexts_are_listed_and_unknown_ones_refused() {
        let dir = std::env::temp_dir().join(format!("fd-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(&path, KC).unwrap();
        let src = KubeconfigSource::Paths(vec![path.clone()]);
        let got = src.contexts().unwrap();
        assert_eq!(
            got,
            vec![
                KubeContext {
                    name: "staging".into(),
                    cluster: "c-staging".into(),
                    user: "alice".into(),
                    namespace: Some("flightdeck-staging".into()),
                    current: true,
                },
                KubeContext {
                    name: "prod".into(),
                    cluster: "c-prod".into(),
                    user: "bob".into(),
                    namespace: None,
                    current: false,
                },
            ]
        );
        let e = src
            .client("nope", Duration::from_secs(1))
            .await
            .err()
            .expect("an unknown context is refused");
        assert_eq!(e.code().as_str(), "invalid");
        assert!(e.to_string().contains("no context \"nope\""), "{e}");
        assert!(src.client("prod", Duration::from_secs(1)).await.is_ok());
        let missing = KubeconfigSource::Paths(vec![dir.join("absent")]);
        let e = missing.contexts().unwrap_err();
        assert!(e.to_string().contains("could not read kubeconfig"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn status_errors_keep_their_code() {
        let status =
            kube::core::Status::failure("deployments.apps \"x\" is forbidden", "Forbidden")
                .with_code(403);
        let e = kube_error(
            "cluster k: deployments/x",
            kube::Error::Api(Box::new(status)),
            Duration::from_secs(1),
        );
        assert_eq!(e.code().as_str(), "forbidden");
        let status =
            kube::core::Status::failure("the object has been modified", "Conflict").with_code(409);
        let e = kube_error(
            "d",
            kube::Error::Api(Box::new(status)),
            Duration::from_secs(1),
        );
        assert!(is_conflict(&e));
        assert_eq!(e.code().as_str(), "conflict");
    }
}
