//! The command line: `serve` (default), `migrate`, `keys create|list|revoke`, `seed-demo`,
//! `check-config`, `eval run`, `guardrails scan|redact|measure|features`.

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
    /// Run eval suites and gate a release on them.
    Eval {
        #[command(subcommand)]
        action: EvalCommand,
    },
    /// Inspect and measure the guardrails of the configured policy.
    Guardrails {
        #[command(subcommand)]
        action: GuardrailsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum GuardrailsCommand {
    /// Read a text on standard input and print the input decision as JSON.
    Scan,
    /// Read a text on standard input and print it redacted (PII and secrets).
    Redact,
    /// Measure detection, false positives, PII recall and scan cost on JSONL corpora
    /// (agent-service/guardrails-data/). Use a release build for the timings.
    Measure {
        /// Attack/benign corpus: lines of {id, label, category, text}.
        #[arg(long)]
        corpus: std::path::PathBuf,
        /// PII corpus: lines of {id, kind, locale, text, secrets}.
        #[arg(long)]
        pii: Option<std::path::PathBuf>,
        /// Extra benign texts for false redactions (same shape as --corpus).
        #[arg(long)]
        pii_benign: Option<std::path::PathBuf>,
        /// Time the input scan at 4,000 characters (this many rounds).
        #[arg(long, default_value_t = 0)]
        timing_rounds: usize,
        /// Also write the full report (with the ids of misses) as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Scan with this model file instead of the embedded one (a candidate from
        /// guardrails-data/train.py, measured before it is embedded).
        #[arg(long)]
        model: Option<std::path::PathBuf>,
    },
    /// Write the model's features of a corpus (for guardrails-data/train.py).
    Features {
        #[arg(long)]
        input: std::path::PathBuf,
        #[arg(long)]
        output: std::path::PathBuf,
        /// Hash bits of the n-gram feature space.
        #[arg(long, default_value_t = 18)]
        bits: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Run a suite against the configured database and provider, store the run, write
    /// <suite>-<run>.json, .md and .junit.xml reports and print a summary.
    #[command(
        after_help = "Exit status: 0 the run completed (with --gate: and the gate passed); \
                            1 the gate failed (--gate); 2 bad flags, unknown suite or baseline, malformed \
                            suite file; 3 the run could not complete."
    )]
    Run {
        /// The suite to run (`golden`, `adversarial`, or one from --suites-dir).
        #[arg(long)]
        suite: String,
        /// Exit with status 1 when the gate fails (thresholds: EVAL_GATE_*).
        #[arg(long)]
        gate: bool,
        /// Compare with a completed run of the same suite: `latest` or a run id.
        #[arg(long, value_name = "latest|RUN_ID")]
        baseline: Option<String>,
        /// Where the reports go (created if missing).
        #[arg(long, value_name = "DIR", default_value = "reports")]
        out: std::path::PathBuf,
        /// Read suites from this directory's *.toml files instead of the shipped ones.
        #[arg(long, value_name = "DIR")]
        suites_dir: Option<std::path::PathBuf>,
        /// The tenant that owns the stored run (whose keys can read it over the API).
        #[arg(long, default_value = "eval")]
        tenant: String,
    },
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
