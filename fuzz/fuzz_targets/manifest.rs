//! Fuzzes manifest parsing with each Content-Type a client may send: never
//! panic or overflow the stack, and an accepted manifest is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::oci::manifest::{Manifest, stored_media_type};
use registry::oci::media_type;

const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
    Some(""),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let _ = stored_media_type(bytes);
    if let Ok(manifest) = Manifest::parse(bytes, content_type) {
        assert_eq!(
            media_type::manifest_kind(&manifest.media_type),
            Some(manifest.kind)
        );
        assert!(manifest.descriptors().all(|d| d.size >= 0));
        // A manifest naming its own media type reads back the same way later.
        if stored_media_type(bytes).is_some() {
            assert_eq!(Manifest::parse_stored(bytes).ok(), Some(manifest));
        }
    }
});
