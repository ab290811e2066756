//! `/v2/apps` and `/v2/apps/{appId}`. An app is v1's app: `name` is
//! `displayName`; the appToken is made but never shown here.

use super::{display_name, link_base, list_query, paged};
use crate::auth::{V2Account, V2Target};
use crate::body::{Fields, JsonObject};
use crate::error::ApiError;
use crate::ids;
use crate::routes::apps::{merge_settings, metadata, settings};
use crate::routes::empty_object;
use crate::state::EmulatorState;
use crate::store::AppRecord;
use axum::Json;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use smooch::models::{App, AppSettings};

/// Settings only v2 knows, kept in `AppRecord::extra_settings`.
const V2_SETTINGS: &[&str] = &["multiConvoEnabled", "appLocalizationEnabled"];

/// The v2 view of an app.
pub fn view(record: &AppRecord) -> Value {
    let mut settings = match serde_json::to_value(record.app.settings.clone().unwrap_or_default()) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    settings.extend(record.extra_settings.clone());
    let mut app = json!({
        "id": record.app.id,
        "displayName": record.app.name,
        "settings": settings,
    });
    if let Some(metadata) = &record.app.metadata {
        app["metadata"] = Value::Object(metadata.clone());
    }
    app
}

/// v1 settings (checked as v1 does) and v2's extra ones.
fn all_settings(
    fields: &Fields<'_>,
) -> Result<(Option<AppSettings>, Map<String, Value>), ApiError> {
    let Some(given) = fields.optional_object("settings")? else {
        return Ok((None, Map::new()));
    };
    let mut v1 = Map::new();
    let mut v2 = Map::new();
    for (key, value) in given {
        if value.is_null() {
            continue;
        }
        if V2_SETTINGS.contains(&key.as_str()) {
            if !value.is_boolean() {
                return Err(ApiError::bad_request(format!(
                    "settings.{key} must be a boolean"
                )));
            }
            v2.insert(key.clone(), value.clone());
        } else {
            v1.insert(key.clone(), value.clone());
        }
    }
    let mut wrapper = Map::new();
    wrapper.insert("settings".into(), Value::Object(v1));
    let v1 = settings(&Fields::new(&wrapper))?;
    Ok((v1, v2))
}

pub async fn create(
    _: V2Account,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields = Fields::new(&body);
    let name = display_name(Some(fields.required_str("displayName")?))?.unwrap_or_default();
    let (v1_settings, extra_settings) = all_settings(&fields)?;
    let app = App {
        id: ids::object_id(),
        app_token: Some(ids::app_token().into()),
        name,
        settings: v1_settings,
        metadata: metadata(&fields)?,
    };
    let mut record = AppRecord::new(app);
    record.extra_settings = extra_settings;
    let answer = view(&record);
    state
        .mutate(|store| {
            store.insert_record(record);
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "app": answer }))))
}

/// Every app, paged; `filter[serviceAccountId]` keeps them all when it
/// names the account key (the emulator's only service account) and none
/// otherwise.
pub async fn list(
    _: V2Account,
    State(state): State<EmulatorState>,
    RawQuery(query): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let query = list_query(query.as_deref())?;
    let account = state.maker_key_id().to_owned();
    let keep = query
        .filters
        .get("serviceAccountId")
        .is_none_or(|id| *id == account);
    let items = if keep {
        state
            .read(|store| {
                store
                    .snapshot()
                    .apps
                    .iter()
                    .map(|record| (record.app.id.clone(), view(record)))
                    .collect()
            })
            .await
    } else {
        Vec::new()
    };
    Ok(Json(paged(
        "apps",
        items,
        &query,
        &link_base(&headers, uri.path()),
    )))
}

pub async fn get(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let app = state
        .read(|store| store.app(&target.app_id).map(view))
        .await?;
    Ok(Json(json!({ "app": app })))
}

/// `displayName` replaces, `settings` merge field by field, `metadata`
/// replaces the whole map and `metadata: null` removes it.
pub async fn update(
    target: V2Target,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let fields = Fields::new(&body);
    let name = display_name(fields.optional_str("displayName")?)?;
    let (v1_settings, extra_settings) = all_settings(&fields)?;
    let new_metadata = metadata(&fields)?;
    let clear_metadata = body.get("metadata") == Some(&Value::Null);
    let app = state
        .mutate(|store| {
            let record = store.app_mut(&target.app_id)?;
            if record.extra_settings.get("multiConvoEnabled") == Some(&Value::Bool(true))
                && extra_settings.get("multiConvoEnabled") == Some(&Value::Bool(false))
            {
                return Err(ApiError::bad_request(
                    "settings.multiConvoEnabled cannot be turned off once it is on",
                ));
            }
            if let Some(name) = name {
                record.app.name = name;
            }
            if let Some(new) = v1_settings {
                merge_settings(
                    record.app.settings.get_or_insert_with(Default::default),
                    new,
                );
            }
            record.extra_settings.extend(extra_settings);
            if new_metadata.is_some() || clear_metadata {
                record.app.metadata = new_metadata;
            }
            Ok(view(record))
        })
        .await?;
    Ok(Json(json!({ "app": app })))
}

/// Deletes the app with its keys, integrations and webhooks.
pub async fn delete(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    state
        .mutate(|store| store.remove_app(&target.app_id))
        .await?;
    Ok(empty_object())
}
