//! The world of one run: a namespace with the app-maker credentials and
//! N telegram token Secrets, the emulator, and the N apps, keys and
//! integrations applied at once.

use crate::cli::Common;
use crate::emulator::Emu;
use crate::operator::OpConfig;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use smooch::Sensitive;
use smooch::jwt;
use smooch_emulator::Faults;
use smooch_operator::resources::{SmoochApp, SmoochIntegration, SmoochKey};
use smooch_test_support::{apply_secret, namespace};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub async fn retrying<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let mut last = String::new();
    for attempt in 0..20u32 {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
    panic!("{what} failed 20 times: {last}");
}

/// Applies a Secret, retrying while the API server is busy.
async fn put_secret(client: &Client, ns: &str, name: &str, pairs: &[(&str, &str)]) {
    retrying("apply secret", || apply_secret(client, ns, name, pairs)).await;
}

pub fn app_json(i: usize) -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
           "metadata": {"name": format!("a{i}")}, "spec": {"name": format!("bench app {i}")}})
}

pub fn key_json(i: usize) -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
           "metadata": {"name": format!("k{i}")},
           "spec": {"appRef": {"name": format!("a{i}")}, "name": "bench"}})
}

pub fn integration_json(i: usize) -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochIntegration",
           "metadata": {"name": format!("t{i}")},
           "spec": {"appRef": {"name": format!("a{i}")}, "type": "telegram",
                    "telegram": {"tokenRef": {"name": format!("tg{i}"), "key": "token"}}}})
}

/// The world of one run: a namespace with the app-maker credentials and
/// N telegram token Secrets (made before the clock starts).
pub struct World {
    pub client: Client,
    pub ns: String,
    pub emu: Emu,
    pub http: reqwest::Client,
}

impl World {
    pub async fn new(client: &Client, prefix: &str, n: usize, faults: Faults) -> World {
        let ns = namespace(client, prefix).await;
        let emu = Emu::start(faults).await;
        put_secret(
            client,
            &ns,
            "smooch-credentials",
            &[
                ("keyId", emu.state.maker_key_id()),
                ("secret", emu.state.maker_secret().expose()),
            ],
        )
        .await;
        futures::stream::iter(0..n)
            .map(|i| {
                let (client, ns) = (client.clone(), ns.clone());
                async move {
                    let token = format!("{}:AAbench{i:06}", 100_000 + i);
                    put_secret(&client, &ns, &format!("tg{i}"), &[("token", &token)]).await;
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        World {
            client: client.clone(),
            ns,
            emu,
            http: reqwest::Client::new(),
        }
    }

    pub fn op_config(&self, common: &Common) -> OpConfig {
        OpConfig {
            bin: common
                .operator_bin
                .clone()
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smooch-operator"))),
            smooch_url: self.emu.base_url.clone(),
            ns: self.ns.clone(),
            reconcile_concurrency: common.reconcile_concurrency,
            smooch_concurrency: common.smooch_concurrency,
            resync: common.resync.clone(),
        }
    }

    /// Creates apps, keys and integrations 0..n (interleaved, 32 at a time).
    pub async fn apply(&self, range: std::ops::Range<usize>) {
        let objects: Vec<(u8, Value)> = range
            .flat_map(|i| {
                [
                    (0u8, app_json(i)),
                    (1, key_json(i)),
                    (2, integration_json(i)),
                ]
            })
            .collect();
        futures::stream::iter(objects)
            .map(|(kind, value)| {
                let (client, ns) = (self.client.clone(), self.ns.clone());
                async move {
                    let pp = PostParams::default();
                    match kind {
                        0 => {
                            let api: Api<SmoochApp> = Api::namespaced(client, &ns);
                            let o: SmoochApp = serde_json::from_value(value).unwrap();
                            retrying("create app", || api.create(&pp, &o)).await;
                        }
                        1 => {
                            let api: Api<SmoochKey> = Api::namespaced(client, &ns);
                            let o: SmoochKey = serde_json::from_value(value).unwrap();
                            retrying("create key", || api.create(&pp, &o)).await;
                        }
                        _ => {
                            let api: Api<SmoochIntegration> = Api::namespaced(client, &ns);
                            let o: SmoochIntegration = serde_json::from_value(value).unwrap();
                            retrying("create integration", || api.create(&pp, &o)).await;
                        }
                    }
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
    }

    /// Ready=True counts (apps, keys, integrations); None when the API server did not answer.
    pub async fn ready_counts(&self) -> Option<(usize, usize, usize)> {
        async fn count<K>(api: Api<K>) -> Option<usize>
        where
            K: kube::Resource
                + Clone
                + serde::de::DeserializeOwned
                + serde::Serialize
                + std::fmt::Debug,
        {
            let list = api.list(&ListParams::default()).await.ok()?;
            Some(list.items.iter().filter(|o| is_ready(*o)).count())
        }
        let c = &self.client;
        Some((
            count(Api::<SmoochApp>::namespaced(c.clone(), &self.ns)).await?,
            count(Api::<SmoochKey>::namespaced(c.clone(), &self.ns)).await?,
            count(Api::<SmoochIntegration>::namespaced(c.clone(), &self.ns)).await?,
        ))
    }

    /// Waits for the Smooch side to go quiet (trailing reconciles counted).
    pub async fn settle(&self, common: &Common) {
        self.emu
            .settle(
                Duration::from_secs(common.quiet_secs),
                Duration::from_secs(60),
            )
            .await;
    }

    /// Polls until 3n objects are Ready; false after `--timeout-secs`.
    pub async fn wait_all_ready(&self, n: usize, common: &Common) -> bool {
        let timeout = Duration::from_secs(common.timeout_secs);
        let poll = if n <= 100 {
            Duration::from_millis(200)
        } else if n <= 300 {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(1)
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((a, k, i)) = self.ready_counts().await
                && a >= n
                && k >= n
                && i >= n
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(poll).await;
        }
    }
}

pub fn is_ready<K: serde::Serialize>(obj: &K) -> bool {
    let v = serde_json::to_value(obj).unwrap_or_default();
    v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

pub fn secret_text(s: &Secret, key: &str) -> Option<String> {
    String::from_utf8(s.data.as_ref()?.get(key)?.0.clone()).ok()
}

/// Whether a key Secret holds a JWT for its key id, signed with its secret, app scope.
pub fn jwt_valid(s: &Secret) -> bool {
    let (Some(token), Some(kid), Some(secret)) = (
        secret_text(s, "jwt"),
        secret_text(s, "keyId"),
        secret_text(s, "secret"),
    ) else {
        return false;
    };
    jwt::key_id_of(&token).is_ok_and(|k| k == kid)
        && jwt::verify(&token, &Sensitive::from(secret)).is_ok_and(|c| c.scope == jwt::Scope::App)
}
