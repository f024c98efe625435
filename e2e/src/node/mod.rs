//! A real node beside kwok's: containerd + runc (Debian), CNI bridge, kubelet and kube-proxy
//! (built by `e2e/cluster` from the same `k8s.io/kubernetes` module as the control plane).
//!
//! containerd and kubelet share a private mount namespace (see [`config::namespace_setup`]): the
//! node's hosts file, `/etc/containerd/certs.d`, containerd's state, network namespaces and
//! every volume mount stay inside it and vanish with it. The node registers as
//! [`config::NODE_NAME`] with the taint and label `berth.dev/node=real`, so only pods that opt in
//! (toleration + node selector, or a namespace default) run here; everything else keeps landing
//! on kwok's node. `e2e/cluster up` runs `berth-node up` after the control plane, `down` runs
//! `berth-node down`.

pub mod config;
pub mod net;
pub mod process;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::{Error, Result};
use config::{NODE_NAME, NodeLayout};
use process::{Procs, run};

/// Component names (pid files, logs), in start order.
pub const CONTAINERD: &str = "containerd";
pub const KUBELET: &str = "kubelet";
pub const KUBE_PROXY: &str = "kube-proxy";
/// The storage helper (see [`volumes_loop`]) runs as `berth-node volumes`.
pub const VOLUMES: &str = "berth-node";

/// Which state dir's node owns the host-wide pieces (bridges, node address, iptables chains).
pub const OWNER_FILE: &str = "/run/berth-node.owner";

/// Where the hostPath provisioner of kube-controller-manager creates volumes.
pub const HOSTPATH_PV_ROOT: &str = "/tmp/hostpath_pv";

/// Inputs of `berth-node up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub state: PathBuf,
    pub kube_bin: PathBuf,
    pub api_port: u16,
    /// OCI archives to import into containerd before kubelet starts (the first is the sandbox
    /// image) with their image names.
    pub images: Vec<(String, PathBuf)>,
}

fn timed<T>(phase: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let out = f()?;
    tracing::info!("node: {phase} took {:.1}s", started.elapsed().as_secs_f64());
    Ok(out)
}

/// Brings the node up and waits until it is Ready.
pub async fn up(opts: &UpOptions) -> Result<()> {
    let started = Instant::now();
    let pause = opts
        .images
        .first()
        .map(|(name, _)| name.clone())
        .ok_or_else(|| Error::Node("no sandbox image given".into()))?;
    let mut l = NodeLayout::new(&opts.state, opts.api_port, pause);
    l.kubelet_port = process::free_port()?;
    l.kubelet_healthz_port = process::free_port()?;
    l.proxy_healthz_port = process::free_port()?;
    l.proxy_metrics_port = process::free_port()?;
    l.dns = fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|conf| {
            conf.lines()
                .filter_map(|line| line.trim().strip_prefix("nameserver"))
                .map(|ip| ip.trim().to_owned())
                .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        });
    let procs = Procs::new(&opts.state);
    claim_host(&opts.state)?;
    timed("config", || write_files(&l))?;
    timed("network", || net::up(&l.path("ip_forward.orig")))?;
    timed("containerd", || start_containerd(&l, &procs))?;
    timed("images", || import_images(&l, &opts.images))?;
    let kubelet = opts.kube_bin.join(KUBELET);
    let containerd_pid = procs
        .pid(CONTAINERD)
        .ok_or_else(|| Error::Node("containerd has no pid".into()))?;
    timed("kubelet", || {
        let mut args = vec![
            format!("--mount=/proc/{containerd_pid}/ns/mnt"),
            "--".into(),
            kubelet.display().to_string(),
        ];
        args.extend(kubelet_args(&l));
        procs.start(KUBELET, "nsenter", &args).map(drop)
    })?;
    timed("kube-proxy", || {
        let args = vec![format!("--config={}", l.path("kube-proxy.yaml").display())];
        procs
            .start(
                KUBE_PROXY,
                &opts.kube_bin.join(KUBE_PROXY).display().to_string(),
                &args,
            )
            .map(drop)
    })?;
    let me = std::env::current_exe()?.display().to_string();
    procs.start(VOLUMES, &me, &["volumes".into()])?;
    wait_ready(&l, &procs).await?;
    tracing::info!(
        "node: {NODE_NAME} Ready in {:.1}s (containerd {}, logs {})",
        started.elapsed().as_secs_f64(),
        l.containerd_socket().display(),
        procs.logs.display()
    );
    Ok(())
}

