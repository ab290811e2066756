//! The emulated Smooch data: apps with their keys, integrations and
//! webhooks, plus the app-maker key. Pure data and lookups; locking and
//! persistence live in `state.rs`.
//!
//! One store serves `/v1`, `/v1.1` and `/v2`, so every object is visible
//! through each version:
//!
//! - An app is v1's [`App`] (`name` is v2's `displayName`; an app made
//!   through v2 still gets an `appToken`, which v2 never shows). v2's extra
//!   settings (`multiConvoEnabled`, `appLocalizationEnabled`) live in
//!   [`AppRecord::extra_settings`].
//! - A key is v1's [`SecretKey`] (`name` is v2's `displayName`).
//! - A channel integration (messenger, twilio, telegram, line) is v1's
//!   [`Integration`], whose public fields are exactly what v1 answers;
//!   fields only v2 shows (messenger `appId`, twilio `messagingServiceSid`,
//!   `defaultResponderId`, ...) are kept beside it in
//!   [`AppRecord::integration_extras`], so v1's answers do not change.
//! - **Webhooks and custom integrations.** Every webhook belongs to
//!   exactly one custom integration ([`CustomIntegration`], which lists its
//!   webhooks' ids). Webhooks stay in one flat list per app
//!   ([`AppRecord::webhooks`]), which is what v1's `/webhooks` lists, so a
//!   custom integration's webhooks made through v2 are v1 webhooks too.
//!   Creating a webhook through v1 creates a custom integration holding it
//!   (v1 knows no integrations to put it in); deleting one through v1
//!   drops its custom integration too once that holds no webhook (v1 could
//!   not see or delete the empty integration). Through v2, deleting a
//!   webhook leaves its integration, and deleting a custom integration
//!   deletes its webhooks. v1's integration endpoints do not show custom
//!   integrations (v1 has no such type); they show as webhooks.
//! - State files written before `/v2` existed have webhooks and no custom
//!   integrations: loading one gives each webhook a custom integration of
//!   its own, with an id derived from the webhook's (stable until the file
//!   is rewritten with it). New fields all have serde defaults.

use super::error::ApiError;
use super::ids;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use smooch::Sensitive;
use smooch::models::{App, Integration, SecretKey, Webhook};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Version of the state file layout.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Everything the emulator knows, as written to the state file. Channel
/// credentials are not kept at all (they are never read back), so they
/// never reach the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    pub format: u32,
    pub maker_key_id: String,
    pub maker_secret: Sensitive,
    pub apps: Vec<AppRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRecord {
    pub app: App,
    pub keys: Vec<SecretKey>,
    /// Channel integrations, as v1 shows them.
    pub integrations: Vec<Integration>,
    /// Every webhook of the app, each held by one of `custom_integrations`.
    pub webhooks: Vec<Webhook>,
    #[serde(
        default,
        rename = "customIntegrations",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub custom_integrations: Vec<CustomIntegration>,
    /// Integration id → fields only `/v2` shows.
    #[serde(
        default,
        rename = "integrationExtras",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub integration_extras: BTreeMap<String, Map<String, Value>>,
    /// App settings only `/v2` knows.
    #[serde(
        default,
        rename = "extraSettings",
        skip_serializing_if = "Map::is_empty"
    )]
    pub extra_settings: Map<String, Value>,
}

/// A v2 `custom` integration: a name and the webhooks it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomIntegration {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub webhook_ids: Vec<String>,
}

/// Whose key signed a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    AppMaker,
    App(String),
}

/// The snapshot plus indexes, so that id lookups do not scan every app.
#[derive(Clone, Debug)]
pub struct Store {
    snapshot: Snapshot,
    /// App id → position in `snapshot.apps`.
    app_positions: HashMap<String, usize>,
    /// App key id → app id.
    key_owners: HashMap<String, String>,
}

trait HasId {
    fn id(&self) -> &str;
}

