//! The local Smooch API server.
//!
//! An axum server that answers the App Maker API (apps, secret keys,
//! integrations, webhooks) the way `shared/reference/messaging-inside-api.md`
//! and `smooch-api-facts.md` describe it, under `/v1` and `/v1.1`, with
//! Smooch's auth rules and error bodies. Extras for tests: an optional state
//! file, injected faults, request counters (`/_emulator/...`). See
//! `docs/emulator.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), smooch_emulator::EmulatorError> {
//! use smooch_emulator::{EmulatorConfig, spawn};
//! let emulator = spawn(EmulatorConfig::default()).await?;
//! let url = emulator.base_url(); // http://127.0.0.1:<port>
//! let token = emulator.app_maker_token();
//! # let _ = (url, token);
//! emulator.shutdown().await
//! # }
//! ```

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
