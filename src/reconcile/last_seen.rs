//! What a watch last showed of each object, to tell a change from a repeat.

use kube::Resource;
use kube::api::ObjectMeta;
use kube::runtime::watcher;
use std::collections::{HashMap, HashSet};

/// The last hash seen of each object of one watch, by uid: tells an event
/// worth acting on from one that repeats what was seen (a status-only
/// update when the hash leaves status out, an object relisted unchanged).
///
/// Lean, since it holds an entry per object: the uid as a number and the
/// hash, 32 bytes, no string. (kube's `predicate_filter` kept the name,
/// namespace and uid as strings, and a time, per object; and a deleted
/// object until an hour had passed.)
#[derive(Default)]
pub struct LastSeen {
    hashes: HashMap<u128, u64>,
    /// Between the start and the end of a (re)list: the objects it listed.
    /// Those not listed are gone (their deletion happened while the watch
    /// was away) and are forgotten when it ends.
    relisted: Option<HashSet<u128>>,
}

impl LastSeen {
    /// Takes in one watch event; `hash` is what matters of its object.
    /// Returns whether the event is a change:
    ///
    /// - an object applied is one if it is new or its hash is not the last
    ///   seen. An object listed again by a relist is compared with what was
    ///   seen before the relist: listed unchanged, it is no change;
    /// - a deletion is one (and its object is forgotten; one created again
    ///   under the same name has a new uid, so it is new);
    /// - the start and the end of a relist are none.
    ///
    /// An object without a uid in the form Kubernetes gives (a UUID) cannot
    /// be told apart: each of its events is a change.
    pub fn changed<K: Resource>(
        &mut self,
        event: &watcher::Event<K>,
        hash: impl FnOnce(&K) -> u64,
    ) -> bool {
        match event {
            watcher::Event::Init => {
                self.relisted = Some(HashSet::new());
                false
            }
            watcher::Event::InitDone => {
                if let Some(listed) = self.relisted.take() {
                    self.hashes.retain(|uid, _| listed.contains(uid));
                }
                false
            }
            watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                let Some(uid) = uid(obj.meta()) else {
                    return true;
                };
                if let Some(listed) = &mut self.relisted {
                    listed.insert(uid);
                }
                let hash = hash(obj);
                self.hashes.insert(uid, hash) != Some(hash)
            }
            watcher::Event::Delete(obj) => {
                if let Some(uid) = uid(obj.meta()) {
                    self.hashes.remove(&uid);
                }
                true
            }
        }
    }
}

