//! The README's first command, `hack/demo.sh`, run as a user runs it: its
//! own control plane, emulator and operator, the examples applied and
//! shown; then everything it started is gone, after `--exit` and after
//! Ctrl-C. Needs the control plane binaries built (`hack/test.sh` does).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn start(mode: &str) -> Demo {
    let dir = std::env::temp_dir().join(format!(
        "demo-test-{}-{}",
        mode.trim_start_matches('-'),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("output.txt");
    let file = File::create(&output).unwrap();
    let child = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/demo.sh"))
        .arg(mode)
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

    /// The demo's own work dir, from the hint it prints (`logs: DIR/operator.log`).
    fn work_dir(&self) -> PathBuf {
        let output = self.output();
        let line = output
            .lines()
            .find(|l| l.trim_start().starts_with("logs:"))
            .unwrap_or_else(|| panic!("no logs: line in\n{output}"));
        let log = line.trim_start().trim_start_matches("logs:").trim();
        let log = log.split(',').next().unwrap().trim();
        Path::new(log).parent().unwrap().to_path_buf()
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

#[test]
fn the_demo_shows_everything_ready_and_masked_then_exits_clean() {
    let mut demo = start("--exit");
    let status = demo.wait_exit(Duration::from_secs(300));
    let output = demo.output();
    assert!(status.success(), "demo failed ({status}):\n{output}");
    check_what_it_shows(&output);
    check_cleaned_up(&demo.work_dir());
}

#[test]
fn ctrl_c_stops_the_demo_and_removes_what_it_started() {
    let mut demo = start("--wait");
    let deadline = Instant::now() + Duration::from_secs(300);
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
    let status = demo.wait_exit(Duration::from_secs(60));
    assert!(!status.success(), "Ctrl-C should end it with 130: {status}");
    assert!(
        demo.output()
            .contains("demo: stopping operator, emulator and control plane"),
        "{}",
        demo.output()
    );
    check_cleaned_up(&work);
}
