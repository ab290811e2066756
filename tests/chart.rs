//! The Helm chart (`charts/smooch-operator`): it lints, its values schema
//! rejects bad values, what it renders is accepted by the real API server
//! (and by the `restricted` Pod Security profile), it installs next to CRDs
//! that already exist, and its RBAC is exactly enough: the operator binary,
//! run with a token of the chart's ServiceAccount and the Deployment's own
//! environment, brings `examples/` to Ready, while requests outside its
//! rules are denied.
//!
//! `helm` and `kubectl` come from `SMOOCH_TEST_BIN_DIR` (set by
//! `hack/test.sh`), else `CONTROLPLANE_BIN_DIR`, else `PATH`.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde::Deserialize;
use serde_json::{Value, json};
use smooch_operator::resources::{
    FINALIZER, SmoochApp, SmoochIntegration, SmoochKey, SmoochWebhook,
};
use smooch_operator::smooch::jwt;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use support::{Harness, secret_value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/smooch-operator");
const OPERATOR: &str = env!("CARGO_BIN_EXE_smooch-operator");
const SCHEMA_ERROR: &str = "values don't meet the specifications of the schema";

// ------------------------------------------------------------------ tools

/// `helm` or `kubectl` from the control plane's bin dir, else from PATH.
fn tool(name: &str) -> PathBuf {
    ["SMOOCH_TEST_BIN_DIR", "CONTROLPLANE_BIN_DIR"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|dir| Path::new(&dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

struct Ran {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn must(self, what: &str) -> Ran {
        assert!(
            self.success,
            "{what} failed:\n--- stderr\n{}\n--- stdout\n{}",
            self.stderr, self.stdout
        );
        self
    }
}

async fn run(program: &str, args: &[&str], stdin: Option<String>) -> Ran {
    let mut child = tokio::process::Command::new(tool(program))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program}: {e} (hack/test.sh puts the control plane's bin dir on PATH)"
            )
        });
    // Written from a task so that a child filling its stdout cannot deadlock us.
    let writer = stdin.map(|input| {
        let mut pipe = child.stdin.take().unwrap();
        tokio::spawn(async move {
            let _ = pipe.write_all(input.as_bytes()).await;
        })
    });
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish in 120 s"))
        .unwrap();
    if let Some(writer) = writer {
        let _ = writer.await;
    }
    Ran {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A values file (JSON is YAML) that lives as long as the returned handle.
fn values_file(values: &Value) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, values.to_string().as_bytes()).unwrap();
    file
}

async fn helm_template_raw(release: &str, namespace: &str, values: &Value) -> Ran {
    let file = values_file(values);
    run(
        "helm",
        &[
            "template",
            release,
            CHART,
            "--namespace",
            namespace,
            "-f",
            file.path().to_str().unwrap(),
            // As `helm install` finds it on this control plane (helm's
            // offline default list predates the v1 API).
            "--api-versions",
            MAP_API,
        ],
        None,
    )
    .await
}

/// Tests that put the chart's finalizer policy on the cluster take turns: a
/// default install binds it in every namespace, which would give the other
/// test's unwatched namespace the finalizer too.
static FINALIZER_POLICY_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The API of the chart's finalizer policy (Kubernetes 1.36).
const MAP_API: &str = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy";

/// The chart rendered with these values, one JSON value per document.
async fn render(release: &str, namespace: &str, values: &Value) -> Vec<Value> {
    let out = helm_template_raw(release, namespace, values)
        .await
        .must(&format!("helm template with {values}"));
    yaml_documents(&out.stdout)
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("helm renders valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Documents as one multi-document YAML stream, for `kubectl apply -f -`.
fn manifest(docs: &[&Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn only<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, got {found:#?}"
    );
    found[0]
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The operator container's env as name -> value (or the fieldRef path).
fn env_of(docs: &[Value]) -> BTreeMap<String, String> {
    let deployment = only(docs, "Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let value = e["value"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    e["valueFrom"]["fieldRef"]["fieldPath"]
                        .as_str()
                        .map(|p| format!("fieldRef:{p}"))
                })
                .unwrap_or_else(|| panic!("env entry without a plain value: {e}"));
            (e["name"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

fn chart_app_version() -> String {
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(format!("{CHART}/Chart.yaml")).unwrap())
            .unwrap();
    chart["appVersion"].as_str().unwrap().to_string()
}

fn assert_forbidden<T: Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn assert_allowed<T: Debug>(what: &str, result: Result<T, kube::Error>) {
    if let Err(err) = result {
        panic!("{what}: expected to be allowed, got {err:?}");
    }
}

// ------------------------------------------------- a release in a cluster

/// One `helm install` of the chart into a namespace of its own. The release
/// is named like its namespace, so cluster-scoped names (ClusterRole...)
/// never collide between tests running at the same time.
struct Release {
    admin: Client,
    name: String,
    ns: String,
}

impl Release {
    async fn install(admin: &Client, prefix: &str, values: &Value) -> Release {
        let ns = support::namespace(admin, prefix).await;
        Self::install_into(admin, ns, values).await
    }

    async fn install_into(admin: &Client, ns: String, values: &Value) -> Release {
        // The CRDs usually exist already (server-side applied by the test
        // support); helm must cope with that: it skips existing CRDs.
        support::install_crds(admin).await;
        let file = values_file(values);
        run(
            "helm",
            &[
                "install",
                &ns,
                CHART,
                "--namespace",
                &ns,
                "-f",
                file.path().to_str().unwrap(),
            ],
            None,
        )
        .await
        .must(&format!("helm install with {values}"));
        Release {
            admin: admin.clone(),
            name: ns.clone(),
            ns,
        }
    }

    /// Name of the chart's objects (the release name lacks the chart name).
    fn fullname(&self) -> String {
        format!("{}-smooch-operator", self.name)
    }

    /// A fresh token of the chart's ServiceAccount (TokenRequest API).
    async fn token(&self) -> String {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        Api::<ServiceAccount>::namespaced(self.admin.clone(), &self.ns)
            .create_token_request(&self.fullname(), &PostParams::default(), &request)
            .await
            .expect("TokenRequest for the chart's ServiceAccount")
            .status
            .and_then(|s| s.token)
            .expect("token issued")
    }

    /// A client that is the chart's ServiceAccount.
    async fn service_account_client(&self) -> Client {
        let mut config = Config::infer().await.unwrap();
        config.auth_info = Default::default();
        config.auth_info.token = Some(self.token().await.into());
        Client::try_from(config).unwrap()
    }

    async fn uninstall(self) {
        run(
            "helm",
            &["uninstall", &self.name, "--namespace", &self.ns],
            None,
        )
        .await
        .must("helm uninstall");
        let _ = Api::<Namespace>::all(self.admin.clone())
            .delete(&self.ns, &DeleteParams::default())
            .await;
    }
}

async fn label_namespace(client: &Client, ns: &str, labels: Value) {
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await
        .expect("namespace labelled");
}

async fn can_i(
    client: &Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> bool {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource,
                namespace: namespace.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("SelfSubjectAccessReview")
        .status
        .is_some_and(|s| s.allowed)
}

// ------------------------------------------------ the operator, as a process

/// The operator binary running outside the cluster as the chart's
/// ServiceAccount. Killed when dropped, also when the test panics (and
/// then its log is printed).
struct OperatorProcess {
    child: tokio::process::Child,
    log: PathBuf,
    metrics_port: u16,
    /// (namespace, name, identity) of the Lease it must hold, when the
    /// Deployment turns leader election on.
    leader_lease: Option<(String, String, String)>,
    _dir: tempfile::TempDir,
}

impl OperatorProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn stop(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.log()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            eprintln!(
                "--- smooch-operator log ({}):\n{}",
                self.log.display(),
                self.log()
            );
        }
    }
}

/// A kubeconfig with the admin kubeconfig's cluster (server URL and CA) and
/// a bearer token as the user.
fn kubeconfig_with_token(token: &str, namespace: &str) -> String {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let path = path.split(':').next().unwrap();
    let admin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let named = |list: &str, name: &serde_yaml::Value| -> serde_yaml::Value {
        admin[list]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|item| &item["name"] == name)
            .unwrap_or_else(|| panic!("{list} has no entry {name:?}"))
            .clone()
    };
    let context = named("contexts", &admin["current-context"]);
    let cluster = named("clusters", &context["context"]["cluster"]);
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster["cluster"]}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {
            "cluster": "test", "user": "operator", "namespace": namespace
        }}],
        "current-context": "operator",
    })
    .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the operator binary with the environment of the installed
