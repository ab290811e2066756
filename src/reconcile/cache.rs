//! Reads that a no-op re-check can take from memory instead of the API
//! server.
//!
//! - Secrets: a Secret's data read once, or written by us (the API server's
//!   answer to the write), is kept here until a watch reports another
//!   version of that Secret (a change by anyone, a deletion, a relist that
//!   finds it changed); the event drops the kept copy before it wakes a
//!   controller, so a reconcile woken by a Secret change reads it fresh.
//!   The event of the very version kept (our own write) leaves it. A read
//!   or write answered after such an event is not kept (each event bumps
//!   the Secret's epoch; an answer is kept only if the epoch did not move
//!   while it was in flight). Every Secret the operator reads is under one
//!   of its watches (all Secrets of the watched namespaces, and the default
//!   credentials Secret).
//! - SmoochApps: a dependent reads its app from the SmoochApp controller's
//!   cache when the app is Ready there; otherwise (not cached, not Ready,
//!   being deleted) from the API server, so waiting on an app that just
//!   became Ready never waits for a cache to catch up.
//!
//! Decisions that must not act on stale data (create, re-create, rotation,
//! repair) read fresh ([`Reads::Fresh`]): the reconcile loop switches to
//! fresh reads before it takes one. Fresh are the resource itself, its app
//! and the Secret it writes; Secrets that are only inputs (app-maker
//! credentials, channel tokens) are read from their kept copy even then,
//! since a change to one reaches the watch, drops the copy and wakes its
//! users. A Secret for a Smooch object made just now is created without a
//! read (no Secret can hold anything of that object yet).

use super::secrets::{Found, KeptSecret};
use crate::resources::SmoochApp;
use crate::smooch::SmoochClient;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Where a reconcile may read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Memory, while no watch has reported a change.
    Cached,
    /// The API server.
    Fresh,
}

#[derive(Default)]
struct Slot {
    /// Bumped by every watch event about the Secret.
    epoch: u64,
    kept: Option<Arc<KeptSecret>>,
}

/// Values by namespace and name. Looked up by `&str` without allocating
/// (every Secret event looks up its slot); a namespace is stored once.
struct ByName<V>(HashMap<Box<str>, HashMap<Box<str>, V>>);

impl<V> Default for ByName<V> {
    fn default() -> Self {
        ByName(HashMap::new())
    }
}

impl<V: Default> ByName<V> {
    fn get(&self, namespace: &str, name: &str) -> Option<&V> {
        self.0.get(namespace)?.get(name)
    }

    /// The value of `namespace/name`, made (default) if there is none.
    fn entry(&mut self, namespace: &str, name: &str) -> &mut V {
        if !self.0.contains_key(namespace) {
            self.0.insert(namespace.into(), HashMap::new());
        }
        let names = self.0.get_mut(namespace).expect("just made");
        if !names.contains_key(name) {
            names.insert(name.into(), V::default());
        }
        names.get_mut(name).expect("just made")
    }
}

#[derive(Default)]
pub struct Caches {
    apps: RwLock<Vec<Store<SmoochApp>>>,
    secrets: Mutex<ByName<Slot>>,
    /// The Smooch client made from a credentials Secret, with the kept copy
    /// it was made from: reused while that copy is the one kept (a re-check
    /// then neither parses the credentials nor signs a JWT).
    clients: Mutex<ByName<Option<MadeFrom>>>,
}

/// A client and the kept copy of the Secret it was made from.
type MadeFrom = (Arc<KeptSecret>, SmoochClient);

impl Caches {
    /// The SmoochApp controller's cache.
    pub fn add_app_store(&self, store: Store<SmoochApp>) {
        self.apps.write().expect("not poisoned").push(store);
    }

    /// A watch saw the Secret `namespace/name` at `resource_version`
    /// (changed, deleted, listed again): the kept copy may be out of date,
    /// unless it is that very version (the event of our own write, whose
    /// answer is kept: see [`Caches::keep_written`]). A deletion passes no
    /// version.
    pub fn secret_event(&self, namespace: &str, name: &str, resource_version: Option<&str>) {
        let mut secrets = self.secrets.lock().expect("not poisoned");
        let slot = secrets.entry(namespace, name);
        slot.epoch = slot.epoch.wrapping_add(1);
        let same = |kept: &Arc<KeptSecret>| {
            resource_version.is_some() && kept.resource_version() == resource_version
        };
        if !slot.kept.as_ref().is_some_and(same) {
            slot.kept = None;
        }
    }

    /// Where the watch events of the Secret `namespace/name` are up to;
    /// taken before writing it.
    pub fn secret_epoch(&self, namespace: &str, name: &str) -> u64 {
        let secrets = self.secrets.lock().expect("not poisoned");
        secrets.get(namespace, name).map_or(0, |s| s.epoch)
    }

    /// Keeps what the API server answered to our write of the Secret
    /// `namespace/name` (so the next re-check need not read it), unless a
    /// watch event about it came since `epoch`: the answer may then be
    /// older than what the event reported.
    pub fn keep_written(&self, namespace: &str, name: &str, epoch: u64, written: &Secret) {
        let mut secrets = self.secrets.lock().expect("not poisoned");
        let slot = secrets.entry(namespace, name);
        if slot.epoch == epoch {
            slot.kept = Some(Arc::new(KeptSecret::new(written)));
        }
    }

    /// The Secret `namespace/name`: the kept copy for a re-check, else from
    /// the API server (and kept, unless a watch event came meanwhile).
    /// Shared with the kept copy, not cloned: a re-check reads it only.
    pub async fn secret(
        &self,
        api: &Api<Secret>,
        namespace: &str,
        name: &str,
        reads: Reads,
    ) -> kube::Result<Option<Arc<KeptSecret>>> {
        let found = self.find_secret(api, namespace, name, reads).await?;
        Ok(found.map(|f| f.kept))
    }

