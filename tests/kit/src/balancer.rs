//! A real load balancer in front of agent-service replicas: HAProxy from Debian's
//! packages, started as a child process with a generated configuration — round-robin,
//! health checks on `/readyz`, and retries on another server for requests a server
//! refused or dropped before answering.
//!
//! No fixed port: the test binds the listening socket on `127.0.0.1:0` and HAProxy
//! inherits it (`bind fd@N`). Its runtime API (a Unix socket in the balancer's temporary
//! directory) reads the servers' states and points a server at a replica's new port after
//! a restart. HAProxy's log lines (one per request, with retries and the server that
//! answered) are captured. The process is killed on drop, and with its parent.
//!
//! The binary is `HAPROXY_BIN`, else `/usr/sbin/haproxy`, else `haproxy` on `PATH`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the balancer treats its servers (the knobs a test may change).
#[derive(Debug, Clone)]
pub struct BalancerOptions {
    /// Time between two health checks of a server.
    pub check_interval: Duration,
    /// How long one health check may take (a loaded replica answers slowly, and is not
    /// down for that).
    pub check_timeout: Duration,
    /// Failed checks before a server is taken out, passed checks before it is put back.
    pub fall: u32,
    pub rise: u32,
    /// `retry-on` (what makes HAProxy send a request again, to another server with
    /// `option redispatch`): by default a connection that failed or was closed before any
    /// answer (`conn-failure empty-response`) and a `503` — agent-service answers 503
    /// before running anything when it is shutting down or at its concurrency cap.
    pub retry_on: String,
    pub retries: u32,
}

impl Default for BalancerOptions {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_millis(200),
            check_timeout: Duration::from_secs(2),
            fall: 2,
            rise: 2,
            retry_on: "conn-failure empty-response 503".into(),
            retries: 3,
        }
    }
}

/// A running HAProxy balancing over agent-service replicas; killed on drop.
pub struct Balancer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Child,
    dir: tempfile::TempDir,
    servers: usize,
    logs: Arc<Mutex<Vec<String>>>,
}

/// The backend's name in the generated configuration.
const BACKEND: &str = "replicas";

/// Where the HAProxy binary is.
pub fn haproxy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HAPROXY_BIN") {
        return PathBuf::from(p);
    }
    let debian = PathBuf::from("/usr/sbin/haproxy");
    if debian.is_file() {
        return debian;
    }
    PathBuf::from("haproxy")
}

