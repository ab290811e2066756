//! Spec and status pieces shared by every kind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// API group of every smooch-operator resource.
pub const GROUP: &str = "smooch-operator.io";
/// Finalizer that guards external cleanup.
pub const FINALIZER: &str = "smooch-operator.io/cleanup";
/// Annotation: adopt this existing Smooch object (its id) instead of creating one.
pub const ADOPT_ANNOTATION: &str = "smooch-operator.io/external-id";
/// Annotation: "true" stops reconciling this resource until removed.
pub const PAUSED_ANNOTATION: &str = "smooch-operator.io/paused";
/// Label on every generated Secret, naming the operator.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "smooch-operator";
/// Labels on generated Secrets naming the resource that wrote them.
pub const OWNER_KIND_LABEL: &str = "smooch-operator.io/owner-kind";
pub const OWNER_NAME_LABEL: &str = "smooch-operator.io/owner-name";

/// What happens to the Smooch object when its resource is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the Smooch object too.
    #[default]
    Delete,
    /// Leave the Smooch object in place (it can be adopted again by id).
    Orphan,
}

/// A SmoochApp in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppReference {
    /// Name of the SmoochApp resource in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The Secret the operator writes with this resource's credentials.
/// Checked at admission as Kubernetes checks a Secret's metadata, so that a
/// bad name or label is refused before anything is created in Smooch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// Name of the Secret (a DNS subdomain: lower case letters, digits,
    /// `-` and `.`); defaults to the resource's name followed by a kind
    /// suffix (`-app`, `-key`, `-webhook`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: Option<String>,
    /// Extra labels on the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 64,
        "additionalProperties" = {"type": "string", "maxLength": 63, "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}
    ))]
    #[x_kube(validation = Rule::new(format!("self.all(k, size(k) <= 317 && k.matches('{QUALIFIED_NAME}'))")).message("label keys must be qualified names: an optional DNS subdomain prefix and '/', then 63 characters at most of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"))]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    #[x_kube(validation = Rule::new(format!("self.all(k, size(k) <= 317 && k.matches('{QUALIFIED_NAME}'))")).message("annotation keys must be qualified names: an optional DNS subdomain prefix and '/', then 63 characters at most of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"))]
    pub annotations: BTreeMap<String, String>,
}

/// A label or annotation key, as Kubernetes checks it (CEL's RE2 syntax).
const QUALIFIED_NAME: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";

/// Status fields every kind has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// `Ready` and `Synced`, the Kubernetes way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Name of the Secret written for this resource, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}
