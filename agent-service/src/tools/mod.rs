//! Tools with contracts: JSON-Schema-validated arguments, a side-effect class, a per-tool
//! timeout and concurrency cap. Built-in demo-domain tools plus HTTP tools from config.
//! INTERFACE STUB — being implemented; signatures are the contract.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::{ConfigError, Settings};
use crate::db::Db;
use crate::domain::TenantId;
use crate::providers::ToolDef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SideEffect {
    Read,
    Write,
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
    s.serialize_u64(d.as_millis() as u64)
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
    /// The label used in `agent_tool_calls_total{outcome}`.
    pub fn outcome(&self) -> &'static str {
        unimplemented!()
    }
}

/// All tools this process offers.
pub struct Registry {}

impl Registry {
    /// The built-in tools plus the HTTP tools declared in `settings.http_tools`.
    pub fn new(_settings: &Settings) -> Result<Self, ConfigError> {
        unimplemented!()
    }
    pub fn get(&self, _name: &str) -> Option<&ToolSpec> {
        unimplemented!()
    }
    pub fn specs(&self) -> Vec<&ToolSpec> {
        unimplemented!()
    }
    /// The definitions offered to the model for these tool names.
    pub fn defs(&self, _names: &[&str]) -> Vec<ToolDef> {
        unimplemented!()
    }
    /// Checks the arguments against the tool's schema.
    pub fn validate(&self, _name: &str, _args: &Value) -> Result<(), ToolError> {
        unimplemented!()
    }
    /// Runs a read tool: validates, waits for a concurrency slot, enforces the timeout.
    pub async fn run(&self, _ctx: &ToolCtx, _name: &str, _args: &Value) -> Result<Value, ToolError> {
        unimplemented!()
    }
    /// For a write tool: the change it would make, without making it.
    pub async fn propose(&self, _ctx: &ToolCtx, _name: &str, _args: &Value) -> Result<ProposedChange, ToolError> {
        unimplemented!()
    }
    /// A stable hash over every tool's name, schema and side effect (for `/v1/info`).
    pub fn schema_hash(&self) -> String {
        unimplemented!()
    }
}
