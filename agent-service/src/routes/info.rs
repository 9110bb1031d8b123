//! Service identity: `/v1/info`, the tool and workflow registries, the OpenAPI document
//! and the A2A agent card.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use crate::domain::Principal;
use crate::domain::Role;
use crate::error::Result;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProviderInfo {
    pub kind: String,
    pub model: String,
    /// True for the deterministic offline model: its answers are scripted, not generated.
    pub scripted: bool,
    pub label: String,
}

/// One provider of the service's chain.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProviderLinkInfo {
    /// The link name chains use.
    pub name: String,
    pub kind: String,
    pub model: String,
    /// True for the deterministic offline model.
    pub scripted: bool,
    pub label: String,
    /// Its circuit breaker: `closed`, `open` or `half_open`.
    #[schema(value_type = String)]
    pub circuit: crate::providers::CircuitState,
    /// This link serves the chain now.
    pub serving: bool,
}

/// A workflow's own provider chain.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowChainInfo {
    pub workflow: String,
    /// Link names, in order.
    pub chain: Vec<String>,
    pub serving: Option<String>,
}

/// The provider fallback chains: the service's (every workflow without its own uses it)
/// and the workflows' own.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProviderChainInfo {
    /// The service's chain, in order: a call goes to the first link; the next serves when
    /// a link's circuit is open, it times out or it fails.
    pub links: Vec<ProviderLinkInfo>,
    /// The link serving the service's chain: the last to answer while its circuit is not
    /// open, else the first whose circuit is not open; `null` when every circuit is open.
    pub serving: Option<String>,
    pub workflows: Vec<WorkflowChainInfo>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PromptInfo {
    pub workflow: String,
    pub version: String,
    pub hash: String,
}

/// Where a limit holds: `global` (its state is in the database, so every replica on it
/// enforces one limit together) or `replica` (each process on its own: N replicas allow
/// N times as much).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    Global,
    Replica,
}

/// The per-key rate limit (429 + Retry-After past it).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateLimitInfo {
    pub scope: LimitScope,
    /// `database` (a GCRA row per key) or `process` (in memory), per `RATE_LIMIT_STORE`.
    pub store: &'static str,
    pub requests_per_minute: u32,
}

/// The per-tenant daily budgets: always global. A run reserves the most it may spend
/// (`run_reservation_*`, or what is left of the day) before it starts and settles after.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantBudgetInfo {
    pub scope: LimitScope,
    pub tokens: u64,
    pub cost_usd: f64,
    pub run_reservation_tokens: u64,
    pub run_reservation_cost_usd: f64,
}

/// The cap on requests served at once (503 + Retry-After past it): per replica by design,
/// so one replica's load never refuses another's.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConcurrencyInfo {
    pub scope: LimitScope,
    pub max_concurrent_requests: u32,
}

/// Which limits hold across replicas and which per replica.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LimitsInfo {
    pub rate_limit: RateLimitInfo,
    pub tenant_daily_budget: TenantBudgetInfo,
    pub concurrency: ConcurrencyInfo,
}

fn limits_info(state: &AppState) -> LimitsInfo {
    let global = state.limiter.is_global();
    let budgets = &state.settings.budgets;
    let (run_tokens, run_cost) = state.engine.ledger.reservation_size();
    LimitsInfo {
        rate_limit: RateLimitInfo {
            scope: if global {
                LimitScope::Global
            } else {
                LimitScope::Replica
            },
            store: if global { "database" } else { "process" },
            requests_per_minute: state.limiter.rpm(),
        },
        tenant_daily_budget: TenantBudgetInfo {
            scope: LimitScope::Global,
            tokens: budgets.tenant_daily_token_budget,
            cost_usd: budgets.tenant_daily_cost_budget_usd,
            run_reservation_tokens: run_tokens,
            run_reservation_cost_usd: run_cost,
        },
        concurrency: ConcurrencyInfo {
            scope: LimitScope::Replica,
            max_concurrent_requests: state.settings.limits.max_concurrency,
        },
    }
}

