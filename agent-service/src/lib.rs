//! agent-service: a production agent runtime. See ARCHITECTURE.md for the code map.

pub mod approvals;
pub mod auth;
pub mod background;
pub mod budget;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod engine;
pub mod error;
pub mod evals;
pub mod guardrails;
pub mod jobs;
pub mod metrics;
pub mod providers;
pub mod request_id;
pub mod routes;
pub mod runtime;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod tools;
pub mod traces;
pub mod workflows;

#[cfg(test)]
mod layers;
