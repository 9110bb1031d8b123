//! One delivery attempt of a `notify` job: the event rendered in its receiver's format,
//! signed for a webhook receiver, sent through the egress guard, and the outcome recorded
//! like any job's — delivered, retried with backoff, failed for good (the guard refused it,
//! the receiver refused it with a 4xx, the receiver was deleted) or dead after its last
//! attempt.

use std::time::Duration;

use serde_json::json;

use super::{Context, millis, now_ms, record};
use crate::db::jobs::{Job, JobError, Outcome};
use crate::db::notifications::{self as store, Event, Receiver};
use crate::metrics::NotificationLabels;
use crate::notify::format::{self, Message};
use crate::notify::seal::SecretBox;
use crate::notify::{EventKind, Format, sign};
use crate::tools::egress::SendError;

/// How an attempt went, before it is recorded.
enum Attempt {
    Delivered(u16),
    /// Worth another attempt (no answer, 408, 429, 5xx).
    Transient(String),
    /// Another attempt cannot help.
    Permanent(String),
}

/// Wait before retrying after failed attempt `attempt` (1-based): `NOTIFY_RETRY_BASE_MS`,
/// doubling each attempt, at most `NOTIFY_RETRY_MAX_SECS`.
pub fn retry_delay(attempt: i64, base_ms: u64, max_secs: u64) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let wait = base_ms.saturating_mul(1u64 << exp);
    Duration::from_millis(wait).min(Duration::from_secs(max_secs))
}

/// Delivers the notification of `job` once and records the outcome.
pub(super) async fn attempt(ctx: &Context, job: &Job, token: &str) {
    let (kind, result) = match store::delivery_of(&ctx.db, &job.id).await {
        Ok(Some((receiver, event))) => {
            let kind = event.kind.clone();
            (kind, send(ctx, &receiver, &event).await)
        }
        Ok(None) => (
            job.workflow.clone(),
            Attempt::Permanent("the delivery's receiver or event is gone".into()),
        ),
        Err(e) => (
            job.workflow.clone(),
            Attempt::Transient(format!("the delivery could not be read: {e}")),
        ),
    };
    let error = |code: &str, message: String| JobError {
        code: code.into(),
        message,
    };
    let (outcome, label) = match result {
        Attempt::Delivered(status) => (
            Outcome::Succeeded {
                result: json!({ "status_code": status }).to_string(),
            },
            "delivered",
        ),
        Attempt::Permanent(m) => (Outcome::Failed(error("delivery_refused", m)), "failed"),
        Attempt::Transient(m) if job.attempts >= job.max_attempts => {
            (Outcome::Dead(error("delivery_failed", m)), "dead")
        }
        Attempt::Transient(m) => {
            let wait = retry_delay(
                job.attempts,
                ctx.notify.notify_retry_base_ms,
                ctx.notify.notify_retry_max_secs,
            );
            (
                Outcome::Retry {
                    error: error("delivery_failed", m),
                    run_after: now_ms(ctx) + millis(wait),
                },
                "retry",
            )
        }
    };
    ctx.metrics
        .notifications
        .get_or_create(&NotificationLabels {
            kind,
            outcome: label.into(),
        })
        .inc();
    record(ctx, job, token, outcome).await;
}

/// The timeout of one attempt: `NOTIFY_TIMEOUT_SECS`, and well inside the job's lease.
fn timeout(ctx: &Context) -> Duration {
    let lease = ctx.lease();
    Duration::from_secs(ctx.notify.notify_timeout_secs)
        .min(lease * 2 / 3)
        .max(Duration::from_millis(100))
}

async fn send(ctx: &Context, receiver: &Receiver, event: &Event) -> Attempt {
    if receiver.deleted_at.is_some() {
        return Attempt::Permanent(format!("receiver {} was deleted", receiver.id));
    }
    let Some(secrets) = ctx.secrets.as_deref() else {
        return Attempt::Permanent(
            "NOTIFY_SECRET_KEY is not set on this service, so the receiver's URL cannot be read"
                .into(),
        );
    };
    let (format, kind) = match (
        Format::parse(&receiver.format),
        EventKind::parse(&event.kind),
    ) {
        (Ok(f), Ok(k)) => (f, k),
        (Err(e), _) | (_, Err(e)) => return Attempt::Permanent(e),
    };
    let opened = open(secrets, receiver);
    let (url, secret) = match opened {
        Ok(v) => v,
        Err(m) => return Attempt::Permanent(m),
    };
    let message = Message {
        id: event.id.as_str(),
        kind,
        tenant: event.tenant.as_deref(),
        data: &event.data,
        created_at_ms: event.created_at,
    };
    let body = match format {
        Format::Webhook => format::webhook(&message),
        Format::Slack => format::slack(&message),
        Format::PagerDuty => format::pagerduty(&message, secret.as_deref().unwrap_or_default()),
    }
    .to_string();
    let egress = ctx.queue.egress();
    let mut request = egress
        .client()
        .post(url.as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout(ctx));
    if format == Format::Webhook {
        let key = match secret.as_deref().map(sign::parse_secret) {
            Some(Ok(k)) => k,
            _ => return Attempt::Permanent("the receiver's signing secret is not usable".into()),
        };
        let t = ctx.engine.clock.now().timestamp();
        request = request
            .header(sign::ID_HEADER, event.id.as_str())
            .header(sign::TIMESTAMP_HEADER, t.to_string())
            .header(
                sign::SIGNATURE_HEADER,
                sign::sign(&key, event.id.as_str(), t, body.as_bytes()),
            );
    }
    let request = match request.body(body).build() {
        Ok(r) => r,
        Err(e) => return Attempt::Permanent(format!("the receiver's URL is not usable: {e}")),
    };
    match egress.send(request).await {
        Ok(resp) if resp.status().is_success() => Attempt::Delivered(resp.status().as_u16()),
        Ok(resp) => {
            let code = resp.status().as_u16();
            let m = format!("the receiver answered HTTP {code}");
            if code == 408 || code == 429 || resp.status().is_server_error() {
                Attempt::Transient(m)
            } else {
                Attempt::Permanent(m)
            }
        }
        Err(SendError::Denied(d)) => Attempt::Permanent(format!(
            "the egress guard refused the receiver's address: {}",
            d.message()
        )),
        Err(e) => Attempt::Transient(format!("the receiver could not be reached: {e}")),
    }
}

/// The receiver's URL and secret, opened. Errors name the field, never its value.
fn open(secrets: &SecretBox, r: &Receiver) -> Result<(String, Option<String>), String> {
    let id = r.id.as_str();
    let url = secrets
        .open(id, "url", &r.url_sealed)
        .map_err(|e| format!("the receiver's URL cannot be opened: {e}"))?;
    let secret = r
        .secret_sealed
        .as_deref()
        .map(|s| secrets.open(id, "secret", s))
        .transpose()
        .map_err(|e| format!("the receiver's secret cannot be opened: {e}"))?;
    Ok((
        url.expose().to_string(),
        secret.map(|s| s.expose().to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_from_the_base_up_to_the_cap() {
        let d = |attempt| retry_delay(attempt, 200, 5).as_millis();
        assert_eq!([d(1), d(2), d(3), d(4)], [200, 400, 800, 1600]);
        assert_eq!(d(6), 5000, "capped");
        assert_eq!(d(60), 5000);
        assert_eq!(d(0), 200);
    }
}
