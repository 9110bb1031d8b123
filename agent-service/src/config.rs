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

/// Where the per-key rate limit keeps its state (`RATE_LIMIT_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitStore {
    /// The database when it is PostgreSQL (replicas share it), else the process.
    Auto,
    /// The database: one limit across every process on it.
    Database,
    /// This process alone: N replicas admit N times the rate.
    Process,
}

impl LimitConfig {
    /// Whether the rate limit is kept in the database for this `DATABASE_URL`.
    pub fn rate_limit_in_database(&self, database_url: &str) -> bool {
        match self.rate_limit_store {
            RateLimitStore::Database => true,
            RateLimitStore::Process => false,
            RateLimitStore::Auto => !database_url.starts_with("sqlite:"),
        }
    }
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

/// Which answers the `scripted` provider gives (`SCRIPTED_VARIANT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptedVariant {
    /// The demo script: answers cite the evidence they rest on (`scripted-v1`).
    #[default]
    Cites,
    /// The same script with every `[kind:ID]` citation left out of its answers
    /// (`scripted-v1-uncited`): a release whose answers stopped citing, for canary tests
    /// of the quality signals and alerts.
    Uncited,
}

impl ScriptedVariant {
    /// The model name the variant reports.
    pub fn model(self) -> &'static str {
        match self {
            Self::Cites => "scripted-v1",
            Self::Uncited => "scripted-v1-uncited",
        }
    }
}

/// Per-model prices, USD per 1,000 tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

/// A named provider for fallback chains, declared in the file as `[providers.<name>]`:
/// its own endpoint, model, resilience and price. What it leaves out comes from the flat
/// keys of its kind (`OLLAMA_BASE_URL`, `MODEL_NAME`, `PROVIDER_TIMEOUT_SECS`, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderLinkConfig {
    /// `ollama`, `openai` or `scripted`.
    pub kind: ProviderKind,
    /// The server's base URL (Ollama's root, or an OpenAI-compatible `…/v1`).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// The environment variable that holds this provider's API key (`openai`); the file
    /// never holds the key itself.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// What an `ollama` provider sends as `think` (as `OLLAMA_THINK`).
    #[serde(default)]
    pub think: Option<OllamaThink>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub circuit_failure_threshold: Option<u32>,
    #[serde(default)]
    pub circuit_open_secs: Option<u64>,
    /// This provider's price, USD per 1,000 tokens; unset: `[prices.<model>]`.
    #[serde(default)]
    pub price: Option<Price>,
    /// The key read from `api_key_env` at load time.
    #[serde(skip)]
    pub api_key: Option<Secret>,
}

/// One link of a provider chain with every value resolved: what the providers build.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderLink {
    /// The name chains use: `ollama`, `openai`, `scripted` (the flat keys), or a
    /// `[providers.<name>]` entry.
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: url::Url,
    pub model: String,
    pub api_key: Option<Secret>,
    pub think: OllamaThink,
    pub timeout_secs: u64,
    pub max_retries: u32,
    pub circuit_failure_threshold: u32,
    pub circuit_open_secs: u64,
    pub price: Option<Price>,
    /// The `scripted` kind's answers (`SCRIPTED_VARIANT`); unused by the other kinds.
    pub scripted_variant: ScriptedVariant,
}

