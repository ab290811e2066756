//! The Helm chart as users use it, on a real node (`hack/controlplane.sh
//! start DIR --node`: containerd, kubelet, kube-proxy, kube-scheduler): the
//! image built by `hack/image.sh`, the emulator running in the cluster
//! behind a Service, `helm install`, and then everything a user relies on:
//! probes, the restricted Pod Security profile, examples Ready with their
//! Secrets, metrics through the Service, JSON logs, two replicas with one
//! leader and failover (crash and SIGTERM), `helm upgrade` rolling the pods
//! without duplicating anything in Smooch, `helm uninstall` keeping the
//! custom resources. At the end the node is stopped and the host checked:
//! nothing it changed is left.
//!
//! Needs root and the node's Debian packages (`.ci/run` installs them) and
//! the control plane binaries (`hack/test.sh` builds them). Runs its own
//! control plane, so it ignores `KUBECONFIG`.

mod node_support;

use node_support::{HostSnapshot, NodeControlPlane, ROOT, node_prerequisites, processes_naming};
use serde_json::{Value, json};
use smooch_operator::smooch::{Credentials, SmoochClient, Transport, TransportConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "smooch-system";
const APPS_NS: &str = "smooch-apps";
const EMULATOR_NS: &str = "smooch-emulator";
const RELEASE: &str = "smooch";
const IMAGE_REPO: &str = "localhost/smooch-operator";
const IMAGE_TAG: &str = "node-test";

/// The image under test: by default built here from the test build's
/// binaries; `SMOOCH_TEST_IMAGE_ARCHIVE` (an archive from `hack/image.sh`)
/// with `SMOOCH_TEST_IMAGE` (its `repository:tag`) tests another one, e.g.
/// the release image users get.
fn image_ref() -> (String, String) {
    match std::env::var("SMOOCH_TEST_IMAGE") {
        Ok(image) => {
            let (repo, tag) = image
                .rsplit_once(':')
                .expect("SMOOCH_TEST_IMAGE is repository:tag");
            (repo.to_string(), tag.to_string())
        }
        Err(_) => (IMAGE_REPO.to_string(), IMAGE_TAG.to_string()),
    }
}
/// The emulator Service's fixed ClusterIP: there is no cluster DNS.
const EMULATOR_IP: &str = "10.0.0.100";
const EMULATOR_PORT: u16 = 8091;
const LEASE: &str = "smooch-operator-leader";
const LEASE_SECONDS: u64 = 10;

/// Prints a measured figure and appends it to
/// `$CARGO_TARGET_TMPDIR/chart_node-measurements.txt` (BENCHMARKS.md).
macro_rules! measure {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("MEASURE {line}");
        let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chart_node-measurements.txt");
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
            use std::io::Write;
            let _ = writeln!(f, "{} {line}", jiff::Timestamp::now());
        }
    }};
}

struct Cluster {
    cp: NodeControlPlane,
}

struct Ran {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Cluster {
    async fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> Ran {
        let mut child = tokio::process::Command::new(self.cp.tool(tool))
            .args(args)
            .env("KUBECONFIG", &self.cp.kubeconfig)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).await.unwrap();
        }
        let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{tool} {args:?} did not finish in 300 s"))
            .unwrap();
        Ran {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn must(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> String {
        let ran = self.run(tool, args, stdin).await;
        assert!(
            ran.success,
            "{tool} {args:?} failed:\n--- stderr\n{}\n--- stdout\n{}",
            ran.stderr, ran.stdout
        );
        ran.stdout
    }

    async fn kubectl(&self, args: &[&str]) -> String {
        self.must("kubectl", args, None).await
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all).await).unwrap()
    }

    /// What happened in a namespace, for failure messages.
    async fn describe(&self, ns: &str) -> String {
        let pods = self
            .run("kubectl", &["-n", ns, "get", "pods", "-o", "wide"], None)
            .await;
        let events = self
            .run(
                "kubectl",
                &["-n", ns, "get", "events", "--sort-by=.lastTimestamp"],
                None,
            )
            .await;
        let logs = self
            .run(
                "kubectl",
                &[
                    "-n",
                    ns,
                    "logs",
                    "--all-containers",
                    "--prefix",
                    "--tail=30",
                    "-l",
                    if ns == EMULATOR_NS {
                        "app=emulator"
                    } else {
                        "app.kubernetes.io/name=smooch-operator"
                    },
                ],
                None,
            )
            .await;
        format!(
            "--- pods in {ns}\n{}{}\n--- events\n{}\n--- logs\n{}{}",
            pods.stdout, pods.stderr, events.stdout, logs.stdout, logs.stderr
        )
    }

