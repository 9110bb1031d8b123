//! `fake-kube`: the test kit's fake Kubernetes API server as a process, for tests that
//! cross process boundaries (the desktop e2e). Driven over HTTP through `/__fake/…` (see
//! `testkit::fake_kube::control`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use testkit::fake_kube::{FakeKube, KubeconfigOpts};

/// A wire-faithful fake Kubernetes API server (plain http, bearer token).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port to listen on; 0 picks a free one (the chosen URL is printed on stdout).
    #[arg(long, env = "FAKE_KUBE_PORT", default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "FAKE_KUBE_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The bearer token to require (default: a random one, written to the kubeconfig).
    #[arg(long, env = "FAKE_KUBE_TOKEN")]
    token: Option<String>,
    /// Write a kubeconfig for this server here.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// The kubeconfig's context name.
    #[arg(long, default_value = "fake")]
    context: String,
    /// The kubeconfig context's namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Write an exec-plugin user (a script printing an ExecCredential) instead of a token.
    #[arg(long)]
    exec_auth: bool,
    /// Objects to start with: JSON or multi-document YAML (e.g. `kubectl kustomize` output).
    #[arg(long)]
    seed: Vec<PathBuf>,
    /// New pods become Ready after this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pod_ready_delay_ms: u64,
    /// Serve argoproj.io/v1alpha1 rollouts (as if the Argo Rollouts CRD were installed).
    #[arg(long)]
    rollouts: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::new(args.host, args.port);
    let fake = match args.token.clone() {
        Some(t) => FakeKube::bind_with_token(addr, Some(t)).await,
        None => FakeKube::bind(addr).await,
    }
    .with_context(|| format!("binding the fake Kubernetes API to {addr}"))?;
    fake.set_pod_ready_delay(Duration::from_millis(args.pod_ready_delay_ms));
    fake.enable_rollouts(args.rollouts);
    for seed in &args.seed {
        let text =
            std::fs::read_to_string(seed).with_context(|| format!("reading {}", seed.display()))?;
        let applied = fake
            .apply(&text)
            .with_context(|| format!("applying {}", seed.display()))?;
        for s in &applied.skipped {
            eprintln!("fake-kube: skipped {} {} (kind not served)", s.kind, s.name);
        }
    }
    if let Some(path) = &args.kubeconfig_out {
        let opts = KubeconfigOpts {
            context: args.context.clone(),
            namespace: args.namespace.clone(),
            token: None,
            exec: args.exec_auth,
        };
        fake.write_kubeconfig(path, &opts)
            .with_context(|| format!("writing the kubeconfig {}", path.display()))?;
    }
    // One line a spawning test can wait for and parse.
    println!("fake-kube listening on {}", fake.url());
    testkit::serve::stop_signal()
        .await
        .context("waiting for a stop signal")?;
    fake.stop()
        .await
        .context("stopping the fake Kubernetes API")
}
