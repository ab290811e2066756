//! `/_emulator/...`: health, request counters and fault settings. No auth:
//! the emulator is a local test tool and listens on loopback by default.

use super::body::{Fields, JsonObject};
use super::error::ApiError;
use super::faults::Faults;
use super::requests::RequestCounts;
use super::state::EmulatorState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/requests", get(requests).delete(reset_requests))
        .route("/faults", get(faults).put(set_faults))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn requests(State(state): State<EmulatorState>) -> Json<RequestCounts> {
    Json(state.request_counts())
}

/// Resets the counters and answers with the counts they had.
async fn reset_requests(State(state): State<EmulatorState>) -> Json<RequestCounts> {
    Json(state.with_request_counts(std::mem::take))
}

async fn faults(State(state): State<EmulatorState>) -> Json<Faults> {
    Json(state.faults())
}

/// Sets the fields given (`latencyMs`, `readLatencyMs`, `errorRate`,
/// `rateLimitRate`, `retryAfterSecs`) and answers with the new settings.
async fn set_faults(
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<Json<Faults>, ApiError> {
    let updated = state.faults().updated(&Fields::new(&body))?;
    state.set_faults(updated).map_err(ApiError::bad_request)?;
    Ok(Json(updated))
}