/// Deployment (the downward API resolved as the kubelet would), a
/// kubeconfig holding a token of the chart's ServiceAccount, and flags for
/// what differs outside a cluster: the emulator's URL, a loopback metrics
/// address and, optionally, the namespaces to watch.
async fn start_operator(
    release: &Release,
    smooch_url: &str,
    watch_namespaces: Option<&str>,
) -> OperatorProcess {
    let deployment = Api::<Deployment>::namespaced(release.admin.clone(), &release.ns)
        .get(&release.fullname())
        .await
        .expect("the chart's Deployment");
    let pod_spec = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        pod_spec.service_account_name.as_deref(),
        Some(release.fullname().as_str())
    );
    let pod_name = format!("{}-7d4b9c-x2x9q", release.fullname());
    let env: Vec<(String, String)> = pod_spec.containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|var| {
            let value = match (&var.value, &var.value_from) {
                (Some(value), _) => value.clone(),
                (None, Some(from)) => {
                    match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                        Some("metadata.namespace") => release.ns.clone(),
                        Some("metadata.name") => pod_name.clone(),
                        other => panic!("unexpected env source {other:?} for {}", var.name),
                    }
                }
                (None, None) => String::new(),
            };
            (var.name, value)
        })
        .collect();
    let var = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let leader_lease = (var("LEADER_ELECT").as_deref() == Some("true")).then(|| {
        (
            release.ns.clone(),
            var("LEADER_ELECTION_LEASE_NAME").expect("lease name in the env"),
            pod_name.clone(),
        )
    });

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubeconfig_with_token(&release.token().await, &release.ns),
    )
    .unwrap();
    let log = dir.path().join("operator.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let metrics_port = free_port();
    let mut command = tokio::process::Command::new(OPERATOR);
    command
        .env_clear()
        .envs(env)
        .env("KUBECONFIG", &kubeconfig)
        .args(["--smooch-url", smooch_url])
        .args(["--operator-namespace", &release.ns])
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .kill_on_drop(true);
    if let Some(namespaces) = watch_namespaces {
        command.args(["--watch-namespaces", namespaces]);
    }
    let child = command.spawn().expect("operator binary starts");
    OperatorProcess {
        child,
        log,
        metrics_port,
        leader_lease,
        _dir: dir,
    }
}

/// GET over plain HTTP/1.0; returns (status code, body).
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Waits until the operator's /readyz answers 200: every watch it needs
/// has listed (so list+watch are allowed).
async fn wait_operator_ready(operator: &mut OperatorProcess) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = operator.child.try_wait().unwrap() {
            panic!(
                "the operator exited ({status}):\n{}",
                std::fs::read_to_string(&operator.log).unwrap_or_default()
            );
        }
        if let Some((200, _)) = http_get(operator.metrics_port, "/readyz").await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the operator never became ready (/readyz):\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// examples/ as shipped, in file order (as tests/examples.rs loads them).
fn example_documents() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|file| yaml_documents(&std::fs::read_to_string(file).unwrap()))
        .collect()
}

