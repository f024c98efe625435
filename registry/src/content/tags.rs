//! Tags (end-8): one directory per tag under `_manifests/tags`; a tag exists
//! once its `current` link is written.

use crate::error::{Error, Result};
use crate::oci::{RepositoryName, Tag};
use crate::storage::{StorageError, layout};

use super::{Content, bounded};

impl Content {
    /// Whether anything is stored for a repository (links, manifests, uploads).
    pub async fn repository_exists(&self, repo: &RepositoryName) -> Result<bool> {
        // Anything stored for it counts: object stores drop `_manifests` once
        // its last manifest is deleted, while blob links remain.
        match self.storage.list(&layout::repository(repo)).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every committed tag of a repository, in lexical order.
    pub async fn list_tags(&self, repo: &RepositoryName) -> Result<Vec<Tag>> {
        let names = self.list_or_empty(&layout::tags_dir(repo)).await?;
        let tags = names
            .into_iter()
            .filter_map(|name| name.parse::<Tag>().ok());
        let checks = tags.map(|tag| async move {
            // A tag directory without its `current` link is an interrupted push.
            match self
                .storage
                .stat(&layout::tag_current_link(repo, &tag))
                .await
            {
                Ok(_) => Ok(Some(tag)),
                Err(StorageError::NotFound(_)) => Ok(None),
                Err(e) => Err(Error::from(e)),
            }
        });
        let mut tags: Vec<Tag> = bounded(checks.collect())
            .await?
            .into_iter()
            .flatten()
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// Tags for the tags-list endpoint: `NAME_UNKNOWN` for a repository that does not exist.
    pub async fn tags_of_existing_repository(&self, repo: &RepositoryName) -> Result<Vec<Tag>> {
        if !self.repository_exists(repo).await? {
            return Err(Error::NameUnknown(repo.to_string()));
        }
        self.list_tags(repo).await
    }
}
