//! One convergence run, measured: N apps + N keys + N integrations
//! applied at once against a fresh operator, until all are Ready; Smooch
//! calls, Kubernetes writes, memory and CPU. The convergence, sweep,
//! footprint and faults scenarios are made of these.

use crate::cli::{Common, FaultArgs, faults_of};
use crate::emulator::{RetryAfterCheck, retry_after_check};
use crate::prometheus::{apiserver_writes, diff, sum_by};
use crate::stats::{loadavg, median};
use crate::verify::{Verify, verify};
use crate::world::World;
use kube::Client;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Run {
    pub scenario: String,
    pub n: usize,
    pub reconcile_concurrency: u16,
    pub smooch_concurrency: usize,
    pub latency_ms: u64,
    pub error_rate: f64,
    pub rate_limit_rate: f64,
    pub load_before: String,
    pub load_after: String,
    pub readyz_s: f64,
    pub apply_s: f64,
    pub converge_s: f64,
    pub timed_out: bool,
    pub smooch_calls: u64,
    pub smooch_reads: u64,
    pub smooch_writes: u64,
    pub smooch_routes: BTreeMap<String, u64>,
    pub smooch_faulted: BTreeMap<u16, u64>,
    pub min_calls_strict: u64,
    pub min_calls_crash_safe: u64,
    pub bound_s: f64,
    pub bound_min_s: f64,
    pub kube_writes_metric: BTreeMap<String, u64>,
    pub kube_writes_metric_total: u64,
    pub apiserver_writes: BTreeMap<String, u64>,
    pub apiserver_writes_by_operator: u64,
    pub min_kube_writes: u64,
    pub reconciles: BTreeMap<String, u64>,
    pub failures: BTreeMap<String, u64>,
    /// Mean reconcile duration per kind, ms (operator histogram sum/count).
    pub reconcile_mean_ms: BTreeMap<String, f64>,
    /// Mean Smooch call duration seen by the operator, ms.
    pub smooch_call_mean_ms: f64,
    pub peak_rss_mb: f64,
    pub steady_rss_mb: f64,
    pub cpu_s: f64,
    pub retry_after: RetryAfterCheck,
    pub verify: Option<Verify>,
}

/// Strict minimum: POST per app/key/integration + the JWT GET per key.
/// Crash-safe minimum: plus one lookup by tag before each create
/// (list apps: one page per 100 apps existing; list keys; list integrations).
pub fn minimum_calls(n: usize) -> (u64, u64) {
    let n = n as u64;
    let strict = 4 * n;
    // Crash-safe: before each create, one lookup by tag: a list of the app's
    // keys per key, of its integrations per integration, and for apps one
    // walk of the account's app list per operator process (1 page here, the
    // account being empty when the run starts).
    (strict, strict + 2 * n + 1)
}

