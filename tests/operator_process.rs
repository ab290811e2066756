//! The operator binary as a process: leader election between replicas and
//! crash safety (kill -9 between a create and recording its id).

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::json;
use smooch_operator::resources::SmoochApp;
use std::time::{Duration, Instant};
use support::{ApiVersion, Harness};

support::for_each_api_version!(
    killed_between_create_and_status_the_operator_finds_its_app_instead_of_duplicating
);

fn app(name: &str) -> serde_json::Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
           "metadata": {"name": name}, "spec": {"name": name}})
}

async fn holder(h: &Harness) -> Option<String> {
    let lease = h
        .api::<Lease>()
        .get_opt("smooch-operator-leader")
        .await
        .unwrap()?;
    lease.spec?.holder_identity
}

#[tokio::test]
async fn one_leader_reconciles_and_a_standby_takes_over_when_it_dies() {
    let h = Harness::without_operator("leader").await;
    let flags = |id: &'static str| {
        [
            "--leader-elect",
            "--leader-election-lease-seconds",
            "3",
            "--identity",
            id,
        ]
    };
    let mut a = h.spawn_operator_process("a", &flags("replica-a"));
    let mut b = h.spawn_operator_process("b", &flags("replica-b"));

    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(id) = holder(&h).await {
            break id;
        }
        assert!(Instant::now() < deadline, "nobody took the lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    h.create::<SmoochApp>(app("one")).await;
    h.wait_ready::<SmoochApp>("one").await;
    // Both started together and raced for the Lease: exactly one leads.
    let leaders: Vec<&str> = [("replica-a", &a), ("replica-b", &b)]
        .into_iter()
        .filter(|(_, op)| op.log_text().contains("became the leader"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(leaders, [first.as_str()], "leaders: {leaders:?}");
    // What makes that so: each replica takes the Lease under a field manager
    // of its own, so the loser's apply conflicts instead of also winning.
    let lease = h
        .api::<Lease>()
        .get("smooch-operator-leader")
        .await
        .unwrap();
    let managers: Vec<String> = lease
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m.ends_with(first.as_str())),
        "the holder's field manager does not name it: {managers:?}"
    );

    // Kill the leader without letting it release the lease.
    let (leader, standby) = if first == "replica-a" {
        (&mut a, "replica-b")
    } else {
        (&mut b, "replica-a")
    };
    leader.kill9();
    let killed = Instant::now();
    h.create::<SmoochApp>(app("two")).await;
    h.wait_ready::<SmoochApp>("two").await;
    let takeover = killed.elapsed();
    assert_eq!(holder(&h).await.as_deref(), Some(standby));
    // Lease of 3 s: the standby must take over within a few lease periods.
    assert!(
        takeover < Duration::from_secs(15),
        "takeover took {takeover:?}"
    );
    assert_eq!(
        h.requests().routes.get("POST /v1/apps").copied(),
        Some(2),
        "each app created exactly once"
    );
    println!("leader takeover after kill -9: {takeover:?}");
    drop((a, b));
    h.finish().await;
}

