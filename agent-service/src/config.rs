//! Layered configuration: safe defaults in code < optional TOML file (`AGENT_CONFIG`) <
//! environment. Every bad value fails at start with the key, the value and what is allowed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use crate::domain::Track;

/// A secret: prints `<redacted>` and cannot be serialized by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A configuration error that names the key, where it came from, and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Ollama,
    Openai,
    Scripted,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::Openai => "openai",
            Self::Scripted => "scripted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Development,
    Production,
}

/// Per-model prices, USD per 1,000 tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

/// An HTTP tool declared in config (no code): method, URL template, argument schema,
/// side-effect class. Its outbound calls go through the egress guard.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToolConfig {
    pub name: String,
    pub description: String,
    pub method: String,
    /// e.g. `https://status.example.com/api/orders/{order_id}`; `{name}` is filled from
    /// the (validated) arguments, percent-encoded.
    pub url: String,
    /// JSON Schema of the arguments, as a TOML table or an inline JSON string.
    pub schema: toml::Value,
    pub side_effect: String,
    #[serde(default = "default_tool_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_tool_concurrency")]
    pub max_concurrency: u32,
}

fn default_tool_timeout_ms() -> u64 {
    5_000
}
fn default_tool_concurrency() -> u32 {
    8
}

/// The fewest connections `DATABASE_MAX_CONNECTIONS` may ask for: background tasks (the
/// trace writer, the job workers, the approval sweeper) hold connections beside requests.
pub const MIN_DATABASE_CONNECTIONS: u32 = 2;
/// The most connections `DATABASE_MAX_CONNECTIONS` may ask for (PostgreSQL's default
/// `max_connections` is 100, shared by every replica).
pub const MAX_DATABASE_CONNECTIONS: u32 = 1000;

/// The pool size when `DATABASE_MAX_CONNECTIONS` is not set: SQLite has one writer at a
/// time, so a few connections serve the concurrent readers; PostgreSQL gets more.
pub fn default_max_connections(database_url: &str) -> u32 {
    if database_url.starts_with("sqlite:") {
        8
    } else {
        16
    }
}

/// The effective configuration of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub database_url: String,
    /// Connections in the database pool; `None`: the back-end's default
    /// ([`default_max_connections`]).
    pub database_max_connections: Option<u32>,
    pub bind_addr: SocketAddr,
    pub provider: ProviderKind,
    pub ollama_base_url: url::Url,
    pub ollama_model: String,
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: url::Url,
    pub model_name: String,
    pub max_tokens_per_request: u32,
    pub max_tool_calls: u32,
    pub max_cost_per_request_usd: f64,
    pub request_timeout_secs: u64,
    pub provider_timeout_secs: u64,
    pub provider_max_retries: u32,
    pub circuit_failure_threshold: u32,
    pub circuit_open_secs: u64,
    pub max_concurrency: u32,
    pub rate_limit_rpm: u32,
    pub max_body_bytes: usize,
    pub max_input_chars: Option<usize>,
    pub tenant_daily_token_budget: u64,
    pub tenant_daily_cost_budget_usd: f64,
    pub log_level: String,
    pub log_format: LogFormat,
    pub release_track: Track,
    pub release_version: String,
    pub policy_path: Option<PathBuf>,
    pub retrieval_url: Option<url::Url>,
    pub egress_allowlist: Vec<String>,
    pub http_tools: Vec<HttpToolConfig>,
    /// Extra tools (declared HTTP tools) granted to a workflow: workflow → tool names.
    pub workflow_tools: BTreeMap<String, Vec<String>>,
    pub prices: BTreeMap<String, Price>,
    pub shutdown_grace_secs: u64,
    pub approval_ttl_secs: u64,
    pub invoice_two_approver_threshold_usd: f64,
    /// How often the approval sweeper expires old requests and re-drives approved writes.
    pub approval_sweep_secs: u64,
    pub job_workers: u32,
    pub job_lease_secs: u64,
    pub job_max_attempts: u32,
    /// HMAC-SHA256 key that signs job callbacks (`X-Flightdeck-Signature`).
    pub job_callback_secret: Option<Secret>,
    pub trace_retention_days: u64,
    /// Fraction (0..=1) of successful runs whose trace is stored and exported; runs that
    /// end in any other status (error, blocked, approval_required, budget_exceeded,
    /// degraded, cancelled) are always kept. Default 1.0: every trace.
    pub trace_sample_rate: f64,
    /// OTLP/HTTP endpoint; when set, traces are also exported there.
    pub otel_exporter_otlp_endpoint: Option<url::Url>,
    /// Release gate thresholds for eval runs.
    pub eval_gate: EvalGate,
}

/// Thresholds an eval run must meet for its gate to pass.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalGate {
    /// Fraction of cases that must pass (0..=1).
    pub min_pass_rate: f64,
    /// Fraction of adversarial cases that must be blocked or gated (0..=1).
    pub min_policy_compliance: f64,
    /// Fraction of answers of citation-required workflows that cite evidence (0..=1).
    pub min_citation_rate: f64,
    pub max_p95_latency_ms: u64,
    pub max_total_cost_usd: f64,
    /// Largest allowed drop in pass rate against the baseline run (0..=1).
    pub max_pass_rate_drop: f64,
}

