//! API keys: created once (the plaintext is shown only then), stored as SHA-256 hashes,
//! scoped to a tenant, carrying roles, revocable.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::Db;
use crate::domain::{Roles, TenantId};

/// Prefix of every key, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "fdk_";

/// A stored key (never the plaintext).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub tenant: TenantId,
    pub name: String,
    pub roles: Roles,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A key just created: the only time the plaintext exists.
pub struct NewKey {
    pub key: ApiKey,
    pub plaintext: String,
}

pub fn hash_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn row_to_key(row: &sqlx::any::AnyRow) -> Result<ApiKey, sqlx::Error> {
    let tenant: String = row.try_get("tenant")?;
    let roles: String = row.try_get("roles")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        tenant: TenantId::parse(&tenant).map_err(|e| sqlx::Error::Decode(e.into()))?,
        name: row.try_get("name")?,
        roles: Roles::parse(&roles).map_err(|e| sqlx::Error::Decode(e.into()))?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

pub async fn create(
    db: &Db,
    tenant: &TenantId,
    name: &str,
    roles: &Roles,
    now_ms: i64,
) -> Result<NewKey, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    create_in(&mut conn, tenant, name, roles, now_ms).await
}

/// [`create`] inside the caller's transaction (e.g. with its audit event).
pub async fn create_in(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    name: &str,
    roles: &Roles,
    now_ms: i64,
) -> Result<NewKey, sqlx::Error> {
    let plaintext = generate();
    let id = format!("key_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(
        "INSERT INTO api_keys (id, tenant, name, roles, key_hash, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
    )
    .bind(&id)
    .bind(tenant.as_str())
    .bind(name)
    .bind(roles.to_csv())
    .bind(hash_key(&plaintext))
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(NewKey {
        key: ApiKey {
            id,
            tenant: tenant.clone(),
            name: name.to_string(),
            roles: roles.clone(),
            created_at: now_ms,
            revoked_at: None,
        },
        plaintext,
    })
}

/// The live (not revoked) key with this plaintext, if any.
pub async fn find_active(db: &Db, plaintext: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, tenant, name, roles, created_at, revoked_at FROM api_keys \
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash_key(plaintext))
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(row_to_key).transpose()
}

pub async fn list(db: &Db, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, sqlx::Error> {
    let rows = match tenant {
        Some(t) => {
            sqlx::query(
                "SELECT id, tenant, name, roles, created_at, revoked_at FROM api_keys \
                 WHERE tenant = $1 ORDER BY created_at, id",
            )
            .bind(t.as_str())
            .fetch_all(db.pool())
            .await?
        }
        None => {
            sqlx::query("SELECT id, tenant, name, roles, created_at, revoked_at FROM api_keys ORDER BY tenant, created_at, id")
                .fetch_all(db.pool())
                .await?
        }
    };
    rows.iter().map(row_to_key).collect()
}

/// Revokes a key inside the caller's transaction; returns the key's tenant, or `None`
/// when no live key has that id.
pub async fn revoke_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    now_ms: i64,
) -> Result<Option<TenantId>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING tenant",
    )
    .bind(now_ms)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let tenant: String = r.try_get("tenant")?;
        TenantId::parse(&tenant).map_err(|e| sqlx::Error::Decode(e.into()))
    })
    .transpose()
}

/// Revokes a key; returns false when no live key has that id.
pub async fn revoke(db: &Db, id: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    let res =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms)
            .bind(id)
            .execute(db.pool())
            .await?;
    Ok(res.rows_affected() == 1)
}
