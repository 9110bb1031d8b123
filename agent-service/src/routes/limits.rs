//! Load shedding (a global concurrency cap that answers 503 + Retry-After instead of
//! queueing) and the per-key rate limit (429 + Retry-After).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::domain::Principal;
use crate::error::{Error, ErrorCode};

pub async fn shed(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.shutdown.is_stopping() {
        return Error::new(
            ErrorCode::ShuttingDown,
            "the service is shutting down; retry on another replica",
        )
        .retry_after(1)
        .into_response();
    }
    let Ok(permit) = state.shed.clone().try_acquire_owned() else {
        return Error::new(
            ErrorCode::Overloaded,
            "the service is at its concurrency limit; retry shortly",
        )
        .retry_after(1)
        .into_response();
    };
    // The permit lives as long as the response body, so a streamed reply (SSE) counts
    // against the cap until its last event. A body of known length is already in memory:
    // it is passed through untouched (keeping its Content-Length) and the permit ends
    // with the handler.
    let resp = next.run(req).await;
    if axum::body::HttpBody::size_hint(resp.body())
        .exact()
        .is_some()
    {
        return resp;
    }
    resp.map(|body| {
        use futures::StreamExt;
        axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _held = &permit;
            chunk
        }))
    })
}

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
