//! Smooch JWTs: HS256, the signing key's id in the `kid` header, and a
//! `scope` claim (`appMaker`, `app`, or `appUser` with a `userId`).

use super::Sensitive;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "appMaker")]
    AppMaker,
    #[serde(rename = "app")]
    App,
    #[serde(rename = "appUser")]
    AppUser,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub scope: Scope,
    #[serde(rename = "userId", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Claims {
    pub fn app_maker() -> Self {
        Claims {
            scope: Scope::AppMaker,
            user_id: None,
        }
    }
    pub fn app() -> Self {
        Claims {
            scope: Scope::App,
            user_id: None,
        }
    }
    pub fn app_user(user_id: impl Into<String>) -> Self {
        Claims {
            scope: Scope::AppUser,
            user_id: Some(user_id.into()),
        }
    }
}

/// Why a token could not be made or read. Never carries the token or secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token header has no `kid`")]
    MissingKid,
    #[error("token is not signed with HS256")]
    WrongAlgorithm,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
    #[error("could not sign token")]
    Signing,
}

/// Signs `claims` with the key `key_id`/`secret`.
pub fn sign(key_id: &str, secret: &Sensitive, claims: &Claims) -> Result<Sensitive, JwtError> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key_id.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
    .map(Sensitive::from)
    .map_err(|_| JwtError::Signing)
}

/// Reads the `kid` of a token without verifying it (to find the secret).
pub fn key_id_of(token: &str) -> Result<String, JwtError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
    if header.alg != Algorithm::HS256 {
        return Err(JwtError::WrongAlgorithm);
    }
    header.kid.ok_or(JwtError::MissingKid)
}

/// Verifies a token's HS256 signature with `secret` and returns its claims.
/// Smooch tokens carry no expiry, so none is required.
pub fn verify(token: &str, secret: &Sensitive) -> Result<Claims, JwtError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.expose().as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::BadSignature,
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => JwtError::WrongAlgorithm,
        jsonwebtoken::errors::ErrorKind::Json(_) => JwtError::BadClaims("unreadable claims".into()),
        _ => JwtError::Malformed,
    })?;
    if data.claims.scope == Scope::AppUser && data.claims.user_id.is_none() {
        return Err(JwtError::BadClaims("appUser scope needs userId".into()));
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_carries_kid_and_scope() {
        let secret = Sensitive::new("Y4SINFtAUzEjayxgUjJZoTjG");
        let token = sign("app_5735dcf248011972d621dc01", &secret, &Claims::app()).unwrap();
        assert_eq!(
            key_id_of(token.expose()).unwrap(),
            "app_5735dcf248011972d621dc01"
        );
        assert_eq!(verify(token.expose(), &secret).unwrap(), Claims::app());
    }

    #[test]
    fn wrong_secret_is_bad_signature() {
        let token = sign("k", &"right".into(), &Claims::app_maker()).unwrap();
        assert_eq!(
            verify(token.expose(), &"wrong".into()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn documented_example_token_decodes() {
        // The primary document's example: header kid + HS256, payload {"scope":"app"}.
        let example = "eyJraWQiOiJhcHBfNTczNDE0NjQwN2E2OWI2MTAwNzQiLCJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6ImFwcCJ9.aDkuZKRXzI3I3XRDtnqbrxIsQQuA7kMrV4r7KcwmeHc";
        assert_eq!(key_id_of(example).unwrap(), "app_5734146407a69b610074");
        assert_eq!(
            verify(example, &"not-the-secret".into()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(key_id_of("nope"), Err(JwtError::Malformed));
    }

    #[test]
    fn app_user_needs_user_id() {
        let secret: Sensitive = "s".into();
        let token = sign(
            "k",
            &secret,
            &Claims {
                scope: Scope::AppUser,
                user_id: None,
            },
        )
        .unwrap();
        assert!(matches!(
            verify(token.expose(), &secret),
            Err(JwtError::BadClaims(_))
        ));
        let ok = sign("k", &secret, &Claims::app_user("u1")).unwrap();
        assert_eq!(
            verify(ok.expose(), &secret).unwrap().user_id.as_deref(),
            Some("u1")
        );
    }
}
