//! The Sunshine Conversations v2 side of [`SmoochClient`]: the same
//! operations as v1, on v2's paths, bodies and paging, answered with the
//! crate's models.
//!
//! What differs from v1, and how it is bridged:
//! - `name` is `displayName`, `_id` is `id`; apps have no app token;
//! - `PATCH` instead of `PUT`;
//! - lists of apps and integrations are paged by cursor (`page[after]`,
//!   `page[size]` up to 100, `meta.hasMore`/`meta.afterCursor`), walked
//!   here to the end;
//! - a webhook lives in a `custom` integration: creating one creates the
//!   integration with the webhook in it, deleting one deletes the
//!   integration, and [`Webhook::handle`] is the integration's id;
//!   `includeClient`/`includeFullAppUser` are `includeFullSource`/
//!   `includeFullUser`, and v1 trigger names become v2's ([`v2_trigger`]);
//! - LINE has no `mid`;
//! - errors are `{"errors": [{code, title}]}` (read by the shared error
//!   decoding in `client.rs`).

use super::client::{Result, SmoochClient};
use super::models::*;
use super::{Sensitive, SmoochError};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Largest page v2 serves.
const PAGE_SIZE: &str = "100";

/// v2's error body.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorsBody {
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorItem {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppV2 {
    id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    settings: Option<AppSettings>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

impl From<AppV2> for App {
    fn from(a: AppV2) -> App {
        App {
            id: a.id,
            app_token: None,
            name: a.display_name,
            settings: a.settings,
            metadata: a.metadata,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settings: Option<&'a AppSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Metadata>,
}

impl<'a> From<&'a AppParams> for AppBody<'a> {
    fn from(p: &'a AppParams) -> Self {
        AppBody {
            display_name: p.name.as_deref(),
            settings: p.settings.as_ref(),
            metadata: p.metadata.as_ref(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct AppEnvelopeV2 {
    app: AppV2,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    after_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AppPage {
    apps: Vec<AppV2>,
    #[serde(default)]
    meta: Meta,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyV2 {
    id: String,
    #[serde(default)]
    display_name: String,
    /// Promised by the create answer; get and list may leave it out.
    #[serde(default)]
    secret: Option<Sensitive>,
}

impl From<KeyV2> for SecretKey {
    fn from(k: KeyV2) -> SecretKey {
        SecretKey {
            id: k.id,
            secret: k.secret.unwrap_or_default(),
            name: k.display_name,
        }
    }
}

#[derive(Debug, Deserialize)]
struct KeyEnvelopeV2 {
    key: KeyV2,
}

#[derive(Debug, Deserialize)]
struct KeyListV2 {
    keys: Vec<KeyV2>,
}

/// An integration as v2 answers: id, type, and the rest.
#[derive(Debug, Deserialize)]
struct IntegrationV2 {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl IntegrationV2 {
    /// A channel integration in the crate's model (`None` for types the
    /// operator does not manage as integrations, `custom` among them).
    /// Nulls (v2's write-only credentials) are dropped.
    fn into_channel(self) -> Option<Integration> {
        let kind = IntegrationType::parse(&self.kind)?;
        let public_fields = self
            .rest
            .into_iter()
            .filter(|(k, v)| !v.is_null() && k != "webhooks")
            .collect();
        Some(Integration {
            id: self.id,
            kind,
            public_fields,
        })
    }

    /// The webhooks of a custom integration, each knowing its integration.
    fn into_webhooks(self) -> Result<Vec<Webhook>> {
        let hooks = match self.rest.get("webhooks") {
            Some(list) => serde_json::from_value::<Vec<WebhookV2>>(list.clone()).map_err(|e| {
                SmoochError::Decode {
                    method: "GET",
                    route: "/apps/{appId}/integrations/{integrationId}",
                    status: 200,
                    reason: e.to_string(),
                }
            })?,
            None => Vec::new(),
        };
        Ok(hooks
            .into_iter()
            .map(|w| w.into_webhook(&self.id))
            .collect())
    }
}

#[derive(Debug, Deserialize)]
struct IntegrationEnvelopeV2 {
    integration: IntegrationV2,
}

#[derive(Debug, Deserialize)]
struct IntegrationPage {
    integrations: Vec<IntegrationV2>,
    #[serde(default)]
    meta: Meta,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookV2 {
    id: String,
    target: String,
    #[serde(default)]
    triggers: Vec<String>,
    #[serde(default)]
    secret: Option<Sensitive>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    include_full_user: Option<bool>,
    #[serde(default)]
    include_full_source: Option<bool>,
}

impl WebhookV2 {
    fn into_webhook(self, integration_id: &str) -> Webhook {
        Webhook {
            id: self.id,
            target: self.target,
            triggers: self.triggers,
            secret: self.secret.unwrap_or_default(),
            version: self.version,
            include_client: self.include_full_source,
            include_full_app_user: self.include_full_user,
            integration_id: Some(integration_id.to_owned()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct WebhookEnvelopeV2 {
    webhook: WebhookV2,
}

#[derive(Debug, Deserialize)]
struct WebhookListV2 {
    webhooks: Vec<WebhookV2>,
}

/// v1 webhook parameters as a v2 webhook body (v1 trigger names translated,
/// v2 names passed through).
fn webhook_body(params: &WebhookParams) -> Value {
    let mut body = Map::new();
    if let Some(target) = &params.target {
        body.insert("target".into(), json!(target));
    }
    if let Some(triggers) = &params.triggers {
        let mut names: Vec<&str> = triggers
            .iter()
            .map(|t| v2_trigger(t).unwrap_or(t))
            .collect();
        names.sort_unstable();
        names.dedup();
        body.insert("triggers".into(), json!(names));
    }
    if let Some(b) = params.include_full_app_user {
        body.insert("includeFullUser".into(), json!(b));
    }
    if let Some(b) = params.include_client {
        body.insert("includeFullSource".into(), json!(b));
    }
    Value::Object(body)
}

/// A channel integration's create body: v1's, less what v2 dropped.
fn integration_body(params: &IntegrationParams) -> Result<Value> {
    let mut body = serde_json::to_value(params).map_err(|e| SmoochError::Decode {
        method: "POST",
        route: "/apps/{appId}/integrations",
        status: 0,
        reason: e.to_string(),
    })?;
    if let (IntegrationParams::Line { .. }, Some(fields)) = (params, body.as_object_mut()) {
        fields.remove("mid");
    }
    Ok(body)
}

// ---- apps ----

pub(crate) async fn create_app(c: &SmoochClient, params: &AppParams) -> Result<App> {
    let body = AppBody::from(params);
    let mut call = c.call(Method::POST, "/apps", vec!["apps"]);
    call.body = Some(&body);
    Ok(c.send::<_, AppEnvelopeV2>(call).await?.app.into())
}

/// Every app, walking the cursor pages once.
pub(crate) async fn list_all_apps(c: &SmoochClient) -> Result<Vec<App>> {
    let mut apps = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut call = c.call::<()>(Method::GET, "/apps", vec!["apps"]);
        call.query.push(("page[size]", PAGE_SIZE.into()));
        if let Some(cursor) = after.take() {
            call.query.push(("page[after]", cursor));
        }
        let page: AppPage = c.send(call).await?;
        let got = page.apps.len();
        apps.extend(page.apps.into_iter().map(App::from));
        match page.meta.after_cursor {
            Some(cursor) if page.meta.has_more && got > 0 => after = Some(cursor),
            _ => return Ok(apps),
        }
    }
}

pub(crate) async fn get_app(c: &SmoochClient, app_id: &str) -> Result<App> {
    let call = c.call::<()>(Method::GET, "/apps/{appId}", vec!["apps", app_id]);
    Ok(c.send::<_, AppEnvelopeV2>(call).await?.app.into())
}

pub(crate) async fn update_app(c: &SmoochClient, app_id: &str, params: &AppParams) -> Result<App> {
    let body = AppBody::from(params);
    let mut call = c.call(Method::PATCH, "/apps/{appId}", vec!["apps", app_id]);
    call.body = Some(&body);
    Ok(c.send::<_, AppEnvelopeV2>(call).await?.app.into())
}

pub(crate) async fn delete_app(c: &SmoochClient, app_id: &str) -> Result<()> {
    let call = c.call::<()>(Method::DELETE, "/apps/{appId}", vec!["apps", app_id]);
    c.send::<_, Value>(call).await.map(drop)
}

// ---- keys ----

pub(crate) async fn create_key(c: &SmoochClient, app_id: &str, name: &str) -> Result<SecretKey> {
    let body = json!({ "displayName": name });
    let mut call = c.call(
        Method::POST,
        "/apps/{appId}/keys",
        vec!["apps", app_id, "keys"],
    );
    call.body = Some(&body);
    Ok(c.send::<_, KeyEnvelopeV2>(call).await?.key.into())
}

pub(crate) async fn list_keys(c: &SmoochClient, app_id: &str) -> Result<Vec<SecretKey>> {
    let call = c.call::<()>(
        Method::GET,
        "/apps/{appId}/keys",
        vec!["apps", app_id, "keys"],
    );
    let list: KeyListV2 = c.send(call).await?;
    Ok(list.keys.into_iter().map(SecretKey::from).collect())
}

pub(crate) async fn get_key(c: &SmoochClient, app_id: &str, key_id: &str) -> Result<SecretKey> {
    let call = c.call::<()>(
        Method::GET,
        "/apps/{appId}/keys/{keyId}",
        vec!["apps", app_id, "keys", key_id],
    );
    Ok(c.send::<_, KeyEnvelopeV2>(call).await?.key.into())
}

pub(crate) async fn delete_key(c: &SmoochClient, app_id: &str, key_id: &str) -> Result<()> {
    let call = c.call::<()>(
        Method::DELETE,
        "/apps/{appId}/keys/{keyId}",
        vec!["apps", app_id, "keys", key_id],
    );
    c.send::<_, Value>(call).await.map(drop)
}

// ---- integrations ----

/// Every integration of `types` (comma-joined into `filter[types]`), all
/// pages.
async fn list_all_integrations(
    c: &SmoochClient,
    app_id: &str,
    types: &str,
) -> Result<Vec<IntegrationV2>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut call = c.call::<()>(
            Method::GET,
            "/apps/{appId}/integrations",
            vec!["apps", app_id, "integrations"],
        );
        call.query.push(("page[size]", PAGE_SIZE.into()));
        if !types.is_empty() {
            call.query.push(("filter[types]", types.to_owned()));
        }
        if let Some(cursor) = after.take() {
            call.query.push(("page[after]", cursor));
        }
        let page: IntegrationPage = c.send(call).await?;
        let got = page.integrations.len();
        all.extend(page.integrations);
        match page.meta.after_cursor {
            Some(cursor) if page.meta.has_more && got > 0 => after = Some(cursor),
            _ => return Ok(all),
        }
    }
}

pub(crate) async fn create_integration(
    c: &SmoochClient,
    app_id: &str,
    params: &IntegrationParams,
) -> Result<Integration> {
    let body = integration_body(params)?;
    let mut call = c.call(
        Method::POST,
        "/apps/{appId}/integrations",
        vec!["apps", app_id, "integrations"],
    );
    call.body = Some(&body);
    let created = c.send::<_, IntegrationEnvelopeV2>(call).await?.integration;
    not_a_channel(created, "POST", "/apps/{appId}/integrations")
}

fn not_a_channel(
    integration: IntegrationV2,
    method: &'static str,
    route: &'static str,
) -> Result<Integration> {
    let kind = integration.kind.clone();
    integration.into_channel().ok_or(SmoochError::Decode {
        method,
        route,
        status: 200,
        reason: format!("integration type {kind:?} is not a channel type"),
    })
}

pub(crate) async fn list_integrations(
    c: &SmoochClient,
    app_id: &str,
    types: &[IntegrationType],
) -> Result<Vec<Integration>> {
    let wanted = if types.is_empty() {
        &IntegrationType::ALL[..]
    } else {
        types
    };
    let joined = wanted
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",");
    Ok(list_all_integrations(c, app_id, &joined)
        .await?
        .into_iter()
        .filter_map(IntegrationV2::into_channel)
        .collect())
}

pub(crate) async fn get_integration(
    c: &SmoochClient,
    app_id: &str,
    integration_id: &str,
) -> Result<Integration> {
    let integration = get_integration_v2(c, app_id, integration_id).await?;
    not_a_channel(
        integration,
        "GET",
        "/apps/{appId}/integrations/{integrationId}",
    )
}

async fn get_integration_v2(
    c: &SmoochClient,
    app_id: &str,
    integration_id: &str,
) -> Result<IntegrationV2> {
    let call = c.call::<()>(
        Method::GET,
        "/apps/{appId}/integrations/{integrationId}",
        vec!["apps", app_id, "integrations", integration_id],
    );
    Ok(c.send::<_, IntegrationEnvelopeV2>(call).await?.integration)
}

pub(crate) async fn delete_integration(
    c: &SmoochClient,
    app_id: &str,
    integration_id: &str,
) -> Result<()> {
    let call = c.call::<()>(
        Method::DELETE,
        "/apps/{appId}/integrations/{integrationId}",
        vec!["apps", app_id, "integrations", integration_id],
    );
    c.send::<_, Value>(call).await.map(drop)
}

// ---- webhooks: a custom integration each ----

/// Name of the custom integrations that hold the client's webhooks.
const WEBHOOK_INTEGRATION_NAME: &str = "smooch-operator webhook";

pub(crate) async fn create_webhook(
    c: &SmoochClient,
    app_id: &str,
    params: &WebhookParams,
) -> Result<Webhook> {
    let body = json!({
        "type": "custom",
        "displayName": WEBHOOK_INTEGRATION_NAME,
        "webhooks": [webhook_body(params)],
    });
    let mut call = c.call(
        Method::POST,
        "/apps/{appId}/integrations",
        vec!["apps", app_id, "integrations"],
    );
    call.body = Some(&body);
    let created = c.send::<_, IntegrationEnvelopeV2>(call).await?.integration;
    first_webhook(c, app_id, created).await
}

/// The webhook of a custom integration: from the integration's answer when
/// it carries it, else from the integration's webhook list.
async fn first_webhook(
    c: &SmoochClient,
    app_id: &str,
    integration: IntegrationV2,
) -> Result<Webhook> {
    let id = integration.id.clone();
    if integration.kind != "custom" {
        return Err(SmoochError::Decode {
            method: "GET",
            route: "/apps/{appId}/integrations/{integrationId}",
            status: 200,
            reason: format!("integration type {:?} holds no webhook", integration.kind),
        });
    }
    if let Some(hook) = integration.into_webhooks()?.into_iter().next() {
        return Ok(hook);
    }
    list_integration_webhooks(c, app_id, &id)
        .await?
        .into_iter()
        .next()
        .ok_or(SmoochError::Decode {
            method: "GET",
            route: "/apps/{appId}/integrations/{integrationId}/webhooks",
            status: 200,
            reason: "the custom integration holds no webhook".into(),
        })
}

async fn list_integration_webhooks(
    c: &SmoochClient,
    app_id: &str,
    integration_id: &str,
) -> Result<Vec<Webhook>> {
    let call = c.call::<()>(
        Method::GET,
        "/apps/{appId}/integrations/{integrationId}/webhooks",
        vec!["apps", app_id, "integrations", integration_id, "webhooks"],
    );
    let list: WebhookListV2 = c.send(call).await?;
    Ok(list
        .webhooks
        .into_iter()
        .map(|w| w.into_webhook(integration_id))
        .collect())
}

pub(crate) async fn list_webhooks(c: &SmoochClient, app_id: &str) -> Result<Vec<Webhook>> {
    let mut hooks = Vec::new();
    for integration in list_all_integrations(c, app_id, "custom").await? {
        if integration.rest.contains_key("webhooks") {
            hooks.extend(integration.into_webhooks()?);
        } else {
            hooks.extend(list_integration_webhooks(c, app_id, &integration.id).await?);
        }
    }
    Ok(hooks)
}

/// `handle` is the custom integration's id ([`Webhook::handle`]).
pub(crate) async fn get_webhook(c: &SmoochClient, app_id: &str, handle: &str) -> Result<Webhook> {
    let integration = get_integration_v2(c, app_id, handle).await?;
    first_webhook(c, app_id, integration).await
}

pub(crate) async fn update_webhook(
    c: &SmoochClient,
    app_id: &str,
    handle: &str,
    params: &WebhookParams,
) -> Result<Webhook> {
    let current = get_webhook(c, app_id, handle).await?;
    let body = webhook_body(params);
    let mut call = c.call(
        Method::PATCH,
        "/apps/{appId}/integrations/{integrationId}/webhooks/{webhookId}",
        vec![
            "apps",
            app_id,
            "integrations",
            handle,
            "webhooks",
            &current.id,
        ],
    );
    call.body = Some(&body);
    let updated = c.send::<_, WebhookEnvelopeV2>(call).await?.webhook;
    Ok(updated.into_webhook(handle))
}

/// Deletes the custom integration, and with it its webhook.
pub(crate) async fn delete_webhook(c: &SmoochClient, app_id: &str, handle: &str) -> Result<()> {
    delete_integration(c, app_id, handle).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_webhook_params_become_a_v2_body() {
        let body = webhook_body(&WebhookParams {
            target: Some("https://example.com/h".into()),
            triggers: Some(vec![
                "message".into(),
                "message:appUser".into(),
                "postback".into(),
                "conversation:typing".into(),
            ]),
            include_client: Some(true),
            include_full_app_user: Some(false),
        });
        assert_eq!(
            body,
            json!({
                "target": "https://example.com/h",
                "triggers": ["conversation:message", "conversation:postback", "conversation:typing"],
                "includeFullSource": true,
                "includeFullUser": false,
            })
        );
    }

    #[test]
    fn line_drops_mid_and_credentials_stay_in_the_body_only() {
        let body = integration_body(&IntegrationParams::Line {
            channel_id: "1".into(),
            channel_secret: "s3cr3t".into(),
            mid: "m".into(),
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"type": "line", "channelId": "1", "channelSecret": "s3cr3t"})
        );
    }

    #[test]
    fn answers_map_to_the_crate_models() {
        let app: AppEnvelopeV2 = serde_json::from_value(json!({
            "app": {"id": "5f1", "displayName": "Demo", "settings": {"multiConvoEnabled": true},
                    "metadata": null}
        }))
        .unwrap();
        let app = App::from(app.app);
        assert_eq!((app.id.as_str(), app.name.as_str()), ("5f1", "Demo"));
        assert_eq!(app.app_token, None);

        let i: IntegrationV2 = serde_json::from_value(json!({
            "id": "i1", "type": "telegram", "status": "active", "token": null, "username": "bot"
        }))
        .unwrap();
        let i = i.into_channel().unwrap();
        assert_eq!(i.kind, IntegrationType::Telegram);
        assert_eq!(i.public_fields.get("username"), Some(&json!("bot")));
        assert!(!i.public_fields.contains_key("token"));

        let custom: IntegrationV2 = serde_json::from_value(json!({
            "id": "c1", "type": "custom", "webhooks": [{"id": "w1", "target": "https://x/",
              "triggers": ["conversation:message"], "secret": "s", "includeFullUser": true}]
        }))
        .unwrap();
        let hooks = custom.into_webhooks().unwrap();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].id, "w1");
        assert_eq!(hooks[0].handle(), "c1");
        assert_eq!(hooks[0].include_full_app_user, Some(true));
    }

    #[test]
    fn v2_error_body_is_read() {
        let body: ErrorsBody = serde_json::from_value(json!({
            "errors": [{"code": "bad_request", "title": "displayName is too long"}]
        }))
        .unwrap();
        assert_eq!(body.errors[0].title, "displayName is too long");
    }
}
