//! Budgets: the per-request [`RunBudget`] (tokens, tool calls, cost, deadline, loop
//! detection) and the per-tenant daily [`UsageLedger`].
//!
//! The ledger keeps running totals in memory and flushes deltas to `tenant_usage` every
//! second with an atomic upsert, so replicas sharing a database add up; between flushes a
//! replica may overshoot a daily budget by at most one second of its own traffic.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use sqlx::Row;
use tokio::time::Instant;

use crate::config::BudgetConfig;
use crate::db::Db;
use crate::domain::TenantId;

/// Which budget stopped a run (`agent_budget_exceeded_total{kind}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    /// The request's total token budget (`MAX_TOKENS_PER_REQUEST`).
    Tokens,
    /// One model reply was cut off at its workflow's per-call output cap (or the model's
    /// context window): the unfinished reply is not an answer.
    OutputTokens,
    ToolCalls,
    Cost,
    Deadline,
    Loop,
    TenantDailyTokens,
    TenantDailyCost,
}

impl BudgetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tokens => "tokens",
            Self::OutputTokens => "output_tokens",
            Self::ToolCalls => "tool_calls",
            Self::Cost => "cost",
            Self::Deadline => "deadline",
            Self::Loop => "loop",
            Self::TenantDailyTokens => "tenant_daily_tokens",
            Self::TenantDailyCost => "tenant_daily_cost",
        }
    }
}

/// What one request may still spend.
#[derive(Debug)]
pub struct RunBudget {
    pub max_tokens: u32,
    pub max_tool_calls: u32,
    pub max_cost_usd: f64,
    pub deadline: Instant,
    pub tokens: u32,
    pub tool_calls: u32,
    pub cost_usd: f64,
    seen_calls: HashSet<String>,
}

impl RunBudget {
    pub fn new(s: &BudgetConfig, started: Instant) -> Self {
        Self {
            max_tokens: s.max_tokens_per_request,
            max_tool_calls: s.max_tool_calls,
            max_cost_usd: s.max_cost_per_request_usd,
            deadline: started + std::time::Duration::from_secs(s.request_timeout_secs),
            tokens: 0,
            tool_calls: 0,
            cost_usd: 0.0,
            seen_calls: HashSet::new(),
        }
    }

    /// Tokens still available for the next model call.
    pub fn remaining_tokens(&self) -> u32 {
        self.max_tokens.saturating_sub(self.tokens)
    }

    /// `max_tokens` of the next model call: the per-call cap, or what is left of the
    /// request's budget when that is less.
    pub fn call_cap(&self, per_call: u32) -> u32 {
        per_call.min(self.remaining_tokens())
    }

    /// Records a model call's usage; errs when a limit is now exceeded.
    pub fn spend(&mut self, tokens: u32, cost_usd: f64) -> Result<(), BudgetKind> {
        self.tokens = self.tokens.saturating_add(tokens);
        self.cost_usd += cost_usd;
        if self.tokens > self.max_tokens {
            return Err(BudgetKind::Tokens);
        }
        if self.cost_usd > self.max_cost_usd {
            return Err(BudgetKind::Cost);
        }
        Ok(())
    }

    /// Records a tool call; errs on the call past the limit, or on an identical repeat.
    pub fn tool_call(&mut self, name: &str, args: &serde_json::Value) -> Result<(), BudgetKind> {
        let signature = format!("{name}:{}", canonical_json(args));
        if !self.seen_calls.insert(signature) {
            return Err(BudgetKind::Loop);
        }
        if self.tool_calls >= self.max_tool_calls {
            return Err(BudgetKind::ToolCalls);
        }
        self.tool_calls += 1;
        Ok(())
    }
}

