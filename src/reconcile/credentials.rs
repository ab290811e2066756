//! App-maker credentials: the operator-wide default Secret (in the
//! operator's namespace) or a SmoochApp's own Secret in its namespace.
//! No resource can point the operator at a Secret in another namespace:
//! references carry a name only.

use super::Context;
use super::secrets::value_of;
use crate::resources::SmoochApp;
use crate::smooch::{Credentials, SmoochClient};
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

/// Keys a credentials Secret may hold: `token` (a ready app-maker JWT), or
/// `keyId` and `secret` (an app-maker key the operator signs with).
pub const TOKEN_KEY: &str = "token";
pub const KEY_ID_KEY: &str = "keyId";
pub const SECRET_KEY: &str = "secret";

/// Where an app's credentials come from: (namespace, Secret name).
pub fn source_of(app: &SmoochApp, ctx: &Context) -> (String, String) {
    match &app.spec.credentials_secret_ref {
        Some(r) => (app.namespace().unwrap_or_default(), r.name.clone()),
        None => (
            ctx.settings.operator_namespace.clone(),
            ctx.settings.default_credentials_secret.clone(),
        ),
    }
}

/// A Smooch client for the app's app-maker credentials.
pub async fn client_for(app: &SmoochApp, ctx: &Context) -> Result<SmoochClient> {
    let (namespace, name) = source_of(app, ctx);
    client_from_secret(&namespace, &name, ctx).await
}

/// A Smooch client for the operator's default app-maker credentials.
pub async fn default_client(ctx: &Context) -> Result<SmoochClient> {
    let settings = &ctx.settings;
    client_from_secret(
        &settings.operator_namespace,
        &settings.default_credentials_secret,
        ctx,
    )
    .await
}

async fn client_from_secret(namespace: &str, name: &str, ctx: &Context) -> Result<SmoochClient> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = api.get_opt(name).await?.ok_or_else(|| Error::Waiting {
        reason: "CredentialsMissing",
        message: format!("app-maker credentials Secret {namespace}/{name} does not exist"),
    })?;
    let credentials = parse(&secret).map_err(|missing| Error::Waiting {
        reason: "CredentialsInvalid",
        message: format!("app-maker credentials Secret {namespace}/{name} {missing}"),
    })?;
    Ok(SmoochClient::new(ctx.smooch.clone(), &credentials)?)
}

/// Reads credentials from a Secret; the error says which keys are missing.
pub fn parse(secret: &Secret) -> std::result::Result<Credentials, String> {
    if let Some(token) = value_of(secret, TOKEN_KEY).filter(|t| !t.is_empty()) {
        return Ok(Credentials::Token(token));
    }
    match (value_of(secret, KEY_ID_KEY), value_of(secret, SECRET_KEY)) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok(Credentials::app_maker_key(id.expose(), secret))
        }
        _ => Err(format!(
            "must hold `{TOKEN_KEY}`, or `{KEY_ID_KEY}` and `{SECRET_KEY}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn token_or_key_pair() {
        assert!(matches!(
            parse(&secret(&[("token", "t")])),
            Ok(Credentials::Token(_))
        ));
        assert!(matches!(
            parse(&secret(&[("keyId", "k"), ("secret", "s")])),
            Ok(Credentials::Key { .. })
        ));
        let err = parse(&secret(&[("keyId", "k")])).unwrap_err();
        assert!(err.contains("keyId"), "{err}");
        assert!(parse(&secret(&[])).is_err());
    }
}