/// The link names made of the flat keys (`AGENT_PROVIDER`'s values).
pub const BUILTIN_LINKS: [&str; 3] = ["ollama", "openai", "scripted"];

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
            /// After SIGTERM, how long the process keeps accepting and serving with `/readyz`
            /// unavailable and `Connection: close` on every response, so balancers take it out
            /// of rotation and keep-alive clients reconnect elsewhere before it stops accepting.
            shutdown_drain_secs: u64 = 5;
                env "SHUTDOWN_DRAIN_SECS" file shutdown_drain_secs
                kind num("a whole number of seconds"), check at_most_an_hour;
            /// How long a client may take to send a request head (from its first byte, or from
            /// the connection's accept); a connection that takes longer is closed.
            header_read_timeout_secs: u64 = 10;
                env "HEADER_READ_TIMEOUT_SECS" file header_read_timeout_secs
                kind num("a whole number of seconds"), check positive;
            /// How long an idle keep-alive connection is kept open between requests; longer
            /// than the idle timeout of a balancer in front (60 s on common ones).
            keep_alive_timeout_secs: u64 = 75;
                env "KEEP_ALIVE_TIMEOUT_SECS" file keep_alive_timeout_secs
                kind num("a whole number of seconds"), check positive;
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
            /// The service's provider fallback chain, in order: link names, each `ollama`,
            /// `openai` or `scripted` (made of the keys above) or a `[providers.<name>]`
            /// entry. A call goes to the first link; the next one serves when a link's
            /// circuit is open, it times out or it fails. Unset: `AGENT_PROVIDER` alone.
            provider_chain: Vec<String> = Vec::new();
                env "PROVIDER_CHAIN" file provider_chain kind list(),
                show |s: &Settings| s.providers.chain().join(",");
            /// Named providers for chains (`[providers.<name>]` in the file).
            links: BTreeMap<String, ProviderLinkConfig> = BTreeMap::new();
                file providers kind table(),
                show |s: &Settings| s.providers.links.keys().map(|name| (
                    format!("providers.{name}"),
                    s.providers.link(name).map_or_else(|e| e.message, |l| l.describe()),
                )).collect::<Vec<_>>();
            /// Per-workflow chains (`[workflow_provider_chain]`): workflow → link names; a
            /// workflow without one uses the service's.
            workflow_chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
                file workflow_provider_chain kind table(),
                show |s: &Settings| s.providers.workflow_chains.iter().map(|(wf, chain)| (
                    format!("workflow_provider_chain.{wf}"),
                    chain.join(","),
                )).collect::<Vec<_>>();
            /// The `scripted` provider's answers: `cites` (the demo script) or `uncited`
            /// (the same answers without their citations: a degraded release for canary tests).
            scripted_variant: ScriptedVariant = ScriptedVariant::Cites;
                env "SCRIPTED_VARIANT" file scripted_variant
                kind choice("cites" => ScriptedVariant::Cites, "uncited" => ScriptedVariant::Uncited);
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
            /// Where the rate limit's state lives: `database` (one limit across every
            /// replica on the database), `process` (each replica its own), or `auto`
            /// (`database` on PostgreSQL, `process` on SQLite).
            rate_limit_store: RateLimitStore = RateLimitStore::Auto;
                env "RATE_LIMIT_STORE" file rate_limit_store
                kind choice("auto" => RateLimitStore::Auto, "database" => RateLimitStore::Database,
                    "process" => RateLimitStore::Process);
            max_body_bytes: usize = 64 * 1024;
                env "MAX_BODY_BYTES" file max_body_bytes
                kind num("a whole number of bytes"), check positive;
            /// How long a request body may take to arrive, whole; a slower one is answered
            /// 408 and its connection closed. Bodies are read before a request takes one of
            /// `MAX_CONCURRENCY`'s slots.
            body_read_timeout_secs: u64 = 10;
                env "BODY_READ_TIMEOUT_SECS" file body_read_timeout_secs
                kind num("a whole number of seconds"), check positive;
            /// The share of `MAX_CONCURRENCY` (percent) one API key may hold at once; more
            /// is answered 429 `concurrency_limited`.
            max_key_concurrency_percent: u32 = 50;
                env "MAX_KEY_CONCURRENCY_PERCENT" file max_key_concurrency_percent
                kind num("a whole number of percent"), check percent;
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
            /// budget_exceeded, degraded, cancelled) and runs a guardrail flagged are always
            /// kept. Default 1.0: every trace.
            trace_sample_rate: f64 = 1.0;
                env "TRACE_SAMPLE_RATE" file trace_sample_rate
                kind num("a fraction from 0 to 1"), check sample_rate;
            /// How many finished traces may wait for the writer. When it is full, a
            /// successful, unflagged run's trace is dropped first: any other takes the place
            /// of a queued one of those, and is dropped only when none is left.
            trace_queue_capacity: usize = 1024;
                env "TRACE_QUEUE_CAPACITY" file trace_queue_capacity
                kind num("a whole number of traces"), check positive;
            /// OTLP/HTTP endpoint; when set, traces are also exported there.
            otel_exporter_otlp_endpoint: Option<url::Url> = None;
                env "OTEL_EXPORTER_OTLP_ENDPOINT" file otel_exporter_otlp_endpoint
                kind opt_url("<unset>");
        }
        /// Quality signals: the label budget of per-tenant series, the window the service's
        /// own quality summary and alerts look at, and those alerts' thresholds.
        quality: QualityConfig {
            /// Distinct tenants that get their own `tenant` label on the cost, token and
            /// budget series; later tenants are counted under `tenant="_other"`.
            metrics_tenant_labels: u32 = 100;
                env "METRICS_TENANT_LABELS" file metrics_tenant_labels
                kind num("a whole number of tenants"), check positive;
            /// Runs per workflow and track (and as many tool calls and approval decisions)
            /// that `/v1/info`'s quality summary and the service's quality alerts look at.
            quality_window_runs: u32 = 200;
                env "QUALITY_WINDOW_RUNS" file quality_window_runs
                kind num("a whole number of runs"), check window_runs;
            /// The fewest samples of a signal in the window before it may alert.
            quality_alert_min_samples: u32 = 20;
                env "QUALITY_ALERT_MIN_SAMPLES" file quality_alert_min_samples
                kind num("a whole number of samples"), check positive;
            /// Alert when fewer answers of citation-required workflows cite evidence.
            quality_min_citation_rate: f64 = 0.8;
                env "QUALITY_MIN_CITATION_RATE" file quality_min_citation_rate
                kind num("a fraction from 0 to 1"), check fraction;
            /// Alert when more answers refuse ("I cannot help with that").
            quality_max_refusal_rate: f64 = 0.2;
                env "QUALITY_MAX_REFUSAL_RATE" file quality_max_refusal_rate
                kind num("a fraction from 0 to 1"), check fraction;
            /// Alert when more tool calls fail.
            quality_max_tool_error_rate: f64 = 0.2;
                env "QUALITY_MAX_TOOL_ERROR_RATE" file quality_max_tool_error_rate
                kind num("a fraction from 0 to 1"), check fraction;
            /// Alert when more answers are empty or cut off at the output limit.
            quality_max_empty_rate: f64 = 0.1;
                env "QUALITY_MAX_EMPTY_RATE" file quality_max_empty_rate
                kind num("a fraction from 0 to 1"), check fraction;
            /// Alert when more proposed writes are rejected by their approvers.
            quality_max_rejection_rate: f64 = 0.5;
                env "QUALITY_MAX_REJECTION_RATE" file quality_max_rejection_rate
                kind num("a fraction from 0 to 1"), check fraction;
            /// How often the service checks its quality alerts and each tenant's daily
            /// budget burn (and refreshes the budget gauges).
            quality_check_secs: u64 = 10;
                env "QUALITY_CHECK_SECS" file quality_check_secs
                kind num("a whole number of seconds"), check positive;
        }
        /// Notifications to receivers (signed webhooks, Slack, PagerDuty) through the job
        /// queue.
        notify: NotifyConfig {
            /// Encrypts receivers' URLs and secrets at rest: 32 random bytes, base64
            /// (`openssl rand -base64 32`). Without it no receiver can be created.
            notify_secret_key: Option<Secret> = None;
                env "NOTIFY_SECRET_KEY" kind secret(), check notify_key;
            /// Delivery attempts per notification before it becomes a dead letter.
            notify_max_attempts: u32 = 10;
                env "NOTIFY_MAX_ATTEMPTS" file notify_max_attempts
                kind num("a whole number of attempts"), check positive;
            /// The wait after the first failed attempt; it doubles with each attempt.
            notify_retry_base_ms: u64 = 1_000;
                env "NOTIFY_RETRY_BASE_MS" file notify_retry_base_ms
                kind num("a whole number of milliseconds"), check positive;
            /// The longest wait between two attempts.
            notify_retry_max_secs: u64 = 300;
                env "NOTIFY_RETRY_MAX_SECS" file notify_retry_max_secs
                kind num("a whole number of seconds"), check positive;
            /// How long a receiver may take to answer one attempt.
            notify_timeout_secs: u64 = 10;
                env "NOTIFY_TIMEOUT_SECS" file notify_timeout_secs
                kind num("a whole number of seconds"),
                check |v: &u64| match v {
                    1..=60 => Ok(()),
                    _ => Err(format!("{v} must be from 1 to 60 seconds")),
                };
            /// `approval.expiring` is sent this long before a pending approval expires.
            notify_approval_warning_secs: u64 = 3_600;
                env "NOTIFY_APPROVAL_WARNING_SECS" file notify_approval_warning_secs
                kind num("a whole number of seconds"), check positive;
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

fn percent(v: &u32) -> Result<(), String> {
    if (1..=100).contains(v) {
        Ok(())
    } else {
        Err(format!("{v} must be from 1 to 100 percent"))
    }
}

fn at_most_an_hour(v: &u64) -> Result<(), String> {
    if *v <= 3600 {
        Ok(())
    } else {
        Err(format!("{v} must be at most 3600 seconds"))
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

fn window_runs(v: &u32) -> Result<(), String> {
    match v {
        1..=10_000 => Ok(()),
        _ => Err(format!("{v} must be from 1 to 10000 runs")),
    }
}

/// `NOTIFY_SECRET_KEY` must be 32 bytes in base64; the message never repeats the value.
fn notify_key(v: &Option<Secret>) -> Result<(), String> {
    use base64::Engine as _;
    match v {
        None => Ok(()),
        Some(s) => match base64::engine::general_purpose::STANDARD.decode(s.expose().trim()) {
            Ok(bytes) if bytes.len() == 32 => Ok(()),
            Ok(bytes) => Err(format!(
                "must be 32 bytes in base64 (`openssl rand -base64 32`); the value decodes to {} bytes",
                bytes.len()
            )),
            Err(_) => Err(
                "must be 32 bytes in base64 (`openssl rand -base64 32`); the value is not base64"
                    .into(),
            ),
        },
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
        // chosen by default there. A provider chain names its providers.
        if s.server.environment == Environment::Production
            && get("AGENT_PROVIDER").is_none()
            && get("USE_OLLAMA").is_none()
            && s.providers.provider_chain.is_empty()
        {
            return Err(ConfigError::new(
                "AGENT_PROVIDER",
                "must be set when AGENT_ENV=production (one of: ollama, openai, scripted), or PROVIDER_CHAIN",
            ));
        }
        // A named provider's key comes from the variable it names, never from the file.
        for (name, link) in &mut s.providers.links {
            if let Some(var) = &link.api_key_env {
                if link.kind != ProviderKind::Openai {
                    return Err(ConfigError::new(
                        format!("providers.{name}.api_key_env"),
                        "only an openai provider takes an API key",
                    ));
                }
                match get(var) {
                    Some(key) => link.api_key = Some(Secret::new(key)),
                    None => {
                        return Err(ConfigError::new(
                            format!("providers.{name}.api_key_env"),
                            format!("{var} is not set; it must hold this provider's API key"),
                        ));
                    }
                }
            }
        }
        s.validate()?;
        Ok(s)
    }

    /// The table's range checks, then the rules that span keys.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_ranges()?;
        self.providers.validate()?;
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
            ProviderKind::Scripted => self.scripted_variant.model(),
        }
    }

    /// The service's provider chain: `PROVIDER_CHAIN`, or `AGENT_PROVIDER` alone.
    pub fn chain(&self) -> Vec<String> {
        if self.provider_chain.is_empty() {
            vec![self.provider.as_str().to_string()]
        } else {
            self.provider_chain.clone()
        }
    }

    /// The chain of `workflow`: its own (`[workflow_provider_chain]`) or the service's.
    pub fn workflow_chain(&self, workflow: &str) -> Vec<String> {
        self.workflow_chains
            .get(workflow)
            .cloned()
            .unwrap_or_else(|| self.chain())
    }

    /// Every link some chain uses, each once: the service chain's first, in order.
    pub fn links_in_use(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let chains = std::iter::once(self.chain()).chain(self.workflow_chains.values().cloned());
        for name in chains.flatten() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The link `name` with every value resolved: a built-in name is made of the flat
    /// keys; a `[providers.<name>]` entry falls back to them for what it leaves out.
    pub fn link(&self, name: &str) -> Result<ProviderLink, ConfigError> {
        let flat = |kind: ProviderKind| ProviderLink {
            name: name.to_string(),
            kind,
            base_url: match kind {
                ProviderKind::Openai => self.openai_base_url.clone(),
                _ => self.ollama_base_url.clone(),
            },
            model: match kind {
                ProviderKind::Ollama => self.ollama_model.clone(),
                ProviderKind::Openai => self.model_name.clone(),
                ProviderKind::Scripted => self.scripted_variant.model().to_string(),
            },
            api_key: match kind {
                ProviderKind::Openai => self.openai_api_key.clone(),
                _ => None,
            },
            think: self.ollama_think,
            timeout_secs: self.provider_timeout_secs,
            max_retries: self.provider_max_retries,
            circuit_failure_threshold: self.circuit_failure_threshold,
            circuit_open_secs: self.circuit_open_secs,
            price: None,
            scripted_variant: self.scripted_variant,
        };
        if let Some(c) = self.links.get(name) {
            let key = format!("providers.{name}");
            let base = flat(c.kind);
            let base_url = match &c.base_url {
                Some(u) => parse_url(&format!("{key}.base_url"), u)?,
                None => base.base_url,
            };
            let model = match (&c.model, c.kind) {
                (_, ProviderKind::Scripted) => base.model,
                (Some(m), _) if !m.trim().is_empty() => m.clone(),
                (Some(_), _) => {
                    return Err(ConfigError::new(
                        format!("{key}.model"),
                        "must not be empty",
                    ));
                }
                (None, _) => base.model,
            };
            return Ok(ProviderLink {
                base_url,
                model,
                api_key: c.api_key.clone().or(if c.api_key_env.is_some() {
                    None
                } else {
                    base.api_key
                }),
                think: c.think.unwrap_or(base.think),
                timeout_secs: c.timeout_secs.unwrap_or(base.timeout_secs),
                max_retries: c.max_retries.unwrap_or(base.max_retries),
                circuit_failure_threshold: c
                    .circuit_failure_threshold
                    .unwrap_or(base.circuit_failure_threshold),
                circuit_open_secs: c.circuit_open_secs.unwrap_or(base.circuit_open_secs),
                price: c.price,
                ..base
            });
        }
        match name {
            "ollama" => Ok(flat(ProviderKind::Ollama)),
            "openai" => Ok(flat(ProviderKind::Openai)),
            "scripted" => Ok(flat(ProviderKind::Scripted)),
            _ => Err(ConfigError::new(
                "PROVIDER_CHAIN",
                format!("{name:?} is not a provider; {}", self.known_links()),
            )),
        }
    }

    /// "expected one of: …" for the link names chains may use.
    fn known_links(&self) -> String {
        let mut names: Vec<&str> = BUILTIN_LINKS.to_vec();
        names.extend(self.links.keys().map(String::as_str));
        format!(
            "expected one of: {} (or declare it as [providers.<name>])",
            names.join(", ")
        )
    }

    /// The rules of the provider keys: named providers are well formed, chains name known
    /// providers once each, and a provider that talks to api.openai.com has a key.
    fn validate(&self) -> Result<(), ConfigError> {
        for (name, c) in &self.links {
            let key = format!("providers.{name}");
            let well_formed = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-'
                });
            if !well_formed {
                return Err(ConfigError::new(
                    key,
                    "a provider name is 1-64 characters of a-z, 0-9, '_' and '-'",
                ));
            }
            if BUILTIN_LINKS.contains(&name.as_str()) {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{name:?} is the provider the flat keys make ({}); give this one another name",
                        BUILTIN_LINKS.join(", ")
                    ),
                ));
            }
            for (field, v) in [
                ("timeout_secs", c.timeout_secs),
                ("circuit_open_secs", c.circuit_open_secs),
                (
                    "circuit_failure_threshold",
                    c.circuit_failure_threshold.map(u64::from),
                ),
            ] {
                if v == Some(0) {
                    return Err(ConfigError::new(
                        format!("{key}.{field}"),
                        "must be greater than 0",
                    ));
                }
            }
            if let Some(p) = &c.price
                && !(p.input_per_1k >= 0.0 && p.output_per_1k >= 0.0)
            {
                return Err(ConfigError::new(
                    format!("{key}.price"),
                    "prices must be numbers >= 0",
                ));
            }
            self.link(name)?;
        }
        let chains = std::iter::once(("PROVIDER_CHAIN".to_string(), &self.provider_chain)).chain(
            self.workflow_chains
                .iter()
                .map(|(wf, chain)| (format!("workflow_provider_chain.{wf}"), chain)),
        );
        for (key, chain) in chains {
            if chain.is_empty() && key != "PROVIDER_CHAIN" {
                return Err(ConfigError::new(key, "names no provider"));
            }
            for (i, name) in chain.iter().enumerate() {
                if !BUILTIN_LINKS.contains(&name.as_str()) && !self.links.contains_key(name) {
                    return Err(ConfigError::new(
                        key,
                        format!("{name:?} is not a provider; {}", self.known_links()),
                    ));
                }
                if chain[..i].contains(name) {
                    return Err(ConfigError::new(
                        key,
                        format!("{name:?} is named twice; each provider is tried once"),
                    ));
                }
            }
        }
        for name in self.links_in_use() {
            let link = self.link(&name)?;
            if link.kind == ProviderKind::Openai
                && link.api_key.is_none()
                && link.base_url.host_str() == Some("api.openai.com")
            {
                return Err(if self.links.contains_key(&name) {
                    ConfigError::new(
                        format!("providers.{name}.api_key_env"),
                        "is required for a provider that talks to api.openai.com",
                    )
                } else if self.provider_chain.is_empty() && self.workflow_chains.is_empty() {
                    ConfigError::new(
                        "OPENAI_API_KEY",
                        "is required when AGENT_PROVIDER=openai talks to api.openai.com",
                    )
                } else {
                    ConfigError::new(
                        "OPENAI_API_KEY",
                        "is required when a provider chain uses openai, which talks to api.openai.com",
                    )
                });
            }
        }
        Ok(())
    }
}

