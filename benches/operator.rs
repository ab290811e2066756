//! End-to-end benchmarks of the operator binary against a real control
//! plane and the Smooch emulator (with added latency), one scenario at a
//! time:
//!
//! ```text
//! hack/bench.sh convergence --n 100 --runs 3      # starts/stops a control plane
//! cargo bench --bench operator -- <scenario> ...  # with KUBECONFIG already set
//! cargo bench --bench operator -- --help
//! ```
//!
//! The operator runs as a child process (the release binary), so its RSS
//! and CPU time are its own. The emulator runs in this process behind a
//! recording middleware that notes, per request, when it arrived, when it
//! was answered and with which status (for the `Retry-After` check). Every
//! loop is bounded in count and time; all traffic is loopback.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use smooch_operator::emulator::{EmulatorConfig, EmulatorState, Faults, RequestCounts, router};
use smooch_operator::resources::{self, SmoochApp, SmoochIntegration, SmoochKey};
use smooch_operator::smooch::jwt;
use smooch_operator::smooch::models::{IntegrationType, SecretKey};
use smooch_operator::smooch::{Credentials, Sensitive, SmoochClient, Transport, TransportConfig};
use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ CLI

/// Operator benchmarks (see BENCHMARKS.md).
#[derive(Parser, Debug)]
#[command(name = "operator-bench")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    #[command(flatten)]
    common: Common,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Latency the emulator adds to every API call.
    #[arg(long, global = true, default_value_t = 20)]
    latency_ms: u64,
    /// Operator flag --smooch-concurrency.
    #[arg(long, global = true, default_value_t = 16)]
    smooch_concurrency: usize,
    /// Operator flag --reconcile-concurrency.
    #[arg(long, global = true, default_value_t = 8)]
    reconcile_concurrency: u16,
    /// Operator flag --resync-period (Go duration).
    #[arg(long, global = true, default_value = "10m")]
    resync: String,
    /// Longest wait for convergence, in seconds (a run that hits it is reported as such).
    #[arg(long, global = true, default_value_t = 600)]
    timeout_secs: u64,
    /// Quiet period (no Smooch call) that counts as "settled" after convergence, in seconds.
    #[arg(long, global = true, default_value_t = 3)]
    quiet_secs: u64,
    /// The operator binary (default: the one cargo built for this bench).
    #[arg(long, global = true, env = "SMOOCH_OPERATOR_BIN")]
    operator_bin: Option<PathBuf>,
    /// Append one JSON object per run to this file.
    #[arg(long, global = true, env = "BENCH_JSON")]
    json: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Apply N apps + N keys + N telegram integrations at once; time to all Ready, calls, writes.
    Convergence {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[command(flatten)]
        faults: FaultArgs,
    },
    /// Convergence at several concurrency settings (cartesian product).
    Sweep {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
        reconcile: Vec<u16>,
        #[arg(long, value_delimiter = ',', default_value = "8,16,32")]
        smooch: Vec<usize>,
    },
    /// With a Ready app, apply one SmoochKey at a time; apply → Secret with a valid JWT.
    SingleChange {
        #[arg(long, default_value_t = 30)]
        samples: usize,
    },
    /// N Ready, then several resync periods: calls and writes per resync.
    Steady {
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// Resync periods to observe (the resync is --resync, e.g. 30s).
        #[arg(long, default_value_t = 3)]
        periods: u32,
    },
    /// RSS (peak, steady), CPU seconds and start → /readyz at several N.
    Footprint {
        #[arg(long, value_delimiter = ',', default_value = "0,100,1000")]
        n: Vec<usize>,
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Idle time after convergence before the steady RSS is read.
        #[arg(long, default_value_t = 20)]
        settle_secs: u64,
    },
    /// Fault-free and faulted convergence, alternated; Retry-After honoured?
    Faults {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[command(flatten)]
        faults: FaultArgs,
    },
    /// kill -9 the operator at random moments while N converge; then count external objects.
    Crash {
        #[arg(long, default_value_t = 300)]
        n: usize,
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// Longest random pause between two kills, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        max_gap_ms: u64,
    },
    /// Two replicas with leader election; kill -9 the leader mid-convergence.
    Failover {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 5)]
        lease_secs: u64,
    },
    /// Restart kube-apiserver (of the control plane in --cp-dir) mid-convergence.
    ApiserverRestart {
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// The run dir given to `hack/controlplane.sh start`.
        #[arg(long, env = "CONTROLPLANE_DIR")]
        cp_dir: PathBuf,
        /// How long the apiserver stays down.
        #[arg(long, default_value_t = 5)]
        down_secs: u64,
    },
}

#[derive(Args, Debug, Clone, Copy)]
struct FaultArgs {
    /// Fraction of Smooch calls answered 503.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction of Smooch calls answered 429.
    #[arg(long, default_value_t = 0.0)]
    rate_limit_rate: f64,
    /// Retry-After of the 429 answers.
    #[arg(long, default_value_t = 1)]
    retry_after_secs: u64,
}

// ------------------------------------------------------------ emulator

/// One API request as the recording middleware saw it.
#[derive(Clone, Debug)]
struct Rec {
    arrived: Instant,
    answered: Instant,
    method: String,
    uri: String,
    body_hash: u64,
    status: u16,
    retry_after: Option<u64>,
}

type Log = Arc<Mutex<Vec<Rec>>>;

