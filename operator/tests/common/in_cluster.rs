//! Helpers of the in-cluster tests on the local cluster's real node: commands with their
//! output on failure, a Helm release and port-forwards cleaned up on drop, restricted-compliant
//! probe pods, and what a namespace still holds.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use super::eventually;

pub const REAL_NODE: &str = "berth-node-0";
pub const WAIT: Duration = Duration::from_secs(180);

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a command; `Err` carries its output.
pub fn run(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        // Credentials never reach the output.
        let shown: Vec<&str> = args
            .iter()
            .map(|a| {
                if a.contains("creds=") {
                    "--creds=<redacted>"
                } else {
                    a
                }
            })
            .collect();
        Err(format!("{} {shown:?}: {text}", program.display()))
    }
}

pub fn must(program: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    run(program, args, env).unwrap_or_else(|e| panic!("{e}"))
}

/// A Helm release uninstalled when the test ends, also when it fails (its cluster-scoped roles
/// would outlive the test namespaces).
pub struct Release {
    pub helm: PathBuf,
    pub kubeconfig: String,
    pub name: String,
    pub namespace: String,
    pub installed: bool,
}

impl Release {
    /// `helm uninstall` of this release, waiting for its objects to go when `wait`.
    fn uninstall_args(&self, wait: bool) -> Vec<&str> {
        let mut args = vec!["uninstall", &self.name, "--kubeconfig", &self.kubeconfig];
        args.extend(["--namespace", &self.namespace]);
        if wait {
            args.push("--wait");
        }
        args
    }

    pub fn uninstall(&mut self) {
        must(&self.helm, &self.uninstall_args(true), &[]);
        self.installed = false;
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.installed {
            let _ = run(&self.helm, &self.uninstall_args(false), &[]);
        }
    }
}

/// `kubectl port-forward` to `target` (`svc/NAME`, `pod/NAME`) port 5000 on a free local port.
pub struct PortForward {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn port_forward(
    kubectl: &Path,
    kubeconfig: &str,
    namespace: &str,
    target: &str,
) -> PortForward {
    use std::io::BufRead as _;
    let mut child = Command::new(kubectl)
        .args([
            "--kubeconfig",
            kubeconfig,
            "-n",
            namespace,
            "port-forward",
            target,
            ":5000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl port-forward");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep draining: kubectl prints a line per connection and dies on a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    // "Forwarding from 127.0.0.1:41234 -> 5000"
    let port = line
        .split_once("127.0.0.1:")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port-forward output {line:?}"));
    PortForward { child, port }
}

pub async fn namespace_labels(
    client: &Client,
    name: &str,
    labels: serde_json::Value,
    annotations: serde_json::Value,
) {
    let patch = serde_json::json!({"metadata": {"labels": labels, "annotations": annotations}});
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

pub fn secret(name: &str, type_: &str, data: BTreeMap<String, String>) -> Secret {
    let mut s: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "type": type_,
    }))
    .unwrap();
    s.data = Some(
        data.into_iter()
            .map(|(k, v)| (k, ByteString(v.into_bytes())))
            .collect(),
    );
    s
}

pub fn pull_secret(host: &str, user: &str, password: &str) -> Secret {
    let config = serde_json::json!({"auths": {host: {"username": user, "password": password}}});
    secret(
        "pull",
        "kubernetes.io/dockerconfigjson",
        BTreeMap::from([(".dockerconfigjson".into(), config.to_string())]),
    )
}

/// A restricted-compliant pod running `image` once.
pub fn probe_pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "imagePullSecrets": [{"name": "pull"}],
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "Always",
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        }
    }))
    .unwrap()
}

/// Creates a pod and waits until it Succeeded on the real node; returns its log.
pub async fn run_pod(pods: &Api<Pod>, pod: Pod) -> String {
    let name = pod.name_any();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let done = eventually(&format!("pod {name} to succeed"), WAIT, || async {
        let p = pods.get(&name).await.ok()?;
        let phase = p.status.as_ref()?.phase.clone()?;
        assert_ne!(phase, "Failed", "pod {name} failed: {:?}", p.status);
        (phase == "Succeeded").then_some(p)
    })
    .await;
    assert_eq!(done.spec.unwrap().node_name.as_deref(), Some(REAL_NODE));
    pods.logs(&name, &LogParams::default()).await.unwrap()
}

/// Retries `f` until it succeeds; fails with its last error after `timeout`.
pub async fn retry<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(value) => return value,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

pub fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|c| c.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// `Kind/name` of every object of one kind in a namespace.
pub async fn names<K>(client: &Client, ns: &str) -> Vec<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .map(|o| format!("{kind}/{}", o.name_any()))
                .collect()
        })
        .unwrap_or_default()
}