impl ProviderLink {
    /// How `check-config` shows a named provider.
    pub fn describe(&self) -> String {
        let endpoint = if self.kind == ProviderKind::Scripted {
            String::new()
        } else {
            format!(" at {}", redact_url(self.base_url.as_str()))
        };
        let price = self.price.map_or_else(String::new, |p| {
            format!(
                ", ${}/${} per 1k tokens in/out",
                p.input_per_1k, p.output_per_1k
            )
        });
        format!(
            "{} {}{endpoint} (timeout {} s, {} retries, circuit opens after {} failures for {} s{price})",
            self.kind.as_str(),
            self.model,
            self.timeout_secs,
            self.max_retries,
            self.circuit_failure_threshold,
            self.circuit_open_secs
        )
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
    fn provider_chains_from_env_and_file() {
        let s = Settings::load_from(&env(&[])).unwrap();
        assert_eq!(s.providers.chain(), ["scripted"], "AGENT_PROVIDER alone");
        let s = Settings::load_from(&env(&[
            ("PROVIDER_CHAIN", "ollama, openai"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("PROVIDER_TIMEOUT_SECS", "4"),
        ]))
        .unwrap();
        assert_eq!(s.providers.chain(), ["ollama", "openai"]);
        let openai = s.providers.link("openai").unwrap();
        assert_eq!(
            (openai.kind, openai.model.as_str(), openai.timeout_secs),
            (ProviderKind::Openai, "gpt-4o-mini", 4)
        );
        let shown = |s: &Settings, k: &str| {
            s.describe()
                .into_iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v)
        };
        assert_eq!(
            shown(&s, "PROVIDER_CHAIN").as_deref(),
            Some("ollama,openai")
        );
        // Production: a chain names its providers explicitly.
        let s = Settings::load_from(&env(&[
            ("AGENT_ENV", "production"),
            ("PROVIDER_CHAIN", "ollama"),
        ]))
        .unwrap();
        assert_eq!(s.providers.chain(), ["ollama"]);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
provider_chain = ["local", "hosted"]
[providers.local]
kind = "ollama"
timeout_secs = 5
circuit_failure_threshold = 2
[providers.hosted]
kind = "openai"
base_url = "https://api.openai.com/v1"
model = "gpt-4o-mini"
api_key_env = "HOSTED_KEY"
price = { input_per_1k = 0.15, output_per_1k = 0.6 }
[workflow_provider_chain]
faq = ["hosted"]
"#,
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = Settings::load_from(&env(&[
            ("AGENT_CONFIG", p),
            ("HOSTED_KEY", "sk-hosted"),
            ("OLLAMA_MODEL", "qwen2.5"),
        ]))
        .unwrap();
        let local = s.providers.link("local").unwrap();
        assert_eq!(
            (
                local.model.as_str(),
                local.timeout_secs,
                local.circuit_failure_threshold,
                local.max_retries
            ),
            ("qwen2.5", 5, 2, 2),
            "what a named provider leaves out comes from the flat keys"
        );
        let hosted = s.providers.link("hosted").unwrap();
        assert_eq!(
            hosted.api_key.as_ref().map(Secret::expose),
            Some("sk-hosted")
        );
        assert_eq!(hosted.price.map(|p| p.output_per_1k), Some(0.6));
        assert_eq!(s.providers.workflow_chain("faq"), ["hosted"]);
        assert_eq!(
            s.providers.workflow_chain("ticket_update"),
            ["local", "hosted"]
        );
        assert_eq!(s.providers.links_in_use(), ["local", "hosted"]);
        let described = shown(&s, "providers.hosted").unwrap();
        assert!(
            described.starts_with("openai gpt-4o-mini at https://api.openai.com/v1"),
            "{described}"
        );
        assert!(
            !format!("{:?}", s.describe()).contains("sk-hosted"),
            "the key is never shown"
        );
        // The key's variable must be set.
        let e = err(&[("AGENT_CONFIG", p)]);
        assert_eq!(e.key, "providers.hosted.api_key_env");
        assert!(e.message.contains("HOSTED_KEY is not set"), "{e}");
    }

    #[test]
    fn bad_provider_chains_name_the_key() {
        let e = err(&[("PROVIDER_CHAIN", "ollama,claude")]);
        assert_eq!(e.key, "PROVIDER_CHAIN");
        assert!(e.message.contains("\"claude\" is not a provider"), "{e}");
        assert!(e.message.contains("ollama, openai, scripted"), "{e}");
        let e = err(&[("PROVIDER_CHAIN", "ollama,ollama")]);
        assert!(e.message.contains("named twice"), "{e}");
        let e = err(&[("PROVIDER_CHAIN", "ollama,openai")]);
        assert_eq!(e.key, "OPENAI_API_KEY", "api.openai.com needs a key: {e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let p = path.to_str().unwrap();
        for (text, key, words) in [
            (
                "[providers.ollama]\nkind = \"ollama\"\n",
                "providers.ollama",
                "another name",
            ),
            (
                "[providers.Local]\nkind = \"ollama\"\n",
                "providers.Local",
                "a-z",
            ),
            (
                "[providers.x]\nkind = \"ollama\"\ntimeout_secs = 0\n",
                "providers.x.timeout_secs",
                "greater than 0",
            ),
            (
                "[providers.x]\nkind = \"ollama\"\nbase_url = \"ftp://h\"\n",
                "providers.x.base_url",
                "http",
            ),
            (
                "[providers.x]\nkind = \"ollama\"\napi_key_env = \"K\"\n",
                "providers.x.api_key_env",
                "only an openai",
            ),
            (
                "[providers.x]\nkind = \"ollama\"\nprice = { input_per_1k = -1.0, output_per_1k = 0.0 }\n",
                "providers.x.price",
                ">= 0",
            ),
            (
                "[workflow_provider_chain]\nfaq = []\n",
                "workflow_provider_chain.faq",
                "names no provider",
            ),
            (
                "[workflow_provider_chain]\nfaq = [\"nowhere\"]\n",
                "workflow_provider_chain.faq",
                "not a provider",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = err(&[("AGENT_CONFIG", p)]);
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.message.contains(words), "{text}: {e}");
        }
        std::fs::write(&path, "[providers.x]\nkind = \"gemini\"\n").unwrap();
        let e = err(&[("AGENT_CONFIG", p)]);
        assert_eq!(e.key, "AGENT_CONFIG");
        assert!(e.message.contains("gemini"), "{e}");
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
