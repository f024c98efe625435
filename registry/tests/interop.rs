//! Interoperability with real clients and the Go reference registry:
//! skopeo copies images in and out byte-identically, and Debian's
//! `docker-registry` serves the same storage as Berth (a directory, or with
//! `BERTH_TEST_STORAGE=seaweedfs` one bucket through its s3-aws driver).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::layout;
use common::*;

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (see .ci/run): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn skopeo(args: &[&str]) -> String {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    run("skopeo", &all)
}

/// `skopeo inspect --raw` of a reference: the stored manifest bytes.
fn raw_manifest(reference: &str) -> Vec<u8> {
    skopeo(&["inspect", "--raw", "--tls-verify=false", reference]).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trips_a_multi_layer_image() {
    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    let digest = layout::single_image(&source, "v1", 4, 300_000);
    let target = format!("docker://{}/interop/image:v1", registry.host());

    let src_ref = format!("oci:{}:v1", source.display());
    skopeo(&["copy", "--dest-tls-verify=false", &src_ref, &target]);
    let raw = raw_manifest(&target);
    assert_eq!(registry::oci::Algorithm::Sha256.digest_of(&raw), digest);

    let out = work.path().join("out");
    let out_ref = format!("oci:{}:v1", out.display());
    skopeo(&["copy", "--src-tls-verify=false", &target, &out_ref]);
    assert_eq!(layout::blob_set(&out), layout::blob_set(&source));
    for blob in layout::blob_set(&source) {
        assert_eq!(
            std::fs::read(out.join("blobs/sha256").join(&blob)).unwrap(),
            std::fs::read(source.join("blobs/sha256").join(&blob)).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trips_a_multi_arch_index() {
    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    let digest = layout::multi_arch(&source, "multi", &["amd64", "arm64", "s390x"]);
    let target = format!("docker://{}/interop/multi:multi", registry.host());
    let src_ref = format!("oci:{}:multi", source.display());
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &src_ref,
        &target,
    ]);

    let raw = raw_manifest(&target);
    assert_eq!(registry::oci::Algorithm::Sha256.digest_of(&raw), digest);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
    // Each platform resolves through the index.
    let arm = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--override-arch",
        "arm64",
        &target,
    ]);
    assert!(arm.contains("\"Architecture\": \"arm64\""), "{arm}");

    let out = work.path().join("out");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &target,
        &format!("oci:{}:multi", out.display()),
    ]);
    assert_eq!(layout::blob_set(&out), layout::blob_set(&source));
}

/// Debian's `docker-registry` (distribution 2.8) serving `root` (a directory,
/// or the same bucket prefix Berth uses under `BERTH_TEST_STORAGE`) on a free port.
struct Distribution {
    child: Child,
    host: String,
    _config: tempfile::NamedTempFile,
}

impl Distribution {
    async fn start(root: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            config.path(),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n{}  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                distribution_storage_yaml(root)
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", config.path().to_str().unwrap()])
            // Its s3 driver refuses to start with a custom CA bundle set.
            .env_remove("AWS_CA_BUNDLE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package) must be installed (see .ci/run)");
        let host = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("http://{host}/v2/")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Distribution {
            child,
            host,
            _config: config,
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_and_berth_share_one_storage_directory() {
    let registry = TestRegistry::start().await;
    let distribution = Distribution::start(&registry.root).await;
    let work = tempfile::tempdir().unwrap();

    // Pushed through distribution, pulled through Berth.
    let a = work.path().join("a");
    let a_digest = layout::single_image(&a, "v1", 3, 100_000);
    let via_go = format!("docker://{}/shared/from-go:v1", distribution.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", a.display()),
        &via_go,
    ]);
    let via_berth = format!("docker://{}/shared/from-go:v1", registry.host());
    assert_eq!(
        registry::oci::Algorithm::Sha256.digest_of(&raw_manifest(&via_berth)),
        a_digest
    );
    let pulled = work.path().join("a-out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &via_berth,
        &format!("oci:{}:v1", pulled.display()),
    ]);
    assert_eq!(layout::blob_set(&pulled), layout::blob_set(&a));

    // Pushed through Berth (including a multi-arch index), pulled through distribution.
    let b = work.path().join("b");
    let b_digest = layout::multi_arch(&b, "v2", &["amd64", "arm64"]);
    let via_berth = format!("docker://{}/shared/from-berth:v2", registry.host());
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:v2", b.display()),
        &via_berth,
    ]);
    let via_go = format!("docker://{}/shared/from-berth:v2", distribution.host);
    assert_eq!(
        registry::oci::Algorithm::Sha256.digest_of(&raw_manifest(&via_go)),
        b_digest
    );
    let pulled = work.path().join("b-out");
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &via_go,
        &format!("oci:{}:v2", pulled.display()),
    ]);
    assert_eq!(layout::blob_set(&pulled), layout::blob_set(&b));

    // Both list the same catalog and tags.
    let catalog_go: serde_json::Value =
        reqwest::get(format!("http://{}/v2/_catalog", distribution.host))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let catalog_berth: serde_json::Value = registry.get("/v2/_catalog").await.json().await.unwrap();
    assert_eq!(catalog_go, catalog_berth);
    let tags_go: serde_json::Value = reqwest::get(format!(
        "http://{}/v2/shared/from-berth/tags/list",
        distribution.host
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let tags_berth: serde_json::Value = registry
        .get("/v2/shared/from-berth/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags_go, tags_berth);

    // A tag deleted through Berth is gone for distribution too.
    assert_eq!(
        registry
            .delete("/v2/shared/from-go/manifests/v1")
            .await
            .status(),
        reqwest::StatusCode::ACCEPTED
    );
    let response = reqwest::get(format!(
        "http://{}/v2/shared/from-go/manifests/v1",
        distribution.host
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
}
