//! The `Authorization: Bearer <api key>` extractor: every handler that takes a
//! [`Principal`] authenticates the caller through [`crate::auth::KeyCache`] and spends one
//! unit of the key's rate limit.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use crate::domain::Principal;
use crate::error::{Error, ErrorCode};

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
        super::limits::check_rate(state, &principal)?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}