impl HasId for SecretKey {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Integration {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Webhook {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for CustomIntegration {
    fn id(&self) -> &str {
        &self.id
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::not_found(format!("{what} not found"))
}

fn find<'a, T: HasId>(items: &'a [T], id: &str, what: &str) -> Result<&'a T, ApiError> {
    items
        .iter()
        .find(|item| item.id() == id)
        .ok_or_else(|| not_found(what))
}

fn find_mut<'a, T: HasId>(items: &'a mut [T], id: &str, what: &str) -> Result<&'a mut T, ApiError> {
    items
        .iter_mut()
        .find(|item| item.id() == id)
        .ok_or_else(|| not_found(what))
}

fn remove<T: HasId>(items: &mut Vec<T>, id: &str, what: &str) -> Result<T, ApiError> {
    let position = items
        .iter()
        .position(|item| item.id() == id)
        .ok_or_else(|| not_found(what))?;
    Ok(items.remove(position))
}

impl AppRecord {
    pub fn new(app: App) -> Self {
        AppRecord {
            app,
            keys: Vec::new(),
            integrations: Vec::new(),
            webhooks: Vec::new(),
            custom_integrations: Vec::new(),
            integration_extras: BTreeMap::new(),
            extra_settings: Map::new(),
        }
    }

    pub fn key(&self, id: &str) -> Result<&SecretKey, ApiError> {
        find(&self.keys, id, "Key")
    }

    pub fn integration(&self, id: &str) -> Result<&Integration, ApiError> {
        find(&self.integrations, id, "Integration")
    }

    /// Removes a channel integration (v1's integration endpoints).
    pub fn remove_integration(&mut self, id: &str) -> Result<(), ApiError> {
        remove(&mut self.integrations, id, "Integration")?;
        self.integration_extras.remove(id);
        Ok(())
    }

    pub fn custom_integration(&self, id: &str) -> Result<&CustomIntegration, ApiError> {
        find(&self.custom_integrations, id, "Integration")
    }

    pub fn custom_integration_mut(&mut self, id: &str) -> Result<&mut CustomIntegration, ApiError> {
        find_mut(&mut self.custom_integrations, id, "Integration")
    }

    /// Removes a custom integration with its webhooks.
    pub fn remove_custom_integration(&mut self, id: &str) -> Result<(), ApiError> {
        let removed = remove(&mut self.custom_integrations, id, "Integration")?;
        self.webhooks
            .retain(|webhook| !removed.webhook_ids.contains(&webhook.id));
        Ok(())
    }

    /// The custom integration holding a webhook.
    pub fn owner_of_webhook(&self, webhook_id: &str) -> Option<&CustomIntegration> {
        self.custom_integrations
            .iter()
            .find(|c| c.webhook_ids.iter().any(|id| id == webhook_id))
    }

    /// Adds a webhook to an existing custom integration.
    pub fn add_webhook(&mut self, integration_id: &str, webhook: Webhook) -> Result<(), ApiError> {
        self.custom_integration_mut(integration_id)?
            .webhook_ids
            .push(webhook.id.clone());
        self.webhooks.push(webhook);
        Ok(())
    }

    /// Adds a webhook in a new custom integration of its own (v1's create).
    pub fn add_webhook_alone(&mut self, webhook: Webhook) {
        self.custom_integrations.push(CustomIntegration {
            id: ids::object_id(),
            display_name: None,
            webhook_ids: vec![webhook.id.clone()],
        });
        self.webhooks.push(webhook);
    }

    /// A custom integration's webhooks, in the order they were added.
    pub fn webhooks_of(&self, integration: &CustomIntegration) -> Vec<Webhook> {
        integration
            .webhook_ids
            .iter()
            .filter_map(|id| self.webhook(id).ok().cloned())
            .collect()
    }

