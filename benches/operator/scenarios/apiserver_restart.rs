//! `apiserver-restart`: restart kube-apiserver (of the control plane in
//! `--cp-dir`, as `hack/controlplane.sh start` left it) mid-convergence;
//! the same operator process must recover by itself.

use crate::cli::{Common, faults_of, no_faults};
use crate::prometheus::sum_by;
use crate::stats::{emit_json, loadavg};
use crate::verify::verify;
use crate::world::World;
use kube::Client;
use serde_json::json;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// The run dir given to `hack/controlplane.sh start`.
    #[arg(long, env = "CONTROLPLANE_DIR")]
    pub cp_dir: PathBuf,
    /// How long the apiserver stays down.
    #[arg(long, default_value_t = 5)]
    pub down_secs: u64,
}

pub async fn run(client: &Client, common: &Common, args: &Args) {
    apiserver_restart(client, common, args.n, &args.cp_dir, args.down_secs).await;
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
