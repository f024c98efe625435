//! HTTP Basic authentication against an htpasswd file, with a verified
//! credential cache so a 50-layer pull pays for bcrypt once, bcrypt off the
//! async runtime, failed-login limits per client and per user, optional
//! anonymous pulls, and reload when the file changes.

mod cache;
pub mod htpasswd;
mod limiter;

use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use tokio::sync::Semaphore;

use cache::CredentialCache;
pub use htpasswd::{Htpasswd, HtpasswdError};
use limiter::FailureLimiter;
pub use limiter::{
    DEFAULT_CLIENT_FAILURES, DEFAULT_FAILURE_WINDOW, DEFAULT_USER_FAILURES, FailurePolicy,
    TRACKED_CAPACITY,
};

/// How often the htpasswd file is checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Why the authenticator could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read htpasswd file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("htpasswd file {path}: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: HtpasswdError,
    },
}

/// Outcome of checking a request's credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Valid credentials for this user.
    User(String),
    /// No `Authorization` header.
    Missing,
    /// Credentials were sent but are wrong or malformed.
    Invalid,
    /// Not checked: the client or user failed too often; retry after this long.
    Limited(Duration),
}

/// Identity of a file version, to notice replacement (including Kubernetes'
/// symlink swaps of Secret volumes) without trusting mtime alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    let meta = std::fs::metadata(path)?;
    Ok(FileStamp {
        modified: meta.modified()?,
        len: meta.len(),
        inode: meta.ino(),
    })
}

struct Inner {
    realm: String,
    anonymous_read: bool,
    path: PathBuf,
    users: RwLock<(Arc<Htpasswd>, u64, Option<FileStamp>)>,
    cache: CredentialCache,
    /// Bounds concurrent bcrypt work to the CPU count.
    bcrypt_slots: Arc<Semaphore>,
    failures: FailureLimiter,
}

/// Checks Basic credentials against an htpasswd file.
#[derive(Clone)]
pub struct Authenticator(Arc<Inner>);

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.0.realm)
            .field("path", &self.0.path)
            .field("anonymous_read", &self.0.anonymous_read)
            .finish()
    }
}

fn load(path: &Path) -> Result<(Htpasswd, Option<FileStamp>), AuthError> {
    let file_stamp = stamp(path).ok();
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.to_owned(),
        source,
    })?;
    let users = Htpasswd::parse(&text).map_err(|source| AuthError::Invalid {
        path: path.to_owned(),
        source,
    })?;
    Ok((users, file_stamp))
}

