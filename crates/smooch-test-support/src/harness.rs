//! One test's world: a namespace, an emulator, the app-maker credentials
//! Secret, and the operator running in-process (or as a child process, for
//! crash tests); with the waits and checks the tests share.

use crate::controlplane::{apply_secret, install_crds, kube_client, namespace};
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use smooch::{ApiVersion, SmoochClient, Transport, TransportConfig};
use smooch_emulator::{RequestCounts, RunningEmulator};
use smooch_operator::metrics::Metrics;
use smooch_operator::reconcile::context::NamespaceSet;
use smooch_operator::reconcile::controllers::{self, Readiness, Scope};
use smooch_operator::reconcile::{Context, Settings};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

pub const CREDENTIALS_SECRET: &str = "smooch-credentials";

pub struct OperatorOptions {
    /// Where the default credentials live; default: the test namespace.
    pub operator_namespace: Option<String>,
    pub resync: Duration,
    pub permanent_error_retry: Duration,
    pub smooch_concurrency: usize,
    /// `--recheck-concurrency`.
    pub recheck_concurrency: usize,
    /// More namespaces to watch beside the test's own.
    pub extra_namespaces: Vec<String>,
    /// `--default-credentials-namespaces` (empty: every namespace).
    pub default_credentials_namespaces: Vec<String>,
    /// `--adoption-namespaces` (empty: every namespace).
    pub adoption_namespaces: Vec<String>,
    /// `--smooch-api-version`: the Smooch API the operator (and the test's
    /// own client, [`Harness::smooch`]) speaks.
    pub api_version: ApiVersion,
}

impl Default for OperatorOptions {
    fn default() -> Self {
        OperatorOptions {
            operator_namespace: None,
            resync: Duration::from_secs(600),
            permanent_error_retry: Duration::from_secs(300),
            smooch_concurrency: 16,
            recheck_concurrency: 8,
            extra_namespaces: Vec::new(),
            default_credentials_namespaces: Vec::new(),
            adoption_namespaces: Vec::new(),
            api_version: ApiVersion::V1,
        }
    }
}

impl OperatorOptions {
    /// The defaults, speaking `version`.
    pub fn on(version: ApiVersion) -> Self {
        OperatorOptions {
            api_version: version,
            ..Default::default()
        }
    }
}

/// The operator running inside the test process, watching one namespace.
pub struct InProcessOperator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub metrics: Arc<Metrics>,
}

impl InProcessOperator {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), &mut self.task).await;
    }
}

/// One test's world: a namespace, an emulator, credentials, an operator.
pub struct Harness {
    pub client: Client,
    pub ns: String,
    pub emulator: RunningEmulator,
    pub operator: Option<InProcessOperator>,
    /// The Smooch API the operator and [`Harness::smooch`] speak.
    pub api_version: ApiVersion,
    /// GET requests (reads and lists, not watches) the in-process operator
    /// sent to the Kubernetes API server, counted on the wire.
    pub operator_gets: Arc<AtomicU64>,
    /// Its writes (POST, PUT, PATCH, DELETE: statuses, finalizers, Secrets,
    /// events), counted the same way, per method and resource
    /// (`PATCH smoochkeys/status`).
    pub operator_writes: Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
}

impl Harness {
    /// How many writes the in-process operator sent.
    pub fn operator_write_count(&self) -> u64 {
        self.operator_writes.lock().unwrap().values().sum()
    }
}

/// `secrets`, `smoochkeys/status`, ... of an API path.
fn resource_of(path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.iter().position(|s| *s == "namespaces") {
        Some(i) if segments.len() > i + 2 => {
            let rest = &segments[i + 2..];
            match rest {
                [resource, _, sub] => format!("{resource}/{sub}"),
                [resource, ..] => resource.to_string(),
                [] => String::new(),
            }
        }
        _ => segments.last().copied().unwrap_or_default().to_string(),
    }
}

impl Harness {
    /// Namespace + emulator + credentials Secret, operator not started.
    pub async fn without_operator(prefix: &str) -> Harness {
        Self::without_operator_on(prefix, ApiVersion::V1).await
    }

    /// [`Harness::without_operator`], checking Smooch through `version`.
    pub async fn without_operator_on(prefix: &str, version: ApiVersion) -> Harness {
        let client = kube_client().await;
        install_crds(&client).await;
        let ns = namespace(&client, prefix).await;
        let emulator = crate::emulator::start().await;
        let harness = Harness {
            client,
            ns,
            emulator,
            operator: None,
            api_version: version,
            operator_gets: Default::default(),
            operator_writes: Default::default(),
        };
        harness
            .put_secret(
                CREDENTIALS_SECRET,
                &[
                    ("keyId", harness.emulator.maker_key_id()),
                    ("secret", harness.emulator.maker_secret().expose()),
                ],
            )
            .await;
        harness
    }

    pub async fn start(prefix: &str) -> Harness {
        Self::start_with(prefix, OperatorOptions::default()).await
    }

