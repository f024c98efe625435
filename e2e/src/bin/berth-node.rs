//! `berth-node`: the local cluster's real node (see `e2e::node`), run by `e2e/cluster`.
//!
//! ```text
//! berth-node up --state DIR --kube-bin DIR --api-port PORT --image NAME=ARCHIVE [--image ...]
//! berth-node down --state DIR --kube-bin DIR
//! berth-node volumes      # the hostPath permission helper (runs until killed)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use e2e::node::{self, UpOptions};

fn usage() -> ExitCode {
    tracing::error!(
        "usage: berth-node up|down|volumes [--state DIR] [--kube-bin DIR] [--api-port PORT] [--image NAME=ARCHIVE]..."
    );
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .init();
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        return usage();
    };
    let (mut state, mut kube_bin, mut api_port, mut images) = (None, None, 0u16, Vec::new());
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage();
        };
        match flag.as_str() {
            "--state" => state = Some(PathBuf::from(value)),
            "--kube-bin" => kube_bin = Some(PathBuf::from(value)),
            "--api-port" => api_port = value.parse().unwrap_or(0),
            "--image" => match value.split_once('=') {
                Some((name, archive)) => images.push((name.to_owned(), PathBuf::from(archive))),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    match (command.as_str(), state, kube_bin) {
        ("volumes", _, _) => node::volumes_loop(),
        ("down", Some(state), Some(kube_bin)) => {
            node::down(&state, &kube_bin);
            ExitCode::SUCCESS
        }
        ("up", Some(state), Some(kube_bin)) if api_port != 0 => {
            let opts = UpOptions {
                state,
                kube_bin,
                api_port,
                images,
            };
            match node::up(&opts).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("node up failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => usage(),
    }
}
