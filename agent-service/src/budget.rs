//! Budgets: the per-request [`RunBudget`] (tokens, tool calls, cost, deadline, loop
//! detection) and the per-tenant daily [`UsageLedger`], whose reservations hold against
//! the total every replica on the database shares.

use std::collections::HashSet;

use sqlx::Row;
use tokio::time::Instant;

use crate::config::BudgetConfig;
use crate::db::{Backend, Db};
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

/// How a tenant's daily budget answers a run that wants to start.
#[derive(Debug)]
pub enum Admission {
    /// The run may start; it holds this part of the day's budget until it settles.
    Held(Reservation),
    /// The day's budget is spent: the run is refused for the rest of the day.
    Spent(BudgetKind),
    /// What is left of the day's budget is reserved by runs still in flight; it comes back
    /// as they settle, so the caller may retry shortly.
    Busy(BudgetKind),
}

/// The part of a tenant's daily budget one run holds while it is in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub id: String,
    pub tenant: String,
    pub day: String,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// A tenant's day as stored: what its runs spent and what runs in flight hold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DayUsage {
    pub tokens: u64,
    pub cost_usd: f64,
    pub reserved_tokens: u64,
    pub reserved_cost_usd: f64,
}

/// How often a run retries its reservation when other runs change the day's row between
/// its read and its conditional update.
const RESERVE_ATTEMPTS: u32 = 4;
/// Slack on the cost comparison, so a reservation of exactly what is left is not refused
/// by floating-point rounding.
const COST_EPSILON: f64 = 1e-9;
/// How long a reservation outlives the longest a run may take before it counts as left by
/// a process that died.
const RESERVATION_GRACE_SECS: u64 = 60;

/// Per-tenant daily token and cost budgets, enforced against the total every process on
/// the database shares.
///
/// Before a run starts it reserves the most one run may spend (`MAX_TOKENS_PER_REQUEST`,
/// `MAX_COST_PER_REQUEST_USD`; what is left of the day when that is less) with one
/// conditional update of the tenant's day row: spent + reserved may not pass the budget.
/// When the run ends — answered, failed, cut by its deadline or dropped with its client —
/// it settles: the reservation is released and the real usage added, in one statement.
/// So a run's spend is visible to every other replica from the moment it starts, and the
/// day's total can pass the budget only by what runs admitted on a partial reservation
/// spend beyond it: bounded by the runs in flight, not by the number of replicas.
/// A reservation left by a process that died expires ([`UsageLedger::sweep`]) and is
/// charged in full.
pub struct UsageLedger {
    db: Db,
    token_budget: u64,
    cost_budget: f64,
    run_tokens: u64,
    run_cost: f64,
    ttl_ms: i64,
}

impl UsageLedger {
    pub fn new(db: Db, budgets: &BudgetConfig) -> Self {
        Self {
            db,
            token_budget: budgets.tenant_daily_token_budget,
            cost_budget: budgets.tenant_daily_cost_budget_usd,
            run_tokens: u64::from(budgets.max_tokens_per_request),
            run_cost: budgets.max_cost_per_request_usd,
            ttl_ms: ((budgets.request_timeout_secs + RESERVATION_GRACE_SECS) * 1000) as i64,
        }
    }

    /// How many tokens and dollars one run reserves when the day has that much left.
    pub fn reservation_size(&self) -> (u64, f64) {
        (
            self.run_tokens.min(self.token_budget),
            self.run_cost.min(self.cost_budget),
        )
    }

