//! Finding, or starting, the cluster the tests run against.

use std::{
    fmt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, Client, Config, ResourceExt as _,
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::sync::OnceCell;

use crate::{Error, Result, TestNamespace};

/// Env var naming an explicit kubeconfig to test against (kind, k3d, ...). Takes precedence.
pub const KUBECONFIG_ENV: &str = "BERTH_E2E_KUBECONFIG";
/// Env var overriding the path of the `cluster` script.
pub const SCRIPT_ENV: &str = "BERTH_E2E_CLUSTER_SCRIPT";
/// Name of the fake node `e2e/cluster up` registers with kwok.
pub const KWOK_NODE: &str = "berth-kwok-0";

/// How long a cluster gets to answer `/version` before it counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the cluster's kubeconfig came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `BERTH_E2E_KUBECONFIG` pointed at it.
    Explicit(PathBuf),
    /// `KUBECONFIG` pointed at it (the env var's value, possibly a `:`-separated list).
    Env(String),
    /// `e2e/cluster up` started (or found) the local control plane.
    Local {
        /// The admin kubeconfig the script wrote.
        kubeconfig: PathBuf,
        /// Directories holding the matching `kubectl` and `helm`.
        bin_dirs: Vec<PathBuf>,
        /// The real node's containerd socket, when the cluster has one.
        containerd: Option<PathBuf>,
    },
}

#[derive(Debug)]
struct Shared {
    config: Config,
    source: Source,
    kwok_node: Option<String>,
}

/// Set once per process; a failure is kept too so that later tests fail fast instead of
/// re-running a broken `cluster up`.
static SHARED: OnceCell<Result<Arc<Shared>, String>> = OnceCell::const_new();

/// A handle on the cluster under test: a client plus where it came from.
///
/// Cheap to get: the cluster is found once per process, and each call builds a fresh [`Client`] on
/// the calling test's runtime (a client must not outlive the runtime it was created on).
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
    client: Client,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("source", &self.shared.source)
            .field("server", &self.shared.config.cluster_url)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// The shared cluster for this test process; see the crate docs for how it is found.
    pub async fn shared() -> Result<Self> {
        let shared = SHARED
            .get_or_init(|| async { discover().await.map(Arc::new).map_err(|e| e.to_string()) })
            .await
            .clone()
            .map_err(Error::Setup)?;
        let client = Client::try_from(shared.config.clone())?;
        Ok(Self { shared, client })
    }

    /// A client for the cluster (cloning is cheap).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The client configuration, e.g. to build another client on another runtime.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Where the kubeconfig came from.
    pub fn source(&self) -> &Source {
        &self.shared.source
    }

    /// Whether this is the local `e2e/cluster` control plane (kwok node, hostPath storage).
    pub fn is_local(&self) -> bool {
        matches!(self.shared.source, Source::Local { .. })
    }

    /// The kwok fake node's name when the cluster is the local control plane (found by looking
    /// for the node, so this also works when the local cluster is reached through `KUBECONFIG`).
    pub fn kwok_node(&self) -> Option<&str> {
        self.shared.kwok_node.as_deref()
    }

    /// A kubeconfig file for tools such as `kubectl` and `helm` (the first one for a `KUBECONFIG`
    /// list).
    pub fn kubeconfig_path(&self) -> Option<PathBuf> {
        match &self.shared.source {
            Source::Explicit(path) => Some(path.clone()),
            Source::Env(list) => std::env::split_paths(list).next(),
            Source::Local { kubeconfig, .. } => Some(kubeconfig.clone()),
        }
    }

    /// Path of a tool (`kubectl`, `helm`): the version-matched build from the cache for the local
    /// cluster, otherwise the bare name for a `PATH` lookup.
    pub fn tool(&self, name: &str) -> PathBuf {
        if let Source::Local { bin_dirs, .. } = &self.shared.source
            && let Some(found) = bin_dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
        {
            return found;
        }
        PathBuf::from(name)
    }

    /// The real node's containerd socket: `CONTAINERD_ADDRESS` (what `e2e/cluster env` exports), or
    /// what `e2e/cluster up` printed.
    pub fn containerd_address(&self) -> Option<PathBuf> {
        if let Some(address) = non_empty_env("CONTAINERD_ADDRESS") {
            return Some(PathBuf::from(address));
        }
        match &self.shared.source {
            Source::Local { containerd, .. } => containerd.clone(),
            _ => None,
        }
    }

    /// Create a uniquely named namespace for `test`; it is deleted when the handle is dropped.
    pub async fn namespace(&self, test: &str) -> Result<TestNamespace> {
        TestNamespace::create(self.client(), self.shared.config.clone(), test).await
    }
}

async fn discover() -> Result<Shared> {
    let (config, source) = find_cluster().await?;
    let kwok_node = detect_kwok_node(&config).await;
    Ok(Shared {
        config,
        source,
        kwok_node,
    })
}

/// The local cluster's fake node, if this cluster has it (also when reached through `KUBECONFIG`).
async fn detect_kwok_node(config: &Config) -> Option<String> {
    let client = Client::try_from(config.clone()).ok()?;
    let node = Api::<Node>::all(client).get_opt(KWOK_NODE).await.ok()??;
    let fake = node
        .annotations()
        .get("kwok.x-k8s.io/node")
        .map(String::as_str)
        == Some("fake");
    fake.then(|| KWOK_NODE.to_owned())
}

