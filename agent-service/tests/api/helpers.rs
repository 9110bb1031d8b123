//! The API tests' helpers. The process itself — a fresh SQLite file or PostgreSQL database
//! (on the server named by `TEST_POSTGRES_URL`), `seed-demo`, `serve` on a free port, logs,
//! SIGTERM/SIGKILL, restart and replicas — is the shared test kit's spawn helper
//! ([`testkit::agent`]), the same one the console core's tests use; here it keeps the name
//! these tests know it by. What is only the API tests' lives here: `both!` and the error
//! envelope assertion.

use reqwest::StatusCode;
use serde_json::Value;

pub use testkit::agent::{
    AgentService as TestApp, Backend, TestDb, agent_service_bin, run_cli, seed, temp_dir,
};

/// Runs a test body once per back-end: `both!(name, body_fn)` makes `name::sqlite` and
/// `name::postgres`. scripts/check.sh leaves out the tests whose name ends in `::postgres`
/// when `TEST_POSTGRES_URL` is not set (and says how many); keep that suffix.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

/// Asserts the error envelope: status, code, and a request id matching the header.
pub fn assert_error(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    want_status: u16,
    want_code: &str,
) {
    assert_eq!(status.as_u16(), want_status, "body: {body}");
    assert_eq!(body["error"]["code"], want_code, "body: {body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.len() > 10, "error message should be a sentence: {body}");
    let rid = body["error"]["request_id"].as_str().unwrap_or_default();
    assert!(!rid.is_empty(), "error carries a request_id: {body}");
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some(rid),
        "header and body request ids match"
    );
}

/// A test's PostgreSQL database is dropped when its `TestDb` is (the kit drops it; before,
/// every run left one database per test on the server). PostgreSQL only: the SQLite file
/// goes with its temporary directory.
mod test_database_is_dropped_when_done {
    use super::{Backend, TestDb};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let admin = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL");
        let exists = |name: String| {
            let admin = admin.clone();
            async move {
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&admin).await.expect("connect");
                let n: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM pg_database WHERE datname = '{name}'"
                ))
                .fetch_one(&pool)
                .await
                .expect("count");
                pool.close().await;
                n == 1
            }
        };
        let db = TestDb::new(Backend::Postgres).await;
        let name = db
            .url
            .rsplit('/')
            .next()
            .expect("a database name")
            .to_string();
        assert!(exists(name.clone()).await, "{name} was created");
        // A shared handle owns nothing: dropping it keeps the database.
        drop(db.shared());
        assert!(
            exists(name.clone()).await,
            "{name} outlives a shared handle"
        );
        drop(db);
        assert!(
            !exists(name.clone()).await,
            "{name} is dropped with its TestDb"
        );
    }
}