    async fn operator_pods(&self) -> Vec<Value> {
        let pods = self
            .json(&[
                "-n",
                NS,
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=smooch-operator",
            ])
            .await;
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .cloned()
            .collect()
    }

    async fn lease_holder(&self) -> Option<String> {
        let ran = self
            .run(
                "kubectl",
                &["-n", NS, "get", "lease", LEASE, "-o", "json"],
                None,
            )
            .await;
        if !ran.success {
            return None;
        }
        let lease: Value = serde_json::from_str(&ran.stdout).ok()?;
        lease["spec"]["holderIdentity"].as_str().map(str::to_string)
    }

    /// Waits until the Deployment's rollout is complete.
    async fn rollout(&self, what: &str) {
        let deploy = format!("deployment/{RELEASE}-smooch-operator");
        let ran = self
            .run(
                "kubectl",
                &["-n", NS, "rollout", "status", &deploy, "--timeout=180s"],
                None,
            )
            .await;
        assert!(
            ran.success,
            "{what}: rollout not complete: {}\n{}",
            ran.stderr,
            self.describe(NS).await
        );
    }

    async fn helm(&self, args: &[&str]) -> String {
        self.must("helm", args, None).await
    }
}

fn chart_values(extra: &[&str]) -> Vec<String> {
    let mut values = vec![
        format!("image.repository={}", image_ref().0),
        format!("image.tag={}", image_ref().1),
        "image.pullPolicy=Never".to_string(),
        format!("smoochUrl=http://{EMULATOR_IP}:{EMULATOR_PORT}"),
        "logJson=true".to_string(),
        format!("leaderElection.leaseSeconds={LEASE_SECONDS}"),
    ];
    values.extend(extra.iter().map(|s| s.to_string()));
    values
        .into_iter()
        .flat_map(|v| ["--set".to_string(), v])
        .collect()
}

/// A plain HTTP GET to an address the node set up (a ClusterIP).
async fn http_get(ip: &str, port: u16, path: &str) -> Option<(u16, String)> {
    let connect = tokio::net::TcpStream::connect((ip, port));
    let mut stream = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .ok()?
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The emulator's request counts (`/_emulator/requests`) through its Service.
async fn emulator_routes() -> BTreeMap<String, u64> {
    let (status, body) = http_get(EMULATOR_IP, EMULATOR_PORT, "/_emulator/requests")
        .await
        .expect("emulator reachable through its ClusterIP");
    assert_eq!(status, 200, "{body}");
    // The body may be chunked: take the JSON object inside it.
    let start = body.find('{').unwrap();
    let end = body.rfind('}').unwrap();
    let counts: Value = serde_json::from_str(&body[start..=end]).unwrap();
    serde_json::from_value(counts["routes"].clone()).unwrap()
}

fn creates(routes: &BTreeMap<String, u64>) -> u64 {
    routes
        .iter()
        .filter(|(r, _)| r.starts_with("POST "))
        .map(|(_, n)| n)
        .sum()
}

/// examples/ as shipped: (kind, name) of every document.
fn example_objects() -> Vec<(String, String)> {
    let dir = format!("{ROOT}/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let doc: Value = serde::Deserialize::deserialize(doc).unwrap();
            if doc.is_null() {
                continue;
            }
            objects.push((
                doc["kind"].as_str().unwrap().to_string(),
                doc["metadata"]["name"].as_str().unwrap().to_string(),
            ));
        }
    }
    objects
}

/// The host process of a running container, found by its cgroup (the node
/// is this host).
fn container_pid(pod_uid: &str, container_id: &str) -> u32 {
    let id = container_id.rsplit("://").next().unwrap();
    let pod_dir = format!("pod{pod_uid}");
    for root in ["/sys/fs/cgroup/pids/kubepods", "/sys/fs/cgroup/kubepods"] {
        let mut stack = vec![PathBuf::from(root)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if name == id && dir.ends_with(&pod_dir) {
                    let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap();
                    return procs
                        .lines()
                        .next()
                        .unwrap_or_else(|| panic!("no process in {}", path.display()))
                        .parse()
                        .unwrap();
                }
                stack.push(path);
            }
        }
    }
    panic!("no cgroup for container {id} of pod {pod_uid}");
}

