//! Who is calling, and may they: `authorization: Bearer <jwt>`, HS256,
//! the `kid` naming either the app-maker key or one app's key.
//!
//! - 401: no header, not Bearer, not a JWT, not HS256 (`alg: none`
//!   included), unknown `kid`, wrong signature, unreadable claims.
//! - 403: valid token without access: `appUser` scope anywhere, `app` scope
//!   on another app's path, on the apps endpoints (provisioning, even its
//!   own app) or on secret keys (the primary document requires `appMaker`
//!   for keys, so `/v1/keys` with an `app` token is a 403 too).
//! - 400: an `appMaker` token on a short path (`/v1/integrations`), which
//!   names no app.
//!
//! The app-maker key may sign `appMaker` or `account` scoped tokens (the
//! v1.1 Node client `smooch-core` calls the account level `account`); both
//! mean the same. `smooch::jwt::Scope` has no `account`, so claims are read
//! here ([`verify`]) rather than with `smooch::jwt::verify`.
//!
//! `/v2` ([`V2Caller`]) also takes HTTP Basic (`keyId:secret`); see
//! `routes/v2/mod.rs` for its rules.

use super::error::ApiError;
use super::state::EmulatorState;
use super::store::Signer;
use axum::extract::{FromRequestParts, Path};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use smooch::Sensitive;
use smooch::jwt::{self, JwtError};
use std::collections::HashMap;

/// The scopes a token may claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScope {
    /// `appMaker` (v1) or `account` (v1.1 clients, v2): the account level.
    Account,
    App,
    AppUser,
}

/// Verifies a token's HS256 signature with `secret` and reads its scope.
/// Same checks and errors as `smooch::jwt::verify`, plus the `account` scope.
pub fn verify(token: &str, secret: &Sensitive) -> Result<TokenScope, JwtError> {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_secret(secret.expose().as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidAlgorithm => JwtError::WrongAlgorithm,
        ErrorKind::Json(_) => JwtError::BadClaims("unreadable claims".into()),
        _ => JwtError::Malformed,
    })?;
    let claims = data.claims;
    let scope = match claims.get("scope").and_then(serde_json::Value::as_str) {
        Some("appMaker" | "account") => TokenScope::Account,
        Some("app") => TokenScope::App,
        Some("appUser") => TokenScope::AppUser,
        _ => return Err(JwtError::BadClaims("unreadable claims".into())),
    };
    if scope == TokenScope::AppUser && !claims.get("userId").is_some_and(|v| v.is_string()) {
        return Err(JwtError::BadClaims("appUser scope needs userId".into()));
    }
    Ok(scope)
}

/// Who signed a verified Bearer token, and with which scope.
async fn bearer_caller(
    token: &str,
    state: &EmulatorState,
) -> Result<(Signer, TokenScope), ApiError> {
    let kid = jwt::key_id_of(token).map_err(invalid_token)?;
    let (signer, secret) = state
        .read(|store| store.signing_key(&kid))
        .await
        .ok_or_else(|| ApiError::unauthorized("Invalid JWT: unknown key id"))?;
    let scope = verify(token, &secret).map_err(invalid_token)?;
    Ok((signer, scope))
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    AppMaker,
    App { app_id: String },
}

impl FromRequestParts<EmulatorState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EmulatorState,
    ) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let (signer, scope) = bearer_caller(token, state).await?;
        match scope_check(signer, scope)? {
            V2Caller::Account => Ok(Caller::AppMaker),
            V2Caller::App { app_id } => Ok(Caller::App { app_id }),
        }
    }
}

/// Whether the signing key may grant the token's scope.
fn scope_check(signer: Signer, scope: TokenScope) -> Result<V2Caller, ApiError> {
    match (signer, scope) {
        (_, TokenScope::AppUser) => Err(ApiError::forbidden(
            "appUser-scoped tokens cannot use the app maker API",
        )),
        (Signer::AppMaker, TokenScope::Account) => Ok(V2Caller::Account),
        (Signer::App(app_id), TokenScope::App) => Ok(V2Caller::App { app_id }),
        (Signer::AppMaker, TokenScope::App) => Err(ApiError::forbidden(
            "The app maker key signs appMaker-scoped tokens only",
        )),
        (Signer::App(_), TokenScope::Account) => Err(ApiError::forbidden(
            "An app's key cannot sign appMaker-scoped tokens",
        )),
    }
}

/// A `/v2` caller: the account (the emulator's app-maker key, by Basic or
/// by a JWT with scope `account` or `appMaker`) or one app (an app key, by
/// Basic or by a JWT with scope `app`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum V2Caller {
    Account,
    App { app_id: String },
}

