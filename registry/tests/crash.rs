//! Crash safety: the real `registry` binary is killed with SIGKILL in the
//! middle of concurrent pushes; after a restart nothing partial is visible
//! (every tag resolves to a complete manifest whose blobs all verify) and a
//! re-push of everything succeeds.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use registry::oci::{Algorithm, Digest};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

struct Server {
    child: Child,
    url: String,
}

async fn start_binary(root: &Path, config: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        config,
        config_yaml(root, "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_registry"))
            .args(["serve", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        url: format!("http://127.0.0.1:{port}"),
    };
    eventually(
        "the registry binary answering",
        Duration::from_secs(30),
        async || reqwest::get(format!("{}/v2/", server.url)).await.map(drop),
    )
    .await;
    server
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes one image (several chunked blobs, then the manifest) as fast as possible.
async fn push_image(
    client: &Client,
    url: &str,
    repo: &str,
    tag: &str,
    seed: u64,
) -> Result<(), reqwest::Error> {
    let mut layers = Vec::new();
    for i in 0..3 {
        let data: Vec<u8> = (0..400_000u64)
            .map(|n| ((n * 31 + seed * 7 + i) % 251) as u8)
            .collect();
        let digest = Algorithm::Sha256.digest_of(&data);
        let start = client
            .post(format!("{url}/v2/{repo}/blobs/uploads/"))
            .send()
            .await?
            .error_for_status()?;
        let location = start.headers()["location"].to_str().unwrap().to_owned();
        let half = data.len() / 2;
        client
            .patch(format!("{url}{location}"))
            .header("content-range", format!("0-{}", half - 1))
            .body(data[..half].to_vec())
            .send()
            .await?
            .error_for_status()?;
        client
            .put(format!("{url}{location}?digest={digest}"))
            .header("content-range", format!("{half}-{}", data.len() - 1))
            .body(data[half..].to_vec())
            .send()
            .await?
            .error_for_status()?;
        layers.push(serde_json::json!({"mediaType": LAYER, "digest": digest.to_string(), "size": data.len()}));
    }
    let config = format!(r#"{{"seed":{seed}}}"#);
    let config_digest = Algorithm::Sha256.digest_of(config.as_bytes());
    client
        .post(format!(
            "{url}/v2/{repo}/blobs/uploads/?digest={config_digest}"
        ))
        .body(config.clone())
        .send()
        .await?
        .error_for_status()?;
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest.to_string(), "size": config.len()},
        "layers": layers,
    });
    client
        .put(format!("{url}/v2/{repo}/manifests/{tag}"))
        .header("content-type", OCI_MANIFEST)
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Pulls every tag of every repository and verifies every byte.
async fn verify_everything_visible(client: &Client, url: &str) -> usize {
    let catalog: Value = client
        .get(format!("{url}/v2/_catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut verified = 0;
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let tags: Value = client
            .get(format!("{url}/v2/{repo}/tags/list"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for tag in tags["tags"].as_array().unwrap() {
            let response = client
                .get(format!(
                    "{url}/v2/{repo}/manifests/{}",
                    tag.as_str().unwrap()
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{repo}:{tag} is listed but not pullable"
            );
            let expected: Digest = response.headers()["docker-content-digest"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let bytes = response.bytes().await.unwrap();
            assert_eq!(Algorithm::Sha256.digest_of(&bytes), expected);
            let manifest: Value = serde_json::from_slice(&bytes).unwrap();
            let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
            blobs.extend(
                manifest["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["digest"].as_str().unwrap().to_owned()),
            );
            for blob in blobs {
                let data = client
                    .get(format!("{url}/v2/{repo}/blobs/{blob}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    data.status(),
                    StatusCode::OK,
                    "{repo}:{tag} references missing {blob}"
                );
                let digest: Digest = blob.parse().unwrap();
                assert_eq!(
                    Algorithm::Sha256.digest_of(&data.bytes().await.unwrap()),
                    digest
                );
            }
            verified += 1;
        }
    }
    verified
}

#[tokio::test]
async fn sigkill_mid_push_leaves_nothing_partial_and_repush_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let config = dir.path().join("config.yml");
    let client = Client::new();
    let mut interrupted_sessions = 0;
    let storage = open_test_storage(&root);

    for round in 0..3u64 {
        let mut server = start_binary(&root, &config).await;
        let completed = Arc::new(AtomicU64::new(0));
        let pushers: Vec<_> = (0..6u64)
            .map(|worker| {
                let client = client.clone();
                let url = server.url.clone();
                let completed = completed.clone();
                tokio::spawn(async move {
                    for n in 0.. {
                        let seed = round * 1000 + worker * 100 + n;
                        if push_image(
                            &client,
                            &url,
                            &format!("crash/w{worker}"),
                            &format!("t{n}"),
                            seed,
                        )
                        .await
                        .is_err()
                        {
                            break;
                        }
                        completed.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        // The kill lands while the pushers are busy, after at least one push was acknowledged
        // (waiting on progress, not on the clock: object storage can take seconds for the first
        // write), at a point that differs per round.
        eventually(
            &format!("round {round}: a push completed"),
            Duration::from_secs(60),
            async || match completed.load(Ordering::SeqCst) {
                0 => Err("none acknowledged"),
                _ => Ok(()),
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100 + round * 300)).await;
        let acknowledged = completed.load(Ordering::SeqCst);
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for pusher in pushers {
            pusher.await.unwrap();
        }
        // Upload sessions left behind prove the kill landed mid-push.
        interrupted_sessions += objects_under(storage.as_ref(), "docker/registry/v2/repositories")
            .await
            .keys()
            .filter(|f| f.contains("/_uploads/"))
            .count();

        let mut restarted = start_binary(&root, &config).await;
        let visible = verify_everything_visible(&client, &restarted.url).await;
        assert!(verify_stored_blobs(storage.as_ref()).await > 0);
        // The real `registry verify` agrees: every blob hashes to its digest.
        assert!(assert_verify_clean(&config).await > 0);
        // Every push acknowledged before the kill survives it (tag names repeat across rounds,
        // so this round's are a subset of what is listed).
        assert!(
            visible as u64 >= acknowledged,
            "round {round}: {acknowledged} pushes were acknowledged before the kill, {visible} tags resolve"
        );
        // Re-pushing (the same tags the workers were writing) succeeds and is pullable.
        for worker in 0..6u64 {
            push_image(
                &client,
                &restarted.url,
                &format!("crash/w{worker}"),
                "t0",
                round * 1000 + worker * 100,
            )
            .await
            .unwrap();
        }
        verify_everything_visible(&client, &restarted.url).await;
        let response = client
            .request(
                Method::GET,
                format!("{}/v2/crash/w0/tags/list", restarted.url),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        restarted.child.kill().unwrap();
        restarted.child.wait().unwrap();
    }
    assert!(
        interrupted_sessions > 0,
        "no push was interrupted by the kills"
    );
}
