//! `fake-ollama`: the test kit's fake Ollama as a process, for tests that cross process
//! boundaries. Driven over HTTP through `/__fake/…` (see `testkit::fake_ollama`).

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Parser;
use testkit::FakeOllama;

/// A wire-faithful fake Ollama server (native `/api/*` and OpenAI-compatible `/v1/*`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port to listen on; 0 picks a free one (the chosen URL is printed on stdout).
    #[arg(long, env = "FAKE_OLLAMA_PORT", default_value_t = 11434)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "FAKE_OLLAMA_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::new(args.host, args.port);
    let fake = FakeOllama::bind(addr)
        .await
        .with_context(|| format!("binding the fake Ollama to {addr}"))?;
    // One line a spawning test can wait for and parse.
    println!("fake-ollama listening on {}", fake.url());
    testkit::serve::stop_signal()
        .await
        .context("waiting for a stop signal")?;
    fake.shutdown().await.context("stopping the fake Ollama")
}
