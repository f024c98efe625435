//! The registry pods' ServiceAccount (annotations allow cloud identities such as IRSA).

use k8s_openapi::api::core::v1::ServiceAccount;

use super::labels::{REGISTRY_COMPONENT, metadata};
use crate::controller::model::ValidatedRegistry;

pub fn service_account(v: &ValidatedRegistry) -> ServiceAccount {
    let mut meta = metadata(v, v.name.clone(), REGISTRY_COMPONENT);
    if !v.pod.service_account_annotations.is_empty() {
        meta.annotations = Some(v.pod.service_account_annotations.clone());
    }
    ServiceAccount {
        metadata: meta,
        // The registry never talks to the Kubernetes API.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
