//! The Tauri 2 shell of the Flightdeck console: the window, state wiring, the thin command
//! layer (`commands`), pushed events and desktop notifications (`sink`). Everything else is
//! in `flightdeck-core`, which knows nothing about Tauri.
//!
//! Start-up: the window opens at once while `Console::start` runs in the background (it
//! opens the local store and starts the Local profile: the bundled agent-service as a child
//! process with synthetic demo traffic); commands wait for it. Exit (last window closed,
//! SIGTERM or Ctrl-C): `Console::shutdown` stops the child before the process ends.

mod commands;
mod sink;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flightdeck_core::console::dto::CommandErrorCode;
use flightdeck_core::console::{CommandError, Console, ConsoleOptions};
use flightdeck_core::host::Host;
use tauri::{AppHandle, Manager, RunEvent};
use tokio::sync::watch;

/// The bundled agent-service's file name (next to `flightdeck`, also in the .deb).
const AGENT_BINARY: &str = "agent-service";

/// What every command reaches: the console once it has started.
pub struct AppState {
    console: watch::Receiver<Option<Result<Console, CommandError>>>,
}

impl AppState {
    /// The running console; waits while it is still starting.
    pub async fn console(&self) -> Result<Console, CommandError> {
        let mut rx = self.console.clone();
        let started = rx.wait_for(Option::is_some).await.map_err(|_| {
            CommandError::new(CommandErrorCode::Process, "the console is shutting down")
        })?;
        (*started).clone().unwrap_or_else(|| {
            Err(CommandError::new(
                CommandErrorCode::Process,
                "the console did not start",
            ))
        })
    }
}

/// WebKitGTK's switch for its accelerated compositing mode (read by the UI and web processes).
const WEBKIT_NO_COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
/// `FLIGHTDECK_GPU_COMPOSITING=1` keeps WebKit's default (compositing on).
const GPU_COMPOSITING: &str = "FLIGHTDECK_GPU_COMPOSITING";
/// JavaScriptCore's switch for its JIT compilers (JSC reads `JSC_<option>` from the
/// environment of the web process, which inherits the app's).
const JSC_JIT: &str = "JSC_useJIT";
/// `FLIGHTDECK_JS_JIT=1` keeps JavaScriptCore's default (JIT on).
const JS_JIT: &str = "FLIGHTDECK_JS_JIT";

/// The WebKit settings the app makes for itself, as environment variables to set before the
/// first webview exists. Each is left alone when the user set WebKit's own variable, or opted
/// back into WebKit's default with the app's switch (`=1`).
///
/// - Accelerated compositing off: it renders each layer of the page into OpenGL textures. The
///   console's pages are flat 2D (cards, tables, inline SVG charts), so it buys nothing
///   visible, while it costs the web process a GL context and its buffers: measured under
///   Xvfb (Mesa's software GL), 158 -> 96 MiB PSS for the web process.
/// - JavaScriptCore's JIT off: the UI's script is event handlers and Svelte updates a few
///   times a second, which the interpreter runs well within a frame; the JIT tiers cost the
///   web process ~9 MiB (their compilers' code and the code they generate), and a web process
///   without writable-executable memory is a smaller target for the markup it renders from
///   the services it connects to.
///
/// Measurements: docs/benchmarks.md, "Desktop app".
fn webkit_settings(get: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, &'static str)> {
    let opted_in = |switch: &str| get(switch).as_deref().map(str::trim) == Some("1");
    let mut out = Vec::new();
    if get(WEBKIT_NO_COMPOSITING).is_none() && !opted_in(GPU_COMPOSITING) {
        out.push((WEBKIT_NO_COMPOSITING, "1"));
    }
    if get(JSC_JIT).is_none() && !opted_in(JS_JIT) {
        out.push((JSC_JIT, "0"));
    }
    out
}

/// Builds and runs the app until it exits.
pub fn run() {
    init_tracing();
    let webkit = webkit_settings(|k| std::env::var(k).ok());
    for (key, value) in &webkit {
        // SAFETY: `run` is the first thing `main` does: no other thread exists yet that could
        // read the environment concurrently (tracing's subscriber starts none).
        unsafe { std::env::set_var(key, value) };
    }
    tracing::debug!(?webkit, "WebKit settings made by the app");
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(commands::handler())
        .setup(|app| {
            let data_dir = app.path().app_data_dir()?;
            let (tx, rx) = watch::channel(None);
            app.manage(AppState { console: rx });
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let started = start_console(handle, data_dir).await;
                match &started {
                    Ok(console) => {
                        if let Some(e) = console.local_error() {
                            tracing::warn!(code = ?e.code, message = %e.message, "no Local profile");
                        }
                    }
                    Err(e) => {
                        tracing::error!(code = ?e.code, message = %e.message, "the console did not start")
                    }
                }
                tx.send_replace(Some(started));
            });
            tauri::async_runtime::spawn(exit_on_signal(app.handle().clone()));
            Ok(())
        })
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("flightdeck: the window could not be created: {e}");
            std::process::exit(1);
        });
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            tauri::async_runtime::block_on(shutdown(app));
        }
    });
}

