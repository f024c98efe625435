//! Parsing and structural validation of pushed manifests (OCI and Docker schema 2).
//!
//! The registry stores manifest bytes exactly as received; this module only
//! extracts what it needs to check references and index referrers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::foreign::UrlPolicy;
use super::media_type::{self, ManifestKind};

/// The largest manifest accepted (the spec requires at least 4 MiB to be accepted).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The deepest JSON nesting a manifest may have (objects and arrays). Real
/// manifests nest 4 levels (manifest, layers, descriptor, annotations); the
/// bound keeps every accepted manifest readable by any JSON parser, including
/// the tree-building one GC uses (serde_json stops at 128).
pub const MAX_MANIFEST_DEPTH: usize = 64;

/// Why a manifest body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    NotJson(String),
    #[error("manifest schemaVersion must be 2")]
    SchemaVersion,
    #[error("manifest mediaType {body:?} does not match Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("manifest has no mediaType field and no Content-Type header")]
    MissingMediaType,
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("image manifest has no config descriptor")]
    MissingConfig,
    #[error("index has no manifests list")]
    MissingManifests,
    #[error(
        "image manifest must not contain a manifests list, and an index must not contain config or layers"
    )]
    MixedKinds,
    #[error("descriptor size must not be negative")]
    NegativeSize,
    #[error("manifest nests deeper than {MAX_MANIFEST_DEPTH} levels")]
    TooDeep,
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error(
        "layer URL {0:?} is not allowed (validation.manifests.urls.allow/deny; none is by default)"
    )]
    UrlNotAllowed(String),
}

/// The one rule for what a stored manifest may look like beyond its schema:
/// at most [`MAX_MANIFEST_BYTES`] and [`MAX_MANIFEST_DEPTH`]. Applied when a
/// manifest is pushed and when GC reads one, so GC can read every manifest
/// the registry accepted.
pub fn check_limits(bytes: &[u8]) -> Result<(), ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge);
    }
    if json_depth(bytes) > MAX_MANIFEST_DEPTH {
        return Err(ManifestError::TooDeep);
    }
    Ok(())
}

/// Parses a manifest (or anything GC treats as one) into a JSON tree, after
/// [`check_limits`].
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ManifestError> {
    check_limits(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))
}

/// The deepest nesting of `[`/`{` outside strings, in one pass without
/// recursion (the bytes need not be valid JSON).
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A content descriptor as it appears in manifests and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

/// The fields of any manifest or index the registry cares about.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// A manifest that passed structural validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The effective media type (body field, else the Content-Type it was pushed with).
    pub media_type: String,
    pub kind: ManifestKind,
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// Parses and validates a manifest pushed with the given `Content-Type`.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        check_limits(bytes)?;
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
        if raw.schema_version != Some(2) {
            return Err(ManifestError::SchemaVersion);
        }
        let header = content_type
            .map(media_type::essence)
            .filter(|value| !value.is_empty());
        let media_type = match (raw.media_type, header) {
            (Some(body), Some(header)) if body != header => {
                return Err(ManifestError::MediaTypeMismatch {
                    body,
                    header: header.to_owned(),
                });
            }
            (Some(body), _) => body,
            (None, Some(header)) => header.to_owned(),
            (None, None) => return Err(ManifestError::MissingMediaType),
        };
        let kind = media_type::manifest_kind(&media_type)
            .ok_or_else(|| ManifestError::UnsupportedMediaType(media_type.clone()))?;
        match kind {
            ManifestKind::Image => {
                if raw.manifests.is_some() {
                    return Err(ManifestError::MixedKinds);
                }
                if raw.config.is_none() {
                    return Err(ManifestError::MissingConfig);
                }
            }
            ManifestKind::Index => {
                if raw.config.is_some() || raw.layers.is_some() {
                    return Err(ManifestError::MixedKinds);
                }
                if raw.manifests.is_none() {
                    return Err(ManifestError::MissingManifests);
                }
            }
        }
        let manifest = Manifest {
            media_type,
            kind,
            artifact_type: raw.artifact_type,
            config: raw.config,
            layers: raw.layers.unwrap_or_default(),
            manifests: raw.manifests.unwrap_or_default(),
            subject: raw.subject,
            annotations: raw.annotations,
        };
        if manifest.descriptors().any(|d| d.size < 0) {
            return Err(ManifestError::NegativeSize);
        }
        Ok(manifest)
    }

    /// Reads back a manifest the registry already stored (media type from the body).
    pub fn parse_stored(bytes: &[u8]) -> Result<Self, ManifestError> {
        Manifest::parse(bytes, None)
    }

    /// Every descriptor this manifest points at, except its subject.
    pub fn descriptors(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter())
            .chain(self.manifests.iter())
    }

    /// Blobs (config and layers) that must exist in the repository: all but
    /// foreign layers whose URLs `urls` allows; an error for one it refuses.
    pub fn required_blobs(&self, urls: &UrlPolicy) -> Result<Vec<&Descriptor>, ManifestError> {
        let mut required = Vec::new();
        for descriptor in self.config.iter().chain(self.layers.iter()) {
            if urls.must_exist(descriptor)? {
                required.push(descriptor);
            }
        }
        Ok(required)
    }

    /// The `artifactType` a referrers listing reports for this manifest:
    /// the manifest's own, else its config media type (images only).
    pub fn effective_artifact_type(&self) -> Option<String> {
        self.artifact_type.clone().or_else(|| match self.kind {
            ManifestKind::Image => self.config.as_ref().map(|c| c.media_type.clone()),
            ManifestKind::Index => None,
        })
    }
}

