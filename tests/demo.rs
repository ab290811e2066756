//! The README's first command, `hack/demo.sh`, run as a user runs it: by
//! default its own control plane with a real node, the operator image
//! installed with the Helm chart, the emulator in the cluster, the examples
//! applied and shown; then everything it started is gone and the host is as
//! before (sysctls, nftables, links, netns, mounts, cgroups), after `--exit`
//! and after Ctrl-C. `--out-of-cluster` (the operator as a local process)
//! still works. Needs the control plane binaries built (`hack/test.sh`
//! does), and root and the node's packages for the node runs.

mod node_support;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use node_support::{HostSnapshot, node_prerequisites};

/// One node per host: the node runs of this file take turns, so that each
/// one's before/after snapshot of the host sees only its own changes.
static NODE: Mutex<()> = Mutex::new(());

const EXAMPLE_SECRETS: [&str; 3] = ["support-app", "support-backend", "support-events-webhook"];

struct Demo {
    child: Child,
    output: PathBuf,
    _dir: TempDir,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(args: &[&str]) -> Demo {
    let dir = std::env::temp_dir().join(format!(
        "demo-test-{}-{}",
        args.join("").replace('-', ""),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("output.txt");
    let file = File::create(&output).unwrap();
    let child = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/demo.sh"))
        .args(args)
        .env("SMOOCH_OPERATOR_BIN", env!("CARGO_BIN_EXE_smooch-operator"))
        .env(
            "SMOOCH_EMULATOR_BIN",
            smooch_test_support::emulator_binary(),
        )
        // Its own demo temp dir under ours, so that leftovers are findable.
        .env("TMPDIR", &dir)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        // Its own process group, like a job in a terminal: Ctrl-C goes to it.
        .process_group(0)
        .spawn()
        .expect("run hack/demo.sh");
    Demo {
        child,
        output,
        _dir: TempDir(dir),
    }
}

impl Demo {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("demo still running after {limit:?}:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The demo's own work dir, from the line it prints (`work dir: DIR`).
    fn work_dir(&self) -> PathBuf {
        let output = self.output();
        let line = output
            .lines()
            .find_map(|l| l.strip_prefix("work dir: "))
            .unwrap_or_else(|| panic!("no work dir: line in\n{output}"));
        Path::new(line.trim()).to_path_buf()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-INT", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// What the user must see: every example Ready, each Secret with masked
/// values only, the JWT's header and claims.
fn check_what_it_shows(output: &str) {
    for resource in [
        "smoochapp.smooch-operator.io/support",
        "smoochkey.smooch-operator.io/backend",
        "smoochwebhook.smooch-operator.io/support-events",
        "smoochintegration.smooch-operator.io/telegram",
        "smoochintegration.smooch-operator.io/sms",
    ] {
        assert!(
            output.contains(&format!("{resource} condition met")),
            "{resource} not Ready:\n{output}"
        );
    }
    for secret in EXAMPLE_SECRETS {
        assert!(
            output.contains(&format!("secret/{secret}")),
            "secret {secret} not shown:\n{output}"
        );
    }
    // Values under each secret/... line are masked: `abcd…(N chars)` or `******`.
    let shown = output
        .split("Secrets written by the operator (values masked)")
        .nth(1)
        .and_then(|rest| rest.split("== ").next())
        .unwrap_or_else(|| panic!("no Secrets section:\n{output}"));
    let mut values = 0;
    for line in shown.lines().filter(|l| l.starts_with("  ")) {
        let value = line.split_whitespace().nth(1).unwrap_or("");
        let masked = value == "******"
            || (value.chars().nth(4) == Some('…') && value.ends_with(" chars)"))
            || line.trim_end().ends_with(" chars)");
        assert!(masked, "unmasked value in {line:?}");
        values += 1;
    }
    assert!(values >= 8, "too few values shown:\n{shown}");
    let header = output
        .lines()
        .find_map(|l| l.strip_prefix("header: "))
        .expect("JWT header");
    let header: serde_json::Value = serde_json::from_str(header).unwrap();
    assert!(
        header["kid"]
            .as_str()
            .is_some_and(|k| k.starts_with("app_"))
    );
    let claims = output
        .lines()
        .find_map(|l| l.strip_prefix("claims: "))
        .expect("JWT claims");
    let claims: serde_json::Value = serde_json::from_str(claims).unwrap();
    assert_eq!(claims["scope"], "app");
    assert!(output.contains("export KUBECONFIG="), "no kubectl hint");
}

/// The node run: what it changes on the host is printed before it starts
/// changing anything, and the pods are shown running next to the resources.
fn check_node_run(output: &str) {
    let warned = output
        .find("What this demo changes on this host")
        .unwrap_or_else(|| panic!("no list of host changes:\n{output}"));
    let started = output
        .find("Starting the control plane and a node")
        .unwrap_or_else(|| panic!("no node start:\n{output}"));
    assert!(
        warned < started,
        "host changes listed after the node started"
    );
    for change in ["sysctls", "iptables", "mounts", "netns", "interfaces"] {
        assert!(
            output[warned..started].contains(change),
            "{change} missing from the list of host changes:\n{output}"
        );
    }
    let pods = output
        .split("== Pods (kubectl get pods -A -o wide)")
        .nth(1)
        .and_then(|rest| rest.split("== ").next())
        .unwrap_or_else(|| panic!("no pods shown:\n{output}"));
    for (ns, name) in [
        ("smooch-operator", "smooch-operator-"),
        ("smooch-emulator", "emulator-"),
    ] {
        assert!(
            pods.lines().any(|l| l.starts_with(ns)
                && l.contains(name)
                && l.contains("1/1")
                && l.contains("Running")),
            "no running {name} pod in {ns}:\n{pods}"
        );
    }
    assert!(
        output.contains("upgrade smooch-operator charts/smooch-operator"),
        "no helm hint:\n{output}"
    );
}

/// Nothing the demo started is left: no process mentions its work dir,
/// and the dir is gone.
fn check_cleaned_up(work: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(work.to_str().unwrap()))
            .collect();
        if left.is_empty() && !work.exists() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: dir exists={} processes={left:?}",
            work.exists()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn node_lock() -> std::sync::MutexGuard<'static, ()> {
    if let Err(why) = node_prerequisites() {
        panic!("{why}");
    }
    NODE.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_host_restored(before: &HostSnapshot) {
    let differences = HostSnapshot::take().differences(before);
    assert!(
        differences.is_empty(),
        "the demo left changes on the host:\n{}",
        differences.join("\n")
    );
}

#[test]
fn the_demo_installs_the_chart_on_a_node_shows_everything_then_exits_clean() {
    let _node = node_lock();
    let before = HostSnapshot::take();
    let mut demo = start(&["--exit"]);
    let status = demo.wait_exit(Duration::from_secs(600));
    let output = demo.output();
    assert!(status.success(), "demo failed ({status}):\n{output}");
    check_what_it_shows(&output);
    check_node_run(&output);
    check_cleaned_up(&demo.work_dir());
    check_host_restored(&before);
}

#[test]
fn ctrl_c_stops_the_demo_and_removes_what_it_started() {
    let _node = node_lock();
    let before = HostSnapshot::take();
    let mut demo = start(&["--wait"]);
    let deadline = Instant::now() + Duration::from_secs(600);
    while !demo.output().contains("press Ctrl-C") {
        assert!(
            demo.child.try_wait().unwrap().is_none(),
            "demo ended early:\n{}",
            demo.output()
        );
        assert!(
            Instant::now() < deadline,
            "never got ready:\n{}",
            demo.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let work = demo.work_dir();
    assert!(work.exists());
    // Ctrl-C in a terminal: SIGINT to the foreground process group.
    let pgid = demo.child.id();
    assert!(
        Command::new("kill")
            .args(["-INT", "--", &format!("-{pgid}")])
            .status()
            .unwrap()
            .success()
    );
    let status = demo.wait_exit(Duration::from_secs(120));
    assert!(!status.success(), "Ctrl-C should end it with 130: {status}");
    assert!(
        demo.output()
            .contains("demo: stopping operator, emulator and control plane"),
        "{}",
        demo.output()
    );
    check_cleaned_up(&work);
    check_host_restored(&before);
}

#[test]
fn the_out_of_cluster_demo_still_works() {
    let mut demo = start(&["--exit", "--out-of-cluster"]);
    let status = demo.wait_exit(Duration::from_secs(300));
    let output = demo.output();
    assert!(status.success(), "demo failed ({status}):\n{output}");
    check_what_it_shows(&output);
    assert!(!output.contains("What this demo changes"), "{output}");
    check_cleaned_up(&demo.work_dir());
}