impl Authenticator {
    /// Loads the htpasswd file; an unreadable or invalid file is a startup error.
    pub fn from_file(
        realm: impl Into<String>,
        path: impl Into<PathBuf>,
        anonymous_read: bool,
        failures: FailurePolicy,
    ) -> Result<Self, AuthError> {
        let path = path.into();
        let (users, file_stamp) = load(&path)?;
        if users.is_empty() {
            tracing::warn!(path = %path.display(), "htpasswd file has no users; every request needing auth will be refused");
        }
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Authenticator(Arc::new(Inner {
            realm: realm.into(),
            anonymous_read,
            path,
            users: RwLock::new((Arc::new(users), 0, file_stamp)),
            cache: CredentialCache::default(),
            bcrypt_slots: Arc::new(Semaphore::new(slots)),
            failures: FailureLimiter::new(failures),
        })))
    }

    /// Reloads the htpasswd file if it changed (the server polls this every
    /// [`RELOAD_INTERVAL`]); returns whether new users were installed. A
    /// broken new file keeps the previous users.
    pub fn reload_if_changed(&self) -> bool {
        let current = self.0.users.read().map(|guard| guard.2).unwrap_or(None);
        let Ok(now) = stamp(&self.0.path) else {
            return false;
        };
        if Some(now) == current {
            return false;
        }
        match load(&self.0.path) {
            Ok((users, file_stamp)) => {
                let count = users.len();
                if let Ok(mut guard) = self.0.users.write() {
                    let generation = guard.1 + 1;
                    *guard = (Arc::new(users), generation, file_stamp);
                }
                tracing::info!(path = %self.0.path.display(), users = count, "reloaded htpasswd file");
                true
            }
            Err(e) => {
                // Remember the broken version so the error is logged once per change.
                if let Ok(mut guard) = self.0.users.write() {
                    guard.2 = Some(now);
                }
                tracing::error!(error = %e, "htpasswd file changed but is invalid; keeping the previous users");
                false
            }
        }
    }

    /// The `WWW-Authenticate` challenge.
    pub fn challenge(&self) -> String {
        format!("Basic realm=\"{}\"", self.0.realm.replace('"', "'"))
    }

    pub fn anonymous_read(&self) -> bool {
        self.0.anonymous_read
    }

    /// Verifies the value of an `Authorization` header sent from `client`
    /// (limited by its address when known). Recently verified credentials
    /// are never limited; others are refused without bcrypt while their client
    /// or user name has failed too often.
    pub async fn check(&self, header: Option<&[u8]>, client: Option<IpAddr>) -> Credentials {
        let Some(header) = header else {
            return Credentials::Missing;
        };
        let Some((user, password)) = parse_basic(header) else {
            return Credentials::Invalid;
        };
        // Clients without credentials (skopeo, containers/image) answer a Basic
        // challenge with empty ones: that is an anonymous request, not a wrong password.
        if user.is_empty() && password.is_empty() {
            return Credentials::Missing;
        }
        let (users, generation) = match self.0.users.read() {
            Ok(guard) => (Arc::clone(&guard.0), guard.1),
            Err(_) => return Credentials::Invalid,
        };
        if self.0.cache.is_verified(&user, &password, generation) {
            return Credentials::User(user);
        }
        let failures = &self.0.failures;
        if let Some(wait) = failures.wait(client, &user, Instant::now()) {
            return Credentials::Limited(wait);
        }
        // A client's checks wait here for each other rather than for the shared bcrypt slots,
        // so a flood from one address delays itself, not other clients' logins.
        let lane = match failures.lane(client, Instant::now()) {
            Some(lane) => match lane.acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => return Credentials::Invalid,
            },
            None => None,
        };
        // While waiting, a request with the same credentials may have verified
        // them, or this client's earlier attempts may have used up its failures.
        if self.0.cache.is_verified(&user, &password, generation) {
            return Credentials::User(user);
        }
        if let Some(wait) = failures.wait(client, &user, Instant::now()) {
            return Credentials::Limited(wait);
        }
        let known = users.hash_of(&user).is_some();
        // Unknown users are verified against a dummy of the file's typical cost, so they take
        // as long to refuse as a wrong password and response times do not reveal user names.
        let hash = users
            .hash_of(&user)
            .unwrap_or(users.dummy_hash())
            .to_owned();
        let Ok(slot) = Arc::clone(&self.0.bcrypt_slots).acquire_owned().await else {
            return Credentials::Invalid;
        };
        let inner = Arc::clone(&self.0);
        let name = user.clone();
        // The blocking task owns the slot and the lane and records the outcome itself: a client
        // that hangs up mid-check cannot free them early or leave its failure uncounted, since a
        // started bcrypt runs to the end anyway.
        let accepted = tokio::task::spawn_blocking(move || {
            let _held = (slot, lane);
            let verified = bcrypt::verify(&password, &hash).unwrap_or(false);
            if verified && known {
                inner.cache.remember(&name, &password, generation);
            } else {
                // Before the lane is released, so the client's waiting checks see it.
                inner.failures.fail(client, &name, Instant::now());
            }
            verified && known
        })
        .await
        .unwrap_or(false);
        if accepted {
            Credentials::User(user)
        } else {
            Credentials::Invalid
        }
    }
}

