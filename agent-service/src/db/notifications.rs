//! Notification tables: receivers per tenant, the outbox of events, and deliveries (one per
//! event and receiver, each a `notify` job in the job queue).
//!
//! Events are written to the outbox in the transaction of the change they announce (an
//! approval decided commits with its event, or neither does). The dispatcher claims
//! undispatched events and, in the same transaction, creates one delivery and its job per
//! subscribed receiver; `UNIQUE (receiver_id, event_id)` makes a second fan-out of the same
//! event (another process, a retry) create nothing. Receivers' URLs and secrets are stored
//! only sealed; this module never sees them in the clear.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::jobs::JobStatus;
use super::{Backend, Db};
use crate::domain::{EventId, JobId, ReceiverId, TenantId};

fn decode_err(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn json_col(row: &sqlx::any::AnyRow, col: &str) -> Result<Value, sqlx::Error> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

// ---- receivers ------------------------------------------------------------------------

/// A receiver to store; `url_sealed` and `secret_sealed` are already sealed.
#[derive(Debug, Clone)]
pub struct NewReceiver {
    pub id: ReceiverId,
    pub tenant: TenantId,
    pub name: String,
    /// `webhook`, `slack` or `pagerduty`.
    pub format: String,
    pub url_sealed: String,
    pub url_hint: String,
    pub secret_sealed: Option<String>,
    /// Event kinds it gets; empty: every kind.
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
}

/// A receiver as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    pub id: ReceiverId,
    pub tenant: String,
    pub name: String,
    pub format: String,
    pub url_sealed: String,
    pub url_hint: String,
    pub secret_sealed: Option<String>,
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

impl Receiver {
    /// Whether it gets events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|k| k == kind)
    }
}

const RECEIVER_COLUMNS: &str = "id, tenant, name, format, url_sealed, url_hint, secret_sealed, \
    events, created_by, created_at, deleted_at";

