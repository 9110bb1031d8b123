//! `?watch=true`: newline-delimited WatchEvents from a resourceVersion, with bookmarks,
//! `timeoutSeconds`, and 410 Gone (as an ERROR event) for a compacted resourceVersion;
//! interrupted on demand (every open watch ends, new ones get 503 until resumed).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::api::Query;
use super::resources::{ResPath, ResType};
use super::selectors::{FieldSelector, LabelSelector, labels_of};
use super::state::{Shared, WatchRecord};
use super::status::ApiError;

/// Without `timeoutSeconds` a watch ends after this long (the API server picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    /// The stored type (core Events for `events.k8s.io/v1`).
    ty: &'static ResType,
    /// Objects go out as `events.k8s.io/v1` Events.
    as_v1_event: bool,
    ns: Option<String>,
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    fn out(&self, obj: &Value) -> Value {
        if self.as_v1_event {
            super::events::core_to_v1(obj)
        } else {
            obj.clone()
        }
    }

    fn selects(&self, obj: &Value) -> bool {
        let obj = &self.out(obj);
        self.labels
            .as_ref()
            .is_none_or(|l| l.matches(&labels_of(obj)))
            && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }

    /// The event type this watch sends for a change, if any: a MODIFIED object that starts
    /// matching the selectors is ADDED, one that stops matching is DELETED.
    fn event(&self, r: &WatchRecord) -> Option<&'static str> {
        if r.ty != self.ty.id()
            || !self
                .ns
                .as_deref()
                .is_none_or(|n| !self.ty.namespaced || r.ns == n)
        {
            return None;
        }
        let now = self.selects(&r.object);
        match (r.kind, &r.previous) {
            ("MODIFIED", Some(prev)) => match (self.selects(prev), now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
            (kind, _) => now.then_some(kind),
        }
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn gone(rv: u64, floor: u64) -> Value {
    ApiError::new(410, format!("too old resource version: {rv} ({floor})"))
        .with_reason("Expired")
        .body()
}

fn bookmark(ty: &ResType, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": ty.kind, "apiVersion": ty.api_version(), "metadata": meta})
}

pub async fn watch(shared: &Arc<Shared>, p: &ResPath, q: &Query) -> Result<Response, ApiError> {
    let as_v1_event = p.ty.id() == super::resources::EVENTS_V1.id();
    let stored: &'static ResType = if as_v1_event {
        &super::resources::EVENTS
    } else {
        p.ty
    };
    let filter = Filter {
        ty: stored,
        as_v1_event,
        ns: p.namespace.clone(),
        labels: q
            .get("labelSelector")
            .map(|s| LabelSelector::parse(s))
            .transpose()
            .map_err(ApiError::bad_request)?,
        fields: q
            .get("fieldSelector")
            .map(|s| FieldSelector::parse(s, p.ty.kind))
            .transpose()
            .map_err(ApiError::bad_request)?,
    };
    let bookmarks = matches!(
        q.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let send_initial = matches!(
        q.get("sendInitialEvents").map(String::as_str),
        Some("true" | "1")
    );
    let timeout = match q.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t:?}")))?,
        ),
        None => DEFAULT_TIMEOUT,
    };
    let from: Option<u64> = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?,
        ),
    };
    let mut initial: Vec<Bytes> = Vec::new();
    let (rx, start_rv, interval, stop, mut epoch) = {
        let st = shared.lock();
        if st.watches_down {
            return Err(ApiError::new(
                503,
                "watches are unavailable: the watch cache is re-initialising",
            ));
        }
        let mut epoch = shared.subscribe_watch_epoch();
        epoch.borrow_and_update();
        let rx = st.subscribe();
        let mut ended = false;
        match from {
            Some(rv) if !send_initial => match st.history_since(stored, None, rv) {
                Ok(recs) => initial.extend(recs.iter().filter_map(|r| {
                    filter
                        .event(r)
                        .map(|kind| line(kind, &filter.out(&r.object)))
                })),
                Err(floor) => {
                    initial.push(line("ERROR", &gone(rv, floor)));
                    ended = true;
                }
            },
            _ => {
                // No resourceVersion ("start at most recent") or sendInitialEvents: the
                // current state as synthetic ADDED events first.
                for o in st.list(stored, p.namespace.as_deref(), None, None) {
                    if filter.selects(&o) {
                        initial.push(line("ADDED", &filter.out(&o)));
                    }
                }
                if send_initial && bookmarks {
                    initial.push(line("BOOKMARK", &bookmark(p.ty, st.rv, true)));
                }
            }
        }
        (rx, st.rv, st.bookmark_interval, ended, epoch)
    };
    let (tx, body_rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut shutdown = shared.subscribe_shutdown();
    let ty = p.ty;
    tokio::spawn(async move {
        for l in initial {
            if tx.send(Ok(l)).await.is_err() {
                return;
            }
        }
        if stop {
            return;
        }
        let mut rx: broadcast::Receiver<Arc<WatchRecord>> = rx;
        let mut last_rv = start_rv;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let stopped = async move {
            let _ = shutdown.wait_for(|s| *s).await.map(|_| ());
        };
        tokio::pin!(stopped);
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
        tick.tick().await;
        loop {
            let out = tokio::select! {
                // Checked first: a watch interrupted before a change never carries it.
                biased;
                _ = epoch.changed() => return,
                _ = &mut deadline => return,
                _ = &mut stopped => return,
                _ = tick.tick(), if bookmarks => Some(line("BOOKMARK", &bookmark(ty, last_rv, false))),
                r = rx.recv() => match r {
                    Ok(rec) => {
                        if rec.rv <= last_rv {
                            None
                        } else {
                            last_rv = rec.rv;
                            filter.event(&rec).map(|kind| line(kind, &filter.out(&rec.object)))
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(Ok(line("ERROR", &gone(last_rv, last_rv + 1)))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if let Some(l) = out
                && tx.send(Ok(l)).await.is_err()
            {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body_rx));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache, private"),
        ],
        body,
    )
        .into_response())
}
