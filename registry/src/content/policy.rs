//! The write policy: every write and delete through [`Content`] is admitted
//! here, so a handler cannot write around it. Three inputs decide it: the
//! configured read-only mode, `storage.delete.enabled`, and the maintenance
//! lock. The lock is checked twice: as last polled (a cheap atomic load when
//! an operation starts, so a refused push is turned away before its body is
//! read), and re-read from storage at each commit point (the commit gate),
//! which is what the guarantee rests on; GC's grace period covers commits
//! that passed the gate just before the lock appeared.
//!
//! Garbage collection holds the lock it enforces, so it works through a
//! maintenance handle ([`Content::for_maintenance`]) that skips the policy.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::maintenance::{LockRecord, active_lock, window_message};

use super::Content;

/// What a request does to storage, for [`Content::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Delete,
}

/// Whether writes and deletes are accepted, shared by every clone of a
/// [`Content`] and the lock watch that updates it.
#[derive(Debug)]
pub struct WritePolicy {
    /// `storage.maintenance.readonly` (not the GC window).
    read_only: bool,
    /// `storage.delete.enabled`.
    deletes_enabled: bool,
    /// A maintenance lock was held when storage was last polled.
    locked: AtomicBool,
    lock_purpose: RwLock<String>,
}

impl Default for WritePolicy {
    /// Writable, deletes enabled, no lock seen yet (the commit gate still
    /// reads the lock from storage).
    fn default() -> Self {
        WritePolicy::new(false, true)
    }
}

impl WritePolicy {
    pub fn new(read_only: bool, deletes_enabled: bool) -> Self {
        WritePolicy {
            read_only,
            deletes_enabled,
            locked: AtomicBool::new(false),
            lock_purpose: RwLock::new(String::new()),
        }
    }

    /// Whether `storage.maintenance.readonly` is on (not the GC window).
    pub fn is_configured_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether writes are currently refused (as last observed).
    pub fn is_read_only(&self) -> bool {
        self.read_only || self.locked.load(Ordering::SeqCst)
    }

    /// Records the lock last seen in storage (`None`: no active lock).
    pub fn observe_lock(&self, lock: Option<&LockRecord>) {
        if let Some(lock) = lock
            && let Ok(mut purpose) = self.lock_purpose.write()
        {
            purpose.clone_from(&lock.purpose);
        }
        let was = self.locked.swap(lock.is_some(), Ordering::SeqCst);
        if was != lock.is_some() {
            match lock {
                Some(lock) => {
                    tracing::info!(holder = %lock.holder, purpose = %lock.purpose, "maintenance lock taken: refusing writes")
                }
                None => tracing::info!("maintenance lock released: accepting writes"),
            }
        }
    }

    fn refuse_write(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::Unsupported(
                "the registry is in read-only maintenance mode; pulls still work".into(),
            ));
        }
        if self.locked.load(Ordering::SeqCst) {
            let purpose = self
                .lock_purpose
                .read()
                .map(|p| p.clone())
                .unwrap_or_default();
            return Err(Error::Unsupported(window_message(&purpose)));
        }
        Ok(())
    }

    fn refuse_delete(&self) -> Result<()> {
        self.refuse_write()?;
        if self.deletes_enabled {
            Ok(())
        } else {
            Err(Error::Unsupported(
                "deletes are disabled on this registry (storage.delete.enabled)".into(),
            ))
        }
    }
}

impl Content {
    /// The policy this content enforces (shared with its clones).
    pub fn write_policy(&self) -> &WritePolicy {
        &self.policy
    }

    /// A handle for the maintenance process holding the lock (garbage
    /// collection): same storage, no write policy. Its own rules decide what
    /// it may delete, and the lock it holds must not refuse its own work.
    pub fn for_maintenance(&self) -> Content {
        Content {
            maintenance: true,
            ..self.clone()
        }
    }

    /// Refuses a write while read-only (configured, or a maintenance lock as
    /// last polled). Cheap: write entry points call it first, and HTTP
    /// dispatch calls it before a handler reads the request body.
    pub fn admit_write(&self) -> Result<()> {
        if self.maintenance {
            return Ok(());
        }
        self.policy.refuse_write()
    }

    /// [`Content::admit_write`], and refuses deletes unless `storage.delete.enabled`.
    pub fn admit_delete(&self) -> Result<()> {
        if self.maintenance {
            return Ok(());
        }
        self.policy.refuse_delete()
    }

    /// Admits a request by what it does.
    pub fn admit(&self, access: Access) -> Result<()> {
        match access {
            Access::Read => Ok(()),
            Access::Write => self.admit_write(),
            Access::Delete => self.admit_delete(),
        }
    }

    /// The last check before a write becomes visible (a blob moved into
    /// place, a link, a manifest, a tag, a delete): fails with `UNSUPPORTED`
    /// while a maintenance lock is held. It re-reads the lock from storage
    /// rather than trusting the poll, so nothing commits once a window began.
    pub(super) async fn commit_gate(&self) -> Result<()> {
        if self.maintenance {
            return Ok(());
        }
        match active_lock(self.storage.as_ref()).await? {
            None => Ok(()),
            Some(lock) => Err(Error::Unsupported(window_message(&lock.purpose))),
        }
    }

