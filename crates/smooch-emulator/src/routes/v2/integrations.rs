//! `/v2/apps/{appId}/integrations[/{integrationId}[/webhooks[/{webhookId}]]]`.
//!
//! Channel integrations (messenger, twilio, telegram, line) are v1's,
//! with v2-only fields in `AppRecord::integration_extras`; `custom`
//! integrations hold webhooks (see `store.rs`). Credentials are checked
//! for presence and type, then dropped: no answer ever carries one.

use super::{display_name, link_base, list_query, paged};
use crate::auth::V2Target;
use crate::body::{Fields, JsonObject};
use crate::error::ApiError;
use crate::ids;
use crate::routes::empty_object;
use crate::routes::integrations::{line_fields, messenger_fields, telegram_fields, twilio_fields};
use crate::routes::webhooks::{WebhookChanges, checked_target, known_triggers};
use crate::state::EmulatorState;
use crate::store::{AppRecord, CustomIntegration};
use axum::Json;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use smooch::models::{Integration, IntegrationType, Webhook};

/// The types the emulator can create.
const SUPPORTED: &[&str] = &["messenger", "twilio", "telegram", "line", "custom"];

/// Every type the v2 clients know (accepted in `filter[types]`).
const KNOWN_TYPES: &[&str] = &[
    "android",
    "apple",
    "custom",
    "instagram",
    "ios",
    "line",
    "mailgun",
    "messagebird",
    "messenger",
    "telegram",
    "twilio",
    "twitter",
    "unity",
    "viber",
    "web",
    "whatsapp",
];

/// Webhook triggers v2 accepts (case sensitive).
pub const V2_TRIGGERS: &[&str] = &[
    "conversation:create",
    "conversation:join",
    "conversation:leave",
    "conversation:remove",
    "conversation:message",
    "conversation:postback",
    "conversation:read",
    "conversation:referral",
    "conversation:typing",
    "conversation:message:delivery:channel",
    "conversation:message:delivery:user",
    "conversation:message:delivery:failure",
    "client:add",
    "client:remove",
    "client:update",
    "user:merge",
    "user:remove",
    "user:update",
    "switchboard:acceptControl",
    "switchboard:acceptControl:failure",
    "switchboard:offerControl",
    "switchboard:offerControl:failure",
    "switchboard:passControl",
    "switchboard:passControl:failure",
    "switchboard:releaseControl",
    "*",
];

/// The payload version of webhooks made through v2.
const V2_WEBHOOK_VERSION: &str = "v2";

/// Public v1 fields each type shows in v2, renamed where v2's name differs.
fn v2_fields_of(kind: IntegrationType) -> &'static [(&'static str, &'static str)] {
    match kind {
        IntegrationType::Messenger => &[("pageId", "pageId"), ("username", "pageName")],
        IntegrationType::Twilio => &[
            ("accountSid", "accountSid"),
            ("phoneNumberSid", "phoneNumberSid"),
        ],
        IntegrationType::Telegram => &[("username", "username")],
        IntegrationType::Line => &[("channelId", "channelId")],
    }
}

/// The v2 view of a channel integration.
fn channel_view(integration: &Integration, extras: Option<&Map<String, Value>>) -> Value {
    let public = &integration.public_fields;
    let mut view = Map::new();
    view.insert("id".into(), json!(integration.id));
    view.insert("type".into(), json!(integration.kind.as_str()));
    view.insert(
        "status".into(),
        public.get("status").cloned().unwrap_or(json!("active")),
    );
    if let Some(name) = public.get("displayName") {
        view.insert("displayName".into(), name.clone());
    }
    for (v1_name, v2_name) in v2_fields_of(integration.kind) {
        let Some(value) = public.get(*v1_name) else {
            continue;
        };
        // v2's messenger pageId is a number.
        let value = match (*v2_name, value.as_str().and_then(|s| s.parse::<u64>().ok())) {
            ("pageId", Some(number)) => json!(number),
            _ => value.clone(),
        };
        view.insert((*v2_name).into(), value);
    }
    if let Some(extras) = extras {
        view.extend(extras.clone());
    }
    Value::Object(view)
}

