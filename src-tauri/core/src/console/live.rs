//! The console's live side: the background tasks of the active profile (a scrape loop that
//! feeds the series and the history and pushes `overview_event`; the approval event stream
//! relayed as `approval_event` with a desktop notification for new requests; a permissions
//! refresh), the Overview cards and charts built from them, eval progress, incident packs.

use std::time::Duration;

use serde_json::json;

use super::dto::*;
use super::{CmdResult, Console, lock, map, write_atomic};
use crate::agent::{AgentClient, ApprovalEventKind, StreamConfig, StreamItem};
use crate::alerts::{self, Thresholds};
use crate::chart::{self, ChartSpec};
use crate::series::{Metric, Point, SeriesKey, SeriesStore, Window};

/// What the console last learned about a profile's service.
#[derive(Debug, Clone, Default)]
pub(super) struct Known {
    pub track: String,
    pub versions: Option<VersionSet>,
    /// Newest first, at most [`MAX_CHANGES`].
    pub changes: Vec<VersionChange>,
}

const MAX_CHANGES: usize = 20;
/// Scrapes between two reads of the key's roles.
const PERMISSIONS_EVERY: u64 = 12;
/// Scrapes between two thinnings of the history (about an hour at 5 s).
const HOUSEKEEPING_EVERY: u64 = 720;
/// History older than this is thinned to one point per [`HISTORY_BUCKET_MS`].
const KEEP_FULL_MS: i64 = 3_600_000;
const HISTORY_BUCKET_MS: i64 = 60_000;
const SERVICE: &str = "agent-service";

/// The charts the Overview shows per service and track, with their alert thresholds.
const CHARTS: [(Metric, Option<f64>); 8] = [
    (Metric::RequestRate, None),
    (Metric::ErrorRate, Some(0.01)),
    (Metric::LatencyP50, None),
    (Metric::LatencyP99, Some(30.0)),
    (Metric::TokensPerSecond, None),
    (Metric::CostPerHour, None),
    (Metric::QueueDepth, Some(100.0)),
    (Metric::ApprovalsPending, None),
];

fn mean(points: &[Point]) -> Option<f64> {
    (!points.is_empty()).then(|| points.iter().map(|p| p.v).sum::<f64>() / points.len() as f64)
}

/// The card's numbers over `window` ending at `now_ms`, from the series of `key`/`track`.
pub(super) fn stats(
    series: &SeriesStore,
    key: &str,
    track: &str,
    window: Window,
    now_ms: i64,
) -> ServiceStats {
    let pts = |m| series.window(key, track, m, window, now_ms);
    let last = |m| pts(m).last().map(|p: &Point| p.v);
    let rates = pts(Metric::RequestRate);
    // The window's error rate is errors / requests: each interval weighted by its traffic.
    let (mut weight, mut errors) = (0.0, 0.0);
    for e in pts(Metric::ErrorRate) {
        if let Some(r) = rates.iter().find(|r| r.t_ms == e.t_ms) {
            weight += r.v;
            errors += r.v * e.v;
        }
    }
    let interval_ms = series.config().scrape_interval.as_millis() as f64;
    let blocks = pts(Metric::GuardrailBlockRate);
    let guardrail_blocks = (!blocks.is_empty()).then(|| {
        let mut prev_t = None;
        blocks
            .iter()
            .map(|p| {
                let dt = prev_t.map_or(interval_ms, |t| (p.t_ms - t) as f64);
                prev_t = Some(p.t_ms);
                p.v * dt / 1000.0
            })
            .sum::<f64>()
            .round()
    });
    ServiceStats {
        request_rate: mean(&rates),
        error_rate: (weight > 0.0).then(|| errors / weight),
        p50_ms: last(Metric::LatencyP50).map(|s| s * 1000.0),
        p95_ms: last(Metric::LatencyP95).map(|s| s * 1000.0),
        p99_ms: last(Metric::LatencyP99).map(|s| s * 1000.0),
        tokens_per_sec: mean(&pts(Metric::TokensPerSecond)),
        cost_per_hour_usd: mean(&pts(Metric::CostPerHour)),
        queue_depth: last(Metric::QueueDepth),
        pending_approvals: last(Metric::ApprovalsPending),
        guardrail_blocks,
    }
}

