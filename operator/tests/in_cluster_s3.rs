//! Object storage for real, on the local cluster's real node: the operator (installed by the
//! chart) runs a two-replica Registry on S3 — SeaweedFS, reached by the pods at the node's
//! address — and another on the OSS form (path style to the same server), with htpasswd, the
//! operator's TLS and restricted Pod Security. An upload's chunks alternate between the two
//! replicas' pods; a pod on the node pulls an image by `status.endpoint`; the GC Job runs
//! against the bucket; what the registries wrote is in the bucket under their prefixes, in
//! distribution's layout.
//!
//! Part of `scripts/test`'s in-cluster phase; by hand, after `e2e/cluster up` and
//! `scripts/images build`: `cargo test -p operator --test in_cluster_s3 -- --ignored --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::in_cluster::*;
use common::{eventually, install_crd};
use e2e::Cluster;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use operator::crd::Registry;
use registry::oci::Algorithm;
use registry::storage::Storage;

const SHARED: &str = "shared";
const OSS: &str = "oss";

fn registry_yaml(name: &str, replicas: u32, storage: &str) -> Registry {
    serde_yaml::from_str(&format!(
        "apiVersion: berth.dev/v1alpha1\nkind: Registry\nmetadata: {{name: {name}}}\nspec:\n  \
         replicas: {replicas}\n  storage: {storage}\n  \
         auth: {{htpasswd: {{users: [{{name: ci, passwordSecretRef: {{name: ci-password, key: password}}}}]}}}}\n  \
         gc: {{deleteUntagged: true}}\n  nodeAccess: {{enabled: true}}\n"
    ))
    .unwrap()
}

