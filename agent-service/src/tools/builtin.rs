//! The built-in tools over the demo domain: reading tickets and invoices, searching the
//! knowledge base, and the two write tools (`ticket_update`, `invoice_pay`) whose changes
//! are proposed for approval and applied later. Every query is scoped to the caller's tenant.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row};

use super::kb::{self, KB_SEARCH, Search};
use super::records::{self, RecordCache};
use super::{ProposedChange, SideEffect, ToolCtx, ToolError, ToolSpec};
use crate::db::Backend;

pub const TICKET_READ: &str = "ticket_read";
pub const INVOICE_READ: &str = "invoice_read";
pub const TICKET_UPDATE: &str = "ticket_update";
pub const INVOICE_PAY: &str = "invoice_pay";

const DB_TIMEOUT: Duration = Duration::from_secs(2);
/// Room for a retrieval service's own time budget (its requests give up after 2.5 s).
const SEARCH_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_CONCURRENCY: u32 = 32;
/// Amounts within half a cent are the same amount.
const AMOUNT_TOLERANCE_USD: f64 = 0.005;

/// A built-in tool's body.
/// The record tools share one [`RecordCache`]: the reads fill it, the writes empty it.
pub(super) enum Builtin {
    TicketRead(Arc<RecordCache>),
    KbSearch(Search),
    InvoiceRead(Arc<RecordCache>),
    TicketUpdate(Arc<RecordCache>),
    InvoicePay(Arc<RecordCache>),
}

fn spec(
    name: &str,
    description: &str,
    side_effect: SideEffect,
    timeout: Duration,
    parameters: Value,
) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
        side_effect,
        timeout,
        max_concurrency: MAX_CONCURRENCY,
        source: "builtin",
    }
}

fn ticket_id_schema() -> Value {
    json!({"type": "string", "pattern": "^T-\\d{4,}$", "description": "Ticket id, e.g. T-1001"})
}

fn invoice_id_schema() -> Value {
    json!({"type": "string", "pattern": "^INV-\\d{4,}$", "description": "Invoice id, e.g. INV-2001"})
}

/// The built-in tools and their contracts; `search` is how `kb_search` searches.
pub(super) fn tools(search: Search, records: &Arc<RecordCache>) -> Vec<(ToolSpec, Builtin)> {
    vec![
        (
            spec(
                TICKET_READ,
                "Read a support ticket: subject, body, status, priority, customer email, last update.",
                SideEffect::Read,
                DB_TIMEOUT,
                json!({
                    "type": "object",
                    "properties": {"ticket_id": ticket_id_schema()},
                    "required": ["ticket_id"],
                    "additionalProperties": false
                }),
            ),
            Builtin::TicketRead(records.clone()),
        ),
        (
            spec(
                KB_SEARCH,
                "Search the knowledge base; returns the best-matching articles with an id to cite.",
                SideEffect::Read,
                SEARCH_TIMEOUT,
                json!({
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "minLength": 1, "maxLength": 500},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 10, "default": kb::DEFAULT_LIMIT}
                    },
                    "required": ["query"],
                    "additionalProperties": false
                }),
            ),
            Builtin::KbSearch(search),
        ),
        (
            spec(
                INVOICE_READ,
                "Read an invoice: vendor, amount in USD, status, due date.",
                SideEffect::Read,
                DB_TIMEOUT,
                json!({
                    "type": "object",
                    "properties": {"invoice_id": invoice_id_schema()},
                    "required": ["invoice_id"],
                    "additionalProperties": false
                }),
            ),
            Builtin::InvoiceRead(records.clone()),
        ),
        (
            spec(
                TICKET_UPDATE,
                "Change a ticket's status and/or priority, or add a comment. A write: it is \
                 proposed for human approval, not applied directly. At least one of status, \
                 priority or comment is required.",
                SideEffect::Write,
                DB_TIMEOUT,
                json!({
                    "type": "object",
                    "properties": {
                        "ticket_id": ticket_id_schema(),
                        "status": {"type": "string", "enum": ["open", "pending", "resolved", "closed"]},
                        "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
                        "comment": {"type": "string", "minLength": 1, "maxLength": 2000}
                    },
                    "required": ["ticket_id"],
                    "minProperties": 2,
                    "additionalProperties": false
                }),
            ),
            Builtin::TicketUpdate(records.clone()),
        ),
        (
            spec(
                INVOICE_PAY,
                "Pay an open or overdue invoice in full; amount_usd must equal the invoice amount. \
                 A write: it is proposed for human approval, not applied directly.",
                SideEffect::Write,
                DB_TIMEOUT,
                json!({
                    "type": "object",
                    "properties": {
                        "invoice_id": invoice_id_schema(),
                        "amount_usd": {"type": "number", "exclusiveMinimum": 0}
                    },
                    "required": ["invoice_id", "amount_usd"],
                    "additionalProperties": false
                }),
            ),
            Builtin::InvoicePay(records.clone()),
        ),
    ]
}