async fn record(State(log): State<Log>, request: Request, next: Next) -> Response {
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

struct Emu {
    state: EmulatorState,
    base_url: String,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Emu {
    async fn start(faults: Faults) -> Emu {
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

    fn counts(&self) -> RequestCounts {
        self.state.request_counts()
    }

    fn requests_seen(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn client(&self) -> SmoochClient {
        let transport = Transport::new(
            TransportConfig {
                base_url: self.base_url.clone(),
                max_retries: 3,
                max_concurrency: 32,
                ..Default::default()
            },
            None,
        )
        .unwrap();
        SmoochClient::new(
            transport,
            &Credentials::app_maker_key(
                self.state.maker_key_id(),
                self.state.maker_secret().clone(),
            ),
        )
        .unwrap()
    }

    /// Waits until no API request arrived for `quiet` (at most `max`).
    async fn settle(&self, quiet: Duration, max: Duration) -> Duration {
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
struct RetryAfterCheck {
    answered_429: usize,
    repeated: usize,
    min_gap_ms: Option<u64>,
    /// The same, per route template.
    min_gap_ms_by_route: BTreeMap<String, u64>,
    /// Repeats sooner than Retry-After, per route.
    early: BTreeMap<String, usize>,
}

fn retry_after_check(log: &[Rec]) -> RetryAfterCheck {
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
fn route_of(uri: &str) -> String {
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

// ------------------------------------------------------------ operator

struct Op {
    child: Child,
    log: PathBuf,
    spawned: Instant,
    metrics_addr: Option<String>,
    clk_tck: f64,
}

#[derive(Clone, Debug)]
struct OpConfig {
    bin: PathBuf,
    smooch_url: String,
    ns: String,
    reconcile_concurrency: u16,
    smooch_concurrency: usize,
    resync: String,
}

impl OpConfig {
    fn spawn(&self, name: &str, extra: &[&str]) -> Op {
        let dir = std::env::temp_dir().join("smooch-operator-bench");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("{}-{name}.log", self.ns));
        let out = std::fs::File::create(&log).expect("log file");
        let spawned = Instant::now();
        let child = Command::new(&self.bin)
            .args([
                "--smooch-url",
                &self.smooch_url,
                "--operator-namespace",
                &self.ns,
                "--watch-namespaces",
                &self.ns,
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-json",
                "--log-level",
                "info",
                "--reconcile-concurrency",
                &self.reconcile_concurrency.to_string(),
                "--smooch-concurrency",
                &self.smooch_concurrency.to_string(),
                "--resync-period",
                &self.resync,
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("operator binary starts");
        Op {
            child,
            log,
            spawned,
            metrics_addr: None,
            clk_tck: clk_tck(),
        }
    }
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

impl Op {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The metrics address from the first JSON log line.
    async fn metrics_addr(&mut self) -> String {
        if let Some(a) = &self.metrics_addr {
            return a.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|l| l.contains("smooch-operator starting"))
            {
                let v: Value = serde_json::from_str(line).unwrap_or_default();
                let addr = v["metrics"]
                    .as_str()
                    .or(v["fields"]["metrics"].as_str())
                    .expect("metrics field in the start line")
                    .to_string();
                self.metrics_addr = Some(addr.clone());
                return addr;
            }
            assert!(
                Instant::now() < deadline && self.alive(),
                "operator never started:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Time from spawning the process to /readyz answering 200.
    async fn wait_ready(&mut self, http: &reqwest::Client) -> Duration {
        let addr = self.metrics_addr().await;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await
                && r.status() == 200
            {
                return self.spawned.elapsed();
            }
            assert!(Instant::now() < deadline, "operator never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn metrics(&mut self, http: &reqwest::Client) -> Vec<Sample> {
        let addr = self.metrics_addr().await;
        match http.get(format!("http://{addr}/metrics")).send().await {
            Ok(r) => parse_prometheus(&r.text().await.unwrap_or_default()),
            Err(_) => Vec::new(),
        }
    }

    /// (VmHWM kB, VmRSS kB, CPU seconds).
    fn stats(&self) -> (u64, u64, f64) {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kb = |field: &str| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let cpu = (ticks(11) + ticks(12)) as f64 / self.clk_tck;
        (kb("VmHWM:"), kb("VmRSS:"), cpu)
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ------------------------------------------------------------ prometheus

struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (head, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (head, ""),
        };
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while let Some((key, after)) = rest.split_once("=\"") {
            let mut end = 0;
            let bytes = after.as_bytes();
            while end < bytes.len()
                && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\'))
            {
                end += 1;
            }
            map.insert(
                key.trim_start_matches(',').to_string(),
                after[..end].to_string(),
            );
            rest = after.get(end + 1..).unwrap_or("");
        }
        out.push(Sample {
            name: name.to_string(),
            labels: map,
            value,
        });
    }
    out
}

/// Sum of `name` samples, keyed by the given labels joined with `/`.
fn sum_by(samples: &[Sample], name: &str, keys: &[&str]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == name) {
        let key = keys
            .iter()
            .map(|k| s.labels.get(*k).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("/");
        *out.entry(key).or_default() += s.value;
    }
    out
}

fn diff(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - before.get(k).copied().unwrap_or(0.0)).round() as u64,
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Writes the API server saw to our resources, per "VERB resource[/sub]".
async fn apiserver_writes(client: &Client) -> BTreeMap<String, f64> {
    let req = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(req).await.unwrap_or_default();
    let mut out = BTreeMap::new();
    for s in parse_prometheus(&text)
        .into_iter()
        .filter(|s| s.name == "apiserver_request_total")
    {
        let verb = s.labels.get("verb").cloned().unwrap_or_default();
        let resource = s.labels.get("resource").cloned().unwrap_or_default();
        let sub = s.labels.get("subresource").cloned().unwrap_or_default();
        if !["POST", "PUT", "PATCH", "APPLY", "DELETE"].contains(&verb.as_str())
            || ![
                "smoochapps",
                "smoochkeys",
                "smoochintegrations",
                "secrets",
                "events",
            ]
            .contains(&resource.as_str())
        {
            continue;
        }
        let key = if sub.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{sub}")
        };
        *out.entry(key).or_default() += s.value;
    }
    out
}

// ------------------------------------------------------------ kubernetes

async fn kube_client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: run `hack/bench.sh <scenario>`, which starts a control plane"
    );
    Client::try_default().await.expect("kubeconfig usable")
}

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in resources::all_crds() {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("smooch-operator-bench").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRD applies");
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established in time")
        .expect("CRD watch");
    }
}

async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{:08x}", rand::random::<u32>());
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
    name
}

async fn retrying<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let mut last = String::new();
    for attempt in 0..20u32 {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
    panic!("{what} failed 20 times: {last}");
}

async fn put_secret(client: &Client, ns: &str, name: &str, pairs: &[(&str, &str)]) {
    let data: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "stringData": data,
    }))
    .unwrap();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let pp = PostParams::default();
    retrying("create secret", || api.create(&pp, &secret)).await;
}

fn app_json(i: usize) -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
           "metadata": {"name": format!("a{i}")}, "spec": {"name": format!("bench app {i}")}})
}

fn key_json(i: usize) -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
           "metadata": {"name": format!("k{i}")},
           "spec": {"appRef": {"name": format!("a{i}")}, "name": "bench"}})
}

fn integration_json(i: usize) -> Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochIntegration",
           "metadata": {"name": format!("t{i}")},
           "spec": {"appRef": {"name": format!("a{i}")}, "type": "telegram",
                    "telegram": {"tokenRef": {"name": format!("tg{i}"), "key": "token"}}}})
}

/// The world of one run: a namespace with the app-maker credentials and
/// N telegram token Secrets (made before the clock starts).
struct World {
    client: Client,
    ns: String,
    emu: Emu,
    http: reqwest::Client,
}

