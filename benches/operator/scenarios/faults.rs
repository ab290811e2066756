//! `faults`: fault-free and faulted convergence (503s, 429s with
//! Retry-After), alternated; is Retry-After honoured, is anything
//! created twice?

use crate::cli::{Common, FaultArgs, no_faults};
use crate::run::{converge_once, print_details, print_median, print_run, print_run_header};
use crate::stats::emit_json;
use crate::verify::Verify;
use kube::Client;
use serde_json::json;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[command(flatten)]
    pub faults: FaultArgs,
}

pub async fn run(client: &Client, common: &Common, args: &Args) {
    faults(client, common, args.n, args.runs, args.faults).await;
}

async fn faults(client: &Client, common: &Common, n: usize, runs: usize, f: FaultArgs) {
    let f = if f.error_rate == 0.0 && f.rate_limit_rate == 0.0 {
        FaultArgs {
            error_rate: 0.2,
            rate_limit_rate: 0.1,
            retry_after_secs: 1,
        }
    } else {
        f
    };
    let (mut clean, mut faulty) = (Vec::new(), Vec::new());
    print_run_header();
    for _ in 0..runs {
        let r = converge_once(client, common, n, no_faults(), Duration::ZERO, true).await;
        print_run(&r);
        let mut j = serde_json::to_value(&r).unwrap();
        j["scenario"] = json!("faults-baseline");
        emit_json(common, &j);
        clean.push(r);
        let r = converge_once(client, common, n, f, Duration::ZERO, true).await;
        print_run(&r);
        let mut j = serde_json::to_value(&r).unwrap();
        j["scenario"] = json!("faults");
        emit_json(common, &j);
        faulty.push(r);
    }
    println!("fault-free:");
    print_median(&clean);
    println!(
        "with faults ({} 503, {} 429 with Retry-After {}s):",
        f.error_rate, f.rate_limit_rate, f.retry_after_secs
    );
    print_median(&faulty);
    for r in &faulty {
        println!(
            "  run: faulted {:?}; Retry-After: {} answered 429, {} repeated identically, min gap {:?} ms, early repeats {:?}; verify clean: {}",
            r.smooch_faulted,
            r.retry_after.answered_429,
            r.retry_after.repeated,
            r.retry_after.min_gap_ms,
            r.retry_after.early,
            r.verify.as_ref().is_some_and(Verify::clean)
        );
    }
    if let Some(r) = faulty.last() {
        println!("details of the last faulted run:");
        print_details(r);
    }
}
