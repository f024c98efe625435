//! validate: spec + observed Secrets + operator defaults -> a resolved
//! [`ValidatedRegistry`], or the reason it cannot be rendered (reported as a
//! Degraded condition while the running registry keeps running). Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use registry::config::{OssConfig, S3Config};
use registry::storage::s3::settings::BucketSettings;

use super::model::*;
use super::observed::Observed;
use crate::crd::{
    AccessMode, GcMode, HtpasswdSpec, LogFormat, LogLevel, Registry, S3CredentialsRef, ServiceType,
    TlsMode, TlsVersion,
};

/// Defaults that come from how the operator was installed, not from the spec.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub image: String,
}

/// Why a Registry cannot be rendered as specified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// One CamelCase word for the condition reason.
    pub reason: &'static str,
    pub message: String,
}

fn invalid(reason: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        reason,
        message: message.into(),
    }
}

const DEFAULT_GC_SCHEDULE: &str = "0 3 * * *";

/// Validates and resolves defaults.
pub fn validate(
    registry: &Registry,
    observed: &Observed,
    defaults: &Defaults,
) -> Result<ValidatedRegistry, Invalid> {
    let spec = &registry.spec;
    let name = registry
        .metadata
        .name
        .clone()
        .ok_or_else(|| invalid("InvalidSpec", "the Registry has no name"))?;
    let namespace = registry
        .metadata
        .namespace
        .clone()
        .ok_or_else(|| invalid("InvalidSpec", "the Registry has no namespace"))?;
    let owner = registry
        .controller_owner_ref(&())
        .ok_or_else(|| invalid("InvalidSpec", "the Registry has no uid yet"))?;

    let storage = storage(registry, &name, observed)?;
    let autoscaling = spec.autoscaling.as_ref().map(|a| Autoscaling {
        min_replicas: a.min_replicas,
        max_replicas: a.max_replicas,
        target_cpu: a.target_cpu_utilization_percentage.unwrap_or(80),
    });
    let replicas = spec.replicas.unwrap_or(1);
    // Admission rejects these, but old objects or a disabled webhook could slip through.
    if (replicas > 1 || autoscaling.is_some()) && !storage.shared() {
        return Err(invalid(
            "StorageNotShared",
            "more than one replica needs shared storage (s3 or a ReadWriteMany claim)",
        ));
    }

    let tls_versions_13 = spec
        .tls
        .as_ref()
        .and_then(|t| t.min_version)
        .is_some_and(|v| v == TlsVersion::Tls13);
    let tls = match spec.tls.as_ref().and_then(|t| t.mode).unwrap_or_default() {
        TlsMode::SelfSigned => Tls::SelfSigned {
            dns_names: extra_dns_names(registry),
            tls13_only: tls_versions_13,
        },
        TlsMode::Secret => {
            let secret = spec
                .tls
                .as_ref()
                .and_then(|t| t.secret_name.clone())
                .ok_or_else(|| invalid("InvalidSpec", "tls.mode Secret needs tls.secretName"))?;
            let data = require_secret(observed, &secret)?;
            for key in ["tls.crt", "tls.key"] {
                if !data.data.contains_key(key) {
                    return Err(invalid(
                        "SecretKeyMissing",
                        format!("TLS Secret {secret} has no key {key}"),
                    ));
                }
            }
            Tls::Secret {
                secret,
                tls13_only: tls_versions_13,
            }
        }
        TlsMode::CertManager if !observed.cert_manager_available => {
            return Err(invalid(
                "CertManagerNotInstalled",
                "tls.mode CertManager needs cert-manager (certificates.cert-manager.io/v1) in the cluster",
            ));
        }
        TlsMode::CertManager => Tls::CertManager {
            issuer: spec
                .tls
                .as_ref()
                .and_then(|t| t.issuer_ref.clone())
                .ok_or_else(|| {
                    invalid("InvalidSpec", "tls.mode CertManager needs tls.issuerRef")
                })?,
            dns_names: extra_dns_names(registry),
            tls13_only: tls_versions_13,
        },
        TlsMode::Disabled => Tls::Disabled,
    };

    let auth = spec
        .auth
        .as_ref()
        .and_then(|a| a.htpasswd.as_ref())
        .map(|h| auth(h, observed))
        .transpose()?;
    let gc = gc(registry, &storage)?;

    let purging = spec.upload_purging.clone().unwrap_or_default();
    let service = spec.service.clone().unwrap_or_default();
    let pod = spec.pod.clone().unwrap_or_default();
    let effective_replicas = autoscaling.as_ref().map_or(replicas, |a| a.min_replicas);
    let pdb = pdb(spec.pod_disruption_budget.as_ref(), effective_replicas);
    let log = spec.log.clone().unwrap_or_default();
    let service_monitor = spec
        .metrics
        .as_ref()
        .and_then(|m| m.service_monitor.as_ref())
        .filter(|sm| sm.enabled.unwrap_or(false) && observed.service_monitor_available)
        .map(|sm| ServiceMonitor {
            interval: sm.interval.clone().unwrap_or_else(|| "30s".into()),
            labels: sm.labels.clone().unwrap_or_default(),
        });

    Ok(ValidatedRegistry {
        namespace,
        generation: registry.metadata.generation,
        owner: OwnerReference {
            block_owner_deletion: Some(true),
            ..owner
        },
        replicas: if autoscaling.is_some() {
            None
        } else {
            Some(replicas)
        },
        image: spec.image.clone().unwrap_or_else(|| defaults.image.clone()),
        image_pull_policy: spec.image_pull_policy.clone(),
        storage,
        auth,
        tls,
        delete_enabled: spec.delete_enabled.unwrap_or(true),
        read_only: spec.read_only.unwrap_or(false),
        gc,
        upload_purging: UploadPurging {
            enabled: purging.enabled.unwrap_or(true),
            age: purging.age.unwrap_or_else(|| "168h".into()),
            interval: purging.interval.unwrap_or_else(|| "24h".into()),
        },
        service: Service {
            type_: service.type_.unwrap_or(ServiceType::ClusterIP),
            port: service.port.unwrap_or(REGISTRY_PORT),
            node_port: service.node_port,
            annotations: service.annotations.unwrap_or_default(),
            labels: service.labels.unwrap_or_default(),
        },
        ingress: spec.ingress.as_ref().map(|i| Ingress {
            class_name: i.class_name.clone(),
            hosts: i.hosts.clone(),
            tls_secret_name: i.tls_secret_name.clone(),
            annotations: i.annotations.clone().unwrap_or_default(),
        }),
        pod: Pod {
            resources: pod.resources,
            node_selector: pod.node_selector,
            tolerations: pod.tolerations,
            affinity: pod.affinity,
            topology_spread_constraints: pod.topology_spread_constraints,
            annotations: pod.annotations.unwrap_or_default(),
            labels: pod.labels.unwrap_or_default(),
            priority_class_name: pod.priority_class_name,
            service_account_annotations: pod.service_account_annotations.unwrap_or_default(),
        },
        pdb,
        autoscaling,
        service_monitor,
        network_policy: spec
            .network_policy
            .as_ref()
            .filter(|n| n.enabled.unwrap_or(true))
            .map(|n| n.ingress_from.clone().unwrap_or_default()),
        log: Log {
            level: log.level.unwrap_or(LogLevel::Info),
            format: log.format.unwrap_or(LogFormat::Json),
            access_log: log.access_log.unwrap_or(true),
        },
        node_access: spec
            .node_access
            .as_ref()
            .and_then(|n| n.enabled)
            .unwrap_or(false),
        name,
    })
}

