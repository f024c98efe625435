//! The node agent's work: make a node's `certs.d` directory and hosts file match the published
//! entries. Files are written only when their content changes (atomically, by rename, in
//! `certs.d`; in place for the hosts file, which is usually a bind-mounted file), and only
//! directories and lines the agent wrote itself are ever removed.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{Entry, MARKER, splice_hosts};

/// File in each directory the agent owns; it holds the Registry's `namespace/name`.
pub const OWNER_FILE: &str = ".berth-node-agent";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where the agent reads and writes.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The mounted ConfigMap (one `<ns>_<name>.json` file per Registry).
    pub source: PathBuf,
    /// The runtime's `certs.d` directory as mounted into the agent.
    pub certs_dir: PathBuf,
    /// The same directory as the runtime sees it on the node (written into `hosts.toml`).
    pub node_certs_dir: PathBuf,
    /// The node's hosts file as mounted into the agent; `None` leaves name resolution alone.
    pub hosts_file: Option<PathBuf>,
}

/// What one pass changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub entries: usize,
    /// Entries that were not valid (file name and reason).
    pub rejected: Vec<String>,
    /// `host:port` directories created or rewritten.
    pub written: Vec<String>,
    /// `host:port` directories removed.
    pub removed: Vec<String>,
    pub hosts_changed: bool,
}

/// Reads every valid entry of the source directory (ConfigMap volumes hold dot-directories and
/// symlinks; only `*.json` names count).
pub fn read_entries(source: &Path) -> Result<(Vec<Entry>, Vec<String>), AgentError> {
    let mut names: Vec<String> = fs::read_dir(source)
        .map_err(io(source))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && n.ends_with(".json"))
        .collect();
    names.sort();
    let (mut entries, mut rejected) = (Vec::new(), Vec::new());
    for name in names {
        let path = source.join(&name);
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        match serde_json::from_str::<Entry>(&text)
            .map_err(|e| e.to_string())
            .and_then(|e| validate(&e).map(|()| e))
        {
            Ok(entry) => entries.push(entry),
            Err(reason) => rejected.push(format!("{name}: {reason}")),
        }
    }
    Ok((entries, rejected))
}

/// Entries become paths and hosts-file lines: refuse anything that is not a plain name or address.
fn validate(entry: &Entry) -> Result<(), String> {
    let dns = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && !h.starts_with(['.', '-'])
            && !h.contains("..")
            && h.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    };
    if entry.hosts.is_empty() || !entry.hosts.iter().all(|h| dns(h)) {
        return Err(format!("invalid host names {:?}", entry.hosts));
    }
    if !(1..=65535).contains(&entry.port) {
        return Err(format!("invalid port {}", entry.port));
    }
    if entry.address.parse::<IpAddr>().is_err() {
        return Err(format!("invalid address {:?}", entry.address));
    }
    if !entry.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("caPem holds no PEM certificate".into());
    }
    Ok(())
}

/// One reconciliation pass.
pub fn sync(paths: &Paths) -> Result<Report, AgentError> {
    let (entries, rejected) = read_entries(&paths.source)?;
    let mut report = Report {
        entries: entries.len(),
        rejected,
        ..Report::default()
    };
    fs::create_dir_all(&paths.certs_dir).map_err(io(&paths.certs_dir))?;
    let mut wanted = BTreeSet::new();
    for entry in &entries {
        for directory in entry.directories() {
            let dir = paths.certs_dir.join(&directory);
            let ca_on_node = paths.node_certs_dir.join(&directory).join("ca.crt");
            let files = [
                ("ca.crt", entry.ca_pem.clone()),
                (
                    "hosts.toml",
                    entry.hosts_toml(&directory, &ca_on_node.display().to_string()),
                ),
                (OWNER_FILE, format!("{}\n", entry.registry)),
            ];
            let mut changed = false;
            for (file, content) in files {
                changed |= write_if_changed(&dir, file, &content)?;
            }
            if changed {
                report.written.push(directory.clone());
            }
            wanted.insert(directory);
        }
    }
    for dir in fs::read_dir(&paths.certs_dir).map_err(io(&paths.certs_dir))? {
        let dir = dir.map_err(io(&paths.certs_dir))?;
        let name = dir.file_name().to_string_lossy().into_owned();
        if wanted.contains(&name) || !dir.path().join(OWNER_FILE).is_file() {
            continue;
        }
        fs::remove_dir_all(dir.path()).map_err(io(&dir.path()))?;
        report.removed.push(name);
    }
    if let Some(hosts) = &paths.hosts_file {
        let lines: Vec<String> = entries.iter().map(Entry::hosts_line).collect();
        report.hosts_changed = update_hosts(hosts, &lines)?;
    }
    Ok(report)
}

