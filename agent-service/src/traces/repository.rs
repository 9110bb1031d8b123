//! Trace storage: batched inserts (one transaction per batch, multi-row statements), the
//! tenant-scoped list with keyset paging over `(started_at, trace_id)`, one trace with its
//! spans, and batched deletion of old traces. Runtime SQL both back-ends accept.
//!
//! A trace is one `traces` row (the summary the list pages over) and one `spans` row
//! holding its span tree as a JSON array: the tree is always read whole, and one row per
//! trace costs a fraction of one row per span to write (see `scripts/bench-traces.sh`).

use sqlx::Row;
use sqlx::any::AnyRow;

pub use super::StoredSpan;
use super::TraceRecord;
use crate::db::{Backend, Db};
use crate::domain::{TenantId, TraceId};

const TRACE_COLUMNS: usize = 16;
const SPAN_COLUMNS: usize = 2;

/// Rows per multi-row INSERT. SQLite (through sqlx) looks up each parameter's name by a
/// linear scan, so binding cost grows with the square of the parameters in one
/// statement: about a hundred parameters keeps that small. PostgreSQL binds by position;
/// larger statements save round trips (and stay under its 65,535-parameter limit).
fn rows_per_statement(backend: Backend, columns: usize) -> usize {
    match backend {
        Backend::Sqlite => 112 / columns,
        Backend::Postgres => 6000 / columns,
    }
}

