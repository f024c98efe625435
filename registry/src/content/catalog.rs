//! The repository catalog: every directory under `repositories` that holds a
//! `_manifests` directory, as distribution's catalog walk defines it.

use crate::error::Result;
use crate::storage::layout;

use super::Content;

impl Content {
    /// Every repository name, in lexical order.
    pub async fn list_repositories(&self) -> Result<Vec<String>> {
        self.walk_repositories(layout::MANIFESTS_DIR).await
    }

    /// Every repository with an `_uploads` directory (including ones that
    /// never received a manifest), for upload purging.
    pub async fn list_repositories_with_uploads(&self) -> Result<Vec<String>> {
        self.walk_repositories("_uploads").await
    }

    /// Walks the repositories tree collecting directories that hold `marker`.
    async fn walk_repositories(&self, marker: &str) -> Result<Vec<String>> {
        let mut repositories = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(relative) = pending.pop() {
            let dir = if relative.is_empty() {
                layout::REPOSITORIES.to_owned()
            } else {
                format!("{}/{relative}", layout::REPOSITORIES)
            };
            for child in self.list_or_empty(&dir).await? {
                if child == marker {
                    repositories.push(relative.clone());
                } else if !child.starts_with('_') && !child.starts_with('.') {
                    pending.push(if relative.is_empty() {
                        child
                    } else {
                        format!("{relative}/{child}")
                    });
                }
            }
        }
        repositories.retain(|name| !name.is_empty());
        repositories.sort();
        Ok(repositories)
    }
}
