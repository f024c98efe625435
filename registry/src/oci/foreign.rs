//! Non-distributable ("foreign") layers: descriptors whose bytes live at
//! external `urls` instead of in the registry, and distribution's
//! `validation.manifests.urls.allow`/`deny` policy deciding which URLs a
//! pushed manifest may point at.
//!
//! The rule, as distribution applies it: only a non-distributable layer with
//! URLs skips the existence check, and only when every URL is `http(s)`,
//! has no fragment, matches `allow` and does not match `deny`. With neither
//! list configured no URL is allowed. Any other descriptor (config, normal
//! layers, a non-distributable layer without URLs) must be in the repository.

use regex::Regex;

use super::manifest::{Descriptor, ManifestError};

/// Layer media types whose content may be served from elsewhere.
const NON_DISTRIBUTABLE: [&str; 4] = [
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Which external layer URLs a pushed manifest may name.
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    allow: Option<Regex>,
    deny: Option<Regex>,
}

impl Default for UrlPolicy {
    /// No URL is allowed: foreign layers must be pushed like any other.
    fn default() -> Self {
        UrlPolicy {
            allow: Some(Regex::new("^$").expect("static regex")),
            deny: None,
        }
    }
}

/// Policies are equal when their patterns are (settings are compared in tests).
impl PartialEq for UrlPolicy {
    fn eq(&self, other: &Self) -> bool {
        let pattern = |re: &Option<Regex>| re.as_ref().map(|r| r.as_str().to_owned());
        pattern(&self.allow) == pattern(&other.allow) && pattern(&self.deny) == pattern(&other.deny)
    }
}

impl Eq for UrlPolicy {}

impl UrlPolicy {
    /// The policy from the configured patterns; each list matches when any
    /// of its patterns does. Both empty means the default (nothing allowed).
    pub fn new(allow: &[String], deny: &[String]) -> Result<Self, regex::Error> {
        if allow.is_empty() && deny.is_empty() {
            return Ok(UrlPolicy::default());
        }
        Ok(UrlPolicy {
            allow: any_of(allow)?,
            deny: any_of(deny)?,
        })
    }

    /// Whether a layer may point at `url`.
    pub fn allows(&self, url: &str) -> bool {
        let scheme_ok = ["http://", "https://"].iter().any(|s| {
            url.get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        scheme_ok
            && !url.contains('#')
            && self.allow.as_ref().is_none_or(|re| re.is_match(url))
            && !self.deny.as_ref().is_some_and(|re| re.is_match(url))
    }

    /// Whether the registry must hold `descriptor`'s blob; an error when it
    /// is a foreign layer pointing at a URL the policy refuses.
    pub fn must_exist(&self, descriptor: &Descriptor) -> Result<bool, ManifestError> {
        let urls = descriptor.urls.as_deref().unwrap_or_default();
        if urls.is_empty() || !NON_DISTRIBUTABLE.contains(&descriptor.media_type.as_str()) {
            return Ok(true);
        }
        match urls.iter().find(|url| !self.allows(url)) {
            Some(url) => Err(ManifestError::UrlNotAllowed(url.clone())),
            None => Ok(false),
        }
    }
}

/// One regex matching when any pattern does (each wrapped in its own group,
/// as distribution joins them).
fn any_of(patterns: &[String]) -> Result<Option<Regex>, regex::Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let joined: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
    Regex::new(&joined.join("|")).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(media_type: &str, urls: &[&str]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: format!("sha256:{}", "a".repeat(64)).parse().unwrap(),
            size: 1,
            urls: (!urls.is_empty()).then(|| urls.iter().map(|u| u.to_string()).collect()),
            annotations: None,
            artifact_type: None,
            platform: None,
        }
    }

    const FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    const OCI_FOREIGN: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    const NORMAL: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    #[test]
    fn by_default_no_url_is_allowed() {
        let policy = UrlPolicy::default();
        let err = policy
            .must_exist(&layer(FOREIGN, &["https://mcr.microsoft.com/x"]))
            .unwrap_err();
        assert_eq!(
            err,
            ManifestError::UrlNotAllowed("https://mcr.microsoft.com/x".into())
        );
        // Without URLs, or on a normal layer, the blob must simply exist.
        assert_eq!(policy.must_exist(&layer(FOREIGN, &[])), Ok(true));
        assert_eq!(
            policy.must_exist(&layer(NORMAL, &["https://mcr.microsoft.com/x"])),
            Ok(true)
        );
    }

    #[test]
    fn allow_and_deny_lists_decide_like_distribution() {
        let policy = UrlPolicy::new(
            &[r"^https?://([^/]+\.)*example\.com/".to_owned()],
            &[r"^https?://www\.example\.com/".to_owned()],
        )
        .unwrap();
        assert_eq!(
            policy.must_exist(&layer(OCI_FOREIGN, &["https://cdn.example.com/l"])),
            Ok(false)
        );
        for refused in [
            "https://www.example.com/l",
            "https://example.org/l",
            "ftp://cdn.example.com/l",
            "https://cdn.example.com/l#frag",
        ] {
            assert!(
                policy
                    .must_exist(&layer(
                        OCI_FOREIGN,
                        &["https://cdn.example.com/ok", refused]
                    ))
                    .is_err(),
                "{refused}"
            );
        }
        // Deny alone allows everything else.
        let deny_only = UrlPolicy::new(&[], &["internal".to_owned()]).unwrap();
        assert!(deny_only.allows("HTTPS://anything.test/x"));
        assert!(!deny_only.allows("https://internal.test/x"));
        assert!(UrlPolicy::new(&["(".to_owned()], &[]).is_err());
    }
}
