//! `Idempotency-Key` handling shared by every POST that creates or decides something: the
//! first response to a key is stored and replayed for the same request; the same key with
//! a different request is a 422; a claim left by a process that died mid-request is taken
//! over once it is older than any request can run.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::db::idempotency::{self, Claim};
use crate::domain::TenantId;
use crate::error::{Error, ErrorCode, Result};

/// The request's `Idempotency-Key`, if any: 1-255 printable ASCII characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| Error::invalid("Idempotency-Key must be printable ASCII"))?;
            if s.is_empty() || s.len() > 255 {
                return Err(Error::invalid("Idempotency-Key must be 1-255 characters"));
            }
            Ok(Some(s.to_string()))
        }
    }
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Runs `act` under the request's `Idempotency-Key`, if any: the first response to a key
/// is stored and replayed for the same request (`route` + body); the same key with a
/// different request is a 422. A failed `act` frees the key for a retry.
pub(crate) async fn idempotent<F, Fut>(
    state: &AppState,
    tenant: &TenantId,
    key: Option<String>,
    route: &str,
    raw: &[u8],
    act: F,
) -> Result<Response>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, String)>>,
{
    let Some(key) = key else {
        let (status, body) = act().await?;
        return Ok(json_response(status, body));
    };
    let hash = hex::encode(
        Sha256::new()
            .chain_update(route.as_bytes())
            .chain_update(b"\n")
            .chain_update(raw)
            .finalize(),
    );
    let now = state.engine.clock.now().timestamp_millis();
    // A claim older than any request can run was left by a process that died mid-request.
    let stale_before = now - (state.settings.budgets.request_timeout_secs as i64 + 30) * 1000;
    match idempotency::claim(&state.db, tenant, &key, &hash, now, stale_before).await? {
        Claim::Fresh => {}
        Claim::Replay { status, body } => {
            let mut resp =
                json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
            resp.headers_mut()
                .insert("idempotency-replayed", HeaderValue::from_static("true"));
            return Ok(resp);
        }
        Claim::InProgress => {
            return Err(Error::new(
                ErrorCode::IdempotencyInProgress,
                "a request with this Idempotency-Key is still running; retry shortly",
            )
            .retry_after(1));
        }
        Claim::Mismatch => {
            return Err(Error::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used with a different request; use a new key",
            ));
        }
    }
    match act().await {
        Ok((status, body)) => {
            idempotency::complete(&state.db, tenant, &key, status.as_u16(), &body).await?;
            Ok(json_response(status, body))
        }
        Err(e) => {
            if let Err(db_err) = idempotency::release(&state.db, tenant, &key).await {
                tracing::warn!(error = %db_err, "releasing idempotency key failed");
            }
            Err(e)
        }
    }
}