fn extra_dns_names(registry: &Registry) -> Vec<String> {
    registry
        .spec
        .tls
        .as_ref()
        .and_then(|t| t.dns_names.clone())
        .unwrap_or_default()
}

fn require_secret<'a>(
    observed: &'a Observed,
    name: &str,
) -> Result<&'a super::observed::SecretData, Invalid> {
    observed
        .referenced_secrets
        .get(name)
        .and_then(Option::as_ref)
        .ok_or_else(|| invalid("SecretNotFound", format!("Secret {name} does not exist")))
}

fn storage(registry: &Registry, name: &str, observed: &Observed) -> Result<Storage, Invalid> {
    let spec = &registry.spec.storage;
    if let Some(pv) = &spec.persistent_volume {
        let retain = pv.retain_on_delete.unwrap_or(true);
        if let Some(existing) = &pv.existing_claim {
            // Access modes of a claim the user made are only known at runtime.
            let single_node = observed
                .claim
                .as_ref()
                .and_then(|c| c.spec.as_ref())
                .and_then(|s| s.access_modes.as_ref())
                .is_none_or(|modes| !modes.iter().any(|m| m == "ReadWriteMany"));
            if observed.claim.is_none() {
                return Err(invalid(
                    "ClaimNotFound",
                    format!("PersistentVolumeClaim {existing} does not exist"),
                ));
            }
            return Ok(Storage::Claim {
                claim_name: existing.clone(),
                create: None,
                retain: true,
                single_node,
            });
        }
        let modes: Vec<AccessMode> = pv
            .access_modes
            .clone()
            .unwrap_or_else(|| vec![AccessMode::ReadWriteOnce]);
        let size = pv
            .size
            .as_ref()
            .map_or_else(|| "10Gi".to_owned(), |q| q.0.clone());
        if let Some(current) = observed
            .claim
            .as_ref()
            .and_then(|c| c.spec.as_ref())
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            && quantity_bytes(&size)
                .zip(quantity_bytes(&current.0))
                .is_some_and(|(want, have)| want < have)
        {
            return Err(invalid(
                "ClaimCannotShrink",
                format!(
                    "storage.persistentVolume.size {size} is smaller than the claim's {}",
                    current.0
                ),
            ));
        }
        return Ok(Storage::Claim {
            claim_name: format!("{name}-data"),
            create: Some(ClaimSpec {
                size,
                storage_class_name: pv.storage_class_name.clone(),
                access_modes: modes.iter().map(|m| m.as_str().to_owned()).collect(),
            }),
            retain,
            single_node: !modes.contains(&AccessMode::ReadWriteMany),
        });
    }
    if let Some(empty) = &spec.empty_dir {
        return Ok(Storage::EmptyDir {
            size_limit: empty.size_limit.as_ref().map(|q| q.0.clone()),
            memory: empty.memory.unwrap_or(false),
        });
    }
    if let Some(s3) = &spec.s3 {
        return object_storage(
            ObjectDriver::S3(Box::new(S3Config {
                bucket: s3.bucket.clone(),
                region: Some(s3.region.clone().unwrap_or_else(|| "us-east-1".into())),
                regionendpoint: s3.endpoint.clone(),
                forcepathstyle: s3.force_path_style,
                rootdirectory: s3.root_directory.clone(),
                encrypt: s3.encrypt,
                keyid: s3.kms_key_id.clone(),
                storageclass: s3.storage_class.clone(),
                ..S3Config::default()
            })),
            s3.credentials_secret_ref.as_ref(),
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            s3.redirect.unwrap_or(false),
            observed,
        );
    }
    let oss = spec.oss.as_ref().ok_or_else(|| {
        invalid(
            "InvalidSpec",
            "set exactly one of storage.persistentVolume, emptyDir, s3, oss",
        )
    })?;
    object_storage(
        ObjectDriver::Oss(Box::new(OssConfig {
            bucket: oss.bucket.clone(),
            region: oss.region.clone(),
            endpoint: oss.endpoint.clone(),
            internal: oss.internal,
            secure: oss.secure,
            encrypt: oss.encrypt,
            encryptionkeyid: oss.kms_key_id.clone(),
            rootdirectory: oss.root_directory.clone(),
            ..OssConfig::default()
        })),
        Some(&oss.credentials_secret_ref),
        ("accessKeyId", "accessKeySecret"),
        oss.redirect.unwrap_or(false),
        observed,
    )
}

