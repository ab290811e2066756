use crate::metrics::Metrics;
use crate::smooch::Transport;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Resource;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::client::ClientBuilder;
use kube::runtime::events::EventType;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::BoxError;

/// Operator-wide settings the reconcilers need.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of the operator (where the default credentials Secret lives).
    pub operator_namespace: String,
    /// Name of the default app-maker credentials Secret in that namespace.
    pub default_credentials_secret: String,
    /// How often every resource is checked against Smooch (drift repair).
    pub resync_period: Duration,
    /// Periodic re-checks running at once, all kinds together (below the
    /// Smooch calls in flight, so that changes always have calls left).
    pub recheck_concurrency: usize,
    /// Fallback retry while waiting for a dependency (watches usually win).
    pub dependency_retry: Duration,
    /// Retry after a permanent Smooch error (400/401/403/404).
    pub permanent_error_retry: Duration,
    pub min_error_backoff: Duration,
    pub max_error_backoff: Duration,
    /// Namespaces the operator watches (empty: all of them); where it looks
    /// for other resources that may already manage a Smooch object.
    pub watch_namespaces: Vec<String>,
    /// Namespaces whose resources may use the default credentials.
    pub default_credentials_namespaces: NamespaceSet,
    /// Namespaces whose resources may adopt existing Smooch objects.
    pub adoption_namespaces: NamespaceSet,
}

/// A cluster admin's allow-list of namespaces: every namespace (`*`, the
/// default) or the ones named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NamespaceSet {
    #[default]
    All,
    Only(std::collections::BTreeSet<String>),
}

impl NamespaceSet {
    /// From a comma-separated flag: empty entries are ignored; `*` (or no
    /// entry at all) means every namespace.
    pub fn from_list(items: &[String]) -> Self {
        let named: std::collections::BTreeSet<String> = items
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if named.is_empty() || named.contains("*") {
            NamespaceSet::All
        } else {
            NamespaceSet::Only(named)
        }
    }

    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            NamespaceSet::All => true,
            NamespaceSet::Only(named) => named.contains(namespace),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            operator_namespace: "smooch-operator".into(),
            default_credentials_secret: "smooch-credentials".into(),
            resync_period: Duration::from_secs(600),
            recheck_concurrency: 8,
            dependency_retry: Duration::from_secs(60),
            permanent_error_retry: Duration::from_secs(300),
            min_error_backoff: Duration::from_secs(1),
            max_error_backoff: Duration::from_secs(300),
            watch_namespaces: Vec::new(),
            default_credentials_namespaces: NamespaceSet::All,
            adoption_namespaces: NamespaceSet::All,
        }
    }
}

/// What every reconcile is handed.
pub struct Context {
    pub client: kube::Client,
    pub smooch: Arc<Transport>,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    /// The operator's apps by uid tag (crash-safe lookups before creates).
    pub app_index: super::app::AppIndex,
    /// Held from an adoption's ownership check until its id is recorded.
    pub adoption: tokio::sync::Mutex<()>,
    /// Watch caches a re-check reads from (see `cache.rs`).
    pub caches: Arc<super::cache::Caches>,
    /// When each Ready resource is due for its periodic re-check.
    pub rechecks: super::recheck::Rechecks,
    /// `reportingInstance` of our events: the pod, or the controller's name.
    instance: String,
    failures: Mutex<HashMap<String, u32>>,
    /// Uids of objects we added our finalizer to whose cached copy does not
    /// show it yet.
    finalizers_added: Mutex<std::collections::HashSet<String>>,
}

/// `reportingController` of our events.
const REPORTING_CONTROLLER: &str = "smooch-operator";

