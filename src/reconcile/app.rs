//! SmoochApp adapter: a Smooch app, tagged in its metadata with the
//! resource's uid so a crash between create and status cannot duplicate it.

use super::cache::Reads;
use super::credentials::{self, client_for};
use super::status::{READY, is_true};
use super::{Context, Managed, Observation, Origin};
use crate::resources::{
    CommonStatus, DeletionPolicy, FINALIZER, SecretTemplate, SmoochApp, SmoochIntegration,
    SmoochKey, SmoochWebhook,
};
use crate::smooch::SmoochClient;
use crate::smooch::models::{App, AppParams, AppSettings, Metadata};
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Metadata key the operator tags its apps with (the resource's uid).
pub const UID_TAG: &str = "smoochOperatorUid";

impl SmoochApp {
    fn desired_params(&self) -> AppParams {
        let mut metadata: Metadata = self
            .spec
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        metadata.insert(
            UID_TAG.into(),
            Value::String(self.uid().unwrap_or_default()),
        );
        AppParams {
            name: Some(self.spec.name.clone()),
            settings: self.spec.settings.as_ref().map(|s| AppSettings {
                mask_credit_card_numbers: s.mask_credit_card_numbers,
                use_animal_names: s.use_animal_names,
                conversation_retention_seconds: s.conversation_retention_seconds,
                echo_postback: s.echo_postback,
                ignore_auto_conversation_start: s.ignore_auto_conversation_start,
            }),
            metadata: Some(metadata),
        }
    }
}

/// The operator's apps per app-maker account, by the uid they are tagged
/// with: a crash-safe lookup before each create without listing every app
/// every time (Smooch cannot filter apps by metadata, so a lookup by tag
/// is a walk over all pages: O(N) per create, O(N²) for N creates).
///
/// The index of an account is built by one walk, the first time this
/// process needs it (so it includes whatever a crashed predecessor created),
/// and kept up to date by this process's own creates. Only the leader
/// reconciles, and a replica that loses the lease exits, so no other writer
/// tags apps meanwhile. An entry is a hint: the app is fetched by id, and a
/// stale entry (the app was deleted in Smooch) is dropped.
#[derive(Default)]
pub struct AppIndex {
    accounts: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<UidToId>>>>>,
}

type UidToId = HashMap<String, String>;

impl AppIndex {
    fn slot(&self, client: &SmoochClient) -> Arc<tokio::sync::Mutex<Option<UidToId>>> {
        let mut accounts = self.accounts.lock().expect("not poisoned");
        accounts
            .entry(client.account().to_string())
            .or_default()
            .clone()
    }

    /// The id of the app tagged with `uid`, listing the account's apps
    /// first if this process has not yet.
    pub async fn lookup(&self, client: &SmoochClient, uid: &str) -> Result<Option<String>> {
        let slot = self.slot(client);
        let mut index = slot.lock().await;
        if index.is_none() {
            let apps = client.list_all_apps().await?;
            *index = Some(
                apps.into_iter()
                    .filter_map(|a| tag_of(&a).map(|uid| (uid.to_string(), a.id.clone())))
                    .collect(),
            );
        }
        Ok(index.as_ref().and_then(|m| m.get(uid).cloned()))
    }

    /// Notes an app this process created (waits for a walk in progress, so
    /// the walk cannot drop it).
    pub async fn record(&self, client: &SmoochClient, uid: &str, id: &str) {
        if let Some(index) = self.slot(client).lock().await.as_mut() {
            index.insert(uid.to_string(), id.to_string());
        }
    }

    pub async fn forget(&self, client: &SmoochClient, uid: &str) {
        if let Some(index) = self.slot(client).lock().await.as_mut() {
            index.remove(uid);
        }
    }

    /// The next lookup lists the apps again.
    pub async fn invalidate(&self, client: &SmoochClient) {
        *self.slot(client).lock().await = None;
    }
}

fn tag_of(app: &App) -> Option<&str> {
    app.metadata.as_ref()?.get(UID_TAG)?.as_str()
}

/// Why `app` differs from `want`: settings the spec leaves unset are
/// Smooch's to choose and are not compared.
fn app_drift(want: &AppParams, app: &App) -> Option<String> {
    let mut why = Vec::new();
    if want.name.as_deref() != Some(app.name.as_str()) {
        why.push("name");
    }
    if let Some(ws) = &want.settings {
        let have = app.settings.clone().unwrap_or_default();
        let differs = |w: Option<Value>, h: Option<Value>| w.is_some() && w != h;
        let ws = serde_json::to_value(ws).unwrap_or_default();
        let hs = serde_json::to_value(&have).unwrap_or_default();
        if let (Value::Object(w), Value::Object(h)) = (ws, hs)
            && w.iter()
                .any(|(k, v)| differs(Some(v.clone()), h.get(k).cloned()))
        {
            why.push("settings");
        }
    }
    if want.metadata.as_ref() != Some(&app.metadata.clone().unwrap_or_default()) {
        why.push("metadata");
    }
    (!why.is_empty()).then(|| format!("{} changed", why.join(", ")))
}

impl Managed for SmoochApp {
    type Connection = SmoochClient;
    type External = App;
    const KIND: &'static str = "SmoochApp";
    const SECRET_SUFFIX: Option<&'static str> = Some("app");

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    fn recorded_id(&self) -> Option<String> {
        self.status.as_ref()?.app_id.clone()
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn secret_template(&self) -> Option<&SecretTemplate> {
        self.spec.secret_template.as_ref()
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }

    fn external_id(app: &App) -> String {
        app.id.clone()
    }

    fn owner_tag(app: &App) -> Option<String> {
        tag_of(app).map(str::to_string)
    }

    fn status_fields(&self, _: &SmoochClient, app: &App) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("appId".into(), json!(app.id));
        if let Some(r) = &self.spec.credentials_secret_ref {
            fields.insert("credentialsSecretName".into(), json!(r.name));
        }
        fields
    }

    /// Also keeps this app's own credentials Secret (if it has one) from
    /// going away while the app may need it, and lets go of a previous one.
    /// An app reads nothing but its credentials, an input read from its
    /// kept copy whatever `Reads` says (see `credentials`).
    async fn connect(&self, ctx: &Context, _: Reads) -> Result<SmoochClient> {
        let (client, secret) = credentials::read_for(self, ctx).await?;
        let namespace = self.namespace().unwrap_or_default();
        let uid = self.uid().unwrap_or_default();
        let current = self.spec.credentials_secret_ref.as_ref().map(|r| &r.name);
        if let Some(previous) = self.recorded_credentials_secret()
            && Some(previous) != current
        {
            credentials::release(&namespace, previous, &uid, ctx).await?;
        }
        if let Some(name) = current {
            credentials::hold(&namespace, name, &secret, &uid, ctx).await?;
        }
        Ok(client)
    }

    /// An Orphan app outlives its Smooch app, so dependents being deleted
    /// still need its credentials to delete their own objects: wait for
    /// them. (A Delete app takes its children with it in Smooch.)
    async fn before_cleanup(&self, ctx: &Context) -> Result<()> {
        if self.spec.deletion_policy == DeletionPolicy::Delete {
            return Ok(());
        }
        let namespace = self.namespace().unwrap_or_default();
        let terminating = namespace_terminating(&namespace, ctx).await;
        let name = self.name_any();
        let waiting = deleting_dependents::<SmoochKey>(&namespace, &name, terminating, ctx).await?
            + deleting_dependents::<SmoochIntegration>(&namespace, &name, terminating, ctx).await?
            + deleting_dependents::<SmoochWebhook>(&namespace, &name, terminating, ctx).await?;
        if waiting > 0 {
            return Err(Error::Waiting {
                reason: super::DEPENDENTS_DELETING,
                message: format!(
                    "{waiting} dependent resource(s) being deleted still need this app's credentials"
                ),
            });
        }
        Ok(())
    }

    /// The app no longer needs its credentials Secret.
    async fn after_cleanup(&self, ctx: &Context) -> Result<()> {
        let namespace = self.namespace().unwrap_or_default();
        let uid = self.uid().unwrap_or_default();
        let names = [
            self.recorded_credentials_secret(),
            self.spec.credentials_secret_ref.as_ref().map(|r| &r.name),
        ];
        for name in names.into_iter().flatten() {
            credentials::release(&namespace, name, &uid, ctx).await?;
        }
        Ok(())
    }

    async fn connect_for_cleanup(&self, ctx: &Context) -> Result<Option<SmoochClient>> {
        client_for(self, ctx).await.map(Some)
    }

    async fn observe(&self, client: &SmoochClient, id: &str) -> Result<Option<App>> {
        super::found(client.get_app(id).await)
    }

    async fn find_created(&self, client: &SmoochClient, ctx: &Context) -> Result<Option<App>> {
        let uid = self.uid().unwrap_or_default();
        let Some(id) = ctx.app_index.lookup(client, &uid).await? else {
            return Ok(None);
        };
        let found = super::found(client.get_app(&id).await)?;
        if found.is_none() {
            ctx.app_index.forget(client, &uid).await;
        }
        Ok(found)
    }

    async fn create(&self, client: &SmoochClient, ctx: &Context) -> Result<App> {
        let uid = self.uid().unwrap_or_default();
        match client.create_app(&self.desired_params()).await {
            Ok(app) => {
                ctx.app_index.record(client, &uid, &app.id).await;
                Ok(app)
            }
            Err(e) => {
                // A failed POST may still have created the app (a timeout,
                // a 500): the next lookup must list the apps again.
                ctx.app_index.invalidate(client).await;
                Err(e.into())
            }
        }
    }

    fn drift(&self, _: &SmoochClient, app: &App) -> Option<String> {
        app_drift(&self.desired_params(), app)
    }

    async fn update(&self, client: &SmoochClient, app: App) -> Result<App> {
        Ok(client.update_app(&app.id, &self.desired_params()).await?)
    }

    async fn delete(&self, client: &SmoochClient, id: &str) -> Result<()> {
        Ok(client.delete_app(id).await?)
    }

    async fn finish(
        &self,
        client: &SmoochClient,
        app: &App,
        _: Origin,
        _: Option<&super::secrets::KeptSecret>,
    ) -> Result<Observation> {
        // v2 apps have no app token: the Secret then holds `appId` only.
        let mut data = BTreeMap::from([("appId".to_string(), app.id.as_str().into())]);
        if let Some(token) = &app.app_token {
            data.insert("appToken".to_string(), token.clone());
        }
        Ok(Observation {
            external_id: app.id.clone(),
            status_fields: self.status_fields(client, app),
            secret_data: Some(data),
            requeue_after: None,
        })
    }
}

impl SmoochApp {
    /// The credentials Secret of this namespace the app last used.
    fn recorded_credentials_secret(&self) -> Option<&String> {
        self.status.as_ref()?.credentials_secret_name.as_ref()
    }
}

/// Whether the namespace is being deleted (everything in it will be).
/// Without permission to read namespaces, assume it is not.
async fn namespace_terminating(namespace: &str, ctx: &Context) -> bool {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match api.get_opt(namespace).await {
        Ok(Some(ns)) => ns.metadata.deletion_timestamp.is_some(),
        _ => false,
    }
}

/// Dependents of app `app_name` that are being deleted (or will be, with
/// their namespace) and must delete a Smooch object first.
async fn deleting_dependents<K: Dependent>(
    namespace: &str,
    app_name: &str,
    namespace_terminating: bool,
    ctx: &Context,
) -> Result<usize> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("spec.appRef.name={app_name}");
    let listed = api.list(&ListParams::default().fields(&selector)).await?;
    Ok(listed
        .items
        .iter()
        .filter(|d| d.finalizers().iter().any(|f| f == FINALIZER))
        .filter(|d| namespace_terminating || d.meta().deletion_timestamp.is_some())
        .filter(|d| d.deletion_policy() == DeletionPolicy::Delete && d.recorded_id().is_some())
        .count())
}

