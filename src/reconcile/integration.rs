//! SmoochIntegration adapter. Smooch has no update for integrations, so a
//! change of the spec or of a referenced credential re-provisions it
//! (delete, then create). What was provisioned is remembered as a hash.

use super::app::{AppConnection, connect_dependent, connect_dependent_for_cleanup};
use super::cache::Reads;
use super::{Context, Managed, Observation, Origin};
use crate::resources::integration::IntegrationKind;
use crate::resources::{CommonStatus, DeletionPolicy, SecretKeyRef, SmoochIntegration};
use crate::smooch::Sensitive;
use crate::smooch::models::{Integration, IntegrationParams, IntegrationType};
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub struct IntegrationConnection {
    pub app: AppConnection,
    pub params: IntegrationParams,
    /// Hash of app id + params (credentials included); never reversible.
    pub fingerprint: String,
}

impl SmoochIntegration {
    /// Every Secret key this integration reads (for watches and errors).
    pub fn secret_refs(&self) -> Vec<&SecretKeyRef> {
        let s = &self.spec;
        let mut refs = Vec::new();
        if let Some(m) = &s.messenger {
            refs.extend([&m.app_secret_ref, &m.page_access_token_ref]);
        }
        if let Some(t) = &s.twilio {
            refs.push(&t.auth_token_ref);
        }
        if let Some(t) = &s.telegram {
            refs.push(&t.token_ref);
        }
        if let Some(l) = &s.line {
            refs.push(&l.channel_secret_ref);
        }
        refs
    }

    fn smooch_type(&self) -> IntegrationType {
        match self.spec.kind {
            IntegrationKind::Messenger => IntegrationType::Messenger,
            IntegrationKind::Twilio => IntegrationType::Twilio,
            IntegrationKind::Telegram => IntegrationType::Telegram,
            IntegrationKind::Line => IntegrationType::Line,
        }
    }

    /// Builds the create body, reading each credential from its Secret.
    async fn desired_params(&self, ctx: &Context) -> Result<IntegrationParams> {
        let ns = self.namespace().unwrap_or_default();
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        let read = |r: &SecretKeyRef| {
            let secrets = secrets.clone();
            let r = r.clone();
            let ns = ns.clone();
            async move { read_credential(ctx, &secrets, &ns, &r).await }
        };
        let s = &self.spec;
        let missing = |block: &str| {
            Error::InvalidSpec(format!(
                "spec.{block} is required when spec.type is {block}"
            ))
        };
        Ok(match s.kind {
            IntegrationKind::Messenger => {
                let m = s.messenger.as_ref().ok_or_else(|| missing("messenger"))?;
                IntegrationParams::Messenger {
                    page_access_token: read(&m.page_access_token_ref).await?,
                    app_id: m.app_id.clone(),
                    app_secret: read(&m.app_secret_ref).await?,
                }
            }
            IntegrationKind::Twilio => {
                let t = s.twilio.as_ref().ok_or_else(|| missing("twilio"))?;
                IntegrationParams::Twilio {
                    account_sid: t.account_sid.clone(),
                    auth_token: read(&t.auth_token_ref).await?,
                    phone_number_sid: t.phone_number_sid.clone(),
                }
            }
            IntegrationKind::Telegram => {
                let t = s.telegram.as_ref().ok_or_else(|| missing("telegram"))?;
                IntegrationParams::Telegram {
                    token: read(&t.token_ref).await?,
                }
            }
            IntegrationKind::Line => {
                let l = s.line.as_ref().ok_or_else(|| missing("line"))?;
                IntegrationParams::Line {
                    channel_id: l.channel_id.clone(),
                    channel_secret: read(&l.channel_secret_ref).await?,
                    mid: l.mid.clone(),
                }
            }
        })
    }

    fn provisioned_fingerprint(&self) -> Option<&str> {
        self.status.as_ref()?.provisioned_hash.as_deref()
    }
}

/// An input, read from the kept copy like app-maker credentials (see
/// `credentials::client_from_secret`).
async fn read_credential(
    ctx: &Context,
    secrets: &Api<Secret>,
    namespace: &str,
    r: &SecretKeyRef,
) -> Result<Sensitive> {
    let secret = ctx
        .caches
        .secret(secrets, namespace, &r.name, Reads::Cached)
        .await?
        .ok_or_else(|| Error::Waiting {
            reason: "CredentialSecretMissing",
            message: format!("Secret {} does not exist", r.name),
        })?;
    secret
        .value(&r.key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Waiting {
            reason: "CredentialSecretMissing",
            message: format!("Secret {} has no key {}", r.name, r.key),
        })
}

fn fingerprint(app_id: &str, params: &IntegrationParams) -> String {
    let mut hasher = Sha256::new();
    hasher.update(app_id.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(params).unwrap_or_default());
    hex::encode(&hasher.finalize()[..16])
}

/// Whether an integration Smooch lists is the one these params made, by
/// the non-secret fields Smooch echoes. Messenger and Telegram echo none
/// that the spec holds, so any one of the type matches.
fn matches_params(integration: &Integration, params: &IntegrationParams) -> bool {
    let field = |name: &str| integration.public_fields.get(name).and_then(Value::as_str);
    integration.kind == params.integration_type()
        && match params {
            IntegrationParams::Twilio {
                account_sid,
                phone_number_sid,
                ..
            } => {
                field("accountSid") == Some(account_sid)
                    && field("phoneNumberSid") == Some(phone_number_sid)
            }
            IntegrationParams::Line {
                channel_id, mid, ..
            } => {
                // v2 has no `mid`.
                field("channelId") == Some(channel_id) && field("mid").is_none_or(|m| m == mid)
            }
            IntegrationParams::Messenger { .. } | IntegrationParams::Telegram { .. } => true,
        }
}