    /// As [`Caches::secret`], and with the whole object when it was read
    /// from the API server (what an update of the Secret starts from).
    pub async fn find_secret(
        &self,
        api: &Api<Secret>,
        namespace: &str,
        name: &str,
        reads: Reads,
    ) -> kube::Result<Option<Found>> {
        let epoch = {
            let secrets = self.secrets.lock().expect("not poisoned");
            let slot = secrets.get(namespace, name);
            if reads == Reads::Cached
                && let Some(kept) = slot.and_then(|s| s.kept.as_ref())
            {
                return Ok(Some(Found {
                    kept: kept.clone(),
                    read: None,
                }));
            }
            slot.map_or(0, |s| s.epoch)
        };
        let read = api.get_opt(name).await?;
        let kept = read.as_ref().map(|s| Arc::new(KeptSecret::new(s)));
        let mut secrets = self.secrets.lock().expect("not poisoned");
        let slot = secrets.entry(namespace, name);
        if slot.epoch == epoch {
            slot.kept = kept.clone();
        }
        Ok(read.zip(kept).map(|(read, kept)| Found {
            kept,
            read: Some(read),
        }))
    }

    /// The client made earlier from this very copy of the Secret
    /// `namespace/name`, if any.
    pub fn client_made_from(
        &self,
        namespace: &str,
        name: &str,
        secret: &Arc<KeptSecret>,
    ) -> Option<SmoochClient> {
        let clients = self.clients.lock().expect("not poisoned");
        let (from, client) = clients.get(namespace, name)?.as_ref()?;
        Arc::ptr_eq(from, secret).then(|| client.clone())
    }

    /// Keeps the client made from this copy of the Secret `namespace/name`.
    pub fn keep_client(
        &self,
        namespace: &str,
        name: &str,
        secret: &Arc<KeptSecret>,
        client: &SmoochClient,
    ) {
        let mut clients = self.clients.lock().expect("not poisoned");
        *clients.entry(namespace, name) = Some((secret.clone(), client.clone()));
    }

    /// The SmoochApp `namespace/name` from the controller's cache.
    pub fn app(&self, namespace: &str, name: &str) -> Option<Arc<SmoochApp>> {
        let key = ObjectRef::<SmoochApp>::new(name).within(namespace);
        let stores = self.apps.read().expect("not poisoned");
        stores.iter().find_map(|s| s.get(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_reused_only_for_the_copy_it_was_made_from() {
        use crate::smooch::{Credentials, Transport, TransportConfig};
        let transport = Transport::new(TransportConfig::default(), None).unwrap();
        let credentials = Credentials::app_maker_key("app_1", "s3cr3t");
        let client = SmoochClient::new(transport, &credentials).unwrap();
        let caches = Caches::default();
        let kept = Arc::new(KeptSecret::new(&Secret::default()));
        assert!(caches.client_made_from("ns", "creds", &kept).is_none());
        caches.keep_client("ns", "creds", &kept, &client);
        let reused = caches.client_made_from("ns", "creds", &kept).unwrap();
        assert_eq!(reused.account(), client.account());
        // The same content read again (after a watch event) is another
        // copy: the client is made anew from it.
        let reread = Arc::new(KeptSecret::new(&Secret::default()));
        assert!(caches.client_made_from("ns", "creds", &reread).is_none());
        assert!(caches.client_made_from("ns", "other", &kept).is_none());
    }

    #[test]
    fn an_event_drops_the_kept_copy_and_moves_the_epoch() {
        let caches = Caches::default();
        *caches.secrets.lock().unwrap().entry("ns", "s") = Slot {
            epoch: 4,
            kept: Some(Arc::new(KeptSecret::new(&at_version("7")))),
        };
        caches.secret_event("ns", "s", Some("8"));
        let secrets = caches.secrets.lock().unwrap();
        let slot = secrets.get("ns", "s").unwrap();
        assert!(slot.kept.is_none());
        assert_eq!(slot.epoch, 5);
    }

    fn at_version(rv: &str) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.resource_version = Some(rv.into());
        secret
    }

    #[test]
    fn our_write_is_kept_until_a_newer_version_or_a_deletion() {
        let caches = Caches::default();
        let epoch = caches.secret_epoch("ns", "s");
        caches.keep_written("ns", "s", epoch, &at_version("10"));
        let kept = |c: &Caches| {
            c.secrets
                .lock()
                .unwrap()
                .get("ns", "s")
                .unwrap()
                .kept
                .clone()
        };
        // The event of that write itself keeps it.
        caches.secret_event("ns", "s", Some("10"));
        assert!(kept(&caches).is_some());
        // Someone else's change drops it.
        caches.secret_event("ns", "s", Some("11"));
        assert!(kept(&caches).is_none());
        // A deletion too.
        let epoch = caches.secret_epoch("ns", "s");
        caches.keep_written("ns", "s", epoch, &at_version("12"));
        caches.secret_event("ns", "s", None);
        assert!(kept(&caches).is_none());
    }

    #[test]
    fn a_write_answered_after_an_event_is_not_kept() {
        let caches = Caches::default();
        let epoch = caches.secret_epoch("ns", "s");
        // An event about the Secret arrives while the write is in flight.
        caches.secret_event("ns", "s", Some("11"));
        caches.keep_written("ns", "s", epoch, &at_version("10"));
        let secrets = caches.secrets.lock().unwrap();
        assert!(secrets.get("ns", "s").unwrap().kept.is_none());
    }
}
