//! The service's error type: a closed [`ErrorCode`] that clients match on (serialized in
//! snake_case, never matched by message), a sentence for people, an optional Retry-After,
//! and the cause behind it, kept for the log and never shown to a client. `routes::error`
//! turns it into the JSON envelope and logs every 5xx there, once, with its causes.

use std::fmt;

use http::StatusCode;
use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an error was caused by.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The closed set of machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    MalformedJson,
    UnsupportedMediaType,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    UnknownWorkflow,
    Conflict,
    IdempotencyKeyReused,
    IdempotencyInProgress,
    PayloadTooLarge,
    RateLimited,
    Overloaded,
    ShuttingDown,
    ProviderUnavailable,
    ProviderTimeout,
    ProviderError,
    TenantBudgetExceeded,
    WritesFrozen,
    DependencyUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::MalformedJson => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnknownWorkflow => "unknown_workflow",
            Self::Conflict => "conflict",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyInProgress => "idempotency_in_progress",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::ShuttingDown => "shutting_down",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::ProviderTimeout => "provider_timeout",
            Self::ProviderError => "provider_error",
            Self::TenantBudgetExceeded => "tenant_budget_exceeded",
            Self::WritesFrozen => "writes_frozen",
            Self::DependencyUnavailable => "dependency_unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status an error with this code is answered with (part of the API contract).
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidInput | Self::MalformedJson => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound | Self::UnknownWorkflow => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict | Self::IdempotencyInProgress | Self::WritesFrozen => {
                StatusCode::CONFLICT
            }
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited | Self::TenantBudgetExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded
            | Self::ShuttingDown
            | Self::ProviderUnavailable
            | Self::ProviderTimeout
            | Self::ProviderError
            | Self::DependencyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API-facing error: a code, a human sentence, an optional Retry-After, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    #[source]
    source: Option<Cause>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
            source: None,
        }
    }
    /// Keeps `cause` as what this error comes from (for the log; clients see the message).
    pub fn with_source(mut self, cause: impl Into<Cause>) -> Self {
        self.source = Some(cause.into());
        self
    }
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} was not found"))
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
    /// An internal error that says what `cause` says, and keeps it.
    pub fn internal_from(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::internal(cause.to_string()).with_source(cause)
    }
    /// The message and every cause behind it, for a log line: `message: cause: its cause`.
    pub fn report(&self) -> Report<'_> {
        Report(self)
    }
}

/// [`Error::report`]: the message followed by the chain of causes (a cause that only
/// repeats the text before it is left out).
pub struct Report<'a>(&'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)?;
        let mut last = self.0.message.clone();
        let mut cause = std::error::Error::source(self.0);
        while let Some(c) = cause {
            let text = c.to_string();
            if text != last {
                write!(f, ": {text}")?;
            }
            last = text;
            cause = c.source();
        }
        Ok(())
    }
}

impl From<sqlx::Error> for Error {
    /// The client is told to retry; the database's own error stays the cause.
    fn from(e: sqlx::Error) -> Self {
        Self::new(
            ErrorCode::DependencyUnavailable,
            "the database did not answer; try again",
        )
        .retry_after(1)
        .with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_and_reported_once() {
        let e: Error = sqlx::Error::PoolTimedOut.into();
        assert_eq!(e.code, ErrorCode::DependencyUnavailable);
        assert_eq!(e.message, "the database did not answer; try again");
        assert_eq!(e.retry_after_secs, Some(1));
        assert!(std::error::Error::source(&e).is_some());
        let report = e.report().to_string();
        assert!(
            report.starts_with("the database did not answer; try again: ")
                && report.contains(&sqlx::Error::PoolTimedOut.to_string()),
            "{report}"
        );

        let parse = serde_json::from_str::<u8>("x").expect_err("not a number");
        let e = Error::internal_from(parse);
        assert_eq!(e.code, ErrorCode::Internal);
        assert_eq!(
            e.report().to_string(),
            e.message,
            "a cause that repeats the message is not repeated"
        );
        let plain = Error::invalid("no");
        assert!(std::error::Error::source(&plain).is_none());
        assert_eq!(plain.report().to_string(), "no");
    }
}
