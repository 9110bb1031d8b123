//! The tamper-evident audit log: append-only events in per-chain hash chains, appended in
//! the same transaction as the change they record, listed with filters, and verified.
//!
//! Each tenant has its own chain; service-level events (releases) go to [`Chain::System`],
//! stored as `_system`, which no [`TenantId`] can equal. Within a chain `seq` runs 1, 2, 3…
//! and `hash = sha256(prev_hash || canonical JSON of the event fields)`, the first event's
//! `prev_hash` being [`GENESIS`]. Appends to one chain are serialised by the chain's head
//! row in `audit_heads`: the upsert that takes the next `seq` locks it (PostgreSQL) or takes
//! the write lock (SQLite) until the transaction ends, so `seq` order is commit order and a
//! reader that has seen `seq = n` has seen every event before it.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::Db;
use crate::domain::TenantId;

/// The `prev_hash` of the first event of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// How the service-level chain is stored.
pub const SYSTEM_CHAIN: &str = "_system";

/// Which hash chain an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    Tenant(TenantId),
    System,
}

impl Chain {
    pub fn as_str(&self) -> &str {
        match self {
            Chain::Tenant(t) => t.as_str(),
            Chain::System => SYSTEM_CHAIN,
        }
    }
}

/// An event to append; the chain position, id, time and hashes are added by [`append`].
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub chain: Chain,
    /// A key id (`key_…`), `system` for the service itself, or `cli`.
    pub actor: String,
    /// e.g. `approval.approved`, `writes.frozen`, `key.created`, `release_changed`.
    pub action: String,
    /// e.g. `approval/apr_…`, `tenant/demo`, `key/key_…`, `release`.
    pub resource: String,
    /// Already redacted.
    pub details: Value,
    pub request_id: Option<String>,
    pub policy_version: String,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub chain: String,
    pub seq: i64,
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub details: Value,
    pub request_id: Option<String>,
    pub policy_version: String,
    pub prev_hash: String,
    pub hash: String,
}

/// JSON with object keys sorted and no insignificant whitespace: the same value always
/// gives the same bytes, whatever order its keys were built in.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// The hash of an event: `sha256(prev_hash || canonical JSON of its fields)`, hex.
#[allow(clippy::too_many_arguments)]
fn event_hash(
    prev_hash: &str,
    chain: &str,
    seq: i64,
    id: &str,
    at: i64,
    actor: &str,
    action: &str,
    resource: &str,
    details: &Value,
    request_id: Option<&str>,
    policy_version: &str,
) -> String {
    let fields = json!({
        "chain": chain,
        "seq": seq,
        "id": id,
        "at": at,
        "actor": actor,
        "action": action,
        "resource": resource,
        "details": details,
        "request_id": request_id,
        "policy_version": policy_version,
    });
    hex::encode(
        Sha256::new()
            .chain_update(prev_hash.as_bytes())
            .chain_update(canonical_json(&fields).as_bytes())
            .finalize(),
    )
}

impl Event {
    /// The hash this event's fields and `prev_hash` should have.
    pub fn computed_hash(&self) -> String {
        event_hash(
            &self.prev_hash,
            &self.chain,
            self.seq,
            &self.id,
            self.at,
            &self.actor,
            &self.action,
            &self.resource,
            &self.details,
            self.request_id.as_deref(),
            &self.policy_version,
        )
    }
}

/// The next position of a chain, locked for this transaction.
struct Head {
    seq: i64,
    prev_hash: String,
}

/// Takes the next `seq` of `chain` and locks the chain's head row until the transaction
/// ends. On SQLite this is a write, so it also takes the database write lock.
async fn lock_head(conn: &mut AnyConnection, chain: &str) -> Result<Head, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO audit_heads (tenant, seq, hash) VALUES ($1, 1, $2) \
         ON CONFLICT (tenant) DO UPDATE SET seq = audit_heads.seq + 1 \
         RETURNING seq, hash",
    )
    .bind(chain)
    .bind(GENESIS)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Head {
        seq: row.try_get("seq")?,
        prev_hash: row.try_get("hash")?,
    })
}

