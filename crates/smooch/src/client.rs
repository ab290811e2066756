//! The Smooch API over HTTP: one surface, two API versions.
//!
//! A [`Transport`] (HTTP pool, retry policy, concurrency and rate limits,
//! call observer) is built once and shared; a [`SmoochClient`] is that
//! transport plus one credential, so the operator can hold one client per
//! app-maker credential without multiplying connections or limits.
//!
//! The methods are the same whichever version the transport speaks
//! ([`ApiVersion`]): the v1/v1.1 App Maker API is implemented here, the
//! Sunshine Conversations v2 API in `v2.rs`, and each public method
//! picks one. Callers see the same models either way; where v2 has no
//! equivalent the model says so (`App::app_token` is `None`, a webhook
//! lives in a custom integration: [`Webhook::handle`]).

use super::jwt::{self, Claims};
use super::models::*;
use super::{Sensitive, SmoochError};
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use url::Url;

pub type Result<T, E = SmoochError> = std::result::Result<T, E>;

/// How to authenticate.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A ready JWT (any scope).
    Token(Sensitive),
    /// A secret key from which the client signs its own JWT with the given claims.
    Key {
        key_id: String,
        secret: Sensitive,
        claims: Claims,
    },
}

impl Credentials {
    pub fn app_maker_key(key_id: impl Into<String>, secret: impl Into<Sensitive>) -> Self {
        Credentials::Key {
            key_id: key_id.into(),
            secret: secret.into(),
            claims: Claims::app_maker(),
        }
    }

    /// A stable, non-secret name for the credential (see `SmoochClient::account`).
    fn account(&self) -> String {
        match self {
            Credentials::Key { key_id, .. } => format!("key:{key_id}"),
            Credentials::Token(t) => {
                use sha2::{Digest, Sha256};
                let digest = Sha256::digest(t.expose().as_bytes());
                format!("token-sha256:{}", hex::encode(&digest[..8]))
            }
        }
    }

    fn bearer(&self) -> Result<Sensitive> {
        match self {
            Credentials::Token(t) => Ok(t.clone()),
            Credentials::Key {
                key_id,
                secret,
                claims,
            } => Ok(jwt::sign(key_id, secret, claims)?),
        }
    }
}

/// Which Smooch API the transport speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    /// The App Maker API (`/v1` or `/v1.1`): Bearer JWTs, `appMaker` scope.
    V1,
    /// Sunshine Conversations v2 (`/v2`): HTTP Basic or Bearer, cursor paging.
    V2,
}

impl ApiVersion {
    /// The path prefix of this version (`v1`; `v1.1` is the same API).
    pub fn prefix(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }

    /// `v2` is v2; `v1` and `v1.1` (path prefixes of the same API) are v1.
    pub fn of_prefix(prefix: &str) -> ApiVersion {
        if prefix == "v2" {
            ApiVersion::V2
        } else {
            ApiVersion::V1
        }
    }
}

/// What goes in the `Authorization` header.
#[derive(Clone, Debug)]
enum Authorization {
    Bearer(Sensitive),
    Basic { key_id: String, secret: Sensitive },
}

/// Sees every attempt the client makes (for metrics).
pub trait CallObserver: Send + Sync {
    /// `status` is `None` when no answer came (timeout, connection error).
    fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        status: Option<u16>,
        elapsed: Duration,
    );
}

#[derive(Clone, Debug)]
pub struct TransportConfig {
    pub base_url: String,
    /// Path prefix version: `v1`, `v1.1` (the App Maker API) or `v2`
    /// (Sunshine Conversations).
    pub api_version: String,
    pub request_timeout: Duration,
    /// Retries after the first attempt, for transient failures.
    pub max_retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Calls in flight at once, across every client sharing the transport.
    pub max_concurrency: usize,
    /// Calls started per second; `None` for no limit.
    pub rate_limit_per_second: Option<NonZeroU32>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            base_url: "https://api.smooch.io".into(),
            api_version: "v1".into(),
            request_timeout: Duration::from_secs(15),
            max_retries: 4,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_concurrency: 16,
            rate_limit_per_second: None,
        }
    }
}