/// A rate over the quality window: `hits` of `samples`; `rate` is null without samples.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateOut {
    pub rate: Option<f64>,
    pub hits: u64,
    pub samples: u64,
}

impl From<crate::quality::Rate> for RateOut {
    fn from(r: crate::quality::Rate) -> Self {
        Self {
            rate: r.rate(),
            hits: r.hits,
            samples: r.samples,
        }
    }
}

/// The quality of one workflow on one release track over this process's window.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowQualityOut {
    pub workflow: String,
    /// `stable` or `canary`: the release that ran the runs (for approval rejections, the
    /// release that proposed the write).
    pub track: String,
    /// Runs in the window.
    pub runs: u64,
    /// Runs since this process started.
    pub runs_total: u64,
    /// Answers of citation-required workflows that cited their evidence (of those checked).
    pub citation: RateOut,
    /// Returned answers that refuse ("I can't help with that"), of answers (returned or
    /// cut off).
    pub refusal: RateOut,
    /// Answers that were empty or cut off at the output limit, of answers.
    pub empty_or_truncated: RateOut,
    /// Runs blocked by a guardrail (input rules, or the citation rule), of runs.
    pub blocked: RateOut,
    /// Runs whose returned answer the output guardrail redacted, of runs.
    pub flagged: RateOut,
    /// Tool calls that failed, of the window's tool calls.
    pub tool_errors: RateOut,
    /// Final approval decisions that rejected the write, of the window's decisions.
    pub approval_rejections: RateOut,
    /// Runs that ended `success`.
    pub successes: u64,
    /// The cost of the window's runs divided by its successes (null without successes).
    pub cost_per_success_usd: Option<f64>,
    /// Median and 95th percentile of returned answers' length in characters.
    pub answer_chars_p50: Option<u64>,
    pub answer_chars_p95: Option<u64>,
    /// Signals past their threshold: `citation_rate`, `refusal_rate`, `tool_error_rate`,
    /// `empty_or_truncated_rate`, `approval_rejection_rate`.
    pub alerts: Vec<String>,
}

/// The service's own alert thresholds.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QualityThresholdsOut {
    pub min_samples: u64,
    pub min_citation_rate: f64,
    pub max_refusal_rate: f64,
    pub max_tool_error_rate: f64,
    pub max_empty_or_truncated_rate: f64,
    pub max_approval_rejection_rate: f64,
}

/// Quality signals of this process's recent runs (`QUALITY_WINDOW_RUNS` per workflow and
/// track), for the quality panel; Prometheus has the same signals over time.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QualitySummary {
    pub window_runs: u64,
    pub thresholds: QualityThresholdsOut,
    pub workflows: Vec<WorkflowQualityOut>,
}