impl Console {
    /// Stops the live tasks of the previous profile and starts those of the active one.
    pub(super) fn restart_live(&self) {
        let active = {
            let mut st = lock(&self.inner.state);
            for t in st.tasks.drain(..) {
                t.abort();
            }
            st.permissions = None;
            st.freeze = None;
            st.stream_live = false;
            st.persisted.active_id.clone()
        };
        let perms = {
            let c = self.clone();
            tokio::spawn(async move {
                let _ = c.get_permissions().await;
            })
        };
        let mut tasks = vec![perms];
        if let Some(id) = active {
            tasks.push(tokio::spawn(scrape_loop(self.clone(), id.clone())));
            tasks.push(tokio::spawn(approval_loop(self.clone(), id)));
        }
        lock(&self.inner.state).tasks.extend(tasks);
    }

    fn still_active(&self, profile_id: &str) -> bool {
        lock(&self.inner.state).persisted.active_id.as_deref() == Some(profile_id)
    }

    /// Reads `/v1/info`, records version changes; the profile's track.
    async fn learn(&self, profile_id: &str, client: &AgentClient) -> Option<String> {
        let info = client.info().await.ok()?;
        let now = self.now_ms();
        let versions = map::version_set(&info);
        let mut st = lock(&self.inner.state);
        let known = st.known.entry(profile_id.to_string()).or_default();
        known.track = info.track.clone();
        if let Some(prev) = &known.versions {
            let mut fresh = map::version_changes(prev, &versions, now);
            fresh.append(&mut known.changes);
            fresh.truncate(MAX_CHANGES);
            known.changes = fresh;
        }
        known.versions = Some(versions);
        Some(info.track)
    }

    async fn card(&self, profile_id: &str, window: ChartWindow) -> CmdResult<ServiceCard> {
        let client = self.client_of(profile_id, "admin").await?;
        let (ready, track, freeze) = tokio::join!(
            client.readyz(),
            self.learn(profile_id, &client),
            client.freeze_state()
        );
        let (live, readiness, checks, circuits) = match ready {
            Ok(r) => {
                let readiness = match r.status {
                    crate::agent::ReadyState::Ready => ReadyState::Ready,
                    crate::agent::ReadyState::Degraded => ReadyState::Degraded,
                    crate::agent::ReadyState::Unavailable => ReadyState::Unavailable,
                };
                let checks = r
                    .checks
                    .iter()
                    .map(|(name, c)| DependencyCheck {
                        name: name.clone(),
                        status: map::dependency_status(&c.status),
                        detail: c.detail.clone(),
                    })
                    .collect();
                let circuits = map::circuit_state(&r.circuit)
                    .map(|state| {
                        vec![Circuit {
                            dependency: "provider".into(),
                            state,
                        }]
                    })
                    .unwrap_or_default();
                (true, readiness, checks, circuits)
            }
            // It answered, with an error status: alive but not ready.
            Err(e) if e.api().is_some() => (true, ReadyState::Unavailable, vec![], vec![]),
            Err(_) => (false, ReadyState::Unavailable, vec![], vec![]),
        };
        let frozen = match freeze {
            Ok(f) => {
                let f = map::freeze_state(&f);
                self.freeze_seen(&f);
                f.frozen
            }
            Err(_) => lock(&self.inner.state)
                .freeze
                .as_ref()
                .is_some_and(|f| f.frozen),
        };
        let known = lock(&self.inner.state)
            .known
            .get(profile_id)
            .cloned()
            .unwrap_or_default();
        let track = track.unwrap_or_else(|| {
            if known.track.is_empty() {
                "stable".into()
            } else {
                known.track.clone()
            }
        });
        let now = self.now_ms();
        let series = self.inner.series.lock().await;
        let stats = stats(&series, profile_id, &track, map::chart_window(window), now);
        let badges = alerts::evaluate(
            &series.window_stats(profile_id, &track, now),
            &Thresholds::default(),
            "5 min",
        )
        .iter()
        .map(map::badge)
        .collect();
        let scraped_at_ms = Metric::ALL
            .iter()
            .filter_map(|m| series.latest(profile_id, &track, *m))
            .map(|p| p.t_ms)
            .max();
        drop(series);
        Ok(ServiceCard {
            profile_id: profile_id.to_string(),
            service: SERVICE.into(),
            track,
            url: client.base().to_string(),
            live,
            readiness,
            checks,
            stats,
            circuits,
            badges,
            versions: known.versions.unwrap_or_default(),
            changes: known.changes,
            frozen,
            scraped_at_ms,
        })
    }

