use super::common::*;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A secret key of a Smooch app. The operator writes a Secret with `appId`,
/// `keyId`, `secret` and an app-scoped `jwt`.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "smooch-operator.io",
    version = "v1alpha1",
    kind = "SmoochKey",
    namespaced,
    status = "SmoochKeyStatus",
    shortname = "skey",
    category = "smooch",
    selectable = ".spec.appRef.name",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Key ID","type":"string","jsonPath":".status.keyId"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SmoochKeySpec {
    /// The SmoochApp this key belongs to.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.appRef is immutable"))]
    pub app_ref: AppReference,
    /// A friendly name for the key; defaults to the resource's name. The
    /// operator appends `.<resource uid>` in Smooch so it can find the key again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub name: Option<String>,
    /// Periodic rotation: a new key is created every `every`, the Secret
    /// switches to it, and the old key is deleted after `overlap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<KeyRotation>,
    /// What to do with the Smooch key when this resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Secret written with `appId`, `keyId`, `secret` and `jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<SecretTemplate>,
}

/// Key rotation periods, as Go durations (`720h`, `90m`, `1h30m`). At most
/// one previous key is kept, so `overlap` may not exceed `every`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(
    validation = Rule::new("!self.every.matches('^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$') || duration(self.every) >= duration('1m')").message("spec.rotation.every must be at least 1m (keys are not churned)").field_path(".every"),
    validation = Rule::new("!self.every.matches('^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$') || !self.overlap.matches('^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$') || duration(self.overlap) <= duration(self.every)").message("spec.rotation.overlap must not be longer than spec.rotation.every (the previous key must expire before the next rotation)").field_path(".overlap"),
)]
pub struct KeyRotation {
    /// How long a key is used before a new one replaces it; at least 1m.
    #[schemars(
        length(min = 1, max = 32),
        regex(pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$")
    )]
    pub every: String,
    /// How long the previous key stays valid after the switch, so that
    /// running clients are never left with a revoked key. Default 1h; at
    /// most `every`.
    #[serde(default = "default_overlap")]
    #[schemars(
        length(min = 1, max = 32),
        regex(pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"),
        default = "default_overlap"
    )]
    pub overlap: String,
}

fn default_overlap() -> String {
    "1h".into()
}

/// Observed state of a SmoochKey.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmoochKeyStatus {
    /// Smooch id of the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Smooch id of the key in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// When the key in use was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_created_at: Option<String>,
    /// The key replaced by the last rotation, still valid until `previousKeyExpiresAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_key_id: Option<String>,
    /// When the previous key will be deleted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_key_expires_at: Option<String>,
    #[serde(flatten)]
    pub common: CommonStatus,
}