/// The uid of an object as a number, if it is a UUID as Kubernetes writes
/// it: 32 lowercase hex digits in groups of 8, 4, 4, 4 and 12, joined by
/// dashes. Two different uids in that form are two different numbers.
fn uid(meta: &ObjectMeta) -> Option<u128> {
    let uid = meta.uid.as_deref()?.as_bytes();
    if uid.len() != 36 {
        return None;
    }
    let mut n: u128 = 0;
    for (i, &c) in uid.iter().enumerate() {
        let digit = match (i, c) {
            (8 | 13 | 18 | 23, b'-') => continue,
            (8 | 13 | 18 | 23, _) => return None,
            (_, b'0'..=b'9') => c - b'0',
            (_, b'a'..=b'f') => c - b'a' + 10,
            _ => return None,
        };
        n = n << 4 | u128::from(digit);
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};

    /// A ConfigMap whose hash is its generation.
    fn cm(uid: &str, generation: i64) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("a".into()),
                namespace: Some("ns".into()),
                uid: Some(uid.into()),
                generation: Some(generation),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn generation(c: &ConfigMap) -> u64 {
        c.metadata.generation.unwrap_or_default() as u64
    }

    const A: &str = "0f6c1c3e-7a51-4d2b-9c3e-5b8f2a1d4e60";
    const B: &str = "6d2a9b40-1e3f-4c85-a7d1-0b9e8f7c6a52";
    const C: &str = "c1b2a3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";

    #[test]
    fn a_new_or_changed_object_is_a_change_the_same_again_is_not() {
        let mut seen = LastSeen::default();
        assert!(seen.changed(&Apply(cm(A, 1)), generation), "new");
        assert!(!seen.changed(&Apply(cm(A, 1)), generation), "same hash");
        assert!(seen.changed(&Apply(cm(A, 2)), generation), "changed hash");
        assert!(!seen.changed(&Apply(cm(A, 2)), generation));
        assert!(seen.changed(&Apply(cm(B, 2)), generation), "another object");
    }

    #[test]
    fn a_deletion_is_a_change_and_a_new_object_by_the_same_name_is_new() {
        let mut seen = LastSeen::default();
        assert!(seen.changed(&Apply(cm(A, 1)), generation));
        assert!(seen.changed(&Delete(cm(A, 1)), generation));
        assert!(seen.hashes.is_empty());
        // Created again under the same name: a new uid.
        assert!(seen.changed(&Apply(cm(B, 1)), generation));
    }

    #[test]
    fn a_relist_forgets_the_missing_and_passes_on_only_the_changed() {
        let mut seen = LastSeen::default();
        assert!(!seen.changed(&Init, generation));
        assert!(seen.changed(&InitApply(cm(A, 1)), generation));
        assert!(seen.changed(&InitApply(cm(B, 1)), generation));
        assert!(!seen.changed(&InitDone, generation));
        assert!(seen.changed(&Apply(cm(C, 1)), generation));

        // Relisted while away: A unchanged, B changed, C deleted.
        assert!(!seen.changed(&Init, generation));
        assert!(!seen.changed(&InitApply(cm(A, 1)), generation));
        assert!(seen.changed(&InitApply(cm(B, 2)), generation));
        assert_eq!(seen.hashes.len(), 3, "kept until the relist ends");
        assert!(!seen.changed(&InitDone, generation));
        assert_eq!(seen.hashes.len(), 2);
        assert!(!seen.changed(&Apply(cm(A, 1)), generation));
        assert!(!seen.changed(&Apply(cm(B, 2)), generation));
        assert!(seen.changed(&Apply(cm(C, 1)), generation), "forgotten");
    }

    #[test]
    fn an_object_without_a_uuid_is_always_a_change() {
        let mut seen = LastSeen::default();
        let mut no_uid = cm(A, 1);
        no_uid.metadata.uid = None;
        for obj in [no_uid, cm("a", 1), cm(&A.to_uppercase(), 1)] {
            assert!(seen.changed(&Apply(obj.clone()), generation));
            assert!(seen.changed(&Apply(obj), generation));
        }
        assert!(seen.hashes.is_empty());
    }

    #[test]
    fn uids_are_read_as_uuids() {
        let uid_of = |uid: &str| super::uid(&cm(uid, 0).metadata);
        assert_eq!(uid_of(A), Some(0x0f6c1c3e_7a51_4d2b_9c3e_5b8f2a1d4e60),);
        assert_eq!(uid_of("00000000-0000-0000-0000-000000000000"), Some(0));
        assert_eq!(
            uid_of("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            Some(u128::MAX)
        );
        for not_a_uuid in [
            "",
            "0f6c1c3e7a514d2b9c3e5b8f2a1d4e60",
            "0f6c1c3e-7a51-4d2b-9c3e-5b8f2a1d4e6",
            "0f6c1c3e-7a51-4d2b-9c3e-5b8f2a1d4e600",
            "0f6c1c3e-7a514-d2b-9c3e-5b8f2a1d4e60",
            "0f6c1c3e-7a51-4d2b-9c3e-5b8f2a1d4e6g",
            "0F6C1C3E-7A51-4D2B-9C3E-5B8F2A1D4E60",
            "+f6c1c3e-7a51-4d2b-9c3e-5b8f2a1d4e60",
        ] {
            assert_eq!(uid_of(not_a_uuid), None, "{not_a_uuid}");
        }
    }
}