/// The caller's tenant's usage today (UTC) against its daily budgets, across replicas as
/// of their last flush (about a second behind).
#[derive(Serialize, utoipa::ToSchema)]
pub struct BudgetOut {
    pub tenant: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// When the day's budgets reset (the next UTC midnight).
    pub resets_at: String,
    pub tokens_used: i64,
    pub tokens_limit: u64,
    pub cost_used_usd: f64,
    pub cost_limit_usd: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InfoResponse {
    pub service: &'static str,
    pub version: String,
    pub git_sha: String,
    pub track: String,
    /// The first provider of the service's chain.
    pub provider: ProviderInfo,
    pub provider_chain: ProviderChainInfo,
    pub prompt_version: String,
    pub prompts: Vec<PromptInfo>,
    pub tool_schema_hash: String,
    pub policy_version: String,
    pub policy_hash: String,
    pub config_hash: String,
    pub limits: LimitsInfo,
    pub quality: QualitySummary,
    pub budget: BudgetOut,
}

fn quality_summary(state: &AppState) -> QualitySummary {
    let t = crate::quality::Thresholds::from(&state.settings.quality);
    let workflows = state
        .metrics
        .quality
        .summary(&t)
        .into_iter()
        .map(|q| WorkflowQualityOut {
            workflow: q.workflow,
            track: q.track,
            runs: q.runs,
            runs_total: q.runs_total,
            citation: q.citation.into(),
            refusal: q.refusal.into(),
            empty_or_truncated: q.empty_or_truncated.into(),
            blocked: q.blocked.into(),
            flagged: q.flagged.into(),
            tool_errors: q.tool_errors.into(),
            approval_rejections: q.approval_rejections.into(),
            successes: q.successes,
            cost_per_success_usd: q.cost_per_success_usd,
            answer_chars_p50: q.answer_chars_p50,
            answer_chars_p95: q.answer_chars_p95,
            alerts: q.alerts.iter().map(|s| s.as_str().to_string()).collect(),
        })
        .collect();
    QualitySummary {
        window_runs: state.metrics.quality.size() as u64,
        thresholds: QualityThresholdsOut {
            min_samples: t.min_samples,
            min_citation_rate: t.min_citation_rate,
            max_refusal_rate: t.max_refusal_rate,
            max_tool_error_rate: t.max_tool_error_rate,
            max_empty_or_truncated_rate: t.max_empty_or_truncated_rate,
            max_approval_rejection_rate: t.max_approval_rejection_rate,
        },
        workflows,
    }
}

async fn budget(state: &AppState, tenant: &crate::domain::TenantId) -> Result<BudgetOut> {
    let now = state.engine.clock.now();
    let day = now.format("%Y-%m-%d").to_string();
    let (tokens, cost) = crate::db::notifications::usage_of(&state.db, tenant, &day).await?;
    let resets_at = now
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().to_rfc3339())
        .unwrap_or_default();
    let b = &state.settings.budgets;
    Ok(BudgetOut {
        tenant: tenant.to_string(),
        day,
        resets_at,
        tokens_used: tokens,
        tokens_limit: b.tenant_daily_token_budget,
        cost_used_usd: cost,
        cost_limit_usd: b.tenant_daily_cost_budget_usd,
    })
}

fn provider_info(state: &AppState) -> ProviderInfo {
    let scripted = state.info.provider == "scripted";
    ProviderInfo {
        kind: state.info.provider.clone(),
        model: state.info.model.clone(),
        scripted,
        label: label(&state.info.provider, &state.info.model),
    }
}

/// How a provider is named to people: the scripted model says what it is.
fn label(kind: &str, model: &str) -> String {
    if kind == "scripted" {
        "scripted (deterministic offline model for demos and tests, not an LLM)".into()
    } else {
        format!("{kind} {model}")
    }
}

fn chain_info(state: &AppState) -> ProviderChainInfo {
    let providers = &state.engine.providers;
    let service = providers.service();
    let serving = service.serving_name();
    ProviderChainInfo {
        links: service
            .links()
            .iter()
            .map(|l| {
                let p = &l.provider;
                ProviderLinkInfo {
                    name: l.name().to_string(),
                    kind: p.kind().to_string(),
                    model: p.model().to_string(),
                    scripted: l.scripted(),
                    label: label(p.kind(), p.model()),
                    circuit: p.circuit_state(),
                    serving: serving == Some(l.name()),
                }
            })
            .collect(),
        serving: serving.map(str::to_string),
        workflows: providers
            .workflow_chains()
            .iter()
            .map(|(wf, chain)| WorkflowChainInfo {
                workflow: wf.clone(),
                chain: chain.names(),
                serving: chain.serving_name().map(str::to_string),
            })
            .collect(),
    }
}

/// Versions, hashes and the provider of this process; the quality of its recent runs per
/// workflow and track; the caller's tenant's usage today against its daily budgets.
#[utoipa::path(get, path = "/v1/info", security(("bearer" = [])), responses((status = 200, body = InfoResponse), (status = 401, body = crate::routes::error::ErrorEnvelope),
    (status = 403, body = crate::routes::error::ErrorEnvelope, description = "the key has neither the viewer nor the invoke role")))]
