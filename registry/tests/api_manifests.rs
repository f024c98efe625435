//! Manifests over HTTP: push/pull by tag and digest, exact bytes, content
//! negotiation, references checked, subject, size limit, deletes, read-only.

mod common;

use common::expect::{expect, expect_all};
use common::*;
use registry::oci::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn push_and_pull_by_tag_and_digest_keeps_exact_bytes() {
    let registry = TestRegistry::start().await;
    let layer = random_bytes(1000);
    let config = registry.push_blob("app", br#"{"os":"linux"}"#).await;
    let layer_digest = registry.push_blob("app", &layer).await;
    // Unusual whitespace and key order must survive byte-for-byte.
    let manifest = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{OCI_MANIFEST}\",\n  \"layers\": [ {{\"size\": {}, \"digest\": \"{layer_digest}\", \"mediaType\": \"{LAYER}\"}} ],\n  \"config\": {{\"mediaType\": \"{CONFIG}\", \"digest\": \"{config}\", \"size\": 14}}\n}}\n",
        layer.len()
    );
    let digest = Algorithm::Sha256.digest_of(manifest.as_bytes());
    let response = registry
        .put_manifest("app", "v1", OCI_MANIFEST, manifest.as_bytes())
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["location"],
        format!("/v2/app/manifests/{digest}").as_str()
    );
    assert_eq!(
        response.headers()["docker-content-digest"],
        digest.to_string().as_str()
    );
    assert!(response.headers().get("oci-subject").is_none());

    for reference in ["v1".to_owned(), digest.to_string()] {
        let response = registry
            .get(&format!("/v2/app/manifests/{reference}"))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(
            response.headers()["docker-content-digest"],
            digest.to_string().as_str()
        );
        assert_eq!(response.bytes().await.unwrap(), manifest.as_bytes());

        let head = registry
            .head(&format!("/v2/app/manifests/{reference}"))
            .await;
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(
            head.headers()["content-length"],
            manifest.len().to_string().as_str()
        );
        assert_eq!(
            head.headers()["docker-content-digest"],
            digest.to_string().as_str()
        );
    }
    // Pushing by digest with the right digest works too; a wrong one does not.
    let response = registry
        .put_manifest(
            "app",
            &digest.to_string(),
            OCI_MANIFEST,
            manifest.as_bytes(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let wrong = Algorithm::Sha256.digest_of(b"x");
    let response = registry
        .put_manifest("app", &wrong.to_string(), OCI_MANIFEST, manifest.as_bytes())
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn docker_schema2_and_manifest_lists_with_negotiation() {
    let registry = TestRegistry::start().await;
    let config = registry.push_blob("multi", b"{}").await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config.to_string(), "size": 2},
        "layers": []
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let child = Algorithm::Sha256.digest_of(&bytes);
    assert_eq!(
        registry
            .put_manifest("multi", &child.to_string(), DOCKER_MANIFEST, &bytes)
            .await
            .status(),
        StatusCode::CREATED
    );
    let list = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child.to_string(), "size": bytes.len(), "platform": {"architecture": "amd64", "os": "linux"}}]
    });
    let list_bytes = serde_json::to_vec(&list).unwrap();
    assert_eq!(
        registry
            .put_manifest("multi", "latest", DOCKER_LIST, &list_bytes)
            .await
            .status(),
        StatusCode::CREATED
    );

    let get = |accept: &'static str| {
        registry
            .request(Method::GET, "/v2/multi/manifests/latest")
            .header("accept", accept)
            .send()
    };
    let response = get("application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], DOCKER_LIST);
    assert_eq!(get("*/*").await.unwrap().status(), StatusCode::OK);
    // distribution v3's negotiation: a client that does not take lists gets
    // the linux/amd64 image for a tag...
    let response = get(DOCKER_MANIFEST).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], DOCKER_MANIFEST);
    assert_eq!(
        response.headers()["docker-content-digest"],
        child.to_string().as_str()
    );
    assert_eq!(response.bytes().await.unwrap(), bytes);
    // ...unless it does not take schema 2 either.
    assert_error(
        get(OCI_MANIFEST).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "MANIFEST_INVALID",
    )
    .await;
    // By digest, the list itself; schema 2 is served whatever Accept says.
    let list_digest = Algorithm::Sha256.digest_of(&list_bytes);
    for (reference, expected) in [(list_digest, DOCKER_LIST), (child.clone(), DOCKER_MANIFEST)] {
        let response = registry
            .request(Method::GET, &format!("/v2/multi/manifests/{reference}"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{reference}");
        assert_eq!(response.headers()["content-type"], expected);
    }
    // Without Accept, what is stored (distribution v3 answers 404 for OCI types).
    let response = registry.get("/v2/multi/manifests/latest").await;
    assert_eq!(response.headers()["content-type"], DOCKER_LIST);
    // A list without a linux/amd64 image has nothing to offer such a client.
    let arm_only = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child.to_string(), "size": bytes.len(), "platform": {"architecture": "arm64", "os": "linux"}}]
    });
    registry
        .put_manifest(
            "multi",
            "arm",
            DOCKER_LIST,
            &serde_json::to_vec(&arm_only).unwrap(),
        )
        .await;
    let response = registry
        .request(Method::GET, "/v2/multi/manifests/arm")
        .header("accept", DOCKER_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    // ETag revalidation.
    let etag = format!("\"{}\"", Algorithm::Sha256.digest_of(&list_bytes));
    let response = registry
        .request(Method::GET, "/v2/multi/manifests/latest")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn references_must_exist() {
    let registry = TestRegistry::start().await;
    let config = registry.push_blob("refs", b"{}").await;
    let missing = Algorithm::Sha256.digest_of(b"missing layer");
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": LAYER, "digest": missing.to_string(), "size": 13}]
    });
    let response = registry
        .put_manifest(
            "refs",
            "v1",
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(body["errors"][0]["detail"]["digest"], missing.to_string());

    // A blob pushed to another repository is not visible here.
    let elsewhere = registry.push_blob("other", b"layer elsewhere").await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": LAYER, "digest": elsewhere.to_string(), "size": 15}]
    });
    let response = registry
        .put_manifest(
            "refs",
            "v1",
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;

    // A non-distributable layer pointing elsewhere: no URL is allowed by
    // default (distribution's rule), so it must be pushed like any layer.
    let foreign = foreign_manifest(&config, &missing, "https://example.com/layer");
    let response = registry
        .put_manifest("refs", "foreign", OCI_MANIFEST, &foreign)
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;

    // An index whose child is missing.
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing.to_string(), "size": 100}]
    });
    let response = registry
        .put_manifest(
            "refs",
            "index",
            OCI_INDEX,
            &serde_json::to_vec(&index).unwrap(),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    expect("GET", "/v2/refs/manifests/index", 404, "MANIFEST_UNKNOWN")
        .send(&registry.host())
        .await;
}

