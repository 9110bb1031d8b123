//! `TauriSink`: the core's `EventSink` over Tauri: events go to the webview with
//! `AppHandle::emit` (names are the UI's `EventMap` keys), notifications to the desktop
//! through the notification plugin.

use flightdeck_core::console::EventSink;
use tauri::{AppHandle, Emitter};
use tauri_plugin_notification::NotificationExt;

pub struct TauriSink {
    app: AppHandle,
}

impl TauriSink {
    pub fn new(app: AppHandle) -> Self {
        Self { app }
    }
}

impl EventSink for TauriSink {
    fn emit(&self, event: &str, payload: serde_json::Value) {
        if let Err(e) = self.app.emit(event, payload) {
            tracing::warn!(event, error = %e, "an event could not be sent to the window");
        }
    }

    /// Shown off the async workers: the D-Bus call may block, and without a notification
    /// daemon (a headless session) it fails, which is logged and otherwise harmless.
    fn notify(&self, title: &str, body: &str) {
        let app = self.app.clone();
        let (title, body) = (title.to_owned(), body.to_owned());
        tauri::async_runtime::spawn_blocking(move || {
            if let Err(e) = app.notification().builder().title(title).body(body).show() {
                tracing::debug!(error = %e, "desktop notification not shown");
            }
        });
    }
}
