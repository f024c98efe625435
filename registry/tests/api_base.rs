//! Base endpoint, blob reads with ranges, routing errors, operational
//! endpoints (health, readiness, metrics) and graceful shutdown.

mod common;

use std::time::Duration;

use common::expect::expect;
use common::*;
use registry::oci::Algorithm;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn base_endpoint_and_api_headers() {
    let registry = TestRegistry::start().await;
    for path in ["/v2/", "/v2"] {
        let response = registry.get(path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["docker-distribution-api-version"],
            "registry/2.0"
        );
        assert_eq!(response.text().await.unwrap(), "{}");
    }
    // http.headers from the config are added to API responses.
    let registry = TestRegistry::start_with(|root| {
        config_yaml(root, "").replace(
            "http:\n",
            "http:\n  headers:\n    X-Content-Type-Options: [nosniff]\n",
        )
    })
    .await;
    assert_eq!(
        registry.get("/v2/").await.headers()["x-content-type-options"],
        "nosniff"
    );
}

#[tokio::test]
async fn blob_reads_with_ranges() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(10_000);
    let digest = registry.push_blob("ranges", &data).await;
    let path = format!("/v2/ranges/blobs/{digest}");

    let head = registry.head(&path).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "10000");
    assert_eq!(
        head.headers()["docker-content-digest"],
        digest.to_string().as_str()
    );
    assert_eq!(head.headers()["accept-ranges"], "bytes");

    let range = |spec: &'static str| {
        registry
            .request(Method::GET, &path)
            .header("range", spec)
            .send()
    };
    let response = range("bytes=100-199").await.unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(response.headers()["content-length"], "100");
    assert_eq!(response.bytes().await.unwrap(), &data[100..200]);

    let response = range("bytes=9990-").await.unwrap();
    assert_eq!(response.bytes().await.unwrap(), &data[9990..]);
    let response = range("bytes=-5").await.unwrap();
    assert_eq!(response.bytes().await.unwrap(), &data[9995..]);

    let response = range("bytes=10000-").await.unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()["content-range"], "bytes */10000");

    let full = registry.get(&path).await;
    assert_eq!(full.headers()["content-length"], "10000");
    assert_eq!(full.bytes().await.unwrap(), data);

    // Empty blobs work too.
    let empty = registry.push_blob("ranges", b"").await;
    let response = registry.get(&format!("/v2/ranges/blobs/{empty}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "0");
}

#[tokio::test]
async fn routing_errors_use_spec_codes() {
    let registry = TestRegistry::start().await;
    let host = registry.host();
    let digest = Algorithm::Sha256.digest_of(b"x");
    let rows = vec![
        expect(
            "GET",
            format!("/v2/missing/blobs/{digest}"),
            404,
            "BLOB_UNKNOWN",
        ),
        expect(
            "GET",
            "/v2/missing/manifests/latest",
            404,
            "MANIFEST_UNKNOWN",
        ),
        expect("GET", "/v2/Bad-Name/tags/list", 400, "NAME_INVALID"),
        expect("GET", "/v2/a/blobs/sha256:1234", 400, "DIGEST_INVALID"),
        expect(
            "GET",
            "/v2/a/blobs/sha1:0123456789012345678901234567890123456789",
            400,
            "DIGEST_INVALID",
        ),
        expect("GET", "/v2/a/nothing-here", 404, "NOT_FOUND"),
        expect("POST", "/v2/a/manifests/latest", 405, "UNSUPPORTED"),
        expect("PUT", "/v2/a/blobs/uploads/", 405, "UNSUPPORTED"),
        expect(
            "GET",
            "/v2/a/blobs/uploads/not-a-session",
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
    ];
    for row in rows {
        let label = format!("{} {}", row.method, row.path);
        let response = row.send(&host).await;
        if response.status == 405 {
            assert!(response.header("allow").is_some(), "{label}");
        }
    }
    assert_eq!(
        registry.get("/nothing").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let registry = TestRegistry::start().await;
    assert_eq!(registry.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(registry.get("/readyz").await.status(), StatusCode::OK);

    registry.push_blob("metrics", &random_bytes(1234)).await;
    registry.get("/v2/missing/manifests/x").await;
    let text = registry.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"registry_http_requests_total{route="blob_upload",method="POST",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"registry_http_requests_total{route="manifest",method="GET",status="404"} 1"#
        )
    );
    assert!(text.contains("registry_http_request_duration_seconds_bucket"));
    assert!(text.contains("registry_uploads_in_progress 0"));
    let received: f64 = text
        .lines()
        .find(|l| l.starts_with("registry_http_received_bytes_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(received >= 1234.0, "{received}");

    // Readiness follows storage: make the storage root unwritable and it
    // fails (object stores: tests/storage_drivers.rs checks bad buckets).
    if registry.on_filesystem() {
        std::fs::remove_dir_all(registry.root.join(".berth-tmp")).unwrap();
        assert_eq!(
            registry.get("/readyz").await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(registry.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_uploads_finish() {
    let registry = TestRegistry::start().await;
    let data = random_bytes(200_000);
    let digest = Algorithm::Sha256.digest_of(&data);
    // A slow client: the body trickles in while the server is told to stop.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let request = registry
        .request(
            Method::POST,
            &format!("/v2/slow/blobs/uploads/?digest={digest}"),
        )
        .header("content-length", data.len())
        .body(reqwest::Body::wrap_stream(tokio_stream_from(rx)))
        .send();
    let sender = {
        let data = data.clone();
        tokio::spawn(async move {
            for chunk in data.chunks(50_000) {
                tx.send(Ok(chunk.to_vec())).await.unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = registry.url.clone();
    let storage = registry.storage.clone();
    let _storage = registry.stop().await;
    sender.await.unwrap();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // New connections are refused after shutdown.
    assert!(reqwest::get(format!("{url}/v2/")).await.is_err());
    let stored = storage
        .get(&registry::storage::layout::blob_data(&digest))
        .await
        .unwrap();
    assert_eq!(stored, data);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn metrics_series_stay_bounded_whatever_methods_clients_send() {
    let registry = TestRegistry::start().await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("registry_http_requests_total{"))
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
    };
    // 200 requests with made-up methods, before authentication and routing can reject them.
    for i in 0..200 {
        let method = Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
        registry.request(method, "/v2/").send().await.unwrap();
    }
    let text = registry.get("/metrics").await.text().await.unwrap();
    let after_junk = series(&text);
    assert!(
        after_junk.len() <= 3,
        "{} series after 200 invented methods: {after_junk:#?}",
        after_junk.len()
    );
    assert!(
        text.contains(r#"registry_http_requests_total{route="base",method="other","#),
        "{text}"
    );
    assert!(!text.contains("X17"), "a client's method became a label");
}

/// The config with `http.debug` set to `debug` (a YAML block indented under `debug:`).
fn with_debug(root: &std::path::Path, debug: &str) -> String {
    config_yaml(root, "").replace("http:\n", &format!("http:\n  debug:\n{debug}"))
}

#[tokio::test]
async fn debug_listener_takes_the_metrics_off_the_main_port() {
    let registry = TestRegistry::start_with(|root| {
        with_debug(
            root,
            "    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n",
        )
    })
    .await;
    let debug = registry.debug_url.clone().expect("a debug listener");
    registry.push_blob("scraped", &random_bytes(100)).await;

    let response = reqwest::get(format!("{debug}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"registry_http_requests_total{route="blob_upload",method="POST",status="201"} 1"#
        ),
        "the debug listener serves the main port's metrics: {text}"
    );
    let health = reqwest::get(format!("{debug}/debug/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "{}");

    assert_eq!(
        registry.get("/metrics").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(registry.get("/healthz").await.status(), StatusCode::OK);
    // The debug listener is not the API.
    let api = reqwest::get(format!("{debug}/v2/")).await.unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);

    if registry.on_filesystem() {
        std::fs::remove_dir_all(registry.root.join(".berth-tmp")).unwrap();
        let health = reqwest::get(format!("{debug}/debug/health")).await.unwrap();
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            health.text().await.unwrap(),
            r#"{"storagedriver_filesystem":"storage unavailable"}"#
        );
    }

    // It stops with the server.
    let _dir = registry.stop().await;
    assert!(reqwest::get(format!("{debug}/debug/health")).await.is_err());
}

#[tokio::test]
async fn debug_listener_metrics_follow_distribution_prometheus_settings() {
    // Without prometheus.enabled the debug listener has health only, as in distribution,
    // and the main port keeps its metrics.
    let registry =
        TestRegistry::start_with(|root| with_debug(root, "    addr: 127.0.0.1:0\n")).await;
    let debug = registry.debug_url.clone().expect("a debug listener");
    let status = |url: String| async move { reqwest::get(url).await.unwrap().status() };
    assert_eq!(
        status(format!("{debug}/debug/health")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(format!("{debug}/metrics")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(registry.get("/metrics").await.status(), StatusCode::OK);

    // A custom path.
    let registry = TestRegistry::start_with(|root| {
        with_debug(
            root,
            "    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n      path: /prom\n",
        )
    })
    .await;
    let debug = registry.debug_url.clone().expect("a debug listener");
    assert_eq!(status(format!("{debug}/prom")).await, StatusCode::OK);
    assert_eq!(
        status(format!("{debug}/metrics")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        registry.get("/metrics").await.status(),
        StatusCode::NOT_FOUND
    );
}

/// A tmpfs mounted for the test (root only), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, options: &str) -> Option<Tmpfs> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .ok()?
            .success();
        mounted.then(|| Tmpfs(dir.to_owned()))
    }

    fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// `/readyz` writes and removes a probe: a full or read-only filesystem
/// makes the registry unready (its pushes would fail), while a registry
/// configured read-only only needs to read.
#[tokio::test]
async fn readiness_notices_a_full_or_read_only_filesystem() {
    if common::test_s3_server().is_some() {
        return; // object stores: tests/storage_drivers.rs
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(dir.path(), "size=4m") else {
        // Mounting needs root (CI runs as root).
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "mount failed in CI"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: cannot mount a tmpfs here");
        }
        return;
    };
    let root = dir.path().join("storage");
    let registry = TestRegistry::start_on(&root, &config_yaml(&root, "")).await;
    assert_eq!(registry.get("/readyz").await.status(), StatusCode::OK);

    // Fill the filesystem.
    let filler = dir.path().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    drop(file);
    assert_eq!(
        registry.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a full filesystem"
    );
    assert_eq!(registry.get("/healthz").await.status(), StatusCode::OK);
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(registry.get("/readyz").await.status(), StatusCode::OK);

    registry
        .push_blob("ro/app", b"pushed before the remount")
        .await;
    mount.remount("ro");
    assert_eq!(
        registry.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a read-only filesystem"
    );
    // Configured read-only, the same storage is ready and serves pulls.
    let read_only = TestRegistry::start_on(
        &root,
        &config_yaml(&root, "").replace(
            "  delete:",
            "  maintenance:\n    readonly:\n      enabled: true\n  delete:",
        ),
    )
    .await;
    assert_eq!(read_only.get("/readyz").await.status(), StatusCode::OK);
    let digest = Algorithm::Sha256.digest_of(b"pushed before the remount");
    let blob = read_only.get(&format!("/v2/ro/app/blobs/{digest}")).await;
    assert_eq!(blob.status(), StatusCode::OK);
    read_only.stop().await;
    registry.stop().await;
    mount.remount("rw");
}
