use super::jwt::JwtError;
use std::time::Duration;

/// A failed Smooch call. Messages name the method, the route template and
/// Smooch's own error code and description; never a token, secret or body.
#[derive(Debug, thiserror::Error)]
pub enum SmoochError {
    #[error("Smooch {method} {route} answered {status} {code}: {description}")]
    Api {
        method: &'static str,
        route: &'static str,
        status: u16,
        code: String,
        description: String,
        retry_after: Option<Duration>,
    },
    #[error("Smooch {method} {route} timed out")]
    Timeout {
        method: &'static str,
        route: &'static str,
    },
    #[error("could not reach Smooch for {method} {route}: {reason}")]
    Connect {
        method: &'static str,
        route: &'static str,
        reason: String,
    },
    #[error(
        "Smooch {method} {route} answered {status} with a body that is not the documented shape: {reason}"
    )]
    Decode {
        method: &'static str,
        route: &'static str,
        status: u16,
        reason: String,
    },
    #[error("invalid Smooch credentials: {0}")]
    Credentials(#[from] JwtError),
    #[error("invalid Smooch base URL {0:?}")]
    BaseUrl(String),
    #[error("the configured Smooch API version has no {operation}")]
    Unsupported { operation: &'static str },
    /// Not sent: the caller only reads (see [`crate::scope`]).
    #[error("Smooch {method} {route} not sent: this work only reads")]
    Refused {
        method: &'static str,
        route: &'static str,
    },
}

impl SmoochError {
    /// HTTP status of an answered call.
    pub fn status(&self) -> Option<u16> {
        match self {
            SmoochError::Api { status, .. } | SmoochError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// 429, 5xx, timeouts and connection failures may succeed when tried
    /// again; 4xx answers and local mistakes will not.
    pub fn is_transient(&self) -> bool {
        match self {
            SmoochError::Api { status, .. } => *status == 429 || *status >= 500,
            SmoochError::Timeout { .. } | SmoochError::Connect { .. } => true,
            SmoochError::Decode { status, .. } => *status >= 500,
            SmoochError::Credentials(_)
            | SmoochError::BaseUrl(_)
            | SmoochError::Unsupported { .. }
            | SmoochError::Refused { .. } => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SmoochError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Smooch's error `code` (`bad_request`, `unauthorized`, ...) or a
    /// local word for failures without an answer. Short and bounded, so it
    /// can be a metric label or a condition reason.
    pub fn code(&self) -> &str {
        match self {
            SmoochError::Api { code, .. } => code,
            SmoochError::Timeout { .. } => "timeout",
            SmoochError::Connect { .. } => "connect",
            SmoochError::Decode { .. } => "bad_response",
            SmoochError::Credentials(_) => "bad_credentials",
            SmoochError::BaseUrl(_) => "bad_base_url",
            SmoochError::Unsupported { .. } => "unsupported",
            SmoochError::Refused { .. } => "refused",
        }
    }
}
