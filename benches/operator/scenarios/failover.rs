//! `failover`: two replicas with leader election; kill -9 the leader
//! mid-convergence; how soon the standby takes over, nothing made twice.

use crate::cli::{Common, faults_of, no_faults};
use crate::stats::{emit_json, loadavg, median};
use crate::verify::verify;
use crate::world::World;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value_t = 5)]
    pub lease_secs: u64,
}

pub async fn run(client: &Client, common: &Common, args: &Args) {
    failover(client, common, args.n, args.runs, args.lease_secs).await;
}

async fn lease_holder(client: &Client, ns: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("smooch-operator-leader")
        .await
        .ok()??;
    lease.spec?.holder_identity
}

async fn failover(client: &Client, common: &Common, n: usize, runs: usize, lease_secs: u64) {
    let mut takeovers = Vec::new();
    for run in 0..runs {
        let load_before = loadavg();
        let world = World::new(client, "bench-failover", n, faults_of(common, &no_faults())).await;
        let cfg = world.op_config(common);
        let lease = lease_secs.to_string();
        let flags = |id: &'static str| {
            vec![
                "--leader-elect".to_string(),
                "--leader-election-lease-seconds".into(),
                lease.clone(),
                "--identity".into(),
                id.into(),
            ]
        };
        let fa = flags("replica-a");
        let fb = flags("replica-b");
        let mut a = cfg.spawn("a", &fa.iter().map(String::as_str).collect::<Vec<_>>());
        let mut b = cfg.spawn("b", &fb.iter().map(String::as_str).collect::<Vec<_>>());
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = loop {
            if let Some(h) = lease_holder(client, &world.ns).await {
                break h;
            }
            assert!(Instant::now() < deadline, "nobody took the lease");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let t0 = Instant::now();
        world.apply(0..n).await;
        // Kill the leader once about a third is Ready.
        let deadline = Instant::now() + Duration::from_secs(common.timeout_secs);
        loop {
            if let Some((x, y, z)) = world.ready_counts().await
                && x + y + z >= n
            {
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready_at_kill = world.ready_counts().await.map_or(0, |(x, y, z)| x + y + z);
        // Both replicas started together: exactly one may have led.
        let leaders = [&a, &b]
            .iter()
            .filter(|op| {
                std::fs::read_to_string(&op.log)
                    .unwrap_or_default()
                    .contains("became the leader")
            })
            .count();
        let standby = if first == "replica-a" {
            a.kill9();
            "replica-b"
        } else {
            b.kill9();
            "replica-a"
        };
        let killed = Instant::now();
        let deadline = killed + Duration::from_secs(120);
        let takeover = loop {
            if lease_holder(client, &world.ns).await.as_deref() == Some(standby) {
                break Some(killed.elapsed().as_secs_f64());
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Without a new leader nothing would converge: report, do not wait.
        let ok = takeover.is_some() && world.wait_all_ready(n, common).await;
        let all_ready_after_kill = killed.elapsed().as_secs_f64();
        let converge_s = t0.elapsed().as_secs_f64();
        world.settle(common).await;
        let counts = world.emu.counts();
        let v = verify(&world).await;
        let posts: BTreeMap<&String, &u64> = counts
            .routes
            .iter()
            .filter(|(k, _)| k.starts_with("POST"))
            .collect();
        println!(
            "failover run {run}: N={n}, lease {lease_secs}s, replicas that led before the kill: {leaders} (must be 1), leader {first} killed with {ready_at_kill}/{} Ready; takeover (holder → {standby}) after {}; all Ready {all_ready_after_kill:.1}s after the kill ({converge_s:.1}s from apply, ok: {ok}); creates {posts:?}; duplicates: apps {}, keys {}, integrations {}, orphaned keys {}; wrong Secrets {}; load {load_before} → {}",
            3 * n,
            takeover.map_or("never".into(), |t| format!("{t:.2}s")),
            v.apps_not_exactly_once,
            v.keys_not_exactly_once,
            v.integrations_not_exactly_once,
            v.orphaned_keys,
            v.wrong_secrets,
            loadavg()
        );
        emit_json(
            common,
            &json!({"scenario": "failover", "n": n, "lease_secs": lease_secs, "takeover_s": takeover, "leaders_before_kill": leaders,
                    "ready_at_kill": ready_at_kill, "all_ready_after_kill_s": all_ready_after_kill,
                    "converged": ok, "creates": posts, "verify": v,
                    "load_before": load_before, "load_after": loadavg()}),
        );
        if let Some(t) = takeover {
            takeovers.push(t);
        }
        drop((a, b));
    }
    println!(
        "failover: median takeover {:.2}s over {} run(s) (lease {lease_secs}s)",
        median(takeovers.clone()),
        takeovers.len()
    );
}
