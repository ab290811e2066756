//! SmoochKey, SmoochIntegration and SmoochWebhook end to end: real control
//! plane, emulator over HTTP, operator in-process.

mod support;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use smooch_operator::resources::{SmoochApp, SmoochIntegration, SmoochKey, SmoochWebhook};
use smooch_operator::smooch::jwt;
use smooch_operator::smooch::models::WebhookParams;
use support::{ApiVersion, Harness, condition, secret_value};

support::for_each_api_version!(
    key_whole_life_jwt_verifies_with_its_secret,
    key_waits_for_its_app_and_proceeds_when_it_is_ready,
    key_rotation_switches_the_secret_and_deletes_the_old_key_after_the_overlap,
    integration_whole_life_and_reprovision_on_credential_change,
    integration_waits_for_a_missing_credential_secret,
    webhook_whole_life_drift_is_updated_not_recreated,
    deleting_an_app_with_children_leaves_nothing_behind,
);

async fn ready_app(h: &Harness, name: &str) -> String {
    h.create::<SmoochApp>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
        "metadata": {"name": name}, "spec": {"name": name, "deletionPolicy": "Delete"}
    }))
    .await;
    let app = h.wait_ready::<SmoochApp>(name).await;
    app.status.unwrap().app_id.unwrap()
}

async fn key_whole_life_jwt_verifies_with_its_secret(version: ApiVersion) {
    let h = Harness::start_on("key-life", version).await;
    let app_id = ready_app(&h, "shop").await;
    h.create::<SmoochKey>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
        "metadata": {"name": "backend"},
        "spec": {"appRef": {"name": "shop"}, "secretTemplate": {"name": "backend-smooch", "labels": {"team": "chat"}}}
    }))
    .await;
    let key = h.wait_ready::<SmoochKey>("backend").await;
    let key_id = key.status.as_ref().unwrap().key_id.clone().unwrap();

    let secret = h
        .secret("backend-smooch")
        .await
        .expect("templated secret name");
    assert_eq!(secret.metadata.labels.as_ref().unwrap()["team"], "chat");
    assert_eq!(secret_value(&secret, "appId"), app_id);
    assert_eq!(secret_value(&secret, "keyId"), key_id);
    let remote = h.smooch().get_key(&app_id, &key_id).await.unwrap();
    assert_eq!(secret_value(&secret, "secret"), remote.secret.expose());
    let token = secret_value(&secret, "jwt");
    assert_eq!(jwt::key_id_of(&token).unwrap(), key_id);
    let claims = jwt::verify(&token, &remote.secret).expect("JWT verifies with the key's secret");
    assert_eq!(claims.scope, jwt::Scope::App);
    assert!(
        remote.name.starts_with("backend."),
        "key name carries the tag: {}",
        remote.name
    );

    h.delete::<SmoochKey>("backend").await;
    h.wait_gone::<SmoochKey>("backend").await;
    assert_eq!(
        h.smooch()
            .get_key(&app_id, &key_id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    assert!(h.wait_for_secret_gone("backend-smooch").await);
    h.finish().await;
}

async fn key_waits_for_its_app_and_proceeds_when_it_is_ready(version: ApiVersion) {
    let h = Harness::start_on("key-wait", version).await;
    h.create::<SmoochKey>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
        "metadata": {"name": "early"}, "spec": {"appRef": {"name": "later"}}
    }))
    .await;
    let waiting = h
        .wait_for::<SmoochKey>("early", "waiting for its app", |k| {
            condition(k, "Ready").is_some_and(|c| c.1 == "AppNotFound")
        })
        .await;
    assert!(condition(&waiting, "Ready").unwrap().2.contains("later"));
    // Creating the app is enough: the key watches it (the fallback retry is 30 s;
    // wait_ready gives up after 60 s, and this must be well under that).
    let started = std::time::Instant::now();
    ready_app(&h, "later").await;
    h.wait_ready::<SmoochKey>("early").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    h.finish().await;
}