async fn start_console(app: AppHandle, data_dir: PathBuf) -> Result<Console, CommandError> {
    let host = Host::open(&data_dir).await?;
    let mut options = ConsoleOptions::new(data_dir);
    let exe = std::env::current_exe().ok();
    let binary = agent_binary(
        exe.as_deref(),
        std::env::var_os("FLIGHTDECK_AGENT_BIN").map(PathBuf::from),
    );
    tracing::info!(agent_binary = %binary.display(), "starting the console");
    options.agent_binary = Some(binary);
    options.start_local = std::env::var("FLIGHTDECK_LOCAL").as_deref() != Ok("0");
    options.traffic = std::env::var("FLIGHTDECK_TRAFFIC").as_deref() != Ok("0");
    Console::start(host, Arc::new(sink::TauriSink::new(app)), options).await
}

/// Where the bundled agent-service is: next to the app executable (the .deb installs both
/// in /usr/bin; `cargo build` puts both in target/<profile>/), else `FLIGHTDECK_AGENT_BIN`.
/// If neither exists the path next to the executable is returned, and the Local profile
/// reports it missing with the fix.
fn agent_binary(exe: Option<&Path>, from_env: Option<PathBuf>) -> PathBuf {
    let beside = exe
        .and_then(Path::parent)
        .map(|dir| dir.join(AGENT_BINARY))
        .unwrap_or_else(|| PathBuf::from(AGENT_BINARY));
    if beside.is_file() {
        return beside;
    }
    from_env
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(beside)
}

/// Stops the console (and so the Local child). A console still starting is waited for, up
/// to the agent-service's start-up limit, so its child is not left behind.
async fn shutdown(app: &AppHandle) {
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let mut rx = state.console.clone();
    let started = tokio::time::timeout(Duration::from_secs(35), rx.wait_for(Option::is_some)).await;
    let console = match started {
        Ok(Ok(value)) => match &*value {
            Some(Ok(console)) => console.clone(),
            _ => return,
        },
        _ => {
            tracing::warn!("the console was still starting at exit");
            return;
        }
    };
    console.shutdown().await;
    tracing::info!("console stopped");
}

/// SIGTERM and Ctrl-C end the app through the normal exit path (so `RunEvent::Exit` runs
/// `shutdown` and the Local child is stopped).
async fn exit_on_signal(app: AppHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT");
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("signal received; exiting");
    app.exit(0);
}

/// Logs to stderr; `FLIGHTDECK_LOG` sets the filter (default `info`). The core never logs
/// secrets; nothing here logs command arguments.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLIGHTDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_binary_beside_the_executable_wins() {
        let dir = std::env::temp_dir().join(format!("fd-agent-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("flightdeck");
        let beside = dir.join(AGENT_BINARY);
        std::fs::write(&beside, b"").unwrap();
        assert_eq!(
            agent_binary(Some(&exe), Some(PathBuf::from("/elsewhere/agent-service"))),
            beside
        );
        std::fs::remove_file(&beside).unwrap();
        // Missing beside the executable: the environment's path.
        assert_eq!(
            agent_binary(Some(&exe), Some(PathBuf::from("/elsewhere/agent-service"))),
            PathBuf::from("/elsewhere/agent-service")
        );
        // Neither: the path beside the executable, so the error names where it belongs.
        assert_eq!(agent_binary(Some(&exe), None), beside);
        assert_eq!(agent_binary(Some(&exe), Some(PathBuf::new())), beside);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn webkit_settings_are_made_unless_the_user_chose() {
        let settings = |pairs: &[(&str, &str)]| {
            let env: std::collections::HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            webkit_settings(|k| env.get(k).cloned())
        };
        let both = vec![(WEBKIT_NO_COMPOSITING, "1"), (JSC_JIT, "0")];
        assert_eq!(settings(&[]), both);
        assert_eq!(settings(&[(GPU_COMPOSITING, "0"), (JS_JIT, "")]), both);
        // The app's switches opt back into WebKit's defaults, one at a time.
        assert_eq!(settings(&[(GPU_COMPOSITING, " 1 ")]), vec![(JSC_JIT, "0")]);
        assert_eq!(
            settings(&[(JS_JIT, "1")]),
            vec![(WEBKIT_NO_COMPOSITING, "1")]
        );
        assert_eq!(settings(&[(GPU_COMPOSITING, "1"), (JS_JIT, "1")]), vec![]);
        // WebKit's own variables, whatever their value, are the user's choice and are left
        // alone.
        assert_eq!(
            settings(&[(WEBKIT_NO_COMPOSITING, "0")]),
            vec![(JSC_JIT, "0")]
        );
        assert_eq!(
            settings(&[(JSC_JIT, "1")]),
            vec![(WEBKIT_NO_COMPOSITING, "1")]
        );
    }

    #[test]
    fn a_command_error_serializes_as_the_ui_reads_it() {
        let e = CommandError::new(CommandErrorCode::NotFound, "no profile \"x\"");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "code": "not_found",
                "message": "no profile \"x\"",
                "server_code": null,
                "request_id": null,
                "retry_after_secs": null,
            })
        );
    }
}
