//! Storage paths, identical to distribution's `registry/storage/paths.go` so a
//! volume written by `registry:2/3` is served as-is and vice versa.
//!
//! ```text
//! docker/registry/v2/blobs/<alg>/<hex[0..2]>/<hex>/data
//! docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/link
//! docker/registry/v2/repositories/<name>/_manifests/revisions/<alg>/<hex>/link
//! docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
//! docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
//! docker/registry/v2/repositories/<name>/_uploads/<id>/{data,startedat}
//! ```
//! Berth adds one directory distribution ignores (it skips `_`-prefixed
//! directories): `_referrers/<subject alg>/<subject hex>/<alg>/<hex>/link`.

use crate::oci::{Digest, RepositoryName, Tag};

/// Root of distribution's tree inside the storage root.
pub const V2_ROOT: &str = "docker/registry/v2";
/// Directory holding every repository.
pub const REPOSITORIES: &str = "docker/registry/v2/repositories";
/// Directory holding every blob.
pub const BLOBS: &str = "docker/registry/v2/blobs";
/// File name of link files.
pub const LINK: &str = "link";
/// Berth's own objects (maintenance lock, readiness probes): `_`-prefixed,
/// so distribution's catalog walk and GC ignore the directory.
pub const BERTH_DIR: &str = "docker/registry/v2/_berth";
/// Directory name that marks a repository (distribution's catalog rule).
pub const MANIFESTS_DIR: &str = "_manifests";
/// Directory name of a repository's upload sessions.
pub const UPLOADS_DIR: &str = "_uploads";

/// `blobs/<alg>` — every blob of one algorithm, by two-hex-digit prefix.
pub fn blobs_dir(algorithm: &str) -> String {
    format!("{BLOBS}/{algorithm}")
}

/// `blobs/<alg>/<xx>` — the blobs whose hex digest starts with `prefix`.
pub fn blob_prefix_dir(algorithm: &str, prefix: &str) -> String {
    format!("{}/{prefix}", blobs_dir(algorithm))
}

/// `blobs/<alg>/<xx>/<hex>` — the directory of one blob.
pub fn blob_dir(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "{}/{hex}",
        blob_prefix_dir(digest.algorithm().as_str(), &hex[..2])
    )
}

/// `blobs/<alg>/<xx>/<hex>/data` — a blob's content.
pub fn blob_data(digest: &Digest) -> String {
    format!("{}/data", blob_dir(digest))
}

/// The directory of one repository.
pub fn repository(name: &RepositoryName) -> String {
    format!("{REPOSITORIES}/{name}")
}

/// `_layers/<alg>` — the per-algorithm directory of a repository's blob links.
pub fn layers_dir(name: &RepositoryName, algorithm: &str) -> String {
    format!("{}/_layers/{algorithm}", repository(name))
}

/// `_layers/<alg>/<hex>` — the directory of one blob link.
pub fn layer_link_dir(name: &RepositoryName, digest: &Digest) -> String {
    format!(
        "{}/{}",
        layers_dir(name, digest.algorithm().as_str()),
        digest.hex()
    )
}

/// `_layers/<alg>/<hex>/link` — makes a blob visible in a repository.
pub fn layer_link(name: &RepositoryName, digest: &Digest) -> String {
    format!("{}/{LINK}", layer_link_dir(name, digest))
}

/// `_manifests` of a repository.
pub fn manifests_dir(name: &RepositoryName) -> String {
    format!("{}/{MANIFESTS_DIR}", repository(name))
}

/// `_manifests/revisions/<alg>` — a repository's manifest revisions of one algorithm.
pub fn revisions_dir(name: &RepositoryName, algorithm: &str) -> String {
    format!("{}/revisions/{algorithm}", manifests_dir(name))
}

/// `_manifests/revisions/<alg>/<hex>` — the directory of one revision link.
pub fn revision_dir(name: &RepositoryName, digest: &Digest) -> String {
    format!(
        "{}/{}",
        revisions_dir(name, digest.algorithm().as_str()),
        digest.hex()
    )
}