/// Object storage: the rendered driver section must be one the registry
/// serves (checked by the registry's own resolution, with stand-in keys
/// where the Secret supplies them), and the credentials Secret must hold
/// both keys.
fn object_storage(
    driver: ObjectDriver,
    reference: Option<&S3CredentialsRef>,
    default_keys: (&str, &str),
    redirect: bool,
    observed: &Observed,
) -> Result<Storage, Invalid> {
    let credentials = match reference {
        Some(reference) => {
            let data = require_secret(observed, &reference.name)?;
            let id_key = reference
                .access_key_id_key
                .clone()
                .unwrap_or_else(|| default_keys.0.into());
            let secret_key = reference
                .secret_access_key_key
                .clone()
                .unwrap_or_else(|| default_keys.1.into());
            for key in [&id_key, &secret_key] {
                if !data.data.contains_key(key) {
                    return Err(invalid(
                        "SecretKeyMissing",
                        format!(
                            "storage credentials Secret {} has no key {key}",
                            reference.name
                        ),
                    ));
                }
            }
            Some((reference.name.clone(), id_key, secret_key))
        }
        None => None,
    };
    let checked = match &driver {
        ObjectDriver::S3(config) => {
            let mut config = config.as_ref().clone();
            if credentials.is_some() {
                config.accesskey = Some("from-secret".into());
                config.secretkey = Some("from-secret".into());
            }
            BucketSettings::from_s3(&config).map(|_| ())
        }
        ObjectDriver::Oss(config) => {
            let mut config = config.as_ref().clone();
            config.accesskeyid = Some("from-secret".into());
            config.accesskeysecret = Some("from-secret".into());
            BucketSettings::from_oss(&config).map(|_| ())
        }
    };
    checked.map_err(|e| invalid("InvalidStorage", e.to_string()))?;
    Ok(Storage::S3(S3 {
        driver,
        credentials,
        redirect,
    }))
}

