//! The Flightdeck console's display-free core: everything the desktop app does that is not
//! drawing. It never depends on Tauri; see README.md for the module map.

pub mod agent;
pub mod alerts;
pub mod chart;
pub mod clock;
pub mod console;
pub mod domain;
pub mod error;
pub mod host;
pub mod local;
pub mod prom;
pub mod releases;
pub mod secrets;
pub mod series;
pub mod smoke;
pub mod store;

pub use domain::{BaseUrl, ProfileId, ProfileKind, Secret};
pub use error::{ApiError, Error, ErrorCode, Result};