fn status_field(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

fn container_of(pod: &Value) -> (String, String, String) {
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let cid = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap_or_else(|| panic!("pod {name} has no container yet: {pod}"))
        .to_string();
    (name, uid, cid)
}

fn emulator_manifest(key_id: &str, secret: &str) -> String {
    let (repo, tag) = image_ref();
    let image = format!("{repo}:{tag}");
    let docs = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": EMULATOR_NS,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "emulator", "namespace": EMULATOR_NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "emulator"}},
              "template": {"metadata": {"labels": {"app": "emulator"}},
                "spec": {"automountServiceAccountToken": false,
                  "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"}},
                  "containers": [{"name": "emulator", "image": image, "imagePullPolicy": "Never",
                    "command": ["/usr/local/bin/smooch-emulator", "serve", "--listen", format!("0.0.0.0:{EMULATOR_PORT}")],
                    "env": [{"name": "SMOOCH_EMULATOR_MAKER_KEY_ID", "value": key_id},
                            {"name": "SMOOCH_EMULATOR_MAKER_SECRET", "value": secret}],
                    "ports": [{"name": "http", "containerPort": EMULATOR_PORT}],
                    "readinessProbe": {"httpGet": {"path": "/_emulator/healthz", "port": "http"}, "periodSeconds": 1},
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                      "capabilities": {"drop": ["ALL"]}}}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "emulator", "namespace": EMULATOR_NS},
            "spec": {"clusterIP": EMULATOR_IP, "selector": {"app": "emulator"},
              "ports": [{"name": "http", "port": EMULATOR_PORT, "targetPort": "http"}]}}),
    ];
    docs.iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn smooch_client(key_id: &str, secret: &str) -> SmoochClient {
    let transport = Transport::new(
        TransportConfig {
            base_url: format!("http://{EMULATOR_IP}:{EMULATOR_PORT}"),
            max_retries: 0,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    SmoochClient::new(
        transport,
        &Credentials::app_maker_key(key_id.to_string(), secret.to_string()),
    )
    .unwrap()
}

/// Every SmoochApp the operator made exists exactly once in Smooch.
async fn assert_no_duplicate_apps(c: &Cluster, smooch: &SmoochClient, what: &str) {
    let apps = smooch.list_all_apps().await.expect("list apps");
    let mut by_uid: BTreeMap<String, usize> = BTreeMap::new();
    for app in &apps {
        let value = serde_json::to_value(app).unwrap();
        if let Some(uid) = value["metadata"]["smoochOperatorUid"].as_str() {
            *by_uid.entry(uid.to_string()).or_default() += 1;
        }
    }
    let resources = c.json(&["get", "smoochapps", "-A"]).await;
    let uids: Vec<String> = resources["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metadata"]["uid"].as_str().unwrap().to_string())
        .collect();
    for uid in &uids {
        assert_eq!(
            by_uid.get(uid),
            Some(&1),
            "{what}: SmoochApp {uid} in Smooch: {by_uid:?}"
        );
    }
    assert_eq!(
        by_uid.len(),
        uids.len(),
        "{what}: apps in Smooch {by_uid:?}, resources {uids:?}"
    );
}

async fn wait_examples_ready(c: &Cluster, what: &str) {
    let ran = c
        .run(
            "kubectl",
            &[
                "-n",
                APPS_NS,
                "wait",
                "--for=condition=Ready",
                "--timeout=120s",
                "smoochapps,smoochkeys,smoochintegrations,smoochwebhooks",
                "--all",
            ],
            None,
        )
        .await;
    assert!(
        ran.success,
        "{what}: examples not Ready: {}\n{}",
        ran.stderr,
        c.describe(NS).await
    );
}

/// Waits until the Lease is held by a live operator pod other than `not`;
/// returns the holder and how long it took.
async fn wait_new_leader(c: &Cluster, not: &str, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(holder) = c.lease_holder().await
            && holder != not
            && c.operator_pods()
                .await
                .iter()
                .any(|p| p["metadata"]["name"] == holder.as_str())
        {
            return (holder, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "no new leader {limit:?} after {not} went away\n{}",
            c.describe(NS).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_on_a_real_node() {
    if let Err(why) = node_prerequisites() {
        panic!("{why}");
    }
    let work = tempfile::Builder::new()
        .prefix("chart-node-")
        .tempdir_in("/tmp")
        .unwrap();

    // The image, from the binaries `cargo test` built (what CI does; users
    // run hack/image.sh for a release build).
    let archive = match std::env::var_os("SMOOCH_TEST_IMAGE_ARCHIVE") {
        Some(given) => PathBuf::from(given),
        None => work.path().join("image.tar"),
    };
    let started = Instant::now();
    if std::env::var_os("SMOOCH_TEST_IMAGE_ARCHIVE").is_none() {
        let status = std::process::Command::new("bash")
            .arg(format!("{ROOT}/hack/image.sh"))
            .args([
                "--debug",
                "--quiet",
                "--rm",
                "--tag",
                &format!("{IMAGE_REPO}:{IMAGE_TAG}"),
                "--out",
            ])
            .arg(&archive)
            .env("SMOOCH_OPERATOR_BIN", env!("CARGO_BIN_EXE_smooch-operator"))
            .env(
                "SMOOCH_EMULATOR_BIN",
                smooch_test_support::emulator_binary(),
            )
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "hack/image.sh failed");
    }
    measure!("image built and saved in {:.1?}", started.elapsed());

    let before = HostSnapshot::take();
    let run_dir = work.path().join("cp");
    let started = Instant::now();
    let cp = NodeControlPlane::start(&run_dir);
    measure!("control plane + node Ready in {:.1?}", started.elapsed());
    let mut c = Cluster { cp };
    let started = Instant::now();
    c.cp.import(&archive);
    measure!("image imported in {:.1?}", started.elapsed());

    exercise_the_chart(&c).await;

    let started = Instant::now();
    let stopped = c.cp.stop();
    measure!("node teardown in {:.1?}", started.elapsed());
    stopped.expect("teardown reported that it left something");
    let left = processes_naming(&run_dir);
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(!run_dir.exists(), "run dir left");
    let differences = HostSnapshot::take().differences(&before);
    assert!(
        differences.is_empty(),
        "the node left changes on the host:\n{}",
        differences.join("\n")
    );
}

async fn exercise_the_chart(c: &Cluster) {
    // ---------------------------------------------------------- install
    let key_id = format!("app_{:024x}", rand::random::<u128>() >> 32);
    let secret = format!("{:032x}", rand::random::<u128>());
    c.must(
        "kubectl",
        &["apply", "-f", "-"],
        Some(&emulator_manifest(&key_id, &secret)),
    )
    .await;
    let ran = c
        .run(
            "kubectl",
            &[
                "-n",
                EMULATOR_NS,
                "rollout",
                "status",
                "deployment/emulator",
                "--timeout=120s",
            ],
            None,
        )
        .await;
    assert!(
        ran.success,
        "emulator not running: {}\n{}",
        ran.stderr,
        c.describe(EMULATOR_NS).await
    );

    // The release namespace enforces the restricted Pod Security profile.
    c.kubectl(&["create", "namespace", NS]).await;
    c.kubectl(&[
        "label",
        "namespace",
        NS,
        "pod-security.kubernetes.io/enforce=restricted",
    ])
    .await;
    c.kubectl(&[
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "smooch-credentials",
        &format!("--from-literal=keyId={key_id}"),
        &format!("--from-literal=secret={secret}"),
    ])
    .await;
    c.kubectl(&["create", "namespace", APPS_NS]).await;

    let started = Instant::now();
    let mut args = vec![
        "install",
        RELEASE,
        &format!("{ROOT}/charts/smooch-operator"),
    ]
    .into_iter()
    .map(str::to_string)
    .collect::<Vec<_>>();
    args.extend(["--namespace", NS, "--wait", "--timeout", "180s"].map(str::to_string));
    args.extend(chart_values(&[]));
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = c.run("helm", &args_ref, None).await;
    assert!(
        ran.success,
        "helm install failed: {}\n{}",
        ran.stderr,
        c.describe(NS).await
    );
    let installed = started.elapsed();
    c.kubectl(&["-n", APPS_NS, "apply", "-f", &format!("{ROOT}/examples")])
        .await;
    wait_examples_ready(c, "after helm install").await;
    let ready = started.elapsed();
    measure!(
        "helm install --wait {installed:.1?}; examples all Ready {ready:.1?} after helm install started"
    );

    // The operator pod is Ready by its kubelet probes (readiness /readyz).
    let pods = c.operator_pods().await;
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod = &pods[0];
    let ready_condition = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready_condition["status"], "True");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["restartCount"], 0,
        "restarted: {pod}"
    );

    // Its Secrets, with a JWT that verifies with the key's secret.
    for name in ["support-app", "support-backend", "support-events-webhook"] {
        let s = c.json(&["-n", APPS_NS, "get", "secret", name]).await;
        assert!(
            s["data"].as_object().is_some_and(|d| !d.is_empty()),
            "{name}: {s}"
        );
    }
    let key_secret = c
        .json(&["-n", APPS_NS, "get", "secret", "support-backend"])
        .await;
    let field = |k: &str| {
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(key_secret["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    smooch_operator::smooch::jwt::verify(&field("jwt"), &field("secret").into())
        .expect("the key's JWT verifies");

    // Restricted: admitted in the enforcing namespace, and in the running
    // container: uid 65532, read-only root, no capabilities, no new privileges.
    let (name, uid, cid) = container_of(pod);
    let pid = container_pid(&uid, &cid);
    let uids = status_field(pid, "Uid");
    assert!(
        uids.split_whitespace().all(|u| u == "65532"),
        "{name}: Uid {uids}"
    );
    assert_eq!(status_field(pid, "CapEff"), "0000000000000000", "{name}");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1", "{name}");
    let root_mount = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap()
        .to_string();
    let options = root_mount.split(' ').nth(5).unwrap();
    assert!(
        options.split(',').any(|o| o == "ro"),
        "{name}: root not read-only: {root_mount}"
    );
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("usr/local/bin/smooch-operator"), "{exe:?}");

    // Memory as the kubelet and the cgroup see it, beside the process RSS.
    report_memory(c, pod, pid).await;

    // /metrics through the metrics Service (its ClusterIP, a network of the node).
    let svc = c
        .json(&[
            "-n",
            NS,
            "get",
            "service",
            &format!("{RELEASE}-smooch-operator-metrics"),
        ])
        .await;
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    let (status, body) = http_get(&cluster_ip, 8080, "/metrics")
        .await
        .expect("metrics Service reachable");
    assert_eq!(status, 200);
    assert!(body.contains("smooch_operator_reconciles_total"), "{body}");

    // kubectl logs: JSON lines (through the API server and the kubelet).
    let logs = c.kubectl(&["-n", NS, "logs", &name]).await;
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no logs");
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
    }

    let smooch = smooch_client(&key_id, &secret);
    let creates_after_install = creates(&emulator_routes().await);
    let examples = example_objects();
    let smooch_objects = examples
        .iter()
        .filter(|(k, _)| k.starts_with("Smooch"))
        .count() as u64;
    assert_eq!(
        creates_after_install,
        smooch_objects,
        "one create per example: {:?}",
        emulator_routes().await
    );
    assert_no_duplicate_apps(c, &smooch, "after install").await;

    // ------------------------------------------- two replicas, one leader
    c.helm(
        &{
            let mut a: Vec<String> = [
                "upgrade",
                RELEASE,
                &format!("{ROOT}/charts/smooch-operator"),
                "--namespace",
                NS,
                "--wait",
                "--timeout",
                "180s",
            ]
            .map(str::to_string)
            .to_vec();
            a.extend(chart_values(&["replicas=2"]));
            a
        }
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    )
    .await;
    c.rollout("replicas=2").await;
    let leader = wait_leader_among_pods(c).await;
    let pods = c.operator_pods().await;
    assert_eq!(pods.len(), 2);
    let mut leaders = Vec::new();
    for p in &pods {
        let n = p["metadata"]["name"].as_str().unwrap();
        let logs = c.kubectl(&["-n", NS, "logs", n]).await;
        if logs.contains("became the leader") {
            leaders.push(n.to_string());
        }
    }
    assert_eq!(leaders, std::slice::from_ref(&leader), "exactly one leader");

    // The leader dies without releasing the Lease (SIGKILL) and its Pod is
    // deleted: the other replica leads within the lease time.
    let leader_pod = pods
        .iter()
        .find(|p| p["metadata"]["name"] == leader.as_str())
        .unwrap();
    let (_, uid, cid) = container_of(leader_pod);
    let pid = container_pid(&uid, &cid);
    let killed = Instant::now();
    nix_kill(pid);
    c.kubectl(&[
        "-n",
        NS,
        "delete",
        "pod",
        &leader,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ])
    .await;
    // Something to do while nobody leads: it must be created exactly once.
    c.must(
        "kubectl",
        &["-n", APPS_NS, "apply", "-f", "-"],
        Some(
            r#"{"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
                 "metadata": {"name": "failover"}, "spec": {"name": "Failover"}}"#,
        ),
    )
    .await;
    let (new_leader, _) =
        wait_new_leader(c, &leader, Duration::from_secs(LEASE_SECONDS * 3 + 10)).await;
    let takeover = killed.elapsed();
    measure!("takeover after the leader was killed: {takeover:.1?} (lease {LEASE_SECONDS} s)");
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + LEASE_SECONDS / 3 + 5),
        "takeover took {takeover:?} with a {LEASE_SECONDS} s lease"
    );
    wait_examples_ready(c, "after failover").await;
    assert_eq!(
        creates(&emulator_routes().await),
        smooch_objects + 1,
        "{:?}",
        emulator_routes().await
    );
    assert_no_duplicate_apps(c, &smooch, "after failover").await;

    // A Pod deleted normally (SIGTERM) releases the Lease at once (long
    // before it would expire); the standby takes it at its next check.
    c.rollout("replacement pod").await;
    let handed = Instant::now();
    c.kubectl(&["-n", NS, "delete", "pod", &new_leader, "--wait=false"])
        .await;
    let released = loop {
        if c.lease_holder().await.as_deref() != Some(new_leader.as_str()) {
            break handed.elapsed();
        }
        assert!(
            handed.elapsed() < Duration::from_secs(LEASE_SECONDS * 2),
            "the Lease was never released by {new_leader}\n{}",
            c.describe(NS).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (third, _) = wait_new_leader(c, &new_leader, Duration::from_secs(LEASE_SECONDS * 3)).await;
    let taken = handed.elapsed();
    measure!(
        "leader deleted normally (SIGTERM): Lease released after {released:.1?}, taken by the standby after {taken:.1?} (lease {LEASE_SECONDS} s)"
    );
    assert!(
        released < Duration::from_secs(LEASE_SECONDS / 2),
        "release took {released:?} with a {LEASE_SECONDS} s lease: not released on SIGTERM"
    );
    assert!(
        taken <= Duration::from_secs(LEASE_SECONDS + 5),
        "the standby {third} took {taken:?} to take a released Lease"
    );

    // ------------------------------------- helm upgrade rolls the pods
    c.rollout("before upgrade").await;
    let names_before: Vec<String> = c
        .operator_pods()
        .await
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let creates_before = creates(&emulator_routes().await);
    c.helm(
        &{
            let mut a: Vec<String> = [
                "upgrade",
                RELEASE,
                &format!("{ROOT}/charts/smooch-operator"),
                "--namespace",
                NS,
                "--wait",
                "--timeout",
                "180s",
            ]
            .map(str::to_string)
            .to_vec();
            a.extend(chart_values(&["replicas=2", "logLevel=debug"]));
            a
        }
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    )
    .await;
    c.rollout("logLevel=debug").await;
    let pods = c.operator_pods().await;
    assert_eq!(pods.len(), 2, "{pods:?}");
    for p in &pods {
        let n = p["metadata"]["name"].as_str().unwrap();
        assert!(
            !names_before.iter().any(|b| b == n),
            "pod {n} was not replaced"
        );
        let env = p["spec"]["containers"][0]["env"].as_array().unwrap();
        assert!(
            env.iter()
                .any(|e| e["name"] == "LOG_LEVEL" && e["value"] == "debug")
        );
    }
    wait_leader_among_pods(c).await;
    // A change after the upgrade is still reconciled, once.
    c.kubectl(&[
        "-n",
        APPS_NS,
        "annotate",
        "smoochapp",
        "failover",
        "touched=yes",
    ])
    .await;
    c.must(
        "kubectl",
        &["-n", APPS_NS, "apply", "-f", "-"],
        Some(
            r#"{"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
                 "metadata": {"name": "after-upgrade"}, "spec": {"name": "After upgrade"}}"#,
        ),
    )
    .await;
    wait_examples_ready(c, "after upgrade").await;
    assert_eq!(
        creates(&emulator_routes().await),
        creates_before + 1,
        "the upgrade created something twice: {:?}",
        emulator_routes().await
    );
    assert_no_duplicate_apps(c, &smooch, "after upgrade").await;

    // ---------------------------------------------------------- uninstall
    c.helm(&[
        "uninstall",
        RELEASE,
        "--namespace",
        NS,
        "--wait",
        "--timeout",
        "120s",
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pods = c.json(&["-n", NS, "get", "pods"]).await;
        if pods["items"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pods left after uninstall: {pods}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let apps = c.json(&["-n", APPS_NS, "get", "smoochapps"]).await;
    assert_eq!(
        apps["items"].as_array().unwrap().len(),
        3,
        "custom resources stay: {apps}"
    );
    let crds = c.kubectl(&["get", "crds", "-o", "name"]).await;
    assert_eq!(
        crds.lines()
            .filter(|l| l.contains("smooch-operator.io"))
            .count(),
        4,
        "{crds}"
    );
}

fn nix_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

/// Waits until the Lease names a live operator pod; returns it.
async fn wait_leader_among_pods(c: &Cluster) -> String {
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECONDS * 3 + 30);
    loop {
        if let Some(holder) = c.lease_holder().await {
            let pods = c.operator_pods().await;
            let ready = pods.iter().any(|p| {
                p["metadata"]["name"] == holder.as_str()
                    && p["status"]["containerStatuses"][0]["ready"] == true
            });
            if ready {
                return holder;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader\n{}",
            c.describe(NS).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The operator's memory: cgroup (usage, working set as the kubelet
/// computes it, rss), the kubelet's summary API, and the process's VmRSS.
async fn report_memory(c: &Cluster, pod: &Value, pid: u32) {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mib = |b: u64| b as f64 / 1048576.0;
    let rss_kib: u64 = status_field(pid, "VmRSS")
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    let kib = |f: &str| -> f64 {
        status_field(pid, f)
            .trim_end_matches(" kB")
            .trim()
            .parse::<f64>()
            .unwrap()
            / 1024.0
    };
    // RssFile is mostly the mapped binary: its page cache is charged to
    // whoever read it first (containerd unpacking the image), not to the pod.
    let mut line = format!(
        "operator memory: process VmRSS {:.1} MiB (RssAnon {:.1}, RssFile {:.1})",
        rss_kib as f64 / 1024.0,
        kib("RssAnon"),
        kib("RssFile"),
    );
    if let Some(path) = cgroup
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
    {
        let dir = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let usage: u64 = read("memory.usage_in_bytes").trim().parse().unwrap_or(0);
        let stat: BTreeMap<String, u64> = read("memory.stat")
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect();
        let inactive = stat.get("total_inactive_file").copied().unwrap_or(0);
        line += &format!(
            "; container cgroup usage {:.1} MiB, working set {:.1} MiB, rss {:.1} MiB, cache {:.1} MiB",
            mib(usage),
            mib(usage.saturating_sub(inactive)),
            mib(stat.get("total_rss").copied().unwrap_or(0)),
            mib(stat.get("total_cache").copied().unwrap_or(0)),
        );
    }
    let name = pod["metadata"]["name"].as_str().unwrap();
    let summary = c
        .run(
            "kubectl",
            &[
                "get",
                "--raw",
                "/api/v1/nodes/smooch-node/proxy/stats/summary",
            ],
            None,
        )
        .await;
    if summary.success {
        let summary: Value = serde_json::from_str(&summary.stdout).unwrap_or_default();
        if let Some(p) = summary["pods"]
            .as_array()
            .and_then(|pods| pods.iter().find(|p| p["podRef"]["name"] == name))
        {
            let m = &p["containers"][0]["memory"];
            line += &format!(
                "; kubelet summary: workingSet {:.1} MiB, rss {:.1} MiB, usage {:.1} MiB",
                mib(m["workingSetBytes"].as_u64().unwrap_or(0)),
                mib(m["rssBytes"].as_u64().unwrap_or(0)),
                mib(m["usageBytes"].as_u64().unwrap_or(0)),
            );
        }
    } else {
        line += &format!("; kubelet summary unavailable: {}", summary.stderr.trim());
    }
    measure!("{line}");
}
