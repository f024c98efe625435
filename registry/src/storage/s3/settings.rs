//! Resolves `storage.s3` and `storage.oss` into one description of an
//! S3-compatible bucket (endpoint, addressing style, credentials, part
//! sizes, storage class, encryption). Pure: config check and startup use
//! the same rules, and every refusal names the key.

use std::fmt;

use crate::config::{ConfigError, OssConfig, S3Config};

/// S3's smallest part (all but the last part of a multipart upload).
pub const MIN_CHUNK_SIZE: u64 = 5 << 20;
/// S3's largest part, and the largest single CopyObject.
pub const MAX_CHUNK_SIZE: u64 = 5 << 30;
/// distribution's defaults.
pub const DEFAULT_CHUNK_SIZE: u64 = 10 << 20;
pub const DEFAULT_COPY_CHUNK_SIZE: u64 = 32 << 20;
pub const DEFAULT_COPY_THRESHOLD: u64 = 32 << 20;
pub const DEFAULT_COPY_CONCURRENCY: u64 = 100;
/// Berth bounds parallel part copies per copy whatever the config says.
pub const MAX_COPY_CONCURRENCY: u64 = 32;

/// Storage classes distribution accepts, plus `NONE` (send no header, for
/// stores that do not know the header).
const STORAGE_CLASSES: &[&str] = &[
    "NONE",
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
];

/// Where credentials come from.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// From the config (`accesskey`/`secretkey`, `accesskeyid`/`accesskeysecret`).
    Static {
        access_key: String,
        secret_key: String,
        session_token: Option<String>,
    },
    /// The default chain: `AWS_*` environment variables, web identity
    /// (IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), ECS task
    /// role, EC2 instance metadata.
    DefaultChain,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Static { access_key, .. } => f
                .debug_struct("Static")
                .field("access_key", access_key)
                .finish_non_exhaustive(),
            Credentials::DefaultChain => f.write_str("DefaultChain"),
        }
    }
}

/// Server-side encryption of written objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    None,
    /// `x-amz-server-side-encryption: AES256`.
    S3Managed,
    /// `aws:kms` with this key (or the account's default key).
    Kms(Option<String>),
}

/// Which config section this came from (used in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    S3,
    Oss,
}

impl Flavour {
    pub fn section(self) -> &'static str {
        match self {
            Flavour::S3 => "storage.s3",
            Flavour::Oss => "storage.oss",
        }
    }
}

/// A resolved bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSettings {
    pub flavour: Flavour,
    pub bucket: String,
    /// The region requests are signed for.
    pub region: String,
    /// `scheme://host[:port]` of the service, without the bucket; `None`
    /// for AWS's regional endpoints.
    pub endpoint: Option<String>,
    /// Bucket in the host name (`bucket.host`) instead of the path.
    pub virtual_hosted: bool,
    pub skip_verify: bool,
    pub credentials: Credentials,
    /// Key prefix without leading or trailing `/` (may be empty).
    pub root: String,
    pub chunk_size: u64,
    pub copy_chunk_size: u64,
    pub copy_threshold: u64,
    pub copy_concurrency: usize,
    /// `None`: send no storage class header.
    pub storage_class: Option<String>,
    pub encryption: Encryption,
    pub user_agent: Option<String>,
}

impl BucketSettings {
    /// The URL of the bucket itself, as requests address it.
    pub fn bucket_url(&self) -> String {
        match (&self.endpoint, self.virtual_hosted) {
            (Some(endpoint), false) => {
                format!("{}/{}", endpoint.trim_end_matches('/'), self.bucket)
            }
            (Some(endpoint), true) => match endpoint.split_once("://") {
                Some((scheme, host)) => {
                    format!("{scheme}://{}.{}", self.bucket, host.trim_end_matches('/'))
                }
                None => format!("https://{}.{endpoint}", self.bucket),
            },
            (None, true) => format!("https://{}.s3.{}.amazonaws.com", self.bucket, self.region),
            (None, false) => format!("https://s3.{}.amazonaws.com/{}", self.region, self.bucket),
        }
    }

    /// One line for logs and `config check`: where objects go and how they
    /// are addressed, without credentials.
    pub fn describe(&self) -> String {
        let credentials = match &self.credentials {
            Credentials::Static { access_key, .. } => format!("access key {access_key}"),
            Credentials::DefaultChain => "the default credential chain".to_owned(),
        };
        let root = if self.root.is_empty() {
            String::new()
        } else {
            format!(" under {}/", self.root)
        };
        format!(
            "{} bucket {} at {}{root} ({}, region {}, {credentials})",
            self.flavour.section(),
            self.bucket,
            self.bucket_url(),
            if self.virtual_hosted {
                "virtual-hosted"
            } else {
                "path style"
            },
            self.region,
        )
    }

