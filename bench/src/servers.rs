//! Starts the registries under test as child processes on loopback, each on
//! its own temp storage (a directory, or its own prefix of one S3 bucket),
//! and reads their memory use from /proc.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// Which implementation a server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Berth,
    Distribution,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Berth => "berth",
            Kind::Distribution => "distribution",
        }
    }
}

/// A registry process being measured.
#[derive(Debug)]
pub struct Server {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// An S3 bucket both implementations store in (each under its own prefix).
#[derive(Debug, Clone)]
pub struct S3Target {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Target {
    /// Starts (or finds) the SeaweedFS test server through `scripts/s3-servers`.
    pub fn seaweedfs() -> anyhow::Result<Self> {
        let output = Command::new("scripts/s3-servers")
            .args(["start", "seaweedfs"])
            .output()
            .context("running scripts/s3-servers (run from the repository root)")?;
        anyhow::ensure!(
            output.status.success(),
            "scripts/s3-servers start seaweedfs failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let var = |name: &str| -> anyhow::Result<String> {
            text.lines()
                .filter_map(|l| l.strip_prefix("export "))
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
                .with_context(|| format!("scripts/s3-servers printed no {name}"))
        };
        Ok(S3Target {
            endpoint: var("S3_ENDPOINT")?,
            region: var("S3_REGION")?,
            bucket: var("S3_BUCKET")?,
            access_key: var("AWS_ACCESS_KEY_ID")?,
            secret_key: var("AWS_SECRET_ACCESS_KEY")?,
        })
    }

    /// The `storage:` driver section for `kind` under `prefix`: distribution
    /// 2.8 implies path style from `regionendpoint` and knows no `forcepathstyle`.
    fn storage_yaml(&self, kind: Kind, prefix: &str) -> String {
        let path_style = match kind {
            Kind::Berth => "    forcepathstyle: true\n",
            Kind::Distribution => "    v4auth: true\n",
        };
        format!(
            "  s3:\n    bucket: {}\n    region: {}\n    regionendpoint: {}\n    accesskey: {}\n    secretkey: {}\n    secure: false\n    rootdirectory: /{prefix}\n{path_style}  redirect:\n    disable: true\n",
            self.bucket, self.region, self.endpoint, self.access_key, self.secret_key
        )
    }
}

/// Where each implementation's binary is.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub berth: PathBuf,
    pub distribution: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    /// Starts `kind` with the shared config plus `extra` YAML (e.g. an auth
    /// section), storing on `s3` when given, else in a temp directory.
    pub async fn start(
        kind: Kind,
        binaries: &Binaries,
        extra: &str,
        s3: Option<&S3Target>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("registry-bench-")
            .tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("config.yml");
        let storage = match s3 {
            Some(s3) => {
                let name = dir.path().file_name().unwrap_or_default().to_string_lossy();
                s3.storage_yaml(kind, &format!("bench/{}-{name}", kind.name()))
            }
            None => format!(
                "  filesystem:\n    rootdirectory: {}\n",
                dir.path().join("storage").display()
            ),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n{storage}  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}"
            ),
        )?;
        let binary = match kind {
            Kind::Berth => &binaries.berth,
            Kind::Distribution => &binaries.distribution,
        };
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            // distribution's s3 driver refuses to start with a custom CA bundle set.
            .env_remove("AWS_CA_BUNDLE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let server = Server {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        for _ in 0..400 {
            if reqwest::get(format!("{}/v2/", server.url)).await.is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("{} did not start", kind.name())
    }

    fn status_field_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|line| line.starts_with(field))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    }

    /// Current resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_field_kib("VmRSS:")
    }

    /// Peak resident set size in KiB since start.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_field_kib("VmHWM:")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