/// A kind that belongs to a SmoochApp (selectable by `spec.appRef.name`).
pub trait Dependent: Managed {}
impl Dependent for SmoochKey {}
impl Dependent for SmoochIntegration {}
impl Dependent for SmoochWebhook {}

/// A dependent's way to Smooch: its app's id and credentials.
pub struct AppConnection {
    pub client: SmoochClient,
    pub app_id: String,
}

/// Whether a dependent may use `app` now: Ready, with an id, not being
/// deleted.
fn usable(app: &SmoochApp) -> Option<String> {
    let status = app.status.as_ref()?;
    let ready = is_true(&status.common.conditions, READY);
    (ready && app.metadata.deletion_timestamp.is_none())
        .then(|| status.app_id.clone())
        .flatten()
}

/// A dependent whose app the SmoochApp cache shows, not usable: it waits
/// without reading anything. Safe to trust: the app's becoming Ready
/// reaches that cache first and then wakes its dependents.
pub fn not_ready_in_cache(namespace: &str, app_name: &str, ctx: &Context) -> Option<Error> {
    let app = ctx.caches.app(namespace, app_name)?;
    usable(&app).is_none().then(|| not_ready(app_name))
}

fn not_ready(app_name: &str) -> Error {
    Error::Waiting {
        reason: super::APP_NOT_READY,
        message: format!("SmoochApp {app_name} is not Ready yet"),
    }
}

