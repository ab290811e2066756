//! The `/v2` (Sunshine Conversations) contract, over real HTTP with raw
//! JSON (no dependency on the `smooch` crate's client).

mod support;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use smooch_emulator::{EmulatorConfig, RunningEmulator};
use std::collections::HashSet;
use support::{Answer, assert_error, assert_v2_error, http, send, start, start_with};

// ---------- helpers ----------

#[derive(Clone, Debug)]
enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
    Raw(String),
}

fn account(emulator: &RunningEmulator) -> Auth {
    Auth::Basic(
        emulator.maker_key_id().to_owned(),
        emulator.maker_secret().expose().to_owned(),
    )
}

/// An HS256 JWT with `kid` and the given claims.
fn jwt(kid: &str, secret: &str, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn account_jwt(emulator: &RunningEmulator, scope: &str) -> Auth {
    Auth::Bearer(jwt(
        emulator.maker_key_id(),
        emulator.maker_secret().expose(),
        json!({ "scope": scope }),
    ))
}

async fn call(
    emulator: &RunningEmulator,
    method: Method,
    path: &str,
    auth: &Auth,
    body: Option<Value>,
) -> Answer {
    let mut request = http().request(method, format!("{}{path}", emulator.base_url()));
    request = match auth {
        Auth::None => request,
        Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::Raw(value) => request.header("authorization", value),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

async fn get(emulator: &RunningEmulator, path: &str, auth: &Auth) -> Answer {
    call(emulator, Method::GET, path, auth, None).await
}

async fn post(emulator: &RunningEmulator, path: &str, auth: &Auth, body: Value) -> Answer {
    call(emulator, Method::POST, path, auth, Some(body)).await
}

async fn patch(emulator: &RunningEmulator, path: &str, auth: &Auth, body: Value) -> Answer {
    call(emulator, Method::PATCH, path, auth, Some(body)).await
}

async fn delete(emulator: &RunningEmulator, path: &str, auth: &Auth) -> Answer {
    call(emulator, Method::DELETE, path, auth, None).await
}

/// A v1 appMaker bearer token.
fn v1_maker(emulator: &RunningEmulator) -> Auth {
    Auth::Bearer(emulator.app_maker_token().expose().to_owned())
}

fn ok(answer: &Answer, status: u16) -> &Value {
    assert_eq!(answer.status, status, "{answer:?}");
    &answer.json
}

async fn new_app(emulator: &RunningEmulator, name: &str) -> String {
    let answer = post(
        emulator,
        "/v2/apps",
        &account(emulator),
        json!({"displayName": name}),
    )
    .await;
    ok(&answer, 201)["app"]["id"].as_str().unwrap().to_owned()
}

/// An app key: (id, secret).
async fn new_key(emulator: &RunningEmulator, app: &str) -> (String, String) {
    let answer = post(
        emulator,
        &format!("/v2/apps/{app}/keys"),
        &account(emulator),
        json!({"displayName": "k"}),
    )
    .await;
    let key = &ok(&answer, 201)["key"];
    (
        key["id"].as_str().unwrap().to_owned(),
        key["secret"].as_str().unwrap().to_owned(),
    )
}

fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

const CREDENTIALS: &[&str] = &[
    "MESSENGER-PAGE-TOKEN",
    "MESSENGER-APP-SECRET",
    "TWILIO-AUTH-TOKEN",
    "TELEGRAM-BOT-TOKEN",
    "LINE-CHANNEL-SECRET",
    "LINE-ACCESS-TOKEN",
    "NEW-PAGE-TOKEN",
];

fn assert_no_credentials(text: &str) {
    for credential in CREDENTIALS {
        assert!(
            !text.contains(credential),
            "{credential} leaked into {text}"
        );
    }
}

fn custom_body(target: &str) -> Value {
    json!({
        "type": "custom",
        "displayName": "hooks",
        "webhooks": [{"target": target, "triggers": ["conversation:message"]}],
    })
}

async fn app_count(emulator: &RunningEmulator) -> usize {
    let answer = get(emulator, "/v2/apps?page[size]=100", &account(emulator)).await;
    ok(&answer, 200)["apps"].as_array().unwrap().len()
}

async fn integrations(emulator: &RunningEmulator, app: &str) -> Value {
    let answer = get(
        emulator,
        &format!("/v2/apps/{app}/integrations?page[size]=100"),
        &account(emulator),
    )
    .await;
    ok(&answer, 200)["integrations"].clone()
}

// ---------- apps ----------

#[tokio::test]
async fn apps_create_get_patch_delete() {
    let emulator = start().await;
    let auth = account(&emulator);
    let created = post(
        &emulator,
        "/v2/apps",
        &auth,
        json!({
            "displayName": "My app",
            "settings": {"useAnimalNames": true, "multiConvoEnabled": true},
            "metadata": {"team": "ops", "n": 3},
        }),
    )
    .await;
    let app = ok(&created, 201)["app"].clone();
    assert_eq!(keys_of(&created.json), ["app"]);
    assert_eq!(keys_of(&app), ["displayName", "id", "metadata", "settings"]);
    assert_eq!(app["displayName"], "My app");
    assert_eq!(app["settings"]["useAnimalNames"], true);
    assert_eq!(app["settings"]["multiConvoEnabled"], true);
    assert!(!created.text.contains("appToken"));
    let id = app["id"].as_str().unwrap();
    assert_eq!(id.len(), 24);

    let path = format!("/v2/apps/{id}");
    assert_eq!(ok(&get(&emulator, &path, &auth).await, 200)["app"], app);

    // PATCH: displayName replaces, settings merge, metadata replaces.
    let patched = patch(
        &emulator,
        &path,
        &auth,
        json!({"displayName": "Renamed", "settings": {"echoPostback": true}, "metadata": {"x": true}}),
    )
    .await;
    let patched = ok(&patched, 200)["app"].clone();
    assert_eq!(patched["displayName"], "Renamed");
    assert_eq!(patched["settings"]["useAnimalNames"], true);
    assert_eq!(patched["settings"]["echoPostback"], true);
    assert_eq!(patched["metadata"], json!({"x": true}));
    // Explicit nulls elsewhere are absent; metadata: null clears.
    let cleared = patch(
        &emulator,
        &path,
        &auth,
        json!({"displayName": null, "settings": null, "metadata": null}),
    )
    .await;
    let cleared = ok(&cleared, 200)["app"].clone();
    assert_eq!(cleared["displayName"], "Renamed");
    assert!(
        cleared.get("metadata").is_none_or(Value::is_null),
        "{cleared}"
    );
    // multiConvoEnabled cannot be turned off.
    let answer = patch(
        &emulator,
        &path,
        &auth,
        json!({"settings": {"multiConvoEnabled": false}}),
    )
    .await;
    assert_v2_error(&answer, 400, "bad_request", "multiConvoEnabled");

    // Delete takes the integrations with it.
    let integration = post(
        &emulator,
        &format!("{path}/integrations"),
        &auth,
        json!({"type": "telegram", "token": "1:TELEGRAM-BOT-TOKEN"}),
    )
    .await;
    ok(&integration, 201);
    let deleted = delete(&emulator, &path, &auth).await;
    assert_eq!(ok(&deleted, 200), &json!({}));
    assert_v2_error(&get(&emulator, &path, &auth).await, 404, "not_found", "App");
    assert_v2_error(
        &get(&emulator, &format!("{path}/integrations"), &auth).await,
        404,
        "not_found",
        "App",
    );
    assert_v2_error(
        &delete(&emulator, &path, &auth).await,
        404,
        "not_found",
        "App",
    );
    let v1 = get(
        &emulator,
        &format!("/v1/apps/{id}/integrations"),
        &v1_maker(&emulator),
    )
    .await;
    assert_error(&v1, 404, "not_found", "App");
}

#[tokio::test]
async fn apps_page_with_cursors_to_the_end() {
    let emulator = start().await;
    let auth = account(&emulator);
    let mut made = Vec::new();
    for i in 0..31 {
        made.push(new_app(&emulator, &format!("app {i}")).await);
    }
    // A v1 app is in the list too.
    let v1 = post(
        &emulator,
        "/v1/apps",
        &v1_maker(&emulator),
        json!({"name": "v1 app"}),
    )
    .await;
    made.push(ok(&v1, 201)["app"]["_id"].as_str().unwrap().to_owned());

    // Default page: 25, with more.
    let first = get(&emulator, "/v2/apps", &auth).await;
    let first = ok(&first, 200);
    assert_eq!(first["apps"].as_array().unwrap().len(), 25);
    assert_eq!(first["meta"]["hasMore"], true);
    assert!(first["links"]["next"].is_string());
    assert!(first["links"].get("prev").is_none());

    // Walk with page[after] (and a JS-style `_` parameter).
    let mut seen = Vec::new();
    let mut query = "page[size]=7&_=1700000000000".to_owned();
    let mut pages = 0;
    loop {
        let answer = get(&emulator, &format!("/v2/apps?{query}"), &auth).await;
        let body = ok(&answer, 200);
        let apps = body["apps"].as_array().unwrap();
        assert!(apps.len() <= 7);
        seen.extend(apps.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        pages += 1;
        if body["meta"]["hasMore"] == false {
            assert!(body["links"].get("next").is_none(), "{body}");
            break;
        }
        let after = body["meta"]["afterCursor"].as_str().unwrap();
        assert_eq!(after, apps.last().unwrap()["id"]);
        query = format!("page[after]={after}&page[size]=7");
        assert!(pages < 10);
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), made.len(), "no gaps, no duplicates");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    assert_eq!(
        seen.iter().collect::<HashSet<_>>(),
        made.iter().collect::<HashSet<_>>()
    );
    // Creation order (ids sort in creation order).
    assert_eq!(seen, made);

    // The Python client's page={json} form gives the same page.
    let bracket = get(
        &emulator,
        &format!("/v2/apps?page[after]={}&page[size]=5", made[3]),
        &auth,
    )
    .await;
    let page_json = json!({"after": made[3], "size": 5}).to_string();
    let python = http()
        .get(format!("{}/v2/apps", emulator.base_url()))
        .query(&[("page", page_json.as_str())])
        .basic_auth(
            emulator.maker_key_id(),
            Some(emulator.maker_secret().expose()),
        );
    let python = send(python).await;
    assert_eq!(ok(&python, 200), ok(&bracket, 200));
    let ids: Vec<&str> = python.json["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        made[4..9].iter().map(String::as_str).collect::<Vec<_>>()
    );

    // page[before] goes back; links.prev and links.next are followable.
    let back = get(
        &emulator,
        &format!("/v2/apps?page[before]={}&page[size]=3", made[10]),
        &auth,
    )
    .await;
    let back = ok(&back, 200);
    let ids: Vec<&str> = back["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        made[7..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(back["meta"]["hasMore"], true);
    let next = back["links"]["next"].as_str().unwrap();
    let followed = send(http().get(next).basic_auth(
        emulator.maker_key_id(),
        Some(emulator.maker_secret().expose()),
    ))
    .await;
    assert_eq!(ok(&followed, 200)["apps"][0]["id"], made[10]);

    // filter[serviceAccountId]: the account key's id keeps all, others none.
    let mine = get(
        &emulator,
        &format!(
            "/v2/apps?filter[serviceAccountId]={}&page[size]=100",
            emulator.maker_key_id()
        ),
        &auth,
    )
    .await;
    assert_eq!(ok(&mine, 200)["apps"].as_array().unwrap().len(), made.len());
    let filter_json = json!({"serviceAccountId": "svc_someone_else"}).to_string();
    let other = send(
        http()
            .get(format!("{}/v2/apps", emulator.base_url()))
            .query(&[("filter", filter_json.as_str())])
            .basic_auth(
                emulator.maker_key_id(),
                Some(emulator.maker_secret().expose()),
            ),
    )
    .await;
    assert_eq!(ok(&other, 200)["apps"], json!([]));
    assert_eq!(other.json["meta"]["hasMore"], false);
}

// ---------- bad input ----------

#[tokio::test]
async fn bad_input_is_a_400_with_the_v2_body_and_changes_nothing() {
    let emulator = start().await;
    let auth = account(&emulator);
    let app = new_app(&emulator, "a").await;
    let custom = post(
        &emulator,
        &format!("/v2/apps/{app}/integrations"),
        &auth,
        custom_body("https://example.com/h"),
    )
    .await;
    let custom = ok(&custom, 201)["integration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = "x".repeat(101);
    let apps_before = app_count(&emulator).await;
    let app_before = get(&emulator, &format!("/v2/apps/{app}"), &auth).await.json;
    let integrations_before = integrations(&emulator, &app).await;

    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/v2/apps".into(),
            json!({"displayName": long}),
            "at most 100",
        ),
        (
            Method::POST,
            "/v2/apps".into(),
            json!({}),
            "displayName is required",
        ),
        (
            Method::POST,
            "/v2/apps".into(),
            json!({"displayName": ""}),
            "displayName must not be empty",
        ),
        (
            Method::PATCH,
            format!("/v2/apps/{app}"),
            json!({"displayName": long}),
            "at most 100",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/keys"),
            json!({"displayName": long}),
            "at most 100",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "fax"}),
            "not supported",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "whatsapp"}),
            "not supported",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"displayName": "x"}),
            "type is required",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "custom", "webhooks": [{"target": "https://example.com/x"}]}),
            "webhooks[0].triggers is required",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "custom", "webhooks": [{"triggers": ["conversation:message"]}]}),
            "webhooks[0].target is required",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "custom"}),
            "webhooks is required",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "custom", "webhooks": [
                {"target": "https://a.example/x", "triggers": ["conversation:message"]},
                {"target": "https://b.example/x", "triggers": ["conversation:message"]},
            ]}),
            "exactly one",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "custom", "webhooks": [{"target": "https://a.example/x", "triggers": ["message"]}]}),
            "unknown trigger",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "twilio", "accountSid": "AC1", "authToken": "TWILIO-AUTH-TOKEN"}),
            "phoneNumberSid or messagingServiceSid",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "messenger", "appId": "1", "pageAccessToken": "MESSENGER-PAGE-TOKEN"}),
            "appSecret is required",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations"),
            json!({"type": "telegram"}),
            "token is required",
        ),
        (
            Method::PATCH,
            format!("/v2/apps/{app}/integrations/{custom}"),
            json!({"webhooks": []}),
            "cannot be changed",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations/{custom}/webhooks"),
            json!({"target": "https://example.com/y"}),
            "triggers is required",
        ),
        (
            Method::POST,
            format!("/v2/apps/{app}/integrations/{custom}/webhooks"),
            json!({"target": "not a url", "triggers": ["conversation:message"]}),
            "absolute http or https URL",
        ),
    ];
    for (method, path, body, needle) in cases {
        let answer = call(&emulator, method.clone(), &path, &auth, Some(body.clone())).await;
        assert_v2_error(&answer, 400, "bad_request", needle);
    }
    // Page sizes and cursors.
    for (query, needle) in [
        ("page[size]=0", "page[size]"),
        ("page[size]=101", "page[size]"),
        ("page[size]=ten", "page[size]"),
        ("page[after]=a&page[before]=b", "cannot be used together"),
        ("page=%7B%22size%22%3A0%7D", "page[size]"),
        ("page=nonsense", "JSON object"),
    ] {
        for path in [
            "/v2/apps".to_owned(),
            format!("/v2/apps/{app}/integrations"),
        ] {
            let answer = get(&emulator, &format!("{path}?{query}"), &auth).await;
            assert_v2_error(&answer, 400, "bad_request", needle);
        }
    }
    let answer = get(
        &emulator,
        &format!("/v2/apps/{app}/integrations?filter[types]=fax"),
        &auth,
    )
    .await;
    assert_v2_error(&answer, 400, "bad_request", "unknown type");
    // Malformed JSON.
    for path in [
        "/v2/apps".to_owned(),
        format!("/v2/apps/{app}/integrations"),
        format!("/v2/apps/{app}/keys"),
    ] {
        let answer = send(
            http()
                .post(format!("{}{path}", emulator.base_url()))
                .basic_auth(
                    emulator.maker_key_id(),
                    Some(emulator.maker_secret().expose()),
                )
                .header("content-type", "application/json")
                .body("{\"displayName\": "),
        )
        .await;
        assert_v2_error(&answer, 400, "bad_request", "not valid JSON");
    }
    // Nothing was created or changed.
    assert_eq!(app_count(&emulator).await, apps_before);
    assert_eq!(
        get(&emulator, &format!("/v2/apps/{app}"), &auth).await.json,
        app_before
    );
    assert_eq!(integrations(&emulator, &app).await, integrations_before);
    let keys = get(&emulator, &format!("/v2/apps/{app}/keys"), &auth).await;
    assert_eq!(ok(&keys, 200)["keys"], json!([]));
}

