//! Cross-process API tests: the real `agent-service` binary over HTTP, on SQLite and on
//! PostgreSQL (every test runs on both). One test binary, to keep link time down.

mod helpers;

mod approvals;
mod audit;
mod budgets;
mod config;
mod contract;
mod errors;
mod evals;
mod fallback;
mod guardrails;
mod idempotency;
mod info;
mod injection;
mod invoke;
mod jobs;
mod limits;
mod notifications;
mod overload;
mod provider;
mod quality;
mod real_model;
mod replicas;
mod resilience;
mod slow_clients;
mod ssrf;
mod stream;
mod traces;
mod wire;
