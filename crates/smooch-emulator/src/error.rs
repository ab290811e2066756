//! Smooch's error body on every error answer, including the ones axum makes
//! by itself (unknown path, wrong method, rejected extractors): v1's
//! `{"error":{"code","description"}}` everywhere except under `/v2`, where
//! every error answer (handlers', axum's, injected faults', unknown paths')
//! gets v2's `{"errors":[{"code","title"}]}`.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use smooch::models::{ErrorBody, ErrorDetail};

/// An error answer: status, Smooch's short `code` and a description that
/// never contains a token, secret or request body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// Seconds for a `Retry-After` header (429 answers).
    pub retry_after_secs: Option<u64>,
}

/// Marks a response whose body is already Smooch's (v1) error shape, and
/// keeps its code and description, so that [`ensure_error_body`] leaves it
/// alone under `/v1` and can re-render it in v2's shape under `/v2`.
#[derive(Clone, Debug)]
struct HasErrorBody {
    code: &'static str,
    description: String,
}

impl ApiError {
    pub fn new(status: StatusCode, description: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code_for(status),
            description: description.into(),
            retry_after_secs: None,
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }

    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, description)
    }

    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, description)
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, description)
    }

    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, description)
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
        }
    }
}

/// Smooch's snake_case word for a status.
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        429 => "too_many_requests",
        431 => "request_header_fields_too_large",
        503 => "service_unavailable",
        500..=599 => "internal_error",
        _ => "bad_request",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let marker = HasErrorBody {
            code: self.code,
            description: self.description.clone(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                description: self.description,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(marker);
        response
    }
}

/// True for `/v2` and everything below it.
pub fn is_v2_path(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// v2's error answer: same status and headers, body
/// `{"errors":[{"code","title"}]}`.
fn v2_error_response(status: StatusCode, code: &str, title: String) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "title": title}]});
    (status, Json(body)).into_response()
}

/// Fallback for paths the emulator does not serve.
pub async fn unknown_path(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "No such endpoint: {} {} (the emulator serves apps, keys, integrations and webhooks under /v1, /v1.1 and /v2)",
        request.method(),
        request.uri().path()
    ))
}

/// Outermost middleware: any error answer without Smooch's body (axum's
/// 405, or a rejection that slipped through) gets one, keeping its status
/// and headers such as `Allow`.
pub async fn ensure_error_body(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let v2 = is_v2_path(&path);
    let known = response.extensions().get::<HasErrorBody>().cloned();
    if known.is_some() && !v2 {
        return response;
    }
    let (code, description) = match known {
        Some(HasErrorBody { code, description }) => (code, description),
        None => (
            code_for(status),
            default_description(status, &method, &path),
        ),
    };
    let (parts, _) = response.into_parts();
    let mut rewritten = if v2 {
        v2_error_response(status, code, description)
    } else {
        ApiError::new(status, description).into_response()
    };
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().append(name.clone(), value.clone());
        }
    }
    rewritten
}

fn default_description(status: StatusCode, method: &axum::http::Method, path: &str) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("Method {method} is not allowed on {path}"),
        StatusCode::NOT_FOUND => format!("No such endpoint: {method} {path}"),
        other => other
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_owned(),
    }
}
