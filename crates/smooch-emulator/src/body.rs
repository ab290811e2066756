//! Request bodies: a JSON object read within the size limit, and typed
//! field access whose errors name the field (`"authToken is required"`).

use super::error::ApiError;
use super::state::EmulatorState;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use futures::StreamExt;
use serde_json::{Map, Value};

/// An oversized body is still read (and dropped) up to this many bytes, so
/// that the client is done sending when the 413 arrives; closing a socket
/// with unread input makes the kernel reset the connection, and the client
/// would see a reset instead of the answer.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// The request body as a JSON object. An empty body is an empty object, so
/// that a missing body gets "name is required" rather than a parse error.
#[derive(Debug, Default)]
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<EmulatorState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &EmulatorState) -> Result<Self, ApiError> {
        check_content_type(request.headers())?;
        let bytes = read_limited(request, state.body_limit()).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject::default());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
            // serde_json's message gives line and column, never the input.
            Err(e) => Err(ApiError::bad_request(format!(
                "Request body is not valid JSON: {e}"
            ))),
        }
    }
}

/// JSON, or no content type, or curl's default for `-d`
/// (`application/x-www-form-urlencoded`): the primary document's webhook
/// example sends JSON that way. The body must be JSON in every case.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let accepted = mime == "application/json"
        || (mime.starts_with("application/") && mime.ends_with("+json"))
        || mime == "application/x-www-form-urlencoded";
    if accepted {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Request body must be JSON (content-type: application/json)",
        ))
    }
}

async fn read_limited(request: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let mut stream = request.into_body().into_data_stream();
    let mut body = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("Request body could not be read"))?;
        seen += chunk.len();
        if seen > DRAIN_LIMIT {
            break;
        }
        if seen <= limit {
            body.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(body)
}

/// What a JSON value is, for "must be a ..." messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad_request(format!("{field} must be {expected} (got {})", kind_of(got)))
}

/// Typed access to the fields of a JSON object. `null` counts as absent.
/// `prefix` names nested objects in messages (`settings.useAnimalNames`).
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Fields { map, prefix: "" }
    }

    pub fn nested(map: &'a Map<String, Value>, prefix: &'a str) -> Self {
        Fields { map, prefix }
    }

    pub fn name(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub fn required_str(&self, field: &str) -> Result<String, ApiError> {
        self.optional_str(field)?
            .ok_or_else(|| ApiError::bad_request(format!("{} is required", self.name(field))))
    }

    /// A string that, when given, is not empty.
    pub fn optional_str(&self, field: &str) -> Result<Option<String>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::bad_request(format!(
                "{} must not be empty",
                self.name(field)
            ))),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(&self.name(field), "a string", other)),
        }
    }

    pub fn optional_bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(&self.name(field), "a boolean", other)),
        }
    }

    pub fn optional_non_negative_int(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| wrong_type(&self.name(field), "a non-negative integer", v)),
        }
    }

    pub fn optional_rate(&self, field: &str) -> Result<Option<f64>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|r| (0.0..=1.0).contains(r))
                .map(Some)
                .ok_or_else(|| wrong_type(&self.name(field), "a number from 0 to 1", v)),
        }
    }

    pub fn optional_object(&self, field: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(wrong_type(&self.name(field), "an object", other)),
        }
    }

    /// An array of anything.
    pub fn optional_list(&self, field: &str) -> Result<Option<&'a Vec<Value>>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(wrong_type(&self.name(field), "an array", other)),
        }
    }

    /// A list of strings that, when given, is not empty.
    pub fn optional_str_list(&self, field: &str) -> Result<Option<Vec<String>>, ApiError> {
        let name = self.name(field);
        let Some(value) = self.present(field) else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            return Err(wrong_type(&name, "an array of strings", value));
        };
        if items.is_empty() {
            return Err(ApiError::bad_request(format!("{name} must not be empty")));
        }
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type(&format!("{name} items"), "strings", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Rejects fields outside `known`, for objects whose fields are a closed set.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(ApiError::bad_request(format!(
                "{} is not a known field (known: {})",
                self.name(unknown),
                known.join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn messages_name_the_field() {
        let m = map(json!({"a": 1, "b": "", "c": [], "d": null}));
        let f = Fields::new(&m);
        assert_eq!(
            f.required_str("a").unwrap_err().description,
            "a must be a string (got a number)"
        );
        assert_eq!(
            f.required_str("b").unwrap_err().description,
            "b must not be empty"
        );
        assert_eq!(
            f.optional_str_list("c").unwrap_err().description,
            "c must not be empty"
        );
        assert_eq!(
            f.required_str("d").unwrap_err().description,
            "d is required"
        );
        let s = map(json!({"x": "y"}));
        assert_eq!(
            Fields::nested(&s, "settings")
                .optional_bool("x")
                .unwrap_err()
                .description,
            "settings.x must be a boolean (got a string)"
        );
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "application/merge-patch+json",
        ] {
            h.insert(header::CONTENT_TYPE, ok.parse().unwrap());
            assert!(check_content_type(&h).is_ok(), "{ok}");
        }
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            check_content_type(&h).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
