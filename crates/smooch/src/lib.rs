#![doc = include_str!("../README.md")]

pub mod client;
pub mod error;
pub mod jwt;
pub mod models;
pub mod scope;
pub mod sensitive;
mod v2;

pub use client::{ApiVersion, CallObserver, Credentials, SmoochClient, Transport, TransportConfig};
pub use error::SmoochError;
pub use sensitive::Sensitive;
