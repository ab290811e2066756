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
    pub fn is_satisfied_by(&self, existing: &KeptSecret) -> bool {
        existing.data_is(&self.data)
            && existing.has_all(Field::Label, &self.labels)
            && existing.has_all(Field::Annotation, &self.annotations)
            && existing.is_controlled_by(&self.owner.uid)
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

/// The Secret a reconcile writes, as it found it: the kept copy, and the
/// whole object when it was just read from the API server.
pub struct Found {
    pub kept: Arc<KeptSecret>,
    pub read: Option<Secret>,
}

/// Writes `desired` unless `existing` already matches. Returns what it
/// wrote, if it wrote. A Secret of that name owned by anything else is a
/// conflict. An update starts from the whole object (it keeps what others
/// added), read from the API server unless it was just read.
pub async fn ensure(
    api: &Api<Secret>,
    existing: Option<Found>,
    desired: &DesiredSecret,
) -> Result<Option<Secret>> {
    match existing {
        None => Ok(Some(create(api, desired).await?)),
        Some(found) if !found.kept.is_controlled_by(&desired.owner.uid) => {
            Err(Error::SecretConflict {
                name: desired.name.clone(),
            })
        }
        Some(found) if desired.is_satisfied_by(&found.kept) => Ok(None),
        // Just read, and checked above as its kept copy.
        Some(Found {
            read: Some(read), ..
        }) => Ok(Some(replace(api, read, desired).await?)),
        Some(_) => update(api, api.get_opt(&desired.name).await?, desired).await,
    }
}

/// Brings the whole Secret `current` in line with `desired` (creates it if
/// there is none). Returns what it wrote, if it wrote.
async fn update(
    api: &Api<Secret>,
    current: Option<Secret>,
    desired: &DesiredSecret,
) -> Result<Option<Secret>> {
    let Some(current) = current else {
        return Ok(Some(create(api, desired).await?));
    };
    if !is_owned_by(&current, &desired.owner.uid) {
        return Err(Error::SecretConflict {
            name: desired.name.clone(),
        });
    }
    if desired.is_satisfied_by(&KeptSecret::new(&current)) {
        return Ok(None);
    }
    Ok(Some(replace(api, current, desired).await?))
}

/// Writes `desired` over the whole Secret `current` (ours, checked by the
/// caller), keeping what others added to it.
async fn replace(
    api: &Api<Secret>,
    mut updated: Secret,
    desired: &DesiredSecret,
) -> kube::Result<Secret> {
    let meta = &mut updated.metadata;
    meta.labels
        .get_or_insert_with(Default::default)
        .extend(desired.labels.clone());
    meta.annotations
        .get_or_insert_with(Default::default)
        .extend(desired.annotations.clone());
    updated.data = Some(desired.byte_data());
    updated.string_data = None;
    api.replace(&desired.name, &write_params(), &updated).await
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
            update(api, api.get_opt(&desired.name).await?, desired).await
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

/// What the operator keeps of a Secret it read or wrote (`cache.rs`): what
/// its reconciles compare and read, and nothing else, packed in one
/// allocation. A Secret as decoded costs about 2 KB (an inline `ObjectMeta`,
/// a B-tree node per map, an allocation per string); this costs its bytes
/// and nine more per entry. No `Debug`: it holds the Secret's values.
pub struct KeptSecret {
    being_deleted: bool,
    /// Entries one after another: a [`Field`] byte, the key's length (u32,
    /// little-endian), the key, the value's length, the value.
    packed: Box<[u8]>,
}

/// What an entry of a [`KeptSecret`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Field {
    /// `metadata.resourceVersion` (the value; no key).
    Version,
    /// The uid of an owner reference that is the controller (the value).
    Controller,
    /// A finalizer (the key; no value).
    Finalizer,
    Label,
    Annotation,
    Data,
}

/// One length-prefixed part of an entry, and what follows it.
fn split_part(bytes: &[u8]) -> (&[u8], &[u8]) {
    let (len, rest) = bytes.split_at(4);
    let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
    rest.split_at(len)
}

impl KeptSecret {
    pub fn new(secret: &Secret) -> Self {
        let meta = &secret.metadata;
        let mut packed = Vec::new();
        let mut put = |field: Field, key: &[u8], value: &[u8]| {
            packed.push(field as u8);
            for part in [key, value] {
                let len = u32::try_from(part.len()).expect("a Secret is at most 1 MiB");
                packed.extend_from_slice(&len.to_le_bytes());
                packed.extend_from_slice(part);
            }
        };
        if let Some(version) = &meta.resource_version {
            put(Field::Version, b"", version.as_bytes());
        }
        for owner in meta.owner_references.iter().flatten() {
            if owner.controller == Some(true) {
                put(Field::Controller, b"", owner.uid.as_bytes());
            }
        }
        for finalizer in meta.finalizers.iter().flatten() {
            put(Field::Finalizer, finalizer.as_bytes(), b"");
        }
        for (k, v) in meta.labels.iter().flatten() {
            put(Field::Label, k.as_bytes(), v.as_bytes());
        }
        // kubectl's copy of the applied manifest (values included) is
        // neither compared nor read.
        for (k, v) in meta.annotations.iter().flatten() {
            if k != super::LAST_APPLIED_ANNOTATION {
                put(Field::Annotation, k.as_bytes(), v.as_bytes());
            }
        }
        for (k, v) in secret.data.iter().flatten() {
            put(Field::Data, k.as_bytes(), &v.0);
        }
        KeptSecret {
            being_deleted: meta.deletion_timestamp.is_some(),
            packed: packed.into_boxed_slice(),
        }
    }

    /// The entries of one field: key and value.
    fn entries(&self, field: Field) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut rest = &self.packed[..];
        std::iter::from_fn(move || {
            let (&tag, after) = rest.split_first()?;
            let (key, after) = split_part(after);
            let (value, after) = split_part(after);
            rest = after;
            Some((tag, key, value))
        })
        .filter(move |(tag, _, _)| *tag == field as u8)
        .map(|(_, key, value)| (key, value))
    }

    fn get(&self, field: Field, key: &str) -> Option<&[u8]> {
        self.entries(field)
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    pub fn resource_version(&self) -> Option<&str> {
        let (_, version) = self.entries(Field::Version).next()?;
        std::str::from_utf8(version).ok()
    }

    /// Whether the owner reference that is the controller has `uid`.
    pub fn is_controlled_by(&self, uid: &str) -> bool {
        self.entries(Field::Controller)
            .any(|(_, v)| v == uid.as_bytes())
    }

    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.get(Field::Finalizer, finalizer).is_some()
    }

    pub fn is_being_deleted(&self) -> bool {
        self.being_deleted
    }

    /// One value of the Secret's data, if it is there and is text.
    pub fn value(&self, key: &str) -> Option<Sensitive> {
        let bytes = self.get(Field::Data, key)?;
        std::str::from_utf8(bytes).ok().map(Sensitive::from)
    }

    /// Whether every label (or annotation) of `want` is here with its value.
    fn has_all(&self, field: Field, want: &BTreeMap<String, String>) -> bool {
        want.iter()
            .all(|(k, v)| self.get(field, k) == Some(v.as_bytes()))
    }

    /// Whether the data is exactly `want`: no key more, none less.
    fn data_is(&self, want: &BTreeMap<String, Sensitive>) -> bool {
        self.entries(Field::Data).count() == want.len()
            && want
                .iter()
                .all(|(k, v)| self.get(Field::Data, k) == Some(v.expose().as_bytes()))
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
        let kept = |s: Secret| KeptSecret::new(&s);
        assert!(d.is_satisfied_by(&kept(existing("u1", "abc"))));
        assert!(!d.is_satisfied_by(&kept(existing("u1", "edited"))));
        assert!(!d.is_satisfied_by(&kept(existing("someone-else", "abc"))));
        // A key more, or a label of ours changed, is not what we wrote.
        let mut extra = existing("u1", "abc");
        extra
            .data
            .as_mut()
            .unwrap()
            .insert("more".into(), ByteString(b"x".to_vec()));
        assert!(!d.is_satisfied_by(&kept(extra)));
        let mut relabelled = existing("u1", "abc");
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("team".into(), "y".into());
        assert!(!d.is_satisfied_by(&kept(relabelled)));
        // Labels and annotations added by others are left alone.
        let mut added = existing("u1", "abc");
        added
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("other".into(), "z".into());
        added.metadata.annotations = Some([("note".to_string(), "hi".to_string())].into());
        assert!(d.is_satisfied_by(&kept(added)));
    }

    #[test]
    fn a_kept_secret_reads_what_the_secret_says() {
        let mut secret = existing("u1", "abc");
        let meta = &mut secret.metadata;
        meta.resource_version = Some("42".into());
        meta.finalizers = Some(vec!["smooch-operator.io/in-use-by-u9".into()]);
        meta.annotations = Some(
            [(
                crate::reconcile::LAST_APPLIED_ANNOTATION.to_string(),
                "{\"data\":{\"appId\":\"abc\"}}".to_string(),
            )]
            .into(),
        );
        let mut not_controller = owner("u2");
        not_controller.controller = None;
        meta.owner_references.as_mut().unwrap().push(not_controller);
        let kept = KeptSecret::new(&secret);
        assert_eq!(kept.resource_version(), Some("42"));
        assert!(kept.is_controlled_by("u1"));
        assert!(!kept.is_controlled_by("u2"), "an owner, not the controller");
        assert!(kept.has_finalizer("smooch-operator.io/in-use-by-u9"));
        assert!(!kept.has_finalizer("smooch-operator.io/in-use-by-u1"));
        assert!(!kept.is_being_deleted());
        assert_eq!(kept.value("appId").unwrap().expose(), "abc");
        assert!(kept.value("missing").is_none());
        // Labels are not data, and kubectl's copy of the manifest is dropped.
        assert!(kept.value("team").is_none());
        assert!(
            kept.get(Field::Annotation, crate::reconcile::LAST_APPLIED_ANNOTATION)
                .is_none()
        );
        // A value that is not text is there, but has no text to give.
        secret
            .data
            .as_mut()
            .unwrap()
            .insert("bin".into(), ByteString(vec![0xff, 0xfe]));
        let kept = KeptSecret::new(&secret);
        assert!(kept.get(Field::Data, "bin").is_some());
        assert!(kept.value("bin").is_none());
        let empty = KeptSecret::new(&Secret::default());
        assert!(empty.resource_version().is_none() && empty.value("appId").is_none());
    }
}
