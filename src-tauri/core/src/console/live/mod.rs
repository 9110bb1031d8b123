//! The console's live side: the background tasks [`Console::restart_live`] starts for
//! the profiles (`scrape`: a scrape loop per agent-service profile, the Local one included,
//! that feeds the series and the history; `overview`: one loop that pushes
//! `overview_event` with every profile's cards, and the cards themselves; `approvals`: for
//! the active profile, the approval event stream relayed as `approval_event` with a desktop
//! notification for new requests) and what they remember per profile ([`Known`]).

mod approvals;
mod overview;
mod scrape;

use std::collections::HashMap;

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