    /// The object key of a storage path.
    pub fn key(&self, path: &str) -> String {
        if self.root.is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.root)
        }
    }

    /// `storage.s3`, as distribution's s3-aws driver reads it.
    pub fn from_s3(config: &S3Config) -> Result<Self, ConfigError> {
        let key = |name: &str| format!("storage.s3.{name}");
        let bucket = required(&config.bucket, &key("bucket"))?;
        let region = config
            .region
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ConfigError::invalid(key("region"), "is required"))?
            .to_owned();
        if config.v4auth == Some(false) {
            return Err(ConfigError::invalid(
                key("v4auth"),
                "signature version 2 is not supported: Berth signs requests with AWS Signature Version 4",
            ));
        }
        if let Some(acl) = config.objectacl.as_deref()
            && acl != "private"
        {
            return Err(ConfigError::invalid(
                key("objectacl"),
                format!(
                    "{acl:?} is not supported: Berth writes objects with the bucket's default (private) ACL"
                ),
            ));
        }
        let secure = config.secure.unwrap_or(true);
        let endpoint = match config.regionendpoint.as_deref().map(str::trim) {
            Some(endpoint) if !endpoint.is_empty() => {
                Some(endpoint_url(endpoint, secure, &key("regionendpoint"))?)
            }
            _ if config.usedualstack == Some(true) => {
                Some(format!("https://s3.dualstack.{region}.amazonaws.com"))
            }
            _ if !secure => Some(format!("http://s3.{region}.amazonaws.com")),
            _ => None,
        };
        let path_style = config
            .forcepathstyle
            .unwrap_or(config.regionendpoint.is_some());
        let credentials = match (&config.accesskey, &config.secretkey) {
            (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Credentials::Static {
                access_key: a.clone(),
                secret_key: s.clone(),
                session_token: config.sessiontoken.clone().filter(|t| !t.is_empty()),
            },
            (Some(a), _) if !a.is_empty() => {
                return Err(ConfigError::invalid(
                    key("secretkey"),
                    "is required with accesskey",
                ));
            }
            (_, Some(s)) if !s.is_empty() => {
                return Err(ConfigError::invalid(
                    key("accesskey"),
                    "is required with secretkey",
                ));
            }
            _ => Credentials::DefaultChain,
        };
        let encryption = match (config.encrypt.unwrap_or(false), &config.keyid) {
            (false, _) => Encryption::None,
            (true, Some(id)) if !id.is_empty() => Encryption::Kms(Some(id.clone())),
            (true, _) => Encryption::S3Managed,
        };
        let storage_class = match config.storageclass.as_deref().map(str::to_ascii_uppercase) {
            None => Some("STANDARD".to_owned()),
            Some(class) if class == "NONE" => None,
            Some(class) if STORAGE_CLASSES.contains(&class.as_str()) => Some(class),
            Some(class) => {
                return Err(ConfigError::invalid(
                    key("storageclass"),
                    format!("{class:?} is not one of {}", STORAGE_CLASSES.join(", ")),
                ));
            }
        };
        let copy_concurrency = bounded(
            config.multipartcopymaxconcurrency,
            DEFAULT_COPY_CONCURRENCY,
            1,
            u64::MAX,
            &key("multipartcopymaxconcurrency"),
        )?
        .min(MAX_COPY_CONCURRENCY);
        Ok(BucketSettings {
            flavour: Flavour::S3,
            bucket,
            region,
            endpoint,
            virtual_hosted: !path_style,
            skip_verify: config.skipverify.unwrap_or(false),
            credentials,
            root: root_prefix(config.rootdirectory.as_deref()),
            chunk_size: chunk_size(config.chunksize, &key("chunksize"))?,
            copy_chunk_size: bounded(
                config.multipartcopychunksize,
                DEFAULT_COPY_CHUNK_SIZE,
                MIN_CHUNK_SIZE,
                MAX_CHUNK_SIZE,
                &key("multipartcopychunksize"),
            )?,
            copy_threshold: bounded(
                config.multipartcopythresholdsize,
                DEFAULT_COPY_THRESHOLD,
                0,
                MAX_CHUNK_SIZE,
                &key("multipartcopythresholdsize"),
            )?,
            copy_concurrency: usize::try_from(copy_concurrency).unwrap_or(1),
            storage_class,
            encryption,
            user_agent: config.useragent.clone().filter(|u| !u.is_empty()),
        })
    }

    /// `storage.oss`, served through OSS's S3-compatible API: virtual-hosted
    /// requests to `<bucket>.<region>[-internal].aliyuncs.com` signed for the
    /// region without its `oss-` prefix, or path style when `endpoint` is an
    /// IP address.
    pub fn from_oss(config: &OssConfig) -> Result<Self, ConfigError> {
        let key = |name: &str| format!("storage.oss.{name}");
        let bucket = required(&config.bucket, &key("bucket"))?;
        let region = required(&config.region, &key("region"))?;
        let secure = config.secure.unwrap_or(true);
        let (endpoint, virtual_hosted) = match config.endpoint.as_deref().map(str::trim) {
            Some(endpoint) if !endpoint.is_empty() => {
                let url = endpoint_url(endpoint, secure, &key("endpoint"))?;
                let address = is_address(&url);
                (url, !address)
            }
            _ => {
                let internal = if config.internal.unwrap_or(false) {
                    "-internal"
                } else {
                    ""
                };
                let scheme = if secure { "https" } else { "http" };
                (format!("{scheme}://{region}{internal}.aliyuncs.com"), true)
            }
        };
        let credentials = match (&config.accesskeyid, &config.accesskeysecret) {
            (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Credentials::Static {
                access_key: a.clone(),
                secret_key: s.clone(),
                session_token: None,
            },
            _ => {
                return Err(ConfigError::invalid(
                    key("accesskeyid"),
                    "accesskeyid and accesskeysecret are required",
                ));
            }
        };
        let encryption = match (config.encrypt.unwrap_or(false), &config.encryptionkeyid) {
            (false, _) => Encryption::None,
            (true, Some(id)) if !id.is_empty() => Encryption::Kms(Some(id.clone())),
            (true, _) => Encryption::S3Managed,
        };
        Ok(BucketSettings {
            flavour: Flavour::Oss,
            bucket,
            region: region
                .strip_prefix("oss-")
                .unwrap_or(region.as_str())
                .to_owned(),
            endpoint: Some(endpoint),
            virtual_hosted,
            skip_verify: config.skipverify.unwrap_or(false),
            credentials,
            root: root_prefix(config.rootdirectory.as_deref()),
            chunk_size: chunk_size(config.chunksize, &key("chunksize"))?,
            copy_chunk_size: DEFAULT_COPY_CHUNK_SIZE,
            copy_threshold: DEFAULT_COPY_THRESHOLD,
            copy_concurrency: 8,
            // OSS's S3 API takes its own class names; leave the bucket's default.
            storage_class: None,
            encryption,
            user_agent: None,
        })
    }
}

