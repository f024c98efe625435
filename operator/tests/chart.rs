//! The Helm chart and the `berth-operator` binary: the chart lints and
//! renders, the API server accepts it, its RBAC is enough for the real binary
//! to reconcile a Registry, and with two replicas only the leader reconciles.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

fn chart() -> String {
    format!("{}/../charts/berth-operator", env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &PathBuf, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{} {args:?}:\n{}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Has the API server validate (and discard) rendered manifests.
fn server_dry_run(kubectl: &PathBuf, kubeconfig_arg: &str, manifests: &str) {
    run(
        kubectl,
        &[
            kubeconfig_arg,
            "apply",
            "--dry-run=server",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(manifests),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_lints_renders_and_is_accepted_by_the_api_server() {
    let env = Env::start("chart-render").await;
    let helm = env.cluster.tool("helm");
    let kubectl = env.cluster.tool("kubectl");
    let kubeconfig = env.cluster.kubeconfig_path().unwrap();
    run(&helm, &["lint", "--strict", &chart()], None);

    let rendered = run(
        &helm,
        &["template", "berth", &chart(), "--namespace", env.ns.name()],
        None,
    );
    for kind in [
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "ServiceAccount",
        "Role",
    ] {
        assert!(
            rendered.contains(&format!("kind: {kind}\n")),
            "missing {kind}"
        );
    }
    assert!(rendered.contains("helm.sh/resource-policy: keep"));
    // The chart's CRD is the generated one.
    assert!(rendered.contains("x-kubernetes-validations"));
    let kubeconfig_arg = format!("--kubeconfig={}", kubeconfig.display());
    server_dry_run(&kubectl, &kubeconfig_arg, &rendered);

    // Namespaced mode renders Roles, not ClusterRoles, for the controller.
    let namespaced = run(
        &helm,
        &[
            "template",
            "berth",
            &chart(),
            "--namespace",
            env.ns.name(),
            "--set",
            &format!("watchNamespace={}", env.ns.name()),
            "--set",
            "crds.enabled=false",
        ],
        None,
    );
    assert!(!namespaced.contains("kind: CustomResourceDefinition"));
    assert!(namespaced.contains("kind: Role\n"));
    // The knobs a platform team sets: a mirror and digest-pinned images, extra args/env/volumes,
    // security contexts for OpenShift's SCCs, common labels, PDB and ServiceMonitor settings.
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    let digest = format!("sha256:{}", "ab".repeat(32));
    std::fs::write(
        &values,
        format!(
            "image: {{registry: mirror.example.com, digest: '{digest}'}}
registryImage: {{registry: mirror.example.com, tag: v9}}
resyncSeconds: 120
commonLabels: {{team: platform}}
extraArgs: [--concurrency=4]
extraEnv: [{{name: HTTPS_PROXY, value: 'http://proxy:3128'}}]
extraVolumes: [{{name: ca, configMap: {{name: corp-ca}}}}]
extraVolumeMounts: [{{name: ca, mountPath: /etc/corp-ca, readOnly: true}}]
podSecurityContext: null
replicaCount: 3
podDisruptionBudget: {{minAvailable: 2}}
metrics: {{serviceMonitor: {{enabled: true, namespace: monitoring, relabelings: [{{targetLabel: cluster, replacement: east}}]}}}}
"
        ),
    )
    .unwrap();
    let custom = run(
        &helm,
        &[
            "template",
            "berth",
            &chart(),
            "--namespace",
            env.ns.name(),
            "-f",
            values.to_str().unwrap(),
        ],
        None,
    );
    for expected in [
        format!("image: mirror.example.com/ghcr.io/berth-dev/operator@{digest}"),
        "value: \"mirror.example.com/ghcr.io/berth-dev/registry:v9\"".to_owned(),
        "name: BERTH_RESYNC_SECONDS\n              value: \"120\"".to_owned(),
        "team: platform".to_owned(),
        "- --concurrency=4".to_owned(),
        "name: HTTPS_PROXY".to_owned(),
        "mountPath: /etc/corp-ca".to_owned(),
        "minAvailable: 2".to_owned(),
        "namespace: monitoring".to_owned(),
        "targetLabel: cluster".to_owned(),
    ] {
        assert!(
            custom.contains(&expected),
            "missing {expected:?}:\n{custom}"
        );
    }
    assert!(
        !custom.contains("runAsUser: 65532"),
        "pod security context left to the SCC"
    );
    let without_monitor: String = custom
        .split("\n---")
        .filter(|doc| {
            !doc.contains("kind: ServiceMonitor") && !doc.contains("kind: CustomResourceDefinition")
        })
        .collect::<Vec<_>>()
        .join("\n---");
    server_dry_run(&kubectl, &kubeconfig_arg, &without_monitor);

    // Bad values are refused by the schema.
    let output = Command::new(&helm)
        .args(["template", "berth", &chart(), "--set", "logFormat=yaml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("logFormat"));
    env.finish().await;
}

/// A `berth-operator` process using a kubeconfig for the chart's ServiceAccount.
struct OperatorProcess {
    child: Child,
    metrics: String,
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OperatorProcess {
    async fn reconciles(&self) -> u64 {
        let Ok(response) = reqwest::get(format!("http://{}/metrics", self.metrics)).await else {
            return 0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with("berth_operator_reconciles_total"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Writes a kubeconfig authenticating as the chart's ServiceAccount (a real token).
async fn service_account_kubeconfig(env: &Env, sa: &str, dir: &std::path::Path) -> PathBuf {
    let accounts: Api<ServiceAccount> = env.api();
    let request = TokenRequest {
        spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let admin = std::fs::read_to_string(env.cluster.kubeconfig_path().unwrap()).unwrap();
    let admin: serde_yaml::Value = serde_yaml::from_str(&admin).unwrap();
    let cluster = admin["clusters"][0]["cluster"].clone();
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": env.ns.name()}}],
        "current-context": "sa",
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

fn start_operator(
    kubeconfig: &std::path::Path,
    namespace: &str,
    identity: &str,
) -> OperatorProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_berth-operator"))
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", identity)
        .env("RUST_LOG", "warn")
        .args([
            "--namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--metrics-addr",
            &metrics,
            "--registry-image",
            IMAGE,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    OperatorProcess { child, metrics }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_rbac_suffices_and_only_the_leader_reconciles() {
    // No in-process controller here: the binaries do the work.
    let env = Env::start_without_controller("chart-install").await;
    let helm = env.cluster.tool("helm");
    let kubeconfig = env.cluster.kubeconfig_path().unwrap();
    let ns = env.ns.name().to_owned();
    run(
        &helm,
        &[
            "install",
            "berth",
            &chart(),
            "--namespace",
            &ns,
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--set",
            &format!("watchNamespace={ns}"),
            "--set",
            "crds.enabled=false",
            "--set",
            "image.repository=localhost/berth/operator",
            "--set",
            "image.tag=e2e",
            "--set",
            "registryImage.repository=localhost/berth/registry",
            "--set",
            "registryImage.tag=e2e",
            "--wait",
            "--timeout",
            "90s",
        ],
        None,
    );
    // The chart's own Deployment comes up (on the kwok node nothing really runs).
    let deployment: Deployment = env.api().get("berth-berth-operator").await.unwrap();
    assert_eq!(deployment.status.unwrap().available_replicas, Some(2));

    // Two real operator processes with exactly the chart's permissions.
    let dir = tempfile::tempdir().unwrap();
    let sa_kubeconfig = service_account_kubeconfig(&env, "berth-berth-operator", dir.path()).await;
    let mut first = start_operator(&sa_kubeconfig, &ns, "operator-a");
    let mut second = start_operator(&sa_kubeconfig, &ns, "operator-b");

    env.apply_yaml(&Env::example("htpasswd-users.yaml")).await;
    env.wait_ready("team").await;
    let leases: Api<Lease> = env.api();
    let holder = leases
        .get("berth-operator-leader")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity
        .unwrap();
    let (leader, standby) = if holder == "operator-a" {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert!(leader.reconciles().await > 0, "the leader reconciles");
    assert_eq!(standby.reconciles().await, 0, "the standby does not");

    // The leader stops (releasing the Lease); the standby takes over and reconciles new work.
    leader.terminate();
    env.apply_yaml(&Env::example("minimal.yaml")).await;
    env.wait_ready("minimal").await;
    assert!(
        standby.reconciles().await > 0,
        "the former standby took over"
    );
    let new_holder = leases
        .get("berth-operator-leader")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    assert_ne!(new_holder.as_deref(), Some(holder.as_str()));
    tokio::time::timeout(Duration::from_secs(5), env.finish())
        .await
        .ok();
}
