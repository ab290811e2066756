//! The emulator's contract, over real HTTP on 127.0.0.1, mostly through
//! the crate's own Smooch client.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::join_all;
use serde_json::{Value, json};
use smooch::jwt::{self, Claims};
use smooch::models::*;
use smooch::{Credentials, Sensitive, SmoochClient, SmoochError};
use smooch_emulator::{self as emulator, EmulatorConfig, Faults, MakerKeySource, RunningEmulator};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::{Answer, assert_error, client, http, maker, send, start, start_with, with_token};

// ---------- helpers ----------

fn url(emulator: &RunningEmulator, path: &str) -> String {
    format!("{}{path}", emulator.base_url())
}

/// Status, code and description of a failed client call.
fn api_error(error: SmoochError) -> (u16, String, String) {
    match error {
        SmoochError::Api {
            status,
            code,
            description,
            ..
        } => (status, code, description),
        other => panic!("expected an API error, got {other}"),
    }
}

async fn new_app(client: &SmoochClient, name: &str) -> App {
    client
        .create_app(&AppParams {
            name: Some(name.into()),
            ..Default::default()
        })
        .await
        .expect("create app")
}

/// An app with a key, and an app-scoped token made by the emulator.
async fn app_with_token(maker: &SmoochClient, name: &str) -> (App, SecretKey, Sensitive) {
    let app = new_app(maker, name).await;
    let key = maker.create_key(&app.id, "k").await.expect("create key");
    let token = maker.get_key_jwt(&app.id, &key.id).await.expect("jwt");
    (app, key, token)
}

fn twilio() -> IntegrationParams {
    IntegrationParams::Twilio {
        account_sid: "ACa1b4c65ee0722712fab89867cb14eac7".into(),
        auth_token: "TWILIO-AUTH-TOKEN-123".into(),
        phone_number_sid: "PN0674df0ecee0c9819bca0ff0bc0a159e".into(),
    }
}

fn all_integration_params() -> Vec<IntegrationParams> {
    vec![
        IntegrationParams::Messenger {
            page_access_token: "MESSENGER-PAGE-TOKEN".into(),
            app_id: "fb-app-1".into(),
            app_secret: "MESSENGER-APP-SECRET".into(),
        },
        twilio(),
        IntegrationParams::Telegram {
            token: "192033615:TELEGRAM-BOT-TOKEN".into(),
        },
        IntegrationParams::Line {
            channel_id: "1462776483".into(),
            channel_secret: "LINE-CHANNEL-SECRET".into(),
            mid: "uf0c0bc1813d372ac5af4c5b5faee9923".into(),
        },
    ]
}

const CREDENTIALS: &[&str] = &[
    "MESSENGER-PAGE-TOKEN",
    "MESSENGER-APP-SECRET",
    "TWILIO-AUTH-TOKEN-123",
    "TELEGRAM-BOT-TOKEN",
    "LINE-CHANNEL-SECRET",
];

fn assert_no_credentials(text: &str) {
    for credential in CREDENTIALS {
        assert!(
            !text.contains(credential),
            "{credential} leaked into {text}"
        );
    }
}

fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

async fn maker_get(emulator: &RunningEmulator, path: &str) -> Answer {
    send(
        http()
            .get(url(emulator, path))
            .bearer_auth(emulator.app_maker_token().expose()),
    )
    .await
}

async fn maker_post(emulator: &RunningEmulator, path: &str, body: Value) -> Answer {
    send(
        http()
            .post(url(emulator, path))
            .bearer_auth(emulator.app_maker_token().expose())
            .json(&body),
    )
    .await
}

async fn admin_requests(emulator: &RunningEmulator) -> Value {
    send(http().get(url(emulator, "/_emulator/requests")))
        .await
        .json
}

async fn set_faults(emulator: &RunningEmulator, body: Value) -> Answer {
    send(http().put(url(emulator, "/_emulator/faults")).json(&body)).await
}

// ---------- every endpoint, both versions ----------

