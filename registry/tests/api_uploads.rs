//! Blob uploads over HTTP: monolithic, POST+PUT, chunked (with 416 and
//! resume), streamed, cancel, mount, sha512, cross-process continuation.

mod common;

use common::expect::{expect, expect_all};
use common::*;
use registry::oci::{Algorithm, Digest};
use reqwest::{Method, StatusCode};

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn start_session(registry: &TestRegistry, repo: &str) -> String {
    let response = registry
        .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["range"], "0-0");
    let id = response.headers()["docker-upload-uuid"]
        .to_str()
        .unwrap()
        .to_owned();
    let location = location(&response);
    assert_eq!(location, format!("/v2/{repo}/blobs/uploads/{id}"));
    location
}

async fn get_blob(registry: &TestRegistry, repo: &str, digest: &Digest) -> Vec<u8> {
    let response = registry.get(&format!("/v2/{repo}/blobs/{digest}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["docker-content-digest"],
        digest.to_string().as_str()
    );
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn monolithic_single_post_and_post_put() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(100_000);
    let digest = registry.push_blob("mono/a", &data).await;
    assert_eq!(get_blob(&registry, "mono/a", &digest).await, data);

    let data = random_bytes(5000);
    let digest = Algorithm::Sha256.digest_of(&data);
    let session = start_session(&registry, "mono/b").await;
    let response = registry
        .request(Method::PUT, &format!("{session}?digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(location(&response), format!("/v2/mono/b/blobs/{digest}"));
    assert_eq!(get_blob(&registry, "mono/b", &digest).await, data);
    // The session is gone after completion.
    expect("GET", &session, 404, "BLOB_UPLOAD_UNKNOWN")
        .send(&registry.host())
        .await;
}

#[tokio::test]
async fn chunked_upload_rejects_out_of_order_chunks_and_resumes() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(30_000);
    let digest = Algorithm::Sha256.digest_of(&data);
    let session = start_session(&registry, "chunked").await;
    let patch = |range: &str, body: &[u8]| {
        registry
            .request(Method::PATCH, &session)
            .header("content-type", "application/octet-stream")
            .header("content-range", range.to_owned())
            .body(body.to_vec())
    };

    // A chunk that does not start at 0 is out of order.
    let response = patch("10000-19999", &data[10_000..20_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()["range"], "0-0");

    let response = patch("0-9999", &data[..10_000]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["range"], "0-9999");

    // Retrying the same chunk is out of order now.
    let response = patch("0-9999", &data[..10_000]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()["range"], "0-9999");

    // Status tells the client where to resume.
    let status = registry.get(&session).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(status.headers()["range"], "0-9999");
    assert_eq!(location(&status), session);

    let response = patch("10000-19999", &data[10_000..20_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // Last chunk comes with the closing PUT.
    let response = registry
        .request(Method::PUT, &format!("{session}?digest={digest}"))
        .header("content-range", "20000-29999")
        .body(data[20_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&registry, "chunked", &digest).await, data);
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(300_000);
    let digest = Algorithm::Sha256.digest_of(&data);
    let session = start_session(&registry, "streamed").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(7000).map(|c| Ok(c.to_vec())).collect();
    let response = registry
        .request(Method::PATCH, &session)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers()["range"],
        format!("0-{}", data.len() - 1).as_str()
    );
    let response = registry
        .request(Method::PUT, &format!("{session}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&registry, "streamed", &digest).await, data);
}

#[tokio::test]
async fn digest_mismatch_is_rejected_and_nothing_becomes_visible() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(1000);
    let wrong = Algorithm::Sha256.digest_of(b"something else");
    let rows = vec![
        expect(
            "POST",
            format!("/v2/bad/blobs/uploads/?digest={wrong}"),
            400,
            "DIGEST_INVALID",
        )
        .body(data.clone()),
        expect("GET", format!("/v2/bad/blobs/{wrong}"), 404, "BLOB_UNKNOWN"),
    ];
    expect_all(&registry.host(), rows).await;
    let actual = Algorithm::Sha256.digest_of(&data);
    assert_eq!(
        registry
            .head(&format!("/v2/bad/blobs/{actual}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // No blob data and no session remain in storage.
    let files = registry.stored().await;
    assert!(files.keys().all(|f| !f.contains("/blobs/")), "{files:?}");
    assert!(
        registry
            .storage
            .list("docker/registry/v2/repositories/bad/_uploads")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn cancel_discards_the_session() {
    let registry = TestRegistry::start().await;
    let session = start_session(&registry, "cancel").await;
    let response = registry
        .request(Method::PATCH, &session)
        .body(random_bytes(100))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        registry.delete(&session).await.status(),
        StatusCode::NO_CONTENT
    );
    let rows = vec![
        expect("GET", &session, 404, "BLOB_UPLOAD_UNKNOWN"),
        expect("DELETE", &session, 404, "BLOB_UPLOAD_UNKNOWN"),
    ];
    expect_all(&registry.host(), rows).await;
}

#[tokio::test]
async fn sessions_belong_to_their_repository() {
    let registry = TestRegistry::start().await;
    let session = start_session(&registry, "owner").await;
    let foreign = session.replace("/v2/owner/", "/v2/intruder/");
    let rows = vec![
        expect("GET", &foreign, 404, "BLOB_UPLOAD_UNKNOWN"),
        expect("PATCH", &foreign, 404, "BLOB_UPLOAD_UNKNOWN").body("x"),
    ];
    expect_all(&registry.host(), rows).await;
}

#[tokio::test]
async fn cross_repository_mount_with_and_without_from() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(2048);
    let digest = registry.push_blob("source", &data).await;

    let mount = |target: &str, query: String| {
        registry
            .request(
                Method::POST,
                &format!("/v2/{target}/blobs/uploads/?{query}"),
            )
            .send()
    };
    let response = mount("target/one", format!("mount={digest}&from=source"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        location(&response),
        format!("/v2/target/one/blobs/{digest}")
    );
    assert_eq!(get_blob(&registry, "target/one", &digest).await, data);

    // Without `from` the blob is found in the shared store.
    let response = mount("target/two", format!("mount={digest}"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    // From a repository that does not have it: a normal session instead.
    let response = mount("target/three", format!("mount={digest}&from=elsewhere"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(location(&response).starts_with("/v2/target/three/blobs/uploads/"));
    assert_eq!(
        registry
            .head(&format!("/v2/target/three/blobs/{digest}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Unknown blob: a session as well.
    let unknown = Algorithm::Sha256.digest_of(b"never pushed");
    let response = mount("target/four", format!("mount={unknown}"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn sha512_blobs() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(4096);
    let digest = Algorithm::Sha512.digest_of(&data);
    let response = registry
        .request(
            Method::POST,
            &format!("/v2/sha512/blobs/uploads/?digest={digest}"),
        )
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&registry, "sha512", &digest).await, data);
    assert_eq!(
        registry.stored_blob(&digest).await.as_deref(),
        Some(&data[..])
    );

    // A chunked upload completed with a sha512 digest re-hashes with that algorithm.
    let session = start_session(&registry, "sha512").await;
    let data = random_bytes(10_000);
    let digest = Algorithm::Sha512.digest_of(&data);
    registry
        .request(Method::PATCH, &session)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    let response = registry
        .request(Method::PUT, &format!("{session}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&registry, "sha512", &digest).await, data);
}

#[tokio::test]
async fn a_second_process_on_the_same_root_continues_an_upload() {
    let first = TestRegistry::start().await;
    let second = TestRegistry::start_on(&first.root, &config_yaml(&first.root, "")).await;
    let data = random_bytes(50_000);
    let digest = Algorithm::Sha256.digest_of(&data);

    let session = start_session(&first, "shared").await;
    let response = first
        .request(Method::PATCH, &session)
        .header("content-range", "0-24999")
        .body(data[..25_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let status = second.get(&session).await;
    assert_eq!(status.headers()["range"], "0-24999");
    let response = second
        .request(Method::PATCH, &session)
        .header("content-range", "25000-49999")
        .body(data[25_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // And the first finishes it: its cached hash is stale, so it re-reads.
    let response = first
        .request(Method::PUT, &format!("{session}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&second, "shared", &digest).await, data);
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_blob_do_not_corrupt() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(1_000_000);
    let digest = Algorithm::Sha256.digest_of(&data);
    let pushes = (0..8).map(|i| {
        let request = registry
            .request(
                Method::POST,
                &format!("/v2/race/r{i}/blobs/uploads/?digest={digest}"),
            )
            .body(data.clone());
        async move { request.send().await.unwrap().status() }
    });
    for status in futures_util::future::join_all(pushes).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    for i in 0..8 {
        let body = get_blob(&registry, &format!("race/r{i}"), &digest).await;
        assert_eq!(Algorithm::Sha256.digest_of(&body), digest);
    }
}

#[tokio::test]
async fn size_and_range_lies_are_rejected() {
    let registry = TestRegistry::start().await;
    let host = registry.host();
    let session = start_session(&registry, "liar").await;
    let rows = vec![
        // Content-Range says 10 bytes, Content-Length says 5.
        expect("PATCH", &session, 400, "SIZE_INVALID")
            .header("content-range", "0-9")
            .body(vec![1u8; 5]),
        expect("PATCH", &session, 400, "BLOB_UPLOAD_INVALID")
            .header("content-range", "nonsense")
            .body(vec![1u8; 5]),
    ];
    expect_all(&host, rows).await;
    // Nothing was appended by either.
    assert_eq!(registry.get(&session).await.headers()["range"], "0-0");
    // PUT without a digest.
    expect("PUT", &session, 400, "DIGEST_INVALID")
        .send(&host)
        .await;
}
