//! The shipped workflows: a versioned, hashed system prompt template, the tools each may
//! use, its risk tier, and the per-call output cap of its model calls.

use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Serialize)]
pub struct Workflow {
    pub name: &'static str,
    pub description: &'static str,
    /// `<name>@v<n>`: bumped whenever the template changes.
    pub prompt_version: &'static str,
    /// sha256 of the template text (first 16 hex digits).
    pub prompt_hash: String,
    #[serde(skip)]
    pub template: &'static str,
    pub tools: Vec<String>,
    /// 0 = read-only, 2 = writes that need approval.
    pub risk_tier: u8,
    /// Whether the workflow depends on retrieval (and so may run degraded without it).
    pub retrieval: bool,
    /// The most tokens one model call may generate (`max_tokens` / `num_predict`),
    /// thinking included: far below the request's token budget, so one runaway reply
    /// cannot spend it. A reply cut at the cap ends the run as `budget_exceeded`
    /// (`output_tokens`), never as an answer.
    pub max_output_tokens: u32,
}

impl Workflow {
    /// The system prompt for a tenant.
    pub fn system_prompt(&self, tenant: &str) -> String {
        self.template.replace("{tenant}", tenant)
    }
}

fn hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// All workflows this build ships, sorted by name.
pub fn builtin() -> Vec<Workflow> {
    let mk = |name,
              description,
              prompt_version,
              template: &'static str,
              tools: Vec<&str>,
              risk_tier,
              retrieval,
              max_output_tokens| Workflow {
        name,
        description,
        prompt_version,
        prompt_hash: hash(template),
        template,
        tools: tools.into_iter().map(str::to_string).collect(),
        risk_tier,
        retrieval,
        max_output_tokens,
    };
    vec![
        mk(
            "faq",
            "Answers customer questions from the knowledge base, with citations; says so when retrieval is down.",
            "faq@v1",
            include_str!("../prompts/faq.v1.md"),
            vec!["kb_search"],
            0,
            true,
            512,
        ),
        mk(
            "invoice_approval",
            "Prepares an invoice payment; the payment executes only after approval (two approvers above the threshold).",
            "invoice_approval@v1",
            include_str!("../prompts/invoice_approval.v1.md"),
            vec!["invoice_read", "invoice_pay"],
            2,
            false,
            512,
        ),
        mk(
            "support_ticket_summary",
            "Summarises a support ticket with evidence from the ticket and the knowledge base (read-only).",
            "support_ticket_summary@v1",
            include_str!("../prompts/support_ticket_summary.v1.md"),
            vec!["ticket_read", "kb_search"],
            0,
            true,
            1024,
        ),
        mk(
            "ticket_update",
            "Proposes a change to a ticket (status, priority, comment); the change needs approval.",
            "ticket_update@v1",
            include_str!("../prompts/ticket_update.v1.md"),
            vec!["ticket_read", "ticket_update"],
            2,
            false,
            512,
        ),
    ]
}

/// The shipped workflows with the extra tools config grants them (`[workflow_tools]`)
/// and the output caps it sets (`MAX_OUTPUT_TOKENS`, `[workflow_max_output_tokens]`).
/// Only declared HTTP tools may be granted; anything else is a config error naming the key.
pub fn configured(
    settings: &crate::config::ToolConfig,
    budgets: &crate::config::BudgetConfig,
) -> Result<Vec<Workflow>, crate::config::ConfigError> {
    let mut all = builtin();
    for wf in &mut all {
        if let Some(n) = budgets.max_output_tokens {
            wf.max_output_tokens = n;
        }
        // A cap above the request's budget could not be reached: the budget is the cap.
        wf.max_output_tokens = wf.max_output_tokens.min(budgets.max_tokens_per_request);
    }
    for (wf_name, n) in &budgets.workflow_max_output_tokens {
        let Some(wf) = all.iter_mut().find(|w| w.name == wf_name) else {
            let known: Vec<&str> = builtin().iter().map(|w| w.name).collect();
            return Err(crate::config::ConfigError {
                key: format!("workflow_max_output_tokens.{wf_name}"),
                message: format!("unknown workflow; expected one of: {}", known.join(", ")),
            });
        };
        wf.max_output_tokens = *n;
    }
    for (wf_name, tools) in &settings.workflow_tools {
        let key = format!("workflow_tools.{wf_name}");
        let Some(wf) = all.iter_mut().find(|w| w.name == wf_name) else {
            let known: Vec<&str> = builtin().iter().map(|w| w.name).collect();
            return Err(crate::config::ConfigError {
                key,
                message: format!("unknown workflow; expected one of: {}", known.join(", ")),
            });
        };
        for tool in tools {
            if !settings.http_tools.iter().any(|t| &t.name == tool) {
                return Err(crate::config::ConfigError {
                    key,
                    message: format!("{tool:?} is not a declared HTTP tool (see [[http_tools]])"),
                });
            }
            if !wf.tools.contains(tool) {
                wf.tools.push(tool.clone());
            }
        }
    }
    Ok(all)
}

/// One hash over every workflow's prompt version and hash, for `/v1/info` and metrics.
pub fn prompt_set_version(workflows: &[Workflow]) -> String {
    let joined: String = workflows
        .iter()
        .map(|w| format!("{}:{};", w.prompt_version, w.prompt_hash))
        .collect();
    format!("prompts-{}", &hash(&joined)[..8])
}
