//! The manifests in examples/ work as shipped: applied to a namespace,
//! every resource becomes Ready and every Secret holds what it should.

mod support;

use serde::Deserialize;
use smooch_operator::resources::{SmoochApp, SmoochIntegration, SmoochKey, SmoochWebhook};
use smooch_operator::smooch::jwt;
use support::{Harness, secret_value};

fn example_documents() -> Vec<serde_json::Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(doc).unwrap();
            if !value.is_null() {
                docs.push(value);
            }
        }
    }
    docs
}

#[tokio::test]
async fn examples_become_ready_and_write_their_secrets() {
    let h = Harness::start("examples").await;
    let docs = example_documents();
    assert!(docs.len() >= 7, "examples/ lost manifests");
    let mut names: Vec<(String, String)> = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap().to_string();
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        match kind.as_str() {
            "Secret" => drop(h.create::<k8s_openapi::api::core::v1::Secret>(doc).await),
            "SmoochApp" => drop(h.create::<SmoochApp>(doc).await),
            "SmoochKey" => drop(h.create::<SmoochKey>(doc).await),
            "SmoochIntegration" => drop(h.create::<SmoochIntegration>(doc).await),
            "SmoochWebhook" => drop(h.create::<SmoochWebhook>(doc).await),
            other => panic!("unexpected kind {other} in examples/"),
        }
        names.push((kind, name));
    }
    for (kind, name) in &names {
        match kind.as_str() {
            "SmoochApp" => drop(h.wait_ready::<SmoochApp>(name).await),
            "SmoochKey" => drop(h.wait_ready::<SmoochKey>(name).await),
            "SmoochIntegration" => drop(h.wait_ready::<SmoochIntegration>(name).await),
            "SmoochWebhook" => drop(h.wait_ready::<SmoochWebhook>(name).await),
            _ => {}
        }
    }
    let key_secret = h
        .secret("support-backend")
        .await
        .expect("key Secret from the template name");
    let token = secret_value(&key_secret, "jwt");
    let claims =
        jwt::verify(&token, &secret_value(&key_secret, "secret").into()).expect("JWT verifies");
    assert_eq!(claims.scope, jwt::Scope::App);
    assert_eq!(
        jwt::key_id_of(&token).unwrap(),
        secret_value(&key_secret, "keyId")
    );
    let app_secret = h.secret("support-app").await.unwrap();
    assert_eq!(
        secret_value(&app_secret, "appId"),
        secret_value(&key_secret, "appId")
    );
    assert!(!secret_value(&h.secret("support-events-webhook").await.unwrap(), "secret").is_empty());
    h.finish().await;
}
