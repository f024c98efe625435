//! The registry's config file, rendered with the registry crate's own config
//! types (so it always parses), in a ConfigMap; its hash rolls the pods.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::ConfigMap;
use registry::config::{
    AccessLogConfig, AuthConfig, Config, ConfigVersion, DeleteConfig, FilesystemConfig, GoDuration,
    HtpasswdConfig, HttpConfig, LogConfig, MaintenanceConfig, ReadOnlyConfig, RedirectConfig,
    StorageConfig, TlsConfig, UploadPurgingConfig,
};
use sha2::{Digest, Sha256};

use super::labels::{REGISTRY_COMPONENT, metadata, names};
use crate::controller::model::*;
use crate::crd::{LogFormat, LogLevel};

/// The registry's config and the hash the Deployment carries.
pub fn registry_config(v: &ValidatedRegistry) -> Result<(Config, String), serde_yaml::Error> {
    let storage_driver = match &v.storage {
        Storage::Claim { .. } | Storage::EmptyDir { .. } => StorageConfig {
            filesystem: Some(FilesystemConfig {
                rootdirectory: PathBuf::from(STORAGE_MOUNT),
                maxthreads: None,
            }),
            ..StorageConfig::default()
        },
        // Keys come from the Secret through REGISTRY_STORAGE_* env vars.
        Storage::S3(s3) => StorageConfig {
            s3: match &s3.driver {
                ObjectDriver::S3(config) => Some(config.as_ref().clone()),
                ObjectDriver::Oss(_) => None,
            },
            oss: match &s3.driver {
                ObjectDriver::Oss(config) => Some(config.as_ref().clone()),
                ObjectDriver::S3(_) => None,
            },
            redirect: Some(RedirectConfig {
                disable: !s3.redirect,
            }),
            ..StorageConfig::default()
        },
    };
    let purging = &v.upload_purging;
    let config = Config {
        version: ConfigVersion::Text("0.1".into()),
        log: LogConfig {
            level: Some(
                match v.log.level {
                    LogLevel::Error => "error",
                    LogLevel::Warn => "warn",
                    LogLevel::Info => "info",
                    LogLevel::Debug => "debug",
                }
                .into(),
            ),
            formatter: Some(
                match v.log.format {
                    LogFormat::Text => "text",
                    LogFormat::Json => "json",
                }
                .into(),
            ),
            accesslog: (!v.log.access_log).then_some(AccessLogConfig { disabled: true }),
            ..LogConfig::default()
        },
        loglevel: None,
        storage: StorageConfig {
            delete: Some(DeleteConfig {
                enabled: v.delete_enabled,
            }),
            maintenance: Some(MaintenanceConfig {
                uploadpurging: Some(UploadPurgingConfig {
                    enabled: purging.enabled,
                    age: GoDuration::parse(&purging.age).unwrap_or_default(),
                    interval: GoDuration::parse(&purging.interval).unwrap_or_default(),
                    dryrun: false,
                }),
                readonly: v.read_only.then_some(ReadOnlyConfig { enabled: true }),
                lock: None,
            }),
            ..storage_driver
        },
        auth: v.auth.as_ref().map(|auth| AuthConfig {
            htpasswd: Some(HtpasswdConfig {
                realm: auth.realm.clone(),
                path: PathBuf::from(AUTH_DIR).join(HTPASSWD_FILE),
                anonymousread: auth.anonymous_read,
                ..HtpasswdConfig::default()
            }),
            ..AuthConfig::default()
        }),
        http: HttpConfig {
            addr: format!(":{REGISTRY_PORT}"),
            draintimeout: Some(GoDuration::from_secs(30)),
            tls: v.tls.enabled().then(|| TlsConfig {
                certificate: Some(PathBuf::from(TLS_DIR).join("tls.crt")),
                key: Some(PathBuf::from(TLS_DIR).join("tls.key")),
                minimumtls: Some(
                    if v.tls.tls13_only() {
                        "tls1.3"
                    } else {
                        "tls1.2"
                    }
                    .into(),
                ),
                ..TlsConfig::default()
            }),
            headers: BTreeMap::from([("X-Content-Type-Options".into(), vec!["nosniff".into()])]),
            ..HttpConfig::default()
        },
        validation: Default::default(),
        catalog: None,
        health: None,
        notifications: None,
        redis: None,
        proxy: None,
        compatibility: None,
        middleware: None,
    };
    let text = serde_yaml::to_string(&config)?;
    Ok((config, hex::encode(Sha256::digest(text.as_bytes()))))
}

/// The ConfigMap holding `config.yml`.
pub fn config_map(v: &ValidatedRegistry, config: &Config) -> Result<ConfigMap, serde_yaml::Error> {
    let text = serde_yaml::to_string(config)?;
    Ok(ConfigMap {
        metadata: metadata(v, names::config(&v.name), REGISTRY_COMPONENT),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_owned(), text)])),
        ..ConfigMap::default()
    })
}