fn foreign_manifest(
    config: &registry::oci::Digest,
    layer: &registry::oci::Digest,
    url: &str,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": layer.to_string(), "size": 13, "urls": [url]}]
    }))
    .unwrap()
}

#[tokio::test]
async fn foreign_layer_urls_follow_validation_manifests_urls() {
    let registry = TestRegistry::start_with(|root| {
        config_yaml(root, "")
            + "validation:\n  manifests:\n    urls:\n      allow:\n        - ^https://([^/]+\\.)*example\\.com/\n      deny:\n        - ^https://www\\.example\\.com/\n"
    })
    .await;
    let config = registry.push_blob("urls", b"{}").await;
    let elsewhere = Algorithm::Sha256.digest_of(b"served by the CDN");
    // An allowed URL: the layer need not be in the registry.
    let allowed = foreign_manifest(&config, &elsewhere, "https://cdn.example.com/layer");
    let response = registry
        .put_manifest("urls", "allowed", OCI_MANIFEST, &allowed)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for refused in [
        "https://www.example.com/layer",
        "https://example.org/layer",
        "ftp://cdn.example.com/layer",
    ] {
        let manifest = foreign_manifest(&config, &elsewhere, refused);
        let response = registry
            .put_manifest("urls", "refused", OCI_MANIFEST, &manifest)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
    // URLs never excuse a missing config or a normal layer.
    let config_elsewhere = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": elsewhere.to_string(), "size": 2, "urls": ["https://cdn.example.com/c"]},
        "layers": []
    }))
    .unwrap();
    let response = registry
        .put_manifest("urls", "config", OCI_MANIFEST, &config_elsewhere)
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_error(
        registry.get("/v2/urls/manifests/refused").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn sparse_indexes_when_configured() {
    let registry = TestRegistry::start_with(|root| {
        config_yaml(
            root,
            "validation:\n  manifests:\n    indexes:\n      platforms: none\n",
        )
    })
    .await;
    let missing = Algorithm::Sha256.digest_of(b"not here");
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing.to_string(), "size": 100}]
    });
    let response = registry
        .put_manifest(
            "sparse",
            "v1",
            OCI_INDEX,
            &serde_json::to_vec(&index).unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn subject_is_echoed_even_when_missing() {
    let registry = TestRegistry::start().await;
    let config = registry.push_blob("sig", b"{}").await;
    let subject = Algorithm::Sha256.digest_of(b"subject not pushed yet");
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": 10}
    });
    let response = registry
        .put_manifest(
            "sig",
            &Algorithm::Sha256
                .digest_of(&serde_json::to_vec(&manifest).unwrap())
                .to_string(),
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["oci-subject"],
        subject.to_string().as_str()
    );
}

