//! agent-service: a production agent runtime. See ARCHITECTURE.md for the code map.

pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod guardrails;
pub mod metrics;
pub mod providers;
pub mod request_id;
pub mod tools;
