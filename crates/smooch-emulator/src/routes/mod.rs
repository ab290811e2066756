//! The HTTP surface: the Smooch API under `/v1` and `/v1.1`, Sunshine
//! Conversations v2 under `/v2` (same store), the admin endpoints under
//! `/_emulator`, and the version's error body on every error.

mod apps;
mod integrations;
mod keys;
mod v2;
mod webhooks;

use super::error::{ensure_error_body, unknown_path};
use super::state::EmulatorState;
use super::{admin, faults, requests};
use axum::Json;
use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use serde_json::Value;

/// The whole emulator as an axum router.
pub fn router(state: EmulatorState) -> Router {
    // Counting is outside fault injection so that faulted answers count too.
    let api = Router::new()
        .nest("/v1", api_routes())
        .nest("/v1.1", api_routes())
        .nest("/v2", v2::routes())
        .layer(from_fn_with_state(state.clone(), faults::inject))
        .layer(from_fn_with_state(state.clone(), requests::count));
    Router::new()
        .merge(api)
        .nest("/_emulator", admin::routes())
        .fallback(unknown_path)
        .layer(from_fn(ensure_error_body))
        .with_state(state)
}

/// The API below a version prefix. The app-level resources are served both
/// under `/apps/{appId}` and, for app-scoped tokens, without it.
fn api_routes() -> Router<EmulatorState> {
    Router::new()
        .route("/apps", get(apps::list).post(apps::create))
        .route(
            "/apps/{appId}",
            get(apps::get).put(apps::update).delete(apps::delete),
        )
        .merge(app_resources("/apps/{appId}"))
        .merge(app_resources(""))
}

fn app_resources(prefix: &str) -> Router<EmulatorState> {
    Router::new()
        .route(
            &format!("{prefix}/keys"),
            get(keys::list).post(keys::create),
        )
        .route(
            &format!("{prefix}/keys/{{keyId}}"),
            get(keys::get).delete(keys::delete),
        )
        .route(&format!("{prefix}/keys/{{keyId}}/jwt"), get(keys::jwt))
        .route(
            &format!("{prefix}/integrations"),
            get(integrations::list).post(integrations::create),
        )
        .route(
            &format!("{prefix}/integrations/{{integrationId}}"),
            get(integrations::get).delete(integrations::delete),
        )
        .route(
            &format!("{prefix}/webhooks"),
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            &format!("{prefix}/webhooks/{{webhookId}}"),
            get(webhooks::get)
                .put(webhooks::update)
                .delete(webhooks::delete),
        )
}

/// The `{}` that deletes answer with.
fn empty_object() -> Json<Value> {
    Json(Value::Object(Default::default()))
}

/// Decoded query parameters in order (repeated names kept).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}
