//! Garbage collection on real storage through the real `registry
//! garbage-collect` binary, with a live registry on the same root. After
//! every collection every remaining tag is pulled and every digest verified.
//! Reads racing a collection and API deletes get the whole object or a 404,
//! and a download whose blob goes (or is cut short) never ends cleanly short.
//!
//! Storage is inspected and planted only through the `Storage` trait, so the
//! suite runs on the filesystem and, with `BERTH_TEST_STORAGE=seaweedfs` or
//! `moto`, on S3.

mod common;

use std::time::Duration;

use common::gc::*;
use common::*;
use registry::maintenance::lock_path;
use registry::oci::Digest;
use reqwest::{Method, StatusCode};

/// Config for a registry that notices the maintenance lock quickly.
fn fast_lock(root: &std::path::Path) -> String {
    config_yaml(root, "").replace(
        "  delete:",
        "  maintenance:\n    lock:\n      pollinterval: 100ms\n  delete:",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagging_one_image_frees_only_what_nothing_else_uses() {
    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");
    let shared = random_bytes(4096);
    let only_a = random_bytes(4096);
    let only_old = random_bytes(4096);
    registry
        .push_image("team/a", "v1", &[&shared, &only_a])
        .await;
    registry
        .push_image("team/b", "v1", &[&shared, &random_bytes(100)])
        .await;
    let (old, _) = registry
        .push_image("team/a", "old", &[&shared, &only_old])
        .await;
    let orphan = registry.push_blob("team/a", &random_bytes(1000)).await;
    assert_eq!(
        registry.delete("/v2/team/a/manifests/old").await.status(),
        StatusCode::ACCEPTED
    );

    // Without -m the untagged revision stays (distribution's semantics); only the orphan goes.
    let run = run_gc(&config, &["--grace-period", "0s"]).await;
    run.assert_ok();
    assert_eq!(run.count("manifests_deleted"), 0);
    assert_eq!(run.count("blobs_deleted"), 1);
    assert_eq!(run.count("bytes_freed"), 1000);
    assert_eq!(run.count("repositories"), 2);
    assert!(
        run.stdout.contains(&format!("blob deleted: {orphan}")),
        "{}",
        run.stdout
    );
    assert!(!registry.stored_blobs().await.contains(&orphan.to_string()));
    assert_eq!(
        registry
            .head(&format!("/v2/team/a/manifests/{old}"))
            .await
            .status(),
        StatusCode::OK
    );

    // With -m the untagged image goes, with its own config and layer, not the shared layer.
    let before = registry.stored_blobs().await;
    let run = run_gc(
        &config,
        &["--delete-untagged", "--quiet", "--grace-period", "0s"],
    )
    .await;
    run.assert_ok();
    assert_eq!(run.count("manifests_deleted"), 1);
    assert_eq!(
        run.count("blobs_deleted"),
        3,
        "manifest, config and its own layer"
    );
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "--quiet prints only the summary"
    );
    let after = registry.stored_blobs().await;
    assert_eq!(before.len() - after.len(), 3);
    assert!(!after.contains(&old.to_string()));
    let shared_digest = registry::oci::Algorithm::Sha256
        .digest_of(&shared)
        .to_string();
    assert!(after.contains(&shared_digest));
    assert_eq!(
        registry
            .head(&format!("/v2/team/a/manifests/{old}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let (tags, blobs) = pull_every_tag(&registry).await;
    assert_eq!((tags, blobs), (2, 6));

    // A second run finds nothing more.
    let run = run_gc(&config, &["-m", "-q", "--grace-period", "0s"]).await;
    run.assert_ok();
    assert_eq!(
        run.count("blobs_deleted") + run.count("manifests_deleted"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_multi_arch_index_survives_delete_untagged_intact() {
    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");
    let index = push_index(&registry, "apps/web", "1.0", &["amd64", "arm64", "s390x"]).await;
    let signature = push_referrer(
        &registry,
        "apps/web",
        &index,
        "application/vnd.dev.cosign.signature",
    )
    .await;
    // A referrer of a referrer (an attestation about the signature).
    push_referrer(
        &registry,
        "apps/web",
        &signature,
        "application/vnd.example.attestation",
    )
    .await;
    registry
        .push_image("apps/other", "latest", &[&random_bytes(300)])
        .await;
    let stored = registry.stored_blobs().await;

    let run = run_gc(&config, &["-m", "-q", "--grace-period", "0s"]).await;
    run.assert_ok();
    assert_eq!(run.count("manifests_deleted"), 0, "{}", run.stdout);
    assert_eq!(run.count("blobs_deleted"), 0);
    assert_eq!(registry.stored_blobs().await, stored);
    // Every platform, the signature and the attestation pull and verify.
    let verified = pull_everything(&registry, "apps/web", "1.0").await;
    assert_eq!(
        verified,
        3 * 3 + 2 * 2,
        "3 platforms x (config + 2 layers) + 2 referrers x 2 blobs"
    );
    let referrers: serde_json::Value = registry
        .get_json(&format!("/v2/apps/web/referrers/{index}"))
        .await;
    assert_eq!(referrers["manifests"][0]["digest"], signature.to_string());

    // Untag the index: children, signature and attestation all become garbage.
    // (The GC above held the maintenance lock: see `delete_after_window`.)
    let untag = delete_after_window(&registry, "/v2/apps/web/manifests/1.0").await;
    let status = untag.status();
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        untag.text().await.unwrap()
    );
    let run = run_gc(&config, &["-m", "-q", "--grace-period", "0s"]).await;
    run.assert_ok();
    assert_eq!(run.count("manifests_deleted"), 1 + 3 + 2);
    let left = registry.stored_blobs().await;
    assert_eq!(left.len(), 3, "only apps/other remains: {left:?}");
    let referrers: serde_json::Value = registry
        .get_json(&format!("/v2/apps/web/referrers/{index}"))
        .await;
    assert_eq!(referrers["manifests"], serde_json::json!([]));
    assert_eq!(pull_every_tag(&registry).await, (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_and_leaves_every_byte() {
    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");
    registry
        .push_image("dry/run", "keep", &[&random_bytes(500)])
        .await;
    let (gone, _) = registry
        .push_image("dry/run", "drop", &[&random_bytes(500)])
        .await;
    registry.delete("/v2/dry/run/manifests/drop").await;
    write_orphan(registry.storage.as_ref(), b"orphan").await;
    let before = snapshot(registry.storage.as_ref()).await;
    assert!(before.len() > 10, "{before:?}");

    let run = run_gc(&config, &["--dry-run", "--delete-untagged"]).await;
    run.assert_ok();
    assert_eq!(run.summary["dry_run"], true);
    assert_eq!(run.count("manifests_deleted"), 1);
    assert_eq!(
        run.count("blobs_deleted"),
        4,
        "manifest, config, layer, orphan"
    );
    assert!(
        run.stdout
            .contains(&format!("manifest eligible for deletion: dry/run@{gone}"))
    );
    assert_eq!(
        snapshot(registry.storage.as_ref()).await,
        before,
        "a dry run changes nothing"
    );
    assert!(
        !lock_exists(registry.storage.as_ref()).await,
        "a dry run takes no lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_during_the_window_are_refused_cleanly_and_succeed_after() {
    let registry = TestRegistry::start_with(fast_lock).await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");
    registry
        .push_image("live/app", "v1", &[&random_bytes(700)])
        .await;
    // An upload begun before the window, completed during it.
    let layer = random_bytes(300);
    let digest = registry::oci::Algorithm::Sha256.digest_of(&layer);
    let started = registry
        .request(Method::POST, "/v2/live/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let patched = registry
        .request(Method::PATCH, &location)
        .body(layer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    let location = patched.headers()["location"].to_str().unwrap().to_owned();

    let gc = gc_command(&config, &["-q", "--grace-period", "3s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Within the poll interval the registry refuses new pushes...
    let refused = uploads_answered(&registry, "live/app", StatusCode::METHOD_NOT_ALLOWED).await;
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNSUPPORTED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("garbage collection")
    );
    // ...and the commit of an upload begun earlier, but the session survives.
    let separator = if location.contains('?') { "&" } else { "?" };
    let completion = registry
        .request(
            Method::PUT,
            &format!("{location}{separator}digest={digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(completion.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Pulls keep working.
    assert_eq!(pull_everything(&registry, "live/app", "v1").await, 2);

    let output = tokio::task::spawn_blocking(move || gc.wait_with_output().unwrap())
        .await
        .unwrap();
    let run = parse_run(&output);
    run.assert_ok();
    uploads_answered(&registry, "live/app", StatusCode::ACCEPTED).await;
    let completion = registry
        .request(
            Method::PUT,
            &format!("{location}{separator}digest={digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        completion.status(),
        StatusCode::CREATED,
        "the session resumes after the window"
    );
    registry.push_image("live/app", "v2", &[&layer]).await;
    assert_eq!(pull_every_tag(&registry).await, (2, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_killed_mid_sweep_leaves_everything_reachable_and_the_next_gc_completes() {
    let registry = TestRegistry::start_with(fast_lock).await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");
    push_index(&registry, "kill/index", "multi", &["amd64", "arm64"]).await;
    registry
        .push_image("kill/app", "v1", &[&random_bytes(900), &random_bytes(900)])
        .await;
    let (dropped, _) = registry
        .push_image("kill/app", "v0", &[&random_bytes(900)])
        .await;
    registry.delete("/v2/kill/app/manifests/v0").await;
    // Enough orphans that the sweep (128 blobs a batch at --concurrency 1)
    // is still running when the kill lands. On S3 a batch is a listing and a
    // stat per blob plus a DeleteObjects, so half as many leave the kill
    // over a dozen batches to spare and keep the test near a minute on moto
    // (which also has the GC size each blob with a stat first).
    let orphans = if registry.on_filesystem() { 4000 } else { 2000 };
    let orphan_digests = write_orphans(registry.storage.as_ref(), orphans).await;
    let sample: Vec<Digest> = orphan_digests.into_iter().step_by(orphans / 64).collect();
    let total = registry.stored_blobs().await.len();

    let mut gc = gc_command(
        &config,
        &[
            "-m",
            "-q",
            "--grace-period",
            "0s",
            "--lock-ttl",
            "2s",
            "--concurrency",
            "1",
        ],
    )
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut killed_at = None;
    for _ in 0..2000 {
        // Until one of a sample of 64 orphans is gone no blob has been swept:
        // a stat per sampled orphan, one at a time, where a full count is a
        // listing per `<xx>` prefix (257 requests, over a second of moto's
        // time, which back to back would starve the GC being watched).
        if how_many_stored(registry.storage.as_ref(), &sample).await == sample.len() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        // Listing only (no stat per blob): it counts at least the blobs still
        // stored, so `left <= killed_at` holds below.
        let left = listed_blob_dirs(registry.storage.as_ref()).await.len();
        if left < total - 50 {
            gc.kill().unwrap();
            killed_at = Some(left);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = gc.wait();
    let killed_at = killed_at.expect("GC started sweeping");
    let left = registry.stored_blobs().await.len();
    assert!(
        left > total - orphans,
        "killed mid-sweep ({killed_at} of {total} left)"
    );
    assert!(left <= killed_at);
    // Everything reachable still pulls while the dead GC's lock is in force.
    assert_eq!(pull_every_tag(&registry).await.0, 2);
    assert!(lock_exists(registry.storage.as_ref()).await);

    // The next GC waits out the expired lock and finishes the job.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let run = run_gc(&config, &["-m", "-q", "--grace-period", "0s"]).await;
    run.assert_ok();
    assert!(run.count("blobs_deleted") > 0);
    assert!(!registry.stored_blobs().await.contains(&dropped.to_string()));
    // The index, 2 children, 2 configs, their shared and own layers (1 + 2);
    // kill/app v1: manifest, config, 2 layers.
    assert_eq!(registry.stored_blobs().await.len(), 8 + 4);
    assert_eq!(pull_every_tag(&registry).await.0, 2);
    assert!(!lock_exists(registry.storage.as_ref()).await);
    // Writes are accepted again once the registry's poll sees the release.
    uploads_answered(&registry, "kill/app", StatusCode::ACCEPTED).await;
    registry
        .push_image("kill/app", "v2", &[&random_bytes(10)])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_mode_takes_no_lock_and_only_deletes_old_content() {
    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");
    registry
        .push_image("online/app", "v1", &[&random_bytes(100)])
        .await;
    let (untagged, _) = registry
        .push_image("online/app", "tmp", &[&random_bytes(100)])
        .await;
    registry.delete("/v2/online/app/manifests/tmp").await;
    let orphan = write_orphan(registry.storage.as_ref(), b"fresh orphan").await;

    let run = run_gc(
        &config,
        &["--mode", "online", "--min-age", "1h", "-m", "-q"],
    )
    .await;
    run.assert_ok();
    assert_eq!(run.summary["mode"], "online");
    assert_eq!(
        run.count("blobs_deleted") + run.count("manifests_deleted"),
        0
    );
    assert_eq!(
        run.count("kept_young"),
        2,
        "the young untagged manifest and the young orphan"
    );

    if registry.on_filesystem() {
        // Age everything by two hours: now it is collectable.
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        for file in tree(&registry.root) {
            let file = std::fs::File::options()
                .write(true)
                .open(registry.root.join(file))
                .unwrap();
            file.set_modified(two_hours_ago).unwrap();
        }
        let run = run_gc(
            &config,
            &["--mode", "online", "--min-age", "1h", "-m", "-q"],
        )
        .await;
        run.assert_ok();
        assert_eq!(run.count("manifests_deleted"), 1);
        assert_eq!(
            run.count("blobs_deleted"),
            4,
            "manifest, config, layer, orphan"
        );
        assert_eq!(run.count("kept_young"), 0);
    } else {
        // Object stores set LastModified themselves and cannot backdate it,
        // so the two-hour ageing above is filesystem-only. Here the content
        // really ages past a short --min-age instead (S3's LastModified has
        // one-second resolution; 6s of waiting against 5s of min-age leaves
        // a second of margin, and the fresh orphan below leaves the run 4s
        // to stat it before it would count as old).
        tokio::time::sleep(Duration::from_secs(6)).await;
        let fresh = write_orphan(registry.storage.as_ref(), b"orphan written just before").await;
        let run = run_gc(
            &config,
            &["--mode", "online", "--min-age", "5s", "-m", "-q"],
        )
        .await;
        run.assert_ok();
        assert_eq!(run.count("manifests_deleted"), 1);
        assert_eq!(
            run.count("blobs_deleted"),
            4,
            "manifest, config, layer, orphan"
        );
        assert_eq!(run.count("kept_young"), 1, "the orphan written just before");
        assert!(registry.stored_blobs().await.contains(&fresh.to_string()));
    }
    let left = registry.stored_blobs().await;
    assert!(!left.contains(&untagged.to_string()) && !left.contains(&orphan.to_string()));
    assert_eq!(pull_every_tag(&registry).await, (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_uploads_are_purged_and_a_held_lock_stops_the_gc() {
    let registry = TestRegistry::start_with(fast_lock).await;
    let work = tempfile::tempdir().unwrap();
    let purge = "  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 1s\n      interval: 24h\n";
    let yaml = config_yaml(&registry.root, "").replace("  delete:", &format!("{purge}  delete:"));
    let config = work.path().join("purge.yml");
    std::fs::write(&config, yaml).unwrap();
    let started = registry
        .request(Method::POST, "/v2/up/load/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let run = run_gc(&config, &["-q", "--grace-period", "0s"]).await;
    run.assert_ok();
    assert_eq!(run.count("uploads_purged"), 1);
    assert_eq!(
        registry.get(&location).await.status(),
        StatusCode::NOT_FOUND
    );

    // Another holder's live lock: the GC refuses, says why, and leaves it alone.
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let record = format!(
        r#"{{"holder":"other-gc","purpose":"garbage collection","acquired_at":0,"expires_at":{expires}}}"#
    );
    registry
        .storage
        .put(&lock_path(), record.clone().into())
        .await
        .unwrap();
    let summary_file = work.path().join("summary.json");
    let run = run_gc(
        &config,
        &["-q", "--summary-file", summary_file.to_str().unwrap()],
    )
    .await;
    assert!(!run.success);
    let error = run.summary["error"].as_str().unwrap().to_owned();
    assert!(error.contains("held by other-gc"), "{error}");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_file).unwrap()).unwrap();
    assert_eq!(written["error"], error.as_str());
    assert_eq!(
        registry.storage.get(&lock_path()).await.unwrap(),
        record.as_bytes(),
        "the other holder's lock is untouched"
    );
    // Meanwhile the live registry refuses writes because of that lock.
    uploads_answered(&registry, "up/load", StatusCode::METHOD_NOT_ALLOWED).await;
}

/// A manifest another tool wrote that GC cannot read (past the manifest depth
/// limit, or not JSON) holds its own repository, whole, with a warning; GC
/// still collects everywhere else. It used to stop the whole run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_manifest_holds_its_repository_and_the_rest_is_collected() {
    use registry::oci::{RepositoryName, Tag};
    use registry::storage::layout;

    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");
    let storage = registry.storage.as_ref();

    registry
        .push_image("held/app", "v1", &[b"held tagged"])
        .await;
    let held_untagged = push_untagged_image(&registry, "held/app", "amd64", &[b"held only"]).await;
    registry
        .push_image("fine/app", "v1", &[b"fine tagged"])
        .await;
    let fine_untagged = push_untagged_image(&registry, "fine/app", "amd64", &[b"fine only"]).await;
    let orphan = write_orphan(storage, b"nobody links me").await;

    // Plant what a push through Berth refuses: 100 levels of nesting in an
    // unknown field, and a tag pointing at a blob that is not JSON at all.
    let deep = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","x":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let deep_digest = write_orphan(storage, deep.as_bytes()).await;
    let not_json = write_orphan(storage, b"\x00 not a manifest").await;
    let held: RepositoryName = "held/app".parse().unwrap();
    let link = |digest: &Digest| bytes::Bytes::from(digest.to_string());
    storage
        .put(
            &layout::revision_link(&held, &deep_digest),
            link(&deep_digest),
        )
        .await
        .unwrap();
    let weird: Tag = "weird".parse().unwrap();
    storage
        .put(&layout::tag_current_link(&held, &weird), link(&not_json))
        .await
        .unwrap();

    let before = registry.stored_blobs().await;
    let run = run_gc(&config, &["--delete-untagged", "--grace-period", "0s"]).await;
    run.assert_ok();
    assert_eq!(run.count("repositories_held"), 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("held/app") && run.stderr.contains("unreadable"),
        "the warning names the repository: {}",
        run.stderr
    );
    // fine/app's untagged image (manifest, config, layer) and the orphan go.
    assert_eq!(run.count("manifests_deleted"), 1);
    assert_eq!(run.count("blobs_deleted"), 4);
    let after = registry.stored_blobs().await;
    assert!(!after.contains(&orphan.to_string()));
    assert!(!after.contains(fine_untagged["digest"].as_str().unwrap()));
    // held/app keeps everything, its untagged image and the unreadable blobs included.
    for kept in [
        held_untagged["digest"].as_str().unwrap().to_owned(),
        deep_digest.to_string(),
        not_json.to_string(),
    ] {
        assert!(after.contains(&kept), "{kept} was deleted");
    }
    assert_eq!(before.len() - after.len(), 4);
    let untagged = held_untagged["digest"].as_str().unwrap();
    assert_eq!(
        pull_everything(&registry, "held/app", untagged).await,
        2,
        "the held repository's untagged image still pulls"
    );
    assert_eq!(pull_everything(&registry, "held/app", "v1").await, 2);
    assert_eq!(pull_everything(&registry, "fine/app", "v1").await, 2);
}

/// Waits up to ten seconds for `condition`.
async fn eventually(condition: impl Fn() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 10s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_returns_only_after_its_background_polling_stopped() {
    use registry::maintenance::MaintenanceLock;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let config = parse(&fast_lock(&root));
    let storage = registry::open_storage(&config).unwrap();
    let server = registry::Registry::build(&config).unwrap();
    let state = server.state.clone();
    let listeners = server.bind().await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listeners, async {
        let _ = stopped.await;
    }));

    // While serving, the lock watch sees a lock come and go.
    let ttl = Duration::from_secs(60);
    let lock = MaintenanceLock::acquire(storage.as_ref(), "gc", ttl)
        .await
        .unwrap();
    eventually(|| state.content.write_policy().is_read_only()).await;
    lock.release(storage.as_ref()).await.unwrap();
    eventually(|| !state.content.write_policy().is_read_only()).await;

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    let _lock = MaintenanceLock::acquire(storage.as_ref(), "gc", ttl)
        .await
        .unwrap();
    // Ten poll intervals: a watch still running would have seen this lock.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!state.content.write_policy().is_read_only());
}

/// One object the readers below fetch: a manifest by tag or digest, or a
/// blob through one repository.
#[derive(Debug, Clone)]
struct Target {
    path: String,
    digest: Digest,
    size: u64,
    manifest: bool,
    /// Still tagged (or used by something tagged in this repository): must
    /// answer 200 with the whole object throughout, GC or not.
    kept: bool,
}

/// How one fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetched {
    Whole,
    Gone,
    /// The body failed mid-way (the connection was cut): the client knows
    /// it does not have the object. Never acceptable on the filesystem,
    /// where an open file survives its unlink.
    Aborted,
}

/// GETs or HEADs `target` once and checks the answer against what it must
/// be: a 404 with the spec error code, or a 200 whose `Content-Length` and
/// `Docker-Content-Digest` are the object's and whose body (for GET) is all
/// of it and hashes to its digest. Anything else, a 5xx included, panics.
async fn fetch(
    client: &reqwest::Client,
    base: &str,
    target: &Target,
    head: bool,
    may_abort: bool,
) -> Fetched {
    let method = if head { Method::HEAD } else { Method::GET };
    let label = format!("{method} {}", target.path);
    let response = client
        .request(method, format!("{base}{}", target.path))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    match response.status() {
        StatusCode::NOT_FOUND => {
            assert!(!target.kept, "{label}: a kept object answered 404");
            if !head {
                let expected = if target.manifest {
                    "MANIFEST_UNKNOWN"
                } else {
                    "BLOB_UNKNOWN"
                };
                assert_eq!(error_code(response).await, expected, "{label}");
            }
            Fetched::Gone
        }
        StatusCode::OK => {
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let expected_digest = target.digest.to_string();
            assert_eq!(
                header("docker-content-digest").as_deref(),
                Some(expected_digest.as_str()),
                "{label}"
            );
            let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
            assert_eq!(length, Some(target.size), "{label}: Content-Length");
            if head {
                return Fetched::Whole;
            }
            match response.bytes().await {
                Ok(body) => {
                    assert_eq!(
                        body.len() as u64,
                        target.size,
                        "{label}: a 200 body cut short"
                    );
                    assert_eq!(
                        target.digest.algorithm().digest_of(&body),
                        target.digest,
                        "{label}: a 200 body with the wrong bytes"
                    );
                    Fetched::Whole
                }
                Err(e) => {
                    assert!(
                        may_abort && !target.kept,
                        "{label}: the body failed mid-way: {e:?}"
                    );
                    Fetched::Aborted
                }
            }
        }
        status => panic!(
            "{label}: answered {status}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

/// What one reader saw of the objects being deleted.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    passes: usize,
    whole: usize,
    gone: usize,
    aborted: usize,
}

/// Fetches every target (HEAD, then GET) over and over, from `start` round,
/// until `stop` is set, then makes one more full pass so every reader also
/// sees the end state. Counts itself in `warmed` after its first pass.
/// Returns what it saw of the targets not kept.
async fn read_until(
    client: reqwest::Client,
    base: String,
    targets: std::sync::Arc<Vec<Target>>,
    start: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    warmed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    may_abort: bool,
) -> Seen {
    let mut seen = Seen::default();
    loop {
        let last = stop.load(std::sync::atomic::Ordering::SeqCst);
        for i in 0..targets.len() {
            let target = &targets[(start + i) % targets.len()];
            for head in [true, false] {
                let outcome = fetch(&client, &base, target, head, may_abort).await;
                if !target.kept && !head {
                    match outcome {
                        Fetched::Whole => seen.whole += 1,
                        Fetched::Gone => seen.gone += 1,
                        Fetched::Aborted => seen.aborted += 1,
                    }
                }
            }
        }
        seen.passes += 1;
        if seen.passes == 1 {
            warmed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if last {
            return seen;
        }
    }
}

/// An image of the race below: what it is made of and whether it stays.
struct RaceImage {
    repo: &'static str,
    tag: String,
    manifest: Digest,
    manifest_size: u64,
    /// Config and layers with their sizes.
    blobs: Vec<(Digest, u64)>,
    kept: bool,
}

/// The hardening requirement "a reader gets the whole object or a 404, never
/// a truncated body with a 200": while an online GC with no minimum age and
/// API deletes remove half of the images, readers fetch every manifest and
/// blob, kept or going, multi-MiB layers included, reading bodies fully.
/// Kept objects must answer 200 whole throughout; going ones 200 whole or
/// 404 with the spec code; the filesystem never cuts a body (an open file
/// outlives its unlink); an object store may only cut one (abort the
/// connection) for an object that is going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_online_gc_and_deletes_get_the_whole_object_or_a_404() {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const MIB: usize = 1024 * 1024;
    const READERS: usize = 4;
    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");

    // Images 0-3 stay, 4-7 go, alternating between two repositories. Four
    // carry a big layer, two of them going, so deletes land mid-body. One
    // layer is shared across repositories by a kept and a going image (its
    // link in the going repository is deleted), one within race/a (its link
    // stays: the kept image needs it).
    let across = random_bytes(256 * 1024);
    let within = random_bytes(512 * 1024);
    let big = |i: usize| match i {
        0 => Some(4 * MIB),
        3 => Some(6 * MIB),
        4 => Some(8 * MIB),
        7 => Some(5 * MIB),
        _ => None,
    };
    let mut images = Vec::new();
    for i in 0..8 {
        let repo = if i % 2 == 0 { "race/a" } else { "race/b" };
        let mut layers = vec![random_bytes(1024 + 4096 * i)];
        if let Some(size) = big(i) {
            layers.push(random_bytes(size));
        }
        if i == 0 || i == 5 {
            layers.push(across.clone());
        }
        if i == 2 || i == 6 {
            layers.push(within.clone());
        }
        let tag = format!("v{i}");
        let layer_refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        let (manifest, bytes) = registry.push_image(repo, &tag, &layer_refs).await;
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let blobs = std::iter::once(&parsed["config"])
            .chain(parsed["layers"].as_array().unwrap())
            .map(|d| {
                let digest: Digest = d["digest"].as_str().unwrap().parse().unwrap();
                (digest, d["size"].as_u64().unwrap())
            })
            .collect();
        images.push(RaceImage {
            repo,
            tag,
            manifest,
            manifest_size: bytes.len() as u64,
            blobs,
            kept: i < 4,
        });
    }
    // Blobs a kept image uses, per repository: their links stay.
    let kept_links: BTreeSet<(&str, Digest)> = images
        .iter()
        .filter(|image| image.kept)
        .flat_map(|image| image.blobs.iter().map(|(d, _)| (image.repo, d.clone())))
        .collect();

    let mut targets = Vec::new();
    for image in &images {
        let manifest = |reference: String| Target {
            path: format!("/v2/{}/manifests/{reference}", image.repo),
            digest: image.manifest.clone(),
            size: image.manifest_size,
            manifest: true,
            kept: image.kept,
        };
        targets.push(manifest(image.manifest.to_string()));
        if image.kept {
            targets.push(manifest(image.tag.clone()));
        }
        for (digest, size) in &image.blobs {
            targets.push(Target {
                path: format!("/v2/{}/blobs/{digest}", image.repo),
                digest: digest.clone(),
                size: *size,
                manifest: false,
                kept: kept_links.contains(&(image.repo, digest.clone())),
            });
        }
    }
    // The within-repository shared layer is listed under both images.
    let mut listed = BTreeSet::new();
    targets.retain(|t| listed.insert(t.path.clone()));
    let targets = Arc::new(targets);

    // Half the images are untagged before anything runs: the GC's work.
    for image in images.iter().filter(|image| !image.kept) {
        let untag = registry
            .delete(&format!("/v2/{}/manifests/{}", image.repo, image.tag))
            .await;
        assert_eq!(untag.status(), StatusCode::ACCEPTED);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let warmed = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|n| {
            tokio::spawn(read_until(
                registry.client.clone(),
                registry.url.clone(),
                targets.clone(),
                n * targets.len() / READERS,
                stop.clone(),
                warmed.clone(),
                !registry.on_filesystem(),
            ))
        })
        .collect();
    // Every reader first fetches everything once, so each has seen the going
    // objects before anything goes, and is mid-pass (bodies in flight) when
    // the deletes start. A pass reads ~30 MiB: seconds on moto. A reader
    // that stops early has failed a check (its panic is printed): stop too.
    common::eventually(
        "every reader's first pass",
        Duration::from_secs(60),
        async || match warmed.load(Ordering::SeqCst) {
            _ if readers.iter().any(|r| r.is_finished()) => Ok(()),
            READERS => Ok(()),
            warm => Err(warm),
        },
    )
    .await;
    assert!(
        !readers.iter().any(|r| r.is_finished()),
        "a reader failed before the race"
    );

    let gc = gc_command(
        &config,
        &[
            "--mode",
            "online",
            "--min-age",
            "0s",
            "--delete-untagged",
            "-q",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Meanwhile the API deletes the going manifests and the going images'
    // blob links (those no kept image in the same repository uses); each is
    // racing the GC, so 202 or, if the GC got there first, 404 with the code.
    let mut deletes = Vec::new();
    for image in images.iter().filter(|image| !image.kept) {
        deletes.push((
            format!("/v2/{}/manifests/{}", image.repo, image.manifest),
            "MANIFEST_UNKNOWN",
        ));
        for (digest, _) in &image.blobs {
            if !kept_links.contains(&(image.repo, digest.clone())) {
                deletes.push((format!("/v2/{}/blobs/{digest}", image.repo), "BLOB_UNKNOWN"));
            }
        }
    }
    for (path, code) in &deletes {
        let response = registry.delete(path).await;
        match response.status() {
            StatusCode::ACCEPTED => {}
            StatusCode::NOT_FOUND => assert_eq!(error_code(response).await, *code, "DELETE {path}"),
            status => panic!(
                "DELETE {path}: {status}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    let output = tokio::task::spawn_blocking(move || gc.wait_with_output().unwrap())
        .await
        .unwrap();
    parse_run(&output).assert_ok();
    stop.store(true, Ordering::SeqCst);
    let mut total = Seen::default();
    for reader in readers {
        let seen = reader.await.unwrap();
        assert!(seen.passes >= 2, "{seen:?}");
        total.passes += seen.passes;
        total.whole += seen.whole;
        total.gone += seen.gone;
        total.aborted += seen.aborted;
    }
    // Each reader saw the going objects whole before they went, and gone in
    // its last pass.
    assert!(total.whole >= READERS && total.gone >= READERS, "{total:?}");

    // A second collection takes what the first had marked before the API
    // deleted its link; then exactly the kept images' content is stored.
    let run = run_gc(
        &config,
        &["--mode", "online", "--min-age", "0s", "-m", "-q"],
    )
    .await;
    run.assert_ok();
    let kept: BTreeSet<String> = images
        .iter()
        .filter(|image| image.kept)
        .flat_map(|image| {
            std::iter::once(image.manifest.to_string())
                .chain(image.blobs.iter().map(|(d, _)| d.to_string()))
        })
        .collect();
    assert_eq!(registry.stored_blobs().await, kept);
    for target in targets.iter().filter(|t| !t.kept) {
        assert_eq!(
            fetch(&registry.client, &registry.url, target, false, false).await,
            Fetched::Gone
        );
    }
    // Every kept tag pulls whole: 4 configs, 4 own layers, 2 big ones and the
    // two shared layers.
    assert_eq!(pull_every_tag(&registry).await, (4, 12));
}

/// The receive window of the HTTP/2 downloads below: the server can send no
/// more than this until the reader releases what it read, so a reader that
/// stops reading holds the server mid-body (where over HTTP/1.1 socket
/// buffers would let it run megabytes ahead).
const WINDOW: u32 = 64 * 1024;

/// GETs `path` over cleartext HTTP/2 (h2c with prior knowledge, which the
/// registry's listener accepts besides HTTP/1.1) with a [`WINDOW`]-sized
/// receive window; returns the response with its body unread.
async fn h2_get(host: &str, path: &str) -> http::Response<h2::RecvStream> {
    let tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get(format!("http://{host}{path}"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    response.await.unwrap()
}

/// Reads body chunks into `got` until it holds at least `at_least` bytes,
/// releasing nothing: the server stays stalled once the window is used up.
async fn h2_read_some(body: &mut h2::RecvStream, got: &mut Vec<u8>, at_least: usize) {
    while got.len() < at_least {
        let chunk = body.data().await.expect("more body").expect("body chunk");
        got.extend_from_slice(&chunk);
    }
}

/// Releases what was read and reads the rest of the body into `got`. `Ok`
/// when the server ended the stream; an error when the server reset the
/// stream or the connection. A stream the server ended cleanly with fewer
/// bytes than its `Content-Length` is reported by the h2 client itself (a
/// library-initiated reset); that is a server bug and panics here.
async fn h2_read_rest(body: &mut h2::RecvStream, got: &mut Vec<u8>) -> Result<(), h2::Error> {
    body.flow_control().release_capacity(got.len()).unwrap();
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                assert!(
                    !e.is_library(),
                    "the server ended the body cleanly after {} bytes, short of its Content-Length \
                     (only the client's own length check caught it): {e}",
                    got.len()
                );
                return Err(e);
            }
        };
        got.extend_from_slice(&chunk);
        body.flow_control().release_capacity(chunk.len()).unwrap();
    }
    Ok(())
}

/// A reader downloading a big blob when it is deleted (untagged, its
/// manifest and link deleted through the API, collected by an online GC)
/// either gets all of it or sees the download fail, never a clean end with
/// fewer bytes than `Content-Length`. On the filesystem it gets all of it:
/// the open file outlives its unlink. On an object store a GET already
/// streaming may also fail, which the client notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_deleted_mid_download_arrives_whole_or_the_download_fails() {
    let registry = TestRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let config = gc_config(work.path(), &registry.root, "");
    let layer = random_bytes(8 * 1024 * 1024);
    registry
        .push_image("slow/app", "keep", &[b"kept layer"])
        .await;
    let (manifest, _) = registry.push_image("slow/app", "drop", &[&layer]).await;
    let digest = registry::oci::Algorithm::Sha256.digest_of(&layer);
    let path = format!("/v2/slow/app/blobs/{digest}");

    let response = h2_get(&registry.host(), &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        layer.len().to_string().as_str()
    );
    let mut body = response.into_body();
    let mut got = Vec::new();
    h2_read_some(&mut body, &mut got, WINDOW as usize).await;

    for delete in [
        "/v2/slow/app/manifests/drop".to_owned(),
        format!("/v2/slow/app/manifests/{manifest}"),
        path.clone(),
    ] {
        assert_eq!(
            registry.delete(&delete).await.status(),
            StatusCode::ACCEPTED,
            "DELETE {delete}"
        );
    }
    let run = run_gc(
        &config,
        &["--mode", "online", "--min-age", "0s", "-m", "-q"],
    )
    .await;
    run.assert_ok();
    assert!(
        !registry.stored_blobs().await.contains(&digest.to_string()),
        "the layer is collected while its download is stalled"
    );
    assert_error(
        registry.get(&path).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;

    match h2_read_rest(&mut body, &mut got).await {
        Ok(()) => {
            assert_eq!(got.len(), layer.len(), "a clean end is the whole blob");
            assert!(got == layer, "and its bytes");
        }
        Err(e) => assert!(
            !registry.on_filesystem(),
            "on the filesystem the download completes: {e}"
        ),
    }
    assert_eq!(pull_every_tag(&registry).await, (1, 2));
}

/// A blob cut short in place while it is served (another tool writing into
/// the store, a disk fault) aborts the download: the HTTP/2 stream is reset
/// instead of ended with fewer bytes than its `Content-Length`. (Over
/// HTTP/1.1 hyper closes the connection of a body that ends short, which
/// the client sees as an incomplete message either way.) Filesystem only:
/// objects in a store cannot be cut in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_cut_short_mid_download_resets_the_stream() {
    let registry = TestRegistry::start().await;
    if !registry.on_filesystem() {
        return;
    }
    let layer = random_bytes(4 * 1024 * 1024);
    registry.push_image("cut/app", "v1", &[&layer]).await;
    let digest = registry::oci::Algorithm::Sha256.digest_of(&layer);
    let data = registry
        .root
        .join(registry::storage::layout::blob_data(&digest));

    let response = h2_get(&registry.host(), &format!("/v2/cut/app/blobs/{digest}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut got = Vec::new();
    h2_read_some(&mut body, &mut got, WINDOW as usize).await;
    // The server has read at most a window and a read buffer or two ahead.
    std::fs::File::options()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(2 * 1024 * 1024)
        .unwrap();

    let error = h2_read_rest(&mut body, &mut got)
        .await
        .expect_err("a body cut short must not end cleanly");
    assert!(
        error.is_remote() && error.is_reset(),
        "the server reset the stream: {error:?}"
    );
    // What arrived is the blob's start (a reset drops data still queued
    // for the window, so not necessarily all of what was left).
    assert!(got.len() <= 2 * 1024 * 1024 && got == layer[..got.len()]);
}