    /// Gives every webhook without one a custom integration of its own
    /// (state files from before `/v2`), and drops dangling webhook ids.
    fn adopt_orphan_webhooks(&mut self) {
        let existing: HashSet<String> = self.webhooks.iter().map(|w| w.id.clone()).collect();
        for custom in &mut self.custom_integrations {
            custom.webhook_ids.retain(|id| existing.contains(id));
        }
        let owned: HashSet<String> = self
            .custom_integrations
            .iter()
            .flat_map(|c| c.webhook_ids.iter().cloned())
            .collect();
        for webhook in &self.webhooks {
            if !owned.contains(&webhook.id) {
                self.custom_integrations.push(CustomIntegration {
                    id: ids::derived_object_id(&["custom-integration", &webhook.id]),
                    display_name: None,
                    webhook_ids: vec![webhook.id.clone()],
                });
            }
        }
    }

    pub fn webhook(&self, id: &str) -> Result<&Webhook, ApiError> {
        find(&self.webhooks, id, "Webhook")
    }

    pub fn webhook_mut(&mut self, id: &str) -> Result<&mut Webhook, ApiError> {
        find_mut(&mut self.webhooks, id, "Webhook")
    }

    /// Removes a webhook from the app and from its custom integration;
    /// with `drop_empty_owner` (v1) an integration left empty goes too.
    pub fn remove_webhook(&mut self, id: &str, drop_empty_owner: bool) -> Result<(), ApiError> {
        remove(&mut self.webhooks, id, "Webhook")?;
        let owner = self.owner_of_webhook(id).map(|c| c.id.clone());
        for custom in &mut self.custom_integrations {
            custom.webhook_ids.retain(|w| w != id);
        }
        if let (Some(owner), true) = (owner, drop_empty_owner)
            && self
                .custom_integration(&owner)
                .is_ok_and(|c| c.webhook_ids.is_empty())
        {
            self.custom_integrations.retain(|c| c.id != owner);
        }
        Ok(())
    }
}

