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
use sqlx::migrate::{Migrate, MigrateError, Migrator};
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

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/agent-service/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/agent-service/postgres");

/// Migrations whose text changed after they were released without changing what they do
/// (a comment reworded), with the SHA-384 of the text as first released (the same on both
/// back-ends). sqlx refuses to run when an applied migration's checksum differs from the
/// file's, so a database migrated with the old text is given the new checksum first; any
/// other difference still fails.
const REWORDED: &[(i64, &str)] = &[
    (
        3,
        "86415d779900f98d0c20bfb53ff14a98d6ee6aec7cb90d2bc61c3382378bec5cb61eff57ff1e4816a7ff1ec9ed4c643c",
    ),
    (
        5,
        "8d1a36594f9d6be051331c547b3cb51eda846c3ea693dbb19d5416c2daadf541dfb28da47b1bfb4cb40ae43759ee299c",
    ),
];

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
    pub async fn open(settings: &crate::config::DatabaseConfig) -> anyhow::Result<Self> {
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

    pub async fn migrate(&self) -> Result<(), MigrateError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        self.accept_reworded(migrator).await?;
        migrator.run(&self.pool).await
    }

    /// Gives the applied migrations listed in [`REWORDED`] their current checksum when
    /// they carry the one of their first text.
    async fn accept_reworded(&self, migrator: &Migrator) -> Result<(), MigrateError> {
        let mut conn = self.pool.acquire().await?;
        conn.ensure_migrations_table().await?;
        for (version, first) in REWORDED {
            let Some(current) = migrator.iter().find(|m| m.version == *version) else {
                continue;
            };
            let first = hex::decode(first).expect("a static hex checksum");
            sqlx::query(
                "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
            )
            .bind(current.checksum.to_vec())
            .bind(*version)
            .bind(first)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    async fn checksum(db: &Db, version: i64) -> Vec<u8> {
        sqlx::query("SELECT checksum FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .fetch_one(db.pool())
            .await
            .expect("applied")
            .get("checksum")
    }

    async fn set_checksum(db: &Db, version: i64, checksum: Vec<u8>) {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
            .bind(checksum)
            .bind(version)
            .execute(db.pool())
            .await
            .expect("update");
    }

    /// A database migrated by a release whose migration text differed only in a reworded
    /// comment still opens; a migration that really changed still does not.
    #[tokio::test]
    async fn reworded_migrations_are_accepted_and_real_changes_are_not() {
        let dir = std::env::temp_dir().join(format!("db-unit-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.display()))
            .await
            .expect("connect");
        db.migrate().await.expect("fresh migrate");
        let current = checksum(&db, 3).await;
        for (version, first) in REWORDED {
            let first = hex::decode(first).expect("hex");
            assert_ne!(first, checksum(&db, *version).await, "the text did change");
            set_checksum(&db, *version, first).await;
        }
        db.migrate()
            .await
            .expect("a reworded migration is accepted");
        assert_eq!(checksum(&db, 3).await, current);

        set_checksum(&db, 3, vec![0; 48]).await;
        match db.migrate().await {
            Err(MigrateError::VersionMismatch(3)) => {}
            other => panic!("a changed migration must still be refused, got {other:?}"),
        }
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