/// `host:port` of an `http://host:port` base URL.
fn authority(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

impl Balancer {
    /// Starts HAProxy in front of `backends` (base URLs, `http://127.0.0.1:PORT`), server
    /// `i` being `backends[i]`, with the default options.
    pub fn start(backends: &[&str]) -> Self {
        Self::start_with(backends, &BalancerOptions::default())
    }

    pub fn start_with(backends: &[&str], opts: &BalancerOptions) -> Self {
        let dir = crate::agent::temp_dir();
        let socket = dir.path().join("admin.sock");
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the balancer's port");
        let port = listener.local_addr().expect("local address").port();
        let fd = listener.as_raw_fd();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, b)| format!("    server r{i} {} check\n", authority(b)))
            .collect();
        let config = format!(
            "global\n\
             \x20   maxconn 4096\n\
             \x20   stats socket {socket} mode 600 level admin\n\
             \x20   log stdout format raw local0 info\n\
             defaults\n\
             \x20   mode http\n\
             \x20   log global\n\
             \x20   option httplog\n\
             \x20   timeout connect 2s\n\
             \x20   timeout client 90s\n\
             \x20   timeout server 90s\n\
             \x20   timeout http-keep-alive 10s\n\
             \x20   timeout check {check_timeout}ms\n\
             \x20   retries {retries}\n\
             \x20   option redispatch 1\n\
             \x20   retry-on {retry_on}\n\
             frontend api\n\
             \x20   bind fd@{fd}\n\
             \x20   default_backend {BACKEND}\n\
             backend {BACKEND}\n\
             \x20   balance roundrobin\n\
             \x20   option httpchk GET /readyz\n\
             \x20   http-check expect status 200\n\
             \x20   default-server inter {inter}ms fall {fall} rise {rise}\n\
             {servers}",
            socket = socket.display(),
            retries = opts.retries,
            retry_on = opts.retry_on,
            inter = opts.check_interval.as_millis(),
            check_timeout = opts.check_timeout.as_millis(),
            fall = opts.fall,
            rise = opts.rise,
        );
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, &config).expect("write haproxy.cfg");
        let bin = haproxy_bin();
        let mut cmd = Command::new(&bin);
        cmd.arg("-f")
            .arg(&config_path)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        inherit_and_die_with_parent(&mut cmd, fd);
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "could not start HAProxy ({}): {e}; install it (apt-get install haproxy; \
                 scripts/test.sh does) or set HAPROXY_BIN",
                bin.display()
            )
        });
        // HAProxy holds its own copy of the socket now.
        drop(listener);
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lock(&logs).push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while runtime_command(&socket, "show info").is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "HAProxy exited ({status}) at start; its output:\n{}\nits configuration:\n{config}",
                    lock(&logs).join("\n")
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!(
                    "HAProxy's runtime API did not come up; its output:\n{}",
                    lock(&logs).join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
            dir,
            servers: backends.len(),
            logs,
        }
    }

    /// The base URL followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one command to HAProxy's runtime API and returns its answer.
    pub fn command(&self, cmd: &str) -> String {
        self.try_command(cmd)
            .unwrap_or_else(|e| panic!("HAProxy runtime API ({cmd}): {e}"))
    }

    fn try_command(&self, cmd: &str) -> std::io::Result<String> {
        runtime_command(&self.dir.path().join("admin.sock"), cmd)
    }

    /// Each server's state as HAProxy sees it (`UP`, `DOWN`, `MAINT`, `UP 1/2`…), by index.
    pub fn states(&self) -> Vec<String> {
        let csv = self.command("show stat");
        let header: Vec<&str> = csv
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name).expect("stat column");
        let (px, sv, status) = (col("pxname"), col("svname"), col("status"));
        let mut states = vec![String::new(); self.servers];
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() <= status || f[px] != BACKEND {
                continue;
            }
            if let Some(i) = f[sv]
                .strip_prefix('r')
                .and_then(|n| n.parse::<usize>().ok())
                && i < states.len()
            {
                states[i] = f[status].to_string();
            }
        }
        states
    }

    /// Waits until every server is `UP` (panics with the states after `within`).
    pub async fn wait_all_up(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let states = self.states();
            if states.iter().all(|s| s == "UP") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every server came up: {states:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Points server `i` at `base` (a replica restarted on a new port); it is put back
    /// once its health checks pass.
    pub fn set_server(&self, i: usize, base: &str) {
        let (host, port) = authority(base)
            .rsplit_once(':')
            .expect("a base URL with a port");
        let answer = self.command(&format!(
            "set server {BACKEND}/r{i} addr {host} port {port}"
        ));
        assert!(
            !answer.to_ascii_lowercase().contains("error")
                && !answer.to_ascii_lowercase().contains("not found"),
            "set server r{i}: {answer}"
        );
    }

    /// Every line HAProxy has written (its request log and its own messages).
    pub fn logs(&self) -> String {
        lock(&self.logs).join("\n")
    }

    /// HAProxy's request log lines that show a retry or a redispatch (`retries` field
    /// non-zero, or `+` before it when the request moved to another server).
    pub fn retried(&self) -> Vec<String> {
        lock(&self.logs)
            .iter()
            .filter(|l| retries_of(l).is_some_and(|n| n > 0))
            .cloned()
            .collect()
    }
}

/// One command to the runtime API at `socket`, and its answer.
fn runtime_command(socket: &Path, cmd: &str) -> std::io::Result<String> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{cmd}\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The retry count of an HAProxy `option httplog` line: the last field of the
/// `actconn/feconn/beconn/srv_conn/retries` group, the eleventh field (`+N` when the
/// request was also moved to another server).
fn retries_of(line: &str) -> Option<u32> {
    let group = line.split_whitespace().nth(10)?;
    if group.matches('/').count() != 4 {
        return None;
    }
    group
        .rsplit('/')
        .next()?
        .trim_start_matches('+')
        .parse()
        .ok()
}

/// Lets the child keep `fd` (Rust opens every descriptor close-on-exec) and asks the
/// kernel to kill it when the thread that started it ends, so a test killed mid-way
/// leaves no balancer behind.
fn inherit_and_die_with_parent(cmd: &mut Command, fd: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the child makes only async-signal-safe calls (`fcntl`,
    // `prctl`) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock(logs: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    logs.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_retry_count_of_a_log_line() {
        let line = r#"127.0.0.1:33138 [07/Dec/2026:14:45:44.431] api replicas/r0 0/0/0/2/3 200 454 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#;
        assert_eq!(retries_of(line), Some(0));
        let moved = line.replace("1/1/0/0/0", "3/3/1/0/+2");
        assert_eq!(retries_of(&line.replace("1/1/0/0/0", "1/1/0/0/1")), Some(1));
        assert_eq!(retries_of(&moved), Some(2));
        assert_eq!(retries_of("[NOTICE] a message"), None);
    }

    #[test]
    fn a_base_url_gives_its_authority() {
        assert_eq!(authority("http://127.0.0.1:4000/"), "127.0.0.1:4000");
    }
}
