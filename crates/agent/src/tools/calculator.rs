//! `calculator`: arithmetic on floating-point numbers, evaluated by `exmex` (operators
//! `+ - * / ^`, parentheses, functions such as `sqrt`, `log`, `sin`, `abs`, constants
//! `PI` and `E`). Small models get sums wrong; this tool does not.

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::{parse_args, Tool, ToolContext, ToolError};

/// The `calculator` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calculator;

#[derive(serde::Deserialize)]
struct Args {
    expression: String,
}

/// The value of `expression`, written as a person would: whole numbers without `.0`.
pub fn evaluate(expression: &str) -> Result<String, ToolError> {
    let value: f64 = exmex::eval_str(expression).map_err(|e| {
        ToolError::BadArguments(format!(
            "cannot evaluate `{expression}`: {}; write plain arithmetic such as `(3 + 4) * 2 ^ 10 / sqrt(2)`",
            e.msg()
        ))
    })?;
    if !value.is_finite() {
        return Err(ToolError::BadArguments(format!(
            "`{expression}` has no finite value (it is {value}); check for a division by zero"
        )));
    }
    // Integers up to 2^53 are exact in f64: print them without a fraction.
    if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 {
        return Ok(format!("{}", value as i64));
    }
    Ok(format!("{value}"))
}

impl Tool for Calculator {
    fn name(&self) -> &str {
        "calculator"
    }

    fn description(&self) -> &str {
        "Evaluate an arithmetic expression exactly as written and return the number. \
         Supports + - * / ^ (power), parentheses, sqrt, log (natural), exp, sin, cos, tan, abs, PI and E."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            // No concrete example here: small models copied it verbatim instead of the
            // problem's numbers (measured on GSM8K).
            "properties": {"expression": {"type": "string", "description": "The arithmetic to evaluate, built from the numbers of the problem at hand."}},
            "required": ["expression"],
            "additionalProperties": false
        })
    }

    fn call(&self, args: Value, _ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
        Box::pin(async move {
            let Args { expression } = parse_args(args)?;
            evaluate(&expression)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_arithmetic() {
        assert_eq!(evaluate("(17 * 23) / 4 + 2^10").unwrap(), "1121.75");
        assert_eq!(evaluate("7*6").unwrap(), "42");
        assert_eq!(evaluate("-3 + 1").unwrap(), "-2");
        assert_eq!(evaluate("sqrt(16) + abs(-1)").unwrap(), "5");
        assert!(evaluate("2 * PI").unwrap().starts_with("6.283185"));
    }

    #[test]
    fn nonsense_is_bad_arguments_with_the_reason() {
        let err = evaluate("2 +* 3 )").unwrap_err();
        assert!(matches!(&err, ToolError::BadArguments(m) if m.starts_with("cannot evaluate `2 +* 3 )`")), "{err:?}");
        assert!(matches!(evaluate("x + 1"), Err(ToolError::BadArguments(_))));
        let err = evaluate("1/0").unwrap_err();
        assert!(err.to_string().contains("division by zero"), "{err}");
    }
}