    /// Everything started, the operator speaking `version`.
    pub async fn start_on(prefix: &str, version: ApiVersion) -> Harness {
        Self::start_with(prefix, OperatorOptions::on(version)).await
    }

    pub async fn start_with(prefix: &str, options: OperatorOptions) -> Harness {
        let mut h = Self::without_operator_on(prefix, options.api_version).await;
        h.start_operator(options).await;
        h
    }

    pub fn operator_settings(&self, options: &OperatorOptions) -> Settings {
        Settings {
            operator_namespace: options
                .operator_namespace
                .clone()
                .unwrap_or_else(|| self.ns.clone()),
            default_credentials_secret: CREDENTIALS_SECRET.into(),
            resync_period: options.resync,
            recheck_concurrency: options.recheck_concurrency,
            dependency_retry: Duration::from_secs(30),
            permanent_error_retry: options.permanent_error_retry,
            min_error_backoff: Duration::from_millis(200),
            max_error_backoff: Duration::from_secs(5),
            watch_namespaces: self.watched(options),
            default_credentials_namespaces: NamespaceSet::from_list(
                &options.default_credentials_namespaces,
            ),
            adoption_namespaces: NamespaceSet::from_list(&options.adoption_namespaces),
        }
    }

    /// The test namespace and any extra ones the options name.
    fn watched(&self, options: &OperatorOptions) -> Vec<String> {
        std::iter::once(self.ns.clone())
            .chain(options.extra_namespaces.iter().cloned())
            .collect()
    }

    pub async fn start_operator(&mut self, options: OperatorOptions) {
        let metrics = Arc::new(Metrics::default());
        let transport = Transport::new(
            TransportConfig {
                base_url: self.emulator.base_url().to_string(),
                api_version: options.api_version.prefix().into(),
                max_concurrency: options.smooch_concurrency,
                min_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(2),
                ..Default::default()
            },
            Some(metrics.clone() as Arc<dyn smooch::CallObserver>),
        )
        .unwrap();
        // The operator's own client, counting its GETs as they leave.
        let (gets, writes) = (self.operator_gets.clone(), self.operator_writes.clone());
        let counting =
            tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
                let watch = request.uri().query().is_some_and(|q| q.contains("watch="));
                match *request.method() {
                    http::Method::GET if !watch => gets.fetch_add(1, Ordering::Relaxed),
                    http::Method::GET => 0,
                    _ => {
                        let key =
                            format!("{} {}", request.method(), resource_of(request.uri().path()));
                        *writes.lock().unwrap().entry(key).or_insert(0) += 1;
                        0
                    }
                };
                request
            });
        let config = kube::Config::infer().await.expect("kubeconfig");
        let client = kube::client::ClientBuilder::try_from(config)
            .expect("client")
            .with_layer(&counting);
        let ctx = Arc::new(Context::new(
            client,
            transport,
            self.operator_settings(&options),
            metrics.clone(),
        ));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = stopped.map(|_| ()).shared();
        let scopes = self
            .watched(&options)
            .into_iter()
            .map(Scope::Namespace)
            .collect();
        let readiness = Arc::new(Readiness::default());
        let task = tokio::spawn(controllers::run(ctx, scopes, 8, readiness, shutdown));
        self.operator = Some(InProcessOperator {
            stop: Some(stop),
            task,
            metrics,
        });
    }

    pub async fn stop_operator(&mut self) {
        if let Some(op) = self.operator.take() {
            op.stop().await;
        }
    }

    /// An app-maker client of the emulator, to check what the operator did.
    pub fn smooch(&self) -> SmoochClient {
        crate::emulator::client(
            &self.emulator,
            TransportConfig {
                max_retries: 0,
                api_version: self.api_version.prefix().into(),
                ..Default::default()
            },
        )
    }

    /// A route as the emulator counts it, in this harness's API version:
    /// `route("POST /apps")` is `POST /v1/apps` or `POST /v2/apps`.
    pub fn route(&self, route: &str) -> String {
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        format!("{method} /{}{path}", self.api_version.prefix())
    }

    /// How many calls the emulator counted on `route` ([`Harness::route`]).
    pub fn calls(&self, route: &str) -> u64 {
        self.requests()
            .routes
            .get(&self.route(route))
            .copied()
            .unwrap_or(0)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn put_secret(&self, name: &str, pairs: &[(&str, &str)]) {
        apply_secret(&self.client, &self.ns, name, pairs)
            .await
            .expect("secret applied");
    }

    /// Creates an object from JSON/YAML-shaped data in the test namespace.
    pub async fn create<K>(&self, value: serde_json::Value) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        <K as Resource>::DynamicType: Default,
    {
        create_in(&self.api::<K>(), value).await
    }

    pub async fn delete<K>(&self, name: &str)
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        self.api::<K>()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete accepted");
    }

    /// Waits until the object's `Ready` condition is True.
    pub async fn wait_ready<K>(&self, name: &str) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug
            + Send
            + 'static,
        <K as Resource>::DynamicType: Default,
    {
        self.wait_for::<K>(name, "Ready=True", |o| {
            condition(o, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await
    }

    /// Polls the object until `check` holds (or fails the test after 60 s,
    /// printing the object).
    pub async fn wait_for<K>(&self, name: &str, what: &str, check: impl Fn(&K) -> bool) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        <K as Resource>::DynamicType: Default,
    {
        wait_for_in(&self.api::<K>(), name, what, check).await
    }

    /// Waits until the reconcile that made Smooch object `id` has finished:
    /// its last status write names it in the `Ready` message. (The id alone
    /// is recorded earlier, the moment the object exists.) A test that
    /// patches the status must wait for this, or that write may undo it.
    pub async fn wait_settled_on<K>(&self, name: &str, id: &str) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        <K as Resource>::DynamicType: Default,
    {
        self.wait_for::<K>(name, &format!("Ready on {id}"), |o| {
            condition(o, "Ready").is_some_and(|c| c.0 == "True" && c.2.contains(id))
        })
        .await
    }

    /// The reasons of every event in the test's namespace.
    pub async fn event_reasons(&self) -> Vec<String> {
        self.api::<k8s_openapi::api::core::v1::Event>()
            .list(&Default::default())
            .await
            .expect("events listed")
            .items
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }

    /// Waits until the object is gone (finalizer done).
    pub async fn wait_gone<K>(&self, name: &str)
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let api = self.api::<K>();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while api.get_opt(name).await.expect("get").is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} was never deleted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn secret(&self, name: &str) -> Option<Secret> {
        self.api::<Secret>()
            .get_opt(name)
            .await
            .expect("get secret")
    }

    pub fn requests(&self) -> RequestCounts {
        self.emulator.state().request_counts()
    }

    pub async fn finish(mut self) {
        self.stop_operator().await;
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(&self.ns, &DeleteParams::default()).await;
        let _ = self.emulator.shutdown().await;
    }
}

/// (status, reason, message) of a condition, from the object's JSON.
pub fn condition<K: Serialize>(obj: &K, type_: &str) -> Option<(String, String, String)> {
    let v = serde_json::to_value(obj).ok()?;
    let c = v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    ))
}

