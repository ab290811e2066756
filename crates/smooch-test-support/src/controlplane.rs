//! The real control plane of `hack/test.sh` and `hack/bench.sh`: a client,
//! the operator's CRDs, namespaces and Secrets.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use smooch_operator::resources;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The field manager of everything the tests and benchmarks apply.
const FIELD_MANAGER: &str = "smooch-operator-tests";

/// A client for the control plane. Fails with a clear message when the
/// tests or benchmarks were not started by `hack/test.sh` or `hack/bench.sh`.
pub async fn kube_client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: run the tests with `hack/test.sh` (benchmarks: `hack/bench.sh <scenario>`), which starts a control plane"
    );
    Client::try_default()
        .await
        .expect("kubeconfig from hack/test.sh must be usable")
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Installs the generated CRDs (once per process) and waits until they are
/// established.
pub async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| async {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in resources::all_crds() {
            let name = crd.name_any();
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
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
    })
    .await;
}

/// A namespace of its own (`<prefix>-<8 hex digits>`) for one test or run.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{:08x}", rand::random::<u32>());
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    name
}

/// Applies (server-side, forced) a Secret with these string values.
pub async fn apply_secret(
    client: &Client,
    ns: &str,
    name: &str,
    pairs: &[(&str, &str)],
) -> kube::Result<Secret> {
    let data: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "stringData": data,
    });
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
}

/// The kube-apiserver of a `hack/controlplane.sh start DIR` run: its pid
/// (the newest live one in `DIR/pids`) and its command line.
pub fn apiserver_process(cp_dir: &std::path::Path) -> (u32, Vec<String>) {
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

/// Restarts the kube-apiserver of `cp_dir` as an operator would live it:
/// SIGTERM (its graceful shutdown; SIGKILL after 30 s), `down` with no API
/// server, then the same command line again, in a session of its own and
/// recorded in `DIR/pids` so that `controlplane.sh stop` stops it. Returns
/// how long stopping took (seconds) and the new pid.
pub async fn restart_apiserver(cp_dir: &std::path::Path, down: Duration) -> (f64, u32) {
    use std::process::{Command, Stdio};
    let (pid, args) = apiserver_process(cp_dir);
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    let started = std::time::Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while alive() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if alive() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        while alive() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let stopping = started.elapsed().as_secs_f64();
    tokio::time::sleep(down).await;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(cp_dir.join("logs/kube-apiserver.log"))
        .expect("apiserver log");
    let child = Command::new("setsid")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("kube-apiserver restarts");
    let new_pid = child.id();
    let line = format!("kube-apiserver {new_pid}\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(cp_dir.join("pids"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
        .expect("DIR/pids");
    // Not waited for here: `controlplane.sh stop` stops it.
    std::mem::forget(child);
    (stopping, new_pid)
}
