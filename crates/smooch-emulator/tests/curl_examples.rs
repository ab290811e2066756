//! Runs the primary document's curl examples as written, with `sh` and
//! `curl`, against the emulator. Only the host, the token and the example
//! ids are replaced (with a real URL, a real token and ids that exist);
//! answers must have the documented status and body shape.
//!
//! The document is read from the committed copy in `crates/smooch-emulator/tests/fixtures/`, so
//! the test does not depend on files outside the repository.

mod support;

use serde_json::Value;
use smooch::jwt::{self, Claims};
use smooch::models::{AppParams, IntegrationParams, SecretKey};
use smooch_emulator::RunningEmulator;
use std::collections::HashSet;
use support::{maker, start};

const DOCUMENT: &str = include_str!("fixtures/messaging-inside-api.md");

/// Ids used in the document's examples, replaced by ids that exist.
const DOC_APP: &str = "55c8d9758590aa1900b9b9f6";
const DOC_KEYS: [&str; 2] = [
    "app_5723a347f82ba0516cb4ea34",
    "app_5723a347f82ba0516cb4ea35",
];
/// messenger, twilio, telegram, line: the order of the documented list.
const DOC_INTEGRATIONS: [&str; 4] = [
    "5735dded48011972d621dc02",
    "5735ddf948011972d621dc08",
    "5735ddfb48011972d621dc09",
    "5735ddfd48011972d621dc0a",
];

/// One shell example and what the document says it answers.
#[derive(Debug)]
struct Example {
    heading: String,
    command: String,
    status: Option<u16>,
    body: Option<Value>,
}

/// Fenced blocks in order: (heading above, language, content).
fn fenced_blocks(markdown: &str) -> Vec<(String, String, String)> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut open: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut open, line.trim_start().strip_prefix("```")) {
            (None, Some(lang)) => open = Some((lang.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => {
                let (lang, content) = open.take().expect("open block");
                blocks.push((heading.clone(), lang, content));
            }
            (Some((_, content)), None) => {
                content.push_str(line);
                content.push('\n');
            }
            (None, None) => {
                if line.starts_with('#') {
                    heading = line.trim_start_matches('#').trim().to_owned();
                }
            }
        }
    }
    blocks
}

/// Each `shell` block with the status line and JSON body that follow it
/// (before the next `shell` block), when the document gives them.
fn examples(markdown: &str) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    for (heading, lang, content) in fenced_blocks(markdown) {
        match lang.as_str() {
            "shell" => examples.push(Example {
                heading,
                command: content.trim().to_owned(),
                status: None,
                body: None,
            }),
            "json" => {
                if let Some(example) = examples.last_mut().filter(|e| e.body.is_none()) {
                    example.body =
                        Some(serde_json::from_str(&content).expect("documented JSON parses"));
                }
            }
            "" => {
                let code = content
                    .trim()
                    .split(' ')
                    .next()
                    .and_then(|c| c.parse().ok());
                if let (Some(example), Some(code)) = (examples.last_mut(), code) {
                    example.status.get_or_insert(code);
                }
            }
            _ => {}
        }
    }
    examples
}

/// A fresh emulator holding what the examples refer to: one app ("My
/// App") with keys key1 and key2 and the four documented integrations.
struct Fixture {
    emulator: RunningEmulator,
    token: String,
    replacements: Vec<(String, String)>,
    keys: Vec<SecretKey>,
    /// Values the fixture was created with; answers must repeat them exactly.
    inputs: HashSet<String>,
    /// Ids of the fixture's objects; answers about them must carry them.
    ids: HashSet<String>,
}

