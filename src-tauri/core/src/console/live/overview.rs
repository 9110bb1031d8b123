//! The Overview's live side: the cards of each profile and track (readiness, versions and
//! freeze as the scrape loops last read them, numbers from the series), and the loop that
//! follows the profile list, re-reads the key's roles, keeps the history in bounds and
//! pushes `overview_event`.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::scrape::ScrapeLoops;
use super::{DEFAULT_TRACK, Health, Known, MAX_CONCURRENT_READS, track_order};
use crate::alerts::{self, Thresholds};
use crate::console::dto::*;
use crate::console::{CmdResult, Console, lock, map};
use crate::series::{Metric, Point, SeriesStore, Window};

/// Scrapes between two reads of the key's roles.
const PERMISSIONS_EVERY: u64 = 12;
/// Scrapes between two thinnings of the history (about an hour at 5 s).
const HOUSEKEEPING_EVERY: u64 = 720;
/// History older than this is thinned to one point per [`HISTORY_BUCKET_MS`].
const KEEP_FULL_MS: i64 = 3_600_000;
const HISTORY_BUCKET_MS: i64 = 60_000;
const SERVICE: &str = "agent-service";

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

/// The cards of one profile: one per track it is known to carry (its own track, or
/// `stable`, before anything was read), with the window's numbers from the series.
pub(super) fn cards(
    profile_id: &str,
    known: &Known,
    series: &SeriesStore,
    window: ChartWindow,
    now_ms: i64,
) -> Vec<ServiceCard> {
    let own = if known.track.is_empty() {
        DEFAULT_TRACK
    } else {
        known.track.as_str()
    };
    let mut tracks = known.tracks.clone();
    if !tracks.iter().any(|t| t == own) {
        tracks.push(own.to_string());
        tracks.sort_by(|a, b| track_order(a).cmp(&track_order(b)));
    }
    let health = known.health.clone().unwrap_or_else(Health::down);
    let error = match (&known.health, &known.error) {
        (_, Some(e)) => Some(e.clone()),
        (None, None) => Some("not read yet".to_string()),
        (Some(_), None) => None,
    };
    tracks
        .into_iter()
        .map(|track| {
            let is_own = track == own;
            let badges = alerts::evaluate(
                &series.window_stats(profile_id, &track, now_ms),
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
            let versions = if is_own { known.versions.clone() } else { None }
                .or_else(|| known.track_versions.get(&track).cloned())
                .unwrap_or_default();
            ServiceCard {
                profile_id: profile_id.to_string(),
                service: SERVICE.into(),
                stats: stats(
                    series,
                    profile_id,
                    &track,
                    map::chart_window(window),
                    now_ms,
                ),
                url: known.url.clone().unwrap_or_default(),
                live: health.live,
                readiness: health.readiness,
                checks: health.checks.clone(),
                circuits: health.circuits.clone(),
                badges,
                versions,
                changes: if is_own {
                    known.changes.clone()
                } else {
                    Vec::new()
                },
                frozen: known.frozen.unwrap_or(false),
                scraped_at_ms,
                error: error.clone(),
                track,
            }
        })
        .collect()
}

impl Console {
    /// One profile's cards after a fresh probe (for the incident pack).
    pub(in crate::console) async fn profile_cards(
        &self,
        profile_id: &str,
        window: ChartWindow,
    ) -> Vec<ServiceCard> {
        self.refresh_within(profile_id, false).await;
        let now = self.now_ms();
        let series = self.inner.series.lock().await;
        let known = lock(&self.inner.state)
            .known
            .get(profile_id)
            .cloned()
            .unwrap_or_default();
        cards(profile_id, &known, &series, window, now)
    }

    /// Every agent-service profile's cards, the active profile's first, as the scrape loops
    /// last left them. With `probe`, a profile never read yet (just added, or its loop not
    /// started) is read first: readiness, versions and freeze, at most
    /// [`MAX_CONCURRENT_READS`] at a time, each within the read time limit.
    pub(in crate::console) async fn overview(
        &self,
        window: ChartWindow,
        probe: bool,
    ) -> CmdResult<Overview> {
        use futures::StreamExt as _;
        let ids = self.agent_profiles().await?;
        if probe {
            let unread: Vec<&String> = {
                let st = lock(&self.inner.state);
                ids.iter()
                    .filter(|id| st.known.get(*id).is_none_or(|k| k.health.is_none()))
                    .collect()
            };
            futures::stream::iter(unread)
                .for_each_concurrent(MAX_CONCURRENT_READS, |id| self.refresh_within(id, false))
                .await;
        }
        let now = self.now_ms();
        let series = self.inner.series.lock().await;
        let known: Vec<Known> = {
            let st = lock(&self.inner.state);
            ids.iter()
                .map(|id| st.known.get(id).cloned().unwrap_or_default())
                .collect()
        };
        let services = ids
            .iter()
            .zip(&known)
            .flat_map(|(id, k)| cards(id, k, &series, window, now))
            .collect();
        drop(series);
        Ok(Overview {
            window,
            services,
            generated_at_ms: now,
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
}

/// Every scrape interval: follows the profile list (a scrape loop per agent-service
/// profile), re-reads the key's roles now and then, keeps the history in bounds, and pushes
/// `overview_event` with every profile's cards as the scrape loops left them.
pub(super) async fn overview_loop(console: Console) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_READS));
    let mut loops = ScrapeLoops::default();
    let mut pushed_empty = false;
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
        match console.agent_profiles().await {
            Ok(ids) => loops.sync(&console, &ids, &permits),
            Err(e) => tracing::warn!(error = %e.message, "the profiles could not be listed"),
        }
        // The first tick only starts the loops: nothing has been read yet.
        if n == 0 {
            continue;
        }
        let window = lock(&console.inner.state).overview_window;
        match console.overview(window, false).await {
            // Without any service, one empty push says so; repeating it says nothing.
            Ok(o) if o.services.is_empty() && pushed_empty => {}
            Ok(o) => {
                pushed_empty = o.services.is_empty();
                console.emit("overview_event", &o);
            }
            Err(e) => tracing::debug!(error = %e.message, "overview failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::scrape::tests::TWO_TRACKS;
    use super::super::scrape::{build_versions, split_by_track};
    use super::*;
    use crate::series::SeriesConfig;

    #[test]
    fn cards_per_track_and_for_a_service_never_read() {
        let s = SeriesStore::new(SeriesConfig::default());
        let never = cards("p", &Known::default(), &s, ChartWindow::M5, 1_000);
        assert_eq!(never.len(), 1);
        assert_eq!(never[0].track, "stable");
        assert!(!never[0].live);
        assert_eq!(never[0].error.as_deref(), Some("not read yet"));

        let mut s = SeriesStore::new(SeriesConfig::default());
        let scrape = crate::prom::parse(TWO_TRACKS).unwrap();
        // Two scrapes: rates need the previous one.
        for t_ms in [1_000, 1_500] {
            for (track, part) in split_by_track(&scrape, Some("stable")) {
                s.ingest("p", &track, t_ms, &part);
            }
        }
        let own = VersionSet {
            release: "1.8.0".into(),
            ..VersionSet::default()
        };
        let known = Known {
            track: "stable".into(),
            versions: Some(own.clone()),
            changes: vec![VersionChange {
                field: VersionField::Release,
                from: "1.7.0".into(),
                to: "1.8.0".into(),
                at_ms: 500,
            }],
            tracks: vec!["stable".into(), "canary".into()],
            track_versions: build_versions(&scrape),
            url: Some("http://svc/".into()),
            health: Some(Health {
                live: true,
                readiness: ReadyState::Ready,
                checks: vec![],
                circuits: vec![],
            }),
            frozen: Some(true),
            error: None,
        };
        let c = cards("p", &known, &s, ChartWindow::M5, 2_000);
        let tracks: Vec<&str> = c.iter().map(|c| c.track.as_str()).collect();
        assert_eq!(tracks, ["stable", "canary"]);
        assert_eq!(c[0].versions, own);
        assert_eq!(c[0].changes.len(), 1);
        assert_eq!(c[1].versions.release, "1.9.0");
        assert!(c[1].changes.is_empty(), "what changed is the own track's");
        assert_eq!(c[0].stats.pending_approvals, Some(3.0));
        assert_eq!(c[1].stats.pending_approvals, None);
        assert!(c.iter().all(|c| c.live && c.frozen && c.error.is_none()));
        assert!(
            c.iter()
                .all(|c| c.url == "http://svc/" && c.scraped_at_ms.is_some())
        );
    }

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