fn required(value: &str, key: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        Err(ConfigError::invalid(key, "is required"))
    } else {
        Ok(value.to_owned())
    }
}

fn chunk_size(value: Option<u64>, key: &str) -> Result<u64, ConfigError> {
    bounded(
        value,
        DEFAULT_CHUNK_SIZE,
        MIN_CHUNK_SIZE,
        MAX_CHUNK_SIZE,
        key,
    )
}

fn bounded(
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
    key: &str,
) -> Result<u64, ConfigError> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(ConfigError::invalid(
            key,
            format!("{value} is not between {min} and {max}"),
        ));
    }
    Ok(value)
}

/// distribution's `rootdirectory` becomes a key prefix: `/registry/` -> `registry`.
fn root_prefix(root: Option<&str>) -> String {
    root.unwrap_or("").trim_matches('/').to_owned()
}

/// An endpoint as a URL: a bare host gets `https://` (or `http://` when not
/// `secure`); a URL keeps its scheme.
fn endpoint_url(endpoint: &str, secure: bool, key: &str) -> Result<String, ConfigError> {
    let url = if endpoint.contains("://") {
        endpoint.to_owned()
    } else if secure {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
    let host = rest.split('/').next().unwrap_or("");
    if !matches!(scheme, "http" | "https") || host.is_empty() || rest.trim_end_matches('/') != host
    {
        return Err(ConfigError::invalid(
            key,
            format!("{endpoint:?} is not an http(s) URL of the form scheme://host[:port]"),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Whether a URL's host is an IP address (path style is then the only option).
fn is_address(url: &str) -> bool {
    let host_port = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host.parse::<std::net::IpAddr>().is_ok() || host == "localhost"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(yaml: &str) -> Result<BucketSettings, ConfigError> {
        BucketSettings::from_s3(&serde_yaml::from_str(yaml).unwrap())
    }

    fn oss(yaml: &str) -> Result<BucketSettings, ConfigError> {
        BucketSettings::from_oss(&serde_yaml::from_str(yaml).unwrap())
    }

    fn message(result: Result<BucketSettings, ConfigError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn s3_defaults_address_aws_virtual_hosted() {
        let settings = s3("bucket: b\nregion: eu-west-1").unwrap();
        assert_eq!(
            settings.bucket_url(),
            "https://b.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(settings.credentials, Credentials::DefaultChain);
        assert_eq!(settings.chunk_size, DEFAULT_CHUNK_SIZE);
        assert_eq!(settings.storage_class.as_deref(), Some("STANDARD"));
        assert_eq!(settings.key("docker/registry/v2/x"), "docker/registry/v2/x");
    }

    #[test]
    fn s3_region_endpoint_means_path_style_unless_told_otherwise() {
        let settings = s3(
            "bucket: reg\nregion: us-east-1\nregionendpoint: http://127.0.0.1:8333\n\
             accesskey: AK\nsecretkey: SK\nrootdirectory: /registry/\nstorageclass: none\n\
             chunksize: \"5242880\"\nencrypt: \"true\"\nkeyid: k1",
        )
        .unwrap();
        assert_eq!(settings.bucket_url(), "http://127.0.0.1:8333/reg");
        assert_eq!(settings.key("docker/x"), "registry/docker/x");
        assert_eq!(settings.storage_class, None);
        assert_eq!(settings.chunk_size, MIN_CHUNK_SIZE);
        assert_eq!(settings.encryption, Encryption::Kms(Some("k1".into())));
        let hosted = s3(
            "bucket: reg\nregion: r\nregionendpoint: https://s3.example.com\nforcepathstyle: false",
        )
        .unwrap();
        assert_eq!(hosted.bucket_url(), "https://reg.s3.example.com");
        let dual = s3("bucket: b\nregion: us-west-2\nusedualstack: true").unwrap();
        assert_eq!(
            dual.endpoint.as_deref(),
            Some("https://s3.dualstack.us-west-2.amazonaws.com")
        );
    }

    #[test]
    fn s3_refusals_name_the_key() {
        for (yaml, expected) in [
            ("region: r", "storage.s3.bucket"),
            ("bucket: b", "storage.s3.region"),
            ("bucket: b\nregion: r\nv4auth: false", "storage.s3.v4auth"),
            (
                "bucket: b\nregion: r\nobjectacl: public-read",
                "storage.s3.objectacl",
            ),
            ("bucket: b\nregion: r\naccesskey: a", "storage.s3.secretkey"),
            (
                "bucket: b\nregion: r\nchunksize: 1024",
                "storage.s3.chunksize",
            ),
            (
                "bucket: b\nregion: r\nstorageclass: DEEP_SPACE",
                "storage.s3.storageclass",
            ),
            (
                "bucket: b\nregion: r\nregionendpoint: ftp://x",
                "storage.s3.regionendpoint",
            ),
            (
                "bucket: b\nregion: r\nregionendpoint: http://x/path",
                "storage.s3.regionendpoint",
            ),
        ] {
            let error = message(s3(yaml));
            assert!(error.contains(expected), "{yaml}: {error}");
        }
        assert!(s3("bucket: b\nregion: r\nobjectacl: private").is_ok());
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let settings =
            s3("bucket: b\nregion: r\naccesskey: AKIDEXAMPLE\nsecretkey: s3cr3t-value").unwrap();
        let debug = format!("{settings:?}");
        assert!(debug.contains("AKIDEXAMPLE"));
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
    }

    #[test]
    fn oss_uses_virtual_hosted_aliyun_endpoints() {
        let public =
            oss("bucket: images\nregion: oss-cn-hangzhou\naccesskeyid: a\naccesskeysecret: s")
                .unwrap();
        assert_eq!(
            public.bucket_url(),
            "https://images.oss-cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(public.region, "cn-hangzhou");
        assert_eq!(public.flavour, Flavour::Oss);
        let internal = oss(
            "bucket: images\nregion: oss-cn-hangzhou\ninternal: \"true\"\nsecure: false\n\
             accesskeyid: a\naccesskeysecret: s",
        )
        .unwrap();
        assert_eq!(
            internal.bucket_url(),
            "http://images.oss-cn-hangzhou-internal.aliyuncs.com"
        );
        let address = oss(
            "bucket: images\nregion: oss-cn-hangzhou\nendpoint: 127.0.0.1:8333\nsecure: false\n\
             accesskeyid: a\naccesskeysecret: s",
        )
        .unwrap();
        assert_eq!(address.bucket_url(), "http://127.0.0.1:8333/images");
        let custom = oss(
            "bucket: images\nregion: oss-cn-beijing\nendpoint: oss.example.cn\n\
             accesskeyid: a\naccesskeysecret: s",
        )
        .unwrap();
        assert_eq!(custom.bucket_url(), "https://images.oss.example.cn");
        assert!(
            message(oss("bucket: b\nregion: oss-cn-hangzhou")).contains("storage.oss.accesskeyid")
        );
        assert!(
            message(oss("bucket: b\naccesskeyid: a\naccesskeysecret: s"))
                .contains("storage.oss.region")
        );
    }
}
