//! Renders a conversation with the model's own chat template (the Jinja template stored
//! in the GGUF as `tokenizer.chat_template`), falling back to plain ChatML when a file
//! has none. SmolLM2 and Qwen2.5 both use ChatML with a default system prompt that
//! their templates insert; rendering the real template keeps that exact.

use conductor_providers::{ChatMessage, ToolSpec};
use minijinja::{context, Environment};

const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
}

impl ChatTemplate {
    /// Compile `source` (a Jinja chat template); `None` means ChatML.
    pub fn new(source: Option<String>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // HF templates may call raise_exception on unsupported inputs.
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        let src = source.unwrap_or_else(|| CHATML.to_string());
        env.add_template_owned("chat", src).map_err(|e| anyhow::anyhow!("chat template does not compile: {e}"))?;
        Ok(Self { env })
    }

    /// The prompt text for `messages`, ending with the assistant's turn opener; `tools`
    /// are offered the way the template describes them (Hugging Face's conventions: each
    /// tool in OpenAI's `{"type": "function", ...}` form, a call's arguments as an object).
    pub fn render(&self, messages: &[ChatMessage], tools: &[ToolSpec]) -> anyhow::Result<String> {
        let tmpl = self.env.get_template("chat")?;
        let turns: Vec<minijinja::Value> = messages.iter().map(turn).collect();
        let tools = if tools.is_empty() {
            minijinja::Value::UNDEFINED
        } else {
            minijinja::Value::from(minijinja::value::Serde(tools.iter().map(ToolSpec::to_openai).collect::<Vec<_>>()))
        };
        tmpl.render(context! {
            messages => minijinja::Value::from(turns),
            add_generation_prompt => true,
            tools => tools,
        })
        .map_err(|e| anyhow::anyhow!("rendering chat template: {e}"))
    }
}

/// One message as templates read it.
fn turn(m: &ChatMessage) -> minijinja::Value {
    let calls: Vec<serde_json::Value> = m
        .tool_calls
        .iter()
        .map(|c| {
            let args: serde_json::Value =
                serde_json::from_str(&c.arguments).unwrap_or_else(|_| serde_json::Value::String(c.arguments.clone()));
            serde_json::json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": args}})
        })
        .collect();
    let calls = if calls.is_empty() {
        minijinja::Value::UNDEFINED
    } else {
        minijinja::Value::from(minijinja::value::Serde(calls))
    };
    context! {
        role => m.role.as_str(),
        content => m.content.clone(),
        tool_calls => calls,
        tool_call_id => m.tool_call_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_renders_turns_and_generation_prompt() {
        let t = ChatTemplate::new(None).unwrap();
        let s = t.render(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")], &[]).unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn broken_template_is_a_clear_error() {
        let err = ChatTemplate::new(Some("{% for %}".into())).err().unwrap();
        assert!(err.to_string().contains("chat template"), "{err}");
    }
}
