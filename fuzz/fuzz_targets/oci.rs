//! Fuzzes digest, algorithm, repository name, tag and reference parsing:
//! never panic, and whatever parses prints back to exactly its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use registry::oci::{Algorithm, Digest, Reference, RepositoryName, Tag};

fuzz_target!(|text: &str| {
    let _ = Algorithm::parse(text);
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string(), text);
        assert_eq!(digest.hex().len(), digest.algorithm().hex_len());
    }
    if let Ok(name) = text.parse::<RepositoryName>() {
        assert_eq!(name.as_str(), text);
        assert!(name.as_str().split('/').all(|c| !c.is_empty() && c != ".."));
    }
    if let Ok(tag) = text.parse::<Tag>() {
        assert_eq!(tag.as_str(), text);
        assert!(text.len() <= 128 && !text.contains('/'));
    }
    if let Ok(reference) = text.parse::<Reference>() {
        match reference {
            Reference::Tag(tag) => assert_eq!(tag.as_str(), text),
            Reference::Digest(digest) => assert_eq!(digest.to_string(), text),
        }
    }
});