async fn write_at(
    conn: &mut AnyConnection,
    head: Head,
    ev: &NewEvent,
    at: i64,
) -> Result<Event, sqlx::Error> {
    let chain = ev.chain.as_str().to_string();
    let id = format!("aud_{}", uuid::Uuid::now_v7().simple());
    let hash = event_hash(
        &head.prev_hash,
        &chain,
        head.seq,
        &id,
        at,
        &ev.actor,
        &ev.action,
        &ev.resource,
        &ev.details,
        ev.request_id.as_deref(),
        &ev.policy_version,
    );
    sqlx::query(
        "INSERT INTO audit_events (tenant, seq, id, at, actor, action, resource, details, \
         request_id, policy_version, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&chain)
    .bind(head.seq)
    .bind(&id)
    .bind(at)
    .bind(&ev.actor)
    .bind(&ev.action)
    .bind(&ev.resource)
    .bind(canonical_json(&ev.details))
    .bind(&ev.request_id)
    .bind(&ev.policy_version)
    .bind(&head.prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_heads SET hash = $1 WHERE tenant = $2")
        .bind(&hash)
        .bind(&chain)
        .execute(&mut *conn)
        .await?;
    Ok(Event {
        chain,
        seq: head.seq,
        id,
        at,
        actor: ev.actor.clone(),
        action: ev.action.clone(),
        resource: ev.resource.clone(),
        details: ev.details.clone(),
        request_id: ev.request_id.clone(),
        policy_version: ev.policy_version.clone(),
        prev_hash: head.prev_hash,
        hash,
    })
}

/// Appends an event inside the caller's transaction (commit it with the change it
/// records). Append last in a transaction: the chain stays locked until it ends.
pub async fn append(
    conn: &mut AnyConnection,
    ev: &NewEvent,
    at: i64,
) -> Result<Event, sqlx::Error> {
    let head = lock_head(conn, ev.chain.as_str()).await?;
    write_at(conn, head, ev, at).await
}

const COLUMNS: &str = "tenant, seq, id, at, actor, action, resource, details, request_id, \
    policy_version, prev_hash, hash";

/// A stored row; `details` that are not JSON (an edited row) read as a JSON string.
fn from_row(row: &AnyRow) -> Result<Event, sqlx::Error> {
    let details: String = row.try_get("details")?;
    Ok(Event {
        chain: row.try_get("tenant")?,
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        resource: row.try_get("resource")?,
        details: serde_json::from_str(&details).unwrap_or(Value::String(details)),
        request_id: row.try_get("request_id")?,
        policy_version: row.try_get("policy_version")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Filters of [`list`]; every one is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub resource: Option<String>,
    /// Only events at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only events before this position (the page cursor).
    pub before_seq: Option<i64>,
}

/// A chain's events, newest first.
pub async fn list(
    db: &Db,
    chain: &Chain,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE tenant = $1");
    let mut n = 1;
    let mut clause = |sql: &mut String, expr: &str| {
        n += 1;
        sql.push_str(&format!(" AND {expr} ${n}"));
    };
    if filter.action.is_some() {
        clause(&mut sql, "action =");
    }
    if filter.resource.is_some() {
        clause(&mut sql, "resource =");
    }
    if filter.since_ms.is_some() {
        clause(&mut sql, "at >=");
    }
    if filter.before_seq.is_some() {
        clause(&mut sql, "seq <");
    }
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", n + 1));
    let mut q = sqlx::query(&sql).bind(chain.as_str());
    if let Some(a) = &filter.action {
        q = q.bind(a);
    }
    if let Some(r) = &filter.resource {
        q = q.bind(r);
    }
    if let Some(s) = filter.since_ms {
        q = q.bind(s);
    }
    if let Some(b) = filter.before_seq {
        q = q.bind(b);
    }
    let rows = q.bind(limit).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Events of a chain after position `after_seq` whose action starts with `prefix`, oldest
/// first: what a subscriber that has seen `after_seq` has not seen yet.
pub async fn after(
    db: &Db,
    chain: &Chain,
    after_seq: i64,
    prefix: &str,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE tenant = $1 AND seq > $2 AND action LIKE $3 \
         ORDER BY seq LIMIT $4"
    ))
    .bind(chain.as_str())
    .bind(after_seq)
    .bind(format!("{prefix}%"))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The position of a chain's newest event (0 for an empty chain).
pub async fn head_seq(db: &Db, chain: &Chain) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT seq FROM audit_heads WHERE tenant = $1")
        .bind(chain.as_str())
        .fetch_optional(db.pool())
        .await?;
    row.map_or(Ok(0), |r| r.try_get("seq"))
}

/// The first link of a chain that does not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broken {
    pub seq: i64,
    /// The event's id; `None` when the event is missing.
    pub id: Option<String>,
    pub reason: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub ok: bool,
    /// How many events were checked.
    pub checked: u64,
    pub first_broken: Option<Broken>,
}

const VERIFY_PAGE: i64 = 1000;

/// Recomputes a chain: every `seq` present with no gap, every `prev_hash` equal to the
/// previous event's hash, every hash equal to the hash of the event's fields, and the
/// chain head pointing at the last event. Names the first link that fails.
pub async fn verify(db: &Db, chain: &Chain) -> Result<Verification, sqlx::Error> {
    // Events up to the head read now are committed (seq order is commit order); later
    // appends are not part of this check.
    let head = sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant = $1")
        .bind(chain.as_str())
        .fetch_optional(db.pool())
        .await?;
    let (head_seq, head_hash): (i64, String) = match head {
        Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
        None => (0, GENESIS.to_string()),
    };
    let mut checked = 0u64;
    let mut expected = 1i64;
    let mut prev_hash = GENESIS.to_string();
    let mut last_id: Option<String> = None;
    let broken = |seq, id, reason: String| Verification {
        ok: false,
        checked: 0,
        first_broken: Some(Broken { seq, id, reason }),
    };
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE tenant = $1 AND seq >= $2 AND seq <= $3 \
             ORDER BY seq LIMIT $4"
        ))
        .bind(chain.as_str())
        .bind(expected)
        .bind(head_seq)
        .bind(VERIFY_PAGE)
        .fetch_all(db.pool())
        .await?;
        let page = rows.len();
        for row in &rows {
            let ev = from_row(row)?;
            let problem = if ev.seq != expected {
                Some((
                    expected,
                    None,
                    format!(
                        "event {expected} is missing (deleted): the chain jumps from {} to {}",
                        expected - 1,
                        ev.seq
                    ),
                ))
            } else if ev.prev_hash != prev_hash {
                Some((
                    ev.seq,
                    Some(ev.id.clone()),
                    format!(
                        "prev_hash does not match the hash of event {} (an event before it was changed or replaced)",
                        expected - 1
                    ),
                ))
            } else if ev.computed_hash() != ev.hash {
                Some((
                    ev.seq,
                    Some(ev.id.clone()),
                    "the event's contents do not match its hash (the event was edited)".to_string(),
                ))
            } else {
                None
            };
            if let Some((seq, id, reason)) = problem {
                return Ok(Verification {
                    checked,
                    ..broken(seq, id, reason)
                });
            }
            checked += 1;
            expected += 1;
            prev_hash = ev.hash;
            last_id = Some(ev.id);
        }
        if (page as i64) < VERIFY_PAGE {
            break;
        }
    }
    if expected <= head_seq {
        let reason = if expected == head_seq {
            format!("event {expected} is missing (deleted from the end of the chain)")
        } else {
            format!("events {expected}..{head_seq} are missing (deleted from the end of the chain)")
        };
        return Ok(Verification {
            checked,
            ..broken(expected, None, reason)
        });
    }
    if head_seq > 0 && head_hash != prev_hash {
        let reason = "the chain head records a different hash for the last event (it was edited)"
            .to_string();
        return Ok(Verification {
            checked,
            ..broken(head_seq, last_id, reason)
        });
    }
    Ok(Verification {
        ok: true,
        checked,
        first_broken: None,
    })
}

