//! Notifications from the service to people who are not watching it: approvals waiting,
//! about to expire, decided, executed or failed; write freezes; tenants burning through
//! their daily budget; the service's own quality alerts; circuit breakers opening and
//! closing.
//!
//! The path of a notification:
//! 1. **emit** — whoever notices the event puts it in the outbox ([`emit_in`], in the
//!    transaction of the change it announces where there is one), under a dedup key that
//!    names the happening, so noticing it twice (two replicas, two sweeps) stores it once;
//! 2. **dispatch** ([`dispatch`]) — a background task fans each event out to its tenant's
//!    receivers (every tenant's, for service-wide events) that subscribe to its kind: one
//!    delivery per event and receiver, each a `notify` job in the job queue;
//! 3. **deliver** (`crate::jobs`) — a worker renders the event in the receiver's
//!    [`format`] (a signed webhook, a Slack incoming-webhook message or a PagerDuty
//!    Events v2 event), sends it through the egress guard, and records the outcome: retried
//!    with backoff, dead-lettered after its attempts.
//!
//! Receivers' URLs and secrets are sealed at rest ([`seal`]); webhooks are signed
//! ([`sign`]). [`watch`] notices budget burn, quality alerts and circuit changes.

pub mod dispatch;
pub mod format;
pub mod seal;
pub mod sign;
pub mod watch;

use serde_json::Value;
use sqlx::AnyConnection;

use crate::db::Db;
use crate::db::notifications::{self as store, NewEvent};
use crate::domain::{EventId, TenantId};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A write waits for approval.
    ApprovalCreated,
    /// A pending approval expires within `NOTIFY_APPROVAL_WARNING_SECS`.
    ApprovalExpiring,
    /// An approval was finally approved or rejected.
    ApprovalDecided,
    /// An approved write ran.
    ApprovalExecuted,
    /// An approved write failed.
    ApprovalFailed,
    FreezeOn,
    FreezeOff,
    /// A tenant reached 80 % or 100 % of a daily budget.
    BudgetBurn,
    /// A quality signal of a workflow and track passed its threshold, or came back.
    QualityAlert,
    CircuitOpen,
    CircuitClosed,
    /// Sent by `POST /v1/admin/receivers/{id}/test`.
    Test,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        Self::ApprovalCreated,
        Self::ApprovalExpiring,
        Self::ApprovalDecided,
        Self::ApprovalExecuted,
        Self::ApprovalFailed,
        Self::FreezeOn,
        Self::FreezeOff,
        Self::BudgetBurn,
        Self::QualityAlert,
        Self::CircuitOpen,
        Self::CircuitClosed,
        Self::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalCreated => "approval.created",
            Self::ApprovalExpiring => "approval.expiring",
            Self::ApprovalDecided => "approval.decided",
            Self::ApprovalExecuted => "approval.executed",
            Self::ApprovalFailed => "approval.failed",
            Self::FreezeOn => "freeze.on",
            Self::FreezeOff => "freeze.off",
            Self::BudgetBurn => "budget.burn",
            Self::QualityAlert => "quality.alert",
            Self::CircuitOpen => "circuit.open",
            Self::CircuitClosed => "circuit.closed",
            Self::Test => "notification.test",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "event kind {s:?} is not one of: {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }

    /// Whether it concerns the whole service rather than one tenant.
    pub fn service_wide(self) -> bool {
        matches!(
            self,
            Self::QualityAlert | Self::CircuitOpen | Self::CircuitClosed
        )
    }
}

/// How a receiver wants its notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON event signed in the Standard Webhooks convention.
    Webhook,
    /// A Slack incoming-webhook message (the URL is the credential).
    Slack,
    /// A PagerDuty Events API v2 event (the secret is the routing key).
    PagerDuty,
}

impl Format {
    pub const ALL: [Format; 3] = [Self::Webhook, Self::Slack, Self::PagerDuty];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::PagerDuty => "pagerduty",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("format {s:?} is not one of: webhook, slack, pagerduty"))
    }
}

/// A notification to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: EventKind,
    /// Names the happening: the same happening noticed twice has the same key.
    pub dedup_key: String,
    /// The tenant it concerns; `None` for a service-wide event.
    pub tenant: Option<TenantId>,
    /// What receivers are told, already redacted.
    pub data: Value,
}

impl Notice {
    pub fn new(kind: EventKind, dedup_key: String, tenant: Option<TenantId>, data: Value) -> Self {
        Self {
            kind,
            dedup_key,
            tenant,
            data,
        }
    }

    fn event(&self, at: i64) -> NewEvent {
        NewEvent {
            id: EventId::generate(),
            dedup_key: self.dedup_key.clone(),
            tenant: self.tenant.clone(),
            kind: self.kind.as_str().to_string(),
            data: self.data.clone(),
            created_at: at,
        }
    }
}

/// Puts `n` in the outbox inside the caller's transaction (commit it with the change it
/// announces); false when it was already there.
pub async fn emit_in(conn: &mut AnyConnection, n: &Notice, at: i64) -> Result<bool, sqlx::Error> {
    store::insert_event(conn, &n.event(at)).await
}

/// Puts `n` in the outbox on its own; false when it was already there.
pub async fn emit(db: &Db, n: &Notice, at: i64) -> Result<bool, sqlx::Error> {
    store::insert_event_db(db, &n.event(at)).await
}

/// Stores a test notification for one receiver and queues its delivery; returns the event
/// id and the delivery's job id.
pub async fn emit_test(
    db: &Db,
    receiver: &store::Receiver,
    tenant: &TenantId,
    data: Value,
    at: i64,
    max_attempts: i64,
) -> Result<(EventId, crate::domain::JobId), sqlx::Error> {
    let n = Notice::new(
        EventKind::Test,
        format!("notification.test:{}", uuid::Uuid::now_v7().simple()),
        Some(tenant.clone()),
        data,
    );
    let event = n.event(at);
    let id = event.id.clone();
    let job = store::insert_direct(db, receiver, &event, max_attempts).await?;
    Ok((id, job))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_formats_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Ok(k));
        }
        let e = EventKind::parse("approval.maybe").unwrap_err();
        assert!(
            e.contains("approval.created") && e.contains("circuit.closed"),
            "{e}"
        );
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Ok(f));
        }
        assert!(Format::parse("email").is_err());
        assert!(EventKind::CircuitOpen.service_wide() && !EventKind::BudgetBurn.service_wide());
    }
}
