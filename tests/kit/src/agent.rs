//! The real `agent-service` binary spawned for tests — the one spawn helper of the
//! workspace, used by agent-service's API tests and by the console core's tests.
//!
//! [`AgentService::spawn`] gives a fresh database ([`TestDb`]: an SQLite file in a temporary
//! directory, or a new PostgreSQL database on the server named by `TEST_POSTGRES_URL`),
//! runs `seed-demo` for the demo keys, then `serve` on a free port (read from the
//! `agent-service listening` log line), with its logs captured; the process is killed on
//! drop. The same handle sends SIGTERM or SIGKILL, restarts on the same database and
//! starts replicas on it.
//!
//! The binary is found next to the test executable (`target/<profile>/agent-service`), or
//! at `AGENT_SERVICE_BIN`. Cargo builds it before agent-service's own integration tests;
//! tests of other crates need `cargo build -p agent-service` first.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::FakeOllama;

/// How long `serve` may take to log its address before the spawn fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The database back-end a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test: an SQLite file in a temporary directory, or a new PostgreSQL
/// database named `t_<uuid>`. Both are deleted when the owning handle is dropped (also when
/// the test panics). A run killed before that leaves its PostgreSQL databases behind;
/// `start_postgres` in scripts/lib.sh drops such leftovers when it starts the server.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// (admin URL, database name) of a PostgreSQL database this handle owns.
    owned_pg: Option<(String, String)>,
}

impl TestDb {
    /// Creates the database. PostgreSQL needs `TEST_POSTGRES_URL` (an admin URL): without
    /// it this panics with how to get one — a PostgreSQL test never passes without a server.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = temp_dir();
                let url = format!("sqlite://{}/agent.db", dir.path().display());
                Self {
                    url,
                    _dir: Some(dir),
                    owned_pg: None,
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
                    owned_pg: Some((admin, name)),
                }
            }
        }
    }

    /// Another handle on the same database that owns nothing: dropping it deletes no file.
    pub fn shared(&self) -> Self {
        Self {
            url: self.url.clone(),
            _dir: None,
            owned_pg: None,
        }
    }
}

impl Drop for TestDb {
    /// Drops the PostgreSQL database this handle created. `WITH (FORCE)` ends the sessions
    /// of a service the test may still have running. Drop cannot await and may run inside
    /// the test's runtime, so the statement runs on its own thread with its own runtime.
    /// A failure is printed, not raised: the test's own result is what matters here, and
    /// the next `start_postgres` on a stopped server removes what is left.
    fn drop(&mut self) {
        let Some((admin, name)) = self.owned_pg.take() else {
            return;
        };
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let pool = sqlx::AnyPool::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                let result = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("drop database {name}: {e}"));
                pool.close().await;
                result
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database left behind: {e}"),
            Err(_) => eprintln!("test database left behind: the dropping thread panicked"),
        }
    }
}

/// A temporary directory for one test, removed when dropped (also when the test panics).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("agent-service-test-")
        .tempdir()
        .expect("create temp dir")
}

/// Demo keys printed by `seed-demo`: (role, tenant) → key.
pub type Keys = HashMap<(String, String), String>;

/// Where the `agent-service` binary of this build is.
///
/// Panics with the command to run when it is missing: a test that needs the real service
/// cannot do anything useful without it.
pub fn agent_service_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AGENT_SERVICE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>/agent-service
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let bin = dir.join(format!("agent-service{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the agent-service binary is not at {}: run `cargo build -p agent-service` first \
         (or set AGENT_SERVICE_BIN)",
        bin.display()
    );
    bin
}

/// Runs one `agent-service` command against `db_url` with only these variables (and
/// `PATH`) in its environment, JSON logs, and waits for it.
pub fn run_cli(db_url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let bin = agent_service_bin();
    let mut cmd = Command::new(&bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", bin.display()))
}

/// Runs `agent-service seed-demo` against `db_url` and returns the keys it printed.
pub fn seed(db_url: &str) -> Keys {
    let out = run_cli(db_url, &[], &["seed-demo"]);
    assert!(
        out.status.success(),
        "seed-demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_keys(&String::from_utf8_lossy(&out.stdout)).unwrap_or_else(|e| panic!("{e}"))
}

/// Parses `seed-demo` output: one `role<TAB>tenant<TAB>key` per line.
pub fn parse_keys(stdout: &str) -> Result<Keys, String> {
    let mut keys = Keys::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            [role, tenant, key] if !role.is_empty() && !tenant.is_empty() && !key.is_empty() => {
                keys.insert((role.to_string(), tenant.to_string()), key.to_string());
            }
            _ => {
                return Err(format!(
                    "seed-demo line is not role<TAB>tenant<TAB>key: {line:?}"
                ));
            }
        }
    }
    Ok(keys)
}

/// The `addr` of the `{"message":"agent-service listening","addr":"…"}` log line.
pub fn listening_addr(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != "agent-service listening" {
        return None;
    }
    v.get("addr")?.as_str().map(str::to_string)
}

/// A running agent-service on its own database; killed (SIGKILL) on drop.
pub struct AgentService {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client with a 60 s timeout, for the request helpers below.
    pub http: reqwest::Client,
    pub keys: Keys,
    pub db: TestDb,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    /// The process's working directory: empty, so nothing can depend on the source tree.
    _workdir: tempfile::TempDir,
}

impl AgentService {
    /// Seeds a fresh database on `backend` and starts the service with these extra
    /// environment variables (the provider is `scripted` unless `env` says otherwise).
    pub async fn spawn(backend: Backend, env: &[(&str, &str)]) -> Self {
        let db = TestDb::new(backend).await;
        let keys = seed(&db.url);
        Self::spawn_on(db, keys, env).await
    }

