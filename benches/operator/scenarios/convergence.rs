//! `convergence`: apply N apps + N keys + N telegram integrations at once;
//! time to all Ready, Smooch calls, Kubernetes writes (median of runs).

use crate::cli::{Common, FaultArgs};
use crate::run::{converge_once, print_details, print_median, print_run, print_run_header};
use crate::stats::emit_json;
use kube::Client;
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
    convergence(client, common, args.n, args.runs, args.faults).await;
}

async fn convergence(client: &Client, common: &Common, n: usize, runs: usize, f: FaultArgs) {
    let mut all = Vec::new();
    print_run_header();
    for _ in 0..runs {
        let r = converge_once(client, common, n, f, Duration::from_secs(5), true).await;
        print_run(&r);
        emit_json(common, &r);
        all.push(r);
    }
    print_median(&all);
    if let Some(r) = all.last() {
        println!("details of the last run:");
        print_details(r);
    }
}
