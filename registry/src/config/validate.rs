//! Semantic checks after parsing: one storage driver, supported features
//! only, well-formed addresses and levels. Errors name the key.

use super::{Config, ConfigError, ConfigVersion, DEBUG_HEALTH_PATH, HttpConfig};
use crate::storage::s3::settings::BucketSettings;

/// Log levels distribution (logrus) accepts.
const LOG_LEVELS: &[&str] = &[
    "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace",
];
const LOG_FORMATTERS: &[&str] = &["text", "json", "logstash"];

/// Validates a parsed config; returns warnings for settings that are accepted but have no effect.
pub fn validate(config: &Config) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    let version_ok = match &config.version {
        ConfigVersion::Text(text) => text == "0.1",
        ConfigVersion::Number(number) => (*number - 0.1).abs() < f64::EPSILON,
    };
    if !version_ok {
        return Err(ConfigError::invalid(
            "version",
            "only version 0.1 is supported",
        ));
    }

    validate_storage(config, &mut warnings)?;
    validate_log(config, &mut warnings)?;
    validate_http(config, &mut warnings)?;
    validate_auth(config)?;

    if config.proxy.is_some() {
        return Err(ConfigError::invalid(
            "proxy",
            "pull-through cache mode is not supported by Berth",
        ));
    }
    if config.notifications.is_some() {
        warnings.push("notifications are not supported by Berth and are ignored".into());
    }
    if config.redis.is_some() {
        warnings.push("redis is not used by Berth and is ignored".into());
    }
    if config.middleware.is_some() {
        warnings.push("middleware is not supported by Berth and is ignored".into());
    }
    if let Some(indexes) = config
        .validation
        .manifests
        .as_ref()
        .and_then(|m| m.indexes.as_ref())
    {
        match indexes.platforms.as_deref().unwrap_or("all") {
            "all" | "none" => {}
            "list" if !indexes.platformlist.is_empty() => {}
            "list" => {
                return Err(ConfigError::invalid(
                    "validation.manifests.indexes.platformlist",
                    "platforms: list needs at least one platform",
                ));
            }
            other => {
                return Err(ConfigError::invalid(
                    "validation.manifests.indexes.platforms",
                    format!("{other:?} is not one of all, none, list"),
                ));
            }
        }
    }
    if let Some(urls) = config
        .validation
        .manifests
        .as_ref()
        .and_then(|m| m.urls.as_ref())
    {
        for (key, patterns) in [
            ("validation.manifests.urls.allow", &urls.allow),
            ("validation.manifests.urls.deny", &urls.deny),
        ] {
            for pattern in patterns {
                regex::Regex::new(pattern).map_err(|e| {
                    ConfigError::invalid(
                        key,
                        format!("{pattern:?} is not a regular expression: {e}"),
                    )
                })?;
            }
        }
    }
    if config.catalog.as_ref().and_then(|c| c.maxentries) == Some(0) {
        return Err(ConfigError::invalid(
            "catalog.maxentries",
            "must be greater than 0",
        ));
    }
    Ok(warnings)
}

fn validate_storage(config: &Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    let storage = &config.storage;
    for (name, present) in [
        ("gcs", storage.gcs.is_some()),
        ("azure", storage.azure.is_some()),
        ("swift", storage.swift.is_some()),
        ("inmemory", storage.inmemory.is_some()),
    ] {
        if present {
            return Err(ConfigError::invalid(
                format!("storage.{name}"),
                "storage driver not supported by Berth (use filesystem, s3 or oss)",
            ));
        }
    }
    let drivers = [
        storage.filesystem.is_some(),
        storage.s3.is_some(),
        storage.oss.is_some(),
    ];
    match drivers.iter().filter(|present| **present).count() {
        1 => {}
        0 => {
            return Err(ConfigError::invalid(
                "storage",
                "no storage driver configured (filesystem, s3 or oss)",
            ));
        }
        _ => {
            return Err(ConfigError::invalid(
                "storage",
                "more than one storage driver configured",
            ));
        }
    }
    // The same resolution the driver runs at startup.
    if let Some(s3) = &storage.s3 {
        BucketSettings::from_s3(s3)?;
    }
    if let Some(oss) = &storage.oss {
        BucketSettings::from_oss(oss)?;
    }
    if let Some(purging) = storage
        .maintenance
        .as_ref()
        .and_then(|m| m.uploadpurging.as_ref())
        && purging.enabled
        && purging.interval.0.is_zero()
    {
        return Err(ConfigError::invalid(
            "storage.maintenance.uploadpurging.interval",
            "must be greater than 0",
        ));
    }
    if storage.cache.is_some() {
        warnings.push(
            "storage.cache is not used by Berth (blob metadata is read from storage) and is ignored"
                .into(),
        );
    }
    if storage.tag.is_some() {
        warnings.push("storage.tag is not used by Berth and is ignored".into());
    }
    if storage.filesystem.is_some() && storage.redirect.as_ref().is_some_and(|r| !r.disable) {
        warnings.push(
            "storage.redirect has no effect on filesystem storage; blobs are served directly"
                .into(),
        );
    }
    Ok(())
}