    pub(super) async fn overview(&self, window: ChartWindow) -> CmdResult<Overview> {
        let services = match self.active_id() {
            Some(id) => vec![self.card(&id, window).await?],
            None => Vec::new(),
        };
        Ok(Overview {
            window,
            services,
            generated_at_ms: self.now_ms(),
        })
    }

    /// Keeps the history within the retention setting and thins what is older than an
    /// hour to one point a minute.
    async fn housekeeping(&self) -> CmdResult<()> {
        let retention_ms = (self.get_settings().await?.retention_hours * 3_600_000.0) as i64;
        let now = self.now_ms();
        let store = &self.inner.host.store;
        store.prune(now - retention_ms).await?;
        store
            .downsample_history(now - KEEP_FULL_MS, HISTORY_BUCKET_MS)
            .await?;
        Ok(())
    }

    /// Scrapes `/metrics` into the series (without holding them during the request) and the
    /// local store's history.
    async fn scrape_once(
        &self,
        profile_id: &str,
        client: &AgentClient,
        track: &str,
    ) -> crate::Result<()> {
        let scrape = client.metrics().await?;
        let t_ms = self.now_ms();
        let derived = self
            .inner
            .series
            .lock()
            .await
            .ingest(profile_id, track, t_ms, &scrape);
        for (metric, v) in derived {
            let key = SeriesKey {
                service: profile_id.to_string(),
                track: track.to_string(),
                metric,
            };
            self.inner
                .host
                .store
                .append_points(&key, &[Point { t_ms, v }])
                .await?;
        }
        Ok(())
    }
}

async fn scrape_loop(console: Console, profile_id: String) {
    let mut tick = tokio::time::interval(console.inner.options.scrape_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tick.tick().await;
        // The key's roles may change on the server: re-read them about once a minute.
        if n > 0 && n % PERMISSIONS_EVERY == 0 {
            let _ = console.get_permissions().await;
        }
        if n % HOUSEKEEPING_EVERY == 0
            && let Err(e) = console.housekeeping().await
        {
            tracing::warn!(error = %e.message, "history housekeeping failed");
        }
        let client = match console.client_of(&profile_id, "admin").await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(profile = %profile_id, error = %e.message, "no client to scrape");
                continue;
            }
        };
        let known = lock(&console.inner.state)
            .known
            .get(&profile_id)
            .map(|k| k.track.clone())
            .filter(|t| !t.is_empty());
        let track = match known {
            Some(t) => Some(t),
            None => console.learn(&profile_id, &client).await,
        };
        if let Some(track) = &track
            && let Err(e) = console.scrape_once(&profile_id, &client, track).await
        {
            tracing::debug!(profile = %profile_id, error = %e, "scrape failed");
        }
        let window = lock(&console.inner.state).overview_window;
        match console.overview(window).await {
            Ok(o) if console.still_active(&profile_id) => console.emit("overview_event", &o),
            Ok(_) => return,
            Err(e) => tracing::debug!(error = %e.message, "overview failed"),
        }
    }
}

