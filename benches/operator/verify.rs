//! After a run: what exists in Smooch versus the resources (every object
//! exactly once, nothing orphaned, every Secret right).

use crate::world::{World, jwt_valid, secret_text};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::Value;
use smooch::models::{IntegrationType, SecretKey};
use smooch_emulator::Faults;
use smooch_operator::resources::{SmoochApp, SmoochIntegration, SmoochKey};
use std::collections::HashMap;

/// What exists in Smooch versus the resources, after convergence.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Verify {
    pub apps_in_smooch: usize,
    pub apps_not_exactly_once: usize,
    pub keys_not_exactly_once: usize,
    pub orphaned_keys: usize,
    pub integrations_not_exactly_once: usize,
    pub orphaned_integrations: usize,
    pub wrong_secrets: usize,
}

impl Verify {
    pub fn clean(&self) -> bool {
        self.apps_not_exactly_once
            + self.keys_not_exactly_once
            + self.orphaned_keys
            + self.integrations_not_exactly_once
            + self.orphaned_integrations
            + self.wrong_secrets
            == 0
    }
}

pub async fn verify(world: &World) -> Verify {
    // Reads only, without latency or faults.
    let _ = world.emu.state.set_faults(Faults::default());
    let smooch = world.emu.client();
    let c = &world.client;
    let apps = Api::<SmoochApp>::namespaced(c.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let keys = Api::<SmoochKey>::namespaced(c.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let ints = Api::<SmoochIntegration>::namespaced(c.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let secrets: HashMap<String, Secret> = Api::<Secret>::namespaced(c.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect();
    let external = smooch.list_all_apps().await.expect("list apps");
    let mut v = Verify {
        apps_in_smooch: external.len(),
        ..Default::default()
    };
    let tag_of = |a: &smooch_operator::smooch::models::App| {
        a.metadata
            .as_ref()
            .and_then(|m| m.get("smoochOperatorUid"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut by_uid: HashMap<String, usize> = HashMap::new();
    for a in &external {
        *by_uid.entry(tag_of(a).unwrap_or_default()).or_default() += 1;
    }
    let app_by_name: HashMap<String, &SmoochApp> = apps.iter().map(|a| (a.name_any(), a)).collect();
    let ext_by_id: HashMap<&str, &smooch_operator::smooch::models::App> =
        external.iter().map(|a| (a.id.as_str(), a)).collect();
    for a in &apps {
        let uid = a.uid().unwrap_or_default();
        if by_uid.get(&uid).copied() != Some(1) {
            v.apps_not_exactly_once += 1;
        }
        let recorded = a.status.as_ref().and_then(|s| s.app_id.clone());
        let ext = recorded.as_deref().and_then(|id| ext_by_id.get(id));
        let ok = match (ext, secrets.get(&format!("{}-app", a.name_any()))) {
            (Some(ext), Some(s)) => {
                secret_text(s, "appId").as_deref() == Some(ext.id.as_str())
                    && secret_text(s, "appToken").as_deref()
                        == ext.app_token.as_ref().map(|t| t.expose())
            }
            _ => false,
        };
        if !ok {
            v.wrong_secrets += 1;
        }
    }
    // Apps in Smooch that no resource claims count as not-exactly-once too.
    let uids: std::collections::HashSet<String> = apps.iter().filter_map(|a| a.uid()).collect();
    v.apps_not_exactly_once += external
        .iter()
        .filter(|a| !tag_of(a).is_some_and(|t| uids.contains(&t)))
        .count();

    // Keys and integrations, per external app.
    let per_app: Vec<(String, Vec<SecretKey>, Vec<String>)> =
        futures::stream::iter(external.iter())
            .map(|a| {
                let smooch = &smooch;
                async move {
                    let keys = smooch.list_keys(&a.id).await.unwrap_or_default();
                    let ints = smooch
                        .list_integrations(&a.id, &[IntegrationType::Telegram])
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| i.id)
                        .collect();
                    (a.id.clone(), keys, ints)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    let keys_by_app: HashMap<&str, &Vec<SecretKey>> =
        per_app.iter().map(|(id, k, _)| (id.as_str(), k)).collect();
    let ints_by_app: HashMap<&str, &Vec<String>> =
        per_app.iter().map(|(id, _, i)| (id.as_str(), i)).collect();
    let mut claimed_keys = std::collections::HashSet::new();
    for k in &keys {
        let app_id = app_by_name
            .get(&k.spec.app_ref.name)
            .and_then(|a| a.status.as_ref()?.app_id.clone())
            .unwrap_or_default();
        let tag = format!("bench.{}", k.uid().unwrap_or_default());
        let in_smooch: Vec<&SecretKey> = keys_by_app
            .get(app_id.as_str())
            .map(|ks| ks.iter().filter(|x| x.name == tag).collect())
            .unwrap_or_default();
        let recorded = k.status.as_ref().and_then(|s| s.key_id.clone());
        if in_smooch.len() != 1 || Some(in_smooch[0].id.clone()) != recorded {
            v.keys_not_exactly_once += 1;
        }
        if let Some(id) = &recorded {
            claimed_keys.insert(id.clone());
        }
        let ok = match (
            in_smooch.first(),
            secrets.get(&format!("{}-key", k.name_any())),
        ) {
            (Some(ext), Some(s)) => {
                secret_text(s, "keyId").as_deref() == Some(ext.id.as_str())
                    && secret_text(s, "secret").as_deref() == Some(ext.secret.expose())
                    && secret_text(s, "appId").as_deref() == Some(app_id.as_str())
                    && jwt_valid(s)
            }
            _ => false,
        };
        if !ok {
            v.wrong_secrets += 1;
        }
    }
    v.orphaned_keys = per_app
        .iter()
        .flat_map(|(_, ks, _)| ks.iter())
        .filter(|k| !claimed_keys.contains(&k.id))
        .count();
    let mut claimed_ints = std::collections::HashSet::new();
    for i in &ints {
        let app_id = app_by_name
            .get(&i.spec.app_ref.name)
            .and_then(|a| a.status.as_ref()?.app_id.clone())
            .unwrap_or_default();
        let recorded = i.status.as_ref().and_then(|s| s.integration_id.clone());
        let listed = ints_by_app.get(app_id.as_str()).copied();
        if listed.is_none_or(|l| l.len() != 1 || Some(&l[0]) != recorded.as_ref()) {
            v.integrations_not_exactly_once += 1;
        }
        if let Some(id) = recorded {
            claimed_ints.insert(id);
        }
    }
    v.orphaned_integrations = per_app
        .iter()
        .flat_map(|(_, _, is)| is.iter())
        .filter(|i| !claimed_ints.contains(*i))
        .count();
    v
}
