//! The write freeze per tenant (the incident kill switch), stored in the database so every
//! replica sees the same state.

use sqlx::{AnyConnection, Row};

use super::Db;
use crate::domain::TenantId;

/// A tenant's freeze state; a tenant never frozen is `frozen: false` with no details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    pub frozen: bool,
    pub reason: Option<String>,
    /// Who last changed it (a key id).
    pub actor: Option<String>,
    pub changed_at: Option<i64>,
}

impl Freeze {
    fn none() -> Self {
        Self {
            frozen: false,
            reason: None,
            actor: None,
            changed_at: None,
        }
    }
}

async fn read(conn: &mut AnyConnection, tenant: &TenantId) -> Result<Freeze, sqlx::Error> {
    let row = sqlx::query(
        "SELECT frozen, reason, actor, changed_at FROM write_freezes WHERE tenant = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Ok(Freeze::none()),
        Some(r) => Ok(Freeze {
            frozen: r.try_get::<i64, _>("frozen")? != 0,
            reason: r.try_get("reason")?,
            actor: r.try_get("actor")?,
            changed_at: Some(r.try_get("changed_at")?),
        }),
    }
}

/// The tenant's freeze state.
pub async fn get(db: &Db, tenant: &TenantId) -> Result<Freeze, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    read(&mut conn, tenant).await
}

/// The tenant's freeze state as this transaction sees it.
pub async fn get_in(conn: &mut AnyConnection, tenant: &TenantId) -> Result<Freeze, sqlx::Error> {
    read(conn, tenant).await
}

/// Sets the freeze inside the caller's transaction; returns false when it was already in
/// that state (nothing changed). A write statement either way, so on SQLite it takes the
/// write lock first.
pub async fn set_in(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    frozen: bool,
    reason: Option<&str>,
    actor: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let changed = if frozen {
        sqlx::query(
            "INSERT INTO write_freezes (tenant, frozen, reason, actor, changed_at) \
             VALUES ($1, 1, $2, $3, $4) \
             ON CONFLICT (tenant) DO UPDATE SET frozen = 1, reason = excluded.reason, \
             actor = excluded.actor, changed_at = excluded.changed_at \
             WHERE write_freezes.frozen = 0",
        )
        .bind(tenant.as_str())
        .bind(reason)
        .bind(actor)
        .bind(at)
        .execute(&mut *conn)
        .await?
    } else {
        sqlx::query(
            "UPDATE write_freezes SET frozen = 0, reason = $1, actor = $2, changed_at = $3 \
             WHERE tenant = $4 AND frozen = 1",
        )
        .bind(reason)
        .bind(actor)
        .bind(at)
        .bind(tenant.as_str())
        .execute(&mut *conn)
        .await?
    };
    Ok(changed.rows_affected() == 1)
}