fn receiver_from_row(row: &sqlx::any::AnyRow) -> Result<Receiver, sqlx::Error> {
    let events = json_col(row, "events")?;
    Ok(Receiver {
        id: ReceiverId::parse(&row.try_get::<String, _>("id")?).map_err(decode_err)?,
        tenant: row.try_get("tenant")?,
        name: row.try_get("name")?,
        format: row.try_get("format")?,
        url_sealed: row.try_get("url_sealed")?,
        url_hint: row.try_get("url_hint")?,
        secret_sealed: row.try_get("secret_sealed")?,
        events: serde_json::from_value(events).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

/// Stores a receiver inside the caller's transaction (its audit event goes in the same one).
pub async fn insert_receiver(conn: &mut AnyConnection, r: &NewReceiver) -> Result<(), sqlx::Error> {
    let events = serde_json::to_string(&r.events).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO notification_receivers (id, tenant, name, format, url_sealed, url_hint, \
         secret_sealed, events, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(r.id.as_str())
    .bind(r.tenant.as_str())
    .bind(&r.name)
    .bind(&r.format)
    .bind(&r.url_sealed)
    .bind(&r.url_hint)
    .bind(&r.secret_sealed)
    .bind(events)
    .bind(&r.created_by)
    .bind(r.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One live receiver of the tenant; another tenant's (or a deleted one) is not found.
pub async fn get_receiver(
    db: &Db,
    tenant: &TenantId,
    id: &ReceiverId,
) -> Result<Option<Receiver>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {RECEIVER_COLUMNS} FROM notification_receivers \
         WHERE tenant = $1 AND id = $2 AND deleted_at IS NULL"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(receiver_from_row).transpose()
}

/// The tenant's live receivers, oldest first.
pub async fn list_receivers(db: &Db, tenant: &TenantId) -> Result<Vec<Receiver>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {RECEIVER_COLUMNS} FROM notification_receivers \
         WHERE tenant = $1 AND deleted_at IS NULL ORDER BY id"
    ))
    .bind(tenant.as_str())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(receiver_from_row).collect()
}

/// Marks a live receiver of the tenant deleted (inside the caller's transaction); false
/// when there was none. Its queued deliveries fail at their next attempt.
pub async fn delete_receiver(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &ReceiverId,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE notification_receivers SET deleted_at = $1 \
         WHERE tenant = $2 AND id = $3 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---- the outbox -----------------------------------------------------------------------

/// An event for the outbox. `data` is already redacted.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    /// The same happening always has the same key, so noticing it twice stores it once.
    pub dedup_key: String,
    /// `None`: a service-wide event, for every tenant's receivers.
    pub tenant: Option<TenantId>,
    pub kind: String,
    pub data: Value,
    pub created_at: i64,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub tenant: Option<String>,
    pub kind: String,
    pub data: Value,
    pub created_at: i64,
}

const EVENT_COLUMNS: &str = "id, tenant, kind, data, created_at";

fn event_from_row(row: &sqlx::any::AnyRow) -> Result<Event, sqlx::Error> {
    Ok(Event {
        id: EventId::parse(&row.try_get::<String, _>("id")?).map_err(decode_err)?,
        tenant: row.try_get("tenant")?,
        kind: row.try_get("kind")?,
        data: json_col(row, "data")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Puts an event in the outbox inside the caller's transaction; false when an event with
/// its `dedup_key` is already there.
pub async fn insert_event(conn: &mut AnyConnection, e: &NewEvent) -> Result<bool, sqlx::Error> {
    let data = serde_json::to_string(&e.data).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
    let done = sqlx::query(
        "INSERT INTO notification_events (id, dedup_key, tenant, kind, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(e.id.as_str())
    .bind(&e.dedup_key)
    .bind(e.tenant.as_ref().map(TenantId::as_str))
    .bind(&e.kind)
    .bind(data)
    .bind(e.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`insert_event`] in a transaction of its own.
pub async fn insert_event_db(db: &Db, e: &NewEvent) -> Result<bool, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    insert_event(&mut conn, e).await
}

/// What one fan-out did: the event and the deliveries it created.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatched {
    pub event: Event,
    pub deliveries: usize,
}

/// Inserts the delivery of `event` to `receiver` and its `notify` job; false when that
/// delivery exists already (the idempotency key is the event and the receiver).
async fn insert_delivery(
    conn: &mut AnyConnection,
    receiver: &Receiver,
    event: &Event,
    now: i64,
    max_attempts: i64,
) -> Result<Option<JobId>, sqlx::Error> {
    let job_id = JobId::generate();
    let done = sqlx::query(
        "INSERT INTO notification_deliveries (job_id, receiver_id, event_id, tenant, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (receiver_id, event_id) DO NOTHING",
    )
    .bind(job_id.as_str())
    .bind(receiver.id.as_str())
    .bind(event.id.as_str())
    .bind(&receiver.tenant)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO jobs (id, kind, tenant, key_id, key_name, workflow, input_text, user_id, \
         request_id, status, attempts, max_attempts, run_after, cancel_requested, callback_url, \
         callback_attempts, created_at, updated_at) \
         VALUES ($1, 'notify', $2, 'system', 'notifications', $3, '', NULL, $4, 'queued', 0, $5, \
         $6, 0, NULL, 0, $6, $6)",
    )
    .bind(job_id.as_str())
    .bind(&receiver.tenant)
    .bind(&event.kind)
    .bind(event.id.as_str())
    .bind(max_attempts)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(job_id))
}

/// The live receivers an event goes to: its tenant's, or every tenant's for a
/// service-wide event; only those subscribed to its kind.
async fn receivers_for(
    conn: &mut AnyConnection,
    event: &Event,
) -> Result<Vec<Receiver>, sqlx::Error> {
    let rows = match &event.tenant {
        Some(tenant) => {
            sqlx::query(&format!(
                "SELECT {RECEIVER_COLUMNS} FROM notification_receivers \
                 WHERE tenant = $1 AND deleted_at IS NULL ORDER BY id"
            ))
            .bind(tenant.as_str())
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {RECEIVER_COLUMNS} FROM notification_receivers \
                 WHERE deleted_at IS NULL ORDER BY id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let all: Vec<Receiver> = rows
        .iter()
        .map(receiver_from_row)
        .collect::<Result<_, _>>()?;
    Ok(all.into_iter().filter(|r| r.wants(&event.kind)).collect())
}

/// Fans out up to `limit` undispatched events, oldest first, in one transaction: each is
/// marked dispatched and gets one delivery (a queued `notify` job with `max_attempts`) per
/// subscribed receiver. Concurrent dispatchers take disjoint events (PostgreSQL `SKIP
/// LOCKED`; SQLite's single writer).
pub async fn dispatch(
    db: &Db,
    now: i64,
    limit: i64,
    max_attempts: i64,
) -> Result<Vec<Dispatched>, sqlx::Error> {
    let skip_locked = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let mut tx = db.pool().begin().await?;
    // The claim is the first statement: on SQLite it takes the write lock at once.
    let rows = sqlx::query(&format!(
        "UPDATE notification_events SET dispatched_at = $1 \
         WHERE id IN (SELECT id FROM notification_events WHERE dispatched_at IS NULL \
                      ORDER BY created_at, id LIMIT $2{skip_locked}) \
         RETURNING {EVENT_COLUMNS}"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut events: Vec<Event> = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
    events.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let mut deliveries = 0;
        for receiver in receivers_for(&mut tx, &event).await? {
            if insert_delivery(&mut tx, &receiver, &event, now, max_attempts)
                .await?
                .is_some()
            {
                deliveries += 1;
            }
        }
        out.push(Dispatched { event, deliveries });
    }
    tx.commit().await?;
    Ok(out)
}

/// Stores a dispatched event for exactly one receiver and its delivery (a test
/// notification); returns the delivery's job id.
pub async fn insert_direct(
    db: &Db,
    receiver: &Receiver,
    e: &NewEvent,
    max_attempts: i64,
) -> Result<JobId, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    insert_event(&mut tx, e).await?;
    sqlx::query("UPDATE notification_events SET dispatched_at = $1 WHERE id = $2")
        .bind(e.created_at)
        .bind(e.id.as_str())
        .execute(&mut *tx)
        .await?;
    let event = Event {
        id: e.id.clone(),
        tenant: e.tenant.as_ref().map(|t| t.as_str().to_string()),
        kind: e.kind.clone(),
        data: e.data.clone(),
        created_at: e.created_at,
    };
    let job = insert_delivery(&mut tx, receiver, &event, e.created_at, max_attempts)
        .await?
        .ok_or_else(|| decode_err(format!("event {} was already delivered", e.id)))?;
    tx.commit().await?;
    Ok(job)
}

// ---- deliveries ---------------------------------------------------------------------

/// What a `notify` job delivers: its receiver (also a deleted one) and its event.
pub async fn delivery_of(db: &Db, job: &JobId) -> Result<Option<(Receiver, Event)>, sqlx::Error> {
    let Some(row) =
        sqlx::query("SELECT receiver_id, event_id FROM notification_deliveries WHERE job_id = $1")
            .bind(job.as_str())
            .fetch_optional(db.pool())
            .await?
    else {
        return Ok(None);
    };
    let receiver_id: String = row.try_get("receiver_id")?;
    let event_id: String = row.try_get("event_id")?;
    let receiver = sqlx::query(&format!(
        "SELECT {RECEIVER_COLUMNS} FROM notification_receivers WHERE id = $1"
    ))
    .bind(&receiver_id)
    .fetch_optional(db.pool())
    .await?;
    let event = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM notification_events WHERE id = $1"
    ))
    .bind(&event_id)
    .fetch_optional(db.pool())
    .await?;
    match (receiver, event) {
        (Some(r), Some(e)) => Ok(Some((receiver_from_row(&r)?, event_from_row(&e)?))),
        _ => Ok(None),
    }
}

/// A delivery as clients see it: the delivery, its receiver and event, and its job's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: JobId,
    pub receiver_id: String,
    pub receiver_name: String,
    pub event_id: String,
    pub event_kind: String,
    pub status: JobStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    /// When the next attempt is due, while queued.
    pub run_after: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The receiver's HTTP status of the delivered attempt.
    pub response_status: Option<i64>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const DELIVERY_SELECT: &str = "SELECT d.job_id AS job_id, d.receiver_id AS receiver_id, \
    r.name AS receiver_name, d.event_id AS event_id, e.kind AS event_kind, j.status AS status, \
    j.attempts AS attempts, j.max_attempts AS max_attempts, j.run_after AS run_after, \
    j.error_code AS error_code, j.error_message AS error_message, j.result AS result, \
    d.created_at AS created_at, j.finished_at AS finished_at \
    FROM notification_deliveries d \
    JOIN jobs j ON j.id = d.job_id \
    JOIN notification_receivers r ON r.id = d.receiver_id \
    JOIN notification_events e ON e.id = d.event_id";

fn delivery_from_row(row: &sqlx::any::AnyRow) -> Result<Delivery, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let result: Option<String> = row.try_get("result")?;
    let response_status = result
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["status_code"].as_i64());
    Ok(Delivery {
        id: JobId::parse(&row.try_get::<String, _>("job_id")?).map_err(decode_err)?,
        receiver_id: row.try_get("receiver_id")?,
        receiver_name: row.try_get("receiver_name")?,
        event_id: row.try_get("event_id")?,
        event_kind: row.try_get("event_kind")?,
        status: JobStatus::parse(&status).map_err(decode_err)?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_after: row.try_get("run_after")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        response_status,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// Filters of [`list_deliveries`]; every one is optional.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub receiver: Option<ReceiverId>,
    pub event: Option<EventId>,
    pub status: Option<JobStatus>,
    /// Only deliveries with ids below this (the page cursor).
    pub before: Option<JobId>,
}

/// The tenant's deliveries, newest first.
pub async fn list_deliveries(
    db: &Db,
    tenant: &TenantId,
    f: &DeliveryFilter,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let mut sql = format!("{DELIVERY_SELECT} WHERE d.tenant = $1");
    let mut n = 1;
    let mut binds: Vec<String> = vec![tenant.as_str().to_string()];
    let mut filter = |sql: &mut String, column: &str, op: &str, value: String| {
        n += 1;
        sql.push_str(&format!(" AND {column} {op} ${n}"));
        binds.push(value);
    };
    if let Some(r) = &f.receiver {
        filter(&mut sql, "d.receiver_id", "=", r.as_str().to_string());
    }
    if let Some(e) = &f.event {
        filter(&mut sql, "d.event_id", "=", e.as_str().to_string());
    }
    if let Some(s) = f.status {
        filter(&mut sql, "j.status", "=", s.as_str().to_string());
    }
    if let Some(b) = &f.before {
        filter(&mut sql, "d.job_id", "<", b.as_str().to_string());
    }
    sql.push_str(&format!(
        " ORDER BY d.job_id DESC LIMIT ${}",
        binds.len() + 1
    ));
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b.as_str());
    }
    let rows = q.bind(limit).fetch_all(db.pool()).await?;
    rows.iter().map(delivery_from_row).collect()
}

/// One delivery of the tenant.
pub async fn get_delivery(
    db: &Db,
    tenant: &TenantId,
    id: &JobId,
) -> Result<Option<Delivery>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "{DELIVERY_SELECT} WHERE d.tenant = $1 AND d.job_id = $2"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(delivery_from_row).transpose()
}

