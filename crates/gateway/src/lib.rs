//! conductor-gateway: the OpenAI-compatible HTTP server. A request is authenticated
//! ([`keys`]), validated ([`request`]), routed ([`routing`]), paid for in advance
//! ([`budget`]), sent to models with retries and fallback ([`dispatch`],
//! [`reliability`]), checked when asked ([`verification`]), answered whole or streamed ([`routes`]) and written down
//! ([`ticket`], [`books`], [`metrics`]). [`server`] wires it together; [`config`] is
//! the one TOML file that drives it.
//!
//! Public: what the `conductor` binary uses — the config, `serve`, and the books'
//! reader for `conductor logs`. Everything else is internal.

pub mod books;
pub(crate) mod budget;
pub mod clock;
pub mod config;
pub(crate) mod dashboard;
pub(crate) mod dispatch;
pub(crate) mod error;
pub(crate) mod keys;
pub(crate) mod local;
pub(crate) mod metrics;
pub(crate) mod registry;
pub(crate) mod reliability;
pub(crate) mod request;
pub(crate) mod routes;
pub(crate) mod routing;
pub(crate) mod server;
pub(crate) mod state;
pub mod store;
pub(crate) mod telemetry;
pub(crate) mod ticket;
pub mod verification;

pub use config::Config;
pub use registry::remote_provider;
pub use server::{serve, shutdown_signal, DEFAULT_LOCAL_ROUTER};