async fn key_rotation_switches_the_secret_and_deletes_the_old_key_after_the_overlap(
    version: ApiVersion,
) {
    let h = Harness::start_on("key-rotate", version).await;
    let app_id = ready_app(&h, "shop").await;
    h.create::<SmoochKey>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
        "metadata": {"name": "rotating"},
        "spec": {"appRef": {"name": "shop"}, "rotation": {"every": "2h", "overlap": "1h"}}
    }))
    .await;
    let first = h.wait_ready::<SmoochKey>("rotating").await;
    let first_id = first.status.unwrap().key_id.unwrap();
    h.patch_status_and_poke::<SmoochKey>(
        "rotating",
        json!({"keyCreatedAt": support::hours_ago(3)}),
    )
    .await;
    let rotated = h
        .wait_for::<SmoochKey>("rotating", "rotated", |k| {
            k.status
                .as_ref()
                .and_then(|s| s.key_id.as_ref())
                .is_some_and(|id| *id != first_id)
        })
        .await;
    let status = rotated.status.unwrap();
    let second_id = status.key_id.unwrap();
    assert_eq!(status.previous_key_id.as_deref(), Some(first_id.as_str()));
    // The Secret switches to the new key (the id is recorded first, the
    // moment the key exists), and the old key stays valid during the overlap.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let secret = h.secret("rotating-key").await.unwrap();
        if secret_value(&secret, "keyId") == second_id {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Secret still holds key {}",
            secret_value(&secret, "keyId")
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    h.smooch()
        .get_key(&app_id, &first_id)
        .await
        .expect("the old key still works during the overlap");
    h.wait_settled_on::<SmoochKey>("rotating", &second_id).await;
    // After the overlap the old key is gone.
    h.patch_status_and_poke::<SmoochKey>(
        "rotating",
        json!({"previousKeyExpiresAt": support::hours_ago(1)}),
    )
    .await;
    h.wait_for::<SmoochKey>("rotating", "old key dropped", |k| {
        k.status.as_ref().is_some_and(|s| {
            s.previous_key_id.is_none() || s.previous_key_id.as_deref() != Some(first_id.as_str())
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

async fn integration_whole_life_and_reprovision_on_credential_change(version: ApiVersion) {
    let h = Harness::start_on("int-life", version).await;
    let app_id = ready_app(&h, "shop").await;
    h.put_secret(
        "telegram",
        &[("token", "192033615:AAEuee2FS2JYKWfDlTulfygjaIGJi4s")],
    )
    .await;
    h.create::<SmoochIntegration>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochIntegration",
        "metadata": {"name": "tg"},
        "spec": {"appRef": {"name": "shop"}, "type": "telegram",
                 "telegram": {"tokenRef": {"name": "telegram", "key": "token"}}}
    }))
    .await;
    let int = h.wait_ready::<SmoochIntegration>("tg").await;
    let status = int.status.unwrap();
    let first_id = status.integration_id.unwrap();
    assert!(
        status.public_fields.contains_key("username"),
        "{:?}",
        status.public_fields
    );
    let status_json =
        serde_json::to_string(&h.api::<SmoochIntegration>().get("tg").await.unwrap()).unwrap();
    assert!(
        !status_json.contains("AAEuee2FS2JYKWfDlTulfygjaIGJi4s"),
        "no credential in the resource"
    );

    // A new token in the referenced Secret re-provisions the integration.
    h.put_secret("telegram", &[("token", "555:rotated-bot-token")])
        .await;
    let reprovisioned = h
        .wait_for::<SmoochIntegration>("tg", "re-provisioned", |i| {
            i.status
                .as_ref()
                .and_then(|s| s.integration_id.as_ref())
                .is_some_and(|id| *id != first_id)
                && condition(i, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    let second_id = reprovisioned.status.unwrap().integration_id.unwrap();
    let smooch = h.smooch();
    assert_eq!(
        smooch
            .get_integration(&app_id, &first_id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let listed = smooch.list_integrations(&app_id, &[]).await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "exactly one integration after re-provisioning"
    );

    h.delete::<SmoochIntegration>("tg").await;
    h.wait_gone::<SmoochIntegration>("tg").await;
    assert_eq!(
        smooch
            .get_integration(&app_id, &second_id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    h.finish().await;
}

async fn integration_waits_for_a_missing_credential_secret(version: ApiVersion) {
    let h = Harness::start_on("int-wait", version).await;
    ready_app(&h, "shop").await;
    h.create::<SmoochIntegration>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochIntegration",
        "metadata": {"name": "sms"},
        "spec": {"appRef": {"name": "shop"}, "type": "twilio",
                 "twilio": {"accountSid": "ACa1b4c65ee0722712fab89867cb14eac7",
                            "phoneNumberSid": "PN0674df0ecee0c9819bca0ff0bc0a159e",
                            "authTokenRef": {"name": "twilio", "key": "authToken"}}}
    }))
    .await;
    let waiting = h
        .wait_for::<SmoochIntegration>("sms", "waiting for its Secret", |i| {
            condition(i, "Ready").is_some_and(|c| c.1 == "CredentialSecretMissing")
        })
        .await;
    assert!(condition(&waiting, "Ready").unwrap().2.contains("twilio"));
    h.put_secret(
        "twilio",
        &[("authToken", "160c024303f53049e1e060fd67ca6aef")],
    )
    .await;
    let ready = h.wait_ready::<SmoochIntegration>("sms").await;
    let fields = ready.status.unwrap().public_fields;
    assert_eq!(
        fields["phoneNumberSid"],
        "PN0674df0ecee0c9819bca0ff0bc0a159e"
    );
    h.finish().await;
}

async fn webhook_whole_life_drift_is_updated_not_recreated(version: ApiVersion) {
    let h = Harness::start_on("hook-life", version).await;
    let app_id = ready_app(&h, "shop").await;
    h.create::<SmoochWebhook>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochWebhook",
        "metadata": {"name": "events"},
        "spec": {"appRef": {"name": "shop"}, "target": "https://example.com/smooch", "triggers": ["message", "postback"]}
    }))
    .await;
    let hook = h.wait_ready::<SmoochWebhook>("events").await;
    let status = hook.status.unwrap();
    // v2 keeps a webhook in a custom integration: that is what the
    // client's webhook calls address.
    let hook_id = match version {
        ApiVersion::V1 => status.webhook_id.clone().unwrap(),
        ApiVersion::V2 => status
            .integration_id
            .clone()
            .expect("integrationId under v2"),
    };
    let smooch = h.smooch();
    let remote = smooch.get_webhook(&app_id, &hook_id).await.unwrap();
    assert_eq!(status.webhook_id.as_deref(), Some(remote.id.as_str()));
    let secret = h.secret("events-webhook").await.unwrap();
    assert_eq!(secret_value(&secret, "secret"), remote.secret.expose());
    assert_eq!(secret_value(&secret, "webhookId"), remote.id);

    // Spec change: updated in place.
    h.api::<SmoochWebhook>()
        .patch(
            "events",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"target": "https://example.com/v2"}})),
        )
        .await
        .unwrap();
    h.wait_for::<SmoochWebhook>("events", "updated", |w| {
        w.status.as_ref().and_then(|s| s.common.observed_generation) == Some(2)
    })
    .await;
    let updated = smooch.get_webhook(&app_id, &hook_id).await.unwrap();
    assert_eq!(updated.target, "https://example.com/v2");
    let (create, update) = match version {
        ApiVersion::V1 => (
            "POST /apps/{appId}/webhooks",
            "PUT /apps/{appId}/webhooks/{webhookId}",
        ),
        ApiVersion::V2 => (
            "POST /apps/{appId}/integrations",
            "PATCH /apps/{appId}/integrations/{integrationId}/webhooks/{webhookId}",
        ),
    };
    assert_eq!(h.calls(create), 1, "{:?}", h.requests().routes);
    assert_eq!(h.calls(update), 1, "{:?}", h.requests().routes);

    // Drift made in Smooch is repaired on the next look (a pause/unpause forces one).
    smooch
        .update_webhook(
            &app_id,
            &hook_id,
            &WebhookParams {
                triggers: Some(vec!["message".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.api::<SmoochWebhook>()
        .patch(
            "events",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"touch": "1"}}})),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let hook = smooch.get_webhook(&app_id, &hook_id).await.unwrap();
        if hook.triggers.len() == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "drift never repaired: {:?}",
            hook.triggers
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    h.delete::<SmoochWebhook>("events").await;
    h.wait_gone::<SmoochWebhook>("events").await;
    assert_eq!(
        smooch
            .get_webhook(&app_id, &hook_id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    h.finish().await;
}

async fn deleting_an_app_with_children_leaves_nothing_behind(version: ApiVersion) {
    let h = Harness::start_on("cascade", version).await;
    let app_id = ready_app(&h, "shop").await;
    h.put_secret("telegram", &[("token", "1:abc")]).await;
    for (kind, body) in [
        (
            "key",
            json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey", "metadata": {"name": "k"}, "spec": {"appRef": {"name": "shop"}}}),
        ),
        (
            "hook",
            json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochWebhook", "metadata": {"name": "w"}, "spec": {"appRef": {"name": "shop"}, "target": "https://example.com/h"}}),
        ),
        (
            "int",
            json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochIntegration", "metadata": {"name": "i"}, "spec": {"appRef": {"name": "shop"}, "type": "telegram", "telegram": {"tokenRef": {"name": "telegram", "key": "token"}}}}),
        ),
    ] {
        match kind {
            "key" => drop(h.create::<SmoochKey>(body).await),
            "hook" => drop(h.create::<SmoochWebhook>(body).await),
            _ => drop(h.create::<SmoochIntegration>(body).await),
        }
    }
    h.wait_ready::<SmoochKey>("k").await;
    h.wait_ready::<SmoochWebhook>("w").await;
    h.wait_ready::<SmoochIntegration>("i").await;

    // Delete the app first, then its children: no finalizer may get stuck.
    h.delete::<SmoochApp>("shop").await;
    h.delete::<SmoochKey>("k").await;
    h.delete::<SmoochWebhook>("w").await;
    h.delete::<SmoochIntegration>("i").await;
    h.wait_gone::<SmoochApp>("shop").await;
    h.wait_gone::<SmoochKey>("k").await;
    h.wait_gone::<SmoochWebhook>("w").await;
    h.wait_gone::<SmoochIntegration>("i").await;
    assert_eq!(
        h.smooch().get_app(&app_id).await.unwrap_err().status(),
        Some(404)
    );
    assert!(
        h.smooch().list_all_apps().await.unwrap().is_empty(),
        "no app left in Smooch"
    );
    h.finish().await;
}
