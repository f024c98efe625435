//! Node access: what nodes need to pull from a Registry by its in-cluster name with TLS verified.
//!
//! The operator publishes one [`Entry`] per Registry with `spec.nodeAccess.enabled` into a
//! ConfigMap in its own namespace (key [`entry_key`]). The node agent (`berth-node-agent`, a
//! DaemonSet the chart installs) mounts that ConfigMap and, on every node, writes the CA and a
//! containerd `hosts.toml` under the runtime's `certs.d` directory and the Service address into
//! the node's hosts file ([`agent`]). The agent needs no API access at all.

pub mod agent;

use serde::{Deserialize, Serialize};

/// First line of every file and block the agent writes; it only ever removes what carries it.
pub const MARKER: &str = "managed by berth-node-agent";

/// What one Registry publishes for nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `namespace/name` of the Registry.
    pub registry: String,
    /// Names clients use (`<name>.<ns>.svc`, `<name>.<ns>.svc.cluster.local`).
    pub hosts: Vec<String>,
    /// The registry's port.
    pub port: i32,
    /// The Service's cluster IP, which the names resolve to on nodes.
    pub address: String,
    /// PEM bundle the registry's serving certificate chains to.
    pub ca_pem: String,
}

/// ConfigMap key of a Registry's entry (names and namespaces never contain `_`).
pub fn entry_key(namespace: &str, name: &str) -> String {
    format!("{namespace}_{name}.json")
}

impl Entry {
    /// The `certs.d` directory name of each host (`host:port`, as containerd and docker look it up).
    pub fn directories(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|host| format!("{host}:{}", self.port))
            .collect()
    }

    /// containerd's `hosts.toml` for one `host:port` directory, trusting `ca_path` (the CA file as
    /// the runtime sees it on the node).
    pub fn hosts_toml(&self, directory: &str, ca_path: &str) -> String {
        format!(
            "# {MARKER} for Registry {}; rewritten on change.\n\
             server = \"https://{directory}\"\n\
             ca = \"{ca_path}\"\n\
             capabilities = [\"pull\", \"resolve\", \"push\"]\n",
            self.registry
        )
    }

    /// The hosts-file line of this entry.
    pub fn hosts_line(&self) -> String {
        format!("{} {}", self.address, self.hosts.join(" "))
    }
}

/// Replaces the agent's block in a hosts file with `lines` (or removes it when empty), keeping
/// every other line as it was.
pub fn splice_hosts(current: &str, lines: &[String]) -> String {
    let begin = format!("# BEGIN {MARKER}");
    let end = format!("# END {MARKER}");
    let mut out = String::with_capacity(current.len());
    let mut inside = false;
    for line in current.lines() {
        if line == begin {
            inside = true;
        } else if line == end {
            inside = false;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !lines.is_empty() {
        out.push_str(&begin);
        out.push('\n');
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&end);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            registry: "tools/main".into(),
            hosts: vec![
                "main.tools.svc".into(),
                "main.tools.svc.cluster.local".into(),
            ],
            port: 5000,
            address: "10.0.3.7".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into(),
        }
    }

    #[test]
    fn directories_and_hosts_toml() {
        let e = entry();
        assert_eq!(
            e.directories(),
            ["main.tools.svc:5000", "main.tools.svc.cluster.local:5000"]
        );
        let toml = e.hosts_toml("main.tools.svc:5000", "/etc/containerd/certs.d/x/ca.crt");
        assert!(toml.contains("server = \"https://main.tools.svc:5000\"\n"));
        assert!(toml.contains("ca = \"/etc/containerd/certs.d/x/ca.crt\"\n"));
        assert!(!toml.contains("skip_verify"));
        assert_eq!(
            e.hosts_line(),
            "10.0.3.7 main.tools.svc main.tools.svc.cluster.local"
        );
        assert_eq!(entry_key("tools", "main"), "tools_main.json");
    }

    #[test]
    fn entry_round_trips_as_camel_case_json() {
        let json = serde_json::to_string(&entry()).unwrap();
        assert!(json.contains("\"caPem\""));
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), entry());
    }

    #[test]
    fn splice_adds_replaces_and_removes_only_its_block() {
        let base = "127.0.0.1 localhost\n::1 localhost\n";
        let one = splice_hosts(base, &["10.0.0.9 a.b.svc".into()]);
        assert_eq!(
            one,
            format!("{base}# BEGIN {MARKER}\n10.0.0.9 a.b.svc\n# END {MARKER}\n")
        );
        // Idempotent, and a user's later line survives a rewrite.
        assert_eq!(splice_hosts(&one, &["10.0.0.9 a.b.svc".into()]), one);
        let edited = format!("{one}192.168.1.1 mine\n");
        let two = splice_hosts(&edited, &["10.0.0.10 c.d.svc".into()]);
        assert!(two.starts_with(base));
        assert!(two.contains("192.168.1.1 mine\n"));
        assert!(two.contains("10.0.0.10 c.d.svc\n"));
        assert!(!two.contains("a.b.svc"));
        assert_eq!(splice_hosts(&two, &[]), format!("{base}192.168.1.1 mine\n"));
    }
}
