//! Content discovery over HTTP: tags list and catalog pagination with
//! `Link`, and the referrers API with `artifactType` filtering.

mod common;

use common::expect::{expect, expect_all};
use common::*;
use registry::oci::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn tags_list_paginates_in_lexical_order() {
    let registry = TestRegistry::start().await;
    let (_, manifest) = registry.push_image("tags/repo", "b", &[b"x"]).await;
    for tag in ["a", "c", "d", "A1", "_z"] {
        assert_eq!(
            registry
                .put_manifest("tags/repo", tag, OCI_MANIFEST, &manifest)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let all: Value = registry
        .get("/v2/tags/repo/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        all,
        json!({"name": "tags/repo", "tags": ["A1", "_z", "a", "b", "c", "d"]})
    );

    let response = registry.get("/v2/tags/repo/tags/list?n=2").await;
    assert_eq!(
        response.headers()["link"],
        "</v2/tags/repo/tags/list?n=2&last=_z>; rel=\"next\""
    );
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["tags"], json!(["A1", "_z"]));

    let response = registry.get("/v2/tags/repo/tags/list?n=2&last=_z").await;
    assert!(response.headers().get("link").is_some());
    assert_eq!(
        response.json::<Value>().await.unwrap()["tags"],
        json!(["a", "b"])
    );
    let response = registry.get("/v2/tags/repo/tags/list?n=2&last=b").await;
    assert!(response.headers().get("link").is_none());
    assert_eq!(
        response.json::<Value>().await.unwrap()["tags"],
        json!(["c", "d"])
    );

    let response = registry.get("/v2/tags/repo/tags/list?n=0").await;
    assert!(response.headers().get("link").is_none());
    assert_eq!(response.json::<Value>().await.unwrap()["tags"], json!([]));
    let response = registry.get("/v2/tags/repo/tags/list?last=c").await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["tags"],
        json!(["d"])
    );

    let rows = vec![
        expect(
            "GET",
            "/v2/tags/repo/tags/list?n=-1",
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        expect("GET", "/v2/never/pushed/tags/list", 404, "NAME_UNKNOWN"),
    ];
    expect_all(&registry.host(), rows).await;
}

#[tokio::test]
async fn catalog_lists_repositories_with_pagination() {
    let registry =
        TestRegistry::start_with(|root| config_yaml(root, "catalog:\n  maxentries: 3\n")).await;
    for repo in ["zeta", "alpha", "alpha/nested", "mid/deep/er"] {
        registry.push_image(repo, "v1", &[repo.as_bytes()]).await;
    }
    // Blobs alone do not make a repository.
    registry.push_blob("blobs-only", b"b").await;

    let response = registry.get("/v2/_catalog").await;
    assert_eq!(
        response.headers()["link"],
        "</v2/_catalog?n=3&last=mid%2Fdeep%2Fer>; rel=\"next\""
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"repositories": ["alpha", "alpha/nested", "mid/deep/er"]})
    );
    let response = registry.get("/v2/_catalog?n=3&last=mid%2Fdeep%2Fer").await;
    assert!(response.headers().get("link").is_none());
    assert_eq!(
        response.json::<Value>().await.unwrap()["repositories"],
        json!(["zeta"])
    );
    // n above catalog.maxentries is refused, as distribution does.
    let response = registry.get("/v2/_catalog?n=4").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "PAGINATION_NUMBER_INVALID");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("catalog.maxentries"),
        "{body}"
    );
}

/// Every repository through `Link`s, `n` at a time.
async fn catalog_pages(registry: &TestRegistry, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut next = Some(format!("/v2/_catalog?n={n}"));
    while let Some(path) = next {
        let response = registry.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_owned()
        });
        let page: Value = response.json().await.unwrap();
        let page = page["repositories"].as_array().unwrap();
        assert!(page.len() <= n, "{path}: {page:?}");
        assert!(
            !page.is_empty() || names.is_empty(),
            "{path}: an empty page with a link before it"
        );
        names.extend(page.iter().map(|r| r.as_str().unwrap().to_owned()));
        assert!(names.len() < 100, "pagination does not end");
    }
    names
}

