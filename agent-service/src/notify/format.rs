//! What a notification looks like on the wire, per receiver format:
//!
//! - `webhook`: `{"id", "type", "timestamp", "tenant", "data"}` (the Standard Webhooks
//!   payload shape; `type` is the event kind, `data` its fields), signed by [`super::sign`];
//! - `slack`: an incoming-webhook message, `{"text", "blocks"}` (a section with the summary,
//!   a context line with tenant, kind and event id);
//! - `pagerduty`: an Events API v2 event: `trigger` (with `payload.summary`, `source`,
//!   `severity`, `timestamp`, `component`, `group`, `class`, `custom_details`) or `resolve`,
//!   under a `dedup_key` that names the incident, so the events of one approval, one
//!   circuit or one quality signal (from any replica) update one PagerDuty incident.

use serde_json::{Value, json};

use super::EventKind;

/// The PagerDuty Events API v2 endpoint (a PagerDuty receiver's URL, normally).
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty cuts `payload.summary` at 1024 characters.
const PAGERDUTY_SUMMARY_MAX: usize = 1024;

/// One event as it is rendered.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub id: &'a str,
    pub kind: EventKind,
    /// `None` for a service-wide event.
    pub tenant: Option<&'a str>,
    pub data: &'a Value,
    /// When the event happened (Unix ms).
    pub created_at_ms: i64,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A field of the event's data as text (`?` when absent).
fn field(data: &Value, key: &str) -> String {
    match data.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".into(),
        Some(v) => v.to_string(),
    }
}

fn percent(data: &Value, key: &str) -> String {
    data.get(key)
        .and_then(Value::as_f64)
        .map(|f| format!("{:.0} %", f * 100.0))
        .unwrap_or_else(|| "?".into())
}

/// Whether a quality alert or circuit event says the problem is over.
fn resolved(m: &Message) -> bool {
    match m.kind {
        EventKind::QualityAlert => m.data.get("state").and_then(Value::as_str) == Some("resolved"),
        EventKind::CircuitClosed | EventKind::FreezeOff => true,
        EventKind::ApprovalDecided | EventKind::ApprovalExecuted => true,
        _ => false,
    }
}

/// One line a person reads first.
pub fn summary(m: &Message) -> String {
    let d = m.data;
    let f = |k| field(d, k);
    let tenant = m.tenant.unwrap_or("all tenants");
    match m.kind {
        EventKind::ApprovalCreated => format!(
            "Approval {} waits for {} approver(s): {} proposes {} on {} (expires {}).",
            f("approval_id"),
            f("required_approvals"),
            f("workflow"),
            f("tool"),
            f("resource"),
            f("expires_at")
        ),
        EventKind::ApprovalExpiring => format!(
            "Approval {} is still pending and expires at {}: {} on {}.",
            f("approval_id"),
            f("expires_at"),
            f("tool"),
            f("resource")
        ),
        EventKind::ApprovalDecided => format!(
            "Approval {} was {} by {}: {} on {}.",
            f("approval_id"),
            f("decision"),
            f("approver_name"),
            f("tool"),
            f("resource")
        ),
        EventKind::ApprovalExecuted => format!(
            "The approved write {} ran: {} on {}.",
            f("approval_id"),
            f("tool"),
            f("resource")
        ),
        EventKind::ApprovalFailed => format!(
            "The approved write {} failed: {} on {}: {}",
            f("approval_id"),
            f("tool"),
            f("resource"),
            f("error")
        ),
        EventKind::FreezeOn => format!("Writes are frozen for tenant {tenant}: {}.", f("reason")),
        EventKind::FreezeOff => format!("Writes are unfrozen for tenant {tenant}."),
        EventKind::BudgetBurn => format!(
            "Tenant {tenant} has used {} of its daily {} budget ({} of {}); it resets at {}.",
            percent(d, "used_fraction"),
            f("budget"),
            f("used"),
            f("limit"),
            f("resets_at")
        ),
        EventKind::QualityAlert if resolved(m) => format!(
            "Resolved: {} of {} on {} is back within its threshold ({}; threshold {}).",
            f("signal"),
            f("workflow"),
            f("track"),
            percent(d, "value"),
            percent(d, "threshold")
        ),
        EventKind::QualityAlert => format!(
            "Quality alert: {} of {} on {} is {} (threshold {}) over the last {} samples.",
            f("signal"),
            f("workflow"),
            f("track"),
            percent(d, "value"),
            percent(d, "threshold"),
            f("samples")
        ),
        EventKind::CircuitOpen => format!(
            "The {} circuit breaker opened: calls to it fail fast.",
            f("dependency")
        ),
        EventKind::CircuitClosed => format!(
            "The {} circuit breaker closed: calls to it go through again.",
            f("dependency")
        ),
        EventKind::Test => format!(
            "Test notification from agent-service to receiver {}.",
            f("receiver_name")
        ),
    }
}

