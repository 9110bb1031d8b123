//! The `flightdeck` binary: everything lives in the library (`flightdeck_lib::run`).

// No console window next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    flightdeck_lib::run();
}
