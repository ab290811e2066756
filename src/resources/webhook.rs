use super::common::*;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A webhook of a Smooch app. The operator writes a Secret with the
/// webhook's `secret`, which receivers use to check who called them.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "smooch-operator.io",
    version = "v1alpha1",
    kind = "SmoochWebhook",
    namespaced,
    status = "SmoochWebhookStatus",
    shortname = "shook",
    category = "smooch",
    selectable = ".spec.appRef.name",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.target"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Webhook ID","type":"string","jsonPath":".status.webhookId"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SmoochWebhookSpec {
    /// The SmoochApp this webhook belongs to.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.appRef is immutable"))]
    pub app_ref: AppReference,
    /// The http(s) URL Smooch calls.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && (url(self).getScheme() == 'https' || url(self).getScheme() == 'http') && url(self).getHostname() != ''").message("spec.target must be an absolute http or https URL"))]
    pub target: String,
    /// Events that call the webhook; default `["message"]`.
    #[serde(default = "default_triggers")]
    #[schemars(default = "default_triggers", length(min = 1, max = 11))]
    pub triggers: Vec<WebhookTrigger>,
    /// Include the client that sent a message in webhook payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_client: Option<bool>,
    /// Include the full app user in webhook payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_full_app_user: Option<bool>,
    /// What to do with the Smooch webhook when this resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Secret written with the webhook's `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<SecretTemplate>,
}

pub fn default_triggers() -> Vec<WebhookTrigger> {
    vec![WebhookTrigger::Message]
}

/// Events Smooch can call a webhook for (case sensitive).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum WebhookTrigger {
    #[serde(rename = "message")]
    Message,
    #[serde(rename = "message:appUser")]
    MessageAppUser,
    #[serde(rename = "message:appMaker")]
    MessageAppMaker,
    #[serde(rename = "postback")]
    Postback,
    #[serde(rename = "conversation:start")]
    ConversationStart,
    #[serde(rename = "conversation:read")]
    ConversationRead,
    #[serde(rename = "merge:appUser")]
    MergeAppUser,
    #[serde(rename = "delivery:success")]
    DeliverySuccess,
    #[serde(rename = "delivery:failure")]
    DeliveryFailure,
    #[serde(rename = "typing:appMaker")]
    TypingAppMaker,
    #[serde(rename = "*")]
    All,
}

impl WebhookTrigger {
    /// The name Smooch uses.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookTrigger::Message => "message",
            WebhookTrigger::MessageAppUser => "message:appUser",
            WebhookTrigger::MessageAppMaker => "message:appMaker",
            WebhookTrigger::Postback => "postback",
            WebhookTrigger::ConversationStart => "conversation:start",
            WebhookTrigger::ConversationRead => "conversation:read",
            WebhookTrigger::MergeAppUser => "merge:appUser",
            WebhookTrigger::DeliverySuccess => "delivery:success",
            WebhookTrigger::DeliveryFailure => "delivery:failure",
            WebhookTrigger::TypingAppMaker => "typing:appMaker",
            WebhookTrigger::All => "*",
        }
    }
}

/// Observed state of a SmoochWebhook.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmoochWebhookStatus {
    /// Smooch id of the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Smooch id of the webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    /// Sunshine Conversations v2 only: the `custom` integration that holds
    /// the webhook (deleting the resource deletes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(flatten)]
    pub common: CommonStatus,
}