fn webhook_view(webhook: &Webhook) -> Value {
    json!({
        "id": webhook.id,
        "version": webhook.version.as_deref().unwrap_or("v1"),
        "target": webhook.target,
        "triggers": webhook.triggers,
        "secret": webhook.secret.expose(),
        "includeFullUser": webhook.include_full_app_user.unwrap_or(false),
        "includeFullSource": webhook.include_client.unwrap_or(false),
    })
}

fn custom_view(record: &AppRecord, custom: &CustomIntegration) -> Value {
    let webhooks: Vec<Value> = record
        .webhooks_of(custom)
        .iter()
        .map(webhook_view)
        .collect();
    let mut view = json!({
        "id": custom.id,
        "type": "custom",
        "status": "active",
        "webhooks": webhooks,
    });
    if let Some(name) = &custom.display_name {
        view["displayName"] = json!(name);
    }
    view
}

/// Every integration of the app, each with its type and id.
fn all_views(record: &AppRecord) -> Vec<(String, &'static str, Value)> {
    let channels = record.integrations.iter().map(|i| {
        (
            i.id.clone(),
            i.kind.as_str(),
            channel_view(i, record.integration_extras.get(&i.id)),
        )
    });
    let customs = record
        .custom_integrations
        .iter()
        .map(|c| (c.id.clone(), "custom", custom_view(record, c)));
    channels.chain(customs).collect()
}

fn view_of(record: &AppRecord, id: &str) -> Result<Value, ApiError> {
    if let Ok(integration) = record.integration(id) {
        return Ok(channel_view(integration, record.integration_extras.get(id)));
    }
    record
        .custom_integration(id)
        .map(|custom| custom_view(record, custom))
}

fn bad_type(kind: &str) -> ApiError {
    ApiError::bad_request(format!(
        "type {kind:?} is not supported (supported: {})",
        SUPPORTED.join(", ")
    ))
}

/// A new integration, parsed from a create body.
enum NewIntegration {
    Channel {
        integration: Integration,
        extras: Map<String, Value>,
    },
    Custom {
        custom: CustomIntegration,
        webhook: Webhook,
    },
}

fn insert_opt(map: &mut Map<String, Value>, name: &str, value: Option<String>) {
    if let Some(value) = value {
        map.insert(name.into(), Value::String(value));
    }
}

