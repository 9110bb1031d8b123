//! The console's live side: the background tasks (a scrape loop per agent-service profile,
//! the Local one included, that feeds the series and the history, and one loop that pushes
//! `overview_event` with every profile's cards; for the active profile, the approval event
//! stream relayed as `approval_event` with a desktop notification for new requests and a
//! permissions refresh), the Overview cards and charts built from them, eval progress,
//! incident packs.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::dto::*;
use super::{CmdResult, Console, LOCAL_PROFILE_ID, lock, map, write_atomic};
use crate::agent::{AgentClient, ApprovalEventKind, StreamConfig, StreamItem};
use crate::alerts::{self, Thresholds};
use crate::chart::{self, ChartSpec};
use crate::prom::PromScrape;
use crate::series::{Metric, Point, SeriesKey, SeriesStore, Window};
use crate::store::Target;

/// What the console last learned about a profile's service.
#[derive(Debug, Clone, Default)]
pub(super) struct Known {
    /// The track the service reports for itself (`/v1/info`); empty until read.
    pub track: String,
    pub versions: Option<VersionSet>,
    /// Newest first, at most [`MAX_CHANGES`].
    pub changes: Vec<VersionChange>,
    /// The tracks the last scrape's metrics carried, in card order.
    pub tracks: Vec<String>,
    /// The versions of each track, from the `agent_build_info` labels.
    pub track_versions: HashMap<String, VersionSet>,
    pub url: Option<String>,
    /// The last readiness probe; `None` before the first.
    pub health: Option<Health>,
    pub frozen: Option<bool>,
    /// Why the last read failed; `None` after one that worked.
    pub error: Option<String>,
}

/// What the last `/readyz` said.
#[derive(Debug, Clone)]
pub(super) struct Health {
    live: bool,
    readiness: ReadyState,
    checks: Vec<DependencyCheck>,
    circuits: Vec<Circuit>,
}

impl Health {
    fn down() -> Self {
        Self {
            live: false,
            readiness: ReadyState::Unavailable,
            checks: Vec::new(),
            circuits: Vec::new(),
        }
    }
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
/// Services read at the same time; the others wait for a permit, never for a dead one
/// longer than the read's time limit.
const MAX_CONCURRENT_READS: usize = 4;
/// The track of a service that never said which it runs (agent-service's default).
const DEFAULT_TRACK: &str = "stable";

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

/// Card order of tracks: stable, canary, then the others by name.
fn track_order(track: &str) -> (u8, &str) {
    match track {
        "stable" => (0, track),
        "canary" => (1, track),
        _ => (2, track),
    }
}

/// The tracks the samples of `scrape` are labelled with, in card order.
fn tracks_of(scrape: &PromScrape) -> Vec<String> {
    let set: BTreeSet<&str> = scrape
        .families
        .iter()
        .flat_map(|f| f.samples.iter())
        .filter_map(|s| s.labels.get("track"))
        .filter(|t| !t.is_empty())
        .collect();
    let mut tracks: Vec<String> = set.into_iter().map(str::to_string).collect();
    tracks.sort_by(|a, b| track_order(a).cmp(&track_order(b)));
    tracks
}

/// Splits a scrape by track. A sample labelled with a track belongs to it; a sample
/// without a `track` label (the latency histogram, tokens, cost, gauges) belongs to the
/// service's own track `own` (`/v1/info`; else `agent_build_info`'s; else the first), since
/// one process runs one track. The own track always has a part, even an empty one.
pub(super) fn split_by_track(scrape: &PromScrape, own: Option<&str>) -> Vec<(String, PromScrape)> {
    let mut tracks = tracks_of(scrape);
    let own = own
        .filter(|t| !t.is_empty())
        .or_else(|| {
            scrape
                .labels_of("agent_build_info")
                .and_then(|l| l.get("track"))
        })
        .map(str::to_string)
        .or_else(|| tracks.first().cloned())
        .unwrap_or_else(|| DEFAULT_TRACK.to_string());
    if !tracks.contains(&own) {
        tracks.push(own.clone());
        tracks.sort_by(|a, b| track_order(a).cmp(&track_order(b)));
    }
    tracks
        .into_iter()
        .map(|track| {
            let mine = track == own;
            let families = scrape
                .families
                .iter()
                .filter_map(|f| {
                    let samples: Vec<_> = f
                        .samples
                        .iter()
                        .filter(|s| s.labels.get("track").map_or(mine, |t| t == track))
                        .cloned()
                        .collect();
                    (!samples.is_empty()).then(|| crate::prom::Family {
                        name: f.name.clone(),
                        kind: f.kind,
                        help: f.help.clone(),
                        unit: f.unit.clone(),
                        samples,
                    })
                })
                .collect();
            let part = PromScrape {
                families,
                openmetrics_eof: scrape.openmetrics_eof,
            };
            (track, part)
        })
        .collect()
}

/// Each track's versions from the `agent_build_info` labels.
fn build_versions(scrape: &PromScrape) -> HashMap<String, VersionSet> {
    let Some(f) = scrape.family("agent_build_info") else {
        return HashMap::new();
    };
    f.samples
        .iter()
        .filter_map(|s| {
            let l = |n: &str| s.labels.get(n).unwrap_or_default().to_string();
            let track = s.labels.get("track")?.to_string();
            Some((
                track,
                VersionSet {
                    release: l("version"),
                    git_sha: l("git_sha"),
                    model: l("model"),
                    prompt: l("prompt_version"),
                    policy: l("policy_version"),
                },
            ))
        })
        .collect()
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
    /// Stops the live tasks of the previous profile and starts those of the active one,
    /// and the scrape loops of every agent-service profile.
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
        let mut tasks = vec![perms, tokio::spawn(overview_loop(self.clone()))];
        if let Some(id) = active {
            tasks.push(tokio::spawn(approval_loop(self.clone(), id)));
        }
        lock(&self.inner.state).tasks.extend(tasks);
    }