/// Objects a namespace still holds besides what Kubernetes puts in every namespace.
pub async fn leftovers(client: &Client, ns: &str) -> Vec<String> {
    let mut left = Vec::new();
    left.extend(names::<Deployment>(client, ns).await);
    left.extend(names::<DaemonSet>(client, ns).await);
    left.extend(names::<Pod>(client, ns).await);
    left.extend(names::<Secret>(client, ns).await);
    left.extend(names::<CronJob>(client, ns).await);
    left.extend(names::<PersistentVolumeClaim>(client, ns).await);
    left.extend(
        names::<ConfigMap>(client, ns)
            .await
            .into_iter()
            .filter(|n| n != "ConfigMap/kube-root-ca.crt"),
    );
    left
}

/// The repository's `scripts/s3-servers` SeaweedFS, listening on the real node's address so
/// pods reach it (its own state dir beside the loopback instance the registry tests use).
pub struct NodeS3 {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

const NODE_S3_DIR: &str = "/tmp/berth-s3-node";

impl NodeS3 {
    pub fn start(node_ip: &str) -> Self {
        let script = repo().join("scripts/s3-servers");
        let env = [("BERTH_S3_IP", node_ip), ("BERTH_S3_DIR", NODE_S3_DIR)];
        let out = must(&script, &["start", "seaweedfs"], &env);
        let var = |name: &str| {
            out.lines()
                .filter_map(|l| l.strip_prefix("export "))
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("scripts/s3-servers printed no {name}: {out}"))
                .to_owned()
        };
        NodeS3 {
            endpoint: var("S3_ENDPOINT"),
            region: var("S3_REGION"),
            bucket: var("S3_BUCKET"),
            access_key: var("AWS_ACCESS_KEY_ID"),
            secret_key: var("AWS_SECRET_ACCESS_KEY"),
        }
    }
}

impl Drop for NodeS3 {
    fn drop(&mut self) {
        let script = repo().join("scripts/s3-servers");
        let _ = run(
            &script,
            &["stop", "seaweedfs"],
            &[("BERTH_S3_DIR", NODE_S3_DIR)],
        );
    }
}

/// The toleration that lets pods onto the real node.
pub const REAL_NODE_TOLERATION: &str =
    r#"[{"key":"berth.dev/node","operator":"Equal","value":"real","effect":"NoSchedule"}]"#;

/// Fails unless the local cluster's real node is Ready.
pub async fn assert_real_node_ready(client: &Client) {
    let ready = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .get_opt(REAL_NODE)
        .await
        .unwrap()
        .and_then(|n| n.status?.conditions)
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    assert!(
        ready,
        "this test needs the local cluster's real node {REAL_NODE} (e2e/cluster up)"
    );
}

/// Labels a namespace `restricted` and sends its pods to the real node.
pub async fn restricted_real_node_namespace(client: &Client, name: &str) {
    namespace_labels(
        client,
        name,
        serde_json::json!({"pod-security.kubernetes.io/enforce": "restricted",
                           "pod-security.kubernetes.io/enforce-version": "latest"}),
        serde_json::json!({"scheduler.alpha.kubernetes.io/node-selector": "berth.dev/node=real",
                           "scheduler.alpha.kubernetes.io/defaultTolerations": REAL_NODE_TOLERATION}),
    )
    .await;
}

/// `helm install` of the chart with the images `scripts/images` built, the operator on the real
/// node watching `watch_ns`, node access on.
pub fn install_chart(
    helm: &Path,
    kubeconfig: &str,
    release: &str,
    release_ns: &str,
    watch_ns: &str,
) -> Release {
    let version = env!("CARGO_PKG_VERSION");
    must(
        helm,
        &[
            "install",
            release,
            repo().join("charts/berth-operator").to_str().unwrap(),
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            release_ns,
            "--set",
            "image.repository=berth/operator",
            "--set",
            &format!("image.tag={version}"),
            "--set",
            "registryImage.repository=berth/registry",
            "--set",
            &format!("registryImage.tag={version}"),
            "--set",
            "replicaCount=1",
            "--set",
            &format!("watchNamespace={watch_ns}"),
            "--set",
            "crds.enabled=false",
            "--set",
            "nodeAccess.enabled=true",
            "--set",
            "logFormat=text",
            "--set-json",
            r#"nodeSelector={"berth.dev/node":"real"}"#,
            "--set-json",
            &format!("tolerations={REAL_NODE_TOLERATION}"),
        ],
        &[],
    );
    Release {
        helm: helm.to_owned(),
        kubeconfig: kubeconfig.to_owned(),
        name: release.to_owned(),
        namespace: release_ns.to_owned(),
        installed: true,
    }
}