#[tokio::test]
async fn a_leader_stopped_with_sigterm_hands_the_lease_over_at_once() {
    let h = Harness::without_operator("handover").await;
    // A long lease: a standby that waited for it to expire would take 30 s.
    let flags = |id: &'static str| {
        [
            "--leader-elect",
            "--leader-election-lease-seconds",
            "30",
            "--identity",
            id,
        ]
    };
    let mut a = h.spawn_operator_process("a", &flags("replica-a"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while holder(&h).await.as_deref() != Some("replica-a") {
        assert!(Instant::now() < deadline, "replica-a never took the lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = h.spawn_operator_process("b", &flags("replica-b"));
    // Let the standby settle into waiting for the leader.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !b.log_text().contains("waiting to become the leader") {
        assert!(Instant::now() < deadline, "replica-b never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // What `kubectl delete pod` does: SIGTERM.
    let stopped = Instant::now();
    let pid = a.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while holder(&h).await.as_deref() != Some("replica-b") {
        assert!(Instant::now() < deadline, "replica-b never took the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handover = stopped.elapsed();
    println!("lease handover after SIGTERM: {handover:?}");
    assert!(
        handover < Duration::from_secs(5),
        "the standby took {handover:?} (lease 30 s): it waited for the expiry instead of the release"
    );
    let _ = a.child.wait();
    drop((a, b));
    h.finish().await;
}

/// The metrics address the process logged at start-up.
async fn metrics_addr(op: &support::OperatorProcess) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = op.log_text();
        if let Some(line) = log.lines().find(|l| l.contains("smooch-operator starting")) {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
            return v["metrics"].as_str().expect("metrics field").to_string();
        }
        assert!(Instant::now() < deadline, "operator never started:\n{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn health_metrics_json_logs_and_graceful_sigterm() {
    let h = Harness::without_operator("runtime").await;
    let mut op = h.spawn_operator_process(
        "rt",
        &["--log-json", "--leader-elect", "--identity", "solo"],
    );
    let addr = metrics_addr(&op).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{addr}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);

    h.create::<SmoochApp>(app("observed")).await;
    h.wait_ready::<SmoochApp>("observed").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while get("/readyz").await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for needle in [
        r#"smooch_operator_reconciles_total{kind="SmoochApp"}"#,
        r#"smooch_operator_smooch_api_calls_total{method="POST",route="/apps",status="201"} 1"#,
        r#"smooch_operator_reconcile_duration_seconds_bucket{le="#,
        r#"smooch_operator_kubernetes_writes_total{kind="SmoochApp",object="status"}"#,
        r#"smooch_operator_queue_depth{kind="SmoochApp",scope=""#,
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    // Every log line is JSON, and none holds the app-maker secret.
    let log = op.log_text();
    for line in log.lines().filter(|l| !l.is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
    assert!(!log.contains(h.emulator.maker_secret().expose()));

    // SIGTERM: in-flight work finishes, the lease is released, exit 0.
    let pid = op.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = op.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert_eq!(holder(&h).await, None, "lease released on shutdown");
    h.finish().await;
}

/// Smooch apps tagged with this resource's uid (read over HTTP).
async fn tagged_apps(smooch: &smooch_operator::smooch::SmoochClient, uid: &str) -> usize {
    let apps = smooch.list_all_apps().await.expect("list apps");
    apps.iter()
        .filter(|a| {
            a.metadata
                .as_ref()
                .and_then(|m| m.get("smoochOperatorUid"))
                .and_then(|v| v.as_str())
                == Some(uid)
        })
        .count()
}

async fn killed_between_create_and_status_the_operator_finds_its_app_instead_of_duplicating(
    version: ApiVersion,
) {
    let h = Harness::without_operator_on("crash", version).await;
    let smooch = h.smooch();
    let mut hits = 0;
    for attempt in 0..8 {
        let name = format!("crash-{attempt}");
        let mut op = h.spawn_operator_process(&format!("op-{attempt}"), &[]);
        let created = h.create::<SmoochApp>(app(&name)).await;
        let uid = created.metadata.uid.clone().unwrap();
        // Kill the moment the app exists in Smooch: the operator has not yet
        // had its answer written to the resource.
        let deadline = Instant::now() + Duration::from_secs(30);
        while tagged_apps(&smooch, &uid).await == 0 {
            assert!(
                Instant::now() < deadline,
                "operator never created the app:\n{}",
                op.log_text()
            );
            tokio::task::yield_now().await;
        }
        op.kill9();
        let recorded = h
            .api::<SmoochApp>()
            .get(&name)
            .await
            .unwrap()
            .status
            .and_then(|s| s.app_id);
        if recorded.is_none() {
            hits += 1;
        }
        // A new operator process converges without a second create.
        let _restarted = h.spawn_operator_process(&format!("op-{attempt}-restart"), &[]);
        let ready = h.wait_ready::<SmoochApp>(&name).await;
        assert_eq!(
            tagged_apps(&smooch, &uid).await,
            1,
            "attempt {attempt}: duplicate or missing app"
        );
        let app_id = ready.status.unwrap().app_id.unwrap();
        assert_eq!(h.smooch().get_app(&app_id).await.unwrap().name, name);
        if hits >= 3 {
            break;
        }
    }
    println!("crashes inside the create→status window: {hits}");
    assert!(
        hits >= 1,
        "never managed to kill inside the window; the test proved nothing"
    );
    h.finish().await;
}

// ---------- logging: level precedence and colour ----------

/// Starts the operator binary with its output going to a file, against a
/// kubeconfig whose API server is not there (the operator starts, logs,
/// serves /healthz and keeps retrying Kubernetes; nothing else is needed).
/// Waits until /healthz answers, lets it run a moment, kills it and
/// returns what it wrote.
async fn operator_log(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\n\
         clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n\
         users: [{name: u, user: {token: t}}]\n\
         contexts: [{name: c, context: {cluster: c, user: u}}]\n\
         current-context: c\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.path().join("operator.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_smooch-operator"));
    for (name, _) in std::env::vars() {
        if [
            "RUST_LOG",
            "LOG_LEVEL",
            "LOG_JSON",
            "NO_COLOR",
            "KUBECONFIG",
            "METRICS_ADDR",
            "SMOOCH_URL",
            "LEADER_ELECT",
        ]
        .contains(&name.as_str())
        {
            command.env_remove(name);
        }
    }
    command
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(["--smooch-url", "http://127.0.0.1:9"])
        .args(args)
        .env("KUBECONFIG", &kubeconfig)
        .envs(env.iter().copied())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    let mut child = command.spawn().expect("operator binary starts");
    // reqwest is built without a bundled crypto provider (see Transport::new).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "operator exited ({status}): {}",
                std::fs::read_to_string(&log_path).unwrap()
            );
        }
        let healthz = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await;
        if healthz.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no /healthz: {}",
            std::fs::read_to_string(&log_path).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a few failed calls to the missing API server to be logged.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::read_to_string(&log_path).unwrap()
}

const STARTING: &str = "smooch-operator starting";

/// The log without colour codes, so that the level checks do not depend on
/// the colour check.
fn plain(log: &str) -> String {
    let mut out = String::new();
    let mut rest = log;
    while let Some(start) = rest.find("\x1b[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or(after.len(), |i| i + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn text_logs_in_a_file_have_no_colour() {
    let log = operator_log(&[], &[]).await;
    assert!(log.contains(STARTING), "{log}");
    assert!(
        !log.contains("\x1b["),
        "colour codes in a log file: {log:?}"
    );
}

#[tokio::test]
async fn log_level_flag_then_env_then_rust_log_then_info() {
    // Neither --log-level, LOG_LEVEL nor RUST_LOG: info.
    let log = plain(&operator_log(&[], &[]).await);
    assert!(log.contains(STARTING), "{log}");
    assert!(
        !log.contains("DEBUG"),
        "debug lines at the default info: {log}"
    );

    // RUST_LOG applies when no level is given.
    let log = plain(&operator_log(&[], &[("RUST_LOG", "error")]).await);
    assert!(!log.contains(STARTING), "RUST_LOG=error ignored: {log}");
    let log = plain(&operator_log(&[], &[("RUST_LOG", "debug")]).await);
    assert!(log.contains("DEBUG"), "RUST_LOG=debug ignored: {log}");

    // --log-level, or LOG_LEVEL, wins over RUST_LOG.
    let log = plain(&operator_log(&["--log-level", "info"], &[("RUST_LOG", "error")]).await);
    assert!(
        log.contains(STARTING),
        "--log-level info lost to RUST_LOG=error: {log}"
    );
    let log = plain(&operator_log(&[], &[("LOG_LEVEL", "info"), ("RUST_LOG", "debug")]).await);
    assert!(
        log.contains(STARTING) && !log.contains("DEBUG"),
        "LOG_LEVEL=info lost to RUST_LOG=debug: {log}"
    );
    let log = plain(&operator_log(&["--log-level", "warn"], &[("LOG_LEVEL", "debug")]).await);
    assert!(
        !log.contains(STARTING),
        "--log-level warn lost to LOG_LEVEL=debug: {log}"
    );

    // A level that is not a filter is refused with a message.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_smooch-operator"))
        .args(["--log-level", "smooch=verbose"])
        .env_remove("LOG_LEVEL")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--log-level"), "{stderr}");
}
