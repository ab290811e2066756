//! `/apps/{appId}/webhooks` (or `/webhooks` with an app token).
//!
//! A v1 webhook is a v2 custom integration's webhook: creating one here
//! creates a custom integration holding it, and deleting it here deletes
//! that integration too once it holds no webhook (see `store.rs`).

use super::empty_object;
use crate::auth::AppTarget;
use crate::body::{Fields, JsonObject};
use crate::error::ApiError;
use crate::ids;
use crate::state::EmulatorState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use smooch::models::{WEBHOOK_TRIGGERS, Webhook, WebhookEnvelope, WebhookListEnvelope};

/// The webhook payload version the emulator reports.
const VERSION: &str = "v1";

pub async fn create(
    target: AppTarget,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<WebhookEnvelope>), ApiError> {
    let fields = Fields::new(&body);
    let webhook = Webhook {
        id: ids::object_id(),
        target: checked_target(fields.required_str("target")?)?,
        triggers: triggers(&fields)?.unwrap_or_else(|| vec!["message".to_owned()]),
        secret: ids::secret().into(),
        version: Some(VERSION.to_owned()),
        include_client: Some(fields.optional_bool("includeClient")?.unwrap_or(false)),
        include_full_app_user: Some(fields.optional_bool("includeFullAppUser")?.unwrap_or(false)),

        integration_id: None,
    };
    state
        .mutate(|store| {
            store
                .app_mut(&target.app_id)?
                .add_webhook_alone(webhook.clone());
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(WebhookEnvelope { webhook })))
}

pub async fn list(
    target: AppTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<WebhookListEnvelope>, ApiError> {
    let webhooks = state
        .read(|store| {
            store
                .app(&target.app_id)
                .map(|record| record.webhooks.clone())
        })
        .await?;
    Ok(Json(WebhookListEnvelope { webhooks }))
}

pub async fn get(
    target: AppTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<WebhookEnvelope>, ApiError> {
    let webhook_id = target.param("webhookId")?;
    let webhook = state
        .read(|store| store.app(&target.app_id)?.webhook(webhook_id).cloned())
        .await?;
    Ok(Json(WebhookEnvelope { webhook }))
}

/// Changes the fields given; the secret and id stay.
pub async fn update(
    target: AppTarget,
    State(state): State<EmulatorState>,
    JsonObject(body): JsonObject,
) -> Result<Json<WebhookEnvelope>, ApiError> {
    let webhook_id = target.param("webhookId")?;
    let fields = Fields::new(&body);
    let changes = WebhookChanges {
        target: fields
            .optional_str("target")?
            .map(checked_target)
            .transpose()?,
        triggers: triggers(&fields)?,
        include_client: fields.optional_bool("includeClient")?,
        include_full_app_user: fields.optional_bool("includeFullAppUser")?,
    };
    let webhook = state
        .mutate(|store| {
            let webhook = store.app_mut(&target.app_id)?.webhook_mut(webhook_id)?;
            changes.apply(webhook);
            Ok(webhook.clone())
        })
        .await?;
    Ok(Json(WebhookEnvelope { webhook }))
}

/// What a webhook update changes, each field only when given (v2's
/// `includeFullSource` and `includeFullUser` are v1's `includeClient` and
/// `includeFullAppUser`).
pub(super) struct WebhookChanges {
    pub target: Option<String>,
    pub triggers: Option<Vec<String>>,
    pub include_client: Option<bool>,
    pub include_full_app_user: Option<bool>,
}

impl WebhookChanges {
    pub(super) fn apply(self, webhook: &mut Webhook) {
        if let Some(t) = self.target {
            webhook.target = t;
        }
        if let Some(t) = self.triggers {
            webhook.triggers = t;
        }
        if self.include_client.is_some() {
            webhook.include_client = self.include_client;
        }
        if self.include_full_app_user.is_some() {
            webhook.include_full_app_user = self.include_full_app_user;
        }
    }
}

pub async fn delete(
    target: AppTarget,
    State(state): State<EmulatorState>,
) -> Result<Json<Value>, ApiError> {
    let webhook_id = target.param("webhookId")?;
    state
        .mutate(|store| {
            store
                .app_mut(&target.app_id)?
                .remove_webhook(webhook_id, true)
        })
        .await?;
    Ok(empty_object())
}

/// An absolute http or https URL with a host.
pub(super) fn checked_target(target: String) -> Result<String, ApiError> {
    match url::Url::parse(&target) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(target),
        _ => Err(ApiError::bad_request(
            "target must be an absolute http or https URL",
        )),
    }
}

/// Known v1 triggers (case sensitive), duplicates dropped, order kept.
fn triggers(fields: &Fields<'_>) -> Result<Option<Vec<String>>, ApiError> {
    known_triggers(fields, WEBHOOK_TRIGGERS)
}

/// The `triggers` field, each one of `known` (case sensitive), duplicates
/// dropped, order kept.
pub(super) fn known_triggers(
    fields: &Fields<'_>,
    known: &[&str],
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(given) = fields.optional_str_list("triggers")? else {
        return Ok(None);
    };
    let mut triggers: Vec<String> = Vec::with_capacity(given.len());
    for trigger in given {
        if !known.contains(&trigger.as_str()) {
            return Err(ApiError::bad_request(format!(
                "{} contains an unknown trigger {trigger:?} (known: {})",
                fields.name("triggers"),
                known.join(", ")
            )));
        }
        if !triggers.contains(&trigger) {
            triggers.push(trigger);
        }
    }
    Ok(Some(triggers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets() {
        assert!(checked_target("http://example.com/callback".into()).is_ok());
        assert!(checked_target("https://h:8443/x?y=1".into()).is_ok());
        for bad in [
            "/relative",
            "ftp://example.com",
            "example.com",
            "http://",
            "",
        ] {
            assert!(checked_target(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn trigger_rules() {
        let check = |v: Value| triggers(&Fields::new(v.as_object().unwrap()));
        assert_eq!(check(json!({})).unwrap(), None);
        assert_eq!(
            check(json!({"triggers": ["postback", "message", "postback"]})).unwrap(),
            Some(vec!["postback".to_owned(), "message".to_owned()])
        );
        let e = check(json!({"triggers": ["Message"]})).unwrap_err();
        assert!(e.description.contains("\"Message\""), "{}", e.description);
        assert!(check(json!({"triggers": []})).is_err());
        assert!(check(json!({"triggers": "message"})).is_err());
    }
}