/// Applies examples/ to the harness namespace with the operator process
/// running, waits until all are Ready, checks the Secrets and Events it
/// wrote, deletes everything (finalizers run) and stops the operator. Any
/// RBAC denial the operator met (a watch, an event, a write) fails the test.
async fn examples_become_ready_under(h: &Harness, mut operator: OperatorProcess) {
    wait_operator_ready(&mut operator).await;
    let docs = example_documents();
    assert!(docs.len() >= 7, "examples/ lost manifests");
    let mut names: Vec<(String, String)> = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap().to_string();
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        match kind.as_str() {
            "Secret" => drop(h.create::<Secret>(doc).await),
            "SmoochApp" => drop(h.create::<SmoochApp>(doc).await),
            "SmoochKey" => drop(h.create::<SmoochKey>(doc).await),
            "SmoochIntegration" => drop(h.create::<SmoochIntegration>(doc).await),
            "SmoochWebhook" => drop(h.create::<SmoochWebhook>(doc).await),
            other => panic!("unexpected kind {other} in examples/"),
        }
        names.push((kind, name));
    }
    for (kind, name) in &names {
        match kind.as_str() {
            "SmoochApp" => drop(h.wait_ready::<SmoochApp>(name).await),
            "SmoochKey" => drop(h.wait_ready::<SmoochKey>(name).await),
            "SmoochIntegration" => drop(h.wait_ready::<SmoochIntegration>(name).await),
            "SmoochWebhook" => drop(h.wait_ready::<SmoochWebhook>(name).await),
            _ => {}
        }
    }

    // The Secrets the operator wrote (create/update on Secrets).
    let key_secret = h.secret("support-backend").await.expect("key Secret");
    let token = secret_value(&key_secret, "jwt");
    jwt::verify(&token, &secret_value(&key_secret, "secret").into()).expect("JWT verifies");
    assert!(h.secret("support-app").await.is_some());
    assert!(h.secret("support-events-webhook").await.is_some());

    // The Lease it holds, when leader election is on (the chart's Lease Role).
    if let Some((ns, name, identity)) = &operator.leader_lease {
        let lease = Api::<Lease>::namespaced(h.client.clone(), ns)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("no Lease {ns}/{name}: {e}\n{}", operator.log()));
        assert_eq!(
            lease.spec.and_then(|s| s.holder_identity).as_deref(),
            Some(identity.as_str()),
            "the operator holds the Lease"
        );
    }

    // Events it published (events.k8s.io/v1).
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(h.client.clone(), &h.ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let reasons: BTreeSet<String> = events
        .items
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("smooch-operator"))
        .filter_map(|e| e.reason.clone())
        .collect();
    assert!(
        reasons.contains("Created"),
        "no Created event from the operator; reasons seen: {reasons:?}\n{}",
        operator.log()
    );

    // Deleting runs the finalizers (patch) and the Smooch deletes; children first.
    for (kind, name) in names.iter().rev() {
        match kind.as_str() {
            "SmoochKey" => h.delete::<SmoochKey>(name).await,
            "SmoochIntegration" => h.delete::<SmoochIntegration>(name).await,
            "SmoochWebhook" => h.delete::<SmoochWebhook>(name).await,
            _ => {}
        }
    }
    for (kind, name) in &names {
        match kind.as_str() {
            "SmoochKey" => h.wait_gone::<SmoochKey>(name).await,
            "SmoochIntegration" => h.wait_gone::<SmoochIntegration>(name).await,
            "SmoochWebhook" => h.wait_gone::<SmoochWebhook>(name).await,
            _ => {}
        }
    }
    h.delete::<SmoochApp>("support").await;
    h.wait_gone::<SmoochApp>("support").await;

    let log = operator.stop().await;
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the operator was denied something by the chart's RBAC:\n{log}"
    );
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn chart_lints_clean() {
    run("helm", &["lint", CHART], None).await.must("helm lint");
    for values in [
        json!({}),
        json!({"watchNamespaces": ["team-a", "team-b"]}),
        json!({"replicas": 2, "serviceMonitor": {"enabled": true}}),
        json!({"credentials": {"create": true, "keyId": "app_1", "secret": "s"}}),
    ] {
        let file = values_file(&values);
        let out = run(
            "helm",
            &[
                "lint",
                "--strict",
                CHART,
                "-f",
                file.path().to_str().unwrap(),
            ],
            None,
        )
        .await
        .must(&format!("helm lint --strict with {values}"));
        assert!(
            out.stdout.contains("0 chart(s) failed") && !out.stdout.contains("[WARNING]"),
            "lint output: {}",
            out.stdout
        );
    }
}

