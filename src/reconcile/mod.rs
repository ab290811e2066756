//! The generic reconcile loop (finalizers, deletion policy, adoption,
//! crash recovery, pausing, conditions, events, Secrets) and one small
//! adapter per kind that only knows how to observe, create, update and
//! delete its Smooch object.

pub mod app;
pub mod cache;
pub mod context;
pub mod controllers;
pub mod credentials;
pub mod index;
pub mod integration;
pub mod key;
pub mod last_seen;
pub mod recheck;
pub mod secrets;
pub mod status;
pub mod webhook;

pub use context::{Context, Settings};

use crate::resources::{
    ADOPT_ANNOTATION, CommonStatus, DeletionPolicy, FINALIZER, PAUSED_ANNOTATION, SecretTemplate,
};
use crate::smooch::Sensitive;
use crate::{Error, Result};
use cache::Reads;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use secrets::KeptSecret;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use status::{READY, SYNCED, Wanted};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Field manager for every write the operator makes.
pub const MANAGER: &str = "smooch-operator";

/// Where `kubectl apply` (client-side) keeps the manifest last applied:
/// nothing here reads it, so no cache keeps it.
pub(crate) const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Parameters of the operator's patches (not server-side apply): our field
/// manager, so that our own writes can be told from others'.
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    }
}

/// What the adapter found after create/update: enough to write status and
/// the Secret.
pub struct Observation {
    pub external_id: String,
    /// Kind-specific status fields (camelCase), merged with the common ones.
    pub status_fields: Map<String, Value>,
    /// The Secret's data, for kinds that write one.
    pub secret_data: Option<BTreeMap<String, Sensitive>>,
    /// Come back sooner than the resync (key rotation, overlap expiry).
    pub requeue_after: Option<Duration>,
}

/// How an adapter got to its external object, for events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Existing,
    Created,
    Adopted,
    Recovered,
    Recreated,
}

/// A kind the generic loop can drive. The adapter methods that talk to
/// Smooch say so by being async and taking the connection.
pub trait Managed:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Everything needed to call Smooch for this object (client, app id).
    type Connection: Send + Sync;
    /// The Smooch object as observed.
    type External: Send + Sync;

    const KIND: &'static str;
    /// Default Secret name suffix, for kinds that write a Secret.
    const SECRET_SUFFIX: Option<&'static str>;

    fn common_status(&self) -> Option<&CommonStatus>;
    /// The Smooch id recorded in status.
    fn recorded_id(&self) -> Option<String>;
    fn deletion_policy(&self) -> DeletionPolicy;
    fn secret_template(&self) -> Option<&SecretTemplate> {
        None
    }
    /// Serializes the current status (to compare with the desired one).
    fn status_json(&self) -> Value;
    /// The SmoochApp a dependent belongs to.
    fn app_name(&self) -> Option<&str> {
        None
    }

    /// Smooch's id of an observed object.
    fn external_id(external: &Self::External) -> String;
    /// The resource uid a Smooch object is tagged with, if the kind tags
    /// its objects (app metadata, key names).
    fn owner_tag(_external: &Self::External) -> Option<String> {
        None
    }
    /// The kind's status fields that record the Smooch object (its id and
    /// what identifies it). Pure: written as soon as the object exists.
    fn status_fields(
        &self,
        conn: &Self::Connection,
        external: &Self::External,
    ) -> Map<String, Value>;

    /// Resolves credentials and dependencies; `Error::Waiting` when a
    /// dependency is not ready yet.
    /// `reads` says whether cached reads will do ([`Reads::Cached`]: a
    /// re-check) or the decision ahead needs fresh ones.
    fn connect(
        &self,
        ctx: &Context,
        reads: Reads,
    ) -> impl Future<Output = Result<Self::Connection>> + Send;
    /// Like `connect`, for cleanup: `None` when there is nothing left to
    /// delete (the app is gone, so are its children).
    fn connect_for_cleanup(
        &self,
        ctx: &Context,
    ) -> impl Future<Output = Result<Option<Self::Connection>>> + Send;

    /// Runs before a deleted resource's Smooch object is handled; an error
    /// (e.g. `Error::Waiting`) keeps the finalizer and retries.
    fn before_cleanup(&self, _ctx: &Context) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
    /// Runs after the Smooch object was handled, before the finalizer goes.
    fn after_cleanup(&self, _ctx: &Context) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// The external object with this id, or `None` if it no longer exists.
    fn observe(
        &self,
        conn: &Self::Connection,
        id: &str,
    ) -> impl Future<Output = Result<Option<Self::External>>> + Send;
    /// Finds an object this resource created earlier but never recorded
    /// (the operator died between create and status), by its tag.
    fn find_created(
        &self,
        conn: &Self::Connection,
        ctx: &Context,
    ) -> impl Future<Output = Result<Option<Self::External>>> + Send;
    fn create(
        &self,
        conn: &Self::Connection,
        ctx: &Context,
    ) -> impl Future<Output = Result<Self::External>> + Send;
    /// Why the external object differs from the spec, or `None`. Pure.
    fn drift(&self, conn: &Self::Connection, external: &Self::External) -> Option<String>;
    fn update(
        &self,
        conn: &Self::Connection,
        external: Self::External,
    ) -> impl Future<Output = Result<Self::External>> + Send;
    fn delete(&self, conn: &Self::Connection, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Status fields and Secret data for an up-to-date external object.
    /// `current_secret` is the Secret as it is now, so kinds can avoid
    /// fetching what the Secret already holds.
    fn finish(
        &self,
        conn: &Self::Connection,
        external: &Self::External,
        origin: Origin,
        current_secret: Option<&KeptSecret>,
    ) -> impl Future<Output = Result<Observation>> + Send;
}

