//! Build script of the blank baseline window (config and capabilities via `tauri-build`).

fn main() {
    tauri_build::build();
}
