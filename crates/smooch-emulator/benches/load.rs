//! Load figures for the emulator: create-app and get-app at a fixed
//! concurrency over loopback, in-process (client and server share the
//! machine's cores).
//!
//! `cargo bench -p smooch-emulator --bench load`; `EMULATOR_BENCH_REQUESTS` and
//! `EMULATOR_BENCH_CONCURRENCY` change the defaults (20000 and 32).

use futures::StreamExt;
use serde_json::json;
use smooch_emulator::{EmulatorConfig, spawn};
use std::time::{Duration, Instant};

struct Figures {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }

    fn print(&self, name: &str, concurrency: usize) {
        println!(
            "{name:<8} {:>6} requests, concurrency {concurrency}: {:>8.0} req/s, p50 {:>7.3} ms, p99 {:>7.3} ms",
            self.requests,
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
        );
    }
}

/// Sends `requests` requests made by `request(i)`, `concurrency` at a time;
/// every answer must have status `expected`.
async fn run(
    requests: usize,
    concurrency: usize,
    expected: u16,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
) -> (Figures, Vec<String>) {
    let started = Instant::now();
    let request = &request;
    let mut answers: Vec<(Duration, String)> = futures::stream::iter(0..requests)
        .map(|i| async move {
            let sent = Instant::now();
            let response = request(i).send().await.expect("the emulator answers");
            let status = response.status().as_u16();
            let body = response.text().await.expect("body");
            assert_eq!(status, expected, "unexpected answer: {body}");
            (sent.elapsed(), body)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = answers.iter().map(|(d, _)| *d).collect();
    latencies.sort();
    let bodies = answers.drain(..).map(|(_, b)| b).collect();
    (
        Figures {
            requests,
            elapsed,
            latencies,
        },
        bodies,
    )
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let requests = env_number("EMULATOR_BENCH_REQUESTS", 20_000);
    let concurrency = env_number("EMULATOR_BENCH_CONCURRENCY", 32);
    let emulator = spawn(EmulatorConfig::default())
        .await
        .expect("the emulator starts");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("http client");
    let bearer = format!("Bearer {}", emulator.app_maker_token().expose());
    let apps_url = format!("{}/v1/apps", emulator.base_url());

    let (create, bodies) = run(requests, concurrency, 201, |i| {
        http.post(&apps_url)
            .header("authorization", &bearer)
            .json(&json!({"name": format!("bench app {i}")}))
    })
    .await;
    let app_urls: Vec<String> = bodies
        .iter()
        .map(|body| {
            let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
            let id = value["app"]["_id"].as_str().expect("app id");
            format!("{apps_url}/{id}")
        })
        .collect();
    let (get, _) = run(requests, concurrency, 200, |i| {
        http.get(&app_urls[i % app_urls.len()])
            .header("authorization", &bearer)
    })
    .await;

    println!(
        "emulator_load: in-process, loopback, {} CPU(s)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    create.print("create", concurrency);
    get.print("get", concurrency);
    emulator.shutdown().await.expect("clean shutdown");
}
