//! The quality panel's numbers: what one scrape of agent-service's `/metrics` says about
//! answer quality (per workflow and track) and spend (per tenant and workflow), a per-minute
//! history of those counters, and from it the rates over a window, the canary against
//! stable, and each tenant's burn against its daily budget ("hits it at 14:10").
//!
//! Counters are cumulative per process: a window's numbers are the newest snapshot minus the
//! one at the window's start (or the newest alone after a restart reset them).

use std::collections::{BTreeMap, VecDeque};

use crate::console::dto::{
    BudgetKind, QualitySignal, QualitySignalKind, QualityThresholds, TenantSpend, TrackQuality,
    WorkflowQuality, WorkflowSpend,
};
use crate::prom::PromScrape;

/// A snapshot older than this is dropped (the longest Overview window).
const KEEP_MS: i64 = 24 * 3_600_000;
/// At most one snapshot per this much time; a newer scrape replaces the last one within it.
const BUCKET_MS: i64 = 60_000;
/// The burn rate is measured over at most the last hour.
const BURN_WINDOW_MS: i64 = 3_600_000;
/// A day in milliseconds: daily budgets reset at 00:00 UTC.
const DAY_MS: i64 = 86_400_000;
/// A canary is worse than stable when a signal is this many points worse.
pub const WORSE_BY: f64 = 0.05;

/// The counters of one workflow on one track.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub runs: f64,
    pub cited: f64,
    pub uncited: f64,
    pub answers: f64,
    pub refusals: f64,
    pub empty_or_truncated: f64,
    pub blocked: f64,
    pub flagged: f64,
    pub tool_calls: f64,
    pub tool_errors: f64,
    pub decisions: f64,
    pub rejections: f64,
    pub successes: f64,
    pub cost_usd: f64,
}

impl Counts {
    fn fields(&mut self) -> [&mut f64; 14] {
        [
            &mut self.runs,
            &mut self.cited,
            &mut self.uncited,
            &mut self.answers,
            &mut self.refusals,
            &mut self.empty_or_truncated,
            &mut self.blocked,
            &mut self.flagged,
            &mut self.tool_calls,
            &mut self.tool_errors,
            &mut self.decisions,
            &mut self.rejections,
            &mut self.successes,
            &mut self.cost_usd,
        ]
    }

    /// `self - before`, or `self` alone when a counter went down (the process restarted).
    fn since(mut self, mut before: Counts) -> Counts {
        let reset = self
            .fields()
            .into_iter()
            .zip(before.fields())
            .any(|(a, b)| *a < *b);
        if !reset {
            for (a, b) in self.fields().into_iter().zip(before.fields()) {
                *a -= *b;
            }
        }
        self
    }
}

/// A tenant's spend counters and its daily budget gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    pub cost_usd: f64,
    pub tokens: f64,
    pub today_cost_usd: Option<f64>,
    pub today_tokens: Option<f64>,
    pub budget_cost_usd: Option<f64>,
    pub budget_tokens: Option<f64>,
}

/// What one scrape says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub t_ms: i64,
    /// By (workflow, track).
    pub quality: BTreeMap<(String, String), Counts>,
    pub tenants: BTreeMap<String, Spend>,
    /// By workflow: (cost USD, tokens).
    pub workflows: BTreeMap<String, (f64, f64)>,
}

