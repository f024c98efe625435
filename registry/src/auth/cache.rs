//! Cache of recently verified credentials: bounded, expiring, invalidated
//! when the htpasswd file changes, and compared in constant time. Only
//! keyed fingerprints are kept, never passwords.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a verified credential is trusted without bcrypt.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Upper bound on cached users.
pub const CACHE_CAPACITY: usize = 10_000;

struct Entry {
    fingerprint: [u8; 32],
    generation: u64,
    expires: Instant,
}

pub struct CredentialCache {
    /// Random per-process key so fingerprints are useless outside this process.
    key: [u8; 32],
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        CredentialCache {
            key: rand::random(),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl CredentialCache {
    fn fingerprint(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update((user.len() as u64).to_le_bytes());
        hasher.update(user.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// Whether these credentials were verified recently against this htpasswd generation.
    pub fn is_verified(&self, user: &str, password: &str, generation: u64) -> bool {
        let fingerprint = self.fingerprint(user, password);
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        entries.get(user).is_some_and(|entry| {
            entry.generation == generation
                && entry.expires > Instant::now()
                && bool::from(entry.fingerprint.ct_eq(&fingerprint))
        })
    }

    /// Records successfully verified credentials.
    pub fn remember(&self, user: &str, password: &str, generation: u64) {
        let fingerprint = self.fingerprint(user, password);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= CACHE_CAPACITY {
            entries.retain(|_, entry| entry.expires > now);
            if entries.len() >= CACHE_CAPACITY
                && let Some(evict) = entries.keys().next().cloned()
            {
                entries.remove(&evict);
            }
        }
        entries.insert(
            user.to_owned(),
            Entry {
                fingerprint,
                generation,
                expires: now + CACHE_TTL,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_exact_credentials_of_the_current_generation() {
        let cache = CredentialCache::default();
        cache.remember("u", "p", 1);
        assert!(cache.is_verified("u", "p", 1));
        assert!(!cache.is_verified("u", "q", 1));
        assert!(!cache.is_verified("u", "p", 2));
        assert!(!cache.is_verified("v", "p", 1));
    }

    #[test]
    fn stays_bounded() {
        let cache = CredentialCache::default();
        for i in 0..CACHE_CAPACITY + 10 {
            cache.remember(&format!("user{i}"), "p", 0);
        }
        assert!(cache.entries.lock().unwrap().len() <= CACHE_CAPACITY);
    }
}
