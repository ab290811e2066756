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
use smooch_test_support::controlplane::{apiserver_process, restart_apiserver};
use std::path::PathBuf;
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
    let (stop_s, _) = restart_apiserver(cp_dir, Duration::from_secs(down_secs)).await;
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
        stop_s,
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