fn kubelet_args(l: &NodeLayout) -> Vec<String> {
    vec![
        format!("--config={}", l.path("kubelet.yaml").display()),
        format!(
            "--kubeconfig={}",
            l.state.join("kubelet.kubeconfig").display()
        ),
        format!("--root-dir={}", l.path("kubelet").display()),
        format!("--cert-dir={}", l.path("kubelet/pki").display()),
        format!("--hostname-override={NODE_NAME}"),
        format!("--node-ip={}", config::NODE_IP),
        format!(
            "--node-labels={}={}",
            config::NODE_LABEL,
            config::NODE_LABEL_VALUE
        ),
        "--v=1".into(),
    ]
}

fn write_files(l: &NodeLayout) -> Result<()> {
    for dir in [
        "containerd/root",
        "cni/net.d",
        "cni/ipam",
        "kubelet/pki",
        "pod-logs",
        "etc/containerd/certs.d",
    ] {
        fs::create_dir_all(l.path(dir))?;
    }
    fs::write(l.path("containerd.toml"), config::containerd_toml(l))?;
    fs::write(
        l.path("cni/net.d/10-berth.conflist"),
        config::cni_conflist(l),
    )?;
    fs::write(l.path("kubelet.yaml"), config::kubelet_yaml(l))?;
    fs::write(l.path("kube-proxy.yaml"), config::kube_proxy_yaml(l))?;
    fs::write(l.path("ns-setup.sh"), config::namespace_setup(l))?;
    // The node's own hosts file starts as a copy of the host's; the node agent adds to it.
    let hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    fs::write(l.hosts_file(), hosts)?;
    Ok(())
}

