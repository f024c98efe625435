//! The `registry` command: `serve`, `garbage-collect`, `verify`, `config check`.

mod gc_command;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use registry::config::{LoadedConfig, load_config};
use registry::{Registry, server, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "registry",
    version,
    about = "Berth OCI registry (drop-in for registry:2/3)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the registry API.
    Serve {
        /// Config file (distribution's YAML). Without one, the embedded default is used.
        #[arg(env = "REGISTRY_CONFIGURATION_PATH")]
        config: Option<PathBuf>,
        /// Override storage.filesystem.rootdirectory (handy for local runs).
        #[arg(long, env = "BERTH_ROOT_DIR")]
        root_dir: Option<PathBuf>,
        /// Override http.addr, e.g. 127.0.0.1:5000.
        #[arg(long, env = "BERTH_ADDR")]
        addr: Option<String>,
    },
    /// Delete unreferenced blobs (and with -m untagged manifests); safe against a live registry.
    GarbageCollect(gc_command::GcArgs),
    /// Re-hash every blob and report the ones whose bytes do not match their
    /// digest (exit 1 when any is corrupt); read-only, safe while serving.
    Verify {
        /// Registry config file (distribution's YAML; REGISTRY_* overrides apply).
        config: PathBuf,
        /// Blobs read at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
    },
    /// Configuration utilities.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file (with REGISTRY_* overrides applied); prints warnings, exits non-zero on errors.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            root_dir,
            addr,
        } => serve(config, root_dir, addr),
        Command::GarbageCollect(args) => Ok(gc_command::run(args)),
        Command::Verify {
            config,
            concurrency,
        } => verify(&config, concurrency),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => check(&file),
    }
}

fn serve(
    config_path: Option<PathBuf>,
    root_dir: Option<PathBuf>,
    addr: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    if let Some(root_dir) = root_dir {
        env.push((
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY".into(),
            root_dir.display().to_string(),
        ));
    }
    if let Some(addr) = addr {
        env.push(("REGISTRY_HTTP_ADDR".into(), addr));
    }
    let LoadedConfig {
        config,
        warnings,
        overrides,
    } = load_config(config_path.as_deref(), env)?;
    telemetry::init(&config.log, config.loglevel.as_deref());
    let source = config_path
        .as_ref()
        .map_or("embedded default".to_owned(), |p| p.display().to_string());
    tracing::info!(config = %source, env_overrides = ?overrides, storage = %describe_storage(&config)?, "starting Berth registry {}", env!("CARGO_PKG_VERSION"));
    for warning in &warnings {
        tracing::warn!("{warning}");
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let registry = Registry::build(&config)?;
        let listeners = registry.bind().await?;
        tracing::info!(addr = %listeners.api.local_addr()?, tls = registry.tls.is_some(), "listening");
        if let Some(debug_listener) = &listeners.debug {
            tracing::info!(addr = %debug_listener.local_addr()?, "debug server listening");
        }
        registry.serve(listeners, server::shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Where the configured storage is (never credentials).
fn describe_storage(config: &registry::config::Config) -> anyhow::Result<String> {
    use registry::storage::s3::settings::BucketSettings;
    let storage = &config.storage;
    Ok(match (&storage.filesystem, &storage.s3, &storage.oss) {
        (Some(fs), _, _) => format!("filesystem at {}", fs.rootdirectory.display()),
        (None, Some(s3), _) => BucketSettings::from_s3(s3)?.describe(),
        (None, None, Some(oss)) => BucketSettings::from_oss(oss)?.describe(),
        (None, None, None) => "none".to_owned(),
    })
}

/// Prints one line per corrupt blob and the JSON report as the last line.
#[allow(clippy::print_stdout)]
fn verify(config: &std::path::Path, concurrency: u16) -> anyhow::Result<ExitCode> {
    let loaded = load_config(Some(config), std::env::vars())?;
    telemetry::init(&loaded.config.log, loaded.config.loglevel.as_deref());
    let content = registry::content::Content::new(registry::open_storage(&loaded.config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(registry::verify::verify_blobs(
        &content,
        usize::from(concurrency),
    ))?;
    for corrupt in &report.corrupt {
        println!(
            "corrupt blob {} ({} bytes) hashes to {}",
            corrupt.digest, corrupt.size, corrupt.actual
        );
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(if report.corrupt.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[allow(clippy::print_stdout)]
fn check(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let loaded = load_config(Some(file), std::env::vars())?;
    for warning in &loaded.warnings {
        println!("warning: {warning}");
    }
    println!("storage: {}", describe_storage(&loaded.config)?);
    println!("{}: OK", file.display());
    Ok(ExitCode::SUCCESS)
}