async fn approval_loop(console: Console, profile_id: String) {
    let client = match console.client_of(&profile_id, "admin").await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(profile = %profile_id, error = %e.message, "no approval stream");
            return;
        }
    };
    // Back on a profile seen before: resume after its last event (`Last-Event-ID`), so the
    // queue the UI shows misses nothing that happened meanwhile.
    let resume = lock(&console.inner.state)
        .last_event
        .get(&profile_id)
        .copied();
    let mut events = client.approval_events(resume, StreamConfig::default());
    while let Some(item) = events.next().await {
        let set_live = |live: bool| lock(&console.inner.state).stream_live = live;
        match item {
            Ok(StreamItem::Connected { .. }) => set_live(true),
            Ok(StreamItem::Event(ev)) => {
                lock(&console.inner.state)
                    .last_event
                    .insert(profile_id.clone(), ev.seq);
                let approval = match client.approval(&ev.approval_id).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(approval = %ev.approval_id, error = %e, "event without its approval");
                        continue;
                    }
                };
                let summary = match map::approval_summary(&approval) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e.message, "approval not understood");
                        continue;
                    }
                };
                if !console.still_active(&profile_id) {
                    return;
                }
                if ev.kind == ApprovalEventKind::Created
                    && summary.status == ApprovalStatus::Pending
                {
                    console.inner.sink.notify(
                        "Approval waiting",
                        &format!(
                            "{} wants {} on {} (risk tier {})",
                            summary.workflow, summary.tool, summary.resource, summary.risk_tier
                        ),
                    );
                }
                console.emit(
                    "approval_event",
                    &ApprovalEvent {
                        kind: map::approval_event_kind(&ev.kind),
                        approval: summary,
                    },
                );
            }
            Ok(StreamItem::Malformed { id, error }) => {
                tracing::warn!(?id, %error, "malformed approval event skipped");
            }
            Ok(StreamItem::Reconnecting { error, retry_in }) => {
                set_live(false);
                tracing::debug!(%error, ?retry_in, "approval stream reconnecting");
            }
            Err(e) => {
                set_live(false);
                tracing::warn!(error = %e, "approval stream ended");
                return;
            }
        }
    }
}

/// Follows an eval run, pushing `eval_progress` on every change and once at the end.
pub(super) fn follow_eval(console: &Console, client: AgentClient, run_id: String) {
    let c = console.clone();
    let task = tokio::spawn(async move {
        let mut last: Option<EvalProgressEvent> = None;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            match client.eval_run(&run_id).await {
                Ok(run) => {
                    let d = map::eval_detail(&run);
                    let ev = EvalProgressEvent {
                        run_id: run_id.clone(),
                        status: d.summary.status,
                        done: d.summary.done,
                        total: d.summary.total,
                        pass_rate: d.summary.pass_rate,
                    };
                    if last.as_ref() != Some(&ev) {
                        c.emit("eval_progress", &ev);
                    }
                    if matches!(ev.status, EvalRunState::Completed | EvalRunState::Failed) {
                        return;
                    }
                    last = Some(ev);
                }
                Err(e) if e.code().is_transient() => {}
                Err(e) => {
                    tracing::warn!(run = %run_id, error = %e, "stopped following the eval run");
                    return;
                }
            }
        }
    });
    lock(&console.inner.state).tasks.push(task);
}

/// Writes the incident pack (JSON): the freeze, versions, recent failing traces with their
/// spans, the current metrics text and the Overview card. Everything in it comes from the
/// service already redacted; no key is in it.
pub(super) async fn incident_pack(
    console: &Console,
    profile_id: &str,
    client: &AgentClient,
    freeze: &FreezeState,
    reason: &str,
) -> CmdResult<String> {
    let now = console.now_ms();
    let failing = client
        .traces(&crate::agent::TraceQuery {
            errors_only: true,
            limit: Some(50),
            ..Default::default()
        })
        .await;
    let mut traces = Vec::new();
    if let Ok(page) = &failing {
        for t in page.items.iter().take(10) {
            if let Ok(full) = client.trace(&t.trace_id).await {
                traces.push(full);
            }
        }
    }
    let info = client.info().await;
    let metrics = client.metrics_text().await;
    let card = console.card(profile_id, ChartWindow::M15).await.ok();
    let pack = json!({
        "kind": "flightdeck-incident-pack",
        "created_at_ms": now,
        "profile_id": profile_id,
        "url": client.base().to_string(),
        "reason": reason,
        "freeze": freeze,
        "versions": info.as_ref().map_or_else(|e| json!({ "error": e.to_string() }), |i| json!(i)),
        "failing_traces": failing.as_ref().map_or_else(|e| json!({ "error": e.to_string() }), |p| json!(p.items)),
        "failing_trace_details": traces,
        "overview": card,
        "metrics_text": metrics.unwrap_or_else(|e| format!("# metrics unavailable: {e}")),
    });
    let stamp = chrono::DateTime::from_timestamp_millis(now)
        .map(|t| t.format("%Y%m%d-%H%M%S").to_string())
        .unwrap_or_else(|| now.to_string());
    let path = console
        .inner
        .options
        .export_dir
        .join(format!("flightdeck-incident-{profile_id}-{stamp}.json"));
    let raw = serde_json::to_vec_pretty(&pack)
        .map_err(|e| CommandError::new(CommandErrorCode::Storage, e.to_string()))?;
    write_atomic(&path, &raw)?;
    Ok(path.display().to_string())
}

