//! `/apps` and `/apps/{appId}`: provisioning, app maker only.

use super::{empty_object, query_pairs};
use crate::auth::{AppMaker, MakerTarget};
use crate::body::{Fields, JsonObject, kind_of};
use crate::error::ApiError;
use crate::ids;
use crate::state::EmulatorState;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};
use smooch::models::{App, AppEnvelope, AppList, AppSettings, Metadata};

const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 100;
const SETTINGS: &[&str] = &[
    "maskCreditCardNumbers",
    "useAnimalNames",
    "conversationRetentionSeconds",
    "echoPostback",
    "ignoreAutoConversationStart",
];

pub async fn create(
    _: AppMaker,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<AppEnvelope>), ApiError> {
    let fields = Fields::new(&body);
    let app = App {
        id: ids::object_id(),
        app_token: Some(ids::app_token().into()),
        name: fields.required_str("name")?,
        settings: settings(&fields)?,
        metadata: metadata(&fields)?,
    };
    state
        .mutate(|store| {
            store.insert_app(app.clone());
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(AppEnvelope { app })))
}

pub async fn list(
    _: AppMaker,
    State(state): State<EmulatorState>,
    RawQuery(query): RawQuery,
) -> Result<Json<AppList>, ApiError> {
    let (limit, offset) = paging(query.as_deref())?;
    let (apps, has_more) = state.read(|store| store.list_apps(offset, limit)).await;
    Ok(Json(AppList {
        apps,
        has_more,
        offset: offset as u64,
    }))
}

pub async fn get(
    MakerTarget(target): MakerTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<AppEnvelope>, ApiError> {
    let app = state
        .read(|store| store.app(&target.app_id).map(|record| record.app.clone()))
        .await?;
    Ok(Json(AppEnvelope { app }))
}

/// Changes the fields given: `name` replaces, `settings` fields are merged
/// one by one, `metadata` replaces the whole map (`null` removes it).
pub async fn update(
    MakerTarget(target): MakerTarget,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<Json<AppEnvelope>, ApiError> {
    let fields = Fields::new(&body);
    let name = fields.optional_str("name")?;
    let settings = settings(&fields)?;
    let metadata = metadata(&fields)?;
    let clear_metadata = body.get("metadata") == Some(&Value::Null);
    let app = state
        .mutate(|store| {
            let app = &mut store.app_mut(&target.app_id)?.app;
            if let Some(name) = name {
                app.name = name;
            }
            if let Some(new) = settings {
                merge_settings(app.settings.get_or_insert_with(Default::default), new);
            }
            if metadata.is_some() || clear_metadata {
                app.metadata = metadata;
            }
            Ok(app.clone())
        })
        .await?;
    Ok(Json(AppEnvelope { app }))
}

pub async fn delete(
    MakerTarget(target): MakerTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    state
        .mutate(|store| store.remove_app(&target.app_id))
        .await?;
    Ok(empty_object())
}

/// `limit` (1 to 100, default 25) and `offset` (0 or more, default 0).
fn paging(query: Option<&str>) -> Result<(usize, usize), ApiError> {
    let mut limit = DEFAULT_LIMIT;
    let mut offset = 0;
    for (name, value) in query_pairs(query) {
        match name.as_str() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit must be an integer from 1 to {MAX_LIMIT}"
                        ))
                    })?;
            }
            "offset" => {
                offset = value
                    .parse::<usize>()
                    .map_err(|_| ApiError::bad_request("offset must be a non-negative integer"))?;
            }
            _ => {}
        }
    }
    Ok((limit, offset))
}

pub(super) fn settings(fields: &Fields<'_>) -> Result<Option<AppSettings>, ApiError> {
    let Some(map) = fields.optional_object("settings")? else {
        return Ok(None);
    };
    let f = Fields::nested(map, "settings");
    f.only(SETTINGS)?;
    Ok(Some(AppSettings {
        mask_credit_card_numbers: f.optional_bool("maskCreditCardNumbers")?,
        use_animal_names: f.optional_bool("useAnimalNames")?,
        conversation_retention_seconds: f
            .optional_non_negative_int("conversationRetentionSeconds")?,
        echo_postback: f.optional_bool("echoPostback")?,
        ignore_auto_conversation_start: f.optional_bool("ignoreAutoConversationStart")?,
    }))
}

pub(super) fn merge_settings(into: &mut AppSettings, new: AppSettings) {
    let AppSettings {
        mask_credit_card_numbers,
        use_animal_names,
        conversation_retention_seconds,
        echo_postback,
        ignore_auto_conversation_start,
    } = new;
    if mask_credit_card_numbers.is_some() {
        into.mask_credit_card_numbers = mask_credit_card_numbers;
    }
    if use_animal_names.is_some() {
        into.use_animal_names = use_animal_names;
    }
    if conversation_retention_seconds.is_some() {
        into.conversation_retention_seconds = conversation_retention_seconds;
    }
    if echo_postback.is_some() {
        into.echo_postback = echo_postback;
    }
    if ignore_auto_conversation_start.is_some() {
        into.ignore_auto_conversation_start = ignore_auto_conversation_start;
    }
}

/// A flat object of string, number and boolean values.
pub(super) fn metadata(fields: &Fields<'_>) -> Result<Option<Metadata>, ApiError> {
    let Some(map) = fields.optional_object("metadata")? else {
        return Ok(None);
    };
    match map
        .iter()
        .find(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean()))
    {
        Some((key, value)) => Err(ApiError::bad_request(format!(
            "metadata.{key} must be a string, number or boolean (got {})",
            kind_of(value)
        ))),
        None => Ok(Some(Map::clone(map))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_bounds() {
        assert_eq!(paging(None).unwrap(), (25, 0));
        assert_eq!(paging(Some("limit=100&offset=7")).unwrap(), (100, 7));
        assert_eq!(paging(Some("limit=1")).unwrap(), (1, 0));
        for bad in ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit="] {
            let e = paging(Some(bad)).unwrap_err();
            assert!(e.description.starts_with("limit"), "{bad}");
        }
        for bad in ["offset=-1", "offset=x"] {
            let e = paging(Some(bad)).unwrap_err();
            assert!(e.description.starts_with("offset"), "{bad}");
        }
    }

    #[test]
    fn settings_merge_field_by_field() {
        let mut s = AppSettings {
            use_animal_names: Some(true),
            ..Default::default()
        };
        merge_settings(
            &mut s,
            AppSettings {
                echo_postback: Some(false),
                ..Default::default()
            },
        );
        assert_eq!(s.use_animal_names, Some(true));
        assert_eq!(s.echo_postback, Some(false));
    }
}
