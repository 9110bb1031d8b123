//! Tools with contracts: JSON-Schema-validated arguments, a side-effect class, a per-tool
//! timeout and concurrency cap. Built-in demo-domain tools plus HTTP tools from config.
//!
//! Read tools run directly ([`Registry::run`]). Write tools never do: the workflow asks for
//! the change they would make ([`Registry::propose`]), a human approves it, and only then
//! the approvals module applies it ([`Registry::execute`]). Every outbound HTTP request a
//! tool makes goes through the SSRF guard in [`egress`].

mod builtin;
pub mod egress;
mod http;
mod kb;
mod records;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::{ConfigError, ToolConfig};
use crate::db::Db;
use crate::domain::TenantId;

pub use builtin::{INVOICE_PAY, INVOICE_READ, TICKET_READ, TICKET_UPDATE};
use egress::{Egress, Lookup, SendError, SystemLookup};
pub use kb::KB_SEARCH;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SideEffect {
    Read,
    Write,
}

impl SideEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
    pub side_effect: SideEffect,
    #[serde(serialize_with = "ser_ms")]
    pub timeout: Duration,
    pub max_concurrency: u32,
    /// `builtin` or `http`.
    pub source: &'static str,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a tool runs against: the caller's tenant (every query is scoped to it) and the db.
#[derive(Clone)]
pub struct ToolCtx {
    pub tenant: TenantId,
    pub db: Db,
}

/// The change a write tool would make, for the approver to read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposedChange {
    /// e.g. `ticket/T-1001`
    pub resource: String,
    pub before: Value,
    pub after: Value,
    /// A unified diff of the pretty-printed `before` and `after`.
    pub diff: String,
}

impl ProposedChange {
    /// A change from `before` to `after`, with the diff an approver reads.
    pub fn new(resource: impl Into<String>, before: Value, after: Value) -> Self {
        let old = format!("{before:#}\n");
        let new = format!("{after:#}\n");
        let diff = similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .header("before", "after")
            .to_string();
        Self {
            resource: resource.into(),
            before,
            after,
            diff,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool {0:?}")]
    UnknownTool(String),
    #[error("invalid arguments for {tool}: {message}")]
    InvalidArguments { tool: String, message: String },
    #[error("{0} was not found")]
    NotFound(String),
    #[error("tool {0} timed out")]
    Timeout(String),
    #[error("tool {tool} is unavailable: {message}")]
    Unavailable { tool: String, message: String },
    #[error("outbound request refused: {0}")]
    EgressDenied(String),
    #[error("tool {tool} failed: {message}")]
    Failed { tool: String, message: String },
    #[error("tool {0} is a write: it needs approval and cannot run directly")]
    WriteNeedsApproval(String),
}

impl ToolError {
    /// The label used in `agent_tool_calls_total{outcome}` (a success is `ok`).
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::UnknownTool(_) => "unknown_tool",
            Self::InvalidArguments { .. } => "invalid_arguments",
            Self::NotFound(_) => "not_found",
            Self::Timeout(_) => "timeout",
            Self::Unavailable { .. } => "unavailable",
            Self::EgressDenied(_) => "egress_denied",
            Self::Failed { .. } => "failed",
            Self::WriteNeedsApproval(_) => "needs_approval",
        }
    }

    fn failed(tool: &str, message: impl Into<String>) -> Self {
        Self::Failed {
            tool: tool.to_string(),
            message: message.into(),
        }
    }

    fn unavailable(tool: &str, message: impl Into<String>) -> Self {
        Self::Unavailable {
            tool: tool.to_string(),
            message: message.into(),
        }
    }

    fn invalid(tool: &str, message: impl Into<String>) -> Self {
        Self::InvalidArguments {
            tool: tool.to_string(),
            message: message.into(),
        }
    }

    /// A database failure: the tool cannot answer right now.
    fn db(tool: &str, err: &sqlx::Error) -> Self {
        Self::unavailable(tool, format!("database error: {err}"))
    }

    /// An outbound HTTP failure, as seen by `tool`.
    fn from_send(tool: &str, err: SendError) -> Self {
        match err {
            SendError::Denied(denied) => Self::EgressDenied(denied.message().to_string()),
            SendError::Timeout => Self::Timeout(tool.to_string()),
            SendError::Unreachable(message) => Self::unavailable(tool, message),
            SendError::Failed(message) => Self::failed(tool, message),
        }
    }
}

/// How a tool does its work.
enum Kind {
    Builtin(builtin::Builtin),
    Http(http::HttpTool),
}

