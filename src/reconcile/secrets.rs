//! The Secrets the operator writes: owned by their resource, labelled,
//! named and decorated by the spec's template, and never written over a
//! Secret that someone else owns.

use crate::resources::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_KIND_LABEL, OWNER_NAME_LABEL, SecretTemplate,
};
use crate::smooch::Sensitive;
use crate::{Error, Result};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The Secret a resource should have.
pub struct DesiredSecret {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner: OwnerReference,
    pub data: BTreeMap<String, Sensitive>,
}

impl DesiredSecret {
    pub fn new(
        kind: &str,
        owner: OwnerReference,
        default_name: String,
        template: Option<&SecretTemplate>,
        data: BTreeMap<String, Sensitive>,
    ) -> Self {
        let template = template.cloned().unwrap_or_default();
        let mut labels = template.labels;
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
        labels.insert(OWNER_KIND_LABEL.into(), kind.into());
        labels.insert(OWNER_NAME_LABEL.into(), label_value(&owner.name));
        DesiredSecret {
            name: template.name.unwrap_or(default_name),
            labels,
            annotations: template.annotations,
            owner,
            data,
        }
    }

    fn byte_data(&self) -> BTreeMap<String, ByteString> {
        self.data
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.expose().as_bytes().to_vec())))
            .collect()
    }

    /// Whether `existing` already says everything this Secret should say.
    /// Extra labels or annotations added by others are left alone.
    pub fn is_satisfied_by(&self, existing: &Secret) -> bool {
        let meta = &existing.metadata;
        let has_all = |want: &BTreeMap<String, String>, have: &Option<BTreeMap<String, String>>| {
            want.iter()
                .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
        };
        existing.data.clone().unwrap_or_default() == self.byte_data()
            && has_all(&self.labels, &meta.labels)
            && has_all(&self.annotations, &meta.annotations)
            && is_owned_by(existing, &self.owner.uid)
    }
}

/// Kubernetes' limits: label values and object names.
const MAX_LABEL_VALUE: usize = 63;
const MAX_NAME: usize = 253;

/// A stable short fingerprint of `text`, for names cut to fit a limit.
fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(text.as_bytes())[..5])
}

/// `text` cut to at most `max` bytes, ending on a letter or digit (the names
/// here are ASCII: DNS subdomains).
fn cut(text: &str, max: usize) -> &str {
    let end = text.len().min(max);
    text[..end].trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
}

/// A label value naming the resource `name`: the name itself when it fits
/// in 63 characters, else its start and a hash of the whole name.
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_LABEL_VALUE {
        return name.to_string();
    }
    let hash = short_hash(name);
    format!("{}-{hash}", cut(name, MAX_LABEL_VALUE - 1 - hash.len()))
}

/// The default Secret name of resource `name`: `<name>-<suffix>`, or, past
/// Kubernetes' 253 characters, the name's start, a hash of it and the suffix.
pub fn default_secret_name(name: &str, suffix: &str) -> String {
    let plain = format!("{name}-{suffix}");
    if plain.len() <= MAX_NAME {
        return plain;
    }
    let hash = short_hash(name);
    let room = MAX_NAME - hash.len() - suffix.len() - 2;
    format!("{}-{hash}-{suffix}", cut(name, room))
}

pub fn is_owned_by(secret: &Secret, uid: &str) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// Reads one value of a Secret, if both exist.
pub fn value_of(secret: &Secret, key: &str) -> Option<Sensitive> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok().map(Sensitive::from)
}

/// Writes `desired` unless `existing` already matches. Returns what it
/// wrote, if it wrote. A Secret of that name owned by anything else is a conflict.
pub async fn ensure(
    api: &Api<Secret>,
    existing: Option<Arc<Secret>>,
    desired: &DesiredSecret,
) -> Result<Option<Secret>> {
    match existing {
        Some(current) if !is_owned_by(&current, &desired.owner.uid) => Err(Error::SecretConflict {
            name: desired.name.clone(),
        }),
        Some(current) if desired.is_satisfied_by(&current) => Ok(None),
        Some(current) => {
            let mut updated = Arc::unwrap_or_clone(current);
            let meta = &mut updated.metadata;
            meta.labels
                .get_or_insert_with(Default::default)
                .extend(desired.labels.clone());
            meta.annotations
                .get_or_insert_with(Default::default)
                .extend(desired.annotations.clone());
            updated.data = Some(desired.byte_data());
            updated.string_data = None;
            Ok(Some(
                api.replace(&desired.name, &write_params(), &updated)
                    .await?,
            ))
        }
        None => Ok(Some(create(api, desired).await?)),
    }
}

/// Our writes carry our field manager, so that the owned-Secret watch can
/// tell them from someone else's edit (`written_last_by_us`).
fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(super::MANAGER.into()),
        ..Default::default()
    }
}

/// Whether the newest entry of the object's managedFields is ours alone: the
/// last change was our own write, which needs no reconcile. A tie in time
/// (second granularity) with another manager counts as someone else's.
pub fn written_last_by_us(meta: &ObjectMeta) -> bool {
    let Some(fields) = meta.managed_fields.as_ref() else {
        return false;
    };
    let Some(newest) = fields.iter().filter_map(|f| f.time.as_ref()).max() else {
        return false;
    };
    let mut latest = fields.iter().filter(|f| f.time.as_ref() == Some(newest));
    latest.all(|f| f.manager.as_deref() == Some(super::MANAGER))
}

