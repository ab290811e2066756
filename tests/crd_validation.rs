//! The API server itself rejects bad manifests, with a message naming the
//! field, and accepts the examples. Server-side dry runs: nothing is stored.

mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams, ValidationDirective};
use kube::core::ApiResource;
use serde_json::{Value, json};
use smooch_operator::resources::{SmoochApp, SmoochIntegration, SmoochKey, SmoochWebhook};

fn resource_for(kind: &str) -> ApiResource {
    match kind {
        "SmoochApp" => ApiResource::erase::<SmoochApp>(&()),
        "SmoochKey" => ApiResource::erase::<SmoochKey>(&()),
        "SmoochIntegration" => ApiResource::erase::<SmoochIntegration>(&()),
        "SmoochWebhook" => ApiResource::erase::<SmoochWebhook>(&()),
        other => panic!("unknown kind {other}"),
    }
}

/// Server-side dry-run apply with strict field validation (as kubectl does).
async fn dry_run_apply(client: &kube::Client, ns: &str, manifest: &Value) -> Result<(), String> {
    let kind = manifest["kind"].as_str().unwrap();
    let name = manifest["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource_for(kind));
    let mut params = PatchParams::apply("crd-validation-test");
    params.dry_run = true;
    params.field_validation = Some(ValidationDirective::Strict);
    api.patch(name, &params, &Patch::Apply(manifest))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

fn with(base: &Value, pointer_path: &[&str], value: Value) -> Value {
    let mut m = base.clone();
    let mut at = &mut m;
    for (i, key) in pointer_path.iter().enumerate() {
        if i + 1 == pointer_path.len() {
            if value.is_null() {
                at.as_object_mut().unwrap().remove(*key);
            } else {
                at[*key] = value.clone();
            }
        } else {
            at = &mut at[*key];
        }
    }
    m
}

fn app() -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
           "metadata": {"name": "a"}, "spec": {"name": "App"}})
}
fn key() -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
           "metadata": {"name": "k"}, "spec": {"appRef": {"name": "a"}}})
}
fn telegram() -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochIntegration",
           "metadata": {"name": "i"}, "spec": {"appRef": {"name": "a"}, "type": "telegram",
           "telegram": {"tokenRef": {"name": "s", "key": "token"}}}})
}
fn twilio() -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochIntegration",
           "metadata": {"name": "t"}, "spec": {"appRef": {"name": "a"}, "type": "twilio",
           "twilio": {"accountSid": "ACa1b4c65ee0722712fab89867cb14eac7",
                      "phoneNumberSid": "PN0674df0ecee0c9819bca0ff0bc0a159e",
                      "authTokenRef": {"name": "s", "key": "authToken"}}}})
}
fn webhook() -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochWebhook",
           "metadata": {"name": "w"}, "spec": {"appRef": {"name": "a"}, "target": "https://example.com/hook"}})
}

