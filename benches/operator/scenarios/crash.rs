//! `crash`: kill -9 the operator at random moments while N converge;
//! then count the external objects (each exactly once, none orphaned).

use crate::cli::{Common, faults_of, no_faults};
use crate::stats::{emit_json, loadavg};
use crate::verify::verify;
use crate::world::World;
use kube::Client;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 300)]
    pub n: usize,
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// Longest random pause between two kills, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub max_gap_ms: u64,
}

pub async fn run(client: &Client, common: &Common, args: &Args) {
    crash(client, common, args.n, args.kills, args.max_gap_ms).await;
}

async fn crash(client: &Client, common: &Common, n: usize, kills: usize, max_gap_ms: u64) {
    use rand::Rng;
    let load_before = loadavg();
    let world = World::new(client, "bench-crash", n, faults_of(common, &no_faults())).await;
    let cfg = world.op_config(common);
    let mut op = cfg.spawn("op-0", &[]);
    op.wait_ready(&world.http).await;
    let t0 = Instant::now();
    let apply = world.apply(0..n);
    let killer = async {
        let mut killed_before_ready = 0;
        for k in 0..kills {
            let gap = rand::rng().random_range(100..=max_gap_ms.max(101));
            tokio::time::sleep(Duration::from_millis(gap)).await;
            op.kill9();
            if world
                .ready_counts()
                .await
                .is_some_and(|(a, kk, i)| a + kk + i < 3 * n)
            {
                killed_before_ready += 1;
            }
            op = cfg.spawn(&format!("op-{}", k + 1), &[]);
        }
        killed_before_ready
    };
    let (_, killed_before_ready) = futures::join!(apply, killer);
    let last_restart = Instant::now();
    let ok = world.wait_all_ready(n, common).await;
    let converge_s = t0.elapsed().as_secs_f64();
    let after_last = last_restart.elapsed().as_secs_f64();
    world.settle(common).await;
    let counts = world.emu.counts();
    let v = verify(&world).await;
    let result = json!({
        "scenario": "crash", "n": n, "kills": kills, "killed_before_all_ready": killed_before_ready,
        "converged": ok, "converge_s": converge_s, "ready_after_last_restart_s": after_last,
        "smooch_routes": counts.routes, "verify": v, "load_before": load_before, "load_after": loadavg(),
    });
    println!(
        "crash: N={n} (3N={} objects), {kills} kill -9 (random gaps 100..{max_gap_ms} ms), {killed_before_ready} of them before all were Ready; converged: {ok}, {converge_s:.1}s from apply, {after_last:.1}s after the last restart",
        3 * n
    );
    println!(
        "  external objects: {} apps in Smooch; not exactly once: apps {}, keys {}, integrations {}; orphaned keys {}, orphaned integrations {}; Secrets with wrong values {}",
        v.apps_in_smooch,
        v.apps_not_exactly_once,
        v.keys_not_exactly_once,
        v.integrations_not_exactly_once,
        v.orphaned_keys,
        v.orphaned_integrations,
        v.wrong_secrets
    );
    println!(
        "  creates: {:?}; load {} → {}",
        counts
            .routes
            .iter()
            .filter(|(k, _)| k.starts_with("POST") || k.starts_with("DELETE"))
            .collect::<BTreeMap<_, _>>(),
        result["load_before"].as_str().unwrap(),
        result["load_after"].as_str().unwrap()
    );
    emit_json(common, &result);
}
