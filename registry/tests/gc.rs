//! Garbage collection on real storage through the real `registry
//! garbage-collect` binary, with a live registry on the same root. After
//! every collection every remaining tag is pulled and every digest verified.
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