#[tokio::test]
async fn invalid_manifests_are_rejected_naming_the_field() {
    let client = support::kube_client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "crd-validation").await;

    // The valid bases pass, so each rejection below is about its one change.
    for base in [app(), key(), telegram(), twilio(), webhook()] {
        dry_run_apply(&client, &ns, &base)
            .await
            .expect("valid base manifest");
    }

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "app without name",
            with(&app(), &["spec", "name"], Value::Null),
            "spec.name",
        ),
        (
            "app with empty name",
            with(&app(), &["spec", "name"], json!("")),
            "spec.name",
        ),
        (
            "app name not a string",
            with(&app(), &["spec", "name"], json!(42)),
            "spec.name",
        ),
        (
            "unknown deletion policy",
            with(&app(), &["spec", "deletionPolicy"], json!("Purge")),
            "spec.deletionPolicy",
        ),
        (
            "negative retention",
            with(
                &app(),
                &["spec", "settings"],
                json!({"conversationRetentionSeconds": -1}),
            ),
            "spec.settings.conversationRetentionSeconds",
        ),
        (
            "setting of wrong type",
            with(
                &app(),
                &["spec", "settings"],
                json!({"useAnimalNames": "yes"}),
            ),
            "spec.settings.useAnimalNames",
        ),
        (
            "reserved metadata key",
            with(
                &app(),
                &["spec", "metadata"],
                json!({"smoochOperatorUid": "x"}),
            ),
            "spec.metadata",
        ),
        (
            "metadata value not a string",
            with(&app(), &["spec", "metadata"], json!({"tier": 1})),
            "spec.metadata.tier",
        ),
        (
            "unknown spec field",
            with(&app(), &["spec", "token"], json!("inline")),
            "spec.token",
        ),
        (
            "key without appRef",
            with(&key(), &["spec", "appRef"], Value::Null),
            "spec.appRef",
        ),
        (
            "key with empty app name",
            with(&key(), &["spec", "appRef"], json!({"name": ""})),
            "spec.appRef.name",
        ),
        (
            "rotation period not a duration",
            with(&key(), &["spec", "rotation"], json!({"every": "30 days"})),
            "spec.rotation.every",
        ),
        (
            "rotation without period",
            with(&key(), &["spec", "rotation"], json!({"overlap": "1h"})),
            "spec.rotation.every",
        ),
        (
            "inline key secret",
            with(&key(), &["spec", "secret"], json!("s3cr3t")),
            "spec.secret",
        ),
        (
            "unknown integration type",
            with(&telegram(), &["spec", "type"], json!("whatsapp")),
            "spec.type",
        ),
        (
            "integration without type",
            with(&telegram(), &["spec", "type"], Value::Null),
            "spec.type",
        ),
        (
            "telegram type without telegram block",
            with(&telegram(), &["spec", "telegram"], Value::Null),
            "spec.telegram",
        ),
        (
            "inline telegram token",
            with(
                &telegram(),
                &["spec", "telegram"],
                json!({"token": "123:abc"}),
            ),
            "spec.telegram.token",
        ),
        (
            "two channel blocks",
            with(
                &telegram(),
                &["spec", "line"],
                json!({"channelId": "1", "mid": "u", "channelSecretRef": {"name": "s", "key": "k"}}),
            ),
            "spec.line",
        ),
        (
            "twilio account sid shape",
            with(
                &twilio(),
                &["spec", "twilio", "accountSid"],
                json!("not-a-sid"),
            ),
            "spec.twilio.accountSid",
        ),
        (
            "inline twilio auth token",
            with(&twilio(), &["spec", "twilio", "authToken"], json!("plain")),
            "spec.twilio.authToken",
        ),
        (
            "secret ref without key",
            with(
                &twilio(),
                &["spec", "twilio", "authTokenRef"],
                json!({"name": "s"}),
            ),
            "spec.twilio.authTokenRef.key",
        ),
        (
            "secret template name not a DNS name",
            with(
                &app(),
                &["spec", "secretTemplate"],
                json!({"name": "Bad_Name"}),
            ),
            "spec.secretTemplate.name",
        ),
        (
            "secret template name too long",
            with(
                &app(),
                &["spec", "secretTemplate"],
                json!({"name": "a".repeat(254)}),
            ),
            "spec.secretTemplate.name",
        ),
        (
            "secret template label value with a space",
            with(
                &key(),
                &["spec", "secretTemplate"],
                json!({"labels": {"team": "a b"}}),
            ),
            "spec.secretTemplate.labels",
        ),
        (
            "secret template label value too long",
            with(
                &webhook(),
                &["spec", "secretTemplate"],
                json!({"labels": {"team": "x".repeat(64)}}),
            ),
            "spec.secretTemplate.labels",
        ),
        (
            "secret template label key invalid",
            with(
                &app(),
                &["spec", "secretTemplate"],
                json!({"labels": {"bad key": "x"}}),
            ),
            "spec.secretTemplate.labels",
        ),
        (
            "secret template annotation key invalid",
            with(
                &app(),
                &["spec", "secretTemplate"],
                json!({"annotations": {"-leading-dash": "x"}}),
            ),
            "spec.secretTemplate.annotations",
        ),
        (
            "rotation every millisecond",
            with(
                &key(),
                &["spec", "rotation"],
                json!({"every": "1ms", "overlap": "1ms"}),
            ),
            "spec.rotation.every",
        ),
        (
            "rotation every 15 seconds",
            with(
                &key(),
                &["spec", "rotation"],
                json!({"every": "15s", "overlap": "1s"}),
            ),
            "spec.rotation.every",
        ),
        (
            "rotation overlap longer than the period",
            with(
                &key(),
                &["spec", "rotation"],
                json!({"every": "2h", "overlap": "3h"}),
            ),
            "spec.rotation.overlap",
        ),
        (
            "rotation default overlap (1h) longer than the period",
            with(&key(), &["spec", "rotation"], json!({"every": "30m"})),
            "spec.rotation.overlap",
        ),
        (
            "twilio type without twilio block",
            with(&twilio(), &["spec", "twilio"], Value::Null),
            "spec.twilio",
        ),
        (
            "webhook without target",
            with(&webhook(), &["spec", "target"], Value::Null),
            "spec.target",
        ),
        (
            "webhook target not a URL",
            with(&webhook(), &["spec", "target"], json!("not a url")),
            "spec.target",
        ),
        (
            "webhook target ftp",
            with(
                &webhook(),
                &["spec", "target"],
                json!("ftp://example.com/x"),
            ),
            "spec.target",
        ),
        (
            "unknown trigger",
            with(
                &webhook(),
                &["spec", "triggers"],
                json!(["message", "Message"]),
            ),
            "spec.triggers[1]",
        ),
        (
            "empty triggers",
            with(&webhook(), &["spec", "triggers"], json!([])),
            "spec.triggers",
        ),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (what, manifest, field) in &cases {
        match dry_run_apply(&client, &ns, manifest).await {
            Ok(()) => failures.push(format!("{what}: accepted")),
            Err(message) if !message.contains(field) => {
                failures.push(format!("{what}: message does not name {field}: {message}"))
            }
            // A rule without a field path shows as `<nil>: ...` in kubectl
            // (apart from the API server's own note that it skipped rules).
            Err(message)
                if message
                    .split(" (Status")
                    .next()
                    .unwrap_or_default()
                    .replace(
                        "<nil>: Invalid value: null: some validation rules were not checked",
                        "",
                    )
                    .contains("<nil>") =>
            {
                failures.push(format!("{what}: no field path: {message}"))
            }
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn immutable_fields_cannot_change() {
    let client = support::kube_client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "crd-immutable").await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &resource_for("SmoochIntegration"));
    let params = PatchParams::apply("crd-validation-test");
    api.patch("i", &params, &Patch::Apply(telegram()))
        .await
        .expect("created");
    let moved = with(&telegram(), &["spec", "appRef"], json!({"name": "other"}));
    let err = api
        .patch("i", &params, &Patch::Apply(&moved))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.appRef is immutable"), "{err}");
}

#[tokio::test]
async fn valid_secret_templates_and_rotations_are_accepted() {
    let client = support::kube_client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "crd-valid").await;
    let template = json!({
        "name": "shop.credentials-v2",
        "labels": {"app.kubernetes.io/part-of": "shop", "team": "", "tier": "a_b.c-d"},
        "annotations": {"example.com/owner": "any text at all: even spaces"}
    });
    let cases = [
        with(&app(), &["spec", "secretTemplate"], template.clone()),
        with(&key(), &["spec", "secretTemplate"], template),
        with(
            &key(),
            &["spec", "rotation"],
            json!({"every": "1m", "overlap": "1m"}),
        ),
        with(&key(), &["spec", "rotation"], json!({"every": "720h"})),
        with(
            &key(),
            &["spec", "rotation"],
            json!({"every": "1h30m", "overlap": "90m"}),
        ),
    ];
    for manifest in &cases {
        if let Err(e) = dry_run_apply(&client, &ns, manifest).await {
            panic!("rejected: {e}\n{manifest:#}");
        }
    }
}