pub struct Transport {
    http: reqwest::Client,
    base: Url,
    api_version: String,
    version: ApiVersion,
    backoff: ExponentialBuilder,
    in_flight: Semaphore,
    rate_limiter: Option<DefaultDirectRateLimiter>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base.as_str())
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(
        config: TransportConfig,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Result<Arc<Self>> {
        // reqwest is built without a bundled crypto provider; use ring, as kube does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(&config.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| SmoochError::BaseUrl(config.base_url.clone()))?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("smooch-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SmoochError::Connect {
                method: "-",
                route: "-",
                reason: e.to_string(),
            })?;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(config.min_backoff)
            .with_max_delay(config.max_backoff)
            .with_max_times(config.max_retries);
        if !config.min_backoff.is_zero() {
            backoff = backoff.with_jitter();
        }
        Ok(Arc::new(Transport {
            http,
            base,
            version: ApiVersion::of_prefix(&config.api_version),
            api_version: config.api_version,
            backoff,
            in_flight: Semaphore::new(config.max_concurrency.max(1)),
            rate_limiter: config
                .rate_limit_per_second
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
            observer,
        }))
    }

    /// The API version this transport speaks.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("checked in Transport::new");
            path.pop_if_empty().push(&self.api_version);
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }
}

/// One credential on a shared transport. Cheap to clone.
#[derive(Clone)]
pub struct SmoochClient {
    pub(crate) transport: Arc<Transport>,
    authorization: Authorization,
    account: String,
}

impl std::fmt::Debug for SmoochClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmoochClient")
            .field("transport", &self.transport)
            .field("authorization", &self.authorization)
            .field("account", &self.account)
            .finish()
    }
}

/// A request to make: what it is for metrics and messages, and where it goes.
pub(crate) struct Call<'a, B> {
    pub(crate) method: Method,
    pub(crate) method_name: &'static str,
    pub(crate) route: &'static str,
    pub(crate) segments: Vec<&'a str>,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<&'a B>,
}

impl SmoochClient {
    /// A client calling with `credentials`. Under v2 a key is sent as HTTP
    /// Basic (key id and secret, as v2 documents it) and a token as Bearer;
    /// under v1 a key signs a JWT with its claims.
    pub fn new(transport: Arc<Transport>, credentials: &Credentials) -> Result<Self> {
        let authorization = match (transport.version(), credentials) {
            (ApiVersion::V2, Credentials::Key { key_id, secret, .. }) => Authorization::Basic {
                key_id: key_id.clone(),
                secret: secret.clone(),
            },
            _ => Authorization::Bearer(credentials.bearer()?),
        };
        Ok(SmoochClient {
            transport,
            authorization,
            account: credentials.account(),
        })
    }

    /// The API version this client speaks.
    pub fn version(&self) -> ApiVersion {
        self.transport.version()
    }

