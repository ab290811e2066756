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

use super::error::ApiError;
use super::state::EmulatorState;
use super::store::Signer;
use axum::extract::{FromRequestParts, Path};
use axum::http::header;
use axum::http::request::Parts;
use smooch::jwt::{self, JwtError, Scope};
use std::collections::HashMap;

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
        let kid = jwt::key_id_of(token).map_err(invalid_token)?;
        let (signer, secret) = state
            .read(|store| store.signing_key(&kid))
            .await
            .ok_or_else(|| ApiError::unauthorized("Invalid JWT: unknown key id"))?;
        let claims = jwt::verify(token, &secret).map_err(invalid_token)?;
        match (signer, claims.scope) {
            (_, Scope::AppUser) => Err(ApiError::forbidden(
                "appUser-scoped tokens cannot use the app maker API",
            )),
            (Signer::AppMaker, Scope::AppMaker) => Ok(Caller::AppMaker),
            (Signer::App(app_id), Scope::App) => Ok(Caller::App { app_id }),
            (Signer::AppMaker, Scope::App) => Err(ApiError::forbidden(
                "The app maker key signs appMaker-scoped tokens only",
            )),
            (Signer::App(_), Scope::AppMaker) => Err(ApiError::forbidden(
                "An app's key cannot sign appMaker-scoped tokens",
            )),
        }
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
    params: HashMap<String, String>,
}

impl AppTarget {
    /// A path parameter of the matched route (`keyId`, `webhookId`, ...).
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::internal(format!("route has no {name} parameter")))
    }
}

impl FromRequestParts<EmulatorState> for AppTarget {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &EmulatorState,
    ) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("Invalid path: {}", e.body_text())))?;
        let app_id = match (&caller, params.get("appId")) {
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
