//! The one prompt template every model gets (written down here so results are
//! reproducible and comparable across models).

use crate::tasks::{Check, Task};

/// Instruction for math word problems: reason, then a fixed final-answer line.
pub const MATH: &str = "Solve the following math problem. Think step by step, then give the final answer \
on the last line in the form \"#### <number>\".\n\nProblem: {question}";

/// Instruction for multiple-choice questions: reason, then a fixed final-answer line.
pub const CHOICE: &str = "Answer the following multiple-choice question. Think step by step, then give the \
letter of your answer on the last line in the form \"#### <letter>\".\n\nQuestion: {question}";

/// Instruction for code completion: the whole function in one fenced block.
pub const CODE: &str = "Complete the following Python function. Reply with the complete function, \
including its signature and any imports it needs, in a single ```python code block.\n\n```python\n{question}```";

/// Open-ended prompts (judged): the user's prompt as it is.
pub const OPEN: &str = "{question}";

/// The user message sent to every model for `task`.
pub fn render(task: &Task) -> String {
    let t = match task.check {
        Check::Number(_) => MATH,
        Check::Choice(_) => CHOICE,
        Check::Python { .. } => CODE,
        Check::Judge { .. } => OPEN,
    };
    t.replace("{question}", &task.question)
}

/// Generation length per task kind: room for worked reasoning or a whole function. (Until
/// 2026-11-29 worked reasoning got 320 tokens, which cut off a third of the 1.5B model's
/// GSM8K answers in `records/local.jsonl`.)
pub fn max_tokens(task: &Task) -> usize {
    match task.check {
        Check::Number(_) | Check::Choice(_) => 512,
        Check::Python { .. } => 384,
        Check::Judge { .. } => 512,
    }
}
