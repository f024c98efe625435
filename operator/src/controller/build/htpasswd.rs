//! The htpasswd Secret: one bcrypt line per user. A user's hash is kept as
//! long as its password is unchanged (no churn, no pod restarts): the source
//! Secret's version is recorded per user, and a changed Secret whose password
//! still verifies against the old hash keeps that hash too.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::labels::{REGISTRY_COMPONENT, metadata, names};
use crate::controller::model::{HTPASSWD_FILE, UserPassword, ValidatedRegistry};
use crate::controller::observed::SecretData;

/// Annotation recording where each user's current hash came from.
pub const SOURCES_ANNOTATION: &str = "berth.dev/password-sources";
/// bcrypt cost of new hashes (the registry caches verified credentials, so
/// the per-request cost is paid once).
pub const BCRYPT_COST: u32 = 10;

/// Builds the Secret, reusing hashes from `current` where the password is unchanged.
pub fn htpasswd_secret(
    v: &ValidatedRegistry,
    users: &[UserPassword],
    current: Option<&SecretData>,
) -> Result<Secret, bcrypt::BcryptError> {
    let old_hashes: BTreeMap<String, String> = current
        .and_then(|s| s.text(HTPASSWD_FILE))
        .map(|text| {
            text.lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(user, hash)| (user.to_owned(), hash.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let old_sources: BTreeMap<String, String> = current
        .and_then(|s| s.annotations.get(SOURCES_ANNOTATION))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();

    let mut lines = String::new();
    let mut sources = BTreeMap::new();
    for user in users {
        let previous = old_hashes.get(&user.name);
        let hash = match previous {
            Some(hash) if old_sources.get(&user.name) == Some(&user.source) => hash.clone(),
            Some(hash) if bcrypt::verify(&user.password, hash).unwrap_or(false) => hash.clone(),
            _ => bcrypt::hash_with_result(&user.password, BCRYPT_COST)?
                .format_for_version(bcrypt::Version::TwoY),
        };
        lines.push_str(&format!("{}:{hash}\n", user.name));
        sources.insert(user.name.clone(), user.source.clone());
    }

    let mut meta = metadata(v, names::htpasswd(&v.name), REGISTRY_COMPONENT);
    meta.annotations = Some(BTreeMap::from([(
        SOURCES_ANNOTATION.to_owned(),
        serde_json::to_string(&sources).unwrap_or_default(),
    )]));
    Ok(Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            HTPASSWD_FILE.to_owned(),
            ByteString(lines.into_bytes()),
        )])),
        ..Secret::default()
    })
}
