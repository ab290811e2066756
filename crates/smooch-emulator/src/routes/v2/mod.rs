//! The Sunshine Conversations v2 API under `/v2`, on the same store as
//! `/v1` and `/v1.1` (`shared/reference/sunshine-conversations-v2.md`).
//!
//! Auth ([`crate::auth::V2Caller`]): HTTP Basic `keyId:secret` or a Bearer
//! JWT (HS256, `kid`). The emulator's app-maker key is the account key: it
//! reaches everything (JWT scope `account` or `appMaker`). An app key
//! (Basic, or a JWT with scope `app`) reaches `/v2/apps/{its app}/...`
//! only, and gets 403 on `GET`/`POST /v2/apps` and on any other app.
//!
//! Queries: paging and filters are read both as `page[after]=...` (the JS
//! client) and as `page={"after":...}` JSON (the Python client); unknown
//! parameters are ignored. Lists are ordered by id, which for objects made
//! by the emulator is creation order (see `ids::object_id`), so a cursor
//! keeps working after its object is deleted.
//!
//! Errors get v2's body (`error::ensure_error_body`).

mod apps;
mod integrations;
mod keys;

use crate::error::ApiError;
use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::query_pairs;
use crate::state::EmulatorState;

pub fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/apps", get(apps::list).post(apps::create))
        .route(
            "/apps/{appId}",
            get(apps::get).patch(apps::update).delete(apps::delete),
        )
        .route("/apps/{appId}/keys", get(keys::list).post(keys::create))
        .route(
            "/apps/{appId}/keys/{keyId}",
            get(keys::get).delete(keys::delete),
        )
        .route(
            "/apps/{appId}/integrations",
            get(integrations::list).post(integrations::create),
        )
        .route(
            "/apps/{appId}/integrations/{integrationId}",
            get(integrations::get)
                .patch(integrations::update)
                .delete(integrations::delete),
        )
        .route(
            "/apps/{appId}/integrations/{integrationId}/webhooks",
            get(integrations::list_webhooks).post(integrations::create_webhook),
        )
        .route(
            "/apps/{appId}/integrations/{integrationId}/webhooks/{webhookId}",
            get(integrations::get_webhook)
                .patch(integrations::update_webhook)
                .delete(integrations::delete_webhook),
        )
}

pub const DEFAULT_PAGE_SIZE: usize = 25;
pub const MAX_PAGE_SIZE: usize = 100;
/// Longest `displayName` v2 accepts.
pub const MAX_DISPLAY_NAME: usize = 100;

/// `page[...]` of a list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub after: Option<String>,
    pub before: Option<String>,
    pub size: usize,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            after: None,
            before: None,
            size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// A list request's query: the page and the filters (`filter[name]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub page: Page,
    pub filters: BTreeMap<String, String>,
}

fn bad_page_size() -> ApiError {
    ApiError::bad_request(format!(
        "page[size] must be an integer from 1 to {MAX_PAGE_SIZE}"
    ))
}

/// Reads `page[after|before|size]`, `filter[name]`, and their JSON forms
/// `page={...}`, `filter={...}`; ignores every other parameter.
pub fn list_query(query: Option<&str>) -> Result<ListQuery, ApiError> {
    let mut after = None;
    let mut before = None;
    let mut size = None;
    let mut filters = BTreeMap::new();
    for (name, value) in query_pairs(query) {
        match name.as_str() {
            "page" => {
                for (key, value) in json_object(&name, &value)? {
                    let slot = match key.as_str() {
                        "after" => &mut after,
                        "before" => &mut before,
                        "size" => &mut size,
                        _ => continue,
                    };
                    *slot = scalar(&value).ok_or_else(|| {
                        ApiError::bad_request(format!("page.{key} must be a string or a number"))
                    })?;
                }
            }
            "page[after]" => after = Some(value),
            "page[before]" => before = Some(value),
            "page[size]" => size = Some(value),
            "filter" => {
                for (key, value) in json_object(&name, &value)? {
                    let text = match &value {
                        Value::Array(items) => Some(
                            items
                                .iter()
                                .filter_map(|v| scalar(v).flatten())
                                .collect::<Vec<_>>()
                                .join(","),
                        ),
                        other => scalar(other).ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "filter.{key} must be a string or a list of strings"
                            ))
                        })?,
                    };
                    if let Some(text) = text {
                        filters.insert(key, text);
                    }
                }
            }
            other => {
                if let Some(key) = other
                    .strip_prefix("filter[")
                    .and_then(|rest| rest.strip_suffix(']'))
                {
                    filters.insert(key.to_owned(), value);
                }
            }
        }
    }
    for (name, cursor) in [("page[after]", &after), ("page[before]", &before)] {
        if cursor.as_ref().is_some_and(|c| c.trim().is_empty()) {
            return Err(ApiError::bad_request(format!("{name} must not be empty")));
        }
    }
    if after.is_some() && before.is_some() {
        return Err(ApiError::bad_request(
            "page[after] and page[before] cannot be used together",
        ));
    }
    let size = match size {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(bad_page_size)?,
    };
    Ok(ListQuery {
        page: Page {
            after,
            before,
            size,
        },
        filters,
    })
}

