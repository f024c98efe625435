//! The real node's configuration files: containerd, CNI, kubelet and kube-proxy. Pure rendering,
//! so the choices (and the limits this sandbox needs) are visible and tested in one place.

use std::path::{Path, PathBuf};

/// Name of the real node.
pub const NODE_NAME: &str = "berth-node-0";
/// Label (and taint) key that marks the real node; pods opt in by selecting and tolerating it.
pub const NODE_LABEL: &str = "berth.dev/node";
/// Value of [`NODE_LABEL`] on the real node (`kwok` on the fake one).
pub const NODE_LABEL_VALUE: &str = "real";
/// The node's address: on a bridge of its own (this kernel has no `dummy` driver), routable from
/// pods through their gateway, and where kube-apiserver is advertised.
pub const NODE_IP: &str = "10.1.0.2";
/// Interface holding [`NODE_IP`].
pub const NODE_LINK: &str = "berthnode0";
/// The CNI bridge and its pod range (kwok's fake pods use 10.244.0.0/16).
pub const CNI_BRIDGE: &str = "berthcni0";
pub const POD_CIDR: &str = "10.245.0.0/24";
/// Highest open-files limit asked of anything here: the sandbox's hard limit is 20000, and
/// raising a limit above the hard one fails.
pub const MAX_OPEN_FILES: u64 = 20000;
/// Where containerd reads registry host configuration (`hosts.toml`, CA files) inside the node's
/// mount namespace; the same path the node agent writes on any containerd node.
pub const CERTS_D: &str = "/etc/containerd/certs.d";
/// containerd's state dir, a tmpfs inside the node's mount namespace (shim sockets live here).
pub const CONTAINERD_STATE: &str = "/run/containerd";

/// Paths and ports of one node instance.
#[derive(Clone, Debug)]
pub struct NodeLayout {
    /// The cluster's state dir (`e2e/cluster`'s `$STATE_DIR`).
    pub state: PathBuf,
    /// `$STATE/node`.
    pub dir: PathBuf,
    pub pki: PathBuf,
    pub api_port: u16,
    pub kubelet_port: u16,
    pub kubelet_healthz_port: u16,
    pub proxy_healthz_port: u16,
    pub proxy_metrics_port: u16,
    /// Image reference of the sandbox image (imported before kubelet starts).
    pub pause_image: String,
    /// The host's first nameserver, handed to pods as "cluster DNS" (there is none; see
    /// [`kubelet_yaml`]).
    pub dns: Option<String>,
}

impl NodeLayout {
    pub fn new(state: &Path, api_port: u16, pause_image: String) -> Self {
        NodeLayout {
            state: state.to_owned(),
            dir: state.join("node"),
            pki: state.join("pki"),
            api_port,
            kubelet_port: 0,
            kubelet_healthz_port: 0,
            proxy_healthz_port: 0,
            proxy_metrics_port: 0,
            pause_image,
            dns: None,
        }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    pub fn containerd_socket(&self) -> PathBuf {
        self.path("containerd.sock")
    }
    pub fn hosts_file(&self) -> PathBuf {
        self.path("etc/hosts")
    }
    /// Backing directory of [`CERTS_D`] (bind-mounted over `/etc/containerd` in the namespace).
    pub fn etc_containerd(&self) -> PathBuf {
        self.path("etc/containerd")
    }
}

fn p(path: PathBuf) -> String {
    path.display().to_string()
}

/// containerd 1.6 (config version 2): CRI with runc and cgroupfs, overlayfs, CNI from Debian's
/// plugin dir, registry hosts from [`CERTS_D`], the locally built sandbox image, and
/// oom_score_adj never below its own (this host refuses to lower it).
pub fn containerd_toml(l: &NodeLayout) -> String {
    format!(
        r#"version = 2
root = "{root}"
state = "{CONTAINERD_STATE}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # The sandbox forbids lowering oom_score_adj (kubelet asks -998 for sandboxes, -997 for
  # Guaranteed pods): clamp requests to containerd's own value instead of failing in runc.
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{CERTS_D}"
"#,
        root = p(l.path("containerd/root")),
        socket = p(l.containerd_socket()),
        pause = l.pause_image,
        cni = p(l.path("cni/net.d")),
    )
}

/// CNI: a bridge with host-local addresses, no masquerading (pods only talk to the node and to
/// each other), hairpin for a pod reaching itself through its Service, portmap for hostPorts.
/// containerd adds the loopback plugin itself.
pub fn cni_conflist(l: &NodeLayout) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "berth",
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": p(l.path("cni/ipam")),
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string()
}

