//! The console's local SQLite store (sqlx, runtime queries, `migrations/console/` embedded):
//! profiles (never secrets), downsampled metric history, smoke-test results, and the
//! operator action log. Rows that do not parse are errors naming the row, never panics.
//!
//! Runtime queries rather than `query!` macros: there is one database and a handful of
//! statements, and the macros would need a prepared database (or `.sqlx` data) at build
//! time for every crate that builds the workspace.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::domain::{BaseUrl, ProfileId, ProfileKind};
use crate::error::{Error, Result};
use crate::series::{Metric, Point, SeriesKey};
use crate::smoke::SmokeReport;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/console");

/// What a profile connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Agent { url: BaseUrl },
    Kubernetes { context: String, namespace: String },
}

/// A saved connection. Its API key or token lives in the keyring under its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: ProfileId,
    pub name: String,
    pub target: Target,
}

impl Profile {
    pub fn kind(&self) -> ProfileKind {
        match self.target {
            Target::Agent { .. } => ProfileKind::Agent,
            Target::Kubernetes { .. } => ProfileKind::Kubernetes,
        }
    }

    /// Checks what the type cannot: a name and, for Kubernetes, a context and namespace.
    pub fn new(id: ProfileId, name: &str, target: Target) -> Result<Self> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "a profile name must be 1-100 printable characters",
            ));
        }
        if let Target::Kubernetes { context, namespace } = &target {
            if context.trim().is_empty() || context.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "a Kubernetes profile needs a kubeconfig context",
                ));
            }
            let dns_label = !namespace.is_empty()
                && namespace.len() <= 63
                && namespace
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !namespace.starts_with('-')
                && !namespace.ends_with('-');
            if !dns_label {
                return Err(Error::invalid(format!(
                    "namespace {namespace:?} is not a valid Kubernetes namespace (a DNS label: a-z, 0-9, '-')"
                )));
            }
        }
        Ok(Self {
            id,
            name: name.to_string(),
            target,
        })
    }
}

/// How an operator action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "ok" => Self::Ok,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// One entry of the operator action log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Action {
    pub id: i64,
    pub at_ms: i64,
    /// Who: the profile and key identity the action ran as, e.g. `prod (operator)`.
    pub actor: String,
    /// What: `approve`, `reject`, `freeze`, `promote`, `abort`, …
    pub action: String,
    /// On what: `approval/apr_…`, `deployment/prod/agent`, …
    pub target: String,
    pub outcome: Outcome,
    pub detail: String,
}

/// An action to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub outcome: Outcome,
    pub detail: &'a str,
}

/// A smoke run as listed (the full report via [`Store::smoke_report`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SmokeRun {
    pub id: String,
    pub started_at_ms: i64,
    pub model: String,
    pub passed: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// The local store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// In-memory stores only: a connection outside the pool that keeps the shared-cache
    /// memory database alive. Without it, a pooled connection closed mid-query (a task
    /// aborted at shutdown) would take the database with it, and the pool's next
    /// connection would open a new, empty one ("no such table").
    _keeper: Option<std::sync::Arc<tokio::sync::Mutex<sqlx::SqliteConnection>>>,
}

