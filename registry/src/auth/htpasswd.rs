//! htpasswd files as `htpasswd -B` writes them: `user:$2y$<cost>$<hash>` lines.
//! Only bcrypt is accepted, as in distribution; anything else is rejected at
//! load time with the user it belongs to.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::LazyLock;

/// The unknown-user dummy's cost for a file with no usable cost (Go's `bcrypt.DefaultCost`).
pub const DEFAULT_DUMMY_COST: u32 = 10;
/// Bounds of the dummy's cost: bcrypt's minimum, and a ceiling (about a second of CPU) so a
/// file full of absurd costs cannot make every unknown-user request burn minutes.
pub const DUMMY_COST_RANGE: RangeInclusive<u32> = 4..=14;

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
#[derive(Clone, PartialEq, Eq)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// Verified against for users not in the file, with the file's [`dummy_cost`].
    dummy_hash: String,
}

impl Default for Htpasswd {
    fn default() -> Self {
        Htpasswd {
            users: HashMap::new(),
            dummy_hash: dummy_hash(DEFAULT_DUMMY_COST),
        }
    }
}

/// The cost of a `$2y$<cost>$...` hash, when it is one bcrypt accepts.
fn cost_of(hash: &str) -> Option<u32> {
    let cost = hash.split('$').nth(2)?.parse().ok()?;
    (4..=31).contains(&cost).then_some(cost)
}

/// The bcrypt cost for unknown users, so rejecting one takes as long as a wrong password: the
/// most common cost among `hashes` (ties: the higher), which makes an unknown name look like
/// most users rather than like the one with the oddest cost; bounded by [`DUMMY_COST_RANGE`].
pub fn dummy_cost<'a>(hashes: impl IntoIterator<Item = &'a str>) -> u32 {
    let mut counts = BTreeMap::<u32, usize>::new();
    for cost in hashes.into_iter().filter_map(cost_of) {
        *counts.entry(cost).or_default() += 1;
    }
    let typical = counts
        .into_iter()
        .max_by_key(|&(cost, count)| (count, cost))
        .map_or(DEFAULT_DUMMY_COST, |(cost, _)| cost);
    typical.clamp(*DUMMY_COST_RANGE.start(), *DUMMY_COST_RANGE.end())
}

/// A bcrypt hash of `cost` that no password matches: verifying against it takes what a real
/// hash of that cost does. Only the cost field is varied, so no hashing happens at load time
/// (a cost-14 hash would stall a reload for a second).
fn dummy_hash(cost: u32) -> String {
    static SALT_AND_HASH: LazyLock<String> = LazyLock::new(|| {
        bcrypt::hash_with_salt("berth-unknown-user", 4, [0x5a; 16])
            .map(|parts| parts.format_for_version(bcrypt::Version::TwoB)[7..].to_owned())
            .unwrap_or_default()
    });
    format!("$2b${cost:02}${}", *SALT_AND_HASH)
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
        let dummy_hash = dummy_hash(dummy_cost(users.values().map(String::as_str)));
        Ok(Htpasswd { users, dummy_hash })
    }

    /// The bcrypt hash of a user.
    pub fn hash_of(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    /// The hash to verify against for a user not in the file: its cost is [`dummy_cost`] of
    /// this file's, so unknown users take as long to refuse as wrong passwords.
    pub fn dummy_hash(&self) -> &str {
        &self.dummy_hash
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

    /// A hash line of `cost` (the salt and hash parts are not read).
    fn with_cost(cost: &str) -> String {
        format!("$2y${cost}$abcdefghijklmnopqrstuuXW1O3vU8lOVhGdRnZ3yN6QdUZr7G5Hy")
    }

    #[test]
    fn dummy_cost_is_the_files_most_common_cost_within_bounds() {
        for (costs, expected) in [
            (vec!["05", "05", "05"], 5),
            (vec!["10", "12", "10"], 10),
            // A tie: the higher, so the dummy is never the cheaper kind.
            (vec!["05", "12"], 12),
            (vec!["12", "12", "05", "05", "07"], 12),
            // Absurd costs are capped; bcrypt's floor is 4.
            (vec!["31", "31"], 14),
            (vec!["04"], 4),
            // Costs bcrypt refuses (and non-numbers) are not costs: those lines fail fast anyway.
            (vec!["02", "99", "xx", "06"], 6),
            (vec!["02"], DEFAULT_DUMMY_COST),
            (vec![], DEFAULT_DUMMY_COST),
        ] {
            let hashes: Vec<String> = costs.iter().map(|c| with_cost(c)).collect();
            assert_eq!(
                dummy_cost(hashes.iter().map(String::as_str)),
                expected,
                "{costs:?}"
            );
        }
    }

    #[test]
    fn the_dummy_hash_has_the_files_cost_and_matches_nothing() {
        let text: String = ["a", "b", "c"]
            .iter()
            .zip(["06", "06", "11"])
            .map(|(user, cost)| format!("{user}:{}\n", with_cost(cost)))
            .collect();
        let file = Htpasswd::parse(&text).unwrap();
        let parts: bcrypt::HashParts = file.dummy_hash().parse().unwrap();
        assert_eq!(parts.get_cost(), 6);
        // A parse error would return at once: verification must really run at that cost.
        assert!(!bcrypt::verify("berth-unknown-user", file.dummy_hash()).unwrap());
        assert_eq!(Htpasswd::default().dummy_hash()[..7], *"$2b$10$");
        assert_eq!(Htpasswd::parse("").unwrap().dummy_hash()[..7], *"$2b$10$");
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
