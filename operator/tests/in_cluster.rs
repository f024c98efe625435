//! The main use, for real, on the local cluster's real node: `helm install` of the chart with the
//! images `scripts/images` built (the operator runs as a pod, leader election on), a Registry
//! with htpasswd users, operator-made TLS, a PVC and node access in a namespace enforcing the
//! `restricted` Pod Security level; a push from the host through `kubectl port-forward` trusting
//! the CA the operator publishes; a pod whose image is `<status.endpoint>/...` pulled with an
//! imagePullSecret and TLS verified; the GC CronJob run as a Job; a password rotation without a
//! restart; deletion and `helm uninstall` leaving only the retained PVC.
//!
//! Needs the real node (`e2e/cluster up`) and the images: `scripts/test` runs it with
//! `cargo test -p operator --test in_cluster -- --ignored --nocapture` and prints the timings.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::in_cluster::*;
use common::{eventually, install_crd};
use e2e::Cluster;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use operator::crd::Registry;

const REGISTRY: &str = "main";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real node and the images: scripts/test runs it (in-cluster phase)"]
async fn helm_install_push_pull_gc_rotate_uninstall() {
    e2e::init_tracing_with(module_path!());
    let cluster = Cluster::shared().await.expect("a cluster (e2e/cluster up)");
    let client = cluster.client();
    assert_real_node_ready(&client).await;
    install_crd(&cluster).await;
    let (kubectl, helm) = (cluster.tool("kubectl"), cluster.tool("helm"));
    let kubeconfig = cluster.kubeconfig_path().unwrap().display().to_string();
    let images = repo().join("scripts/images");
    // Cluster-scoped objects carry the release name: unique per run (the chart test installs "berth").
    let release = format!("berth-{}", e2e::random_suffix(5));
    let version = env!("CARGO_PKG_VERSION");

    // The images, built without a daemon and loaded into the node's containerd.
    let containerd = cluster
        .containerd_address()
        .expect("CONTAINERD_ADDRESS of the real node")
        .display()
        .to_string();
    let env = [("CONTAINERD_ADDRESS", containerd.as_str())];
    // (Built before the test: `scripts/images build`, which scripts/test runs; building from
    // inside cargo would wait on cargo's own build lock.)
    must(&images, &["load", "registry", "operator"], &env);
    let work = tempfile::tempdir().unwrap();
    let probe = work.path().join("probe.tar");
    let stale = work.path().join("stale.tar");
    must(&images, &["probe", probe.to_str().unwrap(), "1"], &env);
    must(&images, &["probe", stale.to_str().unwrap(), "stale"], &env);

    // Two namespaces: the release's, and the Registry's (restricted, sent to the real node).
    let release_ns = cluster.namespace("in-cluster-system").await.unwrap();
    let ns = cluster.namespace("in-cluster").await.unwrap();
    restricted_real_node_namespace(&client, ns.name()).await;
    let secrets: Api<Secret> = ns.api();
    secrets
        .create(
            &PostParams::default(),
            &secret(
                "ci-password",
                "Opaque",
                BTreeMap::from([("password".into(), "first-pass".into())]),
            ),
        )
        .await
        .unwrap();

    // helm install + the Registry: the clock starts.
    let started = Instant::now();
    let mut helm_release =
        install_chart(&helm, &kubeconfig, &release, release_ns.name(), ns.name());
    let registry: Registry = serde_yaml::from_str(&format!(
        "apiVersion: berth.dev/v1alpha1\nkind: Registry\nmetadata: {{name: {REGISTRY}}}\nspec:\n  \
         storage: {{persistentVolume: {{size: 1Gi}}}}\n  \
         auth: {{htpasswd: {{users: [{{name: ci, passwordSecretRef: {{name: ci-password, key: password}}}}]}}}}\n  \
         gc: {{deleteUntagged: true}}\n  nodeAccess: {{enabled: true}}\n"
    ))
    .unwrap();
    let registries: Api<Registry> = ns.api();
    registries
        .create(&PostParams::default(), &registry)
        .await
        .unwrap();

    let ready = eventually("the Registry to be Ready", WAIT, || async {
        let r = registries.get(REGISTRY).await.ok()?;
        common::condition(&r, "Ready").filter(|c| c.status == "True")?;
        Some(r)
    })
    .await;
    let status = ready.status.clone().unwrap();
    let endpoint = status.endpoint.clone().unwrap();
    let host = endpoint.trim_start_matches("https://").to_owned();
    assert_eq!(host, format!("{REGISTRY}.{}.svc:5000", ns.name()));

    // Push from the host through port-forward, trusting the CA the operator publishes.
    let ca_secret = secrets
        .get(
            status
                .tls
                .as_ref()
                .unwrap()
                .ca_secret_name
                .as_ref()
                .unwrap(),
        )
        .await
        .unwrap();
    let certs = work.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), &ca_secret.data.unwrap()["ca.crt"].0).unwrap();
    let forward = port_forward(&kubectl, &kubeconfig, ns.name(), &format!("svc/{REGISTRY}"));
    let local = format!("127.0.0.1:{}", forward.port);
    let skopeo = PathBuf::from("skopeo");
    let certs_arg = format!("--dest-cert-dir={}", certs.display());
    let push = |archive: &Path, tag: &str, password: &str| {
        run(
            &skopeo,
            &[
                "copy",
                "--quiet",
                &certs_arg,
                &format!("--dest-creds=ci:{password}"),
                &format!("oci-archive:{}", archive.display()),
                &format!("docker://{local}/e2e/probe:{tag}"),
            ],
            &[],
        )
    };
    retry("the first push", Duration::from_secs(60), || {
        push(&probe, "1", "first-pass")
    })
    .await;
    let to_push = started.elapsed();
    tracing::info!(
        "helm install + kubectl apply -> first push: {:.1}s",
        to_push.as_secs_f64()
    );

    // A pod on the real node pulls <status.endpoint>/e2e/probe:1 with the pull secret, TLS verified.
    let pods: Api<Pod> = ns.api();
    secrets
        .create(
            &PostParams::default(),
            &pull_secret(&host, "ci", "first-pass"),
        )
        .await
        .unwrap();
    let log = run_pod(&pods, probe_pod("pull-1", &format!("{host}/e2e/probe:1"))).await;
    let to_pull = started.elapsed();
    assert!(
        log.contains(version),
        "the probe prints the registry version: {log:?}"
    );
    tracing::info!(
        "helm install + kubectl apply -> in-cluster pod pulled and ran: {:.1}s",
        to_pull.as_secs_f64()
    );
    let registry_pod = pods
        .list(&ListParams::default().labels("app.kubernetes.io/component=registry"))
        .await
        .unwrap()
        .items
        .pop()
        .expect("the registry pod");
    assert_eq!(
        registry_pod.spec.as_ref().unwrap().node_name.as_deref(),
        Some(REAL_NODE)
    );

    // Garbage collection for real: an image pushed and deleted leaves blobs to sweep.
    push(&stale, "stale", "first-pass").unwrap();
    must(
        &skopeo,
        &[
            "delete",
            &format!("--cert-dir={}", certs.display()),
            "--creds=ci:first-pass",
            &format!("docker://{local}/e2e/probe:stale"),
        ],
        &[],
    );
    let cronjob: CronJob = ns.api().get(&format!("{REGISTRY}-gc")).await.unwrap();
    let template = cronjob.spec.unwrap().job_template;
    let mut job: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "gc-now", "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}},
    }))
    .unwrap();
    job.metadata.labels = template.metadata.and_then(|m| m.labels);
    job.spec = template.spec;
    let jobs: Api<Job> = ns.api();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let gc = eventually("status.gc to report the manual GC run", WAIT, || async {
        let r = registries.get(REGISTRY).await.ok()?;
        let run = r.status?.gc?.last_run?;
        (run.job_name == "gc-now").then_some(run)
    })
    .await;
    assert!(gc.succeeded, "GC failed: {gc:?}");
    assert!(
        gc.blobs_deleted.unwrap_or(0) >= 1,
        "GC swept the deleted image's blobs: {gc:?}"
    );
    let gc_pod = pods
        .list(&ListParams::default().labels("job-name=gc-now"))
        .await
        .unwrap()
        .items
        .pop()
        .unwrap();
    assert_eq!(gc_pod.spec.unwrap().node_name.as_deref(), Some(REAL_NODE));
    tracing::info!("GC Job ran on {REAL_NODE}: {gc:?}");
    // The kept image still pulls after GC, from the registry (the node's copy is removed first).
    must(
        Path::new("ctr"),
        &[
            "--address",
            &containerd,
            "-n",
            "k8s.io",
            "images",
            "rm",
            "--sync",
            &format!("{host}/e2e/probe:1"),
        ],
        &[],
    );
    run_pod(
        &pods,
        probe_pod("pull-after-gc", &format!("{host}/e2e/probe:1")),
    )
    .await;

    // Password rotation reaches the running registry without a restart.
    let before = (registry_pod.uid(), restarts(&registry_pod));
    let patch = serde_json::json!({"stringData": {"password": "second-pass"}});
    secrets
        .patch(
            "ci-password",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let inspect = |password: &str| {
        run(
            &skopeo,
            &[
                "inspect",
                "--raw",
                &format!("--cert-dir={}", certs.display()),
                &format!("--creds=ci:{password}"),
                &format!("docker://{local}/e2e/probe:1"),
            ],
            &[],
        )
    };
    let rotated = Instant::now();
    retry("the new password to work", WAIT, || inspect("second-pass")).await;
    tracing::info!(
        "password rotation effective after {:.1}s",
        rotated.elapsed().as_secs_f64()
    );
    assert!(
        inspect("first-pass").is_err(),
        "the old password no longer works"
    );
    secrets
        .delete("pull", &DeleteParams::default())
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &pull_secret(&host, "ci", "second-pass"),
        )
        .await
        .unwrap();
    run_pod(
        &pods,
        probe_pod("pull-rotated", &format!("{host}/e2e/probe:1")),
    )
    .await;
    let after = pods.get(&registry_pod.name_any()).await.unwrap();
    assert_eq!(
        (after.uid(), restarts(&after)),
        before,
        "the registry pod was not restarted"
    );
    drop(forward);

    // Deleting the Registry and uninstalling the chart leaves only the retained claim.
    registries
        .delete(REGISTRY, &DeleteParams::foreground())
        .await
        .unwrap();
    let hosts_file = Path::new(&containerd).with_file_name("etc/hosts");
    eventually("the node to forget the Registry", WAIT, || async {
        let gone = registries.get_opt(REGISTRY).await.ok()?.is_none()
            && !std::fs::read_to_string(&hosts_file)
                .ok()?
                .contains(&host.replace(":5000", ""));
        gone.then_some(())
    })
    .await;
    helm_release.uninstall();
    for p in ["pull-1", "pull-after-gc", "pull-rotated"] {
        pods.delete(p, &DeleteParams::default()).await.unwrap();
    }
    jobs.delete("gc-now", &DeleteParams::background())
        .await
        .ok();
    for s in ["pull", "ci-password"] {
        secrets.delete(s, &DeleteParams::default()).await.unwrap();
    }
    eventually("only the retained claim to be left", WAIT, || async {
        let left = leftovers(&client, ns.name()).await;
        let system = leftovers(&client, release_ns.name()).await;
        tracing::debug!(?left, ?system, "left over");
        (left == [format!("PersistentVolumeClaim/{REGISTRY}-data")] && system.is_empty())
            .then_some(())
    })
    .await;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let view = format!("{release}-berth-operator-registries-view");
    assert!(
        roles.get_opt(&view).await.unwrap().is_none(),
        "{view} is gone"
    );
    ns.cleanup().await.ok();
    release_ns.cleanup().await.ok();
    tracing::info!(
        "timings: first push {:.1}s, in-cluster pull {:.1}s after helm install + kubectl apply",
        to_push.as_secs_f64(),
        to_pull.as_secs_f64()
    );
}
