//! Smooch's own published client libraries drive the emulator over real
//! HTTP: PyPI `smooch` 5.34.0 and npm `smooch-core` 8.11.4 (v1.1), PyPI and
//! npm `sunshine-conversations-client` 17.0.1 / 14.1.0 (v2). Each test starts
//! an emulator, runs one script of `tests/clients/` with `python3` or `node`
//! (the script fails on any unexpected answer and prints a JSON summary),
//! then checks the summary and the emulator's state over its API.
//!
//! The clients are installed by `hack/clients.sh` (cached outside the
//! repository), which prints `export SMOOCH_CLIENTS_DIR=...`; `hack/test.sh`
//! runs it. Without that variable these tests fail: they never skip.

mod support;

use serde_json::{Value, json};
use smooch_emulator::RunningEmulator;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use support::{Answer, http, send, start};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn clients_dir() -> PathBuf {
    let dir = std::env::var_os("SMOOCH_CLIENTS_DIR")
        .map(PathBuf::from)
        .expect(
            "SMOOCH_CLIENTS_DIR is not set: install Smooch's official clients with \
         `eval \"$(hack/clients.sh)\"` (hack/test.sh does it) and run the tests again",
        );
    for part in ["python/smooch", "node/node_modules/smooch-core"] {
        assert!(
            dir.join(part).is_dir(),
            "SMOOCH_CLIENTS_DIR={} has no {part}: run hack/clients.sh again",
            dir.display()
        );
    }
    dir
}

