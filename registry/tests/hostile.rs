//! Hostile input over real HTTP on loopback: a table of malicious or broken
//! requests, each with its expected status and spec error code, followed by
//! proof that nothing outside upload scratch changed on disk and that the
//! server still serves a previously pushed image.

mod common;

use common::expect::{expect, expect_all};
use common::*;
use registry::oci::Algorithm;

/// Starts an upload session in `repo`; returns its path.
async fn session(registry: &TestRegistry, repo: &str) -> String {
    let response = registry
        .request(reqwest::Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn nested_arrays(depth: usize) -> Vec<u8> {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

#[tokio::test]
async fn hostile_requests_change_nothing_and_the_server_survives() {
    let registry = TestRegistry::start().await;
    let host = registry.host();
    let (manifest_digest, manifest_bytes) =
        registry.push_image("good/app", "v1", &[b"layer-one"]).await;
    let layer = Algorithm::Sha256.digest_of(b"layer-one");
    let a = session(&registry, "good/app").await;
    let b = session(&registry, "good/app").await;
    let b_id = b.rsplit('/').next().unwrap().to_owned();
    let before = registry.stored().await;
    assert!(
        before
            .keys()
            .any(|k| k.ends_with("good/app/_manifests/tags/v1/current/link")),
        "the snapshot sees the pushed image: {before:?}"
    );

    let hello = Algorithm::Sha256.digest_of(b"hello");
    let unknown = Algorithm::Sha256.digest_of(b"never pushed");
    let random_id = "0a9e4a5d-7c43-4c31-9d0c-2f3a6f3e4b10";
    let long_name = "a".repeat(256);
    let long_tag = "t".repeat(129);
    let valid_manifest = String::from_utf8(manifest_bytes.clone()).unwrap();
    let missing_blobs = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": unknown.to_string(), "size": 12},
        "layers": [],
    })
    .to_string();
    let huge_array = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[{}0]}}"#,
        "0,".repeat(1_900_000)
    );
    let nested_in_field = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","annotations":{}}}"#,
        String::from_utf8(nested_arrays(100_000)).unwrap()
    );
    let nested_objects = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
    // A valid manifest whose unknown field nests 5,000 levels: serde skips it,
    // but GC could never read it back (the manifest depth rule refuses it).
    let nested_unknown_field = valid_manifest.replacen(
        '{',
        &format!(
            r#"{{"x":{},"#,
            String::from_utf8(nested_arrays(5_000)).unwrap()
        ),
        1,
    );
    let over_limit = vec![b' '; 4 * 1024 * 1024 + 1];

    let rows = vec![
        // Path traversal and odd names.
        expect("GET", "/v2/../etc/tags/list", 400, "NAME_INVALID"),
        expect(
            "GET",
            "/v2/%2e%2e/%2e%2e/etc/tags/list",
            400,
            "NAME_INVALID",
        ),
        expect(
            "GET",
            "/v2/good/%2e%2e/%2e%2e/tags/list",
            400,
            "NAME_INVALID",
        ),
        expect(
            "GET",
            "/v2/good%2F..%2F..%2Fetc/tags/list",
            400,
            "NAME_INVALID",
        ),
        expect(
            "PUT",
            "/v2/good/%2E%2E/app/manifests/v2",
            400,
            "NAME_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        expect("GET", "/v2//etc/passwd/tags/list", 400, "NAME_INVALID"),
        expect("GET", "/etc/passwd", 404, "NOT_FOUND"),
        expect(
            "GET",
            "/v2/good/app/manifests/..%2F..%2Fv1",
            404,
            "NOT_FOUND",
        ),
        expect(
            "PUT",
            "/v2/good/app/manifests/%2e%2e",
            400,
            "MANIFEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        expect("GET", "/v2/Good/App/tags/list", 400, "NAME_INVALID"),
        expect("PUT", "/v2/Good/app/manifests/v1", 400, "NAME_INVALID")
            .manifest(OCI_MANIFEST, valid_manifest.clone()),
        expect(
            "GET",
            format!("/v2/{long_name}/tags/list"),
            400,
            "NAME_INVALID",
        ),
        expect(
            "POST",
            format!("/v2/{long_name}/blobs/uploads/"),
            400,
            "NAME_INVALID",
        ),
        expect("GET", "/v2/good/%ff/tags/list", 400, "NAME_INVALID"),
        expect("GET", "/v2/good/app%00/tags/list", 400, "NAME_INVALID"),
        expect(
            "GET",
            format!("/v2/good/app/manifests/{long_tag}"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        expect(
            "PUT",
            format!("/v2/good/app/manifests/{long_tag}"),
            400,
            "MANIFEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        expect(
            "PUT",
            "/v2/good/app/manifests/v2?tag=..",
            400,
            "MANIFEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        // Hostile query parameters.
        expect("GET", "/v2/_catalog?n=-1", 400, "PAGINATION_NUMBER_INVALID"),
        expect(
            "GET",
            "/v2/_catalog?n=%ff%fe",
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        expect(
            "GET",
            "/v2/good/app/tags/list?n=99999999999999999999999",
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        expect(
            "GET",
            "/v2/good/app/tags/list?n=18446744073709551615&last=..%2F..%2F",
            200,
            "",
        ),
        expect(
            "GET",
            "/v2/_catalog?n=18446744073709551615&last=%00",
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        expect(
            "PUT",
            format!(
                "/v2/good/app/manifests/{manifest_digest}?{}",
                "tag=x&".repeat(65)
            ),
            400,
            "MANIFEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        // Decoding %2F yields the same repository, as in distribution: no traversal.
        expect("GET", "/v2/good%2Fapp/manifests/v1", 200, "").header("Accept", OCI_MANIFEST),
        // Invalid digests and unknown algorithms.
        expect(
            "GET",
            "/v2/good/app/blobs/sha256:abc",
            400,
            "DIGEST_INVALID",
        ),
        expect(
            "GET",
            format!("/v2/good/app/blobs/sha256:{}", "A".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        expect(
            "GET",
            format!("/v2/good/app/blobs/md5:{}", "0".repeat(32)),
            400,
            "DIGEST_INVALID",
        ),
        expect(
            "GET",
            format!("/v2/good/app/blobs/blake3:{}", "0".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        expect(
            "GET",
            format!("/v2/good/app/blobs/sha512:{}", "0".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        expect(
            "GET",
            "/v2/good/app/blobs/sha256:..%2f..%2fetc",
            404,
            "NOT_FOUND",
        ),
        expect(
            "GET",
            format!("/v2/good/app/blobs/{layer}"),
            416,
            "RANGE_INVALID",
        )
        .header("Range", "bytes=18446744073709551615-"),
        expect("GET", format!("/v2/good/app/blobs/{layer}"), 206, "")
            .header("Range", "bytes=0-18446744073709551615"),
        expect(
            "GET",
            "/v2/good/app/referrers/sha256:zz",
            400,
            "DIGEST_INVALID",
        ),
        expect(
            "DELETE",
            format!("/v2/good/app/blobs/sha256:{}", "g".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        expect(
            "POST",
            "/v2/good/app/blobs/uploads/?digest=sha256:1234",
            400,
            "DIGEST_INVALID",
        )
        .body("hello"),
        expect(
            "POST",
            format!("/v2/good/app/blobs/uploads/?digest=blake3:{}", hello.hex()),
            400,
            "DIGEST_INVALID",
        )
        .body("hello"),
        expect(
            "POST",
            "/v2/good/app/blobs/uploads/?mount=sha256:bad&from=good/app",
            400,
            "DIGEST_INVALID",
        ),
        expect(
            "POST",
            "/v2/good/app/blobs/uploads/?digest-algorithm=md5",
            400,
            "DIGEST_INVALID",
        ),
        // Digest mismatch on a monolithic upload (whole and chunked-encoded).
        expect(
            "POST",
            format!("/v2/good/app/blobs/uploads/?digest={hello}"),
            400,
            "DIGEST_INVALID",
        )
        .body("hellx"),
        expect(
            "POST",
            format!("/v2/good/app/blobs/uploads/?digest={hello}"),
            400,
            "DIGEST_INVALID",
        )
        .chunked("hello, with more"),
        // Unknown sessions, malformed ids, and another repository's session.
        expect(
            "PATCH",
            format!("/v2/good/app/blobs/uploads/{random_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("x"),
        expect(
            "PATCH",
            "/v2/good/app/blobs/uploads/not-a-uuid",
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("x"),
        expect(
            "PATCH",
            format!("/v2/good/app/blobs/uploads/{}", b_id.to_uppercase()),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("x"),
        expect(
            "GET",
            format!("/v2/good/app/blobs/uploads/{random_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        expect(
            "PUT",
            format!("/v2/good/app/blobs/uploads/{random_id}?digest={hello}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("hello"),
        expect(
            "PATCH",
            format!("/v2/good/other/blobs/uploads/{b_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("x"),
        expect(
            "PUT",
            format!("/v2/good/other/blobs/uploads/{b_id}?digest={hello}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("hello"),
        expect(
            "GET",
            format!("/v2/good/other/blobs/uploads/{b_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        expect(
            "DELETE",
            format!("/v2/good/other/blobs/uploads/{b_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        expect("GET", b.clone(), 204, ""),
        // Content-Range lies on session A.
        expect("PATCH", a.clone(), 416, "RANGE_INVALID")
            .header("Content-Range", "100-109")
            .body([1u8; 10]),
        expect("PATCH", a.clone(), 202, "")
            .header("Content-Range", "0-9")
            .body([1u8; 10]),
        expect("PATCH", a.clone(), 416, "RANGE_INVALID")
            .header("Content-Range", "5-14")
            .body([2u8; 10]),
        expect("PATCH", a.clone(), 416, "RANGE_INVALID")
            .header("Content-Range", "0-9")
            .body([1u8; 10]),
        expect("PATCH", a.clone(), 400, "SIZE_INVALID")
            .header("Content-Range", "10-29")
            .body([3u8; 10]),
        expect("PATCH", a.clone(), 400, "SIZE_INVALID")
            .header("Content-Range", "10-19")
            .chunked([4u8; 25]),
        expect("PATCH", a.clone(), 400, "BLOB_UPLOAD_INVALID")
            .header("Content-Range", "10-18446744073709551615")
            .body([5u8; 10]),
        expect("PATCH", a.clone(), 400, "BLOB_UPLOAD_INVALID")
            .header("Content-Range", "0-18446744073709551615")
            .body([5u8; 10]),
        expect("PATCH", a.clone(), 400, "BLOB_UPLOAD_INVALID")
            .header("Content-Range", "19-10")
            .body([6u8; 10]),
        expect("PATCH", a.clone(), 400, "BLOB_UPLOAD_INVALID")
            .header("Content-Range", "bytes=a-b")
            .body([6u8; 10]),
        expect("PUT", format!("{a}?digest={hello}"), 400, "DIGEST_INVALID"),
        expect("PATCH", a.clone(), 404, "BLOB_UPLOAD_UNKNOWN").body("x"),
        // Session B: commit without a digest, then with a wrong one.
        expect("PUT", b.clone(), 400, "DIGEST_INVALID").body("hello"),
        expect("PUT", format!("{b}?digest={hello}"), 400, "DIGEST_INVALID").body("jello"),
        // Manifests that are not JSON, or lie about their media type.
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, "not json"),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, ""),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .body(r#"{"schemaVersion":2}"#),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(DOCKER_MANIFEST, valid_manifest.clone()),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID").manifest(
            "text/plain",
            r#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
        ),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_INDEX, valid_manifest.replace(OCI_MANIFEST, OCI_INDEX)),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID").manifest(
            OCI_MANIFEST,
            valid_manifest.replace("\"schemaVersion\":2", "\"schemaVersion\":1"),
        ),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID").manifest(
            OCI_MANIFEST,
            valid_manifest.replace("\"size\":9", "\"size\":-9"),
        ),
        expect(
            "PUT",
            "/v2/good/app/manifests/v2",
            400,
            "MANIFEST_BLOB_UNKNOWN",
        )
        .manifest(OCI_MANIFEST, missing_blobs),
        expect(
            "PUT",
            format!("/v2/good/app/manifests/{unknown}"),
            400,
            "DIGEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        // Deep, huge and oversized JSON.
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, nested_arrays(100_000)),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, nested_in_field),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, nested_objects),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, nested_unknown_field),
        expect("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, huge_array),
        expect("PUT", "/v2/good/app/manifests/v2", 413, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, over_limit.clone()),
        expect("PUT", "/v2/good/app/manifests/v2", 413, "MANIFEST_INVALID")
            .header("Content-Type", OCI_MANIFEST)
            .chunked(over_limit),
        expect("PUT", "/v2/good/app/manifests/v2", 413, "MANIFEST_INVALID")
            .header("Content-Type", OCI_MANIFEST)
            .header("Content-Length", "99999999999"),
    ];
    expect_all(&host, rows).await;

    // Read-only maintenance: a second server on the same storage refuses every write.
    let read_only_yaml = config_yaml(&registry.root, "").replace(
        "\nhttp:",
        "\n  maintenance:\n    readonly:\n      enabled: true\nhttp:",
    );
    let read_only = TestRegistry::start_on(&registry.root, &read_only_yaml).await;
    let ro = read_only.host();
    let live = session(&registry, "good/app").await;
    expect_all(
        &ro,
        vec![
            expect("POST", "/v2/good/app/blobs/uploads/", 405, "UNSUPPORTED"),
            expect(
                "POST",
                format!("/v2/good/app/blobs/uploads/?digest={hello}"),
                405,
                "UNSUPPORTED",
            )
            .body("hello"),
            expect(
                "POST",
                format!("/v2/good/new/blobs/uploads/?mount={layer}&from=good/app"),
                405,
                "UNSUPPORTED",
            ),
            expect("PATCH", live.clone(), 405, "UNSUPPORTED").body("hello"),
            expect("PUT", format!("{live}?digest={hello}"), 405, "UNSUPPORTED").body("hello"),
            expect("DELETE", live.clone(), 405, "UNSUPPORTED"),
            expect("PUT", "/v2/good/app/manifests/v2", 405, "UNSUPPORTED")
                .manifest(OCI_MANIFEST, valid_manifest.clone()),
            expect("DELETE", "/v2/good/app/manifests/v1", 405, "UNSUPPORTED"),
            expect(
                "DELETE",
                format!("/v2/good/app/manifests/{manifest_digest}"),
                405,
                "UNSUPPORTED",
            ),
            expect(
                "DELETE",
                format!("/v2/good/app/blobs/{layer}"),
                405,
                "UNSUPPORTED",
            ),
            expect("GET", "/v2/good/app/manifests/v1", 200, "").header("Accept", OCI_MANIFEST),
        ],
    )
    .await;
    read_only.stop().await;

    assert_eq!(
        registry.stored().await,
        before,
        "storage changed outside upload scratch"
    );
    let health = registry.get("/healthz").await;
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let pulled = registry
        .request(reqwest::Method::GET, "/v2/good/app/manifests/v1")
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), reqwest::StatusCode::OK);
    assert_eq!(
        pulled.bytes().await.unwrap().as_ref(),
        manifest_bytes.as_slice()
    );
    let blob = registry.get(&format!("/v2/good/app/blobs/{layer}")).await;
    assert_eq!(blob.status(), reqwest::StatusCode::OK);
    assert_eq!(blob.bytes().await.unwrap().as_ref(), b"layer-one");
    // The real `registry verify`: every stored blob still hashes to its digest.
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.yml");
    std::fs::write(&config, config_yaml(&registry.root, "")).unwrap();
    assert!(assert_verify_clean(&config).await > 0);
}