impl Snapshot {
    /// Reads the quality and spend series of one scrape.
    pub fn from_scrape(scrape: &PromScrape, t_ms: i64) -> Snapshot {
        let mut quality: BTreeMap<(String, String), Counts> = BTreeMap::new();
        let mut add = |name: &str, f: &dyn Fn(&crate::prom::Labels, &mut Counts, f64)| {
            let Some(family) = scrape.family(name) else {
                return;
            };
            for s in family.value_samples() {
                let (Some(w), Some(t)) = (s.labels.get("workflow"), s.labels.get("track")) else {
                    continue;
                };
                let c = quality.entry((w.to_string(), t.to_string())).or_default();
                f(&s.labels, c, s.value);
            }
        };
        add("agent_requests_total", &|l, c, v| {
            c.runs += v;
            if l.get("status") == Some("success") {
                c.successes += v;
            }
        });
        add(
            "agent_citation_checks_total",
            &|l, c, v| match l.get("result") {
                Some("cited") => c.cited += v,
                Some("uncited") => c.uncited += v,
                _ => {}
            },
        );
        add("agent_answers_total", &|l, c, v| {
            c.answers += v;
            match l.get("kind") {
                Some("refusal") => c.refusals += v,
                Some("empty" | "truncated") => c.empty_or_truncated += v,
                _ => {}
            }
        });
        add(
            "agent_guardrail_verdicts_total",
            &|l, c, v| match l.get("verdict") {
                Some("blocked") => c.blocked += v,
                Some("flagged") => c.flagged += v,
                _ => {}
            },
        );
        add("agent_workflow_tool_calls_total", &|l, c, v| {
            c.tool_calls += v;
            if l.get("result") == Some("error") {
                c.tool_errors += v;
            }
        });
        add("agent_approval_decisions_total", &|l, c, v| {
            c.decisions += v;
            if l.get("decision") == Some("rejected") {
                c.rejections += v;
            }
        });
        add("agent_tenant_cost_usd_total", &|_, c, v| c.cost_usd += v);

        let mut tenants: BTreeMap<String, Spend> = BTreeMap::new();
        let mut workflows: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        let each = |name: &str, f: &mut dyn FnMut(&crate::prom::Labels, f64)| {
            if let Some(family) = scrape.family(name) {
                for s in family.value_samples() {
                    f(&s.labels, s.value);
                }
            }
        };
        each("agent_tenant_cost_usd_total", &mut |l, v| {
            if let Some(t) = l.get("tenant") {
                tenants.entry(t.into()).or_default().cost_usd += v;
            }
            if let Some(w) = l.get("workflow") {
                workflows.entry(w.into()).or_default().0 += v;
            }
        });
        each("agent_tenant_tokens_total", &mut |l, v| {
            if let Some(t) = l.get("tenant") {
                tenants.entry(t.into()).or_default().tokens += v;
            }
            if let Some(w) = l.get("workflow") {
                workflows.entry(w.into()).or_default().1 += v;
            }
        });
        type Gauge = fn(&mut Spend) -> &mut Option<f64>;
        let gauges: [(&str, Gauge); 4] = [
            ("agent_tenant_usage_today_cost_usd", |s| {
                &mut s.today_cost_usd
            }),
            ("agent_tenant_usage_today_tokens", |s| &mut s.today_tokens),
            ("agent_tenant_daily_budget_cost_usd", |s| {
                &mut s.budget_cost_usd
            }),
            ("agent_tenant_daily_budget_tokens", |s| &mut s.budget_tokens),
        ];
        for (name, field) in gauges {
            each(name, &mut |l, v| {
                if let Some(t) = l.get("tenant") {
                    *field(tenants.entry(t.into()).or_default()) = Some(v);
                }
            });
        }
        Snapshot {
            t_ms,
            quality,
            tenants,
            workflows,
        }
    }
}

/// The snapshots of one service, oldest first: one per minute over the last day, the newest
/// always the last scrape.
#[derive(Debug, Clone, Default)]
pub struct History(VecDeque<Snapshot>);

impl History {
    pub fn push(&mut self, s: Snapshot) {
        if let Some(last) = self.0.back()
            && self.0.len() >= 2
            && s.t_ms - self.0[self.0.len() - 2].t_ms < BUCKET_MS
            && last.t_ms <= s.t_ms
        {
            self.0.pop_back();
        }
        let cutoff = s.t_ms - KEEP_MS;
        self.0.push_back(s);
        while self.0.front().is_some_and(|f| f.t_ms < cutoff) {
            self.0.pop_front();
        }
    }

    pub fn latest(&self) -> Option<&Snapshot> {
        self.0.back()
    }

