//! The scripted model: a deterministic offline stand-in for demos and tests. It follows
//! one script per workflow, choosing the next tool call or the final answer from the
//! conversation so far. No randomness, no clock: the same conversation gets the same reply.
//! Its `uncited` variant (`SCRIPTED_VARIANT=uncited`, model `scripted-v1-uncited`) gives the
//! same answers without their `[kind:ID]` citations: a release that degrades silently, for
//! canary tests of the quality signals.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

use super::{
    ChatMessage, ChatModel, ChatRequest, ChatResponse, MessageRole, ProviderError, TokenSink,
    ToolCall, Usage,
};
use crate::config::ScriptedVariant;

/// The name the scripted model reports everywhere, so nobody mistakes it for a real one.
pub const SCRIPTED_MODEL: &str = "scripted-v1";

static TICKET_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bT-\d+\b").expect("static regex"));
static INVOICE_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bINV-\d+\b").expect("static regex"));

static CITATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\s?\[(?:ticket|kb|invoice|tool):[A-Za-z0-9_.-]+\]").expect("static regex")
});

/// The deterministic offline model (kind `scripted`, model `scripted-v1`, or
/// `scripted-v1-uncited` for the variant whose answers cite nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scripted {
    variant: ScriptedVariant,
}

impl Scripted {
    /// The demo script, whose answers cite their evidence.
    pub fn new() -> Self {
        Self::with_variant(ScriptedVariant::Cites)
    }

    pub fn with_variant(variant: ScriptedVariant) -> Self {
        Self { variant }
    }
}

/// `answer` without its `[kind:ID]` citations (and the space before each).
fn uncited(answer: &str) -> String {
    CITATION.replace_all(answer, "").into_owned()
}

#[async_trait::async_trait]
impl ChatModel for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn model(&self) -> &str {
        self.variant.model()
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        sink: Option<&TokenSink>,
    ) -> Result<ChatResponse, ProviderError> {
        Ok(respond(req, sink, self.variant))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// What the script does next.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Call {
        tool: &'static str,
        arguments: Value,
    },
    Answer(String),
}

fn respond(req: &ChatRequest, sink: Option<&TokenSink>, variant: ScriptedVariant) -> ChatResponse {
    let model = variant.model();
    let conversation = Conversation::new(req);
    let step = match req.workflow.as_str() {
        "support_ticket_summary" => support_ticket_summary(&conversation),
        "faq" => faq(&conversation),
        "ticket_update" => ticket_update(&conversation),
        "invoice_approval" => invoice_approval(&conversation),
        _ => Step::Answer(capabilities()),
    };
    let prompt_tokens = super::estimate_prompt_tokens(&req.messages);
    match step {
        Step::Call { tool, arguments } => {
            let call_number = 1 + req
                .messages
                .iter()
                .map(|m| m.tool_calls.len())
                .sum::<usize>();
            let call = ToolCall {
                id: format!("call_{call_number}"),
                name: tool.to_string(),
                arguments,
            };
            let completion_tokens = super::estimate_tokens(
                &json!({ "name": call.name, "arguments": call.arguments }).to_string(),
            );
            ChatResponse {
                content: String::new(),
                tool_calls: vec![call],
                usage: Usage {
                    prompt_tokens,
                    completion_tokens,
                },
                model: model.to_string(),
                finish: super::Finish::ToolCalls,
                ..ChatResponse::default()
            }
        }
        Step::Answer(answer) => {
            let answer = match variant {
                ScriptedVariant::Cites => answer,
                ScriptedVariant::Uncited => uncited(&answer),
            };
            if let Some(sink) = sink {
                for word in word_chunks(&answer) {
                    // A receiver that went away only means nobody watches the stream.
                    let _ = sink.send(word.to_string());
                }
            }
            ChatResponse {
                usage: Usage {
                    prompt_tokens,
                    completion_tokens: super::estimate_tokens(&answer),
                },
                content: answer,
                tool_calls: vec![],
                model: model.to_string(),
                ..ChatResponse::default()
            }
        }
    }
}

/// What the script reads from the conversation: the last user message, and the tool
/// results that came after it.
struct Conversation<'a> {
    input: &'a str,
    results: Vec<(String, Result<Value, String>)>,
    offered: Vec<&'a str>,
}