/// The longest note the API server takes in an event (bytes).
const EVENT_NOTE_MAX: usize = 1024;

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut_to(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Context {
    /// `kube` is the operator's Kubernetes client to be: built here with
    /// [`RefuseInRechecks`](super::recheck::RefuseInRechecks) as its
    /// outermost layer, so that no re-check can send a request through it.
    pub fn new<S, B>(
        kube: ClientBuilder<S>,
        smooch: Arc<Transport>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self
    where
        S: tower::Service<http::Request<kube::client::Body>, Response = http::Response<B>>
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let client = kube.with_layer(&super::recheck::RefuseInRechecks).build();
        Context {
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| REPORTING_CONTROLLER.into()),
            client,
            smooch,
            settings,
            metrics,
            app_index: Default::default(),
            adoption: Default::default(),
            caches: Default::default(),
            rechecks: Default::default(),
            finalizers_added: Default::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes an event about `obj`. Events are best effort: a failure
    /// to publish is logged, never fails the reconcile.
    ///
    /// One create per event, nothing kept: kube-runtime's `Recorder` keeps
    /// every event it sent for six minutes (to count repeats as a series)
    /// and walks them all on each publish, which at 3,000 resources was
    /// 9 MB of the operator's peak memory (BENCHMARKS.md). Our events do not
    /// repeat: a failure is published when it is new, not at each retry.
    /// The name is generated by the API server from the resource's name,
    /// so that resources with names of any length get events.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        // Events say what the operator did (never a secret value): the
        // info log tells the same story for those who read logs.
        let kind = K::kind(&());
        let namespace = obj.meta().namespace.as_deref().unwrap_or_default();
        let name = obj.meta().name.as_deref().unwrap_or_default();
        let type_ = match type_ {
            EventType::Normal => {
                tracing::info!(%kind, %namespace, %name, reason, "{note}");
                "Normal"
            }
            EventType::Warning => {
                tracing::warn!(%kind, %namespace, %name, reason, "{note}");
                "Warning"
            }
        };
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}-")),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            event_time: Some(MicroTime(jiff::Timestamp::now())),
            type_: Some(type_.into()),
            reason: Some(reason.into()),
            action: Some(reason.into()),
            note: Some(cut_to(note, EVENT_NOTE_MAX).into()),
            regarding: Some(obj.object_ref(&())),
            reporting_controller: Some(REPORTING_CONTROLLER.into()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        match events.create(&PostParams::default(), &event).await {
            Ok(_) => self.metrics.kube_write(kind.as_ref(), "event"),
            Err(e) => tracing::debug!(error = %e, reason, "could not publish event"),
        }
    }

    /// Our finalizer was just added to the object `uid`.
    pub fn finalizer_added(&self, uid: &str) {
        self.finalizers_added
            .lock()
            .expect("not poisoned")
            .insert(uid.to_owned());
    }

    /// Whether we added our finalizer to `uid` and its cached copy has not
    /// shown it since.
    pub fn finalizer_added_earlier(&self, uid: &str) -> bool {
        self.finalizers_added
            .lock()
            .expect("not poisoned")
            .contains(uid)
    }

    /// The cached copy of `uid` shows our finalizer: the cache caught up.
    pub fn finalizer_seen(&self, uid: &str) {
        self.finalizers_added
            .lock()
            .expect("not poisoned")
            .remove(uid);
    }

    /// Counts a transient failure of one object; returns how many in a row.
    pub fn count_failure(&self, uid: &str) -> u32 {
        let mut failures = self.failures.lock().expect("not poisoned");
        let n = failures.entry(uid.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n - 1
    }

    pub fn forget_failures(&self, uid: &str) {
        self.failures.lock().expect("not poisoned").remove(uid);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn notes_are_cut_at_a_character_boundary() {
        assert_eq!(super::cut_to("short", 1024), "short");
        assert_eq!(super::cut_to("abcdef", 3), "abc");
        // "é" is two bytes: a cut inside it keeps the character out.
        assert_eq!(super::cut_to("aé", 2), "a");
        assert_eq!(super::cut_to("aé", 3), "aé");
    }
}