/// Writes `dir/file` by rename when its content differs; returns whether it did.
fn write_if_changed(dir: &Path, file: &str, content: &str) -> Result<bool, AgentError> {
    let path = dir.join(file);
    if fs::read(&path).ok().as_deref() == Some(content.as_bytes()) {
        return Ok(false);
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{file}.tmp"));
    fs::write(&tmp, content).map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(true)
}

/// Rewrites the agent's block of the hosts file in place (no rename: the file is typically a
/// bind mount). The new content overwrites the old one before the file is trimmed, so a reader
/// never sees it empty.
fn update_hosts(path: &Path, lines: &[String]) -> Result<bool, AgentError> {
    let current = fs::read_to_string(path).map_err(io(path))?;
    let next = splice_hosts(&current, lines);
    if next == current {
        return Ok(false);
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    file.seek(SeekFrom::Start(0)).map_err(io(path))?;
    file.write_all(next.as_bytes()).map_err(io(path))?;
    file.set_len(next.len() as u64).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    Ok(true)
}

/// Whether a hosts file carries the agent's block (for status output).
pub fn hosts_block_present(content: &str) -> bool {
    content.contains(&format!("# BEGIN {MARKER}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn entry(name: &str, address: &str) -> Entry {
        Entry {
            registry: format!("ns/{name}"),
            hosts: vec![format!("{name}.ns.svc")],
            port: 5000,
            address: address.into(),
            ca_pem: CA.into(),
        }
    }

    fn setup() -> (tempfile::TempDir, Paths) {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths {
            source: root.path().join("source"),
            certs_dir: root.path().join("certs.d"),
            node_certs_dir: PathBuf::from("/etc/containerd/certs.d"),
            hosts_file: Some(root.path().join("hosts")),
        };
        fs::create_dir_all(&paths.source).unwrap();
        // What a ConfigMap volume looks like: a dot-directory plus symlinks.
        fs::create_dir_all(paths.source.join("..data")).unwrap();
        fs::write(paths.hosts_file.as_ref().unwrap(), "127.0.0.1 localhost\n").unwrap();
        (root, paths)
    }

    fn publish(paths: &Paths, e: &Entry) {
        let key = e.registry.replace('/', "_") + ".json";
        fs::write(paths.source.join(key), serde_json::to_vec(e).unwrap()).unwrap();
    }

    #[test]
    fn writes_converges_and_removes_only_its_own() {
        let (_root, paths) = setup();
        // A directory the agent did not write must survive.
        fs::create_dir_all(paths.certs_dir.join("other:443")).unwrap();
        publish(&paths, &entry("a", "10.0.0.5"));
        publish(&paths, &entry("b", "10.0.0.6"));

        let first = sync(&paths).unwrap();
        assert_eq!(first.entries, 2);
        assert_eq!(first.written, ["a.ns.svc:5000", "b.ns.svc:5000"]);
        assert!(first.hosts_changed);
        let dir = paths.certs_dir.join("a.ns.svc:5000");
        assert_eq!(fs::read_to_string(dir.join("ca.crt")).unwrap(), CA);
        let toml = fs::read_to_string(dir.join("hosts.toml")).unwrap();
        assert!(toml.contains("ca = \"/etc/containerd/certs.d/a.ns.svc:5000/ca.crt\""));
        let hosts = fs::read_to_string(paths.hosts_file.as_ref().unwrap()).unwrap();
        assert!(hosts.starts_with("127.0.0.1 localhost\n"));
        assert!(hosts.contains("10.0.0.5 a.ns.svc\n10.0.0.6 b.ns.svc\n"));

        // Nothing changed: nothing written.
        let second = sync(&paths).unwrap();
        assert!(second.written.is_empty() && second.removed.is_empty() && !second.hosts_changed);

        // b withdrawn, a moved: b's directory and line go, a's line changes.
        fs::remove_file(paths.source.join("ns_b.json")).unwrap();
        publish(&paths, &entry("a", "10.0.0.9"));
        let third = sync(&paths).unwrap();
        assert_eq!(third.removed, ["b.ns.svc:5000"]);
        assert!(third.written.is_empty(), "same CA and names: {third:?}");
        let hosts = fs::read_to_string(paths.hosts_file.as_ref().unwrap()).unwrap();
        assert!(hosts.contains("10.0.0.9 a.ns.svc\n") && !hosts.contains("b.ns.svc"));
        assert!(paths.certs_dir.join("other:443").is_dir());

        // Everything withdrawn: the hosts file is back to what it was.
        fs::remove_file(paths.source.join("ns_a.json")).unwrap();
        let last = sync(&paths).unwrap();
        assert_eq!(last.removed, ["a.ns.svc:5000"]);
        let hosts = fs::read_to_string(paths.hosts_file.as_ref().unwrap()).unwrap();
        assert_eq!(hosts, "127.0.0.1 localhost\n");
        assert!(!hosts_block_present(&hosts));
    }

    #[test]
    fn rejects_entries_that_could_escape_or_lie() {
        let (_root, paths) = setup();
        let mut bad = entry("x", "10.0.0.1");
        bad.hosts = vec!["../../etc".into()];
        publish(&paths, &bad);
        let mut bad_ip = entry("y", "10.0.0.1 evil.example");
        bad_ip.registry = "ns/y".into();
        publish(&paths, &bad_ip);
        fs::write(paths.source.join("ns_z.json"), "{not json").unwrap();
        let report = sync(&paths).unwrap();
        assert_eq!(report.entries, 0);
        assert_eq!(report.rejected.len(), 3, "{report:?}");
        assert_eq!(fs::read_dir(&paths.certs_dir).unwrap().count(), 0);
    }
}