pub async fn converge_once(
    client: &Client,
    common: &Common,
    n: usize,
    f: FaultArgs,
    settle: Duration,
    check: bool,
) -> Run {
    let load_before = loadavg();
    let faults = faults_of(common, &f);
    let world = World::new(client, "bench-conv", n, faults).await;
    let cfg = world.op_config(common);
    let mut op = cfg.spawn("op", &[]);
    let readyz = op.wait_ready(&world.http).await;
    let kube_before = apiserver_writes(client).await;
    let t0 = Instant::now();
    world.apply(0..n).await;
    let apply_s = t0.elapsed().as_secs_f64();
    let ok = world.wait_all_ready(n, common).await;
    let converge_s = t0.elapsed().as_secs_f64();
    world.settle(common).await;
    let counts = world.emu.counts();
    let metrics = op.metrics(&world.http).await;
    let kube_after = apiserver_writes(client).await;
    let (peak_kb, _, _) = op.stats();
    if settle > Duration::ZERO {
        tokio::time::sleep(settle).await;
    }
    let (peak2, steady_kb, cpu_s) = op.stats();
    let log = world.emu.log.lock().unwrap().clone();
    let retry_after = retry_after_check(&log);
    let verify = if check && n > 0 {
        Some(verify(&world).await)
    } else {
        None
    };
    let (min_strict, min_safe) = minimum_calls(n);
    let lat = common.latency_ms as f64 / 1000.0;
    let sc = common.smooch_concurrency as f64;
    let kube_writes_metric: BTreeMap<String, u64> = sum_by(
        &metrics,
        "smooch_operator_kubernetes_writes_total",
        &["kind", "object"],
    )
    .into_iter()
    .map(|(k, v)| (k, v as u64))
    .collect();
    let mut apiserver = diff(&kube_after, &kube_before);
    // The bench itself created the 3n custom resources: not the operator's.
    for kind in ["smoochapps", "smoochkeys", "smoochintegrations"] {
        let key = format!("POST {kind}");
        if let Some(c) = apiserver.get_mut(&key) {
            *c = c.saturating_sub(n as u64);
        }
        apiserver.retain(|_, c| *c > 0);
    }
    let by_operator: u64 = apiserver.values().sum();
    let run = Run {
        scenario: "convergence".into(),
        n,
        reconcile_concurrency: common.reconcile_concurrency,
        smooch_concurrency: common.smooch_concurrency,
        latency_ms: common.latency_ms,
        error_rate: f.error_rate,
        rate_limit_rate: f.rate_limit_rate,
        load_before,
        load_after: loadavg(),
        readyz_s: readyz.as_secs_f64(),
        apply_s,
        converge_s,
        timed_out: !ok,
        smooch_calls: counts.total,
        smooch_reads: counts.reads,
        smooch_writes: counts.writes,
        smooch_routes: counts.routes.clone(),
        smooch_faulted: counts.faulted.clone(),
        min_calls_strict: min_strict,
        min_calls_crash_safe: min_safe,
        bound_s: counts.total as f64 * lat / sc,
        bound_min_s: min_strict as f64 * lat / sc,
        kube_writes_metric_total: kube_writes_metric.values().sum(),
        kube_writes_metric,
        apiserver_writes: apiserver,
        apiserver_writes_by_operator: by_operator,
        // finalizer + status per object, Secret per app and key.
        min_kube_writes: 8 * n as u64,
        reconciles: sum_by(&metrics, "smooch_operator_reconciles_total", &["kind"])
            .into_iter()
            .map(|(k, v)| (k, v as u64))
            .collect(),
        failures: sum_by(
            &metrics,
            "smooch_operator_reconcile_failures_total",
            &["kind", "reason"],
        )
        .into_iter()
        .map(|(k, v)| (k, v as u64))
        .collect(),
        reconcile_mean_ms: {
            let sums = sum_by(
                &metrics,
                "smooch_operator_reconcile_duration_seconds_sum",
                &["kind"],
            );
            let counts = sum_by(
                &metrics,
                "smooch_operator_reconcile_duration_seconds_count",
                &["kind"],
            );
            sums.iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        1000.0 * s / counts.get(k).copied().unwrap_or(1.0),
                    )
                })
                .collect()
        },
        smooch_call_mean_ms: {
            let total = |name: &str| sum_by(&metrics, name, &[]).values().sum::<f64>();
            1000.0 * total("smooch_operator_smooch_api_call_duration_seconds_sum")
                / total("smooch_operator_smooch_api_call_duration_seconds_count").max(1.0)
        },
        peak_rss_mb: peak_kb.max(peak2) as f64 / 1024.0,
        steady_rss_mb: steady_kb as f64 / 1024.0,
        cpu_s,
        retry_after,
        verify,
    };
    drop(op);
    run
}

pub fn print_run_header() {
    println!(
        "{:>5} {:>3} {:>3} {:>4} {:>9} {:>8} {:>9} {:>7} {:>7} {:>9} {:>7} {:>6} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>6}  load(1/5/15m) before → after",
        "N",
        "rc",
        "sc",
        "lat",
        "faults",
        "readyz",
        "converge",
        "calls",
        "min4N",
        "min-safe",
        "bound",
        "ratio",
        "k8s-op",
        "min8N",
        "metric",
        "peakMB",
        "steadyMB",
        "cpu_s",
        "ok"
    );
}

