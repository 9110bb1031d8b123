//! The per-key rate limit (429 + Retry-After). Load shedding and the per-key concurrency
//! share are `routes::admission`.

use super::AppState;
use crate::domain::Principal;
use crate::error::{Error, ErrorCode};

/// Takes one unit of the caller's per-minute quota.
pub fn check_rate(state: &AppState, principal: &Principal) -> Result<(), Error> {
    match state.limiter.check_key(&principal.key_id) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Err(Error::new(
                ErrorCode::RateLimited,
                format!(
                    "rate limit of {} requests per minute for this API key exceeded",
                    state.settings.limits.rate_limit_rpm
                ),
            )
            .retry_after(secs.max(1)))
        }
    }
}
