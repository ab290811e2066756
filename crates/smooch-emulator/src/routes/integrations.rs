//! `/apps/{appId}/integrations` (or `/integrations` with an app token):
//! messenger, twilio, telegram and line channels.
//!
//! Credentials are checked for presence and type, then dropped: answers
//! carry only the public fields of the primary document's examples, with
//! fake values derived deterministically from the input.

use super::{empty_object, query_pairs};
use crate::auth::AppTarget;
use crate::body::{Fields, JsonObject};
use crate::error::ApiError;
use crate::ids::{self, digits, hex8};
use crate::state::EmulatorState;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::Value;
use smooch::models::{
    Integration, IntegrationEnvelope, IntegrationListEnvelope, IntegrationParams, IntegrationType,
};
use std::collections::BTreeMap;

const SUPPORTED: &str = "messenger, twilio, telegram, line";

pub async fn create(
    target: AppTarget,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<IntegrationEnvelope>), ApiError> {
    let fields = Fields::new(&body);
    let params = parse(&fields)?;
    let mut public_fields = public_fields(&params);
    if let Some(display_name) = fields.optional_str("displayName")? {
        public_fields.insert("displayName".into(), display_name.into());
    }
    public_fields.insert("status".into(), "active".into());
    let integration = Integration {
        id: ids::object_id(),
        kind: params.integration_type(),
        public_fields,
    };
    // Fields v1 does not answer with but /v2 shows.
    let extras = match &params {
        IntegrationParams::Messenger { app_id, .. } => Some(serde_json::json!({"appId": app_id})),
        _ => None,
    };
    state
        .mutate(|store| {
            let record = store.app_mut(&target.app_id)?;
            record.integrations.push(integration.clone());
            if let Some(Value::Object(extras)) = extras {
                record
                    .integration_extras
                    .insert(integration.id.clone(), extras);
            }
            Ok(())
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IntegrationEnvelope { integration }),
    ))
}

/// Lists the app's integrations, only of the types in `types` (or `type`,
/// the name the primary document's table uses) when given.
pub async fn list(
    target: AppTarget,
    State(state): State<EmulatorState>,
    RawQuery(query): RawQuery,
) -> Result<Json<IntegrationListEnvelope>, ApiError> {
    let wanted = type_filter(query.as_deref())?;
    let integrations = state
        .read(|store| {
            store.app(&target.app_id).map(|record| {
                record
                    .integrations
                    .iter()
                    .filter(|i| wanted.as_ref().is_none_or(|w| w.contains(&i.kind)))
                    .cloned()
                    .collect()
            })
        })
        .await?;
    Ok(Json(IntegrationListEnvelope { integrations }))
}

pub async fn get(
    target: AppTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<IntegrationEnvelope>, ApiError> {
    let integration_id = target.param("integrationId")?;
    let integration = state
        .read(|store| {
            store
                .app(&target.app_id)?
                .integration(integration_id)
                .cloned()
        })
        .await?;
    Ok(Json(IntegrationEnvelope { integration }))
}

pub async fn delete(
    target: AppTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let integration_id = target.param("integrationId")?;
    state
        .mutate(|store| {
            store
                .app_mut(&target.app_id)?
                .remove_integration(integration_id)
        })
        .await?;
    Ok(empty_object())
}

/// The type and its required fields, each missing or mistyped one named.
fn parse(fields: &Fields<'_>) -> Result<IntegrationParams, ApiError> {
    let kind = fields.required_str("type")?;
    let kind = IntegrationType::parse(&kind)
        .ok_or_else(|| ApiError::bad_request(format!("type must be one of: {SUPPORTED}")))?;
    let text = |name| fields.required_str(name);
    let secret = |name| fields.required_str(name).map(Into::into);
    Ok(match kind {
        IntegrationType::Messenger => IntegrationParams::Messenger {
            page_access_token: secret("pageAccessToken")?,
            app_id: text("appId")?,
            app_secret: secret("appSecret")?,
        },
        IntegrationType::Twilio => IntegrationParams::Twilio {
            account_sid: text("accountSid")?,
            auth_token: secret("authToken")?,
            phone_number_sid: text("phoneNumberSid")?,
        },
        IntegrationType::Telegram => IntegrationParams::Telegram {
            token: secret("token")?,
        },
        IntegrationType::Line => IntegrationParams::Line {
            channel_id: text("channelId")?,
            channel_secret: secret("channelSecret")?,
            mid: text("mid")?,
        },
    })
}

/// What Smooch would have learned from the channel, made up from the input.
/// Credentials only feed a hash; none is ever returned.
fn public_fields(params: &IntegrationParams) -> BTreeMap<String, Value> {
    match params {
        IntegrationParams::Messenger {
            page_access_token,
            app_id,
            ..
        } => messenger_fields(app_id, page_access_token.expose()),
        IntegrationParams::Twilio {
            account_sid,
            phone_number_sid,
            ..
        } => twilio_fields(account_sid, Some(phone_number_sid)),
        IntegrationParams::Telegram { token } => telegram_fields(token.expose()),
        IntegrationParams::Line {
            channel_id, mid, ..
        } => line_fields(Some(channel_id), Some(mid)),
    }
}

fn strings(pairs: Vec<(&str, String)>) -> BTreeMap<String, Value> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Value::String(value)))
        .collect()
}

