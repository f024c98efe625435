//! The workload: images pushed the way docker/skopeo push them (POST, PATCH,
//! PUT per blob, then the manifest) and pulled (manifest, then blobs), by
//! several concurrent clients.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use registry::oci::{Algorithm, Digest};
use reqwest::Client;
use serde_json::json;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// One image's content.
#[derive(Debug, Clone)]
pub struct Image {
    pub repo: String,
    pub blobs: Vec<(Digest, Bytes)>,
    pub manifest: Bytes,
}

impl Image {
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, b)| b.len() as u64).sum::<u64>() + self.manifest.len() as u64
    }
}

/// `count` distinct images of `layers` layers totalling about `size` bytes.
pub fn generate(count: usize, size: usize, layers: usize) -> Vec<Image> {
    (0..count)
        .map(|i| {
            let layer_size = size / layers.max(1);
            let mut blobs = Vec::new();
            let mut descriptors = Vec::new();
            for _ in 0..layers {
                let data: Bytes = (0..layer_size).map(|_| rand_byte()).collect::<Vec<u8>>().into();
                let digest = Algorithm::Sha256.digest_of(&data);
                descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest.to_string(), "size": data.len()}));
                blobs.push((digest, data));
            }
            let config = Bytes::from(format!(r#"{{"architecture":"amd64","os":"linux","image":{i}}}"#));
            let config_digest = Algorithm::Sha256.digest_of(&config);
            let manifest = json!({
                "schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
                "layers": descriptors,
            });
            blobs.push((config_digest, config));
            Image {
                repo: format!("bench/image{i}"),
                blobs,
                manifest: serde_json::to_vec(&manifest).expect("manifest serializes").into(),
            }
        })
        .collect()
}

fn rand_byte() -> u8 {
    // xorshift per thread: fast, and random enough to defeat compression.
    thread_local! { static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9E37_79B9_7F4A_7C15) }; }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 24) as u8
    })
}

/// Pushes one image: each blob as POST + PATCH + PUT, then the manifest.
pub async fn push(client: &Client, url: &str, image: &Image) -> anyhow::Result<()> {
    for (digest, data) in &image.blobs {
        let start = client
            .post(format!("{url}/v2/{}/blobs/uploads/", image.repo))
            .send()
            .await?
            .error_for_status()?;
        let location = absolute(url, start.headers()["location"].to_str()?);
        let patched = client
            .patch(&location)
            .header("content-type", "application/octet-stream")
            .body(data.clone())
            .send()
            .await?
            .error_for_status()?;
        let location = absolute(url, patched.headers()["location"].to_str()?);
        let separator = if location.contains('?') { '&' } else { '?' };
        client
            .put(format!("{location}{separator}digest={digest}"))
            .send()
            .await?
            .error_for_status()?;
    }
    client
        .put(format!("{url}/v2/{}/manifests/latest", image.repo))
        .header("content-type", MANIFEST)
        .body(image.manifest.clone())
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

/// Deterministic pseudo-random bytes, `size` of them in 1 MiB chunks, so a
/// huge layer can be hashed and then streamed without being held in memory.
fn generated(size: u64, seed: u64) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    const CHUNK: u64 = 1024 * 1024;
    futures_util::stream::iter((0..size.div_ceil(CHUNK)).map(move |i| {
        let len = CHUNK.min(size - i * CHUNK) as usize;
        let mut x = seed ^ (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let chunk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Ok(Bytes::from(chunk))
    }))
}

/// Pushes a single-layer image whose layer (`size` bytes) is streamed in
/// one PATCH, as docker pushes a big layer; returns the layer's size.
pub async fn push_streamed(
    client: &Client,
    url: &str,
    repo: &str,
    size: u64,
) -> anyhow::Result<u64> {
    let mut hasher = Algorithm::Sha256.hasher();
    let mut chunks = std::pin::pin!(generated(size, 7));
    while let Some(chunk) = chunks.next().await {
        hasher.update(&chunk?);
    }
    let digest = hasher.finish();
    let start = client
        .post(format!("{url}/v2/{repo}/blobs/uploads/"))
        .send()
        .await?
        .error_for_status()?;
    let location = absolute(url, start.headers()["location"].to_str()?);
    let patched = client
        .patch(&location)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(generated(size, 7)))
        .send()
        .await?
        .error_for_status()?;
    let location = absolute(url, patched.headers()["location"].to_str()?);
    let separator = if location.contains('?') { '&' } else { '?' };
    client
        .put(format!("{location}{separator}digest={digest}"))
        .send()
        .await?
        .error_for_status()?;
    let config = Bytes::from_static(br#"{"architecture":"amd64","os":"linux"}"#);
    let config_digest = Algorithm::Sha256.digest_of(&config);
    let image = Image {
        repo: repo.to_owned(),
        blobs: vec![(config_digest.clone(), config.clone())],
        manifest: serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest.to_string(), "size": size}],
        }))?
        .into(),
    };
    push(client, url, &image).await?;
    Ok(size)
}

/// Pulls one image (manifest, then every blob); returns bytes received.
pub async fn pull(client: &Client, url: &str, image: &Image) -> anyhow::Result<u64> {
    let manifest = client
        .get(format!("{url}/v2/{}/manifests/latest", image.repo))
        .header("accept", MANIFEST)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let mut received = manifest.len() as u64;
    for (digest, _) in &image.blobs {
        let mut body = client
            .get(format!("{url}/v2/{}/blobs/{digest}", image.repo))
            .send()
            .await?
            .error_for_status()?
            .bytes_stream();
        while let Some(chunk) = body.next().await {
            received += chunk?.len() as u64;
        }
    }
    Ok(received)
}

/// Latencies and totals of one phase.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
    pub bytes: u64,
    pub errors: usize,
}

/// Runs `operation` once per item with `concurrency` in flight.
pub async fn run<'a, T, F, Fut>(items: &'a [T], concurrency: usize, operation: F) -> Phase
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let started = Instant::now();
    let results: Vec<(Duration, anyhow::Result<u64>)> =
        futures_util::stream::iter(items.iter().map(|item| {
            let fut = operation(item);
            async move {
                let t = Instant::now();
                let result = fut.await;
                (t.elapsed(), result)
            }
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut phase = Phase {
        wall: started.elapsed(),
        ..Phase::default()
    };
    for (latency, result) in results {
        match result {
            Ok(bytes) => {
                phase.bytes += bytes;
                phase.latencies.push(latency);
            }
            Err(e) => {
                phase.errors += 1;
                if phase.errors == 1 {
                    eprintln!("error: {e:#}");
                }
            }
        }
    }
    phase
}
