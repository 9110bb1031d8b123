//! Demo domain seed data: tickets, invoices and knowledge-base articles for tenant `demo`,
//! and a smaller, different set for tenant `other` so cross-tenant reads can be shown to
//! fail. Seeding is idempotent: rows that exist are left alone (`ON CONFLICT DO NOTHING`).

use serde::Serialize;

use super::Db;
use crate::domain::TenantId;

/// The tenant the demo workflows run in.
pub const DEMO_TENANT: &str = "demo";
/// A second tenant, for isolation checks.
pub const OTHER_TENANT: &str = "other";

/// How many rows one `seed` call inserted, per table (0 everywhere on a second run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeedReport {
    pub tickets: u64,
    pub invoices: u64,
    pub kb_articles: u64,
}

impl SeedReport {
    pub fn total(&self) -> u64 {
        self.tickets + self.invoices + self.kb_articles
    }
}

/// 2025-03-03T09:00:00Z; demo timestamps count back from here so seeding is deterministic.
const BASE_MS: i64 = 1_740_992_400_000;
const HOUR_MS: i64 = 3_600_000;

struct Ticket {
    tenant: &'static str,
    id: &'static str,
    subject: &'static str,
    body: &'static str,
    status: &'static str,
    priority: &'static str,
    customer_email: &'static str,
    hours_ago: i64,
}

struct Invoice {
    tenant: &'static str,
    id: &'static str,
    vendor: &'static str,
    amount_usd: f64,
    status: &'static str,
    due_date: &'static str,
}

struct Article {
    tenant: &'static str,
    id: &'static str,
    title: &'static str,
    body: &'static str,
    /// Comma-separated.
    tags: &'static str,
}

#[rustfmt::skip]
const TICKETS: &[Ticket] = &[
    Ticket { tenant: DEMO_TENANT, id: "T-1001", subject: "Cannot log in after password reset",
        body: "Hi, I reset my password this morning but the new one is rejected on the login page. \
               I tried twice and now my account seems locked. You can reach me at jane.doe@acme-corp.com \
               or on +1 415-555-0134. Thanks, Jane",
        status: "open", priority: "high", customer_email: "jane.doe@acme-corp.com", hours_ago: 2 },
    Ticket { tenant: DEMO_TENANT, id: "T-1002", subject: "Refund for duplicate charge",
        body: "We were charged twice for the February subscription (two charges of $249.00 on the same day). \
               The card used was 4111 1111 1111 1111. Please refund the duplicate charge.",
        status: "open", priority: "urgent", customer_email: "billing@northwind.example", hours_ago: 5 },
    Ticket { tenant: DEMO_TENANT, id: "T-1003", subject: "API returns 429 Too Many Requests",
        body: "Our nightly sync started failing with HTTP 429 from /v2/orders since yesterday. \
               We send about 20 requests per second in bursts. What are the limits and how should we back off?",
        status: "pending", priority: "normal", customer_email: "devops@globex.example", hours_ago: 20 },
    Ticket { tenant: DEMO_TENANT, id: "T-1004", subject: "SSO login fails with SAML error",
        body: "Since we rotated our Okta signing certificate, every SSO login fails with \
               'SAML response signature invalid'. Local accounts still work.",
        status: "open", priority: "high", customer_email: "it-admin@initech.example", hours_ago: 7 },
    Ticket { tenant: DEMO_TENANT, id: "T-1005", subject: "Dashboard slow during outage window",
        body: "Between 14:00 and 14:40 UTC the dashboard took 30+ seconds to load. Was there an incident? \
               Please call me back on (212) 555-0187.",
        status: "resolved", priority: "normal", customer_email: "ops@umbrella.example", hours_ago: 48 },
    Ticket { tenant: DEMO_TENANT, id: "T-1006", subject: "How do I export invoices to CSV?",
        body: "Our accountant needs all 2024 invoices as CSV. Is there an export, or do we need the API?",
        status: "closed", priority: "low", customer_email: "finance@hooli.example", hours_ago: 120 },
    Ticket { tenant: DEMO_TENANT, id: "T-1007", subject: "Change billing email address",
        body: "Please send future invoices to accounts-payable@stark.example instead of tony@stark.example.",
        status: "open", priority: "low", customer_email: "tony@stark.example", hours_ago: 30 },
    Ticket { tenant: DEMO_TENANT, id: "T-1008", subject: "Webhook deliveries delayed",
        body: "Webhook events arrive 10-15 minutes late since the weekend. Our endpoint answers in under 200 ms.",
        status: "pending", priority: "high", customer_email: "platform@wayne.example", hours_ago: 26 },
    Ticket { tenant: DEMO_TENANT, id: "T-1009", subject: "Two-factor codes not arriving by SMS",
        body: "I no longer receive 2FA codes on my phone (+44 20 7946 0958). Can I switch to an authenticator app?",
        status: "open", priority: "normal", customer_email: "m.smith@cyberdyne.example", hours_ago: 3 },
    Ticket { tenant: DEMO_TENANT, id: "T-1010", subject: "Cancel subscription at end of term",
        body: "We will not renew. Please make sure the subscription ends on 31 March and no further charges happen.",
        status: "open", priority: "normal", customer_email: "procurement@soylent.example", hours_ago: 12 },
    Ticket { tenant: DEMO_TENANT, id: "T-1011", subject: "Data retention question for GDPR",
        body: "How long do you keep conversation logs and can we request deletion for a specific user?",
        status: "resolved", priority: "normal", customer_email: "dpo@vandelay.example", hours_ago: 96 },
    Ticket { tenant: DEMO_TENANT, id: "T-1012", subject: "Feature request: dark mode",
        body: "Our night shift would love a dark theme for the console.",
        status: "closed", priority: "low", customer_email: "nightshift@oscorp.example", hours_ago: 200 },
    Ticket { tenant: OTHER_TENANT, id: "T-5001", subject: "Warehouse scanner offline",
        body: "Scanner WH-7 in the Rotterdam warehouse has been offline since 06:00.",
        status: "open", priority: "urgent", customer_email: "floor-lead@contoso.example", hours_ago: 1 },
    Ticket { tenant: OTHER_TENANT, id: "T-5002", subject: "Shipping label printer jams",
        body: "The label printer at dock 3 jams every 20 labels.",
        status: "pending", priority: "normal", customer_email: "dock3@contoso.example", hours_ago: 15 },
    Ticket { tenant: OTHER_TENANT, id: "T-5003", subject: "Pallet count mismatch",
        body: "Inventory shows 42 pallets of SKU 8812 but we counted 40.",
        status: "resolved", priority: "low", customer_email: "inventory@contoso.example", hours_ago: 70 },
];