/// The body of a signed webhook.
pub fn webhook(m: &Message) -> Value {
    json!({
        "id": m.id,
        "type": m.kind.as_str(),
        "timestamp": rfc3339(m.created_at_ms),
        "tenant": m.tenant,
        "data": m.data,
    })
}

/// A Slack incoming-webhook message.
pub fn slack(m: &Message) -> Value {
    let text = summary(m);
    let context = format!(
        "tenant `{}` · `{}` · event `{}`",
        m.tenant.unwrap_or("all"),
        m.kind.as_str(),
        m.id
    );
    json!({
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] }
        ]
    })
}

/// The PagerDuty incident an event belongs to.
pub fn dedup_key(m: &Message) -> String {
    let f = |k| field(m.data, k);
    let tenant = m.tenant.unwrap_or("_service");
    match m.kind {
        EventKind::ApprovalCreated
        | EventKind::ApprovalExpiring
        | EventKind::ApprovalDecided
        | EventKind::ApprovalExecuted
        | EventKind::ApprovalFailed => format!("approval:{}", f("approval_id")),
        EventKind::FreezeOn | EventKind::FreezeOff => format!("freeze:{tenant}"),
        EventKind::BudgetBurn => format!("budget:{tenant}:{}:{}", f("day"), f("budget")),
        EventKind::QualityAlert => {
            format!("quality:{}:{}:{}", f("workflow"), f("track"), f("signal"))
        }
        EventKind::CircuitOpen | EventKind::CircuitClosed => {
            format!("circuit:{}", f("dependency"))
        }
        EventKind::Test => format!("test:{}", m.id),
    }
}

fn severity(m: &Message) -> &'static str {
    match m.kind {
        EventKind::CircuitOpen => "critical",
        EventKind::BudgetBurn
            if m.data.get("threshold_percent").and_then(Value::as_u64) >= Some(100) =>
        {
            "critical"
        }
        EventKind::ApprovalFailed | EventKind::QualityAlert => "error",
        EventKind::BudgetBurn | EventKind::FreezeOn | EventKind::ApprovalExpiring => "warning",
        _ => "info",
    }
}

