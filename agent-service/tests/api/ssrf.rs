//! HTTP tools declared in config, and the SSRF guard on their outbound calls: internal
//! address literals are refused when the config loads; names are checked after DNS
//! resolution when the tool is called.

use serde_json::json;
use testkit::{FakeOllama, Reply};

use crate::both;
use crate::helpers::{Backend, TestApp, agent_service_bin, temp_dir};

fn http_tool(name: &str, url: &str) -> String {
    format!(
        "[[http_tools]]\nname = \"{name}\"\ndescription = \"probe\"\nmethod = \"GET\"\nurl = \"{url}\"\nside_effect = \"read\"\n[http_tools.schema]\ntype = \"object\"\n\n"
    )
}

#[test]
fn internal_address_literals_are_refused_at_start() {
    let tmp = temp_dir();
    let dir = tmp.path();
    for (target, reason) in [
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://10.1.2.3/x", "private"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
    ] {
        let config = dir.join("agent.toml");
        std::fs::write(&config, http_tool("probe", target)).unwrap();
        let out = std::process::Command::new(agent_service_bin())
            .args(["check-config"])
            .env_clear()
            .env("AGENT_CONFIG", &config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(
            stderr.contains("http_tools.probe.url") && stderr.contains(reason),
            "{target}: {stderr}"
        );
        assert!(
            stderr.contains("EGRESS_ALLOWLIST"),
            "the error names the fix: {stderr}"
        );
    }
}

/// The machine's own host name: sandboxes and containers map it to an internal address
/// in /etc/hosts, which makes it a real name that resolves to one.
fn internal_hostname() -> String {
    let out = std::process::Command::new("hostname")
        .output()
        .expect("hostname");
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let addrs: Vec<std::net::IpAddr> =
        std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 80))
            .unwrap_or_else(|e| panic!("this test needs the host name {name:?} to resolve: {e}"))
            .map(|a| a.ip())
            .collect();
    assert!(
        addrs.iter().any(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
            std::net::IpAddr::V6(v6) => v6.is_loopback(),
        }),
        "this test needs the host name {name:?} to resolve to an internal address, it resolves to {addrs:?}"
    );
    name
}

async fn names_and_redirects_to_internal_addresses_are_refused(backend: Backend) {
    let fake = FakeOllama::start().await;
    // An allowlisted local server (on 127.0.0.2, so the allowlist does not open 127.0.0.1) that redirects to the cloud metadata address.
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let redirects = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = redirects.clone();
    let router = axum::Router::new().route(
        "/r",
        axum::routing::get(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data/")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let host = internal_hostname();
    let tmp = temp_dir();
    let dir = tmp.path();
    let config = dir.join("agent.toml");
    let mut toml = "egress_allowlist = [\"127.0.0.2\"]\n".to_string();
    toml.push_str(&http_tool("named_internal", &format!("http://{host}:9/x")));
    toml.push_str(&http_tool(
        "redirector",
        &format!("http://127.0.0.2:{port}/r"),
    ));
    toml.push_str(
        "[workflow_tools]\nsupport_ticket_summary = [\"named_internal\", \"redirector\"]\n",
    );
    std::fs::write(&config, toml).unwrap();
    let cfg = config.to_str().unwrap().to_string();
    let app = TestApp::spawn_with_ollama(backend, &fake, &[("AGENT_CONFIG", &cfg)]).await;

    let (_, _, tools) = app.get(Some(app.key("viewer")), "/v1/tools").await;
    assert!(
        tools["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "named_internal" && t["source"] == "http"),
        "{tools}"
    );

    fake.push_reply(
        Reply::tool_call("named_internal", json!({})).and_tool_call("redirector", json!({})),
    );
    fake.push_reply(Reply::tool_call(
        "ticket_read",
        json!({"ticket_id": "T-1001"}),
    ));
    fake.push_reply(Reply::text("Nothing reachable [ticket:T-1001]."));
    let (s, v) = app
        .invoke("support_ticket_summary", "Summarize T-1001")
        .await;
    assert_eq!(s, 200, "{v}");
    for tool in ["named_internal", "redirector"] {
        let series = format!(r#"agent_tool_calls_total{{tool="{tool}",outcome="egress_denied"}}"#);
        assert_eq!(app.metric(&series).await, Some(1.0), "{series}");
    }
    assert_eq!(
        redirects.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the allowlisted hop was reached, the redirect was not followed"
    );
    // The refusals went back to the model as tool results, naming the address and why.
    let chats = fake.bodies("/api/chat");
    let tool_msgs: Vec<String> = chats[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m.to_string())
        .collect();
    assert_eq!(tool_msgs.len(), 2, "{tool_msgs:?}");
    assert!(
        tool_msgs.iter().any(|m| m.contains("169.254.169.254")),
        "{tool_msgs:?}"
    );
}
both!(
    ssrf_names_test,
    super::names_and_redirects_to_internal_addresses_are_refused
);
