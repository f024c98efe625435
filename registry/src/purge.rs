//! Upload purging (`storage.maintenance.uploadpurging`): removes upload
//! sessions older than `age`, every `interval`, like distribution's purger.
//! It never runs while the registry is read-only.

use std::time::{Duration, SystemTime};

use crate::content::Content;
use crate::error::Result;
use crate::oci::RepositoryName;
use crate::state::AppState;
use crate::storage::layout;

/// What one purge pass found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    pub examined: usize,
    pub purged: usize,
}

/// Removes (or with `dry_run`, only counts) sessions started before `now - age`.
pub async fn purge_uploads(content: &Content, age: Duration, dry_run: bool) -> Result<PurgeReport> {
    let cutoff = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = PurgeReport::default();
    for repo in content.list_repositories_with_uploads().await? {
        let Ok(name) = repo.parse::<RepositoryName>() else {
            continue;
        };
        for id in content
            .storage()
            .list(&layout::uploads_dir(&name))
            .await
            .unwrap_or_default()
        {
            report.examined += 1;
            let started = content
                .storage()
                .get(&layout::upload_started_at(&name, &id))
                .await
                .ok()
                .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
                .and_then(|text| humantime::parse_rfc3339_weak(text.trim()).ok());
            // Without a readable start time, fall back to the directory's own age.
            let started = match started {
                Some(time) => Some(time),
                None => content
                    .storage()
                    .stat(&layout::upload_data(&name, &id))
                    .await
                    .ok()
                    .map(|meta| meta.modified),
            };
            if started.is_some_and(|time| time < cutoff) {
                report.purged += 1;
                if dry_run {
                    tracing::info!(repository = %name, upload = %id, "would purge stale upload (dry run)");
                } else {
                    let _ = content
                        .storage()
                        .delete(&layout::upload_dir(&name, &id))
                        .await;
                }
            }
        }
    }
    Ok(report)
}

/// One scheduled purge (the server runs it every `interval`, the first after
/// one interval), skipped while the registry is read-only.
pub async fn scheduled_purge(state: &AppState, age: Duration, dry_run: bool) {
    if state.content.write_policy().is_read_only() {
        return;
    }
    match purge_uploads(&state.content, age, dry_run).await {
        Ok(report) => tracing::info!(
            examined = report.examined,
            purged = report.purged,
            dry_run,
            "upload purge finished"
        ),
        Err(e) => tracing::error!(error = %e, "upload purge failed"),
    }
}