/// Decodes `Basic base64(user:password)`.
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(header).ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Vec<u8> {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    fn write_users(path: &Path, users: &[(&str, &str)]) {
        let text: String = users
            .iter()
            .map(|(user, password)| format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap()))
            .collect();
        std::fs::write(path, text).unwrap();
    }

    #[tokio::test]
    async fn verifies_and_caches_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("admin", "s3cret")]);
        let auth =
            Authenticator::from_file("Registry", &path, false, FailurePolicy::default()).unwrap();

        assert_eq!(auth.check(None, None).await, Credentials::Missing);
        assert_eq!(
            auth.check(Some(&*basic("", "")), None).await,
            Credentials::Missing
        );
        assert_eq!(
            auth.check(Some(&*basic("", "x")), None).await,
            Credentials::Invalid
        );
        assert_eq!(
            auth.check(Some(&*basic("admin", "s3cret")), None).await,
            Credentials::User("admin".into())
        );
        assert!(auth.0.cache.is_verified("admin", "s3cret", 0));
        assert_eq!(
            auth.check(Some(&*basic("admin", "wrong")), None).await,
            Credentials::Invalid
        );
        assert!(!auth.0.cache.is_verified("admin", "wrong", 0));
        assert_eq!(
            auth.check(Some(&*basic("ghost", "s3cret")), None).await,
            Credentials::Invalid
        );
        assert_eq!(
            auth.check(Some(b"Bearer abc".as_slice()), None).await,
            Credentials::Invalid
        );
        assert_eq!(auth.challenge(), "Basic realm=\"Registry\"");
    }

    #[tokio::test]
    async fn reloads_changed_file_and_keeps_users_on_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("old", "pw")]);
        let auth = Authenticator::from_file("R", &path, false, FailurePolicy::default()).unwrap();
        assert!(matches!(
            auth.check(Some(&*basic("old", "pw")), None).await,
            Credentials::User(_)
        ));

        // Replace the file the way a Secret volume does: a new inode.
        let next = dir.path().join("htpasswd.new");
        write_users(&next, &[("new", "pw2")]);
        std::fs::rename(&next, &path).unwrap();
        assert!(auth.reload_if_changed());
        assert_eq!(
            auth.check(Some(&*basic("old", "pw")), None).await,
            Credentials::Invalid
        );
        assert!(matches!(
            auth.check(Some(&*basic("new", "pw2")), None).await,
            Credentials::User(_)
        ));

        std::fs::write(dir.path().join("broken"), "new:plaintext\n").unwrap();
        std::fs::rename(dir.path().join("broken"), &path).unwrap();
        assert!(!auth.reload_if_changed());
        assert!(matches!(
            auth.check(Some(&*basic("new", "pw2")), None).await,
            Credentials::User(_)
        ));
    }

    fn strict(per_client: u32) -> FailurePolicy {
        FailurePolicy {
            per_client,
            per_user: 0,
            window: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn a_flood_from_one_client_gets_only_its_failure_limit_of_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("admin", "s3cret"), ("ci", "token")]);
        let auth = Authenticator::from_file("R", &path, false, strict(2)).unwrap();
        let attacker: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());

        let attempts = (0..20).map(|n| {
            let auth = auth.clone();
            async move {
                auth.check(Some(&*basic("admin", &format!("guess{n}"))), attacker)
                    .await
            }
        });
        let outcomes = futures_util::future::join_all(attempts).await;
        let checked = outcomes.iter().filter(|o| **o == Credentials::Invalid);
        assert_eq!(checked.count(), 2, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Credentials::Invalid | Credentials::Limited(_))),
            "{outcomes:?}"
        );
        // Even the right password waits (it is not known to be right without bcrypt) ...
        assert!(matches!(
            auth.check(Some(&*basic("ci", "token")), attacker).await,
            Credentials::Limited(wait) if wait <= Duration::from_secs(30)
        ));
        // ... but other clients are not limited.
        let other = Some("192.0.2.2".parse().unwrap());
        assert_eq!(
            auth.check(Some(&*basic("ci", "token")), other).await,
            Credentials::User("ci".into())
        );
        // And credentials verified recently never are, from anywhere.
        assert_eq!(
            auth.check(Some(&*basic("ci", "token")), attacker).await,
            Credentials::User("ci".into())
        );
    }

    #[tokio::test]
    async fn parallel_uncached_logins_of_one_client_all_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("admin", "s3cret")]);
        let auth = Authenticator::from_file("R", &path, false, strict(2)).unwrap();
        let client: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        // A pull whose cached login expired: many requests at once, one client, one password.
        let requests = (0..20).map(|_| {
            let auth = auth.clone();
            async move { auth.check(Some(&*basic("admin", "s3cret")), client).await }
        });
        for outcome in futures_util::future::join_all(requests).await {
            assert_eq!(outcome, Credentials::User("admin".into()));
        }
    }

    #[tokio::test]
    async fn a_client_hanging_up_mid_check_still_has_its_failure_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        write_users(&path, &[("admin", "s3cret")]);
        let auth = Authenticator::from_file("R", &path, false, strict(1)).unwrap();
        let client: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let slots = auth.0.bcrypt_slots.available_permits();

        let attempt = tokio::spawn({
            let auth = auth.clone();
            async move { auth.check(Some(&*basic("admin", "guess")), client).await }
        });
        while auth.0.bcrypt_slots.available_permits() == slots {
            tokio::task::yield_now().await;
        }
        // bcrypt is running: the client goes away.
        attempt.abort();
        assert!(attempt.await.unwrap_err().is_cancelled());
        // The slot is held until bcrypt ends, and the failure counts.
        while auth.0.bcrypt_slots.available_permits() < slots {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(matches!(
            auth.check(Some(&*basic("admin", "another")), client).await,
            Credentials::Limited(_)
        ));
    }

    /// The authenticator knows nothing of the web server (the middleware is
    /// `http::auth`), so `auth` and `state` never import each other.
    #[test]
    fn has_no_web_dependencies() {
        // Spelled in pieces so this test does not match itself.
        let forbidden = [
            concat!("ax", "um"),
            concat!("crate::", "state"),
            concat!("crate::", "http"),
            concat!("App", "State"),
            concat!("Ro", "ute"),
        ];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/auth");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for word in forbidden {
                assert!(!text.contains(word), "{} mentions {word}", path.display());
            }
        }
    }

    #[test]
    fn rejects_non_bcrypt_files_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        std::fs::write(&path, "alice:$apr1$x$y\n").unwrap();
        let err =
            Authenticator::from_file("R", &path, false, FailurePolicy::default()).unwrap_err();
        assert!(err.to_string().contains("\"alice\""), "{err}");
    }
}
