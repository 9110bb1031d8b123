//! The test kit for cross-process API tests: spawns the real `agent-service` binary on a
//! random port with a fresh database (an SQLite file, or a new PostgreSQL database on the
//! server named by `TEST_POSTGRES_URL`), seeds the demo domain, and captures its logs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_agent-service");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once per back-end: `both!(name, body_fn)` makes `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

/// A database for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A temporary directory for one test, removed when dropped (also when the test panics).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("agent-service-test-")
        .tempdir()
        .expect("create temp dir")
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = temp_dir();
                let url = format!("sqlite://{}/agent.db", dir.path().display());
                Self {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_POSTGRES_URL").expect(
                    "TEST_POSTGRES_URL is not set: the PostgreSQL variant of this test needs a server. \
                     Run scripts/test.sh, which installs and starts PostgreSQL and sets it.",
                );
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&admin)
                    .await
                    .expect("connect to TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                }
            }
        }
    }
}

/// Keys printed by `seed-demo`: (role, tenant) → key.
pub type Keys = HashMap<(String, String), String>;

pub fn run_cli(db_url: &str, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run agent-service")
}

pub fn seed(db_url: &str) -> Keys {
    let out = run_cli(db_url, &[], &["seed-demo"]);
    assert!(
        out.status.success(),
        "seed-demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut keys = Keys::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            parts.len(),
            3,
            "seed-demo line is role<TAB>tenant<TAB>key: {line:?}"
        );
        keys.insert(
            (parts[0].to_string(), parts[1].to_string()),
            parts[2].to_string(),
        );
    }
    keys
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub keys: Keys,
    pub db: TestDb,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl TestApp {
    /// Seeds a fresh database and starts the binary with these extra environment variables.
    pub async fn spawn(backend: Backend, env: &[(&str, &str)]) -> TestApp {
        let db = TestDb::new(backend).await;
        let keys = seed(&db.url);
        Self::spawn_on(db, keys, env).await
    }

    /// A service whose model is `llama3.2` on `fake` (the native Ollama provider), with
    /// `extra` settings on top.
    pub async fn spawn_with_ollama(
        backend: Backend,
        fake: &testkit::FakeOllama,
        extra: &[(&str, &str)],
    ) -> TestApp {
        let url = fake.url();
        let mut env = vec![
            ("USE_OLLAMA", "true"),
            ("OLLAMA_BASE_URL", url.as_str()),
            ("OLLAMA_MODEL", "llama3.2"),
        ];
        env.extend_from_slice(extra);
        Self::spawn(backend, &env).await
    }

    pub async fn spawn_on(db: TestDb, keys: Keys, env: &[(&str, &str)]) -> TestApp {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .env("SHUTDOWN_GRACE_SECS", "10")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn agent-service");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel::<u16>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["message"] == "agent-service listening"
                        && let Some(port) = v["addr"]
                            .as_str()
                            .and_then(|a| a.rsplit(':').next())
                            .and_then(|p| p.parse().ok())
                    {
                        let _ = port_tx.send(port);
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(format!("stderr: {line}"));
                }
            });
        }
        let port = match port_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "agent-service did not start; its output:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            keys,
            db,
            child,
            logs,
        }
    }

    pub fn key(&self, role: &str) -> &str {
        self.key_of(role, "demo")
    }

    pub fn key_of(&self, role: &str, tenant: &str) -> &str {
        self.keys
            .get(&(role.to_string(), tenant.to_string()))
            .unwrap_or_else(|| panic!("no demo key for {role}/{tenant}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(
        &self,
        key: Option<&str>,
        path: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.expect("GET");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post_json(
        &self,
        key: Option<&str>,
        path: &str,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (h, v) in extra {
            req = req.header(*h, *v);
        }
        let resp = req.send().await.expect("POST");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST /v1/invoke` with the demo `invoke` key.
    pub async fn invoke(&self, workflow: &str, text: &str) -> (StatusCode, Value) {
        let (s, _, v) = self
            .post_json(
                Some(self.key("invoke")),
                "/v1/invoke",
                &json!({"workflow": workflow, "input": {"text": text}}),
                &[],
            )
            .await;
        (s, v)
    }

    /// Every line the process has written so far (stdout JSON logs, and `stderr: …` lines).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Scrapes `/metrics` and returns the value of one sample line (exact series match).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts the error envelope: status, code, and a request id matching the header.
pub fn assert_error(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    want_status: u16,
    want_code: &str,
) {
    assert_eq!(status.as_u16(), want_status, "body: {body}");
    assert_eq!(body["error"]["code"], want_code, "body: {body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.len() > 10, "error message should be a sentence: {body}");
    let rid = body["error"]["request_id"].as_str().unwrap_or_default();
    assert!(!rid.is_empty(), "error carries a request_id: {body}");
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some(rid),
        "header and body request ids match"
    );
}

/// Crashes and restarts on the same database (job leases, exactly-once across crashes).
impl TestApp {
    /// Kills the process with SIGKILL, so no shutdown code runs, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new process on the same database and keys with these environment
    /// variables (killing the current one first if it still runs). Logs start afresh.
    pub async fn restart(&mut self, env: &[(&str, &str)]) {
        self.kill9();
        let db = TestDb {
            url: self.db.url.clone(),
            _dir: None,
        };
        let mut fresh = Self::spawn_on(db, self.keys.clone(), env).await;
        std::mem::swap(&mut self.child, &mut fresh.child);
        std::mem::swap(&mut self.logs, &mut fresh.logs);
        std::mem::swap(&mut self.base, &mut fresh.base);
        // `fresh` now holds the dead process and a database handle that owns no files.
    }
}

/// More processes on one database (replicas racing, as in production).
impl TestApp {
    /// Starts another process on this app's database and keys, with these environment
    /// variables; dropping it kills it and deletes nothing.
    pub async fn replica(&self, env: &[(&str, &str)]) -> TestApp {
        let db = TestDb {
            url: self.db.url.clone(),
            _dir: None,
        };
        Self::spawn_on(db, self.keys.clone(), env).await
    }
}
