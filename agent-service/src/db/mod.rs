//! Storage: one sqlx `AnyPool` over SQLite (default) or PostgreSQL, chosen by `DATABASE_URL`.
//!
//! All queries are runtime queries in the SQL subset both engines share (`$n` parameters,
//! BIGINT millisecond timestamps, JSON as TEXT), so one repository serves both back-ends;
//! where the engines differ (row locking), the code branches on [`Backend`]. Each back-end
//! has its own migration set under `migrations/agent-service/`.

pub mod approvals;
pub mod audit;
pub mod demo;
pub mod freeze;
pub mod idempotency;
pub mod jobs;
pub mod keys;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::config::default_max_connections;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../migrations/agent-service/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../migrations/agent-service/postgres");

impl Db {
    /// Connects (creating the SQLite file on first use) without migrating, with the
    /// back-end's default pool size.
    pub async fn connect(database_url: &str) -> Result<Self, sqlx::Error> {
        Self::connect_with(database_url, None).await
    }

    /// Connects with at most `max_connections` pooled connections (`None`: the default).
    pub async fn connect_with(
        database_url: &str,
        max_connections: Option<u32>,
    ) -> Result<Self, sqlx::Error> {
        let max_connections =
            max_connections.unwrap_or_else(|| default_max_connections(database_url));
        sqlx::any::install_default_drivers();
        let backend = if database_url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !database_url.contains("mode=") => {
                let sep = if database_url.contains('?') { '&' } else { '?' };
                format!("{database_url}{sep}mode=rwc")
            }
            _ => database_url.to_string(),
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    // A local file does not drop idle connections: the default ping before
                    // every acquire is a wasted round trip to the connection's worker thread
                    // (two thread hand-offs per query under load; see docs/benchmarks.md).
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?
            }
        };
        Ok(Self { pool, backend })
    }

    /// Connects to `DATABASE_URL` with the configured pool size and applies the migrations:
    /// what every command that serves or runs work does first.
    pub async fn open(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let db = Self::connect_with(&settings.database_url, settings.database_max_connections)
            .await
            .with_context(|| {
                format!(
                    "cannot open DATABASE_URL {}",
                    crate::config::redact_url(&settings.database_url)
                )
            })?;
        db.migrate()
            .await
            .context("applying database migrations failed")?;
        Ok(db)
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the timestamp format of every table.
pub fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}
