//! SmoochWebhook adapter: drift in target or triggers is corrected with an
//! update (the webhook and its secret are kept), never a re-create.

use super::app::{AppConnection, connect_dependent, connect_dependent_for_cleanup};
use super::{Context, Managed, Observation, Origin};
use crate::Result;
use crate::resources::webhook::WebhookTrigger;
use crate::resources::{CommonStatus, DeletionPolicy, SecretTemplate, SmoochWebhook};
use crate::smooch::Sensitive;
use crate::smooch::models::{Webhook, WebhookParams};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

impl SmoochWebhook {
    fn desired_params(&self) -> WebhookParams {
        WebhookParams {
            target: Some(self.spec.target.clone()),
            triggers: Some(trigger_names(&self.spec.triggers)),
            include_client: self.spec.include_client,
            include_full_app_user: self.spec.include_full_app_user,
        }
    }
}

fn trigger_names(triggers: &[WebhookTrigger]) -> Vec<String> {
    triggers.iter().map(|t| t.as_str().to_string()).collect()
}

fn webhook_drift(spec: &crate::resources::SmoochWebhookSpec, hook: &Webhook) -> Option<String> {
    let mut why = Vec::new();
    if spec.target != hook.target {
        why.push("target");
    }
    let want: BTreeSet<&str> = spec.triggers.iter().map(|t| t.as_str()).collect();
    let have: BTreeSet<&str> = hook.triggers.iter().map(String::as_str).collect();
    if want != have {
        why.push("triggers");
    }
    if spec
        .include_client
        .is_some_and(|w| hook.include_client != Some(w))
    {
        why.push("includeClient");
    }
    if spec
        .include_full_app_user
        .is_some_and(|w| hook.include_full_app_user != Some(w))
    {
        why.push("includeFullAppUser");
    }
    (!why.is_empty()).then(|| format!("{} changed", why.join(", ")))
}

impl Managed for SmoochWebhook {
    type Connection = AppConnection;
    type External = Webhook;
    const KIND: &'static str = "SmoochWebhook";
    const SECRET_SUFFIX: Option<&'static str> = Some("webhook");

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    fn recorded_id(&self) -> Option<String> {
        self.status.as_ref()?.webhook_id.clone()
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn secret_template(&self) -> Option<&SecretTemplate> {
        self.spec.secret_template.as_ref()
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }

    fn external_id(hook: &Webhook) -> String {
        hook.id.clone()
    }

    fn status_fields(&self, conn: &AppConnection, hook: &Webhook) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("appId".into(), json!(conn.app_id));
        fields.insert("webhookId".into(), json!(hook.id));
        fields
    }

    async fn connect(&self, ctx: &Context) -> Result<AppConnection> {
        connect_dependent(
            &self.namespace().unwrap_or_default(),
            &self.spec.app_ref.name,
            ctx,
        )
        .await
    }

    async fn connect_for_cleanup(&self, ctx: &Context) -> Result<Option<AppConnection>> {
        let app_id = self.status.as_ref().and_then(|s| s.app_id.clone());
        connect_dependent_for_cleanup(
            &self.namespace().unwrap_or_default(),
            &self.spec.app_ref.name,
            app_id,
            ctx,
        )
        .await
    }

    async fn observe(&self, conn: &AppConnection, id: &str) -> Result<Option<Webhook>> {
        super::found(conn.client.get_webhook(&conn.app_id, id).await)
    }

    /// A webhook has no name to tag; the one calling this target is ours.
    async fn find_created(&self, conn: &AppConnection, _: &Context) -> Result<Option<Webhook>> {
        let hooks = conn.client.list_webhooks(&conn.app_id).await?;
        Ok(hooks.into_iter().find(|w| w.target == self.spec.target))
    }

    async fn create(&self, conn: &AppConnection, _: &Context) -> Result<Webhook> {
        Ok(conn
            .client
            .create_webhook(&conn.app_id, &self.desired_params())
            .await?)
    }

    fn drift(&self, _: &AppConnection, hook: &Webhook) -> Option<String> {
        webhook_drift(&self.spec, hook)
    }

    async fn update(&self, conn: &AppConnection, hook: Webhook) -> Result<Webhook> {
        Ok(conn
            .client
            .update_webhook(&conn.app_id, &hook.id, &self.desired_params())
            .await?)
    }

    async fn delete(&self, conn: &AppConnection, id: &str) -> Result<()> {
        Ok(conn.client.delete_webhook(&conn.app_id, id).await?)
    }

    async fn finish(
        &self,
        conn: &AppConnection,
        hook: &Webhook,
        _: Origin,
        _: Option<&Secret>,
    ) -> Result<Observation> {
        Ok(Observation {
            external_id: hook.id.clone(),
            status_fields: self.status_fields(conn, hook),
            secret_data: Some(BTreeMap::from([
                ("webhookId".to_string(), Sensitive::from(hook.id.as_str())),
                ("secret".to_string(), hook.secret.clone()),
            ])),
            requeue_after: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{AppReference, SmoochWebhookSpec};

    fn spec() -> SmoochWebhookSpec {
        SmoochWebhookSpec {
            app_ref: AppReference {
                name: "demo".into(),
            },
            target: "https://example.com/hook".into(),
            triggers: vec![WebhookTrigger::Message, WebhookTrigger::Postback],
            include_client: None,
            include_full_app_user: None,
            deletion_policy: DeletionPolicy::Delete,
            secret_template: None,
        }
    }

    fn hook() -> Webhook {
        Webhook {
            id: "5735ddfd48011972d621dc0a".into(),
            target: "https://example.com/hook".into(),
            triggers: vec!["postback".into(), "message".into()],
            secret: "s".into(),
            version: Some("v1".into()),
            include_client: Some(false),
            include_full_app_user: None,
        }
    }

    #[test]
    fn trigger_order_is_not_drift() {
        assert_eq!(webhook_drift(&spec(), &hook()), None);
    }

    #[test]
    fn target_and_triggers_drift() {
        let mut h = hook();
        h.target = "https://evil.example/".into();
        h.triggers = vec!["message".into()];
        assert_eq!(
            webhook_drift(&spec(), &h).as_deref(),
            Some("target, triggers changed")
        );
    }
}
