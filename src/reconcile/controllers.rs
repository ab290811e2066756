//! Wires one kube-runtime Controller per kind: what each watches and which
//! resources a change of a Secret or a SmoochApp wakes up.

use super::cache::Caches;
use super::credentials;
use super::{Context, Managed, error_policy, reconcile};
use crate::resources::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_KIND_LABEL, SmoochApp, SmoochIntegration, SmoochKey,
    SmoochWebhook,
};
use futures::{FutureExt, StreamExt, future};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::ExponentialBackoff;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Which namespaces to watch.
#[derive(Clone, Debug)]
pub enum Scope {
    All,
    Namespace(String),
}

impl Scope {
    fn api<K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>>(
        &self,
        client: &kube::Client,
    ) -> Api<K> {
        match self {
            Scope::All => Api::all(client.clone()),
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        }
    }
}

/// Counts caches that have finished their first list; readiness waits for
/// all. A standby replica (waiting for the leader Lease) is ready too: it is
/// healthy and can take over.
#[derive(Default)]
pub struct Readiness {
    pending: AtomicUsize,
    total: AtomicUsize,
    standby: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.standby.load(Ordering::SeqCst)
            || (self.total.load(Ordering::SeqCst) > 0 && self.pending.load(Ordering::SeqCst) == 0)
    }
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::SeqCst);
    }
    fn register(&self) {
        self.total.fetch_add(1, Ordering::SeqCst);
        self.pending.fetch_add(1, Ordering::SeqCst);
    }
    fn synced(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Longest pause of one watch between two attempts to reach the API server
/// (before jitter, which adds up to as much again).
pub const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A watch that paces its own reconnects: 0.5 s doubling to
/// [`WATCH_BACKOFF_MAX`] (plus up to 100 % jitter), reset by its next event.
/// kube-runtime's `default_backoff` (0.8 s doubling to 30 s, plus up to
/// 100 % jitter: up to a minute) could keep a watch away that long after the
/// API server was back. A `410 Gone` ("too old resource version": what a
/// restarted API server answers a watch resumed from before the restart) is
/// no outage: the watch relists at once.
fn paced<K, S>(stream: S) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    stream
        .filter(|event| {
            future::ready(
                !matches!(event, Err(watcher::Error::WatchError(status)) if status.code == 410),
            )
        })
        .backoff(ExponentialBackoff::from(
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(WATCH_BACKOFF_MAX)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
        ))
}

/// The backoff of a Controller's merged input: none, since every input
/// stream backs off on its own ([`paced`]).
///
/// kube-runtime's default here is one more `DefaultBackoff` (0.8 s doubling
/// to 30 s, plus up to 100 % jitter), shared by all of a controller's
/// watches and reset only by an event that gets through: any watch error
/// pauses *every* input of the controller, including the primary watch that
/// feeds the cache the reconciles read. After an API server restart each
/// watch's `410 Gone` (and before that, each refused reconnect) doubled it,
/// so the controllers were paused again and again, up to 36 s at a time,
/// for over a minute after the API server was back (BENCHMARKS.md, "Control
/// plane restart"); a reconcile waiting for a watch event (a finalizer just
/// added, an app becoming Ready for its dependents) waited as long.
struct NoTriggerBackoff;

impl Iterator for NoTriggerBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl Backoff for NoTriggerBackoff {
    fn reset(&mut self) {}
}

