//! Settings → Notifications: the active profile's notification receivers (the service's
//! `/v1/admin/receivers`), created, deleted and tested by an admin key. The URL and secret
//! of a new receiver go straight to the service, which seals them; nothing here keeps or
//! logs them.

use super::dto::*;
use super::{CmdResult, Console, map};
use crate::agent::{NewReceiver, wire};

fn format_of(raw: &str) -> CmdResult<ReceiverFormat> {
    match raw {
        "webhook" => Ok(ReceiverFormat::Webhook),
        "slack" => Ok(ReceiverFormat::Slack),
        "pagerduty" => Ok(ReceiverFormat::Pagerduty),
        other => Err(CommandError::new(
            CommandErrorCode::Protocol,
            format!(
                "the agent-service sent a receiver format the console does not know: {other:?}"
            ),
        )),
    }
}

fn receiver(r: &wire::Receiver) -> CmdResult<Receiver> {
    Ok(Receiver {
        id: r.id.clone(),
        name: r.name.clone(),
        format: format_of(&r.format)?,
        url_hint: r.url_hint.clone(),
        events: r.events.clone(),
        has_secret: r.has_secret,
        created_at_ms: map::ms(&r.created_at),
    })
}

/// Empty optional text is absent.
fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Console {
    pub async fn list_receivers(&self) -> CmdResult<Vec<Receiver>> {
        let (_, client) = self.active().await?;
        client.receivers().await?.iter().map(receiver).collect()
    }

    /// Creates a receiver; the service checks the URL against its egress guard and the
    /// secret's shape, and answers what is wrong.
    pub async fn create_receiver(&self, args: CreateReceiverArgs) -> CmdResult<Receiver> {
        self.guard(ActionId::ManageReceivers)?;
        if args.name.trim().is_empty() {
            return Err(CommandError::invalid("The receiver needs a name"));
        }
        let (_, client) = self.active().await?;
        let req = NewReceiver {
            name: args.name.trim().to_string(),
            format: match args.format {
                ReceiverFormat::Webhook => "webhook",
                ReceiverFormat::Slack => "slack",
                ReceiverFormat::Pagerduty => "pagerduty",
            }
            .to_string(),
            url: given(args.url),
            secret: given(args.secret),
            events: args.events,
        };
        let target = format!("receiver/{}", req.name);
        let created = self
            .audited("create_receiver", &target, client.create_receiver(&req))
            .await?;
        receiver(&created)
    }

    pub async fn delete_receiver(&self, args: ReceiverIdArgs) -> CmdResult<()> {
        self.guard(ActionId::ManageReceivers)?;
        let (_, client) = self.active().await?;
        let target = format!("receiver/{}", args.id);
        self.audited("delete_receiver", &target, client.delete_receiver(&args.id))
            .await
    }

    /// Queues a test notification for one receiver; its delivery shows whether it arrived.
    pub async fn test_receiver(&self, args: ReceiverIdArgs) -> CmdResult<ReceiverTestResult> {
        self.guard(ActionId::ManageReceivers)?;
        let (_, client) = self.active().await?;
        let target = format!("receiver/{}", args.id);
        let t = self
            .audited("test_receiver", &target, client.test_receiver(&args.id))
            .await?;
        Ok(ReceiverTestResult {
            event_id: t.event_id,
            delivery_id: t.delivery_id,
        })
    }
}
