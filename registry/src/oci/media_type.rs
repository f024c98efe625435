//! Media types of the manifests the registry stores and serves.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 1 manifests were removed from distribution v3 and are rejected here too.
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// The shape a manifest media type implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest: a config plus layers.
    Image,
    /// An index / manifest list: a list of child manifests.
    Index,
}

/// Classifies a manifest media type the registry accepts.
pub fn manifest_kind(media_type: &str) -> Option<ManifestKind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

/// Strips parameters (`; charset=utf-8`) and whitespace from a Content-Type value.
pub fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// Whether an `Accept` header value allows a manifest of `media_type`.
///
/// A missing header, `*/*` or `application/*` accept anything; otherwise the
/// media type must be listed (with any `q` parameters ignored).
pub fn accepts(accept_values: &[&str], media_type: &str) -> bool {
    if accept_values.is_empty() {
        return true;
    }
    accept_values
        .iter()
        .flat_map(|value| value.split(','))
        .map(essence)
        .any(|accepted| accepted == media_type || accepted == "*/*" || accepted == "application/*")
}

/// What a manifest GET serves, decided from the stored media type, the
/// `Accept` values and whether the request named a tag: distribution v3's
/// rules, except that a request without `Accept` (curl, scripts) gets what
/// is stored where distribution answers 404 for OCI types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// The stored manifest as it is.
    Stored,
    /// A Docker manifest list asked for by tag by a client that does not
    /// accept lists (old Docker clients): the linux/amd64 image instead.
    DefaultPlatform,
    /// 404 `MANIFEST_UNKNOWN`: an OCI type the client does not accept.
    NotAcceptable,
}

/// The platform served in place of a manifest list (distribution's default).
pub const DEFAULT_PLATFORM: (&str, &str) = ("linux", "amd64");

pub fn negotiate(accept_values: &[&str], stored: &str, by_tag: bool) -> Negotiated {
    if accepts(accept_values, stored) {
        return Negotiated::Stored;
    }
    match stored {
        // distribution v3 serves schema 2 whatever `Accept` says.
        DOCKER_MANIFEST => Negotiated::Stored,
        DOCKER_MANIFEST_LIST if by_tag => Negotiated::DefaultPlatform,
        DOCKER_MANIFEST_LIST => Negotiated::Stored,
        _ => Negotiated::NotAcceptable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_manifest_types() {
        assert_eq!(manifest_kind(OCI_MANIFEST), Some(ManifestKind::Image));
        assert_eq!(
            manifest_kind(DOCKER_MANIFEST_LIST),
            Some(ManifestKind::Index)
        );
        assert_eq!(manifest_kind(DOCKER_SCHEMA1_SIGNED), None);
        assert_eq!(manifest_kind("text/plain"), None);
    }

    #[test]
    fn accept_negotiation() {
        assert!(accepts(&[], OCI_INDEX));
        assert!(accepts(&["*/*"], OCI_INDEX));
        assert!(accepts(
            &[
                "application/vnd.oci.image.manifest.v1+json; q=0.5, application/vnd.oci.image.index.v1+json"
            ],
            OCI_INDEX
        ));
        assert!(accepts(&[DOCKER_MANIFEST, OCI_MANIFEST], OCI_MANIFEST));
        assert!(!accepts(&[DOCKER_MANIFEST], OCI_INDEX));
    }

    #[test]
    fn negotiation_follows_distribution_v3() {
        use Negotiated::*;
        // No Accept: what is stored (distribution: 404 for OCI types).
        for stored in [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
        ] {
            assert_eq!(negotiate(&[], stored, true), Stored, "{stored}");
        }
        // Accept without the stored OCI type: 404.
        assert_eq!(
            negotiate(&[DOCKER_MANIFEST], OCI_MANIFEST, true),
            NotAcceptable
        );
        assert_eq!(negotiate(&[OCI_MANIFEST], OCI_INDEX, false), NotAcceptable);
        // Schema 2 whatever Accept says.
        assert_eq!(negotiate(&[OCI_MANIFEST], DOCKER_MANIFEST, true), Stored);
        // A list by tag to a client without list support: the default platform.
        assert_eq!(
            negotiate(&[DOCKER_MANIFEST], DOCKER_MANIFEST_LIST, true),
            DefaultPlatform
        );
        assert_eq!(
            negotiate(&[DOCKER_MANIFEST], DOCKER_MANIFEST_LIST, false),
            Stored
        );
        assert_eq!(
            negotiate(&[DOCKER_MANIFEST_LIST], DOCKER_MANIFEST_LIST, true),
            Stored
        );
    }

    #[test]
    fn essence_strips_parameters() {
        assert_eq!(
            essence("application/json; charset=utf-8"),
            "application/json"
        );
        assert_eq!(essence(" text/plain "), "text/plain");
    }
}