/// A client for the registry's API through a port-forward: the operator's CA, basic auth.
fn api_client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real node and the images (scripts/test runs it)"]
async fn s3_and_oss_registries_serve_replicated_on_the_real_node() {
    e2e::init_tracing_with(module_path!());
    let cluster = Cluster::shared().await.expect("a cluster (e2e/cluster up)");
    let client = cluster.client();
    assert_real_node_ready(&client).await;
    install_crd(&cluster).await;
    let (kubectl, helm) = (cluster.tool("kubectl"), cluster.tool("helm"));
    let kubeconfig = cluster.kubeconfig_path().unwrap().display().to_string();
    let containerd = cluster
        .containerd_address()
        .expect("CONTAINERD_ADDRESS of the real node")
        .display()
        .to_string();
    let images = repo().join("scripts/images");
    let env = [("CONTAINERD_ADDRESS", containerd.as_str())];
    must(&images, &["load", "registry", "operator"], &env);
    let work = tempfile::tempdir().unwrap();
    let probe = work.path().join("probe.tar");
    must(&images, &["probe", probe.to_str().unwrap(), "s3"], &env);

    // The bucket, where pods reach it.
    let s3 = NodeS3::start(e2e::node::config::NODE_IP);
    let prefix = format!("in-cluster-{}", e2e::random_suffix(6));

    let release_ns = cluster.namespace("s3-system").await.unwrap();
    let ns = cluster.namespace("s3").await.unwrap();
    restricted_real_node_namespace(&client, ns.name()).await;
    let secrets: Api<Secret> = ns.api();
    for (name, data) in [
        (
            "ci-password",
            BTreeMap::from([("password".to_owned(), "s3-pass".to_owned())]),
        ),
        (
            "s3-credentials",
            BTreeMap::from([
                ("AWS_ACCESS_KEY_ID".to_owned(), s3.access_key.clone()),
                ("AWS_SECRET_ACCESS_KEY".to_owned(), s3.secret_key.clone()),
            ]),
        ),
        (
            "oss-credentials",
            BTreeMap::from([
                ("accessKeyId".to_owned(), s3.access_key.clone()),
                ("accessKeySecret".to_owned(), s3.secret_key.clone()),
            ]),
        ),
    ] {
        secrets
            .create(&PostParams::default(), &secret(name, "Opaque", data))
            .await
            .unwrap();
    }
    let release = format!("berth-s3-{}", e2e::random_suffix(5));
    let mut helm_release =
        install_chart(&helm, &kubeconfig, &release, release_ns.name(), ns.name());

    let registries: Api<Registry> = ns.api();
    let shared = registry_yaml(
        SHARED,
        2,
        &format!(
            "{{s3: {{bucket: {}, region: {}, endpoint: '{}', rootDirectory: /{prefix}/s3, credentialsSecretRef: {{name: s3-credentials}}}}}}",
            s3.bucket, s3.region, s3.endpoint
        ),
    );
    let oss = registry_yaml(
        OSS,
        1,
        &format!(
            "{{oss: {{bucket: {}, region: oss-{}, endpoint: '{}', secure: false, rootDirectory: /{prefix}/oss, credentialsSecretRef: {{name: oss-credentials}}}}}}",
            s3.bucket,
            s3.region,
            s3.endpoint.trim_start_matches("http://")
        ),
    );
    for registry in [&shared, &oss] {
        registries
            .create(&PostParams::default(), registry)
            .await
            .unwrap();
    }
    let mut statuses = BTreeMap::new();
    for (name, replicas) in [(SHARED, 2), (OSS, 1)] {
        let ready = eventually(&format!("Registry {name} to be Ready"), WAIT, || async {
            let r = registries.get(name).await.ok()?;
            common::condition(&r, "Ready").filter(|c| c.status == "True")?;
            (r.status.as_ref()?.ready_replicas == Some(replicas)).then_some(r)
        })
        .await;
        let status = ready.status.unwrap();
        assert_eq!(
            status.storage.as_ref().unwrap().type_,
            if name == SHARED { "S3" } else { "OSS" }
        );
        statuses.insert(name, status);
    }
    let pods: Api<Pod> = ns.api();
    let shared_pods: Vec<Pod> = pods
        .list(&ListParams::default().labels(&format!(
            "app.kubernetes.io/component=registry,app.kubernetes.io/instance={SHARED}"
        )))
        .await
        .unwrap()
        .items;
    assert_eq!(shared_pods.len(), 2, "two replicas of {SHARED}");
    for pod in &shared_pods {
        assert_eq!(
            pod.spec.as_ref().unwrap().node_name.as_deref(),
            Some(REAL_NODE)
        );
    }

    // One upload, every chunk to the other replica's pod (no sticky sessions).
    let ca_of = |status: &operator::crd::RegistryStatus| {
        let name = status.tls.as_ref().unwrap().ca_secret_name.clone().unwrap();
        let secrets = secrets.clone();
        async move {
            secrets.get(&name).await.unwrap().data.unwrap()["ca.crt"]
                .0
                .clone()
        }
    };
    let shared_ca = ca_of(&statuses[SHARED]).await;
    let forwards: Vec<PortForward> = shared_pods
        .iter()
        .map(|p| {
            port_forward(
                &kubectl,
                &kubeconfig,
                ns.name(),
                &format!("pod/{}", p.name_any()),
            )
        })
        .collect();
    let bases: Vec<String> = forwards
        .iter()
        .map(|f| format!("https://127.0.0.1:{}", f.port))
        .collect();
    let http = api_client(&shared_ca);
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = Algorithm::Sha256.digest_of(&data);
    let session = retry_async("an upload session on the first replica", || {
        let request = http
            .post(format!("{}/v2/e2e/chunks/blobs/uploads/", bases[0]))
            .basic_auth("ci", Some("s3-pass"));
        async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            if response.status() != 202 {
                return Err(format!("{}", response.status()));
            }
            Ok(response.headers()["location"].to_str().unwrap().to_owned())
        }
    })
    .await;
    let chunk = 3 * 1024 * 1024 + 17;
    for (i, piece) in data.chunks(chunk).enumerate() {
        let start = i * chunk;
        let response = http
            .patch(format!("{}{session}", bases[(i + 1) % 2]))
            .basic_auth("ci", Some("s3-pass"))
            .header(
                "content-range",
                format!("{start}-{}", start + piece.len() - 1),
            )
            .header("content-type", "application/octet-stream")
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "chunk {i}");
    }
    let completed = http
        .put(format!("{}{session}?digest={digest}", bases[0]))
        .basic_auth("ci", Some("s3-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), 201);
    for base in &bases {
        let pulled = http
            .get(format!("{base}/v2/e2e/chunks/blobs/{digest}"))
            .basic_auth("ci", Some("s3-pass"))
            .send()
            .await
            .unwrap();
        assert_eq!(pulled.status(), 200);
        assert!(
            pulled.bytes().await.unwrap() == data,
            "blob differs from {base}"
        );
    }

    // An image pushed through one replica runs on the node, pulled by status.endpoint.
    let certs = work.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), &shared_ca).unwrap();
    let skopeo = PathBuf::from("skopeo");
    let push = |port: u16, certs: &Path| {
        run(
            &skopeo,
            &[
                "copy",
                "--quiet",
                &format!("--dest-cert-dir={}", certs.display()),
                "--dest-creds=ci:s3-pass",
                &format!("oci-archive:{}", probe.display()),
                &format!("docker://127.0.0.1:{port}/e2e/probe:s3"),
            ],
            &[],
        )
    };
    retry(
        "the push to the S3 registry",
        Duration::from_secs(60),
        || push(forwards[1].port, &certs),
    )
    .await;
    let host = statuses[SHARED]
        .endpoint
        .clone()
        .unwrap()
        .trim_start_matches("https://")
        .to_owned();
    secrets
        .create(&PostParams::default(), &pull_secret(&host, "ci", "s3-pass"))
        .await
        .unwrap();
    let log = run_pod(&pods, probe_pod("pull-s3", &format!("{host}/e2e/probe:s3"))).await;
    assert!(log.contains(env!("CARGO_PKG_VERSION")), "{log:?}");
    drop(forwards);

    // The OSS form stores and serves too.
    let oss_certs = work.path().join("oss-certs");
    std::fs::create_dir_all(&oss_certs).unwrap();
    std::fs::write(oss_certs.join("ca.crt"), ca_of(&statuses[OSS]).await).unwrap();
    let oss_forward = port_forward(&kubectl, &kubeconfig, ns.name(), &format!("svc/{OSS}"));
    retry(
        "the push to the OSS registry",
        Duration::from_secs(60),
        || push(oss_forward.port, &oss_certs),
    )
    .await;
    let inspected = must(
        &skopeo,
        &[
            "inspect",
            "--raw",
            &format!("--cert-dir={}", oss_certs.display()),
            "--creds=ci:s3-pass",
            &format!("docker://127.0.0.1:{}/e2e/probe:s3", oss_forward.port),
        ],
        &[],
    );
    drop(oss_forward);

    // What the pods wrote is in the bucket, in distribution's layout under each prefix.
    for (section, root) in [
        ("s3", format!("/{prefix}/s3")),
        ("oss", format!("/{prefix}/oss")),
    ] {
        let config = registry::config::S3Config {
            bucket: s3.bucket.clone(),
            region: Some(s3.region.clone()),
            regionendpoint: Some(s3.endpoint.clone()),
            accesskey: Some(s3.access_key.clone()),
            secretkey: Some(s3.secret_key.clone()),
            rootdirectory: Some(root),
            ..Default::default()
        };
        let storage = registry::storage::s3::S3Storage::open(
            registry::storage::s3::settings::BucketSettings::from_s3(&config).unwrap(),
        )
        .unwrap();
        let manifest = Algorithm::Sha256.digest_of(inspected.as_bytes());
        let link = storage
            .get(&format!(
                "docker/registry/v2/repositories/e2e/probe/_manifests/revisions/sha256/{}/link",
                manifest.hex()
            ))
            .await
            .unwrap_or_else(|e| panic!("{section}: the manifest's revision link: {e}"));
        assert_eq!(
            std::str::from_utf8(&link).unwrap(),
            manifest.to_string(),
            "{section}"
        );
    }

    // Garbage collection against the bucket, as a Job on the node.
    let cronjob: CronJob = ns.api().get(&format!("{SHARED}-gc")).await.unwrap();
    let template = cronjob.spec.unwrap().job_template;
    let mut job: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "gc-s3", "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}},
    }))
    .unwrap();
    job.metadata.labels = template.metadata.and_then(|m| m.labels);
    job.spec = template.spec;
    let jobs: Api<Job> = ns.api();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let gc = eventually("status.gc of the S3 registry", WAIT, || async {
        let run = registries.get(SHARED).await.ok()?.status?.gc?.last_run?;
        (run.job_name == "gc-s3").then_some(run)
    })
    .await;
    assert!(gc.succeeded, "GC on S3 failed: {gc:?}");

    for name in [SHARED, OSS] {
        registries
            .delete(name, &DeleteParams::foreground())
            .await
            .unwrap();
    }
    eventually("the Registries to go", WAIT, || async {
        let left = registries.list(&ListParams::default()).await.ok()?.items;
        left.is_empty().then_some(())
    })
    .await;
    helm_release.uninstall();
    pods.delete("pull-s3", &DeleteParams::default()).await.ok();
    jobs.delete("gc-s3", &DeleteParams::background()).await.ok();
    ns.cleanup().await.ok();
    release_ns.cleanup().await.ok();
}

/// Retries an async `f` until it succeeds; fails with its last error after a minute.
async fn retry_async<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match f().await {
            Ok(value) => return value,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("timed out waiting for {what}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