pub fn print_run(r: &Run) {
    println!(
        "{:>5} {:>3} {:>3} {:>4} {:>9} {:>7.2}s {:>8.1}s {:>7} {:>7} {:>9} {:>6.1}s {:>6.1} {:>8} {:>8} {:>8} {:>6.0} {:>7.0} {:>7.1} {:>6}  {} → {}",
        r.n,
        r.reconcile_concurrency,
        r.smooch_concurrency,
        r.latency_ms,
        format!("{}/{}", r.error_rate, r.rate_limit_rate),
        r.readyz_s,
        r.converge_s,
        r.smooch_calls,
        r.min_calls_strict,
        r.min_calls_crash_safe,
        r.bound_s,
        if r.bound_s > 0.0 {
            r.converge_s / r.bound_s
        } else {
            f64::NAN
        },
        r.apiserver_writes_by_operator,
        r.min_kube_writes,
        r.kube_writes_metric_total,
        r.peak_rss_mb,
        r.steady_rss_mb,
        r.cpu_s,
        if r.timed_out {
            "TIMEOUT"
        } else if r.verify.as_ref().is_some_and(|v| !v.clean()) {
            "DIRTY"
        } else {
            "yes"
        },
        r.load_before,
        r.load_after,
    );
}

pub fn print_median(runs: &[Run]) {
    let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    println!(
        "median of {} run(s): converge {:.1}s, readyz {:.2}s, calls {:.0}, bound {:.1}s (ratio {:.1}), k8s writes by operator {:.0} (metric {:.0}), peak RSS {:.0} MB, steady RSS {:.0} MB, CPU {:.1}s",
        runs.len(),
        m(|r| r.converge_s),
        m(|r| r.readyz_s),
        m(|r| r.smooch_calls as f64),
        m(|r| r.bound_s),
        m(|r| r.converge_s / r.bound_s.max(1e-9)),
        m(|r| r.apiserver_writes_by_operator as f64),
        m(|r| r.kube_writes_metric_total as f64),
        m(|r| r.peak_rss_mb),
        m(|r| r.steady_rss_mb),
        m(|r| r.cpu_s),
    );
}

pub fn print_details(r: &Run) {
    println!("  Smooch calls per route (emulator counters):");
    for (route, c) in &r.smooch_routes {
        println!("    {c:>7}  {route}");
    }
    if !r.smooch_faulted.is_empty() {
        println!("  faulted answers: {:?}", r.smooch_faulted);
    }
    println!(
        "  Kubernetes writes seen by the API server (the operator's: the bench's 3N creates taken off):"
    );
    for (k, c) in &r.apiserver_writes {
        println!("    {c:>7}  {k}");
    }
    println!(
        "  operator metric kubernetes_writes_total: {:?}",
        r.kube_writes_metric
    );
    println!("  reconciles: {:?}", r.reconciles);
    println!(
        "  mean reconcile duration (ms): {:?}; mean Smooch call as the operator saw it: {:.1} ms",
        r.reconcile_mean_ms
            .iter()
            .map(|(k, v)| (k.as_str(), v.round()))
            .collect::<BTreeMap<_, _>>(),
        r.smooch_call_mean_ms
    );
    if !r.failures.is_empty() {
        println!("  reconcile failures: {:?}", r.failures);
    }
    if r.retry_after.answered_429 > 0 {
        println!(
            "  Retry-After: {} answered 429, {} repeated identically, min gap {:?} ms, repeats sooner than Retry-After: {:?}",
            r.retry_after.answered_429,
            r.retry_after.repeated,
            r.retry_after.min_gap_ms,
            r.retry_after.early
        );
        println!(
            "  min gap 429 → identical request, per route (ms): {:?}",
            r.retry_after.min_gap_ms_by_route
        );
    }
    if let Some(v) = &r.verify {
        println!("  verify: {v:?}");
    }
}
