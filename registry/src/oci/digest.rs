//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and streaming hashers for them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm the registry can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears in a digest string and in storage paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lowercase hex encoding of this algorithm's output.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// Parses an algorithm name; only registered, supported algorithms are accepted.
    pub fn parse(name: &str) -> Result<Self, DigestError> {
        match name {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(DigestError::UnsupportedAlgorithm(truncate(other))),
        }
    }

    /// Starts a streaming hash with this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Box::new(Sha512::new())),
        }
    }

    /// Hashes a complete byte slice.
    pub fn digest_of(self, data: &[u8]) -> Digest {
        let mut hasher = self.hasher();
        hasher.update(data);
        hasher.finish()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a digest string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest must have the form <algorithm>:<hex>")]
    Malformed,
    #[error("unsupported digest algorithm {0:?} (supported: sha256, sha512)")]
    UnsupportedAlgorithm(String),
    #[error("{algorithm} digest must be {expected} lowercase hex characters")]
    BadEncoding {
        algorithm: &'static str,
        expected: usize,
    },
}

/// A validated content digest such as `sha256:e3b0c442...`.
///
/// Only lowercase hex of the exact length is accepted, so a digest can be used
/// directly as a storage path component without any escaping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    encoded: String,
}

impl Digest {
    /// The algorithm part.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.encoded
    }

    fn from_parts(algorithm: Algorithm, encoded: &str) -> Result<Self, DigestError> {
        let valid = encoded.len() == algorithm.hex_len()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(DigestError::BadEncoding {
                algorithm: algorithm.as_str(),
                expected: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            encoded: encoded.to_owned(),
        })
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algorithm, encoded) = s.split_once(':').ok_or(DigestError::Malformed)?;
        if algorithm.is_empty() || encoded.is_empty() {
            return Err(DigestError::Malformed);
        }
        Digest::from_parts(Algorithm::parse(algorithm)?, encoded)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.encoded)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A streaming hash for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
}

impl Hasher {
    /// Feeds bytes into the hash.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// The hash state after everything fed so far, as bytes that
    /// [`Hasher::resume`] turns back into an equal hasher (so another process
    /// can continue an upload without re-reading it).
    pub fn checkpoint(&self) -> Vec<u8> {
        let (tag, state) = match self {
            Hasher::Sha256(h) => (CHECKPOINT_SHA256, h.serialize().to_vec()),
            Hasher::Sha512(h) => (CHECKPOINT_SHA512, h.serialize().to_vec()),
        };
        let mut bytes = Vec::with_capacity(state.len() + 1);
        bytes.push(tag);
        bytes.extend_from_slice(&state);
        bytes
    }

    /// A hasher from [`Hasher::checkpoint`] bytes; `None` when they are not one.
    pub fn resume(bytes: &[u8]) -> Option<Hasher> {
        let (tag, state) = bytes.split_first()?;
        match *tag {
            CHECKPOINT_SHA256 => {
                let state = SerializedState::<Sha256>::try_from(state).ok()?;
                Sha256::deserialize(&state).ok().map(Hasher::Sha256)
            }
            CHECKPOINT_SHA512 => {
                let state = SerializedState::<Sha512>::try_from(state).ok()?;
                Sha512::deserialize(&state)
                    .ok()
                    .map(|h| Hasher::Sha512(Box::new(h)))
            }
            _ => None,
        }
    }

    /// Finishes the hash and returns the digest.
    pub fn finish(self) -> Digest {
        let (algorithm, bytes) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            Hasher::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest {
            algorithm,
            encoded: hex::encode(bytes),
        }
    }
}

/// First byte of a checkpoint: which algorithm's state follows.
const CHECKPOINT_SHA256: u8 = 1;
const CHECKPOINT_SHA512: u8 = 2;

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hasher({})", self.algorithm())
    }
}

/// Keeps user-supplied text in error messages short.
fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays_round_trip() {
        let digest: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(digest.algorithm(), Algorithm::Sha256);
        assert_eq!(digest.to_string(), EMPTY_SHA256);
    }

    #[test]
    fn computes_known_hashes() {
        assert_eq!(Algorithm::Sha256.digest_of(b"").to_string(), EMPTY_SHA256);
        let sha512 = Algorithm::Sha512.digest_of(b"abc");
        assert!(sha512.hex().starts_with("ddaf35a193617aba"));
        assert_eq!(sha512.hex().len(), 128);
    }

    #[test]
    fn checkpoints_resume_mid_block_for_both_algorithms() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            // 77 is not a multiple of either block size: the partial block travels too.
            let mut first = algorithm.hasher();
            first.update(&data[..77]);
            let mut resumed = Hasher::resume(&first.checkpoint()).unwrap();
            assert_eq!(resumed.algorithm(), algorithm);
            resumed.update(&data[77..]);
            assert_eq!(resumed.finish(), algorithm.digest_of(&data));
        }
        assert!(Hasher::resume(b"").is_none());
        assert!(Hasher::resume(&[9, 1, 2]).is_none());
        assert!(Hasher::resume(&[CHECKPOINT_SHA256, 1, 2]).is_none());
    }

    #[test]
    fn streaming_matches_one_shot() {
        let mut hasher = Algorithm::Sha256.hasher();
        hasher.update(b"hello ");
        hasher.update(b"world");
        assert_eq!(hasher.finish(), Algorithm::Sha256.digest_of(b"hello world"));
    }

    #[test]
    fn rejects_bad_digests() {
        let cases = [
            ("", DigestError::Malformed),
            ("sha256", DigestError::Malformed),
            ("sha256:", DigestError::Malformed),
            (
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                DigestError::UnsupportedAlgorithm("md5".into()),
            ),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                DigestError::BadEncoding {
                    algorithm: "sha256",
                    expected: 64,
                },
            ),
            (
                "sha256:../../../../etc/passwd",
                DigestError::BadEncoding {
                    algorithm: "sha256",
                    expected: 64,
                },
            ),
            (
                "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                DigestError::BadEncoding {
                    algorithm: "sha512",
                    expected: 128,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<Digest>().unwrap_err(), expected, "{input}");
        }
    }
}
