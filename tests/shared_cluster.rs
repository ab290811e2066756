//! Safe on a cluster that several teams share: no resource reaches a Smooch
//! object another resource manages, the tenancy allow-lists hold, whatever
//! was created is recorded (and so deleted) even when a later step fails,
//! any name Kubernetes accepts works, deleting a namespace cleans up in
//! Smooch, rotation keeps its promises and odd credentials are understood.

mod support;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use smooch_operator::resources::{SmoochApp, SmoochIntegration, SmoochKey, SmoochWebhook};
use smooch_operator::smooch::jwt;
use smooch_operator::smooch::models::AppParams;
use std::fmt::Debug;
use std::time::Duration;
use support::{ApiVersion, CREDENTIALS_SECRET, Harness, OperatorOptions, condition, secret_value};

support::for_each_api_version!(names_of_any_length_kubernetes_accepts_become_ready);

fn app(name: &str, policy: &str) -> serde_json::Value {
    json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
        "metadata": {"name": name}, "spec": {"name": name, "deletionPolicy": policy}
    })
}

fn key(name: &str, app: &str) -> serde_json::Value {
    json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
        "metadata": {"name": name},
        "spec": {"appRef": {"name": app}, "deletionPolicy": "Delete"}
    })
}

fn webhook(name: &str, app: &str) -> serde_json::Value {
    json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochWebhook",
        "metadata": {"name": name},
        "spec": {"appRef": {"name": app}, "target": "https://example.com/hook", "deletionPolicy": "Delete"}
    })
}

fn telegram(name: &str, app: &str) -> serde_json::Value {
    json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochIntegration",
        "metadata": {"name": name},
        "spec": {"appRef": {"name": app}, "type": "telegram", "deletionPolicy": "Delete",
                 "telegram": {"tokenRef": {"name": "telegram", "key": "token"}}}
    })
}

/// Another namespace of the same test, with typed access like the harness's.
struct Tenant {
    client: kube::Client,
    ns: String,
}

