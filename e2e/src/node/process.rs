//! Detached processes with pid files in `e2e/cluster`'s format (`$STATE/pids/<name>.pid`,
//! output in `$STATE/logs/<name>.log`), so the script's `status` and `down` see them too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Where pid files and logs live.
#[derive(Clone, Debug)]
pub struct Procs {
    pub pids: PathBuf,
    pub logs: PathBuf,
}

impl Procs {
    pub fn new(state: &Path) -> Self {
        Procs {
            pids: state.join("pids"),
            logs: state.join("logs"),
        }
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// Runs `program args` detached in its own session (through `setsid`, which execs in place,
    /// so the pid stays the program's), output to `logs/<name>.log`; records the pid.
    pub fn start(&self, name: &str, program: &str, args: &[String]) -> Result<u32> {
        fs::create_dir_all(&self.pids)?;
        fs::create_dir_all(&self.logs)?;
        let log = fs::File::create(self.log(name))?;
        let child = Command::new("setsid")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::Node(format!("starting {name} ({program}): {e}")))?;
        let pid = child.id();
        fs::write(self.pids.join(format!("{name}.pid")), format!("{pid}\n"))?;
        // The child is not waited for: it outlives this process and is reparented.
        drop(child);
        Ok(pid)
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        fs::read_to_string(self.pids.join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether `name`'s recorded pid still runs a program called `name` (guards against reuse).
    pub fn alive(&self, name: &str) -> bool {
        self.pid(name).is_some_and(|pid| runs(pid, name))
    }

    /// SIGTERM, then SIGKILL after `grace`; forgets the pid file.
    pub fn stop(&self, name: &str, grace: Duration) {
        if let Some(pid) = self.pid(name).filter(|pid| runs(*pid, name)) {
            terminate(pid, grace);
        }
        let _ = fs::remove_file(self.pids.join(format!("{name}.pid")));
    }

    /// Fails with the log's tail when `name`'s process is gone (just after a start it may still
    /// be executing a launcher on its way to `name`, so only its existence counts).
    pub fn ensure_alive(&self, name: &str) -> Result<()> {
        if self.pid(name).is_some_and(exists) {
            return Ok(());
        }
        let log = fs::read_to_string(self.log(name)).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(Error::Node(format!(
            "{name} exited (log {}):\n{}",
            self.log(name).display(),
            tail.join("\n")
        )))
    }
}

/// Whether `pid` runs a program whose argv[0] is named `name`.
pub fn runs(pid: u32, name: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|c| {
            let argv0 = c.split(|b| *b == 0).next()?.to_vec();
            let argv0 = String::from_utf8(argv0).ok()?;
            Some(Path::new(&argv0).file_name()?.to_string_lossy() == name)
        })
        .unwrap_or(false)
}

/// Sends `signal` (a `kill` name such as `TERM` or `KILL`) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
}

/// SIGTERM, wait up to `grace`, then SIGKILL.
pub fn terminate(pid: u32, grace: Duration) {
    signal(pid, "TERM");
    let deadline = Instant::now() + grace;
    while exists(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if exists(pid) {
        signal(pid, "KILL");
    }
}

/// Pids whose mount namespace is `ns` (a `/proc/<pid>/ns/mnt` link target).
pub fn in_mount_namespace(ns: &str) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/ns/mnt"))
                .map(|l| l.to_string_lossy() == ns)
                .unwrap_or(false)
        })
        .collect()
}

/// Runs a command to completion, failing with its output.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Node(format!("{program}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Node(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A free TCP port on 127.0.0.1 (bind to port 0, then release it).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