#[tokio::test]
async fn values_schema_rejects_bad_values() {
    let cases = [
        (json!({"replicas": 0}), "/replicas"),
        (json!({"replicas": "two"}), "/replicas"),
        (json!({"replicaCount": 2}), "replicaCount"),
        (json!({"logLevel": "loud"}), "/logLevel"),
        (json!({"logJson": "yes"}), "/logJson"),
        (json!({"resyncPeriod": "10minutes"}), "/resyncPeriod"),
        (json!({"resyncPeriod": "600"}), "/resyncPeriod"),
        (json!({"smoochUrl": "api.smooch.io"}), "/smoochUrl"),
        (json!({"smoochUrl": "ftp://api.smooch.io"}), "/smoochUrl"),
        (json!({"smoochApiVersion": "v3"}), "/smoochApiVersion"),
        (
            json!({"image": {"pullPolicy": "Sometimes"}}),
            "/image/pullPolicy",
        ),
        (json!({"image": {"digest": "sha256:00"}}), "digest"),
        (json!({"watchNamespaces": "team-a"}), "/watchNamespaces"),
        (json!({"watchNamespaces": ["Team_A"]}), "/watchNamespaces/0"),
        (json!({"watchNamespaces": ["a", "a"]}), "/watchNamespaces"),
        (json!({"reconcileConcurrency": 0}), "/reconcileConcurrency"),
        (json!({"smoochRateLimit": -1}), "/smoochRateLimit"),
        (json!({"metrics": {"port": 80}}), "/metrics/port"),
        (
            json!({"serviceMonitor": {"interval": 30}}),
            "/serviceMonitor/interval",
        ),
        (json!({"serviceMonitor": {"enable": true}}), "enable"),
        (json!({"credentials": {"create": true}}), "/credentials"),
        (
            json!({"credentials": {"create": true, "keyId": "app_1"}}),
            "/credentials/secret",
        ),
        (
            json!({"credentials": {"existingSecret": ""}}),
            "/credentials/existingSecret",
        ),
        (
            json!({"leaderElection": {"enabled": "yes"}}),
            "/leaderElection/enabled",
        ),
        (
            json!({"leaderElection": {"leaseSeconds": 1}}),
            "/leaderElection/leaseSeconds",
        ),
        (
            json!({"resources": {"limits": {"memory": "lots"}}}),
            "/resources/limits/memory",
        ),
    ];
    let mut failures = Vec::new();
    for (values, named) in cases {
        let out = helm_template_raw("schema", "default", &values).await;
        if out.success {
            failures.push(format!("{values}: accepted"));
        } else if !(out.stderr.contains(SCHEMA_ERROR) && out.stderr.contains(named)) {
            failures.push(format!(
                "{values}: error does not name {named}:\n{}",
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // And good values pass.
    render(
        "schema",
        "default",
        &json!({
            "smoochUrl": "http://127.0.0.1:8091", "smoochApiVersion": "v1.1",
            "resyncPeriod": "1h30m", "logLevel": "debug", "logJson": true,
            "replicas": 3, "watchNamespaces": ["team-a"], "smoochRateLimit": 10,
            "credentials": {"create": true, "token": "eyJ..."},
            "extraEnv": [{"name": "SMOOCH_TIMEOUT", "value": "30s"}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1}},
        }),
    )
    .await;
}

#[tokio::test]
async fn chart_crds_are_the_generated_crds() {
    let root = env!("CARGO_MANIFEST_DIR");
    let generated = std::fs::read(format!("{root}/crds/crds.yaml")).unwrap();
    let chart = std::fs::read(format!("{CHART}/crds/crds.yaml")).unwrap();
    assert!(
        generated == chart,
        "charts/smooch-operator/crds/crds.yaml differs from crds/crds.yaml; regenerate both with \
         `cargo run --bin crdgen crds/crds.yaml charts/smooch-operator/crds/crds.yaml`"
    );
    assert_eq!(
        String::from_utf8(chart).unwrap(),
        smooch_operator::resources::crds_yaml(),
        "the chart's CRDs are stale; regenerate with \
         `cargo run --bin crdgen crds/crds.yaml charts/smooch-operator/crds/crds.yaml`"
    );
}

#[tokio::test]
async fn rendered_manifests_follow_the_values() {
    let app_version = chart_app_version();

    // Defaults: cluster-wide, one replica, no leader election.
    let docs = render("rel", "ops", &json!({})).await;
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into()
    );
    // Cluster-wide: the finalizer policy binds in every namespace.
    let binding = only(&docs, "MutatingAdmissionPolicyBinding");
    assert_eq!(
        binding["spec"]["policyName"],
        "rel-smooch-operator-finalizer"
    );
    assert!(binding["spec"]["matchResources"].is_null(), "{binding:#}");
    let off = render(
        "rel",
        "ops",
        &json!({"finalizerPolicy": {"enabled": false}}),
    )
    .await;
    assert!(of_kind(&off, "MutatingAdmissionPolicy").is_empty());
    assert!(of_kind(&off, "MutatingAdmissionPolicyBinding").is_empty());
    for doc in &docs {
        let labels = &doc["metadata"]["labels"];
        for label in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ] {
            assert!(labels[label].is_string(), "{} lacks {label}", doc["kind"]);
        }
        assert_eq!(labels["app.kubernetes.io/instance"], "rel");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
        let kind = doc["kind"].as_str().unwrap();
        let cluster_scoped = kind.starts_with("Cluster") || kind.starts_with("MutatingAdmission");
        if !cluster_scoped {
            assert_eq!(doc["metadata"]["namespace"], "ops", "{kind}");
        }
    }
    let deployment = only(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        format!("ghcr.io/smooch-operator/smooch-operator:{app_version}")
    );
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(pod["serviceAccountName"], "rel-smooch-operator");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        container["ports"][0],
        json!({"name": "metrics", "containerPort": 8080, "protocol": "TCP"})
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "metrics"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "metrics"})
    );
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    let env = env_of(&docs);
    let expected: BTreeMap<String, String> = [
        ("POD_NAMESPACE", "fieldRef:metadata.namespace"),
        ("POD_NAME", "fieldRef:metadata.name"),
        ("SMOOCH_URL", "https://api.smooch.io"),
        ("SMOOCH_API_VERSION", "v1"),
        ("SMOOCH_DEFAULT_CREDENTIALS_SECRET", "smooch-credentials"),
        ("WATCH_NAMESPACES", ""),
        ("DEFAULT_CREDENTIALS_NAMESPACES", "*"),
        ("ADOPTION_NAMESPACES", "*"),
        ("RESYNC_PERIOD", "10m"),
        ("RECONCILE_CONCURRENCY", "8"),
        ("SMOOCH_CONCURRENCY", "16"),
        ("RECHECK_CONCURRENCY", "8"),
        ("SMOOCH_RATE_LIMIT", "0"),
        ("METRICS_ADDR", "0.0.0.0:8080"),
        ("LOG_LEVEL", "info"),
        ("LOG_JSON", "false"),
        ("LEADER_ELECT", "false"),
        ("LEADER_ELECTION_LEASE_NAME", "smooch-operator-leader"),
        ("LEADER_ELECTION_LEASE_SECONDS", "15"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, expected);
    let service = only(&docs, "Service");
    assert_eq!(
        service["spec"]["ports"][0],
        json!({"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"})
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let binding = only(&docs, "ClusterRoleBinding");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "rel-smooch-operator", "namespace": "ops"}])
    );

    // Every setting reaches the environment.
    let docs = render(
        "rel",
        "ops",
        &json!({
            "smoochUrl": "https://api.eu-1.smooch.io", "smoochApiVersion": "v2",
            "credentials": {"existingSecret": "maker-key"}, "watchNamespaces": ["a", "b"],
            "resyncPeriod": "1h", "reconcileConcurrency": 2, "smoochConcurrency": 4,
            "recheckConcurrency": 3,
            "smoochRateLimit": 5, "logLevel": "debug", "logJson": true,
            "leaderElection": {"enabled": true, "leaseName": "my-lease", "leaseSeconds": 30},
            "image": {"tag": "1.2.3", "pullPolicy": "Always"},
            "extraEnv": [{"name": "SMOOCH_TIMEOUT", "value": "30s"}],
            "tenancy": {"defaultCredentialsNamespaces": ["a"], "adoptionNamespaces": ["a", "b"]},
        }),
    )
    .await;
    let env = env_of(&docs);
    for (name, value) in [
        ("SMOOCH_URL", "https://api.eu-1.smooch.io"),
        ("SMOOCH_API_VERSION", "v2"),
        ("SMOOCH_DEFAULT_CREDENTIALS_SECRET", "maker-key"),
        ("WATCH_NAMESPACES", "a,b"),
        ("DEFAULT_CREDENTIALS_NAMESPACES", "a"),
        ("ADOPTION_NAMESPACES", "a,b"),
        ("RESYNC_PERIOD", "1h"),
        ("RECONCILE_CONCURRENCY", "2"),
        ("SMOOCH_CONCURRENCY", "4"),
        ("RECHECK_CONCURRENCY", "3"),
        ("SMOOCH_RATE_LIMIT", "5"),
        ("LOG_LEVEL", "debug"),
        ("LOG_JSON", "true"),
        ("LEADER_ELECT", "true"),
        ("LEADER_ELECTION_LEASE_NAME", "my-lease"),
        ("LEADER_ELECTION_LEASE_SECONDS", "30"),
        ("SMOOCH_TIMEOUT", "30s"),
    ] {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
    }
    let container = &only(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "ghcr.io/smooch-operator/smooch-operator:1.2.3"
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert!(
        of_kind(&docs, "PodDisruptionBudget").is_empty(),
        "one replica: no PDB"
    );
    let lease_role = of_kind(&docs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "rel-smooch-operator-leader-election")
        .expect("leader election Role");
    assert_eq!(lease_role["metadata"]["namespace"], "ops");
    assert_eq!(lease_role["rules"][1]["resourceNames"], json!(["my-lease"]));

    // Two replicas: leader election, a PodDisruptionBudget, rolling updates;
    // and the ServiceMonitor scrapes the metrics Service.
    let docs = render(
        "rel",
        "ops",
        &json!({"replicas": 2, "serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}}),
    )
    .await;
    assert_eq!(env_of(&docs)["LEADER_ELECT"], "true");
    let deployment = only(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let pdb = only(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let monitor = only(&docs, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!(["ops"])
    );
    let service = only(&docs, "Service");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "ServiceMonitor selects {key}"
        );
    }

    // The credentials Secret, when the chart is asked to create it.
    let docs = render(
        "rel",
        "ops",
        &json!({"credentials": {"create": true, "keyId": "app_1", "secret": "shh"}}),
    )
    .await;
    let secret = only(&docs, "Secret");
    assert_eq!(secret["metadata"]["name"], "smooch-credentials");
    assert_eq!(secret["metadata"]["namespace"], "ops");
    assert_eq!(
        secret["stringData"],
        json!({"keyId": "app_1", "secret": "shh"})
    );
}

/// (apiGroup, resource, verb, resourceName or "") of every rule.
fn grants(rules: &Value) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().unwrap() {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        let names = match list("resourceNames") {
            names if names.is_empty() => vec![String::new()],
            names => names,
        };
        assert!(
            rule["nonResourceURLs"].is_null(),
            "non-resource rule: {rule}"
        );
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    for name in &names {
                        assert!(
                            ![&group, &resource, &verb].contains(&&"*".to_string()),
                            "wildcard in {rule}"
                        );
                        out.insert((group.clone(), resource.clone(), verb.clone(), name.clone()));
                    }
                }
            }
        }
    }
    out
}

