//! The operator binary: telemetry, the health/metrics server, and the controllers.

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use smooch::{CallObserver, Transport, TransportConfig};
use smooch_operator::metrics::Metrics;
use smooch_operator::reconcile::context::NamespaceSet;
use smooch_operator::reconcile::controllers::{self, Readiness, Scope};
use smooch_operator::reconcile::key::parse_duration;
use smooch_operator::reconcile::{Context, Settings};
use smooch_telemetry as telemetry;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Kubernetes operator for Smooch apps, keys, integrations and webhooks.
///
/// Connects to the cluster from the in-cluster service account or the
/// current kubeconfig (KUBECONFIG).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Base URL of the Smooch API.
    #[arg(long, env = "SMOOCH_URL", default_value = "https://api.smooch.io")]
    smooch_url: String,
    /// Smooch API: v1 or v1.1 (the App Maker API) or v2 (Sunshine
    /// Conversations).
    #[arg(long, env = "SMOOCH_API_VERSION", default_value = "v1", value_parser = ["v1", "v1.1", "v2"])]
    smooch_api_version: String,
    /// Namespace the operator runs in (holds the default credentials Secret).
    #[arg(long, env = "POD_NAMESPACE", default_value = "smooch-operator")]
    operator_namespace: String,
    /// Default app-maker credentials: a Secret in the operator's namespace
    /// with `keyId` and `secret` (or `token`).
    #[arg(
        long,
        env = "SMOOCH_DEFAULT_CREDENTIALS_SECRET",
        default_value = "smooch-credentials"
    )]
    default_credentials_secret: String,
    /// Namespaces to watch, comma separated; empty watches all.
    #[arg(
        long,
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    watch_namespaces: Vec<String>,
    /// Namespaces whose SmoochApps may use the default credentials, comma
    /// separated; `*` allows every namespace. Elsewhere an app must name its
    /// own credentials Secret (spec.credentialsSecretRef).
    #[arg(
        long,
        env = "DEFAULT_CREDENTIALS_NAMESPACES",
        value_delimiter = ',',
        default_value = "*"
    )]
    default_credentials_namespaces: Vec<String>,
    /// Namespaces whose resources may adopt existing Smooch objects (the
    /// smooch-operator.io/external-id annotation), comma separated; `*`
    /// allows every namespace.
    #[arg(
        long,
        env = "ADOPTION_NAMESPACES",
        value_delimiter = ',',
        default_value = "*"
    )]
    adoption_namespaces: Vec<String>,
    /// How often each resource is checked against Smooch (Go duration).
    #[arg(long, env = "RESYNC_PERIOD", default_value = "10m", value_parser = duration)]
    resync_period: Duration,
    /// Reconciles running at once, per kind.
    #[arg(long, env = "RECONCILE_CONCURRENCY", default_value_t = 8)]
    reconcile_concurrency: u16,
    /// Smooch calls in flight at once, operator-wide.
    #[arg(long, env = "SMOOCH_CONCURRENCY", default_value_t = 16)]
    smooch_concurrency: usize,
    /// Periodic re-checks running at once, all kinds together. They run
    /// apart from the reconciles of new and changed resources; keep this
    /// below --smooch-concurrency so that those always have calls left.
    #[arg(long, env = "RECHECK_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    recheck_concurrency: u16,
    /// Smooch calls started per second, operator-wide; 0 for no limit.
    #[arg(long, env = "SMOOCH_RATE_LIMIT", default_value_t = 0)]
    smooch_rate_limit: u32,
    /// Timeout of one Smooch call (Go duration).
    #[arg(long, env = "SMOOCH_TIMEOUT", default_value = "15s", value_parser = duration)]
    smooch_timeout: Duration,
    /// Retries of a transient Smooch failure within one reconcile.
    #[arg(long, env = "SMOOCH_MAX_RETRIES", default_value_t = 4)]
    smooch_max_retries: usize,
    /// Retry after a permanent error (bad credentials, 4xx) (Go duration).
    #[arg(long, env = "PERMANENT_ERROR_RETRY", default_value = "5m", value_parser = duration)]
    permanent_error_retry: Duration,
    /// Address of the health (/healthz, /readyz) and metrics (/metrics) server.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Log level or filter, e.g. info, debug, info,kube=warn. Precedence:
    /// --log-level, then LOG_LEVEL, then RUST_LOG, then info. Text logs are
    /// coloured only on a terminal (and not with NO_COLOR set).
    #[arg(long, env = "LOG_LEVEL", value_parser = telemetry::parse_level)]
    log_level: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    log_json: bool,
    /// Run only while holding a coordination Lease, so that several replicas
    /// can run safely (one reconciles, the others stand by).
    #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
    leader_elect: bool,
    /// Name of the Lease (in the operator's namespace).
    #[arg(
        long,
        env = "LEADER_ELECTION_LEASE_NAME",
        default_value = "smooch-operator-leader"
    )]
    leader_election_lease_name: String,
    /// How long a Lease is valid without renewal, in seconds: the longest a
    /// dead leader blocks a standby.
    #[arg(long, env = "LEADER_ELECTION_LEASE_SECONDS", default_value_t = 15)]
    leader_election_lease_seconds: u64,
    /// This replica's identity in the Lease; defaults to the Pod name.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Threads that run the operator. 1 runs everything on one thread
    /// (tokio's current-thread runtime): the operator mostly waits on the
    /// network, and handing each reconcile between threads cost more CPU
    /// than it saved (BENCHMARKS.md). More than 1: a multi-thread runtime
    /// with that many workers.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: u16,
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| format!("{text:?} is not a duration like 30s, 10m or 1h"))
}