#[rustfmt::skip]
const INVOICES: &[Invoice] = &[
    Invoice { tenant: DEMO_TENANT, id: "INV-2001", vendor: "Acme Cloud Hosting", amount_usd: 1_250.00, status: "open", due_date: "2025-03-15" },
    Invoice { tenant: DEMO_TENANT, id: "INV-2002", vendor: "Globex Consulting", amount_usd: 18_400.00, status: "open", due_date: "2025-03-20" },
    Invoice { tenant: DEMO_TENANT, id: "INV-2003", vendor: "Initech Office Supplies", amount_usd: 342.75, status: "paid", due_date: "2025-02-28" },
    Invoice { tenant: DEMO_TENANT, id: "INV-2004", vendor: "Umbrella Security Audit", amount_usd: 12_750.00, status: "open", due_date: "2025-04-01" },
    Invoice { tenant: DEMO_TENANT, id: "INV-2005", vendor: "Hooli Ads", amount_usd: 4_980.50, status: "overdue", due_date: "2025-02-15" },
    Invoice { tenant: DEMO_TENANT, id: "INV-2006", vendor: "Stark Hardware Leasing", amount_usd: 27_300.00, status: "open", due_date: "2025-03-31" },
    Invoice { tenant: DEMO_TENANT, id: "INV-2007", vendor: "Wayne Logistics", amount_usd: 860.00, status: "disputed", due_date: "2025-03-10" },
    Invoice { tenant: DEMO_TENANT, id: "INV-2008", vendor: "Cyberdyne Training", amount_usd: 2_400.00, status: "open", due_date: "2025-03-25" },
    Invoice { tenant: OTHER_TENANT, id: "INV-6001", vendor: "Contoso Freight", amount_usd: 9_100.00, status: "open", due_date: "2025-03-18" },
    Invoice { tenant: OTHER_TENANT, id: "INV-6002", vendor: "Fabrikam Forklifts", amount_usd: 31_000.00, status: "open", due_date: "2025-04-05" },
    Invoice { tenant: OTHER_TENANT, id: "INV-6003", vendor: "Tailspin Pallets", amount_usd: 1_450.00, status: "paid", due_date: "2025-02-20" },
];

