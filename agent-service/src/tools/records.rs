//! A short-lived, per-tenant cache of the records the read tools return (`ticket_read`,
//! `invoice_read`), so a hot record is not read from the database on every run.
//!
//! Correctness rules:
//! - entries are keyed by tenant first: a lookup can only find the caller's tenant's rows;
//! - only found records are cached (a record created later is seen at once);
//! - a write through this process forgets the tenant's entries twice: when the write
//!   runs and again after its transaction commits ([`super::Registry::records_changed`]),
//!   so a read racing the commit cannot keep the old version;
//! - a write made by another process (a replica, admin SQL) is seen within [`RECORD_TTL`];
//! - what a write is based on is never cached: proposals and executions read the row
//!   themselves (locked on PostgreSQL), so an approval diff is always current.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::TenantId;

/// How long a record read by a read tool is reused.
pub const RECORD_TTL: Duration = Duration::from_secs(1);
/// Above this many cached records in total, expired entries are swept on insert.
const SWEEP_ABOVE: usize = 10_000;

/// Which table a cached record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Ticket,
    Invoice,
}

#[derive(Default)]
struct TenantRecords {
    tickets: HashMap<String, (Instant, Value)>,
    invoices: HashMap<String, (Instant, Value)>,
}

impl TenantRecords {
    fn of(&mut self, kind: Kind) -> &mut HashMap<String, (Instant, Value)> {
        match kind {
            Kind::Ticket => &mut self.tickets,
            Kind::Invoice => &mut self.invoices,
        }
    }

    fn len(&self) -> usize {
        self.tickets.len() + self.invoices.len()
    }
}

pub struct RecordCache {
    tenants: Mutex<HashMap<String, TenantRecords>>,
    ttl: Duration,
}

impl Default for RecordCache {
    fn default() -> Self {
        Self::with_ttl(RECORD_TTL)
    }
}

impl RecordCache {
    pub(super) fn with_ttl(ttl: Duration) -> Self {
        Self {
            tenants: Mutex::default(),
            ttl,
        }
    }

    /// The cached record, if it was read less than [`RECORD_TTL`] ago.
    pub(super) fn get(&self, tenant: &TenantId, kind: Kind, id: &str) -> Option<Value> {
        let mut map = self.tenants.lock().expect("record cache lock");
        let (at, value) = map.get_mut(tenant.as_str())?.of(kind).get(id)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub(super) fn put(&self, tenant: &TenantId, kind: Kind, id: &str, value: Value) {
        let mut map = self.tenants.lock().expect("record cache lock");
        if map.values().map(TenantRecords::len).sum::<usize>() > SWEEP_ABOVE {
            for t in map.values_mut() {
                t.tickets.retain(|_, (at, _)| at.elapsed() < self.ttl);
                t.invoices.retain(|_, (at, _)| at.elapsed() < self.ttl);
            }
            map.retain(|_, t| t.len() > 0);
        }
        map.entry(tenant.as_str().to_string())
            .or_default()
            .of(kind)
            .insert(id.to_string(), (Instant::now(), value));
    }

    /// Forgets every cached record of `tenant` (after a write to its records).
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.tenants
            .lock()
            .expect("record cache lock")
            .remove(tenant.as_str());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn keyed_by_tenant_and_kind() {
        let c = RecordCache::default();
        c.put(&t("demo"), Kind::Ticket, "T-1", json!({"id": "T-1"}));
        assert_eq!(
            c.get(&t("demo"), Kind::Ticket, "T-1"),
            Some(json!({"id": "T-1"}))
        );
        assert_eq!(c.get(&t("other"), Kind::Ticket, "T-1"), None);
        assert_eq!(c.get(&t("demo"), Kind::Invoice, "T-1"), None);
        c.forget_tenant(&t("demo"));
        assert_eq!(c.get(&t("demo"), Kind::Ticket, "T-1"), None);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let c = RecordCache::with_ttl(Duration::from_millis(50));
        c.put(&t("demo"), Kind::Invoice, "INV-1", json!(1));
        assert_eq!(c.get(&t("demo"), Kind::Invoice, "INV-1"), Some(json!(1)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(&t("demo"), Kind::Invoice, "INV-1"), None);
    }

    #[test]
    fn forgetting_one_tenant_keeps_the_others() {
        let c = RecordCache::default();
        c.put(&t("demo"), Kind::Ticket, "T-1", json!("a"));
        c.put(&t("other"), Kind::Ticket, "T-1", json!("b"));
        c.forget_tenant(&t("demo"));
        assert_eq!(c.get(&t("other"), Kind::Ticket, "T-1"), Some(json!("b")));
    }
}
