//! For tests that run a real node (`hack/controlplane.sh start DIR --node`):
//! a snapshot of everything the node may change on the host, to prove that
//! its teardown restored it, and a guard that starts and stops such a
//! control plane.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Sysctls that change by themselves (counters, random values).
const VOLATILE_SYSCTLS: &[&str] = &[
    "fs.dentry-state",
    "fs.file-nr",
    "fs.inode-nr",
    "fs.inode-state",
    "fs.quota.",
    "fs.aio-nr",
    "kernel.ns_last_pid",
    "kernel.random.",
    "kernel.pty.nr",
    "kernel.tainted",
    "net.netfilter.nf_conntrack_count",
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_mem",
    "vm.nr_",
];

/// Host directories the node's components create outside its run dir.
const HOST_PATHS: &[&str] = &[
    "/run/containerd",
    "/run/netns",
    "/var/lib/cni",
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/opt/containerd",
    "/run/smooch-operator-node.lock",
];

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a node run may change on the host, as text that compares.
#[derive(Debug, PartialEq, Eq)]
pub struct HostSnapshot {
    pub sysctls: BTreeMap<String, String>,
    pub links: BTreeSet<String>,
    pub netns: BTreeSet<String>,
    pub nft_ruleset: String,
    pub mounts: BTreeSet<String>,
    pub cgroups: BTreeSet<String>,
    pub paths: BTreeSet<String>,
}

impl HostSnapshot {
    pub fn take() -> Self {
        let sysctls = output("sysctl", &["-a"])
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .filter(|(k, _)| !VOLATILE_SYSCTLS.iter().any(|v| k.starts_with(v)))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let links = output("ip", &["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .collect();
        let netns = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        // Counters change with traffic; the rules are what matters.
        let nft_ruleset = output("nft", &["list", "ruleset"])
            .lines()
            .map(|l| {
                let mut words: Vec<&str> = l.split_whitespace().collect();
                if let Some(i) = words.iter().position(|w| *w == "counter") {
                    words.drain(i..(i + 5).min(words.len()));
                }
                words.join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .collect();
        let mut cgroups = BTreeSet::new();
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            if let Ok(dirs) = std::fs::read_dir(hierarchy.path()) {
                for d in dirs.flatten().filter(|d| d.path().is_dir()) {
                    cgroups.insert(d.path().display().to_string());
                }
            }
        }
        let paths = HOST_PATHS
            .iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| p.to_string())
            .collect();
        HostSnapshot {
            sysctls,
            links,
            netns,
            nft_ruleset,
            mounts,
            cgroups,
            paths,
        }
    }

    /// What differs from `before`, one line per difference.
    pub fn differences(&self, before: &HostSnapshot) -> Vec<String> {
        let mut diff = Vec::new();
        for (k, v) in &before.sysctls {
            match self.sysctls.get(k) {
                Some(now) if now != v => diff.push(format!("sysctl {k}: {v} -> {now}")),
                None => diff.push(format!("sysctl {k} is gone")),
                _ => {}
            }
        }
        for k in self.sysctls.keys() {
            if !before.sysctls.contains_key(k) {
                diff.push(format!("new sysctl {k}"));
            }
        }
        fn sets(
            what: &str,
            before: &BTreeSet<String>,
            now: &BTreeSet<String>,
            diff: &mut Vec<String>,
        ) {
            for x in now.difference(before) {
                diff.push(format!("{what} left: {x}"));
            }
            for x in before.difference(now) {
                diff.push(format!("{what} removed: {x}"));
            }
        }
        sets("link", &before.links, &self.links, &mut diff);
        sets("netns", &before.netns, &self.netns, &mut diff);
        sets("mount", &before.mounts, &self.mounts, &mut diff);
        sets("cgroup", &before.cgroups, &self.cgroups, &mut diff);
        sets("path", &before.paths, &self.paths, &mut diff);
        if self.nft_ruleset != before.nft_ruleset {
            diff.push(format!(
                "nft ruleset differs:\n--- before\n{}\n--- now\n{}",
                before.nft_ruleset, self.nft_ruleset
            ));
        }
        diff
    }
}

/// Processes whose command line names `dir` (what a run left running).
pub fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

/// Why node tests cannot run here, if they cannot: they need root and the
/// Debian packages `.ci/run` installs. (A failure, not a skip: the suite
/// must not pass without them.)
pub fn node_prerequisites() -> Result<(), String> {
    let euid = output("id", &["-u"]);
    if euid.trim() != "0" {
        return Err("node tests need root (containerd, kubelet); run hack/test.sh as root".into());
    }
    let missing: Vec<&str> = [
        "containerd",
        "runc",
        "ctr",
        "conntrack",
        "nft",
        "podman",
        "gcc",
    ]
    .into_iter()
    .filter(|t| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "node tests need {missing:?}: apt-get install containerd runc containernetworking-plugins \
             conntrack iptables nftables podman gcc (.ci/run does)"
        ))
    }
}

/// A control plane with a node, started by `hack/controlplane.sh start DIR
/// --node` and stopped on drop (its watchdog stops it if this process dies).
pub struct NodeControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub bin_dir: PathBuf,
    stopped: bool,
}

impl NodeControlPlane {
    pub fn start(dir: &Path) -> NodeControlPlane {
        let out = Command::new("bash")
            .arg(format!("{ROOT}/hack/controlplane.sh"))
            .arg("start")
            .arg(dir)
            .args(["--parent-pid", &std::process::id().to_string(), "--node"])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run hack/controlplane.sh");
        let mut cp = NodeControlPlane {
            dir: dir.to_path_buf(),
            kubeconfig: PathBuf::new(),
            bin_dir: PathBuf::new(),
            stopped: false,
        };
        assert!(
            out.status.success(),
            "hack/controlplane.sh start --node failed ({}); its stderr is above",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in stdout.lines() {
            if let Some(v) = line.strip_prefix("export KUBECONFIG=") {
                cp.kubeconfig = PathBuf::from(v);
            }
            if let Some(v) = line.strip_prefix("export CONTROLPLANE_BIN_DIR=") {
                cp.bin_dir = PathBuf::from(v);
            }
        }
        assert!(cp.kubeconfig.is_file(), "no KUBECONFIG in:\n{stdout}");
        cp
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// Loads an image archive into the node's containerd.
    pub fn import(&self, archive: &Path) {
        let status = Command::new("bash")
            .arg(format!("{ROOT}/hack/controlplane.sh"))
            .arg("import")
            .arg(&self.dir)
            .arg(archive)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "import of {} failed", archive.display());
    }

    /// Stops it; Err with the output when the teardown reported a problem.
    pub fn stop(&mut self) -> Result<(), String> {
        self.stopped = true;
        let out = Command::new("bash")
            .arg(format!("{ROOT}/hack/controlplane.sh"))
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        eprint!("{text}");
        if out.status.success() {
            Ok(())
        } else {
            Err(text)
        }
    }
}

impl Drop for NodeControlPlane {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop();
        }
    }
}