// ---------- keys ----------

#[tokio::test]
async fn app_keys_create_list_get_delete() {
    let emulator = start().await;
    let auth = account(&emulator);
    let app = new_app(&emulator, "a").await;
    let created = post(
        &emulator,
        &format!("/v2/apps/{app}/keys"),
        &auth,
        json!({"displayName": "deploy"}),
    )
    .await;
    let key = ok(&created, 201)["key"].clone();
    assert_eq!(keys_of(&created.json), ["key"]);
    assert_eq!(keys_of(&key), ["displayName", "id", "secret"]);
    assert_eq!(key["displayName"], "deploy");
    let id = key["id"].as_str().unwrap();
    assert!(id.starts_with("app_"));
    let listed = get(&emulator, &format!("/v2/apps/{app}/keys"), &auth).await;
    assert_eq!(ok(&listed, 200), &json!({"keys": [key]}));
    let got = get(&emulator, &format!("/v2/apps/{app}/keys/{id}"), &auth).await;
    assert_eq!(ok(&got, 200), &json!({"key": key}));
    // The key works, then stops working once deleted.
    let as_key = Auth::Basic(id.to_owned(), key["secret"].as_str().unwrap().to_owned());
    ok(
        &get(&emulator, &format!("/v2/apps/{app}"), &as_key).await,
        200,
    );
    assert_eq!(
        ok(
            &delete(&emulator, &format!("/v2/apps/{app}/keys/{id}"), &auth).await,
            200
        ),
        &json!({})
    );
    assert_v2_error(
        &get(&emulator, &format!("/v2/apps/{app}/keys/{id}"), &auth).await,
        404,
        "not_found",
        "Key",
    );
    assert_v2_error(
        &delete(&emulator, &format!("/v2/apps/{app}/keys/{id}"), &auth).await,
        404,
        "not_found",
        "Key",
    );
    assert_v2_error(
        &get(&emulator, &format!("/v2/apps/{app}"), &as_key).await,
        401,
        "unauthorized",
        "unknown key id",
    );
}