/// A Smooch lookup where 404 means "not there" rather than an error.
pub fn found<T>(result: std::result::Result<T, crate::smooch::SmoochError>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_paused<K: Resource>(obj: &K) -> bool {
    obj.annotations()
        .get(PAUSED_ANNOTATION)
        .is_some_and(|v| v == "true")
}

fn owner_reference<K: Managed>(obj: &K) -> OwnerReference {
    let mut owner = obj
        .controller_owner_ref(&())
        .expect("objects from the API server have a name and uid");
    owner.block_owner_deletion = Some(true);
    owner
}

fn secret_name<K: Managed>(obj: &K) -> Option<String> {
    let suffix = K::SECRET_SUFFIX?;
    Some(
        obj.secret_template()
            .and_then(|t| t.name.clone())
            .unwrap_or_else(|| secrets::default_secret_name(&obj.name_any(), suffix)),
    )
}

/// What a periodic re-check found (see `recheck.rs`).
#[derive(Debug)]
pub enum Recheck {
    /// Nothing to do; look again after this long.
    InSync(Duration),
    /// Work for the controller: why (no secret value in it).
    HandOver(String),
    /// Paused or being deleted: the controller has it, or nobody does.
    Skipped,
}

impl Recheck {
    /// The outcome's metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Recheck::InSync(_) => "in_sync",
            Recheck::HandOver(_) => "handed_over",
            Recheck::Skipped => "skipped",
        }
    }
}