pub async fn info(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<InfoResponse>> {
    principal
        .require(Role::Viewer)
        .or_else(|_| principal.require(Role::Invoke))?;
    let i = &state.info;
    Ok(Json(InfoResponse {
        service: "agent-service",
        version: i.version.clone(),
        git_sha: i.git_sha.clone(),
        track: i.track.clone(),
        provider: provider_info(&state),
        provider_chain: chain_info(&state),
        prompt_version: i.prompt_version.clone(),
        prompts: state
            .workflows
            .values()
            .map(|w| PromptInfo {
                workflow: w.name.into(),
                version: w.prompt_version.into(),
                hash: w.prompt_hash.clone(),
            })
            .collect(),
        tool_schema_hash: i.tool_schema_hash.clone(),
        policy_version: i.policy_version.clone(),
        policy_hash: i.policy_hash.clone(),
        config_hash: i.config_hash.clone(),
        limits: limits_info(&state),
        quality: quality_summary(&state),
        budget: budget(&state, &principal.tenant).await?,
    }))
}

/// Who the caller is: the tenant, roles and non-secret id of the presented API key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WhoamiResponse {
    pub tenant: String,
    /// The key's roles, sorted (`invoke`, `viewer`, `approver`, `operator`, `admin`).
    pub roles: Vec<String>,
    /// The key's id (`key_…`), never the key itself or its hash.
    pub key_id: String,
    /// The key's human-readable name.
    pub key_name: String,
}

