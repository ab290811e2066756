//! `/apps/{appId}/keys`: an app's secret keys, app maker only.

use super::empty_object;
use crate::auth::{AppTarget, MakerTarget};
use crate::body::{Fields, JsonObject};
use crate::error::ApiError;
use crate::ids;
use crate::state::EmulatorState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use smooch::jwt::{self, Claims};
use smooch::models::{JwtEnvelope, KeyEnvelope, KeyListEnvelope, SecretKey};

pub async fn create(
    MakerTarget(target): MakerTarget,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<KeyEnvelope>), ApiError> {
    let key = SecretKey {
        id: ids::key_id(),
        secret: ids::secret().into(),
        name: Fields::new(&body).required_str("name")?,
    };
    state
        .mutate(|store| store.add_key(&target.app_id, key.clone()))
        .await?;
    Ok((StatusCode::CREATED, Json(KeyEnvelope { key })))
}

pub async fn list(
    MakerTarget(target): MakerTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<KeyListEnvelope>, ApiError> {
    let keys = state
        .read(|store| store.app(&target.app_id).map(|record| record.keys.clone()))
        .await?;
    Ok(Json(KeyListEnvelope { keys }))
}

/// The key named by the path's `{keyId}`.
async fn find(target: &AppTarget, state: &EmulatorState) -> Result<SecretKey, ApiError> {
    let key_id = target.param("keyId")?;
    state
        .read(|store| store.app(&target.app_id)?.key(key_id).cloned())
        .await
}

pub async fn get(
    MakerTarget(target): MakerTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<KeyEnvelope>, ApiError> {
    let key = find(&target, &state).await?;
    Ok(Json(KeyEnvelope { key }))
}

pub async fn delete(
    MakerTarget(target): MakerTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let key_id = target.param("keyId")?;
    state
        .mutate(|store| store.remove_key(&target.app_id, key_id))
        .await?;
    Ok(empty_object())
}

/// An app-scoped JWT (`kid` = the key id, HS256, `{"scope":"app"}`) signed
/// with the key's secret.
pub async fn jwt(
    MakerTarget(target): MakerTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<JwtEnvelope>, ApiError> {
    let key = find(&target, &state).await?;
    let jwt = jwt::sign(&key.id, &key.secret, &Claims::app())
        .map_err(|e| ApiError::internal(format!("Could not sign the JWT: {e}")))?;
    Ok(Json(JwtEnvelope { jwt }))
}