    /// The oldest snapshot taken at or after `since_ms`.
    fn first_since(&self, since_ms: i64) -> Option<&Snapshot> {
        self.0.iter().find(|s| s.t_ms >= since_ms)
    }
}

fn rate(hits: f64, samples: f64) -> Option<f64> {
    (samples > 0.0).then(|| hits / samples)
}

/// Whether a higher value of `kind` is worse (all but the citation rate).
fn higher_is_worse(kind: QualitySignalKind) -> bool {
    kind != QualitySignalKind::Citation
}

/// The threshold of `kind` (None: the service has none for it).
fn threshold(kind: QualitySignalKind, t: &QualityThresholds) -> Option<f64> {
    match kind {
        QualitySignalKind::Citation => Some(t.min_citation_rate),
        QualitySignalKind::Refusal => Some(t.max_refusal_rate),
        QualitySignalKind::EmptyOrTruncated => Some(t.max_empty_or_truncated_rate),
        QualitySignalKind::ToolErrors => Some(t.max_tool_error_rate),
        QualitySignalKind::ApprovalRejections => Some(t.max_approval_rejection_rate),
        QualitySignalKind::Blocked | QualitySignalKind::Flagged => None,
    }
}

/// The signal name agent-service's own alerts use (`/v1/info` `quality.workflows[].alerts`).
pub fn service_alert_name(kind: QualitySignalKind) -> Option<&'static str> {
    match kind {
        QualitySignalKind::Citation => Some("citation_rate"),
        QualitySignalKind::Refusal => Some("refusal_rate"),
        QualitySignalKind::EmptyOrTruncated => Some("empty_or_truncated_rate"),
        QualitySignalKind::ToolErrors => Some("tool_error_rate"),
        QualitySignalKind::ApprovalRejections => Some("approval_rejection_rate"),
        QualitySignalKind::Blocked | QualitySignalKind::Flagged => None,
    }
}

/// Each signal's hits and samples, in `QualitySignalKind` order.
fn parts(c: &Counts) -> [(QualitySignalKind, f64, f64); 7] {
    use QualitySignalKind::*;
    [
        (Citation, c.cited, c.cited + c.uncited),
        (Refusal, c.refusals, c.answers),
        (EmptyOrTruncated, c.empty_or_truncated, c.answers),
        (Blocked, c.blocked, c.runs),
        (Flagged, c.flagged, c.runs),
        (ToolErrors, c.tool_errors, c.tool_calls),
        (ApprovalRejections, c.rejections, c.decisions),
    ]
}

fn signals(
    c: &Counts,
    baseline: Option<&Counts>,
    t: &QualityThresholds,
    service_alerts: &[String],
) -> Vec<QualitySignal> {
    let base = baseline.map(parts);
    parts(c)
        .into_iter()
        .enumerate()
        .map(|(i, (kind, hits, samples))| {
            let r = rate(hits, samples);
            let past = match (r, threshold(kind, t)) {
                (Some(r), Some(th)) if samples >= t.min_samples as f64 => {
                    if higher_is_worse(kind) {
                        r > th
                    } else {
                        r < th
                    }
                }
                _ => false,
            };
            let by_service =
                service_alert_name(kind).is_some_and(|n| service_alerts.iter().any(|a| a == n));
            QualitySignal {
                kind,
                rate: r,
                hits: hits.round() as u64,
                samples: samples.round() as u64,
                alert: past || by_service,
                baseline: base.and_then(|b| rate(b[i].1, b[i].2)),
                vs_stable: None,
                worse_than_stable: false,
            }
        })
        .collect()
}

