//! Renders a conversation with the model's own chat template (the Jinja template stored
//! in the GGUF as `tokenizer.chat_template`), falling back to plain ChatML when a file
//! has none. SmolLM2 and Qwen2.5 both use ChatML with a default system prompt that
//! their templates insert; rendering the real template keeps that exact.

use conductor_providers::ChatMessage;
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

    /// The prompt text for `messages`, ending with the assistant's turn opener.
    pub fn render(&self, messages: &[ChatMessage]) -> anyhow::Result<String> {
        let tmpl = self.env.get_template("chat")?;
        let turns: Vec<minijinja::Value> =
            messages.iter().map(|m| context! { role => m.role.as_str(), content => m.content.clone() }).collect();
        tmpl.render(context! {
            messages => minijinja::Value::from(turns),
            add_generation_prompt => true,
            tools => minijinja::Value::UNDEFINED,
        })
        .map_err(|e| anyhow::anyhow!("rendering chat template: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_renders_turns_and_generation_prompt() {
        let t = ChatTemplate::new(None).unwrap();
        let s = t.render(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")]).unwrap();
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
