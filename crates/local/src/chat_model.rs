//! A loaded chat model: llama.cpp weights, the model's own chat template, and the engine
//! thread that runs its requests (see [`crate::engine`]). Cheap to share (`Arc`); any
//! number of callers may generate at once — the engine batches them.

use std::time::{Duration, Instant};

use crate::chat_template::ChatTemplate;
use crate::engine::{Engine, EngineOptions, Event, FinishReason, Sampling, Timings};
use crate::error::{LocalError, Result};
use crate::manifest::ModelSpec;
use crate::prompt;
use conductor_providers::{ChatMessage, ResponseFormat, TokenLogprob, ToolChoice, ToolSpec};
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedReceiver;

/// Most alternatives per token `logprobs` may ask for (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// Sampling and length controls for one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    /// Most tokens to generate (must be ≥ 1).
    pub max_tokens: usize,
    /// 0 means greedy decoding.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
    /// Generation ends before any of these strings; they are not part of the output.
    pub stop: Vec<String>,
    /// OpenAI's penalties, in [-2, 2]: on how often / whether a token already appeared.
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// Token id → bias in [-100, 100] added to its logit.
    pub logit_bias: Vec<(u32, f32)>,
    /// Return each token's log-probability with this many alternatives (0..=20).
    pub logprobs: Option<usize>,
    /// Constrain the output to JSON (any object, or matching a schema).
    pub response_format: Option<ResponseFormat>,
    /// Functions the model may call, offered through its chat template.
    pub tools: Vec<ToolSpec>,
    /// `None` and `Auto`: the model decides; `Required` and `Function` constrain the output
    /// to one call (a grammar built from the tools' schemas); `ToolChoice::None` hides the tools.
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: stop after the first call.
    pub parallel_tool_calls: Option<bool>,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: None,
            seed: 299_792_458,
            stop: Vec::new(),
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            logit_bias: Vec::new(),
            logprobs: None,
            response_format: None,
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
        }
    }
}

impl GenParams {
    /// The tools the model is shown (none when `tool_choice` is "none").
    pub fn offered_tools(&self) -> &[ToolSpec] {
        if self.tool_choice == Some(ToolChoice::None) {
            &[]
        } else {
            &self.tools
        }
    }

    /// The JSON Schema of a forced call: `{"name": <one tool>, "arguments": <its schema>}`.
    fn forced_call_schema(&self) -> Result<Option<serde_json::Value>> {
        let only = match &self.tool_choice {
            Some(ToolChoice::Required) => None,
            Some(ToolChoice::Function(name)) => Some(name.as_str()),
            _ => return Ok(None),
        };
        if self.tools.is_empty() {
            return Err(LocalError::InvalidParams("tool_choice requires a tool call but `tools` is empty".into()));
        }
        let options: Vec<serde_json::Value> = self
            .tools
            .iter()
            .filter(|t| only.is_none_or(|n| n == t.name))
            .map(|t| {
                serde_json::json!({
                    "type": "object",
                    "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                    "required": ["name", "arguments"],
                    "additionalProperties": false,
                })
            })
            .collect();
        if options.is_empty() {
            return Err(LocalError::InvalidParams(format!(
                "tool_choice names `{}`, which is not among `tools`",
                only.unwrap_or_default()
            )));
        }
        Ok(Some(serde_json::json!({"anyOf": options})))
    }
}

/// The client's stop sequences, and the end of a call when only one call is allowed (the
/// tool-call parser completes a call left open at a stop).
fn stop_sequences(p: &GenParams) -> Vec<String> {
    let mut stop = p.stop.clone();
    if p.parallel_tool_calls == Some(false) && !p.offered_tools().is_empty() {
        stop.push("</tool_call>".into());
    }
    stop
}

/// The result of one generation.
#[derive(Debug, Clone)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: FinishReason,
    pub timings: Timings,
    /// One entry per generated token when `logprobs` was asked for.
    pub logprobs: Vec<TokenLogprob>,
}

