//! Marking: which manifests each repository keeps, and which blobs anything
//! kept reaches. Pure functions over the scan, so the rules are unit-tested.
//!
//! A repository keeps every revision (or, with `--delete-untagged`, every
//! tagged manifest plus extra roots such as recently pushed ones), the
//! children of a kept index that it holds, and every referrer whose subject it
//! keeps. Blobs are marked through the references of kept manifests,
//! following manifests across repositories.

use std::collections::{HashMap, HashSet};

use crate::oci::{Digest, RepositoryName};

use super::scan::{ManifestRefs, RepoScan};

/// The outcome of marking.
#[derive(Debug, Default)]
pub struct Marks {
    /// Manifests each repository keeps.
    pub kept: HashMap<RepositoryName, HashSet<Digest>>,
    /// Every blob (manifests included) that must stay.
    pub blobs: HashSet<Digest>,
}

impl Marks {
    /// Revisions of `repo` that are not kept.
    pub fn unkept<'a>(&'a self, repo: &'a RepoScan) -> impl Iterator<Item = &'a Digest> + 'a {
        let kept = self.kept.get(&repo.name);
        repo.revisions
            .iter()
            .filter(move |d| !kept.is_some_and(|k| k.contains(*d)))
    }
}

/// Marks from the given roots. `extra_roots` are kept in addition to tags
/// when untagged manifests are being deleted (online mode's young manifests).
pub fn mark(
    repos: &[RepoScan],
    manifests: &HashMap<Digest, ManifestRefs>,
    delete_untagged: bool,
    extra_roots: &HashMap<RepositoryName, HashSet<Digest>>,
) -> Marks {
    let mut marks = Marks::default();
    for repo in repos {
        let mut roots: Vec<Digest> = if delete_untagged && !repo.held {
            repo.tags.iter().map(|(_, d)| d.clone()).collect()
        } else {
            repo.revisions.iter().cloned().collect()
        };
        roots.extend(extra_roots.get(&repo.name).into_iter().flatten().cloned());
        let kept = keep_in_repository(repo, manifests, roots);
        marks.blobs.extend(kept.iter().cloned());
        marks.kept.insert(repo.name.clone(), kept);
    }
    // Tag targets without a revision link still protect their blob.
    for repo in repos {
        marks.blobs.extend(repo.tags.iter().map(|(_, d)| d.clone()));
        if repo.held {
            // An unreadable manifest may name anything pushed to its
            // repository, and a push links every blob it needs there.
            marks.blobs.extend(repo.layer_links.iter().cloned());
        }
    }
    let mut pending: Vec<Digest> = marks.blobs.iter().cloned().collect();
    let mut visited: HashSet<Digest> = HashSet::new();
    while let Some(digest) = pending.pop() {
        if !visited.insert(digest.clone()) {
            continue;
        }
        marks.blobs.insert(digest.clone());
        if let Some(refs) = manifests.get(&digest) {
            pending.extend(refs.references.iter().cloned());
        }
    }
    marks
}

