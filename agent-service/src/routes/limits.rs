//! The per-key rate limit (429 + Retry-After). Load shedding and the per-key concurrency
//! share are `routes::admission`.

use super::AppState;
use crate::domain::Principal;
use crate::error::{Error, ErrorCode};

/// Takes one unit of the caller's per-minute quota.
pub async fn check_rate(state: &AppState, principal: &Principal) -> Result<(), Error> {
    state
        .limiter
        .check(&principal.key_id)
        .await
        .map_err(|secs| {
            Error::new(
                ErrorCode::RateLimited,
                format!(
                    "rate limit of {} requests per minute for this API key exceeded",
                    state.limiter.rpm()
                ),
            )
            .retry_after(secs.max(1))
        })
}
