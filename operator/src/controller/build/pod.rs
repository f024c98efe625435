//! Pod pieces shared by the registry Deployment and the GC CronJob: the
//! restricted security context, volumes, mounts and S3 credentials.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, EmptyDirVolumeSource, EnvVar, EnvVarSource, KeyToPath,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, SeccompProfile, SecretKeySelector,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::labels::names;
use crate::controller::model::*;

/// The unprivileged user the registry runs as (distroless "nonroot").
pub const RUN_AS: i64 = 65532;

/// Non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp.
pub fn container_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

/// Pod-level security: volumes owned by the registry's group.
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(runtime_default()),
        ..PodSecurityContext::default()
    }
}

/// The config volume and mount (`/etc/berth/config.yml`).
pub fn config_volume(v: &ValidatedRegistry) -> (Volume, VolumeMount) {
    (
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names::config(&v.name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        mount("config", CONFIG_DIR),
    )
}

/// The storage volume, or `None` for object storage.
pub fn storage_volume(v: &ValidatedRegistry) -> Option<(Volume, VolumeMount)> {
    let volume = match &v.storage {
        Storage::Claim { claim_name, .. } => Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name.clone(),
                read_only: None,
            }),
            ..Volume::default()
        },
        Storage::EmptyDir { size_limit, memory } => Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: memory.then(|| "Memory".to_owned()),
                size_limit: size_limit.clone().map(Quantity),
            }),
            ..Volume::default()
        },
        Storage::S3(_) => return None,
    };
    Some((volume, mount("data", STORAGE_MOUNT)))
}

/// Scratch space: the root filesystem is read-only.
pub fn tmp_volume() -> (Volume, VolumeMount) {
    (
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        mount("tmp", "/tmp"),
    )
}

/// The htpasswd file: the operator's Secret, or the user's own.
pub fn auth_volume(v: &ValidatedRegistry) -> Option<(Volume, VolumeMount)> {
    let auth = v.auth.as_ref()?;
    let (secret, key) = match &auth.source {
        AuthSource::Users(_) => (names::htpasswd(&v.name), HTPASSWD_FILE.to_owned()),
        AuthSource::Existing { secret, key } => (secret.clone(), key.clone()),
    };
    Some((
        secret_volume("auth", secret, vec![(key, HTPASSWD_FILE.to_owned())]),
        mount("auth", AUTH_DIR),
    ))
}

/// The serving certificate.
pub fn tls_volume(v: &ValidatedRegistry) -> Option<(Volume, VolumeMount)> {
    let secret = match &v.tls {
        Tls::Disabled => return None,
        Tls::Secret { secret, .. } => secret.clone(),
        Tls::SelfSigned { .. } | Tls::CertManager { .. } => names::tls(&v.name),
    };
    let items = vec![
        ("tls.crt".to_owned(), "tls.crt".to_owned()),
        ("tls.key".to_owned(), "tls.key".to_owned()),
    ];
    Some((secret_volume("tls", secret, items), mount("tls", TLS_DIR)))
}

fn secret_volume(name: &str, secret: String, items: Vec<(String, String)>) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            items: Some(
                items
                    .into_iter()
                    .map(|(key, path)| KeyToPath {
                        key,
                        path,
                        mode: None,
                    })
                    .collect(),
            ),
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(name != "data" && name != "tmp"),
        ..VolumeMount::default()
    }
}

/// Object store access keys as the driver's `REGISTRY_STORAGE_*` overrides,
/// straight from the user's Secret.
pub fn s3_env(v: &ValidatedRegistry) -> Vec<EnvVar> {
    let Storage::S3(
        s3 @ S3 {
            credentials: Some((secret, id_key, secret_key)),
            ..
        },
    ) = &v.storage
    else {
        return Vec::new();
    };
    let (id_variable, secret_variable) = s3.credential_variables();
    let from = |env: &str, key: &str| EnvVar {
        name: env.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.clone(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    };
    vec![from(id_variable, id_key), from(secret_variable, secret_key)]
}

/// Default resources: small requests, a memory limit well above the registry's needs.
pub fn default_resources() -> k8s_openapi::api::core::v1::ResourceRequirements {
    k8s_openapi::api::core::v1::ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("50m".into())),
            ("memory".to_owned(), Quantity("64Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("512Mi".into()),
        )])),
        ..Default::default()
    }
}
