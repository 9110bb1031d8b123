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

#[derive(Serialize, utoipa::ToSchema)]
pub struct PromptInfo {
    pub workflow: String,
    pub version: String,
    pub hash: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InfoResponse {
    pub service: &'static str,
    pub version: String,
    pub git_sha: String,
    pub track: String,
    pub provider: ProviderInfo,
    pub prompt_version: String,
    pub prompts: Vec<PromptInfo>,
    pub tool_schema_hash: String,
    pub policy_version: String,
    pub policy_hash: String,
    pub config_hash: String,
}

fn provider_info(state: &AppState) -> ProviderInfo {
    let scripted = state.info.provider == "scripted";
    ProviderInfo {
        kind: state.info.provider.clone(),
        model: state.info.model.clone(),
        scripted,
        label: if scripted {
            "scripted (deterministic offline model for demos and tests, not an LLM)".into()
        } else {
            format!("{} {}", state.info.provider, state.info.model)
        },
    }
}

/// Versions, hashes and the provider of this process.
#[utoipa::path(get, path = "/v1/info", security(("bearer" = [])), responses((status = 200, body = InfoResponse), (status = 401, body = crate::routes::error::ErrorEnvelope)))]
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
    modifiers(&Security)
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

/// The OpenAPI document of this API, generated from the handlers and DTOs.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    Json(ApiDoc::openapi())
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