#[derive(Clone)]
struct Http {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

async fn serve_metrics(State(http): State<Http>) -> ([(&'static str, &'static str); 1], String) {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        http.metrics.render(),
    )
}

async fn ready(State(http): State<Http>) -> StatusCode {
    if http.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn main() -> anyhow::Result<()> {
    one_malloc_arena();
    let cli = Cli::parse();
    let mut runtime = match cli.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n.into());
            builder
        }
    };
    runtime
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(run(cli))
}

/// One glibc malloc arena for all threads (unless MALLOC_ARENA_MAX says
/// otherwise). glibc gives each thread that allocates its own arena and
/// keeps freed memory in each: with tokio's workers and blocking threads
/// that left the operator's resident memory at twice its live heap (at
/// N = 1,000 peak RSS 47 MB, 38 MB with one arena: BENCHMARKS.md). The
/// operator's threads spend their time waiting on the network, so they
/// rarely contend for the one arena.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it runs before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(cli.log_level.as_deref(), cli.log_json);

    let metrics = Arc::new(Metrics::default());
    let transport = Transport::new(
        TransportConfig {
            base_url: cli.smooch_url.clone(),
            api_version: cli.smooch_api_version.clone(),
            request_timeout: cli.smooch_timeout,
            max_retries: cli.smooch_max_retries,
            max_concurrency: cli.smooch_concurrency,
            rate_limit_per_second: NonZeroU32::new(cli.smooch_rate_limit),
            ..Default::default()
        },
        Some(metrics.clone() as Arc<dyn CallObserver>),
    )
    .context("Smooch client configuration")?;
    if usize::from(cli.recheck_concurrency) >= cli.smooch_concurrency {
        tracing::warn!(
            recheck_concurrency = cli.recheck_concurrency,
            smooch_concurrency = cli.smooch_concurrency,
            "re-checks may take every Smooch call in flight; new and changed resources can then wait for them (keep --recheck-concurrency below --smooch-concurrency)"
        );
    }
    let config = kube::Config::infer()
        .await
        .context("no Kubernetes configuration (in-cluster or KUBECONFIG)")?;
    let client =
        kube::client::ClientBuilder::try_from(config).context("Kubernetes client configuration")?;

    let settings = Settings {
        operator_namespace: cli.operator_namespace.clone(),
        default_credentials_secret: cli.default_credentials_secret.clone(),
        resync_period: cli.resync_period,
        recheck_concurrency: usize::from(cli.recheck_concurrency),
        permanent_error_retry: cli.permanent_error_retry,
        watch_namespaces: cli
            .watch_namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        default_credentials_namespaces: NamespaceSet::from_list(
            &cli.default_credentials_namespaces,
        ),
        adoption_namespaces: NamespaceSet::from_list(&cli.adoption_namespaces),
        ..Default::default()
    };
    let ctx = Arc::new(Context::new(client, transport, settings, metrics.clone()));
    let readiness = Arc::new(Readiness::default());

    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(serve_metrics))
        .with_state(Http {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        });
    let listener = tokio::net::TcpListener::bind(cli.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", cli.metrics_addr))?;
    let bound = listener.local_addr().unwrap_or(cli.metrics_addr);
    tracing::info!(metrics = %bound, smooch = %cli.smooch_url, "smooch-operator starting");

    let shutdown = shutdown_signal().shared();
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone());
    let server = tokio::spawn(async move { server.await });

    // With leader election: stand by until this replica holds the Lease;
    // stop reconciling (and exit, to be restarted) if it is lost.
    let mut leadership = None;
    if cli.leader_elect {
        let identity = cli
            .identity
            .clone()
            .unwrap_or_else(|| format!("smooch-operator-{:08x}", rand::random::<u32>()));
        readiness.set_standby(true);
        tracing::info!(%identity, lease = %cli.leader_election_lease_name, "waiting to become the leader");
        let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), &cli.operator_namespace);
        let won = loop {
            // A manager reads the Lease once and then sleeps until the expiry
            // it saw; so a release (the leader stopping on SIGTERM) starts a
            // new one, which takes the Lease at once.
            let manager =
                LeaseManagerBuilder::new(ctx.client.clone(), &cli.leader_election_lease_name)
                    .with_namespace(&cli.operator_namespace)
                    .with_identity(&identity)
                    .with_duration(cli.leader_election_lease_seconds)
                    .with_grace(cli.leader_election_lease_seconds / 3)
                    // Must differ per replica: the Lease is taken by a server-side
                    // apply that conflicts only with another field manager. A
                    // shared one let two replicas starting together both lead.
                    .with_field_manager(format!("smooch-operator-{identity}"))
                    .with_create_mode(LeaseCreateMode::AutoCreate)
                    .build()
                    .await
                    .context("leader election setup")?;
            tokio::select! {
                changed = manager.changed() => match changed {
                    Ok(true) => break Some(manager),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "leader election; trying again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = lease_released(leases.clone(), &cli.leader_election_lease_name) => {
                    tracing::info!("the leader released the Lease; taking it");
                }
                _ = shutdown.clone() => break None,
            }
        };
        let Some(manager) = won else {
            return Ok(());
        };
        let (is_leader, task) = manager.watch().await;
        readiness.set_standby(false);
        tracing::info!(%identity, "became the leader");
        leadership = Some((is_leader, task));
    }
    let lost_leadership = {
        let mut watch = leadership.as_ref().map(|(rx, _)| rx.clone());
        async move {
            match watch.as_mut() {
                Some(rx) => {
                    let _ = rx.wait_for(|leader| !*leader).await;
                    tracing::error!("lost the leader lease; stopping");
                }
                None => futures::future::pending::<()>().await,
            }
        }
    };
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = shutdown => {}
                _ = lost_leadership => {}
            }
        }
        .shared()
    };
    let scopes: Vec<Scope> = {
        let named: Vec<Scope> = cli
            .watch_namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| Scope::Namespace(n.clone()))
            .collect();
        if named.is_empty() {
            vec![Scope::All]
        } else {
            named
        }
    };
    controllers::run(ctx, scopes, cli.reconcile_concurrency, readiness, stop).await;
    let lost = leadership.as_ref().is_some_and(|(rx, _)| !*rx.borrow());
    if let Some((is_leader, task)) = leadership {
        // Closing the channel makes the lease task release the Lease.
        drop(is_leader);
        let _ = task.await;
    }
    if lost {
        anyhow::bail!("lost the leader lease");
    }
    server.abort();
    tracing::info!("smooch-operator stopped");
    Ok(())
}

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};

/// Resolves when the Lease is released (no holder, or deleted) after this
/// call: what a leader does when it stops on SIGTERM.
async fn lease_released(api: Api<Lease>, name: &str) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(lease))
                if lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.as_deref())
                    .is_none_or(str::is_empty) =>
            {
                return;
            }
            Ok(watcher::Event::Delete(_)) => return,
            _ => {}
        }
    }
    futures::future::pending().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown requested; finishing in-flight reconciles");
}
