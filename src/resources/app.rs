use super::common::*;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Smooch app. The operator writes a Secret with `appId` and `appToken`.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "smooch-operator.io",
    version = "v1alpha1",
    kind = "SmoochApp",
    namespaced,
    status = "SmoochAppStatus",
    shortname = "sapp",
    category = "smooch",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"App ID","type":"string","jsonPath":".status.appId"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SmoochAppSpec {
    /// The user-facing name of the app.
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.name must not be empty"))]
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// App settings (Smooch `settings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<AppSettingsSpec>,
    /// Caller-chosen metadata (Smooch `metadata`), string values. The key
    /// `smoochOperatorUid` is reserved: the operator tags the app with it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("!('smoochOperatorUid' in self)").message("spec.metadata.smoochOperatorUid is reserved for the operator"))]
    pub metadata: BTreeMap<String, String>,
    /// What to do with the Smooch app when this resource is deleted.
    /// Defaults to Orphan: deleting a Smooch app destroys its conversations.
    #[serde(default = "orphan")]
    #[schemars(default = "orphan")]
    pub deletion_policy: DeletionPolicy,
    /// App-maker credentials for this app, overriding the operator's default:
    /// a Secret in this namespace with keys `keyId` and `secret` (or `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// The Secret written with `appId` and `appToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<SecretTemplate>,
}

fn orphan() -> DeletionPolicy {
    DeletionPolicy::Orphan
}

/// A Secret in the resource's namespace holding app-maker credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CredentialsSecretRef {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Smooch app settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSettingsSpec {
    /// Mask credit card numbers in messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_credit_card_numbers: Option<bool>,
    /// Give anonymous users animal names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_animal_names: Option<bool>,
    /// Seconds to keep conversations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub conversation_retention_seconds: Option<i64>,
    /// Echo postbacks as messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_postback: Option<bool>,
    /// Do not start conversations automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_auto_conversation_start: Option<bool>,
}

/// Observed state of a SmoochApp.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmoochAppStatus {
    /// Smooch's id for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The credentials Secret (of this namespace) the app uses; it carries
    /// a finalizer of this app's until the app is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_name: Option<String>,
    #[serde(flatten)]
    pub common: CommonStatus,
}