/// One value of a Secret's data, as text.
pub fn secret_value(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("secret has no key {key}"));
    String::from_utf8(bytes.0.clone()).expect("utf-8")
}

impl Harness {
    /// Waits until a Secret is gone (garbage collection by its owner).
    pub async fn wait_for_secret_gone(&self, name: &str) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.secret(name).await.is_some() {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        true
    }
}

/// The operator binary as a child process (for crash and failover tests);
/// killed when dropped, even if the test panics.
pub struct OperatorProcess {
    pub child: std::process::Child,
    pub log: std::path::PathBuf,
}

impl OperatorProcess {
    /// SIGKILL: no cleanup, no lease release, like a crashed node.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Harness {
    /// Starts `target/<profile>/smooch-operator` against this harness's emulator,
    /// speaking its API version, watching the test namespace, with extra flags.
    pub fn spawn_operator_process(&self, name: &str, extra: &[&str]) -> OperatorProcess {
        let log = std::env::temp_dir().join(format!("{}-{name}.log", self.ns));
        let out = std::fs::File::create(&log).expect("log file");
        let child = std::process::Command::new(crate::operator_binary())
            .args([
                "--smooch-url",
                self.emulator.base_url(),
                "--smooch-api-version",
                self.api_version.prefix(),
                "--operator-namespace",
                &self.ns,
                "--watch-namespaces",
                &self.ns,
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-level",
                "info,kube_lease_manager=debug",
            ])
            .args(extra)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("operator binary starts");
        OperatorProcess { child, log }
    }
}

impl Harness {
    /// Merges `status` into the object's status (as if time had passed:
    /// rotation periods are a minute at least, too long to wait for) and
    /// wakes the operator with an annotation change.
    pub async fn patch_status_and_poke<K>(&self, name: &str, status: serde_json::Value)
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        <K as Resource>::DynamicType: Default,
    {
        let api = self.api::<K>();
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({ "status": status })),
        )
        .await
        .expect("status patched");
        let poke = serde_json::json!({"metadata": {"annotations": {
            "test/poke": rand::random::<u32>().to_string()
        }}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&poke))
            .await
            .expect("annotation patched");
    }
}

/// An RFC 3339 time `hours` hours ago.
pub fn hours_ago(hours: i64) -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours)).to_string()
}

/// Creates an object from JSON/YAML-shaped data through `api`.
pub async fn create_in<K>(api: &Api<K>, value: serde_json::Value) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let obj: K = serde_json::from_value(value).expect("object shape");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("object created")
}

/// Polls the object through `api` until `check` holds (or fails the test
/// after 60 s, printing the object).
pub async fn wait_for_in<K>(api: &Api<K>, name: &str, what: &str, check: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let current = api.get_opt(name).await.expect("get");
        if let Some(obj) = &current
            && check(obj)
        {
            return obj.clone();
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {name} to be {what}; last seen: {}",
                serde_json::to_string_pretty(&current).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
