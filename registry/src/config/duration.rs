//! Go-style duration strings (`168h`, `30s`, `1h30m`) as distribution's config uses them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written like Go's `time.ParseDuration` input.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub fn from_secs(secs: u64) -> Self {
        GoDuration(Duration::from_secs(secs))
    }

    /// Parses `1h30m`, `500ms`, `10s`, … (a plain integer counts nanoseconds, as in Go).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(nanos) = text.parse::<u64>() {
            return Ok(GoDuration(Duration::from_nanos(nanos)));
        }
        humantime::parse_duration(text)
            .map(GoDuration)
            .map_err(|e| format!("invalid duration {text:?}: {e} (use e.g. 30s, 24h, 1h30m)"))
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() != 0 {
            return write!(f, "{}ms", d.as_millis());
        }
        let secs = d.as_secs();
        match secs {
            0 => f.write_str("0s"),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl fmt::Debug for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GoDuration({self})")
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Nanos(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Nanos(nanos) => Ok(GoDuration(Duration::from_nanos(nanos))),
            Raw::Text(text) => GoDuration::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(
            GoDuration::parse("168h").unwrap().0,
            Duration::from_secs(168 * 3600)
        );
        assert_eq!(
            GoDuration::parse("1h30m").unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            GoDuration::parse("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert!(GoDuration::parse("soon").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["168h", "90m", "45s", "250ms", "0s"] {
            assert_eq!(GoDuration::parse(text).unwrap().to_string(), text);
        }
    }
}