fn json_object(name: &str, text: &str) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be a JSON object or {name}[...] parameters"
        ))),
    }
}

/// A string or number as text; `Some(None)` for null, `None` for anything else.
fn scalar(value: &Value) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        Value::Number(n) => Some(Some(n.to_string())),
        _ => None,
    }
}

/// One page of `items` (each with its id), in id order, as v2's list
/// answer: `{<name>: [...], meta: {hasMore, afterCursor, beforeCursor},
/// links: {prev?, next?}}`. `hasMore` says whether more follow in the
/// direction of travel (before the page for `page[before]`).
pub fn paged(
    name: &str,
    mut items: Vec<(String, Value)>,
    query: &ListQuery,
    link_base: &str,
) -> Value {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let page = &query.page;
    let (start, end) = match (&page.after, &page.before) {
        (_, Some(before)) => {
            let end = items.partition_point(|(id, _)| id < before);
            (end.saturating_sub(page.size), end)
        }
        (Some(after), None) => {
            let start = items.partition_point(|(id, _)| id <= after);
            (start, (start + page.size).min(items.len()))
        }
        (None, None) => (0, page.size.min(items.len())),
    };
    let has_more = if page.before.is_some() {
        start > 0
    } else {
        end < items.len()
    };
    let slice = &items[start..end];
    let mut meta = json!({ "hasMore": has_more });
    let mut links = Map::new();
    if let (Some((first, _)), Some((last, _))) = (slice.first(), slice.last()) {
        meta["afterCursor"] = json!(last);
        meta["beforeCursor"] = json!(first);
        if end < items.len() {
            links.insert(
                "next".into(),
                json!(link(link_base, "page[after]", last, query)),
            );
        }
        if start > 0 {
            links.insert(
                "prev".into(),
                json!(link(link_base, "page[before]", first, query)),
            );
        }
    }
    let values: Vec<Value> = slice.iter().map(|(_, v)| v.clone()).collect();
    json!({ name: values, "meta": meta, "links": links })
}

fn link(base: &str, cursor_name: &str, cursor: &str, query: &ListQuery) -> String {
    let mut query_string = url::form_urlencoded::Serializer::new(String::new());
    query_string.append_pair(cursor_name, cursor);
    query_string.append_pair("page[size]", &query.page.size.to_string());
    for (name, value) in &query.filters {
        query_string.append_pair(&format!("filter[{name}]"), value);
    }
    format!("{base}?{}", query_string.finish())
}

/// `http://<host><path>` of the request, for `links`.
pub fn link_base(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{path}")
}

/// A `displayName`: a string of 1 to 100 characters.
pub fn display_name(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(name) if name.chars().count() > MAX_DISPLAY_NAME => Err(ApiError::bad_request(
            format!("displayName must be at most {MAX_DISPLAY_NAME} characters"),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_query_forms() {
        let bracket = list_query(Some(
            "page[after]=a&page[size]=10&filter[types]=custom,line&_=1",
        ))
        .unwrap();
        let json_form = list_query(Some(
            "page=%7B%22after%22%3A%22a%22%2C%22size%22%3A10%7D&filter=%7B%22types%22%3A%22custom%2Cline%22%7D",
        ))
        .unwrap();
        assert_eq!(bracket, json_form);
        assert_eq!(bracket.page.size, 10);
        assert_eq!(bracket.filters["types"], "custom,line");
        assert_eq!(list_query(None).unwrap().page, Page::default());
    }

    #[test]
    fn bad_pages() {
        for bad in [
            "page[size]=0",
            "page[size]=101",
            "page[size]=x",
            "page[after]=a&page[before]=b",
            "page=%7B%22size%22%3A0%7D",
            "page=notjson",
            "page[after]=",
        ] {
            assert!(list_query(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_walk_without_gaps() {
        let items: Vec<(String, Value)> = (0..7).map(|i| (format!("{i:02}"), json!(i))).collect();
        let mut query = ListQuery::default();
        query.page.size = 3;
        let mut seen = Vec::new();
        loop {
            let answer = paged("x", items.clone(), &query, "http://h/p");
            for v in answer["x"].as_array().unwrap() {
                seen.push(v.as_i64().unwrap());
            }
            if !answer["meta"]["hasMore"].as_bool().unwrap() {
                assert!(answer["links"].get("next").is_none());
                break;
            }
            query.page.after = answer["meta"]["afterCursor"].as_str().map(String::from);
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        query.page.after = None;
        query.page.before = Some("05".into());
        let answer = paged("x", items, &query, "http://h/p");
        assert_eq!(answer["x"], json!([2, 3, 4]));
        assert_eq!(answer["meta"]["hasMore"], true);
    }
}