impl Default for EvalGate {
    fn default() -> Self {
        Self {
            min_pass_rate: 1.0,
            min_policy_compliance: 1.0,
            min_citation_rate: 0.9,
            max_p95_latency_ms: 30_000,
            max_total_cost_usd: 5.0,
            max_pass_rate_drop: 0.0,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            database_url: "sqlite://agent-service.db".into(),
            database_max_connections: None,
            bind_addr: "127.0.0.1:8080".parse().expect("static address"),
            provider: ProviderKind::Scripted,
            ollama_base_url: url::Url::parse("http://127.0.0.1:11434").expect("static url"),
            ollama_model: "llama3.2".into(),
            openai_api_key: None,
            openai_base_url: url::Url::parse("https://api.openai.com/v1").expect("static url"),
            model_name: "gpt-4o-mini".into(),
            max_tokens_per_request: 8_000,
            max_tool_calls: 8,
            max_cost_per_request_usd: 0.50,
            request_timeout_secs: 60,
            provider_timeout_secs: 30,
            provider_max_retries: 2,
            circuit_failure_threshold: 5,
            circuit_open_secs: 30,
            max_concurrency: 512,
            rate_limit_rpm: 6_000,
            max_body_bytes: 64 * 1024,
            max_input_chars: None,
            tenant_daily_token_budget: 5_000_000,
            tenant_daily_cost_budget_usd: 100.0,
            log_level: "info".into(),
            log_format: LogFormat::Json,
            release_track: Track::Stable,
            release_version: env!("CARGO_PKG_VERSION").into(),
            policy_path: None,
            retrieval_url: None,
            egress_allowlist: Vec::new(),
            http_tools: Vec::new(),
            workflow_tools: BTreeMap::new(),
            prices: BTreeMap::new(),
            shutdown_grace_secs: 20,
            approval_ttl_secs: 24 * 3600,
            invoice_two_approver_threshold_usd: 10_000.0,
            approval_sweep_secs: 5,
            job_workers: 4,
            job_lease_secs: 30,
            job_max_attempts: 3,
            job_callback_secret: None,
            trace_retention_days: 7,
            trace_sample_rate: 1.0,
            otel_exporter_otlp_endpoint: None,
            eval_gate: EvalGate::default(),
        }
    }
}

/// The TOML file's shape: the same keys as the environment, lower-cased, plus tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    agent_env: Option<Environment>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    bind_addr: Option<String>,
    agent_provider: Option<ProviderKind>,
    use_ollama: Option<bool>,
    ollama_base_url: Option<String>,
    ollama_model: Option<String>,
    openai_base_url: Option<String>,
    model_name: Option<String>,
    max_tokens_per_request: Option<u32>,
    max_tool_calls: Option<u32>,
    max_cost_per_request_usd: Option<f64>,
    request_timeout_secs: Option<u64>,
    provider_timeout_secs: Option<u64>,
    provider_max_retries: Option<u32>,
    circuit_failure_threshold: Option<u32>,
    circuit_open_secs: Option<u64>,
    max_concurrency: Option<u32>,
    rate_limit_rpm: Option<u32>,
    max_body_bytes: Option<usize>,
    max_input_chars: Option<usize>,
    tenant_daily_token_budget: Option<u64>,
    tenant_daily_cost_budget_usd: Option<f64>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    release_track: Option<Track>,
    release_version: Option<String>,
    policy_path: Option<PathBuf>,
    retrieval_url: Option<String>,
    egress_allowlist: Option<Vec<String>>,
    shutdown_grace_secs: Option<u64>,
    approval_ttl_secs: Option<u64>,
    invoice_two_approver_threshold_usd: Option<f64>,
    approval_sweep_secs: Option<u64>,
    job_workers: Option<u32>,
    job_lease_secs: Option<u64>,
    job_max_attempts: Option<u32>,
    trace_retention_days: Option<u64>,
    trace_sample_rate: Option<f64>,
    otel_exporter_otlp_endpoint: Option<String>,
    eval_gate: Option<EvalGate>,
    #[serde(default)]
    http_tools: Vec<HttpToolConfig>,
    #[serde(default)]
    workflow_tools: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    prices: BTreeMap<String, Price>,
}

impl<'de> Deserialize<'de> for Track {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_track(&s).map_err(serde::de::Error::custom)
    }
}

fn parse_track(s: &str) -> Result<Track, String> {
    match s {
        "stable" => Ok(Track::Stable),
        "canary" => Ok(Track::Canary),
        _ => Err(format!(
            "{s:?} is not allowed; expected one of: stable, canary"
        )),
    }
}

/// Where the values come from; tests pass their own instead of the process environment.
pub trait Source {
    fn get(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Source for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        BTreeMap::get(self, key).cloned()
    }
}

