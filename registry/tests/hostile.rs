//! Hostile input over real HTTP on loopback: a table of malicious or broken
//! requests, each with its expected status and spec error code, followed by
//! proof that nothing outside upload scratch changed on disk and that the
//! server still serves a previously pushed image.

mod common;

use common::raw::{RawBody, RawResponse, send};
use common::*;
use registry::oci::Algorithm;

/// One hostile request and what the registry must answer.
#[derive(Debug)]
struct Row {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: RawBody,
    status: u16,
    /// The spec error code, or `None` for a (deliberately) successful step.
    code: Option<&'static str>,
}

fn row(method: &'static str, path: impl Into<String>, status: u16, code: &'static str) -> Row {
    Row {
        method,
        path: path.into(),
        headers: Vec::new(),
        body: RawBody::None,
        status,
        code: (!code.is_empty()).then_some(code),
    }
}

impl Row {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = RawBody::Fixed(bytes.into());
        self
    }

    fn chunked(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = RawBody::Chunked(vec![bytes.into()]);
        self
    }

    fn manifest(self, media_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", media_type).body(bytes)
    }
}

async fn run(host: &str, rows: Vec<Row>) {
    for (i, row) in rows.into_iter().enumerate() {
        let response: RawResponse =
            send(host, row.method, &row.path, &row.headers, row.body.clone()).await;
        let label = format!("row {i}: {} {:.120}", row.method, row.path);
        assert_eq!(
            response.status,
            row.status,
            "{label}: body {}",
            String::from_utf8_lossy(&response.body)
        );
        if let Some(code) = row.code {
            assert_eq!(response.code().as_deref(), Some(code), "{label}");
        }
    }
}

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
        row("GET", "/v2/../etc/tags/list", 400, "NAME_INVALID"),
        row(
            "GET",
            "/v2/%2e%2e/%2e%2e/etc/tags/list",
            400,
            "NAME_INVALID",
        ),
        row(
            "GET",
            "/v2/good/%2e%2e/%2e%2e/tags/list",
            400,
            "NAME_INVALID",
        ),
        row(
            "GET",
            "/v2/good%2F..%2F..%2Fetc/tags/list",
            400,
            "NAME_INVALID",
        ),
        row(
            "PUT",
            "/v2/good/%2E%2E/app/manifests/v2",
            400,
            "NAME_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        row("GET", "/v2//etc/passwd/tags/list", 400, "NAME_INVALID"),
        row("GET", "/etc/passwd", 404, "NOT_FOUND"),
        row(
            "GET",
            "/v2/good/app/manifests/..%2F..%2Fv1",
            404,
            "NOT_FOUND",
        ),
        row(
            "PUT",
            "/v2/good/app/manifests/%2e%2e",
            400,
            "MANIFEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        row("GET", "/v2/Good/App/tags/list", 400, "NAME_INVALID"),
        row("PUT", "/v2/Good/app/manifests/v1", 400, "NAME_INVALID")
            .manifest(OCI_MANIFEST, valid_manifest.clone()),
        row(
            "GET",
            format!("/v2/{long_name}/tags/list"),
            400,
            "NAME_INVALID",
        ),
        row(
            "POST",
            format!("/v2/{long_name}/blobs/uploads/"),
            400,
            "NAME_INVALID",
        ),
        row("GET", "/v2/good/%ff/tags/list", 400, "NAME_INVALID"),
        row("GET", "/v2/good/app%00/tags/list", 400, "NAME_INVALID"),
        row(
            "GET",
            format!("/v2/good/app/manifests/{long_tag}"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        row(
            "PUT",
            format!("/v2/good/app/manifests/{long_tag}"),
            400,
            "MANIFEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        row(
            "PUT",
            "/v2/good/app/manifests/v2?tag=..",
            400,
            "MANIFEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        // Hostile query parameters.
        row("GET", "/v2/_catalog?n=-1", 400, "PAGINATION_NUMBER_INVALID"),
        row(
            "GET",
            "/v2/_catalog?n=%ff%fe",
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        row(
            "GET",
            "/v2/good/app/tags/list?n=99999999999999999999999",
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        row(
            "GET",
            "/v2/good/app/tags/list?n=18446744073709551615&last=..%2F..%2F",
            200,
            "",
        ),
        row(
            "GET",
            "/v2/_catalog?n=18446744073709551615&last=%00",
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        row(
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
        row("GET", "/v2/good%2Fapp/manifests/v1", 200, "").header("Accept", OCI_MANIFEST),
        // Invalid digests and unknown algorithms.
        row(
            "GET",
            "/v2/good/app/blobs/sha256:abc",
            400,
            "DIGEST_INVALID",
        ),
        row(
            "GET",
            format!("/v2/good/app/blobs/sha256:{}", "A".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        row(
            "GET",
            format!("/v2/good/app/blobs/md5:{}", "0".repeat(32)),
            400,
            "DIGEST_INVALID",
        ),
        row(
            "GET",
            format!("/v2/good/app/blobs/blake3:{}", "0".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        row(
            "GET",
            format!("/v2/good/app/blobs/sha512:{}", "0".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        row(
            "GET",
            "/v2/good/app/blobs/sha256:..%2f..%2fetc",
            404,
            "NOT_FOUND",
        ),
        row(
            "GET",
            format!("/v2/good/app/blobs/{layer}"),
            416,
            "RANGE_INVALID",
        )
        .header("Range", "bytes=18446744073709551615-"),
        row("GET", format!("/v2/good/app/blobs/{layer}"), 206, "")
            .header("Range", "bytes=0-18446744073709551615"),
        row(
            "GET",
            "/v2/good/app/referrers/sha256:zz",
            400,
            "DIGEST_INVALID",
        ),
        row(
            "DELETE",
            format!("/v2/good/app/blobs/sha256:{}", "g".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        row(
            "POST",
            "/v2/good/app/blobs/uploads/?digest=sha256:1234",
            400,
            "DIGEST_INVALID",
        )
        .body("hello"),
        row(
            "POST",
            format!("/v2/good/app/blobs/uploads/?digest=blake3:{}", hello.hex()),
            400,
            "DIGEST_INVALID",
        )
        .body("hello"),
        row(
            "POST",
            "/v2/good/app/blobs/uploads/?mount=sha256:bad&from=good/app",
            400,
            "DIGEST_INVALID",
        ),
        row(
            "POST",
            "/v2/good/app/blobs/uploads/?digest-algorithm=md5",
            400,
            "DIGEST_INVALID",
        ),
        // Digest mismatch on a monolithic upload (whole and chunked-encoded).
        row(
            "POST",
            format!("/v2/good/app/blobs/uploads/?digest={hello}"),
            400,
            "DIGEST_INVALID",
        )
        .body("hellx"),
        row(
            "POST",
            format!("/v2/good/app/blobs/uploads/?digest={hello}"),
            400,
            "DIGEST_INVALID",
        )
        .chunked("hello, with more"),
        // Unknown sessions, malformed ids, and another repository's session.
        row(
            "PATCH",
            format!("/v2/good/app/blobs/uploads/{random_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("x"),
        row(
            "PATCH",
            "/v2/good/app/blobs/uploads/not-a-uuid",
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("x"),
        row(
            "PATCH",
            format!("/v2/good/app/blobs/uploads/{}", b_id.to_uppercase()),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("x"),
        row(
            "GET",
            format!("/v2/good/app/blobs/uploads/{random_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        row(
            "PUT",
            format!("/v2/good/app/blobs/uploads/{random_id}?digest={hello}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("hello"),
        row(
            "PATCH",
            format!("/v2/good/other/blobs/uploads/{b_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("x"),
        row(
            "PUT",
            format!("/v2/good/other/blobs/uploads/{b_id}?digest={hello}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        .body("hello"),
        row(
            "GET",
            format!("/v2/good/other/blobs/uploads/{b_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        row(
            "DELETE",
            format!("/v2/good/other/blobs/uploads/{b_id}"),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        row("GET", b.clone(), 204, ""),
        // Content-Range lies on session A.
        row("PATCH", a.clone(), 416, "RANGE_INVALID")
            .header("Content-Range", "100-109")
            .body([1u8; 10]),
        row("PATCH", a.clone(), 202, "")
            .header("Content-Range", "0-9")
            .body([1u8; 10]),
        row("PATCH", a.clone(), 416, "RANGE_INVALID")
            .header("Content-Range", "5-14")
            .body([2u8; 10]),
        row("PATCH", a.clone(), 416, "RANGE_INVALID")
            .header("Content-Range", "0-9")
            .body([1u8; 10]),
        row("PATCH", a.clone(), 400, "SIZE_INVALID")
            .header("Content-Range", "10-29")
            .body([3u8; 10]),
        row("PATCH", a.clone(), 400, "SIZE_INVALID")
            .header("Content-Range", "10-19")
            .chunked([4u8; 25]),
        row("PATCH", a.clone(), 400, "BLOB_UPLOAD_INVALID")
            .header("Content-Range", "10-18446744073709551615")
            .body([5u8; 10]),
        row("PATCH", a.clone(), 400, "BLOB_UPLOAD_INVALID")
            .header("Content-Range", "0-18446744073709551615")
            .body([5u8; 10]),
        row("PATCH", a.clone(), 400, "BLOB_UPLOAD_INVALID")
            .header("Content-Range", "19-10")
            .body([6u8; 10]),
        row("PATCH", a.clone(), 400, "BLOB_UPLOAD_INVALID")
            .header("Content-Range", "bytes=a-b")
            .body([6u8; 10]),
        row("PUT", format!("{a}?digest={hello}"), 400, "DIGEST_INVALID"),
        row("PATCH", a.clone(), 404, "BLOB_UPLOAD_UNKNOWN").body("x"),
        // Session B: commit without a digest, then with a wrong one.
        row("PUT", b.clone(), 400, "DIGEST_INVALID").body("hello"),
        row("PUT", format!("{b}?digest={hello}"), 400, "DIGEST_INVALID").body("jello"),
        // Manifests that are not JSON, or lie about their media type.
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, "not json"),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID").manifest(OCI_MANIFEST, ""),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .body(r#"{"schemaVersion":2}"#),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(DOCKER_MANIFEST, valid_manifest.clone()),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID").manifest(
            "text/plain",
            r#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
        ),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_INDEX, valid_manifest.replace(OCI_MANIFEST, OCI_INDEX)),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID").manifest(
            OCI_MANIFEST,
            valid_manifest.replace("\"schemaVersion\":2", "\"schemaVersion\":1"),
        ),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID").manifest(
            OCI_MANIFEST,
            valid_manifest.replace("\"size\":9", "\"size\":-9"),
        ),
        row(
            "PUT",
            "/v2/good/app/manifests/v2",
            400,
            "MANIFEST_BLOB_UNKNOWN",
        )
        .manifest(OCI_MANIFEST, missing_blobs),
        row(
            "PUT",
            format!("/v2/good/app/manifests/{unknown}"),
            400,
            "DIGEST_INVALID",
        )
        .manifest(OCI_MANIFEST, valid_manifest.clone()),
        // Deep, huge and oversized JSON.
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, nested_arrays(100_000)),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, nested_in_field),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, nested_objects),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, nested_unknown_field),
        row("PUT", "/v2/good/app/manifests/v2", 400, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, huge_array),
        row("PUT", "/v2/good/app/manifests/v2", 413, "MANIFEST_INVALID")
            .manifest(OCI_MANIFEST, over_limit.clone()),
        row("PUT", "/v2/good/app/manifests/v2", 413, "MANIFEST_INVALID")
            .header("Content-Type", OCI_MANIFEST)
            .chunked(over_limit),
        row("PUT", "/v2/good/app/manifests/v2", 413, "MANIFEST_INVALID")
            .header("Content-Type", OCI_MANIFEST)
            .header("Content-Length", "99999999999"),
    ];
    run(&host, rows).await;

    // Read-only maintenance: a second server on the same storage refuses every write.
    let read_only_yaml = config_yaml(&registry.root, "").replace(
        "\nhttp:",
        "\n  maintenance:\n    readonly:\n      enabled: true\nhttp:",
    );
    let read_only = TestRegistry::start_on(&registry.root, &read_only_yaml).await;
    let ro = read_only.host();
    let live = session(&registry, "good/app").await;
    run(
        &ro,
        vec![
            row("POST", "/v2/good/app/blobs/uploads/", 405, "UNSUPPORTED"),
            row(
                "POST",
                format!("/v2/good/app/blobs/uploads/?digest={hello}"),
                405,
                "UNSUPPORTED",
            )
            .body("hello"),
            row(
                "POST",
                format!("/v2/good/new/blobs/uploads/?mount={layer}&from=good/app"),
                405,
                "UNSUPPORTED",
            ),
            row("PATCH", live.clone(), 405, "UNSUPPORTED").body("hello"),
            row("PUT", format!("{live}?digest={hello}"), 405, "UNSUPPORTED").body("hello"),
            row("DELETE", live.clone(), 405, "UNSUPPORTED"),
            row("PUT", "/v2/good/app/manifests/v2", 405, "UNSUPPORTED")
                .manifest(OCI_MANIFEST, valid_manifest.clone()),
            row("DELETE", "/v2/good/app/manifests/v1", 405, "UNSUPPORTED"),
            row(
                "DELETE",
                format!("/v2/good/app/manifests/{manifest_digest}"),
                405,
                "UNSUPPORTED",
            ),
            row(
                "DELETE",
                format!("/v2/good/app/blobs/{layer}"),
                405,
                "UNSUPPORTED",
            ),
            row("GET", "/v2/good/app/manifests/v1", 200, "").header("Accept", OCI_MANIFEST),
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
    // `registry verify`'s check: every stored blob still hashes to its digest.
    let content = registry::content::Content::new(registry.storage.clone());
    let report = registry::verify::verify_blobs(&content, 8).await.unwrap();
    assert!(report.blobs > 0 && report.corrupt.is_empty(), "{report:?}");
}
