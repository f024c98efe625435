//! `berth-operator-bench`: N Registries in a real control plane (KUBECONFIG):
//! time until all are Ready, API writes during steady-state resyncs (target
//! 0), and the operator's peak RSS. Runs the real `berth-operator` binary.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::Parser;
use futures_util::{StreamExt, stream};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt};
use operator::crd::Registry;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Scale benchmark for the Berth operator")]
struct Args {
    /// Registries to create.
    #[arg(long, default_value_t = 500)]
    registries: usize,
    /// The operator binary to measure.
    #[arg(long, default_value = "target/release/berth-operator")]
    operator: PathBuf,
    /// Resync interval given to the operator; steady state is observed over two of them.
    #[arg(long, default_value_t = 20)]
    resync_seconds: u64,
    /// Parallel creates.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
}

fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn scrape(addr: &str) -> anyhow::Result<(u64, u64)> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    Ok((
        metric(&text, "berth_operator_api_writes_total"),
        metric(&text, "berth_operator_reconciles_total"),
    ))
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.operator.is_file(),
        "{} not found (cargo build --release -p operator)",
        args.operator.display()
    );
    let client = Client::try_default()
        .await
        .context("KUBECONFIG must point at a cluster (e2e/cluster up)")?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "registries.berth.dev",
        &PatchParams::apply("berth-bench").force(),
        &Patch::Apply(Registry::crd()),
    )
    .await?;
    let namespace = format!("bench-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}}))?,
        )
        .await?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let mut operator = Command::new(&args.operator)
        .args([
            "--namespace",
            &namespace,
            "--leader-election",
            "false",
            "--metrics-addr",
            &metrics,
        ])
        .args([
            "--resync-seconds",
            &args.resync_seconds.to_string(),
            "--concurrency",
            "16",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let result = measure(&args, &client, &namespace, &metrics, operator.id()).await;
    let _ = operator.kill();
    let _ = operator.wait();
    namespaces
        .delete(&namespace, &DeleteParams::background())
        .await?;
    result
}

async fn measure(
    args: &Args,
    client: &Client,
    namespace: &str,
    metrics: &str,
    pid: u32,
) -> anyhow::Result<()> {
    let registries: Api<Registry> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    let creates = stream::iter(0..args.registries)
        .map(|i| {
            let registries = registries.clone();
            async move {
                let registry: Registry = serde_json::from_value(json!({
                    "apiVersion": "berth.dev/v1alpha1", "kind": "Registry",
                    "metadata": {"name": format!("r{i}")},
                    "spec": {"storage": {"persistentVolume": {"size": "1Gi"}}},
                }))?;
                registries.create(&PostParams::default(), &registry).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.parallel)
        .collect::<Vec<_>>()
        .await;
    ensure!(
        creates.iter().all(Result::is_ok),
        "creating Registries failed"
    );
    let created = started.elapsed();

    // When the operator has rendered every Deployment: what follows (ReplicaSets,
    // scheduling, pods becoming Ready) is the cluster's controllers' work.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), namespace);
    let mut rendered = None;
    let ready = loop {
        if rendered.is_none()
            && deployments
                .list_metadata(&ListParams::default())
                .await?
                .items
                .len()
                >= args.registries
        {
            rendered = Some(started.elapsed());
        }
        let list = registries.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|r| {
                r.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        if ready == args.registries {
            break started.elapsed();
        }
        ensure!(
            started.elapsed() < Duration::from_secs(900),
            "only {ready} Registries became Ready"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "{} Registries: created in {:.1}s, every Deployment rendered after {:.1}s, all Ready after {:.1}s",
        args.registries,
        created.as_secs_f64(),
        rendered.unwrap_or(ready).as_secs_f64(),
        ready.as_secs_f64()
    );

    // Let rollouts settle, then watch two full resync periods.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (writes_before, reconciles_before) = scrape(metrics).await?;
    tokio::time::sleep(Duration::from_secs(args.resync_seconds * 2 + 5)).await;
    let (writes_after, reconciles_after) = scrape(metrics).await?;
    let resyncs = reconciles_after - reconciles_before;
    println!(
        "steady state over {}s: {resyncs} reconciles, {} API writes",
        args.resync_seconds * 2 + 5,
        writes_after - writes_before
    );
    println!("operator peak RSS: {:.1} MiB", peak_rss_mib(pid));
    ensure!(
        resyncs >= args.registries as u64,
        "expected at least one resync per Registry"
    );
    ensure!(
        writes_after == writes_before,
        "steady-state resyncs wrote to the API"
    );
    Ok(())
}
