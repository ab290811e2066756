use super::common::*;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A messaging channel of a Smooch app. Every credential is a reference to
/// a Secret key in the same namespace; none can be written inline.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "smooch-operator.io",
    version = "v1alpha1",
    kind = "SmoochIntegration",
    namespaced,
    status = "SmoochIntegrationStatus",
    shortname = "sint",
    category = "smooch",
    selectable = ".spec.appRef.name",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Integration ID","type":"string","jsonPath":".status.integrationId"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.spec.type != 'messenger' || has(self.spec.messenger)").message("spec.messenger is required when spec.type is messenger").field_path(".spec.messenger").reason(Reason::FieldValueRequired),
    validation = Rule::new("self.spec.type != 'twilio' || has(self.spec.twilio)").message("spec.twilio is required when spec.type is twilio").field_path(".spec.twilio").reason(Reason::FieldValueRequired),
    validation = Rule::new("self.spec.type != 'telegram' || has(self.spec.telegram)").message("spec.telegram is required when spec.type is telegram").field_path(".spec.telegram").reason(Reason::FieldValueRequired),
    validation = Rule::new("self.spec.type != 'line' || has(self.spec.line)").message("spec.line is required when spec.type is line").field_path(".spec.line").reason(Reason::FieldValueRequired),
    validation = Rule::new("[has(self.spec.messenger), has(self.spec.twilio), has(self.spec.telegram), has(self.spec.line)].filter(x, x).size() == 1").message("exactly one of spec.messenger, spec.twilio, spec.telegram, spec.line must be set, matching spec.type").field_path(".spec.type").reason(Reason::FieldValueForbidden)
)]
#[serde(rename_all = "camelCase")]
pub struct SmoochIntegrationSpec {
    /// The SmoochApp this integration belongs to.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.appRef is immutable"))]
    pub app_ref: AppReference,
    /// The channel: messenger, twilio, telegram or line.
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.type is immutable"))]
    pub kind: IntegrationKind,
    /// Messenger settings (when type is messenger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messenger: Option<MessengerSpec>,
    /// Twilio SMS settings (when type is twilio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio: Option<TwilioSpec>,
    /// Telegram settings (when type is telegram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramSpec>,
    /// LINE settings (when type is line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LineSpec>,
    /// What to do with the Smooch integration when this resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Integration types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    Messenger,
    Twilio,
    Telegram,
    Line,
}

/// Facebook Messenger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessengerSpec {
    /// The Facebook App ID.
    #[schemars(length(min = 1))]
    pub app_id: String,
    /// Secret key holding the Facebook App Secret.
    pub app_secret_ref: SecretKeyRef,
    /// Secret key holding the Page Access Token.
    pub page_access_token_ref: SecretKeyRef,
}

/// Twilio SMS.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TwilioSpec {
    /// Twilio Account SID (`AC...`).
    #[schemars(regex(pattern = r"^AC[0-9a-fA-F]{32}$"))]
    pub account_sid: String,
    /// SID of the phone number (`PN...`).
    #[schemars(regex(pattern = r"^PN[0-9a-fA-F]{32}$"))]
    pub phone_number_sid: String,
    /// Secret key holding the Twilio Auth Token.
    pub auth_token_ref: SecretKeyRef,
}

/// Telegram.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelegramSpec {
    /// Secret key holding the Telegram Bot Token.
    pub token_ref: SecretKeyRef,
}

/// LINE.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineSpec {
    /// LINE Channel ID.
    #[schemars(length(min = 1))]
    pub channel_id: String,
    /// Authorized user id (`mid`).
    #[schemars(length(min = 1))]
    pub mid: String,
    /// Secret key holding the LINE Channel Secret.
    pub channel_secret_ref: SecretKeyRef,
}

/// Observed state of a SmoochIntegration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmoochIntegrationStatus {
    /// Smooch id of the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Smooch id of the integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// The public fields Smooch returned (never a credential).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub public_fields: BTreeMap<String, Value>,
    /// Hash of the spec and credential values last provisioned; a change
    /// re-provisions the integration. Not reversible to any credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_hash: Option<String>,
    #[serde(flatten)]
    pub common: CommonStatus,
}
