//! Object storage behaviour that only exists there, against a real S3
//! server (SeaweedFS): blob downloads redirected to presigned URLs, several
//! registry processes on one bucket with no sticky sessions (every chunk of
//! an upload goes to the other replica), GC's read-only window honoured by
//! every replica, and purged uploads leaving no multipart upload behind.

mod common;

use std::process::Command;
use std::time::Duration;

use common::gc::{LOCK_NOTICED, gc_command, parse_run, uploads_answered};
use common::s3::{S3Server, fresh_root, server};
use common::*;
use registry::oci::Algorithm;
use reqwest::{Method, StatusCode};

fn s3_config(server: &S3Server, prefix: &str, extra_storage: &str, extra: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n{}{extra_storage}  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n{extra}",
        server.storage_yaml(prefix, "")
    )
}

async fn start(server: &S3Server, prefix: &str, extra_storage: &str) -> TestRegistry {
    let dir = std::path::PathBuf::from("/nonexistent-object-storage");
    TestRegistry::start_on(&dir, &s3_config(server, prefix, extra_storage, "")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_downloads_redirect_to_presigned_urls_unless_disabled() {
    let Some(server) = server("seaweedfs") else {
        return;
    };
    let prefix = fresh_root("redirect");
    let registry = start(&server, &prefix, "").await;
    let data = random_bytes(300_000);
    let digest = registry.push_blob("redir/app", &data).await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/v2/redir/app/blobs/{digest}", registry.url);
    let response = no_follow.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        response.headers()["docker-content-digest"],
        digest.to_string()
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&server.endpoint) && location.contains("X-Amz-Signature="),
        "{location}"
    );
    // The presigned URL serves the bytes, ranges included, with no credentials.
    let direct = reqwest::get(&location).await.unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(direct.bytes().await.unwrap(), data);
    let ranged = reqwest::Client::new()
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.unwrap(), &data[1000..2000]);
    // HEAD is answered by the registry itself.
    let head = no_follow.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], data.len().to_string());
    // A blob of another repository is not redirected to: the link is checked first.
    let foreign = no_follow
        .get(format!("{}/v2/other/blobs/{digest}", registry.url))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);

    // Real clients follow the redirect: skopeo pushes an image and pulls it back.
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("src");
    common::layout::single_image(&source, "v1", 2, 200_000);
    let target = format!("docker://{}/redir/image:v1", registry.host());
    let out = work.path().join("out");
    for (from, to) in [
        (format!("oci:{}:v1", source.display()), target.clone()),
        (target.clone(), format!("oci:{}:v1", out.display())),
    ] {
        let mut skopeo = Command::new("skopeo");
        skopeo.args([
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &from,
            &to,
        ]);
        // Off the runtime's threads: the registry under test serves on them.
        let output = tokio::task::spawn_blocking(move || skopeo.output())
            .await
            .unwrap()
            .expect("skopeo is installed (scripts/setup)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        common::layout::blob_set(&out),
        common::layout::blob_set(&source)
    );

    // storage.redirect.disable: the registry streams the blob itself.
    let streaming = start(&server, &prefix, "  redirect:\n    disable: true\n").await;
    let response = no_follow
        .get(format!("{}/v2/redir/app/blobs/{digest}", streaming.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), data);
}

