//! Wires one kube-runtime Controller per kind: what each watches and which
//! resources a change of a Secret or a SmoochApp wakes up.

use super::credentials;
use super::index::{Index, SharedIndex, Target};
use super::last_seen::LastSeen;
use super::recheck;
use super::{Context, Managed, error_policy, reconcile};
use crate::resources::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_KIND_LABEL, SmoochApp, SmoochIntegration, SmoochKey,
    SmoochWebhook,
};
use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::{FutureExt, StreamExt, TryStreamExt, future};
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
use tokio::sync::Semaphore;

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
fn reconcile_worthy<K: Resource>(obj: &K) -> u64 {
    let mut h = DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.annotations().hash(&mut h);
    obj.finalizers().hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    h.finish()
}

/// Where the shared watches send a change: to the controller of a kind, as
/// the resources of that kind to reconcile.
pub(crate) type Wake<K> = UnboundedSender<ObjectRef<K>>;

fn wake_all<K: Resource<DynamicType = ()>>(
    wake: &Wake<K>,
    refs: impl IntoIterator<Item = ObjectRef<K>>,
) {
    for r in refs {
        // A closed channel is a controller that has shut down.
        let _ = wake.unbounded_send(r);
    }
}

/// The resources of kind `K` named in the owner references of `meta`.
fn owners<K: Resource<DynamicType = ()>>(
    meta: &kube::core::ObjectMeta,
) -> impl Iterator<Item = ObjectRef<K>> + '_ {
    let (kind, api_version) = (K::kind(&()), K::api_version(&()));
    meta.owner_references
        .iter()
        .flatten()
        .filter(move |o| o.kind == kind && o.api_version == api_version)
        .map(|o| ObjectRef::new(&o.name).within(meta.namespace.as_deref().unwrap_or_default()))
}

/// The controllers one Secret watch wakes, and the indexes that say which
/// resources a Secret concerns.
struct SecretRoutes {
    ctx: Arc<Context>,
    apps: (Wake<SmoochApp>, SharedIndex<SmoochApp>),
    keys: Wake<SmoochKey>,
    webhooks: Wake<SmoochWebhook>,
    integrations: (Wake<SmoochIntegration>, SharedIndex<SmoochIntegration>),
}

impl SecretRoutes {
    fn route(&self, event: &watcher::Event<PartialObjectMeta<Secret>>) {
        let (secret, applied, deleted) = match event {
            watcher::Event::Apply(s) => (s, true, false),
            watcher::Event::InitApply(s) => (s, false, false),
            watcher::Event::Delete(s) => (s, false, true),
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let meta = &secret.metadata;
        let (ns, name) = (
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        );
        // The kept copy goes first (see `cache.rs`): whoever wakes reads anew.
        let version = meta.resource_version.as_deref().filter(|_| !deleted);
        self.ctx.caches.secret_event(ns, name, version);

        // A Secret we write wakes its owner when someone else changed or
        // deleted it (drift repair). Our own writes do not: the owner just
        // wrote what it wanted.
        let labels = secret.labels();
        let ours = labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE);
        if ours && !(applied && super::secrets::written_last_by_us(meta)) {
            match labels.get(OWNER_KIND_LABEL).map(String::as_str) {
                Some("SmoochApp") => wake_all(&self.apps.0, owners(meta)),
                Some("SmoochKey") => wake_all(&self.keys, owners(meta)),
                Some("SmoochWebhook") => wake_all(&self.webhooks, owners(meta)),
                _ => {}
            }
        }
        // Apps using it as app-maker credentials; integrations reading a
        // channel token from it.
        wake_all(&self.apps.0, pointing_at(&self.apps.1, ns, name));
        wake_all(
            &self.integrations.0,
            pointing_at(&self.integrations.1, ns, name),
        );
    }
}

