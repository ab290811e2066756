//! Smooch objects and request bodies, as the API documents shape them.
//! Credentials are [`Sensitive`] so that printing a model never leaks one.

use super::Sensitive;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Caller-chosen flat map of string/number/bool values on an app.
pub type Metadata = Map<String, Value>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_credit_card_numbers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_animal_names: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_retention_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo_postback: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_auto_conversation_start: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    #[serde(rename = "_id")]
    pub id: String,
    /// v1 only: v2 apps have no app token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token: Option<Sensitive>,
    /// v1's `name`, v2's `displayName`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<AppSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// Body of `POST /v1/apps` (name required) and `PUT /v1/apps/{appId}`
/// (everything optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<AppSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppList {
    pub apps: Vec<App>,
    #[serde(rename = "hasMore")]
    pub has_more: bool,
    pub offset: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretKey {
    #[serde(rename = "_id")]
    pub id: String,
    pub secret: Sensitive,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationType {
    Messenger,
    Twilio,
    Telegram,
    Line,
}

impl IntegrationType {
    pub const ALL: [IntegrationType; 4] = [
        IntegrationType::Messenger,
        IntegrationType::Twilio,
        IntegrationType::Telegram,
        IntegrationType::Line,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationType::Messenger => "messenger",
            IntegrationType::Twilio => "twilio",
            IntegrationType::Telegram => "telegram",
            IntegrationType::Line => "line",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for IntegrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST .../integrations`: each type's required fields, with every
/// credential kept [`Sensitive`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum IntegrationParams {
    #[serde(rename_all = "camelCase")]
    Messenger {
        page_access_token: Sensitive,
        app_id: String,
        app_secret: Sensitive,
    },
    #[serde(rename_all = "camelCase")]
    Twilio {
        account_sid: String,
        auth_token: Sensitive,
        phone_number_sid: String,
    },
    Telegram {
        token: Sensitive,
    },
    #[serde(rename_all = "camelCase")]
    Line {
        channel_id: String,
        channel_secret: Sensitive,
        mid: String,
    },
}

impl IntegrationParams {
    pub fn integration_type(&self) -> IntegrationType {
        match self {
            IntegrationParams::Messenger { .. } => IntegrationType::Messenger,
            IntegrationParams::Twilio { .. } => IntegrationType::Twilio,
            IntegrationParams::Telegram { .. } => IntegrationType::Telegram,
            IntegrationParams::Line { .. } => IntegrationType::Line,
        }
    }
}

/// An integration as Smooch returns it: id, type and the type's public
/// fields (never a credential).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: IntegrationType,
    #[serde(flatten)]
    pub public_fields: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[serde(rename = "_id")]
    pub id: String,
    pub target: String,
    pub triggers: Vec<String>,
    pub secret: Sensitive,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_client: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_full_app_user: Option<bool>,
    /// v2 only: the custom integration that holds this webhook (v2 has no
    /// webhook outside one). Not part of v1's wire format.
    #[serde(skip)]
    pub integration_id: Option<String>,
}

impl Webhook {
    /// The id the client's get, update and delete calls take: the
    /// webhook's own id under v1, the id of the custom integration that
    /// holds it under v2 (deleting that integration deletes the webhook).
    pub fn handle(&self) -> &str {
        self.integration_id.as_deref().unwrap_or(&self.id)
    }
}

/// Body of `POST .../webhooks` (target required) and `PUT .../webhooks/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_client: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_full_app_user: Option<bool>,
}

/// Webhook triggers that Smooch accepts (case sensitive).
pub const WEBHOOK_TRIGGERS: &[&str] = &[
    "message",
    "message:appUser",
    "message:appMaker",
    "postback",
    "conversation:start",
    "conversation:read",
    "merge:appUser",
    "delivery:success",
    "delivery:failure",
    "typing:appMaker",
    "*",
];

/// v2 trigger names for the v1 ones that have an equivalent (v2 names
/// conversation events `conversation:*`); `None` for `*`, which v2 has no
/// equivalent of.
pub fn v2_trigger(v1: &str) -> Option<&'static str> {
    Some(match v1 {
        "message" | "message:appUser" | "message:appMaker" => "conversation:message",
        "postback" => "conversation:postback",
        "conversation:start" => "conversation:create",
        "conversation:read" => "conversation:read",
        "merge:appUser" => "user:merge",
        "delivery:success" => "conversation:message:delivery:channel",
        "delivery:failure" => "conversation:message:delivery:failure",
        "typing:appMaker" => "conversation:typing",
        _ => return None,
    })
}

/// Smooch's error body: `{"error": {"code", "description"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub description: String,
}

// Response envelopes.
#[derive(Debug, Serialize, Deserialize)]
pub struct AppEnvelope {
    pub app: App,
}
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyEnvelope {
    pub key: SecretKey,
}
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyListEnvelope {
    pub keys: Vec<SecretKey>,
}
#[derive(Debug, Serialize, Deserialize)]
pub struct JwtEnvelope {
    pub jwt: Sensitive,
}
#[derive(Debug, Serialize, Deserialize)]
pub struct IntegrationEnvelope {
    pub integration: Integration,
}
#[derive(Debug, Serialize, Deserialize)]
pub struct IntegrationListEnvelope {
    pub integrations: Vec<Integration>,
}
#[derive(Debug, Serialize, Deserialize)]
pub struct WebhookEnvelope {
    pub webhook: Webhook,
}
#[derive(Debug, Serialize, Deserialize)]
pub struct WebhookListEnvelope {
    pub webhooks: Vec<Webhook>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_params_serialize_like_the_curl_examples() {
        let p = IntegrationParams::Twilio {
            account_sid: "ACa1".into(),
            auth_token: "tok".into(),
            phone_number_sid: "PN06".into(),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "twilio", "accountSid": "ACa1", "authToken": "tok", "phoneNumberSid": "PN06"})
        );
        assert!(!format!("{p:?}").contains("tok\""));
    }

    #[test]
    fn integration_keeps_public_fields() {
        let i: Integration = serde_json::from_value(serde_json::json!({
            "_id": "5735ddfb48011972d621dc09", "type": "telegram", "username": "mikes_smooch_bot"
        }))
        .unwrap();
        assert_eq!(i.kind, IntegrationType::Telegram);
        assert_eq!(i.public_fields["username"], "mikes_smooch_bot");
    }

    #[test]
    fn printing_an_app_hides_its_token() {
        let app = App {
            id: "55c8d9758590aa1900b9b9f6".into(),
            app_token: Some("3s58wwlgx8xqbidgyyvzunoyw".into()),
            name: "My App".into(),
            settings: None,
            metadata: None,
        };
        assert!(!format!("{app:?}").contains("3s58wwlgx8xqbidgyyvzunoyw"));
    }
}
