//! The PersistentVolumeClaim the operator creates. A retained claim (the
//! default) carries no owner reference, so deleting the Registry keeps the images.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::labels::{REGISTRY_COMPONENT, metadata};
use crate::controller::model::{Storage, ValidatedRegistry};

pub fn claim(v: &ValidatedRegistry) -> Option<PersistentVolumeClaim> {
    let Storage::Claim {
        claim_name,
        create: Some(spec),
        retain,
        ..
    } = &v.storage
    else {
        return None;
    };
    let mut meta = metadata(v, claim_name.clone(), REGISTRY_COMPONENT);
    if *retain {
        meta.owner_references = None;
    }
    Some(PersistentVolumeClaim {
        metadata: meta,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(spec.access_modes.clone()),
            storage_class_name: spec.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(spec.size.clone()),
                )])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}
