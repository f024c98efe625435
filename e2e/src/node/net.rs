//! The node's host networking: the link holding the node address, forwarding, and removing
//! what the node, CNI and kube-proxy leave behind.

use std::fs;
use std::path::Path;

use super::config::{CNI_BRIDGE, NODE_IP, NODE_LINK};
use super::process::run;
use crate::Result;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Creates the node link (a bridge with no ports: this kernel has no `dummy` driver) holding the
/// node address, and turns on forwarding (its previous value is kept in `saved`).
pub fn up(saved: &Path) -> Result<()> {
    if !link_exists(NODE_LINK) {
        run("ip", &["link", "add", NODE_LINK, "type", "bridge"])?;
    }
    let addr = format!("{NODE_IP}/32");
    let shown = run("ip", &["-o", "addr", "show", "dev", NODE_LINK])?;
    if !shown.contains(&format!(" {addr} ")) {
        run("ip", &["addr", "add", &addr, "dev", NODE_LINK])?;
    }
    run("ip", &["link", "set", NODE_LINK, "up"])?;
    let forward = fs::read_to_string(IP_FORWARD)?;
    if !saved.exists() {
        fs::write(saved, &forward)?;
    }
    if forward.trim() != "1" {
        fs::write(IP_FORWARD, "1\n")?;
    }
    Ok(())
}

/// Removes the node link and the CNI bridge and restores forwarding (best effort).
pub fn down(saved: &Path) {
    for link in [CNI_BRIDGE, NODE_LINK] {
        if link_exists(link) {
            let _ = run("ip", &["link", "del", link]);
        }
    }
    if let Ok(previous) = fs::read_to_string(saved) {
        let _ = fs::write(IP_FORWARD, previous);
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}