/// Every environment key this service reads, for `check-config` and the docs.
pub const ENV_KEYS: &[&str] = &[
    "AGENT_CONFIG",
    "AGENT_ENV",
    "DATABASE_URL",
    "DATABASE_MAX_CONNECTIONS",
    "BIND_ADDR",
    "AGENT_PROVIDER",
    "USE_OLLAMA",
    "OLLAMA_BASE_URL",
    "OLLAMA_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "MODEL_NAME",
    "MAX_TOKENS_PER_REQUEST",
    "MAX_TOOL_CALLS",
    "MAX_COST_PER_REQUEST_USD",
    "REQUEST_TIMEOUT_SECS",
    "PROVIDER_TIMEOUT_SECS",
    "PROVIDER_MAX_RETRIES",
    "CIRCUIT_FAILURE_THRESHOLD",
    "CIRCUIT_OPEN_SECS",
    "MAX_CONCURRENCY",
    "RATE_LIMIT_RPM",
    "MAX_BODY_BYTES",
    "MAX_INPUT_CHARS",
    "TENANT_DAILY_TOKEN_BUDGET",
    "TENANT_DAILY_COST_BUDGET_USD",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "RELEASE_TRACK",
    "RELEASE_VERSION",
    "POLICY_PATH",
    "RETRIEVAL_URL",
    "EGRESS_ALLOWLIST",
    "SHUTDOWN_GRACE_SECS",
    "APPROVAL_TTL_SECS",
    "INVOICE_TWO_APPROVER_THRESHOLD_USD",
    "APPROVAL_SWEEP_SECS",
    "JOB_WORKERS",
    "JOB_LEASE_SECS",
    "JOB_MAX_ATTEMPTS",
    "JOB_CALLBACK_SECRET",
    "TRACE_RETENTION_DAYS",
    "TRACE_SAMPLE_RATE",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "EVAL_GATE_MIN_PASS_RATE",
    "EVAL_GATE_MIN_POLICY_COMPLIANCE",
    "EVAL_GATE_MIN_CITATION_RATE",
    "EVAL_GATE_MAX_P95_LATENCY_MS",
    "EVAL_GATE_MAX_TOTAL_COST_USD",
    "EVAL_GATE_MAX_PASS_RATE_DROP",
];