impl Builtin {
    fn name(&self) -> &'static str {
        match self {
            Self::TicketRead(_) => TICKET_READ,
            Self::KbSearch(_) => KB_SEARCH,
            Self::InvoiceRead(_) => INVOICE_READ,
            Self::TicketUpdate(_) => TICKET_UPDATE,
            Self::InvoicePay(_) => INVOICE_PAY,
        }
    }

    /// Typed arguments; the schema has already been checked.
    fn args<T: for<'de> Deserialize<'de>>(&self, args: &Value) -> Result<T, ToolError> {
        T::deserialize(args).map_err(|e| ToolError::invalid(self.name(), e.to_string()))
    }

    pub(super) async fn run(&self, ctx: &ToolCtx, args: &Value) -> Result<Value, ToolError> {
        match self {
            Self::TicketRead(cache) => {
                let a: TicketRef = self.args(args)?;
                let kind = records::Kind::Ticket;
                if let Some(hit) = cache.get(&ctx.tenant, kind, &a.ticket_id) {
                    return Ok(hit);
                }
                let found = load_ticket(ctx.db.pool(), ctx, &a.ticket_id, false)
                    .await?
                    .to_json();
                cache.put(&ctx.tenant, kind, &a.ticket_id, found.clone());
                Ok(found)
            }
            Self::InvoiceRead(cache) => {
                let a: InvoiceRef = self.args(args)?;
                let kind = records::Kind::Invoice;
                if let Some(hit) = cache.get(&ctx.tenant, kind, &a.invoice_id) {
                    return Ok(hit);
                }
                let found = load_invoice(ctx.db.pool(), ctx, &a.invoice_id, false)
                    .await?
                    .to_json();
                cache.put(&ctx.tenant, kind, &a.invoice_id, found.clone());
                Ok(found)
            }
            Self::KbSearch(search) => {
                let a: kb::Query = self.args(args)?;
                search.search(ctx, &a).await
            }
            Self::TicketUpdate(_) | Self::InvoicePay(_) => {
                Err(ToolError::WriteNeedsApproval(self.name().into()))
            }
        }
    }

    pub(super) async fn propose(
        &self,
        ctx: &ToolCtx,
        args: &Value,
    ) -> Result<ProposedChange, ToolError> {
        match self {
            Self::TicketUpdate(_) => {
                let a: TicketUpdate = self.args(args)?;
                let before = load_ticket(ctx.db.pool(), ctx, &a.ticket_id, false).await?;
                let after = a.apply_to(&before)?;
                Ok(ProposedChange::new(
                    format!("ticket/{}", before.id),
                    before.to_json(),
                    after.to_json(),
                ))
            }
            Self::InvoicePay(_) => {
                let a: InvoicePay = self.args(args)?;
                let before = load_invoice(ctx.db.pool(), ctx, &a.invoice_id, false).await?;
                let after = a.apply_to(&before)?;
                Ok(ProposedChange::new(
                    format!("invoice/{}", before.id),
                    before.to_json(),
                    after.to_json(),
                ))
            }
            Self::TicketRead(_) | Self::InvoiceRead(_) | Self::KbSearch(_) => Err(
                ToolError::failed(self.name(), "is a read tool: there is no change to propose"),
            ),
        }
    }

    pub(super) async fn execute(&self, ctx: &ToolCtx, args: &Value) -> Result<Value, ToolError> {
        let mut conn = ctx
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| ToolError::db(self.name(), &e))?;
        let result = self.execute_on(&mut conn, ctx, args).await;
        if let Self::TicketUpdate(cache) | Self::InvoicePay(cache) = self {
            // Committed now: a read that raced the write must not keep the old record.
            cache.forget_tenant(&ctx.tenant);
        }
        result
    }

    /// Applies the change on `conn`, which may be inside the caller's transaction (the
    /// approvals module commits the write with the approval's status and audit event). On
    /// PostgreSQL the record is locked while it is read, so concurrent writes to it queue.
    pub(super) async fn execute_on(
        &self,
        conn: &mut AnyConnection,
        ctx: &ToolCtx,
        args: &Value,
    ) -> Result<Value, ToolError> {
        let lock = ctx.db.backend() == Backend::Postgres;
        if let Self::TicketUpdate(cache) | Self::InvoicePay(cache) = self {
            // Again after the commit (Registry::records_changed); this one covers a write
            // that is not part of a larger transaction.
            cache.forget_tenant(&ctx.tenant);
        }
        match self {
            Self::TicketUpdate(_) => {
                let a: TicketUpdate = self.args(args)?;
                let before = load_ticket(&mut *conn, ctx, &a.ticket_id, lock).await?;
                let after = a.apply_to(&before)?;
                // Compare-and-set on the last update: a concurrent change makes this a no-op.
                let now = Utc::now().timestamp_millis().max(before.updated_at_ms + 1);
                let done = sqlx::query(
                    "UPDATE tickets SET status = $1, priority = $2, body = $3, updated_at = $4 \
                     WHERE tenant = $5 AND id = $6 AND updated_at = $7",
                )
                .bind(&after.status)
                .bind(&after.priority)
                .bind(&after.body)
                .bind(now)
                .bind(ctx.tenant.as_str())
                .bind(&before.id)
                .bind(before.updated_at_ms)
                .execute(&mut *conn)
                .await
                .map_err(|e| ToolError::db(TICKET_UPDATE, &e))?;
                if done.rows_affected() == 0 {
                    return Err(ToolError::failed(
                        TICKET_UPDATE,
                        format!(
                            "ticket {} changed while the update was being applied; propose it again",
                            before.id
                        ),
                    ));
                }
                Ok(load_ticket(&mut *conn, ctx, &before.id, false)
                    .await?
                    .to_json())
            }
            Self::InvoicePay(_) => {
                let a: InvoicePay = self.args(args)?;
                let before = load_invoice(&mut *conn, ctx, &a.invoice_id, lock).await?;
                a.apply_to(&before)?;
                let now = Utc::now().timestamp_millis();
                // Only from the status just checked: a second call finds it paid and stops.
                let done = sqlx::query(
                    "UPDATE invoices SET status = 'paid', updated_at = $1 \
                     WHERE tenant = $2 AND id = $3 AND status = $4",
                )
                .bind(now)
                .bind(ctx.tenant.as_str())
                .bind(&before.id)
                .bind(&before.status)
                .execute(&mut *conn)
                .await
                .map_err(|e| ToolError::db(INVOICE_PAY, &e))?;
                if done.rows_affected() == 0 {
                    return Err(ToolError::failed(
                        INVOICE_PAY,
                        format!(
                            "invoice {} changed while the payment was being applied; nothing was paid",
                            before.id
                        ),
                    ));
                }
                Ok(load_invoice(&mut *conn, ctx, &before.id, false)
                    .await?
                    .to_json())
            }
            Self::TicketRead(_) | Self::InvoiceRead(_) | Self::KbSearch(_) => Err(
                ToolError::failed(self.name(), "is a read tool: there is no change to execute"),
            ),
        }
    }
}