impl<'a> Conversation<'a> {
    fn new(req: &'a ChatRequest) -> Self {
        let start = req
            .messages
            .iter()
            .rposition(|m| m.role == MessageRole::User);
        let input = start.map_or("", |i| req.messages[i].content.as_str());
        let since = start.map_or(&req.messages[..], |i| &req.messages[i + 1..]);
        let results = since
            .iter()
            .filter(|m| m.role == MessageRole::Tool)
            .map(|m| (tool_name(m, &req.messages), outcome(&m.content)))
            .collect();
        Self {
            input,
            results,
            offered: req.tools.iter().map(|t| t.name.as_str()).collect(),
        }
    }

    /// The latest result of `tool`, if it has run since the input.
    fn result(&self, tool: &str) -> Option<&Result<Value, String>> {
        self.results
            .iter()
            .rev()
            .find(|(name, _)| name == tool)
            .map(|(_, outcome)| outcome)
    }

    fn offers(&self, tool: &str) -> bool {
        self.offered.contains(&tool)
    }

    /// Calls `tool` if the workflow offers it, else answers with `otherwise`.
    fn call(
        &self,
        tool: &'static str,
        arguments: Value,
        otherwise: impl FnOnce() -> String,
    ) -> Step {
        if self.offers(tool) {
            Step::Call { tool, arguments }
        } else {
            Step::Answer(otherwise())
        }
    }
}

/// The tool a result belongs to: its `tool_name`, or the name of the call it answers.
fn tool_name(message: &ChatMessage, all: &[ChatMessage]) -> String {
    if let Some(name) = &message.tool_name {
        return name.clone();
    }
    all.iter()
        .flat_map(|m| &m.tool_calls)
        .find(|c| Some(&c.id) == message.tool_call_id.as_ref())
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// A tool result: its JSON, or the message of an `{"error": …}` result. The engine hands
/// results over delimited as data (`guardrails::spotlight`); the script reads inside.
fn outcome(content: &str) -> Result<Value, String> {
    let content = crate::guardrails::spotlit_data(content).unwrap_or(content);
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(obj)) if obj.contains_key("error") => {
            Err(obj.get("error").map_or_else(String::new, |e| {
                e.as_str().map_or_else(|| e.to_string(), str::to_string)
            }))
        }
        Ok(value) => Ok(value),
        Err(_) => Ok(Value::String(content.to_string())),
    }
}

fn capabilities() -> String {
    format!(
        "I am the scripted demo model ({SCRIPTED_MODEL}). I can summarise a support ticket (name it like T-1001), \
         answer questions from the knowledge base, propose ticket updates, and prepare invoice payments for approval."
    )
}

// ---- workflows -----------------------------------------------------------------------

fn support_ticket_summary(c: &Conversation) -> Step {
    let Some(id) = find_id(&TICKET_ID, c.input) else {
        return match c.result("kb_search") {
            None => c.call("kb_search", json!({ "query": c.input }), || {
                "Name the ticket to summarise, for example T-1001.".into()
            }),
            Some(result) => match articles(result).first() {
                Some(top) => Step::Answer(format!(
                    "I found no ticket id (like T-1001) in your request. The closest knowledge base article is \
                     \"{}\" [kb:{}].",
                    top.title, top.id
                )),
                None => Step::Answer(
                    "I found no ticket id (like T-1001) in your request, and no related knowledge base article.".into(),
                ),
            },
        };
    };
    match c.result("ticket_read") {
        None => c.call("ticket_read", json!({ "ticket_id": id }), || {
            format!("I cannot read tickets in this workflow, so I cannot summarise {id}.")
        }),
        Some(Err(_)) => Step::Answer(format!("I could not find ticket {id}.")),
        Some(Ok(value)) => {
            let ticket = Ticket::from_result(value);
            match c.result("kb_search") {
                None if c.offers("kb_search") && !ticket.subject.is_empty() => Step::Call {
                    tool: "kb_search",
                    arguments: json!({ "query": ticket.subject }),
                },
                kb => Step::Answer(ticket_summary(
                    &id,
                    &ticket,
                    kb.map(articles).unwrap_or_default().first(),
                )),
            }
        }
    }
}

