//! Failed-login limiting: each client address, and each user name, may fail
//! a number of times per window before further attempts are refused without
//! bcrypt, and each client's checks run one at a time, so a flood of wrong
//! passwords from one address queues behind itself instead of in front of
//! other clients' logins, and every check sees the failures before it. The
//! clock is passed in, so the policy is tested without waiting.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;

use crate::connections::client_key;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// `auth.htpasswd.failurelimit` unless configured.
pub const DEFAULT_CLIENT_FAILURES: u32 = 10;
/// `auth.htpasswd.userfailurelimit` unless configured: ten clients' worth, so
/// one address alone cannot lock a user out.
pub const DEFAULT_USER_FAILURES: u32 = 100;
/// `auth.htpasswd.failurewindow` unless configured.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Clients (and, separately, user names) remembered at once; beyond this the
/// entry closest to expiry is forgotten first.
pub const TRACKED_CAPACITY: usize = 10_000;

/// How many failed logins are tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Failures per window from one client address (0: no per-client limit).
    pub per_client: u32,
    /// Failures per window for one user name, from any address (0: no limit).
    pub per_user: u32,
    pub window: Duration,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            per_client: DEFAULT_CLIENT_FAILURES,
            per_user: DEFAULT_USER_FAILURES,
            window: DEFAULT_FAILURE_WINDOW,
        }
    }
}

/// `limit` failures per `window` as a generic cell rate: each failure pushes
/// the key's due time one `window / limit` later; a key due more than a window
/// minus one step ahead is refused until it is not. So a burst of `limit` is
/// allowed, then one more each `window / limit`, and a window without failures
/// forgets them all. One `Instant` per key, whatever the limit.
#[derive(Debug)]
struct Tracker<K, V> {
    window: Duration,
    step: Duration,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Hash + Eq + Copy, V> Tracker<K, V> {
    fn new(limit: u32, window: Duration) -> Option<Self> {
        (limit > 0 && !window.is_zero()).then(|| Tracker {
            window,
            step: window / limit,
            entries: HashMap::new(),
        })
    }

    /// How long `key` must wait before its next attempt, if it must.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let (due, _) = self.entries.get(key)?;
        let allowed_until = now + self.window - self.step;
        (*due > allowed_until).then(|| *due - allowed_until)
    }

    /// The entry of `key`, made room for if new: forgotten first are entries
    /// with no failures left to remember and no `busy` value, then the one
    /// due soonest.
    fn entry(
        &mut self,
        key: K,
        now: Instant,
        make: impl FnOnce() -> V,
        busy: impl Fn(&V) -> bool,
    ) -> &mut (Instant, V) {
        if !self.entries.contains_key(&key) && self.entries.len() >= TRACKED_CAPACITY {
            self.entries
                .retain(|_, (due, value)| *due > now || busy(value));
            if self.entries.len() >= TRACKED_CAPACITY
                && let Some(soonest) = self.entries.iter().min_by_key(|(_, e)| e.0).map(|e| *e.0)
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.entry(key).or_insert_with(|| (now, make()))
    }

    fn fail(&mut self, key: K, now: Instant, make: impl FnOnce() -> V, busy: impl Fn(&V) -> bool) {
        let step = self.step;
        let (due, _) = self.entry(key, now, make, busy);
        *due = (*due).max(now) + step;
    }
}

/// Limits of one client: the failures and the checks running at once.
type ClientTracker = Tracker<IpAddr, Arc<Semaphore>>;

/// Whether a client's lane is held or waited for by a request.
fn lane_busy(lane: &Arc<Semaphore>) -> bool {
    Arc::strong_count(lane) > 1
}

/// Per-client and per-user failed-login limits (see the module docs).
#[derive(Debug)]
pub struct FailureLimiter {
    clients: Option<Mutex<ClientTracker>>,
    /// Keyed by a hash of the name, so a flood of long made-up names costs
    /// eight bytes each; every name is tracked alike, so a refusal does not
    /// tell whether the user exists.
    users: Option<Mutex<Tracker<u64, ()>>>,
    names: RandomState,
}

impl FailureLimiter {
    pub fn new(policy: FailurePolicy) -> Self {
        FailureLimiter {
            clients: Tracker::new(policy.per_client, policy.window).map(Mutex::new),
            users: Tracker::new(policy.per_user, policy.window).map(Mutex::new),
            names: RandomState::new(),
        }
    }

    /// How long the client or user must wait before another attempt, if
    /// either has failed too often (the longer of the two).
    pub fn wait(&self, client: Option<IpAddr>, user: &str, now: Instant) -> Option<Duration> {
        let by_client = client.zip(self.clients.as_ref()).and_then(|(ip, clients)| {
            let clients = clients.lock().unwrap_or_else(|e| e.into_inner());
            clients.wait(&client_key(ip), now)
        });
        let by_user = self.users.as_ref().and_then(|users| {
            let users = users.lock().unwrap_or_else(|e| e.into_inner());
            users.wait(&self.names.hash_one(user), now)
        });
        by_client.max(by_user)
    }

    /// Records a failed attempt of `user` from `client`.
    pub fn fail(&self, client: Option<IpAddr>, user: &str, now: Instant) {
        if let (Some(ip), Some(clients)) = (client, &self.clients) {
            let mut clients = clients.lock().unwrap_or_else(|e| e.into_inner());
            clients.fail(client_key(ip), now, new_lane, lane_busy);
        }
        if let Some(users) = &self.users {
            let mut users = users.lock().unwrap_or_else(|e| e.into_inner());
            users.fail(self.names.hash_one(user), now, || (), |()| false);
        }
    }