/// kubelet 1.35 on this host: cgroup v1 allowed, cgroupfs, swap tolerated, limits at or below
/// the sandbox's hard limits, webhook authn/z with the cluster CA, the node tainted so only pods
/// that opt in land here, fast syncs so Secret and ConfigMap volumes update within seconds.
/// The cluster has no DNS server; pods get the host's resolver (what `dnsPolicy: Default` gives
/// them anyway) instead of an event every sync saying so.
pub fn kubelet_yaml(l: &NodeLayout) -> String {
    let dns = l
        .dns
        .as_ref()
        .map(|ip| format!("clusterDNS: [{ip}]\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization:
  mode: Webhook
tlsCertFile: {serving_crt}
tlsPrivateKeyFile: {serving_key}
containerRuntimeEndpoint: unix://{socket}
imageServiceEndpoint: unix://{socket}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
maxOpenFiles: {MAX_OPEN_FILES}
maxPods: 60
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
{dns}registerNode: true
registerWithTaints:
  - {{key: {NODE_LABEL}, value: {NODE_LABEL_VALUE}, effect: NoSchedule}}
podLogsDir: {logs}
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 10s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}}
protectKernelDefaults: false
shutdownGracePeriod: 0s
"#,
        port = l.kubelet_port,
        healthz = l.kubelet_healthz_port,
        ca = p(l.pki.join("ca.crt")),
        serving_crt = p(l.pki.join("kubelet-serving.crt")),
        serving_key = p(l.pki.join("kubelet-serving.key")),
        socket = p(l.containerd_socket()),
        logs = p(l.path("pod-logs")),
    )
}

/// kube-proxy in iptables mode; conntrack sysctls left as they are (the sandbox owns them).
pub fn kube_proxy_yaml(l: &NodeLayout) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {kubeconfig}
mode: iptables
hostnameOverride: {NODE_NAME}
clusterCIDR: {POD_CIDR}
healthzBindAddress: 127.0.0.1:{healthz}
metricsBindAddress: 127.0.0.1:{metrics}
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  syncPeriod: 30s
  minSyncPeriod: 2s
"#,
        kubeconfig = p(l.state.join("kube-proxy.kubeconfig")),
        healthz = l.proxy_healthz_port,
        metrics = l.proxy_metrics_port,
    )
}

/// The node's mount namespace: private tmpfs for containerd's state, network namespaces and
/// container log links, and bind mounts of the node's own hosts file and `/etc/containerd`, so
/// nothing the node does reaches the host's files and everything vanishes with the namespace.
pub fn namespace_setup(l: &NodeLayout) -> String {
    format!(
        "set -eu\n\
         mkdir -p {CONTAINERD_STATE} /run/netns /var/log/containers /etc/containerd\n\
         mount -t tmpfs -o mode=0711 berth-containerd {CONTAINERD_STATE}\n\
         mount -t tmpfs -o mode=0755 berth-netns /run/netns\n\
         mount -t tmpfs -o mode=0755 berth-logs /var/log/containers\n\
         mount --bind {etc} /etc/containerd\n\
         mount --bind {hosts} /etc/hosts\n",
        etc = p(l.etc_containerd()),
        hosts = p(l.hosts_file()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> NodeLayout {
        let mut l = NodeLayout::new(Path::new("/tmp/c"), 6443, "docker.io/berth/pause:1".into());
        l.kubelet_port = 20001;
        l.kubelet_healthz_port = 20002;
        l.proxy_healthz_port = 20003;
        l.proxy_metrics_port = 20004;
        l.dns = Some("10.255.255.53".into());
        l
    }

    #[test]
    fn containerd_uses_the_node_paths_and_cgroupfs() {
        let toml = containerd_toml(&layout());
        assert!(toml.contains(r#"address = "/tmp/c/node/containerd.sock""#));
        assert!(toml.contains(r#"sandbox_image = "docker.io/berth/pause:1""#));
        assert!(toml.contains("SystemdCgroup = false"));
        assert!(toml.contains("restrict_oom_score_adj = true"));
        assert!(toml.contains(r#"config_path = "/etc/containerd/certs.d""#));
    }

    #[test]
    fn kubelet_stays_within_the_sandbox_limits() {
        let yaml = kubelet_yaml(&layout());
        assert!(yaml.contains("failCgroupV1: false\n"));
        assert!(yaml.contains("cgroupDriver: cgroupfs\n"));
        assert!(yaml.contains("maxOpenFiles: 20000\n"));
        assert!(yaml.contains("port: 20001\n"));
        assert!(yaml.contains("clusterDNS: [10.255.255.53]\n"));
        assert!(yaml.contains("{key: berth.dev/node, value: real, effect: NoSchedule}"));
    }

    #[test]
    fn cni_is_a_bridge_without_masquerade() {
        let v: serde_json::Value = serde_json::from_str(&cni_conflist(&layout())).unwrap();
        assert_eq!(v["plugins"][0]["bridge"], CNI_BRIDGE);
        assert_eq!(v["plugins"][0]["ipMasq"], false);
        assert_eq!(v["plugins"][0]["ipam"]["dataDir"], "/tmp/c/node/cni/ipam");
        assert_eq!(v["plugins"][1]["type"], "portmap");
    }

    #[test]
    fn proxy_is_iptables_and_leaves_conntrack_alone() {
        let yaml = kube_proxy_yaml(&layout());
        assert!(yaml.contains("mode: iptables\n"));
        assert!(yaml.contains("maxPerCore: 0\n"));
        assert!(yaml.contains("kubeconfig: /tmp/c/kube-proxy.kubeconfig\n"));
    }
}