/// The versions a serving process runs with, compared at start with the last recorded ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseFingerprint {
    pub version: String,
    pub git_sha: String,
    pub track: String,
    pub prompt_version: String,
    pub policy_version: String,
    pub policy_hash: String,
    pub config_hash: String,
}

impl ReleaseFingerprint {
    fn differs_from(&self, last: &Value) -> bool {
        [
            ("version", &self.version),
            ("git_sha", &self.git_sha),
            ("prompt_version", &self.prompt_version),
            ("policy_version", &self.policy_version),
            ("policy_hash", &self.policy_hash),
            ("config_hash", &self.config_hash),
        ]
        .iter()
        .any(|(k, v)| last.get(*k).and_then(Value::as_str) != Some(v.as_str()))
    }
}

/// Appends `release_changed` to the system chain when `now_running` differs from the
/// release the last such event recorded (or none was recorded). Returns whether it did.
/// The chain head is locked before the comparison, so replicas starting together record
/// one change, not one each.
pub async fn record_release(
    db: &Db,
    now_running: &ReleaseFingerprint,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let head = lock_head(&mut tx, SYSTEM_CHAIN).await?;
    let last = sqlx::query(
        "SELECT details FROM audit_events WHERE tenant = $1 AND action = 'release_changed' \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(SYSTEM_CHAIN)
    .fetch_optional(&mut *tx)
    .await?;
    let previous = match last {
        Some(row) => {
            let text: String = row.try_get("details")?;
            serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|d| d.get("to").cloned())
        }
        None => None,
    };
    if previous
        .as_ref()
        .is_some_and(|p| !now_running.differs_from(p))
    {
        tx.rollback().await?;
        return Ok(false);
    }
    let to = serde_json::to_value(now_running).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let event = NewEvent {
        chain: Chain::System,
        actor: "system".into(),
        action: "release_changed".into(),
        resource: "release".into(),
        details: json!({ "from": previous, "to": to }),
        request_id: None,
        policy_version: now_running.policy_version.clone(),
    };
    write_at(&mut tx, head, &event, at).await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":"x"}],"x":null}}"#)
            .expect("json");
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"c":"x","d":2}]},"b":1}"#
        );
        assert_eq!(
            canonical_json(&json!("quote \" and \u{e9}")),
            r#""quote \" and é""#
        );
    }

    fn event(seq: i64, prev: &str) -> Event {
        let mut ev = Event {
            chain: "demo".into(),
            seq,
            id: format!("aud_{seq}"),
            at: 1_700_000_000_000 + seq,
            actor: "key_1".into(),
            action: "approval.created".into(),
            resource: "approval/apr_1".into(),
            details: json!({"tool": "ticket_update", "amount": 12.5}),
            request_id: Some("req".into()),
            policy_version: "guardrails-v3".into(),
            prev_hash: prev.into(),
            hash: String::new(),
        };
        ev.hash = ev.computed_hash();
        ev
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let first = event(1, GENESIS);
        assert_eq!(first.hash.len(), 64);
        assert_eq!(first.computed_hash(), first.hash, "deterministic");
        let second = event(2, &first.hash);
        assert_ne!(
            second.hash,
            event(2, GENESIS).hash,
            "linked to the previous"
        );
        let edits: [fn(&mut Event); 8] = [
            |e| e.details["amount"] = json!(13),
            |e| e.actor = "key_2".into(),
            |e| e.action = "approval.approved".into(),
            |e| e.at += 1,
            |e| e.request_id = None,
            |e| e.resource = "approval/apr_2".into(),
            |e| e.policy_version = "guardrails-v4".into(),
            |e| e.chain = "other".into(),
        ];
        for edit in edits {
            let mut e = second.clone();
            edit(&mut e);
            assert_ne!(e.computed_hash(), second.hash, "{e:?}");
        }
    }

    #[test]
    fn a_release_differs_when_any_pinned_version_changes() {
        let r = ReleaseFingerprint {
            version: "1.0.0".into(),
            git_sha: "abc".into(),
            track: "stable".into(),
            prompt_version: "p1".into(),
            policy_version: "guardrails-v3".into(),
            policy_hash: "ph".into(),
            config_hash: "ch".into(),
        };
        let same = serde_json::to_value(&r).expect("json");
        assert!(!r.differs_from(&same));
        let mut moved = same.clone();
        moved["track"] = json!("canary");
        assert!(
            !r.differs_from(&moved),
            "the track alone is not a release change"
        );
        for key in [
            "version",
            "git_sha",
            "prompt_version",
            "policy_hash",
            "config_hash",
        ] {
            let mut other = same.clone();
            other[key] = json!("changed");
            assert!(r.differs_from(&other), "{key}");
        }
    }
}