fn validate_log(config: &Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    if let Some(level) = &config.log.level
        && !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str())
    {
        return Err(ConfigError::invalid(
            "log.level",
            format!("{level:?} is not one of error, warn, info, debug, trace"),
        ));
    }
    if let Some(formatter) = &config.log.formatter
        && !LOG_FORMATTERS.contains(&formatter.as_str())
    {
        return Err(ConfigError::invalid(
            "log.formatter",
            format!("{formatter:?} is not one of text, json, logstash"),
        ));
    }
    if config.loglevel.is_some() {
        warnings.push("loglevel is deprecated; use log.level".into());
    }
    Ok(())
}

fn validate_http(config: &Config, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    let http = &config.http;
    if http.host.is_some() {
        warnings.push(
            "http.host is not used: Berth answers with relative Location URLs, which every \
             client resolves against the address it used"
                .into(),
        );
    }
    if http.relativeurls == Some(false) {
        warnings
            .push("http.relativeurls: false is ignored: Location URLs are always relative".into());
    }
    if http.http2.is_some() {
        warnings.push("http.http2 is ignored: HTTP/2 is always offered (TLS ALPN)".into());
    }
    if http.h2c.is_some() {
        warnings.push(
            "http.h2c is ignored: cleartext HTTP/2 with prior knowledge is always accepted".into(),
        );
    }
    if http.net.as_deref().is_some_and(|net| net != "tcp") {
        return Err(ConfigError::invalid("http.net", "only tcp is supported"));
    }
    if http
        .prefix
        .as_deref()
        .is_some_and(|p| !p.is_empty() && p != "/")
    {
        return Err(ConfigError::invalid(
            "http.prefix",
            "a URL prefix is not supported",
        ));
    }
    split_listen_addr(&http.addr).map_err(|message| ConfigError::invalid("http.addr", message))?;
    if let Some(debug_addr) = http.debug_addr() {
        split_listen_addr(debug_addr)
            .map_err(|message| ConfigError::invalid("http.debug.addr", message))?;
    }
    validate_prometheus(http, warnings)?;
    if http
        .timeouts
        .as_ref()
        .and_then(|t| t.bodyidle)
        .is_some_and(|d| d.0.is_zero())
    {
        return Err(ConfigError::invalid(
            "http.timeouts.bodyidle",
            "must be greater than 0",
        ));
    }
    if http.limits.as_ref().and_then(|l| l.streamsperconnection) == Some(0) {
        return Err(ConfigError::invalid(
            "http.limits.streamsperconnection",
            "must be greater than 0",
        ));
    }
    if http.limits.as_ref().and_then(|l| l.concurrentuploads) == Some(0) {
        return Err(ConfigError::invalid(
            "http.limits.concurrentuploads",
            "must be greater than 0",
        ));
    }
    if let Some(tls) = &http.tls {
        if tls.letsencrypt.is_some() {
            return Err(ConfigError::invalid(
                "http.tls.letsencrypt",
                "Let's Encrypt is not supported; use cert-manager or mount a certificate",
            ));
        }
        match (&tls.certificate, &tls.key) {
            (Some(_), Some(_)) => {}
            (None, None) if tls.clientcas.is_empty() => {}
            (None, _) => {
                return Err(ConfigError::invalid(
                    "http.tls.certificate",
                    "is required for TLS",
                ));
            }
            (_, None) => return Err(ConfigError::invalid("http.tls.key", "is required for TLS")),
        }
        match tls.minimumtls.as_deref() {
            None | Some("tls1.2") | Some("tls1.3") => {}
            // distribution accepts these; a config carried over keeps starting, served no lower
            // than TLS 1.2 (rustls has no older versions).
            Some(old @ ("tls1.0" | "tls1.1")) => warnings.push(format!(
                "http.tls.minimumtls {old} is below TLS 1.2, the oldest version Berth serves: using tls1.2"
            )),
            Some(other) => {
                return Err(ConfigError::invalid(
                    "http.tls.minimumtls",
                    format!("{other:?} is not supported (tls1.2 or tls1.3)"),
                ));
            }
        }
        if tls.ciphersuites.is_some() {
            warnings.push("http.tls.ciphersuites is ignored; rustls uses its safe defaults".into());
        }
    }
    Ok(())
}

