//! What keeps one bad upstream from becoming the client's problem: a circuit breaker per
//! model, a bounded queue per model, and jittered exponential backoff between retries.
//! The loop that uses them (retry, then fall back along the router's ranking) is
//! [`crate::dispatch`].

pub mod backoff;
pub mod breaker;
pub mod queue;
pub mod rate;
