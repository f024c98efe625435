//! `berth-node-agent`: keeps a node's container runtime trusting and resolving the Registries that
//! opted into node access (see `operator::node_access`). Runs as the chart's DaemonSet; reads only
//! its mounted ConfigMap and writes only the `certs.d` directory and hosts file it is given.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use operator::node_access::agent::{Paths, sync};

#[derive(Debug, Parser)]
#[command(name = "berth-node-agent", version, about)]
struct Args {
    /// The mounted node-access ConfigMap.
    #[arg(
        long,
        env = "BERTH_NODE_ACCESS_SOURCE",
        default_value = "/etc/berth/node-access"
    )]
    source: PathBuf,
    /// The runtime's certs.d directory as mounted here.
    #[arg(long, env = "BERTH_CERTS_DIR", default_value = "/host/certs.d")]
    certs_dir: PathBuf,
    /// The same directory as the runtime sees it on the node (paths inside hosts.toml).
    #[arg(
        long,
        env = "BERTH_NODE_CERTS_DIR",
        default_value = "/etc/containerd/certs.d"
    )]
    node_certs_dir: PathBuf,
    /// The node's hosts file as mounted here; empty leaves name resolution alone.
    #[arg(long, env = "BERTH_HOSTS_FILE", default_value = "")]
    hosts_file: String,
    /// Seconds between passes (the ConfigMap volume itself refreshes on the kubelet's sync period).
    #[arg(long, env = "BERTH_INTERVAL_SECONDS", default_value_t = 5)]
    interval_seconds: u64,
    /// One pass, then exit.
    #[arg(long)]
    once: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .json()
        .flatten_event(true)
        .init();
    let paths = Paths {
        source: args.source,
        certs_dir: args.certs_dir,
        node_certs_dir: args.node_certs_dir,
        hosts_file: Some(PathBuf::from(&args.hosts_file)).filter(|_| !args.hosts_file.is_empty()),
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut first = true;
    loop {
        match sync(&paths) {
            Ok(report) => {
                for rejected in &report.rejected {
                    tracing::warn!(entry = %rejected, "ignoring an invalid entry");
                }
                if first
                    || !report.written.is_empty()
                    || !report.removed.is_empty()
                    || report.hosts_changed
                {
                    tracing::info!(
                        entries = report.entries,
                        written = ?report.written,
                        removed = ?report.removed,
                        hosts_changed = report.hosts_changed,
                        "node access in sync"
                    );
                }
            }
            Err(e) if args.once => return Err(e.into()),
            Err(e) => tracing::error!(error = %e, "sync failed; retrying"),
        }
        first = false;
        if args.once {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(args.interval_seconds.max(1))) => {}
            _ = term.recv() => return Ok(()),
        }
    }
}