fn validate_auth(config: &Config) -> Result<(), ConfigError> {
    let Some(auth) = &config.auth else {
        return Ok(());
    };
    let configured = [
        auth.htpasswd.is_some(),
        auth.token.is_some(),
        auth.silly.is_some(),
        auth.none.is_some(),
    ];
    if configured.iter().filter(|c| **c).count() > 1 {
        return Err(ConfigError::invalid(
            "auth",
            "configure only one auth method",
        ));
    }
    if auth.token.is_some() {
        return Err(ConfigError::invalid(
            "auth.token",
            "token auth is not supported yet",
        ));
    }
    if auth.silly.is_some() {
        return Err(ConfigError::invalid(
            "auth.silly",
            "silly auth is not supported",
        ));
    }
    if let Some(htpasswd) = &auth.htpasswd
        && htpasswd.path.as_os_str().is_empty()
    {
        return Err(ConfigError::invalid("auth.htpasswd.path", "must be set"));
    }
    if let Some(htpasswd) = &auth.htpasswd
        && htpasswd.failurewindow.is_some_and(|w| w.0.is_zero())
    {
        return Err(ConfigError::invalid(
            "auth.htpasswd.failurewindow",
            "must be greater than 0",
        ));
    }
    Ok(())
}

/// `http.debug.prometheus`: the path must be one a request can have, and distinct from health.
fn validate_prometheus(http: &HttpConfig, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    let enabled = http
        .debug
        .as_ref()
        .and_then(|d| d.prometheus.as_ref())
        .is_some_and(|p| p.enabled);
    if enabled && http.debug_addr().is_none() {
        warnings.push(
            "http.debug.prometheus.enabled has no effect without http.debug.addr; /metrics stays on http.addr"
                .into(),
        );
    }
    if let Some(path) = http.debug_metrics_path() {
        if !path.starts_with('/') {
            return Err(ConfigError::invalid(
                "http.debug.prometheus.path",
                format!("{path:?} must start with /"),
            ));
        }
        if path == DEBUG_HEALTH_PATH {
            return Err(ConfigError::invalid(
                "http.debug.prometheus.path",
                format!("{path} is the debug listener's health endpoint"),
            ));
        }
    }
    Ok(())
}

