//! Layered configuration: safe defaults in code < optional TOML file (`AGENT_CONFIG`) <
//! environment. Every bad value fails at start with the key, the value and what is allowed.
//!
//! Every key is declared once, in the `settings!` table below: its
//! field, type and default, its environment name, its TOML name, how its text is read
//! (which also words its error), how `check-config` shows it and what range it must be
//! in. The group structs ([`Settings`]'s fields), the TOML file's shape, both layers,
//! [`ENV_KEYS`] and [`Settings::describe`] are generated from that table, so adding a key
//! is one line there plus its use. Services get their group (`&JobConfig`,
//! `&ProviderConfig`, …), not the whole `Settings`.

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

/// What the `ollama` provider sends as `think` (`OLLAMA_THINK`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OllamaThink {
    /// `think: false` (the default): no thinking, so the whole output cap is the answer;
    /// accepted by every model.
    #[default]
    Off,
    /// `think: true`: thinking models think first (the thinking is kept out of the
    /// answer, counted in usage and recorded in the trace); other models answer 400.
    On,
    /// `think: "low" | "medium" | "high"` for models with thinking levels (gpt-oss).
    Low,
    Medium,
    High,
    /// `think` left out: the server decides (thinking models think).
    Server,
}

impl OllamaThink {
    /// The values `OLLAMA_THINK` takes, in the table's order.
    const NAMES: [(&'static str, OllamaThink); 6] = [
        ("false", Self::Off),
        ("true", Self::On),
        ("low", Self::Low),
        ("medium", Self::Medium),
        ("high", Self::High),
        ("server", Self::Server),
    ];

    /// The configuration value, as `OLLAMA_THINK` takes it.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(n, _)| *n)
            .unwrap_or("false")
    }
}

/// In the file, `ollama_think` is a boolean or one of the names.
impl<'de> Deserialize<'de> for OllamaThink {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Name(String),
        }
        let name = match Raw::deserialize(d)? {
            Raw::Flag(b) => b.to_string(),
            Raw::Name(n) => n,
        };
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{name:?} is not allowed; expected one of: false, true, low, medium, high, server"
                ))
            })
    }
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

