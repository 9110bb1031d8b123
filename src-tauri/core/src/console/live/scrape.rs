//! The scrape loops: one per agent-service profile on its own timer, each read (readiness,
//! versions, the freeze and `/metrics`) within a time limit and under one of the shared
//! permits; the metrics split by their `track` labels into the series and the history.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{DEFAULT_TRACK, Health, MAX_CHANGES, track_order};
use crate::agent::AgentClient;
use crate::console::dto::*;
use crate::console::{Console, lock, map};
use crate::prom::PromScrape;
use crate::series::{Point, SeriesKey};

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
pub(super) fn build_versions(scrape: &PromScrape) -> HashMap<String, VersionSet> {
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

impl Console {
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
    pub(super) async fn refresh_within(&self, profile_id: &str, scrape: bool) {
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
}

/// The scrape loop of each agent-service profile, started and stopped as profiles come and
/// go; dropping it (its task aborted) stops them all.
#[derive(Default)]
pub(super) struct ScrapeLoops(HashMap<String, JoinHandle<()>>);

impl ScrapeLoops {
    pub(super) fn sync(&mut self, console: &Console, ids: &[String], permits: &Arc<Semaphore>) {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Two tracks in one exposition (a service whose metrics carry both).
    pub(in crate::console::live) const TWO_TRACKS: &str = "# TYPE agent_requests_total counter\n\
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
}