fn pointing_at<K: Resource<DynamicType = ()>>(
    index: &SharedIndex<K>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<K>> {
    index
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pointing_at(namespace, name)
}

fn observe<K: Resource<DynamicType = ()>>(index: &SharedIndex<K>, event: &watcher::Event<K>) {
    index
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .observe(event)
}

/// A dependent's app: its namespace and `spec.appRef.name`.
fn app_of<K: Managed>(obj: &K) -> Vec<Target> {
    let ns = obj.meta().namespace.clone().unwrap_or_default();
    obj.app_name()
        .map(|app| vec![(ns, app.to_string())])
        .unwrap_or_default()
}

/// One metadata-only watch of the Secrets of a scope for all controllers
/// (instead of one per controller and purpose: every event was decoded
/// five times). Ends at shutdown.
fn route_secrets(
    scope: &Scope,
    routes: SecretRoutes,
    shutdown: impl future::Future<Output = ()> + Send + 'static,
) -> future::BoxFuture<'static, ()> {
    let api: Api<PartialObjectMeta<Secret>> = scope.api(&routes.ctx.client);
    paced(watcher(api, watcher::Config::default()))
        .take_until(shutdown)
        .for_each(move |event| {
            match event {
                Ok(event) => routes.route(&event),
                Err(e) => tracing::debug!(error = %e, "Secret watch interrupted"),
            }
            future::ready(())
        })
        .boxed()
}

/// Which dependents a SmoochApp's watch event wakes: those of the app whose
/// [`what_dependents_see`] changed, or that was deleted. Runs on the app
/// controller's own watch (one SmoochApp watch instead of four).
struct DependentRoutes {
    /// What the dependents saw of each app.
    seen: LastSeen,
    keys: (Wake<SmoochKey>, SharedIndex<SmoochKey>),
    integrations: (Wake<SmoochIntegration>, SharedIndex<SmoochIntegration>),
    webhooks: (Wake<SmoochWebhook>, SharedIndex<SmoochWebhook>),
}