/// The identity behind the bearer key: any valid key may ask (no role required).
#[utoipa::path(get, path = "/v1/whoami", security(("bearer" = [])), responses((status = 200, body = WhoamiResponse), (status = 401, body = crate::routes::error::ErrorEnvelope)))]
pub async fn whoami(principal: Principal) -> Json<WhoamiResponse> {
    Json(WhoamiResponse {
        tenant: principal.tenant.as_str().to_string(),
        roles: principal
            .roles
            .iter()
            .map(|r| r.as_str().to_string())
            .collect(),
        key_id: principal.key_id,
        key_name: principal.key_name,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ToolOut {
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// `read` or `write`.
    pub side_effect: String,
    /// Writes never run directly: they become approval requests.
    pub approval: &'static str,
    pub timeout_ms: u64,
    pub max_concurrency: u32,
    pub source: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ToolList {
    pub items: Vec<ToolOut>,
    pub next_cursor: Option<String>,
}

/// The tool registry: schemas, side effects, approval policy.
#[utoipa::path(get, path = "/v1/tools", security(("bearer" = [])), responses((status = 200, body = ToolList)))]
pub async fn tools(State(state): State<AppState>, _principal: Principal) -> Json<ToolList> {
    let items = state
        .engine
        .tools
        .specs()
        .into_iter()
        .map(|t| {
            let write = t.side_effect == crate::tools::SideEffect::Write;
            ToolOut {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.parameters.clone(),
                side_effect: if write { "write".into() } else { "read".into() },
                approval: if write { "required" } else { "none" },
                timeout_ms: t.timeout.as_millis() as u64,
                max_concurrency: t.max_concurrency,
                source: t.source.into(),
            }
        })
        .collect();
    Json(ToolList {
        items,
        next_cursor: None,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowOut {
    pub name: String,
    pub description: String,
    pub prompt_version: String,
    pub prompt_hash: String,
    pub tools: Vec<String>,
    pub risk_tier: u8,
    /// `none`, or `required` when the workflow can propose writes.
    pub approval: &'static str,
    pub citations_required: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowList {
    pub items: Vec<WorkflowOut>,
    pub next_cursor: Option<String>,
}

/// The workflows this service runs.
#[utoipa::path(get, path = "/v1/workflows", security(("bearer" = [])), responses((status = 200, body = WorkflowList)))]
pub async fn workflows(State(state): State<AppState>, _principal: Principal) -> Json<WorkflowList> {
    let items = state
        .workflows
        .values()
        .map(|w| WorkflowOut {
            name: w.name.into(),
            description: w.description.into(),
            prompt_version: w.prompt_version.into(),
            prompt_hash: w.prompt_hash.clone(),
            tools: w.tools.clone(),
            risk_tier: w.risk_tier,
            approval: if w.risk_tier >= 2 { "required" } else { "none" },
            citations_required: state.engine.policy.citation_required(w.name),
        })
        .collect();
    Json(WorkflowList {
        items,
        next_cursor: None,
    })
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "agent-service", description = "Production agent runtime API"),
    paths(
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::health::metrics,
        info,
        whoami,
        tools,
        workflows,
        crate::routes::invoke::invoke,
        crate::routes::invoke::invoke_stream,
        crate::routes::approvals::get_one,
        crate::routes::approvals::list,
        crate::routes::approvals::approve,
        crate::routes::approvals::reject,
        crate::routes::approvals::cancel,
        crate::routes::approvals::events,
        crate::routes::audit::list,
        crate::routes::audit::verify,
        crate::routes::admin::freeze_state,
        crate::routes::admin::freeze,
        crate::routes::admin::unfreeze,
        crate::routes::notifications::create,
        crate::routes::notifications::list,
        crate::routes::notifications::get_one,
        crate::routes::notifications::delete,
        crate::routes::notifications::test,
        crate::routes::notifications::deliveries,
        crate::routes::notifications::delivery,
        crate::routes::notifications::retry,
        crate::routes::traces::list,
        crate::routes::traces::get_one,
        crate::routes::jobs::create,
        crate::routes::jobs::get_one,
        crate::routes::jobs::list,
        crate::routes::jobs::cancel,
        crate::routes::evals::suites,
        crate::routes::evals::create_run,
        crate::routes::evals::list_runs,
        crate::routes::evals::get_run,
        crate::routes::evals::report_markdown,
        crate::routes::evals::report_junit,
    ),
    modifiers(&Security, &Contract)
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// What every operation answers besides its own statuses, added to the document from the
/// layers every request passes, so no handler has to repeat them: the request id header
/// on every response; 401, 429 and 503 on every operation that needs a key (the key
/// check, the rate limit and the per-key concurrency share, load shedding, shutdown, the
/// database); 400, 408, 413 and 415 on every operation that takes a body; 400 on every
/// operation with path or query parameters.
struct Contract;

impl Contract {
    fn error(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build(),
            )
            .build()
            .into()
    }

    fn header(schema: utoipa::openapi::Object, description: &str) -> utoipa::openapi::Header {
        utoipa::openapi::HeaderBuilder::new()
            .schema(schema)
            .description(Some(description))
            .build()
    }
}

impl utoipa::Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ObjectBuilder, RefOr, Type};

        let request_id = Self::header(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z0-9._:-]{1,128}$"))
                .build(),
            "The request's id (the client's, when it sent a valid one, else generated); \
             also in every error body and on every log line of the request.",
        );
        let retry_after = Self::header(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .build(),
            "Seconds to wait before retrying.",
        );
        // A cancel names at least one of its filters (and null is as if absent).
        if let Some(components) = openapi.components.as_mut()
            && let Some(cancel) = components.schemas.remove("CancelRequest")
        {
            use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder};
            let given = |field: &str| {
                ObjectBuilder::new()
                    .required(field)
                    .property(field, ObjectBuilder::new().schema_type(Type::String))
            };
            let rule = AllOfBuilder::new()
                .item(cancel)
                .item(
                    AnyOfBuilder::new()
                        .item(given("track"))
                        .item(given("version")),
                )
                .build();
            components.schemas.insert(
                "CancelRequest".into(),
                RefOr::T(utoipa::openapi::Schema::AllOf(rule)),
            );
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let params = op.parameters.as_deref().unwrap_or_default();
                let has_path_or_query = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query));
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| Self::error(description));
                };
                if secured {
                    add(
                        "401",
                        "`unauthorized`: no API key, or one that is malformed, unknown or revoked",
                    );
                    add(
                        "429",
                        "`rate_limited` (the key's requests per minute), `concurrency_limited` \
                         (the key holds its share of the concurrency limit) or \
                         `tenant_budget_exceeded`",
                    );
                    add(
                        "503",
                        "`overloaded` (at the concurrency limit), `shutting_down`, or \
                         `dependency_unavailable` (the database did not answer)",
                    );
                }
                if op.request_body.is_some() {
                    add("400", "`malformed_json` or `invalid_input`");
                    add(
                        "408",
                        "`request_timeout`: the body did not arrive within BODY_READ_TIMEOUT_SECS",
                    );
                    add(
                        "413",
                        "`payload_too_large`: the body is larger than MAX_BODY_BYTES",
                    );
                    add(
                        "415",
                        "`unsupported_media_type`: send the body as `application/json`",
                    );
                }
                if has_path_or_query {
                    add("400", "`invalid_input`: a parameter is not valid");
                }
                for (status, response) in op.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response {
                        response
                            .headers
                            .insert("X-Request-Id".into(), request_id.clone());
                        if status == "429" || status == "503" {
                            response
                                .headers
                                .insert("Retry-After".into(), retry_after.clone());
                        }
                    }
                }
            }
        }
    }
}

