//! The watch: a background task that notices what no request reports by itself and turns
//! it into notifications and gauges. Every `QUALITY_CHECK_SECS` it reads each tenant's usage
//! today (all replicas, from the database) into `agent_tenant_usage_today_*` and
//! `agent_tenant_daily_budget_*`, emits `budget.burn` when a tenant reaches 80 % and 100 %
//! of a daily budget (once per tenant, day, budget and threshold, whichever replica sees it
//! first), and compares this process's quality windows with their thresholds
//! (`agent_quality_alert`, `quality.alert` firing and resolved). Circuit breakers opening
//! and closing become `circuit.open` / `circuit.closed` as they happen.
//!
//! Quality windows and circuits are this process's own: each replica reports its own,
//! naming itself as `instance` in the event's data.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{EventKind, Notice, emit};
use crate::clock::Clock;
use crate::config::{BudgetConfig, QualityConfig};
use crate::db::Db;
use crate::db::notifications as store;
use crate::domain::TenantId;
use crate::metrics::{CircuitChange, Metrics, OTHER_TENANT, QualityAlertLabels, TenantLabel};
use crate::quality::{Signal, Thresholds};
use crate::shutdown::Shutdown;

/// The budget-burn thresholds, in percent of a daily budget.
pub const BURN_THRESHOLDS: [u32; 2] = [80, 100];

/// What the watch needs.
pub struct Context {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub budgets: BudgetConfig,
    pub quality: QualityConfig,
    /// Names this process in service-wide events.
    pub instance: String,
    pub stop: Shutdown,
}

/// What the watch remembers between checks.
#[derive(Debug, Default)]
struct State {
    /// Burn events already emitted (or found emitted) today, by dedup key.
    burned: HashSet<String>,
    day: String,
    /// Tenant labels of the usage gauges set at the last check.
    usage_labels: BTreeSet<String>,
    /// Quality signals firing, by workflow and track.
    firing: BTreeSet<(String, String, Signal)>,
    /// Numbers this process's service-wide events.
    seq: u64,
}

/// Runs the watch until shutdown.
pub async fn run(ctx: Context) {
    let mut circuits = ctx.metrics.subscribe_circuits();
    let mut tick = tokio::time::interval(Duration::from_secs(ctx.quality.quality_check_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = State::default();
    ctx.metrics
        .notification_kinds(EventKind::ALL.iter().map(|k| k.as_str()));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                budgets(&ctx, &mut state).await;
                quality(&ctx, &mut state).await;
            }
            change = circuits.recv() => match change {
                Ok(c) => circuit(&ctx, &mut state, c).await,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "circuit changes came faster than they were notified; some were skipped")
                }
                Err(RecvError::Closed) => {}
            },
            _ = ctx.stop.wait() => break,
        }
    }
}

fn now_ms(ctx: &Context) -> i64 {
    ctx.clock.now().timestamp_millis()
}

/// The start of the next UTC day (when daily budgets reset).
fn next_midnight(now: DateTime<Utc>) -> String {
    let day = now.date_naive().succ_opt().unwrap_or(now.date_naive());
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().to_rfc3339())
        .unwrap_or_default()
}

async fn budgets(ctx: &Context, state: &mut State) {
    let now = ctx.clock.now();
    let day = now.format("%Y-%m-%d").to_string();
    if state.day != day {
        state.burned.clear();
        state.day = day.clone();
    }
    let rows = match store::usage_on(&ctx.db, &day).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "reading today's tenant usage failed; will retry");
            return;
        }
    };
    let m = &ctx.metrics;
    let mut by_label: BTreeMap<String, (i64, f64)> = BTreeMap::new();
    for (tenant, tokens, cost) in &rows {
        let e = by_label.entry(m.tenant_label(tenant)).or_default();
        e.0 += tokens;
        e.1 += cost;
    }
    for (label, (tokens, cost)) in &by_label {
        let l = TenantLabel {
            tenant: label.clone(),
        };
        m.tenant_usage_today_tokens.get_or_create(&l).set(*tokens);
        m.tenant_usage_today_cost_usd.get_or_create(&l).set(*cost);
        // A budget is per tenant: the folded `_other` series has none.
        if label != OTHER_TENANT {
            m.tenant_daily_budget_tokens
                .get_or_create(&l)
                .set(i64::try_from(ctx.budgets.tenant_daily_token_budget).unwrap_or(i64::MAX));
            m.tenant_daily_budget_cost_usd
                .get_or_create(&l)
                .set(ctx.budgets.tenant_daily_cost_budget_usd);
        }
    }
    // Yesterday's tenants that spent nothing yet today: their series go.
    for stale in state
        .usage_labels
        .iter()
        .filter(|l| !by_label.contains_key(*l))
    {
        let l = TenantLabel {
            tenant: stale.clone(),
        };
        m.tenant_usage_today_tokens.remove(&l);
        m.tenant_usage_today_cost_usd.remove(&l);
        m.tenant_daily_budget_tokens.remove(&l);
        m.tenant_daily_budget_cost_usd.remove(&l);
    }
    state.usage_labels = by_label.keys().cloned().collect();

    let resets_at = next_midnight(now);
    for (tenant, tokens, cost) in rows {
        let Ok(tenant_id) = TenantId::parse(&tenant) else {
            continue;
        };
        let budgets = [
            ("cost_usd", cost, ctx.budgets.tenant_daily_cost_budget_usd),
            (
                "tokens",
                tokens as f64,
                ctx.budgets.tenant_daily_token_budget as f64,
            ),
        ];
        for (budget, used, limit) in budgets {
            if limit <= 0.0 {
                continue;
            }
            let fraction = used / limit;
            for threshold in BURN_THRESHOLDS {
                if fraction * 100.0 < f64::from(threshold) {
                    continue;
                }
                let key = format!("budget.burn:{tenant}:{day}:{budget}:{threshold}");
                if state.burned.contains(&key) {
                    continue;
                }
                let notice = Notice::new(
                    EventKind::BudgetBurn,
                    key.clone(),
                    Some(tenant_id.clone()),
                    json!({
                        "day": day,
                        "budget": budget,
                        "threshold_percent": threshold,
                        "used": used,
                        "limit": limit,
                        "used_fraction": fraction,
                        "resets_at": resets_at,
                    }),
                );
                match emit(&ctx.db, &notice, now_ms(ctx)).await {
                    Ok(new) => {
                        if new {
                            tracing::warn!(%tenant, budget, threshold, "tenant reached a share of its daily budget");
                        }
                        state.burned.insert(key);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "storing a budget notification failed; will retry")
                    }
                }
            }
        }
    }
}

