//! More real clients: podman push/pull (Debian), crane copy/catalog/ls, and
//! an ORAS artifact attached with a `subject`, discovered through the
//! referrers API. crane and oras come from `scripts/install-go-tools`
//! (on PATH, or in ~/.cache/berth/bin).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::layout;
use common::*;
use serde_json::Value;

/// Finds a tool on PATH or in the project's tool cache.
fn tool(name: &str) -> PathBuf {
    if let Some(found) = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
    {
        return found;
    }
    let cache = std::env::var_os("BERTH_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/berth"));
    let cached = cache.join("bin").join(name);
    assert!(
        cached.is_file(),
        "{name} not found: run scripts/install-go-tools (or scripts/setup)"
    );
    cached
}

fn run(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// podman with its own vfs storage, so tests neither need nor touch the host's.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Self {
        Podman {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let root = self.dir.path().join("root");
        let runroot = self.dir.path().join("runroot");
        let mut all = vec![
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            runroot.to_str().unwrap(),
            "--storage-driver",
            "vfs",
        ];
        all.extend_from_slice(args);
        run(Path::new("podman"), &all)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_pushes_and_pulls() {
    let registry = TestRegistry::start().await;
    // podman names an `oci:` image after its path, which must then be lowercase.
    let work = tempfile::Builder::new()
        .prefix("berth-podman-")
        .rand_bytes(0)
        .suffix(&format!("{:x}", rand::random::<u64>()))
        .tempdir()
        .unwrap();
    let source = work.path().join("layout");
    layout::single_image(&source, "v1", 2, 50_000);

    let podman = Podman::new();
    podman.run(&["pull", "-q", &format!("oci:{}:v1", source.display())]);
    let image_id = podman
        .run(&["images", "-q"])
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let reference = format!("{}/podman/image:v1", registry.host());
    podman.run(&[
        "push",
        "-q",
        "--tls-verify=false",
        &image_id,
        &format!("docker://{reference}"),
    ]);
    // podman may re-encode the manifest; the registry must serve what podman pushed.
    let response = registry.get("/v2/podman/image/manifests/v1").await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    let fresh = Podman::new();
    fresh.run(&["pull", "-q", "--tls-verify=false", &reference]);
    let inspected: Value =
        serde_json::from_str(&fresh.run(&["image", "inspect", &reference])).unwrap();
    // Same image (config digest) after the round trip; `images -q` prints a short id.
    assert!(inspected[0]["Id"].as_str().unwrap().starts_with(&image_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crane_copies_lists_and_reports_digests() {
    let registry = TestRegistry::start().await;
    let crane = tool("crane");
    let (digest, _) = registry
        .push_image("crane/source", "v1", &[b"layer one", b"layer two"])
        .await;
    let host = registry.host();

    run(
        &crane,
        &[
            "copy",
            "--insecure",
            &format!("{host}/crane/source:v1"),
            &format!("{host}/crane/target:v2"),
        ],
    );
    assert_eq!(
        run(
            &crane,
            &["digest", "--insecure", &format!("{host}/crane/target:v2")]
        )
        .trim(),
        digest.to_string()
    );
    // The copy mounted blobs across repositories instead of re-uploading them.
    let tags = run(
        &crane,
        &["ls", "--insecure", &format!("{host}/crane/target")],
    );
    assert_eq!(tags.lines().collect::<Vec<_>>(), ["v2"]);
    let catalog = run(&crane, &["catalog", "--insecure", &host]);
    assert_eq!(
        catalog.lines().collect::<Vec<_>>(),
        ["crane/source", "crane/target"]
    );
    run(
        &crane,
        &[
            "tag",
            "--insecure",
            &format!("{host}/crane/target:v2"),
            "v3",
        ],
    );
    let tags = run(
        &crane,
        &["ls", "--insecure", &format!("{host}/crane/target")],
    );
    assert_eq!(tags.lines().collect::<Vec<_>>(), ["v2", "v3"]);
    run(
        &crane,
        &[
            "delete",
            "--insecure",
            &format!("{host}/crane/target@{digest}"),
        ],
    );
    let response = registry.get("/v2/crane/target/manifests/v2").await;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_artifact_with_subject_is_found_through_the_referrers_api() {
    let registry = TestRegistry::start().await;
    let oras = tool("oras");
    let (subject, _) = registry.push_image("oras/app", "v1", &[b"app layer"]).await;
    let work = tempfile::tempdir().unwrap();
    let sbom = work.path().join("sbom.json");
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    let target = format!("{}/oras/app:v1", registry.host());

    // oras works relative to the file's directory.
    let output = Command::new(&oras)
        .current_dir(work.path())
        .args([
            "attach",
            "--plain-http",
            "--artifact-type",
            "application/spdx+json",
            &target,
            "sbom.json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let discovered: Value = serde_json::from_str(&run(
        &oras,
        &["discover", "--plain-http", "--format", "json", &target],
    ))
    .unwrap();
    let referrers = discovered["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 1);
    assert_eq!(referrers[0]["artifactType"], "application/spdx+json");

    // Served by the referrers API itself (not the tag fallback: no such tag exists).
    let index: Value = registry
        .get(&format!("/v2/oras/app/referrers/{subject}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(index["manifests"][0]["digest"], referrers[0]["digest"]);
    let tags: Value = registry
        .get("/v2/oras/app/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
}
