//! Settings every scenario shares (`--latency-ms`, the operator's
//! concurrency flags, timeouts, output) and the fault flags.

use clap::Args;
use smooch_emulator::Faults;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Latency the emulator adds to every API call.
    #[arg(long, global = true, default_value_t = 20)]
    pub latency_ms: u64,
    /// Operator flag --smooch-concurrency.
    #[arg(long, global = true, default_value_t = 16)]
    pub smooch_concurrency: usize,
    /// Operator flag --reconcile-concurrency.
    #[arg(long, global = true, default_value_t = 8)]
    pub reconcile_concurrency: u16,
    /// Operator flag --resync-period (Go duration).
    #[arg(long, global = true, default_value = "10m")]
    pub resync: String,
    /// Longest wait for convergence, in seconds (a run that hits it is reported as such).
    #[arg(long, global = true, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Quiet period (no Smooch call) that counts as "settled" after convergence, in seconds.
    #[arg(long, global = true, default_value_t = 3)]
    pub quiet_secs: u64,
    /// The operator binary (default: the one cargo built for this bench).
    #[arg(long, global = true, env = "SMOOCH_OPERATOR_BIN")]
    pub operator_bin: Option<PathBuf>,
    /// Append one JSON object per run to this file.
    #[arg(long, global = true, env = "BENCH_JSON")]
    pub json: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct FaultArgs {
    /// Fraction of Smooch calls answered 503.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction of Smooch calls answered 429.
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit_rate: f64,
    /// Retry-After of the 429 answers.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
}

pub fn faults_of(common: &Common, f: &FaultArgs) -> Faults {
    Faults {
        latency_ms: common.latency_ms,
        error_rate: f.error_rate,
        rate_limit_rate: f.rate_limit_rate,
        retry_after_secs: f.retry_after_secs,
        ..Faults::default()
    }
}

pub fn no_faults() -> FaultArgs {
    FaultArgs {
        error_rate: 0.0,
        rate_limit_rate: 0.0,
        retry_after_secs: 1,
    }
}
