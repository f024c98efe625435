//! `REGISTRY_<SECTION>_<KEY>` environment overrides, with distribution's rules:
//! the name after `REGISTRY_` is split on `_` into a key path (lowercased),
//! the value is parsed as YAML, parents are applied before children, and
//! `REGISTRY_STORAGE=<driver>` switches the storage driver.

use serde_yaml::{Mapping, Value};

/// Variables with this prefix override config keys.
pub const ENV_PREFIX: &str = "REGISTRY_";
/// Names the config file; not an override.
pub const CONFIG_PATH_VAR: &str = "REGISTRY_CONFIGURATION_PATH";

/// Storage sections that select a driver (as opposed to shared options).
const STORAGE_DRIVERS: &[&str] = &[
    "filesystem",
    "inmemory",
    "s3",
    "gcs",
    "azure",
    "swift",
    "oss",
];

/// Applies every `REGISTRY_*` variable to a parsed config document and
/// returns the dotted keys it set (values are never logged: they may be secrets).
pub fn apply_env_overrides(
    document: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<String> {
    let mut overrides: Vec<(Vec<String>, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name != CONFIG_PATH_VAR)
        .map(|(name, value)| {
            let path = name[ENV_PREFIX.len()..]
                .split('_')
                .map(str::to_ascii_lowercase)
                .collect();
            (path, value)
        })
        .filter(|(path, _): &(Vec<String>, String)| path.iter().all(|part| !part.is_empty()))
        .collect();
    // Shorter paths first, so `REGISTRY_STORAGE=s3` happens before `REGISTRY_STORAGE_S3_BUCKET`.
    overrides.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));

    let mut applied = Vec::new();
    for (path, raw) in overrides {
        if !document.is_mapping() {
            *document = Value::Mapping(Mapping::new());
        }
        if path == ["storage"] {
            select_storage_driver(document, &raw);
        } else {
            set_path(document, &path, parse_value(&raw));
        }
        applied.push(path.join("."));
    }
    applied
}

/// Parses an override value as YAML (so `true`, `5` and lists work), falling
/// back to the literal string.
fn parse_value(raw: &str) -> Value {
    match serde_yaml::from_str::<Value>(raw) {
        Ok(Value::Null) if !raw.trim().is_empty() && raw.trim() != "null" && raw.trim() != "~" => {
            Value::String(raw.to_owned())
        }
        Ok(value) => value,
        Err(_) => Value::String(raw.to_owned()),
    }
}

/// Sets `path` inside `root`, creating mappings on the way and replacing
/// scalars that stand where a mapping is needed. Numeric parts index lists.
fn set_path(root: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cursor = root;
    for part in parents {
        cursor = child_mut(cursor, part);
    }
    match cursor {
        Value::Sequence(items) => match last.parse::<usize>() {
            Ok(index) if index < items.len() => items[index] = value,
            Ok(index) if index == items.len() => items.push(value),
            _ => {}
        },
        Value::Mapping(map) => {
            let key = existing_key(map, last).unwrap_or_else(|| Value::String(last.clone()));
            map.insert(key, value);
        }
        other => {
            let mut map = Mapping::new();
            map.insert(Value::String(last.clone()), value);
            *other = Value::Mapping(map);
        }
    }
}

fn child_mut<'a>(cursor: &'a mut Value, part: &str) -> &'a mut Value {
    let list_index = match (&*cursor, part.parse::<usize>()) {
        (Value::Sequence(items), Ok(index)) if index < items.len() => Some(index),
        _ => None,
    };
    if let Some(index) = list_index {
        return &mut cursor[index];
    }
    if !cursor.is_mapping() {
        *cursor = Value::Mapping(Mapping::new());
    }
    let key = cursor
        .as_mapping()
        .and_then(|map| existing_key(map, part))
        .unwrap_or_else(|| Value::String(part.to_owned()));
    let entry = &mut cursor[key];
    if !(entry.is_mapping() || entry.is_sequence()) {
        *entry = Value::Mapping(Mapping::new());
    }
    entry
}

/// Finds a key equal to `name` ignoring ASCII case (env names are upper case).
fn existing_key(map: &Mapping, name: &str) -> Option<Value> {
    map.keys()
        .find(|key| key.as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
        .cloned()
}

/// `REGISTRY_STORAGE=<driver>`: drop other driver sections, keep shared options.
fn select_storage_driver(document: &mut Value, driver: &str) {
    let driver = driver.trim().to_ascii_lowercase();
    let storage = child_mut(document, "storage");
    if let Value::Mapping(map) = storage {
        map.retain(|key, _| {
            key.as_str()
                .is_none_or(|k| k == driver || !STORAGE_DRIVERS.contains(&k))
        });
        if existing_key(map, &driver).is_none() {
            map.insert(Value::String(driver), Value::Mapping(Mapping::new()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_nested_keys_with_typed_values() {
        let mut doc: Value = serde_yaml::from_str(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n",
        )
        .unwrap();
        let applied = apply_env_overrides(
            &mut doc,
            vars(&[
                ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/data"),
                ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
                ("REGISTRY_HTTP_ADDR", "127.0.0.1:5001"),
                ("REGISTRY_CONFIGURATION_PATH", "/etc/x.yml"),
                ("OTHER_VAR", "x"),
            ]),
        );
        assert_eq!(
            applied,
            vec![
                "http.addr",
                "storage.delete.enabled",
                "storage.filesystem.rootdirectory"
            ]
        );
        assert_eq!(doc["storage"]["filesystem"]["rootdirectory"], "/data");
        assert_eq!(doc["storage"]["delete"]["enabled"], Value::Bool(true));
        assert_eq!(doc["http"]["addr"], "127.0.0.1:5001");
    }

    #[test]
    fn storage_variable_switches_driver() {
        let mut doc: Value = serde_yaml::from_str(
            "storage:\n  filesystem:\n    rootdirectory: /x\n  delete:\n    enabled: true\n",
        )
        .unwrap();
        apply_env_overrides(
            &mut doc,
            vars(&[
                ("REGISTRY_STORAGE_S3_BUCKET", "images"),
                ("REGISTRY_STORAGE", "s3"),
            ]),
        );
        assert!(doc["storage"].get("filesystem").is_none());
        assert_eq!(doc["storage"]["s3"]["bucket"], "images");
        assert_eq!(doc["storage"]["delete"]["enabled"], Value::Bool(true));
    }

    #[test]
    fn list_entries_by_index_and_literal_strings() {
        let mut doc: Value =
            serde_yaml::from_str("http:\n  tls:\n    clientcas: [/a.pem, /b.pem]\n").unwrap();
        apply_env_overrides(
            &mut doc,
            vars(&[
                ("REGISTRY_HTTP_TLS_CLIENTCAS_1", "/c.pem"),
                ("REGISTRY_HTTP_SECRET", "not: [valid yaml"),
                ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
            ]),
        );
        assert_eq!(doc["http"]["tls"]["clientcas"][1], "/c.pem");
        assert_eq!(doc["http"]["secret"], "not: [valid yaml");
        assert_eq!(doc["auth"]["htpasswd"]["realm"], "Registry Realm");
    }
}
