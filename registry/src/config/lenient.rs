//! Distribution reads some driver parameters as "bool or string" and "number
//! or string" (`secure: "false"`, `chunksize: "10485760"`), so configs and
//! environment overrides written for it use both forms.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrText {
    Bool(bool),
    Text(String),
}

fn parse_bool<E: de::Error>(value: BoolOrText) -> Result<bool, E> {
    match value {
        BoolOrText::Bool(b) => Ok(b),
        BoolOrText::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => Ok(true),
            "false" | "0" | "f" => Ok(false),
            _ => Err(E::custom(format!("{text:?} is not a boolean"))),
        },
    }
}

/// `Option<bool>` written as a boolean or a string.
pub mod bool {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Option::<BoolOrText>::deserialize(d)?
            .map(parse_bool)
            .transpose()
    }
}

/// `bool` written as a boolean or a string.
pub mod plain_bool {
    use super::*;

    pub fn serialize<S: Serializer>(value: &bool, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        parse_bool(BoolOrText::deserialize(d)?)
    }
}

/// `Option<u64>` written as a number or a string.
pub mod u64 {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<NumberOrText>::deserialize(d)? {
            None => Ok(None),
            Some(NumberOrText::Number(n)) => Ok(Some(n)),
            Some(NumberOrText::Text(text)) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| de::Error::custom(format!("{text:?} is not a whole number"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default, with = "super::bool")]
        flag: Option<bool>,
        #[serde(default, with = "super::u64")]
        size: Option<u64>,
    }

    #[test]
    fn accepts_both_forms_and_names_bad_values() {
        let parsed: Sample = serde_yaml::from_str("flag: \"false\"\nsize: \"5242880\"").unwrap();
        assert_eq!((parsed.flag, parsed.size), (Some(false), Some(5_242_880)));
        let parsed: Sample = serde_yaml::from_str("flag: true\nsize: 7").unwrap();
        assert_eq!((parsed.flag, parsed.size), (Some(true), Some(7)));
        let parsed: Sample = serde_yaml::from_str("{}").unwrap();
        assert_eq!((parsed.flag, parsed.size), (None, None));
        assert!(serde_yaml::from_str::<Sample>("flag: maybe").is_err());
        assert!(serde_yaml::from_str::<Sample>("size: lots").is_err());
    }
}