/// Uploads `data` in `chunk`-byte PATCHes, each to the other replica, and
/// completes it on the replica that did not send the last chunk.
async fn alternating_upload(replicas: [&TestRegistry; 2], repo: &str, data: &[u8], chunk: usize) {
    let digest = Algorithm::Sha256.digest_of(data);
    let started = replicas[0]
        .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let session = started.headers()["location"].to_str().unwrap().to_owned();
    let mut sent = 0;
    for (i, piece) in data.chunks(chunk).enumerate() {
        let replica = replicas[(i + 1) % 2];
        let response = replica
            .request(Method::PATCH, &session)
            .header(
                "content-range",
                format!("{sent}-{}", sent + piece.len() - 1),
            )
            .header("content-type", "application/octet-stream")
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "chunk {i}");
        sent += piece.len();
        assert_eq!(
            response.headers()["range"],
            format!("0-{}", sent - 1),
            "chunk {i}"
        );
    }
    let last = data.len().div_ceil(chunk);
    let completer = replicas[(last + 1) % 2];
    let response = completer
        .request(Method::PUT, &format!("{session}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    for replica in replicas {
        let pulled = replica
            .get(&format!("/v2/{repo}/blobs/{digest}"))
            .await
            .bytes()
            .await
            .unwrap();
        assert!(pulled == data, "blob differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_uploads_chunk_by_chunk() {
    let Some(server) = server("seaweedfs") else {
        return;
    };
    let prefix = fresh_root("replicas");
    let extra = "  redirect:\n    disable: true\n";
    let a = start(&server, &prefix, extra).await;
    let b = start(&server, &prefix, extra).await;
    // Chunks smaller than a part (parts are 10 MiB): each replica carries on
    // from the tail and hash state the other stored.
    alternating_upload(
        [&a, &b],
        "shared/small",
        &random_bytes(3 * 1024 * 1024 + 77),
        700_000,
    )
    .await;
    // Chunks larger than a part: every chunk uploads parts and leaves a tail.
    alternating_upload(
        [&a, &b],
        "shared/big",
        &random_bytes(37 * 1024 * 1024 + 5),
        13 * 1024 * 1024,
    )
    .await;
    let storage = open_test_storage_for(&server, &prefix);
    assert!(verify_stored_blobs(storage.as_ref()).await >= 2);
    // No upload state is left behind.
    let leftovers = objects_under(storage.as_ref(), "docker/registry/v2/repositories").await;
    assert!(
        leftovers.keys().all(|k| !k.contains("/_uploads/")),
        "{leftovers:?}"
    );
}

fn open_test_storage_for(
    server: &S3Server,
    prefix: &str,
) -> std::sync::Arc<dyn registry::storage::Storage> {
    registry::open_storage(&parse(&s3_config(server, prefix, "", ""))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_read_only_window_is_honoured_by_every_replica() {
    let Some(server) = server("seaweedfs") else {
        return;
    };
    let prefix = fresh_root("gcwindow");
    let fast =
        "  maintenance:\n    lock:\n      pollinterval: 200ms\n  redirect:\n    disable: true\n";
    let a = start(&server, &prefix, fast).await;
    let b = start(&server, &prefix, fast).await;
    a.push_image("win/app", "v1", &[&random_bytes(1000)]).await;
    let orphan = b
        .push_blob("win/other", b"unreferenced once unlinked")
        .await;
    assert_eq!(
        b.delete(&format!("/v2/win/other/blobs/{orphan}"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );

    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("gc.yml");
    std::fs::write(&config, s3_config(&server, &prefix, fast, "")).unwrap();
    let mut gc = gc_command(&config, &["--grace-period", "3s"]);
    let gc = std::thread::spawn(move || gc.output().unwrap());

    // Within the poll interval both replicas refuse writes; reads go on.
    let refused = |registry: &TestRegistry| {
        let request = registry.request(Method::POST, "/v2/win/app/blobs/uploads/");
        async move { request.send().await.unwrap().status() == StatusCode::METHOD_NOT_ALLOWED }
    };
    let (mut a_refused, mut b_refused) = (false, false);
    eventually("both replicas refusing writes", LOCK_NOTICED, async || {
        a_refused = a_refused || refused(&a).await;
        b_refused = b_refused || refused(&b).await;
        match (a_refused, b_refused) {
            (true, true) => Ok(()),
            seen => Err(seen),
        }
    })
    .await;
    assert_eq!(
        a.get("/v2/win/app/manifests/v1").await.status(),
        StatusCode::OK
    );

    let run = parse_run(
        &tokio::task::spawn_blocking(move || gc.join().unwrap())
            .await
            .unwrap(),
    );
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.count("blobs_deleted"), 1, "{}", run.stdout);
    // After the window both accept pushes again, and everything tagged pulls.
    uploads_answered(&a, "win/app", StatusCode::ACCEPTED).await;
    uploads_answered(&b, "win/app", StatusCode::ACCEPTED).await;
    a.push_image("win/app", "v2", &[&random_bytes(1000)]).await;
    b.push_image("win/app", "v3", &[&random_bytes(1000)]).await;
    for tag in ["v1", "v2", "v3"] {
        assert_eq!(
            b.get(&format!("/v2/win/app/manifests/{tag}"))
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        a.head(&format!("/v2/win/other/blobs/{orphan}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// Multipart uploads in progress under `prefix`, as the server lists them.
fn multipart_uploads(server: &S3Server, prefix: &str) -> usize {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-servers");
    let code = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='{}', aws_access_key_id='{}', aws_secret_access_key='{}')\nprint(len(s3.list_multipart_uploads(Bucket='{}', Prefix='{}').get('Uploads', [])))",
        server.endpoint,
        server.region,
        server.access_key,
        server.secret_key,
        server.bucket,
        prefix.trim_start_matches('/')
    );
    let output = Command::new(script)
        .args(["python", "-c", &code])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_a_stale_upload_aborts_its_multipart_upload() {
    let Some(server) = server("seaweedfs") else {
        return;
    };
    let prefix = fresh_root("purge");
    let registry = start(&server, &prefix, "").await;
    let started = registry
        .request(Method::POST, "/v2/stale/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let session = started.headers()["location"].to_str().unwrap().to_owned();
    // More than a part: a multipart upload exists on the server.
    let response = registry
        .request(Method::PATCH, &session)
        .body(random_bytes(11 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(multipart_uploads(&server, &prefix), 1);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("purge.yml");
    let purge = "  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 1s\n      interval: 24h\n";
    std::fs::write(&config, s3_config(&server, &prefix, purge, "")).unwrap();
    let mut gc = gc_command(&config, &["-q", "--grace-period", "0s"]);
    let run = parse_run(
        &tokio::task::spawn_blocking(move || gc.output().unwrap())
            .await
            .unwrap(),
    );
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.count("uploads_purged"), 1);
    assert_eq!(registry.get(&session).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(multipart_uploads(&server, &prefix), 0);
}
