//! Reading a config file (or the embedded default), applying environment
//! overrides, and reporting errors by key and unknown keys as warnings.

use std::io;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::{Config, apply_env_overrides, validate};

/// The configuration used when no file is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.yml");

/// Why a configuration could not be used. Every variant names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("config is not valid YAML: {0}")]
    Yaml(String),
    #[error("invalid config key {key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A parsed, validated configuration and what was noticed on the way.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// Unknown or ignored keys, deprecated settings.
    pub warnings: Vec<String>,
    /// Keys set from `REGISTRY_*` variables (names only: values may be secrets).
    pub overrides: Vec<String>,
}

/// Parses config text, applies `REGISTRY_*` overrides from `env`, and validates.
pub fn parse_config(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<LoadedConfig, ConfigError> {
    let mut document: Value =
        serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    if document.is_null() {
        document = Value::Mapping(Default::default());
    }
    let overrides = apply_env_overrides(&mut document, env);

    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(document, &mut track);
    let config: Config = serde_ignored::deserialize(tracked, |path| {
        // serde_ignored marks `Some(..)` levels with `?`; keys read better without them.
        unknown.push(path.to_string().replace(".?", "").replace("?.", ""))
    })
    .map_err(|e| {
        let key = track.path().to_string();
        ConfigError::invalid(
            if key == "." { "(root)".into() } else { key },
            e.to_string(),
        )
    })?;

    let mut warnings: Vec<String> = unknown
        .into_iter()
        .map(|key| format!("unknown config key {key} is ignored"))
        .collect();
    warnings.extend(validate::validate(&config)?);
    Ok(LoadedConfig {
        config,
        warnings,
        overrides,
    })
}

/// Loads `path`, or the embedded default when `None`.
pub fn load_config(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<LoadedConfig, ConfigError> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?,
        None => DEFAULT_CONFIG.to_owned(),
    };
    parse_config(&text, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn embedded_default_is_valid() {
        let loaded = load_config(None, no_env()).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert!(loaded.config.storage.delete_enabled());
        assert_eq!(loaded.config.http.addr, ":5000");
        assert_eq!(
            loaded.config.storage.filesystem.unwrap().rootdirectory,
            PathBuf::from("/var/lib/registry")
        );
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_name_the_key() {
        let loaded = parse_config(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n    colour: blue\nhttp:\n  addr: :5000\n",
            no_env(),
        )
        .unwrap();
        assert_eq!(
            loaded.warnings,
            vec!["unknown config key storage.filesystem.colour is ignored"]
        );

        let err = parse_config(
            "version: 0.1\nstorage:\n  filesystem: {}\n  delete:\n    enabled: maybe\n",
            no_env(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("storage.delete.enabled"), "{err}");
    }

    #[test]
    fn env_override_errors_name_the_key() {
        let err = parse_config(
            DEFAULT_CONFIG,
            vec![(
                "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE".to_owned(),
                "a while".to_owned(),
            )],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("storage.maintenance.uploadpurging.age"),
            "{err}"
        );
    }

    #[test]
    fn renders_back_to_a_parseable_config() {
        let loaded = load_config(None, no_env()).unwrap();
        let rendered = serde_yaml::to_string(&loaded.config).unwrap();
        let reparsed = parse_config(&rendered, no_env()).unwrap();
        assert_eq!(serde_yaml::to_string(&reparsed.config).unwrap(), rendered);
        assert!(reparsed.config.storage.delete_enabled());
    }
}
