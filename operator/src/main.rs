//! `berth-operator`: the Registry controller with leader election, metrics
//! and health endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use operator::controller::validate::Defaults;
use operator::controller::{Context, run::run};

#[derive(Debug, Parser)]
#[command(
    name = "berth-operator",
    version,
    about = "Reconciles berth.dev Registry resources"
)]
struct Args {
    /// Registry image used when a Registry does not name one (default: the registry image of
    /// this operator's version).
    #[arg(
        long,
        env = "BERTH_REGISTRY_IMAGE",
        default_value = concat!("ghcr.io/berth-dev/registry:", env!("CARGO_PKG_VERSION"))
    )]
    registry_image: String,
    /// Watch only this namespace (default: all).
    #[arg(long, env = "BERTH_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "BERTH_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Run the controller only while holding a Lease (for several operator replicas).
    #[arg(long, env = "BERTH_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Registries reconciled in parallel.
    #[arg(long, env = "BERTH_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Seconds between re-checks of a healthy Registry (certificate renewal, drift).
    #[arg(long, env = "BERTH_RESYNC_SECONDS", default_value_t = 300)]
    resync_seconds: u64,
    /// Log format: text or json.
    #[arg(long, env = "BERTH_LOG_FORMAT", default_value = "json")]
    log_format: String,
}

#[derive(Clone)]
struct Health {
    ctx: Arc<Context>,
    ready: Arc<AtomicBool>,
}

async fn metrics(State(health): State<Health>) -> String {
    health.ctx.metrics.encode()
}

async fn readyz(State(health): State<Health>) -> StatusCode {
    if health.ready.load(Ordering::Relaxed) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn"));
    // Escape codes only for a person at a terminal, not in pod logs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(&args.log_format);
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            Defaults {
                image: args.registry_image.clone(),
            },
        )
        .with_resync(std::time::Duration::from_secs(args.resync_seconds))
        .with_node_access(operator::controller::node_access::Target::from_env()),
    );
    let ready = Arc::new(AtomicBool::new(false));
    let health = Health {
        ctx: ctx.clone(),
        ready: ready.clone(),
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    if !args.leader_election {
        ready.store(true, Ordering::Relaxed);
        tracing::info!("starting the controller (no leader election)");
        run(ctx, args.namespace, args.concurrency, stopped(stop_rx)).await;
        return Ok(());
    }

    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("berth-operator-{}", std::process::id()));
    let manager = LeaseManagerBuilder::new(client, "berth-operator-leader")
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("setting up leader election")?;
    let (mut leader, lease_task) = manager.watch().await;
    // A standby replica is healthy and ready; it just does not reconcile.
    ready.store(true, Ordering::Relaxed);
    loop {
        tokio::select! {
            result = leader.wait_for(|is_leader| *is_leader) => {
                if result.is_err() { break; }
            }
            () = stopped(stop_rx.clone()) => break,
        }
        tracing::info!(%identity, "became the leader; starting the controller");
        let mut lost = leader.clone();
        let stop = stop_rx.clone();
        let until = async move {
            tokio::select! {
                _ = lost.wait_for(|is_leader| !*is_leader) => tracing::warn!("lost leadership; stopping the controller"),
                () = stopped(stop) => {},
            }
        };
        run(ctx.clone(), args.namespace.clone(), args.concurrency, until).await;
        if *stop_rx.borrow() {
            break;
        }
    }
    drop(leader);
    // Dropping the receiver ends the lease task, which releases the Lease.
    if let Ok(Ok(manager)) = lease_task.await {
        let _ = manager.release().await;
    }
    Ok(())
}
