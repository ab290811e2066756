//! Helpers shared by the emulator tests: start an emulator in-process and
//! talk to it with the crate's client or with raw HTTP.

#![allow(dead_code)]

use serde_json::Value;
use smooch::{Credentials, Sensitive, SmoochClient, Transport, TransportConfig};
use smooch_emulator::{self as emulator, EmulatorConfig, RunningEmulator};
use std::time::Duration;

pub async fn start() -> RunningEmulator {
    start_with(EmulatorConfig::default()).await
}

pub async fn start_with(config: EmulatorConfig) -> RunningEmulator {
    emulator::spawn(config).await.expect("the emulator starts")
}

/// A client that reports the first answer (no retries), so tests see
/// exactly what the emulator said.
pub fn client(
    emulator: &RunningEmulator,
    api_version: &str,
    credentials: &Credentials,
) -> SmoochClient {
    let transport = Transport::new(
        TransportConfig {
            base_url: emulator.base_url().to_owned(),
            api_version: api_version.to_owned(),
            request_timeout: Duration::from_secs(20),
            max_retries: 0,
            min_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            max_concurrency: 64,
            rate_limit_per_second: None,
        },
        None,
    )
    .expect("transport");
    SmoochClient::new(transport, credentials).expect("client")
}

pub fn maker(emulator: &RunningEmulator, api_version: &str) -> SmoochClient {
    client(
        emulator,
        api_version,
        &Credentials::Token(emulator.app_maker_token()),
    )
}

pub fn with_token(emulator: &RunningEmulator, token: &Sensitive) -> SmoochClient {
    client(emulator, "v1", &Credentials::Token(token.clone()))
}

/// A plain HTTP client for requests the typed client cannot make.
pub fn http() -> reqwest::Client {
    // reqwest is built without a bundled crypto provider (see Transport::new).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// An answer read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the emulator answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// Asserts status, Smooch's exact error shape, the code, and that the
/// description contains `needle`.
pub fn assert_error(answer: &Answer, status: u16, code: &str, needle: &str) {
    assert_eq!(answer.status, status, "status of {answer:?}");
    let error = answer
        .json
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no error object in {answer:?}"));
    assert_eq!(
        answer.json.as_object().map(|o| o.len()),
        Some(1),
        "{answer:?}"
    );
    assert_eq!(
        error.len(),
        2,
        "error has code and description only: {answer:?}"
    );
    assert_eq!(error["code"], code, "{answer:?}");
    let description = error["description"].as_str().expect("description");
    assert!(
        description.contains(needle),
        "description {description:?} should contain {needle:?}"
    );
    assert!(
        answer.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

/// Asserts status, v2's exact error shape
/// (`{"errors":[{"code","title"}]}`), the code, and that the title
/// contains `needle`.
pub fn assert_v2_error(answer: &Answer, status: u16, code: &str, needle: &str) {
    assert_eq!(answer.status, status, "status of {answer:?}");
    let object = answer
        .json
        .as_object()
        .unwrap_or_else(|| panic!("no JSON object in {answer:?}"));
    assert_eq!(object.len(), 1, "only `errors`: {answer:?}");
    let errors = object
        .get("errors")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no errors list in {answer:?}"));
    assert_eq!(errors.len(), 1, "{answer:?}");
    let error = errors[0].as_object().expect("error object");
    assert_eq!(error.len(), 2, "error has code and title only: {answer:?}");
    assert_eq!(error["code"], code, "{answer:?}");
    let title = error["title"].as_str().expect("title");
    assert!(
        title.contains(needle),
        "title {title:?} should contain {needle:?}"
    );
    assert!(
        answer.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}
