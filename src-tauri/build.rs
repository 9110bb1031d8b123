//! Build script: checks that the UI has been built (the default `custom-protocol` feature
//! embeds `ui/dist` into the binary), then runs `tauri-build` (config, capabilities, icons).

fn main() {
    let custom_protocol = std::env::var_os("CARGO_FEATURE_CUSTOM_PROTOCOL").is_some();
    // Read when the script runs, not baked in when it is compiled: a target dir shared by two
    // checkouts reuses this script's binary, and must check the checkout being built.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dist = std::path::Path::new(&manifest_dir).join("../ui/dist/index.html");
    println!("cargo:rerun-if-changed=../ui/dist/index.html");
    if custom_protocol && !dist.is_file() {
        panic!(
            "the UI is not built: {} is missing. Build it first with \
             `cd ui && npm ci && npm run build` (scripts/test-ui.sh does), or build the app \
             with `--no-default-features` to load the Vite dev server instead",
            dist.display()
        );
    }
    tauri_build::build();
}
