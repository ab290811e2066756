//! `sweep`: convergence at several concurrency settings (the cartesian
//! product of `--reconcile` and `--smooch`).

use crate::cli::{Common, no_faults};
use crate::run::{converge_once, print_run, print_run_header};
use crate::stats::{emit_json, median};
use kube::Client;
use serde_json::json;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    pub reconcile: Vec<u16>,
    #[arg(long, value_delimiter = ',', default_value = "8,16,32")]
    pub smooch: Vec<usize>,
}

pub async fn run(client: &Client, common: &Common, args: &Args) {
    sweep(
        client,
        common,
        args.n,
        args.runs,
        &args.reconcile,
        &args.smooch,
    )
    .await;
}

async fn sweep(
    client: &Client,
    common: &Common,
    n: usize,
    runs: usize,
    rcs: &[u16],
    scs: &[usize],
) {
    let mut summary = Vec::new();
    print_run_header();
    for &rc in rcs {
        for &sc in scs {
            let mut c = common.clone();
            c.reconcile_concurrency = rc;
            c.smooch_concurrency = sc;
            let mut rs = Vec::new();
            for _ in 0..runs {
                let r = converge_once(client, &c, n, no_faults(), Duration::ZERO, false).await;
                print_run(&r);
                let mut j = serde_json::to_value(&r).unwrap();
                j["scenario"] = json!("sweep");
                emit_json(common, &j);
                rs.push(r);
            }
            summary.push((
                rc,
                sc,
                median(rs.iter().map(|r| r.converge_s).collect()),
                median(rs.iter().map(|r| r.smooch_calls as f64).collect()),
                median(rs.iter().map(|r| r.cpu_s).collect()),
                median(rs.iter().map(|r| r.peak_rss_mb).collect()),
            ));
        }
    }
    println!(
        "\nsweep, N={n}, latency {} ms, median of {runs} run(s):",
        common.latency_ms
    );
    println!(
        "{:>4} {:>4} {:>10} {:>8} {:>7} {:>7}",
        "rc", "sc", "converge", "calls", "cpu_s", "peakMB"
    );
    for (rc, sc, t, calls, cpu, rss) in summary {
        println!("{rc:>4} {sc:>4} {t:>9.1}s {calls:>8.0} {cpu:>7.1} {rss:>7.0}");
    }
}
