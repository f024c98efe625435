//! `registry-gc-bench`: builds a synthetic storage (default 1,000 repos,
//! 10,000 manifests, 50,000 blobs; half the manifests untagged) in
//! distribution's layout, then times `garbage-collect` with and without
//! `--delete-untagged` for Berth and Debian's `docker-registry` on identical
//! copies, checks both kept the same blobs (Berth: at least the same), and
//! prints the ratios.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use registry::oci::{Algorithm, Digest};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Time GC: Berth vs Debian's docker-registry on identical storage")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    repos: usize,
    /// Manifests per repository (half of them tagged).
    #[arg(long, default_value_t = 10)]
    manifests_per_repo: usize,
    /// Layers per manifest (plus one config blob).
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value = "target/release/registry")]
    berth_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/docker-registry")]
    distribution_bin: PathBuf,
    /// Where to build the storages (default: a temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    #[arg(long)]
    json: Option<PathBuf>,
}

const V2: &str = "docker/registry/v2";

fn write_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().expect("has parent"))?;
    std::fs::write(path, data)
}

fn write_blob(root: &Path, data: &[u8]) -> std::io::Result<Digest> {
    let digest = Algorithm::Sha256.digest_of(data);
    let hex = digest.hex();
    write_file(
        &root.join(format!("{V2}/blobs/sha256/{}/{hex}/data", &hex[..2])),
        data,
    )?;
    Ok(digest)
}

fn link(root: &Path, path: String, digest: &Digest) -> std::io::Result<()> {
    write_file(&root.join(path), digest.to_string().as_bytes())
}

/// Writes the synthetic storage; returns (manifests, blobs).
fn generate(root: &Path, args: &Args) -> anyhow::Result<(usize, usize)> {
    let (mut manifests, mut blobs) = (0, 0);
    for r in 0..args.repos {
        let repo = format!("{V2}/repositories/team-{}/app-{r}", r % 10);
        for m in 0..args.manifests_per_repo {
            let config = json!({"architecture": "amd64", "os": "linux", "id": format!("{r}-{m}")});
            let config_bytes = serde_json::to_vec(&config)?;
            let config_digest = write_blob(root, &config_bytes)?;
            link(
                root,
                format!("{repo}/_layers/sha256/{}/link", config_digest.hex()),
                &config_digest,
            )?;
            let mut layers = Vec::new();
            for l in 0..args.layers {
                let data = format!("layer {r}/{m}/{l} {}", "x".repeat(64));
                let digest = write_blob(root, data.as_bytes())?;
                link(
                    root,
                    format!("{repo}/_layers/sha256/{}/link", digest.hex()),
                    &digest,
                )?;
                layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest.to_string(), "size": data.len()}));
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_bytes.len()},
                "layers": layers,
            });
            let digest = write_blob(root, &serde_json::to_vec(&manifest)?)?;
            link(
                root,
                format!("{repo}/_manifests/revisions/sha256/{}/link", digest.hex()),
                &digest,
            )?;
            if m % 2 == 0 {
                let tag = format!("v{m}");
                link(
                    root,
                    format!("{repo}/_manifests/tags/{tag}/current/link"),
                    &digest,
                )?;
                link(
                    root,
                    format!(
                        "{repo}/_manifests/tags/{tag}/index/sha256/{}/link",
                        digest.hex()
                    ),
                    &digest,
                )?;
            }
            manifests += 1;
            blobs += 2 + args.layers;
        }
    }
    Ok((manifests, blobs))
}

fn blob_set(root: &Path) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    let base = root.join(format!("{V2}/blobs/sha256"));
    for prefix in std::fs::read_dir(base).into_iter().flatten().flatten() {
        for blob in std::fs::read_dir(prefix.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if blob.path().join("data").exists() {
                set.insert(blob.file_name().to_string_lossy().into_owned());
            }
        }
    }
    set
}

fn config_file(dir: &Path, root: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!(
        "{}.yml",
        root.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &path,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n",
            root.display()
        ),
    )?;
    Ok(path)
}

/// Runs one GC and returns its wall time in seconds.
fn timed(mut command: Command) -> anyhow::Result<f64> {
    let started = Instant::now();
    let output = command.output().context("running garbage-collect")?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(started.elapsed().as_secs_f64())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    anyhow::ensure!(status.success(), "cp -a failed");
    Ok(())
}

fn drop_caches_best_effort() {
    // Needs root; without it both sides run on a warm page cache alike.
    let _ = Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for bin in [&args.berth_bin, &args.distribution_bin] {
        anyhow::ensure!(bin.exists(), "{} not found", bin.display());
    }
    let temp = tempfile::tempdir()?;
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let source = work.join("source");
    let started = Instant::now();
    let (manifests, blobs) = generate(&source, &args)?;
    println!(
        "storage: {} repos, {manifests} manifests, {blobs} blobs (generated in {:.1}s)",
        args.repos,
        started.elapsed().as_secs_f64()
    );
    let mut results = Vec::new();
    for (label, untagged) in [("mark all revisions", false), ("--delete-untagged", true)] {
        let mut seconds = Vec::new();
        let mut kept = Vec::new();
        for berth in [false, true] {
            let root = work.join(format!(
                "{}-{}",
                if berth { "berth" } else { "distribution" },
                untagged
            ));
            let _ = std::fs::remove_dir_all(&root);
            copy_tree(&source, &root)?;
            let config = config_file(&work, &root)?;
            let mut command = Command::new(if berth {
                &args.berth_bin
            } else {
                &args.distribution_bin
            });
            command.arg("garbage-collect");
            if untagged {
                command.arg("--delete-untagged");
            }
            if berth {
                command.args(["--quiet", "--grace-period", "0s"]);
            }
            command.arg(&config);
            drop_caches_best_effort();
            seconds.push(timed(command)?);
            kept.push(blob_set(&root));
            std::fs::remove_dir_all(&root)?;
        }
        let (distribution, berth) = (seconds[0], seconds[1]);
        anyhow::ensure!(
            kept[1].is_superset(&kept[0]),
            "{label}: Berth deleted blobs distribution kept"
        );
        println!(
            "{label:<20} distribution {distribution:>7.2}s  berth {berth:>7.2}s  speedup {:>5.1}x  blobs kept: distribution {}, berth {}",
            distribution / berth,
            kept[0].len(),
            kept[1].len()
        );
        results.push(json!({
            "mode": label, "distribution_seconds": distribution, "berth_seconds": berth,
            "speedup": distribution / berth, "distribution_kept": kept[0].len(), "berth_kept": kept[1].len(),
        }));
    }
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&json!({
                "repos": args.repos, "manifests": manifests, "blobs": blobs, "results": results,
            }))?,
        )?;
    }
    Ok(())
}