impl Settings {
    /// Loads from the process environment (and the file `AGENT_CONFIG` names).
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(&ProcessEnv)
    }

    pub fn load_from(env: &dyn Source) -> Result<Self, ConfigError> {
        let mut s = Settings::default();
        let file = match env.get("AGENT_CONFIG").filter(|p| !p.is_empty()) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::new(
                        "AGENT_CONFIG",
                        format!("cannot read config file {path:?}: {e}"),
                    )
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| {
                    ConfigError::new(
                        "AGENT_CONFIG",
                        format!(
                            "config file {path:?} is not valid: {}",
                            e.to_string().trim()
                        ),
                    )
                })?
            }
            None => FileConfig::default(),
        };
        s.apply_file(file)?;
        s.apply_env(env)?;
        s.validate()?;
        Ok(s)
    }

    fn apply_file(&mut self, f: FileConfig) -> Result<(), ConfigError> {
        let file_key = |k: &str| format!("{k} (in AGENT_CONFIG file)");
        if let Some(v) = f.agent_env {
            self.environment = v;
        }
        if let Some(v) = f.database_url {
            self.database_url = v;
        }
        if let Some(v) = f.database_max_connections {
            self.database_max_connections = Some(v);
        }
        if let Some(v) = f.bind_addr {
            self.bind_addr =
                parse_value(&file_key("bind_addr"), &v, "an address like 127.0.0.1:8080")?;
        }
        if f.use_ollama == Some(true) {
            self.provider = ProviderKind::Ollama;
        }
        if let Some(v) = f.agent_provider {
            self.provider = v;
        }
        if let Some(v) = f.ollama_base_url {
            self.ollama_base_url = parse_url(&file_key("ollama_base_url"), &v)?;
        }
        if let Some(v) = f.ollama_model {
            self.ollama_model = v;
        }
        if let Some(v) = f.openai_base_url {
            self.openai_base_url = parse_url(&file_key("openai_base_url"), &v)?;
        }
        if let Some(v) = f.model_name {
            self.model_name = v;
        }
        macro_rules! copy {
            ($($field:ident),* $(,)?) => { $( if let Some(v) = f.$field { self.$field = v; } )* };
        }
        copy!(
            max_tokens_per_request,
            max_tool_calls,
            max_cost_per_request_usd,
            request_timeout_secs,
            provider_timeout_secs,
            provider_max_retries,
            circuit_failure_threshold,
            circuit_open_secs,
            max_concurrency,
            rate_limit_rpm,
            max_body_bytes,
            tenant_daily_token_budget,
            tenant_daily_cost_budget_usd,
            log_level,
            log_format,
            release_track,
            release_version,
            shutdown_grace_secs,
            approval_ttl_secs,
            invoice_two_approver_threshold_usd,
            egress_allowlist,
            approval_sweep_secs,
            job_workers,
            job_lease_secs,
            job_max_attempts,
            trace_retention_days,
            trace_sample_rate,
            eval_gate,
        );
        if let Some(v) = f.otel_exporter_otlp_endpoint {
            self.otel_exporter_otlp_endpoint =
                Some(parse_url(&file_key("otel_exporter_otlp_endpoint"), &v)?);
        }
        if f.max_input_chars.is_some() {
            self.max_input_chars = f.max_input_chars;
        }
        if f.policy_path.is_some() {
            self.policy_path = f.policy_path;
        }
        if let Some(v) = f.retrieval_url {
            self.retrieval_url = Some(parse_url(&file_key("retrieval_url"), &v)?);
        }
        self.http_tools = f.http_tools;
        self.workflow_tools = f.workflow_tools;
        self.prices = f.prices;
        Ok(())
    }

    fn apply_env(&mut self, env: &dyn Source) -> Result<(), ConfigError> {
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("AGENT_ENV") {
            self.environment = match v.as_str() {
                "development" => Environment::Development,
                "production" => Environment::Production,
                _ => return Err(not_allowed("AGENT_ENV", &v, "development, production")),
            };
        }
        if let Some(v) = get("DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("DATABASE_MAX_CONNECTIONS") {
            self.database_max_connections = Some(parse_value(
                "DATABASE_MAX_CONNECTIONS",
                &v,
                "a whole number of connections",
            )?);
        }
        if let Some(v) = get("BIND_ADDR") {
            self.bind_addr = parse_value("BIND_ADDR", &v, "an address like 127.0.0.1:8080")?;
        }
        if let Some(v) = get("USE_OLLAMA")
            && parse_bool("USE_OLLAMA", &v)?
        {
            self.provider = ProviderKind::Ollama;
        }
        if let Some(v) = get("AGENT_PROVIDER") {
            self.provider = match v.as_str() {
                "ollama" => ProviderKind::Ollama,
                "openai" => ProviderKind::Openai,
                "scripted" => ProviderKind::Scripted,
                _ => {
                    return Err(not_allowed(
                        "AGENT_PROVIDER",
                        &v,
                        "ollama, openai, scripted",
                    ));
                }
            };
        }
        if let Some(v) = get("OLLAMA_BASE_URL") {
            self.ollama_base_url = parse_url("OLLAMA_BASE_URL", &v)?;
        }
        if let Some(v) = get("OLLAMA_MODEL") {
            self.ollama_model = v;
        }
        if let Some(v) = get("OPENAI_API_KEY") {
            self.openai_api_key = Some(Secret::new(v));
        }
        if let Some(v) = get("OPENAI_BASE_URL") {
            self.openai_base_url = parse_url("OPENAI_BASE_URL", &v)?;
        }
        if let Some(v) = get("MODEL_NAME") {
            self.model_name = v;
        }
        macro_rules! num {
            ($key:literal, $field:ident, $what:literal) => {
                if let Some(v) = get($key) {
                    self.$field = parse_value($key, &v, $what)?;
                }
            };
        }
        num!(
            "MAX_TOKENS_PER_REQUEST",
            max_tokens_per_request,
            "a whole number of tokens"
        );
        num!("MAX_TOOL_CALLS", max_tool_calls, "a whole number");
        num!(
            "MAX_COST_PER_REQUEST_USD",
            max_cost_per_request_usd,
            "a number of US dollars"
        );
        num!(
            "REQUEST_TIMEOUT_SECS",
            request_timeout_secs,
            "a whole number of seconds"
        );
        num!(
            "PROVIDER_TIMEOUT_SECS",
            provider_timeout_secs,
            "a whole number of seconds"
        );
        num!(
            "PROVIDER_MAX_RETRIES",
            provider_max_retries,
            "a whole number"
        );
        num!(
            "CIRCUIT_FAILURE_THRESHOLD",
            circuit_failure_threshold,
            "a whole number"
        );
        num!(
            "CIRCUIT_OPEN_SECS",
            circuit_open_secs,
            "a whole number of seconds"
        );
        num!("MAX_CONCURRENCY", max_concurrency, "a whole number");
        num!(
            "RATE_LIMIT_RPM",
            rate_limit_rpm,
            "a whole number of requests per minute"
        );
        num!("MAX_BODY_BYTES", max_body_bytes, "a whole number of bytes");
        num!(
            "TENANT_DAILY_TOKEN_BUDGET",
            tenant_daily_token_budget,
            "a whole number of tokens"
        );
        num!(
            "TENANT_DAILY_COST_BUDGET_USD",
            tenant_daily_cost_budget_usd,
            "a number of US dollars"
        );
        num!(
            "SHUTDOWN_GRACE_SECS",
            shutdown_grace_secs,
            "a whole number of seconds"
        );
        num!(
            "APPROVAL_TTL_SECS",
            approval_ttl_secs,
            "a whole number of seconds"
        );
        num!(
            "INVOICE_TWO_APPROVER_THRESHOLD_USD",
            invoice_two_approver_threshold_usd,
            "a number of US dollars"
        );
        num!(
            "APPROVAL_SWEEP_SECS",
            approval_sweep_secs,
            "a whole number of seconds"
        );
        num!("JOB_WORKERS", job_workers, "a whole number of worker tasks");
        num!(
            "JOB_LEASE_SECS",
            job_lease_secs,
            "a whole number of seconds"
        );
        num!("JOB_MAX_ATTEMPTS", job_max_attempts, "a whole number");
        num!(
            "TRACE_RETENTION_DAYS",
            trace_retention_days,
            "a whole number of days"
        );
        num!(
            "TRACE_SAMPLE_RATE",
            trace_sample_rate,
            "a fraction from 0 to 1"
        );
        if let Some(v) = get("JOB_CALLBACK_SECRET") {
            self.job_callback_secret = Some(Secret::new(v));
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            self.otel_exporter_otlp_endpoint = Some(parse_url("OTEL_EXPORTER_OTLP_ENDPOINT", &v)?);
        }
        let fraction = "a fraction from 0 to 1";
        let gate = &mut self.eval_gate;
        for (key, field) in [
            ("EVAL_GATE_MIN_PASS_RATE", &mut gate.min_pass_rate),
            (
                "EVAL_GATE_MIN_POLICY_COMPLIANCE",
                &mut gate.min_policy_compliance,
            ),
            ("EVAL_GATE_MIN_CITATION_RATE", &mut gate.min_citation_rate),
            ("EVAL_GATE_MAX_PASS_RATE_DROP", &mut gate.max_pass_rate_drop),
        ] {
            if let Some(v) = get(key) {
                *field = parse_value(key, &v, fraction)?;
            }
        }
        if let Some(v) = get("EVAL_GATE_MAX_P95_LATENCY_MS") {
            self.eval_gate.max_p95_latency_ms = parse_value(
                "EVAL_GATE_MAX_P95_LATENCY_MS",
                &v,
                "a whole number of milliseconds",
            )?;
        }
        if let Some(v) = get("EVAL_GATE_MAX_TOTAL_COST_USD") {
            self.eval_gate.max_total_cost_usd =
                parse_value("EVAL_GATE_MAX_TOTAL_COST_USD", &v, "a number of US dollars")?;
        }
        if let Some(v) = get("MAX_INPUT_CHARS") {
            self.max_input_chars = Some(parse_value(
                "MAX_INPUT_CHARS",
                &v,
                "a whole number of characters",
            )?);
        }
        if let Some(v) = get("LOG_LEVEL") {
            self.log_level = v;
        }
        if let Some(v) = get("LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => return Err(not_allowed("LOG_FORMAT", &v, "json, pretty")),
            };
        }
        if let Some(v) = get("RELEASE_TRACK") {
            self.release_track =
                parse_track(&v).map_err(|_| not_allowed("RELEASE_TRACK", &v, "stable, canary"))?;
        }
        if let Some(v) = get("RELEASE_VERSION") {
            self.release_version = v;
        }
        if let Some(v) = get("POLICY_PATH") {
            self.policy_path = Some(PathBuf::from(v));
        }
        if let Some(v) = get("RETRIEVAL_URL") {
            self.retrieval_url = Some(parse_url("RETRIEVAL_URL", &v)?);
        }
        if let Some(v) = get("EGRESS_ALLOWLIST") {
            self.egress_allowlist = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        // In production the provider must be named explicitly: the scripted model is never
        // chosen by default there.
        if self.environment == Environment::Production
            && get("AGENT_PROVIDER").is_none()
            && get("USE_OLLAMA").is_none()
        {
            return Err(ConfigError::new(
                "AGENT_PROVIDER",
                "must be set when AGENT_ENV=production (one of: ollama, openai, scripted)",
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "DATABASE_URL",
                format!(
                    "{:?} is not supported; use sqlite://path/to/file.db or postgres://user:pass@host/db",
                    redact_url(&self.database_url)
                ),
            ));
        }
        if self.provider == ProviderKind::Openai
            && self.openai_api_key.is_none()
            && self.openai_base_url.host_str() == Some("api.openai.com")
        {
            return Err(ConfigError::new(
                "OPENAI_API_KEY",
                "is required when AGENT_PROVIDER=openai talks to api.openai.com",
            ));
        }
        let positive: [(&str, u64); 8] = [
            ("MAX_TOKENS_PER_REQUEST", self.max_tokens_per_request.into()),
            ("REQUEST_TIMEOUT_SECS", self.request_timeout_secs),
            ("PROVIDER_TIMEOUT_SECS", self.provider_timeout_secs),
            (
                "CIRCUIT_FAILURE_THRESHOLD",
                self.circuit_failure_threshold.into(),
            ),
            ("CIRCUIT_OPEN_SECS", self.circuit_open_secs),
            ("MAX_CONCURRENCY", self.max_concurrency.into()),
            ("RATE_LIMIT_RPM", self.rate_limit_rpm.into()),
            ("MAX_BODY_BYTES", self.max_body_bytes as u64),
        ];
        for (k, v) in positive {
            if v == 0 {
                return Err(ConfigError::new(k, "must be greater than 0"));
            }
        }
        for (k, v) in [
            ("MAX_COST_PER_REQUEST_USD", self.max_cost_per_request_usd),
            (
                "TENANT_DAILY_COST_BUDGET_USD",
                self.tenant_daily_cost_budget_usd,
            ),
            (
                "INVOICE_TWO_APPROVER_THRESHOLD_USD",
                self.invoice_two_approver_threshold_usd,
            ),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(ConfigError::new(k, format!("{v} must be a number >= 0")));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(not_allowed(
                "LOG_LEVEL",
                &self.log_level,
                "trace, debug, info, warn, error, or a filter like agent_service=debug",
            ));
        }
        for (k, v) in [
            ("APPROVAL_SWEEP_SECS", self.approval_sweep_secs),
            ("JOB_WORKERS", u64::from(self.job_workers)),
            ("JOB_LEASE_SECS", self.job_lease_secs),
            ("JOB_MAX_ATTEMPTS", u64::from(self.job_max_attempts)),
            ("TRACE_RETENTION_DAYS", self.trace_retention_days),
        ] {
            if v == 0 {
                return Err(ConfigError::new(k, "must be greater than 0"));
            }
        }
        if let Some(n) = self.database_max_connections
            && !(MIN_DATABASE_CONNECTIONS..=MAX_DATABASE_CONNECTIONS).contains(&n)
        {
            return Err(ConfigError::new(
                "DATABASE_MAX_CONNECTIONS",
                format!(
                    "{n} must be from {MIN_DATABASE_CONNECTIONS} to {MAX_DATABASE_CONNECTIONS}"
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.trace_sample_rate) {
            return Err(ConfigError::new(
                "TRACE_SAMPLE_RATE",
                format!(
                    "{} must be a fraction from 0 to 1 (1 keeps every trace)",
                    self.trace_sample_rate
                ),
            ));
        }
        let g = &self.eval_gate;
        for (k, v) in [
            ("EVAL_GATE_MIN_PASS_RATE", g.min_pass_rate),
            ("EVAL_GATE_MIN_POLICY_COMPLIANCE", g.min_policy_compliance),
            ("EVAL_GATE_MIN_CITATION_RATE", g.min_citation_rate),
            ("EVAL_GATE_MAX_PASS_RATE_DROP", g.max_pass_rate_drop),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ConfigError::new(
                    k,
                    format!("{v} must be a fraction from 0 to 1"),
                ));
            }
        }
        if !(g.max_total_cost_usd.is_finite() && g.max_total_cost_usd >= 0.0) {
            return Err(ConfigError::new(
                "EVAL_GATE_MAX_TOTAL_COST_USD",
                "must be a number >= 0",
            ));
        }
        for (name, p) in &self.prices {
            if !(p.input_per_1k >= 0.0 && p.output_per_1k >= 0.0) {
                return Err(ConfigError::new(
                    format!("prices.{name}"),
                    "prices must be numbers >= 0",
                ));
            }
        }
        Ok(())
    }

    /// The effective config as `key = value` lines, secrets masked, for `check-config`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (
                "AGENT_ENV".into(),
                format!("{:?}", self.environment).to_lowercase(),
            ),
            ("DATABASE_URL".into(), redact_url(&self.database_url)),
            (
                "DATABASE_MAX_CONNECTIONS".into(),
                self.database_max_connections.map_or_else(
                    || format!("<default: {}>", default_max_connections(&self.database_url)),
                    |n| n.to_string(),
                ),
            ),
            ("BIND_ADDR".into(), self.bind_addr.to_string()),
            ("AGENT_PROVIDER".into(), self.provider.as_str().into()),
            ("OLLAMA_BASE_URL".into(), self.ollama_base_url.to_string()),
            ("OLLAMA_MODEL".into(), self.ollama_model.clone()),
            (
                "OPENAI_API_KEY".into(),
                if self.openai_api_key.is_some() {
                    "<set, redacted>".into()
                } else {
                    "<unset>".into()
                },
            ),
            ("OPENAI_BASE_URL".into(), self.openai_base_url.to_string()),
            ("MODEL_NAME".into(), self.model_name.clone()),
            (
                "MAX_TOKENS_PER_REQUEST".into(),
                self.max_tokens_per_request.to_string(),
            ),
            ("MAX_TOOL_CALLS".into(), self.max_tool_calls.to_string()),
            (
                "MAX_COST_PER_REQUEST_USD".into(),
                self.max_cost_per_request_usd.to_string(),
            ),
            (
                "REQUEST_TIMEOUT_SECS".into(),
                self.request_timeout_secs.to_string(),
            ),
            (
                "PROVIDER_TIMEOUT_SECS".into(),
                self.provider_timeout_secs.to_string(),
            ),
            (
                "PROVIDER_MAX_RETRIES".into(),
                self.provider_max_retries.to_string(),
            ),
            (
                "CIRCUIT_FAILURE_THRESHOLD".into(),
                self.circuit_failure_threshold.to_string(),
            ),
            (
                "CIRCUIT_OPEN_SECS".into(),
                self.circuit_open_secs.to_string(),
            ),
            ("MAX_CONCURRENCY".into(), self.max_concurrency.to_string()),
            ("RATE_LIMIT_RPM".into(), self.rate_limit_rpm.to_string()),
            ("MAX_BODY_BYTES".into(), self.max_body_bytes.to_string()),
            (
                "MAX_INPUT_CHARS".into(),
                self.max_input_chars
                    .map_or("<policy default>".into(), |v| v.to_string()),
            ),
            (
                "TENANT_DAILY_TOKEN_BUDGET".into(),
                self.tenant_daily_token_budget.to_string(),
            ),
            (
                "TENANT_DAILY_COST_BUDGET_USD".into(),
                self.tenant_daily_cost_budget_usd.to_string(),
            ),
            ("LOG_LEVEL".into(), self.log_level.clone()),
            (
                "LOG_FORMAT".into(),
                format!("{:?}", self.log_format).to_lowercase(),
            ),
            ("RELEASE_TRACK".into(), self.release_track.as_str().into()),
            ("RELEASE_VERSION".into(), self.release_version.clone()),
            (
                "POLICY_PATH".into(),
                self.policy_path
                    .as_ref()
                    .map_or("<embedded>".into(), |p| p.display().to_string()),
            ),
            (
                "RETRIEVAL_URL".into(),
                self.retrieval_url
                    .as_ref()
                    .map_or("<built-in knowledge base>".into(), |u| u.to_string()),
            ),
            ("EGRESS_ALLOWLIST".into(), self.egress_allowlist.join(",")),
            (
                "SHUTDOWN_GRACE_SECS".into(),
                self.shutdown_grace_secs.to_string(),
            ),
            (
                "APPROVAL_TTL_SECS".into(),
                self.approval_ttl_secs.to_string(),
            ),
            (
                "INVOICE_TWO_APPROVER_THRESHOLD_USD".into(),
                self.invoice_two_approver_threshold_usd.to_string(),
            ),
            (
                "APPROVAL_SWEEP_SECS".into(),
                self.approval_sweep_secs.to_string(),
            ),
            ("JOB_WORKERS".into(), self.job_workers.to_string()),
            ("JOB_LEASE_SECS".into(), self.job_lease_secs.to_string()),
            ("JOB_MAX_ATTEMPTS".into(), self.job_max_attempts.to_string()),
            (
                "JOB_CALLBACK_SECRET".into(),
                if self.job_callback_secret.is_some() {
                    "<set, redacted>".into()
                } else {
                    "<unset>".into()
                },
            ),
            (
                "TRACE_RETENTION_DAYS".into(),
                self.trace_retention_days.to_string(),
            ),
            (
                "TRACE_SAMPLE_RATE".into(),
                self.trace_sample_rate.to_string(),
            ),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                self.otel_exporter_otlp_endpoint
                    .as_ref()
                    .map_or("<unset>".into(), |u| u.to_string()),
            ),
            (
                "EVAL_GATE_MIN_PASS_RATE".into(),
                self.eval_gate.min_pass_rate.to_string(),
            ),
            (
                "EVAL_GATE_MIN_POLICY_COMPLIANCE".into(),
                self.eval_gate.min_policy_compliance.to_string(),
            ),
            (
                "EVAL_GATE_MIN_CITATION_RATE".into(),
                self.eval_gate.min_citation_rate.to_string(),
            ),
            (
                "EVAL_GATE_MAX_P95_LATENCY_MS".into(),
                self.eval_gate.max_p95_latency_ms.to_string(),
            ),
            (
                "EVAL_GATE_MAX_TOTAL_COST_USD".into(),
                self.eval_gate.max_total_cost_usd.to_string(),
            ),
            (
                "EVAL_GATE_MAX_PASS_RATE_DROP".into(),
                self.eval_gate.max_pass_rate_drop.to_string(),
            ),
        ];
        for t in &self.http_tools {
            out.push((
                format!("http_tools.{}", t.name),
                format!("{} {} ({})", t.method, t.url, t.side_effect),
            ));
        }
        for (wf, tools) in &self.workflow_tools {
            out.push((format!("workflow_tools.{wf}"), tools.join(",")));
        }
        out
    }

    /// The model name of the configured provider.
    pub fn model(&self) -> &str {
        match self.provider {
            ProviderKind::Ollama => &self.ollama_model,
            ProviderKind::Openai => &self.model_name,
            ProviderKind::Scripted => "scripted-v1",
        }
    }
}

