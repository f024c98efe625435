//! `registry garbage-collect`: distribution's flags (`--dry-run`,
//! `--delete-untagged`, `--quiet`, CONFIG) plus Berth's read-only window and
//! online mode. Prints one line per deletion (unless quiet), then the JSON
//! summary as the last stdout line; `--summary-file` gets the same JSON (or
//! `{"error": ...}`), which is how the operator's CronJob reports results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use registry::config::{GoDuration, load_config};
use registry::content::Content;
use registry::gc::{GcEvent, GcMode, GcOptions, Progress, collect_garbage, human_bytes};
use registry::{open_storage, telemetry};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    /// Refuse writes on every registry of the storage while marking and sweeping.
    Readonly,
    /// No window: only delete content older than --min-age.
    Online,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Report what would be deleted without deleting anything.
    #[arg(short = 'd', long)]
    dry_run: bool,
    /// Also delete manifests no tag reaches (index children and referrers of
    /// kept manifests are kept).
    #[arg(short = 'm', long)]
    delete_untagged: bool,
    /// No per-item output.
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(long, value_enum, default_value = "readonly")]
    mode: ModeArg,
    /// Read-only mode: wait after taking the lock so pushes past their last check land.
    #[arg(long, value_parser = duration, default_value = "10s")]
    grace_period: Duration,
    /// Only delete content written longer ago than this (default: 0 in
    /// read-only mode, 24h online).
    #[arg(long, value_parser = duration)]
    min_age: Option<Duration>,
    /// Maintenance lock lifetime; it is refreshed every third of it and expires if GC dies.
    #[arg(long, value_parser = duration, default_value = "60s")]
    lock_ttl: Duration,
    /// Also write the JSON summary (or error) to this file.
    #[arg(long)]
    summary_file: Option<PathBuf>,
    /// Storage operations in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Registry config file (distribution's YAML; REGISTRY_* overrides apply).
    config: PathBuf,
}

fn duration(text: &str) -> Result<Duration, String> {
    GoDuration::parse(text).map(|d| d.0)
}

/// Runs the command; failures still produce a JSON line and summary file.
pub fn run(args: GcArgs) -> ExitCode {
    let summary_file = args.summary_file.clone();
    let quiet = args.quiet;
    match collect(args) {
        Ok((json, ok)) => {
            emit(&json, summary_file.as_deref());
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            tracing::error!("garbage collection failed: {e:#}");
            let json = serde_json::json!({ "error": format!("{e:#}") }).to_string();
            if !quiet {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("error: {e:#}");
                }
            }
            emit(&json, summary_file.as_deref());
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn emit(json: &str, summary_file: Option<&Path>) {
    println!("{json}");
    if let Some(path) = summary_file
        && let Err(e) = std::fs::write(path, json)
    {
        tracing::error!(path = %path.display(), error = %e, "writing the summary file failed");
    }
}

/// Returns the JSON to print and whether the run succeeded.
fn collect(args: GcArgs) -> anyhow::Result<(String, bool)> {
    let loaded = load_config(Some(&args.config), std::env::vars())?;
    let config = loaded.config;
    telemetry::init(&config.log, config.loglevel.as_deref());
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let purging = config.storage.upload_purging();
    let mode = match args.mode {
        ModeArg::Readonly => GcMode::ReadOnly,
        ModeArg::Online => GcMode::Online,
    };
    let options = GcOptions {
        mode,
        dry_run: args.dry_run,
        delete_untagged: args.delete_untagged,
        grace_period: args.grace_period,
        min_age: args.min_age.unwrap_or(match mode {
            GcMode::ReadOnly => Duration::ZERO,
            GcMode::Online => Duration::from_secs(24 * 3600),
        }),
        lock_ttl: args.lock_ttl.max(Duration::from_secs(1)),
        concurrency: usize::from(args.concurrency),
        purge_uploads_older_than: purging.enabled.then_some(purging.age.0),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let quiet = args.quiet;
    runtime.block_on(async move {
        let content = Content::new(open_storage(&config)?);
        let progress = Arc::new(Progress::default());
        let painter = (!quiet).then(|| progress.show_on_terminal()).flatten();
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            registry::server::shutdown_signal().await;
            tracing::warn!("signal received: stopping garbage collection");
            on_signal.cancel();
        });
        let dry_run = options.dry_run;
        let report = move |event: &GcEvent| {
            if !quiet {
                print_event(event, dry_run);
            }
        };
        let result = collect_garbage(&content, &options, &progress, &cancel, &report).await;
        if let Some(painter) = painter {
            painter.abort();
            #[allow(clippy::print_stderr)]
            {
                eprintln!("\r\x1b[2K{}", progress.line());
            }
        }
        let summary = result?;
        tracing::info!(
            manifests_deleted = summary.manifests_deleted,
            blobs_deleted = summary.blobs_deleted,
            freed = %human_bytes(summary.bytes_freed),
            seconds = summary.duration_seconds,
            dry_run,
            "garbage collection finished"
        );
        Ok((serde_json::to_string(&summary)?, true))
    })
}

#[allow(clippy::print_stdout)]
fn print_event(event: &GcEvent, dry_run: bool) {
    let verb = if dry_run {
        "eligible for deletion"
    } else {
        "deleted"
    };
    match event {
        GcEvent::Manifest { repository, digest } => {
            println!("manifest {verb}: {repository}@{digest}");
        }
        GcEvent::Blob { digest, size } => println!("blob {verb}: {digest} ({size} bytes)"),
    }
}