/// A generation in progress: its events, in order. Dropping it cancels the generation.
pub struct Running {
    rx: UnboundedReceiver<Event>,
    pub prompt_tokens: usize,
}

impl Running {
    /// The next event; `None` only if the engine stopped without finishing (reported by
    /// the caller as an error).
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// [`Running::next`] for threads outside an async runtime.
    pub fn next_blocking(&mut self) -> Option<Event> {
        self.rx.blocking_recv()
    }
}

/// A chat model ready to generate.
pub struct ChatModel {
    spec: ModelSpec,
    model: &'static LlamaModel,
    template: ChatTemplate,
    engine: Engine,
    load_time: Duration,
}

impl ChatModel {
    /// Loads the GGUF file named by `spec` and starts its engine.
    pub fn load(spec: &ModelSpec, options: EngineOptions) -> Result<Self> {
        let start = Instant::now();
        let model = crate::load::load(spec)?;
        let source = model.chat_template(None).ok().and_then(|t| t.to_string().ok());
        let template = ChatTemplate::new(source)
            .map_err(|e| LocalError::BadModelFile { path: spec.file.clone(), reason: e.to_string() })?;
        let engine = Engine::start(model, spec.context_length, options, &spec.id)?;
        Ok(Self { spec: spec.clone(), model, template, engine, load_time: start.elapsed() })
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
    /// The context window served, in tokens.
    pub fn context_length(&self) -> usize {
        self.spec.context_length
    }
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
    /// Requests running and waiting in this model's engine.
    pub fn load_state(&self) -> (usize, usize) {
        self.engine.load()
    }

    /// The exact prompt text the model sees for `messages`.
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String> {
        if messages.is_empty() {
            return Err(LocalError::InvalidParams("messages must not be empty".into()));
        }
        Ok(self.template.render(messages, &[])?)
    }

    /// Token ids of `text`, control-token spellings recognised (`decode(encode(s)) == s`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(prompt::tokenize(self.model, text, true).into_iter().map(|t| t.0 as u32).collect())
    }