async fn fixture() -> Fixture {
    let emulator = start().await;
    let smooch = maker(&emulator, "v1");
    let app = smooch
        .create_app(&AppParams {
            name: Some("My App".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut keys = Vec::new();
    for name in ["key1", "key2"] {
        keys.push(smooch.create_key(&app.id, name).await.unwrap());
    }
    let integrations = [
        IntegrationParams::Messenger {
            page_access_token: "your_access_token".into(),
            app_id: "your_fb_app_id".into(),
            app_secret: "your_fb_app_secret".into(),
        },
        IntegrationParams::Twilio {
            account_sid: "ACa1b4c65ee0722712fab89867cb14eac7".into(),
            auth_token: "160c024303f53049e1e060fd67ca6aefc".into(),
            phone_number_sid: "PN0674df0ecee0c9819bca0ff0bc0a159e".into(),
        },
        IntegrationParams::Telegram {
            token: "192033615:AAEuee2FS2JYKWfDlTulfygjaIGJi4s".into(),
        },
        IntegrationParams::Line {
            channel_id: "1462776483".into(),
            channel_secret: "04ee6a24c099d8e4e35f7f4d20".into(),
            mid: "uf0c0bc1813d372ac5af4c5b5faee9923".into(),
        },
    ];
    let mut replacements = vec![
        (
            "https://api.smooch.io".to_owned(),
            emulator.base_url().to_owned(),
        ),
        (
            "your-appmaker-token".to_owned(),
            emulator.app_maker_token().expose().to_owned(),
        ),
        (DOC_APP.to_owned(), app.id.clone()),
    ];
    for (doc, key) in DOC_KEYS.iter().zip(&keys) {
        replacements.push((doc.to_string(), key.id.clone()));
    }
    for (doc, params) in DOC_INTEGRATIONS.iter().zip(&integrations) {
        let created = smooch.create_integration(&app.id, params).await.unwrap();
        replacements.push((doc.to_string(), created.id));
    }
    let inputs = [
        "My App",
        "key1",
        "key2",
        "ACa1b4c65ee0722712fab89867cb14eac7",
        "PN0674df0ecee0c9819bca0ff0bc0a159e",
        "1462776483",
        "uf0c0bc1813d372ac5af4c5b5faee9923",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let ids = replacements
        .iter()
        .skip(2)
        .map(|(_, real)| real.clone())
        .collect();
    Fixture {
        token: emulator.app_maker_token().expose().to_owned(),
        emulator,
        replacements,
        keys,
        inputs,
        ids,
    }
}

fn replace_all(text: &str, replacements: &[(String, String)]) -> String {
    replacements
        .iter()
        .fold(text.to_owned(), |text, (from, to)| text.replace(from, to))
}

fn replace_in_json(value: &Value, replacements: &[(String, String)]) -> Value {
    match value {
        Value::String(s) => Value::String(replace_all(s, replacements)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| replace_in_json(v, replacements))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), replace_in_json(v, replacements)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Runs the command with `sh`, adding only flags that make curl report
/// the status after the body.
async fn run_curl(command: &str) -> (u16, String) {
    let script = format!("{command} -sS -w '\\n%{{http_code}}'");
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("sh runs");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8 answer");
    let (body, code) = stdout.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status code"), body.to_owned())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The answer has every documented field with the documented JSON type;
/// strings that the request or the fixture determine must be equal.
/// Extra fields (`status`, ...) are allowed.
fn assert_shape(documented: &Value, actual: &Value, exact: &HashSet<String>, at: &str) {
    assert_eq!(
        type_name(documented),
        type_name(actual),
        "type at {at}: {actual}"
    );
    match (documented, actual) {
        (Value::Object(doc), Value::Object(got)) => {
            for (name, doc_value) in doc {
                let got_value = got
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}.{name} missing in {actual}"));
                assert_shape(doc_value, got_value, exact, &format!("{at}.{name}"));
            }
        }
        (Value::Array(doc), Value::Array(got)) => {
            assert_eq!(doc.len(), got.len(), "length of {at}: {actual}");
            for (i, (d, g)) in doc.iter().zip(got).enumerate() {
                assert_shape(d, g, exact, &format!("{at}[{i}]"));
            }
        }
        (Value::String(doc), Value::String(got)) if exact.contains(doc) => {
            assert_eq!(doc, got, "value at {at}");
        }
        _ => {}
    }
}

/// Examples without a documented answer: what the emulator must do.
fn undocumented_expectation(example: &Example, body: &Value) -> u16 {
    if example.command.contains("/conversation") {
        // App users and conversations are outside the emulator (it serves
        // the App Maker API): a 404 with Smooch's error body.
        assert_eq!(body["error"]["code"], "not_found", "{body}");
        return 404;
    }
    if example.command.contains("/webhooks") {
        assert_eq!(body["webhook"]["target"], "http://example.com/callback");
        assert_eq!(body["webhook"]["triggers"], serde_json::json!(["message"]));
        return 201;
    }
    // "Using the App Maker Scoped Token": list apps.
    assert!(
        body["apps"].is_array() && body["hasMore"].is_boolean(),
        "{body}"
    );
    200
}

#[tokio::test]
async fn the_documented_curl_examples_work_as_written() {
    let examples = examples(DOCUMENT);
    assert_eq!(examples.len(), 18, "shell examples found: {examples:#?}");
    assert_eq!(examples.iter().filter(|e| e.status.is_some()).count(), 15);
    assert_eq!(examples.iter().filter(|e| e.body.is_some()).count(), 15);

    for example in &examples {
        let fixture = fixture().await;
        let command = replace_all(&example.command, &fixture.replacements);
        assert!(!command.contains("api.smooch.io") && command.contains(&fixture.token));
        let (status, text) = run_curl(&command).await;
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: answer is not JSON ({e}): {text}", example.heading));
        let heading = &example.heading;
        match (&example.status, &example.body) {
            (Some(documented_status), Some(documented_body)) => {
                assert_eq!(status, *documented_status, "{heading}: {text}");
                let mut exact = fixture.inputs.clone();
                // A created object has a new id, unlike the document's
                // example, which reuses the ids of its other examples.
                if *documented_status != 201 {
                    exact.extend(fixture.ids.iter().cloned());
                }
                exact.extend(
                    command
                        .split(['"', '\'', ' ', '/'])
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                );
                let documented = replace_in_json(documented_body, &fixture.replacements);
                assert_shape(&documented, &body, &exact, heading);
            }
            _ => {
                let expected = undocumented_expectation(example, &body);
                assert_eq!(status, expected, "{heading}: {text}");
            }
        }
        after_checks(heading, &fixture, &body).await;
        fixture.emulator.shutdown().await.unwrap();
    }
}

/// What the documented answers imply beyond their shape.
async fn after_checks(heading: &str, fixture: &Fixture, body: &Value) {
    let smooch = maker(&fixture.emulator, "v1");
    let app_id = &fixture.replacements[2].1;
    match heading {
        "Get JWT" => {
            let token = body["jwt"].as_str().expect("jwt");
            let key = &fixture.keys[0];
            assert_eq!(jwt::key_id_of(token).unwrap(), key.id);
            assert_eq!(jwt::verify(token, &key.secret).unwrap(), Claims::app());
        }
        "Delete Key" => {
            let keys = smooch.list_keys(app_id).await.unwrap();
            assert_eq!(keys, vec![fixture.keys[1].clone()]);
        }
        "Delete Integration" => {
            let left = smooch.list_integrations(app_id, &[]).await.unwrap();
            assert_eq!(left.len(), 3);
            assert!(left.iter().all(|i| i.id != fixture.replacements[5].1));
        }
        "Create Integration: Messenger" => {
            let text = body.to_string();
            assert!(!text.contains("your_access_token") && !text.contains("your_fb_app_secret"));
        }
        _ => {}
    }
}

#[test]
fn the_fixture_is_the_shared_reference_when_that_is_present() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/messaging-inside-api.md"
    );
    if let Ok(reference) = std::fs::read_to_string(shared) {
        assert_eq!(
            reference, DOCUMENT,
            "crates/smooch-emulator/tests/fixtures/messaging-inside-api.md is out of date"
        );
    }
}
