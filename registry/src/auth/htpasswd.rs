//! htpasswd files as `htpasswd -B` writes them: `user:$2y$<cost>$<hash>` lines.
//! Only bcrypt is accepted, as in distribution; anything else is rejected at
//! load time with the user it belongs to.

use std::collections::HashMap;
use std::fmt;

/// Why an htpasswd file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtpasswdError {
    #[error("htpasswd line {line}: expected user:hash")]
    Malformed { line: usize },
    #[error(
        "htpasswd line {line}: user {user:?} does not use a bcrypt hash ($2y$/$2a$/$2b$); regenerate it with `htpasswd -B`"
    )]
    NotBcrypt { line: usize, user: String },
    #[error("htpasswd line {line}: user {user:?} appears twice")]
    Duplicate { line: usize, user: String },
}

/// Users and their bcrypt hashes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print hashes.
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish()
    }
}

impl Htpasswd {
    /// Parses file content; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Self, HtpasswdError> {
        let mut users = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let entry = raw.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let (user, hash) = entry
                .split_once(':')
                .filter(|(user, hash)| !user.is_empty() && !hash.is_empty())
                .ok_or(HtpasswdError::Malformed { line })?;
            let is_bcrypt = ["$2y$", "$2a$", "$2b$"]
                .iter()
                .any(|prefix| hash.starts_with(prefix));
            if !is_bcrypt {
                return Err(HtpasswdError::NotBcrypt {
                    line,
                    user: user.to_owned(),
                });
            }
            if users.insert(user.to_owned(), hash.to_owned()).is_some() {
                return Err(HtpasswdError::Duplicate {
                    line,
                    user: user.to_owned(),
                });
            }
        }
        Ok(Htpasswd { users })
    }

    /// The bcrypt hash of a user.
    pub fn hash_of(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bcrypt_entries_and_skips_comments() {
        let file = Htpasswd::parse(
            "# users\nadmin:$2y$05$abcdefghijklmnopqrstuuXW1O3vU8lOVhGdRnZ3yN6QdUZr7G5Hy\n\nci:$2b$10$x\n",
        )
        .unwrap();
        assert_eq!(file.len(), 2);
        assert!(file.hash_of("admin").unwrap().starts_with("$2y$05$"));
        assert_eq!(file.hash_of("nobody"), None);
    }

    #[test]
    fn rejects_other_hash_types_naming_the_user() {
        for (text, expected) in [
            (
                "alice:$apr1$salt$hash\n",
                HtpasswdError::NotBcrypt {
                    line: 1,
                    user: "alice".into(),
                },
            ),
            (
                "a:$2y$1\nbob:{SHA}abc=\n",
                HtpasswdError::NotBcrypt {
                    line: 2,
                    user: "bob".into(),
                },
            ),
            ("just-a-user\n", HtpasswdError::Malformed { line: 1 }),
            (
                "a:$2y$1\na:$2y$2\n",
                HtpasswdError::Duplicate {
                    line: 2,
                    user: "a".into(),
                },
            ),
        ] {
            assert_eq!(Htpasswd::parse(text).unwrap_err(), expected);
        }
    }
}