/// `($1, $2, …), (…)` for `rows` rows of `cols` parameters.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// Stores a batch of traces and their spans in one transaction. A trace id that is
/// already stored is skipped (a replayed batch changes nothing).
pub async fn insert_batch(db: &Db, traces: &[TraceRecord]) -> Result<(), sqlx::Error> {
    if traces.is_empty() {
        return Ok(());
    }
    let mut tx = db.pool().begin().await?;
    // The first statement is a write, so SQLite takes its write lock at once.
    for chunk in traces.chunks(rows_per_statement(db.backend(), TRACE_COLUMNS)) {
        let sql = format!(
            "INSERT INTO traces (trace_id, tenant, request_id, workflow, status, error_code, \
             started_at, duration_us, prompt_tokens, completion_tokens, cost_usd, model, provider, \
             span_count, flagged, guardrail_rule) VALUES {} ON CONFLICT (trace_id) DO NOTHING",
            placeholders(chunk.len(), TRACE_COLUMNS)
        );
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q
                .bind(&t.trace_id)
                .bind(&t.tenant)
                .bind(&t.request_id)
                .bind(&t.workflow)
                .bind(&t.status)
                .bind(&t.error_code)
                .bind(t.started_at_ms)
                .bind(t.duration_us)
                .bind(t.prompt_tokens)
                .bind(t.completion_tokens)
                .bind(t.cost_usd)
                .bind(&t.model)
                .bind(&t.provider)
                .bind(i64::try_from(t.spans.len()).unwrap_or(i64::MAX))
                .bind(i64::from(t.flagged))
                .bind(&t.guardrail_rule);
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in traces.chunks(rows_per_statement(db.backend(), SPAN_COLUMNS)) {
        let sql = format!(
            "INSERT INTO spans (trace_id, spans) VALUES {} ON CONFLICT (trace_id) DO NOTHING",
            placeholders(chunk.len(), SPAN_COLUMNS)
        );
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q.bind(&t.trace_id).bind(super::spans_json(&t.spans));
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// A stored trace's summary row.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub trace_id: String,
    pub request_id: String,
    pub workflow: String,
    pub status: String,
    pub error_code: Option<String>,
    pub started_at_ms: i64,
    pub duration_us: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
    pub model: String,
    pub provider: String,
    pub span_count: i64,
    /// A guardrail flagged the run's input or a tool result.
    pub flagged: bool,
    /// The rule that blocked the run, else its first flag's.
    pub guardrail_rule: Option<String>,
}

/// Filters of the trace list; every one is optional. Results are newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFilter {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub min_duration_us: Option<i64>,
    pub since_ms: Option<i64>,
    pub request_id: Option<String>,
    /// Only flagged runs (`true`) or only runs no guardrail flagged (`false`).
    pub flagged: Option<bool>,
    /// Keyset position: only traces strictly older than this `(started_at, trace_id)`.
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

const SUMMARY_COLUMNS: &str = "trace_id, request_id, workflow, status, error_code, started_at, \
    duration_us, prompt_tokens, completion_tokens, cost_usd, model, provider, span_count, \
    flagged, guardrail_rule";

fn summary_from(row: &AnyRow) -> Result<TraceSummary, sqlx::Error> {
    Ok(TraceSummary {
        trace_id: row.try_get("trace_id")?,
        request_id: row.try_get("request_id")?,
        workflow: row.try_get("workflow")?,
        status: row.try_get("status")?,
        error_code: row.try_get("error_code")?,
        started_at_ms: row.try_get("started_at")?,
        duration_us: row.try_get("duration_us")?,
        prompt_tokens: row.try_get("prompt_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        cost_usd: row.try_get("cost_usd")?,
        model: row.try_get("model")?,
        provider: row.try_get("provider")?,
        span_count: row.try_get("span_count")?,
        flagged: row.try_get::<i64, _>("flagged")? != 0,
        guardrail_rule: row.try_get("guardrail_rule")?,
    })
}

/// One page of the tenant's traces, newest first (`limit` rows at most).
pub async fn list(
    db: &Db,
    tenant: &TenantId,
    f: &TraceFilter,
) -> Result<Vec<TraceSummary>, sqlx::Error> {
    enum Arg<'a> {
        Text(&'a str),
        Int(i64),
    }
    let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM traces WHERE tenant = $1");
    let mut args: Vec<Arg> = vec![Arg::Text(tenant.as_str())];
    let filters = [
        (" AND status = ", f.status.as_deref().map(Arg::Text)),
        (" AND workflow = ", f.workflow.as_deref().map(Arg::Text)),
        (" AND request_id = ", f.request_id.as_deref().map(Arg::Text)),
        (" AND duration_us >= ", f.min_duration_us.map(Arg::Int)),
        (" AND started_at >= ", f.since_ms.map(Arg::Int)),
    ];
    for (condition, arg) in filters {
        if let Some(arg) = arg {
            args.push(arg);
            sql.push_str(&format!("{condition}${}", args.len()));
        }
    }
    // A literal, not a parameter: only then may either planner use the partial index of
    // flagged runs (`traces_tenant_flagged`).
    match f.flagged {
        Some(true) => sql.push_str(" AND flagged = 1"),
        Some(false) => sql.push_str(" AND flagged = 0"),
        None => {}
    }
    if let Some((at, id)) = &f.before {
        // `started_at <= at` alone bounds the index range; the OR picks the exact position.
        args.push(Arg::Int(*at));
        let at_n = args.len();
        args.push(Arg::Text(id));
        let id_n = args.len();
        sql.push_str(&format!(
            " AND started_at <= ${at_n} AND (started_at < ${at_n} OR trace_id < ${id_n})"
        ));
    }
    args.push(Arg::Int(f.limit));
    sql.push_str(&format!(
        " ORDER BY started_at DESC, trace_id DESC LIMIT ${}",
        args.len()
    ));
    let mut q = sqlx::query(&sql);
    for a in &args {
        q = match a {
            Arg::Text(t) => q.bind(*t),
            Arg::Int(i) => q.bind(*i),
        };
    }
    let rows = q.fetch_all(db.pool()).await?;
    rows.iter().map(summary_from).collect()
}

/// One trace of the tenant with its spans in recording order; another tenant's trace is
/// simply not found.
pub async fn get(
    db: &Db,
    tenant: &TenantId,
    trace_id: &TraceId,
) -> Result<Option<(TraceSummary, Vec<StoredSpan>)>, sqlx::Error> {
    let Some(row) = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM traces WHERE tenant = $1 AND trace_id = $2"
    ))
    .bind(tenant.as_str())
    .bind(trace_id.as_str())
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    let summary = summary_from(&row)?;
    let doc: Option<String> = sqlx::query("SELECT spans FROM spans WHERE trace_id = $1")
        .bind(trace_id.as_str())
        .fetch_optional(db.pool())
        .await?
        .map(|r| r.try_get("spans"))
        .transpose()?;
    let spans: Vec<StoredSpan> = match doc {
        Some(text) => serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        None => Vec::new(),
    };
    Ok(Some((summary, spans)))
}

/// Every tenant that has traces, by a loose index scan (one index probe per tenant), so
/// retention needs no index of its own on `started_at`.
pub async fn tenants(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query(
        "WITH RECURSIVE t(tenant) AS ( \
           SELECT MIN(tenant) FROM traces \
           UNION ALL \
           SELECT (SELECT MIN(tenant) FROM traces WHERE traces.tenant > t.tenant) FROM t \
           WHERE t.tenant IS NOT NULL) \
         SELECT tenant FROM t WHERE tenant IS NOT NULL",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| r.try_get("tenant"))
    .collect()
}

/// Deletes up to `limit` of the tenant's oldest traces started before `cutoff_ms`, with
/// their spans, in one transaction; returns how many traces went.
pub async fn delete_older_than(
    db: &Db,
    tenant: &str,
    cutoff_ms: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let ids: Vec<String> = sqlx::query(
        "SELECT trace_id FROM traces WHERE tenant = $1 AND started_at < $2 \
         ORDER BY started_at LIMIT $3",
    )
    .bind(tenant)
    .bind(cutoff_ms)
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| r.try_get("trace_id"))
    .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let list = (1..=ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let spans_sql = format!("DELETE FROM spans WHERE trace_id IN ({list})");
    let traces_sql = format!("DELETE FROM traces WHERE trace_id IN ({list})");
    let mut spans = sqlx::query(&spans_sql);
    let mut traces = sqlx::query(&traces_sql);
    for id in &ids {
        spans = spans.bind(id);
        traces = traces.bind(id);
    }
    let mut tx = db.pool().begin().await?;
    spans.execute(&mut *tx).await?;
    let deleted = traces.execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(1, 1), "($1)");
    }
}