async fn quality(ctx: &Context, state: &mut State) {
    let t = Thresholds::from(&ctx.quality);
    let summary = ctx.metrics.quality.summary(&t);
    let mut now_firing = BTreeSet::new();
    for q in &summary {
        for s in &q.alerts {
            now_firing.insert((q.workflow.clone(), q.track.clone(), *s));
        }
    }
    let changed: Vec<(String, String, Signal, bool)> = now_firing
        .difference(&state.firing)
        .map(|(w, tr, s)| (w.clone(), tr.clone(), *s, true))
        .chain(
            state
                .firing
                .difference(&now_firing)
                .map(|(w, tr, s)| (w.clone(), tr.clone(), *s, false)),
        )
        .collect();
    for (workflow, track, signal, firing) in changed {
        let q = summary
            .iter()
            .find(|q| q.workflow == workflow && q.track == track);
        let rate = q.map(|q| q.rate_of(signal)).unwrap_or_default();
        let (threshold, _) = t.of(signal);
        state.seq += 1;
        let word = if firing { "firing" } else { "resolved" };
        let notice = Notice::new(
            EventKind::QualityAlert,
            format!(
                "quality.alert:{}:{workflow}:{track}:{}:{word}:{}",
                ctx.instance,
                signal.as_str(),
                state.seq
            ),
            None,
            json!({
                "workflow": workflow,
                "track": track,
                "signal": signal.as_str(),
                "state": word,
                "value": rate.rate(),
                "threshold": threshold,
                "samples": rate.samples,
                "instance": ctx.instance,
            }),
        );
        match emit(&ctx.db, &notice, now_ms(ctx)).await {
            Ok(_) => {
                tracing::warn!(%workflow, %track, signal = signal.as_str(), state = word, "quality alert");
                ctx.metrics
                    .quality_alerts
                    .get_or_create(&QualityAlertLabels {
                        workflow: workflow.clone(),
                        track: track.clone(),
                        signal: signal.as_str().into(),
                    })
                    .set(i64::from(firing));
                let key = (workflow, track, signal);
                if firing {
                    state.firing.insert(key);
                } else {
                    state.firing.remove(&key);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "storing a quality notification failed; will retry")
            }
        }
    }
}

async fn circuit(ctx: &Context, state: &mut State, change: CircuitChange) {
    state.seq += 1;
    let (kind, word) = if change.open {
        (EventKind::CircuitOpen, "open")
    } else {
        (EventKind::CircuitClosed, "closed")
    };
    let notice = Notice::new(
        kind,
        format!(
            "circuit.{word}:{}:{}:{}",
            ctx.instance, change.dependency, state.seq
        ),
        None,
        json!({"dependency": change.dependency, "state": word, "instance": ctx.instance}),
    );
    if let Err(e) = emit(&ctx.db, &notice, now_ms(ctx)).await {
        tracing::warn!(error = %e, dependency = %change.dependency, "storing a circuit notification failed; it is lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_reset_at_the_next_utc_midnight() {
        let t = DateTime::parse_from_rfc3339("2026-03-04T22:10:00+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(next_midnight(t), "2026-03-05T00:00:00+00:00");
    }
}
