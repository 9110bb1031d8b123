//! Schemas of the OpenAPI document that the derive cannot spell: strings with the exact
//! rules the handlers apply (not blank by Rust's `trim`, printable by Rust's
//! `char::is_control`, header-safe), and the closed sets of values a parameter takes. Each
//! mirrors a check in a handler; the fuzz run (`scripts/fuzz-api.sh`) holds them together.

use utoipa::openapi::{Object, ObjectBuilder, Type};

/// The most a reason (of a decision, freeze or cancel) may hold, in characters; the
/// handlers check it, the schema states it.
pub const MAX_REASON_CHARS: usize = 2000;

/// A character that is not white space as Rust's `char::is_whitespace` (and so `trim`)
/// sees it: a string matching this somewhere is not blank.
const NOT_WHITE_SPACE: &str = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// Characters Rust's `char::is_control` refuses (Unicode category Cc).
const PRINTABLE_ONLY: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// `schema`, or `null` (an optional field sent as null is as if absent).
fn or_null(mut schema: Object) -> Object {
    schema.schema_type = utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]);
    schema
}

/// Text that must not be blank: at least one character that is not white space.
pub fn not_blank(max_chars: Option<usize>, description: &str) -> Object {
    string()
        .min_length(Some(1))
        .max_length(max_chars)
        .pattern(Some(NOT_WHITE_SPACE))
        .description(Some(description))
        .build()
}

/// 1 to `max_chars` characters, none of them a control character.
pub fn printable(max_chars: usize, description: &str) -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(max_chars))
        .pattern(Some(PRINTABLE_ONLY))
        .description(Some(description))
        .build()
}

/// One of `values`.
pub fn one_of(values: &[&str], description: &str) -> Object {
    string()
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

/// The `reason` of a decision, freeze or cancel: kept in the audit log.
pub fn reason() -> Object {
    not_blank(
        Some(MAX_REASON_CHARS),
        "Why: 1-2000 characters, not blank; kept in the audit log (redacted).",
    )
}

/// The optional `reason` of an unfreeze.
pub fn optional_reason() -> Object {
    or_null(reason())
}

/// A `track` or `version` filter of an approval cancel.
pub fn release_filter() -> Object {
    or_null(printable(128, "1-128 printable characters."))
}

/// `user_id` of an invoke or a job.
pub fn user_id() -> Object {
    or_null(printable(
        128,
        "The end user on whose behalf the agent acts (recorded on approvals): 1-128 printable characters.",
    ))
}

/// A job's `callback_url`: an absolute http(s) URL the egress guard lets through.
pub fn callback_url() -> Object {
    let mut schema = string()
        .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".into())))
        .max_length(Some(2048))
        .description(Some(
            "Where to POST the job JSON when the job finishes (needs JOB_CALLBACK_SECRET; the \
             host must be allowed by EGRESS_ALLOWLIST).",
        ))
        .build();
    schema = or_null(schema);
    schema
}

/// The text of an invoke or a job.
pub fn input_text() -> Object {
    not_blank(
        None,
        "What the workflow is asked; not blank. Longer than the guardrail policy allows is \
         answered as `blocked`.",
    )
}

/// The name of a shipped eval suite.
pub fn eval_suite() -> Object {
    let names: Vec<String> = crate::evals::suite::builtin()
        .map(|suites| suites.into_iter().map(|s| s.name).collect())
        .unwrap_or_default();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    one_of(&names, "A suite name from `GET /v1/evals/suites`.")
}

/// An approval's status.
pub fn approval_status() -> Object {
    one_of(
        &crate::db::approvals::STATUSES,
        "Only requests in this status.",
    )
}

/// A job's status.
pub fn job_status() -> Object {
    let names: Vec<&str> = crate::db::jobs::JobStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    one_of(&names, "Only jobs in this status.")
}

/// A trace's status.
pub fn trace_status() -> Object {
    one_of(
        &crate::traces::STATUSES,
        "Only traces that ended in this status.",
    )
}

/// Which audit chain: the caller's tenant's, or the system's (role admin).
pub fn audit_chain() -> Object {
    one_of(
        &["tenant", "system"],
        "`tenant` (default) or `system` (role admin).",
    )
}

/// The page size of most lists: 1-200, default 50.
pub fn page_size() -> Object {
    page(200, 50)
}

/// The page size of the job list: 1-100, default 50.
pub fn job_page_size() -> Object {
    page(100, 50)
}

fn page(max: u32, default: u32) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int32,
        )))
        .minimum(Some(1))
        .maximum(Some(max))
        .description(Some(format!("Page size, 1-{max} (default {default}).")))
        .build()
}
