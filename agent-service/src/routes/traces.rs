//! `GET /v1/traces` (filtered, newest first, cursor-paged summaries) and
//! `GET /v1/traces/{id}` (one trace with its span tree) for the caller's tenant.

use super::Path;
use axum::Json;
use axum::extract::{RawQuery, State};
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use crate::domain::Principal;
use crate::domain::{Role, TraceId};
use crate::error::{Error, Result};
use crate::traces::STATUSES;
use crate::traces::repository::{self, StoredSpan, TraceFilter, TraceSummary};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;
const CURSOR_VERSION: &str = "t1";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TraceSummaryOut {
    pub trace_id: String,
    pub request_id: String,
    pub workflow: String,
    /// `success`, `approval_required`, `blocked`, `budget_exceeded`, `degraded`, `error`
    /// (the run ended with an error envelope) or `cancelled` (the caller went away).
    pub status: String,
    /// The error code when `status` is `error` or `cancelled`.
    pub error_code: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    pub duration_ms: f64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Prompt plus completion tokens.
    pub tokens: i64,
    pub cost_usd: f64,
    /// The model that answered (the configured one if no model call was made).
    pub model: String,
    /// `ollama`, `openai` or `scripted` (the deterministic offline model).
    pub provider: String,
    pub span_count: i64,
    /// A guardrail flagged the run: its input scored in a flag band (`flag` or
    /// `require_approval`), or a tool result was flagged or withheld. The run went on; the
    /// decisions, scores and reasons are on the trace's spans (`flightdeck.guardrail.*`).
    pub flagged: bool,
    /// The guardrail rule that blocked the run (`status` `blocked`), else the rule of the
    /// run's first flag; `null` when no guardrail fired.
    pub guardrail_rule: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TraceList {
    pub items: Vec<TraceSummaryOut>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpanOut {
    pub span_id: String,
    /// `null` for the root `request` span.
    pub parent_span_id: Option<String>,
    /// `request`, `guardrail.input`, `guardrail.output`, `chat {model}`,
    /// `execute_tool {tool}` or `approval.create`.
    pub name: String,
    /// `server`, `client` or `internal`.
    pub kind: String,
    /// `ok` or `error`.
    pub status: String,
    /// Milliseconds from the start of the trace.
    pub start_ms: f64,
    pub duration_ms: f64,
    /// OpenTelemetry attributes (`gen_ai.*` on model and tool calls, `flightdeck.*`).
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// Inputs and outputs of the step, redacted and truncated.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TraceDetail {
    #[serde(flatten)]
    pub summary: TraceSummaryOut,
    /// Every span in recording order; the tree is given by `parent_span_id`.
    pub spans: Vec<SpanOut>,
}

fn millis(us: i64) -> f64 {
    us as f64 / 1000.0
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<TraceSummary> for TraceSummaryOut {
    fn from(t: TraceSummary) -> Self {
        Self {
            trace_id: t.trace_id,
            request_id: t.request_id,
            workflow: t.workflow,
            status: t.status,
            error_code: t.error_code,
            started_at: rfc3339(t.started_at_ms),
            duration_ms: millis(t.duration_us),
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            tokens: t.prompt_tokens + t.completion_tokens,
            cost_usd: t.cost_usd,
            model: t.model,
            provider: t.provider,
            span_count: t.span_count,
            flagged: t.flagged,
            guardrail_rule: t.guardrail_rule,
        }
    }
}

impl From<StoredSpan> for SpanOut {
    fn from(s: StoredSpan) -> Self {
        Self {
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            name: s.name,
            kind: s.kind,
            status: s.status,
            start_ms: millis(s.start_us),
            duration_ms: millis(s.duration_us),
            attributes: s.attributes,
            payload: s.payload,
        }
    }
}

fn require_reader(principal: &Principal) -> Result<()> {
    if principal.roles.allows(Role::Viewer) || principal.roles.allows(Role::Operator) {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "reading traces needs the viewer, operator or admin role; this key's roles are: {}",
            principal.roles.to_csv()
        )))
    }
}

fn encode_cursor(started_at_ms: i64, trace_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{CURSOR_VERSION}:{started_at_ms}:{trace_id}"))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, ':');
    if parts.next()? != CURSOR_VERSION {
        return None;
    }
    let at: i64 = parts.next()?.parse().ok()?;
    let id = parts.next()?;
    (is_token(id, 128, b"_-")).then(|| (at, id.to_string()))
}