    /// Reserves what one run may spend from `tenant`'s `day`, or says why it may not start.
    pub async fn reserve(
        &self,
        tenant: &TenantId,
        day: &str,
        now_ms: i64,
    ) -> Result<Admission, sqlx::Error> {
        if self.token_budget == 0 {
            return Ok(Admission::Spent(BudgetKind::TenantDailyTokens));
        }
        if self.cost_budget <= 0.0 {
            return Ok(Admission::Spent(BudgetKind::TenantDailyCost));
        }
        let mut want = self.reservation_size();
        for _ in 0..RESERVE_ATTEMPTS {
            let r = Reservation {
                id: uuid::Uuid::new_v4().simple().to_string(),
                tenant: tenant.as_str().to_string(),
                day: day.to_string(),
                tokens: want.0,
                cost_usd: want.1,
            };
            if self.try_reserve(&r, now_ms).await? {
                return Ok(Admission::Held(r));
            }
            // It did not fit whole: reserve what is left, if anything is.
            let u = self.day(tenant, day).await?;
            if u.tokens >= self.token_budget {
                return Ok(Admission::Spent(BudgetKind::TenantDailyTokens));
            }
            if u.cost_usd >= self.cost_budget {
                return Ok(Admission::Spent(BudgetKind::TenantDailyCost));
            }
            let left_tokens = self
                .token_budget
                .saturating_sub(u.tokens + u.reserved_tokens);
            let left_cost = self.cost_budget - u.cost_usd - u.reserved_cost_usd;
            if left_tokens == 0 {
                return Ok(Admission::Busy(BudgetKind::TenantDailyTokens));
            }
            if left_cost <= COST_EPSILON {
                return Ok(Admission::Busy(BudgetKind::TenantDailyCost));
            }
            want = (want.0.min(left_tokens), want.1.min(left_cost));
        }
        // Other runs kept taking what was left between the read and the update.
        Ok(Admission::Busy(BudgetKind::TenantDailyTokens))
    }