/// `_manifests/revisions/<alg>/<hex>/link` — makes a manifest visible in a repository.
pub fn revision_link(name: &RepositoryName, digest: &Digest) -> String {
    format!("{}/{LINK}", revision_dir(name, digest))
}

/// `_manifests/tags` — every tag of a repository.
pub fn tags_dir(name: &RepositoryName) -> String {
    format!("{}/tags", manifests_dir(name))
}

/// `_manifests/tags/<tag>` — one tag.
pub fn tag_dir(name: &RepositoryName, tag: &Tag) -> String {
    format!("{}/{tag}", tags_dir(name))
}

/// `_manifests/tags/<tag>/current/link` — the digest a tag points at; writing
/// it is the commit point of a tag push.
pub fn tag_current_link(name: &RepositoryName, tag: &Tag) -> String {
    format!("{}/current/{LINK}", tag_dir(name, tag))
}

/// `_manifests/tags/<tag>/index/<alg>` — a tag's history entries of one algorithm.
pub fn tag_index_dir(name: &RepositoryName, tag: &Tag, algorithm: &str) -> String {
    format!("{}/index/{algorithm}", tag_dir(name, tag))
}

/// `_manifests/tags/<tag>/index/<alg>/<hex>` — one entry of a tag's history.
pub fn tag_index_entry_dir(name: &RepositoryName, tag: &Tag, digest: &Digest) -> String {
    format!(
        "{}/{}",
        tag_index_dir(name, tag, digest.algorithm().as_str()),
        digest.hex()
    )
}

/// `_manifests/tags/<tag>/index/<alg>/<hex>/link` — history of a tag.
pub fn tag_index_link(name: &RepositoryName, tag: &Tag, digest: &Digest) -> String {
    format!("{}/{LINK}", tag_index_entry_dir(name, tag, digest))
}

/// `_uploads` of a repository.
pub fn uploads_dir(name: &RepositoryName) -> String {
    format!("{}/{UPLOADS_DIR}", repository(name))
}

/// `_uploads/<id>` — one upload session.
pub fn upload_dir(name: &RepositoryName, id: &str) -> String {
    format!("{}/{id}", uploads_dir(name))
}

/// `_uploads/<id>/data` — bytes received so far.
pub fn upload_data(name: &RepositoryName, id: &str) -> String {
    format!("{}/data", upload_dir(name, id))
}

/// `_uploads/<id>/sealed` — Berth: a session's data sealed for re-hashing
/// with another algorithm than the one hashed while receiving it.
pub fn upload_sealed(name: &RepositoryName, id: &str) -> String {
    format!("{}/sealed", upload_dir(name, id))
}

/// `_uploads/<id>/startedat` — RFC 3339 start time, used by upload purging.
pub fn upload_started_at(name: &RepositoryName, id: &str) -> String {
    format!("{}/startedat", upload_dir(name, id))
}

/// `_berth/maintenance.json` — the maintenance (GC window) lock.
pub fn maintenance_lock() -> String {
    format!("{BERTH_DIR}/maintenance.json")
}

/// `_berth/probes/<id>` — a readiness probe object, written and removed.
pub fn readiness_probe(id: &str) -> String {
    format!("{BERTH_DIR}/probes/{id}")
}

/// `_referrers/<alg>/<hex>` — manifests whose `subject` is this digest.
pub fn referrers_dir(name: &RepositoryName, subject: &Digest) -> String {
    format!(
        "{}/_referrers/{}/{}",
        repository(name),
        subject.algorithm(),
        subject.hex()
    )
}

/// `_referrers/<subject alg>/<subject hex>/<alg>` — a subject's referrers of one algorithm.
pub fn referrers_algorithm_dir(name: &RepositoryName, subject: &Digest, algorithm: &str) -> String {
    format!("{}/{algorithm}", referrers_dir(name, subject))
}

/// `_referrers/<subject alg>/<subject hex>/<alg>/<hex>/link` — one referrer.
pub fn referrer_link(name: &RepositoryName, subject: &Digest, referrer: &Digest) -> String {
    format!("{}/{LINK}", referrer_dir(name, subject, referrer))
}