/// A PagerDuty Events API v2 event: `resolve` when the event ends its incident, else
/// `trigger`.
pub fn pagerduty(m: &Message, routing_key: &str) -> Value {
    let dedup_key = dedup_key(m);
    if resolved(m) {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let summary: String = summary(m).chars().take(PAGERDUTY_SUMMARY_MAX).collect();
    let component = m
        .data
        .get("workflow")
        .or_else(|| m.data.get("dependency"))
        .and_then(Value::as_str)
        .unwrap_or("agent-service");
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "Flightdeck agent-service",
        "payload": {
            "summary": summary,
            "source": "agent-service",
            "severity": severity(m),
            "timestamp": rfc3339(m.created_at_ms),
            "component": component,
            "group": m.tenant.unwrap_or("all tenants"),
            "class": m.kind.as_str(),
            "custom_details": m.data,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<'a>(kind: EventKind, data: &'a Value) -> Message<'a> {
        Message {
            id: "evt_1",
            kind,
            tenant: Some("demo"),
            data,
            created_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn webhooks_carry_type_timestamp_tenant_and_data() {
        let data = json!({"approval_id": "apr_1", "tool": "ticket_update"});
        let body = webhook(&msg(EventKind::ApprovalCreated, &data));
        assert_eq!(
            body,
            json!({"id": "evt_1", "type": "approval.created",
                   "timestamp": "2023-11-14T22:13:20.000Z", "tenant": "demo", "data": data})
        );
    }

    #[test]
    fn slack_messages_lead_with_the_summary() {
        let data = json!({"approval_id": "apr_1", "required_approvals": 2, "workflow": "invoice_approval",
            "tool": "invoice_pay", "resource": "invoice/INV-1", "expires_at": "2023-11-15T22:13:20Z"});
        let body = slack(&msg(EventKind::ApprovalCreated, &data));
        let text = body["text"].as_str().unwrap();
        assert_eq!(
            text,
            "Approval apr_1 waits for 2 approver(s): invoice_approval proposes invoice_pay on invoice/INV-1 (expires 2023-11-15T22:13:20Z)."
        );
        assert_eq!(body["blocks"][0]["text"]["text"], text);
        assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
        assert!(
            body["blocks"][1]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .contains("evt_1")
        );
    }

    #[test]
    fn pagerduty_triggers_and_resolves_one_incident_per_subject() {
        let created = json!({"approval_id": "apr_9", "tool": "t", "resource": "r"});
        let t = pagerduty(&msg(EventKind::ApprovalCreated, &created), "R0UT1NG");
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["routing_key"], "R0UT1NG");
        assert_eq!(t["dedup_key"], "approval:apr_9");
        assert_eq!(t["payload"]["source"], "agent-service");
        assert_eq!(t["payload"]["severity"], "info");
        assert_eq!(t["payload"]["class"], "approval.created");
        assert_eq!(t["payload"]["custom_details"], created);
        let decided = json!({"approval_id": "apr_9", "decision": "approved"});
        let r = pagerduty(&msg(EventKind::ApprovalDecided, &decided), "R0UT1NG");
        assert_eq!(
            r,
            json!({"routing_key": "R0UT1NG", "event_action": "resolve", "dedup_key": "approval:apr_9"})
        );
        let firing = json!({"workflow": "faq", "track": "canary", "signal": "citation_rate",
            "state": "firing", "value": 0.0, "threshold": 0.8, "samples": 30});
        let q = pagerduty(&msg(EventKind::QualityAlert, &firing), "k");
        assert_eq!(q["event_action"], "trigger");
        assert_eq!(q["dedup_key"], "quality:faq:canary:citation_rate");
        assert_eq!(q["payload"]["severity"], "error");
        assert_eq!(
            q["payload"]["summary"],
            "Quality alert: citation_rate of faq on canary is 0 % (threshold 80 %) over the last 30 samples."
        );
        let back = json!({"workflow": "faq", "track": "canary", "signal": "citation_rate", "state": "resolved"});
        assert_eq!(
            pagerduty(&msg(EventKind::QualityAlert, &back), "k")["event_action"],
            "resolve"
        );
        let burn = json!({"threshold_percent": 100, "day": "2023-11-14", "budget": "cost_usd"});
        let b = pagerduty(&msg(EventKind::BudgetBurn, &burn), "k");
        assert_eq!(b["payload"]["severity"], "critical");
        assert_eq!(b["dedup_key"], "budget:demo:2023-11-14:cost_usd");
    }

    #[test]
    fn every_kind_has_a_summary_without_placeholders_when_its_fields_are_there() {
        let data = json!({"approval_id": "apr_1", "required_approvals": 1, "workflow": "w", "tool": "t",
            "resource": "r", "expires_at": "x", "decision": "rejected", "approver_name": "a", "error": "e",
            "reason": "incident", "used_fraction": 0.8, "budget": "cost_usd", "used": 8, "limit": 10,
            "resets_at": "y", "signal": "s", "track": "stable", "value": 0.5, "threshold": 0.8,
            "samples": 20, "dependency": "provider", "receiver_name": "ops", "state": "firing"});
        for kind in EventKind::ALL {
            let s = summary(&msg(kind, &data));
            assert!(!s.contains('?'), "{kind:?}: {s}");
        }
    }
}