    /// One conditional update: holds `r` when spent + reserved + `r` fits the budget.
    async fn try_reserve(&self, r: &Reservation, now_ms: i64) -> Result<bool, sqlx::Error> {
        // On a day's first run the row is inserted holding `r`, which never exceeds the
        // budget (`reservation_size`); on later runs only the guarded update applies.
        const HOLD: &str = "INSERT INTO tenant_usage \
             (tenant, day, tokens, cost_usd, reserved_tokens, reserved_cost_usd) \
             VALUES ($1, $2, 0, 0, $3, $4) \
             ON CONFLICT (tenant, day) DO UPDATE SET \
             reserved_tokens = tenant_usage.reserved_tokens + excluded.reserved_tokens, \
             reserved_cost_usd = tenant_usage.reserved_cost_usd + excluded.reserved_cost_usd \
             WHERE tenant_usage.tokens + tenant_usage.reserved_tokens + excluded.reserved_tokens <= $5 \
             AND tenant_usage.cost_usd + tenant_usage.reserved_cost_usd + excluded.reserved_cost_usd <= $6";
        let tokens = i64::try_from(r.tokens).unwrap_or(i64::MAX);
        let budget = i64::try_from(self.token_budget).unwrap_or(i64::MAX);
        let expires = now_ms + self.ttl_ms;
        match self.db.backend() {
            // One statement, one round trip: the row of the reservation is written only
            // when the guarded update took it.
            Backend::Postgres => {
                let sql = format!(
                    "WITH held AS ({HOLD} RETURNING tenant) \
                     INSERT INTO budget_reservations (id, tenant, day, tokens, cost_usd, created_at, expires_at) \
                     SELECT $7, $1, $2, $3, $4, $8, $9 FROM held"
                );
                let n = sqlx::query(&sql)
                    .bind(&r.tenant)
                    .bind(&r.day)
                    .bind(tokens)
                    .bind(r.cost_usd)
                    .bind(budget)
                    .bind(self.cost_budget + COST_EPSILON)
                    .bind(&r.id)
                    .bind(now_ms)
                    .bind(expires)
                    .execute(self.db.pool())
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }
            // SQLite has no writing CTEs; its one writer makes the transaction as cheap.
            Backend::Sqlite => {
                let mut tx = self.db.pool().begin().await?;
                let n = sqlx::query(HOLD)
                    .bind(&r.tenant)
                    .bind(&r.day)
                    .bind(tokens)
                    .bind(r.cost_usd)
                    .bind(budget)
                    .bind(self.cost_budget + COST_EPSILON)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO budget_reservations (id, tenant, day, tokens, cost_usd, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&r.id)
                .bind(&r.tenant)
                .bind(&r.day)
                .bind(tokens)
                .bind(r.cost_usd)
                .bind(now_ms)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    }

    /// Ends a run's reservation: releases it and books what the run really spent. When
    /// the reservation already expired (and was charged in full), only spend beyond it is
    /// added.
    pub async fn settle(
        &self,
        r: &Reservation,
        tokens: u64,
        cost_usd: f64,
    ) -> Result<(), sqlx::Error> {
        let held = i64::try_from(r.tokens).unwrap_or(i64::MAX);
        let spent = i64::try_from(tokens).unwrap_or(i64::MAX);
        const BOOK: &str = "UPDATE tenant_usage SET reserved_tokens = reserved_tokens - $3, \
             reserved_cost_usd = reserved_cost_usd - $4, tokens = tokens + $5, cost_usd = cost_usd + $6 \
             WHERE tenant = $1 AND day = $2";
        let settled = match self.db.backend() {
            Backend::Postgres => {
                let sql = format!(
                    "WITH gone AS (DELETE FROM budget_reservations WHERE id = $7 RETURNING id) \
                     {BOOK} AND EXISTS (SELECT 1 FROM gone)"
                );
                sqlx::query(&sql)
                    .bind(&r.tenant)
                    .bind(&r.day)
                    .bind(held)
                    .bind(r.cost_usd)
                    .bind(spent)
                    .bind(cost_usd)
                    .bind(&r.id)
                    .execute(self.db.pool())
                    .await?
                    .rows_affected()
                    == 1
            }
            Backend::Sqlite => {
                let mut tx = self.db.pool().begin().await?;
                let gone = sqlx::query("DELETE FROM budget_reservations WHERE id = $1")
                    .bind(&r.id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if gone == 1 {
                    sqlx::query(BOOK)
                        .bind(&r.tenant)
                        .bind(&r.day)
                        .bind(held)
                        .bind(r.cost_usd)
                        .bind(spent)
                        .bind(cost_usd)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                gone == 1
            }
        };
        let (over_tokens, over_cost) = (
            tokens.saturating_sub(r.tokens),
            (cost_usd - r.cost_usd).max(0.0),
        );
        if !settled && (over_tokens > 0 || over_cost > 0.0) {
            sqlx::query(BOOK)
                .bind(&r.tenant)
                .bind(&r.day)
                .bind(0i64)
                .bind(0.0f64)
                .bind(i64::try_from(over_tokens).unwrap_or(i64::MAX))
                .bind(over_cost)
                .execute(self.db.pool())
                .await?;
        }
        Ok(())
    }

    /// Charges in full, and removes, the reservations that expired before `now_ms`: those
    /// of runs whose process died before settling. Returns how many there were. Safe to
    /// run from every replica at once: each expired row is deleted, and charged, once.
    pub async fn sweep(&self, now_ms: i64) -> Result<u64, sqlx::Error> {
        let mut tx = self.db.pool().begin().await?;
        let expired = sqlx::query(
            "DELETE FROM budget_reservations WHERE expires_at < $1 \
             RETURNING tenant, day, tokens, cost_usd",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        for row in &expired {
            let tokens: i64 = row.try_get("tokens")?;
            let cost: f64 = row.try_get("cost_usd")?;
            sqlx::query(
                "UPDATE tenant_usage SET reserved_tokens = reserved_tokens - $3, \
                 reserved_cost_usd = reserved_cost_usd - $4, tokens = tokens + $3, \
                 cost_usd = cost_usd + $4 WHERE tenant = $1 AND day = $2",
            )
            .bind(row.try_get::<String, _>("tenant")?)
            .bind(row.try_get::<String, _>("day")?)
            .bind(tokens)
            .bind(cost)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(expired.len() as u64)
    }

    /// A tenant's day as stored (zero when it has no runs yet).
    pub async fn day(&self, tenant: &TenantId, day: &str) -> Result<DayUsage, sqlx::Error> {
        let row = sqlx::query(
            "SELECT tokens, cost_usd, reserved_tokens, reserved_cost_usd FROM tenant_usage \
             WHERE tenant = $1 AND day = $2",
        )
        .bind(tenant.as_str())
        .bind(day)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else {
            return Ok(DayUsage::default());
        };
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(DayUsage {
            tokens: count(r.try_get("tokens")?),
            cost_usd: r.try_get("cost_usd")?,
            reserved_tokens: count(r.try_get("reserved_tokens")?),
            reserved_cost_usd: r.try_get("reserved_cost_usd")?,
        })
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

    async fn ledger(tokens: u64, per_run: u32) -> (UsageLedger, Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let cfg = BudgetConfig {
            tenant_daily_token_budget: tokens,
            tenant_daily_cost_budget_usd: 1.0,
            max_tokens_per_request: per_run,
            max_cost_per_request_usd: 0.25,
            request_timeout_secs: 10,
            ..BudgetConfig::default()
        };
        (UsageLedger::new(db.clone(), &cfg), db, dir)
    }

    fn held(a: Admission) -> Reservation {
        match a {
            Admission::Held(r) => r,
            other => panic!("expected a reservation, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn runs_reserve_the_most_they_may_spend_and_settle_what_they_spent() {
        let (ledger, _db, _dir) = ledger(1_000, 400).await;
        let t = TenantId::parse("acme").unwrap();
        let (day, now) = ("2030-01-01", 1_000);
        let a = held(ledger.reserve(&t, day, now).await.unwrap());
        let b = held(ledger.reserve(&t, day, now).await.unwrap());
        assert_eq!((a.tokens, a.cost_usd), (400, 0.25));
        // 800 of 1,000 held: the third run gets what is left.
        let c = held(ledger.reserve(&t, day, now).await.unwrap());
        assert_eq!(c.tokens, 200);
        // Nothing left, though nothing is spent yet: busy, not spent.
        assert!(matches!(
            ledger.reserve(&t, day, now).await.unwrap(),
            Admission::Busy(BudgetKind::TenantDailyTokens)
        ));
        ledger.settle(&a, 100, 0.01).await.unwrap();
        let u = ledger.day(&t, day).await.unwrap();
        assert_eq!((u.tokens, u.reserved_tokens), (100, 600));
        // A run may spend past a partial reservation: the day goes over by that much.
        ledger.settle(&c, 350, 0.01).await.unwrap();
        ledger.settle(&b, 600, 0.01).await.unwrap();
        let u = ledger.day(&t, day).await.unwrap();
        assert_eq!((u.tokens, u.reserved_tokens), (1_050, 0));
        assert!(u.reserved_cost_usd.abs() < 1e-9, "{u:?}");
        assert!(matches!(
            ledger.reserve(&t, day, now).await.unwrap(),
            Admission::Spent(BudgetKind::TenantDailyTokens)
        ));
        // Other tenants and other days are their own.
        let other = TenantId::parse("other").unwrap();
        held(ledger.reserve(&other, day, now).await.unwrap());
        held(ledger.reserve(&t, "2030-01-02", now).await.unwrap());
    }

    #[tokio::test]
    async fn the_cost_budget_holds_the_same_way() {
        let (ledger, _db, _dir) = ledger(1_000_000, 100).await;
        let t = TenantId::parse("acme").unwrap();
        let rs: Vec<Reservation> =
            futures::future::join_all((0..4).map(|_| ledger.reserve(&t, "d", 0)))
                .await
                .into_iter()
                .map(|a| held(a.unwrap()))
                .collect();
        assert!(
            (rs.iter().map(|r| r.cost_usd).sum::<f64>() - 1.0).abs() < 1e-9,
            "four runs hold the whole dollar: {rs:?}"
        );
        assert!(matches!(
            ledger.reserve(&t, "d", 0).await.unwrap(),
            Admission::Busy(BudgetKind::TenantDailyCost)
        ));
        for r in &rs {
            ledger.settle(r, 10, 0.3).await.unwrap();
        }
        assert!(matches!(
            ledger.reserve(&t, "d", 0).await.unwrap(),
            Admission::Spent(BudgetKind::TenantDailyCost)
        ));
    }

    #[tokio::test]
    async fn reservations_of_a_dead_process_expire_and_are_charged_in_full() {
        let (ledger, db, _dir) = ledger(1_000, 400).await;
        let t = TenantId::parse("acme").unwrap();
        let lost = held(ledger.reserve(&t, "d", 0).await.unwrap());
        let live = held(ledger.reserve(&t, "d", 50_000).await.unwrap());
        // Request timeout 10 s + 60 s of grace.
        assert_eq!(ledger.sweep(69_999).await.unwrap(), 0);
        assert_eq!(ledger.sweep(70_001).await.unwrap(), 1);
        let u = ledger.day(&t, "d").await.unwrap();
        assert_eq!((u.tokens, u.reserved_tokens), (400, 400));
        // A run settling after its reservation expired adds only what it spent beyond it.
        ledger.settle(&lost, 450, 0.0).await.unwrap();
        ledger.settle(&live, 20, 0.0).await.unwrap();
        let u = ledger.day(&t, "d").await.unwrap();
        assert_eq!((u.tokens, u.reserved_tokens), (470, 0));
        let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM budget_reservations")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn a_zero_budget_refuses_every_run() {
        let (ledger, _db, _dir) = ledger(0, 400).await;
        let t = TenantId::parse("acme").unwrap();
        assert!(matches!(
            ledger.reserve(&t, "d", 0).await.unwrap(),
            Admission::Spent(BudgetKind::TenantDailyTokens)
        ));
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