/// Runs `tests/clients/<script>` with the official clients on its path and
/// the given environment; returns the JSON object it printed last.
async fn run_script(script: &str, env: &[(&str, &str)]) -> Value {
    let clients = clients_dir();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let interpreter = if script.ends_with(".py") {
        "python3"
    } else {
        "node"
    };
    let mut command = tokio::process::Command::new(interpreter);
    command
        .arg(&path)
        .env("PYTHONPATH", clients.join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1")
        .env("NODE_PATH", clients.join("node/node_modules"))
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish in {SCRIPT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("cannot run {interpreter} {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stderr\n{stderr}\n--- stdout\n{stdout}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script} printed no JSON summary ({e}):\n{stdout}\n{stderr}"))
}

fn str_of<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

/// GET with the app-maker JWT (v1) or the account key's Basic auth (v2).
async fn get(emulator: &RunningEmulator, path: &str) -> Answer {
    let request = http().get(format!("{}{path}", emulator.base_url()));
    let request = if path.starts_with("/v2") {
        request.basic_auth(
            emulator.maker_key_id(),
            Some(emulator.maker_secret().expose()),
        )
    } else {
        request.bearer_auth(emulator.app_maker_token().expose())
    };
    send(request).await
}

async fn maker_post(emulator: &RunningEmulator, path: &str, body: Value) -> Value {
    let answer = send(
        http()
            .post(format!("{}{path}", emulator.base_url()))
            .bearer_auth(emulator.app_maker_token().expose())
            .json(&body),
    )
    .await;
    assert_eq!(answer.status, 201, "POST {path}: {}", answer.text);
    answer.json
}

fn ids_of(list: &Value, field: &str, id: &str) -> Vec<String> {
    let mut ids: Vec<String> = list[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} list in {list}"))
        .iter()
        .map(|item| item[id].as_str().expect("an id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// What a v1 script left behind: the app (renamed), one telegram
/// integration, one webhook; its deleted app and key are gone.
async fn check_v1_leftovers(emulator: &RunningEmulator, out: &Value, name: &str, target: &str) {
    let app_id = str_of(out, "/app_id");
    let app = get(emulator, &format!("/v1/apps/{app_id}")).await;
    assert_eq!(app.status, 200, "{}", app.text);
    assert_eq!(app.json["app"]["name"], name);
    let integrations = get(emulator, &format!("/v1/apps/{app_id}/integrations")).await;
    assert_eq!(
        ids_of(&integrations.json, "integrations", "_id"),
        [str_of(out, "/integrations/telegram")]
    );
    let webhooks = get(emulator, &format!("/v1/apps/{app_id}/webhooks")).await;
    assert_eq!(
        ids_of(&webhooks.json, "webhooks", "_id"),
        [str_of(out, "/webhook_id")]
    );
    assert_eq!(webhooks.json["webhooks"][0]["target"], target);
    if let Some(deleted) = out.get("deleted_app_id").and_then(Value::as_str) {
        let gone = get(emulator, &format!("/v1/apps/{deleted}")).await;
        assert_eq!(gone.status, 404, "{}", gone.text);
    }
    if let Some(key) = out.get("key_id").and_then(Value::as_str) {
        let gone = get(emulator, &format!("/v1/apps/{app_id}/keys/{key}")).await;
        assert_eq!(gone.status, 404, "{}", gone.text);
    }
}

// ---------- v1: PyPI smooch 5.34.0 ----------

#[tokio::test]
async fn pypi_smooch_v1_apps_keys_integrations_webhooks_and_errors() {
    let emulator = start().await;
    let token = emulator.app_maker_token();
    let out = run_script(
        "py_smooch_v1.py",
        &[
            ("SMOOCH_URL", emulator.base_url()),
            ("SMOOCH_TOKEN", token.expose()),
        ],
    )
    .await;
    assert_eq!(out["missing_app"]["code"], "not_found");
    assert_eq!(out["bad_token"]["code"], "unauthorized");
    assert_eq!(out["line_without_mid"]["code"], "bad_request");
    check_v1_leftovers(
        &emulator,
        &out,
        "py-v1 renamed",
        "https://example.com/py-hook-2",
    )
    .await;
    emulator.shutdown().await.expect("shutdown");
}

// ---------- v1.1: npm smooch-core 8.11.4 ----------

/// Scope `account` (what the v1.1 clients call the app maker's scope):
/// every path under `/v1.1/apps/{appId}`.
#[tokio::test]
async fn npm_smooch_core_account_scope() {
    let emulator = start().await;
    let out = run_script(
        "js_smooch_core_v1.js",
        &[
            ("SMOOCH_URL", emulator.base_url()),
            ("SMOOCH_MODE", "account"),
            ("SMOOCH_KEY_ID", emulator.maker_key_id()),
            ("SMOOCH_SECRET", emulator.maker_secret().expose()),
        ],
    )
    .await;
    assert_eq!(out["missing_app"]["status"], 404);
    assert_eq!(out["bad_secret"]["status"], 401);
    assert_eq!(out["deleted_key"]["status"], 401);
    check_v1_leftovers(
        &emulator,
        &out,
        "sc-v1 renamed",
        "https://example.com/sc-hook-2",
    )
    .await;
    emulator.shutdown().await.expect("shutdown");
}

/// Scope `app`, signed by an app's key: integrations under
/// `/v1.1/apps/{appId}`, webhooks on the short path `/v1.1/webhooks`.
#[tokio::test]
async fn npm_smooch_core_app_scope_short_paths() {
    let emulator = start().await;
    let app = maker_post(&emulator, "/v1/apps", json!({"name": "sc app"})).await;
    let other = maker_post(&emulator, "/v1/apps", json!({"name": "sc other"})).await;
    let app_id = str_of(&app, "/app/_id");
    let key = maker_post(
        &emulator,
        &format!("/v1/apps/{app_id}/keys"),
        json!({"name": "sc key"}),
    )
    .await;
    let out = run_script(
        "js_smooch_core_v1.js",
        &[
            ("SMOOCH_URL", emulator.base_url()),
            ("SMOOCH_MODE", "app"),
            ("SMOOCH_APP_ID", app_id),
            ("SMOOCH_OTHER_APP_ID", str_of(&other, "/app/_id")),
            ("SMOOCH_KEY_ID", str_of(&key, "/key/_id")),
            ("SMOOCH_SECRET", str_of(&key, "/key/secret")),
        ],
    )
    .await;
    for (case, status) in [
        ("other_app", 403),
        ("keys", 403),
        ("apps", 403),
        ("missing_integration", 404),
        ("bad_secret", 401),
    ] {
        assert_eq!(out[case]["status"], status, "{case}: {out}");
    }
    check_v1_leftovers(&emulator, &out, "sc app", "https://example.com/sc-hook-2").await;
    let other_id = str_of(&other, "/app/_id");
    let untouched = get(&emulator, &format!("/v1/apps/{other_id}/integrations")).await;
    assert_eq!(untouched.json["integrations"], json!([]));
    emulator.shutdown().await.expect("shutdown");
}

// ---------- v2: sunshine-conversations-client ----------

/// What a v2 script left behind: the app renamed, its key, telegram,
/// messenger and custom integrations (twilio, line deleted), one webhook on
/// the custom integration; 4 apps in all.
async fn check_v2_leftovers(emulator: &RunningEmulator, out: &Value, name: &str, target: &str) {
    let app_id = str_of(out, "/app_id");
    let app = get(emulator, &format!("/v2/apps/{app_id}")).await;
    assert_eq!(app.status, 200, "{}", app.text);
    assert_eq!(app.json["app"]["displayName"], name);
    let apps = get(emulator, "/v2/apps?page[size]=100").await;
    assert_eq!(
        apps.json["apps"].as_array().map(Vec::len),
        Some(4),
        "{}",
        apps.text
    );
    let gone = get(
        emulator,
        &format!("/v2/apps/{}", str_of(out, "/deleted_app_id")),
    )
    .await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    let keys = get(emulator, &format!("/v2/apps/{app_id}/keys")).await;
    assert_eq!(
        ids_of(&keys.json, "keys", "id"),
        [str_of(out, "/key_id")],
        "{}",
        keys.text
    );
    let integrations = get(emulator, &format!("/v2/apps/{app_id}/integrations")).await;
    let mut expected: Vec<&str> = ["telegram", "messenger", "custom"]
        .iter()
        .map(|kind| str_of(out, &format!("/integrations/{kind}")))
        .collect();
    expected.sort();
    assert_eq!(
        ids_of(&integrations.json, "integrations", "id"),
        expected,
        "{}",
        integrations.text
    );
    let custom = str_of(out, "/integrations/custom");
    let webhooks = get(
        emulator,
        &format!("/v2/apps/{app_id}/integrations/{custom}/webhooks"),
    )
    .await;
    assert_eq!(
        ids_of(&webhooks.json, "webhooks", "id"),
        [str_of(out, "/webhook_id")],
        "{}",
        webhooks.text
    );
    assert_eq!(webhooks.json["webhooks"][0]["target"], target);
}

fn check_v2_errors(out: &Value) {
    for (case, status) in [
        ("not_found", 404),
        ("unauthorized", 401),
        ("forbidden", 403),
        ("bad_request", 400),
    ] {
        assert_eq!(out[case]["status"], status, "{case}: {out}");
        assert!(
            out[case]["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{case}: no errors[0].title in {out}"
        );
    }
}

#[tokio::test]
async fn pypi_sunshine_conversations_v2() {
    let emulator = start().await;
    let out = run_script(
        "py_sunshine_v2.py",
        &[
            ("SMOOCH_URL", emulator.base_url()),
            ("SMOOCH_KEY_ID", emulator.maker_key_id()),
            ("SMOOCH_SECRET", emulator.maker_secret().expose()),
        ],
    )
    .await;
    // page={"size": 2, "after": ...}: three pages of 2, 2 and 1.
    assert_eq!(
        out["app_pages"]
            .as_array()
            .map(|pages| pages.iter().map(|p| p.as_array().map_or(0, Vec::len)))
            .map(Iterator::collect::<Vec<_>>),
        Some(vec![2, 2, 1])
    );
    check_v2_errors(&out);
    check_v2_leftovers(
        &emulator,
        &out,
        "py-v2 renamed",
        "https://example.com/py-v2-c",
    )
    .await;
    emulator.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn npm_sunshine_conversations_v2() {
    let emulator = start().await;
    let out = run_script(
        "js_sunshine_v2.js",
        &[
            ("SMOOCH_URL", emulator.base_url()),
            ("SMOOCH_KEY_ID", emulator.maker_key_id()),
            ("SMOOCH_SECRET", emulator.maker_secret().expose()),
        ],
    )
    .await;
    // page[size]=2, then page[after]= alone (default size): 2, then 3.
    assert_eq!(
        out["app_pages"]
            .as_array()
            .map(|pages| pages.iter().map(|p| p.as_array().map_or(0, Vec::len)))
            .map(Iterator::collect::<Vec<_>>),
        Some(vec![2, 3])
    );
    check_v2_errors(&out);
    check_v2_leftovers(
        &emulator,
        &out,
        "js-v2 renamed",
        "https://example.com/js-v2-c",
    )
    .await;
    emulator.shutdown().await.expect("shutdown");
}
