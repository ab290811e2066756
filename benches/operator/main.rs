//! End-to-end benchmarks of the operator binary against a real control
//! plane and the Smooch emulator (with added latency), one scenario at a
//! time:
//!
//! ```text
//! hack/bench.sh convergence --n 100 --runs 3      # starts/stops a control plane
//! cargo bench --bench operator -- <scenario> ...  # with KUBECONFIG already set
//! cargo bench --bench operator -- --help
//! ```
//!
//! The operator runs as a child process (the release binary), so its RSS
//! and CPU time are its own ([`operator`]). The emulator runs in this
//! process behind a recording middleware ([`emulator`]). Every loop is
//! bounded in count and time; all traffic is loopback.
//!
//! Layout: one file per scenario under `scenarios/`, on the shared pieces
//! here: the world of a run ([`world`]: namespace, Secrets, resources),
//! one measured convergence run ([`run`]), the check of what exists in
//! Smooch afterwards ([`verify`]), metrics ([`prometheus`]). The control
//! plane client and the CRD install come from `smooch-test-support`, as
//! for the tests.

mod cli;
mod emulator;
mod operator;
mod prometheus;
mod run;
mod stats;
mod verify;
mod world;
mod scenarios {
    pub mod apiserver_restart;
    pub mod convergence;
    pub mod crash;
    pub mod failover;
    pub mod faults;
    pub mod footprint;
    pub mod single_change;
    pub mod steady;
    pub mod sweep;
}

use clap::{Parser, Subcommand};
use cli::Common;
use scenarios::*;
use std::path::PathBuf;

/// Operator benchmarks (see BENCHMARKS.md).
#[derive(Parser, Debug)]
#[command(name = "operator-bench")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    #[command(flatten)]
    common: Common,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Apply N apps + N keys + N telegram integrations at once; time to all Ready, calls, writes.
    Convergence(convergence::Args),
    /// Convergence at several concurrency settings (cartesian product).
    Sweep(sweep::Args),
    /// With a Ready app, apply one SmoochKey at a time; apply → Secret with a valid JWT.
    SingleChange(single_change::Args),
    /// N Ready, then several resync periods: calls and writes per resync.
    Steady(steady::Args),
    /// RSS (peak, steady), CPU seconds and start → /readyz at several N.
    Footprint(footprint::Args),
    /// Fault-free and faulted convergence, alternated; Retry-After honoured?
    Faults(faults::Args),
    /// kill -9 the operator at random moments while N converge; then count external objects.
    Crash(crash::Args),
    /// Two replicas with leader election; kill -9 the leader mid-convergence.
    Failover(failover::Args),
    /// Restart kube-apiserver (of the control plane in --cp-dir) mid-convergence.
    ApiserverRestart(apiserver_restart::Args),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let common = &cli.common;
    let client = smooch_test_support::kube_client().await;
    smooch_test_support::install_crds(&client).await;
    println!(
        "# {} | {} cores | load {} | operator {}",
        jiff::Timestamp::now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        stats::loadavg(),
        common
            .operator_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_smooch-operator")))
            .display()
    );
    println!("# {:?}", cli.scenario);
    match &cli.scenario {
        Scenario::Convergence(args) => convergence::run(&client, common, args).await,
        Scenario::Sweep(args) => sweep::run(&client, common, args).await,
        Scenario::SingleChange(args) => single_change::run(&client, common, args).await,
        Scenario::Steady(args) => steady::run(&client, common, args).await,
        Scenario::Footprint(args) => footprint::run(&client, common, args).await,
        Scenario::Faults(args) => faults::run(&client, common, args).await,
        Scenario::Crash(args) => crash::run(&client, common, args).await,
        Scenario::Failover(args) => failover::run(&client, common, args).await,
        Scenario::ApiserverRestart(args) => apiserver_restart::run(&client, common, args).await,
    }
}