fn parse_new(fields: &Fields<'_>) -> Result<NewIntegration, ApiError> {
    let kind = fields.required_str("type")?;
    let name = display_name(fields.optional_str("displayName")?)?;
    if kind == "custom" {
        let webhooks = match fields.optional_list("webhooks")? {
            Some(list) => list,
            None => return Err(ApiError::bad_request("webhooks is required")),
        };
        let [Value::Object(body)] = webhooks.as_slice() else {
            return Err(ApiError::bad_request(
                "webhooks must hold exactly one webhook object",
            ));
        };
        let webhook = new_webhook(&Fields::nested(body, "webhooks[0]"))?;
        return Ok(NewIntegration::Custom {
            custom: CustomIntegration {
                id: ids::object_id(),
                display_name: name,
                webhook_ids: vec![webhook.id.clone()],
            },
            webhook,
        });
    }
    let text = |field| fields.required_str(field);
    let opt = |field| fields.optional_str(field);
    let mut extras = Map::new();
    let (kind, mut public) = match kind.as_str() {
        "messenger" => {
            let token = text("pageAccessToken")?;
            let app_id = text("appId")?;
            text("appSecret")?;
            extras.insert("appId".into(), json!(app_id));
            (
                IntegrationType::Messenger,
                messenger_fields(&app_id, &token),
            )
        }
        "twilio" => {
            let account_sid = text("accountSid")?;
            text("authToken")?;
            let phone = opt("phoneNumberSid")?;
            let service = opt("messagingServiceSid")?;
            if phone.is_none() && service.is_none() {
                return Err(ApiError::bad_request(
                    "phoneNumberSid or messagingServiceSid is required",
                ));
            }
            insert_opt(&mut extras, "messagingServiceSid", service);
            (
                IntegrationType::Twilio,
                twilio_fields(&account_sid, phone.as_deref()),
            )
        }
        "telegram" => (IntegrationType::Telegram, telegram_fields(&text("token")?)),
        "line" => {
            let channel_id = opt("channelId")?;
            for credential in ["channelSecret", "channelAccessToken", "switcherSecret"] {
                opt(credential)?;
            }
            insert_opt(&mut extras, "serviceCode", opt("serviceCode")?);
            insert_opt(&mut extras, "qrCodeUrl", opt("qrCodeUrl")?);
            (
                IntegrationType::Line,
                line_fields(channel_id.as_deref(), None),
            )
        }
        other => return Err(bad_type(other)),
    };
    insert_opt(
        &mut extras,
        "defaultResponderId",
        opt("defaultResponderId")?,
    );
    if let Some(name) = name {
        public.insert("displayName".into(), json!(name));
    }
    public.insert("status".into(), json!("active"));
    Ok(NewIntegration::Channel {
        integration: Integration {
            id: ids::object_id(),
            kind,
            public_fields: public,
        },
        extras,
    })
}

pub async fn create(
    target: V2Target,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = parse_new(&Fields::new(&body))?;
    let integration = state
        .mutate(|store| {
            let record = store.app_mut(&target.app_id)?;
            match new {
                NewIntegration::Channel {
                    integration,
                    extras,
                } => {
                    let id = integration.id.clone();
                    record.integrations.push(integration);
                    if !extras.is_empty() {
                        record.integration_extras.insert(id.clone(), extras);
                    }
                    view_of(record, &id)
                }
                NewIntegration::Custom { custom, webhook } => {
                    let id = custom.id.clone();
                    record.custom_integrations.push(custom);
                    record.webhooks.push(webhook);
                    view_of(record, &id)
                }
            }
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "integration": integration })),
    ))
}

/// The app's integrations, paged, of the types in `filter[types]` (comma
/// separated) when given.
pub async fn list(
    target: V2Target,
    State(state): State<EmulatorState>,
    RawQuery(query): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let query = list_query(query.as_deref())?;
    let wanted: Option<Vec<String>> = match query.filters.get("types") {
        None => None,
        Some(types) => {
            let list: Vec<String> = types
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(unknown) = list.iter().find(|t| !KNOWN_TYPES.contains(&t.as_str())) {
                return Err(ApiError::bad_request(format!(
                    "filter[types] contains an unknown type {unknown:?}"
                )));
            }
            (!list.is_empty()).then_some(list)
        }
    };
    let items = state
        .read(|store| {
            store.app(&target.app_id).map(|record| {
                all_views(record)
                    .into_iter()
                    .filter(|(_, kind, _)| {
                        wanted.as_ref().is_none_or(|w| w.iter().any(|t| t == kind))
                    })
                    .map(|(id, _, view)| (id, view))
                    .collect::<Vec<_>>()
            })
        })
        .await?;
    Ok(Json(paged(
        "integrations",
        items,
        &query,
        &link_base(&headers, uri.path()),
    )))
}

pub async fn get(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let id = target.param("integrationId")?;
    let integration = state
        .read(|store| view_of(store.app(&target.app_id)?, id))
        .await?;
    Ok(Json(json!({ "integration": integration })))
}