/// Changes that need a reconcile: spec (generation), annotations (pause,
/// adopt), finalizers and deletion. Status-only updates (our own writes)
/// do not, so a reconcile never wakes itself up.
fn reconcile_worthy<K: Resource>(obj: &K) -> Option<u64> {
    let mut h = DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.annotations().hash(&mut h);
    obj.finalizers().hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Drops the kept copy of every Secret a watch event names (see
/// `cache.rs`), before the event goes on to wake anyone.
fn forget_on_event(
    caches: Arc<Caches>,
) -> impl FnMut(&Result<watcher::Event<PartialObjectMeta<Secret>>, watcher::Error>) {
    move |event| {
        let forget = |s: &PartialObjectMeta<Secret>| {
            caches.secret_event(
                s.metadata.namespace.as_deref().unwrap_or_default(),
                s.metadata.name.as_deref().unwrap_or_default(),
            )
        };
        match event {
            Ok(
                watcher::Event::Apply(s) | watcher::Event::InitApply(s) | watcher::Event::Delete(s),
            ) => forget(s),
            Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => {}
        }
    }
}

fn owned_secrets(
    scope: &Scope,
    ctx: &Context,
    kind: &str,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static
{
    let api: Api<PartialObjectMeta<Secret>> = scope.api(&ctx.client);
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{OWNER_KIND_LABEL}={kind}");
    // Our own writes do not wake the owner (it just wrote what it wanted);
    // edits by anyone else and deletions do (drift repair), and the owner
    // then reads the Secret fresh.
    paced(watcher(api, watcher::Config::default().labels(&selector)))
        .inspect(forget_on_event(ctx.caches.clone()))
        .filter_map(|event| {
            future::ready(match event {
                Ok(watcher::Event::Apply(s)) if super::secrets::written_last_by_us(&s.metadata) => {
                    None
                }
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => Some(Ok(s)),
                Ok(watcher::Event::Delete(s)) => Some(Ok(s)),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                Err(e) => Some(Err(e)),
            })
        })
}

/// Every Secret's metadata (credentials and channel tokens are users'
/// Secrets); each event drops the kept copy of its Secret first.
fn all_secrets(
    scope: &Scope,
    ctx: &Context,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static
{
    paced(watcher(
        scope.api::<PartialObjectMeta<Secret>>(&ctx.client),
        watcher::Config::default(),
    ))
    .inspect(forget_on_event(ctx.caches.clone()))
    .touched_objects()
}

fn apps(
    scope: &Scope,
    ctx: &Context,
) -> impl futures::Stream<Item = Result<SmoochApp, watcher::Error>> + Send + 'static {
    paced(watcher(
        scope.api::<SmoochApp>(&ctx.client),
        watcher::Config::default(),
    ))
    .touched_objects()
    .predicate_filter(what_dependents_see, Default::default())
}

/// What a dependent reads from its SmoochApp: spec (credentials), the app
/// id of a Ready app, deletion. Other changes (a finalizer, a condition's
/// time, the id recorded before the app is Ready) do not wake the dependents.
fn what_dependents_see(app: &SmoochApp) -> Option<u64> {
    let mut h = DefaultHasher::new();
    app.meta().generation.hash(&mut h);
    let status = app.status.as_ref();
    let ready =
        status.is_some_and(|s| super::status::is_true(&s.common.conditions, super::status::READY));
    ready.hash(&mut h);
    ready
        .then(|| status.and_then(|s| s.app_id.as_deref()))
        .flatten()
        .hash(&mut h);
    app.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

fn default_credentials(
    ctx: &Context,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static
{
    let settings = &ctx.settings;
    let api: Api<PartialObjectMeta<Secret>> =
        Api::namespaced(ctx.client.clone(), &settings.operator_namespace);
    let selector = format!("metadata.name={}", settings.default_credentials_secret);
    paced(watcher(api, watcher::Config::default().fields(&selector)))
        .inspect(forget_on_event(ctx.caches.clone()))
        .touched_objects()
}

/// The primary stream of a kind, cached in a store, filtered to changes that matter.
fn primary<K: Managed>(
    scope: &Scope,
    ctx: &Context,
    readiness: Arc<Readiness>,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
) {
    let (reader, writer) = reflector::store();
    readiness.register();
    // Counted off at the end of the first list. (A task awaiting
    // Store::wait_until_ready beside the controller never resolved with kube 5.0.)
    let mut first_list = true;
    let stream = paced(watcher(
        scope.api::<K>(&ctx.client),
        watcher::Config::default(),
    ))
    .inspect(move |event| {
        if first_list && matches!(event, Ok(watcher::Event::InitDone)) {
            first_list = false;
            readiness.synced();
        }
    })
    // Nothing reads who wrote which field of our own resources.
    .modify(|o| o.meta_mut().managed_fields = None)
    .reflect(writer)
    .applied_objects()
    .predicate_filter(reconcile_worthy::<K>, Default::default());
    (reader, stream)
}

/// Samples how many resources of a kind wait for a reconcile: their current
/// generation is not yet observed, or they are not Ready.
fn sample_queue_depth<K: Managed>(scope: &Scope, store: Store<K>, ctx: Arc<Context>) {
    let scope = match scope {
        Scope::All => "*".to_string(),
        Scope::Namespace(ns) => ns.clone(),
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            let depth = store
                .state()
                .iter()
                .filter(|o| {
                    let status = o.common_status();
                    let observed = status.and_then(|s| s.observed_generation);
                    let ready = status.is_some_and(|s| {
                        super::status::is_true(&s.conditions, super::status::READY)
                    });
                    observed != o.meta().generation || !ready
                })
                .count();
            ctx.metrics.set_queue_depth(K::KIND, &scope, depth);
        }
    });
}

/// Dependents (in `store`) of the SmoochApp `app`.
fn dependents_of<K: Resource<DynamicType = ()> + Clone>(
    store: &Store<K>,
    app: &SmoochApp,
    app_name_of: fn(&K) -> &str,
) -> Vec<ObjectRef<K>> {
    let ns = app.namespace();
    store
        .state()
        .iter()
        .filter(|d| d.namespace() == ns && app_name_of(d) == app.name_any())
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

/// Runs every controller until shutdown.
pub async fn run(
    ctx: Arc<Context>,
    scopes: Vec<Scope>,
    concurrency: u16,
    readiness: Arc<Readiness>,
    shutdown: impl future::Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let config = ControllerConfig::default().concurrency(concurrency);
    let mut runs = Vec::new();
    for scope in scopes {
        // SmoochApp: owns its Secret; wakes on its credentials Secret.
        let (reader, stream) = primary::<SmoochApp>(&scope, &ctx, readiness.clone());
        sample_queue_depth(&scope, reader.clone(), ctx.clone());
        ctx.caches.add_app_store(reader.clone());
        let users_of_credentials = {
            let store = reader.clone();
            let ctx = ctx.clone();
            move |secret: PartialObjectMeta<Secret>| {
                let key = (secret.namespace().unwrap_or_default(), secret.name_any());
                store
                    .state()
                    .iter()
                    .filter(|a| credentials::source_of(a, &ctx) == key)
                    .map(|a| ObjectRef::from_obj(a.as_ref()))
                    .collect::<Vec<_>>()
            }
        };
        let mut controller = Controller::for_stream(stream, reader)
            .owns_stream(owned_secrets(&scope, &ctx, "SmoochApp"))
            .watches_stream(all_secrets(&scope, &ctx), users_of_credentials.clone());
        // The default credentials Secret lives in the operator's namespace,
        // which a namespaced scope does not see.
        if matches!(&scope, Scope::Namespace(ns) if *ns != ctx.settings.operator_namespace) {
            controller = controller.watches_stream(default_credentials(&ctx), users_of_credentials);
        }
        runs.push(
            controller
                .with_config(config.clone())
                .trigger_backoff(NoTriggerBackoff)
                .graceful_shutdown_on(shutdown.clone())
                .run(
                    reconcile::<SmoochApp>,
                    error_policy::<SmoochApp>,
                    ctx.clone(),
                )
                .for_each(|_| future::ready(()))
                .boxed(),
        );

        // SmoochKey: owns its Secret; waits for its app.
        let (reader, stream) = primary::<SmoochKey>(&scope, &ctx, readiness.clone());
        sample_queue_depth(&scope, reader.clone(), ctx.clone());
        let store = reader.clone();
        runs.push(
            Controller::for_stream(stream, reader)
                .owns_stream(owned_secrets(&scope, &ctx, "SmoochKey"))
                .watches_stream(apps(&scope, &ctx), move |app| {
                    dependents_of(&store, &app, |k: &SmoochKey| &k.spec.app_ref.name)
                })
                .with_config(config.clone())
                .trigger_backoff(NoTriggerBackoff)
                .graceful_shutdown_on(shutdown.clone())
                .run(
                    reconcile::<SmoochKey>,
                    error_policy::<SmoochKey>,
                    ctx.clone(),
                )
                .for_each(|_| future::ready(()))
                .boxed(),
        );

        // SmoochIntegration: waits for its app; re-provisions when a credential Secret changes.
        let (reader, stream) = primary::<SmoochIntegration>(&scope, &ctx, readiness.clone());
        sample_queue_depth(&scope, reader.clone(), ctx.clone());
        let app_store = reader.clone();
        let secret_store = reader.clone();
        runs.push(
            Controller::for_stream(stream, reader)
                .watches_stream(apps(&scope, &ctx), move |app| {
                    dependents_of(&app_store, &app, |i: &SmoochIntegration| {
                        &i.spec.app_ref.name
                    })
                })
                .watches_stream(all_secrets(&scope, &ctx), move |secret| {
                    let (ns, name) = (secret.namespace(), secret.name_any());
                    secret_store
                        .state()
                        .iter()
                        .filter(|i| {
                            i.namespace() == ns && i.secret_refs().iter().any(|r| r.name == name)
                        })
                        .map(|i| ObjectRef::from_obj(i.as_ref()))
                        .collect::<Vec<_>>()
                })
                .with_config(config.clone())
                .trigger_backoff(NoTriggerBackoff)
                .graceful_shutdown_on(shutdown.clone())
                .run(
                    reconcile::<SmoochIntegration>,
                    error_policy::<SmoochIntegration>,
                    ctx.clone(),
                )
                .for_each(|_| future::ready(()))
                .boxed(),
        );

        // SmoochWebhook: owns its Secret; waits for its app.
        let (reader, stream) = primary::<SmoochWebhook>(&scope, &ctx, readiness.clone());
        sample_queue_depth(&scope, reader.clone(), ctx.clone());
        let store = reader.clone();
        runs.push(
            Controller::for_stream(stream, reader)
                .owns_stream(owned_secrets(&scope, &ctx, "SmoochWebhook"))
                .watches_stream(apps(&scope, &ctx), move |app| {
                    dependents_of(&store, &app, |w: &SmoochWebhook| &w.spec.app_ref.name)
                })
                .with_config(config.clone())
                .trigger_backoff(NoTriggerBackoff)
                .graceful_shutdown_on(shutdown.clone())
                .run(
                    reconcile::<SmoochWebhook>,
                    error_policy::<SmoochWebhook>,
                    ctx.clone(),
                )
                .for_each(|_| future::ready(()))
                .boxed(),
        );
    }
    future::join_all(runs).await;
}