impl FromRequestParts<EmulatorState> for V2Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EmulatorState,
    ) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("Authorization is required"))?
            .to_str()
            .map_err(|_| ApiError::unauthorized("Authorization header is not readable"))?;
        let malformed = || {
            ApiError::unauthorized("Authorization must be 'Basic <keyId:secret>' or 'Bearer <jwt>'")
        };
        let (scheme, rest) = value.trim().split_once(' ').ok_or_else(malformed)?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(malformed());
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            let (signer, scope) = bearer_caller(rest, state).await?;
            return scope_check(signer, scope);
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(malformed());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                ApiError::unauthorized("Basic credentials are not base64 of keyId:secret")
            })?;
        let (key_id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| ApiError::unauthorized("Basic credentials must be keyId:secret"))?;
        let (signer, expected) = state
            .read(|store| store.signing_key(key_id))
            .await
            .ok_or_else(|| ApiError::unauthorized("Invalid credentials: unknown key id"))?;
        if !constant_time_eq(secret.as_bytes(), expected.expose().as_bytes()) {
            return Err(ApiError::unauthorized("Invalid credentials: wrong secret"));
        }
        Ok(match signer {
            Signer::AppMaker => V2Caller::Account,
            Signer::App(app_id) => V2Caller::App { app_id },
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A `/v2` caller that must be the account (list and create apps).
#[derive(Debug)]
pub struct V2Account;

impl FromRequestParts<EmulatorState> for V2Account {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EmulatorState,
    ) -> Result<Self, ApiError> {
        match V2Caller::from_request_parts(parts, state).await? {
            V2Caller::Account => Ok(V2Account),
            V2Caller::App { .. } => Err(ApiError::forbidden(
                "This endpoint needs account credentials; an app key reaches its own app only",
            )),
        }
    }
}

/// The app a `/v2/apps/{appId}/...` request addresses, checked against the
/// caller: the account reaches every app, an app key only its own (403 on
/// any other, existing or not), plus the other path parameters.
#[derive(Debug)]
pub struct V2Target {
    pub app_id: String,
    params: PathParams,
}

impl V2Target {
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params.get(name)
    }
}

/// The path parameters of the matched route.
#[derive(Debug)]
struct PathParams(HashMap<String, String>);

impl PathParams {
    async fn from_parts(parts: &mut Parts, state: &EmulatorState) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("Invalid path: {}", e.body_text())))?;
        Ok(PathParams(params))
    }

    /// A parameter of the route (`appId`, `keyId`, `webhookId`, ...).
    fn get(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::internal(format!("route has no {name} parameter")))
    }
}

impl FromRequestParts<EmulatorState> for V2Target {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EmulatorState,
    ) -> Result<Self, ApiError> {
        let caller = V2Caller::from_request_parts(parts, state).await?;
        let params = PathParams::from_parts(parts, state).await?;
        let app_id = params.get("appId")?.to_owned();
        if let V2Caller::App { app_id: own } = &caller
            && *own != app_id
        {
            return Err(ApiError::forbidden(
                "An app key can only access its own app",
            ));
        }
        Ok(V2Target { app_id, params })
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("Authorization is required"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("Authorization header is not readable"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "Authorization must be 'Bearer <jwt>'",
        )),
    }
}

/// A 401 that says what is wrong with the token, never what it contains.
fn invalid_token(error: JwtError) -> ApiError {
    ApiError::unauthorized(format!("Invalid JWT: {error}"))
}

/// The caller may use the provisioning endpoints (`/apps`, keys).
#[derive(Debug)]
pub struct AppMaker;

impl FromRequestParts<EmulatorState> for AppMaker {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EmulatorState,
    ) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::AppMaker => Ok(AppMaker),
            Caller::App { .. } => Err(ApiError::forbidden(
                "This endpoint needs an appMaker-scoped token",
            )),
        }
    }
}

/// The app a request addresses (`{appId}` in the path, or the app-scoped
/// token's own app on a short path), checked against the caller, plus the
/// other path parameters.
#[derive(Debug)]
pub struct AppTarget {
    pub app_id: String,
    pub caller: Caller,
    params: PathParams,
}

impl AppTarget {
    /// A path parameter of the matched route (`keyId`, `webhookId`, ...).
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params.get(name)
    }
}

impl FromRequestParts<EmulatorState> for AppTarget {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EmulatorState,
    ) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = PathParams::from_parts(parts, state).await?;
        let app_id = match (&caller, params.0.get("appId")) {
            (Caller::AppMaker, Some(path_app)) => path_app.clone(),
            (Caller::AppMaker, None) => {
                return Err(ApiError::bad_request(
                    "This path needs an app-scoped token; with an appMaker token use /apps/{appId}/... instead",
                ));
            }
            (Caller::App { app_id }, None) => app_id.clone(),
            (Caller::App { app_id }, Some(path_app)) if path_app == app_id => app_id.clone(),
            (Caller::App { .. }, Some(_)) => {
                return Err(ApiError::forbidden(
                    "An app-scoped token can only access its own app",
                ));
            }
        };
        Ok(AppTarget {
            app_id,
            caller,
            params,
        })
    }
}

/// An [`AppTarget`] that needs an `appMaker` token: an app itself and its
/// secret keys (so `app` tokens get 403, even for their own app).
#[derive(Debug)]
pub struct MakerTarget(pub AppTarget);

impl FromRequestParts<EmulatorState> for MakerTarget {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EmulatorState,
    ) -> Result<Self, ApiError> {
        let target = AppTarget::from_request_parts(parts, state).await?;
        match target.caller {
            Caller::AppMaker => Ok(MakerTarget(target)),
            Caller::App { .. } => Err(ApiError::forbidden(
                "Apps and their secret keys need an appMaker-scoped token",
            )),
        }
    }
}