fn start_containerd(l: &NodeLayout, procs: &Procs) -> Result<()> {
    let script = format!(
        ". {} && exec containerd --config {}",
        l.path("ns-setup.sh").display(),
        l.path("containerd.toml").display()
    );
    let args: Vec<String> = [
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    procs.start(CONTAINERD, "unshare", &args)?;
    let socket = l.containerd_socket().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        procs.ensure_alive(CONTAINERD)?;
        if procs.alive(CONTAINERD) && run("ctr", &["--address", &socket, "version"]).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Node("containerd did not answer within 30s".into()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Imports OCI archives into containerd's `k8s.io` namespace under the given names.
pub fn import_images(l: &NodeLayout, images: &[(String, PathBuf)]) -> Result<()> {
    let socket = l.containerd_socket().display().to_string();
    for (name, archive) in images {
        // The archive's ref annotation is the full name (see scripts/images).
        run(
            "ctr",
            &[
                "--address",
                &socket,
                "-n",
                "k8s.io",
                "images",
                "import",
                &archive.display().to_string(),
            ],
        )?;
        let listed = run(
            "ctr",
            &["--address", &socket, "-n", "k8s.io", "images", "ls", "-q"],
        )?;
        if !listed.lines().any(|line| line == name) {
            return Err(Error::Node(format!(
                "importing {} did not give {name}; containerd has: {listed}",
                archive.display()
            )));
        }
    }
    Ok(())
}

async fn wait_ready(l: &NodeLayout, procs: &Procs) -> Result<()> {
    let client = crate::cluster::client_for(&l.state.join("kubeconfig")).await?;
    let nodes: Api<Node> = Api::all(client);
    let started = Instant::now();
    loop {
        for name in [CONTAINERD, KUBELET, KUBE_PROXY] {
            procs.ensure_alive(name)?;
        }
        if let Ok(Some(node)) = nodes.get_opt(NODE_NAME).await {
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                tracing::info!(
                    "node: Ready after {:.1}s of waiting",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
        }
        if started.elapsed() > Duration::from_secs(90) {
            return Err(Error::Node(format!(
                "{NODE_NAME} not Ready after 90s (kubelet log: {})",
                procs.log(KUBELET).display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Only one real node per host: its bridges, address and iptables chains are host-wide. A claim
/// by another state dir whose containerd still runs is refused.
fn claim_host(state: &Path) -> Result<()> {
    let ours = state.display().to_string();
    if let Ok(owner) = fs::read_to_string(OWNER_FILE) {
        let owner = owner.trim();
        if owner != ours && Procs::new(Path::new(owner)).alive(CONTAINERD) {
            return Err(Error::Node(format!(
                "another cluster's real node runs on this host (state {owner}); stop it first \
                 (BERTH_CLUSTER_DIR={owner} e2e/cluster down) or start without one (BERTH_REAL_NODE=0)"
            )));
        }
    }
    fs::write(OWNER_FILE, format!("{ours}\n"))?;
    Ok(())
}

/// Stops everything `up` started and removes what it left on the host (best effort, idempotent).
/// The host-wide pieces (pods' cgroups, iptables chains, bridges, forwarding) are only touched
/// when this state dir owns them ([`OWNER_FILE`]): another cluster's node may be using them.
pub fn down(state: &Path, kube_bin: &Path) {
    let procs = Procs::new(state);
    let owner = fs::read_to_string(OWNER_FILE).ok();
    let ours = owner
        .as_deref()
        .is_none_or(|o| o.trim() == state.display().to_string());
    let grace = Duration::from_secs(10);
    procs.stop(VOLUMES, Duration::from_secs(1));
    procs.stop(KUBE_PROXY, grace);
    let proxy = kube_bin.join(KUBE_PROXY);
    if ours && proxy.exists() {
        // kube-proxy's iptables chains outlive it.
        let _ = run(&proxy.display().to_string(), &["--cleanup"]);
    }
    procs.stop(KUBELET, grace);
    if ours {
        kill_pods();
    }
    let namespace = procs
        .pid(CONTAINERD)
        .and_then(|pid| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok())
        .map(|l| l.to_string_lossy().into_owned());
    procs.stop(CONTAINERD, grace);
    // Shims live in the node's mount namespace; with the containers gone they would linger.
    if let Some(ns) = namespace {
        for pid in process::in_mount_namespace(&ns) {
            process::terminate(pid, Duration::from_secs(2));
        }
    }
    if ours {
        remove_pod_cgroups();
        net::down(&state.join("node/ip_forward.orig"));
        let _ = fs::remove_file(OWNER_FILE);
    } else {
        tracing::warn!(
            owner = owner.as_deref().unwrap_or_default().trim(),
            "the host-wide node pieces belong to another cluster: left alone"
        );
    }
}

/// The cgroup v1 hierarchies kubelet creates `kubepods` in.
fn kubepods_dirs() -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.path().join("kubepods")))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Every process of every pod, by cgroup: SIGKILL.
fn kill_pods() {
    for root in kubepods_dirs() {
        for dir in walk(&root) {
            for pid in fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<u32>().ok())
            {
                process::signal(pid, "KILL");
            }
        }
    }
}

fn remove_pod_cgroups() {
    for root in kubepods_dirs() {
        let mut dirs = walk(&root);
        // Deepest first.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_owned()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = fs::read_dir(&out[i]) {
            out.extend(
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        i += 1;
    }
    out
}

/// kube-controller-manager's hostPath provisioner creates volume directories as root with mode
/// 0750, so non-root pods (the registry runs as 65532 with an fsGroup, which hostPath ignores)
/// could not write to them. Like kind's local-path-provisioner, make them world-writable.
/// Runs until killed (`berth-node volumes`).
pub fn volumes_loop() -> ! {
    loop {
        if let Ok(entries) = fs::read_dir(HOSTPATH_PV_ROOT) {
            for entry in entries.filter_map(|e| e.ok()) {
                let path = entry.path();
                let Ok(meta) = fs::metadata(&path) else {
                    continue;
                };
                use std::os::unix::fs::PermissionsExt as _;
                if meta.is_dir() && meta.permissions().mode() & 0o7777 != 0o777 {
                    let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o777));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