    fn still_active(&self, profile_id: &str) -> bool {
        lock(&self.inner.state).persisted.active_id.as_deref() == Some(profile_id)
    }

    /// The agent-service profiles (Local while it runs, then the stored ones), the active
    /// one first.
    pub(super) async fn agent_profiles(&self) -> CmdResult<Vec<String>> {
        let mut ids = Vec::new();
        if self.local_running() {
            ids.push(LOCAL_PROFILE_ID.to_string());
        }
        for p in self.inner.host.store.profiles().await? {
            if matches!(p.target, Target::Agent { .. }) {
                ids.push(p.id.to_string());
            }
        }
        if let Some(active) = self.active_id()
            && let Some(i) = ids.iter().position(|id| *id == active)
        {
            let id = ids.remove(i);
            ids.insert(0, id);
        }
        Ok(ids)
    }

    /// How long one read of a service may take before it counts as failed.
    fn read_timeout(&self) -> Duration {
        (self.inner.options.scrape_interval * 2)
            .clamp(Duration::from_secs(2), Duration::from_secs(10))
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

    /// [`Console::refresh`] within the read time limit; past it the service counts as down.
    async fn refresh_within(&self, profile_id: &str, scrape: bool) {
        let limit = self.read_timeout();
        if tokio::time::timeout(limit, self.refresh(profile_id, scrape))
            .await
            .is_err()
        {
            let mut st = lock(&self.inner.state);
            let k = st.known.entry(profile_id.to_string()).or_default();
            let what = k
                .url
                .clone()
                .unwrap_or_else(|| format!("profile {profile_id}"));
            k.health = Some(Health::down());
            k.error = Some(format!(
                "{what} did not answer within {} ms",
                limit.as_millis()
            ));
        }
    }

    /// Reads one profile's service: readiness, versions, the freeze and, with `scrape`,
    /// `/metrics` into the series (split by track) and the history. What failed becomes the
    /// profile's error; a probe without `scrape` does not clear the last scrape's error.
    async fn refresh(&self, profile_id: &str, scrape: bool) {
        let client = match self.client_of(profile_id, "admin").await {
            Ok(c) => c,
            Err(e) => {
                let mut st = lock(&self.inner.state);
                let k = st.known.entry(profile_id.to_string()).or_default();
                k.health = Some(Health::down());
                k.error = Some(e.message);
                return;
            }
        };
        // Known before the service answers (or does not), for the card and the errors.
        lock(&self.inner.state)
            .known
            .entry(profile_id.to_string())
            .or_default()
            .url = Some(client.base().to_string());
        let metrics = async {
            if scrape {
                Some(client.metrics().await)
            } else {
                None
            }
        };
        let (ready, track, freeze, metrics) = tokio::join!(
            client.readyz(),
            self.learn(profile_id, &client),
            client.freeze_state(),
            metrics
        );
        let mut error = None;
        let health = match ready {
            Ok(r) => Health {
                live: true,
                readiness: match r.status {
                    crate::agent::ReadyState::Ready => ReadyState::Ready,
                    crate::agent::ReadyState::Degraded => ReadyState::Degraded,
                    crate::agent::ReadyState::Unavailable => ReadyState::Unavailable,
                },
                checks: r
                    .checks
                    .iter()
                    .map(|(name, c)| DependencyCheck {
                        name: name.clone(),
                        status: map::dependency_status(&c.status),
                        detail: c.detail.clone(),
                    })
                    .collect(),
                circuits: map::circuit_state(&r.circuit)
                    .map(|state| {
                        vec![Circuit {
                            dependency: "provider".into(),
                            state,
                        }]
                    })
                    .unwrap_or_default(),
            },
            // It answered, with an error status: alive but not ready.
            Err(e) if e.api().is_some() => Health {
                live: true,
                ..Health::down()
            },
            Err(e) => {
                error = Some(e.to_string());
                Health::down()
            }
        };
        let frozen = freeze.ok().map(|f| {
            let f = map::freeze_state(&f);
            if self.still_active(profile_id) {
                self.freeze_seen(&f);
            }
            f.frozen
        });
        let mut scraped = None;
        match metrics {
            Some(Ok(m)) => {
                let own = track.or_else(|| {
                    lock(&self.inner.state)
                        .known
                        .get(profile_id)
                        .map(|k| k.track.clone())
                });
                match self.ingest(profile_id, own.as_deref(), &m).await {
                    Ok(tracks) => scraped = Some((tracks, build_versions(&m))),
                    Err(e) => error = Some(format!("the history could not be stored: {e}")),
                }
            }
            Some(Err(e)) => {
                error.get_or_insert_with(|| format!("metrics: {e}"));
            }
            None => {}
        }
        let mut st = lock(&self.inner.state);
        let k = st.known.entry(profile_id.to_string()).or_default();
        k.url = Some(client.base().to_string());
        k.health = Some(health);
        if frozen.is_some() {
            k.frozen = frozen;
        }
        if let Some((tracks, versions)) = scraped {
            k.tracks = tracks;
            k.track_versions = versions;
        }
        if scrape || error.is_some() {
            k.error = error;
        }
    }

    /// Records one scrape of a profile, split by track, in the series (without holding
    /// them during the request) and the local store's history; the tracks it carried.
    async fn ingest(
        &self,
        profile_id: &str,
        own_track: Option<&str>,
        scrape: &PromScrape,
    ) -> crate::Result<Vec<String>> {
        let t_ms = self.now_ms();
        let parts = split_by_track(scrape, own_track);
        let derived: Vec<_> = {
            let mut series = self.inner.series.lock().await;
            parts
                .iter()
                .map(|(track, part)| (track.clone(), series.ingest(profile_id, track, t_ms, part)))
                .collect()
        };
        for (track, points) in &derived {
            for (metric, v) in points {
                let key = SeriesKey {
                    service: profile_id.to_string(),
                    track: track.clone(),
                    metric: *metric,
                };
                self.inner
                    .host
                    .store
                    .append_points(&key, &[Point { t_ms, v: *v }])
                    .await?;
            }
        }
        Ok(parts.into_iter().map(|(t, _)| t).collect())
    }

    /// One profile's cards after a fresh probe (for the incident pack).
    async fn profile_cards(&self, profile_id: &str, window: ChartWindow) -> Vec<ServiceCard> {
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
    pub(super) async fn overview(&self, window: ChartWindow, probe: bool) -> CmdResult<Overview> {
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

/// The scrape loop of each agent-service profile, started and stopped as profiles come and
/// go; dropping it (its task aborted) stops them all.
#[derive(Default)]
struct ScrapeLoops(HashMap<String, JoinHandle<()>>);

impl ScrapeLoops {
    fn sync(&mut self, console: &Console, ids: &[String], permits: &Arc<Semaphore>) {
        self.0.retain(|id, task| {
            let keep = ids.contains(id) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        lock(&console.inner.state)
            .known
            .retain(|id, _| ids.contains(id));
        for id in ids {
            if !self.0.contains_key(id) {
                let task = tokio::spawn(scrape_loop(console.clone(), id.clone(), permits.clone()));
                self.0.insert(id.clone(), task);
            }
        }
    }
}

impl Drop for ScrapeLoops {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}

/// Every scrape interval: follows the profile list (a scrape loop per agent-service
/// profile), re-reads the key's roles now and then, keeps the history in bounds, and pushes
/// `overview_event` with every profile's cards as the scrape loops left them.
async fn overview_loop(console: Console) {
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

/// Reads one profile's service every scrape interval on its own timer, holding one of the
/// shared permits while it reads, never longer than the read time limit.
async fn scrape_loop(console: Console, profile_id: String, permits: Arc<Semaphore>) {
    let mut tick = tokio::time::interval(console.inner.options.scrape_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(_permit) = permits.acquire().await else {
            return;
        };
        console.refresh_within(&profile_id, true).await;
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
    let cards = console.profile_cards(profile_id, ChartWindow::M15).await;
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
        "overview": cards,
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

    /// Two tracks in one exposition (a service whose metrics carry both).
    const TWO_TRACKS: &str = "# TYPE agent_requests_total counter\n\
        agent_requests_total{workflow=\"faq\",status=\"success\",track=\"stable\"} 10\n\
        agent_requests_total{workflow=\"faq\",status=\"success\",track=\"canary\"} 4\n\
        agent_requests_total{workflow=\"faq\",status=\"internal\",track=\"canary\"} 1\n\
        # TYPE agent_approvals_pending gauge\nagent_approvals_pending 3\n\
        # TYPE agent_build_info gauge\n\
        agent_build_info{version=\"1.8.0\",git_sha=\"a1\",track=\"stable\",model=\"m\",prompt_version=\"p1\",policy_version=\"v3\"} 1\n\
        agent_build_info{version=\"1.9.0\",git_sha=\"b2\",track=\"canary\",model=\"m\",prompt_version=\"p2\",policy_version=\"v3\"} 1\n";

    fn part<'a>(parts: &'a [(String, PromScrape)], track: &str) -> &'a PromScrape {
        &parts.iter().find(|(t, _)| t == track).unwrap().1
    }

    #[test]
    fn a_scrape_splits_by_its_track_labels() {
        let scrape = crate::prom::parse(TWO_TRACKS).unwrap();
        let parts = split_by_track(&scrape, Some("stable"));
        let tracks: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(tracks, ["stable", "canary"]);
        let (stable, canary) = (part(&parts, "stable"), part(&parts, "canary"));
        assert_eq!(stable.sum("agent_requests_total", &[]), Some(10.0));
        assert_eq!(canary.sum("agent_requests_total", &[]), Some(5.0));
        // What carries no track label is the service's own track's, counted once.
        assert_eq!(stable.sum("agent_approvals_pending", &[]), Some(3.0));
        assert_eq!(canary.sum("agent_approvals_pending", &[]), None);
        let versions = build_versions(&scrape);
        assert_eq!(versions["canary"].release, "1.9.0");
        assert_eq!(versions["stable"].prompt, "p1");

        // Unknown own track: agent_build_info has two, so the first in card order.
        let parts = split_by_track(&scrape, None);
        assert_eq!(
            part(&parts, "stable").sum("agent_approvals_pending", &[]),
            Some(3.0)
        );
        // A canary process whose metrics also carry stable samples keeps the rest itself.
        let parts = split_by_track(&scrape, Some("canary"));
        assert_eq!(
            part(&parts, "canary").sum("agent_approvals_pending", &[]),
            Some(3.0)
        );
        assert_eq!(
            part(&parts, "stable").sum("agent_approvals_pending", &[]),
            None
        );
    }

    #[test]
    fn a_scrape_without_track_labels_is_the_own_track() {
        let scrape =
            crate::prom::parse("# TYPE agent_approvals_pending gauge\nagent_approvals_pending 2\n")
                .unwrap();
        for (own, want) in [
            (Some("canary"), "canary"),
            (None, "stable"),
            (Some(""), "stable"),
        ] {
            let parts = split_by_track(&scrape, own);
            assert_eq!(parts.len(), 1, "{own:?}");
            assert_eq!(parts[0].0, want);
            assert_eq!(parts[0].1, scrape, "nothing is lost");
        }
    }

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
