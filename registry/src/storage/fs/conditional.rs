//! Conditional writes on a filesystem: create-if-absent and
//! compare-and-swap, serialized per path by an exclusive lock on a lock file
//! (held only for the compare and the rename, never across client I/O). A
//! version is the SHA-256 of the content, so it needs no extra state.

use std::fs::{self as stdfs, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::durable_rename;
use crate::oci::Algorithm;
use crate::storage::{Precondition, Version};

/// The version of an object with this content.
pub(super) fn version_of(data: &[u8]) -> Version {
    Version(Algorithm::Sha256.digest_of(data).hex().to_owned())
}

/// Writes `data` to `full` if `condition` holds; `Ok(Err(()))` when it does not.
pub(super) fn put_if(
    full: &Path,
    lock: &Path,
    temp: &Path,
    data: &[u8],
    condition: &Precondition,
) -> io::Result<Result<Version, ()>> {
    if let Some(dir) = lock.parent() {
        stdfs::create_dir_all(dir)?;
    }
    let lock_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock)?;
    lock_file.lock()?;
    let holds = match (condition, stdfs::read(full)) {
        (Precondition::Absent, Err(e)) if e.kind() == io::ErrorKind::NotFound => true,
        (Precondition::Absent, Err(e)) => return Err(e),
        (Precondition::Absent, Ok(_)) => false,
        (Precondition::Matches(_), Err(e)) if e.kind() == io::ErrorKind::NotFound => false,
        (Precondition::Matches(_), Err(e)) => return Err(e),
        (Precondition::Matches(version), Ok(current)) => &version_of(&current) == version,
    };
    if !holds {
        return Ok(Err(()));
    }
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
        file.write_all(data)?;
        durable_rename(temp, full)
    })();
    if result.is_err() {
        let _ = stdfs::remove_file(temp);
    }
    result?;
    Ok(Ok(version_of(data)))
}