    /// Which credential this client calls with, without revealing it: the
    /// key id, or a digest of a ready-made token. Two clients with the same
    /// account see the same apps.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Sends a call, retrying transient failures with capped exponential
    /// backoff and jitter, and never sooner than the server's `Retry-After`.
    pub(crate) async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        call: Call<'_, B>,
    ) -> Result<T> {
        // A call that changes something is not sent from a reads-only
        // scope (a re-check): the caller hands the work to its controller.
        if call.method != Method::GET && crate::scope::refuse(call.method_name, call.route) {
            return Err(SmoochError::Refused {
                method: call.method_name,
                route: call.route,
            });
        }
        let attempt = || self.attempt::<B, T>(&call);
        attempt
            .retry(self.transport.backoff)
            .when(|e| retry_is_safe(&call.method, e))
            .adjust(|e, delay| delay.map(|d| e.retry_after().map_or(d, |ra| ra.max(d))))
            .await
    }

    async fn attempt<B: Serialize, T: DeserializeOwned>(&self, call: &Call<'_, B>) -> Result<T> {
        let transport = &self.transport;
        if let Some(limiter) = &transport.rate_limiter {
            limiter.until_ready().await;
        }
        let _permit = transport
            .in_flight
            .acquire()
            .await
            .expect("semaphore is never closed");
        let url = transport.url(&call.segments, &call.query);
        let mut request = transport
            .http
            .request(call.method.clone(), url)
            .header("accept", "application/json");
        request = match &self.authorization {
            Authorization::Bearer(token) => request.bearer_auth(token.expose()),
            Authorization::Basic { key_id, secret } => {
                request.basic_auth(key_id, Some(secret.expose()))
            }
        };
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let started = Instant::now();
        let outcome = request.send().await;
        let (method, route) = (call.method_name, call.route);
        let response = match outcome {
            Ok(r) => r,
            Err(e) => {
                if let Some(o) = &transport.observer {
                    o.observe(method, route, None, started.elapsed());
                }
                return Err(transport_error(method, route, e));
            }
        };
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let bytes = response.bytes().await;
        if let Some(o) = &transport.observer {
            o.observe(method, route, Some(status.as_u16()), started.elapsed());
        }
        let bytes = bytes.map_err(|e| transport_error(method, route, e))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| SmoochError::Decode {
                method,
                route,
                status: status.as_u16(),
                reason: e.to_string(),
            })
        } else {
            Err(api_error(method, route, status, &bytes, retry_after))
        }
    }

    pub(crate) fn call<'a, B>(
        &self,
        method: Method,
        route: &'static str,
        segments: Vec<&'a str>,
    ) -> Call<'a, B> {
        let method_name = match method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            _ => "OTHER",
        };
        Call {
            method,
            method_name,
            route,
            segments,
            query: Vec::new(),
            body: None,
        }
    }

    // ---- apps ----

    pub async fn create_app(&self, params: &AppParams) -> Result<App> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::create_app(self, params).await;
        }
        let mut call = self.call(Method::POST, "/apps", vec!["apps"]);
        call.body = Some(params);
        Ok(self.send::<_, AppEnvelope>(call).await?.app)
    }

    /// One page of apps by offset (v1 only: v2 pages by cursor, which
    /// [`SmoochClient::list_all_apps`] walks).
    pub async fn list_apps(&self, limit: Option<u32>, offset: Option<u64>) -> Result<AppList> {
        if self.version() == ApiVersion::V2 {
            return Err(SmoochError::Unsupported {
                operation: "offset paging of apps",
            });
        }
        let mut call = self.call::<()>(Method::GET, "/apps", vec!["apps"]);
        if let Some(limit) = limit {
            call.query.push(("limit", limit.to_string()));
        }
        if let Some(offset) = offset {
            call.query.push(("offset", offset.to_string()));
        }
        self.send(call).await
    }

    /// Every app, following `hasMore` pages of the maximum size.
    pub async fn list_all_apps(&self) -> Result<Vec<App>> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::list_all_apps(self).await;
        }
        let mut apps = Vec::new();
        loop {
            let page = self.list_apps(Some(100), Some(apps.len() as u64)).await?;
            let got = page.apps.len();
            apps.extend(page.apps);
            if !page.has_more || got == 0 {
                return Ok(apps);
            }
        }
    }

    pub async fn get_app(&self, app_id: &str) -> Result<App> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::get_app(self, app_id).await;
        }
        let call = self.call::<()>(Method::GET, "/apps/{appId}", vec!["apps", app_id]);
        Ok(self.send::<_, AppEnvelope>(call).await?.app)
    }

    pub async fn update_app(&self, app_id: &str, params: &AppParams) -> Result<App> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::update_app(self, app_id, params).await;
        }
        let mut call = self.call(Method::PUT, "/apps/{appId}", vec!["apps", app_id]);
        call.body = Some(params);
        Ok(self.send::<_, AppEnvelope>(call).await?.app)
    }

    pub async fn delete_app(&self, app_id: &str) -> Result<()> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::delete_app(self, app_id).await;
        }
        let call = self.call::<()>(Method::DELETE, "/apps/{appId}", vec!["apps", app_id]);
        self.send::<_, serde_json::Value>(call).await.map(drop)
    }

    // ---- keys ----

    pub async fn create_key(&self, app_id: &str, name: &str) -> Result<SecretKey> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::create_key(self, app_id, name).await;
        }
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
        }
        let body = Body { name };
        let mut call = self.call(
            Method::POST,
            "/apps/{appId}/keys",
            vec!["apps", app_id, "keys"],
        );
        call.body = Some(&body);
        Ok(self.send::<_, KeyEnvelope>(call).await?.key)
    }

    pub async fn list_keys(&self, app_id: &str) -> Result<Vec<SecretKey>> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::list_keys(self, app_id).await;
        }
        let call = self.call::<()>(
            Method::GET,
            "/apps/{appId}/keys",
            vec!["apps", app_id, "keys"],
        );
        Ok(self.send::<_, KeyListEnvelope>(call).await?.keys)
    }

    pub async fn get_key(&self, app_id: &str, key_id: &str) -> Result<SecretKey> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::get_key(self, app_id, key_id).await;
        }
        let call = self.call::<()>(
            Method::GET,
            "/apps/{appId}/keys/{keyId}",
            vec!["apps", app_id, "keys", key_id],
        );
        Ok(self.send::<_, KeyEnvelope>(call).await?.key)
    }

    pub async fn delete_key(&self, app_id: &str, key_id: &str) -> Result<()> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::delete_key(self, app_id, key_id).await;
        }
        let call = self.call::<()>(
            Method::DELETE,
            "/apps/{appId}/keys/{keyId}",
            vec!["apps", app_id, "keys", key_id],
        );
        self.send::<_, serde_json::Value>(call).await.map(drop)
    }

    /// `GET .../keys/{keyId}/jwt` (v1 only; v2 has no such endpoint: see
    /// [`SmoochClient::app_jwt`]).
    pub async fn get_key_jwt(&self, app_id: &str, key_id: &str) -> Result<Sensitive> {
        if self.version() == ApiVersion::V2 {
            return Err(SmoochError::Unsupported {
                operation: "GET /apps/{appId}/keys/{keyId}/jwt",
            });
        }
        let call = self.call::<()>(
            Method::GET,
            "/apps/{appId}/keys/{keyId}/jwt",
            vec!["apps", app_id, "keys", key_id, "jwt"],
        );
        Ok(self.send::<_, JwtEnvelope>(call).await?.jwt)
    }

    /// An app-scoped JWT for `key`: v1 asks Smooch for one; v2 has no such
    /// endpoint, so it is signed here as Smooch documents it (HS256, `kid`
    /// the key id, `scope: app`).
    pub async fn app_jwt(&self, app_id: &str, key: &SecretKey) -> Result<Sensitive> {
        match self.version() {
            ApiVersion::V1 => self.get_key_jwt(app_id, &key.id).await,
            ApiVersion::V2 => Ok(jwt::sign(&key.id, &key.secret, &Claims::app())?),
        }
    }

    // ---- integrations ----

    pub async fn create_integration(
        &self,
        app_id: &str,
        params: &IntegrationParams,
    ) -> Result<Integration> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::create_integration(self, app_id, params).await;
        }
        let mut call = self.call(
            Method::POST,
            "/apps/{appId}/integrations",
            vec!["apps", app_id, "integrations"],
        );
        call.body = Some(params);
        Ok(self.send::<_, IntegrationEnvelope>(call).await?.integration)
    }

    /// Lists integrations, only of `types` when it is not empty.
    pub async fn list_integrations(
        &self,
        app_id: &str,
        types: &[IntegrationType],
    ) -> Result<Vec<Integration>> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::list_integrations(self, app_id, types).await;
        }
        let mut call = self.call::<()>(
            Method::GET,
            "/apps/{appId}/integrations",
            vec!["apps", app_id, "integrations"],
        );
        if !types.is_empty() {
            let joined = types
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(",");
            call.query.push(("types", joined));
        }
        Ok(self
            .send::<_, IntegrationListEnvelope>(call)
            .await?
            .integrations)
    }

    pub async fn get_integration(&self, app_id: &str, integration_id: &str) -> Result<Integration> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::get_integration(self, app_id, integration_id).await;
        }
        let call = self.call::<()>(
            Method::GET,
            "/apps/{appId}/integrations/{integrationId}",
            vec!["apps", app_id, "integrations", integration_id],
        );
        Ok(self.send::<_, IntegrationEnvelope>(call).await?.integration)
    }

    pub async fn delete_integration(&self, app_id: &str, integration_id: &str) -> Result<()> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::delete_integration(self, app_id, integration_id).await;
        }
        let call = self.call::<()>(
            Method::DELETE,
            "/apps/{appId}/integrations/{integrationId}",
            vec!["apps", app_id, "integrations", integration_id],
        );
        self.send::<_, serde_json::Value>(call).await.map(drop)
    }

    // ---- webhooks ----

    pub async fn create_webhook(&self, app_id: &str, params: &WebhookParams) -> Result<Webhook> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::create_webhook(self, app_id, params).await;
        }
        let mut call = self.call(
            Method::POST,
            "/apps/{appId}/webhooks",
            vec!["apps", app_id, "webhooks"],
        );
        call.body = Some(params);
        Ok(self.send::<_, WebhookEnvelope>(call).await?.webhook)
    }

    pub async fn list_webhooks(&self, app_id: &str) -> Result<Vec<Webhook>> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::list_webhooks(self, app_id).await;
        }
        let call = self.call::<()>(
            Method::GET,
            "/apps/{appId}/webhooks",
            vec!["apps", app_id, "webhooks"],
        );
        Ok(self.send::<_, WebhookListEnvelope>(call).await?.webhooks)
    }

    pub async fn get_webhook(&self, app_id: &str, webhook_id: &str) -> Result<Webhook> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::get_webhook(self, app_id, webhook_id).await;
        }
        let call = self.call::<()>(
            Method::GET,
            "/apps/{appId}/webhooks/{webhookId}",
            vec!["apps", app_id, "webhooks", webhook_id],
        );
        Ok(self.send::<_, WebhookEnvelope>(call).await?.webhook)
    }

    pub async fn update_webhook(
        &self,
        app_id: &str,
        webhook_id: &str,
        params: &WebhookParams,
    ) -> Result<Webhook> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::update_webhook(self, app_id, webhook_id, params).await;
        }
        let mut call = self.call(
            Method::PUT,
            "/apps/{appId}/webhooks/{webhookId}",
            vec!["apps", app_id, "webhooks", webhook_id],
        );
        call.body = Some(params);
        Ok(self.send::<_, WebhookEnvelope>(call).await?.webhook)
    }

    pub async fn delete_webhook(&self, app_id: &str, webhook_id: &str) -> Result<()> {
        if self.version() == ApiVersion::V2 {
            return crate::v2::delete_webhook(self, app_id, webhook_id).await;
        }
        let call = self.call::<()>(
            Method::DELETE,
            "/apps/{appId}/webhooks/{webhookId}",
            vec!["apps", app_id, "webhooks", webhook_id],
        );
        self.send::<_, serde_json::Value>(call).await.map(drop)
    }
}