    /// Text of token ids (control tokens spelled out).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let n = self.model.n_vocab().max(0) as u32;
        if let Some(bad) = ids.iter().find(|i| **i >= n) {
            return Err(LocalError::InvalidParams(format!("token id {bad} is outside the vocabulary ({n} tokens)")));
        }
        if ids.is_empty() {
            return Ok(String::new());
        }
        let toks: Vec<LlamaToken> = ids.iter().map(|i| LlamaToken(*i as i32)).collect();
        Ok(String::from_utf8_lossy(&self.model.vocab().detokenize(&toks, false, true)).into_owned())
    }

    /// The prompt tokens for `messages`: the chat template's control tokens, and message
    /// content as plain text (it cannot forge a turn).
    pub fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        Ok(prompt::encode(self.model, &self.template, messages, &[])?.into_iter().map(|t| t.0 as u32).collect())
    }

    /// How many tokens `messages` take once rendered with the chat template.
    pub fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize> {
        Ok(prompt::encode(self.model, &self.template, messages, &[])?.len())
    }

    fn sampling(&self, p: &GenParams, prompt_len: usize) -> Result<Sampling> {
        let bad = |m: String| Err(LocalError::InvalidParams(m));
        if p.max_tokens == 0 {
            return bad("max_tokens must be at least 1".into());
        }
        if !(p.temperature.is_finite() && (0.0..=2.0).contains(&p.temperature)) {
            return bad(format!("temperature must be between 0 and 2, got {}", p.temperature));
        }
        if let Some(tp) = p.top_p {
            if !(tp.is_finite() && tp > 0.0 && tp <= 1.0) {
                return bad(format!("top_p must be in (0, 1], got {tp}"));
            }
        }
        for (name, v) in [("frequency_penalty", p.frequency_penalty), ("presence_penalty", p.presence_penalty)] {
            if !(v.is_finite() && (-2.0..=2.0).contains(&v)) {
                return bad(format!("{name} must be between -2 and 2, got {v}"));
            }
        }
        let n_vocab = self.model.n_vocab().max(0) as u32;
        for &(t, b) in &p.logit_bias {
            if t >= n_vocab {
                return bad(format!("logit_bias: token id {t} is outside the vocabulary ({n_vocab} tokens)"));
            }
            if !(b.is_finite() && (-100.0..=100.0).contains(&b)) {
                return bad(format!("logit_bias: bias {b} for token {t} must be between -100 and 100"));
            }
        }
        if p.logprobs.is_some_and(|k| k > MAX_TOP_LOGPROBS) {
            return bad(format!("top_logprobs must be at most {MAX_TOP_LOGPROBS}"));
        }
        let ctx = self.context_length();
        if prompt_len >= ctx {
            return Err(LocalError::PromptTooLong { prompt_tokens: prompt_len, context_length: ctx });
        }
        let forced = p.forced_call_schema()?;
        if forced.is_some() && p.response_format.is_some() {
            return bad("response_format cannot be combined with a tool_choice that forces a call".into());
        }
        let grammar = match &p.response_format {
            None => match forced {
                None => None,
                Some(schema) => Some(llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
                    LocalError::InvalidParams(format!(
                        "the tools' parameter schemas cannot be expressed as a grammar for local models ({e})"
                    ))
                })?),
            },
            Some(ResponseFormat::JsonObject) => Some(crate::engine::JSON_OBJECT_GBNF.to_string()),
            Some(ResponseFormat::JsonSchema(schema)) => {
                Some(llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
                    LocalError::InvalidParams(format!(
                        "response_format.json_schema cannot be expressed as a grammar for local models ({e})"
                    ))
                })?)
            }
        };
        Ok(Sampling {
            // Never run past the context window: that ends the generation as `length`.
            max_tokens: p.max_tokens.min(ctx - prompt_len),
            temperature: p.temperature as f32,
            top_p: p.top_p.map(|x| x as f32),
            seed: p.seed,
            stop: stop_sequences(p),
            frequency_penalty: p.frequency_penalty,
            presence_penalty: p.presence_penalty,
            logit_bias: p.logit_bias.clone(),
            logprobs: p.logprobs,
            grammar,
        })
    }

    /// Starts generating the assistant's reply; returns at once. A full engine queue is
    /// [`LocalError::Busy`].
    pub fn start(&self, messages: &[ChatMessage], params: &GenParams) -> Result<Running> {
        let prompt = prompt::encode(self.model, &self.template, messages, params.offered_tools())?;
        let sampling = self.sampling(params, prompt.len())?;
        let prompt_tokens = prompt.len();
        let rx = self.engine.submit(prompt, sampling)?;
        Ok(Running { rx, prompt_tokens })
    }

    /// Generates the assistant's reply, blocking. `on_token` receives each piece of text as
    /// soon as it is final; returning `false` cancels the generation.
    pub fn generate(
        &self,
        messages: &[ChatMessage],
        params: &GenParams,
        on_token: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let started = Instant::now();
        let mut run = self.start(messages, params)?;
        let mut text = String::new();
        let mut logprobs = Vec::new();
        let mut completion = 0;
        loop {
            match run.next_blocking() {
                Some(Event::Piece { text: piece, tokens, logprobs: lp }) => {
                    text.push_str(&piece);
                    completion += tokens;
                    logprobs.extend(lp);
                    if !on_token(&piece) {
                        // Dropping `run` tells the engine; it frees the sequence at its next step.
                        return Ok(Generation {
                            text,
                            prompt_tokens: run.prompt_tokens,
                            completion_tokens: completion,
                            finish_reason: FinishReason::Cancelled,
                            timings: Timings { decode: started.elapsed(), ..Default::default() },
                            logprobs,
                        });
                    }
                }
                Some(Event::Done { finish_reason, prompt_tokens, completion_tokens, timings }) => {
                    return Ok(Generation { text, prompt_tokens, completion_tokens, finish_reason, timings, logprobs });
                }
                Some(Event::Failed(e)) => return Err(e),
                None => return Err(LocalError::Other(anyhow::anyhow!("the model's engine stopped mid-generation"))),
            }
        }
    }
}
