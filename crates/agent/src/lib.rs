//! conductor-agent: the agent runtime. A run ([`spec::RunSpec`]) is a goal, a tool set and
//! limits, reached by ReAct ([`react`]) or ReWOO ([`rewoo`]); every model call goes to a
//! conductor gateway ([`backend`]) with the step's role deciding the model or routing
//! policy, so cheap steps go to small models. [`runner`] drives runs one step at a time:
//! limits before each step, approval gates ([`approval`]) and the loop guard
//! ([`loop_guard`]) around each tool call, cancellation at any moment, and the step and
//! the whole state saved after each ([`store`]), so a run resumes after a crash. A run
//! that names its agent gets long-term memory ([`memory`]): facts embedded with MiniLM,
//! recalled by similarity.
//!
//! The tool layer ([`tools`]): JSON-Schema-checked arguments, a per-run workspace the file
//! tools cannot leave, a timeout and cancellation on every call.

pub mod approval;
pub mod backend;
pub mod loop_guard;
pub mod memory;
mod react;
mod rewoo;
pub mod run;
pub mod runner;
pub mod spec;
pub mod store;
pub mod tools;

pub use runner::Runner;
pub use spec::{Role, RoleModels, RunSpec, Strategy};