/// A periodic re-check: the controller's reconcile of a Ready resource,
/// reads-only. The first request beyond reading hands it to the controller.
pub async fn recheck<K: Managed>(obj: Arc<K>, ctx: &Context) -> Recheck {
    if is_paused(obj.as_ref()) || obj.meta().deletion_timestamp.is_some() {
        return Recheck::Skipped;
    }
    if !obj.finalizers().iter().any(|f| f == FINALIZER) || obj.recorded_id().is_none() {
        return Recheck::HandOver("not provisioned".into());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    match smooch::scope::reads_only(apply(obj, &api, ctx)).await {
        (_, Some(refused)) => Recheck::HandOver(format!("would send {refused}")),
        (Ok(after), None) => Recheck::InSync(after),
        (Err(e), None) => Recheck::HandOver(e.to_string()),
    }
}

/// Entry point for the controller: pause, finalizer, then apply or cleanup.
pub async fn reconcile<K: Managed>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let _timer = ctx.metrics.reconcile_started(K::KIND);
    // The controller has the resource now: its periodic re-check comes
    // back when this reconcile succeeds.
    let rechecks = ctx.rechecks.queue::<K>();
    let name = obj.name_any();
    rechecks.cancel(&ns, &name);

    if is_paused(obj.as_ref()) && obj.meta().deletion_timestamp.is_none() {
        let wanted = [Wanted::new(
            SYNCED,
            false,
            "ReconcilePaused",
            format!("annotation {PAUSED_ANNOTATION}=true stops reconciling"),
        )];
        write_status(&api, obj.as_ref(), &wanted, None, None, &ctx).await?;
        return Ok(Action::await_change());
    }

    // The finalizer helper adds ours to a live object and removes it after
    // a cleanup: either is one write (counted when the reconcile succeeds).
    // A cached copy without it, after we added it, is behind our own patch
    // (another event queued this reconcile before the watch delivered it):
    // the object has it, so go on as the API server has it.
    let uid = obj.uid().unwrap_or_default();
    let deleting = obj.meta().deletion_timestamp.is_some();
    let mut has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    let obj = if has_finalizer {
        ctx.finalizer_seen(&uid);
        obj
    } else if !deleting && ctx.finalizer_added_earlier(&uid) {
        has_finalizer = true;
        let mut caught_up = (*obj).clone();
        caught_up
            .meta_mut()
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(FINALIZER.into());
        Arc::new(caught_up)
    } else {
        obj
    };
    let finalizer_write = has_finalizer == deleting;
    let result = finalizer(&api, FINALIZER, obj.clone(), |event| async {
        match event {
            Finalizer::Apply(o) => {
                let recheck_after = apply(o, &api, &ctx).await?;
                rechecks.schedule(&ns, &name, recheck_after);
                Ok(Action::await_change())
            }
            Finalizer::Cleanup(o) => cleanup(o, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    // The cached copy predates our own finalizer patch (another event
    // queued this reconcile before the watch delivered it): the patch's
    // test of the finalizer list fails with 422 or 409. Nothing is wrong;
    // the watch event of that patch is on its way and reconciles again.
    if let Err(Error::Finalizer(f)) = &result
        && !has_finalizer
        && is_stale_finalizer_add(f)
    {
        tracing::debug!(kind = K::KIND, name = %obj.name_any(), "finalizer already added; cache behind");
        return Ok(Action::requeue(Duration::from_secs(1)));
    }

    ctx.metrics
        .reconcile_finished(K::KIND, started.elapsed(), result.as_ref().err());
    match result {
        Ok(action) => {
            if finalizer_write {
                ctx.metrics.kube_write(K::KIND, "finalizer");
                if !deleting {
                    ctx.finalizer_added(&uid);
                }
            }
            ctx.forget_failures(&obj.uid().unwrap_or_default());
            Ok(action)
        }
        Err(err) => {
            report_failure(&api, obj.as_ref(), &err, &ctx).await;
            Err(err)
        }
    }
}

fn is_stale_finalizer_add(err: &kube::runtime::finalizer::Error<Error>) -> bool {
    matches!(
        err,
        kube::runtime::finalizer::Error::AddFinalizer(kube::Error::Api(ae))
            if ae.code == 422 || ae.code == 409
    )
}

/// Brings the Smooch object, the Secret and the status in line with the
/// spec. Returns when to re-check.
async fn apply<K: Managed>(obj: Arc<K>, api: &Api<K>, ctx: &Context) -> Result<Duration> {
    // The cached copy can predate our own status write: another event (the
    // app a dependent waits for, a finalizer added) can queue a reconcile
    // before the watch delivers that status. Acting on such a copy could create, rotate
    // or re-provision a second time, so before any of that (no id recorded,
    // the recorded object gone, or drift to repair) the resource is read
    // from the API server and the decision taken again on the fresh copy.
    // Cheap: the common no-op reconcile never needs it.
    if let Some(app_name) = obj.app_name()
        && let Some(waiting) =
            app::not_ready_in_cache(&obj.namespace().unwrap_or_default(), app_name, ctx)
    {
        return Err(waiting);
    }
    let mut fresh: Option<K> = None;
    if obj.recorded_id().is_none() {
        fresh = Some(api.get(&obj.name_any()).await?);
    }
    // Adoptions run one at a time, from the check that nobody else manages
    // the object until its id is in this resource's status: two resources
    // adopting the same object at once cannot both pass the check.
    let adopting = fresh.as_ref().is_some_and(|f| {
        f.recorded_id().is_none() && f.annotations().contains_key(ADOPT_ANNOTATION)
    });
    let _adoption = match adopting {
        true => Some(ctx.adoption.lock().await),
        false => None,
    };
    let (obj, conn, external, origin, reads) = loop {
        let current = fresh.as_ref().unwrap_or(obj.as_ref());
        let is_fresh = fresh.is_some();
        let reads = if is_fresh {
            Reads::Fresh
        } else {
            Reads::Cached
        };
        let conn = current.connect(ctx, reads).await?;
        let Some((external, origin)) = obtain(current, &conn, ctx, is_fresh).await? else {
            fresh = Some(api.get(&obj.name_any()).await?);
            continue;
        };
        let drift = current.drift(&conn, &external);
        if drift.is_some() && !is_fresh {
            fresh = Some(api.get(&obj.name_any()).await?);
            continue;
        }
        let external = match drift {
            Some(why) => {
                let updated = current.update(&conn, external).await?;
                ctx.publish(
                    current,
                    EventType::Normal,
                    "Updated",
                    &format!("Updated the Smooch {}: {why}", K::KIND),
                )
                .await;
                updated
            }
            None => external,
        };
        break (current, conn, external, origin, reads);
    };

    // One event for a create and the Secret written for it; sent whatever
    // happens next, so that a create is never left unsaid.
    let created = matches!(origin, Origin::Created | Origin::Recreated);
    let newly_obtained = obj.recorded_id() != Some(K::external_id(&external));
    let outcome = finish_and_write_secret(obj, &conn, &external, origin, reads, ctx).await;
    // The id of an object just created, adopted, found again or replaced by
    // a rotation goes into status with Ready below, in one write. When what
    // comes between fails (the Secret, the JWT), it is recorded now, so that
    // deleting the resource still deletes what was made for it. (A crash in
    // between is what the tag lookup of `obtain` recovers from.)
    if outcome.is_err() && newly_obtained {
        let fields = obj.status_fields(&conn, &external);
        if let Err(e) = write_status(api, obj, &[], Some(fields), None, ctx).await {
            tracing::warn!(kind = K::KIND, name = %obj.name_any(), error = %e, "could not record the Smooch id in status");
        }
    }
    let wrote = outcome.as_ref().ok().and_then(|(_, wrote)| wrote.clone());
    let note = match (created, &wrote) {
        (true, Some(name)) => Some((
            "Created",
            format!("Created the Smooch {}; wrote Secret {name}", K::KIND),
        )),
        (true, None) => Some(("Created", format!("Created the Smooch {}", K::KIND))),
        (false, Some(name)) => Some(("SecretWritten", format!("Wrote Secret {name}"))),
        (false, None) => None,
    };
    if let Some((reason, note)) = note {
        ctx.publish(obj, EventType::Normal, reason, &note).await;
    }
    let (observation, _) = outcome?;
    let secret_name = secret_name(obj);

    let wanted = [
        Wanted::new(
            READY,
            true,
            "Available",
            format!(
                "Smooch {} {} is provisioned",
                K::KIND,
                observation.external_id
            ),
        ),
        Wanted::new(SYNCED, true, "ReconcileSuccess", ""),
    ];
    write_status(
        api,
        obj,
        &wanted,
        Some(observation.status_fields),
        secret_name,
        ctx,
    )
    .await?;

    let resync = ctx.settings.resync_period;
    Ok(observation.requeue_after.map_or(resync, |d| d.min(resync)))
}

/// After the Smooch object is there: has the kind finish
/// (JWT, stray keys, the Secret's data) and writes the Secret. Returns the
/// observation and the name of the Secret it wrote, if it wrote one.
async fn finish_and_write_secret<K: Managed>(
    obj: &K,
    conn: &K::Connection,
    external: &K::External,
    origin: Origin,
    reads: Reads,
    ctx: &Context,
) -> Result<(Observation, Option<String>)> {
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let secret_name = secret_name(obj);
    let namespace = obj.namespace().unwrap_or_default();
    // A Smooch object made just now: no Secret can hold anything of it
    // yet, so the Secret is created without a read first (one that exists
    // is read and updated then).
    let just_made = matches!(origin, Origin::Created | Origin::Recreated);
    let current_secret = match &secret_name {
        Some(name) if !just_made => {
            ctx.caches
                .find_secret(&secrets, &namespace, name, reads)
                .await?
        }
        _ => None,
    };
    let kept = current_secret.as_ref().map(|found| &*found.kept);
    let observation = obj.finish(conn, external, origin, kept).await?;
    let mut wrote = None;

    if let (Some(name), Some(data)) = (&secret_name, observation.secret_data.clone()) {
        let desired = secrets::DesiredSecret::new(
            K::KIND,
            owner_reference(obj),
            name.clone(),
            obj.secret_template(),
            data,
        );
        // What the API server answers is kept as the Secret's copy, so the
        // next re-check need not read it back (`cache.rs`).
        let epoch = ctx.caches.secret_epoch(&namespace, name);
        let written = match just_made {
            true => secrets::create_or_ensure(&secrets, &desired).await?,
            false => secrets::ensure(&secrets, current_secret, &desired).await?,
        };
        if let Some(written) = written {
            ctx.metrics.kube_write(K::KIND, "secret");
            ctx.caches.keep_written(&namespace, name, epoch, &written);
            wrote = Some(name.clone());
        }
        // A renamed Secret leaves the old one behind; remove it.
        let previous = obj.common_status().and_then(|s| s.secret_name.clone());
        if let Some(old) = previous.filter(|old| old != name) {
            secrets::delete_owned(&secrets, &old, &obj.uid().unwrap_or_default()).await?;
        }
    }
    Ok((observation, wrote))
}

/// Finds the external object: by recorded id, by adoption annotation, by
/// tag (crash recovery), or by creating it.
/// `None` when the recorded object is gone and `obj` is a cached copy: the
/// caller reads the resource again before deciding to re-create.
async fn obtain<K: Managed>(
    obj: &K,
    conn: &K::Connection,
    ctx: &Context,
    is_fresh: bool,
) -> Result<Option<(K::External, Origin)>> {
    let adopt_id = obj.annotations().get(ADOPT_ANNOTATION).cloned();
    let recorded = obj.recorded_id();
    let mut missing = None;
    if let Some(id) = recorded.clone().or(adopt_id.clone()) {
        let adopting = recorded.is_none();
        if adopting {
            let namespace = obj.namespace().unwrap_or_default();
            if !ctx.settings.adoption_namespaces.allows(&namespace) {
                return Err(Error::NotAllowed {
                    reason: "AdoptionNotAllowed",
                    message: format!(
                        "namespace {namespace} may not adopt existing Smooch objects \
                         (annotation {ADOPT_ANNOTATION}); ask a cluster admin"
                    ),
                });
            }
        }
        if let Some(found) = obj.observe(conn, &id).await? {
            if !adopting {
                return Ok(Some((found, Origin::Existing)));
            }
            if let Some(why) = claimed_elsewhere(obj, &id, K::owner_tag(&found), ctx).await? {
                return Err(Error::AlreadyManaged(why));
            }
            ctx.publish(
                obj,
                EventType::Normal,
                "Adopted",
                &format!("Adopted existing Smooch {} {id}", K::KIND),
            )
            .await;
            return Ok(Some((found, Origin::Adopted)));
        }
        if adopting {
            return Err(Error::InvalidSpec(format!(
                "annotation {ADOPT_ANNOTATION} names Smooch {} {id}, which does not exist",
                K::KIND
            )));
        }
        if !is_fresh {
            return Ok(None);
        }
        missing = Some(id);
    }
    // Also when the recorded object is gone (a reconcile that re-created it
    // may have recorded the new id between our GET and now). What another
    // resource records is not ours to recover (kinds that match by content,
    // like two webhooks with one target).
    let recovered = match obj.find_created(conn, ctx).await? {
        Some(found) => {
            let id = K::external_id(&found);
            match claimed_elsewhere(obj, &id, K::owner_tag(&found), ctx).await? {
                Some(_) => None,
                None => Some(found),
            }
        }
        None => None,
    };
    if let Some(found) = recovered {
        ctx.publish(
            obj,
            EventType::Normal,
            "Recovered",
            &format!(
                "Found the Smooch {} created earlier by this resource; not creating another",
                K::KIND
            ),
        )
        .await;
        return Ok(Some((found, Origin::Recovered)));
    }
    if let Some(id) = missing {
        ctx.publish(
            obj,
            EventType::Warning,
            "ExternalObjectMissing",
            &format!(
                "Smooch {} {id} was deleted outside Kubernetes; creating it again",
                K::KIND
            ),
        )
        .await;
    }
    let created = obj.create(conn, ctx).await?;
    let origin = if recorded.is_some() {
        Origin::Recreated
    } else {
        Origin::Created
    };
    // The `Created` event goes out from `apply`, together with the Secret
    // written for the new object (one event, not two).
    Ok(Some((created, origin)))
}

/// Why Smooch object `id` belongs to another resource of this kind, if it
/// does: another resource records it in its status, or the object is tagged
/// with the uid of another live resource. Reads the API server (not a
/// cache): it guards adoption and recovery, which are rare. The message
/// does not name the other resource (it may be another tenant's).
async fn claimed_elsewhere<K: Managed>(
    obj: &K,
    id: &str,
    tag: Option<String>,
    ctx: &Context,
) -> Result<Option<String>> {
    let own_uid = obj.uid().unwrap_or_default();
    let apis: Vec<Api<K>> = match ctx.settings.watch_namespaces.as_slice() {
        [] => vec![Api::all(ctx.client.clone())],
        named => named
            .iter()
            .map(|ns| Api::namespaced(ctx.client.clone(), ns))
            .collect(),
    };
    for api in apis {
        let others = api.list(&Default::default()).await?;
        for other in others.items {
            let uid = other.uid().unwrap_or_default();
            if uid == own_uid {
                continue;
            }
            if other.recorded_id().as_deref() == Some(id) {
                return Ok(Some(format!(
                    "Smooch {} {id} is already managed by another {} resource; \
                     it is not taken over",
                    K::KIND,
                    K::KIND
                )));
            }
            if tag.as_deref() == Some(uid.as_str()) {
                return Ok(Some(format!(
                    "Smooch {} {id} was created by another {} resource that still exists; \
                     it is not taken over",
                    K::KIND,
                    K::KIND
                )));
            }
        }
    }
    Ok(None)
}

async fn cleanup<K: Managed>(obj: Arc<K>, ctx: &Context) -> Result<Action> {
    let obj = obj.as_ref();
    obj.before_cleanup(ctx).await?;
    if obj.deletion_policy() == DeletionPolicy::Delete {
        if let Some(id) = obj.recorded_id() {
            match obj.connect_for_cleanup(ctx).await {
                Ok(Some(conn)) => match obj.delete(&conn, &id).await {
                    Ok(()) => {
                        ctx.publish(
                            obj,
                            EventType::Normal,
                            "Deleted",
                            &format!("Deleted Smooch {} {id}", K::KIND),
                        )
                        .await;
                    }
                    Err(Error::Smooch(e)) if e.is_not_found() => {}
                    // Credentials revoked or the app is gone: retrying cannot help,
                    // and a stuck finalizer would block the namespace. Say so and let go.
                    Err(Error::Smooch(e)) if !e.is_transient() => {
                        ctx.publish(
                            obj,
                            EventType::Warning,
                            "OrphanedExternalObject",
                            &format!("Could not delete Smooch {} {id}: {e}", K::KIND),
                        )
                        .await;
                    }
                    Err(e) => return Err(e),
                },
                Ok(None) => {}
                Err(Error::Waiting { message, .. } | Error::NotAllowed { message, .. }) => {
                    ctx.publish(
                        obj,
                        EventType::Warning,
                        "OrphanedExternalObject",
                        &format!("Could not delete Smooch {} {id}: {message}", K::KIND),
                    )
                    .await;
                }
                Err(e) => return Err(e),
            }
        }
    } else if let Some(id) = obj.recorded_id() {
        ctx.publish(
            obj,
            EventType::Normal,
            "Orphaned",
            &format!(
                "Left Smooch {} {id} in place (deletionPolicy Orphan)",
                K::KIND
            ),
        )
        .await;
    }
    obj.after_cleanup(ctx).await?;
    Ok(Action::await_change())
}

/// Writes the status by server-side apply, only when it would change.
async fn write_status<K: Managed>(
    api: &Api<K>,
    obj: &K,
    wanted: &[Wanted],
    kind_fields: Option<Map<String, Value>>,
    secret_name: Option<String>,
    ctx: &Context,
) -> Result<()> {
    let current = obj.status_json();
    // Read in place: every re-check comes here, and nearly all end in the
    // comparison below.
    let current_common = CommonStatus::deserialize(&current).unwrap_or_default();
    let generation = obj.meta().generation;
    let now = Time(jiff::Timestamp::now());
    let conditions = status::merge(&current_common.conditions, wanted, generation, &now);
    let common = CommonStatus {
        conditions,
        observed_generation: generation,
        secret_name: secret_name.or(current_common.secret_name),
    };
    let mut desired = match serde_json::to_value(&common).expect("status serializes") {
        Value::Object(m) => m,
        _ => unreachable!("CommonStatus is an object"),
    };
    let replace_kind_fields = kind_fields.is_some();
    match kind_fields {
        Some(fields) => desired.extend(fields),
        // An error or a pause: kind fields keep their value.
        None => {
            if let Value::Object(cur) = &current {
                for (k, v) in cur {
                    desired.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    let desired = Value::Object(desired);
    if desired == current {
        return Ok(());
    }
    if replace_kind_fields {
        let patch = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": desired,
        });
        api.patch_status(
            &obj.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    } else {
        // Only the common fields: the kind fields on the server may be newer
        // than this copy's (an id recorded earlier in this reconcile), and
        // an apply that left them out would remove them.
        api.patch_status(
            &obj.name_any(),
            &patch_params(),
            &Patch::Merge(&json!({ "status": &common })),
        )
        .await?;
    }
    ctx.metrics.kube_write(K::KIND, "status");
    Ok(())
}

/// Records a failed reconcile in the conditions (and an event when the
/// failure is new), so that `kubectl describe` says what is wrong.
async fn report_failure<K: Managed>(api: &Api<K>, obj: &K, err: &Error, ctx: &Context) {
    let root = err.root();
    let reason = root.metric_label();
    let message = root.to_string();
    let current: CommonStatus = serde_json::from_value(obj.status_json()).unwrap_or_default();
    let synced_before = status::find(&current.conditions, SYNCED).cloned();
    let mut wanted = vec![Wanted::new(SYNCED, false, reason.clone(), message.clone())];
    if !status::is_true(&current.conditions, READY) || matches!(root, Error::Waiting { .. }) {
        wanted.push(Wanted::new(READY, false, reason.clone(), message.clone()));
    }
    let is_new = synced_before.is_none_or(|c| c.reason != reason || c.message != message);
    // A dependent applied together with its app (`kubectl apply -f dir/`)
    // waits seconds for it: no status write for that. Its conditions appear
    // when the app is Ready, or at the next look if it is still waiting.
    let routine = matches!(root, Error::Waiting { reason, .. } if *reason == APP_NOT_READY);
    let young = obj
        .meta()
        .creation_timestamp
        .as_ref()
        .is_some_and(|t| jiff::Timestamp::now().duration_since(t.0) < APP_WAIT_GRACE);
    let app_starting = || {
        let app = obj
            .app_name()
            .and_then(|name| ctx.caches.app(&obj.namespace().unwrap_or_default(), name));
        app.is_some_and(|a| {
            let conditions = a.status.as_ref().map(|s| &s.common.conditions[..]);
            status::find(conditions.unwrap_or_default(), READY).is_none()
        })
    };
    // Only while the app has not said anything yet: a failing app's
    // dependents say at once that they wait for it.
    let quiet_wait =
        routine && young && status::find(&current.conditions, READY).is_none() && app_starting();
    if obj.meta().deletion_timestamp.is_none()
        && !quiet_wait
        && let Err(e) = write_status(api, obj, &wanted, None, None, ctx).await
    {
        tracing::warn!(kind = K::KIND, name = %obj.name_any(), error = %e, "could not record failure in status");
    }
    // Waiting for a SmoochApp applied together with this resource is the
    // normal course of `kubectl apply -f dir/`: the condition says it; an
    // event per dependent would be noise.
    if is_new && !routine {
        let event_type = if matches!(root, Error::Waiting { .. }) {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.publish(obj, event_type, &reason, &message).await;
    }
}

/// Requeue policy after a failed reconcile: dependencies are watched (so a
/// slow fallback is enough), permanent errors are retried slowly,
/// transient ones back off exponentially per object.
/// `Error::Waiting` reason of a dependent whose SmoochApp is not Ready.
pub const APP_NOT_READY: &str = "AppNotReady";

/// How long a new dependent may wait for its app before its status says
/// so (see `report_failure`).
const APP_WAIT_GRACE: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

/// `Error::Waiting` reason of a SmoochApp whose dependents are being
/// deleted: they need it (its credentials) for their own cleanup.
pub const DEPENDENTS_DELETING: &str = "DependentsDeleting";

/// Longest backoff after a Kubernetes API failure.
const KUBE_ERROR_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_secs(15);

pub fn error_policy<K: Managed>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let settings = &ctx.settings;
    let delay = match err.root() {
        // Dependents finish their cleanup within seconds; nothing watched
        // tells the app when, so look again soon.
        Error::Waiting { reason, .. } if *reason == DEPENDENTS_DELETING => {
            settings.min_error_backoff.saturating_mul(2)
        }
        Error::Waiting { .. } => settings.dependency_retry,
        e if e.is_permanent() => settings.permanent_error_retry,
        e => {
            let failures = ctx.count_failure(&obj.uid().unwrap_or_default());
            // The API server did not answer at all (it restarts, the network
            // is down): nothing watched tells when it is back, so the retry
            // must come soon after; a refused connection costs nothing. An
            // answer that is an error (the server is there but struggling)
            // backs off longer. A short cap keeps recovery within seconds.
            const UNREACHABLE_CAP: std::time::Duration = std::time::Duration::from_secs(4);
            let unreached =
                |k: &kube::Error| matches!(k, kube::Error::HyperError(_) | kube::Error::Service(_));
            let cap = match e {
                Error::Kube(k) if unreached(k) => UNREACHABLE_CAP,
                Error::Finalizer(f) => match f.as_ref() {
                    kube::runtime::finalizer::Error::AddFinalizer(k)
                    | kube::runtime::finalizer::Error::RemoveFinalizer(k)
                        if unreached(k) =>
                    {
                        UNREACHABLE_CAP
                    }
                    _ => KUBE_ERROR_BACKOFF_CAP,
                },
                Error::Kube(_) => KUBE_ERROR_BACKOFF_CAP,
                _ => settings.max_error_backoff,
            }
            .min(settings.max_error_backoff);
            let exp = settings
                .min_error_backoff
                .saturating_mul(1u32 << failures.min(16))
                .min(cap);
            let jittered = exp.mul_f64(0.8 + rand::random::<f64>() * 0.4);
            match e.root() {
                Error::Smooch(s) => s.retry_after().map_or(jittered, |ra| ra.max(jittered)),
                _ => jittered,
            }
        }
    };
    tracing::info!(kind = K::KIND, name = %obj.name_any(), reason = %err.metric_label(), retry_in = ?delay, "reconcile failed: {}", err.root());
    Action::requeue(delay)
}