/// Changes what the type's update model allows: `displayName` (`null`
/// unsets it), `defaultResponderId` (not for custom; `null` unsets it),
/// messenger's `pageAccessToken` (checked, then dropped like every
/// credential). Any other non-null field is a 400: delete and recreate.
pub async fn update(
    target: V2Target,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let id = target.param("integrationId")?.to_owned();
    let fields = Fields::new(&body);
    let name = display_name(fields.optional_str("displayName")?)?;
    let clear_name = body.get("displayName") == Some(&Value::Null);
    let responder = fields.optional_str("defaultResponderId")?;
    let clear_responder = body.get("defaultResponderId") == Some(&Value::Null);
    fields.optional_str("pageAccessToken")?;
    let given_type = fields.optional_str("type")?;
    let integration = state
        .mutate(|store| {
            let record = store.app_mut(&target.app_id)?;
            let kind = if let Ok(channel) = record.integration(&id) {
                channel.kind.as_str()
            } else {
                record.custom_integration(&id)?;
                "custom"
            };
            let mut allowed = vec!["displayName", "type"];
            if kind != "custom" {
                allowed.push("defaultResponderId");
            }
            if kind == "messenger" {
                allowed.push("pageAccessToken");
            }
            if let Some(field) = body
                .iter()
                .find(|(k, v)| !v.is_null() && !allowed.contains(&k.as_str()))
                .map(|(k, _)| k)
            {
                return Err(ApiError::bad_request(format!(
                    "{field} cannot be changed on a {kind} integration (allowed: {}); delete and recreate it",
                    allowed[..allowed.len()]
                        .iter()
                        .filter(|f| **f != "type")
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if let Some(given) = &given_type
                && given != kind
            {
                return Err(ApiError::bad_request(format!(
                    "type cannot be changed (this integration is {kind})"
                )));
            }
            if kind == "custom" {
                let custom = record.custom_integration_mut(&id)?;
                if name.is_some() || clear_name {
                    custom.display_name = name;
                }
            } else {
                let channel = record
                    .integrations
                    .iter_mut()
                    .find(|i| i.id == id)
                    .ok_or_else(|| ApiError::not_found("Integration not found"))?;
                match name {
                    Some(name) => {
                        channel.public_fields.insert("displayName".into(), json!(name));
                    }
                    None if clear_name => {
                        channel.public_fields.remove("displayName");
                    }
                    None => {}
                }
                let extras = record.integration_extras.entry(id.clone()).or_default();
                match responder {
                    Some(responder) => {
                        extras.insert("defaultResponderId".into(), json!(responder));
                    }
                    None if clear_responder => {
                        extras.remove("defaultResponderId");
                    }
                    None => {}
                }
                if extras.is_empty() {
                    record.integration_extras.remove(&id);
                }
            }
            view_of(record, &id)
        })
        .await?;
    Ok(Json(json!({ "integration": integration })))
}

pub async fn delete(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let id = target.param("integrationId")?;
    state
        .mutate(|store| {
            let record = store.app_mut(&target.app_id)?;
            if record.integration(id).is_ok() {
                record.remove_integration(id)
            } else {
                record.remove_custom_integration(id)
            }
        })
        .await?;
    Ok(empty_object())
}

// ---------- webhooks of a custom integration ----------

/// A webhook from a create body: `target` and `triggers` required.
fn new_webhook(fields: &Fields<'_>) -> Result<Webhook, ApiError> {
    Ok(Webhook {
        id: ids::object_id(),
        target: checked_target(fields.required_str("target")?).map_err(|e| {
            ApiError::bad_request(format!("{} {}", fields.name("target"), tail(&e)))
        })?,
        triggers: triggers(fields)?.ok_or_else(|| {
            ApiError::bad_request(format!("{} is required", fields.name("triggers")))
        })?,
        secret: ids::secret().into(),
        version: Some(V2_WEBHOOK_VERSION.to_owned()),
        include_client: Some(fields.optional_bool("includeFullSource")?.unwrap_or(false)),
        include_full_app_user: Some(fields.optional_bool("includeFullUser")?.unwrap_or(false)),
        // The store keeps the owning integration itself (see store.rs).
        integration_id: None,
    })
}

/// `checked_target`'s message without its leading field name.
fn tail(error: &ApiError) -> String {
    error
        .description
        .strip_prefix("target ")
        .unwrap_or(&error.description)
        .to_owned()
}

/// Known v2 triggers, duplicates dropped, order kept.
fn triggers(fields: &Fields<'_>) -> Result<Option<Vec<String>>, ApiError> {
    known_triggers(fields, V2_TRIGGERS)
}

/// The custom integration named by the path, or 404 (400 for a channel
/// integration, which has no webhooks).
fn custom_of<'a>(record: &'a AppRecord, id: &str) -> Result<&'a CustomIntegration, ApiError> {
    if record.integration(id).is_ok() {
        return Err(ApiError::bad_request(
            "Only custom integrations have webhooks",
        ));
    }
    record.custom_integration(id)
}

/// The webhook named by the path, if its integration holds it.
fn webhook_in(
    record: &AppRecord,
    integration_id: &str,
    webhook_id: &str,
) -> Result<Webhook, ApiError> {
    let custom = custom_of(record, integration_id)?;
    if !custom.webhook_ids.iter().any(|id| id == webhook_id) {
        return Err(ApiError::not_found("Webhook not found"));
    }
    record.webhook(webhook_id).cloned()
}

pub async fn create_webhook(
    target: V2Target,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let integration_id = target.param("integrationId")?;
    let webhook = new_webhook(&Fields::new(&body))?;
    let answer = webhook_view(&webhook);
    state
        .mutate(|store| {
            let record = store.app_mut(&target.app_id)?;
            custom_of(record, integration_id)?;
            record.add_webhook(integration_id, webhook)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "webhook": answer }))))
}

