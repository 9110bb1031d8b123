//! Evals and release gates: suites of cases shipped as data files, run through
//! the engine in the dedicated `eval` tenant, scored (pass rate, policy compliance,
//! citation rate, latency, tokens, cost), compared with a baseline run, gated against
//! `EVAL_GATE_*`, and reported as JSON, Markdown and JUnit XML.
//!
//! Runs come from `POST /v1/evals/runs` (queued, executed by a server's [`worker`] of the
//! same release) or from `agent-service eval run` ([`command`], executed in process).

pub mod assertions;
pub mod baseline;
pub mod command;
pub mod document;
pub mod gate;
pub mod report;
pub mod result;
pub mod runner;
pub mod score;
pub mod store;
pub mod suite;
pub mod worker;
