//! Starts the registries under test as child processes on loopback, each on
//! its own temp storage, and reads their memory use from /proc.

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
    /// Starts `kind` with the shared config plus `extra` YAML (e.g. an auth section).
    pub async fn start(kind: Kind, binaries: &Binaries, extra: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("registry-bench-")
            .tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().join("storage").display()
            ),
        )?;
        let binary = match kind {
            Kind::Berth => &binaries.berth,
            Kind::Distribution => &binaries.distribution,
        };
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
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
