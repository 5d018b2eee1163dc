//! conductor-gateway: the OpenAI-compatible HTTP server. A request is authenticated
//! ([`keys`]), validated ([`request`]), routed ([`routing`]), paid for in advance
//! ([`budget`]), sent to models with retries and fallback ([`dispatch`],
//! [`reliability`]), answered whole or streamed ([`routes`]) and written down
//! ([`ticket`], [`books`], [`metrics`]). [`server`] wires it together; [`config`] is
//! the one TOML file that drives it.

pub mod books;
pub mod budget;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod registry;
pub mod reliability;
pub mod request;
pub mod routes;
pub mod routing;
pub mod server;
pub mod state;
pub mod ticket;

pub use config::Config;
pub use server::{serve, shutdown_signal};