impl World {
    async fn new(client: &Client, prefix: &str, n: usize, faults: Faults) -> World {
        let ns = namespace(client, prefix).await;
        let emu = Emu::start(faults).await;
        put_secret(
            client,
            &ns,
            "smooch-credentials",
            &[
                ("keyId", emu.state.maker_key_id()),
                ("secret", emu.state.maker_secret().expose()),
            ],
        )
        .await;
        futures::stream::iter(0..n)
            .map(|i| {
                let (client, ns) = (client.clone(), ns.clone());
                async move {
                    let token = format!("{}:AAbench{i:06}", 100_000 + i);
                    put_secret(&client, &ns, &format!("tg{i}"), &[("token", &token)]).await;
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        World {
            client: client.clone(),
            ns,
            emu,
            http: reqwest::Client::new(),
        }
    }

    fn op_config(&self, common: &Common) -> OpConfig {
        OpConfig {
            bin: common
                .operator_bin
                .clone()
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smooch-operator"))),
            smooch_url: self.emu.base_url.clone(),
            ns: self.ns.clone(),
            reconcile_concurrency: common.reconcile_concurrency,
            smooch_concurrency: common.smooch_concurrency,
            resync: common.resync.clone(),
        }
    }

    /// Creates apps, keys and integrations 0..n (interleaved, 32 at a time).
    async fn apply(&self, range: std::ops::Range<usize>) {
        let objects: Vec<(u8, Value)> = range
            .flat_map(|i| {
                [
                    (0u8, app_json(i)),
                    (1, key_json(i)),
                    (2, integration_json(i)),
                ]
            })
            .collect();
        futures::stream::iter(objects)
            .map(|(kind, value)| {
                let (client, ns) = (self.client.clone(), self.ns.clone());
                async move {
                    let pp = PostParams::default();
                    match kind {
                        0 => {
                            let api: Api<SmoochApp> = Api::namespaced(client, &ns);
                            let o: SmoochApp = serde_json::from_value(value).unwrap();
                            retrying("create app", || api.create(&pp, &o)).await;
                        }
                        1 => {
                            let api: Api<SmoochKey> = Api::namespaced(client, &ns);
                            let o: SmoochKey = serde_json::from_value(value).unwrap();
                            retrying("create key", || api.create(&pp, &o)).await;
                        }
                        _ => {
                            let api: Api<SmoochIntegration> = Api::namespaced(client, &ns);
                            let o: SmoochIntegration = serde_json::from_value(value).unwrap();
                            retrying("create integration", || api.create(&pp, &o)).await;
                        }
                    }
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
    }

    /// Ready=True counts (apps, keys, integrations); None when the API server did not answer.
    async fn ready_counts(&self) -> Option<(usize, usize, usize)> {
        async fn count<K>(api: Api<K>) -> Option<usize>
        where
            K: kube::Resource
                + Clone
                + serde::de::DeserializeOwned
                + serde::Serialize
                + std::fmt::Debug,
        {
            let list = api.list(&ListParams::default()).await.ok()?;
            Some(list.items.iter().filter(|o| is_ready(*o)).count())
        }
        let c = &self.client;
        Some((
            count(Api::<SmoochApp>::namespaced(c.clone(), &self.ns)).await?,
            count(Api::<SmoochKey>::namespaced(c.clone(), &self.ns)).await?,
            count(Api::<SmoochIntegration>::namespaced(c.clone(), &self.ns)).await?,
        ))
    }

    /// Waits for the Smooch side to go quiet (trailing reconciles counted).
    async fn settle(&self, common: &Common) {
        self.emu
            .settle(
                Duration::from_secs(common.quiet_secs),
                Duration::from_secs(60),
            )
            .await;
    }

    /// Polls until 3n objects are Ready; false after `--timeout-secs`.
    async fn wait_all_ready(&self, n: usize, common: &Common) -> bool {
        let timeout = Duration::from_secs(common.timeout_secs);
        let poll = if n <= 100 {
            Duration::from_millis(200)
        } else if n <= 300 {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(1)
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((a, k, i)) = self.ready_counts().await
                && a >= n
                && k >= n
                && i >= n
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(poll).await;
        }
    }
}

fn is_ready<K: serde::Serialize>(obj: &K) -> bool {
    let v = serde_json::to_value(obj).unwrap_or_default();
    v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn secret_text(s: &Secret, key: &str) -> Option<String> {
    String::from_utf8(s.data.as_ref()?.get(key)?.0.clone()).ok()
}

/// Whether a key Secret holds a JWT for its key id, signed with its secret, app scope.
fn jwt_valid(s: &Secret) -> bool {
    let (Some(token), Some(kid), Some(secret)) = (
        secret_text(s, "jwt"),
        secret_text(s, "keyId"),
        secret_text(s, "secret"),
    ) else {
        return false;
    };
    jwt::key_id_of(&token).is_ok_and(|k| k == kid)
        && jwt::verify(&token, &Sensitive::from(secret)).is_ok_and(|c| c.scope == jwt::Scope::App)
}

// ------------------------------------------------------------ verification

/// What exists in Smooch versus the resources, after convergence.
#[derive(Clone, Debug, Default, serde::Serialize)]
struct Verify {
    apps_in_smooch: usize,
    apps_not_exactly_once: usize,
    keys_not_exactly_once: usize,
    orphaned_keys: usize,
    integrations_not_exactly_once: usize,
    orphaned_integrations: usize,
    wrong_secrets: usize,
}

impl Verify {
    fn clean(&self) -> bool {
        self.apps_not_exactly_once
            + self.keys_not_exactly_once
            + self.orphaned_keys
            + self.integrations_not_exactly_once
            + self.orphaned_integrations
            + self.wrong_secrets
            == 0
    }
}

async fn verify(world: &World) -> Verify {
    // Reads only, without latency or faults.
    let _ = world.emu.state.set_faults(Faults::default());
    let smooch = world.emu.client();
    let c = &world.client;
    let apps = Api::<SmoochApp>::namespaced(c.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let keys = Api::<SmoochKey>::namespaced(c.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let ints = Api::<SmoochIntegration>::namespaced(c.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let secrets: HashMap<String, Secret> = Api::<Secret>::namespaced(c.clone(), &world.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.name_any(), s))
        .collect();
    let external = smooch.list_all_apps().await.expect("list apps");
    let mut v = Verify {
        apps_in_smooch: external.len(),
        ..Default::default()
    };
    let tag_of = |a: &smooch_operator::smooch::models::App| {
        a.metadata
            .as_ref()
            .and_then(|m| m.get("smoochOperatorUid"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut by_uid: HashMap<String, usize> = HashMap::new();
    for a in &external {
        *by_uid.entry(tag_of(a).unwrap_or_default()).or_default() += 1;
    }
    let app_by_name: HashMap<String, &SmoochApp> = apps.iter().map(|a| (a.name_any(), a)).collect();
    let ext_by_id: HashMap<&str, &smooch_operator::smooch::models::App> =
        external.iter().map(|a| (a.id.as_str(), a)).collect();
    for a in &apps {
        let uid = a.uid().unwrap_or_default();
        if by_uid.get(&uid).copied() != Some(1) {
            v.apps_not_exactly_once += 1;
        }
        let recorded = a.status.as_ref().and_then(|s| s.app_id.clone());
        let ext = recorded.as_deref().and_then(|id| ext_by_id.get(id));
        let ok = match (ext, secrets.get(&format!("{}-app", a.name_any()))) {
            (Some(ext), Some(s)) => {
                secret_text(s, "appId").as_deref() == Some(ext.id.as_str())
                    && secret_text(s, "appToken").as_deref() == Some(ext.app_token.expose())
            }
            _ => false,
        };
        if !ok {
            v.wrong_secrets += 1;
        }
    }
    // Apps in Smooch that no resource claims count as not-exactly-once too.
    let uids: std::collections::HashSet<String> = apps.iter().filter_map(|a| a.uid()).collect();
    v.apps_not_exactly_once += external
        .iter()
        .filter(|a| !tag_of(a).is_some_and(|t| uids.contains(&t)))
        .count();

    // Keys and integrations, per external app.
    let per_app: Vec<(String, Vec<SecretKey>, Vec<String>)> =
        futures::stream::iter(external.iter())
            .map(|a| {
                let smooch = &smooch;
                async move {
                    let keys = smooch.list_keys(&a.id).await.unwrap_or_default();
                    let ints = smooch
                        .list_integrations(&a.id, &[IntegrationType::Telegram])
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| i.id)
                        .collect();
                    (a.id.clone(), keys, ints)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    let keys_by_app: HashMap<&str, &Vec<SecretKey>> =
        per_app.iter().map(|(id, k, _)| (id.as_str(), k)).collect();
    let ints_by_app: HashMap<&str, &Vec<String>> =
        per_app.iter().map(|(id, _, i)| (id.as_str(), i)).collect();
    let mut claimed_keys = std::collections::HashSet::new();
    for k in &keys {
        let app_id = app_by_name
            .get(&k.spec.app_ref.name)
            .and_then(|a| a.status.as_ref()?.app_id.clone())
            .unwrap_or_default();
        let tag = format!("bench.{}", k.uid().unwrap_or_default());
        let in_smooch: Vec<&SecretKey> = keys_by_app
            .get(app_id.as_str())
            .map(|ks| ks.iter().filter(|x| x.name == tag).collect())
            .unwrap_or_default();
        let recorded = k.status.as_ref().and_then(|s| s.key_id.clone());
        if in_smooch.len() != 1 || Some(in_smooch[0].id.clone()) != recorded {
            v.keys_not_exactly_once += 1;
        }
        if let Some(id) = &recorded {
            claimed_keys.insert(id.clone());
        }
        let ok = match (
            in_smooch.first(),
            secrets.get(&format!("{}-key", k.name_any())),
        ) {
            (Some(ext), Some(s)) => {
                secret_text(s, "keyId").as_deref() == Some(ext.id.as_str())
                    && secret_text(s, "secret").as_deref() == Some(ext.secret.expose())
                    && secret_text(s, "appId").as_deref() == Some(app_id.as_str())
                    && jwt_valid(s)
            }
            _ => false,
        };
        if !ok {
            v.wrong_secrets += 1;
        }
    }
    v.orphaned_keys = per_app
        .iter()
        .flat_map(|(_, ks, _)| ks.iter())
        .filter(|k| !claimed_keys.contains(&k.id))
        .count();
    let mut claimed_ints = std::collections::HashSet::new();
    for i in &ints {
        let app_id = app_by_name
            .get(&i.spec.app_ref.name)
            .and_then(|a| a.status.as_ref()?.app_id.clone())
            .unwrap_or_default();
        let recorded = i.status.as_ref().and_then(|s| s.integration_id.clone());
        let listed = ints_by_app.get(app_id.as_str()).copied();
        if listed.is_none_or(|l| l.len() != 1 || Some(&l[0]) != recorded.as_ref()) {
            v.integrations_not_exactly_once += 1;
        }
        if let Some(id) = recorded {
            claimed_ints.insert(id);
        }
    }
    v.orphaned_integrations = per_app
        .iter()
        .flat_map(|(_, _, is)| is.iter())
        .filter(|i| !claimed_ints.contains(*i))
        .count();
    v
}

// ------------------------------------------------------------ convergence

#[derive(Clone, Debug, Default, serde::Serialize)]
struct Run {
    scenario: String,
    n: usize,
    reconcile_concurrency: u16,
    smooch_concurrency: usize,
    latency_ms: u64,
    error_rate: f64,
    rate_limit_rate: f64,
    load_before: String,
    load_after: String,
    readyz_s: f64,
    apply_s: f64,
    converge_s: f64,
    timed_out: bool,
    smooch_calls: u64,
    smooch_reads: u64,
    smooch_writes: u64,
    smooch_routes: BTreeMap<String, u64>,
    smooch_faulted: BTreeMap<u16, u64>,
    min_calls_strict: u64,
    min_calls_crash_safe: u64,
    bound_s: f64,
    bound_min_s: f64,
    kube_writes_metric: BTreeMap<String, u64>,
    kube_writes_metric_total: u64,
    apiserver_writes: BTreeMap<String, u64>,
    apiserver_writes_by_operator: u64,
    min_kube_writes: u64,
    reconciles: BTreeMap<String, u64>,
    failures: BTreeMap<String, u64>,
    /// Mean reconcile duration per kind, ms (operator histogram sum/count).
    reconcile_mean_ms: BTreeMap<String, f64>,
    /// Mean Smooch call duration seen by the operator, ms.
    smooch_call_mean_ms: f64,
    peak_rss_mb: f64,
    steady_rss_mb: f64,
    cpu_s: f64,
    retry_after: RetryAfterCheck,
    verify: Option<Verify>,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn faults_of(common: &Common, f: &FaultArgs) -> Faults {
    Faults {
        latency_ms: common.latency_ms,
        error_rate: f.error_rate,
        rate_limit_rate: f.rate_limit_rate,
        retry_after_secs: f.retry_after_secs,
    }
}

/// Strict minimum: POST per app/key/integration + the JWT GET per key.
/// Crash-safe minimum: plus one lookup by tag before each create
/// (list apps: one page per 100 apps existing; list keys; list integrations).
fn minimum_calls(n: usize) -> (u64, u64) {
    let n = n as u64;
    let strict = 4 * n;
    // Crash-safe: before each create, one lookup by tag: a list of the app's
    // keys per key, of its integrations per integration, and for apps one
    // walk of the account's app list per operator process (1 page here, the
    // account being empty when the run starts).
    (strict, strict + 2 * n + 1)
}

async fn converge_once(
    client: &Client,
    common: &Common,
    n: usize,
    f: FaultArgs,
    settle: Duration,
    check: bool,
) -> Run {
    let load_before = loadavg();
    let faults = faults_of(common, &f);
    let world = World::new(client, "bench-conv", n, faults).await;
    let cfg = world.op_config(common);
    let mut op = cfg.spawn("op", &[]);
    let readyz = op.wait_ready(&world.http).await;
    let kube_before = apiserver_writes(client).await;
    let t0 = Instant::now();
    world.apply(0..n).await;
    let apply_s = t0.elapsed().as_secs_f64();
    let ok = world.wait_all_ready(n, common).await;
    let converge_s = t0.elapsed().as_secs_f64();
    world.settle(common).await;
    let counts = world.emu.counts();
    let metrics = op.metrics(&world.http).await;
    let kube_after = apiserver_writes(client).await;
    let (peak_kb, _, _) = op.stats();
    if settle > Duration::ZERO {
        tokio::time::sleep(settle).await;
    }
    let (peak2, steady_kb, cpu_s) = op.stats();
    let log = world.emu.log.lock().unwrap().clone();
    let retry_after = retry_after_check(&log);
    let verify = if check && n > 0 {
        Some(verify(&world).await)
    } else {
        None
    };
    let (min_strict, min_safe) = minimum_calls(n);
    let lat = common.latency_ms as f64 / 1000.0;
    let sc = common.smooch_concurrency as f64;
    let kube_writes_metric: BTreeMap<String, u64> = sum_by(
        &metrics,
        "smooch_operator_kubernetes_writes_total",
        &["kind", "object"],
    )
    .into_iter()
    .map(|(k, v)| (k, v as u64))
    .collect();
    let mut apiserver = diff(&kube_after, &kube_before);
    // The bench itself created the 3n custom resources: not the operator's.
    for kind in ["smoochapps", "smoochkeys", "smoochintegrations"] {
        let key = format!("POST {kind}");
        if let Some(c) = apiserver.get_mut(&key) {
            *c = c.saturating_sub(n as u64);
        }
        apiserver.retain(|_, c| *c > 0);
    }
    let by_operator: u64 = apiserver.values().sum();
    let run = Run {
        scenario: "convergence".into(),
        n,
        reconcile_concurrency: common.reconcile_concurrency,
        smooch_concurrency: common.smooch_concurrency,
        latency_ms: common.latency_ms,
        error_rate: f.error_rate,
        rate_limit_rate: f.rate_limit_rate,
        load_before,
        load_after: loadavg(),
        readyz_s: readyz.as_secs_f64(),
        apply_s,
        converge_s,
        timed_out: !ok,
        smooch_calls: counts.total,
        smooch_reads: counts.reads,
        smooch_writes: counts.writes,
        smooch_routes: counts.routes.clone(),
        smooch_faulted: counts.faulted.clone(),
        min_calls_strict: min_strict,
        min_calls_crash_safe: min_safe,
        bound_s: counts.total as f64 * lat / sc,
        bound_min_s: min_strict as f64 * lat / sc,
        kube_writes_metric_total: kube_writes_metric.values().sum(),
        kube_writes_metric,
        apiserver_writes: apiserver,
        apiserver_writes_by_operator: by_operator,
        // finalizer + status per object, Secret per app and key.
        min_kube_writes: 8 * n as u64,
        reconciles: sum_by(&metrics, "smooch_operator_reconciles_total", &["kind"])
            .into_iter()
            .map(|(k, v)| (k, v as u64))
            .collect(),
        failures: sum_by(
            &metrics,
            "smooch_operator_reconcile_failures_total",
            &["kind", "reason"],
        )
        .into_iter()
        .map(|(k, v)| (k, v as u64))
        .collect(),
        reconcile_mean_ms: {
            let sums = sum_by(
                &metrics,
                "smooch_operator_reconcile_duration_seconds_sum",
                &["kind"],
            );
            let counts = sum_by(
                &metrics,
                "smooch_operator_reconcile_duration_seconds_count",
                &["kind"],
            );
            sums.iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        1000.0 * s / counts.get(k).copied().unwrap_or(1.0),
                    )
                })
                .collect()
        },
        smooch_call_mean_ms: {
            let total = |name: &str| sum_by(&metrics, name, &[]).values().sum::<f64>();
            1000.0 * total("smooch_operator_smooch_api_call_duration_seconds_sum")
                / total("smooch_operator_smooch_api_call_duration_seconds_count").max(1.0)
        },
        peak_rss_mb: peak_kb.max(peak2) as f64 / 1024.0,
        steady_rss_mb: steady_kb as f64 / 1024.0,
        cpu_s,
        retry_after,
        verify,
    };
    drop(op);
    run
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

fn emit_json(common: &Common, value: &impl serde::Serialize) {
    if let Some(path) = &common.json {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("json output file");
        writeln!(f, "{}", serde_json::to_string(value).unwrap()).unwrap();
    }
}

fn print_run_header() {
    println!(
        "{:>5} {:>3} {:>3} {:>4} {:>9} {:>8} {:>9} {:>7} {:>7} {:>9} {:>7} {:>6} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>6}  load(1/5/15m) before → after",
        "N",
        "rc",
        "sc",
        "lat",
        "faults",
        "readyz",
        "converge",
        "calls",
        "min4N",
        "min-safe",
        "bound",
        "ratio",
        "k8s-op",
        "min8N",
        "metric",
        "peakMB",
        "steadyMB",
        "cpu_s",
        "ok"
    );
}

fn print_run(r: &Run) {
    println!(
        "{:>5} {:>3} {:>3} {:>4} {:>9} {:>7.2}s {:>8.1}s {:>7} {:>7} {:>9} {:>6.1}s {:>6.1} {:>8} {:>8} {:>8} {:>6.0} {:>7.0} {:>7.1} {:>6}  {} → {}",
        r.n,
        r.reconcile_concurrency,
        r.smooch_concurrency,
        r.latency_ms,
        format!("{}/{}", r.error_rate, r.rate_limit_rate),
        r.readyz_s,
        r.converge_s,
        r.smooch_calls,
        r.min_calls_strict,
        r.min_calls_crash_safe,
        r.bound_s,
        if r.bound_s > 0.0 {
            r.converge_s / r.bound_s
        } else {
            f64::NAN
        },
        r.apiserver_writes_by_operator,
        r.min_kube_writes,
        r.kube_writes_metric_total,
        r.peak_rss_mb,
        r.steady_rss_mb,
        r.cpu_s,
        if r.timed_out {
            "TIMEOUT"
        } else if r.verify.as_ref().is_some_and(|v| !v.clean()) {
            "DIRTY"
        } else {
            "yes"
        },
        r.load_before,
        r.load_after,
    );
}

fn print_median(runs: &[Run]) {
    let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    println!(
        "median of {} run(s): converge {:.1}s, readyz {:.2}s, calls {:.0}, bound {:.1}s (ratio {:.1}), k8s writes by operator {:.0} (metric {:.0}), peak RSS {:.0} MB, steady RSS {:.0} MB, CPU {:.1}s",
        runs.len(),
        m(|r| r.converge_s),
        m(|r| r.readyz_s),
        m(|r| r.smooch_calls as f64),
        m(|r| r.bound_s),
        m(|r| r.converge_s / r.bound_s.max(1e-9)),
        m(|r| r.apiserver_writes_by_operator as f64),
        m(|r| r.kube_writes_metric_total as f64),
        m(|r| r.peak_rss_mb),
        m(|r| r.steady_rss_mb),
        m(|r| r.cpu_s),
    );
}

fn print_details(r: &Run) {
    println!("  Smooch calls per route (emulator counters):");
    for (route, c) in &r.smooch_routes {
        println!("    {c:>7}  {route}");
    }
    if !r.smooch_faulted.is_empty() {
        println!("  faulted answers: {:?}", r.smooch_faulted);
    }
    println!(
        "  Kubernetes writes seen by the API server (the operator's: the bench's 3N creates taken off):"
    );
    for (k, c) in &r.apiserver_writes {
        println!("    {c:>7}  {k}");
    }
    println!(
        "  operator metric kubernetes_writes_total: {:?}",
        r.kube_writes_metric
    );
    println!("  reconciles: {:?}", r.reconciles);
    println!(
        "  mean reconcile duration (ms): {:?}; mean Smooch call as the operator saw it: {:.1} ms",
        r.reconcile_mean_ms
            .iter()
            .map(|(k, v)| (k.as_str(), v.round()))
            .collect::<BTreeMap<_, _>>(),
        r.smooch_call_mean_ms
    );
    if !r.failures.is_empty() {
        println!("  reconcile failures: {:?}", r.failures);
    }
    if r.retry_after.answered_429 > 0 {
        println!(
            "  Retry-After: {} answered 429, {} repeated identically, min gap {:?} ms, repeats sooner than Retry-After: {:?}",
            r.retry_after.answered_429,
            r.retry_after.repeated,
            r.retry_after.min_gap_ms,
            r.retry_after.early
        );
        println!(
            "  min gap 429 → identical request, per route (ms): {:?}",
            r.retry_after.min_gap_ms_by_route
        );
    }
    if let Some(v) = &r.verify {
        println!("  verify: {v:?}");
    }
}

async fn convergence(client: &Client, common: &Common, n: usize, runs: usize, f: FaultArgs) {
    let mut all = Vec::new();
    print_run_header();
    for _ in 0..runs {
        let r = converge_once(client, common, n, f, Duration::from_secs(5), true).await;
        print_run(&r);
        emit_json(common, &r);
        all.push(r);
    }
    print_median(&all);
    if let Some(r) = all.last() {
        println!("details of the last run:");
        print_details(r);
    }
}

// ------------------------------------------------------------ scenarios

async fn sweep(
    client: &Client,
    common: &Common,
    n: usize,
    runs: usize,
    rcs: &[u16],
    scs: &[usize],
) {
    let mut summary = Vec::new();
    print_run_header();
    for &rc in rcs {
        for &sc in scs {
            let mut c = common.clone();
            c.reconcile_concurrency = rc;
            c.smooch_concurrency = sc;
            let mut rs = Vec::new();
            for _ in 0..runs {
                let r = converge_once(client, &c, n, no_faults(), Duration::ZERO, false).await;
                print_run(&r);
                let mut j = serde_json::to_value(&r).unwrap();
                j["scenario"] = json!("sweep");
                emit_json(common, &j);
                rs.push(r);
            }
            summary.push((
                rc,
                sc,
                median(rs.iter().map(|r| r.converge_s).collect()),
                median(rs.iter().map(|r| r.smooch_calls as f64).collect()),
                median(rs.iter().map(|r| r.cpu_s).collect()),
                median(rs.iter().map(|r| r.peak_rss_mb).collect()),
            ));
        }
    }
    println!(
        "\nsweep, N={n}, latency {} ms, median of {runs} run(s):",
        common.latency_ms
    );
    println!(
        "{:>4} {:>4} {:>10} {:>8} {:>7} {:>7}",
        "rc", "sc", "converge", "calls", "cpu_s", "peakMB"
    );
    for (rc, sc, t, calls, cpu, rss) in summary {
        println!("{rc:>4} {sc:>4} {t:>9.1}s {calls:>8.0} {cpu:>7.1} {rss:>7.0}");
    }
}

fn no_faults() -> FaultArgs {
    FaultArgs {
        error_rate: 0.0,
        rate_limit_rate: 0.0,
        retry_after_secs: 1,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn single_change(client: &Client, common: &Common, samples: usize) {
    let load_before = loadavg();
    let world = World::new(client, "bench-one", 0, faults_of(common, &no_faults())).await;
    let mut op = world.op_config(common).spawn("op", &[]);
    op.wait_ready(&world.http).await;
    let apps: Api<SmoochApp> = Api::namespaced(client.clone(), &world.ns);
    apps.create(
        &PostParams::default(),
        &serde_json::from_value(app_json(0)).unwrap(),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !apps.get("a0").await.is_ok_and(|a| is_ready(&a)) {
        assert!(Instant::now() < deadline, "app never Ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    world
        .emu
        .settle(Duration::from_secs(2), Duration::from_secs(30))
        .await;
    let keys: Api<SmoochKey> = Api::namespaced(client.clone(), &world.ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &world.ns);
    let mut lat = Vec::new();
    let calls_before = world.emu.counts().total;
    for i in 0..samples {
        let key: SmoochKey = serde_json::from_value(json!({
            "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
            "metadata": {"name": format!("one{i}")},
            "spec": {"appRef": {"name": "a0"}, "name": "bench"}}))
        .unwrap();
        let t = Instant::now();
        keys.create(&PostParams::default(), &key).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(s)) = secrets.get_opt(&format!("one{i}-key")).await
                && jwt_valid(&s)
            {
                break;
            }
            assert!(Instant::now() < deadline, "key {i} never got its Secret");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        // Let trailing reconciles of this key finish before the next sample.
        world
            .emu
            .settle(Duration::from_millis(500), Duration::from_secs(10))
            .await;
    }
    let calls = world.emu.counts().total - calls_before;
    let mut sorted = lat.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let result = json!({
        "scenario": "single-change", "samples": samples, "latency_ms": common.latency_ms,
        "p50_ms": percentile(&sorted, 0.5), "p99_ms": percentile(&sorted, 0.99),
        "min_ms": sorted[0], "max_ms": sorted[sorted.len() - 1],
        "smooch_calls_per_key": calls as f64 / samples as f64,
        "samples_ms": lat, "load_before": load_before, "load_after": loadavg(),
    });
    println!(
        "single change (one SmoochKey, app Ready, emulator latency {} ms), {samples} samples: p50 {:.0} ms, p99 {:.0} ms (nearest rank; = max for <100 samples), min {:.0} ms, max {:.0} ms; Smooch calls per key {:.1}; load {} → {}",
        common.latency_ms,
        result["p50_ms"].as_f64().unwrap(),
        result["p99_ms"].as_f64().unwrap(),
        sorted[0],
        sorted[sorted.len() - 1],
        calls as f64 / samples as f64,
        result["load_before"].as_str().unwrap(),
        result["load_after"].as_str().unwrap(),
    );
    emit_json(common, &result);
}

async fn steady(client: &Client, common: &Common, n: usize, periods: u32) {
    let resync = smooch_operator::reconcile::key::parse_duration(&common.resync)
        .expect("--resync is a duration");
    let load_before = loadavg();
    let world = World::new(client, "bench-steady", n, faults_of(common, &no_faults())).await;
    let mut op = world.op_config(common).spawn("op", &[]);
    op.wait_ready(&world.http).await;
    let t0 = Instant::now();
    world.apply(0..n).await;
    let ok = world.wait_all_ready(n, common).await;
    let converge_s = t0.elapsed().as_secs_f64();
    world.settle(common).await;
    let c0 = world.emu.counts();
    let m0 = op.metrics(&world.http).await;
    let k0 = apiserver_writes(client).await;
    let (_, _, cpu0) = op.stats();
    let window = resync * periods;
    tokio::time::sleep(window).await;
    let c1 = world.emu.counts();
    let m1 = op.metrics(&world.http).await;
    let k1 = apiserver_writes(client).await;
    let (peak, rss, cpu1) = op.stats();
    let p = f64::from(periods);
    let route_delta: BTreeMap<String, u64> = c1
        .routes
        .iter()
        .map(|(k, v)| (k.clone(), v - c0.routes.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let rec0 = sum_by(&m0, "smooch_operator_reconciles_total", &["kind"]);
    let rec1 = sum_by(&m1, "smooch_operator_reconciles_total", &["kind"]);
    let w0 = sum_by(
        &m0,
        "smooch_operator_kubernetes_writes_total",
        &["kind", "object"],
    );
    let w1 = sum_by(
        &m1,
        "smooch_operator_kubernetes_writes_total",
        &["kind", "object"],
    );
    let kube_delta = diff(&k1, &k0);
    let reconciles = diff(&rec1, &rec0);
    let result = json!({
        "scenario": "steady", "n": n, "resync": common.resync, "periods": periods,
        "converged": ok, "converge_s": converge_s,
        "smooch_reads_per_resync": (c1.reads - c0.reads) as f64 / p,
        "smooch_writes_per_resync": (c1.writes - c0.writes) as f64 / p,
        "smooch_routes_delta": route_delta,
        "reconciles_delta": reconciles,
        "operator_kube_writes_delta": diff(&w1, &w0),
        "apiserver_writes_delta": kube_delta,
        "cpu_s_in_window": cpu1 - cpu0, "steady_rss_mb": rss as f64 / 1024.0,
        "peak_rss_mb": peak as f64 / 1024.0,
        "load_before": load_before, "load_after": loadavg(),
    });
    println!(
        "steady state, N={n} (3N={} objects), resync {}, window {:?} ({periods} periods), converged: {ok} in {converge_s:.1}s",
        3 * n,
        common.resync,
        window
    );
    println!(
        "  per resync: Smooch reads {:.1}, Smooch writes {:.1}; Kubernetes writes in the window (API server): {:?}; operator metric writes delta: {:?}",
        (c1.reads - c0.reads) as f64 / p,
        (c1.writes - c0.writes) as f64 / p,
        result["apiserver_writes_delta"],
        result["operator_kube_writes_delta"],
    );
    println!("  reconciles in the window: {reconciles:?}");
    println!("  Smooch calls in the window per route: {route_delta:?}");
    println!(
        "  operator CPU in the window {:.2}s, RSS {:.0} MB (peak {:.0} MB); load {} → {}",
        cpu1 - cpu0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        result["load_before"].as_str().unwrap(),
        result["load_after"].as_str().unwrap()
    );
    emit_json(common, &result);
}

async fn footprint(client: &Client, common: &Common, ns_list: &[usize], runs: usize, settle: u64) {
    let mut rows = Vec::new();
    for &n in ns_list {
        let mut rs = Vec::new();
        for _ in 0..runs {
            let r = converge_once(
                client,
                common,
                n,
                no_faults(),
                Duration::from_secs(settle),
                false,
            )
            .await;
            let mut j = serde_json::to_value(&r).unwrap();
            j["scenario"] = json!("footprint");
            emit_json(common, &j);
            println!(
                "N={n}: readyz {:.2}s, converge {:.1}s{}, peak RSS {:.1} MB, steady RSS {:.1} MB ({settle}s after), CPU {:.1}s; load {} → {}",
                r.readyz_s,
                r.converge_s,
                if r.timed_out { " (TIMEOUT)" } else { "" },
                r.peak_rss_mb,
                r.steady_rss_mb,
                r.cpu_s,
                r.load_before,
                r.load_after
            );
            rs.push(r);
        }
        rows.push((
            n,
            median(rs.iter().map(|r| r.readyz_s).collect()),
            median(rs.iter().map(|r| r.peak_rss_mb).collect()),
            median(rs.iter().map(|r| r.steady_rss_mb).collect()),
            median(rs.iter().map(|r| r.cpu_s).collect()),
        ));
    }
    println!("\nfootprint, median of {runs} run(s):");
    println!(
        "{:>6} {:>10} {:>8} {:>9} {:>7}",
        "N", "readyz_s", "peakMB", "steadyMB", "cpu_s"
    );
    for (n, rz, p, s, c) in rows {
        println!("{n:>6} {rz:>10.2} {p:>8.1} {s:>9.1} {c:>7.1}");
    }
}

async fn faults(client: &Client, common: &Common, n: usize, runs: usize, f: FaultArgs) {
    let f = if f.error_rate == 0.0 && f.rate_limit_rate == 0.0 {
        FaultArgs {
            error_rate: 0.2,
            rate_limit_rate: 0.1,
            retry_after_secs: 1,
        }
    } else {
        f
    };
    let (mut clean, mut faulty) = (Vec::new(), Vec::new());
    print_run_header();
    for _ in 0..runs {
        let r = converge_once(client, common, n, no_faults(), Duration::ZERO, true).await;
        print_run(&r);
        let mut j = serde_json::to_value(&r).unwrap();
        j["scenario"] = json!("faults-baseline");
        emit_json(common, &j);
        clean.push(r);
        let r = converge_once(client, common, n, f, Duration::ZERO, true).await;
        print_run(&r);
        let mut j = serde_json::to_value(&r).unwrap();
        j["scenario"] = json!("faults");
        emit_json(common, &j);
        faulty.push(r);
    }
    println!("fault-free:");
    print_median(&clean);
    println!(
        "with faults ({} 503, {} 429 with Retry-After {}s):",
        f.error_rate, f.rate_limit_rate, f.retry_after_secs
    );
    print_median(&faulty);
    for r in &faulty {
        println!(
            "  run: faulted {:?}; Retry-After: {} answered 429, {} repeated identically, min gap {:?} ms, early repeats {:?}; verify clean: {}",
            r.smooch_faulted,
            r.retry_after.answered_429,
            r.retry_after.repeated,
            r.retry_after.min_gap_ms,
            r.retry_after.early,
            r.verify.as_ref().is_some_and(Verify::clean)
        );
    }
    if let Some(r) = faulty.last() {
        println!("details of the last faulted run:");
        print_details(r);
    }
}

async fn crash(client: &Client, common: &Common, n: usize, kills: usize, max_gap_ms: u64) {
    use rand::Rng;
    let load_before = loadavg();
    let world = World::new(client, "bench-crash", n, faults_of(common, &no_faults())).await;
    let cfg = world.op_config(common);
    let mut op = cfg.spawn("op-0", &[]);
    op.wait_ready(&world.http).await;
    let t0 = Instant::now();
    let apply = world.apply(0..n);
    let killer = async {
        let mut killed_before_ready = 0;
        for k in 0..kills {
            let gap = rand::rng().random_range(100..=max_gap_ms.max(101));
            tokio::time::sleep(Duration::from_millis(gap)).await;
            op.kill9();
            if world
                .ready_counts()
                .await
                .is_some_and(|(a, kk, i)| a + kk + i < 3 * n)
            {
                killed_before_ready += 1;
            }
            op = cfg.spawn(&format!("op-{}", k + 1), &[]);
        }
        killed_before_ready
    };
    let (_, killed_before_ready) = futures::join!(apply, killer);
    let last_restart = Instant::now();
    let ok = world.wait_all_ready(n, common).await;
    let converge_s = t0.elapsed().as_secs_f64();
    let after_last = last_restart.elapsed().as_secs_f64();
    world.settle(common).await;
    let counts = world.emu.counts();
    let v = verify(&world).await;
    let result = json!({
        "scenario": "crash", "n": n, "kills": kills, "killed_before_all_ready": killed_before_ready,
        "converged": ok, "converge_s": converge_s, "ready_after_last_restart_s": after_last,
        "smooch_routes": counts.routes, "verify": v, "load_before": load_before, "load_after": loadavg(),
    });
    println!(
        "crash: N={n} (3N={} objects), {kills} kill -9 (random gaps 100..{max_gap_ms} ms), {killed_before_ready} of them before all were Ready; converged: {ok}, {converge_s:.1}s from apply, {after_last:.1}s after the last restart",
        3 * n
    );
    println!(
        "  external objects: {} apps in Smooch; not exactly once: apps {}, keys {}, integrations {}; orphaned keys {}, orphaned integrations {}; Secrets with wrong values {}",
        v.apps_in_smooch,
        v.apps_not_exactly_once,
        v.keys_not_exactly_once,
        v.integrations_not_exactly_once,
        v.orphaned_keys,
        v.orphaned_integrations,
        v.wrong_secrets
    );
    println!(
        "  creates: {:?}; load {} → {}",
        counts
            .routes
            .iter()
            .filter(|(k, _)| k.starts_with("POST") || k.starts_with("DELETE"))
            .collect::<BTreeMap<_, _>>(),
        result["load_before"].as_str().unwrap(),
        result["load_after"].as_str().unwrap()
    );
    emit_json(common, &result);
}

async fn lease_holder(client: &Client, ns: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("smooch-operator-leader")
        .await
        .ok()??;
    lease.spec?.holder_identity
}

async fn failover(client: &Client, common: &Common, n: usize, runs: usize, lease_secs: u64) {
    let mut takeovers = Vec::new();
    for run in 0..runs {
        let load_before = loadavg();
        let world = World::new(client, "bench-failover", n, faults_of(common, &no_faults())).await;
        let cfg = world.op_config(common);
        let lease = lease_secs.to_string();
        let flags = |id: &'static str| {
            vec![
                "--leader-elect".to_string(),
                "--leader-election-lease-seconds".into(),
                lease.clone(),
                "--identity".into(),
                id.into(),
            ]
        };
        let fa = flags("replica-a");
        let fb = flags("replica-b");
        let mut a = cfg.spawn("a", &fa.iter().map(String::as_str).collect::<Vec<_>>());
        let mut b = cfg.spawn("b", &fb.iter().map(String::as_str).collect::<Vec<_>>());
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = loop {
            if let Some(h) = lease_holder(client, &world.ns).await {
                break h;
            }
            assert!(Instant::now() < deadline, "nobody took the lease");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let t0 = Instant::now();
        world.apply(0..n).await;
        // Kill the leader once about a third is Ready.
        let deadline = Instant::now() + Duration::from_secs(common.timeout_secs);
        loop {
            if let Some((x, y, z)) = world.ready_counts().await
                && x + y + z >= n
            {
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready_at_kill = world.ready_counts().await.map_or(0, |(x, y, z)| x + y + z);
        // Both replicas started together: exactly one may have led.
        let leaders = [&a, &b]
            .iter()
            .filter(|op| {
                std::fs::read_to_string(&op.log)
                    .unwrap_or_default()
                    .contains("became the leader")
            })
            .count();
        let standby = if first == "replica-a" {
            a.kill9();
            "replica-b"
        } else {
            b.kill9();
            "replica-a"
        };
        let killed = Instant::now();
        let deadline = killed + Duration::from_secs(120);
        let takeover = loop {
            if lease_holder(client, &world.ns).await.as_deref() == Some(standby) {
                break Some(killed.elapsed().as_secs_f64());
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Without a new leader nothing would converge: report, do not wait.
        let ok = takeover.is_some() && world.wait_all_ready(n, common).await;
        let all_ready_after_kill = killed.elapsed().as_secs_f64();
        let converge_s = t0.elapsed().as_secs_f64();
        world.settle(common).await;
        let counts = world.emu.counts();
        let v = verify(&world).await;
        let posts: BTreeMap<&String, &u64> = counts
            .routes
            .iter()
            .filter(|(k, _)| k.starts_with("POST"))
            .collect();
        println!(
            "failover run {run}: N={n}, lease {lease_secs}s, replicas that led before the kill: {leaders} (must be 1), leader {first} killed with {ready_at_kill}/{} Ready; takeover (holder → {standby}) after {}; all Ready {all_ready_after_kill:.1}s after the kill ({converge_s:.1}s from apply, ok: {ok}); creates {posts:?}; duplicates: apps {}, keys {}, integrations {}, orphaned keys {}; wrong Secrets {}; load {load_before} → {}",
            3 * n,
            takeover.map_or("never".into(), |t| format!("{t:.2}s")),
            v.apps_not_exactly_once,
            v.keys_not_exactly_once,
            v.integrations_not_exactly_once,
            v.orphaned_keys,
            v.wrong_secrets,
            loadavg()
        );
        emit_json(
            common,
            &json!({"scenario": "failover", "n": n, "lease_secs": lease_secs, "takeover_s": takeover, "leaders_before_kill": leaders,
                    "ready_at_kill": ready_at_kill, "all_ready_after_kill_s": all_ready_after_kill,
                    "converged": ok, "creates": posts, "verify": v,
                    "load_before": load_before, "load_after": loadavg()}),
        );
        if let Some(t) = takeover {
            takeovers.push(t);
        }
        drop((a, b));
    }
    println!(
        "failover: median takeover {:.2}s over {} run(s) (lease {lease_secs}s)",
        median(takeovers.clone()),
        takeovers.len()
    );
}

/// The kube-apiserver of a `hack/controlplane.sh start DIR` run: pid and command line.
fn apiserver_process(cp_dir: &std::path::Path) -> (u32, Vec<String>) {
    let pids = std::fs::read_to_string(cp_dir.join("pids")).expect("DIR/pids");
    let pid: u32 = pids
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(name, _)| *name == "kube-apiserver")
        .filter_map(|(_, pid)| pid.trim().parse().ok())
        .rfind(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        .expect("a running kube-apiserver in DIR/pids");
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let args = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (pid, args)
}

async fn restart_apiserver(cp_dir: &std::path::Path, down: Duration) -> (f64, u32) {
    let (pid, args) = apiserver_process(cp_dir);
    let started = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(down).await;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(cp_dir.join("logs/kube-apiserver.log"))
        .expect("apiserver log");
    // Same command line, own session (like controlplane.sh's spawn), and
    // recorded in DIR/pids so that `controlplane.sh stop` stops it.
    let child = Command::new("setsid")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("kube-apiserver restarts");
    let new_pid = child.id();
    let mut pids = std::fs::OpenOptions::new()
        .append(true)
        .open(cp_dir.join("pids"))
        .unwrap();
    writeln!(pids, "kube-apiserver {new_pid}").unwrap();
    std::mem::forget(child);
    (started.elapsed().as_secs_f64(), new_pid)
}

async fn apiserver_restart(
    client: &Client,
    common: &Common,
    n: usize,
    cp_dir: &std::path::Path,
    down_secs: u64,
) {
    apiserver_process(cp_dir); // fail early without a control plane dir
    let load_before = loadavg();
    let world = World::new(
        client,
        "bench-cprestart",
        n,
        faults_of(common, &no_faults()),
    )
    .await;
    let mut op = world.op_config(common).spawn("op", &[]);
    op.wait_ready(&world.http).await;
    let pid = op.pid();
    let t0 = Instant::now();
    world.apply(0..n).await;
    let deadline = Instant::now() + Duration::from_secs(common.timeout_secs);
    while Instant::now() < deadline {
        if world
            .ready_counts()
            .await
            .is_some_and(|(a, k, i)| a + k + i >= n)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_before = world.ready_counts().await.map_or(0, |(a, k, i)| a + k + i);
    let (down_s, _) = restart_apiserver(cp_dir, Duration::from_secs(down_secs)).await;
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.apiserver_version().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "kube-apiserver did not come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let apiserver_up_s = restarted.elapsed().as_secs_f64();
    let up = Instant::now();
    let ok = world.wait_all_ready(n, common).await;
    let after_up = up.elapsed().as_secs_f64();
    let converge_s = t0.elapsed().as_secs_f64();
    let same_process = op.alive() && op.pid() == pid;
    world.settle(common).await;
    let v = verify(&world).await;
    let metrics = op.metrics(&world.http).await;
    let failures = sum_by(
        &metrics,
        "smooch_operator_reconcile_failures_total",
        &["kind", "reason"],
    );
    println!(
        "apiserver restart: N={n}, {ready_before}/{} Ready when kube-apiserver was stopped (TERM + {down_secs}s down, stop took {:.1}s), apiserver ready {apiserver_up_s:.1}s after relaunch; operator still the same process: {same_process}; all Ready {after_up:.1}s after the apiserver was back ({converge_s:.1}s from apply, ok: {ok}); verify clean: {} {v:?}; reconcile failures {failures:?}; load {load_before} → {}",
        3 * n,
        down_s - down_secs as f64,
        v.clean(),
        loadavg()
    );
    emit_json(
        common,
        &json!({"scenario": "apiserver-restart", "n": n, "ready_before": ready_before,
                "down_secs": down_secs, "apiserver_up_s": apiserver_up_s,
                "same_process": same_process, "converged": ok,
                "all_ready_after_apiserver_up_s": after_up, "converge_s": converge_s,
                "verify": v, "failures": failures,
                "load_before": load_before, "load_after": loadavg()}),
    );
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let common = &cli.common;
    let client = kube_client().await;
    install_crds(&client).await;
    println!(
        "# {} | {} cores | load {} | operator {}",
        jiff::Timestamp::now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        common
            .operator_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smooch-operator")))
            .display()
    );
    println!("# {:?}", cli.scenario);
    match &cli.scenario {
        Scenario::Convergence { n, runs, faults } => {
            convergence(&client, common, *n, *runs, *faults).await
        }
        Scenario::Sweep {
            n,
            runs,
            reconcile,
            smooch,
        } => sweep(&client, common, *n, *runs, reconcile, smooch).await,
        Scenario::SingleChange { samples } => single_change(&client, common, *samples).await,
        Scenario::Steady { n, periods } => steady(&client, common, *n, *periods).await,
        Scenario::Footprint {
            n,
            runs,
            settle_secs,
        } => footprint(&client, common, n, *runs, *settle_secs).await,
        Scenario::Faults { n, runs, faults: f } => faults(&client, common, *n, *runs, *f).await,
        Scenario::Crash {
            n,
            kills,
            max_gap_ms,
        } => crash(&client, common, *n, *kills, *max_gap_ms).await,
        Scenario::Failover {
            n,
            runs,
            lease_secs,
        } => failover(&client, common, *n, *runs, *lease_secs).await,
        Scenario::ApiserverRestart {
            n,
            cp_dir,
            down_secs,
        } => apiserver_restart(&client, common, *n, cp_dir, *down_secs).await,
    }
}