/// Creates the integration the spec describes.
async fn provision(conn: &IntegrationConnection) -> Result<Integration> {
    Ok(conn
        .app
        .client
        .create_integration(&conn.app.app_id, &conn.params)
        .await?)
}

impl Managed for SmoochIntegration {
    type Connection = IntegrationConnection;
    type External = Integration;
    const KIND: &'static str = "SmoochIntegration";
    const SECRET_SUFFIX: Option<&'static str> = None;

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    fn recorded_id(&self) -> Option<String> {
        self.status.as_ref()?.integration_id.clone()
    }
    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
    fn app_name(&self) -> Option<&str> {
        Some(&self.spec.app_ref.name)
    }

    fn external_id(integration: &Integration) -> String {
        integration.id.clone()
    }

    fn status_fields(
        &self,
        conn: &IntegrationConnection,
        external: &Integration,
    ) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("appId".into(), json!(conn.app.app_id));
        fields.insert("integrationId".into(), json!(external.id));
        if !external.public_fields.is_empty() {
            fields.insert("publicFields".into(), json!(external.public_fields));
        }
        fields.insert("provisionedHash".into(), json!(conn.fingerprint));
        fields
    }

    async fn connect(&self, ctx: &Context, reads: Reads) -> Result<IntegrationConnection> {
        let app = connect_dependent(
            &self.namespace().unwrap_or_default(),
            &self.spec.app_ref.name,
            ctx,
            reads,
        )
        .await?;
        let params = self.desired_params(ctx).await?;
        let fingerprint = fingerprint(&app.app_id, &params);
        Ok(IntegrationConnection {
            app,
            params,
            fingerprint,
        })
    }

    async fn connect_for_cleanup(&self, ctx: &Context) -> Result<Option<IntegrationConnection>> {
        let app_id = self.status.as_ref().and_then(|s| s.app_id.clone());
        let app = connect_dependent_for_cleanup(
            &self.namespace().unwrap_or_default(),
            &self.spec.app_ref.name,
            app_id,
            ctx,
        )
        .await?;
        // Deleting needs no credentials of the channel itself.
        Ok(app.map(|app| IntegrationConnection {
            app,
            params: IntegrationParams::Telegram {
                token: Sensitive::default(),
            },
            fingerprint: String::new(),
        }))
    }

    async fn observe(&self, conn: &IntegrationConnection, id: &str) -> Result<Option<Integration>> {
        super::found(conn.app.client.get_integration(&conn.app.app_id, id).await)
    }

    async fn find_created(
        &self,
        conn: &IntegrationConnection,
        _: &Context,
    ) -> Result<Option<Integration>> {
        let listed = conn
            .app
            .client
            .list_integrations(&conn.app.app_id, &[self.smooch_type()])
            .await?;
        Ok(listed.into_iter().find(|i| matches_params(i, &conn.params)))
    }

    async fn create(&self, conn: &IntegrationConnection, _: &Context) -> Result<Integration> {
        provision(conn).await
    }

    fn drift(&self, conn: &IntegrationConnection, external: &Integration) -> Option<String> {
        if external.kind != self.smooch_type() {
            return Some(format!(
                "Smooch has type {}, spec says {}",
                external.kind,
                self.smooch_type()
            ));
        }
        // Just created or found: what was provisioned is what the spec says now
        // (the recorded hash may belong to the integration it replaced).
        if self.recorded_id().as_deref() != Some(external.id.as_str()) {
            return None;
        }
        match self.provisioned_fingerprint() {
            Some(done) if done != conn.fingerprint => {
                Some("spec or a referenced credential changed".into())
            }
            _ => None,
        }
    }

    async fn update(
        &self,
        conn: &IntegrationConnection,
        external: Integration,
    ) -> Result<Integration> {
        match conn
            .app
            .client
            .delete_integration(&conn.app.app_id, &external.id)
            .await
        {
            Err(e) if !e.is_not_found() => return Err(e.into()),
            _ => {}
        }
        provision(conn).await
    }

    async fn delete(&self, conn: &IntegrationConnection, id: &str) -> Result<()> {
        Ok(conn
            .app
            .client
            .delete_integration(&conn.app.app_id, id)
            .await?)
    }

    async fn finish(
        &self,
        conn: &IntegrationConnection,
        external: &Integration,
        _: Origin,
        _: Option<&super::secrets::KeptSecret>,
    ) -> Result<Observation> {
        Ok(Observation {
            external_id: external.id.clone(),
            status_fields: self.status_fields(conn, external),
            secret_data: None,
            requeue_after: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twilio(sid: &str) -> IntegrationParams {
        IntegrationParams::Twilio {
            account_sid: "AC1".into(),
            auth_token: "secret-token".into(),
            phone_number_sid: sid.into(),
        }
    }

    #[test]
    fn fingerprint_changes_with_credentials_and_hides_them() {
        let a = fingerprint("app", &twilio("PN1"));
        let mut changed = twilio("PN1");
        if let IntegrationParams::Twilio { auth_token, .. } = &mut changed {
            *auth_token = "rotated".into();
        }
        assert_ne!(a, fingerprint("app", &changed));
        assert_eq!(a, fingerprint("app", &twilio("PN1")));
        assert!(!a.contains("secret-token"));
    }

    #[test]
    fn twilio_matched_by_echoed_sids() {
        let listed: Integration = serde_json::from_value(json!({
            "_id": "5735ddf948011972d621dc08", "type": "twilio",
            "accountSid": "AC1", "phoneNumberSid": "PN1", "phoneNumber": "+1", "name": "x"
        }))
        .unwrap();
        assert!(matches_params(&listed, &twilio("PN1")));
        assert!(!matches_params(&listed, &twilio("PN2")));
    }
}