fn ticket_summary(id: &str, t: &Ticket, article: Option<&Article>) -> String {
    let mut out = format!(
        "Ticket {id} \"{}\" is {} with {} priority.",
        t.subject,
        or_unknown(&t.status),
        or_unknown(&t.priority)
    );
    if let Some(sentence) = first_sentence(&t.body) {
        out.push_str(&format!(" The customer wrote: {}", with_period(&sentence)));
    }
    if let Some(a) = article {
        out.push_str(&format!(" Related article: {} [kb:{}].", a.title, a.id));
    }
    out.push_str(&format!(" [ticket:{id}]"));
    out
}

fn faq(c: &Conversation) -> Step {
    match c.result("kb_search") {
        None => c.call(
            "kb_search",
            json!({ "query": c.input, "limit": 3 }),
            no_retrieval_answer,
        ),
        Some(Err(_)) => Step::Answer(no_retrieval_answer()),
        Some(result @ Ok(_)) => {
            let found = articles(result);
            let Some((top, rest)) = found.split_first() else {
                return Step::Answer("I found no knowledge base article about that.".into());
            };
            let mut out = if top.snippet.is_empty() {
                format!("See \"{}\" [kb:{}].", top.title, top.id)
            } else {
                format!(
                    "{}: {} [kb:{}]",
                    top.title,
                    with_period(&top.snippet),
                    top.id
                )
            };
            if !rest.is_empty() {
                let also: Vec<String> = rest
                    .iter()
                    .map(|a| format!("{} [kb:{}]", a.title, a.id))
                    .collect();
                out.push_str(&format!(" See also: {}.", also.join("; ")));
            }
            Step::Answer(out)
        }
    }
}

fn no_retrieval_answer() -> String {
    "Knowledge base retrieval is unavailable right now, so this answer does not come from it. In general: check \
     the help center for your product, and if that does not help, open a ticket and a support agent will get back \
     to you."
        .into()
}

fn ticket_update(c: &Conversation) -> Step {
    let Some(id) = find_id(&TICKET_ID, c.input) else {
        return Step::Answer("Which ticket should I update? Name it like T-1001.".into());
    };
    let ticket = match c.result("ticket_read") {
        None => {
            return c.call("ticket_read", json!({ "ticket_id": id }), || {
                format!("I cannot read tickets in this workflow, so I cannot update {id}.")
            });
        }
        Some(Err(_)) => {
            return Step::Answer(format!(
                "I could not find ticket {id}, so nothing was changed."
            ));
        }
        Some(Ok(value)) => Ticket::from_result(value),
    };
    let changes = Changes::parse(c.input);
    if changes.is_empty() {
        return Step::Answer(format!(
            "What should I change on ticket {id}? I can set the status (open, pending, resolved, closed), the \
             priority (low, normal, high, urgent), or add a comment (comment: …). [ticket:{id}]"
        ));
    }
    match c.result("ticket_update") {
        None => {
            let mut arguments = json!({ "ticket_id": id });
            if let Some(status) = changes.status {
                arguments["status"] = json!(status);
            }
            if let Some(priority) = changes.priority {
                arguments["priority"] = json!(priority);
            }
            if let Some(comment) = &changes.comment {
                arguments["comment"] = json!(comment);
            }
            c.call("ticket_update", arguments, || {
                format!(
                    "I cannot propose changes to tickets in this workflow, so {id} is unchanged."
                )
            })
        }
        Some(Err(e)) => Step::Answer(format!(
            "The change to ticket {id} could not be proposed: {e}."
        )),
        Some(Ok(_)) => Step::Answer(format!(
            "I proposed this change to ticket {id}: {}. It is not applied until a human approves it. [ticket:{id}]",
            changes.describe(&ticket)
        )),
    }
}

