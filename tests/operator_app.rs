//! SmoochApp end to end: real control plane, emulator over HTTP.

mod support;

use serde_json::json;
use smooch_operator::resources::SmoochApp;
use support::{ApiVersion, Harness, condition, secret_value};

support::for_each_api_version!(
    app_whole_life_with_delete_policy,
    app_default_policy_orphans_the_smooch_app,
);

async fn app_whole_life_with_delete_policy(version: ApiVersion) {
    let h = Harness::start_on("app-life", version).await;
    h.create::<SmoochApp>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
        "metadata": {"name": "shop"},
        "spec": {"name": "Shop", "deletionPolicy": "Delete",
                 "settings": {"useAnimalNames": true}, "metadata": {"team": "support"}}
    }))
    .await;
    let app = h.wait_ready::<SmoochApp>("shop").await;
    let app_id = app
        .status
        .as_ref()
        .unwrap()
        .app_id
        .clone()
        .expect("appId in status");

    // The Secret holds what Smooch returned.
    let smooch = h.smooch();
    let remote = smooch.get_app(&app_id).await.unwrap();
    assert_eq!(remote.name, "Shop");
    assert_eq!(
        remote.settings.as_ref().unwrap().use_animal_names,
        Some(true)
    );
    assert_eq!(remote.metadata.as_ref().unwrap()["team"], "support");
    let secret = h.secret("shop-app").await.expect("secret written");
    assert_eq!(secret_value(&secret, "appId"), app_id);
    // v2 apps have no app token: the Secret has no `appToken` then.
    match (&remote.app_token, version) {
        (Some(token), ApiVersion::V1) => {
            assert_eq!(secret_value(&secret, "appToken"), token.expose())
        }
        (None, ApiVersion::V2) => assert!(
            !secret.data.as_ref().unwrap().contains_key("appToken"),
            "no appToken under v2"
        ),
        (token, _) => panic!("{version:?} app token: {token:?}"),
    }
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "SmoochApp");
    assert_eq!(Some(&owner.uid), app.metadata.uid.as_ref());

    // A spec change reaches Smooch.
    h.api::<SmoochApp>()
        .patch(
            "shop",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"name": "Shop EU"}})),
        )
        .await
        .unwrap();
    h.wait_for::<SmoochApp>("shop", "updated", |a| {
        a.status.as_ref().and_then(|s| s.common.observed_generation) == Some(2)
            && condition(a, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(smooch.get_app(&app_id).await.unwrap().name, "Shop EU");
    assert_eq!(Some(h.calls("POST /apps")), Some(1), "created once");

    // Delete: the Smooch app and the Secret go.
    h.delete::<SmoochApp>("shop").await;
    h.wait_gone::<SmoochApp>("shop").await;
    let err = smooch.get_app(&app_id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    // The Secret is owned by the SmoochApp: the garbage collector removes it.
    assert!(
        h.wait_for_secret_gone("shop-app").await,
        "Secret shop-app was not collected"
    );
    h.finish().await;
}

async fn app_default_policy_orphans_the_smooch_app(version: ApiVersion) {
    let h = Harness::start_on("app-orphan", version).await;
    h.create::<SmoochApp>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
        "metadata": {"name": "keep"}, "spec": {"name": "Keep me"}
    }))
    .await;
    let app = h.wait_ready::<SmoochApp>("keep").await;
    assert_eq!(
        app.spec.deletion_policy,
        smooch_operator::resources::DeletionPolicy::Orphan
    );
    let app_id = app.status.unwrap().app_id.unwrap();
    h.delete::<SmoochApp>("keep").await;
    h.wait_gone::<SmoochApp>("keep").await;
    assert_eq!(h.smooch().get_app(&app_id).await.unwrap().name, "Keep me");
    h.finish().await;
}

/// v2 takes a `displayName` of at most 100 characters (the CRD allows 256,
/// which v1 takes): Smooch's 400 and its title reach the condition, nothing
/// is created, and a shorter name then goes through.
#[tokio::test]
async fn under_v2_a_name_smooch_refuses_shows_its_title_and_creates_nothing() {
    let h = Harness::start_on("v2-name", ApiVersion::V2).await;
    let long: String = std::iter::repeat_n('n', 101).collect();
    h.create::<SmoochApp>(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
        "metadata": {"name": "shop"}, "spec": {"name": long, "deletionPolicy": "Delete"}
    }))
    .await;
    let refused = h
        .wait_for::<SmoochApp>("shop", "refused by Smooch", |a| {
            condition(a, "Ready").is_some_and(|c| c.1 == "SmoochBadRequest")
        })
        .await;
    let (_, _, message) = condition(&refused, "Ready").unwrap();
    assert!(
        message.contains("400") && message.contains("displayName must be at most 100 characters"),
        "{message}"
    );
    assert!(h.smooch().list_all_apps().await.unwrap().is_empty());
    assert!(h.secret("shop-app").await.is_none());

    h.api::<SmoochApp>()
        .patch(
            "shop",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"name": "Shop"}})),
        )
        .await
        .unwrap();
    let app = h.wait_ready::<SmoochApp>("shop").await;
    let app_id = app.status.unwrap().app_id.unwrap();
    assert_eq!(h.smooch().get_app(&app_id).await.unwrap().name, "Shop");
    h.finish().await;
}
