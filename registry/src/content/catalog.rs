//! The repository catalog: every directory under `repositories` that holds a
//! `_manifests` directory, as distribution's catalog walk defines it, in
//! lexical order of the full names.
//!
//! A page is found by walking the tree in that order and stopping once it is
//! full, skipping every subtree that sorts entirely at or before `last`: a
//! page costs about one listing per repository on it (plus the directories
//! above them), not one per repository in the registry. There is no index to
//! keep in step, so processes sharing the storage (another replica,
//! distribution) are always seen as they are.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::error::Result;
use crate::storage::layout;

use super::Content;

/// One page of the catalog.
#[derive(Debug, PartialEq, Eq)]
pub struct CatalogPage {
    pub repositories: Vec<String>,
    /// More repositories follow the last one on this page.
    pub more: bool,
}

impl Content {
    /// Every repository name, in lexical order.
    pub async fn list_repositories(&self) -> Result<Vec<String>> {
        let page = self.walk(layout::MANIFESTS_DIR, None, usize::MAX).await?;
        Ok(page.repositories)
    }

    /// At most `n` repository names sorting after `last`.
    pub async fn catalog_page(&self, last: Option<&str>, n: usize) -> Result<CatalogPage> {
        if n == 0 {
            return Ok(CatalogPage {
                repositories: Vec::new(),
                more: false,
            });
        }
        self.walk(layout::MANIFESTS_DIR, last, n).await
    }

    /// Every repository with an `_uploads` directory (including ones that
    /// never received a manifest), for upload purging.
    pub async fn list_repositories_with_uploads(&self) -> Result<Vec<String>> {
        let page = self.walk(layout::UPLOADS_DIR, None, usize::MAX).await?;
        Ok(page.repositories)
    }

    /// Directories holding `marker`, in lexical order of their names, after
    /// `last`, at most `limit` of them.
    ///
    /// A min-heap of directory names yields them in order: a directory's
    /// name is popped before anything inside it (`a` < `a/b`), and names
    /// between a directory and its children (`a-b` between `a` and `a/b`)
    /// are already in the heap, so the order is that of the full strings.
    async fn walk(&self, marker: &str, last: Option<&str>, limit: usize) -> Result<CatalogPage> {
        let mut found = Vec::new();
        let mut pending: BinaryHeap<Reverse<String>> = BinaryHeap::new();
        for child in self.list_or_empty(layout::REPOSITORIES).await? {
            push_child(&mut pending, &child, &child, last);
        }
        while let Some(Reverse(name)) = pending.pop() {
            let children = self
                .list_or_empty(&format!("{}/{name}", layout::REPOSITORIES))
                .await?;
            if children.iter().any(|c| c == marker) && last.is_none_or(|last| name.as_str() > last)
            {
                if found.len() == limit {
                    return Ok(CatalogPage {
                        repositories: found,
                        more: true,
                    });
                }
                found.push(name.clone());
            }
            for child in children {
                push_child(&mut pending, &format!("{name}/{child}"), &child, last);
            }
        }
        Ok(CatalogPage {
            repositories: found,
            more: false,
        })
    }
}

/// Queues directory `name` (whose last component is `child`) unless it is
/// not a repository path or nothing in it can sort after `last`.
fn push_child(
    pending: &mut BinaryHeap<Reverse<String>>,
    name: &str,
    child: &str,
    last: Option<&str>,
) {
    if child.starts_with('_') || child.starts_with('.') {
        return;
    }
    if last.is_some_and(|last| skippable(name, last)) {
        return;
    }
    pending.push(Reverse(name.to_owned()));
}

/// Whether `name` and everything under it (`name/...`) sort at or before
/// `last`. Names under it lie between `name/` and `name0` (`'0'` follows
/// `'/'`), so that holds exactly when `last >= name0`.
fn skippable(name: &str, last: &str) -> bool {
    last >= format!("{name}0").as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtree_is_skipped_only_when_all_of_it_sorts_before_last() {
        assert!(skippable("a", "b"));
        assert!(skippable("a", "a0"));
        assert!(skippable("a", "a1/x"));
        // `last` inside the subtree, on its root, or before it: walk it.
        assert!(!skippable("a", "a/b"));
        assert!(!skippable("a", "a"));
        assert!(!skippable("a", "a-b"));
        assert!(!skippable("b", "a"));
    }
}