/// One registered tool: its contract, compiled validator, concurrency slots and body.
struct Tool {
    spec: ToolSpec,
    validator: jsonschema::Validator,
    slots: Semaphore,
    kind: Kind,
}

impl Tool {
    fn new(spec: ToolSpec, validator: jsonschema::Validator, kind: Kind) -> Self {
        let slots = Semaphore::new(usize::try_from(spec.max_concurrency).unwrap_or(usize::MAX));
        Self {
            spec,
            validator,
            slots,
            kind,
        }
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    fn validate(&self, args: &Value) -> Result<(), ToolError> {
        schema::check(&self.validator, args)
            .map_err(|message| ToolError::invalid(self.name(), message))
    }

    /// Waits for a concurrency slot, then runs `work` under the tool's timeout.
    async fn guarded<T>(
        &self,
        work: impl Future<Output = Result<T, ToolError>>,
    ) -> Result<T, ToolError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| ToolError::unavailable(self.name(), "the tool is shutting down"))?;
        tokio::time::timeout(self.spec.timeout, work)
            .await
            .map_err(|_| ToolError::Timeout(self.spec.name.clone()))?
    }
}

/// All tools this process offers.
pub struct Registry {
    tools: BTreeMap<String, Tool>,
    /// Records the built-in read tools served recently (see `records`).
    records: Arc<records::RecordCache>,
}

impl Registry {
    /// The built-in tools plus the HTTP tools declared in `settings.http_tools`.
    pub fn new(settings: &ToolConfig) -> Result<Self, ConfigError> {
        Self::with_lookup(settings, Arc::new(SystemLookup))
    }

    /// The same, resolving outbound host names with `lookup` (tests map names to any address).
    pub fn with_lookup(
        settings: &ToolConfig,
        lookup: Arc<dyn Lookup>,
    ) -> Result<Self, ConfigError> {
        let egress = Egress::with_lookup(&settings.egress_allowlist, Arc::clone(&lookup)).map_err(
            |message| ConfigError {
                key: "EGRESS_ALLOWLIST".into(),
                message,
            },
        )?;
        let search = match &settings.retrieval_url {
            None => kb::Search::Local(kb::LocalIndex::default()),
            Some(url) => {
                // The operator named this host; it is reachable whatever it resolves to.
                let mut allow = settings.egress_allowlist.clone();
                allow.extend(url.host_str().map(str::to_string));
                let egress =
                    Egress::with_lookup(&allow, lookup).map_err(|message| ConfigError {
                        key: "RETRIEVAL_URL".into(),
                        message,
                    })?;
                kb::Search::Remote {
                    url: url.clone(),
                    egress,
                }
            }
        };

        let records = Arc::new(records::RecordCache::default());
        let mut tools = BTreeMap::new();
        for (spec, body) in builtin::tools(search, &records) {
            let validator = schema::compile(&spec.parameters).map_err(|message| ConfigError {
                key: "tools".into(),
                message: format!("the schema of built-in tool {} {message}", spec.name),
            })?;
            tools.insert(
                spec.name.clone(),
                Tool::new(spec, validator, Kind::Builtin(body)),
            );
        }
        for config in &settings.http_tools {
            let key = format!("http_tools.{}", config.name);
            if tools.contains_key(&config.name) {
                let what = if tools[&config.name].spec.source == "builtin" {
                    "clashes with the built-in tool of that name; choose another name"
                } else {
                    "is declared more than once; tool names must be unique"
                };
                return Err(ConfigError {
                    key,
                    message: what.into(),
                });
            }
            let (spec, validator, body) = http::HttpTool::from_config(config, &egress)?;
            tools.insert(
                config.name.clone(),
                Tool::new(spec, validator, Kind::Http(body)),
            );
        }
        Ok(Self { tools, records })
    }

