//! Cross-process tests of the console core: the agent client and the Local profile against
//! the real agent-service binary, the smoke suite against the fake Ollama, the keyring.

mod agent;
mod console;
mod console_chain;
mod console_overview;
mod console_quality;
mod console_receivers;
mod console_releases;
mod console_traces;
mod helpers;
mod host;
mod keyring;
mod local;
mod releases;
mod rig;
mod smoke;
