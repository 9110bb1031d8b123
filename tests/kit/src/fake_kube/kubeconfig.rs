//! Kubeconfig files pointing at the fake: a bearer token, or an exec-plugin user whose
//! command is a small shell script printing an ExecCredential (the real exec auth path).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What [`super::FakeKube::write_kubeconfig`] writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeconfigOpts {
    /// Context (and cluster) name; the file's current-context.
    pub context: String,
    /// The context's default namespace.
    pub namespace: Option<String>,
    /// The token to present; `None`: the fake's own (a different one gets 401).
    pub token: Option<String>,
    /// Write an exec-plugin user (`client.authentication.k8s.io/v1beta1`) instead of a
    /// token user; the script is written next to the kubeconfig as `<file>.exec.sh`.
    pub exec: bool,
}

impl Default for KubeconfigOpts {
    fn default() -> Self {
        Self {
            context: "fake".into(),
            namespace: None,
            token: None,
            exec: false,
        }
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The exec script's path for a kubeconfig path.
pub fn exec_script_path(kubeconfig: &Path) -> PathBuf {
    let mut name = kubeconfig
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "kubeconfig".into());
    name.push(".exec.sh");
    kubeconfig.with_file_name(name)
}

pub fn write(
    path: &Path,
    server: &str,
    own_token: &str,
    opts: &KubeconfigOpts,
) -> std::io::Result<()> {
    let token = opts.token.clone().unwrap_or_else(|| own_token.to_string());
    let ctx = &opts.context;
    let user_name = format!("{ctx}-user");
    let user = if opts.exec {
        let script = exec_script_path(path);
        let cred = serde_json::json!({
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "kind": "ExecCredential",
            "status": {"token": token},
        });
        // Single-quoted heredoc: the JSON is printed verbatim.
        std::fs::write(&script, format!("#!/bin/sh\ncat <<'JSON'\n{cred}\nJSON\n"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        }
        format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      interactiveMode: Never\n      provideClusterInfo: false\n",
            q(&script.to_string_lossy())
        )
    } else {
        format!("    token: {}\n", q(&token))
    };
    let namespace = opts
        .namespace
        .as_deref()
        .map(|n| format!("    namespace: {}\n", q(n)))
        .unwrap_or_default();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {c}\n  cluster:\n    server: {s}\n\
         contexts:\n- name: {c}\n  context:\n    cluster: {c}\n    user: {u}\n{namespace}\
         current-context: {c}\nusers:\n- name: {u}\n  user:\n{user}",
        c = q(ctx),
        s = q(server),
        u = q(&user_name),
    );
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Holds a credential: owner only, as kubectl writes it.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
