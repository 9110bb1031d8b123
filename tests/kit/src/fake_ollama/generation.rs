//! What the fake "generates" for one request: a scripted [`Reply`] turned into the token
//! sequence a real model would produce — thinking first (when thinking is on), then the
//! answer, then each tool call — cut at the request's output limit the way Ollama cuts
//! it (`num_predict` natively, `max_tokens` on `/v1`; thinking tokens count too).

use serde_json::Value;

use super::{FakeToolCall, Reply, wire};

/// Tool calls are generated in pieces of this many characters of their JSON text.
pub(crate) const CALL_PIECE_CHARS: usize = 8;

/// How the request asked for thinking, after Ollama's defaults and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Think {
    /// Not sent (`null`): a model with the `thinking` capability thinks anyway.
    Default,
    On,
    Off,
}

impl Think {
    /// Ollama's `think` field: a boolean or one of the levels, as `api.ThinkValue`'s
    /// `UnmarshalJSON` in api/types.go accepts it.
    pub fn native(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(Self::Default),
            Value::Bool(true) => Ok(Self::On),
            Value::Bool(false) => Ok(Self::Off),
            Value::String(s) if ["high", "medium", "low", "max"].contains(&s.as_str()) => {
                Ok(Self::On)
            }
            Value::String(s) => Err(format!(
                "invalid think value: {s:?} (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"
            )),
            _ => Err(
                "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)"
                    .into(),
            ),
        }
    }

    /// The `/v1` request's `reasoning.effort` or `reasoning_effort`, mapped as
    /// `thinkFromReasoningEffort` in openai/openai.go maps it.
    pub fn openai(req: &Value) -> Result<Self, String> {
        let effort = req["reasoning"]["effort"]
            .as_str()
            .or_else(|| req["reasoning_effort"].as_str())
            .unwrap_or("");
        match effort {
            "" => Ok(Self::Default),
            "none" => Ok(Self::Off),
            "minimal" | "low" | "medium" | "high" | "max" | "xhigh" | "ultra" => Ok(Self::On),
            other => Err(format!(
                "invalid reasoning value: {other:?} (must be \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", \"ultra\", \"max\", or \"none\")"
            )),
        }
    }

    /// Whether a model thinks for this request; `Err` is the 400 Ollama answers when
    /// thinking is asked of a model without the capability (server/routes.go
    /// `ChatHandler`: `"%q does not support thinking"`, quoting the model as requested).
    pub fn resolve(self, model_thinks: bool, requested_model: &str) -> Result<bool, String> {
        match (self, model_thinks) {
            // A thinking model with `think` unset thinks (ChatHandler sets it to true).
            (Self::Default | Self::On, true) => Ok(true),
            (Self::Off, _) | (Self::Default, false) => Ok(false),
            (Self::On, false) => Err(format!("{requested_model:?} does not support thinking")),
        }
    }
}

/// The output limit of a request: only a positive number limits (Ollama's default
/// `num_predict` of -1 means "until a stop condition").
pub(crate) fn limit(value: &Value) -> Option<u32> {
    value
        .as_i64()
        .filter(|n| *n > 0)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// One request's output, in the order it streams.
#[derive(Debug, Default)]
pub(crate) struct Generated {
    pub thinking: Vec<String>,
    pub content: Vec<String>,
    /// Tool calls generated in full. A call cut by the limit is not a call: its text so
    /// far ends the content, as Ollama's tool parser hands back what it buffered when the
    /// generation ends (server/routes.go `ChatHandler`, `toolParser.Content()`).
    pub calls: Vec<FakeToolCall>,
    /// Tokens generated: thinking, content and tool-call pieces.
    pub tokens: u32,
    /// The limit cut the reply short (`done_reason` / `finish_reason` `"length"`).
    pub truncated: bool,
}

impl Generated {
    pub fn done_reason(&self) -> &'static str {
        if self.truncated { "length" } else { "stop" }
    }

    pub fn thinking_text(&self) -> String {
        self.thinking.concat()
    }

    pub fn content_text(&self) -> String {
        self.content.concat()
    }

    /// `(prompt_eval_count, eval_count)`: the reply's scripted usage when it has one (and
    /// was not cut), else the estimate and the tokens generated.
    pub fn usage(&self, reply: &Reply, prompt_estimate: u32) -> (u32, u32) {
        match reply.usage {
            Some(u) if !self.truncated => (u.prompt_tokens, u.completion_tokens),
            Some(u) => (u.prompt_tokens, self.tokens),
            None => (prompt_estimate, self.tokens.max(1)),
        }
    }
}

