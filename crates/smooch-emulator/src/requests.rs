//! Request counters per route template (`"POST /v1/apps/{appId}/keys"`),
//! so tests can assert how many calls a client made.
//!
//! The counters' keys are bounded whatever clients send: routes are the
//! emulator's own templates, status codes are the few it answers with, and
//! methods outside the standard nine (GET, HEAD, POST, PUT, DELETE, PATCH,
//! OPTIONS, TRACE, CONNECT) are all counted under one label, `OTHER`. (They
//! are answered 405 `method_not_allowed` with Smooch's error body.)

use super::faults::Faulted;
use super::state::EmulatorState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RequestCounts {
    pub total: u64,
    /// GET and HEAD requests.
    pub reads: u64,
    /// Every other method.
    pub writes: u64,
    /// Requests per `"METHOD /route/{template}"`; METHOD is one of the
    /// standard nine or `OTHER`.
    pub routes: BTreeMap<String, u64>,
    /// Answers per route and status code.
    pub statuses: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Answers made by fault injection, per status code (429, 503).
    pub faulted: BTreeMap<u16, u64>,
}

impl RequestCounts {
    fn record(&mut self, method: &Method, route: String, status: u16, faulted: bool) {
        self.total += 1;
        if method == Method::GET || method == Method::HEAD {
            self.reads += 1;
        } else {
            self.writes += 1;
        }
        if faulted {
            *self.faulted.entry(status).or_default() += 1;
        }
        *self
            .statuses
            .entry(route.clone())
            .or_default()
            .entry(status)
            .or_default() += 1;
        *self.routes.entry(route).or_default() += 1;
    }
}

/// The counters' name for a method: a standard method's own name, else
/// [`OTHER_METHOD`], so that made-up method names cannot grow the counters.
pub fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "CONNECT" => "CONNECT",
        _ => OTHER_METHOD,
    }
}

/// The counters' label for every non-standard method.
pub const OTHER_METHOD: &str = "OTHER";

/// Middleware on the API routes: counts each answer under its route
/// template and logs method, route and status (never headers or bodies).
pub async fn count(State(state): State<EmulatorState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let label = method_label(&method);
    tracing::debug!(method = label, route = %template, status, "request");
    let faulted = response.extensions().get::<Faulted>().is_some();
    state.with_request_counts(|counts| {
        counts.record(&method, format!("{label} {template}"), status, faulted)
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_faults_are_split() {
        let mut c = RequestCounts::default();
        c.record(&Method::GET, "GET /v1/apps".into(), 200, false);
        c.record(&Method::POST, "POST /v1/apps".into(), 429, true);
        c.record(&Method::POST, "POST /v1/apps".into(), 201, false);
        assert_eq!((c.total, c.reads, c.writes), (3, 1, 2));
        assert_eq!(c.routes["POST /v1/apps"], 2);
        assert_eq!(c.statuses["POST /v1/apps"][&429], 1);
        assert_eq!(c.faulted[&429], 1);
    }

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::CONNECT), "CONNECT");
        for name in ["FOO", "get", "PROPFIND", "X-123456789012345678901234567890"] {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(method_label(&method), OTHER_METHOD, "{name}");
        }
    }
}