/// Creates the Secret without reading first (for a Smooch object made just
/// now, whose data no Secret can hold yet); when one of that name exists,
/// reads it and goes on as [`ensure`]. Returns what it wrote, if it wrote.
pub async fn create_or_ensure(
    api: &Api<Secret>,
    desired: &DesiredSecret,
) -> Result<Option<Secret>> {
    match create(api, desired).await {
        Ok(created) => Ok(Some(created)),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api.get_opt(&desired.name).await?.map(Arc::new);
            ensure(api, existing, desired).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn create(api: &Api<Secret>, desired: &DesiredSecret) -> kube::Result<Secret> {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            labels: Some(desired.labels.clone()),
            annotations: (!desired.annotations.is_empty()).then(|| desired.annotations.clone()),
            owner_references: Some(vec![desired.owner.clone()]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(desired.byte_data()),
        ..Default::default()
    };
    api.create(&write_params(), &secret).await
}

/// Deletes a Secret this resource owns (after a rename, or on cleanup).
pub async fn delete_owned(api: &Api<Secret>, name: &str, owner_uid: &str) -> Result<bool> {
    match api.get_opt(name).await? {
        Some(s) if is_owned_by(&s, owner_uid) => {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed(entries: &[(&str, i64)]) -> ObjectMeta {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
        ObjectMeta {
            managed_fields: Some(
                entries
                    .iter()
                    .map(|(manager, secs)| ManagedFieldsEntry {
                        manager: Some(manager.to_string()),
                        time: Some(Time(jiff::Timestamp::from_second(*secs).unwrap())),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn only_our_own_latest_write_is_ours() {
        assert!(written_last_by_us(&managed(&[("smooch-operator", 10)])));
        assert!(written_last_by_us(&managed(&[
            ("kubectl-edit", 5),
            ("smooch-operator", 10)
        ])));
        assert!(!written_last_by_us(&managed(&[
            ("smooch-operator", 5),
            ("kubectl-edit", 10)
        ])));
        // Same second: cannot tell who was last, so it is not ours.
        assert!(!written_last_by_us(&managed(&[
            ("smooch-operator", 10),
            ("kubectl-edit", 10)
        ])));
        assert!(!written_last_by_us(&ObjectMeta::default()));
    }

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "smooch-operator.io/v1alpha1".into(),
            kind: "SmoochApp".into(),
            name: "demo".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn desired() -> DesiredSecret {
        let mut data = BTreeMap::new();
        data.insert("appId".to_string(), Sensitive::from("abc"));
        let template = SecretTemplate {
            name: Some("custom".into()),
            labels: [("team".to_string(), "x".to_string())].into(),
            annotations: Default::default(),
        };
        DesiredSecret::new(
            "SmoochApp",
            owner("u1"),
            "demo-app".into(),
            Some(&template),
            data,
        )
    }

    fn existing(uid: &str, value: &str) -> Secret {
        let d = desired();
        Secret {
            metadata: ObjectMeta {
                name: Some(d.name.clone()),
                labels: Some(d.labels.clone()),
                owner_references: Some(vec![owner(uid)]),
                ..Default::default()
            },
            data: Some([("appId".to_string(), ByteString(value.as_bytes().to_vec()))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn long_names_fit_kubernetes_limits_and_stay_distinct() {
        let long_a = format!("{}.{}", "a".repeat(200), "b".repeat(52));
        let long_b = format!("{}.{}", "a".repeat(200), "c".repeat(52));
        for name in [long_a.as_str(), long_b.as_str()] {
            assert_eq!(name.len(), 253);
            let label = label_value(name);
            assert!(label.len() <= 63, "{label}");
            assert!(label.ends_with(|c: char| c.is_ascii_alphanumeric()));
            let secret = default_secret_name(name, "webhook");
            assert!(secret.len() <= 253, "{}", secret.len());
            assert!(secret.ends_with("-webhook"));
        }
        assert_ne!(label_value(&long_a), label_value(&long_b));
        assert_ne!(
            default_secret_name(&long_a, "key"),
            default_secret_name(&long_b, "key")
        );
        // A dot or dash where the name is cut is not left before the hash.
        let dotted = format!("{}.{}", "x".repeat(51), "y".repeat(30));
        assert!(!label_value(&dotted).contains(".-"));
        // Short names are unchanged.
        assert_eq!(label_value("shop"), "shop");
        assert_eq!(default_secret_name("shop", "app"), "shop-app");
    }

    #[test]
    fn template_sets_name_and_labels() {
        let d = desired();
        assert_eq!(d.name, "custom");
        assert_eq!(d.labels["team"], "x");
        assert_eq!(d.labels[MANAGED_BY_LABEL], MANAGED_BY_VALUE);
    }

    #[test]
    fn satisfied_only_when_data_and_owner_match() {
        let d = desired();
        assert!(d.is_satisfied_by(&existing("u1", "abc")));
        assert!(!d.is_satisfied_by(&existing("u1", "edited")));
        assert!(!d.is_satisfied_by(&existing("someone-else", "abc")));
    }
}
