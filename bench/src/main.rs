//! `registry-bench`: pushes and pulls N images of M MiB with C concurrent
//! clients against Berth and Debian's `docker-registry` (distribution, the
//! Go reference) on this machine, then prints throughput, p50/p99 latency
//! and RSS side by side. With `--auth`, also measures authenticated pulls
//! against the same bcrypt (cost 10) htpasswd file.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod report;
mod servers;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use clap::Parser;
use reqwest::Client;
use serde_json::json;

use report::{Row, Summary, table};
use servers::{Binaries, Kind, S3Target, Server};

#[derive(Debug, Parser)]
#[command(about = "Compare Berth's registry with Debian's docker-registry")]
struct Args {
    /// Images to push and pull.
    #[arg(long, default_value_t = 24)]
    images: usize,
    /// Size of each image in MiB.
    #[arg(long, default_value_t = 8)]
    size_mib: usize,
    /// Layers per image.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Also benchmark authenticated manifest pulls (htpasswd, bcrypt cost 10).
    #[arg(long)]
    auth: bool,
    /// Authenticated requests per client in the auth phase.
    #[arg(long, default_value_t = 500)]
    auth_requests: usize,
    #[arg(long, default_value = "target/release/registry")]
    berth_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/docker-registry")]
    distribution_bin: PathBuf,
    /// Where both registries store: a temp directory each, or each its own
    /// prefix in the SeaweedFS test bucket (`scripts/s3-servers`).
    #[arg(long, value_enum, default_value_t = StorageKind::Filesystem)]
    storage: StorageKind,
    /// Also push one single-layer image of this many MiB, streamed in one
    /// PATCH, to a fresh process of each, and report its time and peak RSS.
    #[arg(long, default_value_t = 0)]
    big_layer_mib: u64,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StorageKind {
    Filesystem,
    S3,
}

/// Measurements for one server.
#[derive(Debug)]
struct Measured {
    idle_rss_mib: f64,
    peak_rss_mib: f64,
    push: Summary,
    pull: Summary,
    auth: Option<Summary>,
    big: Option<BigLayer>,
}

/// The streamed big-layer push, on a fresh process.
#[derive(Debug)]
struct BigLayer {
    mib_per_s: f64,
    seconds: f64,
    peak_rss_mib: f64,
}

const BENCH_USER: &str = "bench";
const BENCH_PASSWORD: &str = "bench-password";

async fn measure_big_layer(
    kind: Kind,
    binaries: &Binaries,
    s3: Option<&S3Target>,
    mib: u64,
) -> anyhow::Result<BigLayer> {
    let server = Server::start(kind, binaries, "", s3).await?;
    let client = Client::new();
    let started = std::time::Instant::now();
    workload::push_streamed(&client, &server.url, "bench/big", mib * 1024 * 1024).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(BigLayer {
        mib_per_s: mib as f64 / seconds,
        seconds,
        peak_rss_mib: server.peak_rss_kib() as f64 / 1024.0,
    })
}

async fn measure(
    kind: Kind,
    binaries: &Binaries,
    args: &Args,
    images: &[workload::Image],
    htpasswd: Option<&str>,
    s3: Option<&S3Target>,
) -> anyhow::Result<Measured> {
    let extra = match htpasswd {
        Some(line) => {
            let path = std::env::temp_dir()
                .join(format!("registry-bench-htpasswd-{}", std::process::id()));
            std::fs::write(&path, format!("{line}\n"))?;
            format!(
                "auth:\n  htpasswd:\n    realm: bench\n    path: {}\n",
                path.display()
            )
        }
        None => String::new(),
    };
    let server = Server::start(kind, binaries, &extra, s3).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_mib = server.rss_kib() as f64 / 1024.0;

    // Every request carries credentials when auth is on, as docker does after login.
    let mut headers = reqwest::header::HeaderMap::new();
    if htpasswd.is_some() {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{BENCH_USER}:{BENCH_PASSWORD}"));
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Basic {token}").parse()?,
        );
    }
    let client = Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let url = server.url.as_str();

    let push = workload::run(images, args.concurrency, |image| {
        let client = client.clone();
        async move {
            workload::push(&client, url, image).await?;
            Ok(image.bytes())
        }
    })
    .await;
    let pull = workload::run(images, args.concurrency, |image| {
        let client = client.clone();
        async move { workload::pull(&client, url, image).await }
    })
    .await;
    let auth = if htpasswd.is_some() {
        // Many small authenticated requests: what the layers of a big pull cost in auth checks.
        let requests: Vec<usize> = (0..args.auth_requests * args.concurrency).collect();
        let target = format!("{url}/v2/{}/manifests/latest", images[0].repo);
        let phase = workload::run(&requests, args.concurrency, |_| {
            let request = client
                .head(&target)
                .header("accept", "application/vnd.oci.image.manifest.v1+json");
            async move {
                request.send().await?.error_for_status()?;
                Ok(0)
            }
        })
        .await;
        Some(Summary::of(&phase))
    } else {
        None
    };
    let peak_rss_mib = server.peak_rss_kib() as f64 / 1024.0;
    drop(server);
    let big = if args.big_layer_mib > 0 {
        Some(measure_big_layer(kind, binaries, s3, args.big_layer_mib).await?)
    } else {
        None
    };
    Ok(Measured {
        idle_rss_mib,
        peak_rss_mib,
        push: Summary::of(&push),
        pull: Summary::of(&pull),
        auth,
        big,
    })
}