fn invoice_approval(c: &Conversation) -> Step {
    let Some(id) = find_id(&INVOICE_ID, c.input) else {
        return Step::Answer(
            "Which invoice should I prepare for payment? Name it like INV-2001.".into(),
        );
    };
    let invoice = match c.result("invoice_read") {
        None => {
            return c.call("invoice_read", json!({ "invoice_id": id }), || {
                format!("I cannot read invoices in this workflow, so I cannot prepare {id}.")
            });
        }
        Some(Err(e)) => {
            return Step::Answer(format!(
                "I could not read invoice {id}: {e}. No payment was proposed."
            ));
        }
        Some(Ok(value)) => Invoice::from_result(value),
    };
    let Some((amount, amount_value)) = invoice.amount else {
        return Step::Answer(format!(
            "Invoice {id} has no amount, so no payment was proposed. [invoice:{id}]"
        ));
    };
    if invoice.status.eq_ignore_ascii_case("paid") {
        return Step::Answer(format!(
            "Invoice {id} is already paid, so no payment was proposed. [invoice:{id}]"
        ));
    }
    match c.result("invoice_pay") {
        None => c.call(
            "invoice_pay",
            json!({ "invoice_id": id, "amount_usd": amount_value }),
            || format!("I cannot propose payments in this workflow, so invoice {id} is not paid."),
        ),
        Some(Err(e)) => Step::Answer(format!(
            "The payment of invoice {id} could not be proposed: {e}."
        )),
        Some(Ok(_)) => {
            let vendor = if invoice.vendor.is_empty() {
                String::new()
            } else {
                format!(" to {}", invoice.vendor)
            };
            Step::Answer(format!(
                "I proposed paying invoice {id}{vendor} for {amount:.2} USD. The payment executes only after \
                 approval. [invoice:{id}]"
            ))
        }
    }
}

// ---- reading tool results ------------------------------------------------------------

struct Ticket {
    subject: String,
    status: String,
    priority: String,
    body: String,
}

impl Ticket {
    /// Accepts the ticket object itself or one wrapped as `{"ticket": {…}}`.
    fn from_result(value: &Value) -> Self {
        let t = value.get("ticket").unwrap_or(value);
        Self {
            subject: text(t, "subject"),
            status: text(t, "status"),
            priority: text(t, "priority"),
            body: text(t, "body"),
        }
    }
}

struct Article {
    id: String,
    title: String,
    snippet: String,
}

/// The articles of a `kb_search` result: a list, or one under `articles` / `results`.
fn articles(result: &Result<Value, String>) -> Vec<Article> {
    let Ok(value) = result else {
        return vec![];
    };
    let list = value
        .as_array()
        .or_else(|| value.get("articles").and_then(Value::as_array))
        .or_else(|| value.get("results").and_then(Value::as_array));
    list.into_iter()
        .flatten()
        .filter_map(|a| {
            let id = text(a, "id");
            (!id.is_empty()).then(|| {
                let snippet = ["snippet", "summary", "body"]
                    .iter()
                    .map(|k| text(a, k))
                    .find(|s| !s.is_empty());
                Article {
                    title: text(a, "title"),
                    snippet: snippet.unwrap_or_default(),
                    id,
                }
            })
        })
        .collect()
}

struct Invoice {
    /// The amount, and the JSON value to pass on unchanged.
    amount: Option<(f64, Value)>,
    vendor: String,
    status: String,
}

impl Invoice {
    fn from_result(value: &Value) -> Self {
        let inv = value.get("invoice").unwrap_or(value);
        let amount = match inv.get("amount_usd") {
            Some(n @ Value::Number(num)) => num.as_f64().map(|f| (f, n.clone())),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok().map(|f| (f, json!(f))),
            _ => None,
        };
        Self {
            amount,
            vendor: text(inv, "vendor"),
            status: text(inv, "status"),
        }
    }
}

/// The change a `ticket_update` request asks for.
#[derive(Debug, Default, PartialEq)]
struct Changes {
    status: Option<&'static str>,
    priority: Option<&'static str>,
    comment: Option<String>,
}

impl Changes {
    fn parse(input: &str) -> Self {
        const MARKER: &str = "comment:";
        let at = input.char_indices().map(|(i, _)| i).find(|&i| {
            input
                .get(i..i + MARKER.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(MARKER))
        });
        let (head, comment) = match at {
            Some(at) => (
                input[..at].to_lowercase(),
                Some(&input[at + MARKER.len()..]),
            ),
            None => (input.to_lowercase(), None),
        };
        let words: Vec<&str> = head
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let status = words.iter().find_map(|w| match *w {
            "open" | "reopen" => Some("open"),
            "pending" => Some("pending"),
            "resolved" | "resolve" => Some("resolved"),
            "closed" | "close" => Some("closed"),
            _ => None,
        });
        let priority = words.iter().find_map(|w| match *w {
            "low" => Some("low"),
            "normal" => Some("normal"),
            "high" => Some("high"),
            "urgent" => Some("urgent"),
            _ => None,
        });
        let comment = comment
            .map(|c| {
                c.trim()
                    .trim_matches(|q| q == '"' || q == '\'')
                    .trim()
                    .to_string()
            })
            .filter(|c| !c.is_empty());
        Self {
            status,
            priority,
            comment,
        }
    }