/// A boolean query parameter: `true`/`1` or `false`/`0`.
fn boolean(name: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::invalid(format!(
            "{name} {v:?} is not a boolean; use true or false"
        ))),
    }
}

/// 1..=`max` ASCII letters, digits, or one of `extra`.
fn is_token(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

const PARAMS: &str =
    "status, workflow, min_latency_ms, since, request_id, errors_only, flagged, cursor, limit";

/// Parses the list's query string; every bad value is a 400 that names its parameter.
pub fn parse_filter(raw: Option<&str>) -> Result<TraceFilter> {
    let mut f = TraceFilter {
        limit: DEFAULT_LIMIT,
        ..TraceFilter::default()
    };
    let mut seen: Vec<String> = Vec::new();
    let mut errors_only = false;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if seen.iter().any(|k| *k == key) {
            return Err(Error::invalid(format!(
                "query parameter {key} is given more than once"
            )));
        }
        seen.push(key.to_string());
        if value.is_empty() {
            continue;
        }
        let v = value.as_ref();
        match key.as_ref() {
            "status" => {
                if !STATUSES.contains(&v) {
                    return Err(Error::invalid(format!(
                        "status {v:?} is not a trace status; use one of {}",
                        STATUSES.join(", ")
                    )));
                }
                f.status = Some(v.to_string());
            }
            "workflow" => {
                if !is_token(v, 64, b"_-") {
                    return Err(Error::invalid(format!(
                        "workflow {v:?} is not a workflow name (1-64 letters, digits, '_' or '-')"
                    )));
                }
                f.workflow = Some(v.to_string());
            }
            "min_latency_ms" => {
                let ms: i64 = v
                    .parse()
                    .ok()
                    .filter(|ms| (0..=i64::MAX / 1000).contains(ms))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "min_latency_ms {v:?} is not a whole number of milliseconds >= 0"
                        ))
                    })?;
                f.min_duration_us = Some(ms * 1000);
            }
            "since" => {
                let t = chrono::DateTime::parse_from_rfc3339(v).map_err(|_| {
                    Error::invalid(format!(
                        "since {v:?} is not an RFC 3339 time such as 2025-01-31T09:30:00Z"
                    ))
                })?;
                f.since_ms = Some(t.timestamp_millis());
            }
            "request_id" => {
                if !is_token(v, 128, b"._:-") {
                    return Err(Error::invalid(format!(
                        "request_id {v:?} is not a request id (1-128 letters, digits, '.', '_', ':' or '-')"
                    )));
                }
                f.request_id = Some(v.to_string());
            }
            "errors_only" => errors_only = boolean("errors_only", v)?,
            "flagged" => f.flagged = Some(boolean("flagged", v)?),
            "cursor" => {
                f.before = Some(decode_cursor(v).ok_or_else(|| {
                    Error::invalid(
                        "cursor is not valid; pass the next_cursor of a previous page unchanged",
                    )
                })?);
            }
            "limit" => {
                f.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "limit {v:?} is not a whole number from 1 to {MAX_LIMIT}"
                        ))
                    })?;
            }
            other => {
                return Err(Error::invalid(format!(
                    "unknown query parameter {other:?}; the trace list takes {PARAMS}"
                )));
            }
        }
    }
    if errors_only {
        match f.status.as_deref() {
            None | Some("error") => f.status = Some("error".into()),
            Some(s) => {
                return Err(Error::invalid(format!(
                    "errors_only=true selects status error; it cannot be combined with status={s}"
                )));
            }
        }
    }
    Ok(f)
}

/// The trace list's query parameters, as documented; `parse_filter` reads them (and says
/// which one is wrong).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TraceListParams {
    /// success, approval_required, blocked, budget_exceeded, degraded, error or cancelled.
    #[param(schema_with = super::schema::trace_status)]
    status: Option<String>,
    /// A workflow name.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    workflow: Option<String>,
    /// Only traces that took at least this long.
    #[param(minimum = 0, maximum = 9223372036854775i64)]
    min_latency_ms: Option<i64>,
    /// Only traces started at or after this RFC 3339 time.
    #[param(format = DateTime)]
    since: Option<String>,
    /// The trace of one request.
    #[param(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    request_id: Option<String>,
    /// Only runs that ended with an error (status error); not with another `status`.
    errors_only: Option<bool>,
    /// Only runs a guardrail flagged (`true`), or only runs it did not (`false`).
    flagged: Option<bool>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1-200, default 50.
    #[param(schema_with = super::schema::page_size)]
    limit: Option<u32>,
}