#[tokio::test]
async fn catalog_pages_follow_full_name_order_and_stop_early() {
    let registry = TestRegistry::start().await;
    // Names whose order differs between a per-directory walk and the full
    // strings: '-' and '.' sort before '/'.
    let mut repos = vec![
        "a", "a-b", "a/b", "a.c", "a/b/c", "ab", "b/x/y", "b-x", "z/z",
    ];
    for repo in &repos {
        registry.push_image(repo, "v1", &[repo.as_bytes()]).await;
    }
    registry.push_blob("a/blobs-only", b"b").await;
    repos.sort();
    for n in 1..=repos.len() + 1 {
        assert_eq!(catalog_pages(&registry, n).await, repos, "n={n}");
    }
    // A page is found without reading past it: a broken entry sorting after
    // the first page does not fail that page (it used to walk everything).
    if registry.on_filesystem() {
        let broken = registry.root.join("docker/registry/v2/repositories/zzz");
        std::fs::write(&broken, b"not a directory").unwrap();
        let response = registry.get("/v2/_catalog?n=3").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.json::<Value>().await.unwrap()["repositories"],
            json!(repos[..3])
        );
        std::fs::remove_file(&broken).unwrap();
    }
}

/// Pushes an artifact manifest referring to `subject`; returns its digest.
async fn push_referrer(
    registry: &TestRegistry,
    repo: &str,
    subject: &registry::oci::Digest,
    subject_size: usize,
    artifact_type: Option<&str>,
    config_type: &str,
    annotation: &str,
) -> registry::oci::Digest {
    let config = registry.push_blob(repo, b"{}").await;
    let mut manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config.to_string(), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": subject_size},
        "annotations": {"note": annotation}
    });
    if let Some(artifact_type) = artifact_type {
        manifest["artifactType"] = json!(artifact_type);
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = Algorithm::Sha256.digest_of(&bytes);
    let response = registry
        .put_manifest(repo, &digest.to_string(), OCI_MANIFEST, &bytes)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["oci-subject"],
        subject.to_string().as_str()
    );
    digest
}