async fn find_cluster() -> Result<(Config, Source)> {
    if let Some(path) = non_empty_env(KUBECONFIG_ENV) {
        let path = PathBuf::from(path);
        let config = load_kubeconfig(&path).await?;
        probe(&config, &format!("{KUBECONFIG_ENV}={}", path.display())).await?;
        tracing::info!(kubeconfig = %path.display(), server = %config.cluster_url, "testing against {KUBECONFIG_ENV}");
        return Ok((config, Source::Explicit(path)));
    }
    if let Some(list) = non_empty_env("KUBECONFIG") {
        match Config::from_kubeconfig(&KubeConfigOptions::default()).await {
            Ok(config) => match probe(&config, &format!("KUBECONFIG={list}")).await {
                Ok(()) => {
                    tracing::info!(kubeconfig = %list, server = %config.cluster_url, "testing against KUBECONFIG");
                    return Ok((config, Source::Env(list)));
                }
                Err(e) => tracing::info!(
                    "KUBECONFIG is set but unusable ({e}); starting the local cluster"
                ),
            },
            Err(e) => {
                tracing::info!("KUBECONFIG is set but unreadable ({e}); starting the local cluster")
            }
        }
    }
    start_local().await
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Path of the `e2e/cluster` script.
pub fn script_path() -> PathBuf {
    non_empty_env(SCRIPT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster"))
}

async fn start_local() -> Result<(Config, Source)> {
    let script = script_path();
    let script_name = script.display().to_string();
    let script_err = |reason: String| Error::ClusterScript {
        script: script_name.clone(),
        reason,
    };
    tracing::info!(
        "running {script_name} up (the first run builds the binaries, which takes a while)"
    );
    let started = Instant::now();
    // stderr is inherited so build and startup progress show up live (the test harness does not
    // capture a child's output); stdout carries the exports. (`Command::output` would pipe both.)
    let output = tokio::process::Command::new(&script)
        .arg("up")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?
        .wait_with_output()
        .await?;
    if !output.status.success() {
        return Err(script_err(format!("exited with {}", output.status)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let exports = parse_exports(&stdout);
    let kubeconfig = exports
        .kubeconfig
        .ok_or_else(|| script_err(format!("printed no `export KUBECONFIG=` line: {stdout:?}")))?;
    let config = load_kubeconfig(&kubeconfig).await?;
    probe(&config, &kubeconfig.display().to_string()).await?;
    tracing::info!(
        kubeconfig = %kubeconfig.display(),
        server = %config.cluster_url,
        elapsed = ?started.elapsed(),
        "local cluster is up"
    );
    let source = Source::Local {
        kubeconfig,
        bin_dirs: exports.bin_dirs,
        containerd: exports.containerd,
    };
    Ok((config, source))
}

#[derive(Debug, Default, PartialEq)]
struct Exports {
    kubeconfig: Option<PathBuf>,
    bin_dirs: Vec<PathBuf>,
    containerd: Option<PathBuf>,
}

/// Parse the `export KUBECONFIG=...` and `export PATH=a:b:$PATH` lines `cluster up` prints.
fn parse_exports(stdout: &str) -> Exports {
    let mut exports = Exports::default();
    for line in stdout.lines() {
        if let Some(v) = line.trim().strip_prefix("export CONTAINERD_ADDRESS=") {
            exports.containerd = Some(PathBuf::from(v.trim_matches('"')));
        } else if let Some(v) = line.trim().strip_prefix("export KUBECONFIG=") {
            exports.kubeconfig = Some(PathBuf::from(v.trim_matches('"')));
        } else if let Some(v) = line.trim().strip_prefix("export PATH=") {
            exports.bin_dirs = v
                .trim_matches('"')
                .split(':')
                .filter(|d| !d.is_empty() && !d.starts_with('$'))
                .map(PathBuf::from)
                .collect();
        }
    }
    exports
}

async fn load_kubeconfig(path: &Path) -> Result<Config> {
    let kubeconfig_err = |source| Error::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_err)?;
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(kubeconfig_err)
}

/// A client for the cluster of a kubeconfig file.
pub(crate) async fn client_for(path: &Path) -> Result<Client> {
    Ok(Client::try_from(load_kubeconfig(path).await?)?)
}

/// Check that the cluster answers `GET /version`.
async fn probe(config: &Config, origin: &str) -> Result<()> {
    let unreachable = |reason: String| Error::Unreachable {
        origin: origin.to_owned(),
        reason,
    };
    let client = Client::try_from(config.clone())?;
    match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(info)) => {
            tracing::debug!(version = %info.git_version, "cluster answered");
            Ok(())
        }
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!("no answer within {PROBE_TIMEOUT:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_script_exports() {
        let out = "export KUBECONFIG=/tmp/berth-cluster/kubeconfig\n\
                   export PATH=/c/kube/1.35.4/bin:/c/helm/3.22.0/bin:$PATH\n\
                   export CONTAINERD_ADDRESS=/tmp/berth-cluster/node/containerd.sock\n";
        assert_eq!(
            parse_exports(out),
            Exports {
                kubeconfig: Some(PathBuf::from("/tmp/berth-cluster/kubeconfig")),
                bin_dirs: vec![
                    PathBuf::from("/c/kube/1.35.4/bin"),
                    PathBuf::from("/c/helm/3.22.0/bin")
                ],
                containerd: Some(PathBuf::from("/tmp/berth-cluster/node/containerd.sock")),
            }
        );
        assert_eq!(parse_exports("noise\n"), Exports::default());
    }
}