fn grant_set(items: &[(&str, &[&str], &[&str])]) -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    for (group, resources, verbs) in items {
        for resource in *resources {
            for verb in *verbs {
                out.insert((
                    group.to_string(),
                    resource.to_string(),
                    verb.to_string(),
                    String::new(),
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn rbac_grants_exactly_what_the_operator_uses() {
    const KINDS: [&str; 4] = [
        "smoochapps",
        "smoochkeys",
        "smoochintegrations",
        "smoochwebhooks",
    ];
    let status = KINDS.map(|k| format!("{k}/status"));
    let finalizers = KINDS.map(|k| format!("{k}/finalizers"));
    let status: Vec<&str> = status.iter().map(String::as_str).collect();
    let finalizers: Vec<&str> = finalizers.iter().map(String::as_str).collect();
    let expected = grant_set(&[
        (
            "smooch-operator.io",
            &KINDS,
            &["get", "list", "watch", "patch", "update"],
        ),
        ("smooch-operator.io", &status, &["patch"]),
        ("smooch-operator.io", &finalizers, &["update"]),
        (
            "",
            &["secrets"],
            &[
                "get", "list", "watch", "create", "update", "patch", "delete",
            ],
        ),
        ("events.k8s.io", &["events"], &["create", "patch"]),
        ("", &["events"], &["create", "patch"]),
    ]);

    let docs = render("rel", "ops", &json!({})).await;
    // Cluster-wide also: whether a namespace is being deleted.
    let mut cluster_wide = expected.clone();
    cluster_wide.extend(grant_set(&[("", &["namespaces"], &["get"])]));
    assert_eq!(grants(&only(&docs, "ClusterRole")["rules"]), cluster_wide);
    assert!(of_kind(&docs, "Role").is_empty());

    // Namespaced: the same rules per watched namespace, the credentials
    // Secret by name in the release namespace, and nothing cluster-wide.
    let docs = render(
        "rel",
        "ops",
        &json!({"watchNamespaces": ["team-a", "team-b"], "replicas": 2}),
    )
    .await;
    assert!(of_kind(&docs, "ClusterRole").is_empty());
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty());
    let roles: BTreeMap<(String, String), &Value> = of_kind(&docs, "Role")
        .into_iter()
        .map(|r| {
            (
                (
                    r["metadata"]["namespace"].as_str().unwrap().to_string(),
                    r["metadata"]["name"].as_str().unwrap().to_string(),
                ),
                r,
            )
        })
        .collect();
    let key = |ns: &str, name: &str| (ns.to_string(), name.to_string());
    assert_eq!(
        roles.keys().cloned().collect::<BTreeSet<_>>(),
        [
            key("team-a", "rel-smooch-operator"),
            key("team-b", "rel-smooch-operator"),
            key("ops", "rel-smooch-operator-credentials"),
            key("ops", "rel-smooch-operator-leader-election"),
        ]
        .into()
    );
    for ns in ["team-a", "team-b"] {
        assert_eq!(
            grants(&roles[&key(ns, "rel-smooch-operator")]["rules"]),
            expected
        );
    }
    let by_name = |group: &str, resource: &str, verbs: &[&str], name: &str| {
        verbs
            .iter()
            .map(|v| (group.into(), resource.into(), v.to_string(), name.into()))
            .collect::<BTreeSet<(String, String, String, String)>>()
    };
    assert_eq!(
        grants(&roles[&key("ops", "rel-smooch-operator-credentials")]["rules"]),
        by_name(
            "",
            "secrets",
            &["get", "list", "watch"],
            "smooch-credentials"
        )
    );
    let mut lease = by_name("coordination.k8s.io", "leases", &["create"], "");
    lease.extend(by_name(
        "coordination.k8s.io",
        "leases",
        &["get", "list", "watch", "update", "patch"],
        "smooch-operator-leader",
    ));
    assert_eq!(
        grants(&roles[&key("ops", "rel-smooch-operator-leader-election")]["rules"]),
        lease
    );
    let bindings = of_kind(&docs, "RoleBinding");
    assert_eq!(bindings.len(), 4);
    for binding in bindings {
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "rel-smooch-operator", "namespace": "ops"}])
        );
        assert_eq!(binding["roleRef"]["name"], binding["metadata"]["name"]);
    }

    // rbac.create=false: none at all.
    let docs = render(
        "rel",
        "ops",
        &json!({"rbac": {"create": false}, "replicas": 2}),
    )
    .await;
    for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(of_kind(&docs, kind).is_empty(), "{kind} rendered");
    }
}