#[tokio::test]
async fn referrers_api_lists_filters_and_never_404s() {
    let registry = TestRegistry::start().await;
    let (subject, subject_bytes) = registry.push_image("ref", "v1", &[b"layer"]).await;
    let signature = push_referrer(
        &registry,
        "ref",
        &subject,
        subject_bytes.len(),
        Some("application/vnd.example.sig"),
        "application/vnd.oci.empty.v1+json",
        "sig",
    )
    .await;
    let sbom = push_referrer(
        &registry,
        "ref",
        &subject,
        subject_bytes.len(),
        None,
        "application/vnd.example.sbom",
        "sbom",
    )
    .await;

    let response = registry.get(&format!("/v2/ref/referrers/{subject}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], OCI_INDEX);
    assert!(response.headers().get("oci-filters-applied").is_none());
    let index: Value = response.json().await.unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    let by_digest = |d: &registry::oci::Digest| {
        manifests
            .iter()
            .find(|m| m["digest"] == d.to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_digest(&signature)["artifactType"],
        "application/vnd.example.sig"
    );
    assert_eq!(by_digest(&signature)["annotations"]["note"], "sig");
    assert_eq!(by_digest(&signature)["mediaType"], OCI_MANIFEST);
    // Without artifactType, the config media type stands in.
    assert_eq!(
        by_digest(&sbom)["artifactType"],
        "application/vnd.example.sbom"
    );

    let response = registry
        .get(&format!(
            "/v2/ref/referrers/{subject}?artifactType=application/vnd.example.sbom"
        ))
        .await;
    assert_eq!(response.headers()["oci-filters-applied"], "artifactType");
    let filtered: Value = response.json().await.unwrap();
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["manifests"][0]["digest"], sbom.to_string());

    // Unknown subjects and repositories: an empty index, not 404.
    let unknown = Algorithm::Sha256.digest_of(b"nothing refers to me");
    for path in [
        format!("/v2/ref/referrers/{unknown}"),
        format!("/v2/no/such/repo/referrers/{unknown}"),
    ] {
        let response = registry.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.json::<Value>().await.unwrap()["manifests"],
            json!([])
        );
    }
    expect("GET", "/v2/ref/referrers/sha256:bad", 400, "DIGEST_INVALID")
        .send(&registry.host())
        .await;

    // Deleting a referrer removes it from the listing.
    assert_eq!(
        registry
            .delete(&format!("/v2/ref/manifests/{signature}"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let index: Value = registry
        .get(&format!("/v2/ref/referrers/{subject}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn referrers_recorded_through_the_fallback_tag_are_listed() {
    let registry = TestRegistry::start().await;
    let (subject, _) = registry.push_image("fallback", "v1", &[b"layer"]).await;
    let referrer = Algorithm::Sha256.digest_of(b"a referrer pushed elsewhere");
    // A client without the referrers API maintains this index under the tag `sha256-<hex>`.
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": referrer.to_string(), "size": 123, "artifactType": "application/vnd.example.legacy"}]
    });
    // The listed child is not in this repository, so only a registry that
    // accepts sparse indexes takes the push: use a second one on the same storage.
    let sparse = TestRegistry::start_on(
        &registry.root,
        &config_yaml(
            &registry.root,
            "validation:\n  manifests:\n    indexes:\n      platforms: none\n",
        ),
    )
    .await;
    let response = sparse
        .put_manifest(
            "fallback",
            &format!("sha256-{}", subject.hex()),
            OCI_INDEX,
            &serde_json::to_vec(&index).unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let listed: Value = registry
        .get(&format!("/v2/fallback/referrers/{subject}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["manifests"][0]["digest"], referrer.to_string());
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/vnd.example.legacy"
    );
}

/// The `next` link of a listing response, if any.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().unwrap();
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    assert!(link.ends_with("rel=\"next\""), "{link}");
    Some(link[start..end].to_owned())
}

/// Follows `Link: rel="next"` from `path`; returns every digest listed and
/// how many pages it took.
async fn all_referrer_pages(registry: &TestRegistry, path: &str) -> (Vec<String>, usize) {
    let (mut digests, mut pages) = (Vec::new(), 0);
    let mut next = Some(path.to_owned());
    while let Some(path) = next {
        let response = registry.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        next = next_link(&response);
        let index: Value = response.json().await.unwrap();
        let page = index["manifests"].as_array().unwrap();
        assert!(page.len() <= registry::content::REFERRERS_PAGE);
        digests.extend(
            page.iter()
                .map(|m| m["digest"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        assert!(pages < 10, "pagination does not end");
    }
    (digests, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_are_paginated_with_link_and_read_from_their_index() {
    use futures_util::{StreamExt, stream};
    use registry::oci::{Digest, RepositoryName};
    use registry::storage::layout;

    let registry = TestRegistry::start().await;
    let (subject, subject_bytes) = registry.push_image("many", "v1", &[b"layer"]).await;
    let subject_size = subject_bytes.len();
    // Past the default page on the filesystem; object stores (slower per
    // request) check the same paging through `n`.
    let (total, n) = if registry.on_filesystem() {
        (registry::content::REFERRERS_PAGE + 3, None)
    } else {
        (53, Some(20))
    };
    let mut pushed: Vec<Digest> = stream::iter(0..total)
        .map(|i| {
            let (registry, subject) = (&registry, &subject);
            let artifact_type = if i % 100 == 0 { "rare" } else { "common" };
            async move {
                push_referrer(
                    registry,
                    "many",
                    subject,
                    subject_size,
                    Some(&format!("application/vnd.example.{artifact_type}")),
                    "application/vnd.oci.empty.v1+json",
                    &i.to_string(),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    pushed.sort();
    let pushed: Vec<String> = pushed.iter().map(|d| d.to_string()).collect();

    let page_size = n.unwrap_or(registry::content::REFERRERS_PAGE);
    let pages_for = |count: usize| count.div_ceil(page_size).max(1);
    let path = format!("/v2/many/referrers/{subject}");
    let first_page = match n {
        Some(n) => format!("{path}?n={n}"),
        None => path.clone(),
    };
    let separator = if n.is_some() { '&' } else { '?' };
    let (listed, pages) = all_referrer_pages(&registry, &first_page).await;
    assert_eq!(pages, pages_for(total));
    assert!(pages > 1);
    assert_eq!(listed, pushed, "every referrer once, ordered by digest");

    // A filter applies across pages and its link keeps the filter.
    let rare_count = total.div_ceil(100);
    let filtered = format!("{first_page}{separator}artifactType=application/vnd.example.rare");
    let (rare, pages) = all_referrer_pages(&registry, &filtered).await;
    assert_eq!((rare.len(), pages), (rare_count, pages_for(rare_count)));
    let common = format!("{first_page}{separator}artifactType=application%2Fvnd.example.common");
    let (common, pages) = all_referrer_pages(&registry, &common).await;
    let common_count = total - rare_count;
    assert_eq!(
        (common.len(), pages),
        (common_count, pages_for(common_count))
    );

    expect(
        "GET",
        format!("{path}?last=not-a-digest"),
        400,
        "PAGINATION_NUMBER_INVALID",
    )
    .send(&registry.host())
    .await;

    // An entry written before listings had descriptors (no `descriptor`
    // object) is described from its manifest, with the same fields.
    let repo: RepositoryName = "many".parse().unwrap();
    let first: Digest = pushed[0].parse().unwrap();
    let page: Value = registry.get_json(&path).await;
    let indexed = page["manifests"][0].clone();
    assert_eq!(indexed["digest"], pushed[0]);
    registry
        .storage
        .delete(&layout::referrer_descriptor(&repo, &subject, &first))
        .await
        .unwrap();
    let page: Value = registry.get_json(&path).await;
    assert_eq!(page["manifests"][0], indexed);
}