pub async fn list_webhooks(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let integration_id = target.param("integrationId")?;
    let webhooks: Vec<Value> = state
        .read(|store| {
            let record = store.app(&target.app_id)?;
            let custom = custom_of(record, integration_id)?;
            Ok::<_, ApiError>(
                record
                    .webhooks_of(custom)
                    .iter()
                    .map(webhook_view)
                    .collect(),
            )
        })
        .await?;
    Ok(Json(json!({ "webhooks": webhooks })))
}

pub async fn get_webhook(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let integration_id = target.param("integrationId")?;
    let webhook_id = target.param("webhookId")?;
    let webhook = state
        .read(|store| webhook_in(store.app(&target.app_id)?, integration_id, webhook_id))
        .await?;
    Ok(Json(json!({ "webhook": webhook_view(&webhook) })))
}

/// Changes the fields given; id, secret and version stay.
pub async fn update_webhook(
    target: V2Target,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let integration_id = target.param("integrationId")?;
    let webhook_id = target.param("webhookId")?;
    let fields = Fields::new(&body);
    let changes = WebhookChanges {
        target: fields
            .optional_str("target")?
            .map(checked_target)
            .transpose()?,
        triggers: triggers(&fields)?,
        include_client: fields.optional_bool("includeFullSource")?,
        include_full_app_user: fields.optional_bool("includeFullUser")?,
    };
    let webhook = state
        .mutate(|store| {
            let record = store.app_mut(&target.app_id)?;
            webhook_in(record, integration_id, webhook_id)?;
            let webhook = record.webhook_mut(webhook_id)?;
            changes.apply(webhook);
            Ok(webhook.clone())
        })
        .await?;
    Ok(Json(json!({ "webhook": webhook_view(&webhook) })))
}

/// Deletes the webhook; its integration stays, even with no webhook left.
pub async fn delete_webhook(
    target: V2Target,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let integration_id = target.param("integrationId")?;
    let webhook_id = target.param("webhookId")?;
    state
        .mutate(|store| {
            let record = store.app_mut(&target.app_id)?;
            webhook_in(record, integration_id, webhook_id)?;
            record.remove_webhook(webhook_id, false)
        })
        .await?;
    Ok(empty_object())
}
