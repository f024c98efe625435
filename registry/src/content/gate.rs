//! The commit gate: the last check before a write becomes visible (a blob
//! moved into place, a link, a manifest, a tag, a delete). It re-reads the
//! maintenance lock from storage rather than trusting the poller's view, so
//! nothing commits once a maintenance window has begun; GC's grace period
//! covers the commits that passed this check just before the lock appeared.

use crate::error::{Error, Result};
use crate::maintenance::{active_lock, window_message};

use super::Content;

impl Content {
    /// Fails with `UNSUPPORTED` while a maintenance lock is held.
    pub(super) async fn commit_gate(&self) -> Result<()> {
        match active_lock(self.storage.as_ref()).await? {
            None => Ok(()),
            Some(lock) => Err(Error::Unsupported(window_message(&lock.purpose))),
        }
    }
}
