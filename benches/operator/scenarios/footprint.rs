//! `footprint`: RSS (peak, steady), CPU seconds and start → /readyz at
//! several N.

use crate::cli::{Common, no_faults};
use crate::run::converge_once;
use crate::stats::{emit_json, median};
use kube::Client;
use serde_json::json;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, value_delimiter = ',', default_value = "0,100,1000")]
    pub n: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Idle time after convergence before the steady RSS is read.
    #[arg(long, default_value_t = 20)]
    pub settle_secs: u64,
}

pub async fn run(client: &Client, common: &Common, args: &Args) {
    footprint(client, common, &args.n, args.runs, args.settle_secs).await;
}

async fn footprint(client: &Client, common: &Common, ns_list: &[usize], runs: usize, settle: u64) {
    let mut rows = Vec::new();
    for &n in ns_list {
        let mut rs = Vec::new();
        for _ in 0..runs {
            let r = converge_once(
                client,
                common,
                n,
                no_faults(),
                Duration::from_secs(settle),
                false,
            )
            .await;
            let mut j = serde_json::to_value(&r).unwrap();
            j["scenario"] = json!("footprint");
            emit_json(common, &j);
            println!(
                "N={n}: readyz {:.2}s, converge {:.1}s{}, peak RSS {:.1} MB, steady RSS {:.1} MB ({settle}s after), CPU {:.1}s; load {} → {}",
                r.readyz_s,
                r.converge_s,
                if r.timed_out { " (TIMEOUT)" } else { "" },
                r.peak_rss_mb,
                r.steady_rss_mb,
                r.cpu_s,
                r.load_before,
                r.load_after
            );
            rs.push(r);
        }
        rows.push((
            n,
            median(rs.iter().map(|r| r.readyz_s).collect()),
            median(rs.iter().map(|r| r.peak_rss_mb).collect()),
            median(rs.iter().map(|r| r.steady_rss_mb).collect()),
            median(rs.iter().map(|r| r.cpu_s).collect()),
        ));
    }
    println!("\nfootprint, median of {runs} run(s):");
    println!(
        "{:>6} {:>10} {:>8} {:>9} {:>7}",
        "N", "readyz_s", "peakMB", "steadyMB", "cpu_s"
    );
    for (n, rz, p, s, c) in rows {
        println!("{n:>6} {rz:>10.2} {p:>8.1} {s:>9.1} {c:>7.1}");
    }
}