/// Reads only the `mediaType` field of a stored manifest, for response headers.
pub fn stored_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MediaTypeOnly {
        media_type: Option<String>,
    }
    serde_json::from_slice::<MediaTypeOnly>(bytes)
        .ok()
        .and_then(|m| m.media_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media_type::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(media_type: Option<&str>) -> String {
        let media = media_type
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{media}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":10}},{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","digest":"{}","size":10,"urls":["https://example.com/x"]}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}}}}"#,
            digest('a'),
            digest('b'),
            digest('c'),
            digest('d')
        )
    }

    #[test]
    fn parses_image_manifest() {
        let manifest = Manifest::parse(image(Some(OCI_MANIFEST)).as_bytes(), None).unwrap();
        assert_eq!(manifest.kind, ManifestKind::Image);
        assert_eq!(manifest.layers.len(), 2);
        // The non-distributable layer with a URL must exist unless its URL is allowed.
        assert_eq!(
            manifest.required_blobs(&UrlPolicy::default()),
            Err(ManifestError::UrlNotAllowed("https://example.com/x".into()))
        );
        let allowed = UrlPolicy::new(&["^https://example.com/".to_owned()], &[]).unwrap();
        assert_eq!(manifest.required_blobs(&allowed).unwrap().len(), 2);
        assert_eq!(
            manifest.subject.unwrap().digest.to_string(),
            digest('d').as_str()
        );
    }

    #[test]
    fn media_type_from_header_when_body_has_none() {
        let manifest = Manifest::parse(
            image(None).as_bytes(),
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(manifest.media_type, OCI_MANIFEST);
        assert_eq!(
            manifest.effective_artifact_type().as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn rejects_bad_manifests() {
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            ("not json".into(), None, "not valid JSON"),
            ("[]".into(), None, "not valid JSON"),
            (r#"{"schemaVersion":1}"#.into(), None, "schemaVersion"),
            (image(None), None, "no mediaType"),
            (image(Some(OCI_MANIFEST)), Some(OCI_INDEX), "does not match"),
            (
                image(Some(DOCKER_SCHEMA1_SIGNED)),
                None,
                "unsupported manifest media type",
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
                None,
                "no config",
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}"}}"#),
                None,
                "no manifests",
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:abc","size":1}}]}}"#
                ),
                None,
                "not valid JSON",
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":-1}}]}}"#,
                    digest('a')
                ),
                None,
                "negative",
            ),
        ];
        for (body, content_type, expected) in cases {
            let err = Manifest::parse(body.as_bytes(), content_type).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{body}: {err} should mention {expected}"
            );
        }
    }

    #[test]
    fn rejects_deeply_nested_json_without_overflowing() {
        let nested = format!(
            r#"{{"schemaVersion":2,"annotations":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            Manifest::parse(nested.as_bytes(), Some(OCI_MANIFEST)),
            Err(ManifestError::TooDeep)
        ));
    }

    #[test]
    fn depth_is_bounded_by_one_rule_for_push_and_gc() {
        let nest = |depth: usize| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"x","digest":"{}","size":1}},"x":{}1{}}}"#,
                digest('a'),
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        // The outer object counts as one level.
        let deepest_allowed = nest(MAX_MANIFEST_DEPTH);
        assert_eq!(json_depth(deepest_allowed.as_bytes()), MAX_MANIFEST_DEPTH);
        assert!(Manifest::parse(deepest_allowed.as_bytes(), None).is_ok());
        assert!(parse_json(deepest_allowed.as_bytes()).is_ok());
        // 5,000 levels in an unknown field: serde skips it, the rule does not.
        for depth in [MAX_MANIFEST_DEPTH + 1, 5_000] {
            let deep = nest(depth);
            assert_eq!(
                Manifest::parse(deep.as_bytes(), None),
                Err(ManifestError::TooDeep)
            );
            assert_eq!(parse_json(deep.as_bytes()), Err(ManifestError::TooDeep));
        }
        // Brackets inside strings (escaped quotes included) do not count.
        let in_string = r#"{"a":"[[[[\"[[[[{{{{","b":[{}]}"#;
        assert_eq!(json_depth(in_string.as_bytes()), 3);
        let too_large = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert_eq!(parse_json(&too_large), Err(ManifestError::TooLarge));
    }

    #[test]
    fn index_artifact_type_is_only_explicit() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
            digest('e')
        );
        let manifest = Manifest::parse_stored(index.as_bytes()).unwrap();
        assert_eq!(manifest.kind, ManifestKind::Index);
        assert_eq!(manifest.effective_artifact_type(), None);
        assert_eq!(manifest.manifests.len(), 1);
        assert_eq!(
            stored_media_type(index.as_bytes()).as_deref(),
            Some(OCI_INDEX)
        );
    }
}