/// Puts a dead or failed delivery of the tenant back in the queue with its attempts reset;
/// false when it is not dead or failed (or not the tenant's).
pub async fn requeue(
    db: &Db,
    tenant: &TenantId,
    id: &JobId,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_after = $1, error_code = NULL, \
         error_message = NULL, result = NULL, finished_at = NULL, updated_at = $1 \
         WHERE id = $2 AND tenant = $3 AND kind = 'notify' AND status IN ('dead', 'failed')",
    )
    .bind(now)
    .bind(id.as_str())
    .bind(tenant.as_str())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---- what the watches read --------------------------------------------------------

/// Every tenant's stored usage on `day` (UTC, `YYYY-MM-DD`): (tenant, tokens, cost USD),
/// across all replicas as of their last flush.
pub async fn usage_on(db: &Db, day: &str) -> Result<Vec<(String, i64, f64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT tenant, tokens, cost_usd FROM tenant_usage WHERE day = $1")
        .bind(day)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("tenant")?,
                r.try_get("tokens")?,
                r.try_get("cost_usd")?,
            ))
        })
        .collect()
}

/// One tenant's stored usage on `day`: (tokens, cost USD), zero when it spent nothing.
pub async fn usage_of(db: &Db, tenant: &TenantId, day: &str) -> Result<(i64, f64), sqlx::Error> {
    let row =
        sqlx::query("SELECT tokens, cost_usd FROM tenant_usage WHERE tenant = $1 AND day = $2")
            .bind(tenant.as_str())
            .bind(day)
            .fetch_optional(db.pool())
            .await?;
    match row {
        Some(r) => Ok((r.try_get("tokens")?, r.try_get("cost_usd")?)),
        None => Ok((0, 0.0)),
    }
}