/// `_referrers/<subject alg>/<subject hex>/<alg>/<hex>/descriptor` — the
/// descriptor a referrers listing shows, written at push so a listing reads
/// this small object instead of the referring manifest (Berth-only).
pub fn referrer_descriptor(name: &RepositoryName, subject: &Digest, referrer: &Digest) -> String {
    format!("{}/descriptor", referrer_dir(name, subject, referrer))
}

/// `_referrers/<subject alg>/<subject hex>/<alg>/<hex>` — one referrer's directory.
pub fn referrer_dir(name: &RepositoryName, subject: &Digest, referrer: &Digest) -> String {
    format!(
        "{}/{}",
        referrers_algorithm_dir(name, subject, referrer.algorithm().as_str()),
        referrer.hex()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_distribution_layout() {
        let name: RepositoryName = "library/alpine".parse().unwrap();
        let tag: Tag = "3.20".parse().unwrap();
        let digest: Digest = format!("sha256:ab{}", "c".repeat(62)).parse().unwrap();
        let hex = digest.hex();
        assert_eq!(
            blob_data(&digest),
            format!("docker/registry/v2/blobs/sha256/ab/{hex}/data")
        );
        assert_eq!(
            layer_link(&name, &digest),
            format!("docker/registry/v2/repositories/library/alpine/_layers/sha256/{hex}/link")
        );
        assert_eq!(
            revision_link(&name, &digest),
            format!(
                "docker/registry/v2/repositories/library/alpine/_manifests/revisions/sha256/{hex}/link"
            )
        );
        assert_eq!(
            tag_current_link(&name, &tag),
            "docker/registry/v2/repositories/library/alpine/_manifests/tags/3.20/current/link"
        );
        assert_eq!(
            tag_index_link(&name, &tag, &digest),
            format!(
                "docker/registry/v2/repositories/library/alpine/_manifests/tags/3.20/index/sha256/{hex}/link"
            )
        );
        assert_eq!(
            upload_data(&name, "u1"),
            "docker/registry/v2/repositories/library/alpine/_uploads/u1/data"
        );
    }

    /// The directories GC and listings walk, against paths.go's specs
    /// (`blobsPathSpec` + algorithm, `blobPathSpec` without its last
    /// component, `manifestTagIndexPathSpec` + algorithm,
    /// `manifestTagIndexEntryPathSpec`), and Berth's `_referrers`.
    #[test]
    fn listing_directories_match_distribution_layout() {
        let name: RepositoryName = "library/alpine".parse().unwrap();
        let tag: Tag = "3.20".parse().unwrap();
        let digest: Digest = format!("sha256:ab{}", "c".repeat(62)).parse().unwrap();
        let subject: Digest = format!("sha256:01{}", "d".repeat(62)).parse().unwrap();
        let hex = digest.hex();
        let repo = "docker/registry/v2/repositories/library/alpine";
        assert_eq!(blobs_dir("sha256"), "docker/registry/v2/blobs/sha256");
        assert_eq!(
            blob_prefix_dir("sha256", "ab"),
            "docker/registry/v2/blobs/sha256/ab"
        );
        assert_eq!(
            blob_dir(&digest),
            format!("docker/registry/v2/blobs/sha256/ab/{hex}")
        );
        assert_eq!(
            tag_index_dir(&name, &tag, "sha256"),
            format!("{repo}/_manifests/tags/3.20/index/sha256")
        );
        assert_eq!(
            tag_index_entry_dir(&name, &tag, &digest),
            format!("{repo}/_manifests/tags/3.20/index/sha256/{hex}")
        );
        assert_eq!(uploads_dir(&name), format!("{repo}/_uploads"));
        let referrers = format!("{repo}/_referrers/sha256/{}", subject.hex());
        assert_eq!(
            referrers_algorithm_dir(&name, &subject, "sha256"),
            format!("{referrers}/sha256")
        );
        assert_eq!(
            referrer_link(&name, &subject, &digest),
            format!("{referrers}/sha256/{hex}/link")
        );
        assert_eq!(
            referrer_descriptor(&name, &subject, &digest),
            format!("{referrers}/sha256/{hex}/descriptor")
        );
    }
}
