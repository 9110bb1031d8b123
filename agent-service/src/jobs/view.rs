//! The job as clients see it: the body of `GET /v1/jobs/{id}` and of every callback.
//! Shared by the HTTP layer and the callback sender, so both send the same JSON; the
//! OpenAPI schema is derived here, next to the fields.

use serde::Serialize;
use serde_json::Value;

use crate::db::jobs::{Job, JobStatus};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatusOut {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Dead-lettered: every attempt failed.
    Dead,
    Cancelled,
}

impl From<JobStatus> for JobStatusOut {
    fn from(s: JobStatus) -> Self {
        match s {
            JobStatus::Queued => Self::Queued,
            JobStatus::Running => Self::Running,
            JobStatus::Succeeded => Self::Succeeded,
            JobStatus::Failed => Self::Failed,
            JobStatus::Dead => Self::Dead,
            JobStatus::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobInputOut {
    /// The input as stored: redacted like every stored payload.
    pub text: String,
}

/// Who holds a running job, until when.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeaseOut {
    pub owner: String,
    pub expires_at: String,
    pub heartbeat_at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobErrorOut {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackOut {
    pub url: String,
    /// `pending`, `delivered` or `failed`; null until the job finishes.
    pub state: Option<String>,
    pub attempts: i64,
    /// The HTTP status of the last delivery attempt.
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// When it was delivered or given up on.
    pub completed_at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobOut {
    pub id: String,
    pub tenant: String,
    pub status: JobStatusOut,
    pub workflow: String,
    pub input: JobInputOut,
    pub user_id: Option<String>,
    /// Attempts started so far (a released attempt at shutdown is not counted).
    pub attempts: i64,
    pub max_attempts: i64,
    /// Set while `running`.
    pub lease: Option<LeaseOut>,
    pub cancel_requested: bool,
    /// The invoke-shaped reply of the run, once `succeeded`.
    #[schema(value_type = Option<crate::engine::InvokeResponse>)]
    pub result: Option<Value>,
    /// Why the job `failed` or is `dead`; while `queued` again, why the last attempt failed.
    pub error: Option<JobErrorOut>,
    pub callback: Option<CallbackOut>,
    /// The request that created the job; its log lines carry it.
    pub request_id: String,
    pub created_at: String,
    /// When the job is next due, while `queued`.
    pub run_after: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub updated_at: String,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<Job> for JobOut {
    fn from(j: Job) -> Self {
        Self {
            id: j.id.into_string(),
            tenant: j.tenant,
            status: j.status.into(),
            workflow: j.workflow,
            input: JobInputOut { text: j.input_text },
            user_id: j.user_id,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            lease: j.lease.map(|l| LeaseOut {
                owner: l.owner,
                expires_at: rfc3339(l.expires_at),
                heartbeat_at: l.heartbeat_at.map(rfc3339),
            }),
            cancel_requested: j.cancel_requested,
            result: j.result,
            error: j.error.map(|e| JobErrorOut {
                code: e.code,
                message: e.message,
            }),
            callback: j.callback.map(|c| CallbackOut {
                url: c.url,
                state: c.state,
                attempts: c.attempts,
                last_status_code: c.status_code,
                last_error: c.error,
                completed_at: c.at.map(rfc3339),
            }),
            request_id: j.request_id,
            created_at: rfc3339(j.created_at),
            run_after: rfc3339(j.run_after),
            started_at: j.started_at.map(rfc3339),
            finished_at: j.finished_at.map(rfc3339),
            updated_at: rfc3339(j.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