#[tokio::test]
async fn invalid_manifests_are_rejected_and_change_nothing() {
    let registry = TestRegistry::start().await;
    registry.push_image("bad", "keep", &[b"layer"]).await;
    let before = registry.stored().await;
    let put = |status, media_type, body: &[u8]| {
        expect("PUT", "/v2/bad/manifests/keep", status, "MANIFEST_INVALID")
            .manifest(media_type, body)
    };
    let rows = vec![
        put(400, OCI_MANIFEST, b"not json"),
        put(400, OCI_MANIFEST, b"{\"schemaVersion\": 1}"),
        put(400, "text/plain", br#"{"schemaVersion":2,"layers":[]}"#),
        put(
            400,
            OCI_INDEX,
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{}}}}"#)
                .as_bytes(),
        ),
        put(
            400,
            OCI_MANIFEST,
            format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes(),
        ),
        put(413, OCI_MANIFEST, &vec![b' '; 4 * 1024 * 1024 + 1]),
    ];
    expect_all(&registry.host(), rows).await;
    assert_eq!(registry.stored().await, before);
    // Exactly 4 MiB of valid manifest is accepted.
    let config = registry.push_blob("big", b"{}").await;
    let mut manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{CONFIG}","digest":"{config}","size":2}},"layers":[],"annotations":{{"pad":""#
    );
    let closing = "\"}}";
    let pad = 4 * 1024 * 1024 - manifest.len() - closing.len();
    manifest.push_str(&"x".repeat(pad));
    manifest.push_str(closing);
    assert_eq!(manifest.len(), 4 * 1024 * 1024);
    assert_eq!(
        registry
            .put_manifest("big", "v1", OCI_MANIFEST, manifest.as_bytes())
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn deleting_tags_and_manifests() {
    let registry = TestRegistry::start().await;
    let host = registry.host();
    let (digest, _) = registry.push_image("del", "a", &[b"one"]).await;
    let manifest = registry
        .get("/v2/del/manifests/a")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        registry
            .put_manifest("del", "b", OCI_MANIFEST, &manifest)
            .await
            .status(),
        StatusCode::CREATED
    );

    // Deleting a tag leaves the manifest and the other tag.
    assert_eq!(
        registry.delete("/v2/del/manifests/a").await.status(),
        StatusCode::ACCEPTED
    );
    expect("GET", "/v2/del/manifests/a", 404, "MANIFEST_UNKNOWN")
        .send(&host)
        .await;
    assert_eq!(
        registry.get("/v2/del/manifests/b").await.status(),
        StatusCode::OK
    );
    expect("DELETE", "/v2/del/manifests/a", 404, "MANIFEST_UNKNOWN")
        .send(&host)
        .await;

    // Deleting by digest removes it and every tag pointing at it.
    assert_eq!(
        registry
            .delete(&format!("/v2/del/manifests/{digest}"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    expect(
        "GET",
        format!("/v2/del/manifests/{digest}"),
        404,
        "MANIFEST_UNKNOWN",
    )
    .send(&host)
    .await;
    expect("GET", "/v2/del/manifests/b", 404, "MANIFEST_UNKNOWN")
        .send(&host)
        .await;
    let tags: serde_json::Value = registry
        .get("/v2/del/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!([]));

    // Blob delete unlinks it from this repository only.
    let blob = registry.push_blob("del", b"blob").await;
    registry.push_blob("del2", b"blob").await;
    assert_eq!(
        registry
            .delete(&format!("/v2/del/blobs/{blob}"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    expect("GET", format!("/v2/del/blobs/{blob}"), 404, "BLOB_UNKNOWN")
        .send(&host)
        .await;
    assert_eq!(
        registry
            .get(&format!("/v2/del2/blobs/{blob}"))
            .await
            .status(),
        StatusCode::OK
    );
    expect(
        "DELETE",
        format!("/v2/del/blobs/{blob}"),
        404,
        "BLOB_UNKNOWN",
    )
    .send(&host)
    .await;
}

#[tokio::test]
async fn deletes_disabled_answer_405_unsupported() {
    let registry = TestRegistry::start_with(|root| {
        config_yaml(root, "").replace("delete:\n    enabled: true", "delete:\n    enabled: false")
    })
    .await;
    let (digest, _) = registry.push_image("nodelete", "v1", &[b"l"]).await;
    let before = registry.stored().await;
    for path in [
        "/v2/nodelete/manifests/v1".to_owned(),
        format!("/v2/nodelete/manifests/{digest}"),
        format!("/v2/nodelete/blobs/{}", Algorithm::Sha256.digest_of(b"l")),
    ] {
        expect("DELETE", path, 405, "UNSUPPORTED")
            .send(&registry.host())
            .await;
    }
    assert_eq!(registry.stored().await, before);
}

#[tokio::test]
async fn read_only_mode_refuses_writes_and_serves_reads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let writable = TestRegistry::start_on(&root, &config_yaml(&root, "")).await;
    let (digest, _) = writable.push_image("ro", "v1", &[b"layer"]).await;
    let session = writable
        .request(Method::POST, "/v2/ro/blobs/uploads/")
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    writable.stop().await;

    let read_only = config_yaml(&root, "").replace(
        "  delete:\n    enabled: true\n",
        "  delete:\n    enabled: true\n  maintenance:\n    readonly:\n      enabled: true\n",
    );
    let registry = TestRegistry::start_on(&root, &read_only).await;
    let before = registry.stored().await;
    let blob = Algorithm::Sha256.digest_of(b"new");
    let refused = |method, path: String| expect(method, path, 405, "UNSUPPORTED");
    let writes = [
        refused("POST", "/v2/ro/blobs/uploads/".into()),
        refused("POST", format!("/v2/ro/blobs/uploads/?digest={blob}")).body("new"),
        refused("PATCH", session.clone()).body("x"),
        refused("PUT", format!("{session}?digest={blob}")),
        refused("DELETE", session.clone()),
        refused("PUT", "/v2/ro/manifests/v2".into()).manifest(OCI_MANIFEST, "{}"),
        refused("DELETE", "/v2/ro/manifests/v1".into()),
        refused("DELETE", format!("/v2/ro/blobs/{blob}")),
    ];
    let host = registry.host();
    for write in writes {
        let response = write.send(&host).await;
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("read-only")
        );
    }
    assert_eq!(registry.stored().await, before);
    assert_eq!(
        registry.get("/v2/ro/manifests/v1").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        registry
            .get(&format!("/v2/ro/manifests/{digest}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        registry.get("/v2/ro/tags/list").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        registry.get(&session).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn tag_parameters_apply_several_tags_and_keep_the_digest_algorithm() {
    let registry = TestRegistry::start().await;
    let config = registry.push_blob("tagparam", b"{}").await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config.to_string(), "size": 2},
        "layers": []
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    // Pushed by its sha512 digest with two tags.
    let digest = Algorithm::Sha512.digest_of(&bytes);
    let response = registry
        .request(
            Method::PUT,
            &format!("/v2/tagparam/manifests/{digest}?tag=one&tag=two"),
        )
        .header("content-type", OCI_MANIFEST)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["oci-tag"], "one, two");
    assert_eq!(
        response.headers()["docker-content-digest"],
        digest.to_string().as_str()
    );
    for tag in ["one", "two"] {
        let response = registry.get(&format!("/v2/tagparam/manifests/{tag}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        // The tag remembers the algorithm the manifest was pushed with.
        assert_eq!(
            response.headers()["docker-content-digest"],
            digest.to_string().as_str()
        );
        assert_eq!(response.bytes().await.unwrap(), bytes);
    }
    let tags: serde_json::Value = registry
        .get("/v2/tagparam/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["one", "two"]));

    expect(
        "PUT",
        format!("/v2/tagparam/manifests/{digest}?tag=bad/tag"),
        400,
        "MANIFEST_INVALID",
    )
    .manifest(OCI_MANIFEST, bytes)
    .send(&registry.host())
    .await;
}

#[tokio::test]
async fn sparse_manifests_when_configured() {
    let registry = TestRegistry::start_with(|root| {
        config_yaml(root, "validation:\n  manifests:\n    sparse: true\n")
    })
    .await;
    let missing = Algorithm::Sha256.digest_of(b"layer never uploaded");
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": missing.to_string(), "size": 20},
        "layers": [{"mediaType": LAYER, "digest": missing.to_string(), "size": 20}]
    });
    let response = registry
        .put_manifest(
            "sparse",
            "v1",
            OCI_MANIFEST,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        registry.get("/v2/sparse/manifests/v1").await.status(),
        StatusCode::OK
    );
    expect(
        "GET",
        format!("/v2/sparse/blobs/{missing}"),
        404,
        "BLOB_UNKNOWN",
    )
    .send(&registry.host())
    .await;
}