/// JSON with object keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one call.
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: std::collections::BTreeMap<_, _> =
                    m.iter().map(|(k, v)| (k.clone(), sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    flushed_tokens: u64,
    flushed_cost: f64,
    pending_tokens: u64,
    pending_cost: f64,
}

/// Per-tenant daily token and cost totals.
pub struct UsageLedger {
    db: Db,
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl UsageLedger {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Today's (tokens, cost) for a tenant, loading the stored total on first use.
    pub async fn today(&self, tenant: &TenantId, day: &str) -> Result<(u64, f64), sqlx::Error> {
        let key = (tenant.as_str().to_string(), day.to_string());
        if let Some(e) = self.entries.lock().expect("ledger lock").get(&key) {
            return Ok((
                e.flushed_tokens + e.pending_tokens,
                e.flushed_cost + e.pending_cost,
            ));
        }
        let row =
            sqlx::query("SELECT tokens, cost_usd FROM tenant_usage WHERE tenant = $1 AND day = $2")
                .bind(tenant.as_str())
                .bind(day)
                .fetch_optional(self.db.pool())
                .await?;
        let (tokens, cost) = match row {
            Some(r) => (
                r.try_get::<i64, _>("tokens")? as u64,
                r.try_get::<f64, _>("cost_usd")?,
            ),
            None => (0, 0.0),
        };
        let mut map = self.entries.lock().expect("ledger lock");
        let e = map.entry(key).or_insert(Entry {
            flushed_tokens: tokens,
            flushed_cost: cost,
            ..Entry::default()
        });
        Ok((
            e.flushed_tokens + e.pending_tokens,
            e.flushed_cost + e.pending_cost,
        ))
    }

    pub fn add(&self, tenant: &TenantId, day: &str, tokens: u64, cost: f64) {
        let mut map = self.entries.lock().expect("ledger lock");
        let e = map
            .entry((tenant.as_str().to_string(), day.to_string()))
            .or_default();
        e.pending_tokens += tokens;
        e.pending_cost += cost;
    }

    /// Writes pending deltas with an atomic upsert; on failure they stay pending.
    pub async fn flush(&self) -> Result<(), sqlx::Error> {
        let pending: Vec<((String, String), u64, f64)> = {
            let map = self.entries.lock().expect("ledger lock");
            map.iter()
                .filter(|(_, e)| e.pending_tokens > 0 || e.pending_cost > 0.0)
                .map(|(k, e)| (k.clone(), e.pending_tokens, e.pending_cost))
                .collect()
        };
        for ((tenant, day), tokens, cost) in pending {
            sqlx::query(
                "INSERT INTO tenant_usage (tenant, day, tokens, cost_usd) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, day) DO UPDATE SET tokens = tenant_usage.tokens + excluded.tokens, \
                 cost_usd = tenant_usage.cost_usd + excluded.cost_usd",
            )
            .bind(&tenant)
            .bind(&day)
            .bind(tokens as i64)
            .bind(cost)
            .execute(self.db.pool())
            .await?;
            let mut map = self.entries.lock().expect("ledger lock");
            if let Some(e) = map.get_mut(&(tenant, day)) {
                e.pending_tokens -= tokens;
                e.pending_cost -= cost;
                e.flushed_tokens += tokens;
                e.flushed_cost += cost;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn budget() -> RunBudget {
        let s = BudgetConfig {
            max_tokens_per_request: 100,
            max_tool_calls: 2,
            max_cost_per_request_usd: 0.01,
            ..BudgetConfig::default()
        };
        RunBudget::new(&s, Instant::now())
    }

    #[test]
    fn each_limit_trips_its_kind() {
        let mut b = budget();
        assert_eq!(b.spend(100, 0.0), Ok(()));
        assert_eq!(b.spend(1, 0.0), Err(BudgetKind::Tokens));
        let mut b = budget();
        assert_eq!(b.spend(1, 0.02), Err(BudgetKind::Cost));
        let mut b = budget();
        assert_eq!(b.tool_call("t", &json!({"a": 1})), Ok(()));
        assert_eq!(b.tool_call("t", &json!({"a": 2})), Ok(()));
        assert_eq!(
            b.tool_call("t", &json!({"a": 3})),
            Err(BudgetKind::ToolCalls)
        );
    }

    #[test]
    fn a_call_asks_for_its_cap_or_what_the_budget_has_left() {
        let mut b = budget();
        assert_eq!(b.call_cap(40), 40);
        b.spend(70, 0.0).unwrap();
        assert_eq!(b.call_cap(40), 30);
        b.spend(30, 0.0).unwrap();
        assert_eq!(b.call_cap(40), 0);
    }

    #[test]
    fn identical_call_is_a_loop_regardless_of_key_order() {
        let mut b = budget();
        b.tool_call("t", &json!({"a": 1, "b": [1, {"y": 1, "x": 2}]}))
            .unwrap();
        assert_eq!(
            b.tool_call("t", &json!({"b": [1, {"x": 2, "y": 1}], "a": 1})),
            Err(BudgetKind::Loop)
        );
        assert_eq!(
            b.tool_call("u", &json!({"a": 1, "b": [1, {"y": 1, "x": 2}]})),
            Ok(())
        );
    }
}