/// Resolves the SmoochApp a dependent names; waits until it is Ready. A
/// re-check takes a usable app from the SmoochApp cache; anything else
/// (not cached, not usable there, a fresh decision) reads the API server.
pub async fn connect_dependent(
    namespace: &str,
    app_name: &str,
    ctx: &Context,
    reads: Reads,
) -> Result<AppConnection> {
    let cached = (reads == Reads::Cached)
        .then(|| ctx.caches.app(namespace, app_name))
        .flatten()
        .filter(|a| usable(a).is_some());
    let app = match cached {
        Some(app) => app,
        None => {
            let apps: Api<SmoochApp> = Api::namespaced(ctx.client.clone(), namespace);
            let app = apps
                .get_opt(app_name)
                .await?
                .ok_or_else(|| Error::Waiting {
                    reason: "AppNotFound",
                    message: format!(
                        "SmoochApp {app_name} does not exist in namespace {namespace}"
                    ),
                })?;
            std::sync::Arc::new(app)
        }
    };
    match usable(&app) {
        Some(app_id) => Ok(AppConnection {
            client: client_for(&app, ctx).await?,
            app_id,
        }),
        _ => Err(not_ready(app_name)),
    }
}

/// For a dependent's cleanup: `None` when its app is being deleted together
/// with its Smooch app (Smooch deletes the children with it).
pub async fn connect_dependent_for_cleanup(
    namespace: &str,
    app_name: &str,
    recorded_app_id: Option<String>,
    ctx: &Context,
) -> Result<Option<AppConnection>> {
    let apps: Api<SmoochApp> = Api::namespaced(ctx.client.clone(), namespace);
    let app = apps.get_opt(app_name).await?;
    let cascades = app.as_ref().is_some_and(|a| {
        a.metadata.deletion_timestamp.is_some() && a.spec.deletion_policy == DeletionPolicy::Delete
    });
    let Some(app_id) = recorded_app_id.or_else(|| app.as_ref()?.status.as_ref()?.app_id.clone())
    else {
        return Ok(None);
    };
    if cascades {
        return Ok(None);
    }
    // Without its SmoochApp, the operator's default credentials are the
    // only ones it may use.
    let client = match &app {
        Some(app) => client_for(app, ctx).await?,
        None => credentials::default_client(namespace, ctx).await?,
    };
    Ok(Some(AppConnection { client, app_id }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::SmoochAppSpec;
    use crate::resources::app::AppSettingsSpec;

    fn resource() -> SmoochApp {
        let mut app = SmoochApp::new(
            "demo",
            SmoochAppSpec {
                name: "Demo".into(),
                settings: Some(AppSettingsSpec {
                    use_animal_names: Some(true),
                    ..Default::default()
                }),
                metadata: [("team".to_string(), "support".to_string())].into(),
                deletion_policy: DeletionPolicy::Orphan,
                credentials_secret_ref: None,
                secret_template: None,
            },
        );
        app.metadata.uid = Some("uid-1".into());
        app
    }

    fn external(want: &AppParams) -> App {
        App {
            id: "0123456789abcdef01234567".into(),
            app_token: Some("t".into()),
            name: want.name.clone().unwrap(),
            settings: Some(AppSettings {
                use_animal_names: Some(true),
                mask_credit_card_numbers: Some(true),
                ..Default::default()
            }),
            metadata: want.metadata.clone(),
        }
    }

    #[test]
    fn desired_metadata_carries_the_uid_tag() {
        let p = resource().desired_params();
        assert_eq!(p.metadata.unwrap()[UID_TAG], "uid-1");
    }

    #[test]
    fn no_drift_when_smooch_matches_and_adds_defaults() {
        let want = resource().desired_params();
        assert_eq!(app_drift(&want, &external(&want)), None);
    }

    #[test]
    fn drift_names_what_changed() {
        let want = resource().desired_params();
        let mut app = external(&want);
        app.name = "Renamed outside".into();
        app.settings.as_mut().unwrap().use_animal_names = Some(false);
        app.metadata.as_mut().unwrap().remove("team");
        assert_eq!(
            app_drift(&want, &app).as_deref(),
            Some("name, settings, metadata changed")
        );
    }
}