    /// The client's lane: a request holds its one permit while its
    /// credentials are checked, so a client's checks run one at a time and the
    /// rest wait, then find the credentials cached or the client refused
    /// (with several at once, each would miss the others' failures still in
    /// progress). `None` without a client or per-client limit.
    pub fn lane(&self, client: Option<IpAddr>, now: Instant) -> Option<Arc<Semaphore>> {
        let (ip, clients) = client.zip(self.clients.as_ref())?;
        let mut clients = clients.lock().unwrap_or_else(|e| e.into_inner());
        let (_, lane) = clients.entry(client_key(ip), now, new_lane, lane_busy);
        Some(Arc::clone(lane))
    }
}

fn new_lane() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(1))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn limiter(per_client: u32, per_user: u32) -> FailureLimiter {
        FailureLimiter::new(FailurePolicy {
            per_client,
            per_user,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_client_may_fail_the_limit_then_one_more_per_step() {
        let limiter = limiter(3, 0);
        let t0 = Instant::now();
        let client = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(limiter.wait(client, "u", t0), None);
            limiter.fail(client, "u", t0);
        }
        // Refused until a third of the window frees one slot, whatever the user name.
        assert_eq!(limiter.wait(client, "u", t0), Some(Duration::from_secs(20)));
        assert_eq!(
            limiter.wait(client, "other", t0 + Duration::from_secs(5)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(limiter.wait(ip("192.0.2.2"), "u", t0), None);
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(limiter.wait(client, "u", t1), None);
        limiter.fail(client, "u", t1);
        assert_eq!(limiter.wait(client, "u", t1), Some(Duration::from_secs(20)));
        // A whole window without failures forgets them all.
        let t2 = t1 + Duration::from_secs(80);
        for _ in 0..3 {
            assert_eq!(limiter.wait(client, "u", t2), None);
            limiter.fail(client, "u", t2);
        }
        assert!(limiter.wait(client, "u", t2).is_some());
    }

    #[test]
    fn a_user_name_is_limited_across_clients() {
        let limiter = limiter(10, 4);
        let t0 = Instant::now();
        for n in 1..=4 {
            limiter.fail(ip(&format!("198.51.100.{n}")), "admin", t0);
        }
        assert_eq!(
            limiter.wait(ip("203.0.113.9"), "admin", t0),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            limiter.wait(None, "admin", t0),
            Some(Duration::from_secs(15))
        );
        assert_eq!(limiter.wait(ip("203.0.113.9"), "ci", t0), None);
        assert_eq!(limiter.wait(ip("198.51.100.1"), "ci", t0), None);
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_slash_64_and_mapped_ipv4_as_ipv4() {
        let limiter = limiter(1, 0);
        let t0 = Instant::now();
        limiter.fail(ip("2001:db8:1:2::1"), "u", t0);
        assert!(limiter.wait(ip("2001:db8:1:2:ffff::9"), "u", t0).is_some());
        assert!(limiter.wait(ip("2001:db8:1:3::1"), "u", t0).is_none());

        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped();
        limiter.fail(Some(IpAddr::V6(mapped)), "u", t0);
        assert!(limiter.wait(ip("192.0.2.7"), "u", t0).is_some());
        assert!(
            limiter
                .wait(Some(IpAddr::V6(Ipv6Addr::LOCALHOST)), "u", t0)
                .is_none()
        );
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limiter = limiter(0, 0);
        let t0 = Instant::now();
        for _ in 0..100 {
            limiter.fail(ip("192.0.2.1"), "u", t0);
        }
        assert_eq!(limiter.wait(ip("192.0.2.1"), "u", t0), None);
        assert!(limiter.lane(ip("192.0.2.1"), t0).is_none());
    }

    #[test]
    fn a_client_has_one_lane_with_one_permit() {
        let limiter = limiter(2, 0);
        let t0 = Instant::now();
        let lane = limiter.lane(ip("192.0.2.1"), t0).unwrap();
        assert_eq!(lane.available_permits(), 1);
        assert!(Arc::ptr_eq(
            &lane,
            &limiter.lane(ip("192.0.2.1"), t0).unwrap()
        ));
        assert!(!Arc::ptr_eq(
            &lane,
            &limiter.lane(ip("192.0.2.2"), t0).unwrap()
        ));
        assert!(limiter.lane(None, t0).is_none());
    }

    #[test]
    fn stays_bounded_and_keeps_the_clients_still_refused() {
        let limiter = limiter(1, 1);
        let t0 = Instant::now();
        let attacker = ip("203.0.113.1");
        limiter.fail(attacker, "root", t0);
        let later = t0 + Duration::from_secs(1);
        for n in 0..TRACKED_CAPACITY as u32 + 50 {
            let client = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
            // Clients that only ever logged in leave nothing worth keeping.
            drop(limiter.lane(client, later));
            limiter.fail(None, &format!("user{n}"), later);
        }
        let clients = limiter.clients.as_ref().unwrap().lock().unwrap();
        assert!(clients.entries.len() <= TRACKED_CAPACITY);
        drop(clients);
        assert!(
            limiter
                .users
                .as_ref()
                .unwrap()
                .lock()
                .unwrap()
                .entries
                .len()
                <= TRACKED_CAPACITY
        );
        assert!(limiter.wait(attacker, "x", later).is_some());
    }
}
