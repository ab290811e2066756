//! Reads that a no-op re-check can take from the watch caches instead of
//! the API server.
//!
//! - Secrets: the controllers watch Secret *metadata* (small; no values are
//!   cached by the watches). A Secret's data read once (or written by the
//!   operator) is kept here with its `resourceVersion`, and handed out again
//!   while every watch cache that holds that Secret still shows the same
//!   `resourceVersion`. Any change makes the watches show a new one, so the
//!   next read goes to the API server. Each watch updates its cache before
//!   it wakes a controller, so a reconcile woken by a Secret change never
//!   sees the Secret as it was before.
//! - SmoochApps: a dependent reads its app from the SmoochApp controller's
//!   cache when the app is Ready there; otherwise (not cached, not Ready,
//!   being deleted) from the API server, so waiting on an app that just
//!   became Ready never waits for a cache to catch up.
//!
//! Decisions that must not act on stale data (create, re-create, rotation,
//! repair) read fresh ([`Reads::Fresh`]): the reconcile loop switches to
//! fresh reads before it takes one.

use crate::resources::SmoochApp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Where a reconcile may read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// The caches, when they are known to be current.
    Cached,
    /// The API server.
    Fresh,
}

/// Which Secrets a watch cache holds (all there are of them): a scope
/// (every namespace or one), narrowed by labels or a name.
#[derive(Clone, Debug)]
pub struct Coverage {
    /// `None`: every namespace.
    pub namespace: Option<String>,
    /// Labels every covered Secret has.
    pub labels: Vec<(String, String)>,
    /// Only the Secret of this name.
    pub name: Option<String>,
}

impl Coverage {
    fn covers(&self, secret: &Secret) -> bool {
        let meta = &secret.metadata;
        let in_namespace = self.namespace.is_none() || self.namespace == meta.namespace;
        let named = self.name.is_none() || self.name == meta.name;
        let labelled = self.labels.iter().all(|(k, v)| {
            meta.labels
                .as_ref()
                .and_then(|l| l.get(k))
                .is_some_and(|have| have == v)
        });
        in_namespace && named && labelled
    }
}

#[derive(Default)]
pub struct Caches {
    secret_meta: RwLock<Vec<(Coverage, Store<PartialObjectMeta<Secret>>)>>,
    apps: RwLock<Vec<Store<SmoochApp>>>,
    secret_data: Mutex<HashMap<(String, String), Arc<Secret>>>,
}

impl Caches {
    /// A watch cache of Secret metadata, holding the Secrets `coverage`
    /// describes.
    pub fn add_secret_store(&self, coverage: Coverage, store: Store<PartialObjectMeta<Secret>>) {
        self.secret_meta
            .write()
            .expect("not poisoned")
            .push((coverage, store));
    }

    /// The SmoochApp controller's cache.
    pub fn add_app_store(&self, store: Store<SmoochApp>) {
        self.apps.write().expect("not poisoned").push(store);
    }

    /// Whether `kept` is the Secret as it is now, as far as the watches
    /// know: every watch cache that would hold it (by its namespace, labels
    /// and name) holds it at `kept`'s `resourceVersion`, and there is one at
    /// least. A cache that has seen it change or go says otherwise.
    fn is_current(&self, kept: &Secret) -> bool {
        let (Some(namespace), Some(name), Some(rv)) = (
            kept.metadata.namespace.as_deref(),
            kept.metadata.name.as_deref(),
            kept.metadata.resource_version.as_deref(),
        ) else {
            return false;
        };
        let key = ObjectRef::<PartialObjectMeta<Secret>>::new(name).within(namespace);
        let stores = self.secret_meta.read().expect("not poisoned");
        let mut covering = stores.iter().filter(|(c, _)| c.covers(kept)).peekable();
        covering.peek().is_some()
            && covering.all(|(_, store)| {
                store
                    .get(&key)
                    .is_some_and(|m| m.metadata.resource_version.as_deref() == Some(rv))
            })
    }

    /// The Secret `namespace/name`: from the cache while the watches show
    /// the version kept here, else from the API server (and kept).
    pub async fn secret(
        &self,
        api: &Api<Secret>,
        namespace: &str,
        name: &str,
        reads: Reads,
    ) -> kube::Result<Option<Secret>> {
        let key = (namespace.to_owned(), name.to_owned());
        if reads == Reads::Cached {
            let kept = self
                .secret_data
                .lock()
                .expect("not poisoned")
                .get(&key)
                .cloned();
            if let Some(kept) = kept
                && self.is_current(&kept)
            {
                return Ok(Some(kept.as_ref().clone()));
            }
        }
        let read = api.get_opt(name).await?;
        let mut data = self.secret_data.lock().expect("not poisoned");
        match &read {
            Some(secret) => {
                data.insert(key, Arc::new(secret.clone()));
            }
            None => {
                data.remove(&key);
            }
        }
        Ok(read)
    }

    /// Keeps a Secret the operator just wrote (the API server's answer).
    pub fn remember_secret(&self, secret: &Secret) {
        let (Some(namespace), Some(name)) = (&secret.metadata.namespace, &secret.metadata.name)
        else {
            return;
        };
        self.secret_data
            .lock()
            .expect("not poisoned")
            .insert((namespace.clone(), name.clone()), Arc::new(secret.clone()));
    }

    /// The SmoochApp `namespace/name` from the controller's cache.
    pub fn app(&self, namespace: &str, name: &str) -> Option<Arc<SmoochApp>> {
        let key = ObjectRef::<SmoochApp>::new(name).within(namespace);
        let stores = self.apps.read().expect("not poisoned");
        stores.iter().find_map(|s| s.get(&key))
    }
}
