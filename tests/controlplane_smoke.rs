//! The test control plane is a real one: CRDs, custom objects, garbage
//! collection of owned objects (kube-controller-manager), TokenRequest and
//! RBAC that allows and denies.

mod support;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use smooch_operator::resources::SmoochApp;
use std::time::Duration;

#[tokio::test]
async fn custom_objects_round_trip() {
    let client = support::kube_client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "smoke-crd").await;
    let api: Api<SmoochApp> = Api::namespaced(client.clone(), &ns);
    let app: SmoochApp = serde_json::from_value(json!({
        "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
        "metadata": {"name": "smoke"}, "spec": {"name": "Smoke"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &app).await.unwrap();
    let read = api.get("smoke").await.unwrap();
    assert_eq!(read.spec.name, "Smoke");
    // Defaults from the schema are applied by the server.
    assert_eq!(
        read.spec.deletion_policy,
        smooch_operator::resources::DeletionPolicy::Orphan
    );
}

#[tokio::test]
async fn owned_objects_are_garbage_collected() {
    let client = support::kube_client().await;
    let ns = support::namespace(&client, "smoke-gc").await;
    let owners: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = owners
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let owned: Secret = serde_json::from_value(json!({
        "metadata": {"name": "owned", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid().unwrap()
        }]},
        "stringData": {"k": "v"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &owned)
        .await
        .unwrap();
    owners
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while secrets.get_opt("owned").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "owned Secret was never collected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn service_account_tokens_work_under_rbac() {
    let admin = support::kube_client().await;
    let ns = support::namespace(&admin, "smoke-rbac").await;
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "reader"}})).unwrap(),
        )
        .await
        .unwrap();
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&pp, &serde_json::from_value(json!({
            "metadata": {"name": "read-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
        })).unwrap())
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&pp, &serde_json::from_value(json!({
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]
        })).unwrap())
        .await
        .unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let token = sa
        .create_token_request("reader", &pp, &request)
        .await
        .expect("TokenRequest works")
        .status
        .expect("token issued")
        .token
        .expect("token text");

    let mut config = Config::infer().await.unwrap();
    config.auth_info = Default::default();
    config.auth_info.token = Some(token.into());
    let as_reader = Client::try_from(config).unwrap();
    let allowed = Api::<ConfigMap>::namespaced(as_reader.clone(), &ns)
        .list(&Default::default())
        .await;
    assert!(allowed.is_ok(), "allowed request failed: {allowed:?}");
    let denied = Api::<Secret>::namespaced(as_reader, &ns)
        .list(&Default::default())
        .await;
    match denied {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("expected 403, got {other:?}"),
    }
}
