//! SmoochWebhook adapter: drift in target or triggers is corrected with an
//! update (the webhook and its secret are kept), never a re-create.

use super::app::{AppConnection, connect_dependent, connect_dependent_for_cleanup};
use super::cache::Reads;
use super::{Context, Managed, Observation, Origin};
use crate::Result;
use crate::resources::webhook::WebhookTrigger;
use crate::resources::{CommonStatus, DeletionPolicy, SecretTemplate, SmoochWebhook};
use crate::smooch::models::{Webhook, WebhookParams, v2_trigger};
use crate::smooch::{ApiVersion, Sensitive};
use crate::{Error, resources::SmoochWebhookSpec};
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

    /// v2 has no `*` trigger: say so before calling Smooch.
    fn check_version(&self, version: ApiVersion) -> Result<()> {
        if version == ApiVersion::V2 && self.spec.triggers.contains(&WebhookTrigger::All) {
            return Err(Error::InvalidSpec(
                "trigger `*` has no Sunshine Conversations v2 equivalent; list the triggers".into(),
            ));
        }
        Ok(())
    }
}

fn trigger_names(triggers: &[WebhookTrigger]) -> Vec<String> {
    triggers.iter().map(|t| t.as_str().to_string()).collect()
}

/// The trigger names Smooch holds for the spec's: v1's own, or their v2
/// equivalents (several v1 triggers can share one).
fn wanted_triggers(spec: &SmoochWebhookSpec, version: ApiVersion) -> BTreeSet<&'static str> {
    spec.triggers
        .iter()
        .map(|t| match version {
            ApiVersion::V1 => t.as_str(),
            ApiVersion::V2 => v2_trigger(t.as_str()).unwrap_or(t.as_str()),
        })
        .collect()
}

fn webhook_drift(spec: &SmoochWebhookSpec, hook: &Webhook, version: ApiVersion) -> Option<String> {
    let mut why = Vec::new();
    if spec.target != hook.target {
        why.push("target");
    }
    let want = wanted_triggers(spec, version);
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
    /// Under v2 the custom integration holding the webhook.
    fn recorded_id(&self) -> Option<String> {
        let status = self.status.as_ref()?;
        status
            .integration_id
            .clone()
            .or_else(|| status.webhook_id.clone())
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
    fn app_name(&self) -> Option<&str> {
        Some(&self.spec.app_ref.name)
    }

    fn external_id(hook: &Webhook) -> String {
        hook.handle().to_owned()
    }

    fn status_fields(&self, conn: &AppConnection, hook: &Webhook) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("appId".into(), json!(conn.app_id));
        fields.insert("webhookId".into(), json!(hook.id));
        if let Some(id) = &hook.integration_id {
            fields.insert("integrationId".into(), json!(id));
        }
        fields
    }

    async fn connect(&self, ctx: &Context, reads: Reads) -> Result<AppConnection> {
        self.check_version(ctx.smooch.version())?;
        connect_dependent(
            &self.namespace().unwrap_or_default(),
            &self.spec.app_ref.name,
            ctx,
            reads,
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

    fn drift(&self, conn: &AppConnection, hook: &Webhook) -> Option<String> {
        webhook_drift(&self.spec, hook, conn.client.version())
    }

    async fn update(&self, conn: &AppConnection, hook: Webhook) -> Result<Webhook> {
        Ok(conn
            .client
            .update_webhook(&conn.app_id, hook.handle(), &self.desired_params())
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
        _: Option<&super::secrets::KeptSecret>,
    ) -> Result<Observation> {
        Ok(Observation {
            external_id: hook.handle().to_owned(),
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
            integration_id: None,
        }
    }

    #[test]
    fn under_v2_triggers_compare_by_their_v2_names() {
        let mut h = hook();
        h.integration_id = Some("5f0c".into());
        h.triggers = vec![
            "conversation:postback".into(),
            "conversation:message".into(),
        ];
        assert_eq!(webhook_drift(&spec(), &h, ApiVersion::V2), None);
        h.triggers = vec!["conversation:message".into()];
        assert_eq!(
            webhook_drift(&spec(), &h, ApiVersion::V2).as_deref(),
            Some("triggers changed")
        );
        assert_eq!(SmoochWebhook::external_id(&h), "5f0c");
    }

    #[test]
    fn trigger_order_is_not_drift() {
        assert_eq!(webhook_drift(&spec(), &hook(), ApiVersion::V1), None);
    }

    #[test]
    fn target_and_triggers_drift() {
        let mut h = hook();
        h.target = "https://evil.example/".into();
        h.triggers = vec!["message".into()];
        assert_eq!(
            webhook_drift(&spec(), &h, ApiVersion::V1).as_deref(),
            Some("target, triggers changed")
        );
    }
}
