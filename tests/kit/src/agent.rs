//! Spawns the real `agent-service` binary for tests of other crates: a fresh SQLite file
//! in a temporary directory, `seed-demo` for the demo keys, `serve` on a free port (read
//! from the `agent-service listening` log line), logs captured, killed on drop.
//!
//! The binary is found next to the test executable (`target/<profile>/agent-service`), or
//! at `AGENT_SERVICE_BIN`. Build it first with `cargo build -p agent-service`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Runs `agent-service seed-demo` against `database_url`.
pub fn seed_demo(bin: &Path, database_url: &str) -> Keys {
    let out = Command::new(bin)
        .arg("seed-demo")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("LOG_FORMAT", "json")
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "seed-demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_keys(&String::from_utf8_lossy(&out.stdout)).unwrap_or_else(|e| panic!("{e}"))
}

/// A running agent-service with its own database; killed and cleaned up on drop.
pub struct AgentService {
    base: String,
    keys: Keys,
    child: Child,
    dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
}

impl AgentService {
    /// Starts with the `scripted` provider; `env` adds or overrides variables.
    pub fn spawn(env: &[(&str, &str)]) -> Self {
        let bin = agent_service_bin();
        let dir = std::env::temp_dir().join(format!(
            "testkit-agent-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        let db = format!("sqlite://{}/agent.db", dir.display());
        let keys = seed_demo(&bin, &db);
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("AGENT_PROVIDER", "scripted")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .env("SHUTDOWN_GRACE_SECS", "2")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", bin.display()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    logs.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("stderr: {line}"));
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "agent-service did not start within 30 s; its output:\n{}",
                    logs.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
                );
            }
        };
        Self {
            base: format!("http://{addr}"),
            keys,
            child,
            dir,
            logs,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
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

    /// The log lines so far (stderr lines prefixed with `stderr: `).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The `addr` of the `{"message":"agent-service listening","addr":"…"}` log line.
pub fn listening_addr(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != "agent-service listening" {
        return None;
    }
    v.get("addr")?.as_str().map(str::to_string)
}

impl Drop for AgentService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