#[rustfmt::skip]
const ARTICLES: &[Article] = &[
    Article { tenant: DEMO_TENANT, id: "KB-1", title: "Resetting your password",
        body: "Use 'Forgot password' on the login page to receive a reset link by email. The link expires after 30 minutes. \
               After five failed login attempts the account is locked for 15 minutes; an admin can unlock it sooner from Settings > Users.",
        tags: "password,login,account,locked,reset" },
    Article { tenant: DEMO_TENANT, id: "KB-2", title: "Refund policy",
        body: "Duplicate charges are refunded in full within 5 business days once confirmed by billing. \
               Annual plans can be refunded pro rata within 30 days of renewal. Refunds go back to the original payment method.",
        tags: "refund,billing,charge,payment" },
    Article { tenant: DEMO_TENANT, id: "KB-3", title: "Understanding your invoice",
        body: "Invoices are issued on the first day of each billing period and list seats, usage and taxes. \
               Download them as PDF or CSV from Billing > Invoices.",
        tags: "billing,invoice,csv,export" },
    Article { tenant: DEMO_TENANT, id: "KB-4", title: "Checking service status during an outage",
        body: "Current incidents and maintenance windows are posted on the status page. \
               During an outage the dashboard may be slow or read-only; no data is lost. Subscribe to status updates by email or webhook.",
        tags: "outage,incident,status,downtime" },
    Article { tenant: DEMO_TENANT, id: "KB-5", title: "Configuring SAML single sign-on (SSO)",
        body: "Upload your identity provider's metadata under Settings > SSO. When you rotate the IdP signing certificate, \
               upload the new certificate before the old one expires, or SSO logins fail with 'signature invalid'.",
        tags: "sso,saml,okta,login,certificate" },
    Article { tenant: DEMO_TENANT, id: "KB-6", title: "API rate limits",
        body: "Each API key may send 10 requests per second with bursts up to 50. Requests over the limit get HTTP 429 \
               with a Retry-After header; back off exponentially with jitter and honour Retry-After.",
        tags: "api,rate limit,429,throttling" },
    Article { tenant: DEMO_TENANT, id: "KB-7", title: "Webhook delivery and retries",
        body: "Webhooks are delivered at least once and retried with backoff for up to 24 hours. \
               Endpoints must answer 2xx within 10 seconds. Delivery delays are shown on the status page.",
        tags: "webhook,delivery,retry,events" },
    Article { tenant: DEMO_TENANT, id: "KB-8", title: "Two-factor authentication",
        body: "You can receive codes by SMS or use an authenticator app (TOTP). Switch methods under Profile > Security. \
               Recovery codes let you sign in if you lose your phone.",
        tags: "2fa,mfa,sms,authenticator,security,login" },
    Article { tenant: DEMO_TENANT, id: "KB-9", title: "Cancelling or changing your subscription",
        body: "Cancellation takes effect at the end of the current term; you keep access until then and are not charged again. \
               Plan changes are prorated.",
        tags: "subscription,cancel,billing,plan" },
    Article { tenant: DEMO_TENANT, id: "KB-10", title: "Updating billing contacts",
        body: "Billing owners can change the invoice email address under Billing > Contacts. Changes apply to the next invoice.",
        tags: "billing,email,contact,invoice" },
    Article { tenant: DEMO_TENANT, id: "KB-11", title: "Data retention and deletion",
        body: "Conversation logs are kept for 30 days, audit events for one year. Deletion requests for a user are processed \
               within 30 days as required by GDPR.",
        tags: "gdpr,privacy,retention,deletion" },
    Article { tenant: DEMO_TENANT, id: "KB-12", title: "Exporting data",
        body: "Export tickets, invoices and usage as CSV from the Reports page, or page through the REST API for larger exports.",
        tags: "export,csv,api,reports" },
    Article { tenant: DEMO_TENANT, id: "KB-13", title: "Managing users and roles",
        body: "Admins invite users, assign roles and unlock locked accounts under Settings > Users.",
        tags: "users,roles,admin,account" },
    Article { tenant: DEMO_TENANT, id: "KB-14", title: "Accepted payment methods",
        body: "We accept major credit cards and bank transfer for annual plans. Update the card on file under Billing > Payment.",
        tags: "payment,card,billing" },
    Article { tenant: DEMO_TENANT, id: "KB-15", title: "Troubleshooting slow dashboards",
        body: "Slow dashboards are usually caused by very wide date ranges. Narrow the range, or check the status page for an incident.",
        tags: "performance,dashboard,slow,outage" },
    Article { tenant: OTHER_TENANT, id: "KB-1", title: "Restarting a warehouse scanner",
        body: "Hold the power button for ten seconds, wait for the green light, then re-pair the scanner with the dock station.",
        tags: "scanner,warehouse,hardware" },
    Article { tenant: OTHER_TENANT, id: "KB-2", title: "Clearing label printer jams",
        body: "Open the top cover, remove the label roll and clean the print head with an alcohol wipe.",
        tags: "printer,labels,hardware" },
    Article { tenant: OTHER_TENANT, id: "KB-3", title: "Cycle counting procedure",
        body: "Count pallets per bin at shift change and record mismatches in the inventory system the same day.",
        tags: "inventory,pallets,counting" },
];

