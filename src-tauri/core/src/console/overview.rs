//! The Overview: a card per agent-service profile and track, and the charts of one card.

use super::dto::*;
use super::{CmdResult, Console, live, lock};

impl Console {
    /// A card per agent-service profile and track, the active profile's first (readiness,
    /// versions and freeze as the scrape loops last read them, at once for a profile not
    /// read yet; stats from the scraped series; an unreachable service is a card with
    /// `live: false` and its error); later `overview_event`s use `args.window`.
    pub async fn get_overview(&self, args: OverviewArgs) -> CmdResult<Overview> {
        lock(&self.inner.state).overview_window = args.window;
        self.overview(args.window, true).await
    }

    pub async fn get_charts(&self, args: ChartArgs) -> CmdResult<Vec<Chart>> {
        live::charts(self, &args).await
    }
}