/// The caller's tenant's traces, newest first.
#[utoipa::path(get, path = "/v1/traces", security(("bearer" = [])),
    params(TraceListParams),
    responses((status = 200, body = TraceList), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 401, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<TraceList>> {
    require_reader(&principal)?;
    let mut filter = parse_filter(raw.as_deref())?;
    let page = filter.limit;
    filter.limit = page + 1;
    let mut rows = repository::list(&state.db, &principal.tenant, &filter).await?;
    let next_cursor = if rows.len() as i64 > page {
        rows.truncate(page as usize);
        rows.last()
            .map(|t| encode_cursor(t.started_at_ms, &t.trace_id))
    } else {
        None
    };
    Ok(Json(TraceList {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One trace of the caller's tenant with its spans.
#[utoipa::path(get, path = "/v1/traces/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "trace id (the trace_id of an invoke reply)")),
    responses((status = 200, body = TraceDetail), (status = 404, body = crate::routes::error::ErrorEnvelope),
        (status = 401, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<TraceDetail>> {
    require_reader(&principal)?;
    let not_found = || Error::not_found(format!("trace {id}"));
    let trace_id = TraceId::parse(&id).map_err(|_| not_found())?;
    let (summary, spans) = repository::get(&state.db, &principal.tenant, &trace_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(TraceDetail {
        summary: summary.into(),
        spans: spans.into_iter().map(Into::into).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(q: &str, param: &str) {
        let e = parse_filter(Some(q)).expect_err(q);
        assert_eq!(e.code, crate::error::ErrorCode::InvalidInput, "{q}");
        assert!(e.message.contains(param), "{q}: {}", e.message);
    }

    #[test]
    fn parses_every_filter() {
        let cursor = encode_cursor(1_700_000_000_000, "tr_abc");
        let f = parse_filter(Some(&format!(
            "status=blocked&workflow=faq&min_latency_ms=250&since=2025-01-31T09:30:00Z\
             &request_id=req-1&flagged=true&cursor={cursor}&limit=10"
        )))
        .expect("valid");
        assert_eq!(f.status.as_deref(), Some("blocked"));
        assert_eq!(f.workflow.as_deref(), Some("faq"));
        assert_eq!(f.min_duration_us, Some(250_000));
        assert_eq!(f.since_ms, Some(1_738_315_800_000));
        assert_eq!(f.request_id.as_deref(), Some("req-1"));
        assert_eq!(f.flagged, Some(true));
        assert_eq!(
            parse_filter(Some("flagged=0")).expect("false").flagged,
            Some(false)
        );
        assert_eq!(f.before, Some((1_700_000_000_000, "tr_abc".into())));
        assert_eq!(f.limit, 10);
        assert_eq!(parse_filter(None).expect("empty").limit, DEFAULT_LIMIT);
        let e = parse_filter(Some("errors_only=true")).expect("errors only");
        assert_eq!(e.status.as_deref(), Some("error"));
        assert_eq!(
            parse_filter(Some("status=&limit=")).expect("blank"),
            parse_filter(None).expect("none")
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        bad("status=weird", "status");
        bad("workflow=no%20spaces", "workflow");
        bad("min_latency_ms=-1", "min_latency_ms");
        bad("min_latency_ms=ten", "min_latency_ms");
        bad("since=yesterday", "since");
        bad("request_id=a%0Ab", "request_id");
        bad("errors_only=maybe", "errors_only");
        bad("flagged=yes", "flagged");
        bad("cursor=not-a-cursor", "cursor");
        bad(
            &format!(
                "cursor={}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("t1:x:tr_1")
            ),
            "cursor",
        );
        bad("limit=0", "limit");
        bad("limit=201", "limit");
        bad("colour=red", "colour");
        bad("limit=5&limit=6", "limit");
        bad("errors_only=true&status=success", "errors_only");
    }
}