/// Generates the configuration from one table of keys (invoked once, below).
///
/// Each key reads `field: Type = default; env "NAME" file toml_name kind how(args)`, then
/// optionally `, check f` (a range check, `f(&value) -> Result<(), message>`) and
/// `, show f` (its `check-config` text, `f(&Settings) -> String`, when the kind's is not
/// right). A key without `env` is read from the file only; one without `file` from the
/// environment only. The kinds (how a value is read from each layer, worded in its error,
/// and shown) are the `@from_env` / `@from_file` / `@show` arms. `switches` are keys that
/// set another key's field (read before the groups, so that key wins); `tables` are groups
/// read from a TOML table of their own (`[eval_gate]`).
macro_rules! settings {
    (
        switches {
            $( $(#[$smeta:meta])* $senv:literal, file $sfile:ident: $sty:ty, kind $skind:ident($($sarg:tt)*) => $sapply:expr; )*
        }
        groups {
            $(
                $(#[$gmeta:meta])*
                $group:ident: $Group:ident {
                    $(
                        $(#[$meta:meta])*
                        $field:ident: $ty:ty = $default:expr;
                        $(env $env:literal)? $(file $file:ident)? kind $kind:ident($($arg:tt)*)
                        $(, check $check:expr)? $(, show $show:expr)?;
                    )*
                }
            )*
        }
        tables {
            $(
                $(#[$tmeta:meta])*
                $tgroup:ident: $TGroup:ident as $TFile:ident {
                    $(
                        $(#[$tfmeta:meta])*
                        $tfield:ident: $tty:ty = $tdefault:expr;
                        $(env $tenv:literal)? $(file $tfile:ident)? kind $tkind:ident($($targ:tt)*)
                        $(, check $tcheck:expr)? $(, show $tshow:expr)?;
                    )*
                }
            )*
        }
    ) => {
        $( settings!(@group $(#[$gmeta])* $Group { $( $(#[$meta])* $field: $ty = $default; )* }); )*
        $( settings!(@group $(#[$tmeta])* $TGroup { $( $(#[$tfmeta])* $tfield: $tty = $tdefault; )* }); )*

        /// The effective configuration of one process, by group.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Settings {
            $( pub $group: $Group, )*
            $( pub $tgroup: $TGroup, )*
        }

        /// Every environment key this service reads, for `check-config` and the docs.
        pub const ENV_KEYS: &[&str] = &[
            "AGENT_CONFIG",
            $( $senv, )*
            $( $( $( $env, )? )* )*
            $( $( $( $tenv, )? )* )*
        ];

        /// The TOML file's shape: the keys of the groups, lower-cased, plus tables.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FileConfig {
            $( $sfile: Option<$sty>, )*
            $( $( $( $file: Option<settings!(@file_ty $kind $ty)>, )? )* )*
            $( $tgroup: Option<$TFile>, )*
        }

        $(
            /// The TOML table of this group.
            #[derive(Debug, Default, Deserialize)]
            #[serde(deny_unknown_fields)]
            struct $TFile {
                $( $( $tfile: Option<settings!(@file_ty $tkind $tty)>, )? )*
            }
        )*

        impl Settings {
            fn apply_file(&mut self, f: FileConfig) -> Result<(), ConfigError> {
                $( if let Some(v) = f.$sfile { ($sapply)(self, v); } )*
                $( $( settings!(@apply_file self.$group.$field, f, [$($file)?], $kind($($arg)*)); )* )*
                $(
                    if let Some(t) = f.$tgroup {
                        $( settings!(@apply_file self.$tgroup.$tfield, t, [$($tfile)?], $tkind($($targ)*)); )*
                    }
                )*
                Ok(())
            }

            fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
                $(
                    if let Some(raw) = get($senv) {
                        let v: $sty = settings!(@from_env $skind($($sarg)*), $senv, raw)?;
                        ($sapply)(self, v);
                    }
                )*
                $( $( settings!(@apply_env self.$group.$field, get, [$($env)?], $kind($($arg)*)); )* )*
                $( $( settings!(@apply_env self.$tgroup.$tfield, get, [$($tenv)?], $tkind($($targ)*)); )* )*
                Ok(())
            }

            /// The range checks of the table, in its order.
            fn check_ranges(&self) -> Result<(), ConfigError> {
                $( $( settings!(@check self.$group.$field, [$($env)?] $(, $check)?); )* )*
                $( $( settings!(@check self.$tgroup.$tfield, [$($tenv)?] $(, $tcheck)?); )* )*
                Ok(())
            }

            /// The effective config as `key = value` lines, secrets masked, for `check-config`.
            pub fn describe(&self) -> Vec<(String, String)> {
                let s = self;
                let mut out: Vec<(String, String)> = Vec::new();
                $( $( settings!(@describe out, s, s.$group.$field, [$($env)?], $kind($($arg)*) $(, $show)?); )* )*
                $( $( settings!(@describe out, s, s.$tgroup.$tfield, [$($tenv)?], $tkind($($targ)*) $(, $tshow)?); )* )*
                out
            }
        }
    };

    (@group $(#[$gmeta:meta])* $Group:ident { $( $(#[$meta:meta])* $field:ident: $ty:ty = $default:expr; )* }) => {
        $(#[$gmeta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $Group {
            $( $(#[$meta])* pub $field: $ty, )*
        }

        impl Default for $Group {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }
    };

    // The TOML type a kind is read from.
    (@file_ty url $ty:ty) => { String };
    (@file_ty opt_url $ty:ty) => { String };
    (@file_ty addr $ty:ty) => { String };
    (@file_ty $kind:ident $ty:ty) => { $ty };

    (@apply_file $dst:expr, $f:ident, [], $kind:ident($($a:tt)*)) => {};
    (@apply_file $dst:expr, $f:ident, [$file:ident], $kind:ident($($a:tt)*)) => {
        if let Some(v) = $f.$file {
            $dst = settings!(@from_file $kind($($a)*), stringify!($file), v)?;
        }
    };

    (@apply_env $dst:expr, $get:ident, [], $kind:ident($($a:tt)*)) => {};
    (@apply_env $dst:expr, $get:ident, [$env:literal], $kind:ident($($a:tt)*)) => {
        if let Some(raw) = $get($env) {
            $dst = settings!(@from_env $kind($($a)*), $env, raw)?;
        }
    };

    (@check $v:expr, [$env:literal], $check:expr) => {
        if let Err(message) = ($check)(&$v) {
            return Err(ConfigError::new($env, message));
        }
    };
    (@check $v:expr, [$($env:literal)?]) => {};

    (@describe $out:ident, $s:ident, $v:expr, [], table(), $show:expr) => {
        $out.extend(($show)($s));
    };
    (@describe $out:ident, $s:ident, $v:expr, [], $kind:ident($($a:tt)*)) => {};
    (@describe $out:ident, $s:ident, $v:expr, [$env:literal], $kind:ident($($a:tt)*), $show:expr) => {
        $out.push(($env.to_string(), ($show)($s)));
    };
    (@describe $out:ident, $s:ident, $v:expr, [$env:literal], $kind:ident($($a:tt)*)) => {
        $out.push(($env.to_string(), settings!(@show $kind($($a)*), &$v)));
    };

    // Reading an environment value (`$raw: String`) as the key's type.
    (@from_env num($what:literal), $key:literal, $raw:ident) => { parse_value($key, &$raw, $what) };
    (@from_env opt_num($what:literal, $unset:literal), $key:literal, $raw:ident) => {
        parse_value($key, &$raw, $what).map(Some)
    };
    (@from_env text(), $key:literal, $raw:ident) => { Ok::<String, ConfigError>($raw) };
    (@from_env flag(), $key:literal, $raw:ident) => { parse_bool($key, &$raw) };
    (@from_env url(), $key:literal, $raw:ident) => { parse_url($key, &$raw) };
    (@from_env opt_url($unset:literal), $key:literal, $raw:ident) => { parse_url($key, &$raw).map(Some) };
    (@from_env addr($what:literal), $key:literal, $raw:ident) => { parse_value($key, &$raw, $what) };
    (@from_env opt_path($unset:literal), $key:literal, $raw:ident) => {
        Ok::<_, ConfigError>(Some(PathBuf::from($raw)))
    };
    (@from_env secret(), $key:literal, $raw:ident) => { Ok::<_, ConfigError>(Some(Secret::new($raw))) };
    (@from_env list(), $key:literal, $raw:ident) => {
        Ok::<Vec<String>, ConfigError>(
            $raw.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    };
    (@from_env choice($($name:literal => $value:expr),+ $(,)?), $key:literal, $raw:ident) => {
        match $raw.as_str() {
            $( $name => Ok($value), )+
            _ => Err(not_allowed($key, &$raw, &[$($name),+].join(", "))),
        }
    };

    // Reading a file value (its `@file_ty`) as the key's type; `$name` is its TOML key.
    (@from_file url(), $name:expr, $v:ident) => { parse_url(&file_key($name), &$v) };
    (@from_file opt_url($unset:literal), $name:expr, $v:ident) => {
        parse_url(&file_key($name), &$v).map(Some)
    };
    (@from_file addr($what:literal), $name:expr, $v:ident) => {
        parse_value(&file_key($name), &$v, $what)
    };
    (@from_file $kind:ident($($a:tt)*), $name:expr, $v:ident) => { Ok::<_, ConfigError>($v) };

    // The `check-config` text of a value.
    (@show secret(), $v:expr) => {
        if $v.is_some() { "<set, redacted>".to_string() } else { "<unset>".to_string() }
    };
    (@show list(), $v:expr) => { $v.join(",") };
    (@show opt_num($what:literal, $unset:literal), $v:expr) => {
        $v.as_ref().map_or_else(|| $unset.to_string(), |n| n.to_string())
    };
    (@show opt_url($unset:literal), $v:expr) => {
        $v.as_ref().map_or_else(|| $unset.to_string(), |u| u.to_string())
    };
    (@show opt_path($unset:literal), $v:expr) => {
        $v.as_ref().map_or_else(|| $unset.to_string(), |p| p.display().to_string())
    };
    (@show choice($($name:literal => $value:expr),+ $(,)?), $v:expr) => {
        [$(($name, $value)),+]
            .into_iter()
            .find(|(_, value)| value == $v)
            .map(|(name, _)| name.to_string())
            .unwrap_or_default()
    };
    (@show $kind:ident($($a:tt)*), $v:expr) => { $v.to_string() };
}

settings! {
    switches {
        /// `true` picks the Ollama provider (`AGENT_PROVIDER`, when set, wins).
        "USE_OLLAMA", file use_ollama: bool, kind flag() => |s: &mut Settings, on: bool| {
            if on {
                s.providers.provider = ProviderKind::Ollama;
            }
        };
    }
    groups {
        /// The process: its environment, where it listens, how long it drains at shutdown.
        server: ServerConfig {
            environment: Environment = Environment::Development;
                env "AGENT_ENV" file agent_env
                kind choice("development" => Environment::Development, "production" => Environment::Production);
            bind_addr: SocketAddr = "127.0.0.1:8080".parse().expect("static address");
                env "BIND_ADDR" file bind_addr kind addr("an address like 127.0.0.1:8080");
            shutdown_grace_secs: u64 = 20;
                env "SHUTDOWN_GRACE_SECS" file shutdown_grace_secs kind num("a whole number of seconds");
        }
        /// The database.
        database: DatabaseConfig {
            database_url: String = "sqlite://agent-service.db".into();
                env "DATABASE_URL" file database_url kind text(),
                check supported_database_url,
                show |s: &Settings| redact_url(&s.database.database_url);
            /// Connections in the pool; `None`: the back-end's default
            /// ([`default_max_connections`]).
            database_max_connections: Option<u32> = None;
                env "DATABASE_MAX_CONNECTIONS" file database_max_connections
                kind opt_num("a whole number of connections", ""),
                check pool_size,
                show |s: &Settings| s.database.database_max_connections.map_or_else(
                    || format!("<default: {}>", default_max_connections(&s.database.database_url)),
                    |n| n.to_string(),
                );
        }
        /// The model provider and how calls to it are guarded.
        providers: ProviderConfig {
            provider: ProviderKind = ProviderKind::Scripted;
                env "AGENT_PROVIDER" file agent_provider
                kind choice("ollama" => ProviderKind::Ollama, "openai" => ProviderKind::Openai, "scripted" => ProviderKind::Scripted);
            ollama_base_url: url::Url = url::Url::parse("http://127.0.0.1:11434").expect("static url");
                env "OLLAMA_BASE_URL" file ollama_base_url kind url();
            ollama_model: String = "llama3.2".into();
                env "OLLAMA_MODEL" file ollama_model kind text();
            openai_api_key: Option<Secret> = None;
                env "OPENAI_API_KEY" kind secret();
            openai_base_url: url::Url = url::Url::parse("https://api.openai.com/v1").expect("static url");
                env "OPENAI_BASE_URL" file openai_base_url kind url();
            model_name: String = "gpt-4o-mini".into();
                env "MODEL_NAME" file model_name kind text();
            provider_timeout_secs: u64 = 30;
                env "PROVIDER_TIMEOUT_SECS" file provider_timeout_secs
                kind num("a whole number of seconds"), check positive;
            provider_max_retries: u32 = 2;
                env "PROVIDER_MAX_RETRIES" file provider_max_retries kind num("a whole number");
            circuit_failure_threshold: u32 = 5;
                env "CIRCUIT_FAILURE_THRESHOLD" file circuit_failure_threshold
                kind num("a whole number"), check positive;
            circuit_open_secs: u64 = 30;
                env "CIRCUIT_OPEN_SECS" file circuit_open_secs
                kind num("a whole number of seconds"), check positive;
            /// What the `ollama` provider sends as `think`: `false` (the default) answers
            /// without thinking on every model; `true` or a level lets thinking models think
            /// first (kept out of the answer, counted in usage and the trace); `server`
            /// leaves it to the server (thinking models then think).
            ollama_think: OllamaThink = OllamaThink::Off;
                env "OLLAMA_THINK" file ollama_think
                kind choice("false" => OllamaThink::Off, "true" => OllamaThink::On,
                    "low" => OllamaThink::Low, "medium" => OllamaThink::Medium,
                    "high" => OllamaThink::High, "server" => OllamaThink::Server);
        }
        /// What one run and one tenant's day may spend.
        budgets: BudgetConfig {
            max_tokens_per_request: u32 = 8_000;
                env "MAX_TOKENS_PER_REQUEST" file max_tokens_per_request
                kind num("a whole number of tokens"), check positive;
            max_tool_calls: u32 = 8;
                env "MAX_TOOL_CALLS" file max_tool_calls kind num("a whole number");
            max_cost_per_request_usd: f64 = 0.50;
                env "MAX_COST_PER_REQUEST_USD" file max_cost_per_request_usd
                kind num("a number of US dollars"), check money;
            request_timeout_secs: u64 = 60;
                env "REQUEST_TIMEOUT_SECS" file request_timeout_secs
                kind num("a whole number of seconds"), check positive;
            tenant_daily_token_budget: u64 = 5_000_000;
                env "TENANT_DAILY_TOKEN_BUDGET" file tenant_daily_token_budget
                kind num("a whole number of tokens");
            tenant_daily_cost_budget_usd: f64 = 100.0;
                env "TENANT_DAILY_COST_BUDGET_USD" file tenant_daily_cost_budget_usd
                kind num("a number of US dollars"), check money;
            /// The per-call output cap of every workflow (one model call's `max_tokens` /
            /// `num_predict`); unset: each workflow's own. A reply cut by it is reported as
            /// truncated, never as success.
            max_output_tokens: Option<u32> = None;
                env "MAX_OUTPUT_TOKENS" file max_output_tokens
                kind opt_num("a whole number of tokens", "(per workflow)");
            /// Per-workflow output caps (`[workflow_max_output_tokens]` in the file); they win
            /// over `MAX_OUTPUT_TOKENS`.
            workflow_max_output_tokens: BTreeMap<String, u32> = BTreeMap::new();
                file workflow_max_output_tokens kind table(),
                show |s: &Settings| s.budgets.workflow_max_output_tokens.iter().map(|(wf, n)| (
                    format!("workflow_max_output_tokens.{wf}"),
                    n.to_string(),
                )).collect::<Vec<_>>();
            /// Per-model prices, USD per 1,000 tokens (`[prices.<model>]` in the file).
            prices: BTreeMap<String, Price> = BTreeMap::new();
                file prices kind table();
        }
        /// The service's own limits: concurrency, per-key rate, request size.
        limits: LimitConfig {
            max_concurrency: u32 = 512;
                env "MAX_CONCURRENCY" file max_concurrency kind num("a whole number"), check positive;
            rate_limit_rpm: u32 = 6_000;
                env "RATE_LIMIT_RPM" file rate_limit_rpm
                kind num("a whole number of requests per minute"), check positive;
            max_body_bytes: usize = 64 * 1024;
                env "MAX_BODY_BYTES" file max_body_bytes
                kind num("a whole number of bytes"), check positive;
        }
        /// The guardrail policy and what overrides it.
        guardrails: GuardrailConfig {
            policy_path: Option<PathBuf> = None;
                env "POLICY_PATH" file policy_path kind opt_path("<embedded>");
            /// Overrides the policy's input limit.
            max_input_chars: Option<usize> = None;
                env "MAX_INPUT_CHARS" file max_input_chars
                kind opt_num("a whole number of characters", "<policy default>");
        }
        /// Logging.
        logging: LoggingConfig {
            log_level: String = "info".into();
                env "LOG_LEVEL" file log_level kind text(), check log_filter;
            log_format: LogFormat = LogFormat::Json;
                env "LOG_FORMAT" file log_format
                kind choice("json" => LogFormat::Json, "pretty" => LogFormat::Pretty);
        }
        /// The release this process is.
        release: ReleaseConfig {
            release_track: Track = Track::Stable;
                env "RELEASE_TRACK" file release_track
                kind choice("stable" => Track::Stable, "canary" => Track::Canary);
            release_version: String = env!("CARGO_PKG_VERSION").into();
                env "RELEASE_VERSION" file release_version kind text();
        }
        /// Tools: retrieval, the egress allowlist, HTTP tools declared in the file.
        tools: ToolConfig {
            retrieval_url: Option<url::Url> = None;
                env "RETRIEVAL_URL" file retrieval_url kind opt_url("<built-in knowledge base>");
            egress_allowlist: Vec<String> = Vec::new();
                env "EGRESS_ALLOWLIST" file egress_allowlist kind list();
            http_tools: Vec<HttpToolConfig> = Vec::new();
                file http_tools kind table(),
                show |s: &Settings| s.tools.http_tools.iter().map(|t| (
                    format!("http_tools.{}", t.name),
                    format!("{} {} ({})", t.method, t.url, t.side_effect),
                )).collect::<Vec<_>>();
            /// Extra tools (declared HTTP tools) granted to a workflow: workflow → tool names.
            workflow_tools: BTreeMap<String, Vec<String>> = BTreeMap::new();
                file workflow_tools kind table(),
                show |s: &Settings| s.tools.workflow_tools.iter().map(|(wf, tools)| (
                    format!("workflow_tools.{wf}"),
                    tools.join(","),
                )).collect::<Vec<_>>();
        }
        /// Approval requests.
        approvals: ApprovalConfig {
            approval_ttl_secs: u64 = 24 * 3600;
                env "APPROVAL_TTL_SECS" file approval_ttl_secs kind num("a whole number of seconds");
            invoice_two_approver_threshold_usd: f64 = 10_000.0;
                env "INVOICE_TWO_APPROVER_THRESHOLD_USD" file invoice_two_approver_threshold_usd
                kind num("a number of US dollars"), check money;
            /// How often the approval sweeper expires old requests and re-drives approved writes.
            approval_sweep_secs: u64 = 5;
                env "APPROVAL_SWEEP_SECS" file approval_sweep_secs
                kind num("a whole number of seconds"), check positive;
        }
        /// The job queue.
        jobs: JobConfig {
            job_workers: u32 = 4;
                env "JOB_WORKERS" file job_workers
                kind num("a whole number of worker tasks"), check positive;
            job_lease_secs: u64 = 30;
                env "JOB_LEASE_SECS" file job_lease_secs
                kind num("a whole number of seconds"), check positive;
            job_max_attempts: u32 = 3;
                env "JOB_MAX_ATTEMPTS" file job_max_attempts kind num("a whole number"), check positive;
            /// HMAC-SHA256 key that signs job callbacks (`X-Flightdeck-Signature`).
            job_callback_secret: Option<Secret> = None;
                env "JOB_CALLBACK_SECRET" kind secret();
            /// How long a callback's receiver may take to answer one delivery attempt; below
            /// the 60 s a claimed callback is held, so no other sender takes it mid-attempt.
            job_callback_timeout_secs: u64 = 10;
                env "JOB_CALLBACK_TIMEOUT_SECS" file job_callback_timeout_secs
                kind num("a whole number of seconds"),
                check |v: &u64| match v {
                    1..=50 => Ok(()),
                    _ => Err(format!("{v} must be from 1 to 50 seconds")),
                };
        }
        /// Stored traces.
        traces: TraceConfig {
            trace_retention_days: u64 = 7;
                env "TRACE_RETENTION_DAYS" file trace_retention_days
                kind num("a whole number of days"), check positive;
            /// Fraction (0..=1) of successful runs whose trace is stored and exported; runs
            /// that end in any other status (error, blocked, approval_required,
            /// budget_exceeded, degraded, cancelled) are always kept. Default 1.0: every trace.
            trace_sample_rate: f64 = 1.0;
                env "TRACE_SAMPLE_RATE" file trace_sample_rate
                kind num("a fraction from 0 to 1"), check sample_rate;
            /// OTLP/HTTP endpoint; when set, traces are also exported there.
            otel_exporter_otlp_endpoint: Option<url::Url> = None;
                env "OTEL_EXPORTER_OTLP_ENDPOINT" file otel_exporter_otlp_endpoint
                kind opt_url("<unset>");
        }
    }
    tables {
        /// Thresholds an eval run must meet for its gate to pass (`[eval_gate]` in the file).
        eval_gate: EvalGate as EvalGateFile {
            /// Fraction of cases that must pass (0..=1).
            min_pass_rate: f64 = 1.0;
                env "EVAL_GATE_MIN_PASS_RATE" file min_pass_rate
                kind num("a fraction from 0 to 1"), check fraction;
            /// Fraction of adversarial cases that must be blocked or gated (0..=1).
            min_policy_compliance: f64 = 1.0;
                env "EVAL_GATE_MIN_POLICY_COMPLIANCE" file min_policy_compliance
                kind num("a fraction from 0 to 1"), check fraction;
            /// Fraction of answers of citation-required workflows that cite evidence (0..=1).
            min_citation_rate: f64 = 0.9;
                env "EVAL_GATE_MIN_CITATION_RATE" file min_citation_rate
                kind num("a fraction from 0 to 1"), check fraction;
            max_p95_latency_ms: u64 = 30_000;
                env "EVAL_GATE_MAX_P95_LATENCY_MS" file max_p95_latency_ms
                kind num("a whole number of milliseconds");
            max_total_cost_usd: f64 = 5.0;
                env "EVAL_GATE_MAX_TOTAL_COST_USD" file max_total_cost_usd
                kind num("a number of US dollars"), check gate_cost;
            /// Largest allowed drop in pass rate against the baseline run (0..=1).
            max_pass_rate_drop: f64 = 0.0;
                env "EVAL_GATE_MAX_PASS_RATE_DROP" file max_pass_rate_drop
                kind num("a fraction from 0 to 1"), check fraction;
        }
    }
}

// Range checks the table names; each returns the message of its key's error.

fn positive<T: PartialEq + Default>(v: &T) -> Result<(), String> {
    if *v == T::default() {
        Err("must be greater than 0".into())
    } else {
        Ok(())
    }
}

fn money(v: &f64) -> Result<(), String> {
    if !v.is_finite() || *v < 0.0 {
        Err(format!("{v} must be a number >= 0"))
    } else {
        Ok(())
    }
}

fn gate_cost(v: &f64) -> Result<(), String> {
    if v.is_finite() && *v >= 0.0 {
        Ok(())
    } else {
        Err("must be a number >= 0".into())
    }
}

fn fraction(v: &f64) -> Result<(), String> {
    if (0.0..=1.0).contains(v) {
        Ok(())
    } else {
        Err(format!("{v} must be a fraction from 0 to 1"))
    }
}

fn sample_rate(v: &f64) -> Result<(), String> {
    fraction(v).map_err(|_| format!("{v} must be a fraction from 0 to 1 (1 keeps every trace)"))
}

fn pool_size(v: &Option<u32>) -> Result<(), String> {
    match v {
        Some(n) if !(MIN_DATABASE_CONNECTIONS..=MAX_DATABASE_CONNECTIONS).contains(n) => Err(
            format!("{n} must be from {MIN_DATABASE_CONNECTIONS} to {MAX_DATABASE_CONNECTIONS}"),
        ),
        _ => Ok(()),
    }
}

fn supported_database_url(url: &str) -> Result<(), String> {
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not supported; use sqlite://path/to/file.db or postgres://user:pass@host/db",
            redact_url(url)
        ))
    }
}

fn log_filter(level: &str) -> Result<(), String> {
    match tracing_subscriber::EnvFilter::try_new(level) {
        Ok(_) => Ok(()),
        Err(_) => Err(not_allowed(
            "LOG_LEVEL",
            level,
            "trace, debug, info, warn, error, or a filter like agent_service=debug",
        )
        .message),
    }
}

/// The name of a TOML key in errors.
fn file_key(name: &str) -> String {
    format!("{name} (in AGENT_CONFIG file)")
}

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
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty());
        s.apply_env(&get)?;
        // In production the provider must be named explicitly: the scripted model is never
        // chosen by default there.
        if s.server.environment == Environment::Production
            && get("AGENT_PROVIDER").is_none()
            && get("USE_OLLAMA").is_none()
        {
            return Err(ConfigError::new(
                "AGENT_PROVIDER",
                "must be set when AGENT_ENV=production (one of: ollama, openai, scripted)",
            ));
        }
        s.validate()?;
        Ok(s)
    }

    /// The table's range checks, then the rules that span keys.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_ranges()?;
        let p = &self.providers;
        if p.provider == ProviderKind::Openai
            && p.openai_api_key.is_none()
            && p.openai_base_url.host_str() == Some("api.openai.com")
        {
            return Err(ConfigError::new(
                "OPENAI_API_KEY",
                "is required when AGENT_PROVIDER=openai talks to api.openai.com",
            ));
        }
        let b = &self.budgets;
        let caps = b
            .max_output_tokens
            .map(|n| ("MAX_OUTPUT_TOKENS".to_string(), n))
            .into_iter()
            .chain(
                b.workflow_max_output_tokens
                    .iter()
                    .map(|(wf, n)| (format!("workflow_max_output_tokens.{wf}"), *n)),
            );
        for (key, n) in caps {
            if n == 0 || n > b.max_tokens_per_request {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{n} must be from 1 to MAX_TOKENS_PER_REQUEST ({}): it caps one model call within the request's budget",
                        b.max_tokens_per_request
                    ),
                ));
            }
        }
        for (name, p) in &self.budgets.prices {
            if !(p.input_per_1k >= 0.0 && p.output_per_1k >= 0.0) {
                return Err(ConfigError::new(
                    format!("prices.{name}"),
                    "prices must be numbers >= 0",
                ));
            }
        }
        Ok(())
    }

    /// The model name of the configured provider.
    pub fn model(&self) -> &str {
        self.providers.model()
    }
}

impl ProviderConfig {
    /// The model name of the configured provider.
    pub fn model(&self) -> &str {
        match self.provider {
            ProviderKind::Ollama => &self.ollama_model,
            ProviderKind::Openai => &self.model_name,
            ProviderKind::Scripted => "scripted-v1",
        }
    }
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
    fn ollama_think_from_env_and_file() {
        assert_eq!(
            Settings::load_from(&env(&[]))
                .unwrap()
                .providers
                .ollama_think,
            OllamaThink::Off
        );
        let s = Settings::load_from(&env(&[("OLLAMA_THINK", "high")])).unwrap();
        assert_eq!(s.providers.ollama_think, OllamaThink::High);
        let e = err(&[("OLLAMA_THINK", "maybe")]);
        assert_eq!(e.key, "OLLAMA_THINK");
        assert!(
            e.message.contains("false, true, low, medium, high, server"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for (text, want) in [
            ("ollama_think = true\n", OllamaThink::On),
            ("ollama_think = \"server\"\n", OllamaThink::Server),
        ] {
            std::fs::write(&path, text).unwrap();
            let s = Settings::load_from(&env(&[("AGENT_CONFIG", path.to_str().unwrap())])).unwrap();
            assert_eq!(s.providers.ollama_think, want, "{text}");
            assert_eq!(
                s.describe()
                    .iter()
                    .find(|(k, _)| k == "OLLAMA_THINK")
                    .map(|(_, v)| v.as_str()),
                Some(want.as_str())
            );
        }
    }

    #[test]
    fn output_caps_stay_within_the_request_budget() {
        let s = Settings::load_from(&env(&[("MAX_OUTPUT_TOKENS", "256")])).unwrap();
        assert_eq!(s.budgets.max_output_tokens, Some(256));
        let e = err(&[("MAX_OUTPUT_TOKENS", "9000")]);
        assert_eq!(e.key, "MAX_OUTPUT_TOKENS");
        assert!(e.message.contains("MAX_TOKENS_PER_REQUEST (8000)"), "{e}");
        assert_eq!(err(&[("MAX_OUTPUT_TOKENS", "0")]).key, "MAX_OUTPUT_TOKENS");
        assert_eq!(
            err(&[("MAX_OUTPUT_TOKENS", "lots")]).key,
            "MAX_OUTPUT_TOKENS"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[workflow_max_output_tokens]\nfaq = 0\n").unwrap();
        let e = err(&[("AGENT_CONFIG", path.to_str().unwrap())]);
        assert_eq!(e.key, "workflow_max_output_tokens.faq");
    }

    #[test]
    fn defaults_are_development_scripted_sqlite() {
        let s = Settings::load_from(&env(&[])).unwrap();
        assert_eq!(s.providers.provider, ProviderKind::Scripted);
        assert!(s.database.database_url.starts_with("sqlite:"));
    }

    #[test]
    fn env_overrides_and_provider_selection() {
        let s = Settings::load_from(&env(&[("USE_OLLAMA", "true"), ("OLLAMA_MODEL", "qwen2.5")]))
            .unwrap();
        assert_eq!(s.providers.provider, ProviderKind::Ollama);
        assert_eq!(s.model(), "qwen2.5");
        let s = Settings::load_from(&env(&[
            ("AGENT_PROVIDER", "openai"),
            ("OPENAI_API_KEY", "sk-x"),
        ]))
        .unwrap();
        assert_eq!(s.providers.provider, ProviderKind::Openai);
        assert_eq!(
            format!("{:?}", s.providers.openai_api_key),
            "Some(<redacted>)"
        );
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
        assert_eq!(s.budgets.max_tool_calls, 3);
        assert_eq!(s.limits.rate_limit_rpm, 20);
        assert_eq!(s.budgets.prices["m"].output_per_1k, 0.2);
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
        assert_eq!(s.database.database_max_connections, None);
        let described = |s: &Settings| {
            s.describe()
                .into_iter()
                .find(|(k, _)| k == "DATABASE_MAX_CONNECTIONS")
                .unwrap()
                .1
        };
        assert_eq!(described(&s), "<default: 8>");
        let s = Settings::load_from(&env(&[("DATABASE_MAX_CONNECTIONS", "3")])).unwrap();
        assert_eq!(s.database.database_max_connections, Some(3));
        assert_eq!(described(&s), "3");
        for bad in ["0", "1", "1001", "-2", "many"] {
            let e = err(&[("DATABASE_MAX_CONNECTIONS", bad)]);
            assert_eq!(e.key, "DATABASE_MAX_CONNECTIONS", "{bad}: {e}");
        }
        let e = err(&[("DATABASE_MAX_CONNECTIONS", "1")]);
        assert!(e.message.contains("from 2 to 1000"), "{e}");
    }

    #[test]
    fn every_key_is_listed_once_and_described() {
        let mut seen = std::collections::BTreeSet::new();
        for k in ENV_KEYS {
            assert!(seen.insert(*k), "{k} is listed twice");
        }
        let described: Vec<String> = Settings::default()
            .describe()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for k in ENV_KEYS {
            assert!(
                ["AGENT_CONFIG", "USE_OLLAMA"].contains(k) || described.iter().any(|d| d == k),
                "check-config does not show {k}"
            );
        }
        for k in &described {
            assert!(ENV_KEYS.contains(&k.as_str()), "{k} is shown but not read");
        }
    }

    #[test]
    fn database_password_is_hidden() {
        assert_eq!(
            redact_url("postgres://u:hunter2@h/db"),
            "postgres://u:REDACTED@h/db"
        );
    }
}
