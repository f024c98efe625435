//! The `registry` command: `config check`, serving the embedded default with
//! `REGISTRY_*` overrides, startup errors naming the key, SIGTERM shutdown, plain text logs.

use std::process::{Command, Stdio};
use std::time::Duration;

fn registry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registry"));
    command.env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("REGISTRY_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn config_check_accepts_valid_files_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  colour: blue\nhttp:\n  addr: :5000\n  secret: keep-me-quiet\n",
    )
    .unwrap();
    let output = registry()
        .args(["config", "check", good.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: unknown config key storage.colour is ignored"),
        "{stdout}"
    );
    assert!(stdout.contains("OK"));
    assert!(
        !stdout.contains("keep-me-quiet"),
        "secrets must not be printed"
    );

    let output = registry()
        .args(["config", "check", good.to_str().unwrap()])
        .env("REGISTRY_STORAGE_DELETE_ENABLED", "sometimes")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("storage.delete.enabled"), "{stderr}");

    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "version: 0.1\nstorage:\n  filesystem: {}\nlog:\n  level: chatty\n",
    )
    .unwrap();
    let output = registry()
        .args(["config", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("log.level"));

    let output = registry()
        .args(["config", "check", "/no/such/file.yml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/no/such/file.yml"));
}

/// The compose-file form of registry:2 on Aliyun OSS: every storage key from
/// `REGISTRY_STORAGE_*`, switching the file's driver; config check shows the
/// resolved bucket and never the secret.
#[test]
fn config_check_takes_the_oss_environment_of_a_registry_2_compose_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yml");
    std::fs::write(
        &file,
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n",
    )
    .unwrap();
    let oss = [
        ("REGISTRY_STORAGE", "oss"),
        ("REGISTRY_STORAGE_OSS_ACCESSKEYID", "LTAI5tExampleKeyId"),
        (
            "REGISTRY_STORAGE_OSS_ACCESSKEYSECRET",
            "oss-secret-never-printed",
        ),
        ("REGISTRY_STORAGE_OSS_REGION", "oss-cn-hangzhou"),
        ("REGISTRY_STORAGE_OSS_BUCKET", "team-images"),
        ("REGISTRY_STORAGE_OSS_INTERNAL", "true"),
    ];
    let output = registry()
        .args(["config", "check", file.to_str().unwrap()])
        .envs(oss)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(
            "storage: storage.oss bucket team-images at https://team-images.oss-cn-hangzhou-internal.aliyuncs.com (virtual-hosted, region cn-hangzhou, access key LTAI5tExampleKeyId)"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("oss-secret-never-printed"), "{stdout}");

    // An endpoint address means path style; a missing key is named.
    let output = registry()
        .args(["config", "check", file.to_str().unwrap()])
        .envs(oss)
        .env("REGISTRY_STORAGE_OSS_ENDPOINT", "10.0.0.5:9000")
        .env("REGISTRY_STORAGE_OSS_SECURE", "false")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("at http://10.0.0.5:9000/team-images (path style"),
        "{stdout}"
    );
    let output = registry()
        .args(["config", "check", file.to_str().unwrap()])
        .envs(oss.iter().filter(|(k, _)| !k.ends_with("REGION")).copied())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("storage.oss.region"));
}

#[tokio::test]
async fn serves_the_embedded_default_with_env_overrides_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = registry()
        .arg("serve")
        .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir.path())
        .env("REGISTRY_LOG_FORMATTER", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v2/");
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        up,
        "registry did not come up on the embedded default config"
    );
    // Data lands in the overridden root, in distribution's layout.
    let data = b"hello";
    let digest = registry::oci::Algorithm::Sha256.digest_of(data);
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/v2/cli/blobs/uploads/?digest={digest}"
        ))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        dir.path()
            .join("docker/registry/v2/repositories/cli/_layers")
            .is_dir()
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit after SIGTERM: {:?}\n{}",
        status.0,
        status.1
    );
    // JSON logs, one object per line.
    let first = status.1.lines().next().unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "{first}"
    );
}

#[test]
fn startup_errors_name_the_key() {
    let output = registry()
        .arg("serve")
        .env("REGISTRY_HTTP_TLS_MINIMUMTLS", "ssl3")
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/tmp")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("http.tls"));

    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").unwrap();
    let output = registry()
        .arg("serve")
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir.path())
        .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0")
        .env("REGISTRY_AUTH_HTPASSWD_PATH", &htpasswd)
        .env("REGISTRY_AUTH_HTPASSWD_REALM", "r")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"alice\"") && stderr.contains("bcrypt"),
        "{stderr}"
    );
}

#[test]
fn text_logs_carry_no_terminal_escape_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // A taken port: the registry logs its start, then fails to bind and exits.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let output = registry()
        .arg("serve")
        .env(
            "REGISTRY_HTTP_ADDR",
            taken.local_addr().unwrap().to_string(),
        )
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("starting Berth registry"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");
}