#[tokio::test]
async fn rendered_manifests_pass_a_server_side_dry_run() {
    let client = support::kube_client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "chart-dry").await;
    let team_a = support::namespace(&client, "chart-dry-a").await;
    let team_b = support::namespace(&client, "chart-dry-b").await;
    // Pod Security `restricted` warns about any pod template that breaks it.
    label_namespace(
        &client,
        &ns,
        json!({
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        }),
    )
    .await;
    for values in [
        json!({}),
        json!({"watchNamespaces": [team_a, team_b]}),
        json!({"replicas": 2, "serviceMonitor": {"enabled": true},
               "credentials": {"create": true, "token": "demo"}}),
    ] {
        let docs = render(&ns, &ns, &values).await;
        // The control plane has no Prometheus Operator CRDs: the
        // ServiceMonitor is checked in rendered_manifests_follow_the_values.
        let docs: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"] != "ServiceMonitor")
            .collect();
        let manifest = manifest(&docs);
        let out = run(
            "kubectl",
            // Every object names its namespace: the release's or a watched one.
            &["apply", "--dry-run=server", "-f", "-"],
            Some(manifest),
        )
        .await
        .must(&format!("server-side dry run with {values}"));
        assert_eq!(
            out.stdout.matches("(server dry run)").count(),
            docs.len(),
            "with {values}: {}",
            out.stdout
        );
        assert!(
            !out.stderr.contains("PodSecurity"),
            "with {values}, Pod Security `restricted` complains: {}",
            out.stderr
        );
    }
    for ns in [ns, team_a, team_b] {
        let _ = Api::<Namespace>::all(client.clone())
            .delete(&ns, &DeleteParams::default())
            .await;
    }
}