/// Generates `reply`: thinking (when `think`), text in pieces (`chunk_chars`, or word
/// pieces), tool calls in [`CALL_PIECE_CHARS`] pieces; at most `limit` tokens.
pub(crate) fn generate(
    reply: &Reply,
    think: bool,
    limit: Option<u32>,
    chunk_chars: Option<usize>,
) -> Generated {
    let mut left = limit.map_or(usize::MAX, |n| n as usize);
    let mut used = 0usize;
    let mut out = Generated::default();
    // Takes as many of `pieces` as the limit leaves; `true` when some did not fit.
    let mut take = |pieces: Vec<String>| -> (Vec<String>, bool) {
        let n = pieces.len().min(left);
        left -= n;
        used += n;
        let cut = n < pieces.len();
        (pieces.into_iter().take(n).collect(), cut)
    };
    if think {
        (out.thinking, out.truncated) = take(wire::pieces(&reply.thinking, chunk_chars));
    }
    if !out.truncated {
        (out.content, out.truncated) = take(wire::pieces(&reply.content, chunk_chars));
    }
    for call in &reply.tool_calls {
        if out.truncated {
            break;
        }
        let (taken, cut) = take(wire::pieces(&call_text(call), Some(CALL_PIECE_CHARS)));
        if cut {
            out.truncated = true;
            if !taken.is_empty() {
                out.content.push(taken.concat());
            }
        } else {
            out.calls.push(call.clone());
        }
    }
    out.tokens = u32::try_from(used).unwrap_or(u32::MAX);
    out
}

/// The text a model writes for a tool call.
pub(crate) fn call_text(call: &FakeToolCall) -> String {
    serde_json::json!({ "name": call.name, "arguments": arguments_object(&call.arguments) })
        .to_string()
}

/// The arguments object (`{}` when the reply gave none).
pub(crate) fn arguments_object(arguments: &Value) -> Value {
    if arguments.is_null() {
        Value::Object(serde_json::Map::new())
    } else {
        arguments.clone()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reply() -> Reply {
        Reply::text("one two three")
            .with_thinking("hmm let me see")
            .and_tool_call("kb_search", json!({ "query": "vpn" }))
    }

    #[test]
    fn thinking_then_content_then_calls_without_a_limit() {
        let g = generate(&reply(), true, None, None);
        assert_eq!(g.thinking, ["hmm", " let", " me", " see"]);
        assert_eq!(g.content, ["one", " two", " three"]);
        assert_eq!(g.calls.len(), 1);
        assert!(!g.truncated);
        let call_pieces = call_text(&g.calls[0]).len().div_ceil(CALL_PIECE_CHARS) as u32;
        assert_eq!(g.tokens, 4 + 3 + call_pieces);
    }

    #[test]
    fn thinking_counts_toward_the_limit() {
        let g = generate(&reply(), true, Some(5), None);
        assert_eq!(g.thinking.len(), 4);
        assert_eq!(g.content, ["one"]);
        assert!(g.calls.is_empty());
        assert!(g.truncated);
        assert_eq!(g.tokens, 5);
        assert_eq!(g.done_reason(), "length");
    }

    #[test]
    fn a_call_cut_short_ends_the_content_as_text() {
        let g = generate(&reply(), false, Some(5), None);
        assert!(g.thinking.is_empty());
        assert!(g.calls.is_empty());
        assert_eq!(g.content.len(), 4);
        assert_eq!(g.content[3], "{\"arguments\":{\"q");
        assert_eq!(g.tokens, 5);
    }

    #[test]
    fn think_values_follow_ollama() {
        assert_eq!(Think::native(&json!(null)), Ok(Think::Default));
        assert_eq!(Think::native(&json!("low")), Ok(Think::On));
        assert!(Think::native(&json!("extreme")).is_err());
        assert_eq!(Think::Default.resolve(true, "q"), Ok(true));
        assert_eq!(Think::Default.resolve(false, "q"), Ok(false));
        assert_eq!(Think::Off.resolve(true, "q"), Ok(false));
        assert_eq!(
            Think::On.resolve(false, "llama3.2"),
            Err("\"llama3.2\" does not support thinking".into())
        );
        assert_eq!(
            Think::openai(&json!({ "reasoning_effort": "none" })),
            Ok(Think::Off)
        );
        assert!(Think::openai(&json!({ "reasoning": { "effort": "lots" } })).is_err());
    }
}
