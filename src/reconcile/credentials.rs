//! App-maker credentials: the operator-wide default Secret (in the
//! operator's namespace) or a SmoochApp's own Secret in its namespace.
//! No resource can point the operator at a Secret in another namespace:
//! references carry a name only.

use super::Context;
use super::cache::Reads;
use super::secrets::KeptSecret;
use crate::resources::{GROUP, SmoochApp};
use crate::smooch::{Credentials, Sensitive, SmoochClient};
use crate::{Error, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Patch;
use kube::{Api, ResourceExt};
use std::sync::Arc;

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
    Ok(read_for(app, ctx).await?.0)
}

/// The app's client and the credentials Secret it came from.
pub async fn read_for(app: &SmoochApp, ctx: &Context) -> Result<(SmoochClient, Arc<KeptSecret>)> {
    let namespace = app.namespace().unwrap_or_default();
    if app.spec.credentials_secret_ref.is_none() {
        ensure_default_allowed(&namespace, ctx)?;
    }
    let (namespace, name) = source_of(app, ctx);
    client_from_secret(&namespace, &name, ctx).await
}

/// A Smooch client for the operator's default app-maker credentials, for
/// a resource in `namespace`.
pub async fn default_client(namespace: &str, ctx: &Context) -> Result<SmoochClient> {
    ensure_default_allowed(namespace, ctx)?;
    let settings = &ctx.settings;
    let (client, _) = client_from_secret(
        &settings.operator_namespace,
        &settings.default_credentials_secret,
        ctx,
    )
    .await?;
    Ok(client)
}

/// The cluster admin's allow-list of namespaces that may use the default
/// credentials (`--default-credentials-namespaces`).
fn ensure_default_allowed(namespace: &str, ctx: &Context) -> Result<()> {
    if ctx
        .settings
        .default_credentials_namespaces
        .allows(namespace)
    {
        return Ok(());
    }
    Err(Error::NotAllowed {
        reason: "DefaultCredentialsNotAllowed",
        message: format!(
            "namespace {namespace} may not use the operator's default credentials; \
             set spec.credentialsSecretRef to a Secret of this namespace"
        ),
    })
}

/// A Secret that is only an input (app-maker credentials here, a channel
/// token for an integration) is read from its kept copy (`cache.rs`), even
/// for a create: no decision depends on that copy being the newest. A
/// change reaches the Secret watch, which drops the copy and wakes whoever
/// uses the Secret; credentials changed in between are refused by Smooch,
/// and the retry reads them anew. What a create reads fresh is the
/// resource itself and its app.
async fn client_from_secret(
    namespace: &str,
    name: &str,
    ctx: &Context,
) -> Result<(SmoochClient, Arc<KeptSecret>)> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = ctx
        .caches
        .secret(&api, namespace, name, Reads::Cached)
        .await?
        .ok_or_else(|| Error::Waiting {
            reason: "CredentialsMissing",
            message: format!("app-maker credentials Secret {namespace}/{name} does not exist"),
        })?;
    if let Some(client) = ctx.caches.client_made_from(namespace, name, &secret) {
        return Ok((client, secret));
    }
    let credentials = parse(&secret).map_err(|problem| Error::Waiting {
        reason: "CredentialsInvalid",
        message: format!("app-maker credentials Secret {namespace}/{name} {problem}"),
    })?;
    let client = SmoochClient::new(ctx.smooch.clone(), &credentials)?;
    ctx.caches.keep_client(namespace, name, &secret, &client);
    Ok((client, secret))
}

/// Reads credentials from a Secret; the error says which keys are missing
/// or malformed (never their values). Surrounding whitespace is dropped:
/// `kubectl create secret --from-file` keeps a file's final newline.
pub fn parse(secret: &KeptSecret) -> std::result::Result<Credentials, String> {
    let read = |key: &str| -> std::result::Result<Option<Sensitive>, String> {
        let Some(value) = secret.value(key) else {
            return Ok(None);
        };
        let trimmed = value.expose().trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        // Sent in an HTTP header (the token) or signed into one (key id).
        if trimmed.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "key `{key}` holds a character that cannot be sent to Smooch \
                 (whitespace, a control character or non-ASCII) inside the value"
            ));
        }
        Ok(Some(Sensitive::from(trimmed)))
    };
    if let Some(token) = read(TOKEN_KEY)? {
        return Ok(Credentials::Token(token));
    }
    match (read(KEY_ID_KEY)?, read(SECRET_KEY)?) {
        (Some(id), Some(secret)) => Ok(Credentials::app_maker_key(id.expose(), secret)),
        _ => Err(format!(
            "must hold `{TOKEN_KEY}`, or `{KEY_ID_KEY}` and `{SECRET_KEY}`"
        )),
    }
}

/// Finalizer an app puts on its own credentials Secret while it may still
/// need it: deleting a namespace deletes the Secret together with the
/// resources, and their cleanup must still be able to authenticate.
/// One per app (its uid), so no app can release it for another.
pub fn in_use_finalizer(app_uid: &str) -> String {
    format!("{GROUP}/in-use-by-{app_uid}")
}

/// Adds this app's in-use finalizer to the Secret `namespace/name` (kept
/// as `secret`) unless it has it already.
pub async fn hold(
    namespace: &str,
    name: &str,
    secret: &KeptSecret,
    app_uid: &str,
    ctx: &Context,
) -> Result<()> {
    let finalizer = in_use_finalizer(app_uid);
    if secret.has_finalizer(&finalizer) || secret.is_being_deleted() {
        return Ok(());
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    // Strategic merge appends to the finalizer list, leaving others' alone.
    let patch = serde_json::json!({"metadata": {"finalizers": [finalizer]}});
    api.patch(name, &super::patch_params(), &Patch::Strategic(&patch))
        .await?;
    ctx.metrics.kube_write("Secret", "finalizer");
    Ok(())
}

/// Removes this app's in-use finalizer from the Secret `name` (if it is
/// there, and the Secret still exists).
pub async fn release(namespace: &str, name: &str, app_uid: &str, ctx: &Context) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let finalizer = in_use_finalizer(app_uid);
    let Some(secret) = api.get_opt(name).await? else {
        return Ok(());
    };
    if !secret.finalizers().contains(&finalizer) {
        return Ok(());
    }
    let patch =
        serde_json::json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}});
    match api
        .patch(name, &super::patch_params(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => {
            ctx.metrics.kube_write("Secret", "finalizer");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &str)]) -> KeptSecret {
        KeptSecret::new(&Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        })
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

    #[test]
    fn surrounding_whitespace_is_dropped() {
        match parse(&secret(&[("token", "abc.def.ghi\r\n")])) {
            Ok(Credentials::Token(t)) => assert_eq!(t.expose(), "abc.def.ghi"),
            other => panic!("{other:?}"),
        }
        match parse(&secret(&[("keyId", " app_1\n"), ("secret", "s3cr3t\n")])) {
            Ok(Credentials::Key { key_id, secret, .. }) => {
                assert_eq!(key_id, "app_1");
                assert_eq!(secret.expose(), "s3cr3t");
            }
            other => panic!("{other:?}"),
        }
        // Only whitespace counts as missing.
        assert!(parse(&secret(&[("token", "\n")])).is_err());
    }

    #[test]
    fn inner_control_characters_are_reported_without_the_value() {
        let err = parse(&secret(&[("token", "abc\ndef")])).unwrap_err();
        assert!(err.contains("`token`"), "{err}");
        assert!(!err.contains("abc"), "{err}");
    }
}
