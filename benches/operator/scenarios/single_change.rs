//! `single-change`: with a Ready app, apply one SmoochKey at a time;
//! latency from apply to a Secret holding a valid JWT.

use crate::cli::{Common, faults_of, no_faults};
use crate::stats::{emit_json, loadavg, percentile};
use crate::world::{World, app_json, is_ready, jwt_valid};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use smooch_operator::resources::{SmoochApp, SmoochKey};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value_t = 30)]
    pub samples: usize,
}

pub async fn run(client: &Client, common: &Common, args: &Args) {
    single_change(client, common, args.samples).await;
}

async fn single_change(client: &Client, common: &Common, samples: usize) {
    let load_before = loadavg();
    let world = World::new(client, "bench-one", 0, faults_of(common, &no_faults())).await;
    let mut op = world.op_config(common).spawn("op", &[]);
    op.wait_ready(&world.http).await;
    let apps: Api<SmoochApp> = Api::namespaced(client.clone(), &world.ns);
    apps.create(
        &PostParams::default(),
        &serde_json::from_value(app_json(0)).unwrap(),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !apps.get("a0").await.is_ok_and(|a| is_ready(&a)) {
        assert!(Instant::now() < deadline, "app never Ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    world
        .emu
        .settle(Duration::from_secs(2), Duration::from_secs(30))
        .await;
    let keys: Api<SmoochKey> = Api::namespaced(client.clone(), &world.ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &world.ns);
    let mut lat = Vec::new();
    let calls_before = world.emu.counts().total;
    for i in 0..samples {
        let key: SmoochKey = serde_json::from_value(json!({
            "apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochKey",
            "metadata": {"name": format!("one{i}")},
            "spec": {"appRef": {"name": "a0"}, "name": "bench"}}))
        .unwrap();
        let t = Instant::now();
        keys.create(&PostParams::default(), &key).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(s)) = secrets.get_opt(&format!("one{i}-key")).await
                && jwt_valid(&s)
            {
                break;
            }
            assert!(Instant::now() < deadline, "key {i} never got its Secret");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        // Let trailing reconciles of this key finish before the next sample.
        world
            .emu
            .settle(Duration::from_millis(500), Duration::from_secs(10))
            .await;
    }
    let calls = world.emu.counts().total - calls_before;
    let mut sorted = lat.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let result = json!({
        "scenario": "single-change", "samples": samples, "latency_ms": common.latency_ms,
        "p50_ms": percentile(&sorted, 0.5), "p99_ms": percentile(&sorted, 0.99),
        "min_ms": sorted[0], "max_ms": sorted[sorted.len() - 1],
        "smooch_calls_per_key": calls as f64 / samples as f64,
        "samples_ms": lat, "load_before": load_before, "load_after": loadavg(),
    });
    println!(
        "single change (one SmoochKey, app Ready, emulator latency {} ms), {samples} samples: p50 {:.0} ms, p99 {:.0} ms (nearest rank; = max for <100 samples), min {:.0} ms, max {:.0} ms; Smooch calls per key {:.1}; load {} → {}",
        common.latency_ms,
        result["p50_ms"].as_f64().unwrap(),
        result["p99_ms"].as_f64().unwrap(),
        sorted[0],
        sorted[sorted.len() - 1],
        calls as f64 / samples as f64,
        result["load_before"].as_str().unwrap(),
        result["load_after"].as_str().unwrap(),
    );
    emit_json(common, &result);
}