/// Whether a failed call may be sent again. A create (POST) is retried only
/// when Smooch surely did not act on it (rate limited, unavailable, or the
/// connection never opened); otherwise the reconciler observes again before
/// it creates, so a retry can never make a duplicate.
fn retry_is_safe(method: &Method, error: &SmoochError) -> bool {
    if !error.is_transient() {
        return false;
    }
    if *method != Method::POST {
        return true;
    }
    matches!(error.status(), Some(429) | Some(503)) || matches!(error, SmoochError::Connect { .. })
}

fn transport_error(
    method: &'static str,
    route: &'static str,
    error: reqwest::Error,
) -> SmoochError {
    if error.is_timeout() {
        SmoochError::Timeout { method, route }
    } else {
        // The route already says where; the URL would only repeat it.
        let reason = if error.is_connect() {
            "connection failed".to_string()
        } else {
            error.without_url().to_string()
        };
        SmoochError::Connect {
            method,
            route,
            reason,
        }
    }
}

fn api_error(
    method: &'static str,
    route: &'static str,
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> SmoochError {
    // v1: `{"error": {code, description}}`; v2: `{"errors": [{code, title}]}`.
    let v2_first = || {
        serde_json::from_slice::<crate::v2::ErrorsBody>(body)
            .ok()
            .and_then(|b| b.errors.into_iter().next())
    };
    let (code, description) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => (b.error.code, b.error.description),
        Err(_) if let Some(e) = v2_first() => (e.code, e.title),
        Err(_) => (
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_lowercase()
                .replace(' ', "_"),
            "no Smooch error body".to_string(),
        ),
    };
    SmoochError::Api {
        method,
        route,
        status: status.as_u16(),
        code,
        description,
        retry_after,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Smooch).
fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> SmoochError {
        SmoochError::Api {
            method: "POST",
            route: "/apps",
            status,
            code: "x".into(),
            description: "y".into(),
            retry_after: None,
        }
    }

    #[test]
    fn creates_are_retried_only_when_surely_not_applied() {
        assert!(retry_is_safe(&Method::POST, &api(429)));
        assert!(retry_is_safe(&Method::POST, &api(503)));
        assert!(!retry_is_safe(&Method::POST, &api(500)));
        assert!(!retry_is_safe(
            &Method::POST,
            &SmoochError::Timeout {
                method: "POST",
                route: "/apps"
            }
        ));
        assert!(retry_is_safe(&Method::GET, &api(500)));
        assert!(!retry_is_safe(&Method::GET, &api(404)));
        assert!(!retry_is_safe(&Method::PUT, &api(400)));
    }

    #[test]
    fn permanent_and_transient_statuses() {
        for s in [400, 401, 403, 404, 409] {
            assert!(!api(s).is_transient(), "{s}");
        }
        for s in [429, 500, 502, 503, 504] {
            assert!(api(s).is_transient(), "{s}");
        }
    }

    #[test]
    fn error_body_is_kept() {
        let e = api_error(
            "GET",
            "/apps/{appId}",
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"not_found","description":"App not found"}}"#,
            None,
        );
        assert_eq!(e.code(), "not_found");
        assert_eq!(
            e.to_string(),
            "Smooch GET /apps/{appId} answered 404 not_found: App not found"
        );
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn debug_never_shows_the_bearer() {
        let transport = Transport::new(TransportConfig::default(), None).unwrap();
        let client = SmoochClient::new(
            transport,
            &Credentials::app_maker_key("app_0123456789abcdef01234567", "supersecretvalue"),
        )
        .unwrap();
        let printed = format!("{client:?}");
        assert!(printed.contains("[REDACTED]"));
        assert!(!printed.contains("supersecretvalue"));
        assert!(!printed.contains("eyJ"));
    }

    #[test]
    fn urls_escape_ids_and_keep_the_base_path() {
        let transport = Transport::new(
            TransportConfig {
                base_url: "http://127.0.0.1:9/prefix/".into(),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let url = transport.url(&["apps", "a/b?c"], &[("limit", "5".into())]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/v1/apps/a%2Fb%3Fc?limit=5"
        );
    }
}