    /// A service whose model is `llama3.2` on `fake` (the native Ollama provider), with
    /// `extra` settings on top.
    pub async fn spawn_with_ollama(
        backend: Backend,
        fake: &FakeOllama,
        extra: &[(&str, &str)],
    ) -> Self {
        let url = fake.url();
        let mut env = vec![
            ("USE_OLLAMA", "true"),
            ("OLLAMA_BASE_URL", url.as_str()),
            ("OLLAMA_MODEL", "llama3.2"),
        ];
        env.extend_from_slice(extra);
        Self::spawn(backend, &env).await
    }

    /// Starts `serve` on an existing (seeded) database. The environment holds only `PATH`,
    /// the database, a free port on 127.0.0.1, JSON logs at `info`, a 10 s shutdown grace
    /// without a drain window (`SHUTDOWN_DRAIN_SECS=0`), and `env` on top.
    pub async fn spawn_on(db: TestDb, keys: Keys, env: &[(&str, &str)]) -> Self {
        let bin = agent_service_bin();
        let workdir = temp_dir();
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .env("SHUTDOWN_GRACE_SECS", "10")
            // No drain window unless a test asks for one: SIGTERM stops accepting at once.
            .env("SHUTDOWN_DRAIN_SECS", "0")
            .current_dir(workdir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", bin.display()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                let mut addr_tx = Some(addr_tx);
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(addr) = listening_addr(&line)
                        && let Some(tx) = addr_tx.take()
                    {
                        let _ = tx.send(addr);
                    }
                    lock(&logs).push(line);
                }
            });
        }
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lock(&logs).push(format!("stderr: {line}"));
                }
            });
        }
        // Awaited, not blocked on: a fake server on this test's runtime keeps answering
        // while the service starts.
        let addr = match tokio::time::timeout(START_TIMEOUT, addr_rx).await {
            Ok(Ok(addr)) => addr,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "agent-service did not start within {} s; its output:\n{}",
                    START_TIMEOUT.as_secs(),
                    lock(&logs).join("\n")
                );
            }
        };
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("build an HTTP client"),
            keys,
            db,
            child,
            logs,
            _workdir: workdir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The base URL followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The demo tenant's key for `role` (`invoke`, `viewer`, `approver`, `operator`, `admin`).
    pub fn key(&self, role: &str) -> &str {
        self.key_of(role, "demo")
    }

    pub fn key_of(&self, role: &str, tenant: &str) -> &str {
        self.keys
            .get(&(role.to_string(), tenant.to_string()))
            .unwrap_or_else(|| panic!("seed-demo printed no key for {role}/{tenant}"))
    }

    /// `GET path` with an optional bearer key: status, headers, and the body as JSON (a
    /// JSON string holding the text when it is not JSON).
    pub async fn get(&self, key: Option<&str>, path: &str) -> (StatusCode, HeaderMap, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        read_reply(req.send().await.expect("GET")).await
    }

    /// `POST path` with a JSON body, an optional bearer key and extra headers.
    pub async fn post_json(
        &self,
        key: Option<&str>,
        path: &str,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (h, v) in extra {
            req = req.header(*h, *v);
        }
        read_reply(req.send().await.expect("POST")).await
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

    /// Every line the process has written so far (stdout JSON logs, and `stderr: …` lines).
    pub fn logs(&self) -> String {
        lock(&self.logs).join("\n")
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

    /// Kills the process with SIGKILL, so no shutdown code runs, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new process on the same database and keys with these environment
    /// variables (killing the current one first if it still runs). Logs start afresh.
    pub async fn restart(&mut self, env: &[(&str, &str)]) {
        self.kill9();
        let mut fresh = Self::spawn_on(self.db.shared(), self.keys.clone(), env).await;
        std::mem::swap(&mut self.child, &mut fresh.child);
        std::mem::swap(&mut self.logs, &mut fresh.logs);
        std::mem::swap(&mut self.base, &mut fresh.base);
        std::mem::swap(&mut self._workdir, &mut fresh._workdir);
        // `fresh` now holds the dead process and a database handle that owns no files.
    }

    /// Starts another process on this service's database and keys (replicas racing, as in
    /// production), with these environment variables; dropping it kills it and deletes
    /// nothing.
    pub async fn replica(&self, env: &[(&str, &str)]) -> Self {
        Self::spawn_on(self.db.shared(), self.keys.clone(), env).await
    }
}

impl Drop for AgentService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The captured log lines, also after a reader thread panicked while holding them.
fn lock(logs: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    logs.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_reply(resp: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_demo_lines() {
        let keys = parse_keys("invoke\tdemo\tfdk_a\napprover\tother\tfdk_b\n\n").unwrap();
        assert_eq!(keys[&("invoke".into(), "demo".into())], "fdk_a");
        assert_eq!(keys[&("approver".into(), "other".into())], "fdk_b");
        assert!(parse_keys("invoke demo fdk_a").is_err());
        assert!(parse_keys("invoke\tdemo\t").is_err());
    }

    #[test]
    fn listening_line() {
        let line = r#"{"timestamp":"t","level":"INFO","message":"agent-service listening","addr":"127.0.0.1:42015"}"#;
        assert_eq!(listening_addr(line).as_deref(), Some("127.0.0.1:42015"));
        assert_eq!(listening_addr(r#"{"message":"other","addr":"x"}"#), None);
        assert_eq!(listening_addr("not json"), None);
    }
}
