//! The Overview: a card per agent-service profile and track, and the charts of one card.

use super::dto::*;
use super::{CmdResult, Console, lock, map};
use crate::chart::{self, ChartSpec};
use crate::series::{Metric, Point, SeriesKey};

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
        charts(self, &args).await
    }
}

/// The Overview charts of one profile and track over a window (series in memory, else the
/// local store's history).
async fn charts(console: &Console, args: &ChartArgs) -> CmdResult<Vec<Chart>> {
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