/// The quality panel over `[now - window_ms, now]`: per workflow, a row per track (stable
/// first), each signal with its alert (past the service's threshold with enough samples,
/// or the service's own alert), its rate over the day before the window as far as the
/// history reaches, and, for the other tracks, the difference to stable.
pub fn workflows(
    history: &History,
    window_ms: i64,
    now_ms: i64,
    thresholds: &QualityThresholds,
    service_alerts: &BTreeMap<(String, String), Vec<String>>,
) -> Vec<WorkflowQuality> {
    let Some(latest) = history.latest() else {
        return Vec::new();
    };
    let start = history.first_since(now_ms - window_ms);
    let mut by_workflow: BTreeMap<&str, Vec<TrackQuality>> = BTreeMap::new();
    for ((workflow, track), now) in &latest.quality {
        let before = start
            .filter(|s| s.t_ms < latest.t_ms)
            .and_then(|s| s.quality.get(&(workflow.clone(), track.clone())))
            .copied()
            .unwrap_or_default();
        let c = now.since(before);
        // The day before the window: from the oldest snapshot at most 24 h before its start
        // to the one at its start.
        let key = (workflow.clone(), track.clone());
        let baseline = start.filter(|s| s.t_ms < latest.t_ms).and_then(|s| {
            let from = history
                .first_since(s.t_ms - DAY_MS)
                .filter(|f| f.t_ms < s.t_ms)?;
            let a = from.quality.get(&key).copied().unwrap_or_default();
            Some(s.quality.get(&key).copied().unwrap_or_default().since(a))
        });
        let alerts = service_alerts
            .get(&(workflow.clone(), track.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let signals = signals(&c, baseline.as_ref(), thresholds, alerts);
        by_workflow
            .entry(workflow.as_str())
            .or_default()
            .push(TrackQuality {
                track: track.clone(),
                runs: c.runs.round() as u64,
                alert: signals.iter().any(|s| s.alert),
                signals,
                cost_per_success_usd: (c.successes > 0.0).then(|| c.cost_usd / c.successes),
            });
    }
    by_workflow
        .into_iter()
        .map(|(workflow, mut tracks)| {
            tracks.sort_by(|a, b| track_rank(&a.track).cmp(&track_rank(&b.track)));
            let stable = tracks
                .iter()
                .find(|t| t.track == "stable")
                .map(|t| t.signals.clone());
            if let Some(stable) = stable {
                for t in tracks.iter_mut().filter(|t| t.track != "stable") {
                    for (s, base) in t.signals.iter_mut().zip(&stable) {
                        if let (Some(r), Some(b)) = (s.rate, base.rate) {
                            let d = r - b;
                            s.vs_stable = Some(d);
                            let worse = if higher_is_worse(s.kind) { d } else { -d };
                            s.worse_than_stable = worse > WORSE_BY;
                        }
                    }
                }
            }
            WorkflowQuality {
                workflow: workflow.to_string(),
                tracks,
            }
        })
        .collect()
}

fn track_rank(track: &str) -> (u8, &str) {
    match track {
        "stable" => (0, track),
        "canary" => (1, track),
        _ => (2, track),
    }
}

/// The next 00:00 UTC after `now_ms`, when daily budgets reset.
pub fn next_midnight_ms(now_ms: i64) -> i64 {
    (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS
}

/// Spend by tenant since the service started, with each tenant's burn: its spend per hour
/// over the last hour (of history) and, at that rate, when it reaches a daily budget if
/// that comes before the budgets reset.
pub fn tenants(history: &History) -> Vec<TenantSpend> {
    let Some(latest) = history.latest() else {
        return Vec::new();
    };
    let now_ms = latest.t_ms;
    let start = history
        .first_since(now_ms - BURN_WINDOW_MS)
        .filter(|s| s.t_ms < now_ms);
    let midnight = next_midnight_ms(now_ms);
    latest
        .tenants
        .iter()
        .map(|(tenant, s)| {
            // A tenant's series start at its first request: absent before is zero.
            let before =
                start.map(|b| (b.t_ms, b.tenants.get(tenant).copied().unwrap_or_default()));
            // Per millisecond; none without two points, or across a restart.
            let per_ms = |now: f64, then: fn(&Spend) -> f64| {
                before
                    .filter(|(_, p)| then(p) <= now)
                    .map(|(t, p)| (now - then(&p)) / (now_ms - t) as f64)
            };
            let cost_rate = per_ms(s.cost_usd, |p| p.cost_usd);
            let token_rate = per_ms(s.tokens, |p| p.tokens);
            let hits = |used: Option<f64>, budget: Option<f64>, rate: Option<f64>| {
                let (used, budget) = (used?, budget.filter(|b| *b > 0.0)?);
                if used >= budget {
                    return Some(now_ms);
                }
                let r = rate.filter(|r| *r > 0.0)?;
                let at = now_ms + ((budget - used) / r).round() as i64;
                (at < midnight).then_some(at)
            };
            let forecasts = [
                (
                    BudgetKind::CostUsd,
                    hits(s.today_cost_usd, s.budget_cost_usd, cost_rate),
                ),
                (
                    BudgetKind::Tokens,
                    hits(s.today_tokens, s.budget_tokens, token_rate),
                ),
            ];
            let first = forecasts
                .iter()
                .filter_map(|(k, at)| at.map(|at| (at, *k)))
                .min_by_key(|(at, _)| *at);
            let exhausted = [
                (s.today_cost_usd, s.budget_cost_usd),
                (s.today_tokens, s.budget_tokens),
            ]
            .iter()
            .any(|(u, b)| matches!((u, b), (Some(u), Some(b)) if *b > 0.0 && u >= b));
            TenantSpend {
                tenant: tenant.clone(),
                cost_usd: s.cost_usd,
                tokens: s.tokens.round() as u64,
                cost_per_hour_usd: cost_rate.map(|r| r * 3_600_000.0),
                tokens_per_hour: token_rate.map(|r| r * 3_600_000.0),
                today_cost_usd: s.today_cost_usd,
                budget_cost_usd: s.budget_cost_usd.filter(|b| *b > 0.0),
                today_tokens: s.today_tokens.map(|t| t.round() as u64),
                budget_tokens: s.budget_tokens.filter(|b| *b > 0.0).map(|t| t as u64),
                hits_budget_at_ms: first.map(|(at, _)| at),
                hits_budget: first.map(|(_, k)| k),
                exhausted,
                resets_at_ms: midnight,
            }
        })
        .collect()
}

/// Spend by workflow since the service started (all tenants and tracks).
pub fn workflow_spend(history: &History) -> Vec<WorkflowSpend> {
    history
        .latest()
        .map(|l| {
            l.workflows
                .iter()
                .map(|(w, (cost, tokens))| WorkflowSpend {
                    workflow: w.clone(),
                    cost_usd: *cost,
                    tokens: tokens.round() as u64,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> QualityThresholds {
        QualityThresholds {
            min_samples: 5,
            min_citation_rate: 0.8,
            max_refusal_rate: 0.2,
            max_tool_error_rate: 0.2,
            max_empty_or_truncated_rate: 0.2,
            max_approval_rejection_rate: 0.5,
        }
    }

    fn scrape(stable_cited: u64, canary_cited: u64, canary_uncited: u64) -> PromScrape {
        crate::prom::parse(&format!(
            "# TYPE agent_citation_checks_total counter\n\
             agent_citation_checks_total{{workflow=\"faq\",track=\"stable\",result=\"cited\"}} {stable_cited}\n\
             agent_citation_checks_total{{workflow=\"faq\",track=\"stable\",result=\"uncited\"}} 0\n\
             agent_citation_checks_total{{workflow=\"faq\",track=\"canary\",result=\"cited\"}} {canary_cited}\n\
             agent_citation_checks_total{{workflow=\"faq\",track=\"canary\",result=\"uncited\"}} {canary_uncited}\n"
        ))
        .unwrap()
    }

    fn signal(w: &[WorkflowQuality], track: &str, kind: QualitySignalKind) -> QualitySignal {
        w[0].tracks
            .iter()
            .find(|t| t.track == track)
            .unwrap()
            .signals
            .iter()
            .find(|s| s.kind == kind)
            .unwrap()
            .clone()
    }

    #[test]
    fn a_canary_that_stops_citing_alerts_and_is_worse_than_stable() {
        let mut h = History::default();
        h.push(Snapshot::from_scrape(&scrape(10, 10, 0), 0));
        h.push(Snapshot::from_scrape(&scrape(20, 10, 10), 120_000));
        let w = workflows(&h, 300_000, 120_000, &thresholds(), &BTreeMap::new());
        let c = signal(&w, "canary", QualitySignalKind::Citation);
        // Over the window: the canary's 10 new checks all uncited; stable's 10 cited.
        assert_eq!((c.rate, c.hits, c.samples), (Some(0.0), 0, 10));
        assert!(c.alert && c.worse_than_stable, "{c:?}");
        assert_eq!(c.vs_stable, Some(-1.0));
        let s = signal(&w, "stable", QualitySignalKind::Citation);
        assert_eq!(s.rate, Some(1.0));
        assert!(!s.alert && s.vs_stable.is_none());
        assert_eq!(w[0].tracks[0].track, "stable");
        assert!(w[0].tracks[1].alert && !w[0].tracks[0].alert);

        // Over a window reaching back to the first scrape's start: the snapshot at 0 is the
        // base, the same answer; fewer samples than min_samples never alert on their own.
        let mut h = History::default();
        h.push(Snapshot::from_scrape(&scrape(0, 0, 0), 0));
        h.push(Snapshot::from_scrape(&scrape(3, 0, 4), 120_000));
        let w = workflows(&h, 300_000, 120_000, &thresholds(), &BTreeMap::new());
        assert!(!signal(&w, "canary", QualitySignalKind::Citation).alert);
        // ... unless the service itself says so.
        let alerts = BTreeMap::from([(
            ("faq".to_string(), "canary".to_string()),
            vec!["citation_rate".to_string()],
        )]);
        let w = workflows(&h, 300_000, 120_000, &thresholds(), &alerts);
        assert!(signal(&w, "canary", QualitySignalKind::Citation).alert);
    }

    fn stable_citations(cited: u64, uncited: u64) -> PromScrape {
        crate::prom::parse(&format!(
            "# TYPE agent_citation_checks_total counter\n\
             agent_citation_checks_total{{workflow=\"faq\",track=\"stable\",result=\"cited\"}} {cited}\n\
             agent_citation_checks_total{{workflow=\"faq\",track=\"stable\",result=\"uncited\"}} {uncited}\n"
        ))
        .unwrap()
    }

    #[test]
    fn the_day_before_the_window_is_the_baseline() {
        let h0 = 3_600_000;
        let mut h = History::default();
        // Kept for a day: at 0 (dropped by now), at 2 h: 0; an hour ago: 90 of 100 cited;
        // now: 5 of 10 more.
        h.push(Snapshot::from_scrape(&stable_citations(0, 0), 0));
        h.push(Snapshot::from_scrape(&stable_citations(0, 0), 2 * h0));
        h.push(Snapshot::from_scrape(&stable_citations(90, 10), 24 * h0));
        h.push(Snapshot::from_scrape(&stable_citations(95, 15), 25 * h0));
        let w = workflows(&h, h0, 25 * h0, &thresholds(), &BTreeMap::new());
        let s = signal(&w, "stable", QualitySignalKind::Citation);
        assert_eq!((s.rate, s.baseline), (Some(0.5), Some(0.9)));
        // A window reaching back to the first snapshot: nothing before it, no baseline.
        let w = workflows(&h, 25 * h0, 25 * h0, &thresholds(), &BTreeMap::new());
        assert_eq!(
            signal(&w, "stable", QualitySignalKind::Citation).baseline,
            None
        );
    }

    #[test]
    fn a_restart_counts_from_zero_and_history_keeps_one_snapshot_a_minute() {
        let mut h = History::default();
        h.push(Snapshot::from_scrape(&scrape(100, 100, 0), 0));
        h.push(Snapshot::from_scrape(&scrape(1, 0, 6), 60_000));
        let w = workflows(&h, 300_000, 60_000, &thresholds(), &BTreeMap::new());
        let c = signal(&w, "canary", QualitySignalKind::Citation);
        assert_eq!((c.hits, c.samples), (0, 6));

        let mut h = History::default();
        for t in (0..=600_000).step_by(5_000) {
            h.push(Snapshot {
                t_ms: t,
                ..Snapshot::default()
            });
        }
        // Ten minutes of 5 s scrapes: about one a minute, and the last scrape kept.
        assert!((10..=12).contains(&h.0.len()), "{}", h.0.len());
        assert_eq!(h.latest().unwrap().t_ms, 600_000);
    }

    fn spend(cost: f64, today: f64, budget: f64) -> PromScrape {
        crate::prom::parse(&format!(
            "# TYPE agent_tenant_cost_usd_total counter\n\
             agent_tenant_cost_usd_total{{tenant=\"acme\",workflow=\"faq\",track=\"stable\"}} {cost}\n\
             agent_tenant_cost_usd_total{{tenant=\"acme\",workflow=\"triage\",track=\"stable\"}} 1\n\
             # TYPE agent_tenant_tokens_total counter\n\
             agent_tenant_tokens_total{{tenant=\"acme\",workflow=\"faq\",track=\"stable\",direction=\"input\"}} 30\n\
             agent_tenant_tokens_total{{tenant=\"acme\",workflow=\"faq\",track=\"stable\",direction=\"output\"}} 12\n\
             # TYPE agent_tenant_usage_today_cost_usd gauge\n\
             agent_tenant_usage_today_cost_usd{{tenant=\"acme\"}} {today}\n\
             # TYPE agent_tenant_daily_budget_cost_usd gauge\n\
             agent_tenant_daily_budget_cost_usd{{tenant=\"acme\"}} {budget}\n"
        ))
        .unwrap()
    }

    #[test]
    fn burn_forecast_hits_the_budget_before_midnight_or_not() {
        // 10:00 UTC; 2 USD spent in the last 30 min: 4 USD/h. 6 of 10 USD used: 4 left,
        // reached at 11:00.
        let ten = 10 * 3_600_000 + 5 * DAY_MS;
        let mut h = History::default();
        h.push(Snapshot::from_scrape(
            &spend(1.0, 4.0, 10.0),
            ten - 1_800_000,
        ));
        h.push(Snapshot::from_scrape(&spend(3.0, 6.0, 10.0), ten));
        let t = tenants(&h);
        assert_eq!(t.len(), 1);
        let a = &t[0];
        assert_eq!((a.cost_usd, a.tokens), (4.0, 42));
        assert!((a.cost_per_hour_usd.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(a.hits_budget_at_ms, Some(ten + 3_600_000));
        assert_eq!(a.hits_budget, Some(BudgetKind::CostUsd));
        assert!(!a.exhausted);
        assert_eq!(a.resets_at_ms, 6 * DAY_MS);
        let w = workflow_spend(&h);
        assert_eq!(
            w.iter()
                .map(|w| (w.workflow.as_str(), w.cost_usd, w.tokens))
                .collect::<Vec<_>>(),
            [("faq", 3.0, 42), ("triage", 1.0, 0)]
        );

        // A budget of 100: 94 left at 4 USD/h takes past midnight, no forecast.
        let mut h = History::default();
        h.push(Snapshot::from_scrape(
            &spend(1.0, 4.0, 100.0),
            ten - 1_800_000,
        ));
        h.push(Snapshot::from_scrape(&spend(3.0, 6.0, 100.0), ten));
        assert_eq!(tenants(&h)[0].hits_budget_at_ms, None);

        // Spent already: exhausted, "now".
        let mut h = History::default();
        h.push(Snapshot::from_scrape(&spend(3.0, 10.0, 10.0), ten));
        let a = &tenants(&h)[0];
        assert!(a.exhausted);
        assert_eq!(a.hits_budget_at_ms, Some(ten));
        // One scrape: no rate, no forecast.
        let mut h = History::default();
        h.push(Snapshot::from_scrape(&spend(3.0, 6.0, 10.0), ten));
        let a = &tenants(&h)[0];
        assert_eq!((a.cost_per_hour_usd, a.hits_budget_at_ms), (None, None));
    }
}