impl Store {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Storage(format!(
                    "cannot create the data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| {
                Error::Storage(format!(
                    "cannot open {}: {}",
                    path.display(),
                    crate::error::error_chain(&e)
                ))
            })?;
        Self::migrated(pool).await
    }

    /// A private in-memory database (tests, or a session that must not persist).
    pub async fn in_memory() -> Result<Self> {
        // sqlx names each `:memory:` database uniquely and opens it with a shared cache, so
        // every connection made from these options sees the same database while one is open.
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let keeper = sqlx::ConnectOptions::connect(&options).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let mut store = Self::migrated(pool).await?;
        store._keeper = Some(std::sync::Arc::new(tokio::sync::Mutex::new(keeper)));
        Ok(store)
    }

    async fn migrated(pool: SqlitePool) -> Result<Self> {
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            _keeper: None,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // --- profiles -------------------------------------------------------------------

    /// Inserts or updates by id.
    pub async fn save_profile(&self, p: &Profile, now_ms: i64) -> Result<()> {
        let (url, context, namespace) = match &p.target {
            Target::Agent { url } => (Some(url.to_string()), None, None),
            Target::Kubernetes { context, namespace } => {
                (None, Some(context.clone()), Some(namespace.clone()))
            }
        };
        sqlx::query(
            "INSERT INTO profiles (id, name, kind, url, context, namespace, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, url = excluded.url, \
             context = excluded.context, namespace = excluded.namespace, updated_at = excluded.updated_at",
        )
        .bind(p.id.as_str())
        .bind(&p.name)
        .bind(p.kind().as_str())
        .bind(url)
        .bind(context)
        .bind(namespace)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.message().contains("UNIQUE") && d.message().contains("name") => {
                Error::invalid(format!("a profile named {:?} already exists", p.name))
            }
            _ => Error::from(e),
        })?;
        Ok(())
    }

    pub async fn profiles(&self) -> Result<Vec<Profile>> {
        let rows = sqlx::query(
            "SELECT id, name, kind, url, context, namespace FROM profiles ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(profile_row).collect()
    }

    pub async fn profile(&self, id: &ProfileId) -> Result<Option<Profile>> {
        let row = sqlx::query(
            "SELECT id, name, kind, url, context, namespace FROM profiles WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(profile_row).transpose()
    }

    /// Links a Kubernetes profile to an agent-service profile (`None`: it follows the
    /// console's active profile). The caller checks that `agent` is an agent profile.
    pub async fn set_agent_link(&self, kube: &ProfileId, agent: Option<&ProfileId>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE profiles SET agent_profile = $2 WHERE id = $1 AND kind = 'kubernetes'",
        )
        .bind(kube.as_str())
        .bind(agent.map(ProfileId::as_str))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::invalid(format!(
                "there is no Kubernetes profile {kube}"
            )));
        }
        Ok(())
    }

    /// Every explicit link: Kubernetes profile → agent-service profile.
    pub async fn agent_links(&self) -> Result<HashMap<ProfileId, ProfileId>> {
        let rows = sqlx::query(
            "SELECT id, agent_profile FROM profiles WHERE kind = 'kubernetes' AND agent_profile IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let agent: String = r.try_get("agent_profile")?;
                Ok((ProfileId::parse(&id)?, ProfileId::parse(&agent)?))
            })
            .collect()
    }

    /// True when it existed.
    pub async fn delete_profile(&self, id: &ProfileId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM profiles WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // --- metric history -------------------------------------------------------------

    /// Stores points of one series (a point at an existing time replaces it).
    pub async fn append_points(&self, key: &SeriesKey, points: &[Point]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for p in points.iter().filter(|p| p.v.is_finite()) {
            sqlx::query(
                "INSERT OR REPLACE INTO metric_points (service, track, metric, t_ms, value) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.service)
            .bind(&key.track)
            .bind(key.metric.as_str())
            .bind(p.t_ms)
            .bind(p.v)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Points with `since_ms <= t < until_ms`, oldest first.
    pub async fn points(
        &self,
        key: &SeriesKey,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<Point>> {
        let rows = sqlx::query(
            "SELECT t_ms, value FROM metric_points WHERE service = $1 AND track = $2 AND metric = $3 \
             AND t_ms >= $4 AND t_ms < $5 ORDER BY t_ms",
        )
        .bind(&key.service)
        .bind(&key.track)
        .bind(key.metric.as_str())
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Point {
                    t_ms: r.try_get("t_ms")?,
                    v: r.try_get("value")?,
                })
            })
            .collect()
    }

    /// Thins history older than `before_ms` to one point per `bucket_ms` (the mean, at the
    /// bucket's start), so charts of past days stay cheap. Returns the rows removed.
    pub async fn downsample_history(&self, before_ms: i64, bucket_ms: i64) -> Result<u64> {
        if bucket_ms < 1000 {
            return Err(Error::invalid(
                "history buckets must be at least one second",
            ));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT OR REPLACE INTO metric_points (service, track, metric, t_ms, value) \
             SELECT service, track, metric, (t_ms / $2) * $2, AVG(value) FROM metric_points \
             WHERE t_ms < $1 GROUP BY service, track, metric, t_ms / $2",
        )
        .bind(before_ms)
        .bind(bucket_ms)
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query("DELETE FROM metric_points WHERE t_ms < $1 AND t_ms % $2 != 0")
            .bind(before_ms)
            .bind(bucket_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed.rows_affected())
    }

    /// The series that have history, for a "what do we know" listing.
    pub async fn series_keys(&self) -> Result<Vec<SeriesKey>> {
        let rows = sqlx::query(
            "SELECT DISTINCT service, track, metric FROM metric_points ORDER BY 1, 2, 3",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let metric: String = r.try_get("metric")?;
                Ok(SeriesKey {
                    service: r.try_get("service")?,
                    track: r.try_get("track")?,
                    metric: Metric::parse(&metric).map_err(|_| {
                        Error::Storage(format!("metric_points holds an unknown metric {metric:?}"))
                    })?,
                })
            })
            .collect()
    }

    // --- smoke results --------------------------------------------------------------

    pub async fn save_smoke_report(&self, r: &SmokeReport) -> Result<()> {
        let (p, f, s) = r.counts();
        sqlx::query(
            "INSERT OR REPLACE INTO smoke_runs (id, started_at, finished_at, ollama_url, model, passed, failed, skipped, report) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&r.id)
        .bind(r.started_at_ms)
        .bind(r.finished_at_ms)
        .bind(&r.ollama_url)
        .bind(&r.model)
        .bind(p as i64)
        .bind(f as i64)
        .bind(s as i64)
        .bind(r.to_json())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest runs first.
    pub async fn smoke_runs(&self, limit: u32) -> Result<Vec<SmokeRun>> {
        let rows = sqlx::query(
            "SELECT id, started_at, model, passed, failed, skipped FROM smoke_runs ORDER BY started_at DESC LIMIT $1",
        )
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SmokeRun {
                    id: r.try_get("id")?,
                    started_at_ms: r.try_get("started_at")?,
                    model: r.try_get("model")?,
                    passed: r.try_get("passed")?,
                    failed: r.try_get("failed")?,
                    skipped: r.try_get("skipped")?,
                })
            })
            .collect()
    }

    pub async fn smoke_report(&self, id: &str) -> Result<Option<SmokeReport>> {
        let row = sqlx::query("SELECT report FROM smoke_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let raw: String = r.try_get("report")?;
                SmokeReport::from_json(&raw)
                    .map(Some)
                    .map_err(|e| Error::Storage(format!("smoke run {id} is corrupt: {e}")))
            }
        }
    }

    // --- operator action log --------------------------------------------------------

    pub async fn log_action(&self, a: &NewAction<'_>, at_ms: i64) -> Result<i64> {
        for (what, v) in [
            ("actor", a.actor),
            ("action", a.action),
            ("target", a.target),
        ] {
            if v.trim().is_empty() {
                return Err(Error::invalid(format!(
                    "an action log entry needs a {what}"
                )));
            }
        }
        let row = sqlx::query(
            "INSERT INTO action_log (at, actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(at_ms)
        .bind(a.actor)
        .bind(a.action)
        .bind(a.target)
        .bind(a.outcome.as_str())
        .bind(a.detail)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Newest first; `before_id` pages back.
    pub async fn actions(&self, limit: u32, before_id: Option<i64>) -> Result<Vec<Action>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, outcome, detail FROM action_log \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let outcome: String = r.try_get("outcome")?;
                let id: i64 = r.try_get("id")?;
                Ok(Action {
                    id,
                    at_ms: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    outcome: Outcome::parse(&outcome).ok_or_else(|| {
                        Error::Storage(format!("action {id} has an unknown outcome {outcome:?}"))
                    })?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    // --- retention --------------------------------------------------------------------

    /// Deletes metric points and smoke runs older than `before_ms` (the action log is kept:
    /// it is the console's audit trail). Returns the rows removed.
    pub async fn prune(&self, before_ms: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let points = sqlx::query("DELETE FROM metric_points WHERE t_ms < $1")
            .bind(before_ms)
            .execute(&mut *tx)
            .await?;
        let runs = sqlx::query("DELETE FROM smoke_runs WHERE started_at < $1")
            .bind(before_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(points.rows_affected() + runs.rows_affected())
    }
}

fn profile_row(r: &sqlx::sqlite::SqliteRow) -> Result<Profile> {
    let id: String = r.try_get("id")?;
    let corrupt = |what: String| Error::Storage(format!("profile {id:?} is corrupt: {what}"));
    let pid = ProfileId::parse(&id).map_err(|e| corrupt(e.to_string()))?;
    let kind: String = r.try_get("kind")?;
    let target = match ProfileKind::parse(&kind).map_err(|e| corrupt(e.to_string()))? {
        ProfileKind::Agent => {
            let url: Option<String> = r.try_get("url")?;
            let url = url.ok_or_else(|| corrupt("an agent profile without a URL".into()))?;
            Target::Agent {
                url: BaseUrl::parse(&url).map_err(|e| corrupt(e.to_string()))?,
            }
        }
        ProfileKind::Kubernetes => {
            let context: Option<String> = r.try_get("context")?;
            let namespace: Option<String> = r.try_get("namespace")?;
            Target::Kubernetes {
                context: context
                    .ok_or_else(|| corrupt("a Kubernetes profile without a context".into()))?,
                namespace: namespace
                    .ok_or_else(|| corrupt("a Kubernetes profile without a namespace".into()))?,
            }
        }
    };
    let name: String = r.try_get("name")?;
    Profile::new(pid, &name, target).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::{CheckResult, CheckStatus};

    fn agent(id: &str, name: &str, url: &str) -> Profile {
        Profile::new(
            ProfileId::parse(id).unwrap(),
            name,
            Target::Agent {
                url: BaseUrl::parse(url).unwrap(),
            },
        )
        .unwrap()
    }

    /// The pool's only connection going away (as when a task is aborted mid-query) must not
    /// take the in-memory database with it.
    #[tokio::test]
    async fn an_in_memory_store_outlives_its_pooled_connection() {
        let s = Store::in_memory().await.unwrap();
        s.save_profile(&agent("prod", "Production", "https://agent.example.com"), 1)
            .await
            .unwrap();
        let conn = s.pool.acquire().await.unwrap().detach();
        sqlx::Connection::close(conn).await.unwrap();
        let names: Vec<String> = s
            .profiles()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["Production"]);
    }

    #[tokio::test]
    async fn profiles_round_trip_without_secrets() {
        let s = Store::in_memory().await.unwrap();
        let prod = agent("prod", "Production", "https://agent.example.com");
        let k8s = Profile::new(
            ProfileId::parse("eu").unwrap(),
            "EU cluster",
            Target::Kubernetes {
                context: "eu-admin@eu".into(),
                namespace: "agents".into(),
            },
        )
        .unwrap();
        s.save_profile(&prod, 1).await.unwrap();
        s.save_profile(&k8s, 2).await.unwrap();
        assert_eq!(s.profiles().await.unwrap(), vec![k8s.clone(), prod.clone()]);
        let renamed = agent("prod", "Prod (EU)", "https://agent2.example.com");
        s.save_profile(&renamed, 3).await.unwrap();
        assert_eq!(s.profile(&prod.id).await.unwrap(), Some(renamed));
        let dup = agent("other", "EU cluster", "http://x");
        assert_eq!(
            s.save_profile(&dup, 4).await.unwrap_err().code().as_str(),
            "invalid"
        );
        assert!(s.delete_profile(&prod.id).await.unwrap());
        assert!(!s.delete_profile(&prod.id).await.unwrap());
        assert_eq!(s.profile(&prod.id).await.unwrap(), None);
        // The schema has no column a secret could go into.
        let cols: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info('profiles')")
            .fetch_all(&s.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        assert_eq!(
            cols,
            [
                "id",
                "name",
                "kind",
                "url",
                "context",
                "namespace",
                "created_at",
                "updated_at",
                "agent_profile"
            ]
        );
    }

    #[test]
    fn profile_input_is_checked() {
        let id = || ProfileId::parse("x").unwrap();
        let k = |ns: &str| Target::Kubernetes {
            context: "ctx".into(),
            namespace: ns.into(),
        };
        assert!(Profile::new(id(), "  ", k("default")).is_err());
        assert!(Profile::new(id(), "ok", k("Bad_NS")).is_err());
        assert!(Profile::new(id(), "ok", k("-x")).is_err());
        assert!(
            Profile::new(
                id(),
                "ok",
                Target::Kubernetes {
                    context: " ".into(),
                    namespace: "a".into()
                }
            )
            .is_err()
        );
        assert_eq!(Profile::new(id(), " ok ", k("team-a")).unwrap().name, "ok");
    }

    #[tokio::test]
    async fn corrupt_rows_are_errors_that_name_the_row() {
        let s = Store::in_memory().await.unwrap();
        // (id, kind, url, context, namespace, expected message)
        type Row<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
        );
        let rows: [Row; 4] = [
            (
                "bad",
                "agent",
                Some("not a url"),
                None,
                None,
                "profile \"bad\" is corrupt",
            ),
            ("nourl", "agent", None, None, None, "without a URL"),
            (
                "BAD ID",
                "agent",
                Some("http://x"),
                None,
                None,
                "profile \"BAD ID\" is corrupt",
            ),
            (
                "k",
                "kubernetes",
                None,
                Some("c"),
                None,
                "without a namespace",
            ),
        ];
        for (id, kind, url, ctx, ns, want) in rows {
            sqlx::query("DELETE FROM profiles")
                .execute(&s.pool)
                .await
                .unwrap();
            sqlx::query("INSERT INTO profiles VALUES ($1, $1, $2, $3, $4, $5, 0, 0, NULL)")
                .bind(id)
                .bind(kind)
                .bind(url)
                .bind(ctx)
                .bind(ns)
                .execute(&s.pool)
                .await
                .unwrap();
            let err = s.profiles().await.unwrap_err();
            assert_eq!(err.code().as_str(), "storage");
            assert!(err.to_string().contains(want), "{err}");
        }
        sqlx::query("INSERT INTO smoke_runs VALUES ('s1', 0, 0, 'u', 'm', 0, 0, 0, '{not json')")
            .execute(&s.pool)
            .await
            .unwrap();
        let err = s.smoke_report("s1").await.unwrap_err();
        assert!(err.to_string().contains("smoke run s1 is corrupt"), "{err}");
        sqlx::query("INSERT INTO metric_points VALUES ('a', 'stable', 'sparkles', 1, 1.0)")
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(
            s.series_keys().await.unwrap_err().code().as_str(),
            "storage"
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_an_error() {
        let dir = std::env::temp_dir().join(format!("fd-store-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("console.db");
        std::fs::write(&path, b"this is not an SQLite database, just some bytes ....................................................................").unwrap();
        let err = Store::open(&path).await.unwrap_err();
        assert_eq!(err.code().as_str(), "storage", "{err}");
        let fresh = Store::open(&dir.join("sub/fresh.db")).await.unwrap();
        fresh
            .log_action(
                &NewAction {
                    actor: "a",
                    action: "b",
                    target: "c",
                    outcome: Outcome::Ok,
                    detail: "",
                },
                1,
            )
            .await
            .unwrap();
        fresh.close().await;
        let reopened = Store::open(&dir.join("sub/fresh.db")).await.unwrap();
        assert_eq!(
            reopened.actions(10, None).await.unwrap().len(),
            1,
            "persisted"
        );
        reopened.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn metric_history_smoke_runs_actions_and_retention() {
        let s = Store::in_memory().await.unwrap();
        let key = SeriesKey {
            service: "agent".into(),
            track: "canary".into(),
            metric: Metric::LatencyP99,
        };
        let pts: Vec<Point> = (0..10)
            .map(|i| Point {
                t_ms: i * 1000,
                v: i as f64,
            })
            .collect();
        s.append_points(&key, &pts).await.unwrap();
        s.append_points(
            &key,
            &[
                Point {
                    t_ms: 3000,
                    v: 33.0,
                },
                Point {
                    t_ms: 11_000,
                    v: f64::NAN,
                },
            ],
        )
        .await
        .unwrap();
        let got = s.points(&key, 2000, 5000).await.unwrap();
        assert_eq!(
            got,
            vec![
                Point { t_ms: 2000, v: 2.0 },
                Point {
                    t_ms: 3000,
                    v: 33.0
                },
                Point { t_ms: 4000, v: 4.0 }
            ]
        );
        assert_eq!(s.series_keys().await.unwrap(), vec![key.clone()]);

        let report = |id: &str, at: i64, status: CheckStatus| SmokeReport {
            target: Default::default(),
            id: id.into(),
            ollama_url: "http://127.0.0.1:11434".into(),
            agent_url: None,
            model: "llama3.2:latest".into(),
            started_at_ms: at,
            finished_at_ms: at + 10,
            checks: vec![CheckResult {
                name: "reachability".into(),
                title: "Ollama reachable".into(),
                status,
                reason: "r".into(),
                measurements: vec![],
                duration_ms: 1.0,
            }],
        };
        s.save_smoke_report(&report("a", 1000, CheckStatus::Pass))
            .await
            .unwrap();
        s.save_smoke_report(&report("b", 9000, CheckStatus::Fail))
            .await
            .unwrap();
        let runs = s.smoke_runs(10).await.unwrap();
        assert_eq!(
            runs.iter()
                .map(|r| (r.id.as_str(), r.passed, r.failed))
                .collect::<Vec<_>>(),
            [("b", 0, 1), ("a", 1, 0)]
        );
        assert_eq!(
            s.smoke_report("a").await.unwrap(),
            Some(report("a", 1000, CheckStatus::Pass))
        );
        assert_eq!(s.smoke_report("zzz").await.unwrap(), None);

        for (i, outcome) in [Outcome::Ok, Outcome::Failed, Outcome::Cancelled]
            .into_iter()
            .enumerate()
        {
            let id = s
                .log_action(
                    &NewAction {
                        actor: "prod (approver)",
                        action: "approve",
                        target: &format!("approval/apr_{i}"),
                        outcome,
                        detail: "looks right",
                    },
                    100 + i as i64,
                )
                .await
                .unwrap();
            assert_eq!(id, i as i64 + 1);
        }
        let newest = s.actions(2, None).await.unwrap();
        assert_eq!(
            newest.iter().map(|a| (a.id, a.outcome)).collect::<Vec<_>>(),
            [(3, Outcome::Cancelled), (2, Outcome::Failed)]
        );
        let older = s.actions(2, Some(2)).await.unwrap();
        assert_eq!(
            older.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
            ["approval/apr_0"]
        );
        let missing = NewAction {
            actor: " ",
            action: "x",
            target: "y",
            outcome: Outcome::Ok,
            detail: "",
        };
        assert_eq!(
            s.log_action(&missing, 1).await.unwrap_err().code().as_str(),
            "invalid"
        );

        // Thinning: 0..4 s in 2 s buckets → 0: mean(0, 1), 2000: mean(2, 33); 4 s on untouched.
        assert_eq!(s.downsample_history(4000, 2000).await.unwrap(), 2);
        let thinned = s.points(&key, 0, 6000).await.unwrap();
        assert_eq!(
            thinned,
            vec![
                Point { t_ms: 0, v: 0.5 },
                Point {
                    t_ms: 2000,
                    v: 17.5
                },
                Point { t_ms: 4000, v: 4.0 },
                Point { t_ms: 5000, v: 5.0 },
            ]
        );
        assert_eq!(
            s.downsample_history(4000, 10)
                .await
                .unwrap_err()
                .code()
                .as_str(),
            "invalid"
        );

        // Points before 5 s (3 after thinning) and run "a" go; the log stays.
        assert_eq!(s.prune(5000).await.unwrap(), 4);
        assert_eq!(s.points(&key, 0, i64::MAX).await.unwrap().len(), 5);
        assert_eq!(s.smoke_runs(10).await.unwrap().len(), 1);
        assert_eq!(s.actions(10, None).await.unwrap().len(), 3);
    }
}