/// The Overview charts of one profile and track over a window (series in memory, else the
/// local store's history).
pub(super) async fn charts(console: &Console, args: &ChartArgs) -> CmdResult<Vec<Chart>> {
    if !console.profile_exists(&args.profile_id).await? {
        return Err(CommandError::not_found(format!(
            "No profile {}",
            args.profile_id
        )));
    }
    let window = map::chart_window(args.window);
    let now = console.now_ms();
    let since = now - window.duration().as_millis() as i64;
    let mut data: Vec<(Metric, Option<f64>, Vec<Point>)> = {
        let series = console.inner.series.lock().await;
        CHARTS
            .iter()
            .map(|(m, t)| {
                (
                    *m,
                    *t,
                    series.window(&args.profile_id, &args.track, *m, window, now),
                )
            })
            .collect()
    };
    for (metric, _, points) in &mut data {
        if points.is_empty() {
            let key = SeriesKey {
                service: args.profile_id.clone(),
                track: args.track.clone(),
                metric: *metric,
            };
            *points = console
                .inner
                .host
                .store
                .points(&key, since, now + 1)
                .await?;
        }
    }
    data.into_iter()
        .map(|(metric, threshold, points)| {
            let spec = ChartSpec {
                threshold,
                range_ms: Some((since, now)),
                dark: args.theme == Theme::Dark,
                ..ChartSpec::new(metric.title(), metric.unit())
            };
            Ok(Chart {
                metric: metric.as_str().to_string(),
                title: metric.title().to_string(),
                svg: chart::render_svg(&points, &spec)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::SeriesConfig;

    #[test]
    fn stats_of_an_empty_series_are_null() {
        let s = SeriesStore::new(SeriesConfig::default());
        assert_eq!(
            stats(&s, "local", "stable", Window::M5, 1_000_000),
            ServiceStats::default()
        );
    }

    #[test]
    fn stats_weight_error_rate_by_traffic_and_count_blocks() {
        let mut s = SeriesStore::new(SeriesConfig {
            scrape_interval: Duration::from_secs(10),
            ..SeriesConfig::default()
        });
        let scrape = |req_ok: u64, req_err: u64, blocks: u64| {
            crate::prom::parse(&format!(
                "# TYPE agent_requests_total counter\n\
                 agent_requests_total{{status=\"success\"}} {req_ok}\n\
                 agent_requests_total{{status=\"internal\"}} {req_err}\n\
                 # TYPE agent_guardrail_blocks_total counter\n\
                 agent_guardrail_blocks_total {blocks}\n\
                 # TYPE agent_approvals_pending gauge\nagent_approvals_pending 3\n"
            ))
            .unwrap()
        };
        s.ingest("p", "stable", 0, &scrape(0, 0, 0));
        // 10 s: 100 requests, none failing; 10 s: 10 requests, 5 failing; 4 blocks in all.
        s.ingest("p", "stable", 10_000, &scrape(100, 0, 2));
        s.ingest("p", "stable", 20_000, &scrape(105, 5, 4));
        let st = stats(&s, "p", "stable", Window::M5, 20_000);
        assert_eq!(st.request_rate, Some((10.0 + 1.0) / 2.0));
        let err = st.error_rate.unwrap();
        assert!((err - 5.0 / 110.0).abs() < 1e-9, "{err}");
        assert_eq!(st.guardrail_blocks, Some(4.0));
        assert_eq!(st.pending_approvals, Some(3.0));
        assert_eq!(st.p99_ms, None, "no histogram, no latency");
    }
}