    /// Forgets the cached records of `tenant`: called after a transaction that wrote to
    /// its tickets or invoices commits.
    pub fn records_changed(&self, tenant: &TenantId) {
        self.records.forget_tenant(tenant);
    }

    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.get(name).map(|t| &t.spec)
    }

    /// Every tool's spec, sorted by name.
    pub fn specs(&self) -> Vec<&ToolSpec> {
        self.tools.values().map(|t| &t.spec).collect()
    }

    /// The specs of these tool names, in order (unknown names are skipped): the tools a
    /// run offers the model.
    pub fn offered(&self, names: &[&str]) -> Vec<&ToolSpec> {
        names.iter().filter_map(|name| self.get(name)).collect()
    }

    fn tool(&self, name: &str) -> Result<&Tool, ToolError> {
        self.tools
            .get(name)
            .ok_or_else(|| ToolError::UnknownTool(name.to_string()))
    }

    /// A write tool, validated arguments: what `propose` and `execute` both need.
    fn write_tool(&self, name: &str, args: &Value) -> Result<&Tool, ToolError> {
        let tool = self.tool(name)?;
        if tool.spec.side_effect != SideEffect::Write {
            return Err(ToolError::failed(
                name,
                "is a read tool: run it, there is no change to propose",
            ));
        }
        tool.validate(args)?;
        Ok(tool)
    }

    /// Checks the arguments against the tool's schema.
    pub fn validate(&self, name: &str, args: &Value) -> Result<(), ToolError> {
        self.tool(name)?.validate(args)
    }

    /// Runs a read tool: validates, waits for a concurrency slot, enforces the timeout.
    #[tracing::instrument(skip(self, ctx, args), fields(tenant = %ctx.tenant))]
    pub async fn run(&self, ctx: &ToolCtx, name: &str, args: &Value) -> Result<Value, ToolError> {
        let tool = self.tool(name)?;
        if tool.spec.side_effect == SideEffect::Write {
            return Err(ToolError::WriteNeedsApproval(name.to_string()));
        }
        tool.validate(args)?;
        tool.guarded(async {
            match &tool.kind {
                Kind::Builtin(b) => b.run(ctx, args).await,
                Kind::Http(h) => h.call(args).await,
            }
        })
        .await
    }

    /// For a write tool: the change it would make, without making it.
    #[tracing::instrument(skip(self, ctx, args), fields(tenant = %ctx.tenant))]
    pub async fn propose(
        &self,
        ctx: &ToolCtx,
        name: &str,
        args: &Value,
    ) -> Result<ProposedChange, ToolError> {
        let tool = self.write_tool(name, args)?;
        tool.guarded(async {
            match &tool.kind {
                Kind::Builtin(b) => b.propose(ctx, args).await,
                Kind::Http(h) => h.propose(args),
            }
        })
        .await
    }

    /// Applies a write tool's change and returns the resulting record. Call it only for an
    /// approved request, once: the approvals module owns exactly-once; built-in writes also
    /// refuse to apply a change that is no longer applicable (e.g. paying a paid invoice).
    /// A `Timeout` here means the outcome is unknown.
    #[tracing::instrument(skip(self, ctx, args), fields(tenant = %ctx.tenant))]
    pub async fn execute(
        &self,
        ctx: &ToolCtx,
        name: &str,
        args: &Value,
    ) -> Result<Value, ToolError> {
        let tool = self.write_tool(name, args)?;
        tool.guarded(async {
            match &tool.kind {
                Kind::Builtin(b) => b.execute(ctx, args).await,
                Kind::Http(h) => h.call(args).await,
            }
        })
        .await
    }

    /// [`Self::execute`] for a built-in write, on `conn` — inside the caller's transaction,
    /// so the write commits or rolls back with the approval's status and audit event.
    /// HTTP tools cannot join a database transaction: use [`Self::execute_http`].
    #[tracing::instrument(skip(self, conn, ctx, args), fields(tenant = %ctx.tenant))]
    pub async fn execute_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        ctx: &ToolCtx,
        name: &str,
        args: &Value,
    ) -> Result<Value, ToolError> {
        let tool = self.write_tool(name, args)?;
        match &tool.kind {
            Kind::Builtin(b) => tool.guarded(b.execute_on(conn, ctx, args)).await,
            Kind::Http(_) => Err(ToolError::failed(
                name,
                "is an HTTP tool: it cannot run inside a database transaction",
            )),
        }
    }

    /// [`Self::execute`] for an HTTP write, sending `Idempotency-Key: <idempotency_key>` so
    /// the receiver can drop a retry of a call whose outcome was lost (at-least-once
    /// delivery, deduplicated by the key).
    #[tracing::instrument(skip(self, ctx, args), fields(tenant = %ctx.tenant))]
    pub async fn execute_http(
        &self,
        ctx: &ToolCtx,
        name: &str,
        args: &Value,
        idempotency_key: &str,
    ) -> Result<Value, ToolError> {
        let tool = self.write_tool(name, args)?;
        match &tool.kind {
            Kind::Http(h) => {
                tool.guarded(h.call_with_headers(args, &[("Idempotency-Key", idempotency_key)]))
                    .await
            }
            Kind::Builtin(_) => Err(ToolError::failed(
                name,
                "is a built-in tool: execute it inside the approval's transaction",
            )),
        }
    }

    /// A stable hash over every tool's name, schema and side effect (for `/v1/info`).
    pub fn schema_hash(&self) -> String {
        schema::contract_hash(self.tools.values().map(|t| &t.spec))
    }
}
