//! The maintenance lock: a small JSON object in storage that puts every
//! registry process on that storage into read-only mode while it is held.
//!
//! Garbage collection takes it, waits a grace period so commits already past
//! their last check land, marks and sweeps, then releases it. The holder
//! refreshes `expires_at`; a lock whose holder died expires on its own, so a
//! killed GC never leaves the registry read-only for longer than the TTL.
//! Serving registries poll it (`Content::poll_lock`) and enforce it through
//! the content's write policy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::storage::{Precondition, Storage, StorageError, StorageResult, Version, layout};

/// How often a serving registry re-reads the lock unless
/// `storage.maintenance.lock.pollinterval` says otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Where the lock lives (see [`layout::maintenance_lock`]).
pub fn lock_path() -> String {
    layout::maintenance_lock()
}

/// The content of the lock object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Who holds it (host, pid and a random id), so only the holder releases it.
    pub holder: String,
    /// Why, shown in the 405 message clients see (e.g. "garbage collection").
    pub purpose: String,
    /// Unix seconds.
    pub acquired_at: u64,
    /// Unix seconds after which the lock no longer counts.
    pub expires_at: u64,
}

impl LockRecord {
    /// Whether the lock still counts at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        unix_seconds(now) < self.expires_at
    }
}

/// Why the lock could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the maintenance lock is held by {holder} ({purpose}) for another {seconds_left}s")]
    Held {
        holder: String,
        purpose: String,
        seconds_left: u64,
    },
    #[error("the maintenance lock was taken over by {0}; stopping")]
    Lost(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a refused write is told during a maintenance window held for `purpose`.
pub fn window_message(purpose: &str) -> String {
    format!(
        "the registry is in read-only maintenance ({purpose}); pulls still work, retry the push shortly"
    )
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Reads the lock; `None` when absent or unreadable (a torn or foreign file
/// must not wedge the registry in read-only mode).
pub async fn read_lock(storage: &dyn Storage) -> StorageResult<Option<LockRecord>> {
    match storage.get(&lock_path()).await {
        Ok(bytes) => {
            let record = serde_json::from_slice::<LockRecord>(&bytes);
            if record.is_err() {
                tracing::warn!(path = %lock_path(), "ignoring unreadable maintenance lock");
            }
            Ok(record.ok())
        }
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The lock currently in force, if any.
pub async fn active_lock(storage: &dyn Storage) -> StorageResult<Option<LockRecord>> {
    let now = SystemTime::now();
    Ok(read_lock(storage).await?.filter(|r| r.is_active(now)))
}

/// A held maintenance lock.
#[derive(Debug, Clone)]
pub struct MaintenanceLock {
    record: LockRecord,
    ttl: Duration,
    /// The version this holder last wrote, for compare-and-swap refreshes.
    version: Version,
}

impl MaintenanceLock {
    /// Takes the lock unless another live holder has it: created only if
    /// absent, and an expired lock is replaced only if it is still the one
    /// that was read (compare-and-swap), so two racing takers never both win.
    pub async fn acquire(
        storage: &dyn Storage,
        purpose: &str,
        ttl: Duration,
    ) -> Result<Self, LockError> {
        let now = SystemTime::now();
        let record = LockRecord {
            holder: holder_id(),
            purpose: purpose.to_owned(),
            acquired_at: unix_seconds(now),
            expires_at: unix_seconds(now + ttl).max(unix_seconds(now) + 1),
        };
        let condition = match storage.get_versioned(&lock_path()).await {
            Ok((bytes, version)) => match serde_json::from_slice::<LockRecord>(&bytes) {
                Ok(existing) if existing.is_active(now) => return Err(held(&existing, now)),
                _ => Precondition::Matches(version),
            },
            Err(StorageError::NotFound(_)) => Precondition::Absent,
            Err(e) => return Err(e.into()),
        };
        match storage
            .put_if(&lock_path(), encode(&record)?, condition)
            .await
        {
            Ok(version) => Ok(MaintenanceLock {
                record,
                ttl,
                version,
            }),
            Err(StorageError::Conflict(_)) => match read_lock(storage).await? {
                Some(current) => Err(held(&current, now)),
                None => Err(LockError::Lost("nobody (the lock vanished)".into())),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Pushes the expiry out by another TTL; fails if the lock changed since
    /// this holder last wrote it (taken over after expiring, or removed).
    pub async fn refresh(&mut self, storage: &dyn Storage) -> Result<(), LockError> {
        let mut record = self.record.clone();
        record.expires_at = unix_seconds(SystemTime::now() + self.ttl);
        match storage
            .put_if(
                &lock_path(),
                encode(&record)?,
                Precondition::Matches(self.version.clone()),
            )
            .await
        {
            Ok(version) => {
                self.record = record;
                self.version = version;
                Ok(())
            }
            Err(StorageError::Conflict(_)) => Err(LockError::Lost(
                read_lock(storage)
                    .await?
                    .map_or_else(|| "nobody (the lock was removed)".into(), |r| r.holder),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the lock if it is still ours.
    pub async fn release(&self, storage: &dyn Storage) -> Result<(), LockError> {
        match read_lock(storage).await? {
            Some(current) if current.holder == self.record.holder => {
                match storage.delete(&lock_path()).await {
                    Ok(()) | Err(StorageError::NotFound(_)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            _ => Ok(()),
        }
    }

    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

fn held(record: &LockRecord, now: SystemTime) -> LockError {
    LockError::Held {
        holder: record.holder.clone(),
        purpose: record.purpose.clone(),
        seconds_left: record.expires_at.saturating_sub(unix_seconds(now)),
    }
}

fn encode(record: &LockRecord) -> StorageResult<Bytes> {
    serde_json::to_vec(record)
        .map(Bytes::from)
        .map_err(|e| StorageError::Io {
            path: lock_path(),
            source: std::io::Error::other(e),
        })
}

fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}/pid-{}/{}", std::process::id(), &nonce[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::FsStorage;

    #[tokio::test]
    async fn one_holder_at_a_time_and_expired_locks_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        let first = MaintenanceLock::acquire(&storage, "gc", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(active_lock(&storage).await.unwrap().is_some());
        let second = MaintenanceLock::acquire(&storage, "gc", Duration::from_secs(60)).await;
        assert!(matches!(second, Err(LockError::Held { .. })), "{second:?}");
        first.release(&storage).await.unwrap();
        assert!(active_lock(&storage).await.unwrap().is_none());

        // A holder that died: its record expired, a new holder takes over and
        // the old one can neither refresh nor release the new lock.
        let mut stale = MaintenanceLock::acquire(&storage, "gc", Duration::from_secs(60))
            .await
            .unwrap();
        let mut expired = stale.record.clone();
        expired.expires_at = unix_seconds(SystemTime::now()) - 1;
        storage
            .put(&lock_path(), encode(&expired).unwrap())
            .await
            .unwrap();
        assert!(active_lock(&storage).await.unwrap().is_none());
        let taker = MaintenanceLock::acquire(&storage, "gc", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(matches!(
            stale.refresh(&storage).await,
            Err(LockError::Lost(_))
        ));
        stale.release(&storage).await.unwrap();
        assert_eq!(
            active_lock(&storage).await.unwrap().map(|r| r.holder),
            Some(taker.record().holder.clone())
        );
    }

    #[tokio::test]
    async fn racing_takers_never_both_win() {
        let dir = tempfile::tempdir().unwrap();
        let storage = std::sync::Arc::new(FsStorage::open(dir.path()).unwrap());
        for _ in 0..20 {
            let attempts = (0..8).map(|_| {
                let storage = storage.clone();
                tokio::spawn(async move {
                    MaintenanceLock::acquire(storage.as_ref(), "gc", Duration::from_secs(60)).await
                })
            });
            let results = futures_util::future::join_all(attempts).await;
            let winners: Vec<_> = results
                .into_iter()
                .filter_map(|r| r.unwrap().ok())
                .collect();
            assert_eq!(winners.len(), 1);
            winners[0].release(storage.as_ref()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_garbled_lock_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        storage
            .put(&lock_path(), Bytes::from_static(b"{not json"))
            .await
            .unwrap();
        assert!(active_lock(&storage).await.unwrap().is_none());
        MaintenanceLock::acquire(&storage, "gc", Duration::from_secs(5))
            .await
            .unwrap();
    }
}
