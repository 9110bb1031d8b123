//! Cross-process API tests: the real `agent-service` binary over HTTP, on SQLite and on
//! PostgreSQL (every test runs on both). One test binary, to keep link time down.

mod helpers;

mod approvals;
mod audit;
mod budgets;
mod config;
mod errors;
mod evals;
mod guardrails;
mod idempotency;
mod info;
mod injection;
mod invoke;
mod jobs;
mod limits;
mod provider;
mod real_model;
mod resilience;
mod ssrf;
mod stream;
mod traces;