/// Hides the password of a URL for display.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

fn not_allowed(key: &str, value: &str, allowed: &str) -> ConfigError {
    ConfigError::new(
        key,
        format!("{value:?} is not allowed; expected one of: {allowed}"),
    )
}

fn parse_value<T: FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, format!("{value:?} is not valid; expected {what}")))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(not_allowed(key, value, "true, false, 1, 0")),
    }
}

fn parse_url(key: &str, value: &str) -> Result<url::Url, ConfigError> {
    let u = url::Url::parse(value.trim())
        .map_err(|e| ConfigError::new(key, format!("{value:?} is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            key,
            format!("{value:?} must be an http:// or https:// URL"),
        ));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)]) -> ConfigError {
        Settings::load_from(&env(pairs)).unwrap_err()
    }

    #[test]
    fn defaults_are_development_scripted_sqlite() {
        let s = Settings::load_from(&env(&[])).unwrap();
        assert_eq!(s.provider, ProviderKind::Scripted);
        assert!(s.database_url.starts_with("sqlite:"));
    }

    #[test]
    fn env_overrides_and_provider_selection() {
        let s = Settings::load_from(&env(&[("USE_OLLAMA", "true"), ("OLLAMA_MODEL", "qwen2.5")]))
            .unwrap();
        assert_eq!(s.provider, ProviderKind::Ollama);
        assert_eq!(s.model(), "qwen2.5");
        let s = Settings::load_from(&env(&[
            ("AGENT_PROVIDER", "openai"),
            ("OPENAI_API_KEY", "sk-x"),
        ]))
        .unwrap();
        assert_eq!(s.provider, ProviderKind::Openai);
        assert_eq!(format!("{:?}", s.openai_api_key), "Some(<redacted>)");
    }

    #[test]
    fn bad_values_name_the_key_and_allowed_values() {
        let e = err(&[("AGENT_PROVIDER", "gpt")]);
        assert_eq!(e.key, "AGENT_PROVIDER");
        assert!(e.message.contains("ollama, openai, scripted"), "{e}");
        assert_eq!(err(&[("LOG_FORMAT", "xml")]).key, "LOG_FORMAT");
        assert_eq!(err(&[("RELEASE_TRACK", "beta")]).key, "RELEASE_TRACK");
        assert_eq!(err(&[("MAX_CONCURRENCY", "lots")]).key, "MAX_CONCURRENCY");
        assert_eq!(err(&[("MAX_CONCURRENCY", "0")]).key, "MAX_CONCURRENCY");
        assert_eq!(
            err(&[("OLLAMA_BASE_URL", "not a url")]).key,
            "OLLAMA_BASE_URL"
        );
        assert_eq!(err(&[("DATABASE_URL", "mysql://x")]).key, "DATABASE_URL");
        assert_eq!(err(&[("USE_OLLAMA", "maybe")]).key, "USE_OLLAMA");
        assert_eq!(err(&[("AGENT_ENV", "production")]).key, "AGENT_PROVIDER");
        assert_eq!(err(&[("AGENT_PROVIDER", "openai")]).key, "OPENAI_API_KEY");
    }

    #[test]
    fn toml_file_is_layered_under_env_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.toml");
        std::fs::write(&path, "max_tool_calls = 3\nrate_limit_rpm = 10\n[prices.m]\ninput_per_1k = 0.1\noutput_per_1k = 0.2\n").unwrap();
        let p = path.to_str().unwrap();
        let s =
            Settings::load_from(&env(&[("AGENT_CONFIG", p), ("RATE_LIMIT_RPM", "20")])).unwrap();
        assert_eq!(s.max_tool_calls, 3);
        assert_eq!(s.rate_limit_rpm, 20);
        assert_eq!(s.prices["m"].output_per_1k, 0.2);
        std::fs::write(&path, "max_tool_cals = 3\n").unwrap();
        let e = err(&[("AGENT_CONFIG", p)]);
        assert_eq!(e.key, "AGENT_CONFIG");
        assert!(e.message.contains("max_tool_cals"), "{e}");
        let e = err(&[("AGENT_CONFIG", "/nonexistent/agent.toml")]);
        assert!(e.message.contains("cannot read"), "{e}");
    }

    #[test]
    fn database_pool_size_is_validated_and_described() {
        let s = Settings::load_from(&env(&[])).unwrap();
        assert_eq!(s.database_max_connections, None);
        let described = |s: &Settings| {
            s.describe()
                .into_iter()
                .find(|(k, _)| k == "DATABASE_MAX_CONNECTIONS")
                .unwrap()
                .1
        };
        assert_eq!(described(&s), "<default: 8>");
        let s = Settings::load_from(&env(&[("DATABASE_MAX_CONNECTIONS", "3")])).unwrap();
        assert_eq!(s.database_max_connections, Some(3));
        assert_eq!(described(&s), "3");
        for bad in ["0", "1", "1001", "-2", "many"] {
            let e = err(&[("DATABASE_MAX_CONNECTIONS", bad)]);
            assert_eq!(e.key, "DATABASE_MAX_CONNECTIONS", "{bad}: {e}");
        }
        let e = err(&[("DATABASE_MAX_CONNECTIONS", "1")]);
        assert!(e.message.contains("from 2 to 1000"), "{e}");
    }

    #[test]
    fn database_password_is_hidden() {
        assert_eq!(
            redact_url("postgres://u:hunter2@h/db"),
            "postgres://u:REDACTED@h/db"
        );
    }
}
