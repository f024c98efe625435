//! Per-client limits on connections: how clients are told apart (one rule for
//! every per-client limit) and how many connections one may hold open, so a
//! single address cannot take every file descriptor and task.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// `http.limits.connectionsperclient` unless configured.
pub const DEFAULT_CONNECTIONS_PER_CLIENT: usize = 256;
/// `http.limits.streamsperconnection` unless configured: concurrent HTTP/2
/// requests on one connection (hyper's own default is 200, Go's 250).
pub const DEFAULT_STREAMS_PER_CONNECTION: u32 = 128;

/// The address a client is counted by: IPv4 as is (also when it arrives
/// IPv4-mapped on a dual-stack socket), IPv6 by its /64, since one host is
/// routinely given a whole /64 to pick addresses from.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// How many connections each client has open. An entry exists only while
/// its client has a connection open, so the map is bounded by the open
/// connections (the process's file descriptors).
#[derive(Debug)]
pub struct ConnectionLimit {
    per_client: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees the client's slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    limit: Arc<ConnectionLimit>,
    key: IpAddr,
}

impl ConnectionLimit {
    /// At most `per_client` connections per client; 0 means no limit.
    pub fn new(per_client: usize) -> Arc<Self> {
        Arc::new(ConnectionLimit {
            per_client,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `ip`, or `None` when that client
    /// already holds its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let key = client_key(ip);
        if self.per_client > 0 {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let count = open.entry(key).or_insert(0);
            if *count >= self.per_client {
                return None;
            }
            *count += 1;
        }
        Some(ConnectionSlot {
            limit: Arc::clone(self),
            key,
        })
    }

    /// Connections `ip`'s client has open (for tests and logs).
    pub fn open_for(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }

    /// Clients with connections open.
    pub fn clients(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if self.limit.per_client == 0 {
            return;
        }
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn mapped_ipv4_is_ipv4_and_ipv6_counts_by_64() {
        assert_eq!(client_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_ne!(client_key(ip("10.1.2.3")), client_key(ip("10.1.2.4")));
    }

    #[test]
    fn a_client_holds_at_most_its_limit_and_slots_free_on_drop() {
        let limit = ConnectionLimit::new(2);
        let a = limit.admit(ip("10.0.0.1")).unwrap();
        let b = limit.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert!(limit.admit(ip("10.0.0.1")).is_none());
        // Another client is unaffected, as is another host's /64.
        let other = limit.admit(ip("10.0.0.2")).unwrap();
        let v6 = limit.admit(ip("2001:db8::1")).unwrap();
        let _v6_same_64 = limit.admit(ip("2001:db8::2")).unwrap();
        assert!(limit.admit(ip("2001:db8::3")).is_none());
        drop(a);
        assert_eq!(limit.open_for(ip("10.0.0.1")), 1);
        let _again = limit.admit(ip("10.0.0.1")).unwrap();
        drop((b, other, v6));
        // Only clients with something open are remembered.
        assert_eq!(limit.clients(), 2);
    }

    #[test]
    fn zero_means_no_limit_and_no_tracking() {
        let limit = ConnectionLimit::new(0);
        let slots: Vec<_> = (0..1000)
            .map(|_| limit.admit(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(limit.clients(), 0);
        drop(slots);
    }
}
