//! The argument check a model's call must pass before a tool runs: the subset of JSON
//! Schema that tool parameters use — an object, its `required` properties, no others when
//! `additionalProperties` is false, and each present property's `type` (a name or a list
//! of names). Deeper keywords (`enum`, nested objects, formats) are the tool's to check.

use serde_json::{Map, Value};

/// Parse `text` as the arguments of a tool whose parameters are `schema`, or say in one
/// sentence what is wrong with it.
pub fn check(schema: &Value, text: &str) -> Result<Value, String> {
    // Models often send "" for a tool without arguments.
    let text = if text.trim().is_empty() { "{}" } else { text };
    let args: Value = serde_json::from_str(text).map_err(|e| format!("the arguments are not valid JSON ({e})"))?;
    let Some(object) = args.as_object() else {
        return Err(format!("the arguments must be a JSON object, not {}", type_name(&args)));
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if !object.contains_key(name) {
            return Err(format!("missing required argument `{name}`{}", expected(properties)));
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, value) in object {
        let Some(property) = properties.and_then(|p| p.get(name)) else {
            if closed {
                return Err(format!("unknown argument `{name}`{}", expected(properties)));
            }
            continue;
        };
        let allowed: Vec<&str> = match property.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        if !allowed.iter().any(|t| has_type(value, t)) {
            return Err(format!("argument `{name}` must be {}, not {}", allowed.join(" or "), type_name(value)));
        }
    }
    Ok(args)
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// " (the arguments are: a, b)" — so the model can fix the call in one go.
fn expected(properties: Option<&Map<String, Value>>) -> String {
    match properties {
        Some(p) if !p.is_empty() => {
            let mut names: Vec<&str> = p.keys().map(String::as_str).collect();
            names.sort_unstable();
            format!(" (the arguments are: {})", names.join(", "))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "n": {"type": "integer"}, "x": {"type": ["number", "null"]}},
            "required": ["path"],
            "additionalProperties": false
        })
    }

    #[test]
    fn accepts_matching_arguments() {
        assert_eq!(
            check(&schema(), r#"{"path": "a", "n": 2, "x": null}"#).unwrap(),
            json!({"path": "a", "n": 2, "x": null})
        );
        assert_eq!(check(&json!({"type": "object", "properties": {}}), "").unwrap(), json!({}));
    }

    #[test]
    fn names_what_is_wrong() {
        let s = schema();
        assert!(check(&s, "{path: 1}").unwrap_err().starts_with("the arguments are not valid JSON"));
        assert_eq!(check(&s, "[1]").unwrap_err(), "the arguments must be a JSON object, not array");
        assert_eq!(check(&s, "{}").unwrap_err(), "missing required argument `path` (the arguments are: n, path, x)");
        assert_eq!(
            check(&s, r#"{"path": "a", "mode": "w"}"#).unwrap_err(),
            "unknown argument `mode` (the arguments are: n, path, x)"
        );
        assert_eq!(check(&s, r#"{"path": 3}"#).unwrap_err(), "argument `path` must be string, not number");
        assert_eq!(check(&s, r#"{"path": "a", "n": 1.5}"#).unwrap_err(), "argument `n` must be integer, not number");
        assert_eq!(
            check(&s, r#"{"path": "a", "x": "1"}"#).unwrap_err(),
            "argument `x` must be number or null, not string"
        );
    }

    #[test]
    fn open_schemas_let_extra_arguments_through() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        assert!(check(&s, r#"{"a": "x", "b": 1}"#).is_ok());
    }
}