/// The closure of `roots` within one repository over index children and referrers.
fn keep_in_repository(
    repo: &RepoScan,
    manifests: &HashMap<Digest, ManifestRefs>,
    roots: Vec<Digest>,
) -> HashSet<Digest> {
    let mut referrers: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for revision in &repo.revisions {
        if let Some(subject) = manifests.get(revision).and_then(|m| m.subject.as_ref()) {
            referrers.entry(subject).or_default().push(revision);
        }
    }
    let mut kept = HashSet::new();
    let mut pending = roots;
    while let Some(digest) = pending.pop() {
        if !repo.revisions.contains(&digest) || !kept.insert(digest.clone()) {
            continue;
        }
        if let Some(refs) = manifests.get(&digest) {
            pending.extend(refs.children.iter().cloned());
        }
        if let Some(found) = referrers.get(&digest) {
            pending.extend(found.iter().map(|d| (*d).clone()));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Tag;

    fn d(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    fn refs(references: &[u8], children: &[u8], subject: Option<u8>) -> ManifestRefs {
        ManifestRefs {
            references: references.iter().map(|n| d(*n)).collect(),
            children: children.iter().map(|n| d(*n)).collect(),
            subject: subject.map(d),
        }
    }

    fn repo(name: &str, revisions: &[u8], tags: &[(&str, u8)]) -> RepoScan {
        RepoScan {
            name: name.parse().unwrap(),
            revisions: revisions.iter().map(|n| d(*n)).collect(),
            tags: tags
                .iter()
                .map(|(t, n)| (t.parse::<Tag>().unwrap(), d(*n)))
                .collect(),
            tag_history: Vec::new(),
            layer_links: Vec::new(),
            held: false,
        }
    }

    /// An index (10) with two untagged children (11, 12), each with a config
    /// and a layer; a signature (13) of the index with its own layer; an
    /// untagged, unrelated image (14); a tagged image (15) sharing layer 21.
    fn fixture() -> (Vec<RepoScan>, HashMap<Digest, ManifestRefs>) {
        let manifests = HashMap::from([
            (d(10), refs(&[11, 12], &[11, 12], None)),
            (d(11), refs(&[20, 21], &[], None)),
            (d(12), refs(&[22, 23], &[], None)),
            (d(13), refs(&[24, 25], &[], Some(10))),
            (d(14), refs(&[26, 27], &[], None)),
            (d(15), refs(&[28, 21], &[], None)),
        ]);
        let repos = vec![
            repo("app", &[10, 11, 12, 13, 14], &[("v1", 10)]),
            repo("other", &[15], &[("latest", 15)]),
        ];
        (repos, manifests)
    }

    #[test]
    fn without_delete_untagged_every_revision_is_kept() {
        let (repos, manifests) = fixture();
        let marks = mark(&repos, &manifests, false, &HashMap::new());
        assert_eq!(marks.unkept(&repos[0]).count(), 0);
        for n in [10, 11, 12, 13, 14, 20, 21, 22, 23, 24, 25, 26, 27, 28] {
            assert!(marks.blobs.contains(&d(n)), "{n}");
        }
    }

    #[test]
    fn delete_untagged_keeps_index_children_and_referrers_of_kept_manifests() {
        let (repos, manifests) = fixture();
        let marks = mark(&repos, &manifests, true, &HashMap::new());
        let unkept: Vec<&Digest> = marks.unkept(&repos[0]).collect();
        assert_eq!(unkept, vec![&d(14)]);
        for n in [10, 11, 12, 13, 20, 21, 22, 23, 24, 25, 28, 15] {
            assert!(marks.blobs.contains(&d(n)), "{n}");
        }
        for n in [14, 26, 27] {
            assert!(!marks.blobs.contains(&d(n)), "{n}");
        }
    }

    #[test]
    fn a_referrer_does_not_keep_its_subject_and_extra_roots_are_kept() {
        let (mut repos, manifests) = fixture();
        // Untag the index: its children and signature all become collectable...
        repos[0].tags.clear();
        let marks = mark(&repos, &manifests, true, &HashMap::new());
        assert_eq!(marks.unkept(&repos[0]).count(), 5);
        assert!(!marks.blobs.contains(&d(10)));
        assert!(marks.blobs.contains(&d(21)), "still used by the other repo");
        // ...unless the index is young (online mode keeps it as a root).
        let extra = HashMap::from([(repos[0].name.clone(), HashSet::from([d(10)]))]);
        let marks = mark(&repos, &manifests, true, &extra);
        assert_eq!(marks.unkept(&repos[0]).collect::<Vec<_>>(), vec![&d(14)]);
    }

    #[test]
    fn children_in_another_repository_are_followed_for_blobs() {
        let manifests = HashMap::from([
            (d(30), refs(&[31], &[31], None)),
            (d(31), refs(&[32, 33], &[], None)),
        ]);
        let repos = vec![
            repo("index-only", &[30], &[("multi", 30)]),
            repo("children", &[31], &[]),
        ];
        let marks = mark(&repos, &manifests, true, &HashMap::new());
        for n in [30, 31, 32, 33] {
            assert!(marks.blobs.contains(&d(n)), "{n}");
        }
        // The child's own repository does not keep its untagged revision link.
        assert_eq!(marks.unkept(&repos[1]).count(), 1);
    }

    #[test]
    fn a_held_repository_keeps_every_revision_and_linked_blob() {
        let (mut repos, mut manifests) = fixture();
        // 14 is unreadable: its references are unknown.
        manifests.remove(&d(14));
        repos[0].layer_links = vec![d(26), d(27), d(29)];
        repos[0].held = true;
        let marks = mark(&repos, &manifests, true, &HashMap::new());
        assert_eq!(marks.unkept(&repos[0]).count(), 0);
        for n in [14, 26, 27, 29] {
            assert!(marks.blobs.contains(&d(n)), "{n}");
        }
        // The other repository is still collected as usual.
        repos[1].tags.clear();
        let marks = mark(&repos, &manifests, true, &HashMap::new());
        assert_eq!(marks.unkept(&repos[1]).count(), 1);
        assert!(!marks.blobs.contains(&d(28)));
    }
}