/// The chart's MutatingAdmissionPolicy gives each new resource the
/// operator's finalizer as the API server admits it (no operator running
/// here), keeps other finalizers, and stays out of namespaces the release
/// does not watch.
#[tokio::test]
async fn finalizer_policy_gives_new_resources_the_finalizer_where_watched() {
    let _turn = FINALIZER_POLICY_TURN.lock().await;
    let client = support::kube_client().await;
    support::install_crds(&client).await;
    let watched = support::namespace(&client, "chart-fin").await;
    let unwatched = support::namespace(&client, "chart-fin-other").await;
    let docs = render(&watched, &watched, &json!({"watchNamespaces": [watched]})).await;
    let policy: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["kind"] == "MutatingAdmissionPolicy" || d["kind"] == "MutatingAdmissionPolicyBinding"
        })
        .collect();
    assert_eq!(policy.len(), 2, "the policy and its binding");
    let manifest = manifest(&policy);
    run(
        "kubectl",
        &["apply", "--server-side", "-f", "-"],
        Some(manifest.clone()),
    )
    .await
    .must("apply the finalizer policy");

    let app = |name: &str, finalizers: Value| -> SmoochApp {
        serde_json::from_value(json!({
            "apiVersion": "smooch-operator.io/v1alpha1",
            "kind": "SmoochApp",
            "metadata": {"name": name, "finalizers": finalizers},
            "spec": {"name": name},
        }))
        .unwrap()
    };
    // The API server loads (and drops) a policy binding within moments:
    // probe with dry-run creates, which run admission without storing
    // anything, until one gets the finalizer or not, as `wanted`.
    let settles = |api: Api<SmoochApp>, wanted: bool, never: &'static str| {
        let probe = app("probe", json!(null));
        async move {
            let dry_run = PostParams {
                dry_run: true,
                ..Default::default()
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let created = api.create(&dry_run, &probe).await.unwrap();
                if created.finalizers().iter().any(|f| f == FINALIZER) == wanted {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "{never}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let apps: Api<SmoochApp> = Api::namespaced(client.clone(), &watched);
    settles(apps.clone(), true, "the policy never took effect").await;

    let created = apps
        .create(&PostParams::default(), &app("plain", json!(null)))
        .await
        .unwrap();
    assert_eq!(created.finalizers(), [FINALIZER.to_string()]);
    let created = apps
        .create(
            &PostParams::default(),
            &app("other-finalizer", json!(["example.com/keep"])),
        )
        .await
        .unwrap();
    let mut finalizers = created.finalizers().to_vec();
    finalizers.sort();
    assert_eq!(finalizers, ["example.com/keep", FINALIZER]);
    let keys: Api<SmoochKey> = Api::namespaced(client.clone(), &watched);
    let key: SmoochKey = serde_json::from_value(json!({
        "apiVersion": "smooch-operator.io/v1alpha1",
        "kind": "SmoochKey",
        "metadata": {"name": "key"},
        "spec": {"appRef": {"name": "plain"}},
    }))
    .unwrap();
    let key = keys.create(&PostParams::default(), &key).await.unwrap();
    assert_eq!(key.finalizers(), [FINALIZER.to_string()]);
    let elsewhere: Api<SmoochApp> = Api::namespaced(client.clone(), &unwatched);
    // A binding deleted just before (another test's release, uninstalled)
    // can stay in effect for moments: wait until the API server drops it.
    // Ours, if it were not scoped, would keep this wait from ever ending.
    settles(
        elsewhere.clone(),
        false,
        "a namespace the release does not watch gets the finalizer",
    )
    .await;
    let created = elsewhere
        .create(&PostParams::default(), &app("plain", json!(null)))
        .await
        .unwrap();
    assert!(
        created.finalizers().is_empty(),
        "a namespace the release does not watch gets no finalizer: {:?}",
        created.finalizers()
    );

    run("kubectl", &["delete", "-f", "-"], Some(manifest))
        .await
        .must("delete the finalizer policy");
    // No operator runs here to remove them.
    let unfinalize = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    for name in ["plain", "other-finalizer"] {
        apps.patch(name, &PatchParams::default(), &unfinalize)
            .await
            .unwrap();
    }
    keys.patch("key", &PatchParams::default(), &unfinalize)
        .await
        .unwrap();
    for ns in [watched, unwatched] {
        let _ = Api::<Namespace>::all(client.clone())
            .delete(&ns, &DeleteParams::default())
            .await;
    }
}

#[tokio::test]
async fn helm_install_into_a_fresh_namespace() {
    let _turn = FINALIZER_POLICY_TURN.lock().await;
    let admin = support::kube_client().await;
    // CRDs installed first, as other tests do: helm must skip them.
    support::install_crds(&admin).await;
    let ns = support::namespace(&admin, "chart-install").await;
    label_namespace(
        &admin,
        &ns,
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let release = Release::install_into(
        &admin,
        ns,
        &json!({"credentials": {"create": true, "token": "demo-token"}}),
    )
    .await;

    let status = run(
        "helm",
        &["status", &release.name, "-n", &release.ns, "-o", "json"],
        None,
    )
    .await
    .must("helm status");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["info"]["status"], "deployed");
    assert!(
        status["info"]["notes"]
            .as_str()
            .unwrap()
            .contains("smooch-credentials")
    );

    let fullname = release.fullname();
    Api::<ServiceAccount>::namespaced(admin.clone(), &release.ns)
        .get(&fullname)
        .await
        .expect("ServiceAccount");
    Api::<ClusterRole>::all(admin.clone())
        .get(&fullname)
        .await
        .expect("ClusterRole");
    let credentials = Api::<Secret>::namespaced(admin.clone(), &release.ns)
        .get("smooch-credentials")
        .await
        .expect("credentials Secret");
    assert_eq!(secret_value(&credentials, "token"), "demo-token");

    // kube-controller-manager turns the Deployment into a Pod (no kubelet
    // runs it): the namespace enforces Pod Security `restricted`, so the
    // Pod existing proves the chart's Pod is admitted under it.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &release.ns);
    let selector = format!("app.kubernetes.io/instance={}", release.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let pod = loop {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap();
        if let Some(pod) = list.items.into_iter().next() {
            break pod;
        }
        if tokio::time::Instant::now() > deadline {
            let events = run(
                "kubectl",
                &["get", "events", "-n", &release.ns, "-o", "wide"],
                None,
            )
            .await;
            panic!(
                "no Pod was created for the Deployment; events:\n{}",
                events.stdout
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let spec = pod.spec.unwrap();
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some(fullname.as_str())
    );

    // The finalizer policy: helm install found the v1 API on this cluster.
    let policy = format!("{fullname}-finalizer");
    for kind in ["mutatingadmissionpolicy", "mutatingadmissionpolicybinding"] {
        run("kubectl", &["get", kind, &policy], None)
            .await
            .must(&format!("{kind} {policy} after helm install"));
    }

    release.uninstall().await;
    assert!(
        Api::<ClusterRole>::all(admin.clone())
            .get_opt(&fullname)
            .await
            .unwrap()
            .is_none(),
        "helm uninstall leaves no ClusterRole behind"
    );
    for kind in ["mutatingadmissionpolicy", "mutatingadmissionpolicybinding"] {
        let left = run(
            "kubectl",
            &["get", kind, &policy, "--ignore-not-found", "-o", "name"],
            None,
        )
        .await
        .must(&format!("kubectl get {kind}"));
        assert_eq!(
            left.stdout.trim(),
            "",
            "helm uninstall leaves no {kind} behind"
        );
    }
    // The CRDs stay (helm never deletes crds/).
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(admin.clone());
    assert!(
        crds.get_opt("smoochapps.smooch-operator.io")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_with_the_charts_cluster_wide_rbac() {
    // Apps in a namespace of their own; the emulator in-process.
    let h = Harness::without_operator("chart-apps").await;
    // Default (cluster-wide) RBAC; leader election on, so the Lease Role
    // is in place and LEADER_ELECT=true reaches the binary; credentials in
    // a Secret the test creates, under a non-default name.
    let release = Release::install(
        &h.client,
        "chart-cw",
        &json!({"credentials": {"existingSecret": "maker-key"}, "leaderElection": {"enabled": true}}),
    )
    .await;
    Api::<Secret>::namespaced(h.client.clone(), &release.ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "maker-key"},
                "stringData": {
                    "keyId": h.emulator.maker_key_id(),
                    "secret": h.emulator.maker_secret().expose(),
                },
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    // The control plane is shared with tests running at the same time: the
    // process watches only the test's namespace (the Deployment watches
    // all of them), with the ClusterRole's cluster-wide grants.
    let operator = start_operator(&release, h.emulator.base_url(), Some(&h.ns)).await;
    assert!(
        operator.leader_lease.is_some(),
        "LEADER_ELECT=true in the Deployment"
    );
    examples_become_ready_under(&h, operator).await;
    release.uninstall().await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_with_the_charts_namespaced_rbac() {
    let h = Harness::without_operator("chart-apps-ns").await;
    // watchNamespaces: Roles only; the chart creates the credentials Secret.
    let release = Release::install(
        &h.client,
        "chart-ns",
        &json!({
            "watchNamespaces": [h.ns],
            "credentials": {
                "create": true,
                "keyId": h.emulator.maker_key_id(),
                "secret": h.emulator.maker_secret().expose(),
            },
        }),
    )
    .await;
    // The Deployment's own WATCH_NAMESPACES, unchanged.
    let operator = start_operator(&release, h.emulator.base_url(), None).await;
    examples_become_ready_under(&h, operator).await;
    release.uninstall().await;
    h.finish().await;
}

#[tokio::test]
async fn service_account_is_denied_what_the_operator_does_not_need() {
    let admin = support::kube_client().await;
    let release = Release::install(&admin, "chart-deny", &json!({})).await;
    let sa = release.service_account_client().await;
    let ns = release.ns.as_str();

    // Allowed, cluster-wide: its own kinds and Secrets in every namespace.
    assert_allowed(
        "list SmoochApps in all namespaces",
        Api::<SmoochApp>::all(sa.clone())
            .list(&ListParams::default().limit(1))
            .await,
    );
    assert_allowed(
        "list SmoochWebhooks in all namespaces",
        Api::<SmoochWebhook>::all(sa.clone())
            .list(&ListParams::default().limit(1))
            .await,
    );
    assert_allowed(
        "list Secrets in all namespaces",
        Api::<Secret>::all(sa.clone())
            .list(&ListParams::default().limit(1))
            .await,
    );
    for (verb, group, resource) in [
        ("patch", "smooch-operator.io", "smoochkeys/status"),
        ("patch", "smooch-operator.io", "smoochapps"),
        ("create", "", "secrets"),
        ("delete", "", "secrets"),
        ("create", "events.k8s.io", "events"),
        ("patch", "events.k8s.io", "events"),
    ] {
        assert!(
            can_i(&sa, verb, group, resource, Some("default")).await,
            "{verb} {group}/{resource} should be allowed"
        );
    }

    // Denied: everything else.
    assert_forbidden(
        "list Pods",
        Api::<Pod>::namespaced(sa.clone(), ns)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "list Deployments",
        Api::<Deployment>::namespaced(sa.clone(), ns)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "list ConfigMaps",
        Api::<ConfigMap>::namespaced(sa.clone(), ns)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "list ClusterRoles",
        Api::<ClusterRole>::all(sa.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "create a Namespace",
        Api::<Namespace>::all(sa.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "not-allowed"}})).unwrap(),
            )
            .await,
    );
    assert_forbidden(
        "get a Lease (leader election is off)",
        Api::<Lease>::namespaced(sa.clone(), ns)
            .get("smooch-operator-leader")
            .await,
    );
    assert_forbidden(
        "create a SmoochApp",
        Api::<SmoochApp>::namespaced(sa.clone(), ns)
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
                    "metadata": {"name": "nope"}, "spec": {"name": "Nope"}
                }))
                .unwrap(),
            )
            .await,
    );
    assert_forbidden(
        "delete a SmoochApp",
        Api::<SmoochApp>::namespaced(sa.clone(), ns)
            .delete("anything", &DeleteParams::default())
            .await,
    );
    for (verb, group, resource) in [
        ("delete", "smooch-operator.io", "smoochapps"),
        ("update", "smooch-operator.io", "smoochapps/status"),
        ("get", "", "pods"),
        ("create", "", "pods"),
        ("create", "", "serviceaccounts/token"),
        ("get", "", "configmaps"),
        ("list", "", "namespaces"),
        ("create", "coordination.k8s.io", "leases"),
        ("get", "apiextensions.k8s.io", "customresourcedefinitions"),
        ("bind", "rbac.authorization.k8s.io", "clusterroles"),
        ("escalate", "rbac.authorization.k8s.io", "roles"),
        ("impersonate", "", "users"),
    ] {
        assert!(
            !can_i(&sa, verb, group, resource, Some(ns)).await,
            "{verb} {group}/{resource} should be denied"
        );
    }
    release.uninstall().await;
}

#[tokio::test]
async fn namespaced_rbac_reaches_watched_namespaces_only() {
    let admin = support::kube_client().await;
    let watched = support::namespace(&admin, "chart-watched").await;
    let other = support::namespace(&admin, "chart-other").await;
    let release = Release::install(
        &admin,
        "chart-nsrbac",
        &json!({"watchNamespaces": [watched], "credentials": {"existingSecret": "maker-key"}}),
    )
    .await;
    for (ns, name) in [
        (watched.as_str(), "app-secret"),
        (other.as_str(), "app-secret"),
        (release.ns.as_str(), "maker-key"),
        (release.ns.as_str(), "unrelated"),
    ] {
        Api::<Secret>::namespaced(admin.clone(), ns)
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"metadata": {"name": name}, "stringData": {"k": "v"}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
    }
    let sa = release.service_account_client().await;

    // The watched namespace: Secrets and the operator's kinds.
    let in_watched: Api<Secret> = Api::namespaced(sa.clone(), &watched);
    assert_allowed(
        "list Secrets in the watched namespace",
        in_watched.list(&ListParams::default()).await,
    );
    assert_allowed(
        "get a Secret in the watched namespace",
        in_watched.get("app-secret").await,
    );
    assert_allowed(
        "list SmoochKeys in the watched namespace",
        Api::<SmoochKey>::namespaced(sa.clone(), &watched)
            .list(&ListParams::default())
            .await,
    );

    // Another namespace, and all namespaces: nothing.
    let in_other: Api<Secret> = Api::namespaced(sa.clone(), &other);
    assert_forbidden(
        "list Secrets in another namespace",
        in_other.list(&ListParams::default()).await,
    );
    assert_forbidden(
        "get a Secret in another namespace",
        in_other.get("app-secret").await,
    );
    assert_forbidden(
        "list SmoochApps in another namespace",
        Api::<SmoochApp>::namespaced(sa.clone(), &other)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "list Secrets in all namespaces",
        Api::<Secret>::all(sa.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "list SmoochApps in all namespaces",
        Api::<SmoochApp>::all(sa.clone())
            .list(&ListParams::default())
            .await,
    );

    // The release namespace: the credentials Secret only, by name (get, and
    // list/watch with a metadata.name field selector, as the operator does).
    let in_release: Api<Secret> = Api::namespaced(sa.clone(), &release.ns);
    assert_allowed(
        "get the credentials Secret",
        in_release.get("maker-key").await,
    );
    assert_allowed(
        "list the credentials Secret by name",
        in_release
            .list(&ListParams::default().fields("metadata.name=maker-key"))
            .await,
    );
    assert_forbidden(
        "get another Secret of the release namespace",
        in_release.get("unrelated").await,
    );
    assert_forbidden(
        "list the Secrets of the release namespace",
        in_release.list(&ListParams::default()).await,
    );
    assert_forbidden(
        "create a Secret in the release namespace",
        in_release
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "new"}})).unwrap(),
            )
            .await,
    );

    release.uninstall().await;
    for ns in [watched, other] {
        let _ = Api::<Namespace>::all(admin.clone())
            .delete(&ns, &DeleteParams::default())
            .await;
    }
}