    fn is_empty(&self) -> bool {
        self.status.is_none() && self.priority.is_none() && self.comment.is_none()
    }

    /// `status to closed (now open), priority to urgent (now high), …`
    fn describe(&self, current: &Ticket) -> String {
        let now = |value: &str| {
            if value.is_empty() {
                String::new()
            } else {
                format!(" (now {value})")
            }
        };
        let mut parts = vec![];
        if let Some(status) = self.status {
            parts.push(format!("status to {status}{}", now(&current.status)));
        }
        if let Some(priority) = self.priority {
            parts.push(format!("priority to {priority}{}", now(&current.priority)));
        }
        if let Some(comment) = &self.comment {
            parts.push(format!("add the comment \"{comment}\""));
        }
        parts.join(", ")
    }
}

// ---- text helpers --------------------------------------------------------------------

fn find_id(pattern: &Regex, input: &str) -> Option<String> {
    pattern.find(input).map(|m| m.as_str().to_uppercase())
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

/// The first sentence of `text` (up to `.`, `!` or `?` followed by a space, or a line end).
fn first_sentence(text: &str) -> Option<String> {
    let text = text.trim();
    let mut end = text.len();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|(_, n)| *n);
        if c == '\n' {
            end = i;
            break;
        }
        if matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace) {
            end = i + c.len_utf8();
            break;
        }
    }
    let sentence = text[..end].trim();
    (!sentence.is_empty()).then(|| sentence.to_string())
}