#[tokio::test]
async fn every_client_endpoint_works_under_v1_and_v1_1() {
    let emulator = start().await;
    for version in ["v1", "v1.1"] {
        let smooch = maker(&emulator, version);

        // apps
        let created = smooch
            .create_app(&AppParams {
                name: Some(format!("App {version}")),
                settings: Some(AppSettings {
                    use_animal_names: Some(true),
                    conversation_retention_seconds: Some(3600),
                    ..Default::default()
                }),
                metadata: Some(
                    json!({"team": "a", "tier": 2, "beta": true})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            })
            .await
            .unwrap();
        assert_eq!(created.name, format!("App {version}"));
        assert_eq!(
            created.settings.as_ref().unwrap().use_animal_names,
            Some(true)
        );
        assert_eq!(created.metadata.as_ref().unwrap()["tier"], 2);
        assert_eq!(smooch.get_app(&created.id).await.unwrap(), created);
        assert!(
            smooch
                .list_all_apps()
                .await
                .unwrap()
                .iter()
                .any(|a| a.id == created.id)
        );
        let updated = smooch
            .update_app(
                &created.id,
                &AppParams {
                    name: Some("Renamed".into()),
                    settings: Some(AppSettings {
                        echo_postback: Some(true),
                        ..Default::default()
                    }),
                    metadata: Some(json!({"team": "b"}).as_object().unwrap().clone()),
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.name, "Renamed");
        let settings = updated.settings.as_ref().unwrap();
        assert_eq!(
            (settings.use_animal_names, settings.echo_postback),
            (Some(true), Some(true)),
            "settings are merged"
        );
        assert_eq!(
            Value::Object(updated.metadata.clone().unwrap()),
            json!({"team": "b"}),
            "metadata is replaced"
        );
        assert_eq!(smooch.get_app(&created.id).await.unwrap(), updated);

        // keys
        let key = smooch.create_key(&created.id, "key1").await.unwrap();
        assert_eq!(key.name, "key1");
        assert_eq!(
            smooch.list_keys(&created.id).await.unwrap(),
            vec![key.clone()]
        );
        assert_eq!(smooch.get_key(&created.id, &key.id).await.unwrap(), key);
        let token = smooch.get_key_jwt(&created.id, &key.id).await.unwrap();
        assert_eq!(
            jwt::verify(token.expose(), &key.secret).unwrap(),
            Claims::app()
        );
        smooch.delete_key(&created.id, &key.id).await.unwrap();
        assert!(smooch.list_keys(&created.id).await.unwrap().is_empty());
        assert_eq!(
            api_error(smooch.get_key(&created.id, &key.id).await.unwrap_err()).0,
            404
        );

        // integrations
        let mut ids = Vec::new();
        for params in all_integration_params() {
            let integration = smooch
                .create_integration(&created.id, &params)
                .await
                .unwrap();
            assert_eq!(integration.kind, params.integration_type());
            assert_eq!(
                smooch
                    .get_integration(&created.id, &integration.id)
                    .await
                    .unwrap(),
                integration
            );
            ids.push(integration.id);
        }
        let all = smooch.list_integrations(&created.id, &[]).await.unwrap();
        assert_eq!(all.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), ids);
        let some = smooch
            .list_integrations(
                &created.id,
                &[IntegrationType::Twilio, IntegrationType::Line],
            )
            .await
            .unwrap();
        assert_eq!(
            some.iter().map(|i| i.kind).collect::<Vec<_>>(),
            vec![IntegrationType::Twilio, IntegrationType::Line]
        );
        smooch
            .delete_integration(&created.id, &ids[0])
            .await
            .unwrap();
        assert_eq!(
            api_error(
                smooch
                    .get_integration(&created.id, &ids[0])
                    .await
                    .unwrap_err()
            )
            .0,
            404
        );
        assert_eq!(
            smooch
                .list_integrations(&created.id, &[])
                .await
                .unwrap()
                .len(),
            3
        );

        // webhooks
        let webhook = smooch
            .create_webhook(
                &created.id,
                &WebhookParams {
                    target: Some("https://example.com/hook".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(webhook.triggers, vec!["message".to_owned()]);
        assert_eq!(webhook.version.as_deref(), Some("v1"));
        assert_eq!(webhook.secret.expose().len(), 24);
        assert_eq!(
            smooch.list_webhooks(&created.id).await.unwrap(),
            vec![webhook.clone()]
        );
        assert_eq!(
            smooch.get_webhook(&created.id, &webhook.id).await.unwrap(),
            webhook
        );
        let changed = smooch
            .update_webhook(
                &created.id,
                &webhook.id,
                &WebhookParams {
                    target: Some("http://example.com/other".into()),
                    triggers: Some(vec!["message:appUser".into(), "postback".into()]),
                    include_client: Some(true),
                    include_full_app_user: Some(true),
                },
            )
            .await
            .unwrap();
        assert_eq!(changed.target, "http://example.com/other");
        assert_eq!(changed.triggers, vec!["message:appUser", "postback"]);
        assert_eq!(
            (changed.include_client, changed.include_full_app_user),
            (Some(true), Some(true))
        );
        assert_eq!(changed.secret, webhook.secret, "the secret stays");
        smooch
            .delete_webhook(&created.id, &webhook.id)
            .await
            .unwrap();
        assert!(smooch.list_webhooks(&created.id).await.unwrap().is_empty());

        // delete
        smooch.delete_app(&created.id).await.unwrap();
        let (status, code, description) = api_error(smooch.get_app(&created.id).await.unwrap_err());
        assert_eq!(
            (status, code.as_str(), description.as_str()),
            (404, "not_found", "App not found")
        );
    }
    let counts = admin_requests(&emulator).await;
    assert!(counts["routes"]["POST /v1/apps"].as_u64() == Some(1));
    assert!(counts["routes"]["POST /v1.1/apps"].as_u64() == Some(1));
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn ids_and_secrets_have_smooch_shapes() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let (app, key, _) = app_with_token(&smooch, "shapes").await;
    let integration = smooch.create_integration(&app.id, &twilio()).await.unwrap();
    let webhook = smooch
        .create_webhook(
            &app.id,
            &WebhookParams {
                target: Some("http://example.com/cb".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let hex24 = |s: &str| {
        s.len() == 24
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    assert!(hex24(&app.id) && hex24(&integration.id) && hex24(&webhook.id));
    assert!(key.id.starts_with("app_") && hex24(&key.id[4..]));
    let token = app
        .app_token
        .as_ref()
        .expect("a v1 app has a token")
        .expose();
    assert!(
        token.len() == 25
            && token
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    let secret = key.secret.expose();
    assert!(
        secret.len() == 24
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
}

#[tokio::test]
async fn unknown_objects_are_404() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let app = new_app(&smooch, "a").await;
    let missing = "000000000000000000000000";
    let cases = [
        smooch.get_app(missing).await.unwrap_err(),
        smooch.delete_app(missing).await.unwrap_err(),
        smooch
            .get_key(&app.id, "app_000000000000000000000000")
            .await
            .unwrap_err(),
        smooch
            .get_key_jwt(&app.id, "app_000000000000000000000000")
            .await
            .unwrap_err(),
        smooch.get_integration(&app.id, missing).await.unwrap_err(),
        smooch.delete_webhook(&app.id, missing).await.unwrap_err(),
        smooch.list_webhooks(missing).await.unwrap_err(),
    ];
    for error in cases {
        let (status, code, description) = api_error(error);
        assert_eq!((status, code.as_str()), (404, "not_found"));
        assert!(description.ends_with("not found"), "{description}");
    }
}

// ---------- paging ----------

#[tokio::test]
async fn app_paging_edges() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let mut created = Vec::new();
    for i in 0..30 {
        created.push(new_app(&smooch, &format!("app {i}")).await.id);
    }
    let page = |limit, offset| {
        let smooch = smooch.clone();
        async move { smooch.list_apps(limit, offset).await.unwrap() }
    };
    let default = page(None, None).await;
    assert_eq!(
        (default.apps.len(), default.has_more, default.offset),
        (25, true, 0)
    );
    assert_eq!(
        default
            .apps
            .iter()
            .map(|a| a.id.clone())
            .collect::<Vec<_>>(),
        created[..25],
        "creation order"
    );
    let one = page(Some(1), None).await;
    assert_eq!((one.apps.len(), one.has_more), (1, true));
    let hundred = page(Some(100), None).await;
    assert_eq!((hundred.apps.len(), hundred.has_more), (30, false));
    let rest = page(None, Some(25)).await;
    assert_eq!(
        (rest.apps.len(), rest.has_more, rest.offset),
        (5, false, 25)
    );
    assert_eq!(rest.apps[4].id, created[29]);
    assert!(page(Some(1), Some(28)).await.has_more);
    assert!(!page(Some(1), Some(29)).await.has_more);
    let past = page(Some(10), Some(1000)).await;
    assert_eq!(
        (past.apps.len(), past.has_more, past.offset),
        (0, false, 1000)
    );
    let all = smooch.list_all_apps().await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        created
    );

    let over = smooch.list_apps(Some(101), None).await.unwrap_err();
    let (status, _, description) = api_error(over);
    assert_eq!(status, 400);
    assert!(description.contains("limit"));
    for query in ["limit=0", "limit=-1", "limit=abc", "limit=1.5", "limit="] {
        let answer = maker_get(&emulator, &format!("/v1/apps?{query}")).await;
        assert_error(
            &answer,
            400,
            "bad_request",
            "limit must be an integer from 1 to 100",
        );
    }
    for query in ["offset=-1", "offset=abc"] {
        let answer = maker_get(&emulator, &format!("/v1/apps?{query}")).await;
        assert_error(
            &answer,
            400,
            "bad_request",
            "offset must be a non-negative integer",
        );
    }
}

// ---------- auth ----------

fn unsigned_token(kid: &str) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(json!({"scope": "appMaker"}).to_string());
    format!("{header}.{payload}.")
}

#[tokio::test]
async fn bad_credentials_are_401_with_the_error_body() {
    let emulator = start().await;
    let kid = emulator.maker_key_id().to_owned();
    let wrong_secret = jwt::sign(&kid, &"not-the-secret".into(), &Claims::app_maker()).unwrap();
    let unknown_kid = jwt::sign(
        "app_000000000000000000000000",
        emulator.maker_secret(),
        &Claims::app_maker(),
    )
    .unwrap();
    let no_kid = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"scope":"appMaker"}"#);
        format!("{header}.{payload}.c2ln")
    };
    // Correctly signed, but with a scope Smooch does not have.
    let bad_scope = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &header,
            &json!({"scope": "everything"}),
            &jsonwebtoken::EncodingKey::from_secret(emulator.maker_secret().expose().as_bytes()),
        )
        .unwrap()
    };
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "Authorization is required"),
        (
            Some(format!("Basic {}", URL_SAFE_NO_PAD.encode("u:p"))),
            "Bearer",
        ),
        (Some("Bearer".into()), "Bearer"),
        (Some("Bearer ".into()), "Bearer"),
        (
            Some(emulator.app_maker_token().expose().to_owned()),
            "Bearer",
        ),
        (Some("Bearer garbage".into()), "Invalid JWT"),
        (Some("Bearer a.b.c".into()), "Invalid JWT"),
        (
            Some(format!("Bearer {}", unsigned_token(&kid))),
            "Invalid JWT",
        ),
        (
            Some(format!("Bearer {}", wrong_secret.expose())),
            "signature",
        ),
        (
            Some(format!("Bearer {}", unknown_kid.expose())),
            "unknown key id",
        ),
        (Some(format!("Bearer {no_kid}")), "kid"),
        (Some(format!("Bearer {bad_scope}")), "claims"),
    ];
    for version in ["v1", "v1.1"] {
        for (header, needle) in &cases {
            let mut request = http().get(url(&emulator, &format!("/{version}/apps")));
            if let Some(value) = header {
                request = request.header("authorization", value);
            }
            let answer = send(request).await;
            assert_error(&answer, 401, "unauthorized", needle);
        }
    }
    // The typed client sees the same.
    let (status, code, _) = api_error(
        with_token(&emulator, &wrong_secret)
            .list_apps(None, None)
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
}

#[tokio::test]
async fn app_scoped_tokens_reach_their_own_app_only() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let (own, own_key, token) = app_with_token(&smooch, "own").await;
    let other = new_app(&smooch, "other").await;
    let app_client = with_token(&emulator, &token);

    // Own app, full paths: integrations and webhooks.
    let integration = app_client
        .create_integration(&own.id, &twilio())
        .await
        .unwrap();
    assert_eq!(
        app_client.list_integrations(&own.id, &[]).await.unwrap(),
        vec![integration.clone()]
    );
    let webhook = app_client
        .create_webhook(
            &own.id,
            &WebhookParams {
                target: Some("http://example.com/a".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        app_client.get_webhook(&own.id, &webhook.id).await.unwrap(),
        webhook
    );

    // Another app: 403.
    for error in [
        app_client
            .list_integrations(&other.id, &[])
            .await
            .unwrap_err(),
        app_client
            .create_integration(&other.id, &twilio())
            .await
            .unwrap_err(),
        app_client.list_webhooks(&other.id).await.unwrap_err(),
    ] {
        let (status, code, description) = api_error(error);
        assert_eq!((status, code.as_str()), (403, "forbidden"));
        assert!(description.contains("own app"), "{description}");
    }

    // Provisioning and keys: appMaker only, even for its own app.
    for error in [
        app_client.list_apps(None, None).await.unwrap_err(),
        app_client
            .create_app(&AppParams {
                name: Some("x".into()),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        app_client.get_app(&own.id).await.unwrap_err(),
        app_client.delete_app(&own.id).await.unwrap_err(),
        app_client.list_keys(&own.id).await.unwrap_err(),
        app_client.create_key(&own.id, "k2").await.unwrap_err(),
        app_client
            .get_key_jwt(&own.id, &own_key.id)
            .await
            .unwrap_err(),
    ] {
        let (status, code, description) = api_error(error);
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{description}");
        assert!(description.contains("appMaker"), "{description}");
    }
    // Even a malformed body is refused for scope first.
    let answer = send(
        http()
            .post(url(&emulator, "/v1/apps"))
            .bearer_auth(token.expose())
            .body("{nope"),
    )
    .await;
    assert_error(&answer, 403, "forbidden", "appMaker");
}

#[tokio::test]
async fn short_paths_address_the_app_tokens_own_app() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let (own, own_key, token) = app_with_token(&smooch, "own").await;
    let bearer = token.expose().to_owned();
    for version in ["v1", "v1.1"] {
        let base = url(&emulator, &format!("/{version}"));
        let created = send(
            http()
                .post(format!("{base}/integrations"))
                .bearer_auth(&bearer)
                .json(&json!({"type": "telegram", "token": "123:TELEGRAM-BOT-TOKEN"})),
        )
        .await;
        assert_eq!(created.status, 201, "{created:?}");
        let id = created.json["integration"]["_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let listed = send(
            http()
                .get(format!("{base}/integrations"))
                .bearer_auth(&bearer),
        )
        .await;
        assert!(
            listed.json["integrations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["_id"] == id.as_str())
        );
        let got = send(
            http()
                .get(format!("{base}/integrations/{id}"))
                .bearer_auth(&bearer),
        )
        .await;
        assert_eq!(got.json["integration"]["_id"], id.as_str());
        // The maker sees it under the full path: it is the token's app.
        let seen = smooch.get_integration(&own.id, &id).await.unwrap();
        assert_eq!(seen.kind, IntegrationType::Telegram);
        let deleted = send(
            http()
                .delete(format!("{base}/integrations/{id}"))
                .bearer_auth(&bearer),
        )
        .await;
        assert_eq!((deleted.status, deleted.json.clone()), (200, json!({})));

        let hook = send(
            http()
                .post(format!("{base}/webhooks"))
                .bearer_auth(&bearer)
                .json(&json!({"target": "https://example.com/x", "triggers": ["*"]})),
        )
        .await;
        assert_eq!(hook.status, 201, "{hook:?}");
        let hook_id = hook.json["webhook"]["_id"].as_str().unwrap().to_owned();
        let put = send(
            http()
                .put(format!("{base}/webhooks/{hook_id}"))
                .bearer_auth(&bearer)
                .json(&json!({"triggers": ["postback"]})),
        )
        .await;
        assert_eq!(put.json["webhook"]["triggers"], json!(["postback"]));
        let listed = send(http().get(format!("{base}/webhooks")).bearer_auth(&bearer)).await;
        assert_eq!(listed.json["webhooks"].as_array().unwrap().len(), 1);
        let gone = send(
            http()
                .delete(format!("{base}/webhooks/{hook_id}"))
                .bearer_auth(&bearer),
        )
        .await;
        assert_eq!(gone.status, 200);

        // Keys need appMaker scope, so /keys with an app token is a 403...
        for path in [
            "keys".to_owned(),
            format!("keys/{}", own_key.id),
            format!("keys/{}/jwt", own_key.id),
        ] {
            let answer = send(http().get(format!("{base}/{path}")).bearer_auth(&bearer)).await;
            assert_error(&answer, 403, "forbidden", "appMaker");
        }
        // ...and a short path with an appMaker token names no app: 400.
        for path in ["integrations", "webhooks", "keys"] {
            let answer = maker_get(&emulator, &format!("/{version}/{path}")).await;
            assert_error(&answer, 400, "bad_request", "app-scoped token");
        }
    }
}

#[tokio::test]
async fn tokens_whose_scope_their_key_cannot_grant_are_403() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let (app, key, _) = app_with_token(&smooch, "a").await;
    let cases = [
        (
            jwt::sign(&key.id, &key.secret, &Claims::app_user("user-1")).unwrap(),
            "appUser",
        ),
        (
            jwt::sign(&key.id, &key.secret, &Claims::app_maker()).unwrap(),
            "cannot sign appMaker",
        ),
        (
            jwt::sign(
                emulator.maker_key_id(),
                emulator.maker_secret(),
                &Claims::app(),
            )
            .unwrap(),
            "appMaker-scoped tokens only",
        ),
    ];
    for (token, needle) in cases {
        let answer = send(
            http()
                .get(url(&emulator, &format!("/v1/apps/{}/integrations", app.id)))
                .bearer_auth(token.expose()),
        )
        .await;
        assert_error(&answer, 403, "forbidden", needle);
    }
}

#[tokio::test]
async fn key_jwt_is_app_scoped_with_the_key_id_and_secret() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let app = new_app(&smooch, "a").await;
    let key = smooch.create_key(&app.id, "key1").await.unwrap();
    let other = smooch.create_key(&app.id, "key2").await.unwrap();
    let token = smooch.get_key_jwt(&app.id, &key.id).await.unwrap();
    let parts: Vec<&str> = token.expose().split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["kid"], key.id.as_str());
    assert_eq!(header["alg"], "HS256");
    assert_eq!(payload, json!({"scope": "app"}));
    assert_eq!(
        jwt::verify(token.expose(), &key.secret).unwrap(),
        Claims::app()
    );
    assert!(jwt::verify(token.expose(), &other.secret).is_err());
    // The token works for its app, and stops working when its key is deleted.
    let app_client = with_token(&emulator, &token);
    assert!(app_client.list_webhooks(&app.id).await.unwrap().is_empty());
    smooch.delete_key(&app.id, &key.id).await.unwrap();
    let (status, _, description) = api_error(app_client.list_webhooks(&app.id).await.unwrap_err());
    assert_eq!(status, 401);
    assert!(description.contains("unknown key id"));
}

// ---------- bad bodies ----------

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_400_naming_the_field() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let app = new_app(&smooch, "a").await;
    let apps = "/v1/apps".to_owned();
    let app_path = format!("/v1/apps/{}", app.id);
    let integrations = format!("{app_path}/integrations");
    let webhooks = format!("{app_path}/webhooks");
    let keys = format!("{app_path}/keys");
    let cases: Vec<(&str, Value, &str)> = vec![
        (&apps, json!({}), "name is required"),
        (&apps, json!({"name": 5}), "name must be a string"),
        (&apps, json!({"name": ""}), "name must not be empty"),
        (&apps, json!([1]), "must be a JSON object"),
        (
            &apps,
            json!({"name": "a", "settings": 1}),
            "settings must be an object",
        ),
        (
            &apps,
            json!({"name": "a", "settings": {"useAnimalNames": "yes"}}),
            "settings.useAnimalNames must be a boolean",
        ),
        (
            &apps,
            json!({"name": "a", "settings": {"conversationRetentionSeconds": -5}}),
            "settings.conversationRetentionSeconds must be a non-negative integer",
        ),
        (
            &apps,
            json!({"name": "a", "settings": {"darkMode": true}}),
            "settings.darkMode is not a known field",
        ),
        (
            &apps,
            json!({"name": "a", "metadata": {"nested": {"x": 1}}}),
            "metadata.nested must be a string, number or boolean",
        ),
        (
            &apps,
            json!({"name": "a", "metadata": {"list": [1]}}),
            "metadata.list must be a string, number or boolean",
        ),
        (
            &apps,
            json!({"name": "a", "metadata": "x"}),
            "metadata must be an object",
        ),
        (&keys, json!({}), "name is required"),
        (&keys, json!({"name": true}), "name must be a string"),
        (&integrations, json!({}), "type is required"),
        (&integrations, json!({"type": 3}), "type must be a string"),
        (
            &integrations,
            json!({"type": "whatsapp"}),
            "type must be one of",
        ),
        (&webhooks, json!({}), "target is required"),
        (
            &webhooks,
            json!({"target": "/relative"}),
            "target must be an absolute http or https URL",
        ),
        (
            &webhooks,
            json!({"target": "ftp://example.com"}),
            "target must be an absolute http or https URL",
        ),
        (&webhooks, json!({"target": 1}), "target must be a string"),
        (
            &webhooks,
            json!({"target": "http://example.com", "triggers": ["message", "Message:appuser"]}),
            "unknown trigger \"Message:appuser\"",
        ),
        (
            &webhooks,
            json!({"target": "http://example.com", "triggers": []}),
            "triggers must not be empty",
        ),
        (
            &webhooks,
            json!({"target": "http://example.com", "triggers": "message"}),
            "triggers must be an array",
        ),
        (
            &webhooks,
            json!({"target": "http://example.com", "includeClient": "yes"}),
            "includeClient must be a boolean",
        ),
    ];
    for (path, body, needle) in cases {
        let answer = maker_post(&emulator, path, body.clone()).await;
        assert_error(&answer, 400, "bad_request", needle);
    }
    // PUTs validate too.
    let put = send(
        http()
            .put(url(&emulator, &app_path))
            .bearer_auth(emulator.app_maker_token().expose())
            .json(&json!({"metadata": {"a": null}})),
    )
    .await;
    assert_error(
        &put,
        400,
        "bad_request",
        "metadata.a must be a string, number or boolean",
    );
    // Nothing was created by any of them.
    assert_eq!(smooch.list_all_apps().await.unwrap().len(), 1);
    assert!(
        smooch
            .list_integrations(&app.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(smooch.list_webhooks(&app.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn each_integration_type_names_its_missing_or_mistyped_field() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let app = new_app(&smooch, "a").await;
    let path = format!("/v1/apps/{}/integrations", app.id);
    for params in all_integration_params() {
        let full = serde_json::to_value(&params).unwrap();
        let fields: Vec<String> = keys_of(&full).into_iter().filter(|k| k != "type").collect();
        assert!(!fields.is_empty());
        for field in &fields {
            let mut missing = full.clone();
            missing.as_object_mut().unwrap().remove(field);
            let answer = maker_post(&emulator, &path, missing).await;
            assert_error(&answer, 400, "bad_request", &format!("{field} is required"));
            assert_no_credentials(&answer.text);

            let mut mistyped = full.clone();
            mistyped[field.as_str()] = json!(12345);
            let answer = maker_post(&emulator, &path, mistyped).await;
            assert_error(
                &answer,
                400,
                "bad_request",
                &format!("{field} must be a string"),
            );
        }
    }
    assert!(
        smooch
            .list_integrations(&app.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let unknown_filter = maker_get(&emulator, &format!("{path}?types=twilio,fax")).await;
    assert_error(
        &unknown_filter,
        400,
        "bad_request",
        "unknown integration type",
    );
}

#[tokio::test]
async fn non_json_bodies_are_rejected_with_the_error_body() {
    let emulator = start().await;
    let token = emulator.app_maker_token();
    let post = || {
        http()
            .post(url(&emulator, "/v1/apps"))
            .bearer_auth(token.expose())
    };
    let malformed = send(
        post()
            .header("content-type", "application/json")
            .body(r#"{"name": "a""#),
    )
    .await;
    assert_error(&malformed, 400, "bad_request", "not valid JSON");
    let wrong_type = send(
        post()
            .header("content-type", "text/plain")
            .body(r#"{"name":"a"}"#),
    )
    .await;
    assert_error(&wrong_type, 415, "unsupported_media_type", "JSON");
    let form = send(
        post()
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=a"),
    )
    .await;
    assert_error(&form, 400, "bad_request", "not valid JSON");
    let oversized = send(
        post()
            .header("content-type", "application/json")
            .body(json!({"name": "x".repeat(200 * 1024)}).to_string()),
    )
    .await;
    assert_error(
        &oversized,
        413,
        "payload_too_large",
        "larger than 102400 bytes",
    );
    // Just under the limit is fine.
    let big_ok = send(
        post()
            .header("content-type", "application/json")
            .body(json!({"name": "x".repeat(90 * 1024)}).to_string()),
    )
    .await;
    assert_eq!(big_ok.status, 201);
}

// ---------- cascade and credentials ----------

#[tokio::test]
async fn deleting_an_app_removes_its_keys_integrations_and_webhooks() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let (app, _, token) = app_with_token(&smooch, "doomed").await;
    let keeper = new_app(&smooch, "keeper").await;
    smooch.create_integration(&app.id, &twilio()).await.unwrap();
    smooch
        .create_webhook(
            &app.id,
            &WebhookParams {
                target: Some("http://example.com/x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let app_client = with_token(&emulator, &token);
    assert_eq!(
        app_client
            .list_integrations(&app.id, &[])
            .await
            .unwrap()
            .len(),
        1
    );

    smooch.delete_app(&app.id).await.unwrap();

    for error in [
        smooch.get_app(&app.id).await.unwrap_err(),
        smooch.list_keys(&app.id).await.unwrap_err(),
        smooch.list_integrations(&app.id, &[]).await.unwrap_err(),
        smooch.list_webhooks(&app.id).await.unwrap_err(),
    ] {
        assert_eq!(api_error(error).0, 404);
    }
    // The app's keys are gone, so its tokens no longer authenticate.
    let (status, code, _) = api_error(
        app_client
            .list_integrations(&app.id, &[])
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    let short = send(
        http()
            .get(url(&emulator, "/v1/integrations"))
            .bearer_auth(token.expose()),
    )
    .await;
    assert_error(&short, 401, "unauthorized", "unknown key id");
    let remaining = smooch.list_all_apps().await.unwrap();
    assert_eq!(
        remaining.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![keeper.id.clone()]
    );
    assert_eq!(smooch.get_app(&keeper.id).await.unwrap(), keeper);
}

#[tokio::test]
async fn integration_answers_carry_public_fields_and_never_credentials() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let app = new_app(&smooch, "a").await;
    let path = format!("/v1/apps/{}/integrations", app.id);
    let expected_fields = [
        ("messenger", vec!["pageId", "userId", "username"]),
        (
            "twilio",
            vec!["accountSid", "name", "phoneNumber", "phoneNumberSid"],
        ),
        ("telegram", vec!["username"]),
        ("line", vec!["botName", "channelId", "mid"]),
    ];
    for (params, (kind, fields)) in all_integration_params().into_iter().zip(expected_fields) {
        let body = serde_json::to_value(&params).unwrap();
        let first = maker_post(&emulator, &path, body.clone()).await;
        let second = maker_post(&emulator, &path, body).await;
        assert_eq!((first.status, second.status), (201, 201));
        assert_no_credentials(&first.text);
        let integration = &first.json["integration"];
        assert_eq!(integration["type"], kind);
        for field in &fields {
            assert!(
                integration[*field].is_string(),
                "{kind} lacks {field}: {integration}"
            );
        }
        let mut expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        expected.extend(["_id", "status", "type"].map(String::from));
        expected.sort();
        assert_eq!(keys_of(integration), expected);
        // Derived values are deterministic.
        let mut a = integration.clone();
        let mut b = second.json["integration"].clone();
        a.as_object_mut().unwrap().remove("_id");
        b.as_object_mut().unwrap().remove("_id");
        assert_eq!(a, b);
    }
    let telegram = smooch
        .list_integrations(&app.id, &[IntegrationType::Telegram])
        .await
        .unwrap();
    let username = telegram[0].public_fields["username"].as_str().unwrap();
    assert!(
        username.len() == 16
            && username.starts_with("bot_")
            && username.ends_with("_bot")
            && username[4..12].chars().all(|c| c.is_ascii_hexdigit()),
        "{username}"
    );
    let twilio = smooch
        .list_integrations(&app.id, &[IntegrationType::Twilio])
        .await
        .unwrap();
    assert_eq!(
        twilio[0].public_fields["accountSid"],
        "ACa1b4c65ee0722712fab89867cb14eac7"
    );
    assert!(
        twilio[0].public_fields["phoneNumber"]
            .as_str()
            .unwrap()
            .starts_with("+1")
    );
    let listed = maker_get(&emulator, &path).await;
    assert_eq!(listed.json["integrations"].as_array().unwrap().len(), 8);
    assert_no_credentials(&listed.text);
    let singular = maker_get(&emulator, &format!("{path}?type=line")).await;
    assert_eq!(singular.json["integrations"].as_array().unwrap().len(), 2);
    assert_no_credentials(&singular.text);
    let display = maker_post(
        &emulator,
        &path,
        json!({"type": "telegram", "token": "1:TELEGRAM-BOT-TOKEN", "displayName": "Support"}),
    )
    .await;
    assert_eq!(display.json["integration"]["displayName"], "Support");
}

// ---------- concurrency ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_creates_are_all_kept() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let created = join_all((0..50).map(|i| {
        let smooch = smooch.clone();
        async move { new_app(&smooch, &format!("parallel {i}")).await.id }
    }))
    .await;
    let listed: HashSet<String> = smooch
        .list_all_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed.len(), 50);
    assert_eq!(listed, created.into_iter().collect());

    let app = smooch
        .list_apps(Some(1), None)
        .await
        .unwrap()
        .apps
        .remove(0);
    let keys = join_all((0..50).map(|i| {
        let smooch = smooch.clone();
        let app_id = app.id.clone();
        async move { smooch.create_key(&app_id, &format!("k{i}")).await.unwrap() }
    }))
    .await;
    assert_eq!(smooch.list_keys(&app.id).await.unwrap().len(), 50);
    // Every parallel key authenticates.
    let token = smooch.get_key_jwt(&app.id, &keys[49].id).await.unwrap();
    assert!(
        with_token(&emulator, &token)
            .list_webhooks(&app.id)
            .await
            .is_ok()
    );
}

// ---------- state file ----------

fn state_config(path: &std::path::Path) -> EmulatorConfig {
    EmulatorConfig {
        state_file: Some(path.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_state_file_keeps_data_and_maker_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");

    let first = start_with(state_config(&path)).await;
    assert_eq!(first.maker_key_source(), MakerKeySource::Generated);
    let maker_token = first.app_maker_token();
    let smooch = maker(&first, "v1");
    let (app, key, app_token) = app_with_token(&smooch, "persisted").await;
    let integrations: Vec<Integration> = join_all(
        all_integration_params()
            .iter()
            .map(|p| smooch.create_integration(&app.id, p)),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let webhook = smooch
        .create_webhook(
            &app.id,
            &WebhookParams {
                target: Some("http://example.com/p".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let maker_key_id = first.maker_key_id().to_owned();
    first.shutdown().await.unwrap();

    let saved = std::fs::read_to_string(&path).unwrap();
    assert_no_credentials(&saved);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the state file holds secrets");
    }

    // Configured maker values lose to the state file's.
    let second = start_with(EmulatorConfig {
        maker_key_id: Some("app_111111111111111111111111".into()),
        maker_secret: Some("other-secret".into()),
        ..state_config(&path)
    })
    .await;
    assert_eq!(second.maker_key_source(), MakerKeySource::StateFile);
    assert_eq!(second.maker_key_id(), maker_key_id);
    let old_maker = with_token(&second, &maker_token);
    assert_eq!(old_maker.get_app(&app.id).await.unwrap(), app);
    assert_eq!(old_maker.list_keys(&app.id).await.unwrap(), vec![key]);
    let mut listed = old_maker.list_integrations(&app.id, &[]).await.unwrap();
    let mut expected = integrations;
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, expected);
    assert_eq!(
        old_maker.list_webhooks(&app.id).await.unwrap(),
        vec![webhook]
    );
    // The app key's token still works too, and changes keep being saved.
    let app_client = with_token(&second, &app_token);
    assert_eq!(app_client.list_webhooks(&app.id).await.unwrap().len(), 1);
    old_maker.delete_app(&app.id).await.unwrap();
    second.shutdown().await.unwrap();

    let third = start_with(state_config(&path)).await;
    assert!(
        with_token(&third, &maker_token)
            .list_all_apps()
            .await
            .unwrap()
            .is_empty()
    );
    third.shutdown().await.unwrap();
}

#[tokio::test]
async fn configured_maker_key_is_used_and_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested-name.json");
    let config = EmulatorConfig {
        maker_key_id: Some("app_5734146407a69b610074abcd".into()),
        maker_secret: Some("configured-secret".into()),
        ..state_config(&path)
    };
    let emulator = start_with(config.clone()).await;
    assert_eq!(emulator.maker_key_source(), MakerKeySource::Configured);
    let token = jwt::sign(
        "app_5734146407a69b610074abcd",
        &"configured-secret".into(),
        &Claims::app_maker(),
    )
    .unwrap();
    assert!(
        with_token(&emulator, &token)
            .list_apps(None, None)
            .await
            .is_ok()
    );
    emulator.shutdown().await.unwrap();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved["makerKeyId"], "app_5734146407a69b610074abcd");

    let half = EmulatorConfig {
        maker_secret: None,
        ..config
    };
    let error = emulator::spawn(half).await.unwrap_err();
    assert!(error.to_string().contains("both"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_writes_all_reach_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let emulator = start_with(state_config(&path)).await;
    let smooch = maker(&emulator, "v1");
    let created: HashSet<String> = join_all((0..25).map(|i| {
        let smooch = smooch.clone();
        async move { new_app(&smooch, &format!("p{i}")).await.id }
    }))
    .await
    .into_iter()
    .collect();
    // No shutdown first: every answered change is already on disk.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let saved_ids: HashSet<String> = saved["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["app"]["_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(saved_ids, created);
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_state_file_is_an_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents, needle) in [
        (
            "syntax.json",
            "{\"format\": 1, \"apps\": [",
            "EOF while parsing",
        ),
        ("shape.json", "{\"apps\": 3}", "invalid type"),
        ("empty.json", "", "EOF while parsing"),
        (
            "format.json",
            r#"{"format": 9, "makerKeyId": "k", "makerSecret": "s", "apps": []}"#,
            "unsupported format 9",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let error = emulator::spawn(state_config(&path)).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("not a valid emulator state"), "{message}");
        assert!(message.contains(needle), "{message}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            contents,
            "{name} unchanged"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        4,
        "no stray files"
    );
}

// ---------- faults ----------

#[tokio::test]
async fn rate_limit_fault_answers_429_with_retry_after_and_changes_nothing() {
    let emulator = start_with(EmulatorConfig {
        faults: Faults {
            rate_limit_rate: 1.0,
            retry_after_secs: 3,
            ..Faults::default()
        },
        ..Default::default()
    })
    .await;
    let answer = maker_post(&emulator, "/v1/apps", json!({"name": "never"})).await;
    assert_error(&answer, 429, "too_many_requests", "Rate limit");
    assert_eq!(answer.headers["retry-after"], "3");
    let smooch = maker(&emulator, "v1");
    let error = smooch
        .create_app(&AppParams {
            name: Some("never".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(error.status(), Some(429));

    let off = set_faults(&emulator, json!({"rateLimitRate": 0})).await;
    assert_eq!(off.status, 200);
    assert_eq!(off.json["rateLimitRate"], 0.0);
    assert!(
        smooch.list_all_apps().await.unwrap().is_empty(),
        "faulted creates changed nothing"
    );
    let counts = admin_requests(&emulator).await;
    assert_eq!(counts["faulted"]["429"], 2);
    assert_eq!(counts["statuses"]["POST /v1/apps"]["429"], 2);
}

#[tokio::test]
async fn error_rate_and_latency_faults_are_settable_at_runtime() {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let app = new_app(&smooch, "a").await;

    let on = set_faults(&emulator, json!({"errorRate": 1.0})).await;
    assert_eq!(on.json["errorRate"], 1.0);
    let answer = send(
        http()
            .delete(url(&emulator, &format!("/v1/apps/{}", app.id)))
            .bearer_auth(emulator.app_maker_token().expose()),
    )
    .await;
    assert_error(&answer, 503, "service_unavailable", "unavailable");
    let answer = send(http().get(url(&emulator, "/_emulator/healthz"))).await;
    assert_eq!(
        (answer.status, answer.json.clone()),
        (200, json!({"status": "ok"})),
        "admin is never faulted"
    );

    set_faults(&emulator, json!({"errorRate": 0, "latencyMs": 300})).await;
    let started = Instant::now();
    assert_eq!(
        smooch.get_app(&app.id).await.unwrap(),
        app,
        "the faulted delete changed nothing"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let current = send(http().get(url(&emulator, "/_emulator/faults")))
        .await
        .json;
    assert_eq!(
        current,
        json!({"latencyMs": 300, "readLatencyMs": 0, "errorRate": 0.0, "rateLimitRate": 0.0, "retryAfterSecs": 1})
    );
    assert_eq!(emulator.state().faults().latency_ms, 300);

    // Reads only: a GET waits, a write does not.
    set_faults(&emulator, json!({"latencyMs": 0, "readLatencyMs": 400})).await;
    let started = Instant::now();
    smooch.get_app(&app.id).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    let other = smooch
        .create_app(&AppParams {
            name: Some("not slowed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "a POST waited for the read latency ({:?})",
        started.elapsed()
    );
    smooch.delete_app(&other.id).await.unwrap();
    set_faults(&emulator, json!({"readLatencyMs": 0})).await;

    for (body, needle) in [
        (
            json!({"errorRate": 1.5}),
            "errorRate must be a number from 0 to 1",
        ),
        (
            json!({"latencyMs": -1}),
            "latencyMs must be a non-negative integer",
        ),
        (
            json!({"readLatencyMs": 600_001}),
            "readLatencyMs must be at most 600000",
        ),
        (json!({"latency": 1}), "latency is not a known field"),
    ] {
        let answer = set_faults(&emulator, body).await;
        assert_error(&answer, 400, "bad_request", needle);
    }
    let invalid = EmulatorConfig {
        faults: Faults {
            error_rate: 2.0,
            ..Faults::default()
        },
        ..Default::default()
    };
    assert!(emulator::spawn(invalid).await.is_err());
}

// ---------- admin, unknown paths, wrong methods ----------

#[tokio::test]
async fn admin_counters_count_per_route_and_reset() {
    let emulator = start().await;
    let v1 = maker(&emulator, "v1");
    let v11 = maker(&emulator, "v1.1");
    let app = new_app(&v1, "a").await;
    new_app(&v1, "b").await;
    v1.get_app(&app.id).await.unwrap();
    v11.list_apps(None, None).await.unwrap();
    v1.create_key(&app.id, "k").await.unwrap();
    send(http().get(url(&emulator, "/v1.1/apps"))).await; // 401
    send(http().get(url(&emulator, "/v1/nowhere"))).await; // unmatched: not counted

    let counts = admin_requests(&emulator).await;
    assert_eq!(counts["total"], 6);
    assert_eq!(
        (counts["reads"].as_u64(), counts["writes"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        counts["routes"],
        json!({
            "POST /v1/apps": 2,
            "GET /v1/apps/{appId}": 1,
            "GET /v1.1/apps": 2,
            "POST /v1/apps/{appId}/keys": 1,
        })
    );
    assert_eq!(
        counts["statuses"]["GET /v1.1/apps"],
        json!({"200": 1, "401": 1})
    );

    let reset = send(http().delete(url(&emulator, "/_emulator/requests"))).await;
    assert_eq!(
        reset.json["total"], 6,
        "the reset answers with the old counts"
    );
    let after = admin_requests(&emulator).await;
    assert_eq!(
        after,
        json!({"total": 0, "reads": 0, "writes": 0, "routes": {}, "statuses": {}, "faulted": {}})
    );
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_have_the_error_body() {
    let emulator = start().await;
    let token = emulator.app_maker_token();
    let bearer = token.expose();
    let app = new_app(&maker(&emulator, "v1"), "a").await;
    for path in [
        "/v1/nothing".to_owned(),
        "/".to_owned(),
        // /v2 is served since the v2 API was added; /v3 is not.
        "/v3/apps".to_owned(),
        "/v1/apps/".to_owned(),
        format!(
            "/v1/apps/{}/appusers/c7f6e6d6c3a637261bd9656f/conversation",
            app.id
        ),
        "/_emulator/nothing".to_owned(),
    ] {
        let answer = send(http().get(url(&emulator, &path)).bearer_auth(bearer)).await;
        assert_error(&answer, 404, "not_found", "No such endpoint");
    }
    for (method, path) in [
        (reqwest::Method::PATCH, "/v1/apps".to_owned()),
        (reqwest::Method::DELETE, "/v1/apps".to_owned()),
        (reqwest::Method::POST, format!("/v1.1/apps/{}", app.id)),
        (
            reqwest::Method::PUT,
            format!("/v1/apps/{}/integrations/x", app.id),
        ),
        (reqwest::Method::POST, "/_emulator/healthz".to_owned()),
    ] {
        let answer = send(
            http()
                .request(method.clone(), url(&emulator, &path))
                .bearer_auth(bearer),
        )
        .await;
        assert_error(
            &answer,
            405,
            "method_not_allowed",
            &format!("Method {method} is not allowed"),
        );
        assert!(answer.headers.contains_key("allow"), "{answer:?}");
    }
}

#[tokio::test]
async fn a_garbage_token_is_a_permanent_client_error() {
    // The emulator's answers drive the client's retry policy as Smooch's
    // do: a 401 is permanent, not retried.
    let emulator = start().await;
    let smooch = client(&emulator, "v1", &Credentials::Token("not-a-jwt".into()));
    let error = smooch.list_apps(None, None).await.unwrap_err();
    assert!(!error.is_transient());
    assert_eq!(error.code(), "unauthorized");
}

// ---------- the binary ----------

const BINARY: &str = env!("CARGO_BIN_EXE_smooch-emulator");

/// The binary with none of its environment variables inherited.
fn binary() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BINARY);
    for (name, _) in std::env::vars() {
        if name.starts_with("SMOOCH_EMULATOR_") {
            command.env_remove(name);
        }
    }
    command.kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_binary_exits_non_zero_on_a_corrupt_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, "not json at all").unwrap();
    let output = binary()
        .args(["serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("not a valid emulator state: expected"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not json at all");
}

#[tokio::test]
async fn the_binary_prints_a_token_writes_the_env_file_and_stops_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("smooch.env");
    let mut child = binary()
        .args(["serve", "--listen", "127.0.0.1:0", "--print-env"])
        .arg(&env_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    // The JWT line comes last, after the env file is written.
    let read_banner = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.starts_with("app-maker JWT: ");
            banner.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_banner)
        .await
        .expect("the banner is printed");
    let printed = |prefix: &str| {
        banner
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {banner:?}"))
            .to_owned()
    };
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    let env: std::collections::HashMap<&str, &str> =
        env_text.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(env.len(), 4, "{:?}", env.keys());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(printed("app-maker key id: "), env["SMOOCH_KEY_ID"]);
    assert_eq!(
        printed("app-maker secret (generated for this dev server, shown once): "),
        env["SMOOCH_SECRET"]
    );
    assert!(printed("smooch-emulator listening on ").starts_with(env["SMOOCH_URL"]));
    let printed_token = printed("app-maker JWT: ");
    let claims = jwt::verify(&printed_token, &env["SMOOCH_SECRET"].into()).unwrap();
    assert_eq!(claims, Claims::app_maker());

    let apps_url = format!("{}/v1/apps", env["SMOOCH_URL"]);
    let answer = send(http().get(&apps_url).bearer_auth(&printed_token)).await;
    assert_eq!(
        (answer.status, answer.json.clone()),
        (200, json!({"apps": [], "hasMore": false, "offset": 0}))
    );

    // `token` makes working tokens from the same key.
    let token_for = |scope: &'static str| {
        let (id, secret) = (
            env["SMOOCH_KEY_ID"].to_owned(),
            env["SMOOCH_SECRET"].to_owned(),
        );
        async move {
            let output = binary()
                .args([
                    "token",
                    "--maker-key-id",
                    &id,
                    "--maker-secret",
                    &secret,
                    "--scope",
                    scope,
                ])
                .output()
                .await
                .unwrap();
            assert!(output.status.success());
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        }
    };
    let made = token_for("appMaker").await;
    assert_eq!(
        send(http().get(&apps_url).bearer_auth(&made)).await.status,
        200
    );
    let app_scoped = token_for("app").await;
    let answer = send(http().get(&apps_url).bearer_auth(&app_scoped)).await;
    assert_error(&answer, 403, "forbidden", "appMaker-scoped tokens only");

    // SIGTERM stops it cleanly.
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("it stops")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

// ---------- issue 9: bounded counters, hyper's errors, hyphen secrets, logs ----------

#[tokio::test]
async fn unknown_method_names_share_one_counter_so_the_counters_stay_bounded() {
    let emulator = start().await;
    let client = http();
    let before = emulator.state().request_counts();
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("NOPE{i:04}").as_bytes()).unwrap();
        for path in ["/v1/apps", "/v1.1/apps"] {
            let answer = send(client.request(method.clone(), url(&emulator, path))).await;
            assert_error(&answer, 405, "method_not_allowed", "is not allowed");
        }
    }
    // Standard methods keep their names.
    send(client.patch(url(&emulator, "/v1/apps"))).await;
    let counts = admin_requests(&emulator).await;
    let keys = counts["routes"].as_object().expect("routes").len();
    assert!(
        keys <= 3,
        "600 requests with 300 distinct method names made {keys} counter keys: {}",
        counts["routes"]
    );
    assert_eq!(counts["routes"]["OTHER /v1/apps"], 300, "{counts}");
    assert_eq!(counts["routes"]["OTHER /v1.1/apps"], 300, "{counts}");
    assert_eq!(counts["routes"]["PATCH /v1/apps"], 1, "{counts}");
    assert_eq!(counts["statuses"]["OTHER /v1/apps"], json!({"405": 300}));
    assert_eq!(counts["total"], 601);
    assert_eq!(before.routes.len(), 0);
    assert_eq!(emulator.state().request_counts().statuses.len(), keys);
}

/// Sends `request` on a fresh connection (writing from a task of its own,
/// so that a server that stops reading cannot block us) and reads the
/// answer until the server closes the connection.
async fn raw_exchange(emulator: &RunningEmulator, request: Vec<u8>) -> Answer {
    parse_answer(&raw_text(emulator, request).await)
}

/// What the server sent back on a fresh connection, until it closed it.
async fn raw_text(emulator: &RunningEmulator, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(emulator.local_addr())
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
        writer
    });
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let read = async {
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) if !received.is_empty() => {
                    eprintln!("read ended with {e} after {} bytes", received.len());
                    break;
                }
                Err(e) => panic!("no answer: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the emulator answers and closes");
    writing.abort();
    String::from_utf8_lossy(&received).into_owned()
}

/// One answer: head and a body of exactly its content-length.
fn parse_answer(text: &str) -> Answer {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            value.trim().parse().unwrap(),
        );
    }
    if let Some(length) = headers.get("content-length") {
        let length: usize = length.to_str().unwrap().parse().unwrap();
        assert_eq!(body.len(), length, "content-length of {text:?}");
    }
    Answer {
        status,
        headers,
        text: body.to_owned(),
        json: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

#[tokio::test]
async fn errors_made_before_routing_have_the_error_body() {
    let emulator = start().await;
    // A path over hyper's 64 KiB URI limit: 414.
    let long_path = format!("/v1/apps/{}", "a".repeat(70 * 1024));
    let answer = raw_exchange(
        &emulator,
        format!("GET {long_path} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
    )
    .await;
    assert_error(&answer, 414, "uri_too_long", "too long");
    // A 1 MiB header: 431.
    let big_header = format!(
        "GET /v1/apps HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(1024 * 1024)
    );
    let answer = raw_exchange(&emulator, big_header.into_bytes()).await;
    assert_error(&answer, 431, "request_header_fields_too_large", "too large");
    // Too many headers: 431 as well.
    let mut many = String::from("GET /v1/apps HTTP/1.1\r\nhost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let answer = raw_exchange(&emulator, many.into_bytes()).await;
    assert_error(&answer, 431, "request_header_fields_too_large", "too large");
    // A head hyper cannot parse: 400.
    let answer = raw_exchange(
        &emulator,
        b"GET /v1/apps HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n".to_vec(),
    )
    .await;
    assert_error(&answer, 400, "bad_request", "Malformed");
    // The emulator still serves afterwards, and ordinary answers on a
    // keep-alive connection are untouched.
    let app = new_app(&maker(&emulator, "v1"), "after").await;
    let keep_alive = raw_text(
        &emulator,
        format!(
            "GET /v1/apps/{id} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n\
             GET /v1/nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            id = app.id,
            token = emulator.app_maker_token().expose()
        )
        .into_bytes(),
    )
    .await;
    // Answers to HEAD have no body, errors included.
    for path in ["/v1/nothing", "/v1/apps"] {
        let head = raw_text(
            &emulator,
            format!("HEAD {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").into_bytes(),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 4"), "{head}");
        assert!(
            head.ends_with("\r\n\r\n"),
            "a body in the answer to HEAD: {head}"
        );
    }
    let second = keep_alive.find("HTTP/1.1 404 ").expect("two answers");
    let (first, second) = keep_alive.split_at(second);
    let first = parse_answer(first);
    assert_eq!(first.status, 200, "{keep_alive}");
    assert_eq!(first.json["app"]["_id"], app.id.as_str());
    assert_error(&parse_answer(second), 404, "not_found", "No such endpoint");
}

#[tokio::test]
async fn generated_secrets_never_start_with_a_hyphen() {
    // Maker secrets: each emulator state generates one.
    for _ in 0..2000 {
        let (state, source) = emulator::EmulatorState::open(&EmulatorConfig::default()).unwrap();
        assert_eq!(source, MakerKeySource::Generated);
        let secret = state.maker_secret().expose().to_owned();
        assert!(
            !secret.starts_with('-'),
            "generated maker secret {secret:?} starts with '-'"
        );
    }
    // Key and webhook secrets, over HTTP.
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let app = new_app(&smooch, "hyphens").await;
    let mut secrets = Vec::new();
    for chunk in 0..8 {
        let (smooch, app_id) = (&smooch, app.id.as_str());
        let keys = join_all(
            (0..75)
                .map(|i| async move { smooch.create_key(app_id, &format!("k{chunk}-{i}")).await }),
        );
        let hooks = join_all((0..75).map(|i| async move {
            let params = WebhookParams {
                target: Some(format!("http://example.com/{chunk}/{i}")),
                ..Default::default()
            };
            smooch.create_webhook(app_id, &params).await
        }));
        let (keys, hooks) = tokio::join!(keys, hooks);
        secrets.extend(
            keys.into_iter()
                .map(|k| k.unwrap().secret.expose().to_owned()),
        );
        secrets.extend(
            hooks
                .into_iter()
                .map(|w| w.unwrap().secret.expose().to_owned()),
        );
    }
    assert_eq!(secrets.len(), 1200);
    let hyphenated: Vec<&String> = secrets.iter().filter(|s| s.starts_with('-')).collect();
    assert!(
        hyphenated.is_empty(),
        "{} of 1200 key and webhook secrets start with '-': {hyphenated:?}",
        hyphenated.len()
    );
}

#[tokio::test]
async fn the_binary_takes_secrets_that_start_with_a_hyphen() {
    let secret = "-Zx3_secret-starting-with-hyphen";
    for (id_flag, secret_flag) in [
        ("--maker-key-id", "--maker-secret"),
        ("--key-id", "--secret"),
    ] {
        let output = binary()
            .args(["token", id_flag, "app_hyphen", secret_flag, secret])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "`token {secret_flag} {secret}` failed: {stderr}"
        );
        let token = String::from_utf8(output.stdout).unwrap();
        let claims = jwt::verify(token.trim(), &secret.into()).expect("signed with the secret");
        assert_eq!(claims, Claims::app_maker());
    }

    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("smooch.env");
    let mut child = binary()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--maker-key-id",
            "app_hyphen",
            "--maker-secret",
            secret,
            "--print-env",
        ])
        .arg(&env_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env_file.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().await.unwrap();
            panic!(
                "`serve --maker-secret {secret}` exited ({status}): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(Instant::now() < deadline, "the env file never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        env_text.contains(&format!("SMOOCH_SECRET={secret}\n")),
        "{env_text}"
    );
    child.kill().await.unwrap();
}

/// Runs `serve` with stderr (its log) going to a file, makes one API
/// request, stops it with SIGTERM and returns the log.
async fn serve_log(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("smooch.env");
    let log_file = dir.path().join("emulator.log");
    let mut command = binary();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--print-env"])
        .arg(&env_file)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_file).unwrap());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env_file.exists() {
        if child.try_wait().unwrap().is_some() {
            panic!(
                "serve {args:?} exited: {}",
                std::fs::read_to_string(&log_file).unwrap()
            );
        }
        assert!(Instant::now() < deadline, "the env file never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    let base = env_text
        .lines()
        .find_map(|l| l.strip_prefix("SMOOCH_URL="))
        .unwrap()
        .to_owned();
    assert_eq!(
        send(http().get(format!("{base}/v1/apps"))).await.status,
        401
    );
    let pid = child.id().expect("running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("it stops")
        .unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::read_to_string(&log_file).unwrap()
}

/// The log without colour codes, so that the level checks do not depend on
/// the colour check.
fn plain(log: &str) -> String {
    let mut out = String::new();
    let mut rest = log;
    while let Some(start) = rest.find("\x1b[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or(after.len(), |i| i + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_binary_logs_without_colour_to_a_file() {
    let log = serve_log(&[], &[]).await;
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        !log.contains("\x1b["),
        "colour codes in a log file: {log:?}"
    );
}

#[tokio::test]
async fn the_binary_log_level_flag_then_env_then_rust_log_then_info() {
    // Default: info (the per-request lines are debug).
    let log = plain(&serve_log(&[], &[]).await);
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains("route=/v1/apps"), "debug at info: {log}");

    // RUST_LOG applies when no level is given.
    let log = plain(&serve_log(&[], &[("RUST_LOG", "debug")]).await);
    assert!(
        log.contains("route=/v1/apps"),
        "RUST_LOG=debug ignored: {log}"
    );

    // --log-level and SMOOCH_EMULATOR_LOG win over RUST_LOG, the flag first.
    let log = plain(&serve_log(&["--log-level", "debug"], &[("RUST_LOG", "warn")]).await);
    assert!(
        log.contains("route=/v1/apps") && log.contains("shutting down"),
        "--log-level debug lost to RUST_LOG=warn: {log}"
    );
    let log = plain(
        &serve_log(
            &[],
            &[("SMOOCH_EMULATOR_LOG", "warn"), ("RUST_LOG", "debug")],
        )
        .await,
    );
    assert!(
        !log.contains("route=/v1/apps") && !log.contains("shutting down"),
        "SMOOCH_EMULATOR_LOG=warn lost to RUST_LOG=debug: {log}"
    );
    let log = plain(&serve_log(&["--log-level", "info"], &[("SMOOCH_EMULATOR_LOG", "warn")]).await);
    assert!(
        log.contains("shutting down"),
        "--log-level info lost to SMOOCH_EMULATOR_LOG=warn: {log}"
    );
}
