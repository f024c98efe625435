//! Upload session identity and per-process running hashes: what lets any
//! process continue a session (ids map 1:1 to storage directories; hash
//! states are only a cache, recomputed from stored bytes when missing).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::oci::{Algorithm, Hasher, RepositoryName};

/// Hash states kept per process so consecutive chunks are not re-read.
const MAX_CACHED_HASHES: usize = 4096;

/// An upload session id: a lowercase hyphenated UUID, as distribution uses.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn generate() -> Self {
        UploadId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match uuid::Uuid::parse_str(s) {
            // Only the canonical form maps 1:1 to a storage directory.
            Ok(id) if id.hyphenated().to_string() == s => Ok(UploadId(s.to_owned())),
            _ => Err(Error::BlobUploadUnknown),
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadId({})", self.0)
    }
}

/// Running hashes of in-progress uploads, keyed by session and valid only
/// at the recorded offset. Anything missing or stale is recomputed from the
/// stored bytes, which is what makes cross-process continuation correct.
#[derive(Default)]
pub struct UploadHashes {
    states: Mutex<HashMap<String, (u64, Hasher)>>,
}

impl fmt::Debug for UploadHashes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.states.lock().map(|s| s.len()).unwrap_or(0);
        f.debug_struct("UploadHashes")
            .field("cached", &len)
            .finish()
    }
}

impl UploadHashes {
    pub(super) fn take(&self, key: &str, offset: u64, algorithm: Algorithm) -> Option<Hasher> {
        let mut states = self.states.lock().ok()?;
        match states.remove(key) {
            Some((at, hasher)) if at == offset && hasher.algorithm() == algorithm => Some(hasher),
            _ => None,
        }
    }

    pub(super) fn store(&self, key: String, offset: u64, hasher: Hasher) {
        if let Ok(mut states) = self.states.lock() {
            if states.len() >= MAX_CACHED_HASHES
                && let Some(evict) = states.keys().next().cloned()
            {
                states.remove(&evict);
            }
            states.insert(key, (offset, hasher));
        }
    }

    pub(super) fn forget(&self, key: &str) {
        if let Ok(mut states) = self.states.lock() {
            states.remove(key);
        }
    }
}

pub(super) fn hash_key(repo: &RepositoryName, id: &UploadId) -> String {
    format!("{repo}/{id}")
}