/// Splits distribution's listen address form (`:5000`, `host:5000`,
/// `[::1]:5000`) into a host (empty = all interfaces) and a port.
pub fn split_listen_addr(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} must be [host]:port"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{addr:?} has an invalid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::super::parse_config;
    use super::*;

    fn check(yaml: &str) -> Result<Vec<String>, String> {
        parse_config(yaml, Vec::new())
            .map(|l| l.warnings)
            .map_err(|e| e.to_string())
    }

    const FS: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /r\n";

    #[test]
    fn rejects_invalid_settings_by_key() {
        let cases = [
            ("version: 0.2\nstorage: {filesystem: {}}\n", "version"),
            ("version: 0.1\nstorage: {}\n", "storage"),
            (
                "version: 0.1\nstorage: {filesystem: {}, s3: {bucket: b, region: r}}\n",
                "storage",
            ),
            (
                "version: 0.1\nstorage: {inmemory: {}}\n",
                "storage.inmemory",
            ),
            (
                "version: 0.1\nstorage: {s3: {bucket: b, region: r, objectacl: public-read}}\n",
                "storage.s3.objectacl",
            ),
            (
                "version: 0.1\nstorage: {oss: {bucket: b, region: oss-cn-hangzhou}}\n",
                "storage.oss.accesskeyid",
            ),
            ("version: 0.1\nstorage: {gcs: {bucket: x}}\n", "storage.gcs"),
            (
                "version: 0.1\nstorage: {s3: {bucket: ''}}\n",
                "storage.s3.bucket",
            ),
            (&format!("{FS}log: {{level: loud}}\n"), "log.level"),
            (&format!("{FS}http: {{addr: nowhere}}\n"), "http.addr"),
            (&format!("{FS}http: {{addr: ':99999'}}\n"), "http.addr"),
            (
                &format!("{FS}http: {{addr: ':5000', net: unix}}\n"),
                "http.net",
            ),
            (
                &format!("{FS}http: {{tls: {{certificate: /c.pem}}}}\n"),
                "http.tls.key",
            ),
            (
                &format!("{FS}http: {{tls: {{certificate: /c, key: /k, minimumtls: ssl3}}}}\n"),
                "http.tls.minimumtls",
            ),
            (
                &format!("{FS}http: {{timeouts: {{bodyidle: 0s}}}}\n"),
                "http.timeouts.bodyidle",
            ),
            (
                &format!("{FS}http: {{limits: {{concurrentuploads: 0}}}}\n"),
                "http.limits.concurrentuploads",
            ),
            (
                &format!("{FS}auth: {{token: {{realm: x}}}}\n"),
                "auth.token",
            ),
            (
                &format!("{FS}auth: {{htpasswd: {{path: /h, failurewindow: 0s}}}}\n"),
                "auth.htpasswd.failurewindow",
            ),
            (&format!("{FS}proxy: {{remoteurl: https://x}}\n"), "proxy"),
            (
                &format!("{FS}validation: {{manifests: {{indexes: {{platforms: some}}}}}}\n"),
                "validation.manifests.indexes.platforms",
            ),
            (
                &format!("{FS}validation: {{manifests: {{urls: {{deny: ['(']}}}}}}\n"),
                "validation.manifests.urls.deny",
            ),
        ];
        for (yaml, key) in cases {
            let err = check(yaml).unwrap_err();
            assert!(err.contains(&format!("key {key}:")), "{yaml} -> {err}");
        }
    }

    #[test]
    fn accepts_berth_body_timeout_and_upload_limit() {
        let yaml =
            format!("{FS}http: {{timeouts: {{bodyidle: 5s}}, limits: {{concurrentuploads: 8}}}}\n");
        assert_eq!(check(&yaml).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn accepts_berth_failed_login_limits() {
        let yaml = format!(
            "{FS}auth: {{htpasswd: {{path: /h, failurelimit: 5, userfailurelimit: 0, failurewindow: 30s}}}}\n"
        );
        assert_eq!(check(&yaml).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn accepts_distribution_examples_with_warnings_for_unsupported_extras() {
        let warnings = check(&format!(
            "{FS}notifications: {{endpoints: []}}\nhttp:\n  addr: 127.0.0.1:5000\n  secret: s3cr3t\n  tls:\n    certificate: /c\n    key: /k\n    ciphersuites: [TLS_AES_128_GCM_SHA256]\n"
        ))
        .unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        // distribution's stock config has a blob descriptor cache.
        let warnings = check(
            "version: 0.1\nstorage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: /var/lib/registry\n",
        )
        .unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("storage.cache"), "{warnings:?}");
        // Every accepted but unused http key warns, naming itself.
        let warnings = check(&format!(
            "{FS}http: {{host: 'https://r.example.com', relativeurls: false, http2: {{disabled: true}}, h2c: {{enabled: true}}}}\n"
        ))
        .unwrap();
        for key in ["http.host", "http.relativeurls", "http.http2", "http.h2c"] {
            assert!(
                warnings.iter().any(|w| w.starts_with(key)),
                "{key}: {warnings:?}"
            );
        }
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(
            check(&format!("{FS}http: {{relativeurls: true}}\n"))
                .unwrap()
                .is_empty()
        );
        // Older TLS minimums from distribution configs start, served as TLS 1.2.
        for old in ["tls1.0", "tls1.1"] {
            let warnings = check(&format!(
                "{FS}http: {{tls: {{certificate: /c, key: /k, minimumtls: {old}}}}}\n"
            ))
            .unwrap();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].contains(old) && warnings[0].contains("using tls1.2"),
                "{warnings:?}"
            );
        }
    }

    #[test]
    fn checks_the_debug_listener_and_its_metrics_path() {
        let debug = |section: &str| check(&format!("{FS}http: {{debug: {section}}}\n"));
        for (section, key) in [
            ("{addr: nowhere}", "http.debug.addr"),
            (
                "{addr: ':5001', prometheus: {enabled: true, path: metrics}}",
                "http.debug.prometheus.path",
            ),
            (
                "{addr: ':5001', prometheus: {enabled: true, path: /debug/health}}",
                "http.debug.prometheus.path",
            ),
        ] {
            let err = debug(section).unwrap_err();
            assert!(err.contains(&format!("key {key}:")), "{section} -> {err}");
        }
        assert_eq!(
            debug("{addr: ':5001', prometheus: {enabled: true, path: /prom}}").unwrap(),
            Vec::<String>::new()
        );
        // distribution ignores an empty addr (no listener), and so does Berth.
        assert_eq!(debug("{addr: ''}").unwrap(), Vec::<String>::new());
        let warnings = debug("{prometheus: {enabled: true}}").unwrap();
        assert!(
            warnings.len() == 1 && warnings[0].contains("without http.debug.addr"),
            "{warnings:?}"
        );
    }

    #[test]
    fn splits_listen_addresses() {
        assert_eq!(split_listen_addr(":5000").unwrap(), (String::new(), 5000));
        assert_eq!(split_listen_addr("[::1]:80").unwrap(), ("::1".into(), 80));
        assert_eq!(
            split_listen_addr("localhost:1").unwrap(),
            ("localhost".into(), 1)
        );
    }
}
