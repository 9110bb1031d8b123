//! The console's live side: the background tasks [`Console::restart_live`] starts for
//! the profiles (`scrape`: a scrape loop per agent-service profile, the Local one included,
//! that feeds the series and the history; `overview`: one loop that pushes
//! `overview_event` with every profile's cards, and the cards themselves; `approvals`: for
//! the active profile, the approval event stream relayed as `approval_event` with a desktop
//! notification for new requests) and what they remember per profile ([`Known`]).

mod approvals;
mod overview;
mod scrape;

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::dto::*;
use super::{CmdResult, Console, LOCAL_PROFILE_ID, lock};
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
    pub fallbacks: Fallbacks,
}

/// `(from, to, reason)` of `agent_provider_fallbacks_total`.
type FallbackKey = (String, String, String);

/// The provider fallbacks the scrapes of one service saw: the counters of the last scrape
/// and each increase since with its scrape time, kept for the longest Overview window.
/// What the counters held at the first scrape happened at an unknown time and is not
/// counted.
#[derive(Debug, Clone, Default)]
pub(super) struct Fallbacks {
    last: Option<BTreeMap<FallbackKey, f64>>,
    seen: VecDeque<(i64, FallbackKey, f64)>,
}

impl Fallbacks {
    /// Records the fallback counters of a scrape taken at `t_ms`. A counter that went down
    /// (the service restarted) counts its new value; one not there before counts whole.
    fn record(&mut self, t_ms: i64, scrape: &crate::prom::PromScrape) {
        let mut now: BTreeMap<FallbackKey, f64> = BTreeMap::new();
        if let Some(f) = scrape.family("agent_provider_fallbacks_total") {
            for s in f.value_samples() {
                let l = |n: &str| s.labels.get(n).unwrap_or_default().to_string();
                *now.entry((l("from"), l("to"), l("reason"))).or_default() += s.value;
            }
        }
        if let Some(last) = &self.last {
            for (key, cur) in &now {
                let grew = crate::series::increase(last.get(key).copied().unwrap_or(0.0), *cur);
                if grew > 0.0 {
                    self.seen.push_back((t_ms, key.clone(), grew));
                }
            }
        }
        self.last = Some(now);
        let keep_ms = crate::series::Window::H24.duration().as_millis() as i64;
        while self
            .seen
            .front()
            .is_some_and(|(t, _, _)| *t <= t_ms - keep_ms)
        {
            self.seen.pop_front();
        }
    }

    /// The fallbacks counted after `since_ms`, per `(from, to, reason)`, most first.
    fn since(&self, since_ms: i64) -> Vec<ProviderFallback> {
        let mut sums: BTreeMap<&FallbackKey, f64> = BTreeMap::new();
        for (_, key, n) in self.seen.iter().filter(|(t, _, _)| *t > since_ms) {
            *sums.entry(key).or_default() += n;
        }
        let mut out: Vec<ProviderFallback> = sums
            .into_iter()
            .map(|((from, to, reason), n)| ProviderFallback {
                from: from.clone(),
                to: to.clone(),
                reason: reason.clone(),
                count: n.round() as u64,
            })
            .collect();
        out.sort_by_key(|f| std::cmp::Reverse(f.count));
        out
    }
}

/// What the last `/readyz` said.
#[derive(Debug, Clone)]
pub(super) struct Health {
    live: bool,
    readiness: ReadyState,
    checks: Vec<DependencyCheck>,
    circuits: Vec<Circuit>,
    provider_chain: Vec<ProviderLink>,
}

impl Health {
    fn down() -> Self {
        Self {
            live: false,
            readiness: ReadyState::Unavailable,
            checks: Vec::new(),
            circuits: Vec::new(),
            provider_chain: Vec::new(),
        }
    }
}

/// Version changes kept per profile, newest first.
const MAX_CHANGES: usize = 20;
/// Services read at the same time; the others wait for a permit, never for a dead one
/// longer than the read's time limit.
const MAX_CONCURRENT_READS: usize = 4;
/// The track of a service that never said which it runs (agent-service's default).
const DEFAULT_TRACK: &str = "stable";

/// Card order of tracks: stable, canary, then the others by name.
fn track_order(track: &str) -> (u8, &str) {
    match track {
        "stable" => (0, track),
        "canary" => (1, track),
        _ => (2, track),
    }
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
        let mut tasks = vec![perms, tokio::spawn(overview::overview_loop(self.clone()))];
        if let Some(id) = active {
            tasks.push(tokio::spawn(approvals::approval_loop(self.clone(), id)));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(samples: &[(&str, &str, &str, u32)]) -> crate::prom::PromScrape {
        let mut text = String::from("# TYPE agent_provider_fallbacks counter\n");
        for (from, to, reason, n) in samples {
            text.push_str(&format!(
                "agent_provider_fallbacks_total{{from=\"{from}\",to=\"{to}\",reason=\"{reason}\"}} {n}\n"
            ));
        }
        crate::prom::parse(&text).unwrap()
    }

    fn counts(f: &Fallbacks, since_ms: i64) -> Vec<(String, String, String, u64)> {
        f.since(since_ms)
            .into_iter()
            .map(|f| (f.from, f.to, f.reason, f.count))
            .collect()
    }

    fn key(from: &str, to: &str, reason: &str, n: u64) -> (String, String, String, u64) {
        (from.into(), to.into(), reason.into(), n)
    }

    #[test]
    fn fallbacks_count_the_increases_within_the_window() {
        let mut f = Fallbacks::default();
        // Before the console watched: of unknown age, not counted.
        f.record(0, &scrape(&[("local", "hosted", "timeout", 7)]));
        assert!(counts(&f, -1).is_empty());
        f.record(10_000, &scrape(&[("local", "hosted", "timeout", 9)]));
        // A new label set counts whole; the older one grew by one more.
        f.record(
            20_000,
            &scrape(&[
                ("local", "hosted", "timeout", 10),
                ("local", "hosted", "circuit_open", 4),
            ]),
        );
        assert_eq!(
            counts(&f, 0),
            [
                key("local", "hosted", "circuit_open", 4),
                key("local", "hosted", "timeout", 3)
            ]
        );
        assert_eq!(
            counts(&f, 10_000),
            [
                key("local", "hosted", "circuit_open", 4),
                key("local", "hosted", "timeout", 1)
            ],
            "only what came after the window's start"
        );
        // The service restarted: its counters start again and count what they hold.
        f.record(30_000, &scrape(&[("local", "hosted", "timeout", 2)]));
        assert_eq!(counts(&f, 20_000), [key("local", "hosted", "timeout", 2)]);
        // A scrape without the family (an older service) adds nothing.
        f.record(
            40_000,
            &crate::prom::parse("# TYPE up gauge\nup 1\n").unwrap(),
        );
        assert_eq!(counts(&f, 30_000), []);
        // Older than the longest window: dropped.
        let day = crate::series::Window::H24.duration().as_millis() as i64;
        f.record(20_000 + day, &scrape(&[("a", "b", "timeout", 1)]));
        assert_eq!(
            counts(&f, i64::MIN),
            [
                key("local", "hosted", "timeout", 2),
                key("a", "b", "timeout", 1)
            ]
        );
    }
}
