//! Bearer-key authentication and role checks. Keys are looked up by hash; a short-lived
//! in-memory cache keeps the database off the hot path (a revocation takes effect within
//! [`CACHE_TTL`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tokio::time::Instant;

use crate::db::{Db, keys};
use crate::domain::{Role, Roles, TenantId};
use crate::error::{Error, ErrorCode};
use crate::startup::AppState;

pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
    pub tenant: TenantId,
    pub roles: Roles,
}

impl Principal {
    pub fn require(&self, role: Role) -> Result<(), Error> {
        if self.roles.allows(role) {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "this API key ({}) lacks the '{role}' role; its roles are: {}",
                self.key_name,
                self.roles.to_csv()
            )))
        }
    }
}

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Option<Principal>, Instant)>>,
}

impl KeyCache {
    pub async fn authenticate(&self, db: &Db, plaintext: &str) -> Result<Option<Principal>, Error> {
        let hash = keys::hash_key(plaintext);
        if let Some((p, at)) = self.entries.lock().expect("cache lock").get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(p.clone());
        }
        let found = keys::find_active(db, plaintext).await?.map(|k| Principal {
            key_id: k.id,
            key_name: k.name,
            tenant: k.tenant,
            roles: k.roles,
        });
        let mut map = self.entries.lock().expect("cache lock");
        if map.len() > 10_000 {
            map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        map.insert(hash, (found.clone(), Instant::now()));
        Ok(found)
    }
}

fn bearer(parts: &Parts) -> Result<&str, Error> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        Error::new(
            ErrorCode::Unauthorized,
            "missing Authorization header; send 'Authorization: Bearer <api key>'",
        )
    })?;
    let value = header.to_str().map_err(|_| {
        Error::new(
            ErrorCode::Unauthorized,
            "Authorization header is not valid text",
        )
    })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::new(
            ErrorCode::Unauthorized,
            "Authorization must be 'Bearer <api key>'",
        ));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let token = bearer(parts)?;
        let principal = state
            .keys
            .authenticate(&state.db, token)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Unauthorized,
                    "the API key is not valid or was revoked",
                )
            })?;
        tracing::Span::current().record("tenant", principal.tenant.as_str());
        crate::limits::check_rate(state, &principal)?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}