/// The OpenAPI document of this API, generated from the handlers and DTOs, with what
/// utoipa's model cannot hold: `X-Request-Id` is marked required on every response (a
/// client, or a contract checker, may rely on it being there), and the trace list's query
/// parameters allow an empty value (its parser takes `status=` as no status filter).
pub fn document() -> Value {
    use utoipa::OpenApi;
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|e| {
        // The document is built from types of this crate: a failure is a bug caught by
        // every test that reads /openapi.json.
        panic!("the OpenAPI document does not serialize: {e}")
    });
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let responses = paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
            .filter_map(|op| op.get_mut("responses").and_then(Value::as_object_mut))
            .flat_map(|responses| responses.values_mut());
        for response in responses {
            if let Some(header) = response.pointer_mut("/headers/X-Request-Id") {
                header["required"] = Value::Bool(true);
            }
        }
    }
    if let Some(params) = doc
        .pointer_mut("/paths/~1v1~1traces/get/parameters")
        .and_then(Value::as_array_mut)
    {
        for param in params {
            param["allowEmptyValue"] = Value::Bool(true);
        }
    }
    doc
}

/// Serves [`document`].
pub async fn openapi() -> Json<Value> {
    Json(document())
}

/// The A2A agent card: who this agent is and which skills (workflows) it offers.
pub async fn agent_card(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Json<Value> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let skills: Vec<Value> = state
        .workflows
        .values()
        .map(|w| {
            json!({
                "id": w.name,
                "name": w.name.replace('_', " "),
                "description": w.description,
                "tags": if w.risk_tier >= 2 { vec!["write", "approval-required"] } else { vec!["read-only"] },
                "inputModes": ["text/plain"],
                "outputModes": ["application/json", "text/plain"],
            })
        })
        .collect();
    Json(json!({
        "protocolVersion": "0.3.0",
        "name": "agent-service",
        "description": "Runs support, knowledge-base and finance workflows with guardrails; writes wait for human approval.",
        "url": format!("http://{host}/v1/invoke"),
        "preferredTransport": "HTTP+JSON",
        "version": state.info.version,
        "provider": { "organization": "Flightdeck", "url": format!("http://{host}") },
        "capabilities": { "streaming": true, "pushNotifications": false, "stateTransitionHistory": false },
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["application/json"],
        "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        "security": [{ "bearer": [] }],
        "skills": skills,
    }))
}
