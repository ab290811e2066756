#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! [`spawn`] binds and serves in a task and hands back a [`RunningEmulator`];
//! [`router`] is the axum router alone, over an [`EmulatorState`] (for tower
//! tests, or to add a layer of your own, as the operator benchmarks do to
//! record every request). The behaviour follows
//! `shared/reference/messaging-inside-api.md` and `smooch-api-facts.md`;
//! `/v2` follows `shared/reference/sunshine-conversations-v2.md`.

mod admin;
mod auth;
mod body;
mod connection;
mod error;
mod faults;
mod ids;
mod persist;
mod requests;
mod routes;
mod server;
mod state;
mod store;

pub use faults::Faults;
pub use persist::{StateFileError, write_private_file};
pub use requests::RequestCounts;
pub use routes::router;
pub use server::{EmulatorConfig, EmulatorError, RunningEmulator, spawn};
pub use state::{DEFAULT_BODY_LIMIT, EmulatorState, MakerKeySource};
