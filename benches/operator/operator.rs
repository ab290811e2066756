//! The operator under test: the release binary as a child process, so
//! that its RSS and CPU time are its own.

use crate::prometheus::{Sample, parse_prometheus};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Op {
    pub child: Child,
    pub log: PathBuf,
    pub spawned: Instant,
    pub metrics_addr: Option<String>,
    pub clk_tck: f64,
}

#[derive(Clone, Debug)]
pub struct OpConfig {
    pub bin: PathBuf,
    pub smooch_url: String,
    pub ns: String,
    pub reconcile_concurrency: u16,
    pub smooch_concurrency: usize,
    pub resync: String,
}

impl OpConfig {
    pub fn spawn(&self, name: &str, extra: &[&str]) -> Op {
        let dir = std::env::temp_dir().join("smooch-operator-bench");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("{}-{name}.log", self.ns));
        let out = std::fs::File::create(&log).expect("log file");
        let spawned = Instant::now();
        let child = Command::new(&self.bin)
            .args([
                "--smooch-url",
                &self.smooch_url,
                "--operator-namespace",
                &self.ns,
                "--watch-namespaces",
                &self.ns,
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-json",
                "--log-level",
                "info",
                "--reconcile-concurrency",
                &self.reconcile_concurrency.to_string(),
                "--smooch-concurrency",
                &self.smooch_concurrency.to_string(),
                "--resync-period",
                &self.resync,
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("operator binary starts");
        Op {
            child,
            log,
            spawned,
            metrics_addr: None,
            clk_tck: clk_tck(),
        }
    }
}

pub fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

impl Op {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The metrics address from the first JSON log line.
    pub async fn metrics_addr(&mut self) -> String {
        if let Some(a) = &self.metrics_addr {
            return a.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|l| l.contains("smooch-operator starting"))
            {
                let v: Value = serde_json::from_str(line).unwrap_or_default();
                let addr = v["metrics"]
                    .as_str()
                    .or(v["fields"]["metrics"].as_str())
                    .expect("metrics field in the start line")
                    .to_string();
                self.metrics_addr = Some(addr.clone());
                return addr;
            }
            assert!(
                Instant::now() < deadline && self.alive(),
                "operator never started:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Time from spawning the process to /readyz answering 200.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) -> Duration {
        let addr = self.metrics_addr().await;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await
                && r.status() == 200
            {
                return self.spawned.elapsed();
            }
            assert!(Instant::now() < deadline, "operator never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics(&mut self, http: &reqwest::Client) -> Vec<Sample> {
        let addr = self.metrics_addr().await;
        match http.get(format!("http://{addr}/metrics")).send().await {
            Ok(r) => parse_prometheus(&r.text().await.unwrap_or_default()),
            Err(_) => Vec::new(),
        }
    }

    /// (VmHWM kB, VmRSS kB, CPU seconds).
    pub fn stats(&self) -> (u64, u64, f64) {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kb = |field: &str| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let cpu = (ticks(11) + ticks(12)) as f64 / self.clk_tck;
        (kb("VmHWM:"), kb("VmRSS:"), cpu)
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        self.kill9();
    }
}
