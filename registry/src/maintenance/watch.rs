//! Keeps a serving registry's view of the maintenance lock current by polling
//! storage (the server runs [`poll_lock`] every poll interval), so
//! request-start checks are a cheap atomic load. Commit points
//! re-read the lock itself (see `AppState::commit_gate`), which is what the
//! guarantee rests on; the poll only turns writes away early.

use std::time::Duration;

use crate::state::AppState;

use super::active_lock;

/// How often a registry re-reads the lock unless
/// `storage.maintenance.lock.pollinterval` says otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Reads the lock once and records what it says.
pub async fn poll_lock(state: &AppState) {
    match active_lock(state.content.storage().as_ref()).await {
        Ok(lock) => state.maintenance.observe_lock(lock.as_ref()),
        // Keep the last known state: a storage hiccup must neither
        // open writes during a window nor close them outside one.
        Err(e) => tracing::warn!(error = %e, "reading the maintenance lock failed"),
    }
}
