//! The command line: `serve` (default), `migrate`, `keys create|list|revoke`, `seed-demo`,
//! `check-config`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "agent-service",
    version,
    about = "Production agent runtime: workflows, tools, guardrails, approvals, metrics",
    long_about = "Production agent runtime.\n\nConfiguration is layered: defaults < the TOML file named by AGENT_CONFIG < environment \
                  variables (DATABASE_URL, AGENT_PROVIDER, OLLAMA_BASE_URL, BIND_ADDR, …). Run `agent-service check-config` \
                  to see the effective values.\n\nQuick start:\n  agent-service seed-demo   # demo data + one API key per role\n  \
                  agent-service serve       # http://127.0.0.1:8080"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default). Applies pending migrations first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Fill the demo domain (idempotent) and print fresh demo keys as role<TAB>tenant<TAB>key.
    SeedDemo,
    /// Print the effective configuration (secrets masked) and the pinned versions.
    CheckConfig,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its plaintext is printed once and never stored.
    Create {
        /// Tenant the key belongs to (a-z, 0-9, '_', '-').
        #[arg(long)]
        tenant: String,
        /// Comma-separated roles: invoke, viewer, approver, operator, admin.
        #[arg(long)]
        roles: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "unnamed")]
        name: String,
    },
    /// List keys (never their plaintext).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key by id (key_…).
    Revoke { id: String },
}