fn auth(spec: &HtpasswdSpec, observed: &Observed) -> Result<Auth, Invalid> {
    let source = match (&spec.users, &spec.existing_secret) {
        (Some(users), None) => {
            let mut resolved = Vec::with_capacity(users.len());
            for user in users {
                let reference = &user.password_secret_ref;
                let data = require_secret(observed, &reference.name)?;
                let password = data.text(&reference.key).ok_or_else(|| {
                    invalid(
                        "PasswordKeyMissing",
                        format!(
                            "Secret {} has no key {} for user {}",
                            reference.name, reference.key, user.name
                        ),
                    )
                })?;
                if password.is_empty() {
                    return Err(invalid(
                        "PasswordEmpty",
                        format!(
                            "the password of user {} (Secret {}) is empty",
                            user.name, reference.name
                        ),
                    ));
                }
                resolved.push(UserPassword {
                    name: user.name.clone(),
                    password,
                    source: format!("{}/{}/{}", data.uid, data.resource_version, reference.key),
                });
            }
            AuthSource::Users(resolved)
        }
        (None, Some(existing)) => {
            let data = require_secret(observed, &existing.name)?;
            let text = data.text(&existing.key).ok_or_else(|| {
                invalid(
                    "SecretKeyMissing",
                    format!("Secret {} has no key {}", existing.name, existing.key),
                )
            })?;
            registry::auth::Htpasswd::parse(&text).map_err(|e| {
                invalid("InvalidHtpasswd", format!("Secret {}: {e}", existing.name))
            })?;
            AuthSource::Existing {
                secret: existing.name.clone(),
                key: existing.key.clone(),
            }
        }
        _ => {
            return Err(invalid(
                "InvalidSpec",
                "set exactly one of auth.htpasswd.users and auth.htpasswd.existingSecret",
            ));
        }
    };
    Ok(Auth {
        realm: spec
            .realm
            .clone()
            .unwrap_or_else(|| "Berth Registry".into()),
        anonymous_read: spec.anonymous_read.unwrap_or(false),
        source,
    })
}

fn gc(registry: &Registry, storage: &Storage) -> Result<Option<Gc>, Invalid> {
    // A GC pod cannot reach another pod's emptyDir.
    if matches!(storage, Storage::EmptyDir { .. }) {
        return Ok(None);
    }
    let spec = registry.spec.gc.clone().unwrap_or_default();
    let schedule = spec.schedule.unwrap_or_else(|| DEFAULT_GC_SCHEDULE.into());
    schedule
        .parse::<croner::Cron>()
        .map_err(|e| invalid("InvalidSchedule", format!("gc.schedule {schedule:?}: {e}")))?;
    if let Some(zone) = &spec.time_zone {
        jiff::tz::TimeZone::get(zone).map_err(|_| {
            invalid(
                "InvalidTimeZone",
                format!("gc.timeZone {zone:?} is not a known IANA time zone"),
            )
        })?;
    }
    let min_age = spec.min_age.unwrap_or_else(|| "24h".into());
    registry::config::GoDuration::parse(&min_age)
        .map_err(|e| invalid("InvalidSpec", format!("gc.minAge: {e}")))?;
    Ok(Some(Gc {
        schedule,
        time_zone: spec.time_zone,
        suspend: spec.suspend.unwrap_or(false),
        delete_untagged: spec.delete_untagged.unwrap_or(false),
        mode: spec.mode.unwrap_or(GcMode::ReadOnly),
        dry_run: spec.dry_run.unwrap_or(false),
        min_age,
        successful_history: spec.successful_jobs_history_limit.unwrap_or(3),
        failed_history: spec.failed_jobs_history_limit.unwrap_or(3),
    }))
}

fn pdb(spec: Option<&crate::crd::PodDisruptionBudgetSpec>, replicas: i32) -> Option<Pdb> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let enabled = spec.and_then(|p| p.enabled).unwrap_or(replicas > 1);
    if !enabled {
        return None;
    }
    let spec = spec.cloned().unwrap_or_default();
    Some(match (spec.min_available, spec.max_unavailable) {
        (_, Some(max)) => Pdb::MaxUnavailable(max),
        (Some(min), None) => Pdb::MinAvailable(min),
        (None, None) => Pdb::MinAvailable(IntOrString::Int(1)),
    })
}

/// Bytes of a Kubernetes quantity like `10Gi`, `500M`, `1073741824`.
fn quantity_bytes(quantity: &str) -> Option<u128> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let factor: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    Some((value * factor as f64) as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_compare_by_bytes() {
        assert_eq!(quantity_bytes("10Gi"), Some(10 << 30));
        assert_eq!(quantity_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(quantity_bytes("500M"), Some(500_000_000));
        assert_eq!(quantity_bytes("1024"), Some(1024));
        assert_eq!(quantity_bytes("1e3"), None);
    }
}
