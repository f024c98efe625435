//! Repository names, tags and manifest references, validated against the spec's grammar.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use super::digest::{Digest, DigestError};

/// The longest repository name accepted, as in distribution (`reference.NameTotalLengthMax`).
pub const MAX_NAME_LEN: usize = 255;
/// Tags are at most 128 characters (spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub const MAX_TAG_LEN: usize = 128;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$",
    )
    .expect("repository name regex compiles")
});
static TAG_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("tag regex compiles")
});

/// Why a name or reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name must be at most {MAX_NAME_LEN} characters")]
    NameTooLong,
    #[error(
        "invalid repository name: path components must be lowercase alphanumerics separated by '.', '_', '__' or '-'"
    )]
    InvalidName,
    #[error("invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    InvalidTag,
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
}

/// A repository name such as `library/alpine`. Validation guarantees every
/// path component is a plain name, so it can be joined into storage paths.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RepositoryName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong);
        }
        if !NAME_RE.is_match(s) {
            return Err(NameError::InvalidName);
        }
        Ok(RepositoryName(s.to_owned()))
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepositoryName({})", self.0)
    }
}

/// A tag such as `v1.2.3`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_TAG_LEN || !TAG_RE.is_match(s) {
            return Err(NameError::InvalidTag);
        }
        Ok(Tag(s.to_owned()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

/// The `<reference>` of a manifest URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Tags cannot contain ':', digests always do.
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => tag.fmt(f),
            Reference::Digest(digest) => digest.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_spec_names() {
        for name in [
            "a",
            "library/alpine",
            "my-org/my.repo/sub_dir/x__y",
            "a--b",
            "0/1/2/3/4/5/6/7/8/9",
        ] {
            assert!(name.parse::<RepositoryName>().is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_hostile_names() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for name in [
            "",
            "..",
            "a/../b",
            "/abs",
            "a/",
            "a//b",
            "UPPER",
            "a/_manifests",
            "%2e%2e",
            "a.",
            "-a",
            "a___b",
            "a\\b",
            "a\0b",
            long.as_str(),
        ] {
            assert!(name.parse::<RepositoryName>().is_err(), "{name:?}");
        }
    }

    #[test]
    fn validates_tags() {
        assert!("latest".parse::<Tag>().is_ok());
        assert!("_v1.0-rc.1".parse::<Tag>().is_ok());
        assert!("a".repeat(128).parse::<Tag>().is_ok());
        for tag in ["", ".hidden", "-x", "a/b", "..", &"a".repeat(129), "a:b"] {
            assert!(tag.parse::<Tag>().is_err(), "{tag:?}");
        }
    }

    #[test]
    fn references_split_on_colon() {
        assert!(matches!("v1".parse::<Reference>(), Ok(Reference::Tag(_))));
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            digest.parse::<Reference>(),
            Ok(Reference::Digest(_))
        ));
        assert!(matches!(
            "sha256:zz".parse::<Reference>(),
            Err(NameError::InvalidDigest(_))
        ));
    }
}