// ---------- integrations ----------

#[tokio::test]
async fn integrations_of_each_type_never_echo_credentials() {
    let emulator = start().await;
    let auth = account(&emulator);
    let app = new_app(&emulator, "a").await;
    let base = format!("/v2/apps/{app}/integrations");
    let bodies = [
        // The Python client's from_dict sends unset optional fields as nulls.
        json!({"type": "messenger", "appId": "fb-1", "pageAccessToken": "MESSENGER-PAGE-TOKEN",
               "appSecret": "MESSENGER-APP-SECRET", "displayName": null, "defaultResponderId": null, "pageId": null}),
        json!({"type": "twilio", "accountSid": "AC1", "authToken": "TWILIO-AUTH-TOKEN", "phoneNumberSid": "PN1"}),
        json!({"type": "twilio", "accountSid": "AC2", "authToken": "TWILIO-AUTH-TOKEN", "messagingServiceSid": "MG1",
               "displayName": "SMS"}),
        json!({"type": "telegram", "token": "1:TELEGRAM-BOT-TOKEN", "defaultResponderId": "bot-1"}),
        json!({"type": "line", "channelId": "1462", "channelSecret": "LINE-CHANNEL-SECRET",
               "channelAccessToken": "LINE-ACCESS-TOKEN"}),
        json!({"type": "line"}),
        custom_body("https://example.com/hook"),
    ];
    let mut made = Vec::new();
    for body in bodies {
        let answer = post(&emulator, &base, &auth, body.clone()).await;
        assert_no_credentials(&answer.text);
        let integration = ok(&answer, 201)["integration"].clone();
        assert_eq!(integration["type"], body["type"], "{integration}");
        assert_eq!(integration["status"], "active");
        assert_eq!(integration["id"].as_str().unwrap().len(), 24);
        for credential in [
            "pageAccessToken",
            "appSecret",
            "authToken",
            "token",
            "channelSecret",
            "channelAccessToken",
        ] {
            assert!(
                integration.get(credential).is_none_or(Value::is_null),
                "{credential} in {integration}"
            );
        }
        made.push(integration);
    }
    assert_eq!(made[0]["appId"], "fb-1");
    assert!(made[0]["pageId"].is_number());
    assert!(made[0].get("displayName").is_none());
    assert_eq!(made[1]["phoneNumberSid"], "PN1");
    assert_eq!(made[2]["messagingServiceSid"], "MG1");
    assert_eq!(made[2]["displayName"], "SMS");
    assert_eq!(made[3]["defaultResponderId"], "bot-1");
    assert_eq!(made[4]["channelId"], "1462");
    let webhook = &made[6]["webhooks"][0];
    assert_eq!(made[6]["displayName"], "hooks");
    assert_eq!(made[6]["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(
        keys_of(webhook),
        [
            "id",
            "includeFullSource",
            "includeFullUser",
            "secret",
            "target",
            "triggers",
            "version"
        ]
    );
    assert_eq!(webhook["triggers"], json!(["conversation:message"]));
    assert_eq!(webhook["includeFullUser"], false);

    // get and list agree with create, and carry no credential either.
    for integration in &made {
        let id = integration["id"].as_str().unwrap();
        let got = get(&emulator, &format!("{base}/{id}"), &auth).await;
        assert_eq!(ok(&got, 200)["integration"], *integration);
    }
    let listed = get(&emulator, &base, &auth).await;
    assert_no_credentials(&listed.text);
    assert_eq!(ok(&listed, 200)["integrations"], json!(made));

    // filter[types], both forms, and paging.
    let filtered = get(
        &emulator,
        &format!("{base}?filter[types]=custom,twilio"),
        &auth,
    )
    .await;
    let types: Vec<&str> = ok(&filtered, 200)["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["twilio", "twilio", "custom"]);
    let filter_json = json!({"types": "line"}).to_string();
    let python = send(
        http()
            .get(format!("{}{base}", emulator.base_url()))
            .query(&[("filter", filter_json.as_str()), ("page", r#"{"size": 1}"#)])
            .basic_auth(
                emulator.maker_key_id(),
                Some(emulator.maker_secret().expose()),
            ),
    )
    .await;
    let python = ok(&python, 200);
    assert_eq!(python["integrations"], json!([made[4]]));
    assert_eq!(python["meta"]["hasMore"], true);
    let next = python["links"]["next"].as_str().unwrap();
    assert!(
        next.contains("filter%5Btypes%5D=line") || next.contains("filter[types]=line"),
        "{next}"
    );
    let followed = send(http().get(next).basic_auth(
        emulator.maker_key_id(),
        Some(emulator.maker_secret().expose()),
    ))
    .await;
    assert_eq!(ok(&followed, 200)["integrations"], json!([made[5]]));
    assert_eq!(followed.json["meta"]["hasMore"], false);

    // PATCH: displayName, defaultResponderId, messenger pageAccessToken.
    let messenger = made[0]["id"].as_str().unwrap();
    let answer = patch(
        &emulator,
        &format!("{base}/{messenger}"),
        &auth,
        json!({"displayName": "Page", "defaultResponderId": "r1", "pageAccessToken": "NEW-PAGE-TOKEN"}),
    )
    .await;
    assert_no_credentials(&answer.text);
    let patched = ok(&answer, 200)["integration"].clone();
    assert_eq!(patched["displayName"], "Page");
    assert_eq!(patched["defaultResponderId"], "r1");
    assert_eq!(patched["appId"], "fb-1");
    let answer = patch(
        &emulator,
        &format!("{base}/{messenger}"),
        &auth,
        json!({"displayName": null}),
    )
    .await;
    assert!(ok(&answer, 200)["integration"].get("displayName").is_none());
    // What the type's update model lacks cannot change, and nothing does.
    let telegram = made[3]["id"].as_str().unwrap();
    for body in [
        json!({"pageAccessToken": "NEW-PAGE-TOKEN"}),
        json!({"token": "2:TELEGRAM-BOT-TOKEN"}),
        json!({"type": "line"}),
    ] {
        let answer = patch(&emulator, &format!("{base}/{telegram}"), &auth, body).await;
        assert_v2_error(&answer, 400, "bad_request", "cannot be changed");
    }
    let custom = made[6]["id"].as_str().unwrap();
    let answer = patch(
        &emulator,
        &format!("{base}/{custom}"),
        &auth,
        json!({"defaultResponderId": "r"}),
    )
    .await;
    assert_v2_error(&answer, 400, "bad_request", "cannot be changed");
    assert_eq!(
        ok(
            &get(&emulator, &format!("{base}/{telegram}"), &auth).await,
            200
        )["integration"],
        made[3]
    );
    let answer = patch(
        &emulator,
        &format!("{base}/{custom}"),
        &auth,
        json!({"displayName": "renamed"}),
    )
    .await;
    assert_eq!(ok(&answer, 200)["integration"]["displayName"], "renamed");

    // Delete.
    for integration in &made {
        let id = integration["id"].as_str().unwrap();
        assert_eq!(
            ok(
                &delete(&emulator, &format!("{base}/{id}"), &auth).await,
                200
            ),
            &json!({})
        );
        assert_v2_error(
            &get(&emulator, &format!("{base}/{id}"), &auth).await,
            404,
            "not_found",
            "Integration",
        );
    }
    assert_eq!(integrations(&emulator, &app).await, json!([]));
}

#[tokio::test]
async fn custom_integration_webhooks() {
    let emulator = start().await;
    let auth = account(&emulator);
    let app = new_app(&emulator, "a").await;
    let base = format!("/v2/apps/{app}/integrations");
    let created = post(
        &emulator,
        &base,
        &auth,
        custom_body("https://example.com/first"),
    )
    .await;
    let custom = ok(&created, 201)["integration"].clone();
    let id = custom["id"].as_str().unwrap();
    let first = custom["webhooks"][0].clone();
    let hooks = format!("{base}/{id}/webhooks");

    let answer = post(
        &emulator,
        &hooks,
        &auth,
        json!({"target": "https://example.com/second", "triggers": ["conversation:postback", "conversation:postback"], "includeFullUser": true}),
    )
    .await;
    let second = ok(&answer, 201)["webhook"].clone();
    assert_eq!(second["triggers"], json!(["conversation:postback"]));
    assert_eq!(second["includeFullUser"], true);
    assert_eq!(second["includeFullSource"], false);
    assert_eq!(second["version"], "v2");
    assert!(second["secret"].as_str().unwrap().len() >= 16);
    let second_id = second["id"].as_str().unwrap();

    let listed = get(&emulator, &hooks, &auth).await;
    assert_eq!(ok(&listed, 200), &json!({"webhooks": [first, second]}));
    let got = get(&emulator, &format!("{hooks}/{second_id}"), &auth).await;
    assert_eq!(ok(&got, 200), &json!({"webhook": second}));

    let answer = patch(
        &emulator,
        &format!("{hooks}/{second_id}"),
        &auth,
        json!({"target": "https://example.com/moved", "includeFullUser": false, "includeFullSource": true}),
    )
    .await;
    let moved = ok(&answer, 200)["webhook"].clone();
    assert_eq!(moved["target"], "https://example.com/moved");
    assert_eq!(moved["includeFullSource"], true);
    assert_eq!(moved["secret"], second["secret"]);
    assert_eq!(moved["id"], second["id"]);
    let integration = get(&emulator, &format!("{base}/{id}"), &auth).await;
    assert_eq!(
        ok(&integration, 200)["integration"]["webhooks"],
        json!([first, moved])
    );

    // A webhook is reached only through its own integration; channel
    // integrations have none.
    let other = post(
        &emulator,
        &base,
        &auth,
        custom_body("https://example.com/other"),
    )
    .await;
    let other_id = ok(&other, 201)["integration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = get(
        &emulator,
        &format!("{base}/{other_id}/webhooks/{second_id}"),
        &auth,
    )
    .await;
    assert_v2_error(&answer, 404, "not_found", "Webhook");
    let telegram = post(
        &emulator,
        &base,
        &auth,
        json!({"type": "telegram", "token": "1:TELEGRAM-BOT-TOKEN"}),
    )
    .await;
    let telegram = ok(&telegram, 201)["integration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = get(&emulator, &format!("{base}/{telegram}/webhooks"), &auth).await;
    assert_v2_error(&answer, 400, "bad_request", "custom integrations");
    let answer = get(
        &emulator,
        &format!("{base}/000000000000000000000000/webhooks"),
        &auth,
    )
    .await;
    assert_v2_error(&answer, 404, "not_found", "Integration");

    // Deleting a webhook leaves its integration.
    assert_eq!(
        ok(
            &delete(&emulator, &format!("{hooks}/{second_id}"), &auth).await,
            200
        ),
        &json!({})
    );
    assert_v2_error(
        &get(&emulator, &format!("{hooks}/{second_id}"), &auth).await,
        404,
        "not_found",
        "Webhook",
    );
    let first_id = first["id"].as_str().unwrap();
    ok(
        &delete(&emulator, &format!("{hooks}/{first_id}"), &auth).await,
        200,
    );
    let empty = get(&emulator, &format!("{base}/{id}"), &auth).await;
    assert_eq!(ok(&empty, 200)["integration"]["webhooks"], json!([]));
}

// ---------- auth ----------

#[tokio::test]
async fn account_and_app_keys_401_403_matrix() {
    let emulator = start().await;
    let mine = new_app(&emulator, "mine").await;
    let theirs = new_app(&emulator, "theirs").await;
    let (key_id, key_secret) = new_key(&emulator, &mine).await;
    let maker_id = emulator.maker_key_id().to_owned();
    let maker_secret = emulator.maker_secret().expose().to_owned();

    let account_auths = [
        account(&emulator),
        account_jwt(&emulator, "account"),
        account_jwt(&emulator, "appMaker"),
    ];
    let app_auths = [
        Auth::Basic(key_id.clone(), key_secret.clone()),
        Auth::Bearer(jwt(&key_id, &key_secret, json!({"scope": "app"}))),
    ];
    let own_paths = [
        format!("/v2/apps/{mine}"),
        format!("/v2/apps/{mine}/keys"),
        format!("/v2/apps/{mine}/integrations"),
    ];
    let other_paths = [
        format!("/v2/apps/{theirs}"),
        format!("/v2/apps/{theirs}/keys"),
        format!("/v2/apps/{theirs}/integrations"),
        "/v2/apps/000000000000000000000000".to_owned(),
    ];
    for auth in &account_auths {
        ok(&get(&emulator, "/v2/apps", auth).await, 200);
        for path in own_paths.iter().chain(&other_paths[..3]) {
            ok(&get(&emulator, path, auth).await, 200);
        }
        let created = post(
            &emulator,
            "/v2/apps",
            auth,
            json!({"displayName": "by account"}),
        )
        .await;
        ok(&created, 201);
    }
    let apps = app_count(&emulator).await;
    for auth in &app_auths {
        for path in &own_paths {
            ok(&get(&emulator, path, auth).await, 200);
        }
        let created = post(
            &emulator,
            &format!("/v2/apps/{mine}/integrations"),
            auth,
            custom_body("https://example.com/k"),
        )
        .await;
        ok(&created, 201);
        assert_v2_error(
            &get(&emulator, "/v2/apps", auth).await,
            403,
            "forbidden",
            "account",
        );
        let answer = post(
            &emulator,
            "/v2/apps",
            auth,
            json!({"displayName": "by app key"}),
        )
        .await;
        assert_v2_error(&answer, 403, "forbidden", "account");
        for path in &other_paths {
            assert_v2_error(
                &get(&emulator, path, auth).await,
                403,
                "forbidden",
                "own app",
            );
        }
        let answer = delete(&emulator, &format!("/v2/apps/{theirs}"), auth).await;
        assert_v2_error(&answer, 403, "forbidden", "own app");
    }
    assert_eq!(
        app_count(&emulator).await,
        apps,
        "no app made or deleted by app keys"
    );

    // 401: no, malformed, unknown or wrong credentials.
    let unauthorized = [
        (Auth::None, "Authorization is required"),
        (
            Auth::Basic(maker_id.clone(), "wrong".into()),
            "wrong secret",
        ),
        (
            Auth::Basic(key_id.clone(), maker_secret.clone()),
            "wrong secret",
        ),
        (
            Auth::Basic("app_000000000000000000000000".into(), key_secret.clone()),
            "unknown key id",
        ),
        (
            Auth::Raw(format!("Basic {}", STANDARD.encode("no-colon"))),
            "keyId:secret",
        ),
        (Auth::Raw("Basic !!!not-base64".into()), "base64"),
        (Auth::Raw("Basic".into()), "Authorization must be"),
        (Auth::Raw("Digest abc".into()), "Authorization must be"),
        (Auth::Raw(maker_secret.clone()), "Authorization must be"),
        (Auth::Bearer("garbage".into()), "Invalid JWT"),
        (
            Auth::Bearer(jwt(&maker_id, "wrong", json!({"scope": "account"}))),
            "signature",
        ),
        (
            Auth::Bearer(jwt(
                "app_000000000000000000000000",
                &maker_secret,
                json!({"scope": "account"}),
            )),
            "unknown key id",
        ),
        (
            Auth::Bearer(jwt(
                &maker_id,
                &maker_secret,
                json!({"scope": "everything"}),
            )),
            "claims",
        ),
        (
            Auth::Bearer(format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": maker_id}).to_string()),
                URL_SAFE_NO_PAD.encode(r#"{"scope":"account"}"#)
            )),
            "Invalid JWT",
        ),
    ];
    for (auth, needle) in &unauthorized {
        for path in ["/v2/apps".to_owned(), format!("/v2/apps/{mine}")] {
            assert_v2_error(
                &get(&emulator, &path, auth).await,
                401,
                "unauthorized",
                needle,
            );
        }
    }
    // 403: a valid signature on a scope the key cannot grant.
    let forbidden = [
        Auth::Bearer(jwt(&key_id, &key_secret, json!({"scope": "account"}))),
        Auth::Bearer(jwt(&key_id, &key_secret, json!({"scope": "appMaker"}))),
        Auth::Bearer(jwt(&maker_id, &maker_secret, json!({"scope": "app"}))),
        Auth::Bearer(jwt(
            &key_id,
            &key_secret,
            json!({"scope": "appUser", "userId": "u"}),
        )),
    ];
    for auth in &forbidden {
        assert_v2_error(
            &get(&emulator, &format!("/v2/apps/{mine}"), auth).await,
            403,
            "forbidden",
            "",
        );
    }
    // 401 comes before 404.
    let answer = get(&emulator, "/v2/apps/000000000000000000000000", &Auth::None).await;
    assert_v2_error(&answer, 401, "unauthorized", "");
}

#[tokio::test]
async fn v1_accepts_the_account_scope_where_it_accepts_app_maker() {
    let emulator = start().await;
    let Auth::Bearer(account_token) = account_jwt(&emulator, "account") else {
        unreachable!()
    };
    for version in ["v1", "v1.1"] {
        let auth = Auth::Bearer(account_token.clone());
        let created = post(
            &emulator,
            &format!("/{version}/apps"),
            &auth,
            json!({"name": "smooch-core"}),
        )
        .await;
        let id = ok(&created, 201)["app"]["_id"].as_str().unwrap().to_owned();
        ok(
            &get(&emulator, &format!("/{version}/apps"), &auth).await,
            200,
        );
        let key = post(
            &emulator,
            &format!("/{version}/apps/{id}/keys"),
            &auth,
            json!({"name": "k"}),
        )
        .await;
        let key = ok(&key, 201)["key"].clone();
        // An app's key still cannot sign it.
        let app_account = Auth::Bearer(jwt(
            key["_id"].as_str().unwrap(),
            key["secret"].as_str().unwrap(),
            json!({"scope": "account"}),
        ));
        let answer = get(
            &emulator,
            &format!("/{version}/apps/{id}/integrations"),
            &app_account,
        )
        .await;
        assert_error(&answer, 403, "forbidden", "cannot sign");
        // v1 takes no Basic auth.
        let answer = get(&emulator, &format!("/{version}/apps"), &account(&emulator)).await;
        assert_error(&answer, 401, "unauthorized", "Bearer");
    }
}

// ---------- error bodies ----------

#[tokio::test]
async fn every_error_under_v2_has_the_v2_body() {
    let emulator = start().await;
    let auth = account(&emulator);
    let app = new_app(&emulator, "a").await;
    for path in ["/v2", "/v2/nothing", "/v2/apps/x/y/z", "/v2/apps/"] {
        assert_v2_error(
            &get(&emulator, path, &auth).await,
            404,
            "not_found",
            "No such endpoint",
        );
    }
    let answer = call(
        &emulator,
        Method::PUT,
        &format!("/v2/apps/{app}"),
        &auth,
        Some(json!({})),
    )
    .await;
    assert_v2_error(&answer, 405, "method_not_allowed", "PUT");
    assert!(answer.headers.contains_key("allow"));
    let answer = call(&emulator, Method::DELETE, "/v2/apps", &auth, None).await;
    assert_v2_error(&answer, 405, "method_not_allowed", "");
    let answer = send(
        http()
            .post(format!("{}/v2/apps", emulator.base_url()))
            .basic_auth(
                emulator.maker_key_id(),
                Some(emulator.maker_secret().expose()),
            )
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_v2_error(&answer, 415, "unsupported_media_type", "JSON");
    let answer = post(&emulator, "/v2/apps", &auth, json!(["not", "an", "object"])).await;
    assert_v2_error(&answer, 400, "bad_request", "JSON object");

    // Injected faults: 429 with Retry-After, and 503.
    let set = |body: Value| {
        let url = format!("{}/_emulator/faults", emulator.base_url());
        async move { send(http().put(url).json(&body)).await }
    };
    ok(
        &set(json!({"rateLimitRate": 1.0, "retryAfterSecs": 3})).await,
        200,
    );
    let answer = get(&emulator, "/v2/apps", &auth).await;
    assert_v2_error(&answer, 429, "too_many_requests", "Rate limit");
    assert_eq!(answer.headers["retry-after"], "3");
    let answer = get(&emulator, "/v1/apps", &v1_maker(&emulator)).await;
    assert_error(&answer, 429, "too_many_requests", "Rate limit");
    ok(
        &set(json!({"rateLimitRate": 0.0, "errorRate": 1.0})).await,
        200,
    );
    let answer = post(
        &emulator,
        "/v2/apps",
        &auth,
        json!({"displayName": "faulted"}),
    )
    .await;
    assert_v2_error(&answer, 503, "service_unavailable", "unavailable");
    ok(&set(json!({"errorRate": 0.0})).await, 200);
    assert_eq!(
        app_count(&emulator).await,
        1,
        "a faulted create makes nothing"
    );

    // /v1 keeps its own body.
    let answer = get(
        &emulator,
        "/v1/apps/000000000000000000000000",
        &v1_maker(&emulator),
    )
    .await;
    assert_error(&answer, 404, "not_found", "App");
}

#[tokio::test]
async fn requests_are_counted_under_v2_templates() {
    let emulator = start().await;
    let auth = account(&emulator);
    let app = new_app(&emulator, "a").await;
    ok(
        &get(&emulator, &format!("/v2/apps/{app}"), &auth).await,
        200,
    );
    get(&emulator, "/v2/apps/000000000000000000000000", &auth).await;
    let counts = emulator.state().request_counts();
    assert_eq!(counts.routes["POST /v2/apps"], 1);
    assert_eq!(counts.routes["GET /v2/apps/{appId}"], 2);
    assert_eq!(counts.statuses["GET /v2/apps/{appId}"][&404], 1);
}

// ---------- v1 <-> v2 ----------

#[tokio::test]
async fn objects_are_visible_through_both_versions() {
    let emulator = start().await;
    let v2 = account(&emulator);
    let v1 = v1_maker(&emulator);

    // Apps: name <-> displayName; a v2 app has an appToken for v1.
    let v1_app = post(
        &emulator,
        "/v1/apps",
        &v1,
        json!({"name": "from v1", "metadata": {"a": 1}}),
    )
    .await;
    let v1_app = ok(&v1_app, 201)["app"].clone();
    let id1 = v1_app["_id"].as_str().unwrap();
    let seen = get(&emulator, &format!("/v2/apps/{id1}"), &v2).await;
    assert_eq!(ok(&seen, 200)["app"]["displayName"], "from v1");
    assert_eq!(seen.json["app"]["metadata"], json!({"a": 1}));
    let id2 = new_app(&emulator, "from v2").await;
    let seen = get(&emulator, &format!("/v1/apps/{id2}"), &v1).await;
    assert_eq!(ok(&seen, 200)["app"]["name"], "from v2");
    assert_eq!(seen.json["app"]["appToken"].as_str().unwrap().len(), 25);
    ok(
        &patch(
            &emulator,
            &format!("/v2/apps/{id1}"),
            &v2,
            json!({"displayName": "renamed in v2"}),
        )
        .await,
        200,
    );
    assert_eq!(
        ok(&get(&emulator, &format!("/v1/apps/{id1}"), &v1).await, 200)["app"]["name"],
        "renamed in v2"
    );

    // Keys.
    let v1_key = post(
        &emulator,
        &format!("/v1/apps/{id1}/keys"),
        &v1,
        json!({"name": "v1 key"}),
    )
    .await;
    let v1_key = ok(&v1_key, 201)["key"].clone();
    let kid = v1_key["_id"].as_str().unwrap();
    let seen = get(&emulator, &format!("/v2/apps/{id1}/keys/{kid}"), &v2).await;
    assert_eq!(
        ok(&seen, 200)["key"],
        json!({"id": kid, "displayName": "v1 key", "secret": v1_key["secret"]})
    );
    let (key2, _) = new_key(&emulator, id1).await;
    let v1_keys = get(&emulator, &format!("/v1/apps/{id1}/keys"), &v1).await;
    let names: Vec<&str> = ok(&v1_keys, 200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, [kid, key2.as_str()]);

    // Channel integrations.
    let twilio = post(
        &emulator,
        &format!("/v1/apps/{id1}/integrations"),
        &v1,
        json!({"type": "twilio", "accountSid": "AC1", "authToken": "TWILIO-AUTH-TOKEN", "phoneNumberSid": "PN1"}),
    )
    .await;
    let twilio_id = ok(&twilio, 201)["integration"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = get(
        &emulator,
        &format!("/v2/apps/{id1}/integrations/{twilio_id}"),
        &v2,
    )
    .await;
    assert_eq!(ok(&seen, 200)["integration"]["type"], "twilio");
    assert_eq!(seen.json["integration"]["status"], "active");
    assert_eq!(seen.json["integration"]["phoneNumberSid"], "PN1");
    let messenger = post(
        &emulator,
        &format!("/v1/apps/{id1}/integrations"),
        &v1,
        json!({"type": "messenger", "appId": "fb-1", "pageAccessToken": "MESSENGER-PAGE-TOKEN", "appSecret": "MESSENGER-APP-SECRET"}),
    )
    .await;
    let messenger_id = ok(&messenger, 201)["integration"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        messenger.json["integration"].get("appId").is_none(),
        "v1 answers unchanged"
    );
    let seen = get(
        &emulator,
        &format!("/v2/apps/{id1}/integrations/{messenger_id}"),
        &v2,
    )
    .await;
    assert_eq!(ok(&seen, 200)["integration"]["appId"], "fb-1");
    let telegram = post(
        &emulator,
        &format!("/v2/apps/{id1}/integrations"),
        &v2,
        json!({"type": "telegram", "token": "1:TELEGRAM-BOT-TOKEN", "displayName": "TG"}),
    )
    .await;
    let telegram_id = ok(&telegram, 201)["integration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = get(
        &emulator,
        &format!("/v1/apps/{id1}/integrations/{telegram_id}"),
        &v1,
    )
    .await;
    assert_eq!(ok(&seen, 200)["integration"]["type"], "telegram");
    assert_eq!(seen.json["integration"]["displayName"], "TG");
    assert!(
        seen.json["integration"]["username"]
            .as_str()
            .unwrap()
            .starts_with("bot_")
    );
    assert_no_credentials(&seen.text);

    // A v1 webhook is a v2 custom integration holding it.
    let hook = post(
        &emulator,
        &format!("/v1/apps/{id1}/webhooks"),
        &v1,
        json!({"target": "https://example.com/v1", "triggers": ["message:appUser"], "includeFullAppUser": true}),
    )
    .await;
    let hook = ok(&hook, 201)["webhook"].clone();
    let hook_id = hook["_id"].as_str().unwrap();
    let customs = get(
        &emulator,
        &format!("/v2/apps/{id1}/integrations?filter[types]=custom"),
        &v2,
    )
    .await;
    let customs = ok(&customs, 200)["integrations"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(customs.len(), 1);
    let v2_hook = &customs[0]["webhooks"][0];
    assert_eq!(v2_hook["id"], hook["_id"]);
    assert_eq!(v2_hook["target"], "https://example.com/v1");
    assert_eq!(v2_hook["triggers"], json!(["message:appUser"]));
    assert_eq!(v2_hook["secret"], hook["secret"]);
    assert_eq!(v2_hook["includeFullUser"], true);
    assert_eq!(v2_hook["version"], "v1");
    let custom_of_v1 = customs[0]["id"].as_str().unwrap().to_owned();
    // Changed through v2, seen through v1.
    ok(
        &patch(
            &emulator,
            &format!("/v2/apps/{id1}/integrations/{custom_of_v1}/webhooks/{hook_id}"),
            &v2,
            json!({"target": "https://example.com/moved"}),
        )
        .await,
        200,
    );
    let seen = get(
        &emulator,
        &format!("/v1/apps/{id1}/webhooks/{hook_id}"),
        &v1,
    )
    .await;
    assert_eq!(
        ok(&seen, 200)["webhook"]["target"],
        "https://example.com/moved"
    );

    // A v2 custom integration's webhooks are v1 webhooks.
    let custom = post(
        &emulator,
        &format!("/v2/apps/{id1}/integrations"),
        &v2,
        custom_body("https://example.com/v2"),
    )
    .await;
    let custom = ok(&custom, 201)["integration"].clone();
    let custom_id = custom["id"].as_str().unwrap();
    let v2_hook_id = custom["webhooks"][0]["id"].as_str().unwrap();
    let listed = get(&emulator, &format!("/v1/apps/{id1}/webhooks"), &v1).await;
    let ids: Vec<&str> = ok(&listed, 200)["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [hook_id, v2_hook_id]);
    assert_eq!(
        listed.json["webhooks"][1]["target"],
        "https://example.com/v2"
    );
    // v1 never lists custom integrations as integrations.
    let v1_integrations = get(&emulator, &format!("/v1/apps/{id1}/integrations"), &v1).await;
    assert_eq!(
        ok(&v1_integrations, 200)["integrations"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Deleting the v1 webhook through v1 removes its custom integration.
    ok(
        &delete(
            &emulator,
            &format!("/v1/apps/{id1}/webhooks/{hook_id}"),
            &v1,
        )
        .await,
        200,
    );
    let answer = get(
        &emulator,
        &format!("/v2/apps/{id1}/integrations/{custom_of_v1}"),
        &v2,
    )
    .await;
    assert_v2_error(&answer, 404, "not_found", "Integration");
    // Deleting the v2 custom integration removes its webhooks from v1.
    ok(
        &delete(
            &emulator,
            &format!("/v2/apps/{id1}/integrations/{custom_id}"),
            &v2,
        )
        .await,
        200,
    );
    let listed = get(&emulator, &format!("/v1/apps/{id1}/webhooks"), &v1).await;
    assert_eq!(ok(&listed, 200)["webhooks"], json!([]));
    // Deleted through v2, gone from v1.
    ok(
        &delete(&emulator, &format!("/v2/apps/{id2}"), &v2).await,
        200,
    );
    assert_error(
        &get(&emulator, &format!("/v1/apps/{id2}"), &v1).await,
        404,
        "not_found",
        "App",
    );
}

#[tokio::test]
async fn a_state_file_from_before_v2_still_loads() {
    let dir = tempfile_dir();
    let path = dir.join("state.json");
    let old = json!({
        "format": 1,
        "makerKeyId": "app_maker",
        "makerSecret": "maker-secret-123",
        "apps": [{
            "app": {"_id": "5e5e5e5e5e5e5e5e5e5e5e5e", "appToken": "t0k3n", "name": "old"},
            "keys": [],
            "integrations": [],
            "webhooks": [{"_id": "6f6f6f6f6f6f6f6f6f6f6f6f", "target": "https://example.com/old",
                          "triggers": ["message"], "secret": "whsecret", "version": "v1"}],
        }],
    });
    std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
    let config = EmulatorConfig {
        state_file: Some(path.clone()),
        ..Default::default()
    };
    let mut seen_ids = Vec::new();
    for _ in 0..2 {
        let emulator = start_with(config.clone()).await;
        let auth = account(&emulator);
        let list = integrations(&emulator, "5e5e5e5e5e5e5e5e5e5e5e5e").await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["type"], "custom");
        assert_eq!(list[0]["webhooks"][0]["id"], "6f6f6f6f6f6f6f6f6f6f6f6f");
        seen_ids.push(list[0]["id"].clone());
        let app = get(&emulator, "/v2/apps/5e5e5e5e5e5e5e5e5e5e5e5e", &auth).await;
        assert_eq!(ok(&app, 200)["app"]["displayName"], "old");
        emulator.shutdown().await.unwrap();
    }
    assert_eq!(
        seen_ids[0], seen_ids[1],
        "the adopted integration keeps its id"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "smooch-emulator-v2-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