/// Inserts the demo data; rows that already exist are left as they are.
pub async fn seed(db: &Db) -> Result<SeedReport, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let mut report = SeedReport::default();
    for t in TICKETS {
        report.tickets += sqlx::query(
            "INSERT INTO tickets (tenant, id, subject, body, status, priority, customer_email, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(t.tenant)
        .bind(t.id)
        .bind(t.subject)
        .bind(t.body)
        .bind(t.status)
        .bind(t.priority)
        .bind(t.customer_email)
        .bind(BASE_MS - t.hours_ago * HOUR_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    for i in INVOICES {
        report.invoices += sqlx::query(
            "INSERT INTO invoices (tenant, id, vendor, amount_usd, status, due_date, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(i.tenant)
        .bind(i.id)
        .bind(i.vendor)
        .bind(i.amount_usd)
        .bind(i.status)
        .bind(i.due_date)
        .bind(BASE_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    for a in ARTICLES {
        report.kb_articles += sqlx::query(
            "INSERT INTO kb_articles (tenant, id, title, body, tags) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(a.tenant)
        .bind(a.id)
        .bind(a.title)
        .bind(a.body)
        .bind(a.tags)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(report)
}

/// Copies tenant `demo`'s dataset (tickets, invoices, articles, same ids) into `tenant`,
/// e.g. the `eval` tenant that eval runs use so they never touch a real tenant's data.
/// Idempotent like [`seed`]: rows that exist are left as they are.
pub async fn seed_tenant(db: &Db, tenant: &TenantId) -> Result<SeedReport, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let mut report = SeedReport::default();
    for t in TICKETS.iter().filter(|t| t.tenant == DEMO_TENANT) {
        report.tickets += sqlx::query(
            "INSERT INTO tickets (tenant, id, subject, body, status, priority, customer_email, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(t.id)
        .bind(t.subject)
        .bind(t.body)
        .bind(t.status)
        .bind(t.priority)
        .bind(t.customer_email)
        .bind(BASE_MS - t.hours_ago * HOUR_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    for i in INVOICES.iter().filter(|i| i.tenant == DEMO_TENANT) {
        report.invoices += sqlx::query(
            "INSERT INTO invoices (tenant, id, vendor, amount_usd, status, due_date, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(i.id)
        .bind(i.vendor)
        .bind(i.amount_usd)
        .bind(i.status)
        .bind(i.due_date)
        .bind(BASE_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    for a in ARTICLES.iter().filter(|a| a.tenant == DEMO_TENANT) {
        report.kb_articles += sqlx::query(
            "INSERT INTO kb_articles (tenant, id, title, body, tags) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(a.id)
        .bind(a.title)
        .bind(a.body)
        .bind(a.tags)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(report)
}

/// Temporary databases for tests in this crate.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Db, seed};

    /// A migrated SQLite database in a fresh temporary directory, removed on drop.
    pub(crate) struct TempDb {
        pub(crate) db: Db,
        dir: std::path::PathBuf,
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(crate) async fn empty() -> TempDb {
        let dir = std::env::temp_dir().join(format!("fd-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = Db::connect(&format!("sqlite://{}", dir.join("x.db").display()))
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        TempDb { db, dir }
    }

    /// The same, with the demo data seeded.
    pub(crate) async fn seeded() -> TempDb {
        let t = empty().await;
        seed(&t.db).await.expect("seed");
        t
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::testing::empty as temp_db;
    use super::*;

    async fn count(db: &Db, table: &str, tenant: &str) -> i64 {
        sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE tenant = $1"
        ))
        .bind(tenant)
        .fetch_one(db.pool())
        .await
        .expect("count")
        .get::<i64, _>("n")
    }

    #[tokio::test]
    async fn seed_fills_both_tenants() {
        let t = temp_db().await;
        let report = seed(&t.db).await.expect("seed");
        assert_eq!(
            report,
            SeedReport {
                tickets: TICKETS.len() as u64,
                invoices: INVOICES.len() as u64,
                kb_articles: ARTICLES.len() as u64
            }
        );
        assert_eq!(count(&t.db, "tickets", DEMO_TENANT).await, 12);
        assert_eq!(count(&t.db, "invoices", DEMO_TENANT).await, 8);
        assert_eq!(count(&t.db, "kb_articles", DEMO_TENANT).await, 15);
        assert_eq!(count(&t.db, "tickets", OTHER_TENANT).await, 3);
        assert!(count(&t.db, "invoices", OTHER_TENANT).await > 0);
        assert!(count(&t.db, "kb_articles", OTHER_TENANT).await > 0);
    }

    #[tokio::test]
    async fn seed_is_idempotent_and_keeps_changed_rows() {
        let t = temp_db().await;
        seed(&t.db).await.expect("first seed");
        sqlx::query("UPDATE tickets SET status = 'closed' WHERE tenant = 'demo' AND id = 'T-1001'")
            .execute(t.db.pool())
            .await
            .expect("update");
        let again = seed(&t.db).await.expect("second seed");
        assert_eq!(again, SeedReport::default());
        assert_eq!(again.total(), 0);
        let status: String =
            sqlx::query("SELECT status FROM tickets WHERE tenant = 'demo' AND id = 'T-1001'")
                .fetch_one(t.db.pool())
                .await
                .expect("row")
                .get("status");
        assert_eq!(status, "closed", "seeding must not overwrite existing rows");
    }

    #[tokio::test]
    async fn seed_tenant_copies_the_demo_dataset_idempotently() {
        let t = temp_db().await;
        let eval = TenantId::parse("eval").expect("tenant");
        let report = seed_tenant(&t.db, &eval).await.expect("seed eval");
        assert_eq!(
            (report.tickets, report.invoices, report.kb_articles),
            (12, 8, 15)
        );
        assert_eq!(count(&t.db, "tickets", "eval").await, 12);
        assert_eq!(
            count(&t.db, "tickets", DEMO_TENANT).await,
            0,
            "demo is untouched"
        );
        assert_eq!(seed_tenant(&t.db, &eval).await.expect("again").total(), 0);
        let paid: String =
            sqlx::query("SELECT status FROM invoices WHERE tenant = 'eval' AND id = 'INV-2003'")
                .fetch_one(t.db.pool())
                .await
                .expect("row")
                .get("status");
        assert_eq!(paid, "paid");
    }

    #[test]
    fn demo_data_covers_what_the_demos_need() {
        let demo_tickets = TICKETS.iter().filter(|t| t.tenant == DEMO_TENANT);
        assert!(
            demo_tickets
                .clone()
                .any(|t| t.body.contains("4111 1111 1111 1111"))
        );
        assert!(demo_tickets.clone().any(|t| t.body.contains('@')));
        assert!(demo_tickets.clone().any(|t| t.body.contains("555-")));
        let invoices: Vec<_> = INVOICES
            .iter()
            .filter(|i| i.tenant == DEMO_TENANT)
            .collect();
        assert!(
            invoices
                .iter()
                .any(|i| i.amount_usd > 10_000.0 && i.status == "open")
        );
        assert!(invoices.iter().any(|i| i.status == "paid"));
    }
}
