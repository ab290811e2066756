//! The emulator as the benchmarks run it: in this process, behind a
//! recording middleware that notes, per request, when it arrived, when it
//! was answered and with which status (for the `Retry-After` check).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use smooch::{SmoochClient, TransportConfig};
use smooch_emulator::{EmulatorConfig, EmulatorState, Faults, RequestCounts, router};
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One API request as the recording middleware saw it.
#[derive(Clone, Debug)]
pub struct Rec {
    pub arrived: Instant,
    pub answered: Instant,
    pub method: String,
    pub uri: String,
    pub body_hash: u64,
    pub status: u16,
    pub retry_after: Option<u64>,
}

pub type Log = Arc<Mutex<Vec<Rec>>>;

pub async fn record(State(log): State<Log>, request: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let uri = parts.uri.to_string();
    if !uri.starts_with("/v1") {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let bytes = axum::body::to_bytes(body, 4 << 20)
        .await
        .unwrap_or_default();
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let method = parts.method.to_string();
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let rec = Rec {
        arrived,
        answered: Instant::now(),
        method,
        uri,
        body_hash: h.finish(),
        status: response.status().as_u16(),
        retry_after,
    };
    log.lock().unwrap().push(rec);
    response
}

pub struct Emu {
    pub state: EmulatorState,
    pub base_url: String,
    pub log: Log,
    pub task: tokio::task::JoinHandle<()>,
}

impl Emu {
    pub async fn start(faults: Faults) -> Emu {
        let config = EmulatorConfig {
            faults,
            ..Default::default()
        };
        let (state, _) = EmulatorState::open(&config).expect("emulator state");
        let log: Log = Arc::default();
        let app = router(state.clone()).layer(from_fn_with_state(log.clone(), record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Emu {
            state,
            base_url: format!("http://{addr}"),
            log,
            task,
        }
    }

    pub fn counts(&self) -> RequestCounts {
        self.state.request_counts()
    }

    pub fn requests_seen(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    pub fn client(&self) -> SmoochClient {
        smooch_test_support::emulator::app_maker_client(
            &self.base_url,
            self.state.maker_key_id(),
            self.state.maker_secret(),
            TransportConfig {
                max_retries: 3,
                max_concurrency: 32,
                ..Default::default()
            },
        )
    }

    /// Waits until no API request arrived for `quiet` (at most `max`).
    pub async fn settle(&self, quiet: Duration, max: Duration) -> Duration {
        let start = Instant::now();
        let mut last = self.requests_seen();
        let mut since = Instant::now();
        while start.elapsed() < max {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.requests_seen();
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                break;
            }
        }
        start.elapsed()
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Retry-After check: for every 429, the next identical request (method,
/// URI and body) and how long after the 429 was answered it arrived.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RetryAfterCheck {
    pub answered_429: usize,
    pub repeated: usize,
    pub min_gap_ms: Option<u64>,
    /// The same, per route template.
    pub min_gap_ms_by_route: BTreeMap<String, u64>,
    /// Repeats sooner than Retry-After, per route.
    pub early: BTreeMap<String, usize>,
}

pub fn retry_after_check(log: &[Rec]) -> RetryAfterCheck {
    let mut check = RetryAfterCheck::default();
    let mut by_request: HashMap<(&str, &str, u64), Vec<&Rec>> = HashMap::new();
    for r in log {
        by_request
            .entry((&r.method, &r.uri, r.body_hash))
            .or_default()
            .push(r);
    }
    for recs in by_request.values_mut() {
        recs.sort_by_key(|r| r.arrived);
        for (i, r) in recs.iter().enumerate() {
            if r.status != 429 {
                continue;
            }
            check.answered_429 += 1;
            let Some(next) = recs[i + 1..].iter().find(|n| n.arrived >= r.answered) else {
                continue;
            };
            check.repeated += 1;
            let gap = next.arrived.duration_since(r.answered);
            let ms = gap.as_millis() as u64;
            check.min_gap_ms = Some(check.min_gap_ms.map_or(ms, |m| m.min(ms)));
            let route = format!("{} {}", r.method, route_of(&r.uri));
            let by_route = check.min_gap_ms_by_route.entry(route).or_insert(ms);
            *by_route = (*by_route).min(ms);
            if gap < Duration::from_secs(r.retry_after.unwrap_or(0)) {
                *check
                    .early
                    .entry(format!("{} {}", r.method, route_of(&r.uri)))
                    .or_default() += 1;
            }
        }
    }
    check
}

/// `/v1/apps/abc/keys/def` → `/v1/apps/{id}/keys/{id}` (query kept apart).
pub fn route_of(uri: &str) -> String {
    let path = uri.split('?').next().unwrap_or(uri);
    path.split('/')
        .map(|s| {
            if s.len() >= 20 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                "{id}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
