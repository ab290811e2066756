//! `steady`: N Ready, then several resync periods; Smooch calls and
//! Kubernetes writes per resync (the goal: reads only, no write).

use crate::cli::{Common, faults_of, no_faults};
use crate::prometheus::{apiserver_writes, diff, sum_by};
use crate::stats::{emit_json, loadavg};
use crate::world::World;
use kube::Client;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// Resync periods to observe (the resync is --resync, e.g. 30s).
    #[arg(long, default_value_t = 3)]
    pub periods: u32,
}

pub async fn run(client: &Client, common: &Common, args: &Args) {
    steady(client, common, args.n, args.periods).await;
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
