//! The core's one error type and its closed set of codes: what the command layer maps to
//! `{code, message}` for the UI. Nobody matches on messages.

use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The closed set of machine-readable codes the UI sees.
///
/// The first ten come from talking to a service (the agent-service envelope, Ollama, the
/// network); the last three from the console's own machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited { retry_after_secs: Option<u64> },
    Unavailable { retry_after_secs: Option<u64> },
    Invalid,
    Network,
    Timeout,
    Protocol,
    Storage,
    Keyring,
    Process,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Invalid => "invalid",
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
            Self::Storage => "storage",
            Self::Keyring => "keyring",
            Self::Process => "process",
        }
    }

    /// How long the server asked us to wait, for `rate_limited` and `unavailable`.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after_secs } | Self::Unavailable { retry_after_secs } => {
                retry_after_secs.map(Duration::from_secs)
            }
            _ => None,
        }
    }

    /// Whether trying the same thing again later can succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Unavailable { .. } | Self::Network | Self::Timeout
        )
    }
}

/// An error answer of a service: its status and envelope, summarised when there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub status: u16,
    /// The service's own code (`writes_frozen`, `unknown_workflow`, …) or `http_<status>`.
    pub server_code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub endpoint: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answered {} {}: {}",
            self.endpoint, self.status, self.server_code, self.message
        )?;
        if let Some(r) = &self.request_id {
            write!(f, " (request {r})")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    #[error("could not reach {endpoint}: {message}")]
    Network { endpoint: String, message: String },
    #[error("{endpoint} did not answer within {} ms", after.as_millis())]
    Timeout { endpoint: String, after: Duration },
    /// The peer answered something we cannot understand.
    #[error("{endpoint} sent an unexpected answer: {message}")]
    Protocol { endpoint: String, message: String },
    /// Metrics text that is not valid Prometheus/OpenMetrics exposition.
    #[error("metrics text line {line}: {message}")]
    MetricsParse { line: usize, message: String },
    /// Input from the caller (a profile, a URL, a name) that is not acceptable.
    #[error("{0}")]
    Invalid(String),
    #[error("local store: {0}")]
    Storage(String),
    #[error("keyring: {0}")]
    Keyring(String),
    #[error("{0}")]
    Process(String),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Api(a) => a.code,
            Self::Network { .. } => ErrorCode::Network,
            Self::Timeout { .. } => ErrorCode::Timeout,
            Self::Protocol { .. } | Self::MetricsParse { .. } => ErrorCode::Protocol,
            Self::Invalid(_) => ErrorCode::Invalid,
            Self::Storage(_) => ErrorCode::Storage,
            Self::Keyring(_) => ErrorCode::Keyring,
            Self::Process(_) => ErrorCode::Process,
        }
    }

    /// The service's answer, when this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(a) => Some(a),
            _ => None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn protocol(endpoint: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Protocol {
            endpoint: endpoint.into(),
            message: message.into(),
        }
    }

    /// Maps a reqwest failure (never an HTTP status: those are read as bodies).
    pub(crate) fn from_reqwest(endpoint: &str, e: reqwest::Error, timeout: Duration) -> Self {
        if e.is_timeout() {
            Self::Timeout {
                endpoint: endpoint.to_string(),
                after: timeout,
            }
        } else if e.is_decode() {
            Self::protocol(endpoint, error_chain(&e.without_url()))
        } else {
            Self::Network {
                endpoint: endpoint.to_string(),
                message: error_chain(&e.without_url()),
            }
        }
    }
}

/// `e: cause: cause…` — reqwest's Display alone hides the useful part ("connection refused").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(error_chain(&e))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Storage(format!("migrating the console database failed: {e}"))
    }
}

/// The code a service's HTTP status and its own error code map to.
pub(crate) fn code_for(status: u16, server_code: &str, retry_after_secs: Option<u64>) -> ErrorCode {
    match (status, server_code) {
        (401, _) | (_, "unauthorized") => ErrorCode::Unauthorized,
        (403, _) | (_, "forbidden") => ErrorCode::Forbidden,
        (404, _) | (405, _) | (_, "not_found") => ErrorCode::NotFound,
        (409, _) | (_, "conflict") | (_, "writes_frozen") => ErrorCode::Conflict,
        (429, _) | (_, "rate_limited") => ErrorCode::RateLimited { retry_after_secs },
        (408, _) | (504, _) => ErrorCode::Timeout,
        (500..=599, _) => ErrorCode::Unavailable { retry_after_secs },
        (400..=499, _) => ErrorCode::Invalid,
        _ => ErrorCode::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_server_code_map_to_closed_codes() {
        let cases: &[(u16, &str, Option<u64>, ErrorCode)] = &[
            (401, "unauthorized", None, ErrorCode::Unauthorized),
            (403, "forbidden", None, ErrorCode::Forbidden),
            (404, "unknown_workflow", None, ErrorCode::NotFound),
            (405, "method_not_allowed", None, ErrorCode::NotFound),
            (409, "writes_frozen", None, ErrorCode::Conflict),
            (409, "idempotency_in_progress", None, ErrorCode::Conflict),
            (422, "idempotency_key_reused", None, ErrorCode::Invalid),
            (413, "payload_too_large", None, ErrorCode::Invalid),
            (400, "malformed_json", None, ErrorCode::Invalid),
            (
                429,
                "rate_limited",
                Some(3),
                ErrorCode::RateLimited {
                    retry_after_secs: Some(3),
                },
            ),
            (
                429,
                "tenant_budget_exceeded",
                None,
                ErrorCode::RateLimited {
                    retry_after_secs: None,
                },
            ),
            (
                503,
                "overloaded",
                Some(1),
                ErrorCode::Unavailable {
                    retry_after_secs: Some(1),
                },
            ),
            (
                500,
                "internal",
                None,
                ErrorCode::Unavailable {
                    retry_after_secs: None,
                },
            ),
            (504, "http_504", None, ErrorCode::Timeout),
            (302, "http_302", None, ErrorCode::Protocol),
        ];
        for (status, server, retry, want) in cases {
            assert_eq!(
                code_for(*status, server, *retry),
                *want,
                "{status} {server}"
            );
        }
    }

    #[test]
    fn codes_serialize_with_their_retry_hint() {
        let code = ErrorCode::RateLimited {
            retry_after_secs: Some(7),
        };
        assert_eq!(
            serde_json::to_value(code).unwrap(),
            serde_json::json!({"code": "rate_limited", "retry_after_secs": 7})
        );
        assert_eq!(code.retry_after(), Some(Duration::from_secs(7)));
        assert!(code.is_transient());
        assert!(!ErrorCode::Forbidden.is_transient());
        assert_eq!(ErrorCode::Keyring.as_str(), "keyring");
    }
}