impl Tenant {
    async fn new(h: &Harness, prefix: &str) -> Tenant {
        Tenant {
            client: h.client.clone(),
            ns: support::namespace(&h.client, prefix).await,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn create<K>(&self, value: serde_json::Value) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        <K as Resource>::DynamicType: Default,
    {
        support::create_in(&self.api::<K>(), value).await
    }

    async fn put_secret(&self, name: &str, pairs: &[(&str, &str)]) {
        let data: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name}, "stringData": data,
        }))
        .unwrap();
        self.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret created");
    }

    async fn wait_for<K>(&self, name: &str, what: &str, check: impl Fn(&K) -> bool) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        <K as Resource>::DynamicType: Default,
    {
        support::wait_for_in(&self.api::<K>(), name, what, check).await
    }

    async fn wait_reason<K>(&self, name: &str, reason: &str) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        <K as Resource>::DynamicType: Default,
    {
        self.wait_for::<K>(name, reason, |o| {
            condition(o, "Ready").is_some_and(|c| c.0 == "False" && c.1 == reason)
        })
        .await
    }

    async fn delete_and_wait_gone<K>(&self, name: &str)
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let api = self.api::<K>();
        api.delete(name, &DeleteParams::default()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while api.get_opt(name).await.unwrap().is_some() {
            assert!(tokio::time::Instant::now() < deadline, "{name} never went");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn ready_app_id(h: &Harness, name: &str) -> String {
    h.wait_ready::<SmoochApp>(name)
        .await
        .status
        .unwrap()
        .app_id
        .unwrap()
}

#[tokio::test]
async fn another_namespace_cannot_take_over_an_app_that_a_resource_manages() {
    let mut h = Harness::without_operator("takeover-a").await;
    let b = Tenant::new(&h, "takeover-b").await;
    h.start_operator(OperatorOptions {
        extra_namespaces: vec![b.ns.clone()],
        ..Default::default()
    })
    .await;
    h.create::<SmoochApp>(app("shop", "Delete")).await;
    let shop_id = ready_app_id(&h, "shop").await;

    // B names A's app in the adoption annotation.
    let mut thief = app("thief", "Delete");
    thief["metadata"]["annotations"] = json!({"smooch-operator.io/external-id": shop_id});
    b.create::<SmoochApp>(thief).await;
    let refused = b.wait_reason::<SmoochApp>("thief", "AlreadyManaged").await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(message.contains("already managed"), "{message}");
    assert!(
        !message.contains(&h.ns),
        "the message names the other tenant's namespace: {message}"
    );
    assert_eq!(refused.status.as_ref().and_then(|s| s.app_id.clone()), None);
    assert!(
        b.api::<Secret>()
            .get_opt("thief-app")
            .await
            .unwrap()
            .is_none()
    );
    // Its keys never get to A's app either.
    b.create::<SmoochKey>(key("stolen", "thief")).await;

    // An app tagged with the uid of another live resource (one it created
    // and has not recorded yet) is refused too.
    let shop = h.api::<SmoochApp>().get("shop").await.unwrap();
    let mut tags = serde_json::Map::new();
    tags.insert("smoochOperatorUid".into(), json!(shop.uid().unwrap()));
    let tagged = h
        .smooch()
        .create_app(&AppParams {
            name: Some("duplicate".into()),
            settings: None,
            metadata: Some(tags),
        })
        .await
        .unwrap();
    let mut thief2 = app("thief2", "Delete");
    thief2["metadata"]["annotations"] = json!({"smooch-operator.io/external-id": tagged.id});
    b.create::<SmoochApp>(thief2).await;
    b.wait_reason::<SmoochApp>("thief2", "AlreadyManaged").await;

    let stolen = b.wait_reason::<SmoochKey>("stolen", "AppNotReady").await;
    assert_eq!(stolen.status.and_then(|s| s.key_id), None);
    assert!(h.smooch().list_keys(&shop_id).await.unwrap().is_empty());

    // Deleting the refused resources deletes nothing in Smooch.
    b.delete_and_wait_gone::<SmoochKey>("stolen").await;
    b.delete_and_wait_gone::<SmoochApp>("thief").await;
    b.delete_and_wait_gone::<SmoochApp>("thief2").await;
    h.smooch()
        .get_app(&shop_id)
        .await
        .expect("A's app survives");
    h.smooch()
        .get_app(&tagged.id)
        .await
        .expect("tagged app survives");
    h.wait_ready::<SmoochApp>("shop").await;
    h.finish().await;
}

#[tokio::test]
async fn allow_lists_limit_default_credentials_and_adoption_to_named_namespaces() {
    let mut h = Harness::without_operator("tenancy-a").await;
    let b = Tenant::new(&h, "tenancy-b").await;
    h.start_operator(OperatorOptions {
        extra_namespaces: vec![b.ns.clone()],
        default_credentials_namespaces: vec![h.ns.clone()],
        adoption_namespaces: vec![h.ns.clone()],
        ..Default::default()
    })
    .await;
    // A, on the list, uses the default credentials.
    h.create::<SmoochApp>(app("shop", "Delete")).await;
    ready_app_id(&h, "shop").await;

    // B, not on the list: refused, with what to do.
    b.create::<SmoochApp>(app("shared", "Delete")).await;
    let refused = b
        .wait_reason::<SmoochApp>("shared", "DefaultCredentialsNotAllowed")
        .await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(message.contains("credentialsSecretRef"), "{message}");

    // With credentials of its own, B works.
    b.put_secret(
        "own-credentials",
        &[
            ("keyId", h.emulator.maker_key_id()),
            ("secret", h.emulator.maker_secret().expose()),
        ],
    )
    .await;
    let mut own = app("own", "Delete");
    own["spec"]["credentialsSecretRef"] = json!({"name": "own-credentials"});
    b.create::<SmoochApp>(own.clone()).await;
    let own_ready = b
        .wait_for::<SmoochApp>("own", "Ready", |a| {
            condition(a, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;

    // But B may not adopt, even with its own credentials.
    let loose = h
        .smooch()
        .create_app(&AppParams {
            name: Some("unmanaged".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut adopter = own.clone();
    adopter["metadata"] = json!({"name": "adopter",
        "annotations": {"smooch-operator.io/external-id": loose.id}});
    b.create::<SmoochApp>(adopter).await;
    b.wait_reason::<SmoochApp>("adopter", "AdoptionNotAllowed")
        .await;
    assert!(own_ready.status.unwrap().app_id.is_some());
    b.delete_and_wait_gone::<SmoochApp>("adopter").await;
    h.smooch().get_app(&loose.id).await.expect("not deleted");
    h.finish().await;
}

/// A Secret of the default name that someone else owns.
async fn squat(h: &Harness, name: &str) {
    h.put_secret(name, &[("owner", "somebody else")]).await;
}

#[tokio::test]
async fn what_was_created_before_a_later_step_failed_is_recorded_and_deleted_with_its_resource() {
    // Retried every second: a retry must not find the object "again".
    let h = Harness::start_with(
        "leak",
        OperatorOptions {
            permanent_error_retry: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    squat(&h, "leaky-app").await;
    h.create::<SmoochApp>(app("leaky", "Delete")).await;
    let stuck = h
        .wait_for::<SmoochApp>("leaky", "SecretConflict", |a| {
            condition(a, "Ready").is_some_and(|c| c.1 == "SecretConflict")
        })
        .await;
    let app_id = stuck
        .status
        .as_ref()
        .and_then(|s| s.app_id.clone())
        .expect("the app id is recorded although the Secret could not be written");
    assert_eq!(h.smooch().list_all_apps().await.unwrap().len(), 1);

    // A key of a working app, whose Secret is taken too.
    h.create::<SmoochApp>(app("shop", "Orphan")).await;
    let shop_id = ready_app_id(&h, "shop").await;
    squat(&h, "leaky-key").await;
    h.create::<SmoochKey>(key("leaky", "shop")).await;
    let stuck = h
        .wait_for::<SmoochKey>("leaky", "SecretConflict", |k| {
            condition(k, "Ready").is_some_and(|c| c.1 == "SecretConflict")
        })
        .await;
    let key_id = stuck
        .status
        .and_then(|s| s.key_id)
        .expect("the key id is recorded");
    // Retries do not claim to have found it again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reasons = h.event_reasons().await;
    assert!(!reasons.iter().any(|r| r == "Recovered"), "{reasons:?}");

    h.delete::<SmoochKey>("leaky").await;
    h.wait_gone::<SmoochKey>("leaky").await;
    assert_eq!(
        h.smooch()
            .get_key(&shop_id, &key_id)
            .await
            .unwrap_err()
            .status(),
        Some(404),
        "the leaked key would still authenticate"
    );
    h.delete::<SmoochApp>("leaky").await;
    h.wait_gone::<SmoochApp>("leaky").await;
    assert_eq!(
        h.smooch().get_app(&app_id).await.unwrap_err().status(),
        Some(404)
    );
    // The squatters' Secrets are untouched.
    for name in ["leaky-app", "leaky-key"] {
        let s = h.secret(name).await.unwrap();
        assert_eq!(secret_value(&s, "owner"), "somebody else");
    }
    h.finish().await;
}

/// Under v2 also the key's Smooch name: a `displayName` takes at most 100
/// characters, and the key's is the resource name plus its uid tag.
async fn names_of_any_length_kubernetes_accepts_become_ready(version: ApiVersion) {
    let h = Harness::start_on("longname", version).await;
    h.put_secret("telegram", &[("token", "123456:ABC-DEF")])
        .await;
    // 253 characters, the most Kubernetes accepts, in dotted segments.
    let long = |c: char| {
        let segment = |n: usize| -> String { std::iter::repeat_n(c, n).collect() };
        format!(
            "{}.{}.{}.{}",
            segment(63),
            segment(63),
            segment(63),
            segment(61)
        )
    };
    let (app_name, key_name, hook_name, int_name) = (long('a'), long('k'), long('w'), long('i'));
    assert_eq!(app_name.len(), 253);
    let mut app_manifest = app(&app_name, "Delete");
    if version == ApiVersion::V2 {
        // The app's own name in Smooch is the user's choice: v2's limit.
        app_manifest["spec"]["name"] = json!(app_name[..100]);
    }
    h.create::<SmoochApp>(app_manifest).await;
    h.create::<SmoochKey>(key(&key_name, &app_name)).await;
    h.create::<SmoochWebhook>(webhook(&hook_name, &app_name))
        .await;
    h.create::<SmoochIntegration>(telegram(&int_name, &app_name))
        .await;
    let app = h.wait_ready::<SmoochApp>(&app_name).await;
    let key = h.wait_ready::<SmoochKey>(&key_name).await;
    let hook = h.wait_ready::<SmoochWebhook>(&hook_name).await;
    h.wait_ready::<SmoochIntegration>(&int_name).await;
    for secret_name in [
        app.status.unwrap().common.secret_name.unwrap(),
        key.status.unwrap().common.secret_name.unwrap(),
        hook.status.unwrap().common.secret_name.unwrap(),
    ] {
        assert!(secret_name.len() <= 253, "{secret_name}");
        let secret = h.secret(&secret_name).await.expect("Secret written");
        let labels = secret.labels();
        let owner = &labels["smooch-operator.io/owner-name"];
        assert!(owner.len() <= 63, "{owner}");
    }
    let app_id = h
        .api::<SmoochApp>()
        .get(&app_name)
        .await
        .unwrap()
        .status
        .unwrap()
        .app_id
        .unwrap();
    let keys = h.smooch().list_keys(&app_id).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].name.starts_with("kkkk") && keys[0].name.len() <= 290,
        "{}",
        keys[0].name
    );
    if version == ApiVersion::V2 {
        assert_eq!(keys[0].name.chars().count(), 100, "{}", keys[0].name);
    }
    // Each has its Created event, although "<name>.<suffix>" would be
    // longer than an event's name may be.
    let events = h
        .api::<k8s_openapi::api::events::v1::Event>()
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    for name in [&app_name, &key_name, &hook_name, &int_name] {
        assert!(
            events.iter().any(|e| e.reason.as_deref() == Some("Created")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)),
            "no Created event for {}…",
            &name[..8]
        );
    }
    h.finish().await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_delete_policy_objects_in_smooch() {
    let mut h = Harness::without_operator("nsdel-op").await;
    let team = Tenant::new(&h, "nsdel-team").await;
    h.start_operator(OperatorOptions {
        extra_namespaces: vec![team.ns.clone()],
        ..Default::default()
    })
    .await;
    team.put_secret(
        "team-credentials",
        &[
            ("keyId", h.emulator.maker_key_id()),
            ("secret", h.emulator.maker_secret().expose()),
        ],
    )
    .await;
    team.put_secret("telegram", &[("token", "123456:ABC-DEF")])
        .await;
    let with_credentials = |name: &str, policy: &str| {
        let mut a = app(name, policy);
        a["spec"]["credentialsSecretRef"] = json!({"name": "team-credentials"});
        a
    };
    // One app goes with its namespace; the other stays (Orphan), and the
    // key, webhook and integration made under it go.
    team.create::<SmoochApp>(with_credentials("gone", "Delete"))
        .await;
    team.create::<SmoochApp>(with_credentials("kept", "Orphan"))
        .await;
    team.create::<SmoochKey>(key("k", "kept")).await;
    team.create::<SmoochWebhook>(webhook("w", "kept")).await;
    team.create::<SmoochIntegration>(telegram("i", "kept"))
        .await;
    let ready = |o: &serde_json::Value| {
        o["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    };
    let gone = team
        .wait_for::<SmoochApp>("gone", "Ready", |a| ready(&json!(a)))
        .await;
    let kept = team
        .wait_for::<SmoochApp>("kept", "Ready", |a| ready(&json!(a)))
        .await;
    team.wait_for::<SmoochKey>("k", "Ready", |o| ready(&json!(o)))
        .await;
    team.wait_for::<SmoochWebhook>("w", "Ready", |o| ready(&json!(o)))
        .await;
    team.wait_for::<SmoochIntegration>("i", "Ready", |o| ready(&json!(o)))
        .await;
    let gone_id = gone.status.unwrap().app_id.unwrap();
    let kept_id = kept.status.unwrap().app_id.unwrap();
    let smooch = h.smooch();
    assert_eq!(smooch.list_keys(&kept_id).await.unwrap().len(), 1);

    let namespaces: Api<Namespace> = Api::all(h.client.clone());
    namespaces
        .delete(&team.ns, &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while namespaces.get_opt(&team.ns).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "namespace {} never went away",
            team.ns
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        smooch.get_app(&gone_id).await.unwrap_err().status(),
        Some(404),
        "the Delete-policy app was orphaned"
    );
    smooch.get_app(&kept_id).await.expect("Orphan app stays");
    assert!(smooch.list_keys(&kept_id).await.unwrap().is_empty());
    assert!(smooch.list_webhooks(&kept_id).await.unwrap().is_empty());
    assert!(
        smooch
            .list_integrations(&kept_id, &[])
            .await
            .unwrap()
            .is_empty()
    );
    h.finish().await;
}

#[tokio::test]
async fn a_previous_key_lives_until_its_promised_expiry_even_when_the_next_rotation_is_due() {
    let h = Harness::start("overlap").await;
    h.create::<SmoochApp>(app("shop", "Orphan")).await;
    let app_id = ready_app_id(&h, "shop").await;
    let mut rotating = key("rotating", "shop");
    rotating["spec"]["rotation"] = json!({"every": "1h", "overlap": "1h"});
    h.create::<SmoochKey>(rotating).await;
    let first = h.wait_ready::<SmoochKey>("rotating").await;
    let first_id = first.status.unwrap().key_id.unwrap();

    // An hour later: rotated, the first key promised for one more hour.
    h.patch_status_and_poke::<SmoochKey>(
        "rotating",
        json!({"keyCreatedAt": support::hours_ago(2)}),
    )
    .await;
    let rotated = h
        .wait_for::<SmoochKey>("rotating", "rotated", |k| {
            k.status
                .as_ref()
                .is_some_and(|s| s.previous_key_id.as_deref() == Some(first_id.as_str()))
        })
        .await
        .status
        .unwrap();
    let second_id = rotated.key_id.unwrap();
    let promised: jiff::Timestamp = rotated.previous_key_expires_at.unwrap().parse().unwrap();
    assert!(promised > jiff::Timestamp::now() + jiff::SignedDuration::from_mins(50));
    h.wait_settled_on::<SmoochKey>("rotating", &second_id).await;

    // The next rotation is due before that promise ends: the first key
    // must not be deleted early, so the rotation waits.
    let due = support::hours_ago(2);
    h.patch_status_and_poke::<SmoochKey>("rotating", json!({"keyCreatedAt": due}))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = h.api::<SmoochKey>().get("rotating").await.unwrap();
    let status = now.status.unwrap();
    assert_eq!(
        status.key_created_at.as_deref(),
        Some(due.as_str()),
        "the rotation was due"
    );
    assert_eq!(status.key_id.as_deref(), Some(second_id.as_str()));
    h.smooch()
        .get_key(&app_id, &first_id)
        .await
        .expect("the previous key is still valid until its promised expiry");

    // Once the promise has passed, the old key goes and rotation resumes.
    h.patch_status_and_poke::<SmoochKey>(
        "rotating",
        json!({"previousKeyExpiresAt": support::hours_ago(1)}),
    )
    .await;
    h.wait_for::<SmoochKey>("rotating", "rotated again", |k| {
        k.status.as_ref().is_some_and(|s| {
            s.key_id.as_deref() != Some(second_id.as_str())
                && s.previous_key_id.as_deref() == Some(second_id.as_str())
        })
    })
    .await;
    assert_eq!(
        h.smooch()
            .get_key(&app_id, &first_id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    h.finish().await;
}

#[tokio::test]
async fn credentials_with_a_trailing_newline_work() {
    let h = Harness::start("newline").await;
    // As `kubectl create secret --from-file` writes files ending in a newline.
    h.put_secret(
        CREDENTIALS_SECRET,
        &[
            ("keyId", &format!("{}\n", h.emulator.maker_key_id())),
            (
                "secret",
                &format!("{}\r\n", h.emulator.maker_secret().expose()),
            ),
        ],
    )
    .await;
    h.create::<SmoochApp>(app("by-key", "Delete")).await;
    ready_app_id(&h, "by-key").await;

    let token = jwt::sign(
        h.emulator.maker_key_id(),
        h.emulator.maker_secret(),
        &jwt::Claims::app_maker(),
    )
    .unwrap();
    h.put_secret(
        "token-credentials",
        &[("token", &format!("{}\n", token.expose()))],
    )
    .await;
    let mut by_token = app("by-token", "Delete");
    by_token["spec"]["credentialsSecretRef"] = json!({"name": "token-credentials"});
    h.create::<SmoochApp>(by_token).await;
    ready_app_id(&h, "by-token").await;

    // A control character inside the value is reported, not retried as an outage.
    h.put_secret("broken-credentials", &[("token", "abc\ndef")])
        .await;
    let mut broken = app("broken", "Delete");
    broken["spec"]["credentialsSecretRef"] = json!({"name": "broken-credentials"});
    h.create::<SmoochApp>(broken).await;
    let refused = h
        .wait_for::<SmoochApp>("broken", "CredentialsInvalid", |a| {
            condition(a, "Ready").is_some_and(|c| c.1 == "CredentialsInvalid")
        })
        .await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(message.contains("`token`"), "{message}");
    assert!(!message.contains("abc"), "{message}");
    h.finish().await;
}
