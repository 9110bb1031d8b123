//! `flightdeck-blank`: one empty Tauri 2 window and nothing else. `scripts/bench-desktop.sh`
//! measures its memory beside Flightdeck's in the same run, so the app's own cost shows.

fn main() {
    tauri::Builder::default()
        .run(tauri::generate_context!())
        .expect("the Tauri runtime failed to start");
}
