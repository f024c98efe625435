//! Pure OCI types: digests, names, references, media types and manifests.

pub mod digest;
pub mod foreign;
pub mod manifest;
pub mod media_type;
pub mod name;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use manifest::{Descriptor, Manifest, ManifestError};
pub use media_type::ManifestKind;
pub use name::{NameError, Reference, RepositoryName, Tag};
