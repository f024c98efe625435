//! Compatibility with distribution's GC: Debian's `docker-registry
//! garbage-collect` and Berth's run on copies of one storage produced by real
//! pushes. Without `--delete-untagged` both keep exactly the same blobs; with
//! it Berth keeps a superset — the difference is exactly the content
//! distribution wrongly removes (layers of untagged children of a tagged
//! multi-arch index, and referrers of kept manifests).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::gc::*;
use common::*;
use reqwest::StatusCode;

fn docker_registry_gc(config: &Path, delete_untagged: bool) {
    let mut command = Command::new("docker-registry");
    command.arg("garbage-collect");
    if delete_untagged {
        command.arg("--delete-untagged");
    }
    let output = command
        .arg(config)
        .output()
        .expect("docker-registry (Debian package) must be installed (see .ci/run)");
    assert!(
        output.status.success(),
        "docker-registry garbage-collect failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn copy(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_keeps_a_superset_of_what_distribution_keeps() {
    let registry = TestRegistry::start().await;
    let shared = random_bytes(2000);
    registry
        .push_image("compat/a", "v1", &[&shared, &random_bytes(2000)])
        .await;
    registry.push_image("compat/b", "v1", &[&shared]).await;
    registry
        .push_image("compat/a", "old", &[&random_bytes(2000)])
        .await;
    assert_eq!(
        registry.delete("/v2/compat/a/manifests/old").await.status(),
        StatusCode::ACCEPTED
    );
    let index = push_index(&registry, "compat/multi", "1.0", &["amd64", "arm64"]).await;
    let signature = push_referrer(
        &registry,
        "compat/multi",
        &index,
        "application/vnd.dev.cosign.signature",
    )
    .await;
    registry.push_blob("compat/a", &random_bytes(100)).await;
    let root = registry.root.clone();
    let work = tempfile::tempdir().unwrap();

    let mut kept = Vec::new();
    for delete_untagged in [false, true] {
        let theirs = work.path().join(format!("distribution-{delete_untagged}"));
        let ours = work.path().join(format!("berth-{delete_untagged}"));
        copy(&root, &theirs);
        copy(&root, &ours);
        docker_registry_gc(&gc_config(work.path(), &theirs, ""), delete_untagged);
        let mut args = vec!["-q", "--grace-period", "0s"];
        if delete_untagged {
            args.push("-m");
        }
        run_gc(&gc_config(work.path(), &ours, ""), &args)
            .await
            .assert_ok();
        kept.push((stored_blobs(&theirs), stored_blobs(&ours)));
    }

    let all = stored_blobs(&root);
    let (theirs, ours) = &kept[0];
    assert_eq!(ours, theirs, "without -m both keep the same blobs");
    assert_eq!(all.len() - ours.len(), 1, "only the orphan goes");

    let (theirs, ours) = &kept[1];
    assert!(
        ours.is_superset(theirs),
        "Berth keeps everything distribution keeps"
    );
    let extra: BTreeSet<&String> = ours.difference(theirs).collect();
    // What only Berth keeps: the index children's configs and layers (2 + 2 +
    // the shared base layer) and the signature with its two blobs.
    assert!(extra.contains(&signature.to_string()), "{extra:?}");
    assert_eq!(extra.len(), 5 + 3, "{extra:?}");
    // Both drop the untagged image and the orphan.
    assert_eq!(all.len() - ours.len(), 3 + 1);

    // Berth's result is complete: every tag in the -m copy pulls and verifies.
    let check = TestRegistry::start_on(
        &work.path().join("berth-true"),
        &config_yaml(&work.path().join("berth-true"), ""),
    )
    .await;
    assert_eq!(pull_every_tag(&check).await.0, 3);
}