impl Store {
    /// Builds the indexes; fails on a snapshot that could not have been
    /// written by the emulator (wrong format, duplicate ids).
    pub fn from_snapshot(mut snapshot: Snapshot) -> Result<Self, String> {
        for record in &mut snapshot.apps {
            record.adopt_orphan_webhooks();
        }
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(format!(
                "unsupported format {} (expected {SNAPSHOT_FORMAT})",
                snapshot.format
            ));
        }
        if snapshot.maker_key_id.is_empty() || snapshot.maker_secret.is_empty() {
            return Err("makerKeyId and makerSecret must not be empty".into());
        }
        let mut store = Store {
            snapshot,
            app_positions: HashMap::new(),
            key_owners: HashMap::new(),
        };
        store.reindex()?;
        Ok(store)
    }

    fn reindex(&mut self) -> Result<(), String> {
        self.app_positions.clear();
        self.key_owners.clear();
        for (position, record) in self.snapshot.apps.iter().enumerate() {
            let app_id = &record.app.id;
            if self
                .app_positions
                .insert(app_id.clone(), position)
                .is_some()
            {
                return Err(format!("app id {app_id} appears twice"));
            }
            for key in &record.keys {
                let taken = key.id == self.snapshot.maker_key_id
                    || self
                        .key_owners
                        .insert(key.id.clone(), app_id.clone())
                        .is_some();
                if taken {
                    return Err(format!("key id {} appears twice", key.id));
                }
            }
        }
        Ok(())
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The key that signs tokens with this `kid`, and whose it is.
    pub fn signing_key(&self, kid: &str) -> Option<(Signer, Sensitive)> {
        if kid == self.snapshot.maker_key_id {
            return Some((Signer::AppMaker, self.snapshot.maker_secret.clone()));
        }
        let app_id = self.key_owners.get(kid)?;
        let key = self.app(app_id).ok()?.key(kid).ok()?;
        Some((Signer::App(app_id.clone()), key.secret.clone()))
    }

    pub fn insert_app(&mut self, app: App) {
        self.insert_record(AppRecord::new(app));
    }

    /// Adds a new app (one without keys yet).
    pub fn insert_record(&mut self, record: AppRecord) {
        self.app_positions
            .insert(record.app.id.clone(), self.snapshot.apps.len());
        self.snapshot.apps.push(record);
    }

    /// A page of apps in creation order, and whether more follow.
    pub fn list_apps(&self, offset: usize, limit: usize) -> (Vec<App>, bool) {
        let apps = &self.snapshot.apps;
        let page = apps
            .iter()
            .skip(offset)
            .take(limit)
            .map(|record| record.app.clone())
            .collect::<Vec<_>>();
        let has_more = offset.saturating_add(page.len()) < apps.len();
        (page, has_more)
    }

    pub fn app(&self, id: &str) -> Result<&AppRecord, ApiError> {
        self.app_positions
            .get(id)
            .map(|&position| &self.snapshot.apps[position])
            .ok_or_else(|| not_found("App"))
    }

    pub fn app_mut(&mut self, id: &str) -> Result<&mut AppRecord, ApiError> {
        match self.app_positions.get(id) {
            Some(&position) => Ok(&mut self.snapshot.apps[position]),
            None => Err(not_found("App")),
        }
    }

    /// Removes an app with its keys, integrations and webhooks; tokens
    /// signed with its keys stop working because their `kid` is gone.
    pub fn remove_app(&mut self, id: &str) -> Result<(), ApiError> {
        let position = *self.app_positions.get(id).ok_or_else(|| not_found("App"))?;
        let record = self.snapshot.apps.remove(position);
        for key in &record.keys {
            self.key_owners.remove(&key.id);
        }
        self.app_positions.remove(id);
        for later in &self.snapshot.apps[position..] {
            if let Some(p) = self.app_positions.get_mut(&later.app.id) {
                *p -= 1;
            }
        }
        Ok(())
    }

    pub fn add_key(&mut self, app_id: &str, key: SecretKey) -> Result<(), ApiError> {
        let key_id = key.id.clone();
        self.app_mut(app_id)?.keys.push(key);
        self.key_owners.insert(key_id, app_id.to_owned());
        Ok(())
    }

    pub fn remove_key(&mut self, app_id: &str, key_id: &str) -> Result<(), ApiError> {
        remove(&mut self.app_mut(app_id)?.keys, key_id, "Key")?;
        self.key_owners.remove(key_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str) -> App {
        App {
            id: id.into(),
            app_token: Some("t".into()),
            name: id.into(),
            settings: None,
            metadata: None,
        }
    }

    fn store() -> Store {
        Store::from_snapshot(Snapshot {
            format: SNAPSHOT_FORMAT,
            maker_key_id: "maker".into(),
            maker_secret: "s".into(),
            apps: Vec::new(),
        })
        .unwrap()
    }

    fn key(id: &str) -> SecretKey {
        SecretKey {
            id: id.into(),
            secret: "k".into(),
            name: "n".into(),
        }
    }

    #[test]
    fn removing_an_app_keeps_the_indexes_right() {
        let mut s = store();
        for id in ["a", "b", "c"] {
            s.insert_app(app(id));
        }
        s.add_key("a", key("ka")).unwrap();
        s.add_key("c", key("kc")).unwrap();
        s.remove_app("a").unwrap();
        assert!(s.app("a").is_err());
        assert_eq!(s.app("c").unwrap().app.id, "c");
        assert_eq!(s.signing_key("ka"), None);
        assert_eq!(s.signing_key("kc").unwrap().0, Signer::App("c".into()));
        assert_eq!(s.signing_key("maker").unwrap().0, Signer::AppMaker);
    }

    #[test]
    fn pages() {
        let mut s = store();
        for i in 0..5 {
            s.insert_app(app(&i.to_string()));
        }
        let (page, more) = s.list_apps(0, 2);
        assert_eq!(page.len(), 2);
        assert!(more);
        let (page, more) = s.list_apps(3, 2);
        assert_eq!((page.len(), more), (2, false));
        let (page, more) = s.list_apps(9, 2);
        assert_eq!((page.len(), more), (0, false));
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let mut snapshot = store().snapshot().clone();
        snapshot.apps = vec![AppRecord::new(app("a")), AppRecord::new(app("a"))];
        assert!(Store::from_snapshot(snapshot).is_err());
    }
}
