//! The PodDisruptionBudget (on by default with more than one replica).

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::labels::{REGISTRY_COMPONENT, metadata, selector};
use crate::controller::model::{Pdb, ValidatedRegistry};

pub fn pdb(v: &ValidatedRegistry) -> Option<PodDisruptionBudget> {
    let budget = v.pdb.as_ref()?;
    let (min_available, max_unavailable) = match budget {
        Pdb::MinAvailable(min) => (Some(min.clone()), None),
        Pdb::MaxUnavailable(max) => (None, Some(max.clone())),
    };
    Some(PodDisruptionBudget {
        metadata: metadata(v, v.name.clone(), REGISTRY_COMPONENT),
        spec: Some(PodDisruptionBudgetSpec {
            min_available,
            max_unavailable,
            selector: Some(LabelSelector {
                match_labels: Some(selector(&v.name, REGISTRY_COMPONENT)),
                ..LabelSelector::default()
            }),
            // Unready pods can always be evicted: a budget must not block draining a broken node.
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
        }),
        status: None,
    })
}
