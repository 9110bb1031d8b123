//! Tool argument contracts: compiling JSON Schemas once, turning validation failures into
//! messages that name the failing argument, converting TOML-declared schemas, and the
//! stable hash over all tool contracts.

use std::fmt::Write as _;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use super::ToolSpec;

/// At most this many violations are reported for one call.
const MAX_REPORTED: usize = 5;
/// Violation messages echo the offending value; keep them readable.
const MAX_MESSAGE_CHARS: usize = 300;

/// Compiles a schema, which must describe an object (tool arguments are always one).
pub(crate) fn compile(schema: &Value) -> Result<Validator, String> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err("must be a JSON Schema with \"type\": \"object\" at the top".into());
    }
    jsonschema::validator_for(schema).map_err(|e| format!("is not a valid JSON Schema: {e}"))
}

/// Checks `args`; the error lists each violation prefixed with the argument's path.
pub(crate) fn check(validator: &Validator, args: &Value) -> Result<(), String> {
    let mut errors = validator.iter_errors(args).peekable();
    if errors.peek().is_none() {
        return Ok(());
    }
    let all: Vec<String> = errors.map(|e| describe(&e)).collect();
    let mut message = all
        .iter()
        .take(MAX_REPORTED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if all.len() > MAX_REPORTED {
        let _ = write!(message, "; and {} more", all.len() - MAX_REPORTED);
    }
    Err(message)
}

/// `ticket_id: "1001" does not match "^T-\d{4,}$"`; violations of the whole object are
/// reported against `arguments`.
fn describe(err: &ValidationError<'_>) -> String {
    let path = err.instance_path.as_str().trim_start_matches('/');
    let at = if path.is_empty() {
        "arguments".to_string()
    } else {
        path.replace('/', ".")
    };
    let what = match &err.kind {
        ValidationErrorKind::MinProperties { limit } => {
            let got = err.instance.as_object().map_or(0, Map::len);
            format!("at least {limit} arguments are required, got {got}")
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!("unexpected argument(s): {}", unexpected.join(", "))
        }
        _ => err.to_string(),
    };
    format!("{at}: {}", truncate_chars(&what, MAX_MESSAGE_CHARS))
}

/// The first `max` characters of `s`, with an ellipsis if anything was cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A schema declared in TOML as a table (or as an inline JSON string), as JSON.
pub(crate) fn from_toml(value: &toml::Value) -> Result<Value, String> {
    match value {
        toml::Value::String(s) => {
            serde_json::from_str(s).map_err(|e| format!("is a string but not JSON: {e}"))
        }
        other => toml_to_json(other),
    }
}

fn toml_to_json(value: &toml::Value) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("contains {f}, which JSON cannot represent"))?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => {
            Value::Array(items.iter().map(toml_to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), toml_to_json(v)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
    })
}

/// JSON with object keys sorted at every level, whatever map order serde_json was built with.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// SHA-256 (hex) over every tool's name, canonical schema and side effect, sorted by name.
pub(crate) fn contract_hash<'a>(specs: impl IntoIterator<Item = &'a ToolSpec>) -> String {
    let mut specs: Vec<&ToolSpec> = specs.into_iter().collect();
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hasher = Sha256::new();
    for spec in specs {
        let mut schema = String::new();
        write_canonical(&spec.parameters, &mut schema);
        hasher.update(spec.name.as_bytes());
        hasher.update([0]);
        hasher.update(schema.as_bytes());
        hasher.update([0]);
        hasher.update(spec.side_effect.as_str().as_bytes());
        hasher.update([b'\n']);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ticket_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "ticket_id": {"type": "string", "pattern": "^T-\\d{4,}$"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["ticket_id"],
            "additionalProperties": false,
            "minProperties": 1
        })
    }

    fn violation(args: Value) -> String {
        let v = compile(&ticket_schema()).expect("valid schema");
        check(&v, &args).expect_err("should be invalid")
    }

    #[test]
    fn violations_name_the_argument_path() {
        let cases = [
            (
                json!({"ticket_id": "1001"}),
                "ticket_id: \"1001\" does not match",
            ),
            (json!({}), "arguments: \"ticket_id\" is a required property"),
            (
                json!({"ticket_id": "T-1001", "extra": 1}),
                "arguments: unexpected argument(s): extra",
            ),
            (
                json!({"ticket_id": "T-1001", "limit": 11}),
                "limit: 11 is greater than the maximum of 10",
            ),
            (
                json!({"ticket_id": "T-1001", "tags": ["a", 2]}),
                "tags.1: 2 is not of type \"string\"",
            ),
            (
                json!("T-1001"),
                "arguments: \"T-1001\" is not of type \"object\"",
            ),
        ];
        for (args, expected) in cases {
            let message = violation(args.clone());
            assert!(message.contains(expected), "{args}: {message}");
        }
        assert!(
            check(
                &compile(&ticket_schema()).expect("valid"),
                &json!({"ticket_id": "T-1001"})
            )
            .is_ok()
        );
    }

    #[test]
    fn long_values_are_truncated_in_messages() {
        let message = violation(json!({"ticket_id": "x".repeat(5_000)}));
        assert!(message.chars().count() < 400, "{message}");
    }

    #[test]
    fn schemas_must_be_valid_objects() {
        assert!(
            compile(&json!({"type": "string"}))
                .unwrap_err()
                .contains("\"type\": \"object\"")
        );
        assert!(
            compile(&json!({"type": "object", "properties": {"a": {"type": "strnig"}}}))
                .unwrap_err()
                .contains("not a valid JSON Schema")
        );
    }

    #[test]
    fn toml_schemas_convert_to_json() {
        let table: toml::Value = toml::from_str(
            r#"
            type = "object"
            required = ["order_id"]
            [properties.order_id]
            type = "string"
            maxLength = 64
            [properties.amount]
            type = "number"
            minimum = 0.5
            "#,
        )
        .expect("toml");
        let schema = from_toml(&table).expect("converts");
        assert_eq!(schema["properties"]["order_id"]["maxLength"], json!(64));
        assert_eq!(schema["properties"]["amount"]["minimum"], json!(0.5));
        let inline = toml::Value::String(r#"{"type": "object"}"#.into());
        assert_eq!(
            from_toml(&inline).expect("json string"),
            json!({"type": "object"})
        );
        assert!(from_toml(&toml::Value::String("{not json".into())).is_err());
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut out = String::new();
        write_canonical(&json!({"b": [{"y": 1, "x": "é"}], "a": null}), &mut out);
        assert_eq!(out, r#"{"a":null,"b":[{"x":"é","y":1}]}"#);
    }
}