    /// The lock watch: reads the lock once and records what it says (a
    /// serving registry runs it every poll interval).
    pub async fn poll_lock(&self) {
        match active_lock(self.storage.as_ref()).await {
            Ok(lock) => self.policy.observe_lock(lock.as_ref()),
            // Keep the last known state: a storage hiccup must neither
            // open writes during a window nor close them outside one.
            Err(e) => tracing::warn!(error = %e, "reading the maintenance lock failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::content::ManifestValidation;
    use crate::maintenance::MaintenanceLock;
    use crate::oci::{Algorithm, Digest, Reference, RepositoryName};
    use crate::storage::fs::FsStorage;

    fn content(dir: &Path, policy: WritePolicy) -> Content {
        Content::with_policy(Arc::new(FsStorage::open(dir).unwrap()), policy)
    }

    /// Every file and directory under `dir`.
    fn tree(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(tree(&path));
            }
            found.push(path);
        }
        found.sort();
        found
    }

    /// A body that fails the test if anything reads it.
    fn unread_body() -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + Unpin {
        futures_util::stream::poll_fn(|_| panic!("a refused upload read its body"))
    }

    fn refused(result: Result<impl std::fmt::Debug>, says: &str) {
        match result {
            Err(Error::Unsupported(message)) => assert!(message.contains(says), "{message}"),
            other => panic!("expected UNSUPPORTED ({says}), got {other:?}"),
        }
    }

    #[tokio::test]
    async fn read_only_content_refuses_every_write_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let content = content(dir.path(), WritePolicy::new(true, true));
        let before = tree(dir.path());
        let repo: RepositoryName = "ro/app".parse().unwrap();
        let digest = Algorithm::Sha256.digest_of(b"layer");
        let id = crate::content::UploadId::generate();
        let manifest = Bytes::from_static(br#"{"schemaVersion":2}"#);
        let tag = Reference::Tag("v1".parse().unwrap());
        let says = "read-only";

        refused(content.start_upload(&repo).await, says);
        refused(
            content
                .upload_whole(&repo, &digest, None, unread_body())
                .await,
            says,
        );
        refused(
            content
                .append_upload(&repo, &id, None, None, unread_body())
                .await,
            says,
        );
        refused(content.complete_upload(&repo, &id, &digest).await, says);
        refused(content.cancel_upload(&repo, &id).await, says);
        refused(content.mount_blob(&repo, &digest, None).await, says);
        refused(
            content
                .put_manifest(
                    &repo,
                    &tag,
                    &[],
                    manifest,
                    None,
                    &ManifestValidation::default(),
                )
                .await,
            says,
        );
        refused(content.delete_manifest(&repo, &tag).await, says);
        refused(content.delete_blob(&repo, &digest).await, says);
        assert_eq!(tree(dir.path()), before);
    }

    #[tokio::test]
    async fn disabled_deletes_are_refused_while_writes_pass() {
        let dir = tempfile::tempdir().unwrap();
        let content = content(dir.path(), WritePolicy::new(false, false));
        let repo: RepositoryName = "app".parse().unwrap();
        let digest: Digest = Algorithm::Sha256.digest_of(b"x");
        let says = "storage.delete.enabled";
        refused(content.delete_blob(&repo, &digest).await, says);
        refused(
            content
                .delete_manifest(&repo, &Reference::Digest(digest.clone()))
                .await,
            says,
        );
        let body = futures_util::stream::iter([Ok(Bytes::from_static(b"x"))]);
        content
            .upload_whole(&repo, &digest, Some(1), body)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_held_lock_refuses_writes_except_through_the_maintenance_handle() {
        let dir = tempfile::tempdir().unwrap();
        let content = content(dir.path(), WritePolicy::default());
        let repo: RepositoryName = "app".parse().unwrap();
        let digest = Algorithm::Sha256.digest_of(b"blob");
        let lock = MaintenanceLock::acquire(
            content.storage().as_ref(),
            "garbage collection",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        let says = "read-only maintenance (garbage collection)";

        // Not yet polled: the commit gate re-reads the lock itself.
        let body = futures_util::stream::iter([Ok(Bytes::from_static(b"blob"))]);
        refused(content.upload_whole(&repo, &digest, None, body).await, says);
        refused(content.mount_blob(&repo, &digest, None).await, says);
        // Polled: refused up front.
        content.poll_lock().await;
        assert!(content.write_policy().is_read_only());
        refused(content.start_upload(&repo).await, says);

        // The lock holder's handle writes; the shared policy still refuses others.
        let maintenance = content.for_maintenance();
        let body = futures_util::stream::iter([Ok(Bytes::from_static(b"blob"))]);
        maintenance
            .upload_whole(&repo, &digest, None, body)
            .await
            .unwrap();
        maintenance.delete_blob(&repo, &digest).await.unwrap();
        refused(content.start_upload(&repo).await, says);

        lock.release(content.storage().as_ref()).await.unwrap();
        content.poll_lock().await;
        assert!(!content.write_policy().is_read_only());
        content.start_upload(&repo).await.unwrap();
    }
}
