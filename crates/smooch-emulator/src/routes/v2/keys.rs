//! `/v2/apps/{appId}/keys`: v1's secret keys (`name` is `displayName`).

use super::display_name;
use crate::auth::V2Target;
use crate::body::{Fields, JsonObject};
use crate::error::ApiError;
use crate::ids;
use crate::routes::empty_object;
use crate::state::EmulatorState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use smooch::models::SecretKey;

/// The v2 view of a key, with its secret (the key model has it in every
/// answer; v1 shows it in every answer too).
fn view(key: &SecretKey) -> Value {
    json!({"id": key.id, "displayName": key.name, "secret": key.secret.expose()})
}

pub async fn create(
    target: V2Target,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name =
        display_name(Some(Fields::new(&body).required_str("displayName")?))?.unwrap_or_default();
    let key = SecretKey {
        id: ids::key_id(),
        secret: ids::secret().into(),
        name,
    };
    state
        .mutate(|store| store.add_key(&target.app_id, key.clone()))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "key": view(&key) }))))
}

pub async fn list(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let keys: Vec<Value> = state
        .read(|store| {
            store
                .app(&target.app_id)
                .map(|record| record.keys.iter().map(view).collect())
        })
        .await?;
    Ok(Json(json!({ "keys": keys })))
}

pub async fn get(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let key_id = target.param("keyId")?;
    let key = state
        .read(|store| store.app(&target.app_id)?.key(key_id).map(view))
        .await?;
    Ok(Json(json!({ "key": key })))
}

pub async fn delete(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let key_id = target.param("keyId")?;
    state
        .mutate(|store| store.remove_key(&target.app_id, key_id))
        .await?;
    Ok(empty_object())
}