fn with_period(sentence: &str) -> String {
    let s = sentence.trim();
    if s.ends_with(['.', '!', '?']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// The answer in word chunks as a model would stream them: `"Ticket"`, `" T-1001"`, ….
fn word_chunks(text: &str) -> Vec<&str> {
    let mut chunks = vec![];
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && in_word {
            chunks.push(&text[start..i]);
            start = i;
        }
        in_word = !c.is_whitespace();
    }
    if start < text.len() {
        chunks.push(&text[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tokio::sync::mpsc;

    use super::*;
    use crate::providers::ToolDef;

    fn tools(names: &[&str]) -> Vec<ToolDef> {
        names
            .iter()
            .map(|n| ToolDef {
                name: (*n).into(),
                description: String::new(),
                parameters: json!({ "type": "object" }),
            })
            .collect()
    }

    /// Runs the script like the workflow engine would, answering each tool call from
    /// `results`; returns the calls made and the final answer.
    async fn run(
        workflow: &str,
        input: &str,
        offered: &[&str],
        results: &[(&str, Value)],
    ) -> (Vec<(String, Value)>, String) {
        run_with(Scripted::new(), workflow, input, offered, results).await
    }

    async fn run_with(
        model: Scripted,
        workflow: &str,
        input: &str,
        offered: &[&str],
        results: &[(&str, Value)],
    ) -> (Vec<(String, Value)>, String) {
        let results: HashMap<&str, &Value> = results.iter().map(|(k, v)| (*k, v)).collect();
        let mut req = ChatRequest::new(
            workflow,
            vec![ChatMessage::system("prompt"), ChatMessage::user(input)],
            512,
        );
        req.tools = tools(offered);
        let mut calls = vec![];
        for _ in 0..6 {
            let resp = model.chat(&req, None).await.expect("scripted never fails");
            let Some(call) = resp.tool_calls.first().cloned() else {
                return (calls, resp.content);
            };
            assert!(
                offered.contains(&call.name.as_str()),
                "called {} which is not offered",
                call.name
            );
            calls.push((call.name.clone(), call.arguments.clone()));
            let result = results
                .get(call.name.as_str())
                .map_or_else(|| json!({ "error": "no result" }), |v| (*v).clone());
            req.messages
                .push(ChatMessage::assistant("", vec![call.clone()]));
            req.messages
                .push(ChatMessage::tool(&call, result.to_string()));
        }
        panic!("the script did not finish: {calls:?}");
    }

    fn ticket() -> Value {
        json!({ "id": "T-1001", "subject": "Cannot log in after password reset", "status": "open", "priority": "high",
                "body": "I reset my password yesterday. Since then the login page says my account is locked.",
                "customer_email": "ana@example.com" })
    }

    fn kb() -> Value {
        json!({ "articles": [
            { "id": "KB-3", "title": "Unlocking a locked account", "snippet": "Accounts unlock automatically after 30 minutes" },
            { "id": "KB-7", "title": "Resetting your password", "snippet": "Use the forgot password link." },
        ] })
    }

    #[tokio::test]
    async fn support_summary_reads_the_ticket_then_searches_the_kb_and_cites_both() {
        let (calls, answer) = run(
            "support_ticket_summary",
            "Summarise ticket T-1001 please",
            &["ticket_read", "kb_search"],
            &[("ticket_read", ticket()), ("kb_search", kb())],
        )
        .await;
        assert_eq!(
            calls,
            [
                ("ticket_read".into(), json!({ "ticket_id": "T-1001" })),
                (
                    "kb_search".into(),
                    json!({ "query": "Cannot log in after password reset" })
                ),
            ]
        );
        assert_eq!(
            answer,
            "Ticket T-1001 \"Cannot log in after password reset\" is open with high priority. The customer wrote: \
             I reset my password yesterday. Related article: Unlocking a locked account [kb:KB-3]. [ticket:T-1001]"
        );
    }

    #[tokio::test]
    async fn support_summary_without_an_article_leaves_that_sentence_out() {
        let (_, answer) = run(
            "support_ticket_summary",
            "t-1001?",
            &["ticket_read", "kb_search"],
            &[
                ("ticket_read", json!({ "ticket": ticket() })),
                ("kb_search", json!({ "articles": [] })),
            ],
        )
        .await;
        assert!(
            answer.starts_with("Ticket T-1001 \"Cannot log in"),
            "{answer}"
        );
        assert!(!answer.contains("Related article"), "{answer}");
        assert!(answer.ends_with("[ticket:T-1001]"));
    }

    #[tokio::test]
    async fn support_summary_of_a_missing_ticket_says_so() {
        let (calls, answer) = run(
            "support_ticket_summary",
            "Summarise T-9999",
            &["ticket_read", "kb_search"],
            &[(
                "ticket_read",
                json!({ "error": "ticket T-9999 was not found" }),
            )],
        )
        .await;
        assert_eq!(calls.len(), 1);
        assert_eq!(answer, "I could not find ticket T-9999.");
    }

    #[tokio::test]
    async fn support_summary_without_an_id_searches_the_kb() {
        let (calls, answer) = run(
            "support_ticket_summary",
            "my account is locked",
            &["ticket_read", "kb_search"],
            &[("kb_search", kb())],
        )
        .await;
        assert_eq!(
            calls,
            [(
                "kb_search".into(),
                json!({ "query": "my account is locked" })
            )]
        );
        assert!(answer.contains("[kb:KB-3]"), "{answer}");
    }

    #[tokio::test]
    async fn faq_answers_from_the_top_article_and_cites_each_article_used() {
        let (calls, answer) = run(
            "faq",
            "How do I unlock my account?",
            &["kb_search"],
            &[("kb_search", kb())],
        )
        .await;
        assert_eq!(
            calls,
            [(
                "kb_search".into(),
                json!({ "query": "How do I unlock my account?", "limit": 3 })
            )]
        );
        assert_eq!(
            answer,
            "Unlocking a locked account: Accounts unlock automatically after 30 minutes. [kb:KB-3] See also: \
             Resetting your password [kb:KB-7]."
        );
    }

    #[tokio::test]
    async fn faq_without_articles_says_it_found_none() {
        let (_, answer) = run(
            "faq",
            "What is the meaning of life?",
            &["kb_search"],
            &[("kb_search", json!([]))],
        )
        .await;
        assert_eq!(answer, "I found no knowledge base article about that.");
    }

    #[tokio::test]
    async fn faq_with_retrieval_down_says_so_without_citations() {
        let (_, answer) = run(
            "faq",
            "How do I unlock?",
            &["kb_search"],
            &[("kb_search", json!({ "error": "kb unavailable" }))],
        )
        .await;
        assert!(
            answer.starts_with("Knowledge base retrieval is unavailable"),
            "{answer}"
        );
        assert!(!answer.contains("[kb:"));
    }

    #[tokio::test]
    async fn ticket_update_reads_then_proposes_the_parsed_changes() {
        let (calls, answer) = run(
            "ticket_update",
            "Please close T-1001, priority urgent. Comment: Customer confirmed the fix",
            &["ticket_read", "ticket_update"],
            &[
                ("ticket_read", ticket()),
                (
                    "ticket_update",
                    json!({ "approval_id": "apr_1", "status": "pending" }),
                ),
            ],
        )
        .await;
        assert_eq!(
            calls[0],
            ("ticket_read".into(), json!({ "ticket_id": "T-1001" }))
        );
        assert_eq!(
            calls[1],
            (
                "ticket_update".into(),
                json!({ "ticket_id": "T-1001", "status": "closed", "priority": "urgent",
                        "comment": "Customer confirmed the fix" })
            )
        );
        assert_eq!(
            answer,
            "I proposed this change to ticket T-1001: status to closed (now open), priority to urgent \
             (now high), add the comment \"Customer confirmed the fix\". It is not applied until a human \
             approves it. [ticket:T-1001]"
        );
    }

    #[tokio::test]
    async fn ticket_update_with_nothing_to_change_asks_what_to_change() {
        let (calls, answer) = run(
            "ticket_update",
            "Please have a look at T-1001",
            &["ticket_read", "ticket_update"],
            &[("ticket_read", ticket())],
        )
        .await;
        assert_eq!(calls.len(), 1, "only the read");
        assert!(
            answer.starts_with("What should I change on ticket T-1001?"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn ticket_update_of_a_missing_ticket_changes_nothing() {
        let (calls, answer) = run(
            "ticket_update",
            "reopen T-4040",
            &["ticket_read", "ticket_update"],
            &[("ticket_read", json!({ "error": "not found" }))],
        )
        .await;
        assert_eq!(calls.len(), 1);
        assert_eq!(
            answer,
            "I could not find ticket T-4040, so nothing was changed."
        );
    }

    #[test]
    fn change_requests_are_parsed_from_plain_words() {
        for (input, status, priority, comment) in [
            ("resolve T-1", Some("resolved"), None, None),
            (
                "reopen T-1 and make it LOW",
                Some("open"),
                Some("low"),
                None,
            ),
            ("set T-1 pending", Some("pending"), None, None),
            (
                "T-1 comment: 'Closed by the customer, urgent'",
                None,
                None,
                Some("Closed by the customer, urgent"),
            ),
        ] {
            assert_eq!(
                Changes::parse(input),
                Changes {
                    status,
                    priority,
                    comment: comment.map(String::from)
                },
                "{input}"
            );
        }
    }

    #[tokio::test]
    async fn invoice_approval_reads_then_proposes_paying_the_exact_amount() {
        let invoice = json!({ "id": "INV-2001", "vendor": "Acme Cloud", "amount_usd": 12500.5, "status": "open" });
        let (calls, answer) = run(
            "invoice_approval",
            "Pay INV-2001",
            &["invoice_read", "invoice_pay"],
            &[
                ("invoice_read", invoice),
                ("invoice_pay", json!({ "approval_id": "apr_2" })),
            ],
        )
        .await;
        assert_eq!(
            calls,
            [
                ("invoice_read".into(), json!({ "invoice_id": "INV-2001" })),
                (
                    "invoice_pay".into(),
                    json!({ "invoice_id": "INV-2001", "amount_usd": 12500.5 })
                ),
            ]
        );
        assert_eq!(
            answer,
            "I proposed paying invoice INV-2001 to Acme Cloud for 12500.50 USD. The payment executes only after \
             approval. [invoice:INV-2001]"
        );
    }

    #[tokio::test]
    async fn invoice_errors_end_with_an_answer_that_says_so() {
        let (_, answer) = run(
            "invoice_approval",
            "pay inv-7",
            &["invoice_read", "invoice_pay"],
            &[(
                "invoice_read",
                json!({ "error": "invoice INV-7 was not found" }),
            )],
        )
        .await;
        assert_eq!(
            answer,
            "I could not read invoice INV-7: invoice INV-7 was not found. No payment was proposed."
        );

        let (calls, answer) = run(
            "invoice_approval",
            "pay INV-2001",
            &["invoice_read", "invoice_pay"],
            &[
                ("invoice_read", json!({ "amount_usd": 10 })),
                ("invoice_pay", json!({ "error": "approvals are paused" })),
            ],
        )
        .await;
        assert_eq!(calls.len(), 2);
        assert_eq!(
            answer,
            "The payment of invoice INV-2001 could not be proposed: approvals are paused."
        );
    }

    #[tokio::test]
    async fn unknown_workflows_get_a_description_of_what_it_can_do() {
        let (calls, answer) = run("weather", "Will it rain?", &[], &[]).await;
        assert!(calls.is_empty());
        assert!(
            answer.starts_with("I am the scripted demo model (scripted-v1)."),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn tools_that_are_not_offered_are_never_called() {
        let (calls, answer) = run(
            "support_ticket_summary",
            "Summarise T-1001",
            &["kb_search"],
            &[],
        )
        .await;
        assert!(calls.is_empty());
        assert_eq!(
            answer,
            "I cannot read tickets in this workflow, so I cannot summarise T-1001."
        );
        let (calls, answer) = run("faq", "help", &[], &[]).await;
        assert!(calls.is_empty());
        assert!(answer.starts_with("Knowledge base retrieval is unavailable"));
    }

    #[tokio::test]
    async fn answers_stream_in_word_chunks_with_estimated_usage_and_repeat_exactly() {
        let req = ChatRequest::new("other", vec![ChatMessage::user("hello")], 100);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let first = Scripted::new().chat(&req, Some(&tx)).await.expect("answer");
        let chunks: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(chunks.concat(), first.content);
        assert_eq!(chunks[..3], ["I", " am", " the"]);
        assert_eq!(
            first.usage,
            Usage {
                prompt_tokens: 2,
                completion_tokens: super::super::estimate_tokens(&first.content)
            }
        );
        assert_eq!(first.model, "scripted-v1");
        assert_eq!(
            Scripted::new().chat(&req, None).await.expect("answer"),
            first
        );
    }

    #[tokio::test]
    async fn tool_call_ids_count_the_calls_of_the_conversation() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "ticket_read".into(),
            arguments: json!({ "ticket_id": "T-1" }),
        };
        let mut req = ChatRequest::new(
            "support_ticket_summary",
            vec![
                ChatMessage::user("T-1"),
                ChatMessage::assistant("", vec![call.clone()]),
                ChatMessage::tool(&call, ticket().to_string()),
            ],
            100,
        );
        req.tools = tools(&["ticket_read", "kb_search"]);
        let resp = Scripted::new().chat(&req, None).await.expect("step");
        assert_eq!(resp.tool_calls[0].id, "call_2");
        assert!(resp.usage.completion_tokens > 0);
    }

    #[test]
    fn first_sentences_end_at_punctuation_or_line_breaks() {
        assert_eq!(first_sentence("Hi there. More."), Some("Hi there.".into()));
        assert_eq!(
            first_sentence("Version 2.1 broke it! Help"),
            Some("Version 2.1 broke it!".into())
        );
        assert_eq!(
            first_sentence("line one\nline two"),
            Some("line one".into())
        );
        assert_eq!(first_sentence("  "), None);
    }

    #[tokio::test]
    async fn the_uncited_variant_gives_the_same_answers_without_citations() {
        let offered = ["ticket_read", "kb_search"];
        let results = [("ticket_read", ticket()), ("kb_search", kb())];
        let (calls, cited) = run(
            "support_ticket_summary",
            "Summarise T-1001",
            &offered,
            &results,
        )
        .await;
        let uncited_model = Scripted::with_variant(ScriptedVariant::Uncited);
        let (same_calls, answer) = run_with(
            uncited_model,
            "support_ticket_summary",
            "Summarise T-1001",
            &offered,
            &results,
        )
        .await;
        assert_eq!(calls, same_calls, "the variant follows the same script");
        assert!(
            cited.contains("[kb:KB-3]") && cited.contains("[ticket:T-1001]"),
            "{cited}"
        );
        assert!(!answer.contains('['), "no citation is left: {answer}");
        assert_eq!(
            answer,
            cited
                .replace(" [kb:KB-3]", "")
                .replace(" [ticket:T-1001]", ""),
            "only the citations (and the space before each) are gone"
        );
        assert_eq!(uncited_model.model(), "scripted-v1-uncited");
        let (_, faq) = run_with(
            uncited_model,
            "faq",
            "locked account",
            &["kb_search"],
            &[("kb_search", kb())],
        )
        .await;
        assert!(!faq.is_empty() && !faq.contains("[kb:"), "{faq}");
    }
}