#[derive(Deserialize)]
struct TicketRef {
    ticket_id: String,
}

#[derive(Deserialize)]
struct InvoiceRef {
    invoice_id: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Ticket {
    id: String,
    subject: String,
    body: String,
    status: String,
    priority: String,
    customer_email: String,
    updated_at_ms: i64,
}

impl Ticket {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            subject: row.try_get("subject")?,
            body: row.try_get("body")?,
            status: row.try_get("status")?,
            priority: row.try_get("priority")?,
            customer_email: row.try_get("customer_email")?,
            updated_at_ms: row.try_get("updated_at")?,
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "subject": self.subject,
            "body": self.body,
            "status": self.status,
            "priority": self.priority,
            "customer_email": self.customer_email,
            "updated_at": rfc3339(self.updated_at_ms),
        })
    }
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

/// `FOR UPDATE` (PostgreSQL) when the record is read to be written in the same transaction.
fn lock_clause(lock: bool) -> &'static str {
    if lock { " FOR UPDATE" } else { "" }
}

async fn load_ticket<'c, E: sqlx::Executor<'c, Database = Any>>(
    exec: E,
    ctx: &ToolCtx,
    id: &str,
    lock: bool,
) -> Result<Ticket, ToolError> {
    let row = sqlx::query(&format!(
        "SELECT id, subject, body, status, priority, customer_email, updated_at \
         FROM tickets WHERE tenant = $1 AND id = $2{}",
        lock_clause(lock)
    ))
    .bind(ctx.tenant.as_str())
    .bind(id)
    .fetch_optional(exec)
    .await
    .map_err(|e| ToolError::db(TICKET_READ, &e))?
    .ok_or_else(|| ToolError::NotFound(format!("ticket {id}")))?;
    Ticket::from_row(&row).map_err(|e| ToolError::db(TICKET_READ, &e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TicketStatus {
    Open,
    Pending,
    Resolved,
    Closed,
}

impl TicketStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

#[derive(Deserialize)]
struct TicketUpdate {
    ticket_id: String,
    status: Option<TicketStatus>,
    priority: Option<Priority>,
    comment: Option<String>,
}

impl TicketUpdate {
    /// The ticket with this change applied; an error when it would change nothing (which is
    /// also what a second `execute` of the same change finds).
    fn apply_to(&self, ticket: &Ticket) -> Result<Ticket, ToolError> {
        if self.status.is_none() && self.priority.is_none() && self.comment.is_none() {
            return Err(ToolError::invalid(
                TICKET_UPDATE,
                "give at least one of status, priority or comment",
            ));
        }
        let mut after = ticket.clone();
        if let Some(status) = self.status {
            after.status = status.as_str().into();
        }
        if let Some(priority) = self.priority {
            after.priority = priority.as_str().into();
        }
        if let Some(comment) = &self.comment {
            if comment.trim().is_empty() {
                return Err(ToolError::invalid(
                    TICKET_UPDATE,
                    "comment: must not be blank",
                ));
            }
            let entry = format!("\n\n--- comment ---\n{}", comment.trim());
            if !after.body.ends_with(&entry) {
                after.body.push_str(&entry);
            }
        }
        if after == *ticket {
            return Err(ToolError::failed(
                TICKET_UPDATE,
                format!(
                    "ticket {} already has this status, priority and comment; nothing to change",
                    ticket.id
                ),
            ));
        }
        Ok(after)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Invoice {
    id: String,
    vendor: String,
    amount_usd: f64,
    status: String,
    due_date: String,
}

impl Invoice {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            vendor: row.try_get("vendor")?,
            amount_usd: row.try_get("amount_usd")?,
            status: row.try_get("status")?,
            due_date: row.try_get("due_date")?,
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "vendor": self.vendor,
            "amount_usd": self.amount_usd,
            "status": self.status,
            "due_date": self.due_date,
        })
    }
}

async fn load_invoice<'c, E: sqlx::Executor<'c, Database = Any>>(
    exec: E,
    ctx: &ToolCtx,
    id: &str,
    lock: bool,
) -> Result<Invoice, ToolError> {
    let row = sqlx::query(&format!(
        "SELECT id, vendor, amount_usd, status, due_date FROM invoices WHERE tenant = $1 AND id = $2{}",
        lock_clause(lock)
    ))
    .bind(ctx.tenant.as_str())
    .bind(id)
    .fetch_optional(exec)
    .await
    .map_err(|e| ToolError::db(INVOICE_READ, &e))?
    .ok_or_else(|| ToolError::NotFound(format!("invoice {id}")))?;
    Invoice::from_row(&row).map_err(|e| ToolError::db(INVOICE_READ, &e))
}

#[derive(Deserialize)]
struct InvoicePay {
    invoice_id: String,
    amount_usd: f64,
}

impl InvoicePay {
    /// The invoice once paid; an error unless it is open or overdue and the amount matches.
    fn apply_to(&self, invoice: &Invoice) -> Result<Invoice, ToolError> {
        match invoice.status.as_str() {
            "open" | "overdue" => {}
            "paid" => {
                return Err(ToolError::failed(
                    INVOICE_PAY,
                    format!("invoice {} is already paid", invoice.id),
                ));
            }
            other => {
                return Err(ToolError::failed(
                    INVOICE_PAY,
                    format!(
                        "invoice {} is {other}; only open or overdue invoices can be paid",
                        invoice.id
                    ),
                ));
            }
        }
        if (self.amount_usd - invoice.amount_usd).abs() > AMOUNT_TOLERANCE_USD {
            return Err(ToolError::failed(
                INVOICE_PAY,
                format!(
                    "amount {:.2} USD does not match invoice {} amount {:.2} USD",
                    self.amount_usd, invoice.id, invoice.amount_usd
                ),
            ));
        }
        Ok(Invoice {
            status: "paid".into(),
            ..invoice.clone()
        })
    }
}