/// v1's public messenger fields (`/v2` shows them as `pageId`, `pageName`).
pub(crate) fn messenger_fields(app_id: &str, page_access_token: &str) -> BTreeMap<String, Value> {
    strings(vec![
        (
            "userId",
            digits(&["messenger-user", app_id, page_access_token], 15),
        ),
        (
            "username",
            format!(
                "Emulated User {}",
                hex8(&["messenger-user", page_access_token])
            ),
        ),
        ("pageId", digits(&["messenger-page", page_access_token], 15)),
    ])
}

/// v1's public twilio fields; `/v2` may give a messaging service instead
/// of a phone number.
pub(crate) fn twilio_fields(
    account_sid: &str,
    phone_number_sid: Option<&str>,
) -> BTreeMap<String, Value> {
    let mut pairs = vec![("accountSid", account_sid.to_owned())];
    if let Some(phone_number_sid) = phone_number_sid {
        pairs.push(("phoneNumberSid", phone_number_sid.to_owned()));
        pairs.push((
            "phoneNumber",
            format!("+1555{}", digits(&["twilio-number", phone_number_sid], 7)),
        ));
    }
    pairs.push((
        "name",
        format!(
            "Emulated Account {}",
            hex8(&["twilio-account", account_sid])
        ),
    ));
    strings(pairs)
}

pub(crate) fn telegram_fields(token: &str) -> BTreeMap<String, Value> {
    strings(vec![(
        "username",
        format!("bot_{}_bot", hex8(&["telegram", token])),
    )])
}

/// v1's public line fields; `/v2` may leave the channel out (and has no `mid`).
pub(crate) fn line_fields(channel_id: Option<&str>, mid: Option<&str>) -> BTreeMap<String, Value> {
    let mut pairs = Vec::new();
    if let Some(mid) = mid {
        pairs.push(("mid", mid.to_owned()));
    }
    if let Some(channel_id) = channel_id {
        pairs.push(("channelId", channel_id.to_owned()));
        pairs.push((
            "botName",
            format!("Emulated Bot {}", hex8(&["line", channel_id])),
        ));
    }
    strings(pairs)
}

/// The union of `types` and `type`, comma separated; `None` for no filter.
fn type_filter(query: Option<&str>) -> Result<Option<Vec<IntegrationType>>, ApiError> {
    let mut wanted = Vec::new();
    let mut filtered = false;
    for (name, value) in query_pairs(query) {
        if name != "types" && name != "type" {
            continue;
        }
        filtered = true;
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let kind = IntegrationType::parse(item).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} contains an unknown integration type (supported: {SUPPORTED})"
                ))
            })?;
            wanted.push(kind);
        }
    }
    Ok((filtered && !wanted.is_empty()).then_some(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let cases = [
            (json!({}), "type is required"),
            (json!({"type": "fax"}), "type must be one of"),
            (
                json!({"type": "twilio", "accountSid": "AC", "phoneNumberSid": "PN"}),
                "authToken is required",
            ),
            (
                json!({"type": "twilio", "accountSid": "AC", "authToken": 5, "phoneNumberSid": "PN"}),
                "authToken must be a string",
            ),
            (
                json!({"type": "line", "channelSecret": "s", "mid": "u"}),
                "channelId is required",
            ),
        ];
        for (body, expected) in cases {
            let map = body.as_object().unwrap();
            let e = parse(&Fields::new(map)).unwrap_err();
            assert!(e.description.starts_with(expected), "{body}: {e:?}");
        }
    }

    #[test]
    fn public_fields_never_hold_credentials() {
        let p = IntegrationParams::Messenger {
            page_access_token: "PAGE-TOKEN".into(),
            app_id: "fbapp".into(),
            app_secret: "APP-SECRET".into(),
        };
        let fields = serde_json::to_string(&public_fields(&p)).unwrap();
        assert!(!fields.contains("PAGE-TOKEN") && !fields.contains("APP-SECRET"));
        let t = public_fields(&IntegrationParams::Telegram {
            token: "123:abc".into(),
        });
        let username = t["username"].as_str().unwrap();
        assert!(username.starts_with("bot_") && username.ends_with("_bot"));
        assert_eq!(username.len(), "bot_".len() + 8 + "_bot".len());
    }

    #[test]
    fn filters() {
        assert_eq!(type_filter(None).unwrap(), None);
        assert_eq!(
            type_filter(Some("types=twilio,line")).unwrap(),
            Some(vec![IntegrationType::Twilio, IntegrationType::Line])
        );
        assert_eq!(
            type_filter(Some("type=telegram")).unwrap(),
            Some(vec![IntegrationType::Telegram])
        );
        assert!(type_filter(Some("types=twilio,fax")).is_err());
    }
}