fn rows(berth: &Measured, distribution: &Measured) -> Vec<Row> {
    let mut rows = vec![
        Row::higher_is_better(
            "push throughput (MiB/s)",
            berth.push.mib_per_s,
            distribution.push.mib_per_s,
        ),
        Row::lower_is_better(
            "push p50 per image (ms)",
            berth.push.p50_ms,
            distribution.push.p50_ms,
        ),
        Row::lower_is_better(
            "push p99 per image (ms)",
            berth.push.p99_ms,
            distribution.push.p99_ms,
        ),
        Row::higher_is_better(
            "pull throughput (MiB/s)",
            berth.pull.mib_per_s,
            distribution.pull.mib_per_s,
        ),
        Row::lower_is_better(
            "pull p50 per image (ms)",
            berth.pull.p50_ms,
            distribution.pull.p50_ms,
        ),
        Row::lower_is_better(
            "pull p99 per image (ms)",
            berth.pull.p99_ms,
            distribution.pull.p99_ms,
        ),
        Row::lower_is_better(
            "idle RSS (MiB)",
            berth.idle_rss_mib,
            distribution.idle_rss_mib,
        ),
        Row::lower_is_better(
            "peak RSS (MiB)",
            berth.peak_rss_mib,
            distribution.peak_rss_mib,
        ),
    ];
    if let (Some(b), Some(d)) = (&berth.big, &distribution.big) {
        rows.push(Row::higher_is_better(
            "big layer push (MiB/s)",
            b.mib_per_s,
            d.mib_per_s,
        ));
        rows.push(Row::lower_is_better(
            "big layer push (s)",
            b.seconds,
            d.seconds,
        ));
        rows.push(Row::lower_is_better(
            "peak RSS during big layer push (MiB)",
            b.peak_rss_mib,
            d.peak_rss_mib,
        ));
    }
    if let (Some(b), Some(d)) = (&berth.auth, &distribution.auth) {
        rows.push(Row::higher_is_better(
            "auth'd requests/s",
            b.ops_per_s,
            d.ops_per_s,
        ));
        rows.push(Row::lower_is_better("auth'd p99 (ms)", b.p99_ms, d.p99_ms));
    }
    rows
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binaries = Binaries {
        berth: args.berth_bin.clone(),
        distribution: args.distribution_bin.clone(),
    };
    for bin in [&binaries.berth, &binaries.distribution] {
        anyhow::ensure!(
            bin.exists(),
            "{} not found (build with `cargo build --release -p registry`; apt install docker-registry)",
            bin.display()
        );
    }
    let s3 = match args.storage {
        StorageKind::Filesystem => None,
        StorageKind::S3 => Some(S3Target::seaweedfs()?),
    };
    println!(
        "workload: {} images x {} MiB ({} layers), {} concurrent clients{}{}, storage: {}",
        args.images,
        args.size_mib,
        args.layers,
        args.concurrency,
        if args.auth {
            ", plus authenticated requests"
        } else {
            ""
        },
        if args.big_layer_mib > 0 {
            format!(", plus one {} MiB layer streamed", args.big_layer_mib)
        } else {
            String::new()
        },
        s3.as_ref().map_or_else(
            || "filesystem".to_owned(),
            |t| format!("s3 ({})", t.endpoint)
        ),
    );
    let images = workload::generate(args.images, args.size_mib * 1024 * 1024, args.layers);
    let htpasswd = if args.auth {
        let hash = bcrypt::hash_with_result(BENCH_PASSWORD, 10)
            .context("hashing the bench password")?
            .format_for_version(bcrypt::Version::TwoY);
        Some(format!("{BENCH_USER}:{hash}"))
    } else {
        None
    };
    // Alternate order so neither side always runs on a warmer page cache.
    let distribution = measure(
        Kind::Distribution,
        &binaries,
        &args,
        &images,
        htpasswd.as_deref(),
        s3.as_ref(),
    )
    .await?;
    let berth = measure(
        Kind::Berth,
        &binaries,
        &args,
        &images,
        htpasswd.as_deref(),
        s3.as_ref(),
    )
    .await?;
    for (name, m) in [("berth", &berth), ("distribution", &distribution)] {
        let errors = m.push.errors + m.pull.errors + m.auth.as_ref().map_or(0, |a| a.errors);
        anyhow::ensure!(errors == 0, "{name}: {errors} operations failed");
    }
    let rows = rows(&berth, &distribution);
    print!("{}", table(&rows));
    if let Some(path) = &args.json {
        let value = json!({
            "images": args.images, "size_mib": args.size_mib, "layers": args.layers,
            "concurrency": args.concurrency, "storage": format!("{:?}", args.storage),
            "big_layer_mib": args.big_layer_mib, "rows": rows,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)?;
    }
    Ok(())
}
