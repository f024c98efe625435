//! What the operator renders really runs: the config, htpasswd and TLS
//! Secrets are read back from the API server, the real `registry` binary is
//! started on them, and skopeo pushes with the operator-managed credentials
//! over TLS verified against the operator's CA, then pulls anonymously.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use sha2::{Digest, Sha256};

/// The registry binary next to this test's operator binary (built on demand).
fn registry_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_berth-operator"))
        .parent()
        .unwrap()
        .to_owned();
    let binary = dir.join("registry");
    if !binary.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "registry", "--bin", "registry"])
            .status()
            .unwrap();
        assert!(status.success(), "building the registry binary");
    }
    binary
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A one-layer OCI image layout for skopeo to push.
fn write_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let digest = sha256(data);
        std::fs::write(blobs.join(&digest), data).unwrap();
        (format!("sha256:{digest}"), data.len())
    };
    let layer: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (layer_digest, layer_size) = put(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let (config_digest, config_size) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{layer_size}}}]}}"#
    );
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skopeo(args: &[&str]) -> std::process::Output {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    Command::new("skopeo")
        .args(&all)
        .output()
        .expect("skopeo is installed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_config_secrets_and_certificate_serve_a_real_registry() {
    let env = Env::start("rendered").await;
    env.apply_yaml(&Env::example("htpasswd-users.yaml")).await;
    env.wait_ready("team").await;

    let config = env
        .api::<ConfigMap>()
        .get("team-config")
        .await
        .unwrap()
        .data
        .unwrap()["config.yml"]
        .clone();
    let secrets = env.api::<Secret>();
    let htpasswd = secrets.get("team-htpasswd").await.unwrap().data.unwrap()["htpasswd"]
        .0
        .clone();
    let tls = secrets.get("team-tls").await.unwrap().data.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("config.yml"), &config).unwrap();
    std::fs::write(root.join("htpasswd"), &htpasswd).unwrap();
    std::fs::write(root.join("tls.crt"), &tls["tls.crt"].0).unwrap();
    std::fs::write(root.join("tls.key"), &tls["tls.key"].0).unwrap();
    let certs = root.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), &tls["ca.crt"].0).unwrap();

    // The rendered file as-is; only the mount paths differ outside a pod, as in a compose file.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(registry_binary())
        .arg("serve")
        .arg(root.join("config.yml"))
        .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("REGISTRY_HTTP_TLS_CERTIFICATE", root.join("tls.crt"))
        .env("REGISTRY_HTTP_TLS_KEY", root.join("tls.key"))
        .env("REGISTRY_AUTH_HTPASSWD_PATH", root.join("htpasswd"))
        .env(
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            root.join("storage"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _registry = Registry(child);
    // The certificate covers 127.0.0.1 (for port-forwards), so verification works on loopback.
    let ca = reqwest::Certificate::from_pem(&tls["ca.crt"].0).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the registry started on the rendered config");

    let layout = root.join("layout");
    write_layout(&layout);
    let source = format!("oci:{}:v1", layout.display());
    let target = format!("docker://127.0.0.1:{port}/team/app:v1");
    let cert_dir = certs.to_str().unwrap();

    // A wrong password is refused; the operator-managed one works.
    let refused = skopeo(&[
        "copy",
        "--dest-cert-dir",
        cert_dir,
        "--dest-creds",
        "ci:wrong",
        &source,
        &target,
    ]);
    assert!(!refused.status.success());
    let digest_file = root.join("pushed.digest");
    let pushed = skopeo(&[
        "copy",
        "--dest-cert-dir",
        cert_dir,
        "--dest-creds",
        "ci:change-me-ci",
        "--digestfile",
        digest_file.to_str().unwrap(),
        &source,
        &target,
    ]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    // skopeo may re-encode the layer for the registry; the registry must serve what it pushed.
    let pushed_digest = std::fs::read_to_string(&digest_file).unwrap();

    // anonymousRead: pulls need no credentials, and the bytes are the same.
    let out = root.join("out");
    let pulled = skopeo(&[
        "copy",
        "--src-cert-dir",
        cert_dir,
        &target,
        &format!("oci:{}:v1", out.display()),
    ]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let raw = skopeo(&["inspect", "--raw", "--cert-dir", cert_dir, &target]);
    assert_eq!(
        format!("sha256:{}", sha256(&raw.stdout)),
        pushed_digest.trim()
    );
    env.finish().await;
}
