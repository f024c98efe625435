//! Query strings, keeping repeated keys (`?tag=a&tag=b`).

/// Decoded query parameters in request order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string; undecodable input yields no parameters.
    pub fn parse(raw: Option<&str>) -> Self {
        Query(serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_repeated_keys_and_decodes() {
        let query = Query::parse(Some("n=10&last=a%2Fb&tag=x&tag=y&from=&flag"));
        assert_eq!(query.get("n"), Some("10"));
        assert_eq!(query.get("last"), Some("a/b"));
        assert_eq!(query.all("tag").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(query.get("from"), Some(""));
        assert_eq!(query.get("flag"), Some(""));
        assert_eq!(query.get("missing"), None);
        assert_eq!(Query::parse(None), Query::default());
    }
}