impl DependentRoutes {
    fn route(&mut self, event: &watcher::Event<SmoochApp>) {
        if !self.seen.changed(event, what_dependents_see) {
            return;
        }
        let app = match event {
            watcher::Event::Apply(app)
            | watcher::Event::InitApply(app)
            | watcher::Event::Delete(app) => app,
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let (ns, name) = (
            app.meta().namespace.as_deref().unwrap_or_default(),
            app.meta().name.as_deref().unwrap_or_default(),
        );
        wake_all(&self.keys.0, pointing_at(&self.keys.1, ns, name));
        wake_all(
            &self.integrations.0,
            pointing_at(&self.integrations.1, ns, name),
        );
        wake_all(&self.webhooks.0, pointing_at(&self.webhooks.1, ns, name));
    }
}

/// What a dependent reads from its SmoochApp: spec (credentials), the app
/// id of a Ready app, deletion. Other changes (a finalizer, a condition's
/// time, the id recorded before the app is Ready) do not wake the dependents.
fn what_dependents_see(app: &SmoochApp) -> u64 {
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
    h.finish()
}

fn default_credentials(
    ctx: &Context,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static
{
    let settings = &ctx.settings;
    let api: Api<PartialObjectMeta<Secret>> =
        Api::namespaced(ctx.client.clone(), &settings.operator_namespace);
    let selector = format!("metadata.name={}", settings.default_credentials_secret);
    let caches = ctx.caches.clone();
    paced(watcher(api, watcher::Config::default().fields(&selector)))
        .touched_objects()
        .inspect_ok(move |s| {
            // Every event drops the kept copy: this stream does not tell a
            // deletion from a change, so no version is compared.
            caches.secret_event(
                s.metadata.namespace.as_deref().unwrap_or_default(),
                s.metadata.name.as_deref().unwrap_or_default(),
                None,
            )
        })
}

/// The primary stream of a kind, cached in a store, filtered to changes
/// that matter ([`reconcile_worthy`]). Each watch event is also shown to
/// `on_event` (a SmoochApp's wakes its dependents).
fn primary<K: Managed>(
    scope: &Scope,
    ctx: &Context,
    readiness: Arc<Readiness>,
    mut on_event: impl FnMut(&watcher::Event<K>) + Send + 'static,
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
    // Nothing reads who wrote which field of our own resources, nor the
    // copy of the whole manifest that `kubectl apply` keeps in an
    // annotation: neither is cached.
    .modify(|o| {
        let meta = o.meta_mut();
        meta.managed_fields = None;
        if let Some(annotations) = meta.annotations.as_mut() {
            annotations.remove(super::LAST_APPLIED_ANNOTATION);
        }
    })
    .reflect(writer)
    .inspect_ok(move |event| on_event(event))
    // Only a change that needs a reconcile goes on to the controller: not
    // a status-only update, nor an object a relist shows unchanged. (What
    // decides is kept by uid; kube's `predicate_filter` kept names and
    // uids as strings, and deleted objects for an hour.) A deletion only
    // updates what was seen: `applied_objects` leaves it out, as before.
    .try_filter({
        let mut seen = LastSeen::default();
        move |event| future::ready(seen.changed(event, reconcile_worthy::<K>))
    })
    .applied_objects();
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
    // Per kind, each scope's cache and controller: where the periodic
    // re-checks look and what they wake (`recheck.rs`).
    let mut recheck_apps = Vec::new();
    let mut recheck_keys = Vec::new();
    let mut recheck_integrations = Vec::new();
    let mut recheck_webhooks = Vec::new();
    for scope in scopes {
        // One watch per kind and one of Secrets per scope; the Secret watch
        // and the SmoochApp watch wake the other controllers through these.
        let (wake_apps, apps_woken) = unbounded();
        let (wake_keys, keys_woken) = unbounded();
        let (wake_integrations, integrations_woken) = unbounded();
        let (wake_webhooks, webhooks_woken) = unbounded();

        let keys_by_app = Index::shared(app_of::<SmoochKey>);
        let integrations_by_app = Index::shared(app_of::<SmoochIntegration>);
        let integrations_by_secret = Index::shared(|i: &SmoochIntegration| {
            let ns = i.meta().namespace.clone().unwrap_or_default();
            i.secret_refs()
                .iter()
                .map(|r| (ns.clone(), r.name.clone()))
                .collect()
        });
        let webhooks_by_app = Index::shared(app_of::<SmoochWebhook>);
        let apps_by_credentials = {
            let ctx = ctx.clone();
            Index::shared(move |a: &SmoochApp| vec![credentials::source_of(a, &ctx)])
        };

        let (keys, key_events) = primary::<SmoochKey>(&scope, &ctx, readiness.clone(), {
            let index = keys_by_app.clone();
            move |e| observe(&index, e)
        });
        let (integrations, integration_events) =
            primary::<SmoochIntegration>(&scope, &ctx, readiness.clone(), {
                let (by_app, by_secret) =
                    (integrations_by_app.clone(), integrations_by_secret.clone());
                move |e| {
                    observe(&by_app, e);
                    observe(&by_secret, e);
                }
            });
        let (webhooks, webhook_events) =
            primary::<SmoochWebhook>(&scope, &ctx, readiness.clone(), {
                let index = webhooks_by_app.clone();
                move |e| observe(&index, e)
            });
        let mut dependents = DependentRoutes {
            seen: Default::default(),
            keys: (wake_keys.clone(), keys_by_app),
            integrations: (wake_integrations.clone(), integrations_by_app),
            webhooks: (wake_webhooks.clone(), webhooks_by_app),
        };
        let (apps, app_events) = primary::<SmoochApp>(&scope, &ctx, readiness.clone(), {
            let index = apps_by_credentials.clone();
            move |e| {
                observe(&index, e);
                dependents.route(e);
            }
        });
        ctx.caches.add_app_store(apps.clone());
        sample_queue_depth(&scope, apps.clone(), ctx.clone());
        sample_queue_depth(&scope, keys.clone(), ctx.clone());
        sample_queue_depth(&scope, integrations.clone(), ctx.clone());
        sample_queue_depth(&scope, webhooks.clone(), ctx.clone());

        recheck_apps.push((apps.clone(), wake_apps.clone()));
        recheck_keys.push((keys.clone(), wake_keys.clone()));
        recheck_integrations.push((integrations.clone(), wake_integrations.clone()));
        recheck_webhooks.push((webhooks.clone(), wake_webhooks.clone()));
        runs.push(route_secrets(
            &scope,
            SecretRoutes {
                ctx: ctx.clone(),
                apps: (wake_apps, apps_by_credentials.clone()),
                keys: wake_keys,
                webhooks: wake_webhooks,
                integrations: (wake_integrations, integrations_by_secret),
            },
            shutdown.clone(),
        ));

        // SmoochApp: owns its Secret; wakes on its credentials Secret.
        let mut controller =
            Controller::for_stream(app_events, apps.clone()).reconcile_on(apps_woken);
        // The default credentials Secret lives in the operator's namespace,
        // which a namespaced scope does not see.
        if matches!(&scope, Scope::Namespace(ns) if *ns != ctx.settings.operator_namespace) {
            let index = apps_by_credentials.clone();
            controller = controller.watches_stream(default_credentials(&ctx), move |secret| {
                let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
                pointing_at(&index, &ns, &name)
            });
        }
        runs.push(started(controller, &config, shutdown.clone(), &ctx));
        // SmoochKey: owns its Secret; waits for its app.
        let controller = Controller::for_stream(key_events, keys).reconcile_on(keys_woken);
        runs.push(started(controller, &config, shutdown.clone(), &ctx));
        // SmoochIntegration: waits for its app; re-provisions when a credential Secret changes.
        let controller = Controller::for_stream(integration_events, integrations)
            .reconcile_on(integrations_woken);
        runs.push(started(controller, &config, shutdown.clone(), &ctx));
        // SmoochWebhook: owns its Secret; waits for its app.
        let controller =
            Controller::for_stream(webhook_events, webhooks).reconcile_on(webhooks_woken);
        runs.push(started(controller, &config, shutdown.clone(), &ctx));
    }
    let slots = Arc::new(Semaphore::new(ctx.settings.recheck_concurrency.max(1)));
    let until = |drive: future::BoxFuture<'static, ()>| {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = drive => {}
                _ = shutdown => {}
            }
        }
        .boxed()
    };
    runs.push(until(
        recheck::drive(ctx.clone(), recheck_apps, slots.clone()).boxed(),
    ));
    runs.push(until(
        recheck::drive(ctx.clone(), recheck_keys, slots.clone()).boxed(),
    ));
    runs.push(until(
        recheck::drive(ctx.clone(), recheck_integrations, slots.clone()).boxed(),
    ));
    runs.push(until(
        recheck::drive(ctx.clone(), recheck_webhooks, slots).boxed(),
    ));
    // One task each: in one task, every wake-up of any of them (a
    // reconcile done, a watch event) polled all of them again.
    // A panic in one still ends the operator, at once.
    let tasks: Vec<_> = runs.into_iter().map(tokio::spawn).collect();
    if let Err(e) = future::try_join_all(tasks).await
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A controller run until shutdown, with our settings.
fn started<K: Managed>(
    controller: Controller<K>,
    config: &ControllerConfig,
    shutdown: impl future::Future<Output = ()> + Send + Sync + Clone + 'static,
    ctx: &Arc<Context>,
) -> future::BoxFuture<'static, ()> {
    controller
        .with_config(config.clone())
        .trigger_backoff(NoTriggerBackoff)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx.clone())
        .for_each(|_| future::ready(()))
        .boxed()
}
