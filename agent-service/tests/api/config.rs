//! Invalid configuration fails at start, naming the key and the allowed values.

use std::process::Command;

use crate::helpers::{Backend, TestApp, agent_service_bin, temp_dir};

fn start_with(env: &[(&str, &str)]) -> (i32, String) {
    let tmp = temp_dir();
    let dir = tmp.path();
    let mut cmd = Command::new(agent_service_bin());
    cmd.arg("serve")
        .env_clear()
        .env("DATABASE_URL", format!("sqlite://{}/x.db", dir.display()))
        .env("BIND_ADDR", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn bad_values_name_the_key() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &[("AGENT_PROVIDER", "gpt5")],
            &["AGENT_PROVIDER", "ollama, openai, scripted"],
        ),
        (&[("LOG_FORMAT", "xml")], &["LOG_FORMAT", "json, pretty"]),
        (
            &[("RELEASE_TRACK", "beta")],
            &["RELEASE_TRACK", "stable, canary"],
        ),
        (&[("MAX_CONCURRENCY", "many")], &["MAX_CONCURRENCY"]),
        (
            &[("TRACE_SAMPLE_RATE", "1.5")],
            &["TRACE_SAMPLE_RATE", "fraction from 0 to 1"],
        ),
        (&[("TRACE_SAMPLE_RATE", "half")], &["TRACE_SAMPLE_RATE"]),
        (
            &[("OLLAMA_BASE_URL", "localhost:11434")],
            &["OLLAMA_BASE_URL"],
        ),
        (&[("DATABASE_URL", "mysql://x/y")], &["DATABASE_URL"]),
        (
            &[("DATABASE_MAX_CONNECTIONS", "1")],
            &["DATABASE_MAX_CONNECTIONS", "from 2 to 1000"],
        ),
        (
            &[("DATABASE_MAX_CONNECTIONS", "lots")],
            &["DATABASE_MAX_CONNECTIONS", "whole number"],
        ),
        (&[("BIND_ADDR", "nowhere")], &["BIND_ADDR"]),
        (&[("AGENT_ENV", "production")], &["AGENT_PROVIDER"]),
        (
            &[("AGENT_CONFIG", "/nonexistent/agent.toml")],
            &["AGENT_CONFIG", "cannot read"],
        ),
        (
            &[("POLICY_PATH", "/nonexistent/policy.toml")],
            &["POLICY_PATH"],
        ),
    ];
    for (env, needles) in cases {
        let (code, stderr) = start_with(env);
        assert_eq!(
            code, 2,
            "{env:?} must fail with exit code 2; stderr: {stderr}"
        );
        for n in *needles {
            assert!(
                stderr.contains(n),
                "{env:?}: stderr should mention {n:?}: {stderr}"
            );
        }
    }
}

#[test]
fn config_file_errors_name_the_key() {
    let tmp = temp_dir();
    let dir = tmp.path();
    let path = dir.join("agent.toml");
    std::fs::write(&path, "max_tool_calls = \"three\"\n").unwrap();
    let (code, stderr) = start_with(&[("AGENT_CONFIG", path.to_str().unwrap())]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("max_tool_calls"), "{stderr}");
    std::fs::write(&path, "[[http_tools]]\nname = \"t\"\ndescription = \"d\"\nmethod = \"GET\"\nurl = \"https://example.com/{id}\"\nside_effect = \"maybe\"\n[http_tools.schema]\ntype = \"object\"\n").unwrap();
    let (code, stderr) = start_with(&[("AGENT_CONFIG", path.to_str().unwrap())]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("http_tools.t.side_effect"), "{stderr}");
}

#[test]
fn check_config_masks_secrets() {
    let out = Command::new(agent_service_bin())
        .arg("check-config")
        .env_clear()
        .env("AGENT_PROVIDER", "openai")
        .env("OPENAI_API_KEY", "sk-supersecretvalue1234567890")
        .env("DATABASE_URL", "postgres://app:hunter2@db.internal/agent")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("supersecret"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("AGENT_PROVIDER = openai"), "{text}");
    assert!(text.contains("policy_version = guardrails-v4"), "{text}");
    assert!(text.contains("tool_schema_hash = "), "{text}");
}

/// The SQLite pool opens at most `DATABASE_MAX_CONNECTIONS` connections: sqlx runs each one
/// on a thread of its own, so the process's threads show the pool's size under concurrent
/// requests.
#[tokio::test]
async fn the_database_pool_size_is_applied() {
    let sqlite_threads = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.starts_with("sqlx-sqlite"))
            .count()
    };
    let app = TestApp::spawn(Backend::Sqlite, &[("DATABASE_MAX_CONNECTIONS", "2")]).await;
    let texts: Vec<String> = (0..24)
        .map(|i| format!("Summarize ticket T-{}", 1001 + i % 12))
        .collect();
    let replies = futures::future::join_all(
        texts
            .iter()
            .map(|t| app.invoke("support_ticket_summary", t)),
    )
    .await;
    for (status, body) in replies {
        assert!(status.is_success(), "{status} {body}");
    }
    let n = sqlite_threads(app.pid());
    assert!(
        (1..=2).contains(&n),
        "{n} SQLite connections with a pool of 2"
    );
    let check = Command::new(agent_service_bin())
        .arg("check-config")
        .env_clear()
        .env("DATABASE_MAX_CONNECTIONS", "2")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&check.stdout).contains("DATABASE_MAX_CONNECTIONS = 2"));
}
